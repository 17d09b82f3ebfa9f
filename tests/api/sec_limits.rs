//! Issue 11, limits: failure counters that concurrency cannot outrun, lockouts that spare
//! accounts without failures, a bounded password queue, email codes sent only on request,
//! SSO reuse limited and aggregated, failures in the sign-in log, the log trimmed by age.
use futures_util::future::join_all;
use gatehouse::clock::Clock;
use gatehouse::model::SignInLogEntry;
use reqwest::StatusCode;

use crate::guests::{LANDING, accept};
use crate::helpers::*;

const IW: &str = "iw@fabrikam.example";
const PAT: &str = "pat@northwind.example";

fn trust_loopback_proxy(c: &mut gatehouse::config::Config) {
    c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// A browser at the password step for `login` (its own sign-in transaction).
async fn at_password(app: &TestApp, b: &Browser, login: &str) -> Page {
    let p = b.follow(b.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
    let p = b.follow(b.submit(&p.form("identify").set("login", login)).await).await;
    assert!(p.has("form#password"), "{}", p.body);
    p
}

async fn log(app: &TestApp) -> Vec<SignInLogEntry> {
    app.state.store.signin_log(&app.tenant_id("fabrikam").await, 10_000).await.unwrap()
}

async fn log_codes(app: &TestApp, code: &str) -> usize {
    log(app).await.iter().filter(|e| e.status.error.as_deref() == Some(code)).count()
}

async fn account_key(app: &TestApp, login: &str) -> String {
    format!("acct:{}:{login}", app.tenant_id("fabrikam").await)
}

async fn otp_mails(app: &TestApp, to: &str) -> usize {
    app.state.store.outbox(10_000).await.unwrap().iter().filter(|m| m.to == to && m.otp.is_some()).count()
}

/// Posts a form and returns the status, the Retry-After header and the body.
async fn raw_post(b: &Browser, page_url: &str, form: &Form) -> (StatusCode, Option<String>, String) {
    let action = url::Url::parse(page_url).unwrap().join(&form.action).unwrap().to_string();
    let resp = b
        .http
        .post(action)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(&form.fields).unwrap())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.text().await.unwrap())
}

fn page_of(status: StatusCode, body: String) -> Page {
    Page { status, location: None, body, url: String::new() }
}

// ---------- the races, shared by the finding tests and the table ----------

/// 16 browsers at the password step for `login`, with a wrong password filled in.
async fn wrong_password_forms(app: &TestApp, login: &str) -> Vec<(Browser, Form)> {
    let mut out = Vec::new();
    for _ in 0..16 {
        let b = app.browser();
        let f = at_password(app, &b, login).await.form("password").set("password", "Wrong-password-1");
        out.push((b, f));
    }
    out
}

/// Posts them all at once: (hash checks, pages).
async fn password_burst(app: &TestApp, ready: &[(Browser, Form)]) -> (u64, Vec<Page>) {
    let checks = app.state.passwords.checks();
    let pages = join_all(ready.iter().map(|(b, f)| b.submit(f))).await;
    (app.state.passwords.checks() - checks, pages)
}

async fn password_race(app: &TestApp, login: &str) -> (u64, Vec<Page>) {
    let ready = wrong_password_forms(app, login).await;
    password_burst(app, &ready).await
}

/// An email-code guest at the code page (the code was sent on request).
async fn at_email_code(app: &TestApp, b: &Browser, email: &str) -> Page {
    let inv = app.invite(email, LANDING, None).await;
    let p = b.send_email_code(b.follow_any(b.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await).await;
    assert!(p.has("form#email-otp"), "{}", p.body);
    p
}

/// The attempts counted on the sign-in transaction of the code page `p`.
async fn otp_attempts(app: &TestApp, p: &Page) -> u32 {
    let tx = p.form("email-otp").fields.into_iter().find(|(k, _)| k == "tx").unwrap().1;
    let signin = app.state.store.signin(&gatehouse::secrets::digest(&tx)).await.unwrap().unwrap();
    match signin.step {
        gatehouse::model::Step::EmailOtp { attempts, .. } => attempts,
        other => panic!("not at the code step: {other:?}"),
    }
}

/// 16 wrong email codes at once on one sign-in: (attempts counted, pages).
async fn email_code_race(app: &TestApp, b: &Browser, p: &Page) -> (u32, Vec<Page>) {
    let form = p.form("email-otp").set("code", "00000000");
    let pages = join_all((0..16).map(|_| b.post_abs(&p.url, &form))).await;
    (otp_attempts(app, p).await, pages)
}

/// Gives iw a TOTP method and recovery codes and per-user MFA; returns (secret, codes).
async fn enrol_iw(app: &TestApp) -> (String, Vec<String>) {
    let tid = app.tenant_id("fabrikam").await;
    let iw = app.user("fabrikam", IW).await;
    let secret = gatehouse::mfa::new_enrollment("Fabrikam", IW).secret_b32;
    let (codes, hashes) = gatehouse::mfa::new_recovery_codes();
    let now = app.clock.now();
    gatehouse::storage::modify_user(&app.state.store, &tid, &iw.id, |u| {
        u.per_user_mfa = true;
        u.totp_methods = vec![gatehouse::mfa::TotpMethod::new(app.state.seal.seal(&secret), now)];
        u.recovery_code_hashes = hashes.clone();
    })
    .await
    .unwrap();
    (secret, codes)
}

/// A browser of iw at the MFA challenge.
async fn at_challenge(app: &TestApp) -> (Browser, Page) {
    let b = app.browser();
    let p = at_password(app, &b, IW).await;
    let p = b.follow(b.submit(&p.form("password").set("password", &app.password(IW))).await).await;
    assert!(p.has("form#totp-challenge"), "{}", p.body);
    (b, p)
}

/// A six-digit code that is none of the accepted steps' codes.
fn wrong_totp(secret: &str, now: i64) -> String {
    let valid: Vec<String> = (-1..=1).map(|k| totp_at(secret, now + k * 30)).collect();
    (0..1000).map(|n| format!("{n:06}")).find(|c| !valid.contains(c)).unwrap()
}

/// 16 wrong TOTP codes at once on one challenge: (failures counted, locked, pages).
async fn totp_race(app: &TestApp, secret: &str) -> (usize, bool, Vec<Page>) {
    let (b, p) = at_challenge(app).await;
    let form = p.form("totp-challenge").set("code", &wrong_totp(secret, app.clock.now()));
    let pages = join_all((0..16).map(|_| b.submit(&form))).await;
    let lock = app.user("fabrikam", IW).await.mfa_lockout;
    // A lock clears the failure list; the lock itself is the fifth failure.
    let counted = pages.iter().filter(|p| p.text("p.error").is_some_and(|t| t.contains("not right"))).count()
        + usize::from(lock.locked_until.is_some());
    (counted, lock.is_locked(app.clock.now()), pages)
}

/// One recovery code posted by 8 browsers at once: how many got past MFA.
async fn recovery_race(app: &TestApp, code: &str) -> usize {
    let mut at = Vec::new();
    for _ in 0..8 {
        at.push(at_challenge(app).await);
    }
    let forms: Vec<Form> = at.iter().map(|(_, p)| p.form("totp-challenge").set("code", code)).collect();
    let pages = join_all(at.iter().zip(&forms).map(|((b, _), f)| b.submit(f))).await;
    pages
        .iter()
        .filter(|p| p.location.as_deref().is_some_and(|l| l.starts_with("http://127.0.0.1:9/callback?code=")))
        .count()
}

fn count_text(pages: &[Page], needle: &str) -> usize {
    pages.iter().filter(|p| p.text("p.error").is_some_and(|t| t.contains(needle))).count()
}

// ---------- #8 ----------

#[tokio::test]
async fn concurrent_wrong_passwords_check_at_most_the_limit_then_the_account_is_locked() {
    let app = spawn_app().await;
    // The sign-in transactions are written by each browser's identify step, before the burst.
    let ready = wrong_password_forms(&app, IW).await;
    let before = app.snapshot_without_log().await;
    let (checks, pages) = password_burst(&app, &ready).await;
    assert_same(&before, &app.snapshot_without_log().await, "the burst writes only its log entries");
    assert_eq!(checks, 5, "exactly the limit of hashes is checked");
    assert_eq!(count_text(&pages, "incorrect"), 5);
    assert_eq!(count_text(&pages, "locked"), 11, "the others are refused before hashing");
    assert_eq!(log_codes(&app, "wrong_password").await, 5);
    // The right password now is refused as locked, without a hash check or a change.
    let b = app.browser();
    let p = at_password(&app, &b, IW).await;
    let before = app.snapshot_without_log().await;
    let checks = app.state.passwords.checks();
    let locked = b.submit(&p.form("password").set("password", &app.password(IW))).await;
    assert!(locked.text("p.error").unwrap().contains("locked"), "{}", locked.body);
    assert!(locked.has("form#password") && locked.location.is_none());
    assert_eq!(app.state.passwords.checks(), checks);
    assert_same(&before, &app.snapshot_without_log().await, "a locked attempt changes nothing but the log");
    assert!(
        log(&app)
            .await
            .iter()
            .any(|e| e.status.error.as_deref() == Some("account_locked") && e.status.error_code == 50053)
    );
}

// ---------- #21 ----------

#[tokio::test]
async fn wrong_passwords_and_lockouts_are_in_the_sign_in_log_with_entra_codes() {
    let app = spawn_app().await;
    let iw = app.user("fabrikam", IW).await;
    let b = app.browser();
    let p = at_password(&app, &b, IW).await;
    let form = p.form("password").set("password", "Wrong-password-1");
    let before = app.snapshot_without_log().await;
    for _ in 0..5 {
        assert!(b.submit(&form).await.text("p.error").unwrap().contains("incorrect"));
    }
    let locked = b.submit(&form).await;
    assert!(locked.text("p.error").unwrap().contains("locked"));
    assert_same(&before, &app.snapshot_without_log().await, "failures write only their log entries");
    let entries = log(&app).await;
    let wrong: Vec<&SignInLogEntry> =
        entries.iter().filter(|e| e.status.error.as_deref() == Some("wrong_password")).collect();
    assert_eq!(wrong.len(), 5);
    for e in &wrong {
        assert_eq!((e.status.error_code, e.user_id, e.app_id.as_str()), (50126, Some(iw.id), "test-rp"));
        assert!(e.is_interactive && e.ip_address.is_some());
    }
    let lock = entries.iter().find(|e| e.status.error.as_deref() == Some("account_locked")).expect("a 50053 entry");
    assert_eq!((lock.status.error_code, lock.user_id), (50053, Some(iw.id)));

    // An unknown account: the same page for the caller; the log names the attempted UPN.
    let b = app.browser();
    let p = at_password(&app, &b, "Ghost@Fabrikam.example").await;
    let unknown = b.submit(&p.form("password").set("password", "Wrong-password-1")).await;
    let b2 = app.browser();
    let p2 = at_password(&app, &b2, "admin@fabrikam.example").await;
    let known = b2.submit(&p2.form("password").set("password", "Wrong-password-1")).await;
    assert_eq!((unknown.status, unknown.text("p.error")), (known.status, known.text("p.error")));
    let ghost = log(&app)
        .await
        .into_iter()
        .find(|e| e.user_principal_name.as_deref() == Some("ghost@fabrikam.example"))
        .expect("the attempted UPN is logged");
    assert_eq!((ghost.status.error_code, ghost.user_id, ghost.user_display_name), (50126, None, None));
}

// ---------- #22 ----------

#[tokio::test]
async fn a_spraying_address_cannot_lock_out_an_account_without_failures_of_its_own() {
    let app = spawn_with(trust_loopback_proxy).await;
    let spray = "198.51.100.7";
    // 60 wrong passwords for unknown accounts from one address (the per-IP limit is 50).
    for i in 0..60 {
        let b = Browser::forwarded_for(&app.url, spray);
        let p = at_password(&app, &b, &format!("ghost{i}@fabrikam.example")).await;
        let r = b.submit(&p.form("password").set("password", "Wrong-password-1")).await;
        assert!(r.text("p.error").unwrap().contains("incorrect"), "spray {i}: {}", r.body);
    }
    // A login that already failed, from that address: throttled (429, Retry-After), unchecked.
    let b = Browser::forwarded_for(&app.url, spray);
    let p = at_password(&app, &b, "ghost0@fabrikam.example").await;
    let before = app.snapshot_without_log().await;
    let checks = app.state.passwords.checks();
    let (status, retry, body) = raw_post(&b, &p.url, &p.form("password").set("password", "Wrong-password-1")).await;
    let throttled = page_of(status, body);
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.unwrap().parse::<i64>().unwrap() > 0);
    assert!(throttled.text("p.error").unwrap().contains("Too many sign-in attempts came from your network"));
    assert_eq!(app.state.passwords.checks(), checks, "a throttled attempt is not checked");
    assert_eq!(
        app.state.limiter.count(&account_key(&app, "ghost0@fabrikam.example").await, app.clock.now()).await.unwrap(),
        1
    );
    assert_same(&before, &app.snapshot_without_log().await, "a throttled attempt changes nothing");
    assert!(log_codes(&app, "ip_throttled").await >= 1);
    // iw, with no failures of its own, still signs in with the right password from there.
    let b = Browser::forwarded_for(&app.url, spray);
    let done = b.sign_in(&app.rp("fabrikam").authorize_url(&[]).url, IW, &app.password(IW)).await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.body);
    assert!(done.location.unwrap().starts_with("http://127.0.0.1:9/callback?code="));
    // So does everyone else behind another address, and retry_after is not a lock.
    let b = Browser::forwarded_for(&app.url, "203.0.113.5");
    let p = at_password(&app, &b, "ghost0@fabrikam.example").await;
    let other = b.submit(&p.form("password").set("password", "Wrong-password-1")).await;
    assert_eq!(other.status, StatusCode::OK);
    assert!(other.text("p.error").unwrap().contains("incorrect"));
}

// ---------- also: the email-code attempt counter ----------

#[tokio::test]
async fn concurrent_wrong_email_codes_are_each_counted_and_at_most_the_limit_compared() {
    let app = spawn_with(|c| c.workers = 8).await;
    // The lost update needs two workers to interleave; four rounds make that likely today.
    for round in 0..4 {
        let email = format!("pat{round}@northwind.example");
        let b = app.browser();
        let p = at_email_code(&app, &b, &email).await;
        // The race writes only its own sign-in transaction (the attempt count).
        let before = app.snapshot_except(&["signins"]).await;
        let (attempts, pages) = email_code_race(&app, &b, &p).await;
        assert_eq!(attempts, 5, "round {round}: each wrong code is counted, up to the limit");
        assert_eq!(count_text(&pages, "not right"), 5, "round {round}: exactly the limit of codes is compared");
        assert_eq!(count_text(&pages, "Too many wrong codes"), 11);
        // The right code no longer works on this sign-in, and the guest is still pending.
        let right = b.post_abs(&p.url, &p.form("email-otp").set("code", &app.latest_otp(&email).await)).await;
        assert!(right.text("p.error").unwrap().contains("Too many wrong codes"), "{}", right.body);
        assert_eq!(otp_attempts(&app, &p).await, 5);
        assert_same(&before, &app.snapshot_except(&["signins"]).await, "the guest and the invitation are unchanged");
    }
}

// ---------- also: the password queue ----------

#[tokio::test]
async fn a_full_password_queue_answers_429_at_once_and_counts_nothing() {
    let app = spawn_with(|c| c.rate_limit.password_queue = Some(0)).await;
    let b = app.browser();
    let p = at_password(&app, &b, IW).await;
    let before = app.snapshot().await;
    let (status, retry, body) = raw_post(&b, &p.url, &p.form("password").set("password", &app.password(IW))).await;
    let busy = page_of(status, body);
    assert_eq!(busy.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("5"));
    assert!(busy.text("p.error").unwrap().contains("a great many sign-ins"), "{}", busy.body);
    assert!(busy.has("form#password"), "the person can try again from the same page");
    assert_eq!(app.state.passwords.checks(), 0, "nothing was hashed");
    assert_eq!(
        app.state.limiter.count(&account_key(&app, IW).await, app.clock.now()).await.unwrap(),
        0,
        "not counted as a failure"
    );
    assert_same(&before, &app.snapshot().await, "a shed attempt changes nothing");
}

// ---------- #28 ----------

#[tokio::test]
async fn identifying_as_an_email_guest_sends_nothing_and_anonymous_sends_leave_the_guest_its_quota() {
    let app = spawn_with(trust_loopback_proxy).await;
    let inv = app.invite(PAT, LANDING, None).await;
    let url = inv["inviteRedeemUrl"].as_str().unwrap().to_string();
    // Each identification opens its own sign-in transaction; nothing else may change.
    let before = app.snapshot_except(&["signins"]).await;
    let outbox = app.state.store.outbox(10_000).await.unwrap().len();
    for _ in 0..9 {
        let b = Browser::forwarded_for(&app.url, "198.51.100.9");
        let p = b.follow_any(b.get(&url).await).await;
        assert!(p.has("form#email-otp-send") && !p.has("form#email-otp"), "{}", p.body);
    }
    assert_eq!(app.state.store.outbox(10_000).await.unwrap().len(), outbox, "identifying mails nothing");
    assert_eq!(otp_mails(&app, PAT).await, 0);
    assert_same(&before, &app.snapshot_except(&["signins"]).await, "identifying as an email guest nine times");

    // An anonymous requester spends its own quota (10 an hour) and then gets 429.
    for i in 0..10 {
        let b = Browser::forwarded_for(&app.url, "198.51.100.9");
        let p = b.send_email_code(b.follow_any(b.get(&url).await).await).await;
        assert!(p.has("form#email-otp"), "send {i}: {}", p.body);
    }
    let b = Browser::forwarded_for(&app.url, "198.51.100.9");
    let p = b.follow_any(b.get(&url).await).await;
    let before = app.snapshot().await;
    let (status, retry, body) = raw_post(&b, &p.url, &p.form("email-otp-send")).await;
    let limited = page_of(status, body);
    assert_eq!(
        (limited.status, limited.error_code().as_deref()),
        (StatusCode::TOO_MANY_REQUESTS, Some("otp_rate_limited"))
    );
    assert!(retry.unwrap().parse::<i64>().unwrap() > 0);
    assert_same(&before, &app.snapshot().await, "a refused send changes nothing");
    assert_eq!(otp_mails(&app, PAT).await, 10);

    // The guest, elsewhere, still gets a code and redeems.
    let guest = Browser::forwarded_for(&app.url, "203.0.113.44");
    let p = guest.send_email_code(guest.follow_any(guest.get(&url).await).await).await;
    assert!(p.has("form#email-otp"), "{}", p.body);
    assert_eq!(otp_mails(&app, PAT).await, 11);
    let consent = guest
        .follow_any(guest.post_abs(&p.url, &p.form("email-otp").set("code", &app.latest_otp(PAT).await)).await)
        .await;
    assert_eq!(accept(&guest, &consent).await.location.as_deref(), Some(LANDING));
}

// ---------- #20 ----------

#[tokio::test]
async fn one_sso_session_is_rate_limited_and_its_reuse_logged_once_a_minute() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let b = app.browser();
    rp.sign_in(&b, IW, &app.password(IW), &[]).await;
    let iw = app.user("fabrikam", IW).await;
    let entries = async |app: &TestApp| log(app).await.iter().filter(|e| e.user_id == Some(iw.id)).count();
    assert_eq!(entries(&app).await, 1, "the interactive sign-in");
    for i in 0..60 {
        let p = b.get(&rp.authorize_url(&[]).url).await;
        assert!(p.location.as_deref().is_some_and(|l| l.contains("code=")), "reuse {i}: {}", p.body);
    }
    assert_eq!(entries(&app).await, 2, "sixty reuses in a minute: one aggregated entry");
    let before = app.snapshot().await;
    let resp = b.http.get(rp.authorize_url(&[]).url).send().await.unwrap();
    let retry = resp.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
    let page = page_of(resp.status(), resp.text().await.unwrap());
    assert_eq!((page.status, page.error_code().as_deref()), (StatusCode::TOO_MANY_REQUESTS, Some("sso_rate_limited")));
    assert!(retry.unwrap().parse::<i64>().unwrap() > 0);
    assert_same(&before, &app.snapshot().await, "a refused reuse changes nothing");
    app.clock.advance(61);
    let p = b.get(&rp.authorize_url(&[]).url).await;
    assert!(p.location.as_deref().is_some_and(|l| l.contains("code=")), "{}", p.body);
    assert_eq!(entries(&app).await, 3, "the next minute is logged once more");
}

#[tokio::test]
async fn the_sign_in_log_is_kept_by_age_and_its_cap_drops_anonymous_failures_first() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    let iw = app.user("fabrikam", IW).await;
    let now = app.clock.now();
    let store = &app.state.store;
    let entry = |user: bool, at: i64, code: u32| SignInLogEntry {
        id: uuid::Uuid::new_v4().to_string(),
        created_at: at,
        user_id: user.then_some(iw.id),
        app_id: "test-rp".into(),
        status: gatehouse::model::Status { error_code: code, ..Default::default() },
        ..Default::default()
    };
    let base = store.signin_log_len(&tid).await;
    store.append_signin_log(&tid, &mut entry(true, now - 31 * 86400, 0)).await.unwrap();
    for _ in 0..3 {
        store.append_signin_log(&tid, &mut entry(true, now - 86400, 0)).await.unwrap();
    }
    for _ in 0..5 {
        store.append_signin_log(&tid, &mut entry(false, now, 50126)).await.unwrap();
    }
    // Age first: the 31-day-old entry goes, all else stays under a roomy cap.
    store.trim_signin_log(now - gatehouse::model::LOG_RETENTION_SECS, 1000).await.unwrap();
    assert_eq!(store.signin_log_len(&tid).await, base + 8);
    assert!(store.signin_log(&tid, 100).await.unwrap().iter().all(|e| e.created_at > now - 30 * 86400));
    // At the cap, a flood of anonymous failures goes before anyone's history.
    store.trim_signin_log(now - gatehouse::model::LOG_RETENTION_SECS, base + 4).await.unwrap();
    let kept = store.signin_log(&tid, 100).await.unwrap();
    assert_eq!(kept.len(), base + 4);
    assert_eq!(kept.iter().filter(|e| e.user_id == Some(iw.id)).count(), 3, "the members' history survives");
}

// ---------- TOTP and recovery codes ----------

#[tokio::test]
async fn concurrent_wrong_totp_codes_count_exactly_the_limit_then_lock() {
    let app = spawn_app().await;
    let (secret, _) = enrol_iw(&app).await;
    let methods = app.user("fabrikam", IW).await.totp_methods;
    let (counted, locked, pages) = totp_race(&app, &secret).await;
    assert_eq!(counted, 5);
    assert!(locked);
    assert_eq!(count_text(&pages, "locked"), 11 + 1, "the fifth failure locks; the rest are refused unchecked");
    // Locked now even for the right code; the method is unchanged.
    let (b, p) = at_challenge(&app).await;
    let right = b.submit(&p.form("totp-challenge").set("code", &totp_at(&secret, app.clock.now()))).await;
    assert!(right.text("p.error").unwrap().contains("locked"));
    assert_eq!(app.user("fabrikam", IW).await.totp_methods, methods);
}

#[tokio::test]
async fn one_recovery_code_used_by_eight_requests_at_once_succeeds_once() {
    let app = spawn_app().await;
    let (_, codes) = enrol_iw(&app).await;
    assert_eq!(recovery_race(&app, &codes[0]).await, 1);
    let left = app.user("fabrikam", IW).await.recovery_code_hashes;
    assert_eq!(left.len(), 9, "spent once");
    assert!(!left.contains(&gatehouse::mfa::hash_code(&codes[0])));
}

// ---------- the bad-input table: concurrent attempts on every counter ----------

#[tokio::test]
async fn concurrent_attempt_races_on_every_counter_table() {
    let mut failures = Vec::new();
    let mut row = |name: &str, ok: bool, got: String| {
        println!("{}  races / {name}: {got}", if ok { "ok  " } else { "FAIL" });
        if !ok {
            failures.push(format!("{name}: {got}"));
        }
    };
    {
        let app = spawn_app().await;
        let (checks, pages) = password_race(&app, IW).await;
        let locked = count_text(&pages, "locked");
        row(
            "password: 16 wrong at once → 5 hashes, 11 locked",
            checks == 5 && locked == 11,
            format!("{checks} checks, {locked} locked"),
        );
        let (checks, _) = password_race(&app, "ghost@fabrikam.example").await;
        row("password, unknown login: the same limit", checks == 5, format!("{checks} checks"));
    }
    {
        let app = spawn_with(|c| c.workers = 8).await;
        let b = app.browser();
        let p = at_email_code(&app, &b, PAT).await;
        let (attempts, pages) = email_code_race(&app, &b, &p).await;
        let compared = count_text(&pages, "not right");
        row(
            "email code: 16 wrong at once → 5 counted, 5 compared",
            attempts == 5 && compared == 5,
            format!("{attempts} counted, {compared} compared"),
        );
    }
    {
        let app = spawn_app().await;
        let (_, codes) = enrol_iw(&app).await;
        let wins = recovery_race(&app, &codes[1]).await;
        row("recovery code: one code, 8 at once → 1 wins", wins == 1, format!("{wins} won"));
        // The seven losers were wrong codes: MFA is locked now; the TOTP race needs a fresh account.
        let app = spawn_app().await;
        let (secret, _) = enrol_iw(&app).await;
        let (counted, locked, _) = totp_race(&app, &secret).await;
        row(
            "TOTP: 16 wrong at once → 5 counted, then locked",
            counted == 5 && locked,
            format!("{counted} counted, locked {locked}"),
        );
    }
    assert!(failures.is_empty(), "{} race(s) failed:\n{}", failures.len(), failures.join("\n"));
}
