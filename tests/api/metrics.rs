//! `/metrics` (DESIGN §15): a flow that touches every metric family, then one scrape of the
//! metrics listener read family by family with its labels, checked by `promtool check
//! metrics`, and searched for anything unbounded (a user, a mail, an address, a raw path).
use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;

use crate::guests::{accept, to_consent};
use crate::helpers::*;

const INSTALL: &str =
    "promtool is missing: run `.ci/run`, or `apt-get install -y prometheus` (Debian's package has it)";

/// One sample: its family name and its labels.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
}

/// The samples of a Prometheus text scrape (comments skipped; label values unescaped enough
/// for the label values this server writes, which hold no quote or backslash).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (head, _value) = line.rsplit_once(' ').expect("a sample has a value");
        let (name, labels) = match head.split_once('{') {
            None => (head.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let mut labels = BTreeMap::new();
                for pair in body.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                    labels.insert(k.to_string(), v.trim_end_matches('"').to_string());
                }
                (name.to_string(), labels)
            }
        };
        out.push(Sample { name, labels });
    }
    out
}

/// Whether some sample of `family` carries every label of `want`.
fn has(all: &[Sample], family: &str, want: &[(&str, &str)]) -> bool {
    all.iter().any(|s| s.name == family && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
}

async fn proof_up(app: &TestApp, browser: &Browser, page: Page) -> Page {
    use gatehouse::clock::Clock;
    assert!(page.has("code#totp-secret"), "expected proof-up at {}:\n{}", page.url, page.body);
    let secret = page.text("code#totp-secret").unwrap();
    let wrong = browser.post_abs(&page.url, &page.form("totp-enroll").set("code", "000000")).await;
    assert!(wrong.has("code#totp-secret"), "a wrong code shows proof-up again: {}", wrong.body);
    let form = page.form("totp-enroll").set("code", &totp_at(&secret, app.clock.now()));
    let shown = browser.post_abs(&page.url, &form).await;
    assert!(shown.has("ul#recovery-codes"), "{}", shown.body);
    browser.follow_any(browser.post_abs(&page.url, &shown.form("continue")).await).await
}

#[tokio::test]
async fn metrics_listener_serves_every_family_with_bounded_labels_and_promtool_accepts_it() {
    let app = spawn_with(|c| c.metrics_bind = Some("127.0.0.1:0".parse().unwrap())).await;
    let port = app.metrics_port.expect("metrics_bind set: a metrics listener");
    let http = plain_client();

    // A member signs in (interactive, CA allow, a code grant), then refreshes (a token sign-in).
    let rp = app.rp("fabrikam");
    let iw = "iw@fabrikam.example";
    let (tokens, _) = rp.sign_in(&app.browser(), iw, &app.password(iw), &[]).await;
    let (status, body) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An app token (client credentials) and a grant type nobody supports.
    app.admin_token().await;
    let (status, body) = rp.token(&[("grant_type", "urn:example:sally@contoso.example")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_grant_type");

    // A guest redeems to Foo, which asks for MFA: proof-up with one wrong code first.
    let sally = "sally@contoso.example";
    let inv = app.invite(sally, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let browser = app.browser();
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &app.password(sally)).await;
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    let shown = proof_up(&app, &browser, page).await;
    assert_eq!(claims_table(&shown)["amr"], "fed otp mfa");
    // The same ticket again: refused, counted as a redemption that did not happen.
    let again = app.browser();
    let replay = again.follow_any(again.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    assert!(replay.status.is_client_error(), "a spent ticket is refused: {}", replay.status);

    // Five wrong passwords lock the account.
    let admin = "admin@fabrikam.example";
    for _ in 0..5 {
        let page = app.browser().sign_in(&rp.authorize_url(&[]).url, admin, "not the password").await;
        assert!(page.has("form#password"), "a wrong password shows the password page again");
    }
    let locked = app.browser().sign_in(&rp.authorize_url(&[]).url, admin, &app.password(admin)).await;
    assert!(locked.body.contains("locked"), "{}", locked.body);
    // A raw path nobody routes, naming a user: it must not become a label.
    let stray = http.get(format!("{}/nowhere/sally@contoso.example/10.1.2.3", app.url)).send().await.unwrap();
    assert_eq!(stray.status(), StatusCode::NOT_FOUND);

    let public = http.get(format!("{}/metrics", app.url)).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND, "/metrics is not on the public port");
    let scrape = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
    assert_eq!(scrape.status(), StatusCode::OK);
    let ct = scrape.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = scrape.text().await.unwrap();
    let all = samples(&text);

    let expect: &[(&str, &[(&str, &str)])] = &[
        (
            "gatehouse_http_requests_total",
            &[("route", "/{tenant}/oauth2/v2.0/token"), ("method", "POST"), ("status", "200")],
        ),
        ("gatehouse_http_requests_total", &[("route", "/{tenant}/login/password"), ("method", "POST")]),
        ("gatehouse_http_requests_total", &[("route", "unmatched"), ("method", "GET"), ("status", "404")]),
        (
            "gatehouse_http_request_duration_seconds_bucket",
            &[("route", "/{tenant}/oauth2/v2.0/authorize"), ("method", "GET"), ("le", "+Inf")],
        ),
        ("gatehouse_http_request_duration_seconds_count", &[("route", "/graph/v1.0/invitations"), ("method", "POST")]),
        (
            "gatehouse_signins_total",
            &[("tenant", "fabrikam"), ("kind", "member"), ("mode", "interactive"), ("result", "success")],
        ),
        (
            "gatehouse_signins_total",
            &[("tenant", "fabrikam"), ("kind", "member"), ("mode", "token"), ("result", "success")],
        ),
        (
            "gatehouse_signins_total",
            &[("tenant", "fabrikam"), ("kind", "guest"), ("mode", "interactive"), ("result", "mfa_required")],
        ),
        (
            "gatehouse_signins_total",
            &[("tenant", "fabrikam"), ("kind", "guest"), ("mode", "interactive"), ("result", "success")],
        ),
        ("gatehouse_signins_total", &[("tenant", "fabrikam"), ("kind", "member"), ("result", "wrong_password")]),
        ("gatehouse_signins_total", &[("tenant", "fabrikam"), ("kind", "member"), ("result", "account_locked")]),
        (
            "gatehouse_signins_total",
            &[("tenant", "contoso"), ("kind", "member"), ("mode", "interactive"), ("result", "success")],
        ),
        ("gatehouse_mfa_prompts_total", &[("tenant", "fabrikam"), ("step", "totp_enroll")]),
        ("gatehouse_mfa_verifications_total", &[("tenant", "fabrikam"), ("method", "totp"), ("result", "failure")]),
        ("gatehouse_mfa_verifications_total", &[("tenant", "fabrikam"), ("method", "totp"), ("result", "success")]),
        ("gatehouse_ca_decisions_total", &[("tenant", "fabrikam"), ("result", "allow")]),
        ("gatehouse_ca_decisions_total", &[("tenant", "fabrikam"), ("result", "mfa")]),
        (
            "gatehouse_token_grants_total",
            &[("tenant", "fabrikam"), ("grant_type", "authorization_code"), ("result", "success")],
        ),
        (
            "gatehouse_token_grants_total",
            &[("tenant", "fabrikam"), ("grant_type", "refresh_token"), ("result", "success")],
        ),
        (
            "gatehouse_token_grants_total",
            &[("tenant", "fabrikam"), ("grant_type", "client_credentials"), ("result", "success")],
        ),
        (
            "gatehouse_token_grants_total",
            &[("tenant", "fabrikam"), ("grant_type", "other"), ("result", "unsupported_grant_type")],
        ),
        ("gatehouse_redemptions_total", &[("tenant", "fabrikam"), ("result", "success")]),
        ("gatehouse_lockouts_total", &[("tenant", "fabrikam"), ("kind", "password")]),
        ("gatehouse_store_operation_duration_seconds_bucket", &[("operation", "tenant_by_slug"), ("le", "+Inf")]),
        ("gatehouse_store_operation_duration_seconds_count", &[("operation", "use_code")]),
        ("gatehouse_store_operation_duration_seconds_count", &[("operation", "rotate_refresh_seen")]),
        ("gatehouse_store_operation_duration_seconds_count", &[("operation", "redeem")]),
    ];
    let missing: Vec<String> =
        expect.iter().filter(|(f, l)| !has(&all, f, l)).map(|(f, l)| format!("{f} {l:?}")).collect();
    assert!(missing.is_empty(), "families or labels missing from the scrape:\n{}\n---\n{text}", missing.join("\n"));
    for family in ["gatehouse_http_requests_total", "gatehouse_signins_total", "gatehouse_lockouts_total"] {
        assert!(text.contains(&format!("# HELP {family} ")), "{family} has a HELP line");
        assert!(text.contains(&format!("# TYPE {family} counter")), "{family} is a counter");
    }
    assert!(text.contains("# TYPE gatehouse_http_request_duration_seconds histogram"));

    // Bounded labels: no user, mail, address or raw path anywhere in a label value.
    let values: BTreeSet<&str> = all.iter().flat_map(|s| s.labels.values().map(String::as_str)).collect();
    let users: Vec<String> = app.creds.users.iter().map(|u| u.login.clone()).collect();
    for v in &values {
        assert!(!v.contains('@'), "a label value holds a mail: {v}");
        assert!(v.parse::<std::net::IpAddr>().is_err() && !v.contains("127.0.0.1"), "a label holds an address: {v}");
        assert!(!v.contains("nowhere") && !v.contains("sally"), "a label holds a client-supplied path: {v}");
        for u in &users {
            let local = u.split('@').next().unwrap();
            assert!(!v.contains(u.as_str()) && *v != local, "a label holds the user {u}: {v}");
        }
    }
    let guest = app.user("fabrikam", sally).await;
    assert!(!text.contains(&guest.id.to_string()), "no user id in the scrape");

    promtool_check(&text).await;
}

/// `promtool check metrics` on the scrape; without promtool the check is skipped, unless CI
/// requires every test to run (then it fails with how to install it).
async fn promtool_check(text: &str) {
    use tokio::io::AsyncWriteExt;
    let Ok(mut child) = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    else {
        crate::nodes::skip(INSTALL);
        return;
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("promtool answers within 60 s")
        .unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics refused the scrape:\n{said}\n---\n{text}");
}
