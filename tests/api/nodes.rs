//! The kit of the multi-node tests (issue 13): gatehouse nodes as real processes on one
//! PostgreSQL database, Debian's haproxy in front of them with the repository's
//! `deploy/haproxy.cfg`, a PostgreSQL cluster of a test's own (to stop under load), and
//! clients whose every request may fail (a node can die under them).
//!
//! Nodes run the binary like process.rs does; their stderr goes to `node.log` in their data
//! dir, and its tail is printed when a test fails.
#![allow(dead_code)]

use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use scraper::Selector;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;
use crate::process::{BIN, Server};

pub const HAPROXY: &str = "/usr/sbin/haproxy";
pub const IW: &str = "iw@fabrikam.example";
pub const ADMIN: &str = "admin@fabrikam.example";

/// A test that cannot run here says why, unless CI requires it to run
/// (`GATEHOUSE_TEST_REQUIRE_DATABASE=1`): then it fails.
pub fn skip(why: &str) {
    if std::env::var("GATEHOUSE_TEST_REQUIRE_DATABASE").as_deref() == Ok("1") {
        panic!("{why}, and GATEHOUSE_TEST_REQUIRE_DATABASE=1 requires this test to run");
    }
    println!("skipped: {why}");
}

/// A fresh database on the test cluster, or `None` (and the test skips) without one.
pub async fn database_or_skip() -> Option<String> {
    if std::env::var("GATEHOUSE_TEST_DATABASE_URL").map(|u| u.is_empty()).unwrap_or(true) {
        skip("no PostgreSQL test cluster");
        return None;
    }
    fresh_database().await
}

/// A port that was free a moment ago (bound and released): nodes behind the balancer
/// need ports known in advance, and a restarted node takes its old one again.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client with a bound on every request, so that no load loop can hang on a dead node.
pub fn timed_client(cookies: bool) -> reqwest::Client {
    gatehouse::secrets::http_client_builder()
        .unwrap()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What every node of one deployment shares: the database, the key-encryption key, and the
/// balancer's address as `public_url` (a token one node issued is checked by another).
#[derive(Clone)]
pub struct Deployment {
    pub lb_port: u16,
    pub public_url: String,
    pub kek: String,
    env: Vec<(String, String)>,
}

impl Deployment {
    pub fn new(database_url: &str) -> Self {
        let lb_port = free_port();
        let public_url = format!("http://127.0.0.1:{lb_port}");
        let kek = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let env = [
            ("GATEHOUSE__DATABASE_URL", database_url),
            ("GATEHOUSE__KEY_ENCRYPTION_KEY", kek.as_str()),
            ("GATEHOUSE__PUBLIC_URL", public_url.as_str()),
            ("GATEHOUSE__TRUSTED_PROXIES", r#"["127.0.0.1/32"]"#),
            ("GATEHOUSE__ARGON2__MEMORY_KIB", "1024"),
            ("GATEHOUSE__ARGON2__ITERATIONS", "1"),
        ];
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Self { lb_port, public_url, kek, env }
    }

    /// One more setting for every node (and CLI run) of this deployment.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The issuer of tokens from any node (the balancer's URL).
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}/v2.0", self.public_url)
    }

    /// A new node with its own data dir on a port of its own.
    pub async fn node(&self, name: &str) -> Node {
        let stopped =
            Stopped { name: name.into(), port: free_port(), dir: tempfile::tempdir().unwrap(), env: self.env.clone() };
        stopped.start().await
    }

    /// Two new nodes started at the same moment (they seed the demo once between them).
    pub async fn pair(&self) -> (Node, Node) {
        let (a, b) = futures_util::future::join(self.node("a"), self.node("b")).await;
        assert_eq!(a.creds["users"], b.creds["users"], "both nodes know the one seeded demo");
        assert_eq!(a.creds["admin"], b.creds["admin"]);
        (a, b)
    }

    /// Runs the CLI with this deployment's environment.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).envs(self.env.iter().map(|(k, v)| (k, v)));
        tokio::time::timeout(Duration::from_secs(60), cmd.output()).await.expect("the CLI ends within 60 s").unwrap()
    }
}

/// A node that is not running (killed, or not started yet): its port and data dir stay.
pub struct Stopped {
    pub name: String,
    pub port: u16,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

/// A running node. Derefs to process.rs's `Server` (`url` is the node's own address).
pub struct Node {
    /// First: fields drop in order, and the log must be read before the data dir goes.
    _log: LogTail,
    pub name: String,
    pub port: u16,
    pub server: Server,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl std::ops::Deref for Node {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

impl Stopped {
    /// Starts the node (again) on its port and data dir; returns once it listens.
    pub async fn start(self) -> Node {
        let Stopped { name, port, dir, env } = self;
        let log_path = dir.path().join("node.log");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut child = Command::new(BIN)
            .args(["serve", "--demo", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("gatehouse starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let tail = LogTail { name: name.clone(), path: log_path };
        let listening = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("gatehouse listening on ") {
                    return true;
                }
            }
            false
        })
        .await;
        if listening != Ok(true) {
            panic!("node {name} did not start ({listening:?}):\n{}", tail.tail(40));
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let creds: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("demo-credentials.json")).unwrap()).unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let server = Server { child, url, creds };
        Node { _log: tail, name, port, server, dir, env }
    }
}

impl Node {
    /// kill -9: nothing is flushed or closed; the port and data dir stay for a restart.
    pub async fn kill9(self) -> Stopped {
        let Node { _log, name, port, server, dir, env } = self;
        server.kill().await;
        Stopped { name, port, dir, env }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// test-rp of `tenant` at this node, with a bounded client.
    pub fn rp_timed(&self, tenant: &str) -> Rp {
        Rp { http: timed_client(false), ..self.rp(tenant) }
    }

    /// An app-only token for the Graph API from this node (the demo's admin client).
    pub async fn admin_token(&self) -> String {
        admin_token(&self.server).await
    }

    pub async fn graph(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        graph(&self.url, token, method, path, body).await
    }
}

/// Prints the tail of a node's log when the test fails (the node's own view of it).
struct LogTail {
    name: String,
    path: PathBuf,
}

impl LogTail {
    fn tail(&self, n: usize) -> String {
        let Ok(mut f) = std::fs::File::open(&self.path) else { return String::new() };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(std::io::SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let lines: Vec<String> = std::io::BufReader::new(f).lines().map_while(Result::ok).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for LogTail {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- node {} log (tail) ----\n{}", self.name, self.tail(30));
        }
    }
}

pub async fn admin_token(server: &Server) -> String {
    let admin = &server.creds["admin"];
    let rp = Rp {
        client_id: admin["client_id"].as_str().unwrap().into(),
        secret: Some(admin["client_secret"].as_str().unwrap().into()),
        ..server.rp("fabrikam")
    };
    let (status, body) = rp.token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

pub async fn graph(base: &str, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = timed_client(false).request(method, format!("{base}/graph/v1.0/{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The sign-in log of fabrikam as the Graph API shows it (newest first).
pub async fn signins(base: &str, token: &str) -> Vec<Value> {
    let (status, log) = graph(base, token, Method::GET, "auditLogs/signIns?$top=999", None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["value"].as_array().unwrap().clone()
}

/// How many sign-in log entries of `upn` carry `error_code`.
pub async fn signins_with(base: &str, token: &str, upn: &str, error_code: u64) -> usize {
    signins(base, token)
        .await
        .iter()
        .filter(|e| e["userPrincipalName"] == upn && e["status"]["errorCode"] == error_code)
        .count()
}

/// Debian's haproxy with `deploy/haproxy.cfg` in front of two nodes.
pub struct Balancer {
    pub url: String,
    child: Child,
}

impl Balancer {
    /// `None` (and the test skips) when haproxy is not installed.
    pub async fn start(d: &Deployment, a_port: u16, b_port: u16) -> Option<Balancer> {
        if !Path::new(HAPROXY).exists() {
            skip("no haproxy at /usr/sbin/haproxy");
            return None;
        }
        let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let child = Command::new(HAPROXY)
            .arg("-f")
            .arg(&cfg)
            .arg("-db")
            .env("GATEHOUSE_LB_PORT", d.lb_port.to_string())
            .env("GATEHOUSE_NODE_A", format!("127.0.0.1:{a_port}"))
            .env("GATEHOUSE_NODE_B", format!("127.0.0.1:{b_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("haproxy starts");
        let lb = Balancer { url: d.public_url.clone(), child };
        let http = timed_client(false);
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{}/health/ready", lb.url)).send().await
                && r.status() == StatusCode::OK
            {
                return Some(lb);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("haproxy did not answer on {} within 10 s", lb.url);
    }
}

/// A PostgreSQL cluster of one test's own (a test that stops the database must never stop
/// the shared one), started by `.ci/pg start DIR` (Debian's binaries, the `postgres` user
/// when we are root, trust on 127.0.0.1, its layout: `DIR/data`, `DIR/bin`, `DIR/port`);
/// stopped and removed when dropped.
pub struct OwnCluster {
    pub url: String,
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// A command run as the cluster's owner, as `.ci/pg` does: the `postgres` user when we are
/// root (the server refuses root), from `/` (it need not read our working directory).
fn as_owner(program: &Path) -> std::process::Command {
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    };
    cmd.current_dir("/");
    cmd
}

fn run_ok(mut cmd: std::process::Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what}: {said}");
}

const PG_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/pg");

impl OwnCluster {
    /// Blocks while the cluster starts (call it from `spawn_blocking`).
    pub fn start() -> OwnCluster {
        // Under /tmp: the postgres user must be able to reach it.
        let dir = tempfile::Builder::new().prefix("gh-own-pg").tempdir_in("/tmp").unwrap();
        let out = std::process::Command::new(PG_SCRIPT).arg("start").arg(dir.path()).output().unwrap();
        assert!(out.status.success(), ".ci/pg start: {}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap().trim().to_string();
        let (bin, port) = (PathBuf::from(read("bin")), read("port").parse().unwrap());
        OwnCluster { url, port, bin, dir }
    }

    /// `pg_ctl stop -m immediate`: the server dies at once, open transactions are lost and
    /// every connection is cut (a crash, as far as clients can tell).
    pub fn stop_immediate(&self) {
        let mut stop = as_owner(&self.bin.join("pg_ctl"));
        stop.arg("-D").arg(self.dir.path().join("data")).args(["-m", "immediate", "-w", "-t", "30", "stop"]);
        run_ok(stop, "pg_ctl stop -m immediate");
    }

    /// Starts the server again on its port (crash recovery replays the WAL).
    pub fn start_again(&self) {
        let mut start = as_owner(&self.bin.join("pg_ctl"));
        start.arg("-D").arg(self.dir.path().join("data")).arg("-l").arg(self.dir.path().join("server.log")).args([
            "-w",
            "-t",
            "60",
            "-o",
            &format!("-p {}", self.port),
            "start",
        ]);
        run_ok(start, "pg_ctl start");
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = std::process::Command::new(PG_SCRIPT).arg("stop").arg(self.dir.path()).output();
    }
}

// ---------- clients whose every request may fail ----------

/// A browser for load through a balancer or onto a node that may die: every request is
/// bounded and its failure is an `Err`, never a panic.
pub struct Agent {
    pub base: String,
    pub http: reqwest::Client,
}

/// How one attempt of a client ended.
#[derive(Debug)]
pub enum Outcome<T> {
    Done(T),
    /// No answer (a connection error, a timeout) or a 5xx: the client may try again.
    Lost(String),
    /// The server answered and refused: never expected in these tests.
    Refused(String),
}

impl Agent {
    pub fn new(base: &str) -> Self {
        Self { base: base.into(), http: timed_client(true) }
    }

    fn abs(&self, page_url: &str, url: &str) -> String {
        match url::Url::parse(page_url) {
            Ok(base) => base.join(url).map(|u| u.to_string()).unwrap_or_else(|_| url.to_string()),
            Err(_) => format!("{}{url}", self.base),
        }
    }

    async fn page(resp: Result<reqwest::Response, reqwest::Error>) -> Result<Page, String> {
        let resp = resp.map_err(|e| format!("no answer: {e}"))?;
        let status = resp.status();
        let url = resp.url().to_string();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from);
        let body = resp.text().await.map_err(|e| format!("answer cut: {e}"))?;
        if status.is_server_error() {
            return Err(format!("{status}: {}", body.chars().take(200).collect::<String>()));
        }
        Ok(Page { status, location, body, url })
    }

    pub async fn get(&self, url: &str) -> Result<Page, String> {
        Self::page(self.http.get(self.abs(&self.base, url)).send().await).await
    }

    /// Submits a form whose action is relative to the page it came from.
    pub async fn submit(&self, page: &Page, form: &Form) -> Result<Page, String> {
        let req = self
            .http
            .post(self.abs(&page.url, &form.action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form.fields).unwrap());
        Self::page(req.send().await).await
    }

    /// Follows redirects that stay on gatehouse (relative, or under `base`).
    pub async fn follow(&self, mut page: Page) -> Result<Page, String> {
        for _ in 0..10 {
            match page.location.clone() {
                Some(loc) if page.status.is_redirection() && (loc.starts_with('/') || loc.starts_with(&self.base)) => {
                    let next = self.abs(&page.url, &loc);
                    page = Self::page(self.http.get(next).send().await).await?;
                }
                _ => break,
            }
        }
        Ok(page)
    }

    /// A whole member sign-in of `rp` (authorize, identify, password, code exchange).
    pub async fn sign_in(&self, rp: &Rp, login: &str, password: &str) -> Outcome<Value> {
        let start = rp.authorize_url(&[]);
        let lost = Outcome::Lost;
        let page = match self.get(&start.url).await {
            Ok(p) => p,
            Err(e) => return lost(e),
        };
        let page = match self.follow(page).await {
            Ok(p) if p.has("form#identify") => p,
            Ok(p) => return Outcome::Refused(format!("no identify form: {} {}", p.status, p.body)),
            Err(e) => return lost(e),
        };
        let page = match self.submit(&page, &page.form("identify").set("login", login)).await {
            Ok(p) => p,
            Err(e) => return lost(e),
        };
        let page = match self.follow(page).await {
            Ok(p) if p.has("form#password") => p,
            Ok(p) => return Outcome::Refused(format!("no password form: {} {}", p.status, p.body)),
            Err(e) => return lost(e),
        };
        let done = match self.submit(&page, &page.form("password").set("password", password)).await {
            Ok(p) => p,
            Err(e) => return lost(e),
        };
        let Some(code) =
            done.location.as_deref().filter(|l| l.starts_with(&rp.redirect_uri)).and_then(|l| query_param(l, "code"))
        else {
            return Outcome::Refused(format!(
                "no redirect to the RP: {} {:?} {}",
                done.status, done.location, done.body
            ));
        };
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", rp.redirect_uri.as_str()),
            ("code_verifier", start.verifier.as_str()),
        ];
        match try_token(rp, &fields).await {
            Ok((StatusCode::OK, body)) => Outcome::Done(body),
            Ok((status, body)) if status.is_server_error() => lost(format!("{status} {body}")),
            Ok((status, body)) => Outcome::Refused(format!("exchange: {status} {body}")),
            Err(e) => lost(e),
        }
    }
}

/// A token request (client_secret_basic) that may get no answer.
pub async fn try_token(rp: &Rp, fields: &[(&str, &str)]) -> Result<(StatusCode, Value), String> {
    let resp = rp
        .http
        .post(rp.endpoint("oauth2/v2.0/token"))
        .basic_auth(&rp.client_id, rp.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(fields).unwrap())
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| format!("answer cut: {e}"))?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

pub async fn try_refresh(rp: &Rp, token: &str) -> Result<(StatusCode, Value), String> {
    try_token(rp, &[("grant_type", "refresh_token"), ("refresh_token", token)]).await
}

/// The newest one-time code mailed to `to`, from the demo outbox page of `base`.
pub async fn outbox_otp(base: &str, to: &str) -> String {
    let page = Browser::new(base).get("/outbox").await;
    let html = page.html();
    let (article, who, otp) = (
        Selector::parse("article.message").unwrap(),
        Selector::parse(".to").unwrap(),
        Selector::parse("code.otp").unwrap(),
    );
    html.select(&article)
        .filter(|a| a.select(&who).next().is_some_and(|t| t.text().collect::<String>().trim() == to))
        .find_map(|a| a.select(&otp).next().map(|c| c.text().collect::<String>().trim().to_string()))
        .unwrap_or_else(|| panic!("no code for {to} in the outbox of {base}"))
}

/// An email one-time-code guest's redemption on `base` up to the consent page.
pub async fn redeem_to_consent(browser: &Browser, redeem_url: &str, email: &str) -> Page {
    let page = browser.follow(browser.get(redeem_url).await).await;
    assert!(page.has("form#email-otp-send"), "{} {}:\n{}", page.status, page.url, page.body);
    let page = browser.follow(browser.post_abs(&page.url, &page.form("email-otp-send")).await).await;
    assert!(page.has("form#email-otp"), "{} {}:\n{}", page.status, page.url, page.body);
    let code = outbox_otp(&browser.base, email).await;
    let consent = browser.follow(browser.post_abs(&page.url, &page.form("email-otp").set("code", &code)).await).await;
    assert!(consent.has("form#consent"), "{} {}:\n{}", consent.status, consent.url, consent.body);
    consent
}

/// A member's browser on `node` at the password step (its own sign-in transaction).
pub async fn at_password(rp: &Rp, b: &Browser, login: &str) -> Page {
    let p = b.follow(b.get(&rp.authorize_url(&[]).url).await).await;
    assert!(p.has("form#identify"), "{}", p.body);
    let p = b.follow(b.post_abs(&p.url, &p.form("identify").set("login", login)).await).await;
    assert!(p.has("form#password"), "{}", p.body);
    p
}

/// The kids a node's JWKS publishes for fabrikam.
pub async fn kids(rp: &Rp) -> Vec<String> {
    rp.jwks().await.keys.iter().filter_map(|k| k.common.key_id.clone()).collect()
}

pub fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}
