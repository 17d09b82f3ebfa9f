// Black-box test: the unmodified openid-client library acting as a relying
// party against a freshly started `gatehouse serve --demo`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';

import { findClient, findUser, signIn, startGatehouse, stop } from './lib.mjs';

const TENANT = 'fabrikam';
const CLIENT_ID = 'test-rp';
const USER_LOGIN = 'iw@fabrikam.example';
// Registered as http://127.0.0.1/callback; loopback redirect URIs match on any
// port (RFC 8252). Nothing listens on port 9, we only read the Location header.
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

describe('openid-client against gatehouse', () => {
  let server;
  let issuer;
  let secret;
  let user;

  before(async () => {
    server = await startGatehouse();
    issuer = `${server.url}/${TENANT}/v2.0`;
    secret = findClient(server.credentials, TENANT, CLIENT_ID).client_secret;
    user = findUser(server.credentials, TENANT, USER_LOGIN);
  });

  after(async () => {
    await stop(server);
  });

  // Discovers the issuer, recording every request openid-client sends so the
  // tests can check how the client authenticated.
  async function discover(clientAuthentication) {
    const requests = [];
    const config = await client.discovery(new URL(issuer), CLIENT_ID, secret, clientAuthentication, {
      execute: [client.allowInsecureRequests],
      [client.customFetch]: (url, options) => {
        requests.push({ url, ...options });
        return fetch(url, options);
      },
    });
    return { config, requests };
  }

  async function codeFlow(config, scope) {
    const pkceCodeVerifier = client.randomPKCECodeVerifier();
    const codeChallenge = await client.calculatePKCECodeChallenge(pkceCodeVerifier);
    const expectedState = client.randomState();
    const expectedNonce = client.randomNonce();

    const authorizationUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope,
      code_challenge: codeChallenge,
      code_challenge_method: 'S256',
      state: expectedState,
      nonce: expectedNonce,
    });

    const callbackUrl = await signIn(authorizationUrl, REDIRECT_URI, { login: user.login, password: user.password });
    assert.ok(callbackUrl.searchParams.get('code'), `callback has no code: ${callbackUrl}`);

    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier,
      expectedState,
      expectedNonce,
    });
    return { tokens, expectedNonce };
  }

  function tokenRequests(config, requests) {
    const tokenEndpoint = new URL(config.serverMetadata().token_endpoint).href;
    const found = requests.filter((r) => new URL(r.url).href === tokenEndpoint);
    assert.ok(found.length > 0, 'openid-client sent a token request');
    return found;
  }

  async function assertInvalidGrant(promise, message) {
    await assert.rejects(promise, (err) => {
      assert.ok(err instanceof client.ResponseBodyError, `${message}: expected ResponseBodyError, got ${err}`);
      assert.equal(err.error, 'invalid_grant', message);
      return true;
    }, message);
  }

  test('discovery', async () => {
    const { config } = await discover();
    const meta = config.serverMetadata();

    assert.equal(meta.issuer, issuer);
    assert.ok(meta.code_challenge_methods_supported?.includes('S256'), 'S256 PKCE supported');
    assert.ok(meta.supportsPKCE('S256'));
    assert.ok(meta.id_token_signing_alg_values_supported?.includes('ES256'), 'ES256 ID tokens supported');
    assert.ok(meta.response_types_supported?.includes('code'), 'code response type supported');
    for (const endpoint of [
      'authorization_endpoint',
      'jwks_uri',
      'token_endpoint',
      'userinfo_endpoint',
      'revocation_endpoint',
      'introspection_endpoint',
      'end_session_endpoint',
    ]) {
      assert.ok(meta[endpoint], `${endpoint} present`);
      assert.doesNotThrow(() => new URL(meta[endpoint]), `${endpoint} is a URL`);
    }
  });

  test('JWKS', async () => {
    const { config } = await discover();
    const res = await fetch(config.serverMetadata().jwks_uri);
    assert.equal(res.status, 200);
    const { keys } = await res.json();
    assert.ok(Array.isArray(keys) && keys.length > 0, 'JWKS has keys');

    const kids = new Set();
    for (const key of keys) {
      assert.ok(key.kid, 'key has kid');
      assert.ok(!kids.has(key.kid), `kid ${key.kid} is unique`);
      kids.add(key.kid);
      assert.ok(key.kty, `key ${key.kid} has kty`);
      assert.ok(key.alg, `key ${key.kid} has alg`);
      assert.equal(key.use, 'sig', `key ${key.kid} use`);
      assert.equal(key.d, undefined, `key ${key.kid} must not expose private material`);
    }

    const ecKeys = keys.filter((k) => k.kty === 'EC');
    assert.ok(ecKeys.some((k) => k.crv === 'P-256' && k.x && k.y), 'at least one EC P-256 key with x and y');
    for (const key of ecKeys) {
      const imported = await crypto.subtle.importKey('jwk', key, { name: 'ECDSA', namedCurve: key.crv }, true, ['verify']);
      assert.equal(imported.type, 'public');
    }
  });

  test('authorization code flow with PKCE, client_secret_basic', async () => {
    // openid-client v6 defaults to client_secret_post, so ask for basic explicitly.
    const { config, requests } = await discover(client.ClientSecretBasic(secret));

    const { tokens, expectedNonce } = await codeFlow(config, 'openid profile email offline_access');

    const [tokenRequest] = tokenRequests(config, requests);
    assert.match(tokenRequest.headers.authorization ?? '', /^Basic /, 'token request used client_secret_basic');
    assert.equal(new URLSearchParams(tokenRequest.body).get('client_secret'), null, 'no secret in the body');

    assert.ok(tokens.access_token, 'access_token');
    assert.ok(tokens.refresh_token, 'refresh_token for offline_access');
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');

    const claims = tokens.claims();
    assert.ok(claims, 'id_token returned');
    assert.ok(claims.sub, 'sub');
    assert.equal(claims.aud, CLIENT_ID);
    assert.equal(claims.iss, issuer);
    assert.equal(claims.nonce, expectedNonce);
    assert.ok(Array.isArray(claims.amr) && claims.amr.includes('pwd'), `amr includes pwd: ${JSON.stringify(claims.amr)}`);
    assert.equal(claims.acr, '1');
    assert.equal(claims.email, USER_LOGIN);
    assert.ok(claims.tid, 'tid');
    assert.ok(claims.oid, 'oid');
    assert.equal(typeof claims.auth_time, 'number');

    const idTokenHeader = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url').toString());
    assert.ok(config.serverMetadata().id_token_signing_alg_values_supported.includes(idTokenHeader.alg));
    assert.ok(idTokenHeader.kid, 'id_token header has kid');

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    assert.equal(userinfo.sub, claims.sub);
    assert.equal(userinfo.email, USER_LOGIN);

    // Refresh token rotation with reuse detection.
    const oldRefresh = tokens.refresh_token;
    const refreshed = await client.refreshTokenGrant(config, oldRefresh);
    assert.ok(refreshed.access_token, 'refreshed access_token');
    assert.ok(refreshed.refresh_token, 'rotated refresh_token');
    assert.notEqual(refreshed.refresh_token, oldRefresh);

    await assertInvalidGrant(client.refreshTokenGrant(config, oldRefresh), 'reusing the old refresh token');
    await assertInvalidGrant(client.refreshTokenGrant(config, refreshed.refresh_token),
      'the new refresh token after reuse was detected (family revoked)');

    // A new sign-in (fresh cookie jar), then introspection and revocation.
    const { tokens: second } = await codeFlow(config, 'openid profile email offline_access');
    const introspection = await client.tokenIntrospection(config, second.access_token);
    assert.equal(introspection.active, true);
    // gatehouse's introspection always names the subject and the client (RFC 7662 §2.2).
    assert.equal(introspection.sub, second.claims().sub, 'introspection sub');
    assert.equal(introspection.client_id, CLIENT_ID, 'introspection client_id');

    await client.tokenRevocation(config, second.refresh_token);
    await assertInvalidGrant(client.refreshTokenGrant(config, second.refresh_token), 'refreshing with a revoked token');
    const revoked = await client.tokenIntrospection(config, second.refresh_token);
    assert.equal(revoked.active, false, 'revoked refresh token introspects as inactive');
  });

  test('authorization code flow with PKCE, client_secret_post', async () => {
    const { config, requests } = await discover(client.ClientSecretPost(secret));

    const { tokens, expectedNonce } = await codeFlow(config, 'openid email');

    const [tokenRequest] = tokenRequests(config, requests);
    const body = new URLSearchParams(tokenRequest.body);
    assert.equal(tokenRequest.headers.authorization, undefined, 'no Authorization header');
    assert.equal(body.get('client_id'), CLIENT_ID);
    assert.equal(body.get('client_secret'), secret);

    assert.ok(tokens.access_token, 'access_token');
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    const claims = tokens.claims();
    assert.equal(claims.aud, CLIENT_ID);
    assert.equal(claims.nonce, expectedNonce);
    assert.equal(claims.email, USER_LOGIN);
  });
});
