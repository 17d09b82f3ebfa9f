//! The OpenID Foundation's Basic OP certification plan (`oidcc-basic-certification-test-plan`),
//! ported module by module to black-box tests: one test per conformance-suite module, named
//! after it. Each test behaves like the suite's client would (static confidential client,
//! `response_type=code`, `scope=openid`, `state` and `nonce`, no PKCE unless the module adds it,
//! `client_secret_basic` unless the module says otherwise) and asserts what the module checks.
//! A few modules from the suite's other OP plans, and two gatehouse-specific PKCE checks, follow
//! the Basic plan. docs/conformance.md lists every module with its result.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::clock::Clock;
use gatehouse::model::{ClientType, SigningAlg};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const LOGIN: &str = "iw@fabrikam.example";

/// The OP under test, seen from the conformance suite's static client (`test-rp` in fabrikam).
struct Op {
    app: TestApp,
    rp: Rp,
    issuer: String,
    password: String,
}

/// What one authorization + token exchange produced.
struct Flow {
    start: AuthStart,
    tokens: Value,
    id: Value,
}

async fn op() -> Op {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let issuer = app.issuer("fabrikam");
    let password = app.password(LOGIN);
    Op { app, rp, issuer, password }
}

impl Op {
    fn now(&self) -> i64 {
        self.app.clock.now()
    }

    /// A client registered like `test-rp` but with another client_id and ID token algorithm.
    async fn register_client(&self, client_id: &str, alg: SigningAlg) -> Rp {
        let tid = self.app.tenant_id("fabrikam").await;
        let mut client = self.app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
        client.client_id = client_id.into();
        client.id_token_signed_response_alg = alg;
        self.app.state.store.put_app(&client).await.unwrap();
        Rp { client_id: client_id.into(), ..self.rp.clone() }
    }

    async fn discovery(&self) -> Value {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let resp = plain_client().get(url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        resp.json().await.unwrap()
    }

    /// The suite's authorization request for `rp`: client_id, redirect_uri, response_type=code,
    /// scope=openid, state, nonce and no PKCE; `extra` adds, replaces or (with "") removes parameters.
    fn request_for(&self, rp: &Rp, extra: &[(&str, &str)]) -> AuthStart {
        let mut all: Vec<(&str, &str)> =
            vec![("scope", "openid"), ("code_challenge", ""), ("code_challenge_method", "")];
        all.extend_from_slice(extra);
        rp.authorize_url(&all)
    }

    fn request(&self, extra: &[(&str, &str)]) -> AuthStart {
        self.request_for(&self.rp, extra)
    }

    /// Checks the redirect back to the RP: our callback, `state` echoed, RFC 9207 `iss`, and a code.
    fn code_from(&self, location: &str, start: &AuthStart) -> String {
        assert!(location.starts_with("http://127.0.0.1:9/callback?"), "redirect to the RP callback: {location}");
        assert_eq!(query_param(location, "error"), None, "{location}");
        assert_eq!(query_param(location, "state").as_deref(), Some(start.state.as_str()), "state is echoed");
        assert_eq!(query_param(location, "iss").as_deref(), Some(self.issuer.as_str()), "RFC 9207 iss");
        query_param(location, "code").expect("an authorization code")
    }

    /// Checks an error sent back to the RP: our callback, the error code, `state` and `iss`, no code.
    fn error_from(&self, page: &Page, start: Option<&AuthStart>, error: &str) {
        assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
        let location = page.location.as_deref().unwrap();
        assert!(location.starts_with("http://127.0.0.1:9/callback?"), "{location}");
        assert_eq!(query_param(location, "error").as_deref(), Some(error), "{location}");
        assert_eq!(query_param(location, "state"), start.map(|s| s.state.clone()), "state is echoed when sent");
        assert_eq!(query_param(location, "iss").as_deref(), Some(self.issuer.as_str()), "RFC 9207 iss");
        assert_eq!(query_param(location, "code"), None);
        if let Some(d) = query_param(location, "error_description") {
            assert_oauth_text(&d);
        }
    }

    /// Signs in at the authorization endpoint with a fresh or existing browser; returns the redirect.
    async fn authorize(&self, browser: &Browser, start: &AuthStart) -> String {
        let done = browser.sign_in(&start.url, LOGIN, &self.password).await;
        assert_eq!(done.status, StatusCode::FOUND, "sign-in ends with a redirect to the RP: {}", done.body);
        done.location.unwrap()
    }

    /// The token request of the suite: client_secret_basic, no code_verifier.
    async fn redeem_for(&self, rp: &Rp, code: &str) -> Value {
        let (status, tokens) =
            rp.token(&[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", &rp.redirect_uri)]).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        check_token_response(&tokens);
        tokens
    }

    /// The suite's ID token checks (OIDC Core §3.1.3.7): signature by `kid` against the JWKS,
    /// iss, aud, exp, iat, nonce when sent (absent when not), sub, auth_time not in the future.
    async fn check_id_token(&self, rp: &Rp, id_token: &str, nonce: Option<&str>) -> Value {
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        let kid = header.kid.clone().expect("ID tokens carry a kid (OIDCC-10.1)");
        assert!(rp.jwks().await.find(&kid).is_some(), "kid {kid} is in the JWKS");
        let id = rp.verify(id_token, "JWT").await;
        let now = self.now();
        assert_eq!(id["iss"], self.issuer.as_str());
        match &id["aud"] {
            Value::String(a) => assert_eq!(a, &rp.client_id),
            Value::Array(a) => {
                assert!(a.contains(&json!(rp.client_id)));
                if a.len() > 1 {
                    assert_eq!(id["azp"], rp.client_id.as_str());
                }
            }
            other => panic!("aud is {other}"),
        }
        let iat = id["iat"].as_i64().expect("iat");
        assert!(iat <= now && iat > now - 60, "iat is now: {iat} vs {now}");
        assert!(id["exp"].as_i64().expect("exp") > now, "exp is in the future");
        if let Some(nbf) = id.get("nbf") {
            assert!(nbf.as_i64().unwrap() <= now);
        }
        // gatehouse always sends auth_time (README), so comparisons of it below cannot pass on absence.
        let auth_time = id["auth_time"].as_i64().expect("auth_time");
        assert!(auth_time <= now, "auth_time is not in the future");
        assert_eq!(id.get("nonce").and_then(Value::as_str), nonce, "nonce");
        let sub = id["sub"].as_str().expect("sub");
        assert!(!sub.is_empty() && sub.len() <= 255 && sub.is_ascii(), "sub: {sub}");
        id
    }

    /// A whole suite flow for `rp`: authorize (signing in if needed), redeem, check the ID token.
    async fn flow_for(&self, rp: &Rp, browser: &Browser, extra: &[(&str, &str)]) -> Flow {
        let start = self.request_for(rp, extra);
        let location = self.authorize(browser, &start).await;
        self.finish(rp, start, &location).await
    }

    async fn flow(&self, browser: &Browser, extra: &[(&str, &str)]) -> Flow {
        self.flow_for(&self.rp, browser, extra).await
    }

    async fn finish(&self, rp: &Rp, start: AuthStart, location: &str) -> Flow {
        let code = self.code_from(location, &start);
        let tokens = self.redeem_for(rp, &code).await;
        let nonce = query_param(&start.url, "nonce");
        let id = self.check_id_token(rp, tokens["id_token"].as_str().unwrap(), nonce.as_deref()).await;
        Flow { start, tokens, id }
    }

    /// The suite's UserInfo checks: 200, JSON, sub equal to the ID token's (OIDC Core §5.3.2).
    async fn check_userinfo(&self, resp: reqwest::Response, id: &Value) -> Value {
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        let info: Value = resp.json().await.unwrap();
        assert_eq!(info["sub"], id["sub"], "UserInfo sub equals the ID token sub");
        for (claim, kind) in
            [("email_verified", "bool"), ("name", "str"), ("email", "str"), ("preferred_username", "str")]
        {
            if let Some(v) = info.get(claim) {
                assert!(if kind == "bool" { v.is_boolean() } else { v.is_string() }, "{claim} is a {kind}: {v}");
            }
        }
        info
    }

    async fn userinfo(&self, flow: &Flow) -> Value {
        let resp = self.rp.userinfo(flow.tokens["access_token"].as_str().unwrap()).await;
        self.check_userinfo(resp, &flow.id).await
    }
}

/// RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
fn assert_oauth_text(s: &str) {
    assert!(s.chars().all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')), "{s:?}");
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
fn check_token_response(tokens: &Value) {
    assert_eq!(tokens["token_type"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("bearer"));
    assert!(tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(tokens["id_token"].as_str().is_some_and(|t| t.split('.').count() == 3));
    assert!(tokens["expires_in"].as_i64().is_some_and(|e| e > 0));
}

/// An error from the token endpoint (RFC 6749 §5.2): 400, JSON, the error code, a valid description.
async fn check_token_error(resp: reqwest::Response, error: &str) {
    let status = resp.status();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    let body: Value = resp.json().await.unwrap();
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, error);
}

/// The token endpoint called with client_secret_basic, for checks on the raw response.
async fn token_raw(rp: &Rp, fields: &[(&str, &str)]) -> reqwest::Response {
    rp.http
        .post(rp.endpoint("oauth2/v2.0/token"))
        .basic_auth(&rp.client_id, rp.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .unwrap()
}

/// From a sign-in page reached by other means (POST, a second login), through identify and password.
async fn login_from(browser: &Browser, page: Page, password: &str) -> Page {
    let page = browser.follow(page).await;
    assert!(page.has("form#identify"), "expected the sign-in page:\n{}", page.body);
    let page = browser.follow(browser.submit(&page.form("identify").set("login", LOGIN)).await).await;
    assert!(page.has("form#password"), "{}", page.body);
    browser.follow(browser.submit(&page.form("password").set("password", password)).await).await
}

fn unsigned_jwt(claims: &Value) -> String {
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none"})), b64(claims))
}

/// An RS256 JWS signed with a fresh RSA key of the "RP" (independent of gatehouse's keys).
fn rs256_jwt(claims: &Value) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let header = json!({"alg": "RS256", "typ": "oauth-authz-req+jwt", "kid": "rp-key-1"});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// The claims the suite moves into a request object: the whole authorization request, plus iss/aud.
fn request_object_claims(op: &Op, start: &AuthStart) -> Value {
    let mut claims = serde_json::Map::new();
    for (k, v) in url::Url::parse(&start.url).unwrap().query_pairs() {
        claims.insert(k.to_string(), Value::String(v.to_string()));
    }
    claims.insert("iss".into(), json!(op.rp.client_id));
    claims.insert("aud".into(), json!(op.issuer));
    Value::Object(claims)
}

/// The outer query the suite sends with a request object: the OAuth-required parameters only
/// (state and nonce travel inside the object).
fn request_object_outer(op: &Op, extra: (&str, &str), redirect_uri: &str) -> String {
    let fields = [
        extra,
        ("response_type", "code"),
        ("client_id", op.rp.client_id.as_str()),
        ("scope", "openid"),
        ("redirect_uri", redirect_uri),
    ];
    format!("{}?{}", op.rp.endpoint("oauth2/v2.0/authorize"), serde_urlencoded::to_string(fields).unwrap())
}

/// Serves `body` as a request object on a loopback port (as the suite does for request_uri) and
/// counts the requests that reach it.
fn serve_request_object(body: String) -> (String, Arc<AtomicUsize>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/request.jwt", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/oauth-authz-req+jwt\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    (url, hits)
}

/// request_uri modules: the object is reachable (we fetch it once ourselves), yet gatehouse answers
/// request_uri_not_supported at the RP without fetching it, stores nothing, and says so in discovery.
async fn request_uri_rejected_as_unsupported(op: &Op, object: String) {
    let (uri, hits) = serve_request_object(object.clone());
    let served = plain_client().get(&uri).send().await.unwrap().text().await.unwrap();
    assert_eq!(served, object, "the request object is served");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let before = op.app.snapshot().await;
    let url = request_object_outer(op, ("request_uri", &uri), &op.rp.redirect_uri);
    let page = op.app.browser().get(&url).await;
    op.error_from(&page, None, "request_uri_not_supported");
    assert_same(&before, &op.app.snapshot().await, "a rejected request_uri stores nothing");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "gatehouse never fetched the request_uri");

    let doc = op.discovery().await;
    assert_eq!(doc["request_uri_parameter_supported"], false);
    assert!(doc.get("request_object_signing_alg_values_supported").is_none());
}

// ---------------------------------------------------------------------------------------------
// oidcc-basic-certification-test-plan
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oidcc_server() {
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["issuer"], op.issuer.as_str());
    assert!(doc["response_types_supported"].as_array().unwrap().contains(&json!("code")));
    assert!(doc["subject_types_supported"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(doc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("RS256")));
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    for endpoint in ["authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"] {
        assert!(doc[endpoint].as_str().unwrap().starts_with(&op.app.url), "{endpoint}");
    }
    let jwks: Value = plain_client().get(doc["jwks_uri"].as_str().unwrap()).send().await.unwrap().json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty(), "the JWKS publishes at least the signing key: {jwks}");
    for key in keys {
        assert!(key["kid"].is_string() && key["kty"].is_string(), "{key}");
        assert!(key.get("d").is_none() && key.get("p").is_none(), "no private parts in the JWKS");
    }

    let browser = op.app.browser();
    let start = op.request(&[]);
    let location = op.authorize(&browser, &start).await;
    let code = op.code_from(&location, &start);
    let resp = token_raw(
        &op.rp,
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &op.rp.redirect_uri)],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["cache-control"], "no-store", "OIDC Core §3.1.3.3");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let tokens: Value = resp.json().await.unwrap();
    check_token_response(&tokens);
    let id = op.check_id_token(&op.rp, tokens["id_token"].as_str().unwrap(), Some(&start.nonce)).await;
    assert!(id.get("c_hash").is_none(), "no c_hash for response_type=code");
    let flow = Flow { start, tokens, id };
    op.userinfo(&flow).await;
}

#[tokio::test]
async fn oidcc_response_type_missing() {
    let op = op().await;
    let before = op.app.snapshot().await;
    let start = op.request(&[("response_type", "")]);
    let page = op.app.browser().get(&start.url).await;
    // RFC 6749 §4.1.2.1: the redirect URI is valid, so the error goes back to the client.
    op.error_from(&page, Some(&start), "invalid_request");
    assert_same(&before, &op.app.snapshot().await, "nothing stored for a request without response_type");
}

#[tokio::test]
async fn oidcc_idtoken_signature() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[]).await;
    let token = flow.tokens["id_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256, "the default ID token algorithm");
    let jwks = op.rp.jwks().await;
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    assert_eq!(jwk.common.key_algorithm, Some(jsonwebtoken::jwk::KeyAlgorithm::ES256));
    let doc = op.discovery().await;
    assert!(doc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256")));
    // A token whose signature was tampered with does not verify against the JWKS.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[10] ^= 0x01;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_aud = false;
    assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &key, &v).is_err());
}

#[tokio::test]
async fn oidcc_idtoken_unsigned() {
    // The suite skips this module unless discovery lists "none"; gatehouse never issues unsigned ID tokens.
    let op = op().await;
    let doc = op.discovery().await;
    let algs = doc["id_token_signing_alg_values_supported"].as_array().unwrap();
    assert!(!algs.contains(&json!("none")), "alg none is not offered");
    for alg in [SigningAlg::ES256, SigningAlg::RS256] {
        let rp = op.register_client(&format!("client-{}", alg.as_str()), alg).await;
        let flow = op.flow_for(&rp, &op.app.browser(), &[]).await;
        let header = jsonwebtoken::decode_header(flow.tokens["id_token"].as_str().unwrap()).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg.as_str(), "every ID token is signed");
    }
}

#[tokio::test]
async fn oidcc_userinfo_get() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[]).await;
    let access = flow.tokens["access_token"].as_str().unwrap();
    let resp = op.rp.http.get(op.rp.endpoint("oidc/userinfo")).bearer_auth(access).send().await.unwrap();
    let info = op.check_userinfo(resp, &flow.id).await;
    assert!(info.get("nonce").is_none());
}

#[tokio::test]
async fn oidcc_userinfo_post_header() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[]).await;
    let access = flow.tokens["access_token"].as_str().unwrap();
    let resp = op.rp.http.post(op.rp.endpoint("oidc/userinfo")).bearer_auth(access).send().await.unwrap();
    op.check_userinfo(resp, &flow.id).await;
}

#[tokio::test]
async fn oidcc_userinfo_post_body() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[]).await;
    let access = flow.tokens["access_token"].as_str().unwrap();
    let resp = op
        .rp
        .http
        .post(op.rp.endpoint("oidc/userinfo"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("access_token", access)]).unwrap())
        .send()
        .await
        .unwrap();
    op.check_userinfo(resp, &flow.id).await;
}

#[tokio::test]
async fn oidcc_ensure_request_without_nonce_succeeds_for_code_flow() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("nonce", "")]).await;
    assert_eq!(query_param(&flow.start.url, "nonce"), None);
    assert!(flow.id.get("nonce").is_none(), "no nonce asked, none returned");
}

#[tokio::test]
async fn oidcc_scope_profile() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("scope", "openid profile")]).await;
    let info = op.userinfo(&flow).await;
    assert_eq!(info["name"], "Ivan Worker");
    assert_eq!(info["preferred_username"], LOGIN);
    assert!(info.get("email").is_none(), "email was not asked for");
}

#[tokio::test]
async fn oidcc_scope_email() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("scope", "openid email")]).await;
    let info = op.userinfo(&flow).await;
    assert_eq!(info["email"], LOGIN);
    assert_eq!(info["email_verified"], true);
    assert!(info.get("name").is_none(), "profile was not asked for");
}

/// address and phone are not in scopes_supported, so the suite skips their modules; a request
/// for them still succeeds and the unknown scope is ignored (OIDC Core §5.4, RFC 6749 §3.3).
async fn unsupported_scope_is_ignored(scope: &str, claims: &[&str]) {
    let op = op().await;
    let doc = op.discovery().await;
    let supported = doc["scopes_supported"].as_array().unwrap();
    assert!(!supported.contains(&json!(scope)), "{scope} is not advertised");
    let flow = op.flow(&op.app.browser(), &[("scope", &format!("openid {scope}"))]).await;
    assert_eq!(flow.tokens["scope"], "openid", "the granted scope leaves {scope} out");
    let info = op.userinfo(&flow).await;
    for claim in claims {
        assert!(info.get(*claim).is_none(), "{claim}");
    }
}

#[tokio::test]
async fn oidcc_scope_address() {
    unsupported_scope_is_ignored("address", &["address"]).await;
}

#[tokio::test]
async fn oidcc_scope_phone() {
    unsupported_scope_is_ignored("phone", &["phone_number", "phone_number_verified"]).await;
}

#[tokio::test]
async fn oidcc_scope_all() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("scope", "openid profile email address phone")]).await;
    assert_eq!(flow.tokens["scope"], "openid profile email", "the supported scopes are granted, the rest ignored");
    let info = op.userinfo(&flow).await;
    assert_eq!(info["name"], "Ivan Worker");
    assert_eq!(info["email"], LOGIN);
    assert!(info.get("address").is_none() && info.get("phone_number").is_none());
}

#[tokio::test]
async fn oidcc_ensure_other_scope_order_succeeds() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("scope", "email openid")]).await;
    let info = op.userinfo(&flow).await;
    assert_eq!(info["email"], LOGIN);
}

#[tokio::test]
async fn oidcc_display_page() {
    let op = op().await;
    op.flow(&op.app.browser(), &[("display", "page")]).await;
}

#[tokio::test]
async fn oidcc_display_popup() {
    let op = op().await;
    op.flow(&op.app.browser(), &[("display", "popup")]).await;
}

#[tokio::test]
async fn oidcc_prompt_login() {
    let op = op().await;
    let browser = op.app.browser();
    let first = op.flow(&browser, &[]).await;
    op.app.clock.advance(2);
    let start = op.request(&[("prompt", "login")]);
    let page = browser.follow(browser.get(&start.url).await).await;
    assert!(page.has("form#identify"), "prompt=login asks the user to sign in again despite the session");
    let done = login_from(&browser, page, &op.password).await;
    let second = op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
    assert_eq!(second.id["sub"], first.id["sub"]);
    let first_auth = first.id["auth_time"].as_i64().expect("auth_time");
    let second_auth = second.id["auth_time"].as_i64().expect("auth_time");
    assert!(second_auth > first_auth, "auth_time is the new sign-in");
}

#[tokio::test]
async fn oidcc_prompt_none_not_logged_in() {
    let op = op().await;
    let before = op.app.snapshot().await;
    let start = op.request(&[("prompt", "none")]);
    let page = op.app.browser().get(&start.url).await;
    op.error_from(&page, Some(&start), "login_required");
    assert_same(&before, &op.app.snapshot().await, "prompt=none without a session stores nothing");
}

#[tokio::test]
async fn unsupported_prompt_values_are_refused_and_not_advertised() {
    // gatehouse offers no account chooser: discovery does not list select_account and a request
    // asking for it (or any unknown value) gets invalid_request at the RP (as node-oidc-provider does).
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["prompt_values_supported"], json!(["none", "login", "consent"]));
    let browser = op.app.browser();
    op.flow(&browser, &[]).await;
    for prompt in ["select_account", "login select_account", "unheard_of"] {
        let before = op.app.snapshot().await;
        let start = op.request(&[("prompt", prompt)]);
        let page = browser.get(&start.url).await;
        op.error_from(&page, Some(&start), "invalid_request");
        let location = page.location.as_deref().unwrap();
        let description = query_param(location, "error_description").unwrap_or_default();
        assert!(description.contains("is not supported"), "prompt={prompt}: {description}");
        assert_same(&before, &op.app.snapshot().await, format!("prompt={prompt} is refused before anything is stored"));
    }
}

/// At the consent page (`form#consent` posting to app-consent): the listed permissions, then the answer.
async fn answer_consent(browser: &Browser, page: Page, decision: &str) -> Page {
    let page = browser.follow(page).await;
    assert!(page.has("form#consent") && page.has("ul#scopes"), "expected the consent page:\n{}", page.body);
    assert!(page.form("consent").action.ends_with("/login/app-consent"), "{}", page.body);
    browser.submit(&page.form("consent").set("decision", decision)).await
}

#[tokio::test]
async fn a_third_party_app_asks_consent_once_and_again_when_it_asks_for_more() {
    // OIDC Core §11: test-rp is first-party by configuration (no question); an app that is not
    // asks the user, remembers the answer, and asks again when the scope grows.
    let op = op().await;
    let extra = [("scope", "openid offline_access")];
    let first_party = op.flow(&op.app.browser(), &extra).await;
    assert!(first_party.tokens["refresh_token"].is_string(), "{}", first_party.tokens);

    let tid = op.app.tenant_id("fabrikam").await;
    let mut third = op.app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    assert!(third.first_party, "the demo declares test-rp first-party");
    third.client_id = "third-party-rp".into();
    third.first_party = false;
    op.app.state.store.put_app(&third).await.unwrap();
    let rp = Rp { client_id: "third-party-rp".into(), ..op.rp.clone() };
    let browser = op.app.browser();
    let start = op.request_for(&rp, &extra);
    let page = browser.sign_in(&start.url, LOGIN, &op.password).await;
    let shares = page.text("ul#scopes").unwrap_or_default();
    assert!(shares.contains("stay signed in"), "offline access is named: {shares}");
    let done = answer_consent(&browser, page, "accept").await;
    let flow = op.finish(&rp, start, done.location.as_deref().unwrap()).await;
    assert!(flow.tokens["refresh_token"].is_string(), "consented offline access: {}", flow.tokens);
    assert_eq!(flow.tokens["scope"], "openid offline_access");

    // The same scope again: no question (SSO answers at once).
    let again = op.request_for(&rp, &extra);
    let page = browser.get(&again.url).await;
    op.code_from(page.location.as_deref().unwrap(), &again);
    // More than was consented: asked again; prompt=none gets consent_required.
    let more = [("scope", "openid offline_access email")];
    let silent = op.request_for(&rp, &[("scope", "openid offline_access email"), ("prompt", "none")]);
    let before = op.app.snapshot_except(&["signins"]).await;
    op.error_from(&browser.get(&silent.url).await, Some(&silent), "consent_required");
    assert_same(&before, &op.app.snapshot_except(&["signins"]).await, "consent_required stores no consent and no code");
    let asked = op.request_for(&rp, &more);
    let page = browser.get(&asked.url).await;
    let done = answer_consent(&browser, page, "accept").await;
    op.finish(&rp, asked, done.location.as_deref().unwrap()).await;
}

#[tokio::test]
async fn declining_consent_tells_the_app_access_denied_and_records_nothing() {
    let op = op().await;
    let browser = op.app.browser();
    let start = op.request(&[("scope", "openid offline_access"), ("prompt", "consent")]);
    let page = browser.sign_in(&start.url, LOGIN, &op.password).await;
    // Everything the sign-in itself legitimately writes is there by now; declining adds nothing.
    let before = op.app.snapshot_except(&["signins"]).await;
    let declined = answer_consent(&browser, page, "decline").await;
    op.error_from(&declined, Some(&start), "access_denied");
    assert_same(
        &before,
        &op.app.snapshot_except(&["signins"]).await,
        "a declined consent stores no consent and no code",
    );
    let consents = op.app.snapshot().await.iter().filter(|(t, _, _)| t == "tenant_consents").count();
    assert_eq!(consents, 0);
}

#[tokio::test]
async fn oidcc_prompt_none_logged_in() {
    let op = op().await;
    let browser = op.app.browser();
    let first = op.flow(&browser, &[]).await;
    op.app.clock.advance(5);
    let start = op.request(&[("prompt", "none")]);
    let page = browser.get(&start.url).await;
    assert_eq!(page.status, StatusCode::FOUND, "answered at once, no page shown");
    let second = op.finish(&op.rp, start, page.location.as_deref().unwrap()).await;
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"], "the same authentication");
}

#[tokio::test]
async fn oidcc_max_age_1() {
    let op = op().await;
    let browser = op.app.browser();
    let first = op.flow(&browser, &[]).await;
    op.app.clock.advance(2);
    let start = op.request(&[("max_age", "1")]);
    let page = browser.follow(browser.get(&start.url).await).await;
    assert!(page.has("form#identify"), "the session is older than max_age: sign in again");
    let done = login_from(&browser, page, &op.password).await;
    let second = op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
    let auth_time = second.id["auth_time"].as_i64().expect("auth_time is required when max_age is used");
    assert!(auth_time > first.id["auth_time"].as_i64().unwrap(), "auth_time is the new sign-in");
    assert_eq!(auth_time, op.now(), "auth_time is recent");
    assert_eq!(second.id["sub"], first.id["sub"]);
}

#[tokio::test]
async fn oidcc_max_age_10000() {
    let op = op().await;
    let browser = op.app.browser();
    let first = op.flow(&browser, &[("max_age", "15000")]).await;
    let first_auth = first.id["auth_time"].as_i64().expect("auth_time is required when max_age is used");
    op.app.clock.advance(60);
    let start = op.request(&[("max_age", "10000")]);
    let page = browser.get(&start.url).await;
    assert_eq!(page.status, StatusCode::FOUND, "the session is young enough: no login page");
    let second = op.finish(&op.rp, start, page.location.as_deref().unwrap()).await;
    assert_eq!(second.id["auth_time"].as_i64(), Some(first_auth), "same auth_time");
    assert_eq!(second.id["sub"], first.id["sub"]);
}

#[tokio::test]
async fn oidcc_ensure_request_with_unknown_parameter_succeeds() {
    let op = op().await;
    op.flow(&op.app.browser(), &[("extra", "foobar"), ("x-unknown", "1")]).await;
}

#[tokio::test]
async fn oidcc_id_token_hint() {
    let op = op().await;
    let browser = op.app.browser();
    let first = op.flow(&browser, &[]).await;
    let hint = first.tokens["id_token"].as_str().unwrap().to_string();
    let start = op.request(&[("prompt", "none"), ("id_token_hint", &hint)]);
    let page = browser.get(&start.url).await;
    let second = op.finish(&op.rp, start, page.location.as_deref().unwrap()).await;
    assert_eq!(second.id["sub"], first.id["sub"]);
    assert_eq!(second.id["auth_time"], first.id["auth_time"]);
    // OIDC Core §3.1.2.1: an expired ID token is still a valid hint.
    op.app.clock.advance(3601);
    let start = op.request(&[("prompt", "none"), ("id_token_hint", &hint)]);
    let page = browser.get(&start.url).await;
    let third = op.finish(&op.rp, start, page.location.as_deref().unwrap()).await;
    assert_eq!(third.id["sub"], first.id["sub"]);
}

/// An ID token of test-rp in `tenant` for `login`, signed in in a browser of its own.
async fn id_token_of(op: &Op, tenant: &str, login: &str) -> String {
    let rp = op.app.rp(tenant);
    let start = op.request_for(&rp, &[]);
    let done = op.app.browser().sign_in(&start.url, login, &op.app.password(login)).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    let tokens = op.redeem_for(&rp, &code).await;
    tokens["id_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn id_token_hint_for_another_user_is_not_answered_by_the_session() {
    // OIDC Core §3.1.2.1: the hint names the user the RP expects. The browser's session is iw's;
    // a hint naming admin@fabrikam must not get iw's code, with or without prompt=none, and an
    // expired hint still names its user.
    let op = op().await;
    let browser = op.app.browser();
    let mine = op.flow(&browser, &[]).await;
    let other = id_token_of(&op, "fabrikam", "admin@fabrikam.example").await;

    // The same user's hint: answered at once from the session, the same authentication.
    let start = op.request(&[("prompt", "none"), ("id_token_hint", mine.tokens["id_token"].as_str().unwrap())]);
    let page = browser.get(&start.url).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
    let again = op.finish(&op.rp, start, page.location.as_deref().unwrap()).await;
    assert_eq!((&again.id["sub"], &again.id["auth_time"]), (&mine.id["sub"], &mine.id["auth_time"]));

    for (when, advance) in [("current", 0), ("expired", 3601)] {
        op.app.clock.advance(advance);
        let before = op.app.snapshot().await;
        let start = op.request(&[("prompt", "none"), ("id_token_hint", &other)]);
        let page = browser.get(&start.url).await;
        op.error_from(&page, Some(&start), "login_required");
        assert_same(&before, &op.app.snapshot().await, format!("a {when} hint for another user with prompt=none"));
        // Without prompt=none the user is asked to sign in instead of getting iw's code.
        let start = op.request(&[("id_token_hint", &other)]);
        let page = browser.follow(browser.get(&start.url).await).await;
        assert!(page.has("form#identify"), "{when} hint for another user: sign in again:\n{}", page.body);
    }
}

#[tokio::test]
async fn id_token_hint_from_another_tenant_is_refused() {
    // contoso's ID token names a user of another issuer: it cannot identify anyone at fabrikam,
    // so it is refused like any hint that cannot be verified (issue 11 finding 30), not ignored.
    let op = op().await;
    let browser = op.app.browser();
    op.flow(&browser, &[]).await;
    let foreign = id_token_of(&op, "contoso", "sally@contoso.example").await;
    let before = op.app.snapshot().await;
    let start = op.request(&[("prompt", "none"), ("id_token_hint", &foreign)]);
    let page = browser.get(&start.url).await;
    op.error_from(&page, Some(&start), "invalid_request");
    assert_same(&before, &op.app.snapshot().await, "another tenant's hint is refused before anything is stored");
}

#[tokio::test]
async fn garbage_id_token_hint_is_invalid_request() {
    // node-oidc-provider answers invalid_request for a hint it cannot verify (issue 11 finding 30).
    let op = op().await;
    let browser = op.app.browser();
    let mine = op.flow(&browser, &[]).await;
    let tampered = {
        let t = mine.tokens["id_token"].as_str().unwrap();
        let (rest, sig) = t.rsplit_once('.').unwrap();
        format!("{rest}.{}", URL_SAFE_NO_PAD.encode(vec![0u8; URL_SAFE_NO_PAD.decode(sig).unwrap().len()]))
    };
    for hint in ["garbage", "a.b.c", tampered.as_str()] {
        let before = op.app.snapshot().await;
        let start = op.request(&[("prompt", "none"), ("id_token_hint", hint)]);
        let page = browser.get(&start.url).await;
        op.error_from(&page, Some(&start), "invalid_request");
        assert_same(&before, &op.app.snapshot().await, format!("hint {hint:?} is refused before anything is stored"));
    }
}

#[tokio::test]
async fn oidcc_login_hint() {
    let op = op().await;
    let browser = op.app.browser();
    let start = op.request(&[("login_hint", LOGIN)]);
    let page = browser.follow(browser.get(&start.url).await).await;
    assert_eq!(page.attr("form#identify input[name=login]", "value").as_deref(), Some(LOGIN), "the hint pre-fills");
    let done = login_from(&browser, page, &op.password).await;
    op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
}

#[tokio::test]
async fn oidcc_ui_locales() {
    let op = op().await;
    op.flow(&op.app.browser(), &[("ui_locales", "se")]).await;
}

#[tokio::test]
async fn oidcc_claims_locales() {
    let op = op().await;
    let flow = op.flow(&op.app.browser(), &[("claims_locales", "se")]).await;
    op.userinfo(&flow).await;
}

#[tokio::test]
async fn oidcc_ensure_request_with_acr_values_succeeds() {
    // The suite sends the advertised acr_values_supported, "1 2". acr_values is a preference list
    // (OIDC Core §3.1.2.1): gatehouse aims for the first value it supports ("1" or "2") and ignores
    // the others; "2" steps up to MFA (DESIGN §2.4). One outcome per input, in one app so that the
    // first step-up enrols TOTP and the later ones answer the challenge.
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["acr_values_supported"], json!(["1", "2"]));
    let cases = [("1 2", "1"), ("2 1", "2"), ("2", "2"), ("3 2", "2"), ("3", "1"), ("1", "1"), ("3 1 2", "1")];
    let mut secret: Option<String> = None;
    for (acr_values, expected) in cases {
        let browser = op.app.browser();
        let start = op.request(&[("acr_values", acr_values)]);
        let page = browser.sign_in(&start.url, LOGIN, &op.password).await;
        let done = if expected == "2" {
            // A fresh TOTP step each time: a code of a step already used is a replay.
            op.app.clock.advance(30);
            match &secret {
                None => {
                    assert!(page.has("form#totp-enroll"), "acr_values={acr_values}: proof-up expected:\n{}", page.body);
                    let s = page.text("code#totp-secret").unwrap();
                    let form = page.form("totp-enroll").set("code", &totp_at(&s, op.now()));
                    let shown = browser.post_abs(&page.url, &form).await;
                    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
                    secret = Some(s);
                    browser.follow_any(browser.post_abs(&page.url, &shown.form("continue")).await).await
                }
                Some(s) => {
                    assert!(page.has("form#totp-challenge"), "acr_values={acr_values}: MFA expected:\n{}", page.body);
                    let form = page.form("totp-challenge").set("code", &totp_at(s, op.now()));
                    browser.follow_any(browser.post_abs(&page.url, &form).await).await
                }
            }
        } else {
            assert_eq!(
                page.status,
                StatusCode::FOUND,
                "acr_values={acr_values}: no second factor asked:\n{}",
                page.body
            );
            page
        };
        let flow = op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
        assert_eq!(flow.id["acr"], expected, "acr_values={acr_values}");
        let amr = flow.id["amr"].as_array().unwrap();
        assert_eq!(amr.contains(&json!("mfa")), expected == "2", "acr_values={acr_values}: amr {amr:?}");
    }
}

#[tokio::test]
async fn oidcc_codereuse() {
    let op = op().await;
    let start = op.request(&[]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let fields = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &op.rp.redirect_uri)];
    let tokens: Value = token_raw(&op.rp, &fields).await.json().await.unwrap();
    check_token_response(&tokens);
    check_token_error(token_raw(&op.rp, &fields).await, "invalid_grant").await;
}

#[tokio::test]
async fn oidcc_codereuse_30seconds() {
    let op = op().await;
    let start = op.request(&[]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let fields = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &op.rp.redirect_uri)];
    let tokens: Value = token_raw(&op.rp, &fields).await.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(op.rp.userinfo(access).await.status(), StatusCode::OK);
    op.app.clock.advance(30);
    check_token_error(token_raw(&op.rp, &fields).await, "invalid_grant").await;
    // RFC 6749 §4.1.2: the tokens issued for the code SHOULD be revoked (a warning in the suite).
    assert_eq!(op.rp.userinfo(access).await.status(), StatusCode::UNAUTHORIZED, "the first access token is revoked");
}

#[tokio::test]
async fn oidcc_ensure_registered_redirect_uri() {
    let op = op().await;
    for unregistered in ["https://rp.example/callback", "http://127.0.0.1:9/callback/other"] {
        let before = op.app.snapshot().await;
        let start = op.request(&[("redirect_uri", unregistered)]);
        let page = op.app.browser().get(&start.url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{unregistered}");
        assert!(page.location.is_none(), "never redirect to an unregistered URI");
        assert_eq!(page.error_code().as_deref(), Some("invalid_redirect_uri"), "an error page for the user");
        assert_same(&before, &op.app.snapshot().await, unregistered);
    }
}

#[tokio::test]
async fn oidcc_ensure_post_request_succeeds() {
    let op = op().await;
    let browser = op.app.browser();
    let start = op.request(&[]);
    let fields: Vec<(String, String)> = url::Url::parse(&start.url).unwrap().query_pairs().into_owned().collect();
    let page = browser.post(&op.rp.endpoint("oauth2/v2.0/authorize"), &fields).await;
    let done = login_from(&browser, page, &op.password).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
}

#[tokio::test]
async fn oidcc_server_client_secret_post() {
    let op = op().await;
    let doc = op.discovery().await;
    assert!(doc["token_endpoint_auth_methods_supported"].as_array().unwrap().contains(&json!("client_secret_post")));
    let start = op.request(&[]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let secret = op.rp.secret.clone().unwrap();
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", op.rp.redirect_uri.as_str()),
        ("client_id", op.rp.client_id.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let resp = op
        .rp
        .http
        .post(op.rp.endpoint("oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens: Value = resp.json().await.unwrap();
    check_token_response(&tokens);
    let id = op.check_id_token(&op.rp, tokens["id_token"].as_str().unwrap(), Some(&start.nonce)).await;
    op.userinfo(&Flow { start, tokens, id }).await;
}

#[tokio::test]
async fn oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported() {
    let op = op().await;
    let start = op.request(&[]);
    request_uri_rejected_as_unsupported(&op, unsigned_jwt(&request_object_claims(&op, &start))).await;
}

#[tokio::test]
async fn oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported() {
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["request_parameter_supported"], false, "discovery says request objects are not supported");
    let start = op.request(&[]);
    let object = unsigned_jwt(&request_object_claims(&op, &start));
    let before = op.app.snapshot().await;
    let page = op.app.browser().get(&request_object_outer(&op, ("request", &object), &op.rp.redirect_uri)).await;
    // OIDC Core §3.1.2.6: request_not_supported, sent back to the (registered) redirect URI.
    op.error_from(&page, None, "request_not_supported");
    assert_same(&before, &op.app.snapshot().await, "a rejected request object stores nothing");
}

#[tokio::test]
async fn oidcc_claims_essential() {
    // The claims parameter is optional (OIDC Core §5.5); gatehouse says claims_parameter_supported
    // false and ignores it. The suite only warns when the essential name claim is missing.
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["claims_parameter_supported"], false);
    let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
    let flow = op.flow(&op.app.browser(), &[("claims", claims)]).await;
    assert!(flow.id.get("name").is_none(), "name was requested for UserInfo only");
    let info = op.userinfo(&flow).await;
    assert!(info.get("name").is_none(), "the claims parameter is ignored: scope=openid releases only sub");
}

#[tokio::test]
async fn oidcc_ensure_request_object_with_redirect_uri() {
    // The request object carries the registered redirect_uri, the outer query an unregistered one.
    // gatehouse does not process request objects, so it must not trust either: an error page, no redirect.
    let op = op().await;
    let start = op.request(&[]);
    let object = unsigned_jwt(&request_object_claims(&op, &start));
    let before = op.app.snapshot().await;
    let url = request_object_outer(&op, ("request", &object), "https://rp.example/invalid-redirect");
    let page = op.app.browser().get(&url).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location.is_none(), "no redirect to the unregistered outer redirect_uri");
    assert_eq!(page.error_code().as_deref(), Some("invalid_redirect_uri"));
    assert_same(&before, &op.app.snapshot().await, "");
}

#[tokio::test]
async fn oidcc_refresh_token() {
    let op = op().await;
    let doc = op.discovery().await;
    assert!(doc["grant_types_supported"].as_array().unwrap().contains(&json!("refresh_token")));
    // The suite adds prompt=consent to offline_access (OIDC Core §11): the consent page is
    // shown even to a first-party app, and accepting it finishes the authorization.
    let extra = [("scope", "openid offline_access"), ("prompt", "consent")];
    let browser = op.app.browser();
    let start = op.request(&extra);
    let page = browser.sign_in(&start.url, LOGIN, &op.password).await;
    let done = answer_consent(&browser, page, "accept").await;
    let first = op.finish(&op.rp, start, done.location.as_deref().unwrap()).await;
    let refresh = first.tokens["refresh_token"].as_str().expect("a refresh token for offline_access").to_string();
    assert!(refresh.chars().all(|c| ('\x20'..='\x7e').contains(&c)), "RFC 6749 A.17");

    op.app.clock.advance(10);
    // The suite's refresh request carries the scope of the authorization request, and checks the
    // response is JSON and not cached (RFC 6749 §5.1: Cache-Control no-store, Pragma no-cache).
    let resp = token_raw(
        &op.rp,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh), ("scope", "openid offline_access")],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_string());
    assert!(header("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", resp.headers());
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("pragma").as_deref(), Some("no-cache"));
    let refreshed: Value = resp.json().await.unwrap();
    check_token_response(&refreshed);
    assert_eq!(refreshed["scope"], "openid offline_access", "{refreshed}");
    // OIDC Core §12.2: same iss, sub, aud and auth_time; a new iat; no nonce.
    let id = op.check_id_token(&op.rp, refreshed["id_token"].as_str().unwrap(), None).await;
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(id[claim], first.id[claim], "{claim}");
    }
    assert!(id["iat"].as_i64() > first.id["iat"].as_i64());
    let access = refreshed["access_token"].as_str().unwrap();
    op.check_userinfo(op.rp.userinfo(access).await, &id).await;

    // The refresh token is bound to its client: client 2's token fails at client 1.
    let client2 = op.register_client("conformance-client-2", SigningAlg::ES256).await;
    let second = op.flow_for(&client2, &op.app.browser(), &[("scope", "openid offline_access")]).await;
    let refresh2 = second.tokens["refresh_token"].as_str().unwrap();
    let resp = token_raw(&op.rp, &[("grant_type", "refresh_token"), ("refresh_token", refresh2)]).await;
    check_token_error(resp, "invalid_grant").await;
    let (status, _) = client2.refresh(refresh2).await;
    assert_eq!(status, StatusCode::OK, "the failed attempt by another client did not spend it");
}

#[tokio::test]
async fn oidcc_ensure_request_with_valid_pkce_succeeds() {
    let op = op().await;
    let verifier = random_b64(32);
    let challenge = s256(&verifier);
    let start = op.request(&[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let (status, tokens) = op.rp.exchange(&code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    check_token_response(&tokens);
    op.check_id_token(&op.rp, tokens["id_token"].as_str().unwrap(), Some(&start.nonce)).await;
}

// ---------------------------------------------------------------------------------------------
// Modules of the suite's other OP plans (oidcc-test-plan, Config/Dynamic OP)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oidcc_ensure_redirect_uri_in_authorization_request() {
    let op = op().await;
    let before = op.app.snapshot().await;
    let start = op.request(&[("redirect_uri", "")]);
    let page = op.app.browser().get(&start.url).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.location.is_none(), "without a redirect_uri there is nowhere safe to redirect");
    assert_eq!(page.error_code().as_deref(), Some("invalid_redirect_uri"));
    assert_same(&before, &op.app.snapshot().await, "");
}

#[tokio::test]
async fn oidcc_request_uri_unsigned() {
    let op = op().await;
    let start = op.request(&[]);
    request_uri_rejected_as_unsupported(&op, unsigned_jwt(&request_object_claims(&op, &start))).await;
}

#[tokio::test]
async fn oidcc_request_uri_signed_rs256() {
    let op = op().await;
    let start = op.request(&[]);
    request_uri_rejected_as_unsupported(&op, rs256_jwt(&request_object_claims(&op, &start))).await;
}

#[tokio::test]
async fn oidcc_idtoken_rs256() {
    let op = op().await;
    let rp = op.register_client("conformance-rs256", SigningAlg::RS256).await;
    let flow = op.flow_for(&rp, &op.app.browser(), &[]).await;
    let header = jsonwebtoken::decode_header(flow.tokens["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let jwk = rp.jwks().await.find(header.kid.as_deref().unwrap()).cloned().unwrap();
    assert_eq!(jwk.common.key_algorithm, Some(jsonwebtoken::jwk::KeyAlgorithm::RS256));
    assert!(matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)));
    // Access tokens stay ES256: the client's setting is about ID tokens only.
    let at = jsonwebtoken::decode_header(flow.tokens["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(at.alg, jsonwebtoken::Algorithm::ES256);
}

#[tokio::test]
async fn oidcc_userinfo_rs256() {
    // The suite's module registers userinfo_signed_response_alg=RS256 and expects an application/jwt
    // UserInfo response. gatehouse does not sign UserInfo (optional, OIDC Core §5.3.2) and does not
    // advertise userinfo_signing_alg_values_supported: even an RS256 client gets plain JSON.
    let op = op().await;
    let doc = op.discovery().await;
    assert!(doc.get("userinfo_signing_alg_values_supported").is_none());
    let rp = op.register_client("conformance-rs256", SigningAlg::RS256).await;
    let flow = op.flow_for(&rp, &op.app.browser(), &[]).await;
    assert_eq!(
        jsonwebtoken::decode_header(flow.tokens["id_token"].as_str().unwrap()).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    let resp = rp.userinfo(flow.tokens["access_token"].as_str().unwrap()).await;
    let info = op.check_userinfo(resp, &flow.id).await;
    assert!(info.get("nonce").is_none());
}

// ---------------------------------------------------------------------------------------------
// gatehouse PKCE checks (not suite modules)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn oidcc_ensure_pkce_required() {
    let op = op().await;
    // Public clients must use PKCE (RFC 9700 §2.1.1, DESIGN §2.3).
    let tid = op.app.tenant_id("fabrikam").await;
    let mut public = op.app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    public.client_id = "conformance-public".into();
    public.client_type = ClientType::Public;
    public.secret_hashes.clear();
    op.app.state.store.put_app(&public).await.unwrap();
    let spa = Rp { client_id: "conformance-public".into(), secret: None, ..op.rp.clone() };
    let start = op.request_for(&spa, &[]);
    let page = op.app.browser().get(&start.url).await;
    op.error_from(&page, Some(&start), "invalid_request");
    let start = spa.authorize_url(&[("scope", "openid")]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let (status, body) =
        spa.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &spa.redirect_uri)]).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "verifier needed");
    let (status, tokens) = spa.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // A code issued without a challenge is refused with a code_verifier (PKCE downgrade, RFC 9700 §2.1.1).
    let start = op.request(&[]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let (status, body) = op.rp.exchange(&code, &start.verifier).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
}

#[tokio::test]
async fn oidcc_pkce() {
    let op = op().await;
    let doc = op.discovery().await;
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    // plain is refused at the authorization endpoint.
    let start = op.rp.authorize_url(&[("scope", "openid"), ("code_challenge_method", "plain")]);
    let page = op.app.browser().get(&start.url).await;
    op.error_from(&page, Some(&start), "invalid_request");
    // S256: a wrong verifier fails, the right one works.
    let start = op.rp.authorize_url(&[("scope", "openid")]);
    let location = op.authorize(&op.app.browser(), &start).await;
    let code = op.code_from(&location, &start);
    let (status, body) = op.rp.exchange(&code, &random_b64(32)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, tokens) = op.rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    op.check_id_token(&op.rp, tokens["id_token"].as_str().unwrap(), Some(&start.nonce)).await;
}
