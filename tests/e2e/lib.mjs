// Shared helpers for the browser end-to-end tests: the demo server as a process,
// headless Debian Chromium driven by playwright-core, a TOTP authenticator, and
// the page-contract steps (DESIGN.md §6) that several stories share.
//
// Every story runs inside `story()`, which captures a screenshot and the HTML of
// each open page into tests/e2e/artifacts/ before a failure is reported.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { findUser, startGatehouse as start, stopGatehouse } from '../lib/gatehouse-server.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
export const ARTIFACTS = join(HERE, 'artifacts');
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const STEP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------
// The server

export { gatehouseBinary, stopGatehouse } from '../lib/gatehouse-server.mjs';

// Starts `gatehouse serve --demo` on an ephemeral loopback port with a fresh data
// directory and cheap argon2 (logins in milliseconds). Resolves to
// { url, dataDir, credentials, child, output() }.
export async function startGatehouse() {
  const server = await start({
    prefix: 'gatehouse-e2e-',
    env: { GATEHOUSE__ARGON2__MEMORY_KIB: '1024', GATEHOUSE__ARGON2__ITERATIONS: '1' },
  });
  try {
    assert.equal(server.credentials.url, server.url, 'demo-credentials.json names the URL the server listens on');
  } catch (err) {
    await stopGatehouse(server);
    throw err;
  }
  return server;
}

// Registers hooks that start the demo server and Chromium before the stories of one
// file and stop them after; the returned object holds { server, browser } by then.
export function serverAndBrowser() {
  const ctx = {};
  before(async () => {
    ctx.server = await startGatehouse();
    ctx.browser = await launchBrowser();
  });
  after(async () => {
    await ctx.browser?.close();
    await stopGatehouse(ctx.server);
  });
  return ctx;
}

export function password(credentials, tenant, login) {
  return findUser(credentials, tenant, login).password;
}

// ---------------------------------------------------------------------------
// The browser

// Launches the machine's Debian Chromium (never a downloaded one). Playwright
// gives every launch a new, empty profile (user-data-dir) of its own. `args` are
// added to the command line.
export async function launchBrowser(args = []) {
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (err) {
    throw new Error(`playwright-core is not installed (${err.message}): run \`npm ci --prefix tests/e2e\` (.ci/run does)`);
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's Chromium with \`apt-get install -y chromium\` (.ci/run does)`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      ...args,
    ],
  });
}

// Runs one story. `body(s)` gets `s.page(label)` (a page in a new browser context:
// a separate person with separate cookies) and `s.step(name, fn)` (names the step
// in a failure). Any error first saves a screenshot and the HTML of every page.
export async function story(browser, testFile, body) {
  const pages = [];
  const problems = []; // script errors and CSP violations seen on any page
  let current = 'setup';
  const s = {
    async page(label) {
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_TIMEOUT_MS);
      page.on('pageerror', (err) => problems.push(`[${label}] script error at ${page.url()}: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) {
          problems.push(`[${label}] CSP violation at ${page.url()}: ${msg.text()}`);
        }
      });
      pages.push({ label, page, context });
      return page;
    },
    async step(name, fn) {
      current = name;
      return fn();
    },
  };
  try {
    await body(s);
    current = 'no script errors or CSP violations';
    assert.deepEqual(problems, [], 'no script errors or Content-Security-Policy violations in any page');
  } catch (err) {
    const saved = await saveArtifacts(basename(testFile).replace(/\.test\.mjs$/, ''), pages);
    err.message = `[step: ${current}] ${err.message}\n${saved.join('\n')}`;
    throw err;
  } finally {
    for (const { context } of pages) await context.close().catch(() => {});
  }
}

async function saveArtifacts(prefix, pages) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const saved = [];
  for (const { label, page } of pages) {
    if (page.isClosed()) continue;
    const base = join(ARTIFACTS, `${prefix}-${label}`);
    try {
      await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 10_000 });
      saved.push(`screenshot (${label}, at ${page.url()}): ${base}.png`);
    } catch (e) {
      saved.push(`screenshot (${label}) failed: ${e.message}`);
    }
    try {
      writeFileSync(`${base}.html`, await page.content());
      saved.push(`html (${label}): ${base}.html`);
    } catch (e) {
      saved.push(`html (${label}) failed: ${e.message}`);
    }
  }
  return saved;
}

// Waits for `selector` on the current page; on timeout the error says where the
// browser is and what the page shows (an error page's code, a form's error line).
export async function expectPage(page, selector, what = selector) {
  try {
    await page.locator(selector).first().waitFor({ state: 'visible' });
  } catch {
    throw new Error(`expected ${what} (${selector}) but the browser is at ${page.url()}:\n${await describe(page)}`);
  }
  return page.locator(selector);
}

export async function describe(page) {
  try {
    return await page.evaluate(() => {
      const err = document.querySelector('main#error');
      const forms = [...document.querySelectorAll('form[id]')].map((f) => f.id);
      const alert = document.querySelector('[role=alert]');
      const main = document.querySelector('main');
      return [
        `title: ${document.title}`,
        err ? `error page: data-error=${err.dataset.error}` : null,
        alert ? `alert: ${alert.textContent.trim()}` : null,
        `forms: ${forms.join(', ') || 'none'}`,
        `text: ${(main ? main.innerText : document.body.innerText).trim().slice(0, 800)}`,
      ].filter(Boolean).join('\n');
    });
  } catch (e) {
    return `(could not read the page: ${e.message})`;
  }
}

export function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function path(page) {
  return new URL(page.url()).pathname;
}

// Fills the named fields of `form#id` and presses its submit button.
export async function submitForm(page, formId, fields = {}, button = 'button[type=submit]') {
  const form = await expectPage(page, `form#${formId}`);
  for (const [name, value] of Object.entries(fields)) {
    const field = form.locator(`[name="${name}"]`);
    if (await field.evaluate((el) => el.tagName === 'SELECT')) await field.selectOption(value);
    else await field.fill(value);
  }
  await form.locator(button).click();
}

// ---------------------------------------------------------------------------
// TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps), as an authenticator app does.

export function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s=-]/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const i = alphabet.indexOf(ch);
    if (i < 0) throw new Error(`not base32: ${JSON.stringify(ch)} in ${JSON.stringify(text)}`);
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

export function totp(secretBase32, unixSeconds = Date.now() / 1000, { digits = 6, step = 30 } = {}) {
  const counter = Math.floor(unixSeconds / step);
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', base32Decode(secretBase32)).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(bin % 10 ** digits).padStart(digits, '0');
}

// A code that stays valid long enough to be typed and submitted: near the end of a
// 30 s step, wait for the next one.
export async function freshTotp(secretBase32) {
  const left = 30 - ((Date.now() / 1000) % 30);
  if (left < 3) await new Promise((r) => setTimeout(r, left * 1000 + 250));
  return totp(secretBase32);
}

// ---------------------------------------------------------------------------
// Page-contract steps shared by the stories

// At a tenant's sign-in pages: form#identify (login), then form#password.
export async function signInWithPassword(page, login, pw) {
  await submitForm(page, 'identify', { login });
  await submitForm(page, 'password', { password: pw });
}

// The information worker invites a guest on /fabrikam/invite (signing in first if
// the page sends them to sign in). Returns the redeem link the page shows.
export async function inviteOnPage(page, server, { email, displayName, app, message }) {
  const login = 'iw@fabrikam.example';
  await page.goto(`${server.url}/fabrikam/invite`);
  if (await page.locator('form#identify').count()) {
    assert.match(path(page), /^\/fabrikam\//, 'the invite page asks Fabrikam sign-in first');
    await signInWithPassword(page, login, password(server.credentials, 'fabrikam', login));
  }
  await expectPage(page, 'form#invite', 'the invite page');
  assert.equal(path(page), '/fabrikam/invite');
  assert.match(await page.locator('main').innerText(), new RegExp(`Signed in as ${escapeRegExp(login)}`));
  const apps = await page.locator('form#invite select[name=app] option').evaluateAll((os) => os.map((o) => o.value));
  assert.ok(apps.includes(app), `app ${app} is offered in the select (offered: ${apps.join(', ')})`);
  await submitForm(page, 'invite', { email, display_name: displayName, app, message });
  const link = await expectPage(page, 'a#redeem-link', 'the redeem link after inviting');
  const href = await link.getAttribute('href');
  assert.ok(href.startsWith(`${server.url}/redeem?ticket=`), `redeem link ${href}`);
  assert.equal(await page.locator('form#invite [name=email]').inputValue(), '', 'the form is cleared for the next guest');
  return href;
}

// The newest outbox message to `email` (the outbox lists newest first).
export async function newestMessageTo(page, server, email) {
  await page.goto(`${server.url}/outbox`);
  await expectPage(page, 'main#outbox', 'the outbox');
  const message = page.locator('article.message').filter({
    has: page.locator('span.to', { hasText: new RegExp(`^${escapeRegExp(email)}$`) }),
  }).first();
  await message.waitFor().catch(async () => {
    throw new Error(`no message to ${email} in the outbox:\n${await describe(page)}`);
  });
  return message;
}

// The guest opens the invitation email in the outbox and clicks its link.
export async function openInvitation(page, server, email, { expectedLink, message } = {}) {
  const mail = await newestMessageTo(page, server, email);
  assert.match(await mail.locator('h2').innerText(), /You're invited to Fabrikam/);
  if (message) assert.ok((await mail.locator('pre').innerText()).includes(message), 'the personal message is in the email');
  const link = mail.locator('a.redeem-link');
  if (expectedLink) assert.equal(await link.getAttribute('href'), expectedLink, 'the email carries the link the invite page showed');
  await link.click();
}

// The 8-digit email code in the newest outbox message to `email`, read in a tab of
// the same browser context (the guest's mailbox).
export async function emailCode(page, server, email) {
  const mailbox = await page.context().newPage();
  try {
    const mail = await newestMessageTo(mailbox, server, email);
    const code = (await mail.locator('code.otp').innerText()).trim();
    assert.match(code, /^\d{8}$/, 'an 8-digit code');
    return code;
  } finally {
    await mailbox.close();
  }
}

// At the proof-up page: checks the QR image really loaded, enrols with a code
// computed from the shown secret, checks the ten recovery codes and continues.
export async function proofUp(page) {
  await expectPage(page, 'code#totp-secret', 'the MFA proof-up page');
  assert.match(path(page), /^\/fabrikam\//, 'proof-up happens at the resource tenant');
  const qr = page.locator('img#totp-qr');
  await qr.waitFor();
  const image = await qr.evaluate(async (img) => {
    if (!img.complete) await new Promise((r) => { img.onload = r; img.onerror = r; });
    return { complete: img.complete, naturalWidth: img.naturalWidth, src: img.src.slice(0, 30) };
  });
  assert.ok(image.complete && image.naturalWidth > 0, `the QR code image loaded: ${JSON.stringify(image)}`);
  const secret = (await page.locator('code#totp-secret').innerText()).trim();
  assert.match(secret, /^[A-Z2-7]{16,}=*$/, 'the secret is base32');
  await submitForm(page, 'totp-enroll', { code: await freshTotp(secret) });
  await expectPage(page, 'ul#recovery-codes', 'the recovery codes after enrolment');
  const codes = (await page.locator('ul#recovery-codes li').allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10, `ten recovery codes: ${codes.join(' ')}`);
  assert.equal(new Set(codes).size, 10, 'the recovery codes differ');
  await submitForm(page, 'continue');
  return { secret, codes };
}

// Waits for the demo app page `/demo/{app}` with its claims table; returns the claims.
export async function claimsAt(page, app) {
  await expectPage(page, 'table#claims', `the signed-in ${app} page`);
  assert.equal(path(page), `/demo/${app}`);
  const rows = await page.locator('table#claims tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.querySelector('th').textContent.trim(), tr.querySelector('td').textContent.trim()]));
  return Object.fromEntries(rows);
}

// The admin signs in at /fabrikam/admin and lands on the admin page.
export async function adminPage(page, server) {
  const login = 'admin@fabrikam.example';
  await page.goto(`${server.url}/fabrikam/admin`);
  if (await page.locator('form#identify').count()) {
    await signInWithPassword(page, login, password(server.credentials, 'fabrikam', login));
  }
  await expectPage(page, 'main#admin', 'the admin page');
  assert.equal(path(page), '/fabrikam/admin');
  assert.match(await page.locator('main#admin').innerText(), /Signed in as admin@fabrikam\.example/);
}

// Row `tr` of the admin page table in `section#id` whose first cell is exactly `name`.
export function adminRow(page, sectionId, name) {
  return page.locator(`section#${sectionId} tbody tr`).filter({
    // The first cell is a row header (th scope=row) in the guest table, a td elsewhere.
    has: page.locator(':is(th, td):first-child', { hasText: new RegExp(`^${escapeRegExp(name)}$`) }),
  });
}

// ---------------------------------------------------------------------------
// Passkeys (DESIGN.md §10): a server whose public URL has a host name, Chromium's
// CDP virtual authenticator, and the passkey pages.

// Chromium may try ::1 for localhost first; the server listens on 127.0.0.1 only.
export const LOCALHOST_ARGS = ['--host-resolver-rules=MAP localhost 127.0.0.1'];

// A free loopback port (picked by the kernel, then released for the server to take).
export async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// As startGatehouse(), but listening on 127.0.0.1:PORT with public_url
// http://localhost:PORT: WebAuthn needs a relying party id that is a host name.
export async function startPasskeyGatehouse() {
  const port = await freePort();
  const publicUrl = `http://localhost:${port}`;
  const server = await start({
    prefix: 'gatehouse-e2e-passkey-',
    bind: `127.0.0.1:${port}`,
    publicUrl,
    env: { GATEHOUSE__ARGON2__MEMORY_KIB: '1024', GATEHOUSE__ARGON2__ITERATIONS: '1' },
  });
  try {
    assert.equal(server.url, publicUrl, 'the server announces its public URL');
    assert.equal(server.credentials.url, server.url, 'demo-credentials.json names the public URL');
  } catch (err) {
    await stopGatehouse(server);
    throw err;
  }
  return server;
}

// Attaches a CDP virtual authenticator (CTAP2, platform, resident keys, user
// verification, presence simulated) to `page`; it stays with the tab across
// navigations and cookie clearing. Resolves to { cdp, authenticatorId }.
// `credentials` (from WebAuthn.getCredentials of another one) are copied in.
export async function addVirtualAuthenticator(page, credentials = []) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  for (const credential of credentials) {
    await cdp.send('WebAuthn.addCredential', { authenticatorId, credential });
  }
  return { cdp, authenticatorId };
}

export async function authenticatorCredentials({ cdp, authenticatorId }) {
  return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
}

// At form#method-choice: picks `method` (totp | passkey) and continues.
export async function chooseMethod(page, method) {
  const form = await expectPage(page, 'form#method-choice', 'the MFA method choice');
  await form.locator(`input[type=radio][name=method][value=${method}]`).check();
  await form.locator('button[type=submit]').click();
}

// At form#passkey-register: the browser creates the passkey (static/passkey.js and
// the virtual authenticator); checks the ten recovery codes and continues.
export async function registerPasskey(page) {
  const form = await expectPage(page, 'form#passkey-register', 'the passkey registration page');
  assert.equal(await form.locator('input[type=hidden][name=credential]').count(), 1, 'hidden field credential');
  await form.locator('button#passkey-start').click();
  await expectPage(page, 'ul#recovery-codes', 'the recovery codes after the passkey was created');
  const codes = (await page.locator('ul#recovery-codes li').allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10, `ten recovery codes: ${codes.join(' ')}`);
  assert.equal(new Set(codes).size, 10, 'the recovery codes differ');
  await submitForm(page, 'continue');
  return { codes };
}

// At form#passkey-challenge: answers with the passkey (button#passkey-start).
export async function answerPasskey(page) {
  const form = await expectPage(page, 'form#passkey-challenge', 'the passkey challenge');
  await form.locator('button#passkey-start').click();
}

// ---------------------------------------------------------------------------
// Graph, as the admin CLI does: the demo's admin client (demo-credentials.json)
// gets an app token from Fabrikam with client_credentials.

export async function graphToken(server) {
  const { client_id: id, client_secret: secret, tenant } = server.credentials.admin;
  const resp = await fetch(`${server.url}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials',
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const body = await resp.json();
  assert.equal(resp.status, 200, `admin token: ${JSON.stringify(body)}`);
  return body.access_token;
}

// One Graph request (`path` below /graph/v1.0/); resolves to { status, body }.
export async function graph(server, token, method, path, body) {
  const resp = await fetch(`${server.url}/graph/v1.0/${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const text = await resp.text();
  let parsed = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: resp.status, body: parsed };
}

// A person's own (delegated) token for the admin API of `tenant`, as an admin's script or a
// device-management console gets one: `login` signs in in `page` through the tenant's
// test-rp (demo-credentials.json) asking for `scope`; the browser is sent to the loopback
// redirect URI (nothing listens there: the request itself carries the code), and the code
// is exchanged with test-rp's secret and the PKCE verifier. Resolves to the access token.
export async function delegatedGraphToken(page, server, tenant, login, scope = 'openid Directory.ReadWrite.All') {
  const client = server.credentials.clients.find((c) => c.tenant === tenant && c.client_id === 'test-rp');
  assert.ok(client, `demo-credentials.json has test-rp in ${tenant}`);
  const redirectUri = 'http://127.0.0.1:9/callback';
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorize = new URL(`${server.url}/${tenant}/oauth2/v2.0/authorize`);
  for (const [k, v] of Object.entries({
    client_id: client.client_id, response_type: 'code', redirect_uri: redirectUri, scope, state,
    nonce: randomBytes(16).toString('base64url'), code_challenge: challenge, code_challenge_method: 'S256',
  })) authorize.searchParams.set(k, v);
  const callback = page.waitForRequest((r) => r.url().startsWith(`${redirectUri}?`));
  callback.catch(() => {}); // awaited below; a sign-in that fails first reports its own error
  await page.goto(authorize.href);
  await signInWithPassword(page, login, password(server.credentials, tenant, login));
  const back = new URL((await callback).url());
  assert.equal(back.searchParams.get('state'), state, 'the state comes back');
  const code = back.searchParams.get('code');
  assert.ok(code, `a code at the redirect URI: ${back.href}`);
  const resp = await fetch(`${server.url}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  });
  const body = await resp.json();
  assert.equal(resp.status, 200, `token for ${login}: ${JSON.stringify(body)}`);
  return body.access_token;
}

// The claims of a JWT (its signature is the server's business; the stories read them).
export function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}
