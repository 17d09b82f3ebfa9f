//! Test harness: the real server on port 0 with a temp data dir and a manual clock,
//! a cookie-keeping browser that does not follow redirects, and an RP that checks
//! tokens against the served JWKS with an independent JWT library.
#![allow(dead_code)]

use std::sync::Arc;

use base64::Engine;
use gatehouse::app::AppState;
use gatehouse::clock::ManualClock;
use gatehouse::config::Config;
use gatehouse::demo::seed::DemoCredentials;
use gatehouse::startup::Application;
use reqwest::StatusCode;
use scraper::{Html, Selector};
use serde_json::Value;
use sha2::Digest;

pub struct TestApp {
    pub url: String,
    pub clock: Arc<ManualClock>,
    pub creds: DemoCredentials,
    pub state: actix_web::web::Data<AppState>,
    pub stubs: actix_web::web::Data<gatehouse::demo::stub_idp::StubState>,
    pub dir: tempfile::TempDir,
    /// The `/metrics` listener's port, when the test set `metrics_bind`.
    pub metrics_port: Option<u16>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.handle.clone();
        drop(h.stop(false));
    }
}

/// A new, empty database on the PostgreSQL test cluster named by
/// `GATEHOUSE_TEST_DATABASE_URL` (a URL of its maintenance database, e.g.
/// `postgres://postgres@127.0.0.1:55432/postgres`; `.ci/run` starts such a cluster), as a
/// URL; `None` when no cluster is configured.
pub async fn fresh_database() -> Option<String> {
    let admin = std::env::var("GATEHOUSE_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.expect("test cluster answers");
    tokio::spawn(conn);
    let name = format!("gh_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let mut url = url::Url::parse(&admin).expect("GATEHOUSE_TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Whether the black-box servers run on PostgreSQL: `GATEHOUSE_TEST_STORE=postgres` (the
/// second test run of `.ci/run`); unset or `sled`, they run on sled in their temp dir.
pub fn store_is_postgres() -> bool {
    match std::env::var("GATEHOUSE_TEST_STORE").as_deref() {
        Ok("postgres") => true,
        Ok("sled" | "") | Err(_) => false,
        Ok(other) => panic!("GATEHOUSE_TEST_STORE={other:?}: expected `sled` or `postgres`"),
    }
}

/// Points `config` at a fresh, empty database of the test cluster, with a new random
/// key-encryption key (PostgreSQL refuses to start without one).
pub async fn use_postgres(config: &mut Config) {
    let url = fresh_database().await.expect(
        "GATEHOUSE_TEST_STORE=postgres needs a cluster in GATEHOUSE_TEST_DATABASE_URL \
         (`.ci/pg start DIR` starts one and prints its URL)",
    );
    let kek = base64::engine::general_purpose::STANDARD.encode(gatehouse::secrets::random_bytes::<32>());
    config.database_url = Some(gatehouse::secrets::Secret::new(url));
    config.key_encryption_key = Some(gatehouse::secrets::Secret::new(kek));
}

/// Fails unless the database at `url` has tables: a server told to use PostgreSQL that
/// quietly ran on sled would otherwise pass the PostgreSQL run without touching it.
async fn assert_schema_in(url: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("test database answers");
    tokio::spawn(conn);
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .expect("count tables")
        .get(0);
    assert!(tables > 0, "the server was given a fresh test database but created no tables in it (did it open sled?)");
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// A server with the test settings changed by `tweak`, on the store `GATEHOUSE_TEST_STORE`
/// names (`tweak` runs after that choice, so a test may still change it).
pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_with_clock(ManualClock::starting_now(), tweak).await
}

/// [`spawn_with`] on a clock that starts at `clock` (e.g. weeks ago, so that the server
/// itself records old times: its signing keys are created then too).
pub async fn spawn_with_clock(clock: Arc<ManualClock>, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path().to_path_buf());
    if store_is_postgres() {
        use_postgres(&mut config).await;
    }
    tweak(&mut config);
    let database = config.database_url.as_ref().map(|u| u.expose().to_string());
    let app = Application::build(config, clock.clone()).await.expect("app builds");
    if let Some(url) = database {
        assert_schema_in(&url).await;
    }
    let creds = app.demo_credentials().expect("demo mode").clone();
    let url = app.url().to_string();
    let state = app.state();
    let stubs = app.stubs();
    let handle = app.handle();
    let metrics_port = app.metrics_port();
    tokio::spawn(app.run_until_stopped());
    TestApp { url, clock, creds, state, stubs, dir, metrics_port, handle }
}

impl TestApp {
    pub fn password(&self, login: &str) -> String {
        self.creds.users.iter().find(|u| u.login == login).expect("demo user").password.clone()
    }

    pub fn client_secret(&self, tenant: &str, client_id: &str) -> String {
        self.creds
            .clients
            .iter()
            .find(|c| c.tenant == tenant && c.client_id == client_id)
            .expect("demo client")
            .client_secret
            .clone()
    }

    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.url)
    }

    pub async fn snapshot(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        self.state.store.snapshot().await.expect("snapshot")
    }

    /// The whole store except the sign-in log (for requests that legitimately write
    /// their own log entry, e.g. a wrong password's 50126).
    pub async fn snapshot_without_log(&self) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        self.snapshot().await.into_iter().filter(|(t, _, _)| t != "tenant_signin_log").collect()
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.url)
    }

    pub fn rp(&self, tenant: &str) -> Rp {
        Rp {
            base: self.url.clone(),
            tenant: tenant.into(),
            client_id: "test-rp".into(),
            secret: Some(self.client_secret(tenant, "test-rp")),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            http: plain_client(),
        }
    }

    pub async fn tenant_id(&self, slug: &str) -> gatehouse::model::TenantId {
        self.state.store.tenant_by_slug(slug).await.unwrap().unwrap().id
    }

    pub async fn user(&self, tenant: &str, login: &str) -> gatehouse::model::User {
        self.state.store.user_by_login(&self.tenant_id(tenant).await, login).await.unwrap().unwrap()
    }
}

pub fn plain_client() -> reqwest::Client {
    gatehouse::secrets::http_client_builder().unwrap().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A browser: keeps cookies, never follows redirects by itself.
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: String,
    pub url: String,
}

impl Page {
    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    pub fn has(&self, css: &str) -> bool {
        let sel = Selector::parse(css).expect("selector");
        self.html().select(&sel).next().is_some()
    }

    pub fn text(&self, css: &str) -> Option<String> {
        let sel = Selector::parse(css).expect("selector");
        self.html().select(&sel).next().map(|e| e.text().collect::<String>())
    }

    pub fn attr(&self, css: &str, attr: &str) -> Option<String> {
        let sel = Selector::parse(css).expect("selector");
        self.html().select(&sel).next().and_then(|e| e.value().attr(attr)).map(String::from)
    }

    /// `data-error` of the error page, if this is one.
    pub fn error_code(&self) -> Option<String> {
        self.attr("main#error", "data-error")
    }

    /// A form by id: its action and all its input fields.
    pub fn form(&self, id: &str) -> Form {
        let html = self.html();
        let sel = Selector::parse(&format!("form#{id}")).expect("selector");
        let form = html.select(&sel).next().unwrap_or_else(|| panic!("no form#{id} in page:\n{}", self.body));
        let inputs = Selector::parse("input").expect("selector");
        let fields = form
            .select(&inputs)
            .filter_map(|i| {
                Some((i.value().attr("name")?.to_string(), i.value().attr("value").unwrap_or("").to_string()))
            })
            .collect();
        Form { action: form.value().attr("action").unwrap_or("").to_string(), fields }
    }
}

#[derive(Clone, Debug)]
pub struct Form {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

impl Form {
    pub fn set(mut self, name: &str, value: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.into(), value.into()));
        self
    }
    pub fn without(mut self, name: &str) -> Self {
        self.fields.retain(|(n, _)| n != name);
        self
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        let http = gatehouse::secrets::http_client_builder()
            .unwrap()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { base: base.into(), http }
    }

    fn abs(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) }
    }

    async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status();
        let url = resp.url().to_string();
        let location = resp.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        let body = resp.text().await.unwrap();
        Page { status, location, body, url }
    }

    pub async fn get(&self, url: &str) -> Page {
        Self::page(self.http.get(self.abs(url)).send().await.unwrap()).await
    }

    pub async fn post(&self, url: &str, fields: &[(String, String)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let resp = self
            .http
            .post(self.abs(url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Self::page(resp).await
    }

    pub async fn submit(&self, form: &Form) -> Page {
        self.post(&form.action, &form.fields).await
    }

    /// Follows redirects on this server; stops at the first page, or at a redirect elsewhere.
    pub async fn follow(&self, mut page: Page) -> Page {
        for _ in 0..10 {
            match &page.location {
                Some(loc) if page.status.is_redirection() && (loc.starts_with('/') || loc.starts_with(&self.base)) => {
                    page = self.get(&loc.clone()).await;
                }
                _ => return page,
            }
        }
        page
    }

    /// Walks identify and password; returns the final response (a redirect to the RP on success).
    pub async fn sign_in(&self, authorize_url: &str, login: &str, password: &str) -> Page {
        let page = self.follow(self.get(authorize_url).await).await;
        if !page.has("form#identify") {
            return page;
        }
        let page = self.follow(self.submit(&page.form("identify").set("login", login)).await).await;
        if !page.has("form#password") {
            return page;
        }
        self.follow(self.submit(&page.form("password").set("password", password)).await).await
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string())
}

/// A relying party as an RP library would behave, kept independent from gatehouse's code.
#[derive(Clone)]
pub struct Rp {
    pub base: String,
    pub tenant: String,
    pub client_id: String,
    pub secret: Option<String>,
    pub redirect_uri: String,
    pub http: reqwest::Client,
}

pub struct AuthStart {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

pub fn random_b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

impl Rp {
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.base, self.tenant)
    }

    pub fn authorize_url(&self, extra: &[(&str, &str)]) -> AuthStart {
        let state = random_b64(16);
        let nonce = random_b64(16);
        let verifier = random_b64(32);
        let challenge = s256(&verifier);
        let mut params: Vec<(String, String)> = vec![
            ("client_id".into(), self.client_id.clone()),
            ("redirect_uri".into(), self.redirect_uri.clone()),
            ("response_type".into(), "code".into()),
            ("scope".into(), "openid profile email offline_access".into()),
            ("state".into(), state.clone()),
            ("nonce".into(), nonce.clone()),
            ("code_challenge".into(), challenge),
            ("code_challenge_method".into(), "S256".into()),
        ];
        for (k, v) in extra {
            params.retain(|(n, _)| n != k);
            if !v.is_empty() {
                params.push((k.to_string(), v.to_string()));
            }
        }
        let url =
            format!("{}?{}", self.endpoint("oauth2/v2.0/authorize"), serde_urlencoded::to_string(&params).unwrap());
        AuthStart { url, state, nonce, verifier }
    }

    /// POSTs to the token endpoint with client_secret_basic.
    pub async fn token(&self, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(self.endpoint("oauth2/v2.0/token"))
            .header("content-type", "application/x-www-form-urlencoded");
        let mut fields: Vec<(&str, &str)> = fields.to_vec();
        match &self.secret {
            Some(s) => req = req.basic_auth(&self.client_id, Some(s)),
            None => fields.push(("client_id", &self.client_id)),
        }
        let resp = req.body(serde_urlencoded::to_string(&fields).unwrap()).send().await.unwrap();
        let status = resp.status();
        let body = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> (StatusCode, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]).await
    }

    pub async fn userinfo(&self, access_token: &str) -> reqwest::Response {
        self.http.get(self.endpoint("oidc/userinfo")).bearer_auth(access_token).send().await.unwrap()
    }

    pub async fn post_authenticated(&self, path: &str, fields: &[(&str, &str)]) -> (StatusCode, Value) {
        let mut req = self.http.post(self.endpoint(path)).header("content-type", "application/x-www-form-urlencoded");
        if let Some(s) = &self.secret {
            req = req.basic_auth(&self.client_id, Some(s));
        }
        let resp = req.body(serde_urlencoded::to_string(fields).unwrap()).send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn jwks(&self) -> jsonwebtoken::jwk::JwkSet {
        self.http.get(self.endpoint("discovery/v2.0/keys")).send().await.unwrap().json().await.unwrap()
    }

    /// Verifies a JWT against the served JWKS and returns its claims.
    pub async fn verify(&self, token: &str, expected_typ: &str) -> Value {
        let issuer = format!("{}/{}/v2.0", self.base, self.tenant);
        self.verify_from(token, expected_typ, &issuer).await
    }

    /// Verifies against this server's JWKS a token whose issuer was `issuer` (e.g. before a restart on another port).
    pub async fn verify_from(&self, token: &str, expected_typ: &str, issuer: &str) -> Value {
        let header = jsonwebtoken::decode_header(token).expect("JWT header");
        assert_eq!(header.typ.as_deref(), Some(expected_typ));
        let jwks = self.jwks().await;
        let kid = header.kid.clone().expect("kid");
        let jwk = jwks.find(&kid).unwrap_or_else(|| panic!("kid {kid} not in JWKS"));
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("JWK usable");
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.validate_aud = false;
        v.set_issuer(&[issuer]);
        jsonwebtoken::decode::<Value>(token, &key, &v).expect("signature and claims valid").claims
    }

    /// The whole member sign-in: returns the token response and the authorization start.
    pub async fn sign_in(
        &self,
        browser: &Browser,
        login: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> (Value, AuthStart) {
        let start = self.authorize_url(extra);
        let done = browser.sign_in(&start.url, login, password).await;
        assert_eq!(done.status, StatusCode::FOUND, "sign-in ends with a redirect to the RP: {}", done.body);
        let location = done.location.expect("location");
        assert!(location.starts_with("http://127.0.0.1:9/callback?"), "{location}");
        assert_eq!(query_param(&location, "state").as_deref(), Some(start.state.as_str()));
        let code = query_param(&location, "code").expect("code");
        let (status, body) = self.exchange(&code, &start.verifier).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body, start)
    }
}

impl TestApp {
    /// An app-only token for the admin API (client credentials of the demo admin client).
    pub async fn admin_token(&self) -> String {
        let rp = Rp {
            client_id: self.creds.admin.client_id.clone(),
            secret: Some(self.creds.admin.client_secret.clone()),
            ..self.rp("fabrikam")
        };
        let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = plain_client().request(method, format!("{}/graph/v1.0/{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Invites through the Graph API; returns the invitation JSON.
    pub async fn invite(&self, email: &str, redirect: &str, app_id: Option<&str>) -> Value {
        let token = self.admin_token().await;
        let mut body = serde_json::json!({
            "invitedUserEmailAddress": email,
            "inviteRedirectUrl": redirect,
            "sendInvitationMessage": true,
        });
        if let Some(a) = app_id {
            body["appId"] = a.into();
        }
        let (status, json) = self.graph(reqwest::Method::POST, "invitations", Some(&token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }

    /// The newest email one-time code sent to `to`.
    pub async fn latest_otp(&self, to: &str) -> String {
        self.state
            .store
            .outbox(100)
            .await
            .unwrap()
            .into_iter()
            .find(|m| m.to == to && m.otp.is_some())
            .unwrap()
            .otp
            .unwrap()
    }

    /// The whole store except exactly the trees named — for "nothing changed" checks where the
    /// request legitimately writes its own records there (a sign-in transaction, a log entry).
    /// A misspelt tree name filters nothing, so the comparison can only get stricter.
    pub async fn snapshot_except(&self, trees: &[&str]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
        without_trees(self.snapshot().await, trees)
    }
}

impl Browser {
    /// Follows redirects to any server on loopback except the RP callback port 9.
    pub async fn follow_any(&self, mut page: Page) -> Page {
        for _ in 0..15 {
            match &page.location {
                Some(loc) if page.status.is_redirection() => {
                    let abs = if loc.starts_with('/') {
                        let u = url::Url::parse(&page.url).unwrap();
                        format!(
                            "{}://{}{loc}",
                            u.scheme(),
                            u.host_str().unwrap().to_owned() + &u.port().map(|p| format!(":{p}")).unwrap_or_default()
                        )
                    } else {
                        loc.clone()
                    };
                    if abs.starts_with("http://127.0.0.1:9/") {
                        return page;
                    }
                    page = self.get(&abs).await;
                }
                _ => return page,
            }
        }
        page
    }

    /// At a home login page (tenant identify/password or stub form): sign in there and
    /// follow back; returns the first page on the way back that is not a redirect.
    pub async fn home_sign_in(&self, page: Page, login: &str, password: &str) -> Page {
        if page.has("form#home-login") {
            let form = page.form("home-login").set("login", login).set("password", password);
            let next = self.post_abs(&page.url, &form).await;
            return self.follow_any(next).await;
        }
        assert!(page.has("form#identify"), "expected a home sign-in page at {}:\n{}", page.url, page.body);
        let next = self.follow_any(self.post_abs(&page.url, &page.form("identify").set("login", login)).await).await;
        assert!(next.has("form#password"), "{}", next.body);
        self.follow_any(self.post_abs(&next.url, &next.form("password").set("password", password)).await).await
    }

    /// Submits a form whose action is relative to the page it came from.
    pub async fn post_abs(&self, page_url: &str, form: &Form) -> Page {
        let action = url::Url::parse(page_url).unwrap().join(&form.action).unwrap().to_string();
        self.post(&action, &form.fields).await
    }
}

/// Asserts two store snapshots are equal, naming the trees and keys that differ.
pub fn assert_same(
    before: &[(String, Vec<u8>, Vec<u8>)],
    after: &[(String, Vec<u8>, Vec<u8>)],
    what: impl std::fmt::Display,
) {
    if before == after {
        return;
    }
    let show = |r: &(String, Vec<u8>, Vec<u8>)| format!("{}:{}", r.0, String::from_utf8_lossy(&r.1));
    let gone: Vec<String> = before.iter().filter(|r| !after.contains(r)).map(show).collect();
    let new: Vec<String> = after.iter().filter(|r| !before.contains(r)).map(show).collect();
    panic!("the store changed ({what}): removed or changed {gone:?}; added or changed {new:?}");
}

impl Browser {
    /// A browser whose every request carries `X-Forwarded-For: ip`.
    pub fn forwarded_for(base: &str, ip: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", ip.parse().unwrap());
        let http = gatehouse::secrets::http_client_builder()
            .unwrap()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap();
        Self { base: base.into(), http }
    }
}

/// The TOTP code for `secret_b32` at `unix`, computed here (RFC 6238, SHA-1, 6 digits,
/// 30 s) from the secret the page shows, independently of gatehouse's own code.
pub fn totp_at(secret_b32: &str, unix: i64) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut key) = (0u32, 0u64, Vec::new());
    for c in secret_b32.trim_end_matches('=').bytes() {
        let v = alphabet.iter().position(|&a| a == c.to_ascii_uppercase()).expect("base32") as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            key.push((acc >> bits) as u8);
        }
    }
    let counter = (unix / 30) as u64;
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &key);
    let mac = aws_lc_rs::hmac::sign(&k, &counter.to_be_bytes());
    let h = mac.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    format!("{:06}", bin % 1_000_000)
}

/// The claims shown by a demo RP page (`table#claims`).
pub fn claims_table(page: &Page) -> std::collections::HashMap<String, String> {
    let html = page.html();
    let rows = Selector::parse("table#claims tr").unwrap();
    let th = Selector::parse("th").unwrap();
    let td = Selector::parse("td").unwrap();
    html.select(&rows)
        .map(|r| {
            (
                r.select(&th).next().unwrap().text().collect::<String>(),
                r.select(&td).next().unwrap().text().collect::<String>(),
            )
        })
        .collect()
}

/// Asserts the admin API's documented error (README: `{"error": {"code", "message"}}`): the
/// status, the Graph `error.code`, and a message that is one non-empty line, nothing else.
pub fn assert_graph_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    let error = body["error"].as_object().unwrap_or_else(|| panic!("a Graph error object: {body}"));
    assert_eq!(error.get("code").and_then(Value::as_str), Some(code), "{body}");
    let message = error.get("message").and_then(Value::as_str).unwrap_or_else(|| panic!("error.message: {body}"));
    assert!(!message.trim().is_empty() && !message.contains('\n') && message.len() <= 300, "message shape: {body}");
    assert_eq!(error.len(), 2, "only code and message: {body}");
}

/// Asserts an OAuth error response (RFC 6749 §5.2): the status, `error`, and an
/// `error_description` within the RFC's character set, nothing else.
pub fn assert_oauth_error(status: StatusCode, body: &Value, expected: StatusCode, error: &str) {
    assert_eq!(status, expected, "{body}");
    let fields = body.as_object().unwrap_or_else(|| panic!("an OAuth error object: {body}"));
    assert_eq!(fields.get("error").and_then(Value::as_str), Some(error), "{body}");
    let d = fields.get("error_description").and_then(Value::as_str).unwrap_or_else(|| panic!("description: {body}"));
    assert!(!d.is_empty(), "{body}");
    assert!(
        d.chars().all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
        "RFC 6749 §5.2: {d:?}"
    );
    assert_eq!(fields.len(), 2, "only error and error_description: {body}");
}

/// A snapshot without exactly the trees named (see `TestApp::snapshot_except`).
/// `signins` names the sign-in transactions together with their per-browser index.
pub fn without_trees(snapshot: Vec<(String, Vec<u8>, Vec<u8>)>, trees: &[&str]) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let skip = |t: &str| trees.contains(&t) || (t == "signin_browser" && trees.contains(&"signins"));
    snapshot.into_iter().filter(|(t, _, _)| !skip(t)).collect()
}

impl Browser {
    /// At the email-code step's first page: posts "Send code" (`form#email-otp-send`) and
    /// follows back to the code page; any other page is returned as it is.
    pub async fn send_email_code(&self, page: Page) -> Page {
        if !page.has("form#email-otp-send") {
            return page;
        }
        self.follow_any(self.post_abs(&page.url, &page.form("email-otp-send")).await).await
    }
}
