// The seed's "MFA reset for B2B collaboration users", done in the admin page:
// Sally sets up MFA at Fabrikam through Foo; the admin sees her method
// (an authenticator app) and resets it; on her next sign-in to Foo she is asked to
// proof up again instead of being challenged.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  adminPage, adminRow, claimsAt, expectPage, inviteOnPage, openInvitation, password, path, proofUp,
  serverAndBrowser, signInWithPassword, story, submitForm,
} from './lib.mjs';

const ctx = serverAndBrowser();

test('admin resets a guest\'s MFA and the guest proofs up again', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'mfa-reset.test.mjs', async (s) => {
    const sally = 'sally@contoso.example';
    const upn = 'sally_contoso.example#EXT#@fabrikam.example';
    const sallyPassword = password(server.credentials, 'contoso', sally);

    const iw = await s.page('information-worker');
    const link = await s.step('iw invites sally to Foo', () =>
      inviteOnPage(iw, server, { email: sally, displayName: 'Sally Contoso', app: 'foo', message: '' }));

    const first = await s.page('sally-first');
    const enrolled = await s.step('sally redeems, consents and proofs up through Foo', async () => {
      await openInvitation(first, server, sally, { expectedLink: link });
      await expectPage(first, 'form#identify', 'the Contoso sign-in page');
      assert.match(path(first), /^\/contoso\//);
      await signInWithPassword(first, sally, sallyPassword);
      await expectPage(first, 'form#consent', 'the consent page');
      await first.locator('form#consent #accept').click();
      const result = await proofUp(first);
      const claims = await claimsAt(first, 'foo');
      assert.equal(claims.amr, 'fed otp mfa');
      return result;
    });

    const admin = await s.page('admin');
    await s.step('the admin sees sally with her authenticator app and resets it', async () => {
      await adminPage(admin, server);
      const row = adminRow(admin, 'guests', upn);
      assert.equal(await row.count(), 1, `one guest row for ${upn}`);
      const cells = (await row.locator('th, td').allInnerTexts()).map((c) => c.trim());
      assert.equal(cells[1], 'Accepted', `state: ${cells.join(' | ')}`);
      assert.equal(cells[2], `${server.url}/contoso/v2.0`, 'home identity provider');
      assert.equal(cells[3], 'Authenticator app', 'MFA methods');
      await row.locator('form.mfa-reset button[type=submit]').click();
      await expectPage(admin, 'main#admin', 'the admin page after the reset');
      assert.equal(path(admin), '/fabrikam/admin');
      const after = adminRow(admin, 'guests', upn);
      assert.equal((await after.locator('td.methods').innerText()).trim(), 'None', 'no methods any more');
      assert.equal(await after.locator('form.mfa-reset').count(), 0, 'nothing left to reset');
    });

    const again = await s.page('sally-again');
    await s.step('sally signs in to Foo again and is asked to proof up, not challenged', async () => {
      await again.goto(`${server.url}/demo/foo/login`);
      await expectPage(again, 'form#identify', 'the Fabrikam sign-in page for Foo');
      assert.match(path(again), /^\/fabrikam\//);
      await submitForm(again, 'identify', { login: sally });
      await expectPage(again, 'form#identify', 'the Contoso sign-in page');
      assert.match(path(again), /^\/contoso\//, 'a guest from contoso is sent home to sign in');
      await signInWithPassword(again, sally, sallyPassword);
      await expectPage(again, 'code#totp-secret', 'the proof-up page (MFA was reset)');
      assert.match(path(again), /^\/fabrikam\//);
      assert.equal(await again.locator('form#totp-challenge').count(), 0, 'not the MFA challenge');
      assert.equal(await again.locator('form#totp-enroll').count(), 1);
      const secret = (await again.locator('code#totp-secret').innerText()).trim();
      assert.notEqual(secret, enrolled.secret, 'a new secret, not the reset one');
    });

    await s.step('sally sets up MFA again and is back in Foo', async () => {
      const redone = await proofUp(again);
      assert.ok(redone.codes.every((c) => !enrolled.codes.includes(c)), 'new recovery codes');
      const claims = await claimsAt(again, 'foo');
      assert.equal(claims.amr, 'fed otp mfa');
      assert.equal(claims.acr, '2');
      assert.equal(claims.upn, upn);
    });
  });
});
