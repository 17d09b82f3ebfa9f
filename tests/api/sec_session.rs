//! Issue 11, browser sessions and cookies: device and browser cookies only the server can mint,
//! one SSO session per browser and tenant, logout that asks unless the hint is this session,
//! id_token_hint that must verify, the first MFA enrolment wins, bounded authorize requests
//! and sign-in transactions, and a CSP that limits where forms go.
use std::sync::Arc;

use gatehouse::clock::Clock;
use gatehouse::secrets::{b64url, digest, mac};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use serde_json::json;

use crate::helpers::*;

const IW: &str = "iw@fabrikam.example";
const ADMIN: &str = "admin@fabrikam.example";
const LOGGED_OUT: &str = "http://127.0.0.1/logged-out";

/// A browser whose cookie jar the test can read and plant cookies in.
fn jar_browser(app: &TestApp) -> (Browser, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = gatehouse::secrets::http_client_builder()
        .unwrap()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (Browser { base: app.url.clone(), http }, jar)
}

fn cookie(jar: &Jar, url: &str, name: &str) -> Option<String> {
    let header = jar.cookies(&url.parse().unwrap())?;
    let prefix = format!("{name}=");
    header.to_str().unwrap().split("; ").find_map(|kv| kv.strip_prefix(&prefix).map(String::from))
}

fn plant(jar: &Jar, app: &TestApp, name: &str, value: &str, path: &str) {
    jar.add_cookie_str(&format!("{name}={value}; Path={path}"), &app.url.parse().unwrap());
}

async fn signins(app: &TestApp) -> usize {
    app.snapshot().await.iter().filter(|(t, _, _)| t == "signins").count()
}

fn without_signins(snapshot: Vec<(String, Vec<u8>, Vec<u8>)>) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    snapshot.into_iter().filter(|(t, _, _)| t != "signins" && t != "signin_browser").collect()
}

fn policy(v: serde_json::Value) -> gatehouse::policy::Policy {
    serde_json::from_value(v).unwrap()
}

async fn devices_of(app: &TestApp, login: &str) -> Vec<gatehouse::model::Device> {
    let user = app.user("fabrikam", login).await;
    let tid = app.tenant_id("fabrikam").await;
    app.state.store.devices(&tid).await.unwrap().into_iter().filter(|d| d.registered_owner == Some(user.id)).collect()
}

fn logout_url(rp: &Rp, hint: &str) -> String {
    format!(
        "{}?id_token_hint={hint}&post_logout_redirect_uri={}",
        rp.endpoint("oauth2/v2.0/logout"),
        url::form_urlencoded::byte_serialize(LOGGED_OUT.as_bytes()).collect::<String>()
    )
}

async fn silent(browser: &Browser, rp: &Rp) -> Page {
    browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await
}

fn rp_param(page: &Page, name: &str) -> Option<String> {
    page.location.as_deref().and_then(|l| query_param(l, name))
}

// ---- #6 ----

#[tokio::test]
async fn a_copied_device_cookie_is_an_unregistered_device_for_another_user() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    app.state
        .store
        .put_policy(
            &tid,
            &policy(json!({
                "id": "compliant-rp", "displayName": "test-rp needs a compliant device", "state": "enabled",
                "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["test-rp"]}},
                "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]},
            })),
        ).await
        .unwrap();
    let rp = app.rp("fabrikam");
    let (a, a_jar) = jar_browser(&app);
    let first = a.sign_in(&rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert_eq!(first.error_code().as_deref(), Some("access_blocked"), "{}", first.body);
    // The admin marks iw's registered device compliant: iw's browser now gets in.
    let mut device = devices_of(&app, IW).await.pop().unwrap();
    device.is_compliant = true;
    device.is_managed = true;
    app.state.store.put_device(&tid, &device).await.unwrap();
    let ok = a.sign_in(&rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert!(rp_param(&ok, "code").is_some(), "{}", ok.body);
    let copied = cookie(&a_jar, &format!("{}/fabrikam/", app.url), "gh_dev").unwrap();
    assert_ne!(copied, device.id, "the cookie is not the bare id listed in the API and the log");

    // Another user's browser with the copied cookie: a new, unregistered, non-compliant device.
    let (b, b_jar) = jar_browser(&app);
    plant(&b_jar, &app, "gh_dev", &copied, "/fabrikam");
    let blocked = b.sign_in(&rp.authorize_url(&[]).url, ADMIN, &app.password(ADMIN)).await;
    assert_eq!((blocked.status, blocked.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("access_blocked")));
    assert_eq!(
        app.state.store.device(&tid, &device.id).await.unwrap().as_ref(),
        Some(&device),
        "compliant device unchanged"
    );
    let admins = devices_of(&app, ADMIN).await;
    assert_eq!(admins.len(), 1);
    assert!(admins[0].id != device.id && !admins[0].is_compliant);
    let log = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    assert_eq!(log.device_detail.map(|d| d.device_id), Some(admins[0].id.clone()));
    assert_eq!(log.status.error.as_deref(), Some("access_blocked"));

    // The bare device id, as the API and the sign-in log show it, is no device cookie either.
    let (c, c_jar) = jar_browser(&app);
    plant(&c_jar, &app, "gh_dev", &device.id, "/fabrikam");
    let blocked = c.sign_in(&rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert_eq!(blocked.error_code().as_deref(), Some("access_blocked"));
    assert_eq!(app.state.store.device(&tid, &device.id).await.unwrap().as_ref(), Some(&device));
}

// ---- #9 ----

async fn at_proof_up(app: &TestApp, browser: &Browser) -> (Page, String) {
    let rp = app.rp("fabrikam");
    let page = browser.sign_in(&rp.authorize_url(&[("acr_values", "2")]).url, IW, &app.password(IW)).await;
    assert!(page.has("form#totp-enroll"), "{}", page.body);
    let secret = page.text("code#totp-secret").unwrap();
    (page, secret)
}

#[tokio::test]
async fn a_stale_proof_up_page_cannot_replace_a_newer_mfa_method() {
    let app = spawn_app().await;
    let (a, b) = (app.browser(), app.browser());
    let (page_a, secret_a) = at_proof_up(&app, &a).await;
    let (page_b, secret_b) = at_proof_up(&app, &b).await;
    assert_ne!(secret_a, secret_b);
    let now = app.clock.now();
    let shown = b.post_abs(&page_b.url, &page_b.form("totp-enroll").set("code", &totp_at(&secret_b, now))).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);

    // A's refused enrolment moves its own sign-in on to the challenge; nothing else changes.
    let before = app.snapshot_except(&["signins"]).await;
    let stale = a.post_abs(&page_a.url, &page_a.form("totp-enroll").set("code", &totp_at(&secret_a, now))).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(stale.has("form#totp-challenge") && stale.body.contains("already has an authenticator app"));
    assert!(!stale.has("ul#recovery-codes"));
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "B's method and recovery codes are unchanged");

    // A's sign-in continues at the MFA challenge, answered with the app B set up.
    app.clock.advance(30);
    let code = totp_at(&secret_b, app.clock.now());
    let done = a.follow_any(a.post_abs(&stale.url, &stale.form("totp-challenge").set("code", &code)).await).await;
    assert!(rp_param(&done, "code").is_some(), "{}", done.body);
    let before = app.snapshot().await;
    let refused = a.post_abs(&page_a.url, &page_a.form("totp-enroll").set("code", &totp_at(&secret_a, now))).await;
    assert_eq!(refused.error_code().as_deref(), Some("signin_expired"), "the stale page is spent");
    assert_same(&before, &app.snapshot().await, "the spent page changes nothing");
}

#[tokio::test]
async fn two_concurrent_enrolments_cannot_both_win() {
    let app = spawn_app().await;
    let (a, b) = (app.browser(), app.browser());
    let (page_a, secret_a) = at_proof_up(&app, &a).await;
    let (page_b, secret_b) = at_proof_up(&app, &b).await;
    let now = app.clock.now();
    let form_a = page_a.form("totp-enroll").set("code", &totp_at(&secret_a, now));
    let form_b = page_b.form("totp-enroll").set("code", &totp_at(&secret_b, now));
    let (ra, rb) = tokio::join!(a.post_abs(&page_a.url, &form_a), b.post_abs(&page_b.url, &form_b));
    let won: Vec<bool> = [&ra, &rb].iter().map(|p| p.has("ul#recovery-codes")).collect();
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "exactly one enrolment wins: {won:?}");
    let loser = if won[0] { &rb } else { &ra };
    assert_eq!(loser.status, StatusCode::CONFLICT);
    let user = app.user("fabrikam", IW).await;
    assert_eq!(user.totp_methods.len(), 1);
    assert_eq!(user.recovery_code_hashes.len(), 10);
}

// ---- #11 ----

#[tokio::test]
async fn a_foreign_or_expired_id_token_hint_asks_before_signing_out() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let victim = app.browser();
    let (own, _) = rp.sign_in(&victim, IW, &app.password(IW), &[]).await;
    let (theirs, _) = rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;

    let before = app.snapshot().await;
    let forged = victim.get(&logout_url(&rp, theirs["id_token"].as_str().unwrap())).await;
    assert_eq!(forged.status, StatusCode::OK, "{}", forged.body);
    assert!(forged.has("form#logout"), "someone else's hint: the victim is asked");
    assert_same(&before, &app.snapshot().await, "the forged logout ended nothing");
    assert!(rp_param(&silent(&victim, &rp).await, "code").is_some(), "the victim's session still works");

    // The victim's own hint, once expired, still names the client but no longer skips the question.
    app.clock.advance(3601);
    let before = app.snapshot().await;
    let expired = victim.get(&logout_url(&rp, own["id_token"].as_str().unwrap())).await;
    assert!(expired.has("form#logout"), "{}", expired.body);
    assert_same(&before, &app.snapshot().await, "an expired hint ended nothing by itself");
    let form = expired.form("logout");
    assert!(form.fields.iter().any(|(k, v)| k == "client_id" && v == "test-rp"), "{form:?}");
    let done = victim.submit(&form).await;
    assert_eq!(done.location.as_deref(), Some(LOGGED_OUT), "confirmed: signed out and back to the RP");
    assert_eq!(rp_param(&silent(&victim, &rp).await, "error").as_deref(), Some("login_required"));
}

// ---- #12 ----

#[tokio::test]
async fn reauthentication_retires_the_previous_session() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, jar) = jar_browser(&app);
    let tenant_url = format!("{}/fabrikam/", app.url);
    rp.sign_in(&a, IW, &app.password(IW), &[]).await;
    let first = cookie(&jar, &tenant_url, "gh_sso").unwrap();
    let (tokens, _) = rp.sign_in(&a, IW, &app.password(IW), &[("prompt", "login")]).await;
    let second = cookie(&jar, &tenant_url, "gh_sso").unwrap();
    assert_ne!(first, second);
    let sessions = app.snapshot().await.iter().filter(|(t, _, _)| t == "sessions").count();
    assert_eq!(sessions, 1, "one browser, one session at the tenant");

    let (copy, copy_jar) = jar_browser(&app);
    plant(&copy_jar, &app, "gh_sso", &first, "/fabrikam");
    let before = app.snapshot().await;
    let old = silent(&copy, &rp).await;
    assert_eq!(rp_param(&old, "error").as_deref(), Some("login_required"), "the first cookie no longer signs in");
    assert_same(&before, &app.snapshot().await, "the retired cookie opened nothing");
    assert!(rp_param(&silent(&a, &rp).await, "code").is_some(), "the current session works");

    let out = a.get(&logout_url(&rp, tokens["id_token"].as_str().unwrap())).await;
    assert_eq!(out.location.as_deref(), Some(LOGGED_OUT));
    assert_eq!(rp_param(&silent(&a, &rp).await, "error").as_deref(), Some("login_required"));
    assert_eq!(app.snapshot().await.iter().filter(|(t, _, _)| t == "sessions").count(), 0, "logout ended it");
}

#[tokio::test]
async fn a_portal_sign_in_replaces_the_browsers_session_too() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    rp.sign_in(&browser, IW, &app.password(IW), &[]).await;
    let sessions = async |app: &TestApp| app.snapshot().await.iter().filter(|(t, _, _)| t == "sessions").count();
    assert_eq!(sessions(&app).await, 1);
    // iw's account is disabled: the admin page asks for a new sign-in in the same browser.
    let mut iw = app.user("fabrikam", IW).await;
    iw.account_enabled = false;
    app.state.store.put_user(&iw).await.unwrap();
    let done = browser.sign_in("/fabrikam/admin", ADMIN, &app.password(ADMIN)).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.has("main#admin"), "the admin is signed in: {}", done.body);
    assert_eq!(sessions(&app).await, 1, "the portal sign-in replaced iw's session");
}

// ---- #13 ----

#[tokio::test]
async fn a_planted_browser_cookie_is_replaced_and_its_csrf_tokens_refused() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let name = gatehouse::web::csrf::cookie_name(&app.state);
    let planted = "P".repeat(43);
    let (b, jar) = jar_browser(&app);
    plant(&jar, &app, &name, &planted, "/");
    let start = b.get(&rp.authorize_url(&[]).url).await;
    let issued = cookie(&jar, &app.url, &name).unwrap();
    assert_ne!(issued, planted, "a value the server did not issue is not adopted");
    let page = b.follow(start).await;
    let form = page.form("identify").set("login", IW);

    // Whoever planted the value computes "its" CSRF token: refused, in the attacker's own browser
    // (which still presents the planted value) and in the victim's.
    let forged = b64url(&mac(&app.state.instance_secret, &[b"csrf", planted.as_bytes()]));
    let (attacker, attacker_jar) = jar_browser(&app);
    plant(&attacker_jar, &app, &name, &planted, "/");
    let before = app.snapshot().await;
    let refused = attacker.submit(&form.clone().set("csrf", &forged)).await;
    assert_eq!((refused.status, refused.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("csrf")));
    let refused = b.submit(&form.clone().set("csrf", &forged)).await;
    assert_eq!((refused.status, refused.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("csrf")));
    assert_same(&before, &app.snapshot().await, "forged CSRF tokens change nothing");

    // A completed sign-in issues a fresh browser cookie.
    let next = b.follow(b.submit(&form).await).await;
    let done = b.submit(&next.form("password").set("password", &app.password(IW))).await;
    assert!(rp_param(&done, "code").is_some(), "{}", done.body);
    let renewed = cookie(&jar, &app.url, &name).unwrap();
    assert!(renewed != issued && renewed != planted);
}

// ---- #30 ----

#[tokio::test]
async fn an_id_token_hint_that_does_not_verify_is_refused_to_the_relying_party() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let (own, _) = rp.sign_in(&browser, IW, &app.password(IW), &[]).await;
    let own = own["id_token"].as_str().unwrap().to_string();
    let (theirs, _) = rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;
    let theirs = theirs["id_token"].as_str().unwrap().to_string();
    let (sig_at, _) = own.rmatch_indices('.').next().unwrap();
    let tampered = format!("{}.{}", &own[..sig_at], b64url(&[7u8; 64]));

    for (what, hint) in [("garbage", "garbage.garbage.garbage"), ("bad signature", tampered.as_str())] {
        let before = app.snapshot().await;
        let page = browser.get(&rp.authorize_url(&[("prompt", "none"), ("id_token_hint", hint)]).url).await;
        assert_eq!(page.status, StatusCode::FOUND, "{what}");
        assert_eq!(rp_param(&page, "error").as_deref(), Some("invalid_request"), "{what}");
        assert!(rp_param(&page, "code").is_none(), "{what}");
        assert_same(&before, &app.snapshot().await, what);
    }
    // Another user's hint: prompt=none cannot answer for them; otherwise the sign-in page.
    let before = app.snapshot().await;
    let page = browser.get(&rp.authorize_url(&[("prompt", "none"), ("id_token_hint", &theirs)]).url).await;
    assert_eq!(rp_param(&page, "error").as_deref(), Some("login_required"));
    assert_same(&before, &app.snapshot().await, "another user's hint");
    let page = browser.get(&rp.authorize_url(&[("id_token_hint", &theirs)]).url).await;
    assert!(page.location.as_deref().unwrap().starts_with("/fabrikam/login?tx="), "{:?}", page.location);
    // An expired hint of this session's user is still a hint.
    app.clock.advance(3601);
    let page = browser.get(&rp.authorize_url(&[("prompt", "none"), ("id_token_hint", &own)]).url).await;
    assert!(rp_param(&page, "code").is_some(), "{:?}", page.location);
}

// ---- #18 ----

#[tokio::test]
async fn anonymous_authorize_requests_are_bounded_in_size_and_number() {
    let app = spawn_with(|c| c.signins.total = 40).await;
    let rp = app.rp("fabrikam");

    // 12 KiB of acr_values: refused on our own page; nothing stored.
    let before = app.snapshot().await;
    let huge = app.browser().get(&rp.authorize_url(&[("acr_values", &"x ".repeat(6 * 1024))]).url).await;
    assert_eq!((huge.status, huge.error_code().as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_request")));
    assert_same(&before, &app.snapshot().await, "an oversized request stores nothing");

    // Only supported acr values are kept, each once.
    let page = app.browser().get(&rp.authorize_url(&[("acr_values", "urn:x 3 2 1 2")]).url).await;
    let tx = query_param(&format!("{}{}", app.url, page.location.unwrap()), "tx").unwrap();
    let stored = app.state.store.signin(&digest(&tx)).await.unwrap().unwrap();
    let gatehouse::model::Purpose::Authorize(request) = stored.purpose else { panic!("an authorize sign-in") };
    assert_eq!(request.acr_values, vec![gatehouse::model::Acr::MultiFactor, gatehouse::model::Acr::SingleFactor]);

    // One browser holds at most 20 sign-ins: the oldest is evicted.
    let browser = app.browser();
    let mut txs = Vec::new();
    for _ in 0..25 {
        let page = browser.get(&rp.authorize_url(&[]).url).await;
        txs.push(page.location.unwrap());
    }
    assert_eq!(signins(&app).await, 1 + 20, "the acr sign-in and this browser's newest 20");
    let evicted = browser.get(&txs[0]).await;
    assert_eq!(evicted.error_code().as_deref(), Some("signin_expired"));
    assert!(browser.get(&txs[24]).await.has("form#identify"));

    // Overall: at the limit, a clear 503 page and nothing stored.
    for _ in 0..40 {
        if signins(&app).await >= 40 {
            break;
        }
        plain_client().get(rp.authorize_url(&[]).url).send().await.unwrap();
    }
    assert_eq!(signins(&app).await, 40);
    let before = app.snapshot().await;
    let full = app.browser().get(&rp.authorize_url(&[]).url).await;
    assert_eq!(
        (full.status, full.error_code().as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("too_many_signins"))
    );
    assert_same(&before, &app.snapshot().await, "no transaction beyond the limit");

    // Expired sign-ins are swept, and sign-ins start again.
    app.clock.advance(app.state.config.tokens.signin_secs + 1);
    let again = app.browser().get(&rp.authorize_url(&[]).url).await;
    assert!(again.location.as_deref().unwrap().starts_with("/fabrikam/login?tx="), "{}", again.body);
    assert_eq!(signins(&app).await, 1);
}

// ---- bad input: the new classes ----

#[tokio::test]
async fn bad_session_input_table() {
    let app = spawn_with(|c| c.signins.total = 3).await;
    let rp = app.rp("fabrikam");
    let sso = app.browser();
    rp.sign_in(&sso, IW, &app.password(IW), &[]).await;
    let long = |n: usize| "a".repeat(n);
    enum Want {
        Page(u16, &'static str),
        Rp(&'static str),
    }
    let cases: Vec<(&str, String, Want)> = vec![
        (
            "whole request over 8 KiB",
            rp.authorize_url(&[("ui_locales", &long(9000))]).url,
            Want::Page(400, "invalid_request"),
        ),
        ("state over 2048", rp.authorize_url(&[("state", &long(2049))]).url, Want::Rp("invalid_request")),
        ("nonce over 512", rp.authorize_url(&[("nonce", &long(513))]).url, Want::Rp("invalid_request")),
        (
            "scope over 1024",
            rp.authorize_url(&[("scope", &format!("openid {}", long(1100)))]).url,
            Want::Rp("invalid_request"),
        ),
        ("acr_values over 64", rp.authorize_url(&[("acr_values", &"1 ".repeat(40))]).url, Want::Rp("invalid_request")),
        ("prompt over 64", rp.authorize_url(&[("prompt", &"login ".repeat(12))]).url, Want::Rp("invalid_request")),
        ("max_age over 12 digits", rp.authorize_url(&[("max_age", &"9".repeat(13))]).url, Want::Rp("invalid_request")),
        (
            "id_token_hint over 4 KiB",
            rp.authorize_url(&[("id_token_hint", &long(5000))]).url,
            Want::Rp("invalid_request"),
        ),
        ("garbage id_token_hint", rp.authorize_url(&[("id_token_hint", "a.b.c")]).url, Want::Rp("invalid_request")),
        (
            "garbage id_token_hint with prompt=none",
            rp.authorize_url(&[("prompt", "none"), ("id_token_hint", "x")]).url,
            Want::Rp("invalid_request"),
        ),
    ];
    let mut failures = Vec::new();
    for (name, url, want) in &cases {
        let before = app.snapshot().await;
        let page = sso.get(url).await;
        let ok = match want {
            Want::Page(status, code) => page.status.as_u16() == *status && page.error_code().as_deref() == Some(*code),
            Want::Rp(code) => {
                page.status == StatusCode::FOUND
                    && rp_param(&page, "error").as_deref() == Some(*code)
                    && rp_param(&page, "code").is_none()
            }
        };
        if !ok {
            failures.push(format!(
                "{name}: {} {:?} {}",
                page.status,
                page.location,
                page.error_code().unwrap_or_default()
            ));
        }
        if before != app.snapshot().await {
            failures.push(format!("{name}: the store changed"));
        }
    }
    // Unsupported acr values are not an error: they are dropped (and stored nowhere).
    let page = app.browser().get(&rp.authorize_url(&[("acr_values", "urn:evil 99")]).url).await;
    if !page.location.as_deref().is_some_and(|l| l.starts_with("/fabrikam/login?tx=")) {
        failures.push(format!("unsupported acr values: {:?}", page.location));
    }
    // Too many transactions: past the instance limit (3 here) a 503 page, nothing stored.
    for _ in 0..3 {
        plain_client().get(rp.authorize_url(&[]).url).send().await.unwrap();
    }
    let before = without_signins(app.snapshot().await);
    let full = app.browser().get(&rp.authorize_url(&[]).url).await;
    if (full.status, full.error_code().as_deref()) != (StatusCode::SERVICE_UNAVAILABLE, Some("too_many_signins")) {
        failures.push(format!("too many transactions: {} {:?}", full.status, full.error_code()));
    }
    if signins(&app).await != 3 || before != without_signins(app.snapshot().await) {
        failures.push(format!("too many transactions: {} stored", signins(&app).await));
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), cases.len() + 2, failures.join("\n"));
}

// ---- CSP form-action ----

#[tokio::test]
async fn forms_may_post_only_where_the_page_says() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let csp = |r: &reqwest::Response| r.headers()["content-security-policy"].to_str().unwrap().to_string();
    let home = plain_client().get(format!("{}/", app.url)).send().await.unwrap();
    assert!(csp(&home).contains("form-action 'self'"), "{}", csp(&home));

    // form_post: the page's one form goes to the relying party, and its CSP names exactly that origin.
    let browser = app.browser();
    let page = browser.follow(browser.get(&rp.authorize_url(&[("response_mode", "form_post")]).url).await).await;
    let page = browser.follow(browser.submit(&page.form("identify").set("login", IW)).await).await;
    let form = page.form("password").set("password", &app.password(IW));
    let resp = browser
        .http
        .post(format!("{}{}", app.url, form.action))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form.fields).unwrap())
        .send()
        .await
        .unwrap();
    let policy = csp(&resp);
    assert!(policy.contains("form-action http://127.0.0.1:9"), "{policy}");
    assert!(!policy.contains("form-action 'self'"), "{policy}");
    assert!(resp.text().await.unwrap().contains("form id=\"form-post\""));

    // The logout confirmation posts here, then is redirected to the registered post-logout URI.
    let resp = browser
        .http
        .get(format!("{}?post_logout_redirect_uri={LOGGED_OUT}&client_id=test-rp", rp.endpoint("oauth2/v2.0/logout")))
        .send()
        .await
        .unwrap();
    assert!(csp(&resp).contains("form-action 'self' http://127.0.0.1"), "{}", csp(&resp));
    assert!(resp.text().await.unwrap().contains("form id=\"logout\""));
    // Sign-in pages end in redirects only their transaction knows (RP, home IdP): no form-action yet.
    let fresh = app.browser();
    let start = fresh.get(&rp.authorize_url(&[]).url).await;
    let resp = fresh.http.get(format!("{}{}", app.url, start.location.unwrap())).send().await.unwrap();
    assert!(!csp(&resp).contains("form-action"), "{}", csp(&resp));
}
