// Terms of use (DESIGN §12) in a real browser. Fabrikam requires guests to accept its terms
// for Foo (Graph agreement + a conditional access policy with grantControls.termsOfUse):
// sally@contoso redeems her invitation, proofs up TOTP (Foo requires MFA), accepts the
// terms and lands on Foo; her next sign-in is not asked again; once the re-accept period
// (PT1M, the shortest gatehouse allows) has passed, the terms are asked again. The admin
// page lists the agreement with its acceptance.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import {
  ARTIFACTS, adminPage, adminRow, claimsAt, expectPage, graph, graphToken, openInvitation, password, path, proofUp,
  serverAndBrowser, signInWithPassword, story,
} from './lib.mjs';

const ctx = serverAndBrowser();

const SALLY = 'sally@contoso.example';
const SALLY_UPN = 'sally_contoso.example#EXT#@fabrikam.example';
const TERMS_NAME = 'Fabrikam guest terms';
const TERMS_TEXT = 'Guests keep what they see in Foo confidential.\n\nFabrikam may end guest access at any time.';
const REACCEPT_SECS = 60;

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `terms-${name}.png`), fullPage: true });
}

// Which of the two the page shows first: the terms or Foo's claims.
async function termsOrFoo(page) {
  const terms = page.locator('form#terms');
  const claims = page.locator('table#claims');
  await terms.or(claims).first().waitFor();
  return (await terms.count()) > 0 ? 'terms' : 'foo';
}

async function acceptances(server, token, id) {
  const { status, body } = await graph(server, token, 'GET', `identityGovernance/termsOfUse/agreements/${id}/acceptances`);
  assert.equal(status, 200, JSON.stringify(body));
  return body.value;
}

test('Fabrikam requires terms of use for guests on Foo: accepted once, asked again after the period', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'terms.test.mjs', async (s) => {
    const fabrikam = await graphToken(server);

    const agreementId = await s.step('Fabrikam publishes terms of use and requires them of guests on Foo', async () => {
      const created = await graph(server, fabrikam, 'POST', 'identityGovernance/termsOfUse/agreements', {
        displayName: TERMS_NAME,
        isViewingBeforeAcceptanceRequired: true,
        userReacceptRequiredFrequency: 'PT1M',
        files: [{ fileName: 'guest-terms.txt', language: 'en', isDefault: true,
          fileData: { data: Buffer.from(TERMS_TEXT).toString('base64') } }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id;
      const policy = await graph(server, fabrikam, 'POST', 'identity/conditionalAccess/policies', {
        displayName: 'Guests accept the terms for Foo',
        state: 'enabled',
        conditions: { users: { includeUsers: ['GuestsOrExternalUsers'] }, applications: { includeApplications: ['foo'] } },
        grantControls: { operator: 'AND', builtInControls: [], termsOfUse: [id] },
      });
      assert.equal(policy.status, 201, JSON.stringify(policy.body));
      return id;
    });

    await s.step('Fabrikam invites sally to Foo', async () => {
      const { status, body } = await graph(server, fabrikam, 'POST', 'invitations', {
        invitedUserEmailAddress: SALLY,
        inviteRedirectUrl: `${server.url}/demo/foo/login`,
        sendInvitationMessage: true,
      });
      assert.equal(status, 201, JSON.stringify(body));
    });

    const guest = await s.page('sally');
    let acceptedAt;
    await s.step('sally redeems, proofs up, reads and accepts the terms, and lands on Foo', async () => {
      await openInvitation(guest, server, SALLY);
      await expectPage(guest, 'form#identify', 'the Contoso sign-in page');
      await signInWithPassword(guest, SALLY, password(server.credentials, 'contoso', SALLY));
      await expectPage(guest, 'form#consent', 'the redemption consent page');
      await guest.locator('form#consent #accept').click();
      await proofUp(guest); // "Require MFA for Foo": MFA comes before the terms
      await expectPage(guest, 'form#terms', 'the terms of use page after MFA');
      assert.match(path(guest), /^\/fabrikam\//, 'the resource tenant asks for its terms');
      const section = guest.locator('section.terms');
      assert.equal(await section.locator('h2').innerText(), TERMS_NAME);
      const shown = await section.locator('.terms-text').innerText();
      assert.match(shown, /keep what they see in Foo confidential/);
      assert.match(shown, /end guest access at any time/);
      assert.deepEqual(await acceptances(server, fabrikam, agreementId), [], 'nothing is recorded before she answers');
      await shot(guest, '1-terms');
      await guest.locator('form#terms #accept-terms').click();
      acceptedAt = Date.now();
      const claims = await claimsAt(guest, 'foo');
      assert.equal(claims.upn, SALLY_UPN, JSON.stringify(claims));
      assert.equal(claims.amr, 'fed otp mfa');
      await shot(guest, '2-on-foo');
      const list = await acceptances(server, fabrikam, agreementId);
      assert.equal(list.length, 1, JSON.stringify(list));
      assert.equal(list[0].userPrincipalName, SALLY_UPN);
      assert.equal(list[0].state, 'accepted');
    });

    await s.step('her next sign-in to Foo is not asked again', async () => {
      await guest.goto(`${server.url}/demo/foo/login`);
      assert.equal(await termsOrFoo(guest), 'foo', 'Foo, without the terms');
      assert.ok(Date.now() - acceptedAt < REACCEPT_SECS * 1000, 'still within the re-accept period');
    });

    await s.step('the admin page lists the agreement and its acceptance', async () => {
      const admin = await s.page('admin');
      await adminPage(admin, server);
      const row = adminRow(admin, 'terms-of-use', TERMS_NAME);
      assert.equal(await row.count(), 1, 'one row for the agreement');
      assert.equal((await row.locator('td.count').innerText()).trim(), '1');
      assert.match(await row.innerText(), /PT1M/);
    });

    await s.step('after the re-accept period sally is asked again, accepts and lands on Foo', async () => {
      const wait = acceptedAt + (REACCEPT_SECS + 2) * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
      const before = (await acceptances(server, fabrikam, agreementId))[0].recordedDateTime;
      await guest.goto(`${server.url}/demo/foo/login`);
      assert.equal(await termsOrFoo(guest), 'terms', 'the terms again, after PT1M');
      await shot(guest, '3-asked-again');
      await guest.locator('form#terms #accept-terms').click();
      const claims = await claimsAt(guest, 'foo');
      assert.equal(claims.upn, SALLY_UPN);
      const list = await acceptances(server, fabrikam, agreementId);
      assert.equal(list.length, 1, 'one entry per user: the latest acceptance');
      assert.notEqual(list[0].recordedDateTime, before, 'the new acceptance is recorded');
    });
  });
});
