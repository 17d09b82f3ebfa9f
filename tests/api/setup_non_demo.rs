//! A deployment set up without `--demo`, as an admin does on day one: tenants, domains, the
//! admin client and the first admin by the CLI on an empty data dir; then `gatehouse serve`
//! (no demo) and, through Graph, a member, a public client (PKCE, no secret) and a
//! confidential RS256 client; the member signs in through both, and a guest from a sibling
//! tenant is invited, redeems and signs in. No demo surface is served meanwhile.
use std::path::Path;
use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

use crate::applications::accept_app_consent;
use crate::guests::{accept, to_consent};
use crate::helpers::*;
use crate::non_demo::start_plain;
use crate::process::BIN;

const FAB_SECRET: &str = "fabrikam-admin-secret-0123456789abcdefghij";
const CON_SECRET: &str = "contoso-admin-secret-0123456789abcdefghijk";
const ADMIN_PW: &str = "First-admin-pw1";
const LANDING: &str = "https://payroll.example/welcome";

/// `gatehouse ARGS --data-dir DIR` with only the environment given (no demo, no credentials).
async fn gatehouse(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).arg("--data-dir").arg(dir);
    for var in ["GATEHOUSE_CONFIG", "GATEHOUSE__DEMO", "GATEHOUSE_CLIENT_SECRET", "GATEHOUSE_SERVER"] {
        c.env_remove(var);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().await.unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

async fn graph(base: &str, method: Method, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = plain_client().request(method, format!("{base}/graph/v1.0/{path}")).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn rp(base: &str, tenant: &str, client_id: &str, secret: Option<&str>) -> Rp {
    Rp {
        base: base.into(),
        tenant: tenant.into(),
        client_id: client_id.into(),
        secret: secret.map(String::from),
        redirect_uri: "http://127.0.0.1:9/callback".into(),
        http: plain_client(),
    }
}

async fn admin_token(base: &str, tenant: &str, secret: &str) -> String {
    let (status, body) =
        rp(base, tenant, "gatehouse-admin", Some(secret)).token(&[("grant_type", "client_credentials")]).await;
    assert_eq!(status, StatusCode::OK, "the bootstrap admin client gets a token: {body}");
    body["access_token"].as_str().unwrap().to_string()
}

async fn created(base: &str, path: &str, token: &str, body: Value) -> Value {
    let (status, answer) = graph(base, Method::POST, path, token, Some(body)).await;
    assert!(status == StatusCode::CREATED || status == StatusCode::OK, "{path}: {status} {answer}");
    answer
}

/// The code the RP got at the end of `page` (a redirect to its callback).
fn code_of(page: &Page) -> String {
    let loc = page.location.as_deref().unwrap_or_else(|| panic!("a redirect to the RP: {} {}", page.status, page.body));
    assert!(loc.starts_with("http://127.0.0.1:9/callback?"), "{loc}");
    query_param(loc, "code").unwrap_or_else(|| panic!("a code: {loc}"))
}

#[tokio::test]
async fn a_deployment_without_demo_is_set_up_by_cli_and_graph_and_signs_people_in() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let create = |extra: &'static [&'static str]| {
        let mut a = vec!["tenant", "create"];
        a.extend_from_slice(extra);
        a
    };
    let fabrikam: &[&str] = &[
        "--name",
        "Fabrikam",
        "--domain",
        "fabrikam.example",
        "--client-secret-env",
        "FAB_SECRET",
        "--admin-upn",
        "admin@fabrikam.example",
        "--admin-password-env",
        "ADMIN_PW",
    ];
    let env = [("FAB_SECRET", FAB_SECRET), ("CON_SECRET", CON_SECRET), ("ADMIN_PW", ADMIN_PW), ("SHORT", "short")];

    // Bad CLI input: a clear error, a failing exit, and no tenant written.
    for (args, says) in [
        (create(fabrikam), "UNSET"),
        (create(&["--name", "Fabrikam", "--domain", "not_a_domain"]), "not a domain"),
        (
            create(&["--name", "Fabrikam", "--domain", "fabrikam.example", "--client-secret-env", "SHORT"]),
            "32 characters",
        ),
        (create(&["--name", "Fabrikam", "--domain", "fabrikam.example", "--slug", "graph"]), "path the server uses"),
        (
            create(&[
                "--name",
                "Fabrikam",
                "--domain",
                "fabrikam.example",
                "--admin-upn",
                "a@other.example",
                "--admin-password-env",
                "ADMIN_PW",
            ]),
            "not in the tenant's domains",
        ),
        (
            create(&[
                "--name",
                "Fabrikam",
                "--domain",
                "fabrikam.example",
                "--admin-upn",
                "a@fabrikam.example",
                "--admin-password-env",
                "SHORT",
            ]),
            "at least 8",
        ),
    ] {
        let env: Vec<(&str, &str)> = if says == "UNSET" { vec![("ADMIN_PW", ADMIN_PW)] } else { env.to_vec() };
        let out = gatehouse(&args, d, &env).await;
        let says = if says == "UNSET" { "FAB_SECRET" } else { says };
        assert!(!out.status.success() && text(&out).contains(says), "{args:?}: {}", text(&out));
        let list = gatehouse(&["tenant", "list"], d, &[]).await;
        assert!(list.status.success() && !text(&list).contains("fabrikam"), "nothing written: {}", text(&list));
    }

    let out = gatehouse(&create(fabrikam), d, &env).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("gatehouse-admin") && !text(&out).contains(FAB_SECRET), "{}", text(&out));
    let contoso = create(&["--name", "Contoso", "--domain", "contoso.example", "--client-secret-env", "CON_SECRET"]);
    assert!(gatehouse(&contoso, d, &env).await.status.success());
    for (args, says) in [
        (create(&["--name", "Other", "--domain", "fabrikam.example"]), "already verified by the tenant fabrikam"),
        (create(&["--name", "Fabrikam", "--domain", "fabrikam2.example"]), "exists already"),
        (vec!["tenant", "add-domain", "--tenant", "fabrikam", "--domain", "contoso.example"], "already verified"),
        (vec!["tenant", "add-domain", "--tenant", "nobody", "--domain", "x.example"], "no tenant nobody"),
    ] {
        let out = gatehouse(&args, d, &env).await;
        assert!(!out.status.success() && text(&out).contains(says), "{args:?}: {}", text(&out));
    }
    let out = gatehouse(&["tenant", "add-domain", "--tenant", "fabrikam", "--domain", "fabrikam.test"], d, &[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let list = text(&gatehouse(&["tenant", "list"], d, &[]).await);
    assert!(list.contains("fabrikam.example,fabrikam.test") && list.contains("contoso.example"), "{list}");
    assert!(!list.contains("Other") && !list.contains("fabrikam2"), "{list}");

    let server = start_plain(d).await;
    let base = server.url.clone();
    server.assert_no_demo(&[]).await;
    let token = admin_token(&base, "fabrikam", FAB_SECRET).await;

    // A member in the added domain, a public client and a confidential RS256 client.
    let ivan_pw = "Ivan-pass-2026";
    created(&base, "users", &token, json!({
        "accountEnabled": true, "displayName": "Ivan", "mailNickname": "ivan", "userPrincipalName": "ivan@fabrikam.test",
        "passwordProfile": {"password": ivan_pw, "forceChangePasswordNextSignIn": false}})).await;
    let desktop = created(
        &base,
        "applications",
        &token,
        json!({"displayName": "Desktop", "isFallbackPublicClient": true,
        "publicClient": {"redirectUris": ["http://127.0.0.1/callback"]}}),
    )
    .await;
    let desktop = desktop["appId"].as_str().unwrap();
    let payroll = created(
        &base,
        "applications",
        &token,
        json!({"displayName": "Payroll", "idTokenSignedResponseAlg": "RS256",
        "web": {"redirectUris": ["http://127.0.0.1/callback"]}}),
    )
    .await;
    let payroll = payroll["appId"].as_str().unwrap();
    let pw = created(&base, &format!("applications/{payroll}/addPassword"), &token, json!({})).await;
    let payroll_secret = pw["secretText"].as_str().unwrap();

    // The public client: PKCE is required, and there is no secret.
    let public = rp(&base, "fabrikam", desktop, None);
    let no_pkce = Browser::new(&base)
        .get(&public.authorize_url(&[("code_challenge", ""), ("code_challenge_method", "")]).url)
        .await;
    let loc = no_pkce.location.clone().unwrap_or_default();
    assert!(query_param(&loc, "code").is_none(), "no code without PKCE: {loc}");
    assert!(query_param(&loc, "error").is_some() || no_pkce.error_code().is_some(), "{loc} {}", no_pkce.body);
    let browser = Browser::new(&base);
    let start = public.authorize_url(&[]);
    let page = accept_app_consent(&browser, browser.sign_in(&start.url, "ivan@fabrikam.test", ivan_pw).await).await;
    let (status, tokens) = public.exchange(&code_of(&page), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = public.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!((id["aud"].as_str(), id["preferred_username"].as_str()), (Some(desktop), Some("ivan@fabrikam.test")));

    // The confidential client: its ID token is RS256, verified against the JWKS.
    let conf = rp(&base, "fabrikam", payroll, Some(payroll_secret));
    let start = conf.authorize_url(&[]);
    let page = accept_app_consent(&browser, browser.follow(browser.get(&start.url).await).await).await;
    let (status, tokens) = conf.exchange(&code_of(&page), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let raw = tokens["id_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(raw).unwrap().alg, jsonwebtoken::Algorithm::RS256);
    let id = conf.verify(raw, "JWT").await;
    assert_eq!(id["aud"], payroll);

    // A guest: Sally, a member of Contoso (made by Contoso's own admin client), invited by Fabrikam.
    let con_token = admin_token(&base, "contoso", CON_SECRET).await;
    let sally_pw = "Sally-pass-2026";
    created(&base, "users", &con_token, json!({
        "accountEnabled": true, "displayName": "Sally", "mailNickname": "sally", "userPrincipalName": "sally@contoso.example",
        "passwordProfile": {"password": sally_pw}})).await;
    let inv = created(
        &base,
        "invitations",
        &token,
        json!({
        "invitedUserEmailAddress": "sally@contoso.example", "inviteRedirectUrl": LANDING}),
    )
    .await;
    let guest = Browser::new(&base);
    let consent = to_consent(&guest, inv["inviteRedeemUrl"].as_str().unwrap(), "sally@contoso.example", sally_pw).await;
    let done = accept(&guest, &consent).await;
    assert_eq!(done.location.as_deref(), Some(LANDING), "{}", done.body);
    let start = conf.authorize_url(&[]);
    let page = guest.follow_any(guest.get(&start.url).await).await;
    let page = if page.has("form#identify") {
        guest
            .follow_any(guest.post_abs(&page.url, &page.form("identify").set("login", "sally@contoso.example")).await)
            .await
    } else {
        page
    };
    let page = accept_app_consent(&guest, page).await;
    let (status, tokens) = conf.exchange(&code_of(&page), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id = conf.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!((id["acct"].clone(), id["email"].as_str()), (json!(1), Some("sally@contoso.example")), "{id}");

    server.assert_no_demo(&[ADMIN_PW.into(), ivan_pw.into(), sally_pw.into()]).await;
    server.kill().await;
    assert!(!d.join("demo-credentials.json").exists());
}
