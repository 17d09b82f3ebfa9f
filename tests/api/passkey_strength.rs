//! Passwordless sign-in with a passkey and authentication strengths (DESIGN §10): a member
//! signs in from the identify page with the passkey alone; a phishing-resistant strength
//! refuses TOTP, takes a TOTP holder through adding a passkey, and the log says what met it;
//! custom strengths through Graph.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::passkey::{LOGIN, SoftKey, answer, options_of, register, spawn_rp_app, step_up, tokens_from};

const PHISHING_RESISTANT: &str = "00000000-0000-0000-0000-000000000004";

fn signin_options(page: &Page) -> String {
    page.text("script#passkey-signin-options").unwrap_or_else(|| panic!("no passwordless options:\n{}", page.body))
}

/// The member's first sign-in registers a passkey; returns it.
async fn member_with_passkey(app: &TestApp) -> SoftKey {
    let browser = app.browser();
    let (start, page) = step_up(app, &browser).await;
    let (key, done) = register(app, &browser, page).await;
    tokens_from(app, &done, &start).await;
    key
}

async fn identify_page(browser: &Browser, start: &AuthStart) -> Page {
    let page = browser.follow(browser.get(&start.url).await).await;
    assert!(page.has("form#identify") && page.has("button#passkey-signin"), "{}", page.body);
    page
}

async fn passwordless(browser: &Browser, page: &Page, credential: &str) -> Page {
    browser.follow(browser.submit(&page.form("passwordless-signin").set("credential", credential)).await).await
}

#[tokio::test]
async fn a_member_signs_in_passwordless_with_a_passkey_alone() {
    let app = spawn_rp_app().await;
    let mut key = member_with_passkey(&app).await;

    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(&[("acr_values", "2")]);
    let page = identify_page(&browser, &start).await;
    assert!(page.has("form#passwordless-signin input[type=hidden][name=csrf]"));
    assert!(page.has("script[src='/static/passkey.js']"));
    let options: Value = serde_json::from_str(&signin_options(&page)).unwrap();
    assert!(options["publicKey"].get("allowCredentials").is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)));
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none(), "a button, not autofill: {options}");

    let done = passwordless(&browser, &page, &key.assert_discoverable(&signin_options(&page), &app.url)).await;
    let tokens = tokens_from(&app, &done, &start).await;
    let id = app.rp("fabrikam").verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!((id["amr"].clone(), id["acr"].clone()), (json!(["hwk", "user", "mfa"]), json!("2")));
    let user = app.user("fabrikam", LOGIN).await;
    assert_eq!(user.passkeys[0].credential.pointer("/cred/counter"), Some(&json!(2)), "the counter moved on");
}

#[tokio::test]
async fn refused_passwordless_assertions_sign_nobody_in_and_change_nothing() {
    let app = spawn_rp_app().await;
    let mut key = member_with_passkey(&app).await;
    let own = ["signins", "tenant_signin_log"];
    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(&[]);
    let page = identify_page(&browser, &start).await;
    let before = app.snapshot_except(&own).await;
    let refused = |page: &Page, what: &str| {
        assert_eq!(page.status, StatusCode::OK, "{what}: {}", page.body);
        assert!(page.location.is_none(), "{what}: no redirect");
        assert!(page.has("form#identify") && page.has("p.error"), "{what}: {}", page.body);
    };

    // Without the user handle (a non-discoverable assertion), a stranger's key, another
    // origin, garbage: refused, and each answer spent the ceremony (a fresh one is shown).
    let options = signin_options(&page);
    let page2 = passwordless(&browser, &page, &key.assert(&options, &app.url)).await;
    refused(&page2, "no user handle");
    assert_ne!(signin_options(&page2), options, "a fresh ceremony");
    let mut stranger = SoftKey::with_handle(key.handle());
    let page3 = passwordless(&browser, &page2, &stranger.assert_discoverable(&signin_options(&page2), &app.url)).await;
    refused(&page3, "a credential nobody holds");
    let page4 =
        passwordless(&browser, &page3, &key.assert_discoverable(&signin_options(&page3), "https://evil.example")).await;
    refused(&page4, "a wrong origin");
    let stale = key.assert_discoverable(&signin_options(&page4), &app.url);
    let page5 = passwordless(&browser, &page4, "not a credential").await;
    refused(&page5, "garbage");
    let page6 = passwordless(&browser, &page5, &stale).await;
    refused(&page6, "an assertion for a spent ceremony");
    assert_same(&before, &app.snapshot_except(&own).await, "refused passwordless assertions");

    // The right one still works on the fresh ceremony.
    let done = passwordless(&browser, &page6, &key.assert_discoverable(&signin_options(&page6), &app.url)).await;
    tokens_from(&app, &done, &start).await;
}

#[tokio::test]
async fn a_guest_cannot_sign_in_passwordless_at_the_resource_tenant() {
    use base64::Engine;
    let app = spawn_rp_app().await;
    // A passkey held by the guest Sally at Fabrikam (her second step there): the member's
    // registered one, moved to her record, answering with her user handle.
    let key = member_with_passkey(&app).await;
    app.invite("sally@contoso.example", &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let mut member = app.user("fabrikam", LOGIN).await;
    let mut sally = app.user("fabrikam", "sally@contoso.example").await;
    sally.passkeys = std::mem::take(&mut member.passkeys);
    app.state.store.put_user(&member).await.unwrap();
    app.state.store.put_user(&sally).await.unwrap();
    let handle = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sally.id.as_uuid().as_bytes());
    let mut key = key.rehandled(handle);

    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(&[]);
    let page = identify_page(&browser, &start).await;
    let before = app.snapshot_except(&["signins", "tenant_signin_log"]).await;
    let page = passwordless(&browser, &page, &key.assert_discoverable(&signin_options(&page), &app.url)).await;
    assert!(page.has("form#identify") && page.location.is_none(), "{}", page.body);
    assert!(page.text("p.error").unwrap().contains("home organisation"), "{}", page.body);
    assert_same(&before, &app.snapshot_except(&["signins", "tenant_signin_log"]).await, "a guest's passkey");
}

/// A policy requiring `strength` of test-rp for the member `LOGIN`, through Graph.
async fn require_strength(app: &TestApp, strength: &str) -> String {
    let token = app.admin_token().await;
    let user = app.user("fabrikam", LOGIN).await;
    let body = json!({
        "displayName": "Strong sign-in for Test RP",
        "state": "enabled",
        "conditions": {
            "users": { "includeUsers": [user.id.to_string()] },
            "applications": { "includeApplications": ["test-rp"] },
        },
        "grantControls": { "operator": "OR", "builtInControls": [], "authenticationStrength": { "id": strength } },
    });
    let (status, p) = app.graph(Method::POST, "identity/conditionalAccess/policies", Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["grantControls"]["authenticationStrength"]["id"], strength);
    p["id"].as_str().unwrap().to_string()
}

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

async fn give_totp(app: &TestApp) {
    let mut user = app.user("fabrikam", LOGIN).await;
    user.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal(SECRET), 0)];
    app.state.store.put_user(&user).await.unwrap();
}

#[tokio::test]
async fn phishing_resistant_mfa_refuses_totp_and_a_totp_holder_adds_a_passkey_first_proving_totp() {
    let app = spawn_rp_app().await;
    give_totp(&app).await;
    let policy = require_strength(&app, PHISHING_RESISTANT).await;
    let rp = app.rp("fabrikam");

    // TOTP first (it proves the account), and the page says why a passkey follows.
    let browser = app.browser();
    let start = rp.authorize_url(&[]);
    let page = browser.sign_in(&start.url, LOGIN, &app.password(LOGIN)).await;
    assert!(page.has("form#totp-challenge"), "{}", page.body);
    let why = page.text("p#method-reason").unwrap_or_default();
    assert!(why.contains("Phishing-resistant MFA") && why.contains("Only a passkey"), "{why}");
    assert!(!why.contains("Strong sign-in for Test RP"), "no policy named to the user: {why}");
    let code = totp_at(SECRET, gatehouse::clock::Clock::now(&*app.clock));
    let page = browser.follow(browser.submit(&page.form("totp-challenge").set("code", &code)).await).await;
    // TOTP alone did not satisfy it: register a passkey (no choice, no new recovery codes).
    assert!(page.has("form#passkey-register") && !page.has("form#method-choice"), "{}", page.body);
    let mut key = SoftKey::new();
    let cred = key.register(&options_of(&page), &app.url);
    let done = browser.follow(browser.submit(&page.form("passkey-register").set("credential", &cred)).await).await;
    let tokens = tokens_from(&app, &done, &start).await;
    let id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    let amr: Vec<String> = serde_json::from_value(id["amr"].clone()).unwrap();
    assert!(amr.contains(&"hwk".into()) && amr.contains(&"otp".into()) && amr.contains(&"mfa".into()), "{amr:?}");
    let user = app.user("fabrikam", LOGIN).await;
    assert_eq!((user.totp_methods.len(), user.passkeys.len()), (1, 1), "the passkey was added beside TOTP");

    // The log says which strength was required and what met it.
    let token = app.admin_token().await;
    let (_, log) = app.graph(Method::GET, "auditLogs/signIns?$top=5", Some(&token), None).await;
    let applied: Vec<&Value> = log["value"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["appliedConditionalAccessPolicies"].as_array().unwrap())
        .filter(|p| p["id"] == policy.as_str())
        .collect();
    let met = applied.iter().find(|p| p["result"] == "success").expect("a successful sign-in under the policy");
    assert_eq!(met["authenticationStrength"]["authenticationStrengthId"], PHISHING_RESISTANT);
    assert_eq!(met["authenticationStrength"]["authenticationStrengthResult"], "satisfied");
    assert_eq!(met["authenticationStrength"]["satisfiedBy"], "fido2");
    assert_eq!(met["enforcedGrantControls"], json!(["authenticationStrength"]));
    let unmet = applied.iter().find(|p| p["result"] == "failure").expect("the MFA interruption is logged");
    assert_eq!(unmet["authenticationStrength"]["authenticationStrengthResult"], "notSatisfied");

    // Next time: straight to the passkey (TOTP is not offered), and a TOTP answer is refused.
    let browser = app.browser();
    let start = rp.authorize_url(&[]);
    let page = browser.sign_in(&start.url, LOGIN, &app.password(LOGIN)).await;
    assert!(page.has("form#passkey-challenge") && !page.has("form#method-choice"), "{}", page.body);
    assert!(!page.has("input[name=method][value=totp]"));
    let tx = page.form("passkey-challenge").fields.iter().find(|(k, _)| k == "tx").unwrap().1.clone();
    let csrf = page.form("passkey-challenge").fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    let code = totp_at(SECRET, gatehouse::clock::Clock::now(&*app.clock) + 30);
    let fields = [("tx".to_string(), tx), ("csrf".to_string(), csrf), ("code".to_string(), code)];
    let refused = browser.post(&format!("{}/fabrikam/login/totp", app.url), &fields).await;
    assert!(refused.location.is_none() && refused.status.is_client_error(), "{}: {}", refused.status, refused.body);
    let done = answer(&browser, &page, &key.assert(&options_of(&page), &app.url)).await;
    tokens_from(&app, &done, &start).await;
}

#[tokio::test]
async fn a_strength_tightened_after_a_totp_sign_in_stops_its_refresh_token() {
    let app = spawn_rp_app().await;
    give_totp(&app).await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let (start, page) = step_up(&app, &browser).await;
    let code = totp_at(SECRET, gatehouse::clock::Clock::now(&*app.clock));
    let done = browser.follow(browser.submit(&page.form("totp-challenge").set("code", &code)).await).await;
    let tokens = tokens_from(&app, &done, &start).await;
    let refresh = tokens["refresh_token"].as_str().expect("offline_access").to_string();
    let (status, again) = rp.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{again}");

    require_strength(&app, PHISHING_RESISTANT).await;
    let (status, body) = rp.refresh(again["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn without_passkeys_here_a_phishing_resistant_sign_in_stops_with_a_clear_page() {
    let app = spawn_app().await; // public_url on 127.0.0.1: no WebAuthn relying party
    give_totp(&app).await;
    require_strength(&app, PHISHING_RESISTANT).await;
    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(&[]);
    // The browser's device is registered as at any sign-in that reached conditional access.
    let own = ["signins", "tenant_signin_log", "tenant_devices"];
    let before = app.snapshot_except(&own).await;
    let page = browser.sign_in(&start.url, LOGIN, &app.password(LOGIN)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{}", page.body);
    assert_eq!(page.error_code().as_deref(), Some("strength_unavailable"), "{}", page.body);
    assert!(page.body.contains("Phishing-resistant MFA"));
    assert_same(&before, &app.snapshot_except(&own).await, "a stopped sign-in");
}

#[tokio::test]
async fn custom_strengths_through_graph_and_a_strength_that_allows_only_totp() {
    let app = spawn_rp_app().await;
    let token = app.admin_token().await;
    let path = "policies/authenticationStrengthPolicies";
    let g = async |m: Method, p: &str, b: Option<Value>| app.graph(m, p, Some(&token), b).await;

    let (status, list) = g(Method::GET, path, None).await;
    assert_eq!((status, list["value"].as_array().unwrap().len()), (StatusCode::OK, 3), "{list}");
    let before = app.snapshot_except(&["tenant_signin_log"]).await;
    for (bad, why) in [
        (json!({ "displayName": "x", "allowedCombinations": ["password"] }), "single factor"),
        (
            json!({ "displayName": "x", "allowedCombinations": ["password,pigeon"] }),
            "not an authentication method mode",
        ),
        (json!({ "displayName": "x" }), "allowedCombinations is required"),
        (json!({ "allowedCombinations": ["fido2"] }), "displayName is required"),
        (json!({ "displayName": "Phishing-resistant MFA", "allowedCombinations": ["fido2"] }), "exists"),
        (json!({ "displayName": "x", "allowedCombinations": ["fido2"], "policyType": "builtIn" }), "Only custom"),
        (json!({ "displayName": "x", "allowedCombinations": ["fido2"], "colour": "red" }), "unknown field"),
    ] {
        let (status, body) = g(Method::POST, path, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(why), "{bad}: {body}");
    }
    for p in [format!("{path}/{PHISHING_RESISTANT}")] {
        let (status, _) = g(Method::PATCH, &p, Some(json!({ "displayName": "mine" }))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = g(Method::DELETE, &p, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let unknown = json!({
        "displayName": "Dangling", "state": "enabled",
        "conditions": { "users": { "includeUsers": ["All"] }, "applications": { "includeApplications": ["test-rp"] } },
        "grantControls": { "operator": "OR", "builtInControls": [], "authenticationStrength": { "id": "nope" } },
    });
    let (status, body) = g(Method::POST, "identity/conditionalAccess/policies", Some(unknown)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("unknown authentication strength"), "{body}");
    assert_same(&before, &app.snapshot_except(&["tenant_signin_log"]).await, "refused strength requests");

    let (status, created) = g(
        Method::POST,
        path,
        Some(json!({ "displayName": "App codes only", "description": "TOTP", "allowedCombinations": ["password, softwareOath"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["policyType"].as_str(), created["requirementsSatisfied"].as_str()),
        (Some("custom"), Some("mfa"))
    );
    assert_eq!(created["allowedCombinations"], json!(["password,softwareOath"]));
    let id = created["id"].as_str().unwrap().to_string();
    let (_, list) = g(Method::GET, path, None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 4);
    let (status, _) = g(Method::PATCH, &format!("{path}/{id}"), Some(json!({ "displayName": "App codes" }))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, one) = g(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(one["displayName"], "App codes");

    // Under it, the member's proof-up offers only an authenticator app (no choice).
    let policy = require_strength(&app, &id).await;
    let browser = app.browser();
    let (_, page) = step_up(&app, &browser).await;
    assert!(page.has("form#totp-enroll") && !page.has("form#method-choice"), "{}", page.body);
    assert!(page.text("p#method-reason").unwrap_or_default().contains("Only an authenticator app"), "{}", page.body);

    // In use: not deleted; its combinations change through the action.
    let (status, body) = g(Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("Strong sign-in for Test RP"), "{body}");
    let action = format!("{path}/{id}/updateAllowedCombinations");
    let (status, body) =
        g(Method::POST, &action, Some(json!({ "allowedCombinations": ["fido2", "password,softwareOath"] }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["previousCombinations"], json!(["password,softwareOath"]), "{body}");
    assert_eq!(body["currentCombinations"], json!(["fido2", "password,softwareOath"]), "{body}");
    let (_, one) = g(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(one["allowedCombinations"], json!(["fido2", "password,softwareOath"]));
    let (status, _) = g(Method::DELETE, &format!("identity/conditionalAccess/policies/{policy}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = g(Method::DELETE, &format!("{path}/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = g(Method::GET, &format!("{path}/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
