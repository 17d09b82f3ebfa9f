//! Issue 11, federation: the home's `iss` (RFC 9207), freshness forwarded to the home and its
//! `auth_time` kept, bounded stub state, capped home answers, cached home metadata, swept
//! federation states, and the stub account lockout.
use std::io::{Read, Write};

use reqwest::StatusCode;
use serde_json::json;

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;

const SALLY: &str = "sally@contoso.example";
const ALEX: &str = "alex@outlook.example";

/// Walks the home's identify and password pages and returns the home's redirect back to
/// `/federation/callback`, without following it.
async fn home_answer(browser: &Browser, home: &Page, login: &str, password: &str) -> String {
    let back = if home.has("form#home-login") {
        let form = home.form("home-login").set("login", login).set("password", password);
        browser.post_abs(&home.url, &form).await
    } else {
        assert!(home.has("form#identify"), "expected a home sign-in page at {}:\n{}", home.url, home.body);
        let next =
            browser.follow_any(browser.post_abs(&home.url, &home.form("identify").set("login", login)).await).await;
        assert!(next.has("form#password"), "{}", next.body);
        browser.post_abs(&next.url, &next.form("password").set("password", password)).await
    };
    let location = back.location.clone().unwrap_or_else(|| panic!("the home redirects back: {}", back.body));
    assert!(location.contains("/federation/callback?"), "{location}");
    location
}

fn with_query(url: &str, set: &[(&str, Option<&str>)]) -> String {
    let mut u = url::Url::parse(url).unwrap();
    let mut pairs: Vec<(String, String)> = u.query_pairs().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for (name, value) in set {
        pairs.retain(|(k, _)| k != name);
        if let Some(v) = value {
            pairs.push((name.to_string(), v.to_string()));
        }
    }
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

async fn guest_state(app: &TestApp, email: &str) -> Option<gatehouse::model::ExternalUserState> {
    app.user("fabrikam", email).await.external_user_state
}

#[tokio::test]
async fn home_answer_with_a_wrong_or_missing_iss_is_refused_before_its_code_is_used() {
    let app = spawn_app().await;
    let inv = app.invite(SALLY, LANDING, None).await;
    let browser = app.browser();
    let home = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    let contoso_answer = home_answer(&browser, &home, SALLY, &app.password(SALLY)).await;
    // gatehouse's own tenants name themselves in the answer.
    assert_eq!(query_param(&contoso_answer, "iss").as_deref(), Some(app.issuer("contoso").as_str()));

    // A code from the msa stub, for another sign-in (the attacker's own account).
    app.invite(ALEX, LANDING, None).await;
    let alex_url =
        app.state.store.outbox(10).await.unwrap().into_iter().find(|m| m.to == ALEX).unwrap().redeem_url.unwrap();
    let attacker = app.browser();
    let stub_home = attacker.follow_any(attacker.get(&alex_url).await).await;
    let msa_answer = home_answer(&attacker, &stub_home, ALEX, &app.password(ALEX)).await;
    let msa_issuer = format!("{}/stub/msa", app.url);
    // The stubs name themselves too.
    assert_eq!(query_param(&msa_answer, "iss").as_deref(), Some(msa_issuer.as_str()));
    let msa_code = query_param(&msa_answer, "code").unwrap();

    let before = app.snapshot().await;
    let tampered = [
        ("the home's code without iss", with_query(&contoso_answer, &[("iss", None)])),
        ("the home's code with another issuer", with_query(&contoso_answer, &[("iss", Some(&msa_issuer))])),
        (
            "msa's code and iss with the Contoso sign-in's state",
            with_query(&contoso_answer, &[("code", Some(&msa_code)), ("iss", Some(&msa_issuer))]),
        ),
        ("msa's code without iss", with_query(&contoso_answer, &[("code", Some(&msa_code)), ("iss", None)])),
        (
            "an error answer from another issuer",
            with_query(
                &contoso_answer,
                &[("code", None), ("error", Some("access_denied")), ("iss", Some(&msa_issuer))],
            ),
        ),
    ];
    for (what, url) in &tampered {
        let page = browser.get(url).await;
        assert_eq!(
            (page.status, page.error_code().as_deref()),
            (StatusCode::BAD_REQUEST, Some("home_issuer_mismatch")),
            "{what}: {}",
            page.body
        );
    }
    assert_same(&before, &app.snapshot().await, "a callback with a wrong or missing iss changes nothing");
    assert_eq!(guest_state(&app, SALLY).await, Some(gatehouse::model::ExternalUserState::PendingAcceptance));

    // The genuine answer still goes on, and the ticket still works.
    let consent = browser.follow_any(browser.get(&contoso_answer).await).await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    assert_eq!(guest_state(&app, SALLY).await, Some(gatehouse::model::ExternalUserState::Accepted));
}

#[tokio::test]
async fn prompt_login_and_max_age_make_the_guest_sign_in_again_at_home_and_keep_its_auth_time() {
    let app = spawn_app().await;
    let inv = app.invite(SALLY, LANDING, None).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), SALLY, &app.password(SALLY)).await;
    accept(&browser, &consent).await;
    // Sally now has live sessions at Contoso (her home) and at Fabrikam.
    let rp = app.rp("fabrikam");
    for extra in [("prompt", "login"), ("max_age", "0")] {
        app.clock.advance(100);
        let start = rp.authorize_url(&[extra]);
        let page = browser.follow_any(browser.get(&start.url).await).await;
        assert!(page.has("form#identify"), "{extra:?}: Fabrikam asks who is signing in: {}", page.body);
        let home =
            browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", SALLY)).await).await;
        assert!(
            home.url.contains("/contoso/") && home.has("form#identify"),
            "{extra:?}: the home asks Sally to sign in again ({}):\n{}",
            home.url,
            home.body
        );
        let home_auth_time = app.state.now();
        let answer = home_answer(&browser, &home, SALLY, &app.password(SALLY)).await;
        app.clock.advance(7);
        let done = browser.follow_any(browser.get(&answer).await).await;
        let location = done.location.clone().unwrap_or_else(|| panic!("{extra:?}: back to the RP: {}", done.body));
        let code = query_param(&location, "code").expect("code");
        let (status, tokens) = rp.exchange(&code, &start.verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
        assert_eq!(claims["auth_time"], json!(home_auth_time), "{extra:?}: the home's auth_time, not the callback's");
    }
}

fn stub_authorize(app: &TestApp, state: &str) -> String {
    let params = [
        ("client_id", "gatehouse"),
        ("redirect_uri", &format!("{}/federation/callback", app.url)),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("code_challenge", &s256("a-verifier-that-is-long-enough-for-pkce-rules")),
        ("code_challenge_method", "S256"),
        ("state", state),
    ];
    format!("{}/stub/msa/authorize?{}", app.url, serde_urlencoded::to_string(params).unwrap())
}

#[tokio::test]
async fn pending_stub_sign_ins_are_bounded_in_size_and_number_and_expire() {
    use gatehouse::demo::stub_idp::MAX_PENDING;
    let app = spawn_app().await;
    let http = plain_client();
    let before = app.snapshot().await;
    let huge = http.get(stub_authorize(&app, &"s".repeat(3000))).send().await.unwrap();
    assert_eq!(huge.status(), StatusCode::BAD_REQUEST);
    assert!(huge.text().await.unwrap().contains(r#"data-error="invalid_request""#));
    assert_eq!(app.stubs.pending_requests(), 0, "an oversized request is not kept");

    // Fill the map, 50 requests at a time.
    let url = stub_authorize(&app, "fill");
    for _ in 0..MAX_PENDING / 50 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let (http, url) = (http.clone(), url.clone());
            set.spawn(async move { http.get(url).send().await.unwrap().status() });
        }
        while let Some(status) = set.join_next().await {
            assert_eq!(status.unwrap(), StatusCode::OK);
        }
    }
    assert_eq!(app.stubs.pending_requests(), MAX_PENDING);
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.text().await.unwrap().contains(r#"data-error="too_many_signins""#));
    assert_eq!(app.stubs.pending_requests(), MAX_PENDING, "memory stays bounded");
    assert_same(&before, &app.snapshot().await, "stub requests are not stored");

    // Ten minutes later the expired ones make room.
    app.clock.advance(gatehouse::demo::stub_idp::REQUEST_SECS + 1);
    let page = app.browser().get(&url).await;
    assert!(page.has("form#home-login"), "{}", page.body);
    assert_eq!(app.stubs.pending_requests(), 1, "the expired requests were evicted");
}

/// A loopback "home IdP": answers discovery with a valid document padded past `pad` bytes
/// and no Content-Length (so only a streaming cap can stop it), and an empty JWKS.
fn padded_home(pad: usize) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = base.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let body = if head.starts_with("GET /.well-known/openid-configuration") {
                json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/authorize"),
                    "token_endpoint": format!("{issuer}/token"),
                    "jwks_uri": format!("{issuer}/keys"),
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["ES256"],
                    "x_padding": "a".repeat(pad),
                })
                .to_string()
            } else {
                json!({ "keys": [] }).to_string()
            };
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(body.as_bytes());
        }
    });
    base
}

async fn add_external_idp(app: &TestApp, issuer: &str) {
    let mut fabrikam = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    fabrikam.external_idps.push(gatehouse::model::ExternalIdp {
        id: "litware".into(),
        display_name: "Litware".into(),
        issuer: issuer.into(),
        client_id: "resource-fabrikam".into(),
        client_secret: gatehouse::secrets::Secret::new("partner-secret-123"),
        domains: vec!["litware.example".into()],
        metadata_url: String::new(),
        scope: gatehouse::model::DEFAULT_IDP_SCOPE.into(),
    });
    app.state.store.put_tenant(&fabrikam).await.unwrap();
}

#[tokio::test]
async fn an_oversized_answer_from_a_home_idp_is_cut_and_changes_nothing() {
    let app = spawn_app().await;
    add_external_idp(&app, &padded_home(gatehouse::federation::HOME_BODY_LIMIT + 64 * 1024)).await;
    let inv = app.invite("pat@litware.example", LANDING, None).await;
    let before = app.snapshot().await;
    let page = app.browser().get(inv["inviteRedeemUrl"].as_str().unwrap()).await;
    assert_eq!(
        (page.status, page.error_code().as_deref()),
        (StatusCode::BAD_GATEWAY, Some("home_unreachable")),
        "{:?} {}",
        page.location,
        page.body
    );
    assert_same(&before, &app.snapshot().await, "a refused home answer changes nothing");
    assert_eq!(
        guest_state(&app, "pat@litware.example").await,
        Some(gatehouse::model::ExternalUserState::PendingAcceptance)
    );

    // The same home with a normal-sized document is followed (the cap is what stopped it).
    let other = spawn_app().await;
    add_external_idp(&other, &padded_home(1024)).await;
    let inv = other.invite("pat@litware.example", LANDING, None).await;
    let page = other.browser().get(inv["inviteRedeemUrl"].as_str().unwrap()).await;
    assert_eq!(page.status, StatusCode::FOUND, "{}", page.body);
}

/// Sends Alex (an accepted msa guest) through a fresh sign-in to test-rp; returns the RP redirect.
async fn alex_signs_in(app: &TestApp) -> String {
    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(&[]);
    let page = browser.follow_any(browser.get(&start.url).await).await;
    let home = browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", ALEX)).await).await;
    let back = browser.home_sign_in(home, ALEX, &app.password(ALEX)).await;
    back.location.unwrap_or_else(|| panic!("back to the RP: {}", back.body))
}

#[tokio::test]
async fn home_metadata_is_fetched_once_per_five_minutes() {
    let app = spawn_app().await;
    app.invite(ALEX, LANDING, None).await;
    let url = app.state.store.outbox(10).await.unwrap().into_iter().find(|m| m.to == ALEX).unwrap().redeem_url.unwrap();
    let browser = app.browser();
    let consent = to_consent(&browser, &url, ALEX, &app.password(ALEX)).await;
    accept(&browser, &consent).await;
    assert_eq!(app.stubs.metadata_served(), (1, 1), "discovery and JWKS once for the redemption");
    for _ in 0..2 {
        assert!(query_param(&alex_signs_in(&app).await, "code").is_some());
    }
    assert_eq!(app.stubs.metadata_served(), (1, 1), "two more sign-ins reuse them");
    app.clock.advance(gatehouse::federation::METADATA_TTL_SECS + 1);
    assert!(query_param(&alex_signs_in(&app).await, "code").is_some());
    assert_eq!(app.stubs.metadata_served(), (2, 2), "fetched again after the TTL");
}

#[tokio::test]
async fn abandoned_federation_states_are_swept() {
    let app = spawn_app().await;
    let inv = app.invite(SALLY, LANDING, None).await;
    let browser = app.browser();
    let home = browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await;
    assert_eq!(home.status, StatusCode::FOUND, "sent to the home: {}", home.body);
    let states = async |app: &TestApp| app.snapshot().await.into_iter().filter(|(t, _, _)| t == "fed_states").count();
    assert_eq!(states(&app).await, 1);
    app.state.store.sweep(app.state.now()).await.unwrap();
    assert_eq!(states(&app).await, 1, "a live state is kept");
    app.clock.advance(app.state.config.tokens.signin_secs + 1);
    app.state.store.sweep(app.state.now()).await.unwrap();
    assert_eq!(states(&app).await, 0, "an expired state is swept");
}

#[tokio::test]
async fn a_stub_account_locks_after_five_wrong_passwords() {
    let app = spawn_app().await;
    app.invite(ALEX, LANDING, None).await;
    let url = app.state.store.outbox(10).await.unwrap().into_iter().find(|m| m.to == ALEX).unwrap().redeem_url.unwrap();
    let browser = app.browser();
    let page = browser.follow_any(browser.get(&url).await).await;
    let form = page.form("home-login").set("login", ALEX);
    for _ in 0..5 {
        let wrong = browser.post_abs(&page.url, &form.clone().set("password", "not-the-password")).await;
        assert!(wrong.text("p.error").unwrap_or_default().contains("not right"), "{}", wrong.body);
    }
    let before = app.snapshot().await;
    let locked = browser.post_abs(&page.url, &form.clone().set("password", &app.password(ALEX))).await;
    assert_eq!((locked.status, locked.location.as_deref()), (StatusCode::OK, None), "no code is issued");
    assert!(locked.text("p.error").unwrap_or_default().contains("locked"), "{}", locked.body);
    assert_eq!(app.stubs.pending_codes(), 0);
    assert_same(&before, &app.snapshot().await, "a locked stub login changes nothing");
    assert_eq!(guest_state(&app, ALEX).await, Some(gatehouse::model::ExternalUserState::PendingAcceptance));

    // After the window the right password works again (in a new sign-in: the old one expired).
    app.clock.advance(app.state.config.rate_limit.window_secs + 1);
    let page = browser.follow_any(browser.get(&url).await).await;
    let form = page.form("home-login").set("login", ALEX).set("password", &app.password(ALEX));
    let back = browser.post_abs(&page.url, &form).await;
    assert!(back.location.is_some_and(|l| l.contains("/federation/callback?")), "{}", back.body);
}

#[tokio::test]
async fn sign_in_frequency_reaches_the_home_as_max_age() {
    let app = spawn_app().await;
    let policy: gatehouse::policy::Policy = serde_json::from_value(json!({
        "id": "freq", "displayName": "Sign in every hour", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["test-rp"]}},
        "sessionControls": {"signInFrequency": {"value": 1, "type": "hours", "isEnabled": true}},
    }))
    .unwrap();
    app.state.store.put_policy(&app.tenant_id("fabrikam").await, &policy).await.unwrap();
    let inv = app.invite(SALLY, LANDING, None).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), SALLY, &app.password(SALLY)).await;
    accept(&browser, &consent).await;
    // Past the frequency, while Sally's home session (12 h) is still live.
    app.clock.advance(3600 + 60);
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let page = browser.follow_any(browser.get(&start.url).await).await;
    assert!(page.has("form#identify"), "Fabrikam asks again: {}", page.body);
    let home = browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", SALLY)).await).await;
    assert!(
        home.url.contains("/contoso/") && home.has("form#identify"),
        "the home asks Sally to sign in again ({}):\n{}",
        home.url,
        home.body
    );
    let home_auth_time = app.state.now();
    let answer = home_answer(&browser, &home, SALLY, &app.password(SALLY)).await;
    let done = browser.follow_any(browser.get(&answer).await).await;
    let code = query_param(done.location.as_deref().expect("back to the RP"), "code").expect("code");
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["auth_time"], json!(home_auth_time));
    // A later reuse within the hour is silent again (no loop back to the home).
    app.clock.advance(60);
    let reuse = browser.get(&rp.authorize_url(&[]).url).await;
    assert!(reuse.location.as_deref().is_some_and(|l| l.contains("code=")), "{:?} {}", reuse.location, reuse.body);
}

/// A loopback home IdP that signs its own ID tokens (ES256, with a key it can rotate) and
/// answers the token endpoint with whatever ID token the test put in `next`; it does not
/// advertise RFC 9207. It counts the JWKS requests it serves.
struct FakeHome {
    issuer: String,
    key: std::sync::Arc<std::sync::Mutex<(String, aws_lc_rs::signature::EcdsaKeyPair)>>,
    next: std::sync::Arc<std::sync::Mutex<String>>,
    jwks_served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn new_key() -> aws_lc_rs::signature::EcdsaKeyPair {
    aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()
}

impl FakeHome {
    fn start() -> Self {
        use aws_lc_rs::signature::KeyPair;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let home = Self {
            issuer: issuer.clone(),
            key: std::sync::Arc::new(std::sync::Mutex::new(("fake-1".into(), new_key()))),
            next: Default::default(),
            jwks_served: Default::default(),
        };
        let (iss, shared, key, served) = (issuer, home.next.clone(), home.key.clone(), home.jwks_served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(30) {
                let Ok(mut stream) = stream else { continue };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as Content-Length says (bounded reads).
                let mut wanted = None;
                for _ in 0..64 {
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0usize);
                        wanted = Some(end + 4 + len);
                    }
                    if wanted.is_some_and(|w| data.len() >= w) {
                        break;
                    }
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&data);
                let body = if head.starts_with("GET /.well-known/openid-configuration") {
                    json!({
                        "issuer": iss,
                        "authorization_endpoint": format!("{iss}/authorize"),
                        "token_endpoint": format!("{iss}/token"),
                        "jwks_uri": format!("{iss}/keys"),
                        "response_types_supported": ["code"],
                        "subject_types_supported": ["public"],
                        "id_token_signing_alg_values_supported": ["ES256"],
                    })
                    .to_string()
                } else if head.starts_with("GET /keys") {
                    served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let guard = key.lock().unwrap();
                    let public = guard.1.public_key().as_ref().to_vec();
                    json!({ "keys": [{ "kty": "EC", "crv": "P-256", "kid": guard.0, "use": "sig", "alg": "ES256",
                        "x": b64(&public[1..33]), "y": b64(&public[33..65]) }] })
                    .to_string()
                } else {
                    let id_token = shared.lock().unwrap().clone();
                    json!({ "access_token": "x", "token_type": "Bearer", "expires_in": 600, "id_token": id_token })
                        .to_string()
                };
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        home
    }

    /// The home starts signing with a new key (and publishes only that one).
    fn rotate(&self, kid: &str) {
        *self.key.lock().unwrap() = (kid.into(), new_key());
    }

    /// The ID token the next token request gets.
    fn answer_with(&self, claims: serde_json::Value) {
        let guard = self.key.lock().unwrap();
        let header = b64(json!({ "alg": "ES256", "typ": "JWT", "kid": guard.0 }).to_string().as_bytes());
        let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
        let sig = guard.1.sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes()).unwrap();
        *self.next.lock().unwrap() = format!("{input}.{}", b64(sig.as_ref()));
    }
}

/// Makes Pat an accepted guest of Fabrikam homed at `home` (set directly: the fake home has
/// no login pages).
async fn pat_homed_at(app: &TestApp, home: &FakeHome) {
    add_external_idp(app, &home.issuer).await;
    let email = "pat@litware.example";
    app.invite(email, LANDING, None).await;
    let mut pat = app.user("fabrikam", email).await;
    pat.external_user_state = Some(gatehouse::model::ExternalUserState::Accepted);
    pat.identities = vec![gatehouse::model::Identity {
        sign_in_type: "federated".into(),
        issuer: home.issuer.clone(),
        issuer_assigned_id: "pat-1".into(),
    }];
    app.state.store.put_user(&pat).await.unwrap();
}

/// Pat identifies at Fabrikam (with `extra` on the RP's request); the fake home answers with an
/// ID token whose auth_time is `home_auth_age` seconds old. Returns the start, the home
/// request URL and the callback page.
async fn pat_signs_in(
    app: &TestApp,
    home: &FakeHome,
    extra: &[(&str, &str)],
    home_auth_age: i64,
) -> (AuthStart, String, Page) {
    let email = "pat@litware.example";
    let browser = app.browser();
    let start = app.rp("fabrikam").authorize_url(extra);
    let page = browser.follow_any(browser.get(&start.url).await).await;
    let to_home = browser.post_abs(&page.url, &page.form("identify").set("login", email)).await;
    let request = to_home.location.clone().unwrap_or_else(|| panic!("sent to the home: {}", to_home.body));
    assert!(request.starts_with(&home.issuer), "{request}");
    let now = app.state.now();
    home.answer_with(json!({
        "iss": home.issuer, "sub": "pat-1", "aud": "resource-fabrikam", "iat": now, "exp": now + 600,
        "nonce": query_param(&request, "nonce").unwrap(), "auth_time": now - home_auth_age,
        "email": email, "email_verified": true,
    }));
    let callback = format!(
        "{}/federation/callback?{}",
        app.url,
        serde_urlencoded::to_string([("code", "c"), ("state", &query_param(&request, "state").unwrap())]).unwrap()
    );
    let back = browser.get(&callback).await;
    (start, request, back)
}

#[tokio::test]
async fn a_home_answer_older_than_the_forwarded_max_age_is_refused() {
    let app = spawn_app().await;
    let home = FakeHome::start();
    pat_homed_at(&app, &home).await;
    let rp = app.rp("fabrikam");

    // The sign-in writes its own transaction and federation state; nothing else may change.
    let before = app.snapshot_except(&["signins", "fed_states"]).await;
    let (_, request, back) = pat_signs_in(&app, &home, &[("max_age", "0")], 1000).await;
    assert_eq!(query_param(&request, "max_age").as_deref(), Some("0"), "max_age is forwarded: {request}");
    assert_eq!(
        (back.status, back.error_code().as_deref()),
        (StatusCode::BAD_REQUEST, Some("home_signin_not_fresh")),
        "{}",
        back.body
    );
    assert_same(&before, &app.snapshot_except(&["signins", "fed_states"]).await, "a stale home answer changes nothing");

    // A fresh answer from the same home goes through, with the home's auth_time.
    let (start, _, back) = pat_signs_in(&app, &home, &[("max_age", "0")], 0).await;
    let location = back.location.unwrap_or_else(|| panic!("a fresh answer reaches the RP: {}", back.body));
    let (status, tokens) = rp.exchange(&query_param(&location, "code").expect("code"), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["auth_time"], json!(app.state.now()), "the home's auth_time");
}

#[tokio::test]
async fn a_rotated_home_key_is_fetched_once_when_an_id_token_names_it() {
    let app = spawn_app().await;
    let home = FakeHome::start();
    pat_homed_at(&app, &home).await;
    let jwks = || home.jwks_served.load(std::sync::atomic::Ordering::SeqCst);
    let (_, _, back) = pat_signs_in(&app, &home, &[], 0).await;
    assert!(back.location.is_some_and(|l| l.contains("code=")), "{}", back.body);
    assert_eq!(jwks(), 1);
    let (_, _, back) = pat_signs_in(&app, &home, &[], 0).await;
    assert!(back.location.is_some_and(|l| l.contains("code=")), "{}", back.body);
    assert_eq!(jwks(), 1, "the cached key set is reused");
    home.rotate("fake-2");
    let (_, _, back) = pat_signs_in(&app, &home, &[], 0).await;
    assert!(back.location.is_some_and(|l| l.contains("code=")), "the new key is fetched: {}", back.body);
    assert_eq!(jwks(), 2, "fetched once more for the unknown kid");
}
