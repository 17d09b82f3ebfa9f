use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn member_code_flow_with_pkce_issues_tokens_verified_against_jwks() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let login = "iw@fabrikam.example";
    let before = gatehouse::clock::Clock::now(&*app.clock);
    let (tokens, start) = rp.sign_in(&browser, login, &app.password(login), &[]).await;

    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["refresh_token"].is_string(), "offline_access gives a refresh token");
    let id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    let user = app.user("fabrikam", login).await;
    let tid = app.tenant_id("fabrikam").await;
    assert_eq!(id["iss"], app.issuer("fabrikam"));
    assert_eq!(id["aud"], "test-rp");
    assert_eq!(id["nonce"], start.nonce.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["acr"], "1");
    assert_eq!(id["oid"], user.id.to_string());
    assert_eq!(id["tid"], tid.to_string());
    assert_eq!(id["name"], "Ivan Worker");
    assert_eq!(id["email"], login);
    assert_eq!(id["preferred_username"], login);
    assert_eq!(id["acct"], 0);
    let iat = id["iat"].as_i64().unwrap();
    assert!(iat >= before && id["exp"].as_i64().unwrap() > iat);
    assert_eq!(id["nbf"].as_i64(), Some(iat));
    assert_eq!(id["auth_time"].as_i64(), Some(iat));
    assert!(id["sid"].as_str().is_some_and(|s| !s.is_empty()));
    let sub = id["sub"].as_str().unwrap().to_string();
    assert_ne!(sub, user.id.to_string(), "sub is pairwise, not the object id");

    let access = rp.verify(tokens["access_token"].as_str().unwrap(), "at+jwt").await;
    assert_eq!(access["aud"], "test-rp");
    assert_eq!(access["tid"], tid.to_string());
    assert_eq!(access["oid"], user.id.to_string());
    assert_eq!(access["scp"], "openid profile email offline_access");
    assert_eq!(access["sub"], sub.as_str());

    let info: Value = rp.userinfo(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(info["sub"], sub.as_str());
    assert_eq!(info["email"], login);
}

#[tokio::test]
async fn sub_is_pairwise_per_client_and_stable_per_client() {
    let app = spawn_app().await;
    let login = "iw@fabrikam.example";
    let pw = app.password(login);
    let tid = app.tenant_id("fabrikam").await;
    let mut other = app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    other.client_id = "second-rp".into();
    app.state.store.put_app(&other).await.unwrap();
    let rp = app.rp("fabrikam");
    let rp2 = Rp { client_id: "second-rp".into(), ..rp.clone() };

    let (a, _) = rp.sign_in(&app.browser(), login, &pw, &[]).await;
    let (b, _) = rp.sign_in(&app.browser(), login, &pw, &[]).await;
    let (c, _) = rp2.sign_in(&app.browser(), login, &pw, &[]).await;
    let sub = |t: &Value| t["id_token"].as_str().map(decode_payload).unwrap()["sub"].clone();
    assert_eq!(sub(&a), sub(&b));
    assert_ne!(sub(&a), sub(&c));
}

pub fn decode_payload(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_reuse_of_an_old_token_revokes_the_family() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let first_id = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;

    app.clock.advance(120);
    let (status, rotated) = rp.refresh(&first).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let second = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(first, second, "the refresh token rotates");
    let id = rp.verify(rotated["id_token"].as_str().unwrap(), "JWT").await;
    assert!(first_id["auth_time"].is_i64(), "auth_time: {first_id}");
    assert_eq!(id["auth_time"], first_id["auth_time"], "a refresh keeps the original authentication");
    assert_eq!(id["amr"], first_id["amr"]);
    assert_eq!(id["acr"], first_id["acr"]);
    assert_eq!(id["sub"], first_id["sub"]);
    assert!(id.get("nonce").is_none());
    let access2 = rotated["access_token"].as_str().unwrap().to_string();
    assert_eq!(rp.userinfo(&access2).await.status(), StatusCode::OK);

    let (status, body) = rp.refresh(&first).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The newer token of the family is revoked too.
    let (status, body) = rp.refresh(&second).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        rp.userinfo(&access2).await.status(),
        StatusCode::UNAUTHORIZED,
        "access tokens of the family stop working"
    );
}

#[tokio::test]
async fn a_code_used_twice_fails_and_revokes_what_it_issued() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let start = rp.authorize_url(&[]);
    let done = app.browser().sign_in(&start.url, login, &app.password(login)).await;
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(rp.userinfo(access).await.status(), StatusCode::OK);

    let (status, body) = rp.exchange(&code, &start.verifier).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = rp.refresh(refresh).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let resp = rp.userinfo(access).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn sso_session_skips_the_login_pages_until_prompt_login_or_max_age() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let login = "iw@fabrikam.example";
    let (first, _) = rp.sign_in(&browser, login, &app.password(login), &[]).await;
    let first_id = decode_payload(first["id_token"].as_str().unwrap());

    app.clock.advance(30);
    let again = browser.get(&rp.authorize_url(&[]).url).await;
    assert_eq!(again.status, StatusCode::FOUND);
    assert!(again.location.as_deref().unwrap().starts_with("http://127.0.0.1:9/callback?code="));

    let silent = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    assert!(query_param(silent.location.as_deref().unwrap(), "code").is_some(), "prompt=none with a session succeeds");

    let forced = browser.follow(browser.get(&rp.authorize_url(&[("prompt", "login")]).url).await).await;
    assert!(forced.has("form#identify"), "prompt=login asks again");

    let start = rp.authorize_url(&[("max_age", "10")]);
    let aged = browser.follow(browser.get(&start.url).await).await;
    assert!(aged.has("form#identify"), "max_age shorter than the session asks again");
    let done = browser.sign_in(&start.url, login, &app.password(login)).await;
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    let (_, tokens) = rp.exchange(&code, &start.verifier).await;
    let id = decode_payload(tokens["id_token"].as_str().unwrap());
    let (first_auth, new_auth) = (first_id["auth_time"].as_i64().expect("auth_time"), id["auth_time"].as_i64());
    assert!(new_auth.expect("auth_time (max_age was sent)") > first_auth, "auth_time is the new sign-in");
}

#[tokio::test]
async fn prompt_none_without_a_session_returns_login_required_to_the_rp() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[("prompt", "none")]);
    let page = app.browser().get(&start.url).await;
    assert_eq!(page.status, StatusCode::FOUND);
    let loc = page.location.unwrap();
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some(start.state.as_str()));
    assert_eq!(query_param(&loc, "iss").as_deref(), Some(app.issuer("fabrikam").as_str()));
}

#[tokio::test]
async fn form_post_response_mode_posts_the_code_back() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let start = rp.authorize_url(&[("response_mode", "form_post")]);
    let page = app.browser().sign_in(&start.url, login, &app.password(login)).await;
    assert_eq!(page.status, StatusCode::OK);
    let form = page.form("form-post");
    assert_eq!(form.action, "http://127.0.0.1:9/callback");
    let field = |n: &str| form.fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(field("state"), Some(start.state.clone()));
    let (status, _) = rp.exchange(&field("code").unwrap(), &start.verifier).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_gives_an_app_token_with_roles() {
    let app = spawn_app().await;
    let rp = Rp {
        client_id: app.creds.admin.client_id.clone(),
        secret: Some(app.creds.admin.client_secret.clone()),
        ..app.rp("fabrikam")
    };
    let (status, body) = rp.token(&[("grant_type", "client_credentials"), ("scope", ".default")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none());
    let claims = rp.verify(body["access_token"].as_str().unwrap(), "at+jwt").await;
    assert_eq!(claims["roles"], serde_json::json!(["Directory.ReadWrite.All", "User.Invite.All"]));
    assert_eq!(claims["idtyp"], "app");
    assert_eq!(claims["tid"], app.tenant_id("fabrikam").await.to_string());
}

#[tokio::test]
async fn introspection_and_revocation_follow_rfc_7662_and_7009() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let (status, info) = rp.post_authenticated("oauth2/v2.0/introspect", &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "test-rp");
    let (_, info) = rp
        .post_authenticated("oauth2/v2.0/introspect", &[("token", refresh), ("token_type_hint", "refresh_token")])
        .await;
    assert_eq!(info["active"], true);
    let (_, info) = rp.post_authenticated("oauth2/v2.0/introspect", &[("token", "not-a-token")]).await;
    assert_eq!(info, serde_json::json!({"active": false}));

    let (status, _) =
        rp.post_authenticated("oauth2/v2.0/revoke", &[("token", access), ("token_type_hint", "access_token")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rp.userinfo(access).await.status(), StatusCode::UNAUTHORIZED);
    let (_, info) = rp.post_authenticated("oauth2/v2.0/introspect", &[("token", access)]).await;
    assert_eq!(info["active"], false);

    let (status, _) = rp.post_authenticated("oauth2/v2.0/revoke", &[("token", refresh)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = rp.refresh(refresh).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, _) = rp.post_authenticated("oauth2/v2.0/revoke", &[("token", "unknown-token")]).await;
    assert_eq!(status, StatusCode::OK, "unknown tokens are answered with 200 (RFC 7009 §2.2)");
}

#[tokio::test]
async fn rp_initiated_logout_ends_the_session_and_returns_only_to_registered_uris() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&browser, login, &app.password(login), &[]).await;
    let hint = tokens["id_token"].as_str().unwrap();

    let evil = format!(
        "{}?id_token_hint={hint}&post_logout_redirect_uri=https://evil.example/",
        rp.endpoint("oauth2/v2.0/logout")
    );
    let page = browser.get(&evil).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(page.error_code().as_deref(), Some("invalid_post_logout_redirect_uri"));
    assert!(page.location.is_none());
    let still = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    assert!(query_param(still.location.as_deref().unwrap(), "code").is_some(), "a refused logout keeps the session");

    let ok = format!(
        "{}?id_token_hint={hint}&post_logout_redirect_uri=http://127.0.0.1/logged-out&state=bye",
        rp.endpoint("oauth2/v2.0/logout")
    );
    let page = browser.get(&ok).await;
    assert_eq!(page.status, StatusCode::FOUND);
    assert_eq!(page.location.as_deref(), Some("http://127.0.0.1/logged-out?state=bye"));
    let after = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    assert_eq!(query_param(after.location.as_deref().unwrap(), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn logout_without_id_token_hint_asks_for_confirmation() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let browser = app.browser();
    let login = "iw@fabrikam.example";
    rp.sign_in(&browser, login, &app.password(login), &[]).await;
    let page = browser.get(&rp.endpoint("oauth2/v2.0/logout")).await;
    assert_eq!(page.status, StatusCode::OK);
    let form = page.form("logout");
    let still = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    assert!(query_param(still.location.as_deref().unwrap(), "code").is_some());
    let done = browser.submit(&form).await;
    assert!(done.has("main#signed-out"));
    let after = browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    assert_eq!(query_param(after.location.as_deref().unwrap(), "error").as_deref(), Some("login_required"));
}

#[tokio::test]
async fn discovery_document_has_what_an_rp_needs() {
    let app = spawn_app().await;
    let doc: Value = plain_client()
        .get(format!("{}/.well-known/openid-configuration", app.issuer("fabrikam")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], app.issuer("fabrikam"));
    assert_eq!(doc["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
        "end_session_endpoint",
    ] {
        assert!(doc[k].as_str().unwrap().starts_with(&app.url), "{k}");
    }
    for k in [
        "id_token_signing_alg_values_supported",
        "claims_supported",
        "acr_values_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "subject_types_supported",
    ] {
        assert!(doc[k].as_array().is_some_and(|a| !a.is_empty()), "{k}");
    }
    let contoso: Value = plain_client()
        .get(format!("{}/.well-known/openid-configuration", app.issuer("contoso")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contoso["issuer"], app.issuer("contoso"), "each tenant is its own issuer");
}

#[tokio::test]
async fn demo_relying_party_signs_in_through_real_oidc_and_shows_claims() {
    let app = spawn_app().await;
    let browser = app.browser();
    let page = browser.get("/demo/bar").await;
    assert!(page.has("a#sign-in"));
    let start = browser.get("/demo/bar/login").await;
    let authorize = start.location.expect("redirect to authorize");
    assert!(
        authorize
            .starts_with(&format!("{}/oauth2/v2.0/authorize", app.rp("fabrikam").endpoint("").trim_end_matches('/'))),
        "{authorize}"
    );
    let login = "iw@fabrikam.example";
    // The browser follows the redirect back to /demo/bar/callback and on to /demo/bar.
    let shown = browser.sign_in(&authorize, login, &app.password(login)).await;
    assert!(shown.url.ends_with("/demo/bar"), "{}", shown.url);
    assert!(shown.has("table#claims"), "{}", shown.body);
    let claims = claims_table(&shown);
    assert_eq!(claims.get("email").map(String::as_str), Some(login));
    assert_eq!(claims.get("amr").map(String::as_str), Some("pwd"));
    assert_eq!(claims.get("aud").map(String::as_str), Some("bar"));
}

#[tokio::test]
async fn home_page_lists_demo_apps_and_accounts() {
    let app = spawn_app().await;
    let page = app.browser().get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("/demo/foo"));
    assert!(page.body.contains(&app.password("iw@fabrikam.example")));
}

/// Many refresh chains rotating at once must all complete (sled's `flush_async` used to
/// deadlock the whole server under this load). The timeout only detects a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refresh_chains_all_complete() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let mut chains = Vec::new();
    for _ in 0..16 {
        let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
        chains.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }
    let runs = chains.into_iter().map(|mut token| {
        let rp = rp.clone();
        async move {
            for _ in 0..30 {
                let (status, body) = rp.refresh(&token).await;
                assert_eq!(status, StatusCode::OK, "{body}");
                token = body["refresh_token"].as_str().unwrap().to_string();
            }
        }
    });
    tokio::time::timeout(std::time::Duration::from_secs(120), futures_util::future::join_all(runs))
        .await
        .expect("all chains finish: no deadlock");
}

/// The same refresh token presented by 8 requests at once: exactly one rotates it, the
/// others are reuses, so the token that one got is refused too (the family is revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refresh_token_presented_at_once_rotates_once_and_revokes_the_family() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), login, &app.password(login), &[]).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_string();
    let answers = futures_util::future::join_all((0..8).map(|_| rp.refresh(&token))).await;
    only_one_won_and_its_family_is_revoked(&rp, &answers, "rotation").await;
}

/// One code exchanged by 8 requests at once: exactly one gets tokens, and as the code was
/// replayed, the refresh token issued with it is revoked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_code_exchanged_at_once_issues_tokens_once_and_revokes_them() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let login = "iw@fabrikam.example";
    let start = rp.authorize_url(&[]);
    let done = app.browser().sign_in(&start.url, login, &app.password(login)).await;
    let code = query_param(&done.location.expect("redirect to the RP"), "code").expect("code");
    let answers = futures_util::future::join_all((0..8).map(|_| rp.exchange(&code, &start.verifier))).await;
    only_one_won_and_its_family_is_revoked(&rp, &answers, "exchange").await;
}

/// Of concurrent uses of one secret exactly one got tokens, the others `invalid_grant`, and the
/// refresh token the winner got is refused: the losers' uses revoked the grant.
async fn only_one_won_and_its_family_is_revoked(rp: &Rp, answers: &[(StatusCode, Value)], what: &str) {
    let won: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "exactly one {what}: {answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!((*status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    }
    let (status, body) = rp.refresh(won[0]["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
}
