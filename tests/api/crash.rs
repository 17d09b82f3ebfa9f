//! kill -9 in the middle of refresh chains and redemptions, then a restart on the same data
//! dir: nothing the server answered for is lost, and nothing spent can be spent again.
//!
//! The real binary runs as a process (see process.rs), so its store cannot be read: one-time
//! codes come from the demo outbox page and states from the Graph API.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use scraper::Selector;
use serde_json::Value;

use crate::helpers::*;
use crate::process::{Server, start};

const CHAINS: usize = 6;
const GUESTS: usize = 10;
const IW: &str = "iw@fabrikam.example";
const LANDING: &str = "http://127.0.0.1:9/landing";

fn timed_client(cookies: bool) -> reqwest::Client {
    gatehouse::secrets::http_client_builder()
        .unwrap()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A browser whose every request may fail (the server can die under it).
struct Agent {
    base: String,
    http: reqwest::Client,
}

impl Agent {
    fn new(base: &str) -> Self {
        Self { base: base.into(), http: timed_client(true) }
    }

    fn abs(&self, url: &str) -> String {
        if url.starts_with("http") { url.to_string() } else { format!("{}{url}", self.base) }
    }

    async fn page(resp: Result<reqwest::Response, reqwest::Error>) -> Result<Page, String> {
        let resp = resp.map_err(|e| format!("no answer: {e}"))?;
        let status = resp.status();
        let url = resp.url().to_string();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(String::from);
        let body = resp.text().await.map_err(|e| format!("answer cut: {e}"))?;
        Ok(Page { status, location, body, url })
    }

    async fn get(&self, url: &str) -> Result<Page, String> {
        Self::page(self.http.get(self.abs(url)).send().await).await
    }

    async fn submit(&self, form: &Form) -> Result<Page, String> {
        let body = serde_urlencoded::to_string(&form.fields).unwrap();
        let req = self
            .http
            .post(self.abs(&form.action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        Self::page(req.send().await).await
    }

    /// Follows redirects on this server (not to the RP).
    async fn follow(&self, mut page: Page) -> Result<Page, String> {
        for _ in 0..10 {
            match page.location.clone() {
                Some(loc) if page.status.is_redirection() && (loc.starts_with('/') || loc.starts_with(&self.base)) => {
                    page = self.get(&loc).await?;
                }
                _ => break,
            }
        }
        Ok(page)
    }
}

/// The newest one-time code mailed to `to`, read from the demo outbox (`/outbox`).
async fn outbox_otp(base: &str, to: &str) -> Result<String, String> {
    let page = Agent::new(base).get("/outbox").await?;
    let html = page.html();
    let (article, who, otp) = (
        Selector::parse("article.message").unwrap(),
        Selector::parse(".to").unwrap(),
        Selector::parse("code.otp").unwrap(),
    );
    html.select(&article)
        .filter(|a| a.select(&who).next().is_some_and(|t| t.text().collect::<String>().trim() == to))
        .find_map(|a| a.select(&otp).next().map(|c| c.text().collect::<String>().trim().to_string()))
        .ok_or_else(|| format!("no code for {to} in the outbox"))
}

#[derive(Debug, Clone, PartialEq)]
enum Redemption {
    /// The consent was answered with the redirect to inviteRedirectUrl.
    Redeemed,
    /// The server answered, but not with success (the page's error code or status).
    Refused(String),
    /// The server died before answering; `accept_sent` if the accept was in flight.
    Died { accept_sent: bool },
}

/// One redemption up to consent; returns the agent and the consent page, or how it ended.
async fn to_consent(base: &str, url: &str, email: &str) -> Result<(Agent, Page), Redemption> {
    let died = |_| Redemption::Died { accept_sent: false };
    let agent = Agent::new(base);
    let page = agent.follow(agent.get(url).await.map_err(died)?).await.map_err(died)?;
    if !page.has("form#email-otp-send") {
        return Err(Redemption::Refused(page.error_code().unwrap_or_else(|| page.status.to_string())));
    }
    pause().await;
    let page = agent.follow(agent.submit(&page.form("email-otp-send")).await.map_err(died)?).await.map_err(died)?;
    if !page.has("form#email-otp") {
        return Err(Redemption::Refused(page.error_code().unwrap_or_else(|| page.status.to_string())));
    }
    pause().await;
    let code = outbox_otp(base, email).await.map_err(died)?;
    let consent = agent
        .follow(agent.submit(&page.form("email-otp").set("code", &code)).await.map_err(died)?)
        .await
        .map_err(died)?;
    if !consent.has("form#consent") {
        return Err(Redemption::Refused(consent.error_code().unwrap_or_else(|| consent.status.to_string())));
    }
    Ok((agent, consent))
}

async fn accept(agent: &Agent, consent: &Page) -> Redemption {
    match agent.submit(&consent.form("consent").set("decision", "accept")).await {
        Err(_) => Redemption::Died { accept_sent: true },
        Ok(p) if p.status == StatusCode::SEE_OTHER && p.location.as_deref() == Some(LANDING) => Redemption::Redeemed,
        Ok(p) => Redemption::Refused(p.error_code().unwrap_or_else(|| p.status.to_string())),
    }
}

/// A person's pace between two pages, so that the kill lands in the middle of redemptions.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(rand::random_range(10..40))).await;
}

/// What the server has answered so far, seen live by the test (to kill only once work was done).
#[derive(Default)]
struct Progress {
    rotations: AtomicUsize,
    redemptions: AtomicUsize,
}

async fn redeem(base: String, url: String, email: String, progress: Arc<Progress>) -> Redemption {
    let outcome = match to_consent(&base, &url, &email).await {
        Ok((agent, consent)) => {
            pause().await;
            accept(&agent, &consent).await
        }
        Err(r) => r,
    };
    if outcome == Redemption::Redeemed {
        progress.redemptions.fetch_add(1, Ordering::SeqCst);
    }
    outcome
}

/// A refresh that may get no answer (Err) when the server dies under it.
async fn try_refresh(rp: &Rp, token: &str) -> Result<(StatusCode, Value), String> {
    let resp = rp
        .http
        .post(rp.endpoint("oauth2/v2.0/token"))
        .basic_auth(&rp.client_id, rp.secret.as_deref())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("grant_type", "refresh_token"), ("refresh_token", token)]).unwrap())
        .send()
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = resp.status();
    let body = resp.json::<Value>().await.map_err(|e| format!("answer cut: {e}"))?;
    Ok((status, body))
}

#[derive(Debug, Default)]
struct Chain {
    /// Every refresh token the server handed out in a 200, oldest first.
    accepted: Vec<String>,
    /// The last refresh got no answer: the server may or may not have rotated its token.
    in_flight: bool,
    /// A refusal while the server was up (never expected).
    refused: Option<String>,
}

/// Refreshes the newest token again and again until the server stops answering.
async fn refresh_chain(rp: Rp, first: String, progress: Arc<Progress>) -> Chain {
    let mut chain = Chain { accepted: vec![first], ..Default::default() };
    loop {
        let current = chain.accepted.last().unwrap().clone();
        match try_refresh(&rp, &current).await {
            Ok((StatusCode::OK, body)) => match body["refresh_token"].as_str() {
                Some(next) => {
                    chain.accepted.push(next.to_string());
                    progress.rotations.fetch_add(1, Ordering::SeqCst);
                }
                None => {
                    chain.refused = Some(format!("200 without a refresh token: {body}"));
                    return chain;
                }
            },
            Ok((status, body)) => {
                chain.refused = Some(format!("{status} {body}"));
                return chain;
            }
            Err(_) => {
                chain.in_flight = true;
                return chain;
            }
        }
    }
}

async fn admin_token(server: &Server) -> String {
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

async fn graph(server: &Server, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = timed_client(false).request(method, format!("{}/graph/v1.0/{path}", server.url)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// How many refresh-token reuses the server has logged (each names an already-spent token).
async fn reuses_logged(server: &Server, token: &str) -> usize {
    let filter = url::form_urlencoded::byte_serialize(b"status/errorCode eq 70008").collect::<String>();
    let (status, log) =
        graph(server, token, Method::GET, &format!("auditLogs/signIns?$top=999&$filter={filter}"), None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"]["failureReason"].as_str().is_some_and(|r| r.contains("reuse")))
        .count()
}

async fn guest_state(server: &Server, token: &str, email: &str) -> String {
    let (status, user) = graph(server, token, Method::GET, &format!("users/{email}"), None).await;
    assert_eq!(status, StatusCode::OK, "{email}: {user}");
    user["externalUserState"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_refreshes_and_redemptions_loses_nothing_and_spends_nothing_twice() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let old_base = server.url.clone();

    // N refresh tokens from real sign-ins, M email-code invitations through Graph.
    let password = server.password(IW);
    let mut firsts = Vec::new();
    for _ in 0..CHAINS {
        let (tokens, _) = server.rp("fabrikam").sign_in(&Browser::new(&server.url), IW, &password, &[]).await;
        firsts.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }
    let token = admin_token(&server).await;
    let mut guests = Vec::new();
    for i in 0..GUESTS {
        let email = format!("g{i}@northwind.example");
        let body = serde_json::json!({
            "invitedUserEmailAddress": email, "inviteRedirectUrl": LANDING, "sendInvitationMessage": true,
        });
        let (status, inv) = graph(&server, &token, Method::POST, "invitations", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{inv}");
        guests.push((email, inv["inviteRedeemUrl"].as_str().unwrap().to_string()));
    }

    // Everything at once; kill -9 a short random delay after the first rotation and the first
    // redemption were answered (so the test always has spent state to check after the restart).
    let progress = Arc::new(Progress::default());
    let rp = Rp { http: timed_client(false), ..server.rp("fabrikam") };
    let chains: Vec<_> =
        firsts.into_iter().map(|t| tokio::spawn(refresh_chain(rp.clone(), t, progress.clone()))).collect();
    let redemptions: Vec<_> = guests
        .iter()
        .enumerate()
        .map(|(i, (email, url))| {
            let (base, url, email, progress) = (server.url.clone(), url.clone(), email.clone(), progress.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30 * i as u64)).await;
                redeem(base, url, email, progress).await
            })
        })
        .collect();
    for _ in 0..600 {
        if progress.rotations.load(Ordering::SeqCst) > 0 && progress.redemptions.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delay = rand::random_range(0..200);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.kill().await;
    let chains: Vec<Chain> = tokio::time::timeout(Duration::from_secs(30), futures_util::future::join_all(chains))
        .await
        .expect("refresh chains end once the server is gone")
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let outcomes: Vec<Redemption> =
        tokio::time::timeout(Duration::from_secs(30), futures_util::future::join_all(redemptions))
            .await
            .expect("redemptions end once the server is gone")
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let rotations: usize = chains.iter().map(|c| c.accepted.len() - 1).sum();
    println!("killed {delay} ms after the first answers: {rotations} rotations answered; redemptions {outcomes:?}");
    assert!(rotations > 0, "at least one refresh rotation was answered before the kill");
    assert!(outcomes.contains(&Redemption::Redeemed), "at least one redemption was answered before the kill");
    for (i, c) in chains.iter().enumerate() {
        assert!(c.refused.is_none(), "chain {i}: a live token was refused before the kill: {:?}", c.refused);
    }
    for ((email, _), o) in guests.iter().zip(&outcomes) {
        assert!(!matches!(o, Redemption::Refused(_)), "{email}: refused before the kill: {o:?}");
    }

    // Restart on the same data dir (another port: links are rebased).
    let again = start(dir.path()).await;
    let rp = again.rp("fabrikam");
    let token = admin_token(&again).await;
    let mut failures = Vec::new();

    // (a) The newest accepted token of every chain still works; every earlier one is refused.
    for (i, chain) in chains.iter().enumerate() {
        let last = chain.accepted.last().unwrap();
        let reuses = reuses_logged(&again, &token).await;
        let (status, body) = rp.refresh(last).await;
        println!(
            "chain {i}: {} tokens answered, request in flight at the kill: {}, newest answered token now: {status}",
            chain.accepted.len(),
            chain.in_flight
        );
        let successor = if status == StatusCode::OK {
            body["refresh_token"].as_str().map(String::from)
        } else {
            // Only legitimate if the unanswered request spent it before the kill: then the
            // server knows it as already used (a logged reuse), not as unknown.
            let known_spent = reuses_logged(&again, &token).await > reuses;
            if !(chain.in_flight && known_spent && body["error"] == "invalid_grant") {
                failures.push(format!(
                    "chain {i}: the last token answered in a 200 (#{} of the chain) was lost: {status} {body} \
                     (request in flight at the kill: {}, known as spent: {known_spent})",
                    chain.accepted.len() - 1,
                    chain.in_flight
                ));
            }
            None
        };
        for (k, spent) in chain.accepted[..chain.accepted.len() - 1].iter().enumerate() {
            let (status, body) = rp.refresh(spent).await;
            if (status, body["error"].as_str()) != (StatusCode::BAD_REQUEST, Some("invalid_grant")) {
                failures.push(format!("chain {i}: spent token #{k} was accepted again after the restart: {status}"));
            }
        }
        // Documented: presenting a spent token revoked the family, successor included.
        if let Some(s) = successor
            && chain.accepted.len() > 1
        {
            let (status, _) = rp.refresh(&s).await;
            if status == StatusCode::OK {
                failures.push(format!("chain {i}: the family survived the reuse of a spent token"));
            }
        }
    }

    // (b) Every redemption answered with its redirect is Accepted; no ticket redeems twice.
    for ((email, url), before) in guests.iter().zip(&outcomes) {
        let url = url.replacen(&old_base, &again.url, 1);
        if *before == Redemption::Redeemed {
            let state = guest_state(&again, &token, email).await;
            if state != "Accepted" {
                failures.push(format!("{email}: redeemed before the kill but {state:?} after the restart"));
            }
            let page = Agent::new(&again.url).get(&url).await.unwrap();
            if (page.status, page.error_code().as_deref()) != (StatusCode::GONE, Some("ticket_redeemed")) {
                failures.push(format!("{email}: the redeemed ticket answers {} {:?}", page.status, page.error_code()));
            }
        }
        // Two browsers race for the ticket: at most one wins, none if it was already used.
        // (They reach consent one after the other: each needs the newest code in the outbox.)
        let a = to_consent(&again.url, &url, email).await;
        let b = to_consent(&again.url, &url, email).await;
        let mut ready = Vec::new();
        let mut redeemed_pages = 0;
        for r in [a, b] {
            match r {
                Ok(pair) => ready.push(pair),
                Err(Redemption::Refused(code)) if code == "ticket_redeemed" => redeemed_pages += 1,
                Err(other) => failures.push(format!("{email}: after the restart: {other:?}")),
            }
        }
        let results = futures_util::future::join_all(ready.iter().map(|(agent, page)| accept(agent, page))).await;
        let wins = results.iter().filter(|r| **r == Redemption::Redeemed).count();
        let losses = results.iter().filter(|r| matches!(r, Redemption::Refused(c) if c == "ticket_redeemed")).count();
        let expected_wins = match before {
            Redemption::Redeemed => 0,
            Redemption::Died { accept_sent: true } => usize::from(redeemed_pages == 0),
            _ => 1,
        };
        if wins != expected_wins || wins + losses != results.len() {
            failures.push(format!(
                "{email}: before the kill {before:?}; after: {wins} wins, {losses} ticket_redeemed of {} accepts \
                 ({redeemed_pages} ticket_redeemed pages), expected {expected_wins} win",
                results.len()
            ));
        }
        let state = guest_state(&again, &token, email).await;
        if state != "Accepted" {
            failures.push(format!("{email}: {state:?} after every redemption attempt"));
        }
    }
    again.kill().await;
    println!("crash test took {:?}", started.elapsed());
    assert!(failures.is_empty(), "after kill -9 and restart:\n{}", failures.join("\n"));
}
