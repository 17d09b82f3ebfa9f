// The demo server as a child process, shared by the RP-library tests (tests/rp)
// and the browser stories (tests/e2e): only Node built-ins, so both can import it.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const START_TIMEOUT_MS = 30_000;
const LISTENING_RE = /gatehouse listening on (http:\/\/\S+)/;

// The binary `cargo build` just wrote: cargo's own rule, $CARGO_TARGET_DIR when set, else
// target/ at the repository root (GATEHOUSE_BIN overrides both).
export function gatehouseBinary() {
  if (process.env.GATEHOUSE_BIN) return process.env.GATEHOUSE_BIN;
  const targetDir = process.env.CARGO_TARGET_DIR || fileURLToPath(new URL('../../target', import.meta.url));
  return join(targetDir, 'debug', 'gatehouse');
}

const running = new Set();

// Starts `gatehouse serve --demo` on an ephemeral loopback port with a fresh
// data directory named after `prefix`, with `env` added to the environment.
// Optional: `bind` (an address:port instead of 127.0.0.1:0) and `publicUrl`
// (GATEHOUSE__PUBLIC_URL, e.g. http://localhost:PORT for passkeys, whose relying
// party needs a host name).
// Resolves to { url, dataDir, credentials, child, output() }.
export async function startGatehouse({ prefix = 'gatehouse-test-', env = {}, bind, publicUrl } = {}) {
  const bin = gatehouseBinary();
  if (!existsSync(bin)) {
    throw new Error(`gatehouse binary not found at ${bin}: build gatehouse first: cargo build ` +
      '(or set GATEHOUSE_BIN / CARGO_TARGET_DIR)');
  }

  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  const extra = publicUrl === undefined ? {} : { GATEHOUSE__PUBLIC_URL: publicUrl };
  const child = spawn(bin, ['serve', '--demo', '--bind', bind ?? '127.0.0.1:0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, ...extra },
  });
  const server = { child, dataDir, url: undefined, credentials: undefined };
  running.add(server);

  // Keep draining both pipes for the whole lifetime of the child, otherwise a
  // chatty server blocks once the pipe buffer is full.
  let stdout = '';
  let stderr = '';
  const keep = (s) => (s.length > 64_000 ? s.slice(-64_000) : s);
  server.output = () => `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr = keep(stderr + chunk); });
  child.stdout.setEncoding('utf8');

  try {
    server.url = await new Promise((resolve, reject) => {
      let pending = '';
      const timer = setTimeout(() => {
        reject(new Error(`gatehouse did not print its listening line within ${START_TIMEOUT_MS / 1000}s\n${server.output()}`));
      }, START_TIMEOUT_MS);
      const onExit = (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`gatehouse exited early (code ${code}, signal ${signal})\n${server.output()}`));
      };
      child.once('exit', onExit);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not spawn ${bin}: ${err.message}`));
      });
      child.stdout.on('data', (chunk) => {
        stdout = keep(stdout + chunk);
        if (pending === null) return;
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop();
        for (const line of lines) {
          const m = LISTENING_RE.exec(line);
          if (m) {
            pending = null;
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(m[1].replace(/\/+$/, ''));
            return;
          }
        }
      });
    });
    server.credentials = await readCredentials(join(dataDir, 'demo-credentials.json'), server);
  } catch (err) {
    await stopGatehouse(server);
    throw err;
  }
  return server;
}

async function readCredentials(path, server) {
  // The file should exist once the server listens; allow a moment in case it
  // is written just after the listening line.
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      return JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      if (Date.now() > deadline) {
        throw new Error(`could not read ${path}: ${err.message}\n${server.output()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

// Stops one server (or every server started by this module) and removes its
// data directory.
export async function stopGatehouse(server) {
  const servers = server ? [server] : [...running];
  for (const s of servers) {
    running.delete(s);
    const { child } = s;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(s.dataDir, { recursive: true, force: true });
  }
}

// Should the test process die without running its after() hooks.
process.once('exit', () => {
  for (const { child } of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

export function findUser(credentials, tenant, login) {
  const user = credentials.users.find((u) => u.tenant === tenant && u.login === login);
  if (!user) throw new Error(`demo-credentials.json has no user ${login} in tenant ${tenant}`);
  return user;
}
