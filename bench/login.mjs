// Browser logins for bench/run, against gatehouse or the oidc-provider peer, with Node's own
// fetch (no dependencies): authorize -> login page(s) -> password -> code -> token, PKCE S256,
// a fresh cookie jar per login (a new browser each time: no SSO session is reused).
//
//   node login.mjs prepare KIND CREDS.json DISCOVERY_URL N OUT.json
//       N real logins; writes {refresh_tokens: [N], access_token} for the refresh,
//       userinfo and introspection cases.
//   node login.mjs bench KIND CREDS.json DISCOVERY_URL SECONDS CONCURRENCY
//       logins in a closed loop for SECONDS with CONCURRENCY in flight; prints one JSON line
//       {logins, requests, rps, p50_ms, p99_ms, errors, first_error} where rps = full logins/s
//       and the latencies are of one whole login (4-5 HTTP requests).
//   node login.mjs session KIND CREDS.json DISCOVERY_URL N OUT.json
//       N real logins (N browsers, each with its SSO session), then writes what the `code`
//       case (bench/wrk/code.lua) replays: the N browsers' cookies, an authorize path+query
//       for `openid profile email` with a fixed PKCE pair, state and nonce, and that
//       verifier. Checks once that the authorize answers with a code straight away.
//
// KIND is `gatehouse` (identify page, then password page, CSRF + tx hidden fields, gh_b
// cookie) or `peer` (oidc-provider with bench/peer/server.mjs's one-form interaction).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

const [mode, kind, credsPath, discoveryUrl, a5, a6, a7] = process.argv.slice(2);
if (!['prepare', 'bench', 'session'].includes(mode) || !['gatehouse', 'peer'].includes(kind)) {
  console.error('usage: login.mjs prepare|bench|session gatehouse|peer CREDS.json DISCOVERY_URL ...');
  process.exit(2);
}
const creds = JSON.parse(readFileSync(credsPath, 'utf8'));
const rp = creds.clients.find((c) => c.tenant === 'fabrikam' && c.client_id === 'test-rp');
const user = creds.users.find((u) => u.login === 'iw@fabrikam.example');
const disco = await (await fetch(discoveryUrl)).json();
const basic = 'Basic ' + Buffer.from(`${encodeURIComponent(rp.client_id)}:${encodeURIComponent(rp.client_secret)}`).toString('base64');
const redirectUri = 'http://127.0.0.1/callback';
const SCOPE = 'openid profile email offline_access';

class Jar {
  constructor() {
    this.c = new Map();
  }
  take(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [pair] = sc.split(';');
      const i = pair.indexOf('=');
      this.c.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  }
  header() {
    return [...this.c].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

class Browser {
  constructor() {
    this.jar = new Jar();
    this.requests = 0;
  }
  async go(url, init = {}) {
    this.requests += 1;
    const headers = { ...(init.headers ?? {}), cookie: this.jar.header(), 'user-agent': 'gatehouse-bench' };
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.jar.take(res);
    const body = await res.text();
    return { res, body, location: res.headers.get('location') && new URL(res.headers.get('location'), url).href };
  }
  post(url, fields) {
    return this.go(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
  }
}

const fail = (what, r) => {
  throw new Error(`${what}: HTTP ${r.res.status} ${r.location ?? ''} ${r.body.slice(0, 200).replace(/\s+/g, ' ')}`);
};
const expect = (r, statuses, what) => {
  if (!statuses.includes(r.res.status)) fail(what, r);
  return r;
};

// The hidden inputs and action of the form with this id.
function form(html, id, what) {
  const m = html.match(new RegExp(`<form[^>]*id="${id}"[^>]*>([\\s\\S]*?)</form>`));
  if (!m) throw new Error(`${what}: no form#${id} in ${html.slice(0, 300).replace(/\s+/g, ' ')}`);
  const action = m[0].match(/action="([^"]*)"/)[1].replace(/&amp;/g, '&');
  const fields = {};
  for (const inp of m[1].matchAll(/<input[^>]*type="hidden"[^>]*>/g)) {
    const name = inp[0].match(/name="([^"]*)"/)?.[1];
    const value = inp[0].match(/value="([^"]*)"/)?.[1] ?? '';
    if (name) fields[name] = value.replace(/&amp;/g, '&').replace(/&#(\d+);/g, (_, n) => String.fromCharCode(n));
  }
  return { action, fields };
}

async function login(b = new Browser()) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: rp.client_id,
    redirect_uri: redirectUri,
    scope: SCOPE,
    state: randomBytes(12).toString('base64url'),
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  // oidc-provider drops offline_access (no refresh token) unless consent is prompted (OIDC Core 11).
  if (kind === 'peer') q.set('prompt', 'consent');
  let r = expect(await b.go(`${disco.authorization_endpoint}?${q}`), [302, 303], 'authorize');
  r = expect(await b.go(r.location), [200], 'login page');
  if (kind === 'gatehouse') {
    const id = form(r.body, 'identify', 'identify page');
    r = expect(await b.post(new URL(id.action, r.res.url).href, { ...id.fields, login: user.login }), [302, 303], 'identify');
    r = expect(await b.go(r.location), [200], 'password page');
    const pw = form(r.body, 'password', 'password page');
    r = expect(await b.post(new URL(pw.action, r.res.url).href, { ...pw.fields, password: user.password }), [302, 303], 'password');
  } else {
    const f = r.body.match(/action="([^"]*)"/)[1];
    const url = new URL(f, r.res.url).href;
    r = expect(await b.post(url, { login: user.login, password: user.password }), [302, 303], 'password');
    // oidc-provider resumes the authorization at /auth/:uid, which redirects with the code.
    while (r.location && !r.location.startsWith(redirectUri)) {
      r = expect(await b.go(r.location), [302, 303], 'resume');
    }
  }
  if (!r.location?.startsWith(redirectUri)) fail('no redirect to the client', r);
  const code = new URL(r.location).searchParams.get('code');
  if (!code) fail('no code', r);
  r = await b.go(disco.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }).toString(),
  });
  expect(r, [200], 'token');
  const tokens = JSON.parse(r.body);
  if (!tokens.refresh_token || !tokens.id_token || !tokens.access_token) fail('token response incomplete', r);
  return { tokens, requests: b.requests };
}

if (mode === 'session') {
  const n = Number(a5);
  const out = a6;
  // 4 logins in flight, as in `prepare`.
  const browsers = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(4, n) }, async () => {
      while (next < n) {
        next += 1;
        const b = new Browser();
        await login(b);
        browsers.push(b);
      }
    }),
  );
  // No offline_access: oidc-provider grants it only with prompt=consent, which would show a
  // page on every authorize; without it both servers answer the authorize with a code.
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: rp.client_id,
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    state: randomBytes(12).toString('base64url'),
    nonce: randomBytes(12).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const authorize = new URL(`${disco.authorization_endpoint}?${q}`);
  const r = await browsers[0].go(authorize.href);
  if (![302, 303].includes(r.res.status) || !r.location?.startsWith(redirectUri) || !new URL(r.location).searchParams.get('code')) {
    fail('authorize with the SSO session did not answer with a code', r);
  }
  const cookies = browsers.map((b) => b.jar.header());
  // code.lua reads the file with Lua patterns: no value may hold a quote, backslash or bracket.
  if (cookies.some((c) => /["\\\[\]]/.test(c))) throw new Error('a cookie holds a character code.lua cannot read');
  writeFileSync(
    out,
    JSON.stringify({
      cookies,
      authorize: authorize.pathname + authorize.search,
      token: new URL(disco.token_endpoint).pathname,
      verifier,
      redirect_uri: redirectUri,
    }),
  );
  console.log(`prepared ${cookies.length} SSO sessions for the code case`);
} else if (mode === 'prepare') {
  const n = Number(a5);
  const out = a6;
  const refresh = [];
  let access;
  // 4 logins in flight: argon2 keeps both cores busy, the logins take seconds, not minutes.
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < n) {
        next += 1;
        const { tokens } = await login();
        refresh.push(tokens.refresh_token);
        access ??= tokens.access_token;
      }
    }),
  );
  writeFileSync(out, JSON.stringify({ refresh_tokens: refresh, access_token: access }));
  console.log(`prepared ${refresh.length} refresh tokens`);
} else {
  const seconds = Number(a5);
  const conc = Number(a6);
  const until = performance.now() + seconds * 1000;
  const lat = [];
  let requests = 0;
  let errors = 0;
  let firstError;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        try {
          const r = await login();
          requests += r.requests;
          lat.push(performance.now() - t0);
        } catch (e) {
          errors += 1;
          firstError ??= String(e.message ?? e);
          if (errors > 50) return;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  lat.sort((x, y) => x - y);
  const pct = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor((lat.length * p) / 100))] : 0);
  console.log(
    JSON.stringify({
      logins: lat.length,
      requests,
      seconds: elapsed,
      rps: lat.length / elapsed,
      p50_ms: pct(50),
      p99_ms: pct(99),
      errors,
      first_error: firstError ?? null,
    }),
  );
}
