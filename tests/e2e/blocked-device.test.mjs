// Device-based conditional access for guests: the admin turns the report-only
// policy "Guests need a compliant device" On in the admin page; a guest who could
// use Bar a moment ago (on an unmanaged device) is now blocked, and the admin's
// sign-in log says which policy blocked them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  adminPage, adminRow, claimsAt, emailCode, expectPage, inviteOnPage, openInvitation, path, serverAndBrowser,
  story, submitForm,
} from './lib.mjs';

const ctx = serverAndBrowser();

const POLICY = 'Guests need a compliant device (report-only)';

test('admin turns the device policy on and a guest on an unmanaged device is blocked', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'blocked-device.test.mjs', async (s) => {
    const pat = 'pat@northwind.example';
    const upn = 'pat_northwind.example#EXT#@fabrikam.example';

    const iw = await s.page('information-worker');
    const link = await s.step('iw invites pat to Bar', () =>
      inviteOnPage(iw, server, { email: pat, displayName: 'Pat Northwind', app: 'bar', message: '' }));

    const guest = await s.page('pat');
    await s.step('pat redeems with an email code and uses Bar (report-only: allowed)', async () => {
      await openInvitation(guest, server, pat, { expectedLink: link });
      await submitForm(guest, 'email-otp-send');
      await expectPage(guest, 'form#email-otp', 'the email code page');
      await submitForm(guest, 'email-otp', { code: await emailCode(guest, server, pat) });
      await expectPage(guest, 'form#consent', 'the consent page');
      await guest.locator('form#consent #accept').click();
      const claims = await claimsAt(guest, 'bar');
      assert.equal(claims.upn, upn);
    });

    const admin = await s.page('admin');
    await s.step('the admin switches the device policy On', async () => {
      await adminPage(admin, server);
      const row = adminRow(admin, 'policies', POLICY);
      assert.equal(await row.count(), 1, `one row for "${POLICY}"`);
      assert.equal((await row.locator('td.state').innerText()).trim(), 'enabledForReportingButNotEnforced');
      await row.locator('form.policy-state select[name=state]').selectOption('enabled');
      await row.locator('form.policy-state button[type=submit]').click();
      await expectPage(admin, 'main#admin', 'the admin page after the change');
      assert.equal(path(admin), '/fabrikam/admin');
      assert.equal((await adminRow(admin, 'policies', POLICY).locator('td.state').innerText()).trim(), 'enabled');
      const other = adminRow(admin, 'policies', 'Require MFA for Foo');
      assert.equal((await other.locator('td.state').innerText()).trim(), 'enabled', 'the other policies are unchanged');
    });

    await s.step('pat opens Bar again and is blocked', async () => {
      const response = await guest.goto(`${server.url}/demo/bar/login`);
      await expectPage(guest, 'main#error', 'the error page');
      assert.equal(response.status(), 403, 'the error page is a 403');
      assert.equal(await guest.locator('main#error').getAttribute('data-error'), 'access_blocked',
        `blocked by conditional access at ${guest.url()}`);
      assert.match(path(guest), /^\/fabrikam\//, 'Fabrikam (the resource tenant) blocks');
      const text = await guest.locator('main#error').innerText();
      assert.match(text, /conditional access/i, 'the guest is told why in words');
      assert.ok(!text.includes('compliant device'), `the policy is named to admins only, not to the guest: ${text}`);
      assert.equal(await guest.locator('table#claims').count(), 0);
    });

    await s.step("the admin's sign-in log names the policy that blocked pat", async () => {
      await admin.reload();
      await expectPage(admin, 'main#admin');
      const rows = await admin.locator('section#sign-ins tbody tr').evaluateAll((trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
      const blocked = rows.find((r) => r[1] === upn && r[4] === 'access_blocked');
      assert.ok(blocked, `a blocked sign-in of ${upn} in the log:\n${rows.map((r) => r.join(' | ')).join('\n')}`);
      assert.equal(blocked[2], 'bar');
      assert.ok(blocked[6].includes(`${POLICY}: failure`), `why: ${blocked[6]}`);
    });
  });
});
