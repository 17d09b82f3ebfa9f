//! MFA at the resource tenant, conditional access, licensing, amr/acr, the sign-in log.
use gatehouse::clock::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;

fn now(app: &TestApp) -> i64 {
    app.clock.now()
}

/// At the proof-up page: enrols with a code computed from the shown secret, checks the
/// recovery codes, continues. Returns the secret, the recovery codes and the next page.
pub(crate) async fn proof_up(app: &TestApp, browser: &Browser, page: Page) -> (String, Vec<String>, Page) {
    assert!(
        page.has("code#totp-secret") && page.has("img#totp-qr"),
        "expected proof-up at {}:\n{}",
        page.url,
        page.body
    );
    assert!(page.attr("img#totp-qr", "src").unwrap().starts_with("data:image/svg+xml;base64,"));
    let secret = page.text("code#totp-secret").unwrap();
    let form = page.form("totp-enroll").set("code", &totp_at(&secret, now(app)));
    let shown = browser.post_abs(&page.url, &form).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    let html = shown.html();
    let li = scraper::Selector::parse("ul#recovery-codes li").unwrap();
    let codes: Vec<String> = html.select(&li).map(|e| e.text().collect::<String>().trim().to_string()).collect();
    assert_eq!(codes.len(), 10);
    let next = browser.follow_any(browser.post_abs(&page.url, &shown.form("continue")).await).await;
    (secret, codes, next)
}

pub(crate) async fn answer_challenge(browser: &Browser, page: &Page, code: &str) -> Page {
    assert!(page.has("form#totp-challenge"), "expected the MFA challenge at {}:\n{}", page.url, page.body);
    browser.follow_any(browser.post_abs(&page.url, &page.form("totp-challenge").set("code", code)).await).await
}

/// A browser that starts the demo app's sign-in and identifies as `login`; returns the next page.
async fn start_demo(browser: &Browser, app: &TestApp, demo: &str, login: &str) -> Page {
    let page = browser.follow_any(browser.get(&format!("{}/demo/{demo}/login", app.url)).await).await;
    browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", login)).await).await
}

#[tokio::test]
async fn seed_example_partner_guest_proofs_up_at_the_resource_tenant_for_foo() {
    let app = spawn_app().await;
    let sally = "sally@contoso.example";
    let pw = app.password(sally);
    let inv = app.invite(sally, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &pw).await;
    // Redemption continues as a sign-in to Foo, which requires MFA: proof-up at Fabrikam.
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    assert!(page.body.contains("Fabrikam"));
    let (secret, _, shown) = proof_up(&app, &browser, page).await;
    let claims = claims_table(&shown);
    assert_eq!(claims["amr"], "fed otp mfa", "{claims:?}");
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["idp"], app.issuer("contoso"));
    let user = app.user("fabrikam", sally).await;
    assert_eq!(user.totp_methods.len(), 1, "the method is enrolled at the resource tenant");
    assert!(app.user("contoso", sally).await.totp_methods.is_empty(), "nothing changes at home");

    // Next sign-in: the TOTP challenge, not proof-up.
    app.clock.advance(30);
    let browser = app.browser();
    let home = start_demo(&browser, &app, "foo", sally).await;
    let page = browser.home_sign_in(home, sally, &pw).await;
    assert!(!page.has("form#totp-enroll"));
    let shown = answer_challenge(&browser, &page, &totp_at(&secret, now(&app))).await;
    assert_eq!(claims_table(&shown)["amr"], "fed otp mfa");

    // Bar has no MFA policy.
    let browser = app.browser();
    let home = start_demo(&browser, &app, "bar", sally).await;
    let shown = browser.home_sign_in(home, sally, &pw).await;
    let claims = claims_table(&shown);
    assert_eq!((claims["amr"].as_str(), claims["acr"].as_str()), ("fed", "1"), "{}", shown.body);
}

async fn redeem_to_foo(app: &TestApp, email: &str) -> (Browser, Page) {
    let inv = app.invite(email, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let consent = if page.has("form#email-otp") {
        browser
            .follow_any(
                browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
            )
            .await
    } else {
        browser.home_sign_in(page, email, &app.password(email)).await
    };
    let next = browser.follow_any(accept(browser_ref(&browser), &consent).await).await;
    (browser, next)
}

fn browser_ref(b: &Browser) -> &Browser {
    b
}

#[tokio::test]
async fn social_consumer_and_email_guests_proof_up_the_same_way() {
    let app = spawn_app().await;
    for (email, amr) in [
        ("gsamoogle@gmail.example", "fed otp mfa"),
        ("alex@outlook.example", "fed otp mfa"),
        ("pat@northwind.example", "otp mfa"),
    ] {
        let (browser, page) = redeem_to_foo(&app, email).await;
        let (_, _, shown) = proof_up(&app, &browser, page).await;
        let claims = claims_table(&shown);
        assert_eq!((claims["amr"].as_str(), claims["acr"].as_str()), (amr, "2"), "{email}");
    }
}

#[tokio::test]
async fn home_mfa_counts_only_with_inbound_trust() {
    let app = spawn_app().await;
    let sally = "sally@contoso.example";
    let pw = app.password(sally);
    // Contoso turns on its own MFA.
    let contoso = app.tenant_id("contoso").await;
    let mut p = app.state.store.policies(&contoso).await.unwrap().into_iter().next().unwrap();
    p.state = gatehouse::policy::PolicyState::Enabled;
    app.state.store.put_policy(&contoso, &p).await.unwrap();

    let inv = app.invite(sally, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let home = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    let at_contoso = browser.home_sign_in(home, sally, &pw).await;
    assert!(at_contoso.url.contains("/contoso/"), "contoso asks for its own MFA: {}", at_contoso.url);
    let (contoso_secret, _, consent) = proof_up(&app, &browser, at_contoso).await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    // Trust off (default): Fabrikam still asks — double MFA.
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    assert!(page.url.contains("/fabrikam/"), "{}", page.url);
    let (_, _, shown) = proof_up(&app, &browser, page).await;
    assert_eq!(claims_table(&shown)["amr"], "fed otp mfa");

    // Trust on: Contoso's MFA satisfies Fabrikam, and the token says so.
    let mut fabrikam = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    fabrikam.cross_tenant.partners.push(gatehouse::policy::cross_tenant::PartnerSettings {
        tenant_id: contoso.0,
        inbound_trust: Some(gatehouse::policy::cross_tenant::InboundTrustSettings {
            is_mfa_accepted: true,
            ..Default::default()
        }),
        ..Default::default()
    });
    app.state.store.put_tenant(&fabrikam).await.unwrap();
    app.clock.advance(30);
    let browser = app.browser();
    let home = start_demo(&browser, &app, "foo", sally).await;
    let challenge = browser.home_sign_in(home, sally, &pw).await;
    assert!(challenge.url.contains("/contoso/"));
    let shown = answer_challenge(&browser, &challenge, &totp_at(&contoso_secret, now(&app))).await;
    let claims = claims_table(&shown);
    assert_eq!((claims["amr"].as_str(), claims["acr"].as_str()), ("fed mfa", "2"), "{}", shown.body);
}

fn policy(json: Value) -> gatehouse::policy::Policy {
    serde_json::from_value(json).unwrap()
}

/// Redeems an email-OTP guest (no MFA app) and returns a browser holding its session.
async fn redeemed_guest(app: &TestApp, email: &str) -> Browser {
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let consent = browser
        .follow_any(
            browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
        )
        .await;
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    browser
}

async fn rp_attempt(app: &TestApp, browser: &Browser, extra: &[(&str, &str)]) -> Page {
    browser.follow_any(browser.get(&app.rp("fabrikam").authorize_url(extra).url).await).await
}

#[tokio::test]
async fn device_policy_blocks_guests_on_unmanaged_devices_unless_excluded_or_compliant() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    let email = "pat@northwind.example";
    let browser = redeemed_guest(&app, email).await;
    let guest = app.user("fabrikam", email).await;
    let mut p = policy(json!({
        "id": "device-policy", "displayName": "Guests need a compliant device", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["GuestsOrExternalUsers"]}, "applications": {"includeApplications": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]},
    }));
    app.state.store.put_policy(&tid, &p).await.unwrap();
    // A blocked sign-in writes its log entry and registers the browser's device (what an admin
    // marks compliant below); nothing else may change.
    let trees = ["tenant_signin_log", "tenant_devices"];
    let before = app.snapshot_except(&trees).await;
    let blocked = rp_attempt(&app, &browser, &[]).await;
    assert_eq!((blocked.status, blocked.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("access_blocked")));
    assert_same(&before, &app.snapshot_except(&trees).await, "a blocked sign-in changes nothing");
    let log = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    assert_eq!(log.status.error.as_deref(), Some("access_blocked"));
    assert_eq!(log.conditional_access_status, "failure");

    // The seed's exclusion list: this partner user is excluded.
    p.conditions.users.exclude_users = vec![guest.id.to_string()];
    app.state.store.put_policy(&tid, &p).await.unwrap();
    let allowed = rp_attempt(&app, &browser, &[]).await;
    assert!(allowed.location.as_deref().unwrap().contains("code="), "{}", allowed.body);

    // Or the admin marks the device compliant: the browser kept one registered device,
    // even though its first attempt ended on the error page.
    let owned = app
        .state
        .store
        .devices(&tid)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.registered_owner == Some(guest.id))
        .count();
    assert_eq!(owned, 1);
    p.conditions.users.exclude_users.clear();
    app.state.store.put_policy(&tid, &p).await.unwrap();
    let mut device = app
        .state
        .store
        .devices(&tid)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.registered_owner == Some(guest.id))
        .unwrap();
    device.is_compliant = true;
    device.is_managed = true;
    app.state.store.put_device(&tid, &device).await.unwrap();
    let allowed = rp_attempt(&app, &browser, &[]).await;
    assert!(allowed.location.as_deref().unwrap().contains("code="));
}

fn location_policy() -> gatehouse::policy::Policy {
    policy(json!({
        "id": "outside-partner", "displayName": "MFA outside trusted networks", "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["test-rp"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }))
}

#[tokio::test]
async fn location_policy_trusts_the_partner_range_via_a_trusted_proxy_only() {
    let app = spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let tid = app.tenant_id("fabrikam").await;
    app.state.store.put_policy(&tid, &location_policy()).await.unwrap();
    let login = "iw@fabrikam.example";
    let rp = app.rp("fabrikam");

    let partner = Browser::forwarded_for(&app.url, "203.0.113.7");
    let done = partner.sign_in(&rp.authorize_url(&[]).url, login, &app.password(login)).await;
    assert!(done.location.as_deref().unwrap().contains("code="), "no MFA from the partner network: {}", done.body);
    let log = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    assert_eq!(log.ip_address.as_deref(), Some("203.0.113.7"));
    assert_eq!(log.named_locations, vec!["Partner network".to_string()]);

    let elsewhere = Browser::forwarded_for(&app.url, "198.51.100.7");
    let page = elsewhere.sign_in(&rp.authorize_url(&[]).url, login, &app.password(login)).await;
    assert!(page.has("form#totp-enroll"), "MFA from elsewhere: {}", page.body);
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    app.state.store.put_policy(&tid, &location_policy()).await.unwrap();
    let login = "iw@fabrikam.example";
    let spoofer = Browser::forwarded_for(&app.url, "203.0.113.7");
    let page = spoofer.sign_in(&app.rp("fabrikam").authorize_url(&[]).url, login, &app.password(login)).await;
    assert!(page.has("form#totp-enroll"), "the header is ignored, so MFA is asked: {}", page.body);
    let log = app.state.store.signin_log(&tid, 10).await.unwrap();
    assert!(!log.is_empty(), "the sign-in that reached MFA is logged");
    assert!(log.iter().all(|e| e.ip_address.as_deref() == Some("127.0.0.1")), "{log:?}");
}

#[tokio::test]
async fn risk_policies_apply_to_members_and_are_not_applied_for_guests() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    app.state
        .store
        .put_policy(&tid, &policy(json!({
            "id": "risk", "displayName": "Block high-risk sign-ins", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "signInRiskLevels": ["high"]},
            "grantControls": {"operator": "OR", "builtInControls": ["block"]},
        }))).await
        .unwrap();
    let email = "pat@northwind.example";
    let browser = redeemed_guest(&app, email).await;
    let ok = rp_attempt(&app, &browser, &[]).await;
    assert!(ok.location.as_deref().unwrap().contains("code="));
    let log = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    let risk = log.applied_conditional_access_policies.iter().find(|r| r.id == "risk").unwrap();
    assert_eq!(risk.result, gatehouse::policy::PolicyOutcome::NotApplied, "guests: risk is evaluated at home");
    let device =
        log.applied_conditional_access_policies.iter().find(|r| r.display_name.contains("report-only")).unwrap();
    assert_eq!(
        device.result,
        gatehouse::policy::PolicyOutcome::ReportOnlyFailure,
        "report-only is logged, not enforced"
    );
    let json = serde_json::to_value(&log).unwrap();
    assert!(json["appliedConditionalAccessPolicies"].as_array().unwrap().iter().any(|p| p["result"] == "notApplied"));

    let login = "iw@fabrikam.example";
    let mut iw = app.user("fabrikam", login).await;
    iw.risk_level = Some("high".into());
    app.state.store.put_user(&iw).await.unwrap();
    let page = app.browser().sign_in(&app.rp("fabrikam").authorize_url(&[]).url, login, &app.password(login)).await;
    assert_eq!(page.error_code().as_deref(), Some("access_blocked"));
}

/// A member signs in to test-rp with step-up (`acr_values=2`) up to the MFA page.
async fn member_step_up(app: &TestApp, browser: &Browser) -> (AuthStart, Page) {
    let login = "iw@fabrikam.example";
    let start = app.rp("fabrikam").authorize_url(&[("acr_values", "2")]);
    let page = browser.sign_in(&start.url, login, &app.password(login)).await;
    (start, page)
}

async fn tokens_from(app: &TestApp, page: &Page, start: &AuthStart) -> Value {
    let code = query_param(page.location.as_deref().expect("redirect to the RP"), "code").unwrap();
    let (status, tokens) = app.rp("fabrikam").exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK);
    tokens
}

#[tokio::test]
async fn step_up_with_acr_values_2_and_refresh_keeps_amr_and_acr() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (start, page) = member_step_up(&app, &browser).await;
    let (_, _, done) = proof_up(&app, &browser, page).await;
    let tokens = tokens_from(&app, &done, &start).await;
    let rp = app.rp("fabrikam");
    let id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!((id["amr"].clone(), id["acr"].clone()), (json!(["pwd", "otp", "mfa"]), json!("2")));
    app.clock.advance(60);
    let (_, refreshed) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    let id2 = rp.verify(refreshed["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(
        (id2["amr"].clone(), id2["acr"].clone(), id2["auth_time"].clone()),
        (id["amr"].clone(), id["acr"].clone(), id["auth_time"].clone())
    );
    // Without step-up a session that already has MFA is reused silently.
    let again = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(again.location.as_deref().unwrap().contains("code="));
}

#[tokio::test]
async fn per_user_mfa_requires_proof_up() {
    let app = spawn_app().await;
    let login = "iw@fabrikam.example";
    let mut iw = app.user("fabrikam", login).await;
    iw.per_user_mfa = true;
    app.state.store.put_user(&iw).await.unwrap();
    let page = app.browser().sign_in(&app.rp("fabrikam").authorize_url(&[]).url, login, &app.password(login)).await;
    assert!(page.has("form#totp-enroll"));
}

#[tokio::test]
async fn replayed_totp_steps_lockout_and_spent_recovery_codes_are_refused() {
    let app = spawn_app().await;
    let browser = app.browser();
    let (_, page) = member_step_up(&app, &browser).await;
    let (secret, recovery, _) = proof_up(&app, &browser, page).await;
    let tid = app.tenant_id("fabrikam").await;

    // The code of the step just used at enrolment is a replay: it changes nothing but the
    // sign-in's own transaction and log entry.
    let browser = app.browser();
    let (_, page) = member_step_up(&app, &browser).await;
    let own = ["signins", "tenant_signin_log"];
    let before = app.snapshot_except(&own).await;
    let replay = answer_challenge(&browser, &page, &totp_at(&secret, now(&app))).await;
    assert!(replay.text("p.error").unwrap().contains("already used"), "{}", replay.body);
    assert_same(&before, &app.snapshot_except(&own).await, "a replayed TOTP code");

    // Five wrong codes lock MFA for 15 minutes, even for the right code; the lock is the only
    // change to the user.
    let user_before = app.user("fabrikam", "iw@fabrikam.example").await;
    assert!(!user_before.mfa_lockout.is_locked(now(&app)));
    for _ in 0..4 {
        let p = answer_challenge(&browser, &page, "000000").await;
        assert!(p.text("p.error").unwrap().contains("not right"));
    }
    let locked = answer_challenge(&browser, &page, "000000").await;
    assert!(locked.text("p.error").unwrap().contains("locked"));
    app.clock.advance(30);
    let still = answer_challenge(&browser, &page, &totp_at(&secret, now(&app))).await;
    assert!(still.text("p.error").unwrap().contains("locked"), "{}", still.body);
    let user = app.user("fabrikam", "iw@fabrikam.example").await;
    assert!(user.mfa_lockout.is_locked(now(&app)));
    let unlocked = gatehouse::model::User { mfa_lockout: user_before.mfa_lockout.clone(), ..user };
    assert_eq!(unlocked, user_before, "wrong codes change nothing on the user but the lock");
    assert!(
        app.state
            .store
            .signin_log(&tid, 5)
            .await
            .unwrap()
            .iter()
            .any(|e| e.status.error.as_deref() == Some("mfa_locked"))
    );

    app.clock.advance(901);
    let browser = app.browser();
    let (_, page) = member_step_up(&app, &browser).await;
    let done = answer_challenge(&browser, &page, &recovery[0]).await;
    assert!(done.location.as_deref().unwrap().contains("code="), "a recovery code works once: {}", done.body);
    let browser = app.browser();
    let (_, page) = member_step_up(&app, &browser).await;
    let again = answer_challenge(&browser, &page, &recovery[0]).await;
    assert!(again.text("p.error").unwrap().contains("not right"), "a spent recovery code is refused");
}

#[tokio::test]
async fn when_seats_run_out_redemption_and_mfa_stop_clearly() {
    let app = spawn_app().await;
    let mut fabrikam = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    fabrikam.premium_seats = 0;
    app.state.store.put_tenant(&fabrikam).await.unwrap();
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let consent = browser
        .follow_any(
            browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
        )
        .await;
    let before = app.snapshot().await;
    let refused = accept(&browser, &consent).await;
    assert_eq!((refused.status, refused.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("license_exhausted")));
    assert_same(&before, &app.snapshot().await, "no seat: nothing redeemed");

    // A member who would need MFA is stopped too (never a silent skip of MFA), and it is logged.
    let (_, page) = member_step_up(&app, &app.browser()).await;
    assert_eq!(page.error_code().as_deref(), Some("license_exhausted"));
    let tid = app.tenant_id("fabrikam").await;
    assert!(
        app.state
            .store
            .signin_log(&tid, 5)
            .await
            .unwrap()
            .iter()
            .any(|e| e.status.error.as_deref() == Some("license_exhausted"))
    );
}

#[tokio::test]
async fn sign_in_frequency_asks_again_after_its_period() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    app.state
        .store
        .put_policy(&tid, &policy(json!({
            "id": "freq", "displayName": "Sign in every hour", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["test-rp"]}},
            "sessionControls": {"signInFrequency": {"value": 1, "type": "hours", "isEnabled": true}},
        }))).await
        .unwrap();
    let browser = app.browser();
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    rp.sign_in(&browser, login, &app.password(login), &[]).await;
    app.clock.advance(600);
    let reuse = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(reuse.location.as_deref().unwrap().contains("code="));
    app.clock.advance(3600);
    let again = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
    assert!(again.has("form#identify"), "{}", again.body);
}

#[tokio::test]
async fn every_sign_in_is_logged_with_its_policies() {
    let app = spawn_app().await;
    let login = "iw@fabrikam.example";
    let rp = app.rp("fabrikam");
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let (status, _) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    app.admin_token().await;
    let tid = app.tenant_id("fabrikam").await;
    let log = app.state.store.signin_log(&tid, 10).await.unwrap();
    assert!(
        log.iter()
            .any(|e| !e.is_interactive && e.app_id == "test-rp" && e.user_principal_name.as_deref() == Some(login))
    );
    assert!(log.iter().any(|e| !e.is_interactive && e.app_id == "gatehouse-admin" && e.user_id.is_none()));
    let entry = log.iter().find(|e| e.is_interactive).unwrap();
    assert_eq!(entry.user_principal_name.as_deref(), Some(login));
    assert_eq!(entry.app_id, "test-rp");
    assert_eq!(entry.status.error_code, 0);
    assert_eq!(entry.amr, vec![gatehouse::model::Amr::Pwd]);
    assert!(entry.device_detail.is_some());
    assert!(
        entry.applied_conditional_access_policies.iter().any(
            |p| p.display_name == "Require MFA for Foo" && p.result == gatehouse::policy::PolicyOutcome::NotApplied
        )
    );
}
