//! Terms of use and the session controls of DESIGN §12: Graph agreements, the terms step
//! after MFA, acceptances, re-acceptance after the frequency (injected clock), decline;
//! `everyTime` and `secondaryAuthentication` sign-in frequencies; `persistentBrowser`.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::access::{answer_challenge, proof_up};
use crate::helpers::*;

const AGREEMENTS: &str = "identityGovernance/termsOfUse/agreements";
const IW: &str = "iw@fabrikam.example";

fn agreement(name: &str, text: &str, frequency: Option<&str>) -> Value {
    json!({
        "displayName": name,
        "isViewingBeforeAcceptanceRequired": true,
        "userReacceptRequiredFrequency": frequency,
        "files": [{"fileName": "terms.txt", "language": "en", "isDefault": true,
                   "fileData": {"data": STANDARD.encode(text)}}],
    })
}

async fn create_agreement(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app.graph(Method::POST, AGREEMENTS, Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["id"].as_str().unwrap().to_string()
}

/// An enabled policy for `users` on `app_id` with grant `controls` (AND) and the agreement.
fn terms_policy(id: &str, users: &[&str], app_id: &str, controls: &[&str], terms: &str) -> Value {
    json!({
        "displayName": format!("Terms {id}"), "state": "enabled",
        "conditions": {"users": {"includeUsers": users}, "applications": {"includeApplications": [app_id]}},
        "grantControls": {"operator": "AND", "builtInControls": controls, "termsOfUse": [terms]},
    })
}

async fn create_policy(app: &TestApp, token: &str, body: Value) {
    let (status, created) =
        app.graph(Method::POST, "identity/conditionalAccess/policies", Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
}

async fn user_id(app: &TestApp, login: &str) -> String {
    app.user("fabrikam", login).await.id.to_string()
}

#[tokio::test]
async fn agreements_through_graph_and_every_bad_input_changes_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let text = "1. Keep Fabrikam's data confidential.\n\n2. Report incidents within 24 hours.";
    let id = create_agreement(&app, &token, agreement("Partner terms", text, Some("P90D"))).await;
    let (status, got) = app.graph(Method::GET, &format!("{AGREEMENTS}/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["displayName"], "Partner terms");
    assert_eq!(got["userReacceptRequiredFrequency"], "P90D");
    assert_eq!(got["isPerDeviceAcceptanceRequired"], false);
    assert_eq!(got["files"][0]["fileData"]["data"], STANDARD.encode(text), "the text round-trips");
    let (_, list) = app.graph(Method::GET, AGREEMENTS, Some(&token), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("{AGREEMENTS}/{id}"),
            Some(&token),
            Some(json!({"userReacceptRequiredFrequency": "P30D"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) = app.graph(Method::GET, &format!("{AGREEMENTS}/{id}"), Some(&token), None).await;
    assert_eq!(got["userReacceptRequiredFrequency"], "P30D");

    let file = |data: &str| json!({"displayName": "X", "files": [{"fileName": "t.txt", "fileData": {"data": data}}]});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = agreement("Other terms", "Be nice.", None);
        f(&mut v);
        v
    };
    let bad_creates: Vec<(&str, Value, &str)> = vec![
        (
            "no displayName",
            with(&|v| {
                v.as_object_mut().unwrap().remove("displayName");
            }),
            "displayName is required",
        ),
        (
            "no files",
            with(&|v| {
                v.as_object_mut().unwrap().remove("files");
            }),
            "files is required",
        ),
        (
            "two files",
            with(&|v| {
                let f = v["files"][0].clone();
                v["files"] = json!([f.clone(), f]);
            }),
            "exactly one file",
        ),
        ("not base64", file("%%%"), "must be base64"),
        ("not UTF-8 (a PDF)", file(&STANDARD.encode([0x25, 0x50, 0x44, 0x46, 0xff, 0xfe])), "UTF-8 text"),
        ("empty text", file(&STANDARD.encode("   ")), "non-empty text"),
        ("too long", file(&STANDARD.encode("x".repeat(17 * 1024))), "at most"),
        ("duplicate name", agreement("partner TERMS", "Other text.", None), "exists"),
        ("months", with(&|v| v["userReacceptRequiredFrequency"] = json!("P3M")), "months are not supported"),
        ("years", with(&|v| v["userReacceptRequiredFrequency"] = json!("P1Y")), "years and months"),
        ("not a duration", with(&|v| v["userReacceptRequiredFrequency"] = json!("90 days")), "ISO 8601"),
        ("too short", with(&|v| v["userReacceptRequiredFrequency"] = json!("PT30S")), "between one minute"),
        ("too long a period", with(&|v| v["userReacceptRequiredFrequency"] = json!("P4000D")), "between one minute"),
        ("per device", with(&|v| v["isPerDeviceAcceptanceRequired"] = json!(true)), "isPerDeviceAcceptanceRequired"),
        ("expiration", with(&|v| v["termsExpiration"] = json!({"frequency": "P1D"})), "termsExpiration"),
        ("unknown field", with(&|v| v["colour"] = json!("red")), "unknown field"),
        (
            "client-chosen id",
            with(&|v| v["id"] = json!("00000000-0000-4000-8000-000000000001")),
            "assigned by the server",
        ),
    ];
    for (name, body, expected) in bad_creates {
        let before = app.snapshot().await;
        let (status, err) = app.graph(Method::POST, AGREEMENTS, Some(&token), Some(body)).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "case {name}: {message}");
        assert_same(&before, &app.snapshot().await, name);
    }

    // A policy may only name agreements of the tenant; an agreement a policy requires stays.
    let unknown = "7e000000-0000-4000-8000-00000000dead";
    let bad_policies: Vec<(&str, Value, &str)> = vec![
        ("unknown agreement", terms_policy("u", &["All"], "foo", &[], unknown), "unknown agreement"),
        ("not an id", terms_policy("n", &["All"], "foo", &[], "partner-terms"), "not an agreement id"),
        (
            "persistent browser for one app",
            json!({"displayName": "Persist", "state": "enabled",
                   "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["foo"]}},
                   "sessionControls": {"persistentBrowser": {"mode": "always", "isEnabled": true}}}),
            "includeApplications All",
        ),
    ];
    for (name, body, expected) in bad_policies {
        let before = app.snapshot().await;
        let (status, err) =
            app.graph(Method::POST, "identity/conditionalAccess/policies", Some(&token), Some(body)).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert!(err["error"]["message"].as_str().unwrap().contains(expected), "case {name}: {err}");
        assert_same(&before, &app.snapshot().await, name);
    }
    create_policy(&app, &token, terms_policy("p", &["GuestsOrExternalUsers"], "foo", &[], &id)).await;
    let bad_changes: Vec<(&str, Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            "delete while required",
            Method::DELETE,
            format!("{AGREEMENTS}/{id}"),
            None,
            StatusCode::BAD_REQUEST,
            "required by",
        ),
        (
            "new text",
            Method::PATCH,
            format!("{AGREEMENTS}/{id}"),
            Some(json!({"files": [{"fileData": {"data": STANDARD.encode("New")}}]})),
            StatusCode::BAD_REQUEST,
            "files cannot change",
        ),
        (
            "zero period",
            Method::PATCH,
            format!("{AGREEMENTS}/{id}"),
            Some(json!({"userReacceptRequiredFrequency": "P0D"})),
            StatusCode::BAD_REQUEST,
            "between one minute",
        ),
        ("unknown id", Method::GET, format!("{AGREEMENTS}/{unknown}"), None, StatusCode::NOT_FOUND, "does not exist"),
        (
            "unknown id (delete)",
            Method::DELETE,
            format!("{AGREEMENTS}/nope"),
            None,
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
        (
            "acceptances of an unknown id",
            Method::GET,
            format!("{AGREEMENTS}/{unknown}/acceptances"),
            None,
            StatusCode::NOT_FOUND,
            "does not exist",
        ),
    ];
    for (name, method, path, body, expected_status, expected) in bad_changes {
        let before = app.snapshot().await;
        let (status, err) = app.graph(method, &path, Some(&token), body).await;
        assert_eq!(status, expected_status, "case {name}: {err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(expected), "case {name}: {err}");
        assert_same(&before, &app.snapshot().await, name);
    }
    // Reading needs a token.
    let (status, _) = app.graph(Method::GET, AGREEMENTS, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Follows a sign-in of iw (already enrolled, `secret`) to the terms page, whatever comes first.
async fn to_terms(app: &TestApp, browser: &Browser, url: &str, secret: &str) -> Page {
    let mut page = browser.sign_in(url, IW, &app.password(IW)).await;
    if page.has("form#totp-challenge") {
        app.clock.advance(30);
        page = answer_challenge(browser, &page, &totp_at(secret, app.clock.now())).await;
    }
    page
}

#[tokio::test]
async fn terms_come_after_mfa_are_recorded_not_asked_again_and_asked_after_the_period() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let text = "Use test-rp for testing only.\n\nDo not share what you see.";
    let terms = create_agreement(&app, &token, agreement("Test RP terms", text, Some("PT1H"))).await;
    let iw = user_id(&app, IW).await;
    create_policy(&app, &token, terms_policy("mfa", &[&iw], "test-rp", &["mfa"], &terms)).await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let start = rp.authorize_url(&[("scope", "openid offline_access")]);
    let page = browser.sign_in(&start.url, IW, &app.password(IW)).await;
    // MFA first (proof-up), then the terms.
    let (secret, _, page) = proof_up(&app, &browser, page).await;
    assert!(
        page.has("form#terms") && page.has("button#accept-terms") && page.has("button#decline-terms"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Do not share what you see."), "the text is shown: {}", page.body);
    let acceptances = format!("{AGREEMENTS}/{terms}/acceptances");
    let (_, none) = app.graph(Method::GET, &acceptances, Some(&token), None).await;
    assert_eq!(none["value"], json!([]), "nothing is recorded before the user answers");
    let done = browser.post_abs(&page.url, &page.form("terms").set("decision", "accept")).await;
    let code = query_param(done.location.as_deref().expect("to the RP"), "code").expect("a code after accepting");
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    let (_, list) = app.graph(Method::GET, &acceptances, Some(&token), None).await;
    let entries = list["value"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(entries[0]["userId"], iw.as_str());
    assert_eq!(entries[0]["userPrincipalName"], IW);
    assert_eq!(entries[0]["state"], "accepted");
    assert!(entries[0]["expirationDateTime"].is_string());

    // Within the period: the SSO session is reused without the terms.
    app.clock.advance(600);
    let again = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(again.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", again.body);
    // A refresh passes too.
    let (status, refreshed) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");

    // After the period: the refresh needs the user, and the next sign-in asks again.
    app.clock.advance(3600);
    let (status, body) = rp.refresh(refreshed["refresh_token"].as_str().unwrap()).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(body["error_description"].as_str().unwrap().contains("interaction_required"), "{body}");
    let page = to_terms(&app, &browser, &rp.authorize_url(&[]).url, &secret).await;
    assert!(page.has("form#terms"), "asked again after PT1H: {}", page.body);
    let done = browser.post_abs(&page.url, &page.form("terms").set("decision", "accept")).await;
    assert!(done.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", done.body);
    // The clock moved past the admin token's lifetime.
    let token = app.admin_token().await;
    let (_, list) = app.graph(Method::GET, &acceptances, Some(&token), None).await;
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "one entry per user: the latest acceptance: {list}");
    assert_ne!(list["value"][0]["recordedDateTime"], entries[0]["recordedDateTime"]);

    // What If says what the sign-in would ask: after the period, the terms.
    app.clock.advance(3601);
    let token = app.admin_token().await;
    let (status, what_if) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(&token),
            Some(json!({"userId": iw, "appId": "test-rp", "authenticationMethods": ["pwd", "mfa"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{what_if}");
    assert_eq!(what_if["outcome"], "terms", "{what_if}");
    assert_eq!(what_if["termsOfUseRequired"], json!([terms]));
}

#[tokio::test]
async fn declining_the_terms_ends_the_sign_in_and_records_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let terms = create_agreement(&app, &token, agreement("Terms", "Be careful.", None)).await;
    let iw = user_id(&app, IW).await;
    create_policy(&app, &token, terms_policy("t", &[&iw], "test-rp", &[], &terms)).await;
    let browser = app.browser();
    let rp = app.rp("fabrikam");
    let page = browser.sign_in(&rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert!(page.has("form#terms"), "{}", page.body);

    // A form without a decision is refused and changes nothing.
    let before = app.snapshot_without_log().await;
    let unclear = browser.post_abs(&page.url, &page.form("terms")).await;
    assert_eq!(unclear.status, StatusCode::BAD_REQUEST);
    assert_eq!(unclear.error_code().as_deref(), Some("invalid_request"));
    assert_same(&before, &app.snapshot_without_log().await, "no decision");

    let declined = browser.post_abs(&page.url, &page.form("terms").set("decision", "decline")).await;
    assert_eq!(declined.status, StatusCode::FORBIDDEN);
    assert_eq!(declined.error_code().as_deref(), Some("terms_declined"), "{}", declined.body);
    assert!(declined.location.is_none(), "no code reaches the RP");
    assert!(app.user("fabrikam", IW).await.agreement_acceptances.is_empty());
    let (_, list) = app.graph(Method::GET, &format!("{AGREEMENTS}/{terms}/acceptances"), Some(&token), None).await;
    assert_eq!(list["value"], json!([]));
    // The transaction is spent: accepting afterwards is refused.
    let late = browser.post_abs(&page.url, &page.form("terms").set("decision", "accept")).await;
    assert_eq!(late.error_code().as_deref(), Some("signin_expired"));
    let (_, log) = app.graph(Method::GET, "auditLogs/signIns", Some(&token), None).await;
    let errors: Vec<&str> =
        log["value"].as_array().unwrap().iter().filter_map(|e| e["status"]["error"].as_str()).collect();
    assert!(errors.contains(&"terms_declined") && errors.contains(&"terms_required"), "{errors:?}");
}

fn frequency_policy(iw: &str, frequency: Value) -> Value {
    json!({
        "displayName": "Frequency", "state": "enabled",
        "conditions": {"users": {"includeUsers": [iw]}, "applications": {"includeApplications": ["test-rp"]}},
        "grantControls": {"operator": "AND", "builtInControls": ["mfa"]},
        "sessionControls": {"signInFrequency": frequency},
    })
}

#[tokio::test]
async fn secondary_authentication_asks_only_mfa_again() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let iw = user_id(&app, IW).await;
    let every_hour = json!({"value": 1, "type": "hours", "authenticationType": "secondaryAuthentication",
                            "frequencyInterval": "timeBased", "isEnabled": true});
    create_policy(&app, &token, frequency_policy(&iw, every_hour)).await;
    let browser = app.browser();
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let page = browser.sign_in(&start.url, IW, &app.password(IW)).await;
    let (secret, _, done) = proof_up(&app, &browser, page).await;
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    let (_, tokens) = rp.exchange(&code, &start.verifier).await;
    let first = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;

    app.clock.advance(1800);
    let reuse = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(reuse.location.as_deref().is_some_and(|l| l.contains("code=")), "within the hour: {}", reuse.body);

    app.clock.advance(1801);
    let start = rp.authorize_url(&[]);
    let challenge = browser.follow(browser.get(&start.url).await).await;
    assert!(challenge.has("form#totp-challenge"), "only the second factor, no password: {}", challenge.body);
    let done = answer_challenge(&browser, &challenge, &totp_at(&secret, app.clock.now())).await;
    let code = query_param(done.location.as_deref().expect("to the RP"), "code").unwrap();
    let (_, tokens) = rp.exchange(&code, &start.verifier).await;
    let second = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(second["auth_time"], first["auth_time"], "the password sign-in is the same one");
    assert_eq!(second["amr"], json!(["pwd", "otp", "mfa"]));

    // Just after the new MFA, the session is reused again.
    app.clock.advance(60);
    let reuse = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(reuse.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", reuse.body);
}

#[tokio::test]
async fn every_time_asks_again_after_five_minutes() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let iw = user_id(&app, IW).await;
    let every = json!({"authenticationType": "primaryAndSecondaryAuthentication", "frequencyInterval": "everyTime", "isEnabled": true});
    create_policy(&app, &token, frequency_policy(&iw, every)).await;
    let (_, policies) = app.graph(Method::GET, "identity/conditionalAccess/policies", Some(&token), None).await;
    let stored =
        policies["value"].as_array().unwrap().iter().find(|p| p["displayName"] == "Frequency").unwrap().clone();
    assert_eq!(
        stored["sessionControls"]["signInFrequency"]["value"],
        Value::Null,
        "Graph's shape: no value with everyTime"
    );
    let browser = app.browser();
    let rp = app.rp("fabrikam");
    let page = browser.sign_in(&rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    proof_up(&app, &browser, page).await;
    app.clock.advance(240);
    let reuse = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(
        reuse.location.as_deref().is_some_and(|l| l.contains("code=")),
        "within Entra's five minutes: {}",
        reuse.body
    );
    app.clock.advance(120);
    let again = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
    assert!(again.has("form#identify"), "a full sign-in again: {}", again.body);
}

/// The SSO cookie the last step of iw's sign-in sets, from its `Set-Cookie` header.
async fn sso_cookie(app: &TestApp) -> String {
    let browser = app.browser();
    let page = browser.follow(browser.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
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
    assert_eq!(resp.status(), StatusCode::FOUND);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("gh_sso="))
        .expect("the sign-in sets the SSO cookie")
}

#[tokio::test]
async fn persistent_browser_always_keeps_the_sso_cookie_and_never_wins() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let iw = user_id(&app, IW).await;
    let persistent = |name: &str, mode: &str| {
        json!({"displayName": name, "state": "enabled",
               "conditions": {"users": {"includeUsers": [iw]}, "applications": {"includeApplications": ["All"]}},
               "sessionControls": {"persistentBrowser": {"mode": mode, "isEnabled": true}}})
    };
    let default = sso_cookie(&app).await;
    assert!(!default.to_ascii_lowercase().contains("max-age"), "a browser-session cookie by default: {default}");
    create_policy(&app, &token, persistent("Keep me signed in", "always")).await;
    let always = sso_cookie(&app).await;
    assert!(always.contains("Max-Age=43200"), "kept for the session's lifetime (12 h): {always}");
    create_policy(&app, &token, persistent("Never persist", "never")).await;
    let never = sso_cookie(&app).await;
    assert!(!never.to_ascii_lowercase().contains("max-age"), "never wins over always: {never}");
    let (_, what_if) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(&token),
            Some(json!({"userId": iw, "appId": "test-rp"})),
        )
        .await;
    assert_eq!(what_if["persistentBrowser"], false, "{what_if}");
}

#[tokio::test]
async fn the_admin_page_shows_agreements_and_partner_settings() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let terms = create_agreement(&app, &token, agreement("Partner terms", "Be careful.", Some("P90D"))).await;
    create_agreement(&app, &token, agreement("Unused terms", "Nothing.", None)).await;
    let iw = user_id(&app, IW).await;
    create_policy(&app, &token, terms_policy("t", &[&iw], "test-rp", &[], &terms)).await;
    let browser = app.browser();
    let page = browser.sign_in(&app.rp("fabrikam").authorize_url(&[]).url, IW, &app.password(IW)).await;
    let done = browser.post_abs(&page.url, &page.form("terms").set("decision", "accept")).await;
    assert!(done.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", done.body);
    let browser = app.browser();
    let contoso = app.tenant_id("contoso").await.to_string();
    let partner = json!({"tenantId": contoso, "inboundTrust": {"isMfaAccepted": true, "isCompliantDeviceAccepted": true},
                         "b2bCollaborationInbound": {"usersAndGroups": {"accessType": "blocked", "targets": [{"target": "AllUsers", "targetType": "user"}]}}});
    let (status, body) =
        app.graph(Method::POST, "policies/crossTenantAccessPolicy/partners", Some(&token), Some(partner)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let admin = "admin@fabrikam.example";
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let p = browser.follow(browser.submit(&login.form("identify").set("login", admin)).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", &app.password(admin))).await).await;
    assert!(page.has("table#agreements caption") && page.has("table#partners caption"), "{}", page.body);
    let cell = |css: &str| page.text(css).unwrap_or_else(|| panic!("{css} in {}", page.body));
    let row = format!("table#agreements tr[data-agreement=\"{terms}\"]");
    assert_eq!(cell(&format!("{row} th")), "Partner terms");
    assert_eq!(cell(&format!("{row} td.count")), "1", "iw accepted");
    assert!(page.body.contains("Unused terms"));
    let row = format!("table#partners tr[data-tenant=\"{contoso}\"]");
    assert_eq!(cell(&format!("{row} th")), "Contoso");
    assert_eq!(cell(&format!("{row} td.trust")), "MFA, compliant devices");
    assert!(cell(&format!("{row} td.inbound")).contains("all users: blocked"), "{}", page.body);
    assert_eq!(cell(&format!("{row} td.outbound")), "as the default");
}
