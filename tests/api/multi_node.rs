//! Issue 13, several nodes: two gatehouse processes on one PostgreSQL database, requests
//! alternating between them (directly, or through Debian's haproxy with
//! `deploy/haproxy.cfg`). Every single-winner decision holds across nodes, a lockout holds
//! across nodes, changes reach the other node's caches, a node killed under load loses
//! nothing, and the database going away is a clear 503, not a hang.
//!
//! Without `GATEHOUSE_TEST_DATABASE_URL` every test prints "skipped: …" and passes, unless
//! `GATEHOUSE_TEST_REQUIRE_DATABASE=1` (CI), which makes it fail instead.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::guests::LANDING;
use crate::helpers::*;
use crate::nodes::*;

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_string()
}

fn is_invalid_grant(answer: &(StatusCode, Value)) -> bool {
    answer.0 == StatusCode::BAD_REQUEST && answer.1["error"] == "invalid_grant"
}

async fn introspect(rp: &Rp, token: &str) -> Value {
    let (status, body) = rp.post_authenticated("oauth2/v2.0/introspect", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

// ---------- 1. one code, two nodes ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_from_node_a_is_exchanged_once_on_b_and_its_replay_on_a_revokes_on_both() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let (a, b) = d.pair().await;
    let (rp_a, rp_b) = (a.rp("fabrikam"), b.rp("fabrikam"));
    let start = rp_a.authorize_url(&[]);
    let done = Browser::new(&a.url).sign_in(&start.url, IW, &a.password(IW)).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    let code = query_param(&done.location.unwrap(), "code").expect("code");

    let (status, tokens) = rp_b.exchange(&code, &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "the code node A issued is exchanged on node B: {tokens}");
    let (access, refresh) = (s(&tokens, "access_token"), s(&tokens, "refresh_token"));
    for rp in [&rp_a, &rp_b] {
        let claims = rp.verify_from(&s(&tokens, "id_token"), "JWT", &d.issuer("fabrikam")).await;
        assert_eq!(claims["nonce"], start.nonce.as_str());
        assert_eq!(rp.userinfo(&access).await.status(), StatusCode::OK, "the access token works at {}", rp.base);
        assert_eq!(introspect(rp, &refresh).await["active"], true);
    }

    let (status, body) = rp_a.exchange(&code, &start.verifier).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    for (rp, node) in [(&rp_a, "A"), (&rp_b, "B")] {
        let (status, body) = rp.refresh(&refresh).await;
        assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        assert_eq!(
            rp.userinfo(&access).await.status(),
            StatusCode::UNAUTHORIZED,
            "the replay revoked the access token on {node}"
        );
        assert_eq!(introspect(rp, &access).await, json!({"active": false}), "access token on {node}");
        assert_eq!(introspect(rp, &refresh).await, json!({"active": false}), "refresh token on {node}");
    }
}

// ---------- 2. one refresh token, 16 presentations, two nodes ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_refresh_token_presented_16_times_across_both_nodes_rotates_once_and_revokes_the_family() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let (a, b) = d.pair().await;
    let (rp_a, rp_b) = (a.rp("fabrikam"), b.rp("fabrikam"));
    for round in 0..3 {
        let (tokens, _) = rp_a.sign_in(&Browser::new(&a.url), IW, &a.password(IW), &[]).await;
        let token = s(&tokens, "refresh_token");
        let answers =
            join_all((0..16).map(|i| if i % 2 == 0 { rp_a.refresh(&token) } else { rp_b.refresh(&token) })).await;
        let won: Vec<&Value> = answers.iter().filter(|(st, _)| *st == StatusCode::OK).map(|(_, b)| b).collect();
        assert_eq!(won.len(), 1, "round {round}: exactly one rotation: {answers:?}");
        let others: Vec<_> = answers.iter().filter(|a| a.0 != StatusCode::OK && !is_invalid_grant(a)).collect();
        assert!(others.is_empty(), "round {round}: nothing but invalid_grant for the losers: {others:?}");
        let next = s(won[0], "refresh_token");
        for rp in [&rp_a, &rp_b] {
            let (status, body) = rp.refresh(&next).await;
            assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let (status, body) = rp_b.refresh(&token).await;
        assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    }
}

// ---------- 3. one ticket, two nodes ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_ticket_redeemed_at_once_on_both_nodes_accepts_one_guest_and_takes_one_seat() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let (a, b) = d.pair().await;
    let token = a.admin_token().await;
    let seats = |node: &Node| {
        let token = token.clone();
        let url = node.url.clone();
        async move {
            let (status, skus) = graph(&url, &token, Method::GET, "subscribedSkus", None).await;
            assert_eq!(status, StatusCode::OK, "{skus}");
            skus["value"][0]["consumedUnits"].as_i64().unwrap()
        }
    };
    for round in 0..3 {
        let email = format!("race{round}@northwind.example");
        let body =
            json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": LANDING, "sendInvitationMessage": true});
        let (status, inv) = a.graph(&token, Method::POST, "invitations", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{inv}");
        let ticket_url = s(&inv, "inviteRedeemUrl");
        assert!(ticket_url.starts_with(&d.public_url), "links name the balancer: {ticket_url}");
        let before = seats(&b).await;
        // Each browser reaches consent on its own node, one after the other (each needs the
        // newest code in the outbox); then both accept at the same moment.
        let (ba, bb) = (Browser::new(&a.url), Browser::new(&b.url));
        let ca = redeem_to_consent(&ba, &ticket_url.replacen(&d.public_url, &a.url, 1), &email).await;
        let cb = redeem_to_consent(&bb, &ticket_url.replacen(&d.public_url, &b.url, 1), &email).await;
        let (ra, rb) = futures_util::future::join(
            ba.post_abs(&ca.url, &ca.form("consent").set("decision", "accept")),
            bb.post_abs(&cb.url, &cb.form("consent").set("decision", "accept")),
        )
        .await;
        let outcome = |p: &Page| {
            if p.status == StatusCode::SEE_OTHER && p.location.as_deref() == Some(LANDING) {
                "redeemed".to_string()
            } else {
                format!("{} {:?}", p.status, p.error_code())
            }
        };
        let outcomes = [outcome(&ra), outcome(&rb)];
        let wins = outcomes.iter().filter(|o| *o == "redeemed").count();
        assert_eq!(wins, 1, "round {round}: exactly one accept wins: {outcomes:?}");
        let loser = if outcomes[0] == "redeemed" { &rb } else { &ra };
        assert_eq!(loser.error_code().as_deref(), Some("ticket_redeemed"), "round {round}: {outcomes:?}");
        assert_eq!(seats(&a).await, before + 1, "round {round}: one seat taken");
        assert_eq!(seats(&b).await, before + 1);
        let (status, user) = b.graph(&token, Method::GET, &format!("users/{email}"), None).await;
        assert_eq!(status, StatusCode::OK, "{user}");
        assert_eq!(user["externalUserState"], "Accepted");
        let (_, guests) = b.graph(&token, Method::GET, "users?$filter=userType%20eq%20'Guest'&$top=999", None).await;
        let same: Vec<&Value> =
            guests["value"].as_array().unwrap().iter().filter(|u| u["mail"] == email.as_str()).collect();
        assert_eq!(same.len(), 1, "one guest for {email}: {same:?}");
    }
}

// ---------- 4. lockout across nodes ----------

fn error_text(p: &Page) -> String {
    p.text("p.error").unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_on_both_nodes_lock_the_account_and_a_burst_across_both_checks_at_most_the_limit() {
    let Some(db) = database_or_skip().await else { return };
    // A queue deep enough for the burst: a 429 "busy" would not tell anything about the lock.
    let d = Deployment::new(&db).with("GATEHOUSE__RATE_LIMIT__PASSWORD_QUEUE", "64");
    let (a, b) = d.pair().await;
    let (rp_a, rp_b) = (a.rp("fabrikam"), b.rp("fabrikam"));
    let token = a.admin_token().await;

    // 3 wrong passwords on A, then 3 on B: the sixth is refused as locked (limit 5).
    let (ba, bb) = (Browser::new(&a.url), Browser::new(&b.url));
    let (pa, pb) = (at_password(&rp_a, &ba, IW).await, at_password(&rp_b, &bb, IW).await);
    let (wa, wb) = (
        pa.form("password").set("password", "Wrong-password-1"),
        pb.form("password").set("password", "Wrong-password-1"),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(("A", error_text(&ba.post_abs(&pa.url, &wa).await)));
    }
    for _ in 0..3 {
        seen.push(("B", error_text(&bb.post_abs(&pb.url, &wb).await)));
    }
    for (i, (node, text)) in seen.iter().enumerate() {
        let want = if i < 5 { "incorrect" } else { "locked" };
        assert!(text.contains(want), "attempt {} on {node}: expected {want:?}: {seen:?}", i + 1);
    }
    for (browser, page, rp, node) in [(&ba, &pa, &rp_a, "A"), (&bb, &pb, &rp_b, "B")] {
        let right = browser.post_abs(&page.url, &page.form("password").set("password", &a.password(IW))).await;
        assert!(error_text(&right).contains("locked"), "the right password is refused on {node}: {}", right.body);
        assert!(right.location.is_none(), "no redirect to the RP on {node}");
        let fresh = Browser::new(&rp.base);
        let p = at_password(rp, &fresh, IW).await;
        let right = fresh.post_abs(&p.url, &p.form("password").set("password", &a.password(IW))).await;
        assert!(error_text(&right).contains("locked"), "a new browser on {node} too: {}", right.body);
    }
    assert_eq!(signins_with(&b.url, &token, IW, 50126).await, 5, "five wrong passwords were checked and logged");
    assert!(signins_with(&a.url, &token, IW, 50053).await >= 1, "the lockout is logged");

    // 16 wrong passwords for another account at the same moment, half on each node.
    let mut ready = Vec::new();
    for i in 0..16 {
        let rp = if i % 2 == 0 { &rp_a } else { &rp_b };
        let browser = Browser::new(&rp.base);
        let page = at_password(rp, &browser, ADMIN).await;
        let form = page.form("password").set("password", "Wrong-password-1");
        ready.push((browser, page.url.clone(), form));
    }
    let pages = join_all(ready.iter().map(|(b, url, f)| b.post_abs(url, f))).await;
    let texts: Vec<String> = pages.iter().map(error_text).collect();
    let incorrect = texts.iter().filter(|t| t.contains("incorrect")).count();
    let locked = texts.iter().filter(|t| t.contains("locked")).count();
    assert_eq!(incorrect + locked, 16, "every attempt is a wrong password or refused as locked: {texts:?}");
    assert!((1..=5).contains(&incorrect), "at most the limit of passwords is checked across both nodes: {incorrect}");
    let logged = signins_with(&a.url, &token, ADMIN, 50126).await;
    assert_eq!(logged, incorrect, "the log has one 50126 per checked password");
    let p = at_password(&rp_b, &bb, ADMIN).await;
    let right = bb.post_abs(&p.url, &p.form("password").set("password", &a.password(ADMIN))).await;
    assert!(error_text(&right).contains("locked"), "the burst locked the account: {}", right.body);
}

// ---------- 5. caches and keys across nodes ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_made_on_a_is_enforced_by_b_within_a_second_and_a_key_rotation_reaches_both() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let (a, b) = d.pair().await;
    let rp_b = b.rp("fabrikam");
    // B has signed iw in and evaluated fabrikam's policies (its caches are warm).
    let browser = Browser::new(&b.url);
    rp_b.sign_in(&browser, IW, &b.password(IW), &[]).await;
    let sso = browser.follow(browser.get(&rp_b.authorize_url(&[]).url).await).await;
    assert_eq!(sso.status, StatusCode::FOUND, "SSO on B before the policy: {}", sso.body);

    let token = a.admin_token().await;
    let policy = json!({
        "displayName": "Block test-rp", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["test-rp"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    });
    let (status, created) = a.graph(&token, Method::POST, "identity/conditionalAccess/policies", Some(policy)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let made = Instant::now();
    let mut last = String::new();
    let enforced = loop {
        let page = browser.follow(browser.get(&rp_b.authorize_url(&[]).url).await).await;
        if page.error_code().as_deref() == Some("access_blocked") {
            break Some(made.elapsed());
        }
        last = format!("{} {:?} {:?}", page.status, page.location, page.error_code());
        if made.elapsed() > Duration::from_secs(1) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let enforced =
        enforced.unwrap_or_else(|| panic!("B still lets iw into test-rp 1 s after A made the policy: {last}"));
    println!("B enforced the policy {enforced:?} after A answered 201");

    // `gatehouse keys rotate` against the running cluster: both nodes publish the new kid.
    let (rp_a, kids_before) = (a.rp("fabrikam"), kids(&rp_b).await);
    let data = tempfile::tempdir().unwrap();
    let out = d.cli(&["keys", "rotate", "--grace-secs", "3600", "--data-dir", data.path().to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kid = stdout.split_whitespace().nth(3).unwrap_or_else(|| panic!("new kid in {stdout:?}")).to_string();
    assert!(!kids_before.contains(&kid), "{stdout}");
    let rotated = Instant::now();
    for (rp, node) in [(&rp_a, "A"), (&rp_b, "B")] {
        loop {
            let now = kids(rp).await;
            if now.contains(&kid) {
                assert!(kids_before.iter().all(|k| now.contains(k)), "the old keys stay published on {node}");
                break;
            }
            assert!(rotated.elapsed() < Duration::from_secs(5), "{node} does not publish {kid} 5 s after the rotation");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    println!("both nodes publish {kid} {:?} after the CLI returned", rotated.elapsed());
}

// ---------- 6. kill -9 under load through haproxy ----------

#[derive(Debug, Default)]
struct Chain {
    /// Every refresh token a 200 handed out, oldest first.
    received: Vec<String>,
    /// Requests that got no answer (then retried with the same token after 1.1 s).
    lost: usize,
    /// An answered refusal (never expected).
    refused: Option<String>,
}

/// Refreshes through the balancer until `stop`; a request without an answer is retried with
/// the same token after 1.1 s (a retry is only recognised at least 1 s after the rotation).
async fn refresh_chain(rp: Rp, first: String, stop: Arc<AtomicBool>, done: Arc<AtomicUsize>, until: Instant) -> Chain {
    let mut chain = Chain { received: vec![first], ..Default::default() };
    let mut retrying = false;
    while (retrying || !stop.load(Ordering::SeqCst)) && Instant::now() < until {
        let current = chain.received.last().unwrap().clone();
        match try_refresh(&rp, &current).await {
            Ok((StatusCode::OK, body)) => {
                chain.received.push(s(&body, "refresh_token"));
                done.fetch_add(1, Ordering::SeqCst);
                retrying = false;
                tokio::time::sleep(Duration::from_millis(rand::random_range(5..30))).await;
            }
            Ok((status, body)) if status.is_server_error() => {
                println!("refresh: {status} {body} (retrying)");
                chain.lost += 1;
                retrying = true;
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
            Ok((status, body)) => {
                chain.refused = Some(format!("{status} {body} (after {} lost answers)", chain.lost));
                return chain;
            }
            Err(e) => {
                println!("refresh: {e} (retrying)");
                chain.lost += 1;
                retrying = true;
                tokio::time::sleep(Duration::from_millis(1100)).await;
            }
        }
    }
    if retrying {
        chain.refused = Some("the retry after a lost answer never got one".into());
    }
    chain
}

#[derive(Debug, Default)]
struct Logins {
    tokens: Vec<Value>,
    lost: usize,
    refused: Vec<String>,
}

/// Whole sign-ins through the balancer until `stop`; one that lost an answer is abandoned
/// (a code may have been spent) and a new one started.
async fn login_loop(
    rp: Rp,
    lb: String,
    password: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    until: Instant,
) -> Logins {
    let mut out = Logins::default();
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        match Agent::new(&lb).sign_in(&rp, IW, &password).await {
            Outcome::Done(tokens) => {
                out.tokens.push(tokens);
                done.fetch_add(1, Ordering::SeqCst);
            }
            Outcome::Lost(e) => {
                println!("sign-in: {e} (starting again)");
                out.lost += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Outcome::Refused(e) => out.refused.push(e),
        }
    }
    out
}

/// Refresh-token reuses in the sign-in log (each names an already-spent token).
async fn reuses(base: &str, token: &str) -> usize {
    signins(base, token)
        .await
        .iter()
        .filter(|e| {
            e["status"]["errorCode"] == 70008
                && e["status"]["failureReason"].as_str().is_some_and(|r| r.contains("reuse"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_node_under_load_through_haproxy_loses_nothing_and_the_node_rejoins() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let (a, b) = d.pair().await;
    let Some(lb) = Balancer::start(&d, a.port, b.port).await else { return };
    let password = a.password(IW);
    let rp_lb = Rp { base: lb.url.clone(), ..a.rp_timed("fabrikam") };
    let mut firsts = Vec::new();
    for _ in 0..6 {
        match Agent::new(&lb.url).sign_in(&rp_lb, IW, &password).await {
            Outcome::Done(tokens) => firsts.push(s(&tokens, "refresh_token")),
            other => panic!("sign-in through haproxy: {other:?}"),
        }
    }

    let (stop, rotations, logins) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let until = Instant::now() + Duration::from_secs(30);
    let chains: Vec<_> = firsts
        .into_iter()
        .map(|t| tokio::spawn(refresh_chain(rp_lb.clone(), t, stop.clone(), rotations.clone(), until)))
        .collect();
    let login_loops: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(login_loop(
                rp_lb.clone(),
                lb.url.clone(),
                password.clone(),
                stop.clone(),
                logins.clone(),
                until,
            ))
        })
        .collect();
    let started = Instant::now();
    while (rotations.load(Ordering::SeqCst) < 12 || logins.load(Ordering::SeqCst) < 2)
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(rand::random_range(0..200))).await;
    let at_kill = (rotations.load(Ordering::SeqCst), logins.load(Ordering::SeqCst));
    let stopped = a.kill9().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after_kill = (rotations.load(Ordering::SeqCst), logins.load(Ordering::SeqCst));
    let a = stopped.start().await;
    // Load goes on while A is back (haproxy checks it every second and takes it in again).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::SeqCst);
    let chains: Vec<Chain> = join_all(chains).await.into_iter().map(Result::unwrap).collect();
    let logins_done: Vec<Logins> = join_all(login_loops).await.into_iter().map(Result::unwrap).collect();
    let rotated: usize = chains.iter().map(|c| c.received.len() - 1).sum();
    let lost: usize = chains.iter().map(|c| c.lost).sum::<usize>() + logins_done.iter().map(|l| l.lost).sum::<usize>();
    println!(
        "at the kill: {at_kill:?} (rotations, logins); 1.5 s later: {after_kill:?}; in all {rotated} rotations, {} sign-ins, {lost} lost answers",
        logins_done.iter().map(|l| l.tokens.len()).sum::<usize>()
    );
    assert!(at_kill.0 > 0 && at_kill.1 > 0, "the kill came under load");
    assert!(after_kill.0 > at_kill.0, "B went on serving refreshes while A was dead");
    let mut failures = Vec::new();
    for (i, c) in chains.iter().enumerate() {
        if let Some(r) = &c.refused {
            failures.push(format!("chain {i}: {r}"));
        }
    }
    for l in &logins_done {
        failures.extend(l.refused.iter().cloned());
    }
    assert!(failures.is_empty(), "refused while the cluster was up:\n{}", failures.join("\n"));

    // Nothing was taken for theft: no reuse logged during the load.
    let token = b.admin_token().await;
    assert_eq!(reuses(&b.url, &token).await, 0, "no client was taken for a thief");

    // Every token a client received is good on B; every spent one stays spent.
    let rp_b = b.rp("fabrikam");
    for (i, c) in chains.iter().enumerate() {
        let (status, body) = rp_b.refresh(c.received.last().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "chain {i}: its newest token on B: {body}");
        for (k, spent) in c.received[..c.received.len() - 1].iter().enumerate().rev().take(5) {
            let answer = rp_b.refresh(spent).await;
            assert!(is_invalid_grant(&answer), "chain {i}: spent token #{k} accepted again: {answer:?}");
        }
    }
    for tokens in logins_done.iter().flat_map(|l| &l.tokens) {
        assert_eq!(rp_b.userinfo(&s(tokens, "access_token")).await.status(), StatusCode::OK);
        rp_b.verify_from(&s(tokens, "id_token"), "JWT", &d.issuer("fabrikam")).await;
        let (status, body) = rp_b.refresh(&s(tokens, "refresh_token")).await;
        assert_eq!(status, StatusCode::OK, "a sign-in's refresh token on B: {body}");
    }

    // A is back: ready, and it serves sign-ins and refreshes of tokens B issued.
    let ready = plain_client().get(format!("{}/health/ready", a.url)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let rp_a = a.rp("fabrikam");
    let (tokens, _) = rp_b.sign_in(&Browser::new(&b.url), IW, &password, &[]).await;
    let (status, body) = rp_a.refresh(&s(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    rp_a.sign_in(&Browser::new(&a.url), IW, &password, &[]).await;
    drop(lb);
}

// ---------- 7. PostgreSQL down under load ----------

#[derive(Debug)]
struct Answer {
    sent: Instant,
    took: Duration,
    status: Option<StatusCode>,
    error: String,
}

#[derive(Debug, Default)]
struct Outage {
    received: Vec<String>,
    answers: Vec<Answer>,
    refused: Option<String>,
}

/// Refreshes until `stop`, through the outage: a 503 (or no answer) keeps the token.
async fn refresh_through_outage(rp: Rp, first: String, stop: Arc<AtomicBool>, until: Instant) -> Outage {
    let mut out = Outage { received: vec![first], ..Default::default() };
    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
        let current = out.received.last().unwrap().clone();
        let sent = Instant::now();
        let answer = try_refresh(&rp, &current).await;
        let took = sent.elapsed();
        match answer {
            Ok((StatusCode::OK, body)) => {
                out.received.push(s(&body, "refresh_token"));
                out.answers.push(Answer { sent, took, status: Some(StatusCode::OK), error: String::new() });
            }
            Ok((status, body)) if status == StatusCode::SERVICE_UNAVAILABLE => {
                let error = body["error"].as_str().unwrap_or_default().to_string();
                out.answers.push(Answer { sent, took, status: Some(status), error });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((status, body)) => {
                out.answers.push(Answer { sent, took, status: Some(status), error: body.to_string() });
                out.refused = Some(format!("{status} {body}"));
                return out;
            }
            Err(e) => {
                out.answers.push(Answer { sent, took, status: None, error: e });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rand::random_range(5..30))).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_stopped_under_load_gives_clear_503s_in_bounded_time_and_the_load_recovers_by_itself() {
    if std::env::var("GATEHOUSE_TEST_DATABASE_URL").map(|u| u.is_empty()).unwrap_or(true) {
        return skip("no PostgreSQL test cluster");
    }
    let pg = tokio::task::spawn_blocking(OwnCluster::start).await.unwrap();
    const TIMEOUT_MS: u64 = 2000;
    let d = Deployment::new(&pg.url).with("GATEHOUSE__DATABASE__TIMEOUT_MS", &TIMEOUT_MS.to_string());
    let node = d.node("a").await;
    let rp = node.rp_timed("fabrikam");
    let password = node.password(IW);
    let admin = node.admin_token().await;
    let mut firsts = Vec::new();
    for _ in 0..4 {
        let (tokens, _) = rp.sign_in(&Browser::new(&node.url), IW, &password, &[]).await;
        firsts.push(s(&tokens, "refresh_token"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let until = Instant::now() + Duration::from_secs(40);
    let chains: Vec<_> =
        firsts.into_iter().map(|t| tokio::spawn(refresh_through_outage(rp.clone(), t, stop.clone(), until))).collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let pg = Arc::new(pg);
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop_immediate()).await.unwrap();
    let down = Instant::now();
    // Bounded: a request is answered 503 within the database timeout, plus slack.
    let bound = Duration::from_millis(TIMEOUT_MS + 3000);
    let http = timed_client(false);
    let ready = loop {
        let sent = Instant::now();
        let r = http.get(format!("{}/health/ready", node.url)).send().await.unwrap();
        assert!(sent.elapsed() < bound, "/health/ready took {:?}", sent.elapsed());
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            let body: Value = r.json().await.unwrap();
            assert_eq!((&body["status"], &body["checks"][0]["name"]), (&json!("DOWN"), &json!("store")), "{body}");
            assert_eq!(body["checks"][0]["status"], "DOWN", "{body}");
            break down.elapsed();
        }
        assert!(
            down.elapsed() < bound,
            "/health/ready still {} {:?} after the database stopped",
            r.status(),
            down.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent = Instant::now();
    let (status, body) = graph(&node.url, &admin, Method::GET, "users", None).await;
    assert!(sent.elapsed() < bound, "Graph took {:?}", sent.elapsed());
    assert_graph_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, "serviceUnavailable");
    let sent = Instant::now();
    let page = Browser { http: timed_client(true), ..Browser::new(&node.url) }.get(&rp.authorize_url(&[]).url).await;
    assert!(sent.elapsed() < bound, "the sign-in page took {:?}", sent.elapsed());
    assert_eq!(
        (page.status, page.error_code().as_deref()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("temporarily_unavailable")),
        "a sign-in without a database: {}",
        page.body
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let p = pg.clone();
    let restarting = Instant::now();
    tokio::task::spawn_blocking(move || p.start_again()).await.unwrap();
    let up = Instant::now();
    println!("database down for {:?}; /health/ready said 503 after {ready:?}", up - down);

    // Recovery without restarting gatehouse: every chain gets a 200 again.
    let recovered = loop {
        let r = http.get(format!("{}/health/ready", node.url)).send().await.unwrap();
        if r.status() == StatusCode::OK {
            break up.elapsed();
        }
        assert!(up.elapsed() < Duration::from_secs(15), "not ready 15 s after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::SeqCst);
    let chains: Vec<Outage> = join_all(chains).await.into_iter().map(Result::unwrap).collect();
    println!("ready again {recovered:?} after the database came back");

    let mut failures = Vec::new();
    for (i, c) in chains.iter().enumerate() {
        if let Some(r) = &c.refused {
            failures.push(format!("chain {i}: refused: {r}"));
        }
        for a in &c.answers {
            if a.took >= bound {
                failures.push(format!("chain {i}: a request took {:?}: {a:?}", a.took));
            }
            match a.status {
                Some(StatusCode::OK) => {}
                Some(StatusCode::SERVICE_UNAVAILABLE) if a.error == "temporarily_unavailable" => {}
                _ => failures.push(format!("chain {i}: not a 200 nor a clear 503: {a:?}")),
            }
            // Sent while the database was surely down: refused, never answered from nowhere.
            if a.sent > down && a.sent + a.took < restarting && a.status == Some(StatusCode::OK) {
                failures.push(format!("chain {i}: a rotation answered while the database was down: {a:?}"));
            }
        }
        let during = c.answers.iter().filter(|a| a.sent > down && a.sent < restarting).count();
        let after = c.answers.iter().filter(|a| a.sent > up && a.status == Some(StatusCode::OK)).count();
        if during == 0 || after == 0 {
            failures.push(format!("chain {i}: {during} requests during the outage, {after} rotations after it"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // No half-written state: each chain's newest token works, its spent ones stay spent.
    for (i, c) in chains.iter().enumerate() {
        let (status, body) = rp.refresh(c.received.last().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "chain {i}: its newest token: {body}");
        let answer = rp.refresh(&c.received[c.received.len() - 2]).await;
        assert!(is_invalid_grant(&answer), "chain {i}: the token before it was accepted again: {answer:?}");
    }
    let (tokens, _) = rp.sign_in(&Browser::new(&node.url), IW, &password, &[]).await;
    assert!(tokens["id_token"].is_string(), "sign-ins work again");
    drop(node);
}

// ---------- 8. gatehouse store copy ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_used_embedded_store_and_its_refresh_tokens_work_on_postgresql() {
    let Some(db) = database_or_skip().await else { return };
    let d = Deployment::new(&db);
    let dir = tempfile::tempdir().unwrap();
    let sled = crate::process::start(dir.path()).await;
    let rp = sled.rp("fabrikam");
    let password = sled.password(IW);
    let (first, _) = rp.sign_in(&Browser::new(&sled.url), IW, &password, &[]).await;
    let (status, second) = rp.refresh(&s(&first, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (spent, live) = (s(&first, "refresh_token"), s(&second, "refresh_token"));
    let old_issuer = format!("{}/fabrikam/v2.0", sled.url);
    let id_token = s(&second, "id_token");
    let token = admin_token(&sled).await;
    let email = "moved@northwind.example";
    let body = json!({"invitedUserEmailAddress": email, "inviteRedirectUrl": LANDING, "sendInvitationMessage": true});
    let (status, inv) = graph(&sled.url, &token, Method::POST, "invitations", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    let guest = Browser::new(&sled.url);
    let consent = redeem_to_consent(&guest, &s(&inv, "inviteRedeemUrl"), email).await;
    let done = guest.post_abs(&consent.url, &consent.form("consent").set("decision", "accept")).await;
    assert_eq!(done.location.as_deref(), Some(LANDING), "{}", done.body);
    let logged = signins(&sled.url, &token).await.len();
    sled.kill().await;

    let from = dir.path().to_str().unwrap();
    let copy = |force: bool| {
        let mut args = vec!["store", "copy", "--from", from, "--to", db.as_str()];
        if force {
            args.push("--force");
        }
        let kek = d.kek.clone();
        async move {
            let out = Command::new(crate::process::BIN)
                .args(&args)
                .env("GATEHOUSE__KEY_ENCRYPTION_KEY", kek)
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };
    let (ok, said) = copy(false).await;
    assert!(ok, "store copy: {said}");
    let (ok, said) = copy(false).await;
    assert!(!ok, "a second copy into a database with data is refused without --force: {said}");
    assert!(said.contains("--force"), "the refusal says how to override it: {said}");
    let (ok, said) = copy(true).await;
    assert!(ok, "store copy --force: {said}");

    let node = d.node("pg").await;
    assert_eq!(node.password(IW), password, "the demo credentials came along");
    let rp = node.rp("fabrikam");
    let claims = rp.verify_from(&id_token, "JWT", &old_issuer).await;
    assert_eq!(claims["aud"], "test-rp", "the old ID token's key is in the node's JWKS");
    let (status, body) = rp.refresh(&live).await;
    assert_eq!(status, StatusCode::OK, "the embedded store's refresh token works on PostgreSQL: {body}");
    let answer = rp.refresh(&spent).await;
    assert!(is_invalid_grant(&answer), "a token spent before the copy stays spent: {answer:?}");
    let token = node.admin_token().await;
    let (status, user) = node.graph(&token, Method::GET, &format!("users/{email}"), None).await;
    assert_eq!((status, user["externalUserState"].as_str()), (StatusCode::OK, Some("Accepted")), "{user}");
    assert!(signins(&node.url, &token).await.len() >= logged, "the sign-in log came along");
    rp.sign_in(&Browser::new(&node.url), IW, &password, &[]).await;
}
