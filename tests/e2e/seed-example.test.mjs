// The seed's example, walked in a real browser: Fabrikam's information worker
// invites Sally from Contoso to app Foo; Sally redeems with her Contoso account,
// consents, and - because Foo requires MFA - sets up MFA at Fabrikam (the
// resource tenant) before Foo shows her validated ID token claims.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  claimsAt, expectPage, inviteOnPage, openInvitation, password, path, proofUp, serverAndBrowser,
  signInWithPassword, story,
} from './lib.mjs';

const ctx = serverAndBrowser();

test('seed example: invited partner user proofs up at the resource tenant for Foo', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'seed-example.test.mjs', async (s) => {
    const sally = 'sally@contoso.example';
    const message = 'Welcome to the Foo project, Sally!';

    const iw = await s.page('information-worker');
    const link = await s.step('iw invites sally to Foo on the invite page', () =>
      inviteOnPage(iw, server, { email: sally, displayName: 'Sally Contoso', app: 'foo', message }));

    const guest = await s.page('sally');
    await s.step('sally opens the invitation from the outbox', async () => {
      await openInvitation(guest, server, sally, { expectedLink: link, message });
    });

    await s.step('sally signs in at her home tenant, contoso', async () => {
      await expectPage(guest, 'form#identify', 'the Contoso sign-in page');
      assert.match(path(guest), /^\/contoso\//, 'the redeem link sends sally to her home tenant');
      await signInWithPassword(guest, sally, password(server.credentials, 'contoso', sally));
    });

    await s.step('sally consents to Fabrikam', async () => {
      await expectPage(guest, 'form#consent', 'the consent page');
      assert.match(path(guest), /^\/fabrikam\//, 'consent is asked by the inviting tenant');
      const text = await guest.locator('main').innerText();
      assert.match(text, /Fabrikam/);
      assert.ok(text.includes(sally), 'the consent page shows the email Fabrikam will see');
      await guest.locator('form#consent #accept').click();
    });

    const enrolled = await s.step('Foo requires MFA: sally proofs up at Fabrikam', async () => {
      await expectPage(guest, 'code#totp-secret', 'the proof-up page for Foo');
      assert.match(await guest.locator('main').innerText(), /Fabrikam/);
      return proofUp(guest);
    });
    assert.equal(enrolled.codes.length, 10);

    await s.step('sally lands on Foo with MFA claims issued by Fabrikam', async () => {
      const claims = await claimsAt(guest, 'foo');
      assert.equal(claims.amr, 'fed otp mfa', JSON.stringify(claims));
      assert.equal(claims.acr, '2');
      assert.equal(claims.upn, 'sally_contoso.example#EXT#@fabrikam.example');
      assert.equal(claims.iss, `${server.url}/fabrikam/v2.0`, 'the token comes from the resource tenant');
      assert.equal(claims.idp, `${server.url}/contoso/v2.0`, 'the home identity provider is contoso');
      assert.equal(claims.email, sally);
    });
  });
});
