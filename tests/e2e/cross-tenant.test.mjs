// Cross-tenant access settings (DESIGN §13) in a real browser. Fabrikam (the resource
// tenant) blocks inbound B2B collaboration from Contoso through Graph
// crossTenantAccessPolicy/partners: sally@contoso's sign-in stops on cross_tenant_blocked
// and no code reaches Foo. Fabrikam allows Contoso again and requires a compliant device of
// guests on Foo; Contoso's admin marks sally's device managed and compliant (Graph devices at
// Contoso, as its device management would). Foo still refuses her until Fabrikam trusts
// Contoso's compliant devices (inboundTrust.isCompliantDeviceAccepted); then she lands on Foo,
// while a browser of hers that Contoso does not manage is still stopped by the device policy.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import {
  ARTIFACTS, claimsAt, delegatedGraphToken, expectPage, graph, graphToken, jwtClaims, openInvitation, password,
  path, proofUp, serverAndBrowser, signInWithPassword, story, submitForm,
} from './lib.mjs';

const ctx = serverAndBrowser();

const SALLY = 'sally@contoso.example';
const SALLY_UPN = 'sally_contoso.example#EXT#@fabrikam.example';
const PARTNERS = 'policies/crossTenantAccessPolicy/partners';
const DEVICE_POLICY = 'Guests on Foo need a compliant device';

// Records the main-frame document responses of `page` (URL and status), so a step can say
// which status the page it stopped on had and whether a code ever reached Foo's callback.
function watchNavigations(page) {
  const seen = [];
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) {
      seen.push({ url: r.url(), status: r.status() });
    }
  });
  return {
    last: () => seen.at(-1),
    fooCallbacks: () => seen.filter((n) => new URL(n.url).pathname === '/demo/foo/callback').map((n) => n.url),
  };
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `cross-tenant-${name}.png`), fullPage: true });
}

// The page stopped on `main#error` with `code`, at Fabrikam (not Contoso), with a 403, and nothing reached Foo.
async function assertStopped(page, nav, code, what) {
  await expectPage(page, 'main#error', `the error page (${what})`);
  assert.equal(await page.locator('main#error').getAttribute('data-error'), code, `${what}: stopped with ${code}`);
  assert.equal(nav.last().status, 403, `${what}: the error page is a 403`);
  // At Fabrikam's pages, or at the federation callback where Contoso's answer comes back.
  assert.match(path(page), /^\/(fabrikam\/|federation\/callback$)/,
    `${what}: Fabrikam (the resource tenant) stops the sign-in`);
  assert.match(await page.locator('main#error').innerText(), /Fabrikam/, `${what}: the page names Fabrikam`);
  assert.equal(await page.locator('table#claims').count(), 0);
  assert.deepEqual(nav.fooCallbacks(), [], `${what}: no authorization code reached Foo`);
  return page.locator('main#error').innerText();
}

// Fabrikam's sign-in log entries for sally (newest first), through Graph.
async function sallysSignIns(server, token) {
  const { status, body } = await graph(server, token, 'GET', 'auditLogs/signIns');
  assert.equal(status, 200, JSON.stringify(body));
  return body.value.filter((e) => e.userPrincipalName === SALLY_UPN);
}

test('Fabrikam blocks Contoso, then trusts its compliant devices: sally is stopped, then lands on Foo', async () => {
  const { server, browser } = ctx;
  await story(browser, import.meta.filename ?? 'cross-tenant.test.mjs', async (s) => {
    const fabrikam = await graphToken(server);

    const contosoAdmin = await s.page('contoso-admin');
    const contoso = await s.step("Contoso's admin signs in to Contoso's admin API (its device management)", async () => {
      const token = await delegatedGraphToken(contosoAdmin, server, 'contoso', 'admin@contoso.example');
      const claims = jwtClaims(token);
      assert.equal(claims.aud, `${server.url}/graph`, 'a token for the admin API');
      assert.equal(claims.iss, `${server.url}/contoso/v2.0`);
      const users = await graph(server, token, 'GET', 'users');
      assert.equal(users.status, 200, JSON.stringify(users.body));
      const sally = users.body.value.find((u) => u.userPrincipalName === SALLY);
      assert.ok(sally, `sally is a Contoso user: ${users.body.value.map((u) => u.userPrincipalName).join(', ')}`);
      // The tenant id Contoso gives its partners: the token's tid.
      return { token, tenantId: claims.tid, sallyId: sally.id };
    });

    const redeemUrl = await s.step('Fabrikam invites sally to Foo', async () => {
      const { status, body } = await graph(server, fabrikam, 'POST', 'invitations', {
        invitedUserEmailAddress: SALLY,
        invitedUserDisplayName: 'Sally Contoso',
        inviteRedirectUrl: `${server.url}/demo/foo/login`,
        sendInvitationMessage: true,
      });
      assert.equal(status, 201, JSON.stringify(body));
      return body.inviteRedeemUrl;
    });

    await s.step('Fabrikam blocks inbound B2B collaboration from Contoso', async () => {
      const blocked = { accessType: 'blocked', targets: [{ target: 'AllUsers', targetType: 'user' }] };
      const { status, body } = await graph(server, fabrikam, 'POST', PARTNERS, {
        tenantId: contoso.tenantId,
        b2bCollaborationInbound: { usersAndGroups: blocked },
      });
      assert.equal(status, 201, JSON.stringify(body));
      assert.equal(body.tenantId, contoso.tenantId);
      assert.deepEqual(body.b2bCollaborationInbound.usersAndGroups, blocked);
      assert.equal(body.inboundTrust?.isCompliantDeviceAccepted ?? false, false, 'no device trust yet');
    });

    await s.step('an invitation to another Contoso address is refused with the reason and stores nothing', async () => {
      const ids = async () => {
        const { status, body } = await graph(server, fabrikam, 'GET', 'users');
        assert.equal(status, 200, JSON.stringify(body));
        return body.value.map((u) => u.id).sort();
      };
      const before = await ids();
      const { status, body } = await graph(server, fabrikam, 'POST', 'invitations', {
        invitedUserEmailAddress: 'bob@contoso.example',
        inviteRedirectUrl: `${server.url}/demo/foo/login`,
      });
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.error.code, 'BadRequest');
      assert.match(body.error.message, /block collaboration/, JSON.stringify(body));
      assert.match(body.error.message, /Contoso/);
      assert.deepEqual(await ids(), before, 'no guest was created');
      const outbox = await (await fetch(`${server.url}/outbox`, { signal: AbortSignal.timeout(15_000) })).text();
      assert.ok(!outbox.includes('bob@contoso.example'), 'no invitation email went out');
      assert.ok(outbox.includes(SALLY), "the outbox does list sally's invitation");
    });

    const guest = await s.page('sally');
    const guestNav = watchNavigations(guest);
    await s.step('sally opens the invitation, signs in at Contoso and Fabrikam stops her', async () => {
      await openInvitation(guest, server, SALLY, { expectedLink: redeemUrl });
      await expectPage(guest, 'form#identify', 'the Contoso sign-in page');
      assert.match(path(guest), /^\/contoso\//, 'sally signs in at her home tenant');
      await signInWithPassword(guest, SALLY, password(server.credentials, 'contoso', SALLY));
      const text = await assertStopped(guest, guestNav, 'cross_tenant_blocked', 'inbound blocked');
      assert.match(text, /Fabrikam does not allow collaboration with Contoso/, 'the organisations, in words');
      assert.ok(!/setting\)|inbound|AllUsers/.test(text), `no policy internals on the page: ${text}`);
      await shot(guest, '1-inbound-blocked');
    });

    await s.step("Fabrikam's sign-in log says which setting decided; sally is not redeemed", async () => {
      const entry = (await sallysSignIns(server, fabrikam)).find((e) => e.status.error === 'cross_tenant_blocked');
      assert.ok(entry, 'a cross_tenant_blocked sign-in of sally in the log');
      assert.equal(entry.status.failureReason,
        'cross-tenant access: Fabrikam inbound settings for Contoso block this user (partner inbound users setting)');
      const { body } = await graph(server, fabrikam, 'GET', 'users');
      const sally = body.value.find((u) => u.userPrincipalName === SALLY_UPN);
      assert.equal(sally?.externalUserState, 'PendingAcceptance', JSON.stringify(sally));
    });

    await s.step('Fabrikam allows Contoso again and requires a compliant device of guests on Foo', async () => {
      const allowed = await graph(server, fabrikam, 'PATCH', `${PARTNERS}/${contoso.tenantId}`,
        { b2bCollaborationInbound: null });
      assert.equal(allowed.status, 204, JSON.stringify(allowed.body));
      const partner = await graph(server, fabrikam, 'GET', `${PARTNERS}/${contoso.tenantId}`);
      assert.equal(partner.body.b2bCollaborationInbound, null, 'inbound is the default (allowed) again');
      const policy = await graph(server, fabrikam, 'POST', 'identity/conditionalAccess/policies', {
        displayName: DEVICE_POLICY,
        state: 'enabled',
        conditions: {
          users: { includeUsers: ['GuestsOrExternalUsers'] },
          applications: { includeApplications: ['foo'] },
        },
        grantControls: { operator: 'OR', builtInControls: ['compliantDevice'] },
      });
      assert.equal(policy.status, 201, JSON.stringify(policy.body));
    });

    await s.step("Contoso's admin marks sally's device (this browser) managed and compliant", async () => {
      const list = await graph(server, contoso.token, 'GET', 'devices');
      assert.equal(list.status, 200, JSON.stringify(list.body));
      const hers = list.body.value.filter((d) => d.registeredOwner === contoso.sallyId);
      assert.equal(hers.length, 1,
        `sally's sign-in at Contoso registered this browser as her device: ${JSON.stringify(list.body.value)}`);
      assert.equal(hers[0].isCompliant, false);
      const patched = await graph(server, contoso.token, 'PATCH', `devices/${hers[0].id}`,
        { isManaged: true, isCompliant: true });
      assert.equal(patched.status, 204, JSON.stringify(patched.body));
      const after = await graph(server, contoso.token, 'GET', 'devices');
      const device = after.body.value.find((d) => d.id === hers[0].id);
      assert.equal(device.isCompliant, true);
      assert.equal(device.isManaged, true);
    });

    await s.step("sally redeems; without trust in Contoso's devices Foo's device policy stops her", async () => {
      // Contoso remembers her in this browser: straight back to Fabrikam's consent page.
      await guest.goto(redeemUrl);
      await expectPage(guest, 'form#consent', 'the consent page');
      assert.match(path(guest), /^\/fabrikam\//);
      await guest.locator('form#consent #accept').click();
      const text = await assertStopped(guest, guestNav, 'access_blocked', 'no device trust');
      assert.match(text, /conditional access/i);
      assert.ok(!text.includes(DEVICE_POLICY), `the policy is named to admins only: ${text}`);
      await shot(guest, '2-device-not-trusted');
      const entry = (await sallysSignIns(server, fabrikam)).find((e) => e.status.error === 'access_blocked');
      assert.ok(entry, 'an access_blocked sign-in of sally in the log');
      const applied = entry.appliedConditionalAccessPolicies.find((p) => p.displayName === DEVICE_POLICY);
      assert.equal(applied?.result, 'failure', JSON.stringify(entry.appliedConditionalAccessPolicies));
    });

    await s.step("Fabrikam trusts Contoso's compliant devices", async () => {
      const { status, body } = await graph(server, fabrikam, 'PATCH', `${PARTNERS}/${contoso.tenantId}`, {
        inboundTrust: { isCompliantDeviceAccepted: true },
      });
      assert.equal(status, 204, JSON.stringify(body));
      const partner = await graph(server, fabrikam, 'GET', `${PARTNERS}/${contoso.tenantId}`);
      assert.deepEqual(partner.body.inboundTrust,
        { isMfaAccepted: false, isCompliantDeviceAccepted: true, isHybridAzureADJoinedDeviceAccepted: false });
    });

    await s.step('sally opens Foo again: her compliant Contoso device passes, she proofs up, lands on Foo', async () => {
      // Fabrikam's session from the redemption answers; it holds what Contoso said of the device.
      await guest.goto(`${server.url}/demo/foo/login`);
      await proofUp(guest); // "Require MFA for Foo", at Fabrikam
      const claims = await claimsAt(guest, 'foo');
      assert.equal(claims.upn, SALLY_UPN, JSON.stringify(claims));
      assert.equal(claims.iss, `${server.url}/fabrikam/v2.0`, 'the token comes from the resource tenant');
      assert.equal(claims.idp, `${server.url}/contoso/v2.0`, 'the home identity provider is Contoso');
      assert.equal(claims.amr, 'fed otp mfa');
      assert.equal(claims.email, SALLY);
      assert.equal(claims.xms_dev, undefined, 'the home device claim is for the B2B federation only');
      assert.equal(guestNav.fooCallbacks().length, 1, 'one code reached Foo');
      await shot(guest, '3-trusted-device-on-foo');
      const entry = (await sallysSignIns(server, fabrikam)).find((e) => e.appId === 'foo' && e.status.errorCode === 0);
      assert.ok(entry, 'a successful sign-in of sally to Foo in the log');
      const applied = entry.appliedConditionalAccessPolicies.find((p) => p.displayName === DEVICE_POLICY);
      assert.equal(applied?.result, 'success', JSON.stringify(entry.appliedConditionalAccessPolicies));
    });

    const other = await s.page('sally-unmanaged');
    const otherNav = watchNavigations(other);
    await s.step('on a browser Contoso does not manage, the same sign-in is stopped by the device policy', async () => {
      await other.goto(`${server.url}/demo/foo/login`);
      await expectPage(other, 'form#identify', 'the Fabrikam sign-in page');
      assert.match(path(other), /^\/fabrikam\//);
      await submitForm(other, 'identify', { login: SALLY });
      await expectPage(other, 'form#identify', 'the Contoso sign-in page');
      assert.match(path(other), /^\/contoso\//, 'home realm discovery sends sally to Contoso');
      await signInWithPassword(other, SALLY, password(server.credentials, 'contoso', SALLY));
      await assertStopped(other, otherNav, 'access_blocked', 'unmanaged device, trust on');
      await shot(other, '4-unmanaged-device');
      const { body } = await graph(server, contoso.token, 'GET', 'devices');
      const hers = body.value.filter((d) => d.registeredOwner === contoso.sallyId);
      assert.equal(hers.length, 2, 'the second browser is a second device of sally at Contoso');
      assert.deepEqual(hers.map((d) => d.isCompliant).sort(), [false, true]);
    });
  });
});
