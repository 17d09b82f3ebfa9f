//! Guest lifecycle (DESIGN §14): `signInActivity` on users (`$select`, `$filter` on its
//! dates), `revokeSignInSessions`, refresh tokens of users who may no longer sign in, and
//! `gatehouse guests inactive` run as a process. Every bad input asserts its error and an
//! unchanged store.
use gatehouse::clock::{Clock, ManualClock, rfc3339};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;
use crate::process::BIN;

const IW: &str = "iw@fabrikam.example";
const ADMIN: &str = "admin@fabrikam.example";
const SALLY: &str = "sally@contoso.example";
const DAY: i64 = 86_400;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET users/{id}?$select=signInActivity`.
async fn activity(app: &TestApp, token: &str, login: &str) -> Value {
    let id = app.user("fabrikam", login).await.id;
    let (status, body) = app.graph(Method::GET, &format!("users/{id}?$select=signInActivity"), Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["signInActivity"].clone()
}

/// The UPNs `GET users?$filter=…` answers.
async fn filtered(app: &TestApp, token: &str, filter: &str) -> Vec<String> {
    let path = format!("users?$filter={}&$select=userPrincipalName,signInActivity", enc(filter));
    let (status, body) = app.graph(Method::GET, &path, Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{filter}: {body}");
    let mut upns: Vec<String> =
        body["value"].as_array().unwrap().iter().map(|u| u["userPrincipalName"].as_str().unwrap().into()).collect();
    upns.sort();
    upns
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let (status, body) = app.rp("fabrikam").post_authenticated("oauth2/v2.0/introspect", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn assert_invalid_grant(status: StatusCode, body: &Value) -> String {
    assert_oauth_error(status, body, StatusCode::BAD_REQUEST, "invalid_grant");
    body["error_description"].as_str().unwrap().to_string()
}

/// A guest redeems an invitation (through the home tenant) and then signs in to test-rp by
/// SSO; returns the browser and the tokens.
async fn redeemed_guest(app: &TestApp, email: &str) -> (Browser, Value) {
    let inv = app.invite(email, LANDING, None).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), email, &app.password(email)).await;
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let loc = browser.get(&start.url).await.location.unwrap();
    let (status, tokens) = rp.exchange(&query_param(&loc, "code").unwrap(), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (browser, tokens)
}

#[tokio::test]
async fn sign_in_activity_is_null_until_a_sign_in_and_a_refresh_record_it() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    assert_eq!(
        activity(&app, &token, IW).await,
        json!({"lastSignInDateTime": null, "lastNonInteractiveSignInDateTime": null})
    );
    // Not in the default set, as in Graph: neither in the list nor on one user.
    let iw = app.user("fabrikam", IW).await.id;
    let (_, list) = app.graph(Method::GET, "users", Some(&token), None).await;
    assert!(list["value"].as_array().unwrap().iter().all(|u| u.get("signInActivity").is_none()), "{list}");
    let (_, one) = app.graph(Method::GET, &format!("users/{iw}"), Some(&token), None).await;
    assert!(one.get("signInActivity").is_none() && one["userPrincipalName"] == IW, "{one}");
    // `$select` names what comes back (and the id).
    let (_, selected) = app.graph(Method::GET, &format!("users/{iw}?$select=signInActivity"), Some(&token), None).await;
    assert_eq!(selected.as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "signInActivity"], "{selected}");

    let rp = app.rp("fabrikam");
    let signed_in = app.clock.now();
    let (tokens, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    assert_eq!(
        activity(&app, &token, IW).await,
        json!({"lastSignInDateTime": rfc3339(signed_in), "lastNonInteractiveSignInDateTime": null})
    );

    app.clock.advance(120);
    let (status, refreshed) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let first_refresh = app.clock.now();
    assert_eq!(
        activity(&app, &token, IW).await,
        json!({"lastSignInDateTime": rfc3339(signed_in), "lastNonInteractiveSignInDateTime": rfc3339(first_refresh)})
    );

    // Within a minute a refresh does not write the user again (the token endpoint's load).
    app.clock.advance(30);
    let before = app.user("fabrikam", IW).await;
    let (status, again) = rp.refresh(refreshed["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(app.user("fabrikam", IW).await, before, "the user record is not written within the bound");
    app.clock.advance(31);
    let (status, _) = rp.refresh(again["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        activity(&app, &token, IW).await["lastNonInteractiveSignInDateTime"],
        rfc3339(app.clock.now()),
        "older than a minute: written"
    );
}

#[tokio::test]
async fn a_filter_on_the_last_sign_in_selects_by_instant_and_never_matches_null() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let t0 = app.clock.now();
    rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    redeemed_guest(&app, SALLY).await;
    app.invite("pat@northwind.example", LANDING, None).await;
    app.clock.advance(2 * DAY);
    let t1 = app.clock.now();
    rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;
    let token = app.admin_token().await;
    let (sally, iw, admin) = ("sally_contoso.example#EXT#@fabrikam.example", IW, ADMIN);
    let mid = rfc3339(t0 + DAY);
    let at = |op: &str, t: &str| format!("signInActivity/lastSignInDateTime {op} {t}");

    assert_eq!(filtered(&app, &token, &at("le", &mid)).await, [iw, sally]);
    assert_eq!(filtered(&app, &token, &at("lt", &rfc3339(t1))).await, [iw, sally]);
    assert_eq!(filtered(&app, &token, &at("ge", &mid)).await, [admin]);
    assert_eq!(filtered(&app, &token, &at("gt", &rfc3339(t1))).await, Vec::<String>::new());
    assert_eq!(filtered(&app, &token, &at("ge", &rfc3339(t1))).await, [admin]);
    // The same instant in another offset, and with fractional seconds, compares as an instant.
    let t1_plus2 = chrono::DateTime::from_timestamp(t1, 0)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    assert!(t1_plus2.ends_with("+02:00"), "{t1_plus2}");
    assert_eq!(filtered(&app, &token, &at("eq", &t1_plus2)).await, [admin]);
    // Combined with the guest filter; a user who never signed in matches no comparison.
    assert_eq!(filtered(&app, &token, &format!("userType eq 'Guest' and {}", at("le", &mid))).await, [sally]);
    assert_eq!(filtered(&app, &token, &format!("userType eq 'Member' and {}", at("le", &mid))).await, [iw]);
    // `eq null` finds who never signed in: pat, invited and not redeemed.
    let never = filtered(&app, &token, "signInActivity/lastSignInDateTime eq null").await;
    assert_eq!(never, ["pat_northwind.example#EXT#@fabrikam.example"]);
    // Non-interactive: only refreshes count.
    assert_eq!(
        filtered(&app, &token, &format!("signInActivity/lastNonInteractiveSignInDateTime ge {}", rfc3339(t0))).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn bad_sign_in_activity_filters_are_graph_errors_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    app.rp("fabrikam").sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    let iw = app.user("fabrikam", IW).await.id;
    let before = app.snapshot().await;
    for filter in [
        "signInActivity/lastSignInDateTime le 'yesterday'",
        "signInActivity/lastSignInDateTime le yesterday",
        "signInActivity/lastSignInDateTime le 2026-13-01T00:00:00Z",
        "signInActivity/lastSignInDateTime le 42",
        "signInActivity/lastSignInDateTime le true",
        "signInActivity/lastSignInDateTime le null",
        "signInActivity/lastNonInteractiveSignInDateTime gt 'x'",
        "signInActivity/lastSignInDateTime like 2026-01-01T00:00:00Z",
        "signInActivity/lastSignInDateTime",
        "signInActivity/lastSignInDateTime le",
        "signInActivity/firstSignInDateTime le 2026-01-01T00:00:00Z",
        "signInActivity le 2026-01-01T00:00:00Z",
        "userType eq 'Guest' and signInActivity/lastSignInDateTime le 'soon'",
    ] {
        let (status, err) = app.graph(Method::GET, &format!("users?$filter={}", enc(filter)), Some(&token), None).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty(), "{filter}: {err}");
    }
    // One user has nothing to filter.
    let path = format!("users/{iw}?$filter={}", enc("signInActivity/lastSignInDateTime le 2026-01-01T00:00:00Z"));
    let (status, err) = app.graph(Method::GET, &path, Some(&token), None).await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    assert_same(&before, &app.snapshot().await, "refused filters change nothing");
}

#[tokio::test]
async fn revoking_sign_in_sessions_ends_refresh_tokens_sessions_and_earlier_access_tokens() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let app_token = app.admin_token().await;
    // A member admin's token for the admin API, and iw's token for test-rp (userinfo).
    let admin_browser = app.browser();
    let (admin, _) = rp
        .sign_in(&admin_browser, ADMIN, &app.password(ADMIN), &[("scope", "openid offline_access Directory.Read.All")])
        .await;
    let admin_access = admin["access_token"].as_str().unwrap().to_string();
    let admin_refresh = admin["refresh_token"].as_str().unwrap().to_string();
    let (iw, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    let iw_access = iw["access_token"].as_str().unwrap().to_string();
    let iw_refresh = iw["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = app.graph(Method::GET, "users", Some(&admin_access), None).await;
    assert_eq!(status, StatusCode::OK, "the admin's token reads the directory");
    assert_eq!(rp.userinfo(&iw_access).await.status(), StatusCode::OK);
    assert_eq!(introspect(&app, &iw_access).await["active"], true);
    assert_eq!(introspect(&app, &admin_access).await["active"], true);

    // Bad input first: an unknown user, and a caller who may only read.
    let before = app.snapshot_without_log().await;
    let (status, err) = app
        .graph(Method::POST, &format!("users/{}/revokeSignInSessions", uuid::Uuid::new_v4()), Some(&app_token), None)
        .await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let iw_id = app.user("fabrikam", IW).await.id;
    let (status, err) =
        app.graph(Method::POST, &format!("users/{iw_id}/revokeSignInSessions"), Some(&admin_access), None).await;
    assert_graph_error(status, &err, StatusCode::FORBIDDEN, "Authorization_RequestDenied");
    assert_same(&before, &app.snapshot_without_log().await, "refused revocations change nothing");

    for login in [IW, ADMIN] {
        let id = app.user("fabrikam", login).await.id;
        let (status, body) =
            app.graph(Method::POST, &format!("users/{id}/revokeSignInSessions"), Some(&app_token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["value"], true, "{body}");
    }
    let before = app.snapshot_without_log().await;
    let (status, err) = app.graph(Method::GET, "users", Some(&admin_access), None).await;
    assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
    assert_eq!(rp.userinfo(&iw_access).await.status(), StatusCode::UNAUTHORIZED);
    for t in [&iw_access, &admin_access, &iw_refresh, &admin_refresh] {
        assert_eq!(introspect(&app, t).await, json!({"active": false}));
    }
    // The SSO session ended too: a silent sign-in needs the user.
    let silent = admin_browser.get(&rp.authorize_url(&[("prompt", "none")]).url).await;
    let loc = silent.location.expect("an answer to the RP");
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"), "{loc}");
    assert_same(&before, &app.snapshot_without_log().await, "refused credentials change nothing");
    for refresh in [&iw_refresh, &admin_refresh] {
        let (status, body) = rp.refresh(refresh).await;
        let why = assert_invalid_grant(status, &body);
        assert!(why.contains("revoked"), "{why}");
    }
    // A new sign-in works again.
    let (fresh, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    assert_eq!(rp.userinfo(fresh["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_of_disabled_deleted_and_policy_blocked_users_are_refused() {
    let app = spawn_app().await;
    let rp = app.rp("fabrikam");
    let app_token = app.admin_token().await;
    let (iw, _) = rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    let (admin, _) = rp.sign_in(&app.browser(), ADMIN, &app.password(ADMIN), &[]).await;
    let (_, sally) = redeemed_guest(&app, SALLY).await;

    // Blocked by a policy: refused, nothing rotated, and the client is told to bring the user back.
    let sally_id = app.user("fabrikam", SALLY).await.id;
    let block: gatehouse::policy::Policy = serde_json::from_value(json!({
        "id": "block-sally", "displayName": "Block sally", "state": "enabled",
        "conditions": {"users": {"includeUsers": [sally_id.to_string()]}, "applications": {"includeApplications": ["test-rp"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    }))
    .unwrap();
    app.state.store.put_policy(&app.tenant_id("fabrikam").await, &block).await.unwrap();
    let before = app.snapshot_without_log().await;
    let (status, body) = rp.refresh(sally["refresh_token"].as_str().unwrap()).await;
    let why = assert_invalid_grant(status, &body);
    assert!(why.contains("interaction_required") && why.contains("blocked by conditional access"), "{why}");
    assert_same(&before, &app.snapshot_without_log().await, "a blocked refresh changes nothing");

    let iw_id = app.user("fabrikam", IW).await.id;
    let (status, _) = app
        .graph(Method::PATCH, &format!("users/{iw_id}"), Some(&app_token), Some(json!({"accountEnabled": false})))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let admin_id = app.user("fabrikam", ADMIN).await.id;
    let (status, _) = app.graph(Method::DELETE, &format!("users/{admin_id}"), Some(&app_token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for (tokens, what) in [(&iw, "disabled"), (&admin, "no longer exists")] {
        let (status, body) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
        let why = assert_invalid_grant(status, &body);
        assert!(why.contains(what), "{why}");
    }
}

/// The CLI as a process against `app` with the demo's admin client: (success, stdout, stderr).
async fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .args(["--server", &app.url, "--tenant", "fabrikam", "--client-id", &app.creds.admin.client_id])
        .args(["--client-secret", &app.creds.admin.client_secret, "--data-dir"])
        .arg(app.dir.path())
        .output()
        .await
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The UPNs in the CLI's table (rows whose first cell is a guest UPN).
fn listed(table: &str) -> Vec<String> {
    let mut upns: Vec<String> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| c.contains("#EXT#"))
        .map(String::from)
        .collect();
    upns.sort();
    upns
}

#[tokio::test]
async fn guests_inactive_lists_then_disables_or_deletes_only_guests_without_recent_activity() {
    // The server starts 40 days ago, so it records every time itself; the CLI compares them
    // with the local clock once the server's clock is back at today.
    let start = gatehouse::clock::SystemClock.now() - 40 * DAY;
    let app = spawn_with_clock(ManualClock::new(start), |_| {}).await;
    let rp = app.rp("fabrikam");
    // 40 days ago: sally and contoso's admin redeem and sign in, a third invitation stays pending.
    let (_, sally) = redeemed_guest(&app, SALLY).await;
    redeemed_guest(&app, "admin@contoso.example").await;
    app.invite("old@partner.example", LANDING, None).await;
    rp.sign_in(&app.browser(), IW, &app.password(IW), &[]).await;
    // Sally's app keeps refreshing (a non-interactive sign-in counts), the last one yesterday.
    let mut refresh = sally["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..3 {
        app.clock.advance(13 * DAY);
        let (status, body) = rp.refresh(&refresh).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        refresh = body["refresh_token"].as_str().unwrap().to_string();
    }
    app.clock.advance(DAY);
    app.invite("fresh@partner.example", LANDING, None).await;
    let stale = vec![
        "admin_contoso.example#EXT#@fabrikam.example".to_string(),
        "old_partner.example#EXT#@fabrikam.example".to_string(),
    ];

    // Refused arguments: a clear message, nothing changed.
    let before = app.snapshot_without_log().await;
    for (args, message) in [
        (&["guests", "inactive", "--days", "0"][..], "not a number of days from 1 to 36500"),
        (&["guests", "inactive", "--days", "-3"][..], "--days"),
        (&["guests", "inactive", "--days", "many"][..], "not a number of days"),
        (&["guests", "inactive"][..], "--days"),
        (&["guests", "inactive", "--days", "30", "--disable", "--delete"][..], "cannot be used with"),
    ] {
        let (ok, out, err) = cli(&app, args).await;
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    assert_same(&before, &app.snapshot_without_log().await, "refused arguments change nothing");

    // The dry run lists and changes nothing.
    let (ok, table, err) = cli(&app, &["guests", "inactive", "--days", "30"]).await;
    assert!(ok, "{err}");
    assert_eq!(listed(&table), stale, "{table}");
    assert!(table.contains("dry run: nothing changed; pass --disable or --delete"), "{table}");
    let old_row = table.lines().find(|l| l.starts_with("old_partner")).unwrap();
    assert!(old_row.contains("PendingAcceptance") && old_row.contains("never"), "{old_row}");
    let (ok, table, _) = cli(&app, &["guests", "inactive", "--days", "41"]).await;
    assert!(ok && listed(&table).is_empty(), "nothing is 41 days old: {table}");
    let (ok, out, _) = cli(&app, &["guests", "inactive", "--days", "30", "--json"]).await;
    assert!(ok, "{out}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["dryRun"], true);
    let guests = answer["guests"].as_array().unwrap();
    assert_eq!(guests.len(), 2, "{answer}");
    assert!(guests.iter().all(|g| g["action"] == "none" && g["accountEnabled"] == true), "{answer}");
    let admin_guest = guests.iter().find(|g| g["userPrincipalName"] == stale[0].as_str()).unwrap();
    assert_eq!(admin_guest["lastSignInDateTime"], rfc3339(start), "signed in when the server started: {answer}");
    assert_same(&before, &app.snapshot_without_log().await, "a dry run changes nothing");

    // --disable: the two are disabled (and their tokens end); the others stay as they were.
    let sally_before = app.user("fabrikam", SALLY).await;
    let (ok, out, err) = cli(&app, &["guests", "inactive", "--days", "30", "--disable"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("disabled 2 guest(s)"), "{out}");
    for upn in &stale {
        assert!(!app.user("fabrikam", upn).await.account_enabled, "{upn}");
    }
    assert_eq!(app.user("fabrikam", SALLY).await, sally_before, "sally refreshed yesterday");
    assert!(app.user("fabrikam", "fresh@partner.example").await.account_enabled);
    assert!(app.user("fabrikam", IW).await.account_enabled, "members are not guests");
    let before = app.snapshot_without_log().await;
    let (ok, out, _) = cli(&app, &["guests", "inactive", "--days", "30", "--disable"]).await;
    assert!(ok && out.contains("already disabled") && out.contains("disabled 0 guest(s)"), "{out}");
    assert_same(&before, &app.snapshot_without_log().await, "disabling again changes nothing");

    // --delete: they are gone; the others remain.
    let (ok, out, err) = cli(&app, &["guests", "inactive", "--days", "30", "--delete"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("deleted 2 guest(s)"), "{out}");
    let tenant = app.tenant_id("fabrikam").await;
    for upn in &stale {
        assert!(app.state.store.user_by_login(&tenant, upn).await.unwrap().is_none(), "{upn}");
    }
    for login in [SALLY, "fresh@partner.example", IW] {
        assert!(app.state.store.user_by_login(&tenant, login).await.unwrap().is_some(), "{login}");
    }
    let (ok, table, _) = cli(&app, &["guests", "inactive", "--days", "30"]).await;
    assert!(ok && listed(&table).is_empty(), "{table}");
}

#[tokio::test]
async fn the_admin_page_shows_each_guests_last_sign_in() {
    let app = spawn_app().await;
    app.invite("pat@northwind.example", LANDING, None).await;
    let signed_in = app.clock.now();
    redeemed_guest(&app, SALLY).await;
    let browser = app.browser();
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let p = browser.follow(browser.submit(&login.form("identify").set("login", ADMIN)).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", &app.password(ADMIN))).await).await;
    assert!(page.has("main#admin"), "{}", page.body);
    assert!(page.text("section#guests table caption").is_some_and(|c| c.contains("last sign-in")), "{}", page.body);
    let headers: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("section#guests thead th[scope=col]").unwrap())
        .map(|th| th.text().collect())
        .collect();
    assert!(headers.iter().any(|h| h == "Last sign-in"), "{headers:?}");
    let cell = |upn: &str| {
        page.html()
            .select(&scraper::Selector::parse("section#guests tbody tr").unwrap())
            .find(|tr| {
                tr.select(&scraper::Selector::parse("th[scope=row]").unwrap()).any(|th| th.text().any(|t| t == upn))
            })
            .and_then(|tr| tr.select(&scraper::Selector::parse("td.last-sign-in").unwrap()).next())
            .map(|td| td.text().collect::<String>().trim().to_string())
    };
    assert_eq!(cell("pat_northwind.example#EXT#@fabrikam.example").as_deref(), Some("never"));
    assert_eq!(cell("sally_contoso.example#EXT#@fabrikam.example"), Some(rfc3339(signed_in)));
}
