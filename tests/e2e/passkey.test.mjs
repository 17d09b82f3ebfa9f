// Passkeys in a real browser (DESIGN.md §10): Chromium's CDP virtual authenticator
// answers navigator.credentials for static/passkey.js. The server runs with public_url
// http://localhost:PORT (a WebAuthn relying party needs a host name), so each story
// starts a server of its own on a port picked for it and is independent of the others.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import {
  LOCALHOST_ARGS, addVirtualAuthenticator, answerPasskey, authenticatorCredentials, chooseMethod, claimsAt,
  expectPage, gatehouseBinary, graph, graphToken, inviteOnPage, launchBrowser, openInvitation, password,
  path, proofUp, registerPasskey, signInWithPassword, startPasskeyGatehouse, stopGatehouse, story, submitForm, totp,
} from './lib.mjs';

const FILE = import.meta.filename ?? 'passkey.test.mjs';
const STORY_TIMEOUT_MS = 90_000;
const SALLY = 'sally@contoso.example';
const SALLY_UPN = 'sally_contoso.example#EXT#@fabrikam.example';

let browser;
before(async () => {
  browser = await launchBrowser(LOCALHOST_ARGS);
});
after(async () => {
  await browser?.close();
});

// One story on a server of its own.
function passkeyStory(name, body, options = {}) {
  test(name, { timeout: STORY_TIMEOUT_MS, ...options }, async () => {
    const server = await startPasskeyGatehouse();
    try {
      await story(browser, FILE, (s) => body(s, server));
    } catch (err) {
      err.message += `\n${server.output().slice(-4000)}`;
      throw err;
    } finally {
      await stopGatehouse(server);
    }
  });
}

// Every URL the browser context requests, to show that no authorization code reached
// the demo RP's callback (/demo/{app}/callback?code=…).
function recordRequests(page) {
  const urls = [];
  page.context().on('request', (r) => urls.push(r.url()));
  return urls;
}

function callbacks(urls) {
  return urls.filter((u) => /^\/demo\/[^/]+\/callback$/.test(new URL(u).pathname));
}

// The information worker invites Sally to Foo; Sally redeems at Contoso and consents,
// and Foo's MFA policy takes her to Fabrikam's proof-up: the method choice.
async function sallyToProofUp(s, server, guest) {
  const iw = await s.page('information-worker');
  const link = await s.step('iw invites sally to Foo', () =>
    inviteOnPage(iw, server, { email: SALLY, displayName: 'Sally Contoso', app: 'foo', message: '' }));
  await s.step('sally redeems at contoso and consents', async () => {
    await openInvitation(guest, server, SALLY, { expectedLink: link });
    await expectPage(guest, 'form#identify', 'the Contoso sign-in page');
    assert.match(path(guest), /^\/contoso\//);
    await signInWithPassword(guest, SALLY, password(server.credentials, 'contoso', SALLY));
    await expectPage(guest, 'form#consent', 'the consent page');
    await guest.locator('form#consent #accept').click();
  });
  await s.step('Foo requires MFA: fabrikam offers the method choice at proof-up', async () => {
    const form = await expectPage(guest, 'form#method-choice', 'the proof-up method choice');
    assert.match(path(guest), /^\/fabrikam\//, 'proof-up happens at the resource tenant');
    assert.equal(await form.locator('input[type=radio][name=method][value=totp]').count(), 1, 'TOTP offered');
    assert.equal(await form.locator('input[type=radio][name=method][value=passkey]').count(), 1, 'passkey offered');
    assert.equal(await guest.locator('code#totp-secret').count(), 0, 'no TOTP secret before choosing');
  });
}

// Sally with a passkey at Fabrikam: proof-up through Foo with the page's virtual
// authenticator. Returns the authenticator.
async function sallyWithPasskey(s, server, guest) {
  const auth = await addVirtualAuthenticator(guest);
  await sallyToProofUp(s, server, guest);
  await s.step('sally chooses a passkey, creates it and lands on Foo', async () => {
    await chooseMethod(guest, 'passkey');
    await registerPasskey(guest);
    const claims = await claimsAt(guest, 'foo');
    assert.equal(claims.amr, 'fed hwk user mfa', JSON.stringify(claims));
  });
  return auth;
}

// A later sign-in to Foo in the same tab (the authenticator stays, the cookies go):
// Fabrikam sends Sally home to Contoso for her password, then asks its second factor.
async function sallySignsInAgain(s, server, guest) {
  await s.step('sally signs in to Foo again (cookies cleared)', async () => {
    await guest.context().clearCookies();
    await guest.goto(`${server.url}/demo/foo/login`);
    await expectPage(guest, 'form#identify', 'the Fabrikam sign-in page for Foo');
    assert.match(path(guest), /^\/fabrikam\//);
    await submitForm(guest, 'identify', { login: SALLY });
    await expectPage(guest, 'form#identify', 'the Contoso sign-in page');
    assert.match(path(guest), /^\/contoso\//, 'a guest from contoso is sent home to sign in');
    await signInWithPassword(guest, SALLY, password(server.credentials, 'contoso', SALLY));
  });
}

async function expectPasskeyChallengeOnly(page) {
  await expectPage(page, 'form#passkey-challenge', 'the passkey challenge');
  assert.match(path(page), /^\/fabrikam\//, 'the challenge is the resource tenant\'s');
  assert.equal(await page.locator('form#method-choice').count(), 0, 'no method choice: only a passkey is held');
  assert.equal(await page.locator('form#totp-challenge').count(), 0, 'not the TOTP challenge');
  assert.equal(await page.locator('form#passkey-challenge button#passkey-start').count(), 1);
  assert.equal(await page.locator('form#passkey-challenge input[type=hidden][name=credential]').count(), 1);
}

// After a refused answer: the same page again with an error, no redirect, no code.
async function expectRefused(page, urls, what) {
  await expectPage(page, 'p.error[role=alert]', `the error line after ${what}`);
  assert.match(await page.locator('p.error[role=alert]').innerText(), /could not be verified/i, what);
  assert.equal(await page.locator('form#passkey-challenge').count(), 1, `${what}: still the passkey challenge`);
  assert.equal(path(page), '/fabrikam/login/passkey', `${what}: no redirect`);
  assert.equal(await page.locator('table#claims').count(), 0, `${what}: not signed in`);
  assert.deepEqual(callbacks(urls), [], `${what}: no authorization code reached the RP`);
}

passkeyStory('the seed\'s guest chooses a passkey at the resource tenant\'s proof-up', async (s, server) => {
  const guest = await s.page('sally');
  const auth = await addVirtualAuthenticator(guest);
  await sallyToProofUp(s, server, guest);

  await s.step('sally chooses a passkey', async () => {
    await chooseMethod(guest, 'passkey');
    const form = await expectPage(guest, 'form#passkey-register', 'the passkey registration page');
    assert.match(path(guest), /^\/fabrikam\//);
    assert.equal(await form.locator('input[type=hidden][name=credential]').inputValue(), '');
    assert.equal(await guest.locator('script[src="/static/passkey.js"]').count(), 1);
    const options = JSON.parse(await guest.locator('script#passkey-options').textContent());
    assert.equal(options.publicKey.rp.id, 'localhost', 'the RP id is the host of public_url');
    assert.deepEqual(await authenticatorCredentials(auth), [], 'no credential yet');
  });

  await s.step('the authenticator creates the passkey; ten recovery codes; continue', async () => {
    await registerPasskey(guest);
    const creds = await authenticatorCredentials(auth);
    assert.equal(creds.length, 1, 'one credential on the authenticator');
    assert.equal(creds[0].rpId, 'localhost');
    assert.equal(creds[0].isResidentCredential, true, 'a discoverable credential (a passkey)');
  });

  await s.step('sally lands on Foo with hwk and mfa from Fabrikam', async () => {
    const claims = await claimsAt(guest, 'foo');
    const amr = claims.amr.split(' ');
    assert.ok(amr.includes('hwk') && amr.includes('mfa'), `amr ${claims.amr}`);
    assert.equal(claims.amr, 'fed hwk user mfa', JSON.stringify(claims));
    assert.equal(claims.acr, '2');
    assert.equal(claims.upn, SALLY_UPN);
    assert.equal(claims.iss, `${server.url}/fabrikam/v2.0`, 'the token comes from the resource tenant');
    assert.equal(claims.idp, `${server.url}/contoso/v2.0`, 'the home identity provider is contoso');
  });
});

passkeyStory('a passkey holder is challenged with the passkey on the next sign-in', async (s, server) => {
  const guest = await s.page('sally');
  const auth = await sallyWithPasskey(s, server, guest);
  const [before] = await authenticatorCredentials(auth);
  await sallySignsInAgain(s, server, guest);

  await s.step('fabrikam asks for the passkey, and only that', () => expectPasskeyChallengeOnly(guest));

  await s.step('sally answers with the passkey and lands on Foo', async () => {
    await answerPasskey(guest);
    const claims = await claimsAt(guest, 'foo');
    assert.ok(claims.amr.split(' ').includes('hwk'), `amr ${claims.amr}`);
    assert.equal(claims.amr, 'fed hwk user mfa', JSON.stringify(claims));
    assert.equal(claims.acr, '2');
    assert.equal(claims.upn, SALLY_UPN);
    const [now] = await authenticatorCredentials(auth);
    assert.equal(now.credentialId, before.credentialId, 'the same credential');
    assert.ok(now.signCount > before.signCount, `the authenticator signed (count ${before.signCount} -> ${now.signCount})`);
  });
});

passkeyStory('a tampered assertion is refused; the next good one is accepted', async (s, server) => {
  const guest = await s.page('sally');
  const auth = await sallyWithPasskey(s, server, guest);
  const urls = recordRequests(guest);
  await sallySignsInAgain(s, server, guest);
  await s.step('the passkey challenge', () => expectPasskeyChallengeOnly(guest));

  await s.step('an assertion with a bogus signature is refused', async () => {
    await auth.cdp.send('WebAuthn.setResponseOverrideBits', {
      authenticatorId: auth.authenticatorId, isBogusSignature: true,
    });
    await answerPasskey(guest);
    await expectRefused(guest, urls, 'a bogus signature');
  });

  await s.step('with an honest authenticator again the next attempt signs in', async () => {
    await auth.cdp.send('WebAuthn.setResponseOverrideBits', {
      authenticatorId: auth.authenticatorId, isBogusSignature: false, isBadUV: false, isBadUP: false,
    });
    await answerPasskey(guest);
    const claims = await claimsAt(guest, 'foo');
    assert.equal(claims.amr, 'fed hwk user mfa', JSON.stringify(claims));
    assert.equal(callbacks(urls).length, 1, `one code for the RP: ${callbacks(urls).join(' ')}`);
  });
});

// A page on another origin: http://localhost:EVIL_PORT/ (same host, so the same RP id).
async function otherOrigin() {
  const srv = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Not gatehouse</title><main><h1>Totally the sign-in page</h1></main>');
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  return { url: `http://localhost:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

passkeyStory('an assertion made on another origin is refused', async (s, server) => {
  const guest = await s.page('sally');
  const auth = await sallyWithPasskey(s, server, guest);
  const urls = recordRequests(guest);
  await sallySignsInAgain(s, server, guest);
  await s.step('the passkey challenge', () => expectPasskeyChallengeOnly(guest));
  const evil = await otherOrigin();
  try {
    const phish = await s.page('other-origin');
    const credential = await s.step('another origin asks the same authenticator for an assertion', async () => {
      const options = await guest.locator('script#passkey-options').textContent();
      assert.equal(JSON.parse(options).publicKey.rpId, 'localhost');
      await addVirtualAuthenticator(phish, await authenticatorCredentials(auth));
      await phish.goto(`${evil.url}/`);
      assert.notEqual(new URL(phish.url()).origin, new URL(server.url).origin, 'a different origin');
      // As static/passkey.js does it, on the other origin.
      return phish.evaluate(async (text) => {
        function fromB64u(s) {
          s = s.replace(/-/g, '+').replace(/_/g, '/');
          while (s.length % 4) s += '=';
          const bin = atob(s);
          const out = new Uint8Array(bin.length);
          for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
          return out.buffer;
        }
        function toB64u(buf) {
          const bytes = new Uint8Array(buf);
          let bin = '';
          for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
          return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        }
        const pk = JSON.parse(text).publicKey;
        pk.challenge = fromB64u(pk.challenge);
        (pk.allowCredentials || []).forEach((c) => { c.id = fromB64u(c.id); });
        const cred = await navigator.credentials.get({ publicKey: pk });
        const r = cred.response;
        const out = { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {}, response: {} };
        out.response.clientDataJSON = toB64u(r.clientDataJSON);
        out.response.authenticatorData = toB64u(r.authenticatorData);
        out.response.signature = toB64u(r.signature);
        out.response.userHandle = r.userHandle ? toB64u(r.userHandle) : null;
        return {
          field: toB64u(new TextEncoder().encode(JSON.stringify(out))),
          clientData: JSON.parse(new TextDecoder().decode(r.clientDataJSON)),
        };
      }, options);
    });
    assert.equal(credential.clientData.origin, evil.url, 'the browser names the origin that asked');
    assert.equal(credential.clientData.type, 'webauthn.get');

    await s.step('the phished assertion, posted to gatehouse, is refused and issues nothing', async () => {
      await Promise.all([
        guest.waitForNavigation(),
        guest.evaluate((value) => {
          const form = document.getElementById('passkey-challenge');
          form.elements.credential.value = value;
          form.submit();
        }, credential.field),
      ]);
      await expectRefused(guest, urls, 'an assertion for another origin');
    });

    await s.step('the real page still signs in with the passkey', async () => {
      await answerPasskey(guest);
      const claims = await claimsAt(guest, 'foo');
      assert.equal(claims.amr, 'fed hwk user mfa');
    });
  } finally {
    await evil.close();
  }
});

passkeyStory('an MFA reset removes the passkey: the next sign-in proofs up again', async (s, server) => {
  const guest = await s.page('sally');
  const auth = await sallyWithPasskey(s, server, guest);

  await s.step('the admin resets sally\'s MFA with `gatehouse mfa reset --upn`', async () => {
    const { stdout } = await promisify(execFile)(gatehouseBinary(),
      ['mfa', 'reset', '--upn', SALLY_UPN, '--data-dir', server.dataDir, '--json'],
      { timeout: 30_000, env: { ...process.env, GATEHOUSE_SERVER: server.url } });
    const out = JSON.parse(stdout);
    assert.equal(out.userPrincipalName, SALLY_UPN);
    assert.equal(out.removed.length, 1, `one method removed (the passkey): ${stdout}`);
  });

  await sallySignsInAgain(s, server, guest);
  await s.step('fabrikam asks sally to set up MFA again, not for the old passkey', async () => {
    await expectPage(guest, 'form#method-choice', 'the proof-up method choice (MFA was reset)');
    assert.match(path(guest), /^\/fabrikam\//);
    assert.match(await guest.locator('main h1').innerText(), /Set up multi-factor authentication/);
    assert.equal(await guest.locator('form#passkey-challenge').count(), 0, 'not the passkey challenge');
    assert.equal(await guest.locator('form#totp-challenge').count(), 0, 'not the TOTP challenge');
  });

  await s.step('sally creates a new passkey and is back in Foo', async () => {
    await chooseMethod(guest, 'passkey');
    const options = JSON.parse(await guest.locator('script#passkey-options').textContent());
    assert.deepEqual(options.publicKey.excludeCredentials ?? [], [], 'the old passkey is no longer held');
    await registerPasskey(guest);
    const claims = await claimsAt(guest, 'foo');
    assert.equal(claims.amr, 'fed hwk user mfa');
    assert.ok((await authenticatorCredentials(auth)).length >= 1);
  });
});

// A member signs in to `app` with their password at Fabrikam, up to the MFA step.
async function memberToMfa(page, server, app, login) {
  await page.goto(`${server.url}/demo/${app}/login`);
  await expectPage(page, 'form#identify', `the Fabrikam sign-in page for ${app}`);
  assert.match(path(page), /^\/fabrikam\//);
  await signInWithPassword(page, login, password(server.credentials, 'fabrikam', login));
}

function amrOf(claims) {
  return claims.amr.split(' ');
}

passkeyStory('a member signs in with their passkey alone, from the identify page', async (s, server) => {
  const login = 'iw@fabrikam.example';
  const member = await s.page('member');
  const auth = await addVirtualAuthenticator(member);

  await s.step('the member proofs up with a passkey through Foo', async () => {
    await memberToMfa(member, server, 'foo', login);
    await chooseMethod(member, 'passkey');
    await registerPasskey(member);
    const claims = await claimsAt(member, 'foo');
    assert.equal(claims.amr, 'pwd hwk user mfa', JSON.stringify(claims));
    assert.equal((await authenticatorCredentials(auth)).length, 1);
  });

  const requests = [];
  member.context().on('request', (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  await s.step('later, signed out, the identify page offers a passkey sign-in', async () => {
    await member.context().clearCookies();
    await member.goto(`${server.url}/demo/foo/login`);
    await expectPage(member, 'form#identify', 'the Fabrikam sign-in page for Foo');
    assert.match(path(member), /^\/fabrikam\//);
    // DESIGN §6 names the button; the form is the one that holds it (the server renders
    // form#passwordless-signin, its own doc comment says form#passkey-signin).
    const form = await expectPage(member, 'form:has(button#passkey-signin)', 'the passwordless sign-in form');
    assert.equal(await form.getAttribute('method'), 'post');
    assert.equal(await form.locator('input[type=hidden][name=credential]').count(), 1, 'hidden field credential');
    assert.equal(await form.locator('button#passkey-signin').count(), 1);
    const options = JSON.parse(await member.locator('script#passkey-signin-options').textContent());
    assert.equal(options.publicKey.rpId, 'localhost');
    assert.equal(await member.locator('form#identify [name=login]').inputValue(), '', 'nothing typed');
  });

  await s.step('one click on the passkey button signs the member in, without a password', async () => {
    await member.locator('button#passkey-signin').click();
    const claims = await claimsAt(member, 'foo');
    const amr = amrOf(claims);
    for (const m of ['hwk', 'user', 'mfa']) assert.ok(amr.includes(m), `amr has ${m}: ${claims.amr}`);
    assert.ok(!amr.includes('pwd'), `no password in amr: ${claims.amr}`);
    assert.equal(claims.amr, 'hwk user mfa');
    assert.equal(claims.preferred_username, login);
    assert.equal(claims.acr, '2');
    const typed = requests.filter((r) => /^POST \/fabrikam\/login\/(identify|password)$/.test(r));
    assert.deepEqual(typed, [], 'neither the login nor a password was posted');
  });
});

const PHISHING_RESISTANT = '00000000-0000-0000-0000-000000000004';

passkeyStory('a phishing-resistant policy for Bar: TOTP is not enough, a passkey is added and then asked first', async (s, server) => {
  const login = 'admin@fabrikam.example';
  const admin = await s.page('bar-admin');
  const auth = await addVirtualAuthenticator(admin);
  const urls = recordRequests(admin);

  const { secret } = await s.step('the Bar admin holds only TOTP (proof-up through Foo)', async () => {
    await memberToMfa(admin, server, 'foo', login);
    await chooseMethod(admin, 'totp');
    const enrolled = await proofUp(admin);
    const claims = await claimsAt(admin, 'foo');
    assert.equal(claims.amr, 'pwd otp mfa', JSON.stringify(claims));
    return enrolled;
  });

  await s.step('the policy, report-only in the demo, is enabled through Graph', async () => {
    const token = await graphToken(server);
    const list = await graph(server, token, 'GET', 'identity/conditionalAccess/policies');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const policy = list.body.value.find((p) => p.displayName === 'Phishing-resistant MFA for Bar admins');
    assert.ok(policy, `the demo policy exists: ${list.body.value.map((p) => p.displayName).join(', ')}`);
    assert.equal(policy.state, 'enabledForReportingButNotEnforced', 'report-only by default');
    assert.equal(policy.grantControls.authenticationStrength.id, PHISHING_RESISTANT);
    const patched = await graph(server, token, 'PATCH', `identity/conditionalAccess/policies/${policy.id}`, { state: 'enabled' });
    assert.ok([200, 204].includes(patched.status), `PATCH: ${patched.status} ${JSON.stringify(patched.body)}`);
    const now = await graph(server, token, 'GET', `identity/conditionalAccess/policies/${policy.id}`);
    assert.equal(now.body.state, 'enabled');
  });

  await s.step('signing in to Bar, the TOTP code proves the account but is not enough', async () => {
    await admin.context().clearCookies();
    await memberToMfa(admin, server, 'bar', login);
    await expectPage(admin, 'form#totp-challenge', 'the TOTP challenge (the method held, to add a passkey)');
    assert.equal(await admin.locator('input[name=method][value=totp]').count(), 0);
    assert.match(await admin.locator('p#method-reason').innerText(), /passkey/i, 'the page says why');
    // The code of this 30 s step may be the one spent at enrolment (refused as a replay);
    // the next step's code is accepted (one step of clock skew), as a fast clock would send.
    await submitForm(admin, 'totp-challenge', { code: totp(secret, Date.now() / 1000 + 30) });
    await expectPage(admin, 'form#passkey-register', 'the passkey registration after the TOTP code');
    assert.match(path(admin), /^\/fabrikam\//);
    assert.deepEqual(callbacks(urls).filter((u) => u.includes('/demo/bar/')), [], 'TOTP alone issued nothing for Bar');
  });

  await s.step('the admin creates a passkey and lands on Bar with hwk', async () => {
    await admin.locator('form#passkey-register button#passkey-start').click();
    const claims = await claimsAt(admin, 'bar');
    assert.ok(amrOf(claims).includes('hwk'), `amr ${claims.amr}`);
    assert.ok(amrOf(claims).includes('mfa'), `amr ${claims.amr}`);
    assert.equal(claims.acr, '2');
    assert.equal(claims.preferred_username, login);
    assert.equal((await authenticatorCredentials(auth)).length, 1);
  });

  await s.step('holding both methods, the next sign-in to Bar goes straight to the passkey', async () => {
    await admin.context().clearCookies();
    await memberToMfa(admin, server, 'bar', login);
    await expectPage(admin, 'form#passkey-challenge', 'the passkey challenge (TOTP does not meet the strength)');
    assert.equal(await admin.locator('form#method-choice').count(), 0, 'no method choice');
    assert.equal(await admin.locator('input[name=method][value=totp]').count(), 0, 'TOTP not offered');
    assert.equal(await admin.locator('form#totp-challenge').count(), 0);
    await answerPasskey(admin);
    const claims = await claimsAt(admin, 'bar');
    assert.ok(amrOf(claims).includes('hwk'), `amr ${claims.amr}`);
    assert.ok(!amrOf(claims).includes('otp'), `no TOTP this time: ${claims.amr}`);
  });
});
