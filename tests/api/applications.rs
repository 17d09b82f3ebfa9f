//! Graph `applications` (POST/GET/PATCH/DELETE, addPassword/removePassword), users'
//! `appRoleAssignments` and `appRoleAssignmentRequired` at sign-in, and `POST /users` with
//! `passwordProfile` (the change-password step at the next sign-in, an admin's reset).
//! Every refused body answers a Graph error and leaves the store as it was.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use gatehouse::clock::Clock;

use crate::helpers::*;

const IW: &str = "iw@fabrikam.example";

async fn post_app(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app.graph(Method::POST, "applications", Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

async fn add_password(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.graph(Method::POST, &format!("applications/{id}/addPassword"), Some(token), Some(body)).await
}

/// A confidential RP registered through Graph, with one secret: `(appId, secret)`.
async fn registered_rp(app: &TestApp, token: &str, extra: Value) -> (String, String) {
    let mut body = json!({"displayName": "Payroll", "web": {"redirectUris": ["http://127.0.0.1/callback"]}});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let created = post_app(app, token, body).await;
    let id = created["appId"].as_str().unwrap().to_string();
    let (status, pw) = add_password(app, token, &id, json!({"passwordCredential": {"displayName": "rp"}})).await;
    assert_eq!(status, StatusCode::OK, "{pw}");
    (id, pw["secretText"].as_str().unwrap().to_string())
}

fn rp_for(app: &TestApp, client_id: &str, secret: Option<&str>) -> Rp {
    Rp { client_id: client_id.into(), secret: secret.map(String::from), ..app.rp("fabrikam") }
}

/// Walks the sign-in of `login` through `start`, accepting the app-consent question if asked.
async fn sign_in_page(browser: &Browser, url: &str, login: &str, password: &str) -> Page {
    let page = browser.sign_in(url, login, password).await;
    accept_app_consent(browser, page).await
}

pub async fn accept_app_consent(browser: &Browser, page: Page) -> Page {
    if page.has("form#consent") && page.body.contains("/login/app-consent") {
        return browser.follow(browser.submit(&page.form("consent").set("decision", "accept")).await).await;
    }
    page
}

fn code_of(page: &Page) -> String {
    let loc = page.location.as_deref().unwrap_or_else(|| panic!("a redirect to the RP: {} {}", page.status, page.body));
    assert!(loc.starts_with("http://127.0.0.1:9/callback?"), "{loc}");
    query_param(loc, "code").expect("code")
}

#[tokio::test]
async fn applications_are_created_read_updated_and_deleted_in_graph_shape() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let created = post_app(
        &app,
        &token,
        json!({
            "displayName": "Payroll",
            "web": {"redirectUris": ["https://payroll.example/cb", "http://127.0.0.1/callback"],
                    "logoutUrl": "https://payroll.example/bye", "homePageUrl": "https://payroll.example/"},
            "idTokenSignedResponseAlg": "RS256",
            "appRoles": [{"value": "Payroll.Read", "displayName": "Read payroll", "allowedMemberTypes": ["Application"]},
                         {"value": "Approver", "allowedMemberTypes": ["User"]}],
            "groupMembershipClaims": "SecurityGroup",
            "appRoleAssignmentRequired": true,
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["appId"], id.as_str(), "id is the appId (gatehouse has no separate object id)");
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a new GUID: {id}");
    assert_eq!(created["web"]["redirectUris"], json!(["https://payroll.example/cb", "http://127.0.0.1/callback"]));
    assert_eq!(created["web"]["logoutUrl"], "https://payroll.example/bye");
    assert_eq!(created["postLogoutRedirectUris"], json!(["https://payroll.example/bye"]));
    assert_eq!(created["isFallbackPublicClient"], false);
    assert_eq!(created["idTokenSignedResponseAlg"], "RS256");
    assert_eq!(created["groupMembershipClaims"], "SecurityGroup");
    assert_eq!(created["appRoleAssignmentRequired"], true);
    assert_eq!(created["passwordCredentials"], json!([]));
    let roles = created["appRoles"].as_array().unwrap();
    assert_eq!(roles.len(), 2);
    assert_eq!((roles[0]["value"].as_str(), roles[0]["isEnabled"].as_bool()), (Some("Payroll.Read"), Some(true)));
    assert_eq!(roles[1]["displayName"], "Approver", "displayName defaults to the value");
    let (status, read) = app.graph(Method::GET, &format!("applications/{id}"), Some(&token), None).await;
    assert_eq!((status, &read), (StatusCode::OK, &created));
    let (_, list) = app.graph(Method::GET, "applications?$filter=displayName eq 'Payroll'", Some(&token), None).await;
    assert_eq!(list["value"], json!([created]));

    // PATCH changes what it names, and only that; Entra's spelling `assignmentRequired` too.
    let (status, body) = app
        .graph(
            Method::PATCH,
            &format!("applications/{id}"),
            Some(&token),
            Some(json!({"displayName": "Payroll 2", "assignmentRequired": false, "groupMembershipClaims": null})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, read) = app.graph(Method::GET, &format!("applications/{id}"), Some(&token), None).await;
    assert_eq!(read["displayName"], "Payroll 2");
    assert_eq!(
        (read["appRoleAssignmentRequired"].clone(), read["groupMembershipClaims"].clone()),
        (json!(false), Value::Null)
    );
    assert_eq!(read["web"], created["web"]);
    assert_eq!(read["appRoles"], created["appRoles"]);

    // A public client: SPA and native (loopback, any port; a private-use scheme) redirect URIs.
    let public = post_app(
        &app,
        &token,
        json!({"displayName": "Desktop", "isFallbackPublicClient": true,
               "spa": {"redirectUris": ["https://spa.example/"]},
               "publicClient": {"redirectUris": ["http://127.0.0.1/callback", "com.example.desktop:/auth"]}}),
    )
    .await;
    assert_eq!(public["isFallbackPublicClient"], true);
    assert_eq!(public["web"]["redirectUris"], json!([]));
    assert_eq!(public["spa"]["redirectUris"], json!(["https://spa.example/"]));
    assert_eq!(
        public["publicClient"]["redirectUris"],
        json!(["http://127.0.0.1/callback", "com.example.desktop:/auth"])
    );

    let (status, _) = app.graph(Method::DELETE, &format!("applications/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.graph(Method::GET, &format!("applications/{id}"), Some(&token), None).await;
    assert_graph_error(status, &body, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert!(app.state.store.app(&app.tenant_id("fabrikam").await, &id).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_application_bodies_get_graph_errors_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let web = |uris: Value| json!({"displayName": "X", "web": {"redirectUris": uris}});
    let cases: Vec<(&str, Value)> = vec![
        ("no displayName", json!({"web": {"redirectUris": ["https://x.example/cb"]}})),
        ("empty displayName", json!({"displayName": ""})),
        ("relative URI", web(json!(["/callback"]))),
        ("not a URI", web(json!(["x.example/cb"]))),
        ("fragment", web(json!(["https://x.example/cb#frag"]))),
        ("wildcard", web(json!(["https://*.x.example/cb"]))),
        ("http off loopback", web(json!(["http://x.example/cb"]))),
        ("localhost is not loopback by address", web(json!(["http://localhost/cb"]))),
        ("user information", web(json!(["https://u:p@x.example/cb"]))),
        ("line break", web(json!(["https://x.example/c\nb"]))),
        ("javascript", web(json!(["javascript:alert(1)"]))),
        ("too long", web(json!([format!("https://x.example/{}", "a".repeat(1100))]))),
        ("twice", web(json!(["https://x.example/cb", "https://x.example/cb"]))),
        ("private scheme on web", web(json!(["com.example.app:/cb"]))),
        (
            "native scheme without a dot",
            json!({"displayName": "X", "isFallbackPublicClient": true,
            "publicClient": {"redirectUris": ["myapp:/cb"]}}),
        ),
        ("spa on a confidential app", json!({"displayName": "X", "spa": {"redirectUris": ["https://x.example/"]}})),
        ("bad logoutUrl", json!({"displayName": "X", "web": {"logoutUrl": "http://x.example/bye"}})),
        ("unknown alg", json!({"displayName": "X", "idTokenSignedResponseAlg": "HS256"})),
        ("lowercase alg", json!({"displayName": "X", "idTokenSignedResponseAlg": "rs256"})),
        ("duplicate role values", json!({"displayName": "X", "appRoles": [{"value": "A"}, {"value": "a"}]})),
        ("empty role value", json!({"displayName": "X", "appRoles": [{"value": ""}]})),
        ("role value with a space", json!({"displayName": "X", "appRoles": [{"value": "Read All"}]})),
        ("bad member type", json!({"displayName": "X", "appRoles": [{"value": "A", "allowedMemberTypes": ["Robot"]}]})),
        (
            "duplicate role ids",
            json!({"displayName": "X", "appRoles": [
            {"id": "00000000-0000-0000-0000-000000000001", "value": "A"},
            {"id": "00000000-0000-0000-0000-000000000001", "value": "B"}]}),
        ),
        ("bad groupMembershipClaims", json!({"displayName": "X", "groupMembershipClaims": "Everything"})),
        ("id given", json!({"displayName": "X", "appId": "mine"})),
        ("secret inline", json!({"displayName": "X", "passwordCredentials": [{"secretText": "s"}]})),
        ("unknown field", json!({"displayName": "X", "redirectUri": "https://x.example/cb"})),
        ("unknown web field", json!({"displayName": "X", "web": {"redirectUri": "https://x.example/cb"}})),
        ("wrong type", json!({"displayName": "X", "isFallbackPublicClient": "yes"})),
    ];
    let before = app.snapshot().await;
    for (what, body) in &cases {
        let (status, answer) = app.graph(Method::POST, "applications", Some(&token), Some(body.clone())).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("POST {what}"));
    }

    // An app role that is a permission of the admin API only from a caller that holds it.
    let escalate = json!({"displayName": "X", "appRoles": [{"value": "Application.ReadWrite.All"}]});
    let (status, answer) = app.graph(Method::POST, "applications", Some(&token), Some(escalate)).await;
    assert_graph_error(status, &answer, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot().await, "POST a permission the caller lacks");
    let held =
        post_app(&app, &token, json!({"displayName": "Inviter", "appRoles": [{"value": "User.Invite.All"}]})).await;
    let inviter = held["appId"].as_str().unwrap();
    let before = app.snapshot().await;
    let escalate = json!({"appRoles": [{"value": "User.Invite.All"}, {"value": "AuditLog.Read.All"}]});
    let (status, answer) =
        app.graph(Method::PATCH, &format!("applications/{inviter}"), Some(&token), Some(escalate)).await;
    assert_graph_error(status, &answer, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot().await, "PATCH a permission the caller lacks");

    // The same on an existing app, plus what only a PATCH can get wrong.
    let (id, _) = registered_rp(&app, &token, json!({})).await;
    let path = format!("applications/{id}");
    let before = app.snapshot().await;
    for (what, body) in cases.iter().skip(2) {
        let (status, answer) = app.graph(Method::PATCH, &path, Some(&token), Some(body.clone())).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("PATCH {what}"));
    }
    let (status, answer) =
        app.graph(Method::PATCH, &path, Some(&token), Some(json!({"isFallbackPublicClient": true}))).await;
    assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
    assert!(answer["error"]["message"].as_str().unwrap().contains("removePassword"), "{answer}");
    for (method, p) in [(Method::PATCH, "applications/nope"), (Method::DELETE, "applications/nope")] {
        let (status, answer) = app.graph(method, p, Some(&token), Some(json!({"displayName": "Y"}))).await;
        assert_graph_error(status, &answer, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    }
    for (method, p) in [(Method::PATCH, "applications/gatehouse-b2b"), (Method::DELETE, "applications/gatehouse-b2b")] {
        let (status, answer) = app.graph(method, p, Some(&token), Some(json!({"displayName": "Y"}))).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
    }
    let (status, answer) = app.graph(Method::DELETE, "applications/gatehouse-admin", Some(&token), None).await;
    assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
    let (status, answer) = app.graph(Method::POST, "applications", None, Some(json!({"displayName": "X"}))).await;
    assert_graph_error(status, &answer, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    assert_same(&before, &app.snapshot().await, "refused PATCH and DELETE");
}

#[tokio::test]
async fn add_password_shows_the_secret_once_and_it_works_until_its_end_or_removal() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let created = post_app(&app, &token, json!({"displayName": "Daemon"})).await;
    let id = created["appId"].as_str().unwrap().to_string();
    let end = gatehouse::clock::rfc3339(app.clock.now() + 3600);
    let (status, pw) =
        add_password(&app, &token, &id, json!({"passwordCredential": {"displayName": "ci", "endDateTime": end}})).await;
    assert_eq!(status, StatusCode::OK, "{pw}");
    let secret = pw["secretText"].as_str().unwrap().to_string();
    assert!(secret.len() >= 32, "a long random secret");
    assert_eq!((pw["displayName"].as_str(), pw["endDateTime"].as_str()), (Some("ci"), Some(end.as_str())));
    assert_eq!(pw["hint"].as_str(), Some(&secret[..3]));
    let key_id = pw["keyId"].as_str().unwrap().to_string();
    // Shown once: Graph lists the credential without it, and the store keeps only a digest.
    let (_, read) = app.graph(Method::GET, &format!("applications/{id}"), Some(&token), None).await;
    assert_eq!(read["passwordCredentials"][0]["keyId"], key_id.as_str());
    assert_eq!(read["passwordCredentials"][0]["secretText"], Value::Null);
    let stored = format!("{:?}", app.snapshot().await);
    assert!(!stored.contains(&secret), "the secret is not stored in clear");

    let rp = rp_for(&app, &id, Some(&secret));
    let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let wrong = rp_for(&app, &id, Some("not-the-secret"));
    let (status, body) = wrong.token(&[("grant_type", "client_credentials")]).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");

    // A second secret, then the first expires: invalid_client that says so; the second works.
    let (_, pw2) = add_password(&app, &token, &id, json!({})).await;
    let second = pw2["secretText"].as_str().unwrap().to_string();
    app.clock.advance(3600);
    let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(body["error_description"].as_str().unwrap().contains("expired"), "{body}");
    let rp2 = rp_for(&app, &id, Some(&second));
    assert_eq!(rp2.token(&[("grant_type", "client_credentials")]).await.0, StatusCode::OK);

    // Bad addPassword/removePassword bodies change nothing.
    let token = app.admin_token().await;
    let public = post_app(&app, &token, json!({"displayName": "Cli", "isFallbackPublicClient": true})).await;
    let public_id = public["appId"].as_str().unwrap();
    let now = app.clock.now();
    let bad_adds: Vec<(&str, Value)> = vec![
        (public_id, json!({})),
        (&id, json!({"passwordCredential": {"endDateTime": gatehouse::clock::rfc3339(now - 1)}})),
        (&id, json!({"passwordCredential": {"endDateTime": gatehouse::clock::rfc3339(now + 3 * 365 * 86_400)}})),
        (&id, json!({"passwordCredential": {"endDateTime": "next year"}})),
        (&id, json!({"passwordCredential": {"displayName": "a\u{202e}b"}})),
        (&id, json!({"passwordCredential": {"secretText": "mine"}})),
    ];
    let before = app.snapshot().await;
    for (target, body) in &bad_adds {
        let (status, answer) = add_password(&app, &token, target, body.clone()).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("addPassword {body}"));
    }
    let remove_path = format!("applications/{id}/removePassword");
    let remove = |body: Value| app.graph(Method::POST, &remove_path, Some(&token), Some(body));
    for body in [json!({}), json!({"keyId": "nope"}), json!({"keyId": key_id, "extra": 1})] {
        let (status, answer) = remove(body.clone()).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
    }
    let (status, answer) = remove(json!({"keyId": uuid::Uuid::new_v4()})).await;
    assert_graph_error(status, &answer, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_same(&before, &app.snapshot().await, "removePassword refused");

    let (status, _) = remove(json!({"keyId": pw2["keyId"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = rp2.token(&[("grant_type", "client_credentials")]).await;
    assert_oauth_error(status, &body, StatusCode::UNAUTHORIZED, "invalid_client");
}

#[tokio::test]
async fn an_app_that_requires_assignment_lets_in_only_assigned_users() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (id, secret) = registered_rp(&app, &token, json!({"appRoleAssignmentRequired": true})).await;
    let rp = rp_for(&app, &id, Some(&secret));
    let browser = app.browser();
    let start = rp.authorize_url(&[]);
    let before = app.snapshot_except(&["signins", "tenant_signin_log", "limits"]).await;
    let page = sign_in_page(&browser, &start.url, IW, &app.password(IW)).await;
    assert_eq!(
        (page.status, page.error_code().as_deref()),
        (StatusCode::FORBIDDEN, Some("not_assigned")),
        "{}",
        page.body
    );
    assert!(page.location.is_none(), "the RP gets nothing");
    assert!(page.body.contains("Payroll") && page.body.contains("administrator"), "{}", page.body);
    assert_same(&before, &app.snapshot_except(&["signins", "tenant_signin_log", "limits"]).await, "refused sign-in");

    // Bad assignments: Graph errors, nothing stored.
    let iw = app.user("fabrikam", IW).await;
    let path = format!("users/{}/appRoleAssignments", iw.id);
    let ok = json!({"principalId": iw.id, "resourceId": id});
    let before = app.snapshot().await;
    for body in [
        json!({"resourceId": id}),
        json!({"principalId": uuid::Uuid::new_v4(), "resourceId": id}),
        json!({"principalId": iw.id}),
        json!({"principalId": iw.id, "resourceId": "no-such-app"}),
        json!({"principalId": iw.id, "resourceId": id, "appRoleId": "x"}),
        json!({"principalId": iw.id, "resourceId": id, "appRoleId": uuid::Uuid::new_v4()}),
        json!({"principalId": iw.id, "resourceId": id, "role": "x"}),
    ] {
        let (status, answer) = app.graph(Method::POST, &path, Some(&token), Some(body.clone())).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("assignment {body}"));
    }
    let (status, assigned) = app.graph(Method::POST, &path, Some(&token), Some(ok.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{assigned}");
    assert_eq!(
        (assigned["resourceId"].as_str(), assigned["principalType"].as_str()),
        (Some(id.as_str()), Some("User"))
    );
    assert_eq!(assigned["appRoleId"], "00000000-0000-0000-0000-000000000000");
    let (status, answer) = app.graph(Method::POST, &path, Some(&token), Some(ok)).await;
    assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
    let (_, listed) = app.graph(Method::GET, &path, Some(&token), None).await;
    assert_eq!(listed["value"], json!([assigned]));

    let start = rp.authorize_url(&[]);
    let page = sign_in_page(&app.browser(), &start.url, IW, &app.password(IW)).await;
    let (status, tokens) = rp.exchange(&code_of(&page), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();
    let (status, rotated) = rp.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(status, StatusCode::OK, "assigned: the refresh works {rotated}");
    let refresh = rotated["refresh_token"].as_str().expect("a rotated refresh token").to_owned();

    // Unassigned again: refused again (also through the SSO session of the same browser),
    // and the refresh token of the earlier sign-in no longer works.
    let gone = format!("{path}/{}", assigned["id"].as_str().unwrap());
    assert_eq!(app.graph(Method::DELETE, &gone, Some(&token), None).await.0, StatusCode::NO_CONTENT);
    let (status, body) = rp.token(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(body["error_description"].as_str().is_some_and(|d| d.contains("no longer assigned")), "{body}");
    let (status, answer) = app.graph(Method::DELETE, &gone, Some(&token), None).await;
    assert_graph_error(status, &answer, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let page = sign_in_page(&app.browser(), &rp.authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert_eq!(page.error_code().as_deref(), Some("not_assigned"), "{}", page.body);
}

#[tokio::test]
async fn a_member_created_by_graph_changes_the_password_at_the_next_sign_in() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let first = "Tempor4ry-pass";
    let body = json!({
        "accountEnabled": true, "displayName": "Nora New", "mailNickname": "nora",
        "userPrincipalName": "Nora@Fabrikam.example",
        "passwordProfile": {"password": first, "forceChangePasswordNextSignIn": true},
    });
    let (status, created) = app.graph(Method::POST, "users", Some(&token), Some(body.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["userPrincipalName"].as_str(), created["userType"].as_str()),
        (Some("nora@fabrikam.example"), Some("Member"))
    );
    assert!(created.get("passwordProfile").is_none(), "the password is never returned");

    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let start = rp.authorize_url(&[]);
    let page = browser.sign_in(&start.url, "nora@fabrikam.example", first).await;
    assert!(page.has("form#change-password"), "{}", page.body);
    let form = page.form("change-password");
    let before = app.snapshot_except(&["signins"]).await;
    for (new, confirm, says) in [
        ("Brand-new-pass1", "Brand-new-pass2", "not the same"),
        ("short1A", "short1A", "at least 8"),
        ("alllowercaseletters", "alllowercaseletters", "three of"),
        (first, first, "the one you have now"),
    ] {
        let again = browser.submit(&form.clone().set("new_password", new).set("confirm_password", confirm)).await;
        assert!(again.has("form#change-password") && again.body.contains(says), "{says}: {}", again.body);
        assert_same(&before, &app.snapshot_except(&["signins"]).await, says);
    }
    // Another step's form cannot skip it.
    let skip = browser.post("/fabrikam/login/password", &form.clone().set("password", first).fields).await;
    assert_eq!(skip.error_code().as_deref(), Some("signin_expired"), "{}", skip.body);
    let done = browser
        .follow(
            browser
                .submit(&form.set("new_password", "Brand-new-pass1").set("confirm_password", "Brand-new-pass1"))
                .await,
        )
        .await;
    let (status, tokens) = rp.exchange(&code_of(&done), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    // The old password is gone; the new one signs in without the step.
    let old = app.browser().sign_in(&rp.authorize_url(&[]).url, "nora@fabrikam.example", first).await;
    assert!(old.has("form#password"), "wrong password page: {}", old.body);
    rp.sign_in(&app.browser(), "nora@fabrikam.example", "Brand-new-pass1", &[]).await;

    // An admin's reset: the next sign-in asks again.
    let id = created["id"].as_str().unwrap();
    let reset = json!({"passwordProfile": {"password": "Reset-by-admin9", "forceChangePasswordNextSignIn": true}});
    let (status, answer) = app.graph(Method::PATCH, &format!("users/{id}"), Some(&token), Some(reset)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let page = app.browser().sign_in(&rp.authorize_url(&[]).url, "nora@fabrikam.example", "Reset-by-admin9").await;
    assert!(page.has("form#change-password"), "{}", page.body);

    // Bad creates and resets: Graph errors, nothing stored.
    let with = |k: &str, v: Value| {
        let mut b = body.clone();
        b["userPrincipalName"] = json!("other@fabrikam.example");
        if v.is_null() {
            b.as_object_mut().unwrap().remove(k);
        } else {
            b[k] = v;
        }
        b
    };
    let before = app.snapshot().await;
    for (what, b) in [
        ("no accountEnabled", with("accountEnabled", Value::Null)),
        ("no displayName", with("displayName", Value::Null)),
        ("no mailNickname", with("mailNickname", Value::Null)),
        ("bad mailNickname", with("mailNickname", json!("a b"))),
        ("no passwordProfile", with("passwordProfile", Value::Null)),
        ("weak password", with("passwordProfile", json!({"password": "password"}))),
        ("no password", with("passwordProfile", json!({"forceChangePasswordNextSignIn": true}))),
        ("unverified domain", with("userPrincipalName", json!("x@contoso.example"))),
        ("not a UPN", with("userPrincipalName", json!("nora"))),
        ("guest UPN", with("userPrincipalName", json!("x_y.example#EXT#@fabrikam.example"))),
        ("taken UPN", with("userPrincipalName", json!("nora@fabrikam.example"))),
        ("guest", with("userType", json!("Guest"))),
        ("unknown field", with("password", json!("x"))),
    ] {
        let (status, answer) = app.graph(Method::POST, "users", Some(&token), Some(b)).await;
        let code = answer["error"]["code"].as_str().unwrap_or_default().to_string();
        assert!(code == "BadRequest" || code == "Request_BadRequest", "{what}: {answer}");
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, &code);
        assert_same(&before, &app.snapshot().await, what);
    }
    let sally_guest = app.invite("sally@contoso.example", "https://example.org/", None).await;
    let before = app.snapshot().await;
    for (who, b) in [
        (id.to_string(), json!({"passwordProfile": {"password": "weak"}})),
        (id.to_string(), json!({"passwordProfile": {}})),
        (id.to_string(), json!({"passwordProfile": {"password": "Fine-pass-123", "extra": 1}})),
        (
            sally_guest["invitedUser"]["id"].as_str().unwrap().to_string(),
            json!({"passwordProfile": {"password": "Fine-pass-123"}}),
        ),
    ] {
        let (status, answer) = app.graph(Method::PATCH, &format!("users/{who}"), Some(&token), Some(b)).await;
        assert_graph_error(status, &answer, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, "bad reset");
    }
}

#[tokio::test]
async fn an_invitation_to_an_app_that_requires_assignment_assigns_the_guest() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (id, _) = registered_rp(&app, &token, json!({"appRoleAssignmentRequired": true})).await;
    let (open, _) = registered_rp(&app, &token, json!({"displayName": "Open app"})).await;
    let inv = app.invite("pat@northwind.example", crate::guests::LANDING, Some(&id)).await;
    let guest = inv["invitedUser"]["id"].as_str().unwrap().to_string();
    let (status, listed) =
        app.graph(Method::GET, &format!("users/{guest}/appRoleAssignments"), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let assigned: Vec<&str> =
        listed["value"].as_array().unwrap().iter().filter_map(|a| a["resourceId"].as_str()).collect();
    assert_eq!(assigned, [id.as_str()], "assigned to the app of the invitation, once");
    assert_eq!(listed["value"][0]["appRoleId"], "00000000-0000-0000-0000-000000000000");
    // Inviting again (a reset) does not assign twice; an app without the requirement gets no assignment.
    let again = json!({"invitedUserEmailAddress": "pat@northwind.example", "inviteRedirectUrl": crate::guests::LANDING,
                       "appId": id, "resetRedemption": true});
    let (status, body) = app.graph(Method::POST, "invitations", Some(&token), Some(again)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let other = app.invite("lee@northwind.example", crate::guests::LANDING, Some(&open)).await;
    let (_, listed_again) =
        app.graph(Method::GET, &format!("users/{guest}/appRoleAssignments"), Some(&token), None).await;
    assert_eq!(listed_again["value"].as_array().unwrap().len(), 1);
    let lee = other["invitedUser"]["id"].as_str().unwrap();
    let (_, none) = app.graph(Method::GET, &format!("users/{lee}/appRoleAssignments"), Some(&token), None).await;
    assert_eq!(none["value"], json!([]));
}
