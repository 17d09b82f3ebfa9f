//! Refresh-token rotation survives lost answers (issue 13): the previous token presented
//! again within `tokens.refresh_reuse_grace_secs`, at least a second after its rotation and
//! before its successor was used, is a retry — a fresh pair, the unused successor retired.
//! Anything else is reuse and revokes the family as before.
//!
//! The in-process server runs on a manual clock that moves in whole seconds, so each retry
//! here first advances it by 2 s (a re-presentation sooner than 1 s is a concurrent use).
//! The kill -9 case runs the real binary on the real clock.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;
use crate::process::{BIN, Server};

const IW: &str = "iw@fabrikam.example";
const REUSED: &str = "the refresh token was already used; the session is revoked";

/// A fresh family for IW: its first refresh token and an access token of it.
async fn family(app: &TestApp, rp: &Rp) -> (String, String) {
    let (tokens, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    (tokens["refresh_token"].as_str().unwrap().to_string(), tokens["access_token"].as_str().unwrap().to_string())
}

/// A refresh that must succeed: the new refresh token and the whole answer.
async fn rotate(rp: &Rp, token: &str) -> (String, Value) {
    let (status, body) = rp.refresh(token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let next = body["refresh_token"].as_str().expect("a refresh token in the answer").to_string();
    assert_ne!(next, token, "the answer carries a new refresh token");
    (next, body)
}

/// A refresh that must be refused with invalid_grant; returns its description.
async fn refused(rp: &Rp, token: &str) -> String {
    let (status, body) = rp.refresh(token).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(body.get("access_token").is_none() && body.get("refresh_token").is_none(), "{body}");
    body["error_description"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_lost_answer_is_retried_once_for_a_fresh_pair_and_the_unused_successor_is_retired() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    // A -> B, and B's answer never reaches the client.
    let (b, _) = rotate(&rp, &a).await;

    app.clock.advance(2);
    let (c, retried) = rotate(&rp, &a).await;
    assert_ne!(c, b, "the retry gets a fresh refresh token, not the lost one");
    let claims = rp.verify(retried["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["aud"], "test-rp");
    let access_c = retried["access_token"].as_str().unwrap().to_string();
    assert_eq!(rp.userinfo(&access_c).await.status(), StatusCode::OK, "the retry's access token works");

    // The lost successor is retired: refused, and that alone revokes nothing.
    let before = app.snapshot_without_log().await;
    let why = refused(&rp, &b).await;
    assert_ne!(why, REUSED, "a retired successor is not reuse");
    assert_same(&before, &app.snapshot_without_log().await, "presenting the retired successor changes nothing");
    assert_eq!(rp.userinfo(&access_c).await.status(), StatusCode::OK, "the family lives on");

    // C rotates like any token.
    app.clock.advance(2);
    let (d, _) = rotate(&rp, &c).await;

    // The one retry is spent: A a third time is reuse, and the whole family goes.
    app.clock.advance(2);
    assert_eq!(refused(&rp, &a).await, REUSED);
    refused(&rp, &d).await;
    refused(&rp, &c).await;
    assert_eq!(rp.userinfo(&access_c).await.status(), StatusCode::UNAUTHORIZED, "its access tokens stop too");
}

#[tokio::test]
async fn the_one_retry_is_spent_even_before_its_answer_is_used() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    rotate(&rp, &a).await;
    app.clock.advance(2);
    let (c, _) = rotate(&rp, &a).await;
    app.clock.advance(2);
    assert_eq!(refused(&rp, &a).await, REUSED, "a second retry is reuse");
    refused(&rp, &c).await;
}

#[tokio::test]
async fn the_previous_token_after_its_successor_was_used_revokes_the_family() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    let (b, _) = rotate(&rp, &a).await;
    app.clock.advance(2);
    let (c, _) = rotate(&rp, &b).await;
    app.clock.advance(2);
    assert_eq!(refused(&rp, &a).await, REUSED, "the successor was used: no lost answer, theft");
    refused(&rp, &c).await;
}

#[tokio::test]
async fn the_retry_window_closes_after_the_grace_period() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    // The last second of the window still retries ...
    let (a, _) = family(&app, &rp).await;
    rotate(&rp, &a).await;
    app.clock.advance(30);
    let (c, _) = rotate(&rp, &a).await;
    rotate(&rp, &c).await;
    // ... one second later it is reuse.
    let (a, _) = family(&app, &rp).await;
    let (b, _) = rotate(&rp, &a).await;
    app.clock.advance(31);
    assert_eq!(refused(&rp, &a).await, REUSED);
    refused(&rp, &b).await;
}

#[tokio::test]
async fn no_grace_period_means_no_retry() {
    let app = spawn_with(|c| c.tokens.refresh_reuse_grace_secs = 0).await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    let (b, _) = rotate(&rp, &a).await;
    app.clock.advance(2);
    assert_eq!(refused(&rp, &a).await, REUSED);
    refused(&rp, &b).await;
}

/// Of concurrent uses exactly one gets tokens, the others invalid_grant, and the family is
/// revoked: copies racing each other are theft racing the owner, whatever the window says.
async fn exactly_one_answer_and_the_family_revoked(rp: &Rp, answers: &[(StatusCode, Value)]) {
    let won: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "exactly one answer with tokens: {answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::OK) {
        assert_eq!((*status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "{body}");
    }
    refused(rp, won[0]["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_presented_16_times_at_once_rotates_once_and_revokes_the_family() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    let answers = futures_util::future::join_all((0..16).map(|_| rp.refresh(&a))).await;
    exactly_one_answer_and_the_family_revoked(&rp, &answers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_token_presented_16_times_at_once_in_the_window_retries_once_and_revokes_the_family() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let (a, _) = family(&app, &rp).await;
    let (b, _) = rotate(&rp, &a).await;
    app.clock.advance(2);
    let answers = futures_util::future::join_all((0..16).map(|_| rp.refresh(&a))).await;
    exactly_one_answer_and_the_family_revoked(&rp, &answers).await;
    refused(&rp, &b).await;
}

/// The successor and the previous token presented at the same moment (inside the window):
/// one wins. If the successor's use came first, the retry is reuse and revokes what it got;
/// if the retry came first, the successor is retired and the retry's token lives on. Never
/// two live tokens. Repeated so that both orders are likely to occur.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_racing_its_successor_leaves_at_most_one_live_token() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    for round in 0..8 {
        let (a, _) = family(&app, &rp).await;
        let (b, _) = rotate(&rp, &a).await;
        app.clock.advance(2);
        let (by_b, by_a) = tokio::join!(rp.refresh(&b), rp.refresh(&a));
        let oks = [&by_b, &by_a].iter().filter(|(s, _)| *s == StatusCode::OK).count();
        assert_eq!(oks, 1, "round {round}: exactly one of the two gets tokens: {by_b:?} {by_a:?}");
        if by_a.0 == StatusCode::OK {
            // The retry won: the successor was retired (not reuse), the retry's token lives.
            assert_ne!(by_b.1["error_description"], REUSED, "round {round}: {by_b:?}");
            rotate(&rp, by_a.1["refresh_token"].as_str().unwrap()).await;
        } else {
            // The successor was used first: the previous token came back as theft.
            assert_eq!(by_a.1["error_description"], REUSED, "round {round}: {by_a:?}");
            refused(&rp, by_b.1["refresh_token"].as_str().unwrap()).await;
        }
    }
}

fn policy(json: Value) -> gatehouse::policy::Policy {
    serde_json::from_value(json).unwrap()
}

#[tokio::test]
async fn a_retry_passes_the_gate_like_a_rotation() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let tenant = app.tenant_id("fabrikam").await;
    let iw = app.user("fabrikam", IW).await.id;
    let (a, _) = family(&app, &rp).await;
    rotate(&rp, &a).await;
    app.clock.advance(2);

    // Conditional access now blocks: the retry is refused, and nothing changed (the retry
    // is not spent, the lost successor not retired).
    let block = json!({
        "id": "block-rp", "displayName": "Block test-rp", "state": "enabled",
        "conditions": {"users": {"includeUsers": [iw.to_string()]}, "applications": {"includeApplications": ["test-rp"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    });
    app.state.store.put_policy(&tenant, &policy(block)).await.unwrap();
    let before = app.snapshot_without_log().await;
    let why = refused(&rp, &a).await;
    assert!(why.contains("blocked by conditional access"), "{why}");
    assert_same(&before, &app.snapshot_without_log().await, "a blocked retry changes nothing");
    let log = app.state.store.signin_log(&tenant, 1).await.unwrap();
    assert_eq!(log[0].status.error.as_deref(), Some("access_blocked"), "logged as a refused sign-in");
    assert!(!log[0].is_interactive);

    // Once the policy is gone, the same retry goes through.
    assert!(app.state.store.delete_policy(&tenant, "block-rp").await.unwrap());
    let (c, _) = rotate(&rp, &a).await;

    // A disabled user's retry is refused and ends the grant, as a rotation would.
    let (a, _) = family(&app, &rp).await;
    rotate(&rp, &a).await;
    app.clock.advance(2);
    let admin = app.admin_token().await;
    let enabled = |on: bool| json!({"accountEnabled": on});
    let (status, _) = app.graph(Method::PATCH, &format!("users/{iw}"), Some(&admin), Some(enabled(false))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    refused(&rp, &a).await;
    let (status, _) = app.graph(Method::PATCH, &format!("users/{iw}"), Some(&admin), Some(enabled(true))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    refused(&rp, &a).await;
    refused(&rp, &c).await;
}

// ---- kill -9 under load: the real binary, the real clock ----

const CLIENTS: usize = 8;
const ROTATIONS: usize = 30;

/// `gatehouse serve --demo` on `dir` (as process.rs starts it), counting the retries it logs.
async fn start_counting(dir: &std::path::Path, retries: Arc<AtomicUsize>) -> Server {
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "--demo", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("GATEHOUSE__ARGON2__MEMORY_KIB", "1024")
        .env("GATEHOUSE__ARGON2__ITERATIONS", "1")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("gatehouse starts");
    // The log goes to stderr.
    let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = log.next_line().await {
            if line.contains("refresh retry") {
                retries.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
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
    let creds = serde_json::from_slice(&std::fs::read(dir.join("demo-credentials.json")).unwrap()).unwrap();
    Server { child, url, creds }
}

/// What the clients have done so far, seen live by the test (to time the kills).
#[derive(Default)]
struct Load {
    rotations: AtomicUsize,
    /// Clients whose last request got no answer and that have not had a 200 since.
    waiting: AtomicUsize,
    /// Requests that got no answer, over the whole run.
    lost: AtomicUsize,
    /// Clients that gave up (refused or past their deadline).
    stopped: AtomicUsize,
}

/// One refresh that may get no answer (the server died under it).
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

/// A client rotating its refresh token `ROTATIONS` times as an RP library would: a request
/// without an answer is repeated with the same token once its timeout (here 1.1 s) passed,
/// at whatever address the server now has. Returns its newest token, or why it stopped.
async fn client(i: usize, rp: Rp, base: Arc<RwLock<String>>, first: String, load: Arc<Load>) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(50);
    let mut token = first;
    let mut done = 0;
    let mut lost_since: Option<Instant> = None;
    while done < ROTATIONS {
        if Instant::now() > deadline {
            return Err(format!("client {i}: only {done} rotations before the deadline"));
        }
        let rp = Rp { base: base.read().unwrap().clone(), ..rp.clone() };
        match try_refresh(&rp, &token).await {
            Ok((StatusCode::OK, body)) => {
                token =
                    body["refresh_token"].as_str().ok_or_else(|| format!("client {i}: 200 without a token"))?.into();
                done += 1;
                load.rotations.fetch_add(1, Ordering::SeqCst);
                if lost_since.take().is_some() {
                    load.waiting.fetch_sub(1, Ordering::SeqCst);
                }
            }
            Ok((status, body)) => {
                let after = lost_since.map(|t| format!(", {:?} after an answer was lost", t.elapsed()));
                return Err(format!(
                    "client {i}: rotation {done} refused{}: {status} {body}",
                    after.unwrap_or_default()
                ));
            }
            Err(_) => {
                load.lost.fetch_add(1, Ordering::SeqCst);
                if lost_since.is_none() {
                    lost_since = Some(Instant::now());
                    load.waiting.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
        }
    }
    Ok(token)
}

/// Issue 13's measurement: 8 clients rotating, the server killed with SIGKILL and restarted
/// on the same data dir, twice. A rotation committed whose answer died with the server is
/// retried with the previous token and answered; no client is locked out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_refresh_load_locks_no_client_out() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let retries = Arc::new(AtomicUsize::new(0));
    let mut server = start_counting(dir.path(), retries.clone()).await;
    let rp_of = |server: &Server| {
        let rp = server.rp("fabrikam");
        // Long enough that only a dead server leaves a request unanswered.
        Rp {
            http: gatehouse::secrets::http_client_builder().unwrap().timeout(Duration::from_secs(20)).build().unwrap(),
            ..rp
        }
    };
    let rp = rp_of(&server);
    let password = server.password(IW);
    let mut firsts = Vec::new();
    for _ in 0..CLIENTS {
        let (tokens, _) = rp.sign_in(&Browser::new(&server.url), IW, &password, &[]).await;
        firsts.push(tokens["refresh_token"].as_str().unwrap().to_string());
    }

    let base = Arc::new(RwLock::new(server.url.clone()));
    let load = Arc::new(Load::default());
    let clients: Vec<_> = firsts
        .into_iter()
        .enumerate()
        .map(|(i, first)| {
            let (rp, base, load) = (rp.clone(), base.clone(), load.clone());
            tokio::spawn(async move {
                let outcome = client(i, rp, base, first, load.clone()).await;
                if outcome.is_err() {
                    load.stopped.fetch_add(1, Ordering::SeqCst);
                }
                outcome
            })
        })
        .collect();

    // Two kills at different moments of the load: the second only once every client that
    // lost an answer to the first has been answered again (its retry is spent by then).
    let total = CLIENTS * ROTATIONS;
    let mut at = 0;
    'kills: for (round, from) in [(1, total / 6), (2, total / 2)] {
        let target = from.max(at + total / 6) + rand::random_range(0..total / 8);
        let waited = Instant::now();
        while load.rotations.load(Ordering::SeqCst) < target || load.waiting.load(Ordering::SeqCst) > 0 {
            if load.stopped.load(Ordering::SeqCst) > 0 {
                break 'kills; // a client is locked out: reported below
            }
            assert!(waited.elapsed() < Duration::from_secs(30), "kill {round}: the load stalled before it");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        at = load.rotations.load(Ordering::SeqCst);
        server.kill().await;
        println!("kill {round} after {at} rotations ({:?})", started.elapsed());
        server = start_counting(dir.path(), retries.clone()).await;
        *base.write().unwrap() = server.url.clone();
    }

    let outcomes = tokio::time::timeout(Duration::from_secs(55), futures_util::future::join_all(clients))
        .await
        .expect("every client ends within its deadline");
    let mut failures = Vec::new();
    let mut newest = Vec::new();
    for outcome in outcomes {
        match outcome.unwrap() {
            Ok(token) => newest.push(token),
            Err(why) => failures.push(why),
        }
    }
    println!(
        "{} requests without an answer, {} retries of a lost answer, {:?}",
        load.lost.load(Ordering::SeqCst),
        retries.load(Ordering::SeqCst),
        started.elapsed()
    );
    assert!(failures.is_empty(), "clients locked out after kill -9:\n{}", failures.join("\n"));
    assert!(load.lost.load(Ordering::SeqCst) > 0, "the kills landed while requests were in flight");
    // No family was revoked: every client's newest token still rotates.
    let rp = Rp { base: server.url.clone(), ..rp };
    for (i, token) in newest.iter().enumerate() {
        let (status, body) = rp.refresh(token).await;
        assert_eq!(status, StatusCode::OK, "client {i}: its family was revoked: {body}");
    }
    server.kill().await;
    assert!(started.elapsed() < Duration::from_secs(60), "bounded: {:?}", started.elapsed());
}
