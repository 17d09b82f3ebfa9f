//! The credential gate (issue 11, findings 2, 3, 4, 5, 7, 10, 14): every place that lets an
//! existing session, code or token through re-checks the user, the grant and conditional
//! access. Each test shows the refusal and that nothing else changed.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;

const IW: &str = "iw@fabrikam.example";
const ADMIN: &str = "admin@fabrikam.example";

fn policy(json: Value) -> gatehouse::policy::Policy {
    serde_json::from_value(json).unwrap()
}

async fn put_policy(app: &TestApp, json: Value) {
    app.state.store.put_policy(&app.tenant_id("fabrikam").await, &policy(json)).await.unwrap();
}

async fn delete_policy(app: &TestApp, id: &str) {
    assert!(app.state.store.delete_policy(&app.tenant_id("fabrikam").await, id).await.unwrap());
}

fn block_for(id: &str, app_id: &str, user: &str) -> Value {
    json!({
        "id": id, "displayName": format!("Block {app_id}"), "state": "enabled",
        "conditions": {"users": {"includeUsers": [user]}, "applications": {"includeApplications": [app_id]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    })
}

fn mfa_for(id: &str, app_id: &str, user: &str) -> Value {
    json!({
        "id": id, "displayName": format!("MFA for {app_id}"), "state": "enabled",
        "conditions": {"users": {"includeUsers": [user]}, "applications": {"includeApplications": [app_id]}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    })
}

/// The store without the records a refused request may legitimately add: its own
/// sign-in log entry (the log is what tells the admin about the refusal).
async fn store_without_log(app: &TestApp) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    app.snapshot().await.into_iter().filter(|(t, _, _)| t != "tenant_signin_log").collect()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.rp("fabrikam").post_authenticated("oauth2/v2.0/introspect", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_invalid_grant(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body.get("access_token").is_none(), "{body}");
    body["error_description"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_admin_api_accepts_only_tokens_for_itself_with_a_delegated_scope() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    // A Global Administrator's token that test-rp got for itself (aud = test-rp).
    let (own, _) = rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;
    let own = own["access_token"].as_str().unwrap();
    assert_eq!(rp.verify(own, "at+jwt").await["aud"], "test-rp");
    let before = app.snapshot().await;
    for (m, path, body) in [
        (Method::GET, "users", None),
        (
            Method::POST,
            "invitations",
            Some(json!({"invitedUserEmailAddress": "x@y.example", "inviteRedirectUrl": LANDING})),
        ),
    ] {
        let (status, err) = app.graph(m, path, Some(own), body).await;
        assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    }
    assert_same(&before, &app.snapshot().await, "a token for another app changes nothing");

    // Asking for the API's delegated permission (bare or with the API's prefix) gives a
    // token for the API; the directory role still decides.
    let graph = format!("{}/graph", app.url);
    let (read, _) = rp
        .sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[("scope", &format!("openid {graph}/User.Read.All"))])
        .await;
    let read = read["access_token"].as_str().unwrap();
    let claims = rp.verify(read, "at+jwt").await;
    assert_eq!((claims["aud"].as_str(), claims["scp"].as_str()), (Some(graph.as_str()), Some("openid User.Read.All")));
    let (status, users) = app.graph(Method::GET, "users", Some(read), None).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    let discovery: Value =
        rp.http.get(rp.endpoint("v2.0/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    let supported = discovery["scopes_supported"].as_array().unwrap();
    assert!(supported.contains(&json!("User.Read.All")) && supported.contains(&json!("openid")), "{supported:?}");
    let iw = app.user("fabrikam", IW).await.id;
    let before = app.snapshot().await;
    let (status, err) =
        app.graph(Method::PATCH, &format!("users/{iw}"), Some(read), Some(json!({"displayName": "X"}))).await;
    assert_graph_error(status, &err, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot().await, "a read scope cannot write");

    // A member without a directory role gets the scope but not the permission.
    let (member, _) =
        rp.sign_in(&app.browser(), IW, &app.password(IW), &[("scope", "openid Directory.ReadWrite.All")]).await;
    let before = app.snapshot().await;
    let (status, err) = app.graph(Method::GET, "users", member["access_token"].as_str(), None).await;
    assert_graph_error(status, &err, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot().await, "a member without a role reads nothing");

    let (write, _) =
        rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[("scope", "openid Directory.ReadWrite.All")]).await;
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("users/{iw}"),
            write["access_token"].as_str(),
            Some(json!({"displayName": "Ivy"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.user("fabrikam", IW).await.display_name, "Ivy");
}

#[tokio::test]
async fn a_refresh_is_a_non_interactive_sign_in_that_conditional_access_decides() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let iw = app.user("fabrikam", IW).await.id.to_string();
    let (tokens, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();

    put_policy(&app, block_for("block-rp", "test-rp", &iw)).await;
    let before = store_without_log(&app).await;
    let (status, body) = rp.refresh(&refresh).await;
    let why = assert_invalid_grant(status, &body);
    assert!(why.contains("blocked by conditional access"), "{why}");
    assert_same(&before, &store_without_log(&app).await, "a blocked refresh rotates nothing");
    let log = app.state.store.signin_log(&app.tenant_id("fabrikam").await, 5).await.unwrap();
    let entry = &log[0];
    assert!(!entry.is_interactive, "logged as a non-interactive sign-in");
    assert_eq!(entry.status.error.as_deref(), Some("access_blocked"));
    let applied: Vec<(String, Value)> = entry
        .applied_conditional_access_policies
        .iter()
        .map(|r| (r.id.clone(), serde_json::to_value(r.result).unwrap()))
        .collect();
    assert!(applied.contains(&("block-rp".into(), json!("failure"))), "{applied:?}");

    // MFA now required: the password-only grant needs the user again.
    delete_policy(&app, "block-rp").await;
    put_policy(&app, mfa_for("mfa-rp", "test-rp", &iw)).await;
    let before = store_without_log(&app).await;
    let (status, body) = rp.refresh(&refresh).await;
    let why = assert_invalid_grant(status, &body);
    assert!(why.contains("interaction_required"), "{why}");
    assert_same(&before, &store_without_log(&app).await, "a refresh that needs MFA rotates nothing");

    // The refusals revoked nothing: once the policy is gone, the same token refreshes.
    delete_policy(&app, "mfa-rp").await;
    let (status, body) = rp.refresh(&refresh).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let claims = rp.verify(body["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["amr"], json!(["pwd"]));
}

#[tokio::test]
async fn entering_the_portal_through_sso_passes_the_portal_policies() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let admin = app.user("fabrikam", ADMIN).await.id.to_string();
    rp.sign_in(&browser, ADMIN, &app.password(ADMIN), &[]).await;
    let open = browser.get("/fabrikam/admin").await;
    assert_eq!(open.status, StatusCode::OK, "no policy: SSO opens the console");
    assert!(open.has("section#guests"));

    put_policy(&app, block_for("block-portal", "gatehouse-portal", &admin)).await;
    for page in ["/fabrikam/admin", "/fabrikam/invite"] {
        let before = store_without_log(&app).await;
        let shown = browser.follow(browser.get(page).await).await;
        assert_eq!(shown.status, StatusCode::FORBIDDEN, "{page}: {}", shown.body);
        assert_eq!(shown.error_code().as_deref(), Some("access_blocked"), "{page}");
        assert!(!shown.has("section#guests") && !shown.has("form#invite"), "{page}");
        assert_same(&before, &store_without_log(&app).await, "a blocked portal page changes nothing");
    }
    // MFA on the portal: SSO from test-rp (password only) steps up instead of opening it.
    delete_policy(&app, "block-portal").await;
    put_policy(&app, mfa_for("mfa-portal", "gatehouse-portal", &admin)).await;
    let shown = browser.follow(browser.get("/fabrikam/admin").await).await;
    assert!(shown.has("form#totp-enroll"), "MFA proof-up before the console:\n{}", shown.body);
    assert!(!shown.has("section#guests"));
}

#[tokio::test]
async fn a_disabled_users_tokens_stop_at_every_bearer_check_and_stay_stopped() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let admin_id = app.user("fabrikam", ADMIN).await.id;
    let (tokens, _) = rp
        .sign_in(
            &app.browser(),
            ADMIN,
            &app.password(ADMIN),
            &[("scope", "openid offline_access Directory.ReadWrite.All")],
        )
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = app.graph(Method::GET, "users", Some(&access), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(introspect(&app, &access).await["active"], true);

    let app_token = app.admin_token().await;
    let (status, _) = app
        .graph(Method::PATCH, &format!("users/{admin_id}"), Some(&app_token), Some(json!({"accountEnabled": false})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = store_without_log(&app).await;
    // The disabled admin's own token can neither read nor re-enable the account.
    let (status, err) = app.graph(Method::GET, "users", Some(&access), None).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    let (status, err) = app
        .graph(Method::PATCH, &format!("users/{admin_id}"), Some(&access), Some(json!({"accountEnabled": true})))
        .await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    assert!(!app.user("fabrikam", ADMIN).await.account_enabled);
    assert_eq!(rp.userinfo(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(introspect(&app, &access).await, json!({"active": false}));
    assert_eq!(introspect(&app, &refresh).await, json!({"active": false}));
    assert_same(&before, &store_without_log(&app).await, "refused bearer checks change nothing");
    let (status, body) = rp.refresh(&refresh).await;
    assert_invalid_grant(status, &body);

    // Enabling the account again revives none of the old credentials.
    let (status, _) = app
        .graph(Method::PATCH, &format!("users/{admin_id}"), Some(&app_token), Some(json!({"accountEnabled": true})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = app.graph(Method::GET, "users", Some(&access), None).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    let (status, body) = rp.refresh(&refresh).await;
    assert_invalid_grant(status, &body);
    // A fresh sign-in works.
    let (fresh, _) =
        rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[("scope", "openid Directory.Read.All")]).await;
    let (status, _) = app.graph(Method::GET, "users", fresh["access_token"].as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_users_tokens_are_inactive_and_refused() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (admin, _) =
        rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[("scope", "openid User.Invite.All")]).await;
    let admin_access = admin["access_token"].as_str().unwrap().to_string();
    let (iw, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    let (iw_access, iw_refresh) =
        (iw["access_token"].as_str().unwrap().to_string(), iw["refresh_token"].as_str().unwrap().to_string());
    let app_token = app.admin_token().await;
    for login in [IW, ADMIN] {
        let id = app.user("fabrikam", login).await.id;
        let (status, _) = app.graph(Method::DELETE, &format!("users/{id}"), Some(&app_token), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let before = store_without_log(&app).await;
    assert_eq!(introspect(&app, &iw_access).await, json!({"active": false}));
    assert_eq!(introspect(&app, &iw_refresh).await, json!({"active": false}));
    let resp = rp.userinfo(&iw_access).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let invitation = json!({"invitedUserEmailAddress": "new@partner.example", "inviteRedirectUrl": LANDING});
    let (status, err) = app.graph(Method::POST, "invitations", Some(&admin_access), Some(invitation)).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    assert_same(&before, &store_without_log(&app).await, "a deleted user's tokens change nothing");
    let (status, body) = rp.refresh(&iw_refresh).await;
    assert_invalid_grant(status, &body);
}

#[tokio::test]
async fn resetting_a_redemption_ends_the_old_identitys_sessions_and_tokens() {
    let app = spawn_app().await;
    let sally = "sally@contoso.example";
    let inv = app.invite(sally, LANDING, None).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &app.password(sally)).await;
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let loc = browser.get(&start.url).await.location.unwrap();
    let (status, tokens) = rp.exchange(&query_param(&loc, "code").unwrap(), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (access, refresh) =
        (tokens["access_token"].as_str().unwrap().to_string(), tokens["refresh_token"].as_str().unwrap().to_string());

    let token = app.admin_token().await;
    let reset = json!({"invitedUserEmailAddress": sally, "inviteRedirectUrl": LANDING, "resetRedemption": true});
    let (status, _) = app.graph(Method::POST, "invitations", Some(&token), Some(reset)).await;
    assert_eq!(status, StatusCode::CREATED);
    let before = store_without_log(&app).await;
    // The old identity's SSO session no longer signs in silently.
    let silent = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    let loc = silent.location.expect("an answer to the RP");
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"), "{loc}");
    assert!(query_param(&loc, "code").is_none());
    assert_eq!(rp.userinfo(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(introspect(&app, &refresh).await, json!({"active": false}));
    assert_same(&before, &store_without_log(&app).await, "refusals change nothing");
    let (status, body) = rp.refresh(&refresh).await;
    assert_invalid_grant(status, &body);
    assert_eq!(
        app.user("fabrikam", sally).await.external_user_state,
        Some(gatehouse::model::ExternalUserState::PendingAcceptance)
    );
}

#[tokio::test]
async fn a_spent_code_presented_by_another_tenants_client_revokes_nothing() {
    let app = spawn_app().await;
    let fabrikam = app.rp("fabrikam");
    let start = fabrikam.authorize_url(&[]);
    let done = app.browser().sign_in(&start.url, IW, &app.password(IW)).await;
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    let (status, tokens) = fabrikam.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let before = app.snapshot().await;
    let contoso = app.rp("contoso");
    let (status, body) = contoso.exchange(&code, &start.verifier).await;
    let why = assert_invalid_grant(status, &body);
    assert!(!why.contains("revoked"), "{why}");
    assert_same(&before, &app.snapshot().await, "another client's spent code changes nothing");
    let (status, body) = fabrikam.refresh(refresh).await;
    assert_eq!(status, StatusCode::OK, "fabrikam's grant is intact: {body}");
}

/// Bad input: tokens for the wrong audience or of the wrong kind at the admin API.
#[tokio::test]
async fn the_admin_api_refuses_tokens_of_other_audiences_and_kinds() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (user, _) = rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;
    let contoso_rp = app.rp("contoso");
    let (contoso_user, _) = contoso_rp
        .sign_in(
            &app.browser(),
            "admin@contoso.example",
            &app.password("admin@contoso.example"),
            &[("scope", "openid Directory.ReadWrite.All")],
        )
        .await;
    let rows: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "user token for test-rp",
            user["access_token"].as_str().unwrap().into(),
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
        ),
        (
            "ID token as bearer",
            user["id_token"].as_str().unwrap().into(),
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
        ),
        (
            "refresh token as bearer",
            user["refresh_token"].as_str().unwrap().into(),
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
        ),
        ("another tenant's admin", contoso_user["access_token"].as_str().unwrap().into(), StatusCode::OK, ""),
    ];
    for (what, token, expected, code) in rows {
        let before = app.snapshot().await;
        let (status, body) = app.graph(Method::GET, "users", Some(&token), None).await;
        if expected == StatusCode::OK {
            // Contoso's admin reads Contoso's directory only.
            assert_eq!(status, StatusCode::OK, "{what}: {body}");
            let upns: Vec<&str> =
                body["value"].as_array().unwrap().iter().map(|u| u["userPrincipalName"].as_str().unwrap()).collect();
            assert!(!upns.is_empty() && upns.iter().all(|u| !u.ends_with("fabrikam.example")), "{what}: {upns:?}");
        } else {
            assert_graph_error(status, &body, expected, code);
        }
        assert_same(&before, &app.snapshot().await, what);
    }
}

/// Resource servers present one access token on every call, and this instance keeps the
/// tokens whose signature it verified: what it keeps skips only the signature. The same
/// token is refused once it expires or is revoked, and a copy with one altered byte of its
/// signature is refused. (A key leaving the ring: the kept token names its key, which must
/// still be in the ring, `keys::Verified`.)
#[tokio::test]
async fn an_access_token_verified_before_is_checked_again_on_every_call() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let sign_in = || async {
        let (tokens, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[("scope", "openid profile")]).await;
        tokens["access_token"].as_str().unwrap().to_string()
    };
    let access = sign_in().await;
    for _ in 0..3 {
        assert_eq!(rp.userinfo(&access).await.status(), StatusCode::OK);
        assert_eq!(introspect(&app, &access).await["active"], true);
    }
    // One byte of the signature changed: another token, which fails its own check.
    let mut forged = access.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(rp.userinfo(&forged).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(introspect(&app, &forged).await, json!({"active": false}));

    // Revoked (RFC 7009) after it was verified: refused from then on.
    let (status, _) = rp.post_authenticated("oauth2/v2.0/revoke", &[("token", access.as_str())]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rp.userinfo(&access).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(introspect(&app, &access).await, json!({"active": false}));

    // Expired after it was verified: refused, though the signature is still good.
    let second = sign_in().await;
    assert_eq!(rp.userinfo(&second).await.status(), StatusCode::OK);
    app.clock.advance(3601);
    let answer = rp.userinfo(&second).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let challenge = answer.headers()["www-authenticate"].to_str().unwrap().to_string();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(introspect(&app, &second).await, json!({"active": false}));
}
