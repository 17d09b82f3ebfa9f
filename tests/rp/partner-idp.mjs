// A partner's own OpenID Connect provider for the external-identity-provider tests
// (tests/api/external_idp.rs): unmodified oidc-provider (pinned in package.json, the version
// bench/peer uses), configured with one client (gatehouse) and one person.
//
//   PARTNER_REDIRECT_URI=… PARTNER_CLIENT_SECRET=… PARTNER_PASSWORD=… node partner-idp.mjs
//
// Listens on 127.0.0.1, a free port, and prints one JSON line: {"issuer": "http://127.0.0.1:PORT"}.
// The sign-in is two pages, as a real provider's: form#home-login (login + password), then
// form#partner-consent (the client asks for the person's profile and email). It exits when its
// standard input closes (the test that started it is gone).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const need = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
};
const redirectUri = need('PARTNER_REDIRECT_URI');
const clientSecret = need('PARTNER_CLIENT_SECRET');
const password = need('PARTNER_PASSWORD');
const clientId = process.env.PARTNER_CLIENT_ID ?? 'gatehouse-fabrikam';

const person = { id: 'c1f0a3e2-7d4b-4e8a-9b61-partner-pat', login: 'pat@partner.example', name: 'Pat Partner' };
const key = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  alg: 'ES256',
  use: 'sig',
  kid: randomBytes(9).toString('base64url'),
};

const server = http.createServer();
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [key] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  scopes: ['openid', 'profile', 'email'],
  claims: { openid: ['sub'], profile: ['name'], email: ['email', 'email_verified'] },
  // The relying party reads the person's email from the ID token.
  conformIdTokenClaims: false,
  async findAccount(_ctx, sub) {
    if (sub !== person.id) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, name: person.name, email: person.login, email_verified: true }),
    };
  },
  features: { devInteractions: { enabled: false } },
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
const page = (res, status, html) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><title>Partner sign-in</title>${html}`);
};

async function interaction(req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const action = `/interaction/${esc(details.uid)}`;
    if (details.prompt.name === 'login') {
      if (req.method === 'GET') {
        page(res, 200, `<form id="home-login" method="post" action="${action}">
  <input name="login" value="${esc(details.params.login_hint ?? '')}"><input type="password" name="password">
  <button>Sign in</button></form>`);
        return;
      }
      const form = await readForm(req);
      if (form.get('login') !== person.login || form.get('password') !== password) {
        page(res, 401, '<p id="partner-error">Wrong login or password.</p>');
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: person.id } }, { mergeWithLastSubmission: false });
      return;
    }
    // consent
    if (req.method === 'GET') {
      page(res, 200, `<form id="partner-consent" method="post" action="${action}">
  <p>${esc(details.params.client_id)} asks for: ${esc(details.params.scope)}</p>
  <input type="hidden" name="decision" value="allow"><button>Allow</button></form>`);
      return;
    }
    const { prompt, params, session } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(
      req,
      res,
      { consent: details.grantId ? {} : { grantId } },
      { mergeWithLastSubmission: true },
    );
  } catch (e) {
    page(res, 400, `<p id="partner-error">${esc(e?.message ?? e)}</p>`);
  }
}

server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) interaction(req, res);
  else op(req, res);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
console.log(JSON.stringify({ issuer }));
