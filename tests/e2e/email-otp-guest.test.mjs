// A guest whose address no identity provider knows (northwind.example) redeems
// with a one-time code sent by email, consents, and signs in to app Bar (no MFA
// policy): the token says the guest proved an email code (amr otp, idp mail).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  claimsAt, emailCode, expectPage, inviteOnPage, openInvitation, path, serverAndBrowser, story, submitForm,
} from './lib.mjs';

const ctx = serverAndBrowser();

test('email one-time passcode guest redeems and signs in to Bar', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'email-otp-guest.test.mjs', async (s) => {
    const pat = 'pat@northwind.example';

    const iw = await s.page('information-worker');
    const link = await s.step('iw invites pat to Bar on the invite page', () =>
      inviteOnPage(iw, server, { email: pat, displayName: 'Pat Northwind', app: 'bar', message: 'See you in Bar.' }));

    const guest = await s.page('pat');
    await s.step('pat opens the invitation from the outbox', () =>
      openInvitation(guest, server, pat, { expectedLink: link }));

    await s.step('pat proves the email address with the emailed code', async () => {
      await expectPage(guest, 'form#email-otp-send', 'the send-code page');
      assert.match(path(guest), /^\/fabrikam\//, 'Fabrikam itself sends the code');
      await submitForm(guest, 'email-otp-send');
      await expectPage(guest, 'form#email-otp', 'the email code page');
      assert.ok((await guest.locator('main').innerText()).includes(pat), 'the page names the address the code went to');
      const code = await emailCode(guest, server, pat);
      await submitForm(guest, 'email-otp', { code });
    });

    await s.step('pat consents to Fabrikam', async () => {
      await expectPage(guest, 'form#consent', 'the consent page');
      assert.ok((await guest.locator('main').innerText()).includes(pat));
      await guest.locator('form#consent #accept').click();
    });

    await s.step('pat lands on Bar with email-code claims', async () => {
      const claims = await claimsAt(guest, 'bar');
      assert.equal(claims.amr, 'otp', JSON.stringify(claims));
      assert.equal(claims.idp, 'mail');
      assert.equal(claims.acr, '1', 'Bar needs no MFA');
      assert.equal(claims.upn, 'pat_northwind.example#EXT#@fabrikam.example');
      assert.equal(claims.email, pat);
      assert.equal(claims.iss, `${server.url}/fabrikam/v2.0`);
    });
  });
});
