//! The big bad-input table: every row is one request (method, path, headers, body), the
//! documented error (status + OAuth `error` / Graph `error.code` / page `data-error`), and
//! the proof that the store did not change (or, for the few documented state changes —
//! replay revocation, a sign-in log entry, a counted wrong code — exactly that change).
//!
//! Rows that once found a server bug say so in a comment next to them.
use base64::Engine;
use gatehouse::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept};
use crate::helpers::*;

type Snapshot = Vec<(String, Vec<u8>, Vec<u8>)>;

const CALLBACK: &str = "http://127.0.0.1:9/callback";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What the answer must be.
#[derive(Clone, Debug)]
enum Expect {
    /// A JSON OAuth error body `{"error": code}` with this status.
    OAuth(u16, &'static str),
    /// Our own error page `<main id="error" data-error=code>` with this status, and no redirect.
    Page(u16, &'static str),
    /// A Graph error body `{"error": {"code", "message"}}` with this status.
    Graph(u16, &'static str),
    /// A redirect to the RP's callback carrying `error=code` (and no code).
    RpError(&'static str),
    /// A redirect to the RP's callback carrying a code (a sign-in that must succeed).
    RpCode,
    /// A bearer-protected resource's answer: status, `WWW-Authenticate: Bearer …` and its `error`.
    Bearer(u16, Option<&'static str>),
    /// A body over the 64 KiB limit: 413 (or 400), never a 5xx or a dropped connection.
    TooLarge,
    /// Request headers over the server's limit: 431 (or 400/413).
    HeadersTooLarge,
    /// A plain 200 (RFC 7009: unknown and foreign tokens are answered with 200).
    Ok200,
    /// Introspection's `{"active": false}`.
    Inactive,
    /// A 200 page showing `form#id`, with `p.error` containing the text when given.
    Form(&'static str, Option<&'static str>),
}

/// What must hold for the store afterwards.
enum Check {
    /// Nothing changed anywhere.
    Store,
    /// The whole store except exactly these trees, which the request legitimately writes (why).
    StoreExcept(&'static [&'static str], &'static str),
    /// Documented: the replay revoked what the replayed grant issued.
    Revoked { refresh: Vec<String>, access: Vec<String> },
    /// Documented: a successful sign-in was logged with this client IP.
    LoggedIp(&'static str),
}

struct Case {
    name: String,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    via: Option<reqwest::Client>,
    advance: i64,
    expect: Expect,
    check: Check,
}

fn req(name: &str, method: Method, url: impl Into<String>) -> Case {
    Case {
        name: name.to_string(),
        method,
        url: url.into(),
        headers: vec![],
        body: None,
        via: None,
        advance: 0,
        expect: Expect::Ok200,
        check: Check::Store,
    }
}

fn get(name: &str, url: impl Into<String>) -> Case {
    req(name, Method::GET, url)
}

/// A POST with an explicit content type and raw body bytes.
fn post_raw(name: &str, url: impl Into<String>, content_type: &str, body: impl Into<Vec<u8>>) -> Case {
    let mut c = req(name, Method::POST, url);
    if !content_type.is_empty() {
        c.headers.push(("content-type".into(), content_type.into()));
    }
    c.body = Some(body.into());
    c
}

/// A urlencoded form POST (fields encoded here, repeated names kept).
fn post_form(name: &str, url: impl Into<String>, fields: &[(&str, &str)]) -> Case {
    post_raw(name, url, "application/x-www-form-urlencoded", serde_urlencoded::to_string(fields).unwrap())
}

impl Case {
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    /// Sets the Authorization header (replacing any earlier one).
    fn authorization(mut self, v: String) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
        self.header("authorization", v)
    }
    fn basic(self, id: &str, secret: &str) -> Self {
        let v = format!("Basic {}", B64.encode(format!("{id}:{secret}")));
        self.authorization(v)
    }
    fn bearer(self, token: &str) -> Self {
        self.authorization(format!("Bearer {token}"))
    }
    fn via(mut self, b: &Browser) -> Self {
        self.via = Some(b.http.clone());
        self
    }
    fn after(mut self, secs: i64) -> Self {
        self.advance = secs;
        self
    }
    fn expect(mut self, e: Expect) -> Self {
        self.expect = e;
        self
    }
    fn check(mut self, c: Check) -> Self {
        self.check = c;
        self
    }
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    www_authenticate: Option<String>,
    body: String,
}

impl Answer {
    fn page(&self) -> Page {
        Page { status: self.status, location: self.location.clone(), body: self.body.clone(), url: String::new() }
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn send(app: &TestApp, case: &Case) -> Result<Answer, String> {
    let client = case.via.clone().unwrap_or_else(plain_client);
    let url = if case.url.starts_with("http") { case.url.clone() } else { format!("{}{}", app.url, case.url) };
    let mut r = client.request(case.method.clone(), &url);
    for (k, v) in &case.headers {
        r = r.header(k.as_str(), v.as_str());
    }
    if let Some(b) = &case.body {
        r = r.body(b.clone());
    }
    let resp = tokio::time::timeout(std::time::Duration::from_secs(20), r.send())
        .await
        .map_err(|_| "no answer within 20 s".to_string())?
        .map_err(|e| format!("no HTTP answer: {e:?}"))?;
    let header = |n: &str| resp.headers().get(n).map(|v| String::from_utf8_lossy(v.as_bytes()).to_string());
    let (status, location, www_authenticate) = (resp.status(), header("location"), header("www-authenticate"));
    let body = resp.text().await.unwrap_or_default();
    Ok(Answer { status, location, www_authenticate, body })
}

fn short(s: &str) -> String {
    let s: String = s.chars().take(300).collect();
    s.replace('\n', " ")
}

fn check_answer(e: &Expect, a: &Answer) -> Vec<String> {
    let mut p = Vec::new();
    let status = a.status.as_u16();
    let mut want_status = |want: u16| {
        if status != want {
            p.push(format!("status {status}, expected {want}"));
        }
    };
    match e {
        Expect::OAuth(s, code) => {
            want_status(*s);
            let j = a.json();
            if j["error"].as_str() != Some(code) {
                p.push(format!("OAuth error {:?}, expected {code:?} (body {})", j["error"], short(&a.body)));
            }
        }
        Expect::Page(s, code) => {
            want_status(*s);
            if a.location.is_some() {
                p.push(format!("redirects to {:?} instead of staying on our error page", a.location));
            }
            let got = a.page().error_code();
            if got.as_deref() != Some(code) {
                p.push(format!("data-error {got:?}, expected {code:?} (body {})", short(&a.body)));
            }
        }
        Expect::Graph(s, code) => {
            want_status(*s);
            let j = a.json();
            if j["error"]["code"].as_str() != Some(code) || !j["error"]["message"].is_string() {
                p.push(format!("Graph error {}, expected code {code:?}", short(&a.body)));
            }
        }
        Expect::RpError(_) | Expect::RpCode => {
            let loc = a.location.clone().unwrap_or_default();
            if status != 302 || !loc.starts_with(&format!("{CALLBACK}?")) {
                p.push(format!("{status} to {loc:?}, expected a 302 to the RP callback (body {})", short(&a.body)));
            } else if let Expect::RpError(code) = e {
                if query_param(&loc, "error").as_deref() != Some(code) || query_param(&loc, "code").is_some() {
                    p.push(format!("redirect {loc}, expected error={code} and no code"));
                }
            } else if query_param(&loc, "code").is_none() {
                p.push(format!("redirect {loc} carries no code"));
            }
        }
        Expect::Bearer(s, code) => {
            want_status(*s);
            let challenge = a.www_authenticate.clone().unwrap_or_default();
            if !challenge.starts_with("Bearer") {
                p.push(format!("WWW-Authenticate {challenge:?}, expected a Bearer challenge"));
            }
            if let Some(code) = code
                && !challenge.contains(&format!("error=\"{code}\""))
            {
                p.push(format!("WWW-Authenticate {challenge:?}, expected error=\"{code}\""));
            }
        }
        Expect::TooLarge => {
            if !matches!(status, 413 | 400) {
                p.push(format!("status {status}, expected 413 (or 400) for an oversized body"));
            }
        }
        Expect::HeadersTooLarge => {
            if !matches!(status, 431 | 400 | 413) {
                p.push(format!("status {status}, expected 431 (or 400/413) for oversized headers"));
            }
        }
        Expect::Ok200 => want_status(200),
        Expect::Inactive => {
            want_status(200);
            if a.json() != json!({"active": false}) {
                p.push(format!("introspection {}, expected {{\"active\": false}}", short(&a.body)));
            }
        }
        Expect::Form(id, text) => {
            want_status(200);
            let page = a.page();
            if !page.has(&format!("form#{id}")) {
                p.push(format!("no form#{id} (body {})", short(&a.body)));
            }
            if let Some(t) = text {
                let err = page.text("p.error").unwrap_or_default();
                if !err.contains(t) {
                    p.push(format!("p.error {err:?}, expected it to contain {t:?}"));
                }
            }
        }
    }
    p
}

fn diff(before: &Snapshot, after: &Snapshot) -> Option<String> {
    if before == after {
        return None;
    }
    let show = |r: &(String, Vec<u8>, Vec<u8>)| format!("{}:{}", r.0, short(&String::from_utf8_lossy(&r.1)));
    let gone: Vec<String> = before.iter().filter(|r| !after.contains(r)).map(show).collect();
    let new: Vec<String> = after.iter().filter(|r| !before.contains(r)).map(show).collect();
    Some(format!("the store changed: removed or changed {gone:?}; added or changed {new:?}"))
}

async fn check_state(app: &TestApp, check: &Check, before: &Snapshot) -> Vec<String> {
    let mut p = Vec::new();
    match check {
        Check::Store => p.extend(diff(before, &app.snapshot().await)),
        Check::StoreExcept(trees, _why) => {
            p.extend(diff(&without_trees(before.clone(), trees), &app.snapshot_except(trees).await))
        }
        Check::Revoked { refresh, access } => {
            let rp = app.rp("fabrikam");
            for r in refresh {
                let (s, body) = rp.refresh(r).await;
                if (s, body["error"].as_str()) != (StatusCode::BAD_REQUEST, Some("invalid_grant")) {
                    p.push(format!("a refresh token of the revoked grant answered {s} {body}"));
                }
            }
            for t in access {
                let s = rp.userinfo(t).await.status();
                if s != StatusCode::UNAUTHORIZED {
                    p.push(format!("an access token of the revoked grant answered {s} at userinfo"));
                }
            }
        }
        Check::LoggedIp(ip) => {
            let tid = app.tenant_id("fabrikam").await;
            let newest = app.state.store.signin_log(&tid, 1).await.unwrap().into_iter().next();
            let got = newest.and_then(|e| e.ip_address);
            if got.as_deref() != Some(ip) {
                p.push(format!("the sign-in log recorded {got:?}, expected {ip:?} (the TCP peer)"));
            }
        }
    }
    p
}

/// Runs every row and returns the failing rows (by name); see `assert_rows`.
async fn run(app: &TestApp, table: &str, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        if case.advance > 0 {
            app.clock.advance(case.advance);
        }
        let before = app.snapshot().await;
        let problems = match send(app, case).await {
            Ok(answer) => {
                let mut p = check_answer(&case.expect, &answer);
                p.extend(check_state(app, &case.check, &before).await);
                p
            }
            Err(e) => vec![e],
        };
        if problems.is_empty() {
            println!("ok    {table} / {}", case.name);
        } else {
            println!("FAIL  {table} / {}: {}", case.name, problems.join("; "));
            failures.push(format!("  [{}] {} {}: {}", case.name, case.method, short(&case.url), problems.join("; ")));
        }
    }
    println!("{table}: {} rows, {} failed", cases.len(), failures.len());
    failures
}

/// Fails the test naming every failing row at once.
fn assert_rows(table: &str, rows: usize, failures: Vec<String>) {
    assert!(failures.is_empty(), "{table}: {} of {rows} rows failed:\n{}", failures.len(), failures.join("\n"));
}

// ---------- tokens made wrong on purpose ----------

fn jwt_part(token: &str, i: usize) -> Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

fn encode_part(v: &Value) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap())
}

/// The same claims, `alg: none` and no signature.
fn alg_none(token: &str) -> String {
    let mut header = jwt_part(token, 0);
    header["alg"] = "none".into();
    format!("{}.{}.", encode_part(&header), token.split('.').nth(1).unwrap())
}

/// One character of the signature changed.
fn bad_signature(token: &str) -> String {
    let (head, sig) = token.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    let i = sig.len() / 2;
    sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

/// Claims changed, the original signature kept.
fn bad_claims(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut parts = token.split('.');
    let (h, _, s) = (parts.next().unwrap(), parts.next(), parts.next().unwrap());
    let mut claims = jwt_part(token, 1);
    change(&mut claims);
    format!("{h}.{}.{s}", encode_part(&claims))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A code for iw at `rp` (not exchanged) and the authorization start.
async fn fresh_code(app: &TestApp, rp: &Rp) -> (String, AuthStart) {
    let login = "iw@fabrikam.example";
    let start = rp.authorize_url(&[]);
    let done = app.browser().sign_in(&start.url, login, &app.password(login)).await;
    (query_param(done.location.as_deref().unwrap(), "code").unwrap(), start)
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_string()
}

#[tokio::test]
async fn protocol_endpoints_table() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let contoso = app.rp("contoso");
    let iw = "iw@fabrikam.example";
    let sally = "sally@contoso.example";
    let secret = app.client_secret("fabrikam", "test-rp");
    let c_secret = app.client_secret("contoso", "test-rp");
    let (admin_id, admin_secret) = (app.creds.admin.client_id.clone(), app.creds.admin.client_secret.clone());

    // A public client, registered as bad_input.rs does it (the demo has none).
    let tid = app.tenant_id("fabrikam").await;
    let mut spa = app.state.store.app(&tid, "test-rp").await.unwrap().unwrap();
    spa.client_id = "spa".into();
    spa.client_type = gatehouse::model::ClientType::Public;
    spa.secret_hashes.clear();
    app.state.store.put_app(&spa).await.unwrap();

    // A browser with an SSO session, iw's tokens, sally's (contoso) tokens, the admin's app token.
    let sso = app.browser();
    let (t, _) = rp.sign_in(&sso, iw, &app.password(iw), &[]).await;
    let (access, id_token, refresh) = (s(&t, "access_token"), s(&t, "id_token"), s(&t, "refresh_token"));
    let (tc, _) = contoso.sign_in(&app.browser(), sally, &app.password(sally), &[]).await;
    let (c_access, c_id_token) = (s(&tc, "access_token"), s(&tc, "id_token"));
    let admin_token = app.admin_token().await;

    // A code nobody has exchanged yet: every row that presents it must leave it unspent.
    let (code, start) = fresh_code(&app, &rp).await;
    // A code already exchanged once (its replay revokes what it issued).
    let (spent, spent_start) = fresh_code(&app, &rp).await;
    let (st, spent_tokens) = rp.exchange(&spent, &spent_start.verifier).await;
    assert_eq!(st, StatusCode::OK);
    // A refresh token already rotated once (its reuse revokes the family).
    let (tr, _) = rp.sign_in(&app.browser(), iw, &app.password(iw), &[]).await;
    let rotated = s(&tr, "refresh_token");
    let (st, successor) = rp.refresh(&rotated).await;
    assert_eq!(st, StatusCode::OK);

    let authz = "/fabrikam/oauth2/v2.0/authorize";
    let token = "/fabrikam/oauth2/v2.0/token";
    let c_token = "/contoso/oauth2/v2.0/token";
    let userinfo = "/fabrikam/oidc/userinfo";
    let revoke = "/fabrikam/oauth2/v2.0/revoke";
    let c_revoke = "/contoso/oauth2/v2.0/revoke";
    let introspect = "/fabrikam/oauth2/v2.0/introspect";
    let c_introspect = "/contoso/oauth2/v2.0/introspect";
    let logout = "/fabrikam/oauth2/v2.0/logout";
    let good = rp.authorize_url(&[]).url;
    let with_redirect = |uri: &str| rp.authorize_url(&[("redirect_uri", uri)]).url;
    let bad_redirect =
        |name: &str, uri: &str| get(name, with_redirect(uri)).expect(Expect::Page(400, "invalid_redirect_uri"));
    let form_ct = "application/x-www-form-urlencoded";
    let big = "a".repeat(70 * 1024);
    let code_fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("code_verifier", start.verifier.as_str()),
    ];
    let cc = [("grant_type", "client_credentials")];
    let invalid_grant = Expect::OAuth(400, "invalid_grant");
    let invalid_request = Expect::OAuth(400, "invalid_request");
    let invalid_client = Expect::OAuth(401, "invalid_client");
    let invalid_token = Expect::Bearer(401, Some("invalid_token"));

    let cases = vec![
        // ---- authorize: malformed, repeated, oversized ----
        get("authorize: client_id twice with different values", format!("{good}&client_id=other"))
            .expect(Expect::Page(400, "invalid_request")),
        get("authorize: scope twice", format!("{good}&scope=openid")).expect(Expect::Page(400, "invalid_request")),
        get(
            "authorize: redirect_uri twice (registered, then evil)",
            format!("{good}&redirect_uri=https%3A%2F%2Fevil.example%2F"),
        )
        .expect(Expect::Page(400, "invalid_request")),
        get(
            "authorize: client_id is percent-encoded invalid UTF-8",
            format!("{authz}?client_id=%ff%fe&redirect_uri={}&response_type=code&scope=openid", enc(CALLBACK)),
        )
        .expect(Expect::Page(400, "unknown_client")),
        get("authorize: 20 KiB of parameters", format!("{good}&padding={}", "p".repeat(20 * 1024)))
            .expect(Expect::Page(400, "invalid_request")),
        get("authorize: state over 2048 characters", rp.authorize_url(&[("state", &"s".repeat(2049))]).url)
            .expect(Expect::RpError("invalid_request")),
        get("authorize: nonce over 512 characters", rp.authorize_url(&[("nonce", &"n".repeat(513))]).url)
            .expect(Expect::RpError("invalid_request")),
        get(
            "authorize: login_hint over 320 characters",
            rp.authorize_url(&[("login_hint", &format!("{}@fabrikam.example", "l".repeat(320)))]).url,
        )
        .expect(Expect::RpError("invalid_request")),
        get("authorize: 160 KiB request header", good.clone())
            .header("x-padding", "h".repeat(160 * 1024))
            .expect(Expect::HeadersTooLarge),
        get("authorize: unknown tenant", rp.authorize_url(&[]).url.replace("/fabrikam/", "/nowhere/"))
            .expect(Expect::Page(404, "unknown_tenant")),
        get(
            "authorize: a contoso client (portal) at fabrikam",
            rp.authorize_url(&[
                ("client_id", "portal"),
                ("redirect_uri", &format!("{}/demo/portal/callback", app.url)),
            ])
            .url,
        )
        .expect(Expect::Page(400, "unknown_client")),
        post_raw("authorize POST: text/plain body", authz, "text/plain", good.split_once('?').unwrap().1.to_string())
            .expect(Expect::Page(400, "invalid_request")),
        post_raw("authorize POST: non-UTF-8 body", authz, form_ct, b"client_id=test-rp&scope=\xff\xfe".to_vec())
            .expect(Expect::Page(400, "invalid_request")),
        post_raw("authorize POST: body over 64 KiB", authz, form_ct, format!("client_id=test-rp&x={big}"))
            .expect(Expect::TooLarge),
        // ---- authorize: open-redirect attempts never leave our error page ----
        bad_redirect("redirect_uri: other host, same port and path", "http://evil.example:9/callback"),
        bad_redirect("redirect_uri: userinfo 127.0.0.1@evil.example", "http://127.0.0.1@evil.example/callback"),
        bad_redirect("redirect_uri: fragment", "http://127.0.0.1:9/callback#fragment"),
        // Exact match: `/evil/../callback` is not the registered string even though URL
        // normalisation makes it equal to `/callback` (was accepted before 382b15b).
        bad_redirect(
            "redirect_uri: dot-segment path traversal /evil/../callback",
            "http://127.0.0.1:9/evil/../callback",
        ),
        bad_redirect("redirect_uri: https instead of http", "https://127.0.0.1:9/callback"),
        bad_redirect("redirect_uri: trailing slash", "http://127.0.0.1:9/callback/"),
        bad_redirect("redirect_uri: extra query", "http://127.0.0.1:9/callback?next=https://evil.example/"),
        bad_redirect("redirect_uri: backslash host confusion", "http://127.0.0.1:9\\@evil.example/callback"),
        bad_redirect("redirect_uri: javascript: scheme", "javascript:alert(document.cookie)//127.0.0.1/callback"),
        // ---- token: repeated, empty, malformed ----
        post_raw(
            "token: code twice",
            token,
            form_ct,
            format!("{}&code={code}", serde_urlencoded::to_string(code_fields).unwrap()),
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_raw(
            "token: grant_type twice",
            token,
            form_ct,
            "grant_type=client_credentials&grant_type=authorization_code",
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_form(
            "token: client_id twice (client_secret_post)",
            token,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "test-rp"),
                ("client_id", "test-rp"),
                ("client_secret", &secret),
            ],
        )
        .expect(invalid_request.clone()),
        post_form("token: empty grant_type", token, &[("grant_type", ""), ("code", &code)])
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        post_form(
            "token: unknown grant type (device_code)",
            token,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", "x")],
        )
        .basic("test-rp", &secret)
        .expect(Expect::OAuth(400, "unsupported_grant_type")),
        post_raw(
            "token: JSON body with valid fields",
            token,
            "application/json",
            json!({"grant_type": "client_credentials"}).to_string(),
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_raw("token: text/plain body that looks like a form", token, "text/plain", "grant_type=client_credentials")
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        post_raw("token: non-UTF-8 body", token, form_ct, b"grant_type=client_credentials&scope=\xc3\x28".to_vec())
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        post_raw(
            "token: 20 KiB of parameters",
            token,
            form_ct,
            format!("grant_type=client_credentials&pad={}", "p".repeat(20 * 1024)),
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_raw("token: body over 64 KiB", token, form_ct, format!("grant_type=client_credentials&pad={big}"))
            .basic("test-rp", &secret)
            .expect(Expect::TooLarge),
        // ---- token: client authentication mix-ups ----
        post_form(
            "token: Basic and client_secret in the body",
            token,
            &[("grant_type", "client_credentials"), ("client_secret", &secret)],
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_form(
            "token: Basic for one client, client_id of another in the body",
            token,
            &[("grant_type", "client_credentials"), ("client_id", &admin_id)],
        )
        .basic("test-rp", &secret)
        .expect(invalid_request.clone()),
        post_form(
            "token: wrong client_secret (post)",
            token,
            &[("grant_type", "client_credentials"), ("client_id", "test-rp"), ("client_secret", "wrong-secret")],
        )
        .expect(invalid_client.clone()),
        post_form("token: unknown client (Basic)", token, &cc)
            .basic("no-such-client", &secret)
            .expect(invalid_client.clone()),
        post_form("token: malformed Basic header (not base64)", token, &cc)
            .header("authorization", "Basic !!!not-base64!!!")
            .expect(invalid_client.clone()),
        post_form("token: no client authentication at all", token, &cc).expect(invalid_client.clone()),
        post_form(
            "token: public client using client_credentials",
            token,
            &[("grant_type", "client_credentials"), ("client_id", "spa")],
        )
        .expect(Expect::OAuth(400, "unauthorized_client")),
        post_form(
            "token: public client sending a client_secret",
            token,
            &[("grant_type", "client_credentials"), ("client_id", "spa"), ("client_secret", "anything")],
        )
        .expect(invalid_client.clone()),
        post_form("token: contoso's client secret at fabrikam", token, &cc)
            .basic("test-rp", &c_secret)
            .expect(invalid_client.clone()),
        // ---- token: codes and refresh tokens in the wrong place ----
        post_form("token: fabrikam code at contoso", c_token, &code_fields)
            .basic("test-rp", &c_secret)
            .expect(invalid_grant.clone()),
        post_form("token: test-rp's code redeemed by the admin client", token, &code_fields)
            .basic(&admin_id, &admin_secret)
            .expect(invalid_grant.clone()),
        post_form(
            "token: fabrikam refresh token at contoso",
            c_token,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .basic("test-rp", &c_secret)
        .expect(invalid_grant.clone()),
        post_form(
            "token: garbage refresh token",
            token,
            &[("grant_type", "refresh_token"), ("refresh_token", "garbage")],
        )
        .basic("test-rp", &secret)
        .expect(invalid_grant.clone()),
        post_form(
            "token: refresh token presented as a code",
            token,
            &[("grant_type", "authorization_code"), ("code", &refresh), ("redirect_uri", CALLBACK)],
        )
        .basic("test-rp", &secret)
        .expect(invalid_grant.clone()),
        post_form(
            "token: access token presented as a refresh token",
            token,
            &[("grant_type", "refresh_token"), ("refresh_token", &access)],
        )
        .basic("test-rp", &secret)
        .expect(invalid_grant.clone()),
        post_form(
            "token: refresh asking for more scope than granted",
            token,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "openid Directory.ReadWrite.All"),
            ],
        )
        .basic("test-rp", &secret)
        .expect(Expect::OAuth(400, "invalid_scope")),
        // Documented state changes: a replay revokes what the replayed grant issued.
        post_form(
            "token: replayed code (revokes its tokens)",
            token,
            &[
                ("grant_type", "authorization_code"),
                ("code", &spent),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &spent_start.verifier),
            ],
        )
        .basic("test-rp", &secret)
        .expect(invalid_grant.clone())
        .check(Check::Revoked {
            refresh: vec![s(&spent_tokens, "refresh_token")],
            access: vec![s(&spent_tokens, "access_token")],
        }),
        post_form(
            "token: replayed refresh token (revokes the family)",
            token,
            &[("grant_type", "refresh_token"), ("refresh_token", &rotated)],
        )
        .basic("test-rp", &secret)
        .expect(invalid_grant.clone())
        .check(Check::Revoked {
            refresh: vec![s(&successor, "refresh_token")],
            access: vec![s(&successor, "access_token")],
        }),
        // ---- userinfo ----
        get("userinfo: alg none", userinfo).bearer(&alg_none(&access)).expect(invalid_token.clone()),
        get("userinfo: tampered signature", userinfo).bearer(&bad_signature(&access)).expect(invalid_token.clone()),
        get("userinfo: tampered claims (other oid), signature kept", userinfo)
            .bearer(&bad_claims(&access, |c| c["oid"] = uuid::Uuid::new_v4().to_string().into()))
            .expect(invalid_token.clone()),
        get("userinfo: ID token used as an access token", userinfo).bearer(&id_token).expect(invalid_token.clone()),
        get("userinfo: contoso access token at fabrikam", userinfo).bearer(&c_access).expect(invalid_token.clone()),
        get("userinfo: app-only token without openid", userinfo)
            .bearer(&admin_token)
            .expect(Expect::Bearer(403, Some("insufficient_scope"))),
        get("userinfo: Basic credentials instead of a bearer token", userinfo)
            .basic("test-rp", &secret)
            .expect(invalid_token.clone()),
        get("userinfo: token in header and query", format!("{userinfo}?access_token={access}"))
            .bearer(&access)
            .expect(Expect::Bearer(400, Some("invalid_request"))),
        // RFC 6750 §3.1: a repeated parameter is invalid_request, 400 (was a bare 401 before 382b15b).
        get(
            "userinfo: access_token twice in the query",
            format!("{userinfo}?access_token={access}&access_token={access}"),
        )
        .expect(Expect::Bearer(400, Some("invalid_request"))),
        post_raw("userinfo POST: non-UTF-8 form body", userinfo, form_ct, b"access_token=\xff\xfe".to_vec())
            .expect(Expect::Bearer(400, Some("invalid_request"))),
        // ---- revocation ----
        post_form("revoke: no token", revoke, &[("token_type_hint", "refresh_token")])
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        post_form(
            "revoke: unsupported token_type_hint",
            revoke,
            &[("token", &refresh), ("token_type_hint", "id_token")],
        )
        .basic("test-rp", &secret)
        .expect(Expect::OAuth(400, "unsupported_token_type")),
        post_form("revoke: wrong client secret", revoke, &[("token", &refresh)])
            .basic("test-rp", "wrong")
            .expect(invalid_client.clone()),
        post_raw("revoke: token twice", revoke, form_ct, format!("token={refresh}&token={refresh}"))
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        // RFC 7009 §2.2: foreign tokens get a 200, and nothing is revoked.
        post_form("revoke: fabrikam refresh token at contoso", c_revoke, &[("token", &refresh)])
            .basic("test-rp", &c_secret)
            .expect(Expect::Ok200),
        post_form("revoke: another client's refresh token", revoke, &[("token", &refresh)])
            .basic(&admin_id, &admin_secret)
            .expect(Expect::Ok200),
        // ---- introspection ----
        post_form("introspect: no client authentication", introspect, &[("token", &access)])
            .expect(invalid_client.clone()),
        post_form("introspect: no token", introspect, &[("token_type_hint", "access_token")])
            .basic("test-rp", &secret)
            .expect(invalid_request.clone()),
        post_form("introspect: public client", introspect, &[("token", &access), ("client_id", "spa")])
            .expect(invalid_client.clone()),
        post_form("introspect: tampered access token", introspect, &[("token", &bad_signature(&access))])
            .basic("test-rp", &secret)
            .expect(Expect::Inactive),
        post_form("introspect: fabrikam refresh token at contoso", c_introspect, &[("token", &refresh)])
            .basic("test-rp", &c_secret)
            .expect(Expect::Inactive),
        post_form("introspect: fabrikam access token at contoso", c_introspect, &[("token", &access)])
            .basic("test-rp", &c_secret)
            .expect(Expect::Inactive),
        // ---- logout (with a live SSO session that must survive every refused request) ----
        get(
            "logout: unregistered post_logout_redirect_uri",
            format!("{logout}?client_id=test-rp&post_logout_redirect_uri={}", enc("https://evil.example/")),
        )
        .via(&sso)
        .expect(Expect::Page(400, "invalid_post_logout_redirect_uri")),
        get(
            "logout: post_logout_redirect_uri with userinfo trick",
            format!(
                "{logout}?client_id=test-rp&post_logout_redirect_uri={}",
                enc("http://127.0.0.1@evil.example/logged-out")
            ),
        )
        .via(&sso)
        .expect(Expect::Page(400, "invalid_post_logout_redirect_uri")),
        get(
            "logout: post_logout_redirect_uri without client_id or hint",
            format!("{logout}?post_logout_redirect_uri={}", enc("http://127.0.0.1/logged-out")),
        )
        .via(&sso)
        .expect(Expect::Page(400, "invalid_post_logout_redirect_uri")),
        get("logout: garbage id_token_hint", format!("{logout}?id_token_hint=garbage.garbage.garbage"))
            .via(&sso)
            .expect(Expect::Page(400, "invalid_request")),
        get("logout: contoso id_token_hint at fabrikam", format!("{logout}?id_token_hint={c_id_token}"))
            .via(&sso)
            .expect(Expect::Page(400, "invalid_request")),
        get(
            "logout: client_id does not match the id_token_hint",
            format!("{logout}?id_token_hint={id_token}&client_id=portal"),
        )
        .via(&sso)
        .expect(Expect::Page(400, "invalid_request")),
        get("logout: state twice", format!("{logout}?id_token_hint={id_token}&state=a&state=b"))
            .via(&sso)
            .expect(Expect::Page(400, "invalid_request")),
        // ---- discovery ----
        get("discovery: JWKS of an unknown tenant", "/nowhere/discovery/v2.0/keys")
            .expect(Expect::Page(404, "unknown_tenant")),
        get("discovery: 160 KiB cookie header", "/fabrikam/v2.0/.well-known/openid-configuration")
            .header("cookie", format!("gh_b={}", "c".repeat(160 * 1024)))
            .expect(Expect::HeadersTooLarge),
        {
            let mut c = get("discovery: 120 request headers", "/fabrikam/v2.0/.well-known/openid-configuration");
            for i in 0..120 {
                c = c.header(&format!("x-h{i}"), "v");
            }
            c.expect(Expect::HeadersTooLarge)
        },
    ];
    let failures = run(&app, "protocol", &cases).await;

    // Every refused request left the unexchanged code, iw's tokens and the SSO session working.
    let (st, body) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(st, StatusCode::OK, "the code survived every refused request: {body}");
    assert_eq!(rp.userinfo(&access).await.status(), StatusCode::OK);
    let (st, _) = rp.refresh(&refresh).await;
    assert_eq!(st, StatusCode::OK, "the refresh token survived every refused request");
    let again = sso.get(&rp.authorize_url(&[]).url).await;
    assert!(again.location.as_deref().unwrap_or_default().contains("code="), "the SSO session survived");
    assert_rows("protocol", cases.len(), failures);
}

// ---------- redemption and sign-in pages ----------

fn field(form: &Form, name: &str) -> String {
    form.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

/// Posts `form` (its fields, urlencoded) to `path`, or to its own action.
fn submit(name: &str, form: &Form, path: Option<&str>) -> Case {
    let fields: Vec<(&str, &str)> = form.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    post_form(name, path.unwrap_or(&form.action), &fields)
}

async fn at_identify(app: &TestApp, extra: &[(&str, &str)]) -> (Browser, Page) {
    let b = app.browser();
    let p = b.follow(b.get(&app.rp("fabrikam").authorize_url(extra).url).await).await;
    assert!(p.has("form#identify"), "{}", p.body);
    (b, p)
}

async fn at_password(app: &TestApp, login: &str, extra: &[(&str, &str)]) -> (Browser, Page) {
    let (b, p) = at_identify(app, extra).await;
    let p = b.follow(b.submit(&p.form("identify").set("login", login)).await).await;
    assert!(p.has("form#password"), "{}", p.body);
    (b, p)
}

/// Invites `email` (an email-code guest) and opens the link: the browser is at the code step.
async fn at_email_code(app: &TestApp, email: &str) -> (Browser, Page, String) {
    let inv = app.invite(email, LANDING, None).await;
    let url = s(&inv, "inviteRedeemUrl");
    let b = app.browser();
    let p = b.send_email_code(b.follow_any(b.get(&url).await).await).await;
    assert!(p.has("form#email-otp"), "{}", p.body);
    (b, p, url)
}

async fn at_consent(app: &TestApp, email: &str) -> (Browser, Page) {
    let (b, p, _) = at_email_code(app, email).await;
    let c =
        b.follow_any(b.post_abs(&p.url, &p.form("email-otp").set("code", &app.latest_otp(email).await)).await).await;
    assert!(c.has("form#consent"), "{}", c.body);
    (b, c)
}

/// `login` steps up (acr_values=2) in a new browser: the proof-up or the MFA challenge page.
async fn at_mfa(app: &TestApp, login: &str) -> (Browser, Page) {
    let b = app.browser();
    let p = b.sign_in(&app.rp("fabrikam").authorize_url(&[("acr_values", "2")]).url, login, &app.password(login)).await;
    (b, p)
}

#[tokio::test]
async fn sign_in_and_redemption_pages_table() {
    let app = spawn_app().await;
    let iw = "iw@fabrikam.example";
    let now = app.clock.now();

    // iw enrols TOTP in `setup` (step-up), which then holds an SSO session with MFA.
    let (setup, page) = at_mfa(&app, iw).await;
    let secret = page.text("code#totp-secret").expect("proof-up page");
    let shown = setup.submit(&page.form("totp-enroll").set("code", &totp_at(&secret, now))).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    let done = setup.submit(&shown.form("continue")).await;
    assert!(done.location.as_deref().unwrap_or_default().contains("code="), "{}", done.body);

    // One browser at every step of every form.
    let (b_id, p) = at_identify(&app, &[]).await;
    let f_id = p.form("identify").set("login", iw);
    let (_other_browser, p) = at_identify(&app, &[]).await;
    let (other_csrf, other_tx) = (field(&p.form("identify"), "csrf"), field(&p.form("identify"), "tx"));
    let (b_pw, p) = at_password(&app, iw, &[]).await;
    let f_pw = p.form("password").set("password", &app.password(iw));
    let (b_otp, p, pat_url) = at_email_code(&app, "pat@northwind.example").await;
    let f_otp = p.form("email-otp").set("code", &app.latest_otp("pat@northwind.example").await);
    let (b_consent, p) = at_consent(&app, "lee@northwind.example").await;
    let f_consent = p.form("consent").set("decision", "accept");
    let (b_done, p) = at_consent(&app, "kim@northwind.example").await;
    assert_eq!(accept(&b_done, &p).await.location.as_deref(), Some(LANDING), "kim redeemed");
    let f_done = p.form("consent").set("decision", "accept");
    let (b_enroll, p) = at_mfa(&app, "admin@fabrikam.example").await;
    let admin_secret = p.text("code#totp-secret").expect("admin proof-up page");
    let f_enroll = p.form("totp-enroll").set("code", &totp_at(&admin_secret, now));
    let (b_totp, p) = at_mfa(&app, iw).await;
    assert!(p.has("form#totp-challenge"), "{}", p.body);
    let f_totp = p.form("totp-challenge").set("code", &totp_at(&secret, now + 30));
    let p = setup.get("/fabrikam/invite").await;
    let f_invite = p.form("invite").set("email", "csrf-probe@northwind.example").set("app", "foo");
    let logout_q = format!("client_id=test-rp&post_logout_redirect_uri={}", enc("http://127.0.0.1/logged-out"));
    let p = setup.get(&format!("/fabrikam/oauth2/v2.0/logout?{logout_q}")).await;
    let f_logout = p.form("logout");
    let (b_x1, p) = at_password(&app, iw, &[]).await;
    let f_x1 = p.form("password").set("password", &app.password(iw));
    let (b_x2, p) = at_password(&app, iw, &[]).await;
    let f_x2 = p.form("password").set("password", &app.password(iw));

    let csrf = Expect::Page(403, "csrf");
    let expired = Expect::Page(400, "signin_expired");
    let forged = random_b64(32);
    let mut cases = Vec::new();
    // ---- CSRF on every POST form: missing, another browser's, forged ----
    for (what, b, form) in [
        ("identify", &b_id, &f_id),
        ("password", &b_pw, &f_pw),
        ("email-otp", &b_otp, &f_otp),
        ("consent", &b_consent, &f_consent),
        ("totp-enroll", &b_enroll, &f_enroll),
        ("totp", &b_totp, &f_totp),
        ("invite", &setup, &f_invite),
        ("logout", &setup, &f_logout),
    ] {
        // The end-session endpoint also takes RP-initiated POSTs without a form token: those
        // only get the confirmation form again (documented: without a hint, ask first).
        let missing = if what == "logout" { Expect::Form("logout", None) } else { csrf.clone() };
        cases
            .push(submit(&format!("{what}: csrf missing"), &form.clone().without("csrf"), None).via(b).expect(missing));
        cases.push(
            submit(&format!("{what}: csrf of another browser"), &form.clone().set("csrf", &other_csrf), None)
                .via(b)
                .expect(csrf.clone()),
        );
        cases.push(
            submit(&format!("{what}: forged csrf"), &form.clone().set("csrf", &forged), None)
                .via(b)
                .expect(csrf.clone()),
        );
    }
    cases.extend([
        submit("password: this browser's form posted without its cookie", &f_pw, None).expect(csrf.clone()),
        // ---- the transaction: wrong, foreign, missing, other tenant ----
        submit("identify: unknown tx", &f_id.clone().set("tx", &random_b64(32)), None)
            .via(&b_id)
            .expect(expired.clone()),
        submit("identify: another browser's tx", &f_id.clone().set("tx", &other_tx), None)
            .via(&b_id)
            .expect(expired.clone()),
        submit("identify: no tx", &f_id.clone().without("tx"), None).via(&b_id).expect(expired.clone()),
        submit("password: fabrikam tx posted at contoso", &f_pw, Some("/contoso/login/password"))
            .via(&b_pw)
            .expect(expired.clone()),
        get("login page: no tx", "/fabrikam/login").via(&b_id).expect(expired.clone()),
        // ---- skipping steps: posting a later (or other) step's URL ----
        submit(
            "email code → consent skipped to",
            &f_otp.clone().set("decision", "accept"),
            Some("/fabrikam/login/consent"),
        )
        .via(&b_otp)
        .expect(expired.clone()),
        submit("password → totp skipped to", &f_pw.clone().set("code", "123456"), Some("/fabrikam/login/totp"))
            .via(&b_pw)
            .expect(expired.clone()),
        submit("proof-up → continue without a valid code", &f_enroll, Some("/fabrikam/login/continue"))
            .via(&b_enroll)
            .expect(expired.clone()),
        submit(
            "consent → totp-enroll posted",
            &f_consent.clone().set("code", "123456"),
            Some("/fabrikam/login/totp-enroll"),
        )
        .via(&b_consent)
        .expect(expired.clone()),
        // ---- malformed forms ----
        submit(
            "identify: login of 400 characters",
            &f_id.clone().set("login", &format!("{}@fabrikam.example", "x".repeat(400))),
            None,
        )
        .via(&b_id)
        .expect(Expect::Form("identify", Some("Enter your email"))),
        post_raw(
            "identify: text/plain body",
            "/fabrikam/login/identify",
            "text/plain",
            serde_urlencoded::to_string(&f_id.fields).unwrap(),
        )
        .via(&b_id)
        .expect(Expect::Page(400, "invalid_request")),
        post_raw(
            "identify: non-UTF-8 body",
            "/fabrikam/login/identify",
            "application/x-www-form-urlencoded",
            [serde_urlencoded::to_string(&f_id.fields).unwrap().into_bytes(), b"&x=\xff\xfe".to_vec()].concat(),
        )
        .via(&b_id)
        .expect(Expect::Page(400, "invalid_request")),
        post_raw(
            "identify: login twice",
            "/fabrikam/login/identify",
            "application/x-www-form-urlencoded",
            format!("{}&login=admin%40fabrikam.example", serde_urlencoded::to_string(&f_id.fields).unwrap()),
        )
        .via(&b_id)
        .expect(Expect::Page(400, "invalid_request")),
        post_raw(
            "password: body over 64 KiB",
            "/fabrikam/login/password",
            "application/x-www-form-urlencoded",
            format!("{}&pad={}", serde_urlencoded::to_string(&f_pw.fields).unwrap(), "p".repeat(70 * 1024)),
        )
        .via(&b_pw)
        .expect(Expect::TooLarge),
        // ---- consent ----
        submit("consent: no decision", &f_consent.clone().without("decision"), None)
            .via(&b_consent)
            .expect(Expect::Page(400, "invalid_request")),
        submit("consent: decision=maybe", &f_consent.clone().set("decision", "maybe"), None)
            .via(&b_consent)
            .expect(Expect::Page(400, "invalid_request")),
        submit("consent: replayed after success", &f_done, None).via(&b_done).expect(expired.clone()),
        // ---- codes ----
        submit(
            "totp: the time step used at enrolment, replayed",
            &f_totp.clone().set("code", &totp_at(&secret, now)),
            None,
        )
        .via(&b_totp)
        .expect(Expect::Form("totp-challenge", Some("already used"))),
        submit("email code: wrong", &f_otp.clone().set("code", "00000000"), None)
            .via(&b_otp)
            .expect(Expect::Form("email-otp", Some("not right")))
            .check(Check::StoreExcept(
                &["signins"],
                "a wrong code is counted on the sign-in transaction (attempt limit)",
            )),
        // ---- redemption links ----
        get("redeem: no ticket", "/redeem").expect(Expect::Page(404, "ticket_unknown")),
        get("redeem: percent garbage ticket", "/redeem?ticket=%00%ff%fe%zz")
            .expect(Expect::Page(404, "ticket_unknown")),
        get("redeem: 4 KiB ticket", format!("/redeem?ticket={}", "T".repeat(4096)))
            .expect(Expect::Page(404, "ticket_unknown")),
        get(
            "redeem: ticket on a member sign-in URL",
            format!("/fabrikam/login?ticket={}", query_param(&pat_url, "ticket").unwrap()),
        )
        .via(&b_id)
        .expect(expired.clone()),
        // An ambiguous link is refused with nothing changed (was: one value silently won and a
        // redemption started, before the pages parsed queries with the protocol's rules).
        get(
            "redeem: ticket twice (garbage, then a valid one)",
            format!("/redeem?ticket=garbage&ticket={}", query_param(&pat_url, "ticket").unwrap()),
        )
        .expect(Expect::Page(400, "invalid_request")),
        // ---- X-Forwarded-For from an untrusted peer is not believed (a sign-in, so it is logged) ----
        submit("X-Forwarded-For spoofed from an untrusted peer", &f_x1, None)
            .via(&b_x1)
            .header("x-forwarded-for", "203.0.113.7")
            .expect(Expect::RpCode)
            .check(Check::LoggedIp("127.0.0.1")),
        submit("X-Forwarded-For chain, X-Real-IP and Forwarded spoofed", &f_x2, None)
            .via(&b_x2)
            .header("x-forwarded-for", "203.0.113.7, 10.0.0.1, not-an-ip")
            .header("x-real-ip", "203.0.113.8")
            .header("forwarded", "for=203.0.113.9")
            .expect(Expect::RpCode)
            .check(Check::LoggedIp("127.0.0.1")),
    ]);
    let failures = run(&app, "pages", &cases).await;

    // Nothing refused above spent what the genuine forms can still do.
    let ok = b_consent.submit(&f_consent).await;
    assert_eq!(ok.location.as_deref(), Some(LANDING), "lee's consent still works: {}", ok.body);
    let ok = b_totp.follow(b_totp.submit(&f_totp).await).await;
    assert!(ok.location.as_deref().unwrap_or_default().contains("code="), "iw's challenge still works: {}", ok.body);
    assert_rows("pages", cases.len(), failures);
}

/// Enumeration probes. At the tenant's own domain, an unknown user and a wrong password get the
/// same password page and message; an address outside it that nobody invited gets the
/// documented "ask an admin to invite you" page (DESIGN §2.3), the same whether or not that
/// address exists at its home (a partner tenant, a social account, nowhere).
#[tokio::test]
async fn enumeration_probes_table() {
    let app = spawn_app().await;
    let wrong = "Wrong-password-1";
    // (name, login, the class it must look identical within)
    let probes: &[(&str, &str, &str)] = &[
        ("unknown member at the tenant's domain", "ghost@fabrikam.example", "own domain"),
        ("known member, wrong password", "iw@fabrikam.example", "own domain"),
        ("known member in capitals, wrong password", "IW@FABRIKAM.EXAMPLE", "own domain"),
        ("known admin, wrong password", "admin@fabrikam.example", "own domain"),
        ("a bare username", "iw", "own domain"),
        ("unknown address at a partner tenant's domain", "ghost@contoso.example", "outside"),
        ("a real member of the partner tenant, not invited", "sally@contoso.example", "outside"),
        ("a real social-stub account, not invited", "gsamoogle@gmail.example", "outside"),
        ("an unknown email-code address", "ghost@northwind.example", "outside"),
    ];
    let mut seen: Vec<(&str, String)> = Vec::new();
    let mut failures = Vec::new();
    for (name, login, class) in probes {
        let mut problems = Vec::new();
        // The sign-in transaction (authorize) is written legitimately before this.
        let (b, p) = at_identify(&app, &[]).await;
        let before = app.snapshot().await;
        let step = b.submit(&p.form("identify").set("login", login)).await;
        let observed = if *class == "outside" {
            problems.extend(diff(&before, &app.snapshot().await));
            if (step.status, step.error_code().as_deref()) != (StatusCode::FORBIDDEN, Some("not_invited")) {
                problems.push(format!("expected 403 not_invited, got {} {:?}", step.status, step.error_code()));
            }
            format!("{} {:?} {:?}", step.status, step.error_code(), step.text("main#error p"))
        } else {
            let loc = step.location.as_deref().map(|l| l.split("?tx=").next().unwrap_or_default().to_string());
            let pw_page = b
                .follow(Page { status: step.status, location: step.location.clone(), body: step.body, url: step.url })
                .await;
            if !pw_page.has("form#password") {
                problems.push(format!("no password step: {}", short(&pw_page.body)));
                failures.push(format!("  [{name}] {}", problems.join("; ")));
                continue;
            }
            // identify moved the transaction to the password step; the failed password changes
            // nothing but its own sign-in log entry (50126, admin-only).
            let before = app.snapshot_without_log().await;
            let failed = b.submit(&pw_page.form("password").set("password", wrong)).await;
            problems.extend(diff(&before, &app.snapshot_without_log().await));
            let fields = |p: &Page| {
                let mut f: Vec<String> = if p.has("form#password") {
                    p.form("password").fields.into_iter().map(|(k, _)| k).collect()
                } else {
                    vec![]
                };
                f.sort();
                f
            };
            let error = failed.text("p.error");
            if error.as_deref().is_none_or(|t| !t.contains("incorrect")) {
                problems.push(format!("expected the 'incorrect' message, got {error:?}"));
            }
            format!(
                "{} {loc:?} {:?} | {} {error:?} {:?}",
                step.status,
                fields(&pw_page),
                failed.status,
                fields(&failed)
            )
        };
        if let Some((_, baseline)) = seen.iter().find(|(c, _)| c == class)
            && *baseline != observed
        {
            problems.push(format!("answers differ within {class:?}: {observed} vs {baseline}"));
        }
        if problems.is_empty() {
            println!("ok    enumeration / {name}");
        } else {
            println!("FAIL  enumeration / {name}: {}", problems.join("; "));
            failures.push(format!("  [{name}] {}", problems.join("; ")));
        }
        seen.push((class, observed));
    }
    assert_rows("enumeration", probes.len(), failures);
}

// ---------- admin API ----------

#[tokio::test]
async fn admin_api_table() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let iw = "iw@fabrikam.example";
    let sally = "sally@contoso.example";
    let admin = app.admin_token().await;
    // Tokens for the admin API itself (its delegated scope): only the directory role is missing.
    let graph_scope = [("scope", "openid offline_access User.Invite.All")];
    let (t, _) = rp.sign_in(&app.browser(), iw, &app.password(iw), &graph_scope).await;
    let (iw_access, iw_id, iw_refresh) = (s(&t, "access_token"), s(&t, "id_token"), s(&t, "refresh_token"));
    let (tc, _) = app.rp("contoso").sign_in(&app.browser(), sally, &app.password(sally), &graph_scope).await;
    let sally_access = s(&tc, "access_token");
    let admin_login = "admin@fabrikam.example";
    let (ta, _) = rp.sign_in(&app.browser(), admin_login, &app.password(admin_login), &[]).await;
    let admin_for_rp = s(&ta, "access_token");
    let (_, cc) = app.rp("contoso").token(&[("grant_type", "client_credentials")]).await;
    let contoso_app = s(&cc, "access_token");
    let (_, fc) = rp.token(&[("grant_type", "client_credentials")]).await;
    let fabrikam_app = s(&fc, "access_token");

    let path = "/graph/v1.0/invitations";
    let valid = json!({"invitedUserEmailAddress": "new@northwind.example", "inviteRedirectUrl": LANDING});
    let with = |k: &str, v: Value| {
        let mut b = valid.clone();
        b[k] = v;
        b
    };
    let graph = |name: &str, token: Option<&str>, body: &Value| {
        let c = post_raw(name, path, "application/json", body.to_string());
        match token {
            Some(t) => c.bearer(t),
            None => c,
        }
    };
    let unauthorized = Expect::Graph(401, "InvalidAuthenticationToken");
    let denied = Expect::Graph(403, "Authorization_RequestDenied");
    let bad = Expect::Graph(400, "BadRequest");
    let media = Expect::Graph(415, "UnsupportedMediaType");
    let a = Some(admin.as_str());
    let cases = vec![
        // ---- who is calling ----
        graph("no token", None, &valid).expect(unauthorized.clone()),
        graph("empty Bearer", None, &valid).header("authorization", "Bearer ").expect(unauthorized.clone()),
        graph("malformed Bearer", Some("not.a.jwt"), &valid).expect(unauthorized.clone()),
        graph("Basic client credentials instead of a token", None, &valid)
            .basic(&app.creds.admin.client_id, &app.creds.admin.client_secret)
            .expect(unauthorized.clone()),
        graph("admin token with alg none", Some(&alg_none(&admin)), &valid).expect(unauthorized.clone()),
        graph("admin token with a tampered signature", Some(&bad_signature(&admin)), &valid)
            .expect(unauthorized.clone()),
        graph(
            "member token with roles added, signature kept",
            Some(&bad_claims(&iw_access, |c| c["roles"] = json!(["Directory.ReadWrite.All"]))),
            &valid,
        )
        .expect(unauthorized.clone()),
        graph("an ID token", Some(&iw_id), &valid).expect(unauthorized.clone()),
        graph("a refresh token", Some(&iw_refresh), &valid).expect(unauthorized.clone()),
        graph("member token without an admin role", Some(&iw_access), &valid).expect(denied.clone()),
        graph("an admin's token issued to another app (aud test-rp)", Some(&admin_for_rp), &valid)
            .expect(unauthorized.clone()),
        graph("another tenant's member token", Some(&sally_access), &valid).expect(denied.clone()),
        graph("another tenant's app token", Some(&contoso_app), &valid).expect(denied.clone()),
        graph("an app token without roles", Some(&fabrikam_app), &valid).expect(denied.clone()),
        // ---- the body ----
        post_raw("text/plain body", path, "text/plain", valid.to_string()).bearer(&admin).expect(media.clone()),
        post_form(
            "form body",
            path,
            &[("invitedUserEmailAddress", "new@northwind.example"), ("inviteRedirectUrl", LANDING)],
        )
        .bearer(&admin)
        .expect(media.clone()),
        post_raw("invalid JSON", path, "application/json", "{\"invitedUserEmailAddress\": ")
            .bearer(&admin)
            .expect(bad.clone()),
        post_raw("empty body", path, "application/json", "").bearer(&admin).expect(bad.clone()),
        post_raw(
            "non-UTF-8 JSON",
            path,
            "application/json",
            b"{\"invitedUserEmailAddress\": \"\xff@x.example\"}".to_vec(),
        )
        .bearer(&admin)
        .expect(bad.clone()),
        post_raw(
            "body over 64 KiB",
            path,
            "application/json",
            with("invitedUserDisplayName", "n".repeat(70 * 1024).into()).to_string(),
        )
        .bearer(&admin)
        .expect(Expect::TooLarge),
        graph(
            "unknown field (typo invitedUserEmail)",
            a,
            &json!({"invitedUserEmail": "new@northwind.example", "inviteRedirectUrl": LANDING}),
        )
        .expect(bad.clone()),
        // Unknown fields are refused at every level (a nested one created the invitation before 382b15b).
        graph(
            "unknown field inside invitedUserMessageInfo",
            a,
            &with("invitedUserMessageInfo", json!({"customizedMessageBody": "hi", "bogus": 1})),
        )
        .expect(bad.clone()),
        graph("wrong type: sendInvitationMessage \"yes\"", a, &with("sendInvitationMessage", "yes".into()))
            .expect(bad.clone()),
        graph("wrong type: inviteRedirectUrl 42", a, &with("inviteRedirectUrl", 42.into())).expect(bad.clone()),
        graph("wrong type: resetRedemption \"true\"", a, &with("resetRedemption", "true".into())).expect(bad.clone()),
        graph("wrong type: invitedUser.id not a UUID", a, &with("invitedUser", json!({"id": "not-a-uuid"})))
            .expect(bad.clone()),
        graph("invalid email: no domain", a, &with("invitedUserEmailAddress", "new@".into())).expect(bad.clone()),
        graph("invalid email: no local part", a, &with("invitedUserEmailAddress", "@northwind.example".into()))
            .expect(bad.clone()),
        graph(
            "invalid email: header injection",
            a,
            &with("invitedUserEmailAddress", "new@northwind.example\r\nBcc: all@evil.example".into()),
        )
        .expect(bad.clone()),
        graph("redirect URL: data:", a, &with("inviteRedirectUrl", "data:text/html,<script>alert(1)</script>".into()))
            .expect(bad.clone()),
        graph("redirect URL: file:", a, &with("inviteRedirectUrl", "file:///etc/passwd".into())).expect(bad.clone()),
        graph("redirect URL: http with no host", a, &with("inviteRedirectUrl", "http://".into())).expect(bad.clone()),
        graph("own domain in capitals", a, &with("invitedUserEmailAddress", "NEW@FABRIKAM.EXAMPLE".into()))
            .expect(bad.clone()),
        // Last: the clock moves past the admin token's hour.
        graph("expired admin token", a, &valid).after(3601).expect(unauthorized.clone()),
    ];
    let failures = run(&app, "admin", &cases).await;
    assert_rows("admin", cases.len(), failures);
}

/// The rest of the admin surface (users, devices, policies, named locations, What If,
/// partners, OData options) and the admin pages' forms.
#[tokio::test]
async fn admin_surface_table() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let tid = app.tenant_id("fabrikam").await;
    let admin = app.admin_token().await;
    let iw = app.user("fabrikam", "iw@fabrikam.example").await.id;
    let admin_login = "admin@fabrikam.example";
    let (t, _) = rp
        .sign_in(
            &app.browser(),
            admin_login,
            &app.password(admin_login),
            &[("scope", "openid Directory.ReadWrite.All")],
        )
        .await;
    let admin_member = s(&t, "access_token");
    let admin_id = app.user("fabrikam", admin_login).await.id;
    let guest =
        app.invite("pat@northwind.example", LANDING, None).await["invitedUser"]["id"].as_str().unwrap().to_string();
    // iw's first sign-in registers a device; iw's browser keeps a session (no admin role).
    let member = app.browser();
    rp.sign_in(&member, "iw@fabrikam.example", &app.password("iw@fabrikam.example"), &[]).await;
    let device = app.state.store.devices(&tid).await.unwrap().into_iter().next().expect("a registered device").id;
    let policy = app.state.store.policies(&tid).await.unwrap().into_iter().next().unwrap().id;
    let location = app.state.store.named_locations(&tid).await.unwrap().into_iter().next().unwrap().id;
    let contoso = app.tenant_id("contoso").await;
    // The admin pages, signed in as the Global Administrator; another browser's form token.
    let admin_page = app.browser();
    let login = admin_page.follow(admin_page.get("/fabrikam/admin").await).await;
    let p = admin_page.follow(admin_page.submit(&login.form("identify").set("login", admin_login)).await).await;
    let page = admin_page
        .follow(admin_page.submit(&p.form("password").set("password", &app.password(admin_login))).await)
        .await;
    assert!(page.has("main#admin"), "{}", page.body);
    let admin_csrf = page.attr("form.policy-state input[name=csrf]", "value").expect("policy form");
    let (_other, p) = at_identify(&app, &[]).await;
    let other_csrf = field(&p.form("identify"), "csrf");

    let g = |name: &str, method: Method, path: &str, body: Option<Value>| {
        let mut c = req(name, method, format!("/graph/v1.0/{path}")).bearer(&admin);
        if let Some(b) = body {
            c.headers.push(("content-type".into(), "application/json".into()));
            c.body = Some(b.to_string().into_bytes());
        }
        c
    };
    let bad = Expect::Graph(400, "BadRequest");
    let missing = Expect::Graph(404, "Request_ResourceNotFound");
    let policy_body = |extra: (&str, Value)| {
        let mut b = json!({
            "displayName": "x", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        });
        b[extra.0] = extra.1;
        b
    };
    let users = "users";
    let form = |name: &str, path: &str, fields: &[(&str, &str)]| post_form(name, path, fields).via(&admin_page);
    let cases = vec![
        // ---- OData query options ----
        g(
            "users: $filter on an unsupported property",
            Method::GET,
            &format!("{users}?$filter={}", enc("passwordHash eq 'x'")),
            None,
        )
        .expect(bad.clone()),
        g(
            "users: $filter with an unquoted string",
            Method::GET,
            &format!("{users}?$filter={}", enc("userType eq Guest")),
            None,
        )
        .expect(bad.clone()),
        g("users: $top=0", Method::GET, &format!("{users}?$top=0"), None).expect(bad.clone()),
        g("users: $orderby (unsupported)", Method::GET, &format!("{users}?$orderby=displayName"), None)
            .expect(bad.clone()),
        // OData: a system query option may appear at most once (was silently ANDed before 382b15b).
        g(
            "users: $filter twice",
            Method::GET,
            &format!("{users}?$filter={}&$filter={}", enc("userType eq 'Guest'"), enc("userType eq 'Member'")),
            None,
        )
        .expect(bad.clone()),
        // ---- users ----
        g("users: unknown object id", Method::GET, &format!("users/{}", uuid::Uuid::new_v4()), None)
            .expect(missing.clone()),
        g("PATCH user: text/plain", Method::PATCH, &format!("users/{iw}"), None)
            .header("content-type", "text/plain")
            .expect(Expect::Graph(415, "UnsupportedMediaType")),
        g(
            "PATCH user: userType (not patchable) to escalate",
            Method::PATCH,
            &format!("users/{iw}"),
            Some(json!({"userType": "Guest"})),
        )
        .expect(bad.clone()),
        g(
            "PATCH user: roles (not patchable)",
            Method::PATCH,
            &format!("users/{iw}"),
            Some(json!({"roles": ["Global Administrator"]})),
        )
        .expect(bad.clone()),
        g(
            "PATCH user: accountEnabled \"no\"",
            Method::PATCH,
            &format!("users/{iw}"),
            Some(json!({"accountEnabled": "no"})),
        )
        .expect(bad.clone()),
        g(
            "PATCH user: riskLevel \"extreme\"",
            Method::PATCH,
            &format!("users/{iw}"),
            Some(json!({"riskLevel": "extreme"})),
        )
        .expect(bad.clone()),
        g(
            "PATCH user: riskLevel on a guest",
            Method::PATCH,
            &format!("users/{guest}"),
            Some(json!({"riskLevel": "high"})),
        )
        .expect(bad.clone()),
        g(
            "PATCH user: unknown user",
            Method::PATCH,
            &format!("users/{}", uuid::Uuid::new_v4()),
            Some(json!({"displayName": "X"})),
        )
        .expect(missing.clone()),
        g("DELETE user: the caller's own account", Method::DELETE, &format!("users/{admin_id}"), None)
            .bearer(&admin_member)
            .expect(bad.clone()),
        g(
            "DELETE method: unknown softwareOath method",
            Method::DELETE,
            &format!("users/{iw}/authentication/softwareOathMethods/nope"),
            None,
        )
        .expect(missing.clone()),
        // ---- devices ----
        g("PATCH device: unknown device", Method::PATCH, "devices/no-such-device", Some(json!({"isCompliant": true})))
            .expect(missing.clone()),
        g(
            "PATCH device: trustType \"Quantum\"",
            Method::PATCH,
            &format!("devices/{device}"),
            Some(json!({"trustType": "Quantum"})),
        )
        .expect(bad.clone()),
        // ---- policies and named locations ----
        g(
            "POST policy: unknown field",
            Method::POST,
            "identity/conditionalAccess/policies",
            Some(policy_body(("priority", 1.into()))),
        )
        .expect(bad.clone()),
        g(
            "POST policy: operator XOR",
            Method::POST,
            "identity/conditionalAccess/policies",
            Some(policy_body(("grantControls", json!({"operator": "XOR", "builtInControls": ["mfa"]})))),
        )
        .expect(bad.clone()),
        g(
            "PATCH policy: change its id",
            Method::PATCH,
            &format!("identity/conditionalAccess/policies/{policy}"),
            Some(json!({"id": "mine"})),
        )
        .expect(bad.clone()),
        g(
            "PATCH policy: state \"sometimes\"",
            Method::PATCH,
            &format!("identity/conditionalAccess/policies/{policy}"),
            Some(json!({"state": "sometimes"})),
        )
        .expect(bad.clone()),
        g(
            "POST named location: invalid CIDR",
            Method::POST,
            "identity/conditionalAccess/namedLocations",
            Some(json!({"displayName": "X", "ipRanges": [{"cidrAddress": "300.1.2.3/24"}]})),
        )
        .expect(bad.clone()),
        g(
            "PATCH named location: empty displayName",
            Method::PATCH,
            &format!("identity/conditionalAccess/namedLocations/{location}"),
            Some(json!({"displayName": ""})),
        )
        .expect(bad.clone()),
        // ---- What If ----
        g(
            "evaluate: no appId",
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(json!({"userPrincipalName": "iw@fabrikam.example"})),
        )
        .expect(bad.clone()),
        g(
            "evaluate: ipAddress not an IP",
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(json!({"userPrincipalName": "iw@fabrikam.example", "appId": "foo", "ipAddress": "not-an-ip"})),
        )
        .expect(bad.clone()),
        // ---- cross-tenant partners ----
        g(
            "POST partner: the tenant itself",
            Method::POST,
            "policies/crossTenantAccessPolicy/partners",
            Some(json!({"tenantId": tid})),
        )
        .expect(bad.clone()),
        g(
            "POST partner: tenantId not a UUID",
            Method::POST,
            "policies/crossTenantAccessPolicy/partners",
            Some(json!({"tenantId": "contoso"})),
        )
        .expect(bad.clone()),
        g(
            "POST partner: a tenant id that is no tenant here",
            Method::POST,
            "policies/crossTenantAccessPolicy/partners",
            Some(json!({"tenantId": "00000000-0000-0000-0000-00000000abcd"})),
        )
        .expect(bad.clone()),
        g(
            "POST partner: accessType not allowed or blocked",
            Method::POST,
            "policies/crossTenantAccessPolicy/partners",
            Some(json!({"tenantId": contoso, "b2bCollaborationInbound": {"usersAndGroups": {
                "accessType": "maybe", "targets": [{"target": "AllUsers", "targetType": "user"}]}}})),
        )
        .expect(bad.clone()),
        g(
            "PATCH partner: not configured",
            Method::PATCH,
            &format!("policies/crossTenantAccessPolicy/partners/{contoso}"),
            Some(json!({"inboundTrust": {"isMfaAccepted": true}})),
        )
        .expect(missing.clone()),
        // A Graph error body even when the id is not a UUID (was actix's plain text before 382b15b).
        g("GET partner: id not a UUID", Method::GET, "policies/crossTenantAccessPolicy/partners/not-a-uuid", None)
            .expect(missing.clone()),
        g("PUT invitations (wrong method)", Method::PUT, "invitations", Some(json!({})))
            .expect(Expect::Graph(405, "Request_BadRequest")),
        // ---- the admin pages' forms ----
        form(
            "admin page policy-state: csrf missing",
            "/fabrikam/admin/policy-state",
            &[("policy", &policy), ("state", "disabled")],
        )
        .expect(Expect::Page(403, "csrf")),
        form(
            "admin page policy-state: csrf of another browser",
            "/fabrikam/admin/policy-state",
            &[("csrf", &other_csrf), ("policy", &policy), ("state", "disabled")],
        )
        .expect(Expect::Page(403, "csrf")),
        form(
            "admin page policy-state: forged csrf",
            "/fabrikam/admin/policy-state",
            &[("csrf", &random_b64(32)), ("policy", &policy), ("state", "disabled")],
        )
        .expect(Expect::Page(403, "csrf")),
        form("admin page mfa-reset: csrf missing", "/fabrikam/admin/mfa-reset", &[("user", &iw.to_string())])
            .expect(Expect::Page(403, "csrf")),
        form(
            "admin page mfa-reset: csrf of another browser",
            "/fabrikam/admin/mfa-reset",
            &[("csrf", &other_csrf), ("user", &iw.to_string())],
        )
        .expect(Expect::Page(403, "csrf")),
        form(
            "admin page mfa-reset: forged csrf",
            "/fabrikam/admin/mfa-reset",
            &[("csrf", &random_b64(32)), ("user", &iw.to_string())],
        )
        .expect(Expect::Page(403, "csrf")),
        form(
            "admin page policy-state: state \"sometimes\"",
            "/fabrikam/admin/policy-state",
            &[("csrf", &admin_csrf), ("policy", &policy), ("state", "sometimes")],
        )
        .expect(Expect::Page(400, "invalid_request")),
        form(
            "admin page policy-state: unknown policy",
            "/fabrikam/admin/policy-state",
            &[("csrf", &admin_csrf), ("policy", "nope"), ("state", "disabled")],
        )
        .expect(Expect::Page(400, "invalid_request")),
        form(
            "admin page mfa-reset: user not a UUID",
            "/fabrikam/admin/mfa-reset",
            &[("csrf", &admin_csrf), ("user", "iw@fabrikam.example")],
        )
        .expect(Expect::Page(400, "invalid_request")),
        {
            let csrf = member
                .get("/fabrikam/invite")
                .await
                .form("invite")
                .fields
                .into_iter()
                .find(|(k, _)| k == "csrf")
                .unwrap()
                .1;
            post_form(
                "admin page policy-state: a member without the admin role",
                "/fabrikam/admin/policy-state",
                &[("csrf", &csrf), ("policy", &policy), ("state", "disabled")],
            )
            .via(&member)
            .expect(Expect::Page(403, "admin_only"))
        },
    ];
    let failures = run(&app, "admin surface", &cases).await;
    assert_rows("admin surface", cases.len(), failures);
}
