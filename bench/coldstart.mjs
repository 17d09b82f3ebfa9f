// Cold start for bench/run: spawn a server, read its `... listening on URL` line, poll
// URL+PATH every millisecond until the first 200, print one JSON line
// {ms, listening_ms, rss_kib} (ms = spawn to first 200 on PATH), then stop the server.
//
//   node coldstart.mjs PATH -- COMMAND ARGS...
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const sep = process.argv.indexOf('--');
const path = process.argv[2];
const [cmd, ...args] = process.argv.slice(sep + 1);
if (sep < 0 || !path || !cmd) {
  console.error('usage: coldstart.mjs PATH -- COMMAND ARGS...');
  process.exit(2);
}

const agent = new http.Agent({ keepAlive: false });
const get = (url) =>
  new Promise((ok) => {
    const req = http.get(url, { agent }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode));
    });
    req.on('error', () => ok(0));
    req.setTimeout(1000, () => req.destroy());
  });

const t0 = performance.now();
const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
const deadline = setTimeout(() => {
  console.error('coldstart: no 200 within 30 s');
  child.kill('SIGKILL');
  process.exit(1);
}, 30_000);

let buf = '';
let listeningMs;
child.stderr.resume();
child.stdout.on('data', async (chunk) => {
  if (listeningMs !== undefined) return;
  buf += chunk;
  const m = buf.match(/listening on (http:\/\/\S+)/);
  if (!m) return;
  listeningMs = performance.now() - t0;
  const url = m[1] + path;
  for (;;) {
    if ((await get(url)) === 200) break;
    await new Promise((r) => setTimeout(r, 1));
  }
  const ms = performance.now() - t0;
  let rss = null;
  try {
    rss = Number(readFileSync(`/proc/${child.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
  } catch {}
  clearTimeout(deadline);
  console.log(JSON.stringify({ ms, listening_ms: listeningMs, rss_kib: rss }));
  child.kill('SIGTERM');
  const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
  child.on('exit', () => {
    clearTimeout(hard);
    process.exit(0);
  });
});
child.on('exit', (code) => {
  if (listeningMs === undefined) {
    console.error(`coldstart: ${cmd} exited (${code}) before listening`);
    process.exit(1);
  }
});
