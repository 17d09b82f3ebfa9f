//! Mail that real mailboxes accept, delivered to a real SMTP server: `aiosmtpd` (pinned in
//! tests/rp/requirements.txt) runs tests/rp/smtp_sink.py on a free loopback port and writes
//! each message it receives — envelope, raw data and Python's own parse of it — to a
//! directory. The tests check the envelope and the headers, both parts, that the mailed link
//! and the mailed code work, and that a message queued while the SMTP server is down is
//! retried, survives a restart of gatehouse and is delivered once the server is up.
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::guests::accept;
use crate::helpers::*;

const LANDING: &str = "http://127.0.0.1:9/landing";
const FROM: &str = "noreply@fabrikam.example";
/// How long a test waits for something that takes well under a second when all is well.
const BOUND: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// A loopback port with nothing listening on it (the sink may take it later).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The SMTP sink: aiosmtpd as a subprocess, killed on drop.
struct Sink {
    _child: Child,
    dir: tempfile::TempDir,
}

impl Sink {
    async fn start(port: u16) -> Sink {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(BOUND, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.starts_with("smtp sink listening on") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            ready,
            Ok(true),
            "the SMTP sink did not start (install aiosmtpd: `pip install -r tests/rp/requirements.txt`, .ci/run does)"
        );
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Sink { _child: child, dir }
    }

    /// Every message received so far, in order.
    fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json") && !p.file_name().unwrap().to_string_lossy().starts_with('.')
            })
            .collect();
        names.sort();
        names.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Waits (bounded) for a message to `to` whose subject contains `subject`.
    async fn wait_for(&self, to: &str, subject: &str) -> Value {
        let found = tokio::time::timeout(BOUND, async {
            loop {
                if let Some(m) = self
                    .messages()
                    .into_iter()
                    .find(|m| m["rcpt_tos"] == json!([to]) && header(m, "Subject").contains(subject))
                {
                    return m;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no message to {to} about {subject:?} within {BOUND:?}: {:?}", self.messages()))
    }
}

/// The values of every header `name` (case-insensitive) of a received message.
fn headers(m: &Value, name: &str) -> Vec<String> {
    m["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
        .map(|h| h[1].as_str().unwrap().to_string())
        .collect()
}

/// The one header `name`, or "" when there is none.
fn header(m: &Value, name: &str) -> String {
    let all = headers(m, name);
    assert!(all.len() <= 1, "{name} appears {} times", all.len());
    all.into_iter().next().unwrap_or_default()
}

/// The decoded content of the part of type `ty`, with its lines ending in `\n` (SMTP carries
/// them as CRLF).
fn part(m: &Value, ty: &str) -> String {
    let parts: Vec<&Value> = m["parts"].as_array().unwrap().iter().filter(|p| p["content_type"] == ty).collect();
    assert_eq!(parts.len(), 1, "one {ty} part: {m}");
    parts[0]["content"].as_str().unwrap().replace("\r\n", "\n")
}

/// The headers every message carries: one `Message-ID` `<uuid@host>`, a `Date`, the tenant's
/// name on the configured address, `Auto-Submitted`, and text + HTML alternatives.
fn assert_well_formed(m: &Value, host: &str, tenant_name: &str) -> String {
    assert_eq!(m["mail_from"], FROM, "envelope sender");
    let id = header(m, "Message-ID");
    let inner =
        id.strip_prefix('<').and_then(|i| i.strip_suffix(&format!("@{host}>"))).unwrap_or_else(|| panic!("{id}"));
    assert!(uuid::Uuid::parse_str(inner).is_ok(), "Message-ID {id}");
    let date = header(m, "Date");
    assert!(chrono::DateTime::parse_from_rfc2822(&date).is_ok(), "Date {date:?}");
    assert_eq!(header(m, "From"), format!("{tenant_name} <{FROM}>"));
    assert_eq!(header(m, "Auto-Submitted"), "auto-generated");
    assert_eq!(m["content_type"], "multipart/alternative");
    id
}

fn host_of(url: &str) -> String {
    url::Url::parse(url).unwrap().host_str().unwrap().to_string()
}

fn smtp_to(port: u16) -> gatehouse::config::Smtp {
    gatehouse::config::Smtp {
        host: "127.0.0.1".into(),
        port,
        from: FROM.into(),
        starttls: false,
        retry_base_ms: 200,
        timeout_secs: 2,
        ..Default::default()
    }
}

/// The tenant's mail queue as the admin API shows it.
async fn mail_queue(base: &str, token: &str) -> Vec<Value> {
    let resp =
        plain_client().get(format!("{base}/graph/v1.0/admin/mailQueue")).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    body["value"].as_array().unwrap().clone()
}

/// Signs the admin in to `/fabrikam/admin` and returns the page.
async fn admin_page(browser: &Browser, password: &str) -> Page {
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let p = browser.follow(browser.submit(&login.form("identify").set("login", "admin@fabrikam.example")).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", password)).await).await;
    assert!(page.has("table#mail-queue"), "{}", page.body);
    page
}

#[tokio::test]
async fn a_mailed_invitation_and_a_mailed_code_arrive_well_formed_and_work() {
    let port = free_port();
    let sink = Sink::start(port).await;
    let app = spawn_with(|c| c.smtp = Some(smtp_to(port))).await;
    let host = host_of(&app.url);
    let tenant = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    let email = "pat@northwind.example";
    let token = app.admin_token().await;
    let body = json!({
        "invitedUserEmailAddress": email,
        "invitedUserDisplayName": "Pat <Northwind>",
        "inviteRedirectUrl": LANDING,
        "sendInvitationMessage": true,
        "invitedUserMessageInfo": { "customizedMessageBody": "Welcome <b>Pat</b> & team" },
    });
    let (status, inv) = app.graph(Method::POST, "invitations", Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let link = inv["inviteRedeemUrl"].as_str().unwrap().to_string();

    let m = sink.wait_for(email, "invited").await;
    assert_eq!(m["rcpt_tos"], json!([email]), "envelope recipient");
    let invitation_id = assert_well_formed(&m, &host, &tenant.display_name);
    assert_eq!(header(&m, "To"), email);
    assert_eq!(header(&m, "Subject"), format!("You're invited to {}", tenant.display_name));
    assert_eq!(header(&m, "Reply-To"), "", "an app invited: there is no one to reply to");
    let text = part(&m, "text/plain");
    assert!(text.contains(&format!("Accept the invitation: {link}\n")), "{text}");
    assert!(text.contains("Message: Welcome <b>Pat</b> & team"), "{text}");
    let html_body = part(&m, "text/html");
    assert!(!html_body.contains("<b>Pat</b>") && !html_body.contains("Pat <Northwind>"), "escaped: {html_body}");
    let html = scraper::Html::parse_document(&html_body);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    let a = html.select(&sel("a#redeem-link")).next().expect("the link in the HTML part");
    assert_eq!(a.value().attr("href"), Some(link.as_str()), "the same link in both parts");
    let quote: String = html.select(&sel("blockquote#message")).next().unwrap().text().collect();
    assert_eq!(quote, "Welcome <b>Pat</b> & team", "the message reads as written");
    let greeting: String = html.select(&sel("p")).next().unwrap().text().collect();
    assert!(greeting.contains("Pat <Northwind>"), "{greeting}");

    // The mailed link redeems; the code it leads to is mailed too, and works.
    let browser = app.browser();
    let page = browser.send_email_code(browser.follow_any(browser.get(&link).await).await).await;
    assert!(page.has("form#email-otp"), "{}", page.body);
    let c = sink.wait_for(email, "verification code").await;
    assert_ne!(assert_well_formed(&c, &host, &tenant.display_name), invitation_id, "each message its own id");
    let code_text = part(&c, "text/plain");
    let code: String = code_text
        .split_whitespace()
        .find(|w| w.trim_end_matches('.').len() == 8 && w.starts_with(|ch: char| ch.is_ascii_digit()))
        .unwrap()
        .trim_end_matches('.')
        .into();
    let code_html = scraper::Html::parse_document(&part(&c, "text/html"));
    let shown: String =
        code_html.select(&sel("strong#otp")).next().expect("the code in the HTML part").text().collect();
    assert_eq!(shown, code, "the same code in both parts");
    let consent =
        browser.follow_any(browser.post_abs(&page.url, &page.form("email-otp").set("code", &code)).await).await;
    assert!(consent.has("form#consent"), "{}", consent.body);
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));

    // The admin sees both as sent — and neither the link nor the code.
    let ticket = query_param(&link, "ticket").unwrap();
    // The sink has both; their outcome is written as soon as the server said 250.
    let queue = wait_for_queue(&app.url, &token, |q| q.len() == 2 && q.iter().all(|d| d["status"] == "sent")).await;
    let states: Vec<(&str, &str, u64)> = queue
        .iter()
        .map(|d| (d["kind"].as_str().unwrap(), d["status"].as_str().unwrap(), d["attempts"].as_u64().unwrap()))
        .collect();
    assert_eq!(states, [("oneTimeCode", "sent", 1), ("invitation", "sent", 1)], "newest first");
    let listed = serde_json::to_string(&queue).unwrap();
    assert!(!listed.contains(&ticket) && !listed.contains(&code), "no secret in the admin API: {listed}");
    let admin = admin_page(&app.browser(), &app.password("admin@fabrikam.example")).await;
    let rows = admin.html();
    let cells: Vec<String> = rows.select(&sel("table#mail-queue td.state")).map(|t| t.text().collect()).collect();
    assert_eq!(cells, ["sent", "sent"]);
    assert!(!admin.body.contains(&ticket) && !admin.body.contains(&code), "no secret on the admin page");
}

#[tokio::test]
async fn a_member_invitation_answers_to_the_inviter() {
    let port = free_port();
    let sink = Sink::start(port).await;
    let app = spawn_with(|c| c.smtp = Some(smtp_to(port))).await;
    let tenant = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap();
    let browser = app.browser();
    let start = browser.follow(browser.get("/fabrikam/invite").await).await;
    let login = "iw@fabrikam.example";
    let page = browser.follow(browser.submit(&start.form("identify").set("login", login)).await).await;
    let page = browser.follow(browser.submit(&page.form("password").set("password", &app.password(login))).await).await;
    let sent = browser
        .submit(
            &page.form("invite").set("email", "sally@contoso.example").set("display_name", "Sally").set("app", "foo"),
        )
        .await;
    let link = sent.attr("a#redeem-link", "href").expect("redeem link shown");
    let m = sink.wait_for("sally@contoso.example", "invited").await;
    assert_well_formed(&m, &host_of(&app.url), &tenant.display_name);
    let iw = app.user("fabrikam", login).await;
    assert_eq!(header(&m, "Reply-To"), format!("{} <{}>", iw.display_name, iw.mail));
    assert!(part(&m, "text/plain").contains(&link));
}

/// The real binary with SMTP at `port`, retrying fast.
async fn start_with_smtp(data_dir: &Path, port: u16) -> (Child, String) {
    let mut child = Command::new(crate::process::BIN)
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
        .env("GATEHOUSE__ARGON2__ITERATIONS", "1")
        .env("GATEHOUSE__SMTP__HOST", "127.0.0.1")
        .env("GATEHOUSE__SMTP__PORT", port.to_string())
        .env("GATEHOUSE__SMTP__FROM", FROM)
        .env("GATEHOUSE__SMTP__STARTTLS", "false")
        .env("GATEHOUSE__SMTP__RETRY_BASE_MS", "200")
        .env("GATEHOUSE__SMTP__TIMEOUT_SECS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("gatehouse starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(BOUND, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("gatehouse listening on ") {
                return url.to_string();
            }
        }
        panic!("gatehouse exited before listening");
    })
    .await
    .expect("listening in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

fn demo_creds(data_dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(data_dir.join("demo-credentials.json")).unwrap()).unwrap()
}

async fn app_token(base: &str, creds: &Value) -> String {
    let resp = plain_client()
        .post(format!("{base}/fabrikam/oauth2/v2.0/token"))
        .basic_auth(creds["admin"]["client_id"].as_str().unwrap(), creds["admin"]["client_secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("{body}")).to_string()
}

/// Waits (bounded) until the admin API shows the one message in a state `done` accepts.
async fn wait_for_state(base: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    wait_for_queue(base, token, |q| {
        assert_eq!(q.len(), 1, "{q:?}");
        done(&q[0])
    })
    .await
    .remove(0)
}

/// Waits (bounded) until the admin API shows a queue that `done` accepts.
async fn wait_for_queue(base: &str, token: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    tokio::time::timeout(BOUND, async {
        loop {
            let queue = mail_queue(base, token).await;
            if done(&queue) {
                return queue;
            }
            tokio::time::sleep(POLL).await;
        }
    })
    .await
    .expect("the queue reached the state in time")
}

#[tokio::test]
async fn mail_queued_while_smtp_is_down_is_retried_survives_a_restart_and_is_delivered() {
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let (first, url) = start_with_smtp(data.path(), port).await;
    let creds = demo_creds(data.path());
    let token = app_token(&url, &creds).await;
    let email = "pat@northwind.example";
    let resp = plain_client()
        .post(format!("{url}/graph/v1.0/invitations"))
        .bearer_auth(&token)
        .json(&json!({ "invitedUserEmailAddress": email, "inviteRedirectUrl": LANDING, "sendInvitationMessage": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED, "the invitation does not wait for SMTP");
    let inv: Value = resp.json().await.unwrap();
    let link = inv["inviteRedeemUrl"].as_str().unwrap().to_string();

    // Nothing listens on the port: the message is retrying, with its attempts counted.
    let retrying =
        wait_for_state(&url, &token, |d| d["status"] == "retrying" && d["attempts"].as_u64() >= Some(2)).await;
    let error = retrying["lastError"].as_str().unwrap();
    assert!(!error.is_empty() && !error.contains(&link), "{error}");
    assert_eq!(retrying["maxAttempts"], 8);
    let password = creds["users"].as_array().unwrap().iter().find(|u| u["login"] == "admin@fabrikam.example").unwrap()
        ["password"]
        .as_str()
        .unwrap()
        .to_string();
    let page = admin_page(&Browser::new(&url), &password).await;
    let html = page.html();
    let text =
        |css: &str| -> String { html.select(&scraper::Selector::parse(css).unwrap()).next().unwrap().text().collect() };
    assert!(["retrying", "sending"].contains(&text("table#mail-queue td.state").as_str()), "{}", page.body);
    assert!(text("table#mail-queue td.attempts").parse::<u32>().unwrap() >= 2);

    // gatehouse dies (no shutdown), the SMTP server comes up, gatehouse starts again.
    let mut first = first;
    first.kill().await.unwrap();
    first.wait().await.unwrap();
    let sink = Sink::start(port).await;
    let (_second, url) = start_with_smtp(data.path(), port).await;
    let m = sink.wait_for(email, "invited").await;
    assert!(part(&m, "text/plain").contains(&link), "the queued invitation, link and all");
    let token = app_token(&url, &creds).await;
    let sent = wait_for_state(&url, &token, |d| d["status"] == "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() > retrying["attempts"].as_u64().unwrap(), "{sent}");
    assert_eq!(sink.messages().len(), 1, "delivered once");
}

#[tokio::test]
async fn the_mail_queue_api_refuses_bad_queries_and_methods_and_changes_nothing() {
    let port = free_port();
    let sink = Sink::start(port).await;
    let app = spawn_with(|c| c.smtp = Some(smtp_to(port))).await;
    let token = app.admin_token().await;
    app.invite("pat@northwind.example", LANDING, None).await;
    sink.wait_for("pat@northwind.example", "invited").await;
    wait_for_state(&app.url, &token, |d| d["status"] == "sent").await;
    let before = app.snapshot().await;
    for (method, path, status, code) in [
        (Method::GET, "admin/mailQueue?$filter=body%20eq%20'x'", StatusCode::BAD_REQUEST, "BadRequest"),
        (Method::GET, "admin/mailQueue?$top=-1", StatusCode::BAD_REQUEST, "BadRequest"),
        (Method::POST, "admin/mailQueue", StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest"),
        (Method::DELETE, "admin/mailQueue", StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest"),
    ] {
        let (got, err) = app.graph(method.clone(), path, Some(&token), None).await;
        assert_graph_error(got, &err, status, code);
    }
    let (status, sent) =
        app.graph(Method::GET, "admin/mailQueue?$filter=status%20eq%20'sent'", Some(&token), None).await;
    assert_eq!((status, sent["value"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{sent}");
    assert_same(&before, &app.snapshot().await, "refused and read-only calls change nothing");
}

#[tokio::test]
async fn without_smtp_the_admin_page_says_mail_stays_in_the_outbox() {
    let app = spawn_app().await;
    app.invite("pat@northwind.example", LANDING, None).await;
    let page = admin_page(&app.browser(), &app.password("admin@fabrikam.example")).await;
    assert!(page.has("#mail-no-smtp"), "{}", page.body);
    assert!(!page.has("table#mail-queue tbody tr"), "nothing is queued without SMTP");
    assert!(app.state.store.outbox(10).await.unwrap().iter().any(|m| m.to == "pat@northwind.example"));
}

#[tokio::test]
async fn bad_smtp_settings_are_refused_with_their_name_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (key, value, named) in [
        ("GATEHOUSE__SMTP__MAX_ATTEMPTS", "0", "smtp.max_attempts"),
        ("GATEHOUSE__SMTP__RETRY_BASE_MS", "0", "smtp.retry_base_ms"),
        ("GATEHOUSE__SMTP__TIMEOUT_SECS", "0", "smtp.timeout_secs"),
        ("GATEHOUSE__SMTP__FROM", "not an address", "smtp.from"),
    ] {
        let out = Command::new(crate::process::BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("GATEHOUSE__SMTP__HOST", "127.0.0.1")
            .env("GATEHOUSE__SMTP__FROM", FROM)
            .env(key, value)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{key}={value} is refused");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{key}={value}: {err}");
        assert!(!data.exists(), "{key}={value}: nothing written");
    }
}
