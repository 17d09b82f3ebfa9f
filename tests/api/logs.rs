//! Logs (DESIGN §15): the request id (taken from a trusted proxy when sane, else made) is
//! returned as `x-request-id` and carried by the request's JSON log lines; a full run of
//! the real binary leaves none of the secrets it handed out in its log.
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use gatehouse::clock::Clock;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::guests::{accept, to_consent};
use crate::helpers::*;
use crate::process::BIN;

/// The binary serving the demo on a data dir, its stderr (the log) kept line by line.
pub struct Logged {
    pub child: Child,
    pub url: String,
    pub creds: Value,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts `gatehouse serve --demo` on `data_dir` with `env` added (cheap argon2).
pub async fn start_logged(data_dir: &Path, env: &[(&str, &str)]) -> Logged {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
        .env("GATEHOUSE__ARGON2__ITERATIONS", "1")
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("gatehouse starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let mut err = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                return url.to_string();
            }
        }
        panic!("gatehouse exited before listening");
    })
    .await
    .expect("listening line within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let creds: Value = serde_json::from_slice(&std::fs::read(data_dir.join("demo-credentials.json")).unwrap()).unwrap();
    Logged { child, url, creds, log }
}

impl Logged {
    pub fn password(&self, login: &str) -> String {
        self.creds["users"].as_array().unwrap().iter().find(|u| u["login"] == login).unwrap()["password"]
            .as_str()
            .unwrap()
            .into()
    }

    pub fn rp(&self, tenant: &str) -> Rp {
        let client = self.creds["clients"].as_array().unwrap().iter().find(|c| c["tenant"] == tenant).unwrap().clone();
        Rp {
            base: self.url.clone(),
            tenant: tenant.into(),
            client_id: client["client_id"].as_str().unwrap().into(),
            secret: Some(client["client_secret"].as_str().unwrap().into()),
            redirect_uri: "http://127.0.0.1:9/callback".into(),
            http: plain_client(),
        }
    }

    pub async fn admin_token(&self) -> String {
        let admin = &self.creds["admin"];
        let rp = Rp {
            client_id: admin["client_id"].as_str().unwrap().into(),
            secret: Some(admin["client_secret"].as_str().unwrap().into()),
            ..self.rp("fabrikam")
        };
        let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn graph(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = plain_client().request(method, format!("{}/graph/v1.0/{path}", self.url)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// The log so far, one line each.
    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded: 10 s) until some log line satisfies `found`; the lines then.
    pub async fn wait_for(&self, what: &str, found: impl Fn(&str) -> bool) -> Vec<String> {
        for _ in 0..100 {
            let lines = self.lines();
            if lines.iter().any(|l| found(l)) {
                return lines;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no log line {what} within 10 s:\n{}", self.lines().join("\n"));
    }

    /// SIGTERM, then the exit status (within 60 s).
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running").to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("gatehouse exits within 60 s of SIGTERM")
            .unwrap()
    }
}

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers().get("x-request-id").expect("x-request-id on every response").to_str().unwrap().to_string()
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id_that_the_response_returns() {
    let dir = tempfile::tempdir().unwrap();
    // The test client is on 127.0.0.1: as a trusted proxy its request ids are taken.
    let env = [
        ("GATEHOUSE__LOG_FORMAT", "json"),
        ("GATEHOUSE__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
        // The access line of every request is at debug.
        ("RUST_LOG", "info,gatehouse::telemetry::http=debug"),
    ];
    let mut server = start_logged(dir.path(), &env).await;
    let http = plain_client();
    let discovery = format!("{}/fabrikam/v2.0/.well-known/openid-configuration", server.url);

    let made = http.get(&discovery).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::OK);
    let made = request_id(&made);
    assert!(is_uuid(&made), "without an incoming id a uuid is made: {made}");
    let kept = http.get(&discovery).header("x-request-id", "lb-7f3a.c_2").send().await.unwrap();
    assert_eq!(request_id(&kept), "lb-7f3a.c_2", "a sane id from a trusted proxy is kept");
    for insane in ["has space", "quote\"d", &"x".repeat(65), ""] {
        let resp = http.get(&discovery).header("x-request-id", insane).send().await.unwrap();
        let id = request_id(&resp);
        assert!(is_uuid(&id) && id != insane, "{insane:?} is replaced by a fresh id, got {id}");
    }
    // An error page carries one too, and two requests never share one.
    let missing = http.get(format!("{}/nowhere", server.url)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let other = request_id(&missing);
    assert!(is_uuid(&other) && other != made);

    let with_id = |id: &str| {
        let id = id.to_string();
        move |line: &str| serde_json::from_str::<Value>(line).is_ok_and(|v| v["span"]["request_id"] == id.as_str())
    };
    server.wait_for("with the made id", with_id(&made)).await;
    let lines = server.wait_for("with the kept id", with_id("lb-7f3a.c_2")).await;
    let access: Value = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["span"]["request_id"] == made.as_str() && v["fields"]["message"] == "request")
        .expect("an access line for the request");
    assert_eq!(access["level"], "DEBUG");
    assert_eq!(access["fields"]["route"], "/{tenant}/v2.0/.well-known/openid-configuration", "{access}");
    assert_eq!(access["fields"]["status"], 200);
    assert_eq!(access["fields"]["method"], "GET");

    assert_eq!(server.terminate().await.code(), Some(0));
    let lines = server.lines();
    assert!(lines.len() > 5, "{lines:?}");
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
    }
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_request_id() {
    let app = spawn_app().await;
    let resp = plain_client().get(format!("{}/health/live", app.url)).header("x-request-id", "chosen-1").send().await;
    let resp = resp.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let id = request_id(&resp);
    assert!(is_uuid(&id), "the id of a peer that is no trusted proxy is made here: {id}");
}

/// Proof-up at the page shown (TOTP from the shown secret): the secret, the recovery codes,
/// the code used and the page after it.
async fn proof_up(browser: &Browser, page: Page) -> (String, Vec<String>, String, Page) {
    assert!(page.has("code#totp-secret"), "expected proof-up at {}:\n{}", page.url, page.body);
    let secret = page.text("code#totp-secret").unwrap();
    let code = totp_at(&secret, gatehouse::clock::SystemClock.now());
    let shown = browser.post_abs(&page.url, &page.form("totp-enroll").set("code", &code)).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    let li = scraper::Selector::parse("ul#recovery-codes li").unwrap();
    let codes: Vec<String> =
        shown.html().select(&li).map(|e| e.text().collect::<String>().trim().to_string()).collect();
    let next = browser.follow_any(browser.post_abs(&page.url, &shown.form("continue")).await).await;
    (secret, codes, code, next)
}

#[tokio::test]
async fn a_full_run_leaves_no_secret_it_handed_out_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // The most the server says about itself: its own debug lines too, as JSON.
    let mut server =
        start_logged(dir.path(), &[("GATEHOUSE__LOG_FORMAT", "json"), ("RUST_LOG", "info,gatehouse=debug")]).await;
    let mut secrets: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, v: &str| secrets.push((what.to_string(), v.to_string()));
    for c in server.creds["clients"].as_array().unwrap() {
        keep("client secret", c["client_secret"].as_str().unwrap());
    }
    keep("admin client secret", server.creds["admin"]["client_secret"].as_str().unwrap());
    for u in server.creds["users"].as_array().unwrap() {
        keep("password", u["password"].as_str().unwrap());
    }

    // A member: a wrong password, then the code flow, a refresh, userinfo.
    let iw = "iw@fabrikam.example";
    let rp = server.rp("fabrikam");
    let wrong = "Wr0ng-pass-phrase-4711";
    keep("wrong password", wrong);
    let page = Browser::new(&server.url).sign_in(&rp.authorize_url(&[]).url, iw, wrong).await;
    assert!(page.has("form#password"), "{}", page.body);
    let browser = Browser::new(&server.url);
    let start = rp.authorize_url(&[]);
    keep("PKCE verifier", &start.verifier);
    let done = browser.sign_in(&start.url, iw, &server.password(iw)).await;
    let code = query_param(done.location.as_deref().unwrap(), "code").unwrap();
    keep("authorization code", &code);
    let (status, tokens) = rp.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    for k in ["access_token", "id_token", "refresh_token"] {
        keep(k, tokens[k].as_str().unwrap());
    }
    let (status, refreshed) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    keep("refreshed access token", refreshed["access_token"].as_str().unwrap());
    keep("rotated refresh token", refreshed["refresh_token"].as_str().unwrap());
    assert_eq!(rp.userinfo(refreshed["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // The code again: refused (and its grant revoked), logged without the code.
    let (status, again) = rp.exchange(&code, &start.verifier).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "a replayed code");

    // The admin API: an app token, an invitation (its redemption ticket), an admin change.
    let token = server.admin_token().await;
    keep("app token", &token);
    let sally = "sally@contoso.example";
    let body = json!({"invitedUserEmailAddress": sally, "inviteRedirectUrl": format!("{}/demo/foo/login", server.url),
        "sendInvitationMessage": true, "appId": "foo"});
    let (status, inv) = server.graph(Method::POST, "invitations", &token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let redeem_url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();
    keep("invitation ticket", &query_param(&redeem_url, "ticket").expect("the redeem URL holds the ticket"));

    // The guest redeems and proofs up: the TOTP secret, the code, the recovery codes.
    let browser = Browser::new(&server.url);
    let consent = to_consent(&browser, &redeem_url, sally, &server.password(sally)).await;
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    let (secret, recovery, totp, shown) = proof_up(&browser, page).await;
    assert_eq!(claims_table(&shown)["amr"], "fed otp mfa");
    keep("TOTP secret", &secret);
    keep("TOTP code", &totp);
    for c in &recovery {
        keep("recovery code", c);
    }
    // An email guest: the one-time code it is mailed (read from the demo outbox page).
    let pat = "pat@northwind.example";
    let body = json!({"invitedUserEmailAddress": pat, "inviteRedirectUrl": "http://127.0.0.1:9/landing",
        "sendInvitationMessage": true});
    let (status, inv) = server.graph(Method::POST, "invitations", &token, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let pat_url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();
    keep("invitation ticket", &query_param(&pat_url, "ticket").unwrap());
    let browser = Browser::new(&server.url);
    let page = browser.send_email_code(browser.follow_any(browser.get(&pat_url).await).await).await;
    assert!(page.has("form#email-otp"), "{}", page.body);
    let outbox = browser.get(&format!("{}/outbox", server.url)).await;
    let otp = outbox.text("code.otp").expect("the code in the outbox");
    keep("email one-time code", &otp);
    let consent =
        browser.follow_any(browser.post_abs(&page.url, &page.form("email-otp").set("code", &otp)).await).await;
    assert!(consent.has("form#consent"), "{}", consent.body);

    // An admin resets sally's MFA (an audited change).
    let guest = sally.replace('@', "_") + "#EXT#@fabrikam.example";
    let (status, users) = server.graph(Method::GET, "users", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let id =
        users["value"].as_array().unwrap().iter().find(|u| u["userPrincipalName"] == guest.as_str()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let (status, methods) =
        server.graph(Method::GET, &format!("users/{id}/authentication/softwareOathMethods"), &token, None).await;
    assert_eq!(status, StatusCode::OK, "{methods}");
    let method = methods["value"][0]["id"].as_str().unwrap().to_string();
    let path = format!("users/{id}/authentication/softwareOathMethods/{method}");
    let (status, _) = server.graph(Method::DELETE, &path, &token, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    assert_eq!(server.terminate().await.code(), Some(0));
    // Searched without the timestamps (whose digits could hold any 6-digit code by chance).
    let log: String = server
        .lines()
        .into_iter()
        .map(|l| match serde_json::from_str::<Value>(&l) {
            Ok(mut v) => {
                v.as_object_mut().map(|o| o.remove("timestamp"));
                v.to_string()
            }
            Err(_) => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(log.contains("admin change done"), "the MFA reset is audited:\n{log}");
    let audit = server
        .lines()
        .into_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .find(|v| v["fields"]["method"] == "DELETE" && v["fields"]["message"] == "admin change done")
        .expect("the audit line of the MFA reset");
    assert_eq!(audit["fields"]["actor"], server.creds["admin"]["client_id"], "who: {audit}");
    assert_eq!(audit["fields"]["target"], id.as_str(), "what: {audit}");
    for (what, secret) in &secrets {
        assert!(secret.len() >= 6, "{what} is long enough to search for");
        assert!(!log.contains(secret.as_str()), "the log holds a {what}:\n{log}");
    }
}

#[tokio::test]
async fn a_bad_log_format_or_metrics_bind_is_refused_by_name_and_creates_nothing() {
    let parent = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    for (key, value, says) in [
        ("GATEHOUSE__LOG_FORMAT", "xml", "log_format"),
        ("GATEHOUSE__METRICS_BIND", "not-an-address", "metrics_bind"),
        ("GATEHOUSE__SHUTDOWN_TIMEOUT_SECS", "-1", "shutdown_timeout_secs"),
        ("GATEHOUSE__METRICS_BIND", busy.as_str(), "cannot listen on"),
    ] {
        let data = parent.path().join("data");
        let out = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
            .env_remove("GATEHOUSE_CONFIG")
            .env(key, value)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), out).await.unwrap().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key}={value} is refused");
        assert!(err.to_lowercase().contains(says), "{key}={value}: the error names {says}: {err}");
        assert!(!data.exists(), "{key}={value}: refused before anything is created");
    }
    drop(taken);
}
