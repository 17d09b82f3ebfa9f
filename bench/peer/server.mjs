// The comparison peer for bench/run: oidc-provider (pinned in package.json) configured as
// closely to gatehouse's demo tenant as it allows. See docs/benchmarks.md ("The peer").
//
//   node server.mjs CREDENTIALS_OUT.json
//
// Listens on 127.0.0.1 (port 0 = a free port; PEER_PORT overrides), prints
// `peer listening on http://127.0.0.1:PORT` and writes CREDENTIALS_OUT.json in the shape of
// gatehouse's demo-credentials.json, so the load generators drive both the same way.
//
// PEER_WORKERS=N (default 1) runs N processes with node:cluster sharing the port and the same
// keys, clients and user. Each has its own memory, so only stateless requests (discovery, JWKS,
// client_credentials JWTs) work across them: bench/run uses it for those cases only.
//
// State lives in memory, in oidc-provider's own MemoryAdapter, but over an unbounded Map: the
// default storage behind it is an LRU of 1,000 entries, which under load evicts live grants and
// refresh tokens (refresh chains then fail with invalid_grant). Nothing is persisted or fsynced
// (gatehouse writes every code, grant and refresh rotation to sled and flushes it to disk).
import cluster from 'node:cluster';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';

import argon2 from 'argon2';
import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const out = process.argv[2];
if (!out) {
  console.error('usage: node server.mjs CREDENTIALS_OUT.json');
  process.exit(2);
}

// The same argon2id cost as gatehouse's defaults (OWASP minimum), overridable the same way.
const ARGON2 = {
  type: argon2.argon2id,
  memoryCost: Number(process.env.GATEHOUSE__ARGON2__MEMORY_KIB ?? 19456),
  timeCost: Number(process.env.GATEHOUSE__ARGON2__ITERATIONS ?? 2),
  parallelism: Number(process.env.GATEHOUSE__ARGON2__PARALLELISM ?? 1),
};

const secret = () => randomBytes(32).toString('base64url');
const WORKERS = Math.max(1, Number(process.env.PEER_WORKERS ?? 1));

// Secrets, keys and the user: made once (by the cluster primary), shared by every worker.
async function material() {
  const password = secret();
  // ES256 signs (first key of its alg); an RS256 key is published too, as gatehouse's JWKS has both.
  const jwk = (type, opts, alg) => ({
    ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }),
    alg,
    use: 'sig',
    kid: randomBytes(9).toString('base64url'),
  });
  return {
    user: { login: 'iw@fabrikam.example', password, id: 'b0a3b7a2-5b8e-4f55-9f0e-1a2b3c4d5e6f', name: 'Information Worker' },
    userHash: await argon2.hash(password, ARGON2),
    dummyHash: await argon2.hash(secret(), ARGON2),
    pairwiseKey: secret(),
    cookieKey: secret(),
    keys: [jwk('ec', { namedCurve: 'P-256' }, 'ES256'), jwk('rsa', { modulusLength: 2048 }, 'RS256')],
    rp: { client_id: 'test-rp', client_secret: secret(), redirect_uris: ['http://127.0.0.1/callback'] },
    admin: { client_id: 'gatehouse-admin', client_secret: secret() },
  };
}

const writeCredentials = (m, url) =>
  writeFileSync(
    out,
    JSON.stringify({
      url,
      users: [{ tenant: 'fabrikam', login: m.user.login, password: m.user.password }],
      clients: [{ tenant: 'fabrikam', ...m.rp }],
      admin: { tenant: 'fabrikam', ...m.admin },
    }),
    { mode: 0o600 },
  );

if (WORKERS > 1 && cluster.isPrimary) {
  const m = await material();
  let announced = false;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork({ PEER_MATERIAL: JSON.stringify(m) }).on('message', (msg) => {
      if (msg?.listening && !announced) {
        announced = true;
        writeCredentials(m, msg.listening);
        console.log(`peer listening on ${msg.listening} (${WORKERS} processes)`);
      }
    });
  }
  cluster.on('exit', () => process.exit(1));
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
      process.exit(0);
    });
  }
} else {
  await serve(process.env.PEER_MATERIAL ? JSON.parse(process.env.PEER_MATERIAL) : await material());
}

async function serve(m) {
  const { user, rp, admin } = m;
  const accounts = new Map([[user.login, { ...user, hash: m.userHash }]]);
  const byId = new Map([[user.id, accounts.get(user.login)]]);
  const dummyHash = m.dummyHash;
  const pairwiseKey = m.pairwiseKey;
  const keys = m.keys;
  const GRAPH = 'urn:peer:graph';

  // The get/set/delete the MemoryAdapter expects, with expiry, without a size bound.
  class Unbounded {
    #m = new Map();
    get(key) {
      const e = this.#m.get(key);
      if (e && e.expiry !== undefined && e.expiry <= Date.now()) {
        this.#m.delete(key);
        return undefined;
      }
      return e?.value;
    }
    set(key, value, { maxAge } = {}) {
      const expiry = typeof maxAge === 'number' && Number.isFinite(maxAge) ? Date.now() + maxAge : undefined;
      this.#m.set(key, { value, expiry });
      return this;
    }
    has(key) {
      return this.get(key) !== undefined;
    }
    delete(key) {
      return this.#m.delete(key);
    }
  }
  const storage = new Unbounded();

  const server = http.createServer();
  await new Promise((ok) => server.listen(Number(process.env.PEER_PORT ?? 0), '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(url, {
    adapter: (model) => new MemoryAdapter(model, storage),
    clients: [
      {
        ...rp,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        subject_type: 'pairwise',
      },
      {
        ...admin,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    clientDefaults: { id_token_signed_response_alg: 'ES256' },
    jwks: { keys },
    cookies: { keys: [m.cookieKey] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
    subjectTypes: ['public', 'pairwise'],
    pairwiseIdentifier: async (_ctx, accountId, client) =>
      createHmac('sha256', pairwiseKey).update(`${accountId}\0${client.sectorIdentifier}`).digest('base64url'),
    async findAccount(_ctx, sub) {
      const a = byId.get(sub);
      if (!a) return undefined;
      return {
        accountId: sub,
        claims: async () => ({
          sub,
          name: a.name,
          preferred_username: a.login,
          email: a.login,
          email_verified: true,
        }),
      };
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      // client_credentials tokens are ES256 JWTs for an API (as gatehouse's app tokens are);
      // user access tokens stay opaque, which oidc-provider's userinfo requires.
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, _client, oneOf) =>
          oneOf ?? (ctx.oidc.params?.grant_type === 'client_credentials' ? GRAPH : undefined),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (_ctx, resource) => {
          if (resource !== GRAPH) throw new Provider.errors.InvalidTarget();
          return { scope: 'graph', audience: GRAPH, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } };
        },
      },
    },
    // gatehouse's token lifetimes.
    ttl: {
      AccessToken: 3600,
      ClientCredentials: 3600,
      IdToken: 3600,
      AuthorizationCode: 60,
      RefreshToken: 14 * 86400,
      Grant: 90 * 86400,
      Session: 12 * 3600,
      Interaction: 15 * 60,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.proxy = false;
  const op = provider.callback();

  const readForm = (req) =>
    new Promise((ok, fail) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => {
        body += c;
        if (body.length > 64 * 1024) fail(new Error('body too large'));
      });
      req.on('end', () => ok(new URLSearchParams(body)));
      req.on('error', fail);
    });

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  // A minimal interaction: one form (login + password), argon2id verification with
  // gatehouse's parameters, then login and consent (a Grant for the requested scopes) at once.
  async function interaction(req, res) {
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(`<!doctype html><title>Sign in</title><form id="password" method="post" action="/interaction/${esc(details.uid)}">
  <input name="login" value="${esc(details.params.login_hint ?? '')}"><input type="password" name="password"><button>Sign in</button></form>`);
        return;
      }
      const form = await readForm(req);
      const account = accounts.get(form.get('login') ?? '');
      const ok = await argon2.verify(account?.hash ?? dummyHash, form.get('password') ?? '');
      if (!account || !ok) {
        res.writeHead(401, { 'content-type': 'text/plain' });
        res.end('wrong login or password');
        return;
      }
      const grant = new provider.Grant({ accountId: account.id, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope ?? 'openid'));
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: account.id }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(String(e?.message ?? e));
    }
  }

  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res);
    } else {
      op(req, res);
    }
  });

  if (cluster.isWorker) {
    process.send({ listening: url });
  } else {
    writeCredentials(m, url);
    console.log(`peer listening on ${url}`);
  }
}
