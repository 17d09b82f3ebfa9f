//! Bad input gets the documented error and changes nothing in the store.
use reqwest::StatusCode;

use crate::helpers::*;

async fn assert_page_error_without_redirect(app: &TestApp, url: &str, code: &str) {
    let before = app.snapshot().await;
    let page = app.browser().get(url).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}: {}", page.body);
    assert!(page.location.is_none(), "no redirect for {url}");
    assert_eq!(page.error_code().as_deref(), Some(code), "{url}");
    assert_same(&before, &app.snapshot().await, format!("store unchanged for {url}"));
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_uri_stay_on_an_error_page() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let unknown = rp.authorize_url(&[("client_id", "no-such-client")]).url;
    assert_page_error_without_redirect(&app, &unknown, "unknown_client").await;
    let unregistered = rp.authorize_url(&[("redirect_uri", "https://evil.example/callback")]).url;
    assert_page_error_without_redirect(&app, &unregistered, "invalid_redirect_uri").await;
    let lookalike = rp.authorize_url(&[("redirect_uri", "http://127.0.0.1:9/callback/../evil")]).url;
    assert_page_error_without_redirect(&app, &lookalike, "invalid_redirect_uri").await;
    let missing = rp.authorize_url(&[("redirect_uri", "")]).url;
    assert_page_error_without_redirect(&app, &missing, "invalid_redirect_uri").await;
    let no_client = rp.authorize_url(&[("client_id", "")]).url;
    assert_page_error_without_redirect(&app, &no_client, "invalid_request").await;
    let repeated = format!("{}&client_id=test-rp", rp.authorize_url(&[]).url);
    assert_page_error_without_redirect(&app, &repeated, "invalid_request").await;
}

#[tokio::test]
async fn protocol_errors_after_the_redirect_uri_is_trusted_go_back_to_the_rp() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("scope", "profile email")], "invalid_scope"),
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("response_type", "code id_token")], "unsupported_response_type"),
        (&[("response_type", "")], "invalid_request"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("code_challenge_method", "")], "invalid_request"),
        (&[("code_challenge", "short")], "invalid_request"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("prompt", "bogus")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("max_age", "soon")], "invalid_request"),
        (&[("response_mode", "fragment")], "invalid_request"),
        (&[("request", "eyJhbGciOiJub25lIn0.e30.")], "request_not_supported"),
        (&[("request_uri", "https://rp.example/req")], "request_uri_not_supported"),
    ];
    for (extra, code) in cases {
        let before = app.snapshot().await;
        let start = rp.authorize_url(extra);
        let page = app.browser().get(&start.url).await;
        assert_eq!(page.status, StatusCode::FOUND, "{extra:?}");
        let loc = page.location.unwrap();
        assert!(loc.starts_with("http://127.0.0.1:9/callback?"), "{loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some(*code), "{extra:?}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some(start.state.as_str()));
        assert!(query_param(&loc, "code").is_none());
        assert_same(&before, &app.snapshot().await, format!("store unchanged for {extra:?}"));
    }
}

#[tokio::test]
async fn public_clients_must_use_pkce() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    let mut public = app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    public.client_id = "spa".into();
    public.client_type = gatehouse::model::ClientType::Public;
    public.secret_hashes.clear();
    app.state.store.put_app(&public).await.unwrap();
    let rp = Rp { client_id: "spa".into(), secret: None, ..app.rp("fabrikam") };
    let page = app.browser().get(&rp.authorize_url(&[("code_challenge", ""), ("code_challenge_method", "")]).url).await;
    assert_eq!(query_param(page.location.as_deref().unwrap(), "error").as_deref(), Some("invalid_request"));
    // With PKCE the public client signs in without a secret.
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    assert!(tokens["id_token"].is_string());
}

async fn code_for(app: &TestApp, rp: &Rp) -> (String, AuthStart) {
    let login = "iw@fabrikam.example";
    let start = rp.authorize_url(&[]);
    let done = app.browser().sign_in(&start.url, login, &app.password(login)).await;
    (query_param(done.location.as_deref().unwrap(), "code").unwrap(), start)
}

#[tokio::test]
async fn token_endpoint_rejects_bad_verifiers_secrets_and_expired_codes_without_spending_the_code() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (code, start) = code_for(&app, &rp).await;
    let redirect = rp.redirect_uri.clone();
    let wrong_verifier = random_b64(32);
    let cases: Vec<(Vec<(&str, &str)>, StatusCode, &str)> = vec![
        (
            vec![("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &redirect)],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &redirect),
                ("code_verifier", &wrong_verifier),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
                ("code_verifier", &start.verifier),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        ),
        (
            vec![("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &start.verifier)],
            StatusCode::BAD_REQUEST,
            "invalid_request",
        ),
        (
            vec![("grant_type", "password"), ("username", "x"), ("password", "y")],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
        ),
        (vec![("code", &code)], StatusCode::BAD_REQUEST, "invalid_request"),
    ];
    for (fields, status, error) in cases {
        let before = app.snapshot().await;
        let (s, body) = rp.token(&fields).await;
        assert_eq!((s, body["error"].as_str()), (status, Some(error)), "{fields:?}");
        assert_same(&before, &app.snapshot().await, format!("store unchanged for {fields:?}"));
    }

    let before = app.snapshot().await;
    let wrong = Rp { secret: Some("wrong-secret".into()), ..rp.clone() };
    let (s, body) = wrong.exchange(&code, &start.verifier).await;
    assert_oauth_error(s, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let resp = wrong
        .http
        .post(rp.endpoint("oauth2/v2.0/token"))
        .basic_auth("test-rp", Some("wrong-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("www-authenticate").is_some(), "Basic failures carry a challenge");
    let unknown = Rp { client_id: "nobody".into(), ..rp.clone() };
    let (s, body) = unknown.exchange(&code, &start.verifier).await;
    assert_oauth_error(s, &body, StatusCode::UNAUTHORIZED, "invalid_client");
    let resp = rp
        .http
        .post(rp.endpoint("oauth2/v2.0/token"))
        .basic_auth("test-rp", rp.secret.as_deref())
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    assert_same(&before, &app.snapshot().await, "store unchanged by failed client authentication");

    // The code survived every failed attempt: the right request still works.
    let (s, body) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    let (late, late_start) = code_for(&app, &rp).await;
    app.clock.advance(61);
    let before = app.snapshot().await;
    let (s, body) = rp.exchange(&late, &late_start.verifier).await;
    assert_oauth_error(s, &body, StatusCode::BAD_REQUEST, "invalid_grant"); // expired code
    assert_same(&before, &app.snapshot().await, "");
}

#[tokio::test]
async fn a_code_from_one_tenant_is_refused_at_another() {
    let app = spawn_app().await;
    let fabrikam = app.rp("fabrikam");
    let (code, start) = code_for(&app, &fabrikam).await;
    let contoso = app.rp("contoso");
    let before = app.snapshot().await;
    let (s, body) = contoso.exchange(&code, &start.verifier).await;
    assert_oauth_error(s, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_same(&before, &app.snapshot().await, "");
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let page = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
    let form = page.form("identify").set("login", "iw@fabrikam.example");
    for bad in
        [form.clone().without("csrf"), form.clone().set("csrf", "forged"), form.clone().set("csrf", &random_b64(32))]
    {
        let before = app.snapshot().await;
        let resp = browser.submit(&bad).await;
        assert_eq!(resp.status, StatusCode::FORBIDDEN);
        assert_eq!(resp.error_code().as_deref(), Some("csrf"));
        assert_same(&before, &app.snapshot().await, "");
    }
    // Another browser (no cookie) posting this browser's valid form is refused too.
    let before = app.snapshot().await;
    let other = app.browser();
    let resp = other.submit(&form).await;
    assert_eq!((resp.status, resp.error_code().as_deref()), (StatusCode::FORBIDDEN, Some("csrf")));
    assert_same(&before, &app.snapshot().await, "another browser's post of a valid form");
    // The genuine form goes through.
    let ok = browser.follow(browser.submit(&form).await).await;
    assert!(ok.has("form#password"));
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_page() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let mut bodies = Vec::new();
    for login in ["iw@fabrikam.example", "nobody@fabrikam.example"] {
        let browser = app.browser();
        let page = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
        let page = browser.follow(browser.submit(&page.form("identify").set("login", login)).await).await;
        assert!(page.has("form#password"), "unknown users also see the password step");
        // A wrong password writes only its own sign-in log entry (50126, admin-only).
        let before = app.snapshot_without_log().await;
        let failed = browser.submit(&page.form("password").set("password", "Wrong-password-1")).await;
        assert_eq!(failed.status, StatusCode::OK);
        assert!(failed.has("form#password"));
        assert_same(&before, &app.snapshot_without_log().await, "");
        bodies.push((failed.text("p.error"), failed.form("password").fields.len()));
    }
    assert_eq!(bodies[0], bodies[1], "same message, same form for wrong password and unknown user");
    assert!(bodies[0].0.as_deref().unwrap().contains("incorrect"));
}

#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_even_for_the_right_one() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let browser = app.browser();
    let page = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
    let page = browser.follow(browser.submit(&page.form("identify").set("login", login)).await).await;
    let form = page.form("password");
    for _ in 0..5 {
        let p = browser.submit(&form.clone().set("password", "nope-nope")).await;
        assert!(p.text("p.error").unwrap().contains("incorrect"));
    }
    let locked = browser.submit(&form.clone().set("password", &app.password(login))).await;
    assert_eq!(locked.status, StatusCode::OK);
    assert!(locked.text("p.error").unwrap().contains("locked"), "{}", locked.body);
    app.clock.advance(901);
    let done = browser.sign_in(&rp.authorize_url(&[]).url, login, &app.password(login)).await;
    assert_eq!(done.status, StatusCode::FOUND, "the lock ends after the window");
}

#[tokio::test]
async fn sign_in_steps_cannot_be_skipped_or_replayed() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let page = browser.follow(browser.get(&rp.authorize_url(&[]).url).await).await;
    let identify = page.form("identify");
    let tx = identify.fields.iter().find(|(k, _)| k == "tx").unwrap().1.clone();
    let csrf = identify.fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    // Posting the password step before identify is refused.
    let before = app.snapshot().await;
    let skip = browser
        .post(
            "/fabrikam/login/password",
            &[("tx".into(), tx.clone()), ("csrf".into(), csrf.clone()), ("password".into(), "x".into())],
        )
        .await;
    assert_eq!(skip.error_code().as_deref(), Some("signin_expired"));
    assert_same(&before, &app.snapshot().await, "the password step before identify");
    let unknown_tx = browser.get("/fabrikam/login?tx=nope").await;
    assert_eq!(unknown_tx.error_code().as_deref(), Some("signin_expired"));
    assert_same(&before, &app.snapshot().await, "an unknown transaction");
    // The transaction is bound to the browser that started it.
    let thief = app.browser();
    let stolen = thief.get(&format!("/fabrikam/login?tx={tx}")).await;
    assert_eq!(stolen.error_code().as_deref(), Some("signin_expired"));
    assert_same(&before, &app.snapshot().await, "another browser's use of the transaction");
    // After completion the same transaction cannot be used again.
    let login = "iw@fabrikam.example";
    let page = browser.follow(browser.submit(&identify.set("login", login)).await).await;
    let pw = page.form("password").set("password", &app.password(login));
    let done = browser.submit(&pw).await;
    assert_eq!(done.status, StatusCode::FOUND);
    let before = app.snapshot().await;
    let again = browser.submit(&pw).await;
    assert_eq!(again.error_code().as_deref(), Some("signin_expired"));
    assert_same(&before, &app.snapshot().await, "a completed transaction replayed");
}

#[tokio::test]
async fn userinfo_rejects_missing_malformed_and_foreign_tokens() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let none = rp.http.get(rp.endpoint("oidc/userinfo")).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    assert!(none.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    for bad in ["garbage", id_token] {
        let r = rp.userinfo(bad).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
    }
    let contoso = app.rp("contoso");
    assert_eq!(contoso.userinfo(access).await.status(), StatusCode::UNAUTHORIZED, "a fabrikam token at contoso");
    let both = rp
        .http
        .post(rp.endpoint("oidc/userinfo"))
        .bearer_auth(access)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST, "two ways at once");
    let body = rp
        .http
        .post(rp.endpoint("oidc/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), StatusCode::OK, "form body token");
    app.clock.advance(3601);
    assert_eq!(rp.userinfo(access).await.status(), StatusCode::UNAUTHORIZED, "expired");
}

#[tokio::test]
async fn unknown_tenants_get_a_clear_error() {
    let app = spawn_app().await;
    let page = app.browser().get("/nowhere/v2.0/.well-known/openid-configuration").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(page.error_code().as_deref(), Some("unknown_tenant"));
    let rp = Rp { tenant: "nowhere".into(), ..app.rp("fabrikam") };
    let (s, body) = rp.token(&[("grant_type", "client_credentials")]).await;
    assert_oauth_error(s, &body, StatusCode::BAD_REQUEST, "invalid_request");
}
