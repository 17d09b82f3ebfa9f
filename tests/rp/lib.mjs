// Shared helpers for black-box relying-party tests against gatehouse:
// starting a demo server, and driving its server-rendered sign-in pages
// the way a browser would.

import { startGatehouse as start, stopGatehouse } from '../lib/gatehouse-server.mjs';

export { findUser, gatehouseBinary } from '../lib/gatehouse-server.mjs';

const REQUEST_TIMEOUT_MS = 15_000;

// Starts `gatehouse serve --demo` on an ephemeral loopback port with a fresh
// data directory. Resolves to { url, dataDir, credentials, child, output() }.
export function startGatehouse() {
  return start({ prefix: 'gatehouse-rp-' });
}

// Stops one server (or every server started so far) and removes its data directory.
export const stop = stopGatehouse;

export function findClient(credentials, tenant, clientId) {
  const c = credentials.clients.find((x) => x.tenant === tenant && x.client_id === clientId);
  if (!c) throw new Error(`demo-credentials.json has no client ${clientId} in tenant ${tenant}`);
  return c;
}

// ---------------------------------------------------------------------------
// A minimal cookie jar: name/value pairs keyed by name and path.

export class CookieJar {
  #cookies = new Map(); // `${path}\n${name}` -> { name, value, path }

  store(response, requestUrl) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = defaultCookiePath(new URL(requestUrl).pathname);
      let expired = false;
      for (const attr of attrs) {
        const [k, ...rest] = attr.split('=');
        const key = k.trim().toLowerCase();
        const v = rest.join('=').trim();
        if (key === 'path' && v.startsWith('/')) path = v;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) < Date.now()) expired = true;
      }
      const key = `${path}\n${name}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path });
    }
  }

  header(requestUrl) {
    const reqPath = new URL(requestUrl).pathname;
    const matching = [...this.#cookies.values()]
      .filter((c) => pathMatches(reqPath, c.path))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map((c) => `${c.name}=${c.value}`).join('; ');
  }

  names() {
    return [...this.#cookies.values()].map((c) => c.name);
  }
}

function defaultCookiePath(requestPath) {
  const i = requestPath.lastIndexOf('/');
  return i <= 0 ? '/' : requestPath.slice(0, i);
}

function pathMatches(requestPath, cookiePath) {
  if (requestPath === cookiePath) return true;
  if (!requestPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/';
}

// ---------------------------------------------------------------------------
// Regex-based HTML form extraction, enough for server-rendered pages.

export function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|quot|apos|lt|gt);/gi, (_, ent) => {
    const e = ent.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>' }[e];
  });
}

export function parseAttributes(tag) {
  const attrs = {};
  const re = /([^\s"'<>\/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  // Skip the tag name itself.
  const body = tag.replace(/^<\s*[a-z0-9]+/i, '').replace(/\/?>$/, '');
  for (const m of body.matchAll(re)) {
    const value = m[2] ?? m[3] ?? m[4] ?? '';
    attrs[m[1].toLowerCase()] = unescapeHtml(value);
  }
  return attrs;
}

export function formIds(html) {
  return [...html.matchAll(/<form\b[^>]*>/gi)].map((m) => parseAttributes(m[0]).id).filter(Boolean);
}

// Finds <form id="..."> and returns { action, method, inputs, fields } where
// `inputs` lists every <input> (name, type, value) and `fields` holds what a
// browser would submit before the user types anything.
export function findForm(html, id) {
  for (const m of html.matchAll(/<form\b[^>]*>/gi)) {
    const attrs = parseAttributes(m[0]);
    if (attrs.id !== id) continue;
    const start = m.index + m[0].length;
    const end = html.indexOf('</form', start);
    const inner = html.slice(start, end === -1 ? undefined : end);

    const inputs = [...inner.matchAll(/<input\b[^>]*>/gi)].map((t) => {
      const a = parseAttributes(t[0]);
      return { name: a.name, type: (a.type || 'text').toLowerCase(), value: a.value ?? '', checked: 'checked' in a };
    });

    const fields = new URLSearchParams();
    for (const input of inputs) {
      if (!input.name) continue;
      if (['submit', 'button', 'image', 'reset', 'file'].includes(input.type)) continue;
      if (['checkbox', 'radio'].includes(input.type) && !input.checked) continue;
      fields.append(input.name, input.value);
    }
    // Submitting with Enter includes the form's default (first) submit button
    // when it has a name.
    const button = inner.match(/<button\b[^>]*>|<input\b[^>]*type\s*=\s*["']?submit[^>]*>/i);
    if (button) {
      const b = parseAttributes(button[0]);
      if (b.name && (b.type ?? 'submit').toLowerCase() === 'submit') fields.append(b.name, b.value ?? '');
    }

    return {
      action: attrs.action ?? '',
      method: (attrs.method || 'get').toLowerCase(),
      inputs,
      fields,
    };
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// A tiny "browser": fetch with manual redirects and a cookie jar.

export class Browser {
  constructor() {
    this.jar = new CookieJar();
    this.history = []; // "METHOD url -> status" lines, for error messages
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { accept: 'text/html' };
    const cookie = this.jar.header(url);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = form.toString();
    }
    const res = await fetch(url, {
      method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    this.jar.store(res, url);
    this.history.push(`${method} ${url} -> ${res.status}${res.headers.has('location') ? ` (Location: ${res.headers.get('location')})` : ''}`);
    return res;
  }

  async submit(pageUrl, form, values) {
    const fields = new URLSearchParams(form.fields);
    for (const [k, v] of Object.entries(values)) fields.set(k, v);
    const target = new URL(form.action || pageUrl, pageUrl);
    if (form.method === 'post') return [target, await this.request(target.href, { method: 'POST', form: fields })];
    target.search = fields.toString();
    return [target, await this.request(target.href)];
  }
}

// Walks from an authorization URL through the identify and password pages
// until the server redirects to `redirectUri`; returns that callback URL.
export async function signIn(authorizationUrl, redirectUri, { login, password }, browser = new Browser()) {
  const callback = new URL(redirectUri);
  const submitted = new Set();
  let url = new URL(authorizationUrl);
  let res = await browser.request(url.href);

  for (let step = 0; step < 20; step++) {
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (!location) throw new Error(`redirect without Location\n${browser.history.join('\n')}`);
      const next = new URL(location, url);
      if (next.origin === callback.origin && next.pathname === callback.pathname) return next;
      url = next;
      res = await browser.request(url.href);
      continue;
    }

    const html = await res.text();
    if (res.status !== 200) {
      throw new Error(`unexpected HTTP ${res.status} at ${url}\n${browser.history.join('\n')}\n${html.slice(0, 2000)}`);
    }

    let formId;
    let values;
    if (findForm(html, 'identify')) {
      formId = 'identify';
      values = { login };
    } else if (findForm(html, 'password')) {
      formId = 'password';
      values = { password };
    } else {
      throw new Error(`sign-in page at ${url} has no known form (forms: ${formIds(html).join(', ') || 'none'})\n` +
        `${browser.history.join('\n')}\n${html.slice(0, 2000)}`);
    }
    // Seeing the same form twice means the server rejected the submission.
    if (submitted.has(formId)) {
      throw new Error(`form "${formId}" was shown again after submitting it at ${url}\n` +
        `${browser.history.join('\n')}\n${html.slice(0, 2000)}`);
    }
    submitted.add(formId);
    [url, res] = await browser.submit(url, findForm(html, formId), values);
  }
  throw new Error(`sign-in did not reach ${redirectUri} within 20 steps\n${browser.history.join('\n')}`);
}
