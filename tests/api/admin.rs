//! The admin surface: Graph-shaped API, the CLI (as a process against a running server),
//! the admin pages, and What If against real sign-ins.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::guests::{LANDING, accept, to_consent};
use crate::helpers::*;
use crate::process::{BIN, start};

fn unix_now() -> i64 {
    use gatehouse::clock::Clock;
    gatehouse::clock::SystemClock.now()
}

async fn cli(args: &[&str], data_dir: &std::path::Path) -> (bool, String) {
    let out = tokio::process::Command::new(BIN).args(args).arg("--data-dir").arg(data_dir).output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The seed's "MFA reset for B2B collaboration users", with the CLI against a running server.
#[tokio::test]
async fn seed_mfa_reset_lists_methods_resets_and_sally_proofs_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let sally = "sally@contoso.example";
    let pw = server.password(sally);
    let redirect = format!("{}/demo/foo/login", server.url);
    let (ok, out) =
        cli(&["invite", "--email", sally, "--redirect", &redirect, "--app", "foo", "--json"], dir.path()).await;
    assert!(ok, "{out}");
    let inv: Value = serde_json::from_str(&out).unwrap();
    let browser = Browser::new(&server.url);
    let consent = to_consent(&browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &pw).await;
    let page = browser.follow_any(accept(&browser, &consent).await).await;
    let secret = page.text("code#totp-secret").expect("proof-up");
    let shown = browser.post_abs(&page.url, &page.form("totp-enroll").set("code", &totp_at(&secret, unix_now()))).await;
    let claims = claims_table(&browser.follow_any(browser.post_abs(&page.url, &shown.form("continue")).await).await);
    assert_eq!(claims["amr"], "fed otp mfa");

    let (ok, table) = cli(&["users", "list", "--with-methods"], dir.path()).await;
    assert!(ok, "{table}");
    let row = table
        .lines()
        .find(|l| l.contains("sally_contoso.example#EXT#@fabrikam.example"))
        .expect("sally listed with methods");
    assert!(row.contains("SoftwareOath") && row.contains("Guest"), "{row}");
    let (ok, out) = cli(&["mfa", "reset", "--upn", "sally_contoso.example#EXT#@fabrikam.example"], dir.path()).await;
    assert!(ok && out.contains("removed 1"), "{out}");
    let (_, table) = cli(&["users", "list", "--with-methods"], dir.path()).await;
    assert!(!table.contains("sally_contoso"), "no methods any more:\n{table}");
    let (ok, json_out) = cli(&["users", "list", "--guests", "--json"], dir.path()).await;
    assert!(ok);
    let guests: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(guests.as_array().unwrap().len(), 1);

    // Sally's next sign-in to Foo asks for proof-up again.
    let browser = Browser::new(&server.url);
    let page = browser.follow_any(browser.get(&format!("{}/demo/foo/login", server.url)).await).await;
    let home = browser.follow_any(browser.post_abs(&page.url, &page.form("identify").set("login", sally)).await).await;
    let back = browser.home_sign_in(home, sally, &pw).await;
    assert!(back.has("form#totp-enroll"), "{}", back.body);

    let (ok, out) = cli(&["signins", "--user", "sally_contoso.example#EXT#@fabrikam.example"], dir.path()).await;
    assert!(ok && out.contains("foo"), "{out}");
    let (ok, out) = cli(&["policy", "list"], dir.path()).await;
    assert!(ok && out.contains("Require MFA for Foo"), "{out}");
    let (ok, out) =
        cli(&["whatif", "--user", "iw@fabrikam.example", "--app", "foo", "--ip", "203.0.113.9"], dir.path()).await;
    assert!(ok && out.contains("outcome: mfa") && out.contains("Require MFA for Foo"), "{out}");
    let file = dir.path().join("policy.json");
    std::fs::write(&file, r#"{"displayName": "Require MFA for Foo", "state": "enabledForReportingButNotEnforced"}"#)
        .unwrap();
    let (ok, out) = cli(&["policy", "apply", "-f", file.to_str().unwrap()], dir.path()).await;
    assert!(ok && out.contains("updated"), "{out}");
    let (_, out) = cli(&["whatif", "--user", "iw@fabrikam.example", "--app", "foo"], dir.path()).await;
    assert!(out.contains("outcome: allow") && out.contains("reportOnlyInterrupted"), "{out}");
    let (ok, out) = cli(&["mfa", "reset", "--upn", "nobody@fabrikam.example"], dir.path()).await;
    assert!(!ok && out.contains("404"), "{out}");
    server.kill().await;
}

#[tokio::test]
async fn graph_users_support_filter_select_and_paging() {
    let app = spawn_app().await;
    for e in ["a@one.example", "b@two.example", "c@three.example"] {
        app.invite(e, LANDING, None).await;
    }
    let token = app.admin_token().await;
    let (status, page) = app
        .graph(
            Method::GET,
            "users?$filter=userType%20eq%20'Guest'&$top=2&$select=userPrincipalName",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = page["value"].as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|u| u.as_object().unwrap().keys().all(|k| k == "id" || k == "userPrincipalName")));
    let next = page["@odata.nextLink"].as_str().unwrap();
    let rest: Value = plain_client().get(next).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(rest["value"].as_array().unwrap().len(), 1);
    assert!(rest.get("@odata.nextLink").is_none());
    let upn = "b_two.example#EXT#@fabrikam.example";
    let (status, user) =
        app.graph(Method::GET, &format!("users/{}", upn.replace('#', "%23")), Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (user["userType"].as_str(), user["externalUserState"].as_str(), user["creationType"].as_str()),
        (Some("Guest"), Some("PendingAcceptance"), Some("Invitation"))
    );
    let (status, by_id) =
        app.graph(Method::GET, &format!("users/{}", user["id"].as_str().unwrap()), Some(&token), None).await;
    assert_eq!((status, by_id["userPrincipalName"].as_str()), (StatusCode::OK, Some(upn)));
    let (status, one) = app
        .graph(
            Method::GET,
            &format!("users?$filter=userPrincipalName%20eq%20'{}'", upn.replace('#', "%23")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, one["value"].as_array().unwrap().len()), (StatusCode::OK, 1));
    let (status, skus) = app.graph(Method::GET, "subscribedSkus", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(skus["value"][0]["prepaidUnits"]["enabled"], 25);
    assert_eq!(skus["value"][0]["consumedUnits"], 0);
    // PATCH and DELETE.
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("users/{}", user["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({"displayName": "Bee"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.user("fabrikam", "b@two.example").await.display_name, "Bee");
    let (status, _) =
        app.graph(Method::DELETE, &format!("users/{}", user["id"].as_str().unwrap()), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) =
        app.graph(Method::GET, &format!("users/{}", user["id"].as_str().unwrap()), Some(&token), None).await;
    assert_eq!((status, err["error"]["code"].as_str()), (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound")));
}

#[tokio::test]
async fn policies_and_named_locations_crud_with_validation() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (status, loc) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/namedLocations",
            Some(&token),
            Some(json!({
            "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "HQ", "isTrusted": true,
            "ipRanges": [{"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8::/48"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{loc}");
    let body = json!({
        "displayName": "Block outside HQ", "state": "enabledForReportingButNotEnforced",
        "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["bar"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": [loc["id"]]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]},
    });
    let (status, created) =
        app.graph(Method::POST, "identity/conditionalAccess/policies", Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("identity/conditionalAccess/policies/{id}"),
            Some(&token),
            Some(json!({"state": "disabled"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, got) =
        app.graph(Method::GET, &format!("identity/conditionalAccess/policies/{id}"), Some(&token), None).await;
    assert_eq!(got["state"], "disabled");
    // A location in use cannot be deleted.
    let before = app.snapshot().await;
    let (status, err) = app
        .graph(
            Method::DELETE,
            &format!("identity/conditionalAccess/namedLocations/{}", loc["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    assert!(err["error"]["message"].as_str().unwrap().contains("used by a policy"), "{err}");
    assert_same(&before, &app.snapshot().await, "a location in use is not deleted");

    let invalid = [
        json!({"displayName": "x", "state": "sometimes", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        json!({"displayName": "x", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}, "grantControls": {"operator": "OR", "builtInControls": ["teleport"]}}),
        json!({"displayName": "x", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}, "locations": {"includeLocations": ["no-such-location"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        json!({"displayName": "", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        json!({"displayName": "x", "state": "enabled", "conditions": {"users": {"includeUsers": []}, "applications": {"includeApplications": ["All"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        json!({"id": "chosen", "displayName": "x", "state": "enabled", "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}}, "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}}),
        json!("not an object"),
    ];
    for body in invalid {
        let before = app.snapshot().await;
        let (status, err) =
            app.graph(Method::POST, "identity/conditionalAccess/policies", Some(&token), Some(body.clone())).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, format!("{body}"));
    }
    let before = app.snapshot().await;
    let (status, err) = app
        .graph(
            Method::PATCH,
            &format!("identity/conditionalAccess/policies/{id}"),
            Some(&token),
            Some(json!({"grantControls": {"operator": "OR", "builtInControls": ["teleport"]}})),
        )
        .await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    let (status, err) = app
        .graph(
            Method::PATCH,
            "identity/conditionalAccess/policies/missing",
            Some(&token),
            Some(json!({"state": "enabled"})),
        )
        .await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_same(&before, &app.snapshot().await, "rejected patches change nothing");
    let (status, _) =
        app.graph(Method::DELETE, &format!("identity/conditionalAccess/policies/{id}"), Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Inbound trust per partner.
    let contoso_id = app.tenant_id("contoso").await.0;
    let contoso = contoso_id.to_string();
    let (status, p) = app
        .graph(
            Method::POST,
            "policies/crossTenantAccessPolicy/partners",
            Some(&token),
            Some(json!({"tenantId": contoso, "inboundTrust": {"isMfaAccepted": true}})),
        )
        .await;
    assert_eq!((status, p["inboundTrust"]["isMfaAccepted"].as_bool()), (StatusCode::CREATED, Some(true)), "{p}");
    let (status, _) = app
        .graph(
            Method::PATCH,
            &format!("policies/crossTenantAccessPolicy/partners/{contoso}"),
            Some(&token),
            Some(json!({"inboundTrust": {"isMfaAccepted": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        !app.state
            .store
            .tenant_by_slug("fabrikam")
            .await
            .unwrap()
            .unwrap()
            .cross_tenant
            .trust_for(contoso_id)
            .is_mfa_accepted
    );
    // Graph's own spelling of the hybrid-join flag is read (false is the only value taken).
    let (status, body) = app
        .graph(
            Method::PATCH,
            &format!("policies/crossTenantAccessPolicy/partners/{contoso}"),
            Some(&token),
            Some(json!({"inboundTrust": {"isMfaAccepted": true, "isHybridAzureADJoinedDeviceAccepted": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(
        app.state
            .store
            .tenant_by_slug("fabrikam")
            .await
            .unwrap()
            .unwrap()
            .cross_tenant
            .trust_for(contoso_id)
            .is_mfa_accepted
    );
}

#[tokio::test]
async fn every_endpoint_rejects_missing_expired_and_foreign_tokens_and_members_without_roles() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let rp = app.rp("fabrikam");
    // A member's token for the admin API (its delegated scope) without a directory role.
    let (member, _) = rp
        .sign_in(
            &app.browser(),
            "iw@fabrikam.example",
            &app.password("iw@fabrikam.example"),
            &[("scope", "openid Directory.ReadWrite.All")],
        )
        .await;
    let member = member["access_token"].as_str().unwrap().to_string();
    let (_, foreign) = app.rp("contoso").token(&[("grant_type", "client_credentials")]).await;
    let foreign = foreign["access_token"].as_str().unwrap().to_string();
    let iw = app.user("fabrikam", "iw@fabrikam.example").await.id;
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "users".into(), None),
        (Method::GET, format!("users/{iw}"), None),
        (Method::PATCH, format!("users/{iw}"), Some(json!({"displayName": "X"}))),
        (Method::DELETE, format!("users/{iw}"), None),
        (Method::GET, format!("users/{iw}/authentication/methods"), None),
        (Method::DELETE, format!("users/{iw}/authentication/softwareOathMethods/x"), None),
        (Method::GET, format!("users/{iw}/authentication/fido2Methods"), None),
        (Method::GET, format!("users/{iw}/authentication/fido2Methods/x"), None),
        (Method::DELETE, format!("users/{iw}/authentication/fido2Methods/x"), None),
        (Method::GET, "applications".into(), None),
        (Method::GET, "devices".into(), None),
        (Method::GET, "identity/conditionalAccess/policies".into(), None),
        (Method::POST, "identity/conditionalAccess/policies".into(), Some(json!({}))),
        (Method::GET, "identity/conditionalAccess/namedLocations".into(), None),
        (
            Method::POST,
            "identity/conditionalAccess/evaluate".into(),
            Some(json!({"userPrincipalName": "iw@fabrikam.example", "appId": "foo"})),
        ),
        (Method::GET, "policies/crossTenantAccessPolicy/partners".into(), None),
        (Method::GET, "auditLogs/signIns".into(), None),
        (Method::GET, "admin/mailQueue".into(), None),
        (Method::GET, "subscribedSkus".into(), None),
        (
            Method::POST,
            "invitations".into(),
            Some(json!({"invitedUserEmailAddress": "a@b.example", "inviteRedirectUrl": LANDING})),
        ),
    ];
    let before = app.snapshot().await;
    for (m, path, body) in &endpoints {
        for (token, expected, code) in [
            (None, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
            (Some("not.a.jwt"), StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
            (Some(foreign.as_str()), StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
            (Some(member.as_str()), StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
        ] {
            let (status, err) = app.graph(m.clone(), path, token, body.clone()).await;
            assert_graph_error(status, &err, expected, code);
        }
    }
    app.clock.advance(3601);
    for (m, path, body) in &endpoints {
        let (status, err) = app.graph(m.clone(), path, Some(&admin), body.clone()).await;
        assert_graph_error(status, &err, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken");
        assert!(err["error"]["message"].as_str().unwrap().contains("expired"), "expired token at {m} {path}: {err}");
    }
    assert_same(&before, &app.snapshot().await, "refused calls change nothing");
    // A member whose role is Global Administrator may use the API.
    let (admin_member, _) = rp
        .sign_in(
            &app.browser(),
            "admin@fabrikam.example",
            &app.password("admin@fabrikam.example"),
            &[("scope", "openid Directory.ReadWrite.All")],
        )
        .await;
    let (status, _) = app.graph(Method::GET, "users", admin_member["access_token"].as_str(), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = app.graph(Method::PUT, "users", admin_member["access_token"].as_str(), None).await;
    assert_graph_error(status, &err, StatusCode::METHOD_NOT_ALLOWED, "Request_BadRequest");
}

#[tokio::test]
async fn what_if_gives_the_same_per_policy_results_as_a_real_sign_in() {
    let app = spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let token = app.admin_token().await;
    let tid = app.tenant_id("fabrikam").await;
    // Make the device policy enforced for this comparison: a guest gets blocked.
    let mut device_policy =
        app.state.store.policies(&tid).await.unwrap().into_iter().find(|p| p.display_name.contains("device")).unwrap();
    device_policy.state = gatehouse::policy::PolicyState::Enabled;
    app.state.store.put_policy(&tid, &device_policy).await.unwrap();
    let email = "pat@northwind.example";
    let inv = app.invite(email, LANDING, None).await;
    let browser = Browser::forwarded_for(&app.url, "203.0.113.20");
    let page = browser
        .send_email_code(browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await)
        .await;
    let consent = browser
        .follow_any(
            browser.post_abs(&page.url, &page.form("email-otp").set("code", &app.latest_otp(email).await)).await,
        )
        .await;
    accept(&browser, &consent).await;
    let blocked = browser.follow_any(browser.get(&app.rp("fabrikam").authorize_url(&[]).url).await).await;
    assert_eq!(blocked.error_code().as_deref(), Some("access_blocked"));
    let real = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    let device = real.device_detail.clone().unwrap().device_id;
    let (status, what_if) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(&token),
            Some(json!({
            "userPrincipalName": real.user_principal_name, "appId": "test-rp", "ipAddress": "203.0.113.20",
            "deviceId": device, "authenticationMethods": real.amr})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{what_if}");
    assert_eq!(what_if["outcome"], "block");
    let real_results = serde_json::to_value(&real.applied_conditional_access_policies).unwrap();
    assert_eq!(what_if["appliedConditionalAccessPolicies"], real_results, "What If = the real sign-in");
    assert_eq!(what_if["matchedNamedLocations"].as_array().unwrap().len(), 1);

    // A member on Bar, allowed: the same again.
    let login = "iw@fabrikam.example";
    let member = Browser::forwarded_for(&app.url, "198.51.100.4");
    let done = member.sign_in(&app.rp("fabrikam").authorize_url(&[]).url, login, &app.password(login)).await;
    assert!(done.location.as_deref().unwrap().contains("code="));
    let real = app.state.store.signin_log(&tid, 1).await.unwrap().remove(0);
    let (_, what_if) = app
        .graph(
            Method::POST,
            "identity/conditionalAccess/evaluate",
            Some(&token),
            Some(json!({
            "userId": real.user_id, "appId": "test-rp", "ipAddress": "198.51.100.4",
            "deviceId": real.device_detail.clone().unwrap().device_id, "authenticationMethods": real.amr})),
        )
        .await;
    assert_eq!(what_if["outcome"], "allow");
    assert_eq!(
        what_if["appliedConditionalAccessPolicies"],
        serde_json::to_value(&real.applied_conditional_access_policies).unwrap()
    );
    let (status, err) = app
        .graph(Method::POST, "identity/conditionalAccess/evaluate", Some(&token), Some(json!({"appId": "foo"})))
        .await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    let (status, log) = app
        .graph(
            Method::GET,
            &format!("auditLogs/signIns?$filter=userPrincipalName%20eq%20'{login}'"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let entries = log["value"].as_array().unwrap();
    assert!(!entries.is_empty(), "the member's sign-in above is in the filtered log: {log}");
    assert!(entries.iter().all(|e| e["userPrincipalName"] == login), "{log}");
}

/// The CLI as a process in `cwd`, with no GATEHOUSE_* variables but those in `env`.
async fn cli_in(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).current_dir(cwd);
    for var in
        ["GATEHOUSE_SERVER", "GATEHOUSE_TENANT", "GATEHOUSE_CLIENT_ID", "GATEHOUSE_CLIENT_SECRET", "GATEHOUSE_CONFIG"]
    {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn the_cli_sends_a_secret_from_the_environment_only_to_a_server_named_with_it() {
    // Issue 11 finding 31: a stray ./data/demo-credentials.json names some server; a secret from
    // the environment must not go there. A loopback listener stands in for it and counts callers.
    let decoy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let decoy_url = format!("http://{}", decoy.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in decoy.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let cwd = tempfile::tempdir().unwrap();
    std::fs::create_dir(cwd.path().join("data")).unwrap();
    let stray = json!({"url": decoy_url, "users": [], "clients": [],
        "admin": {"tenant": "fabrikam", "client_id": "gatehouse-admin", "client_secret": "the-file-secret"}});
    std::fs::write(cwd.path().join("data/demo-credentials.json"), stray.to_string()).unwrap();

    let app = spawn_app().await;
    let (id, secret) = (app.creds.admin.client_id.clone(), app.creds.admin.client_secret.clone());
    let from_env = [("GATEHOUSE_CLIENT_ID", id.as_str()), ("GATEHOUSE_CLIENT_SECRET", secret.as_str())];
    let (ok, out) = cli_in(cwd.path(), &["users", "list"], &from_env).await;
    assert!(!ok, "{out}");
    assert!(out.contains("without a server") && out.contains("--server"), "{out}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was sent to the file's server");

    // Named with it (flag or environment), the same secret is used.
    let (ok, out) =
        cli_in(cwd.path(), &["users", "list", "--server", &app.url, "--tenant", "fabrikam"], &from_env).await;
    assert!(ok && out.contains("iw@fabrikam.example"), "{out}");
    let with_server =
        [from_env[0], from_env[1], ("GATEHOUSE_SERVER", app.url.as_str()), ("GATEHOUSE_TENANT", "fabrikam")];
    let (ok, out) = cli_in(cwd.path(), &["users", "list"], &with_server).await;
    assert!(ok && out.contains("iw@fabrikam.example"), "{out}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_cli_needs_a_tenant_given_or_from_its_credentials_file() {
    let app = spawn_app().await;
    let cwd = tempfile::tempdir().unwrap();
    let (id, secret) = (app.creds.admin.client_id.clone(), app.creds.admin.client_secret.clone());
    let given = ["users", "list", "--server", &app.url, "--client-id", &id, "--client-secret", &secret];
    // No silent default tenant.
    let (ok, out) = cli_in(cwd.path(), &given, &[]).await;
    assert!(!ok, "{out}");
    assert!(out.contains("--tenant"), "{out}");
    let (ok, out) = cli_in(cwd.path(), &[&given[..], &["--tenant", "fabrikam"]].concat(), &[]).await;
    assert!(ok && out.contains("iw@fabrikam.example"), "{out}");
    // The wrong tenant for this client is refused by the server, not papered over.
    let (ok, out) = cli_in(cwd.path(), &[&given[..], &["--tenant", "contoso"]].concat(), &[]).await;
    assert!(!ok && out.contains("sign-in refused"), "{out}");
    // From the credentials file: server, tenant and client all come from it.
    let file = app.dir.path().join("demo-credentials.json");
    let (ok, out) = cli_in(cwd.path(), &["users", "list", "--credentials", file.to_str().unwrap()], &[]).await;
    assert!(ok && out.contains("iw@fabrikam.example"), "{out}");
    // A credentials file without an admin tenant is refused with the file's name.
    let mut creds: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    creds["admin"].as_object_mut().unwrap().remove("tenant");
    let partial = cwd.path().join("partial.json");
    std::fs::write(&partial, creds.to_string()).unwrap();
    let (ok, out) = cli_in(cwd.path(), &["users", "list", "--credentials", partial.to_str().unwrap()], &[]).await;
    assert!(!ok && out.contains("partial.json") && out.contains("--tenant"), "{out}");
}

#[tokio::test]
async fn what_if_aims_for_the_first_supported_acr_value_like_a_sign_in() {
    // docs/conformance.md: the first acr value gatehouse supports ("1" or "2") is the one it aims for.
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let cases =
        [(json!(["1", "2"]), "allow"), (json!(["2", "1"]), "mfa"), (json!(["3", "2"]), "mfa"), (json!(["3"]), "allow")];
    for (acr_values, expected) in cases {
        let (status, what_if) = app
            .graph(
                Method::POST,
                "identity/conditionalAccess/evaluate",
                Some(&token),
                Some(json!({"userPrincipalName": "iw@fabrikam.example", "appId": "test-rp",
                    "authenticationMethods": ["pwd"], "acrValues": acr_values})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{what_if}");
        assert_eq!(what_if["outcome"], expected, "acrValues {acr_values}: {what_if}");
    }
}

#[tokio::test]
async fn admin_pages_show_guests_policies_log_and_reset_mfa() {
    let app = spawn_app().await;
    let tid = app.tenant_id("fabrikam").await;
    // A guest with TOTP enrolled (through Foo).
    let sally = "sally@contoso.example";
    let inv = app.invite(sally, &format!("{}/demo/foo/login", app.url), Some("foo")).await;
    let guest_browser = app.browser();
    let consent =
        to_consent(&guest_browser, inv["inviteRedeemUrl"].as_str().unwrap(), sally, &app.password(sally)).await;
    let page = guest_browser.follow_any(accept(&guest_browser, &consent).await).await;
    let secret = page.text("code#totp-secret").unwrap();
    use gatehouse::clock::Clock;
    let shown = guest_browser
        .post_abs(&page.url, &page.form("totp-enroll").set("code", &totp_at(&secret, app.clock.now())))
        .await;
    let foo = guest_browser.follow_any(guest_browser.post_abs(&page.url, &shown.form("continue")).await).await;
    assert!(foo.has("table#claims"));

    let browser = app.browser();
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let admin_login = "admin@fabrikam.example";
    let p = browser.follow(browser.submit(&login.form("identify").set("login", admin_login)).await).await;
    let admin =
        browser.follow(browser.submit(&p.form("password").set("password", &app.password(admin_login))).await).await;
    assert!(admin.has("main#admin"), "{}", admin.body);
    assert!(admin.body.contains("sally_contoso.example#EXT#@fabrikam.example"));
    assert_eq!(admin.text("#seats-used").as_deref(), Some("1"));
    assert!(admin.body.contains("Require MFA for Foo: success"), "the log says why MFA was asked");
    assert!(
        admin.body.contains(r#"<option value="enabledForReportingButNotEnforced" selected>"#),
        "the current state is pre-selected"
    );
    let html = admin.html();
    let form_sel = scraper::Selector::parse("form.mfa-reset").unwrap();
    let form = html.select(&form_sel).next().expect("reset button for sally");
    let fields: Vec<(String, String)> = form
        .select(&scraper::Selector::parse("input").unwrap())
        .map(|i| (i.value().attr("name").unwrap().to_string(), i.value().attr("value").unwrap_or("").to_string()))
        .collect();
    let done = browser.post("/fabrikam/admin/mfa-reset", &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert!(app.user("fabrikam", sally).await.totp_methods.is_empty());

    let policy = app
        .state
        .store
        .policies(&tid)
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.display_name == "Require MFA for Foo")
        .unwrap();
    let csrf = fields.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    let changed = browser
        .post(
            "/fabrikam/admin/policy-state",
            &[("csrf".into(), csrf.clone()), ("policy".into(), policy.id.clone()), ("state".into(), "disabled".into())],
        )
        .await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.state.store.policy(&tid, &policy.id).await.unwrap().unwrap().state,
        gatehouse::policy::PolicyState::Disabled
    );
    let before = app.snapshot().await;
    let bad = browser
        .post(
            "/fabrikam/admin/policy-state",
            &[("csrf".into(), csrf), ("policy".into(), policy.id.clone()), ("state".into(), "maybe".into())],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let no_csrf = browser
        .post(
            "/fabrikam/admin/policy-state",
            &[("policy".into(), policy.id.clone()), ("state".into(), "enabled".into())],
        )
        .await;
    assert_eq!(no_csrf.error_code().as_deref(), Some("csrf"));
    assert_same(&before, &app.snapshot().await, "bad admin forms change nothing");

    // A member without the admin role is refused.
    let iw = app.browser();
    let login = iw.follow(iw.get("/fabrikam/admin").await).await;
    let p = iw.follow(iw.submit(&login.form("identify").set("login", "iw@fabrikam.example")).await).await;
    let refused =
        iw.follow(iw.submit(&p.form("password").set("password", &app.password("iw@fabrikam.example"))).await).await;
    assert_eq!(refused.error_code().as_deref(), Some("admin_only"));
}

#[tokio::test]
async fn patch_null_clears_risk_level_and_trust_type() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let tid = app.tenant_id("fabrikam").await;
    let iw = app.user("fabrikam", "iw@fabrikam.example").await;
    let path = format!("users/{}", iw.id);
    let (status, body) = app.graph(Method::PATCH, &path, Some(&token), Some(json!({"riskLevel": "high"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.user("fabrikam", "iw@fabrikam.example").await.risk_level.as_deref(), Some("high"));
    // Absent leaves it; null clears it.
    let (status, _) = app.graph(Method::PATCH, &path, Some(&token), Some(json!({"displayName": "IW"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.user("fabrikam", "iw@fabrikam.example").await.risk_level.as_deref(), Some("high"));
    let (status, _) = app.graph(Method::PATCH, &path, Some(&token), Some(json!({"riskLevel": null}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.user("fabrikam", "iw@fabrikam.example").await.risk_level, None);

    let device = gatehouse::model::Device {
        id: "dev-1".into(),
        display_name: "Laptop".into(),
        is_managed: false,
        is_compliant: false,
        trust_type: None,
        registered_owner: Some(iw.id),
        created_at: app.state.now(),
    };
    app.state.store.put_device(&tid, &device).await.unwrap();
    let stored = || async { app.state.store.device(&tid, "dev-1").await.unwrap().unwrap().trust_type };
    let (status, body) =
        app.graph(Method::PATCH, "devices/dev-1", Some(&token), Some(json!({"trustType": "AzureAD"}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(stored().await.as_deref(), Some("AzureAD"));
    let (status, _) = app.graph(Method::PATCH, "devices/dev-1", Some(&token), Some(json!({"trustType": null}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(stored().await, None);
}

/// Entra's three built-in authentication strengths, read through Graph with their ids and
/// combinations; an unknown id is a Graph 404, no token a 401. A policy that names a
/// strength is still refused (the control is not evaluated yet), and nothing is stored.
#[tokio::test]
async fn authentication_strength_policies_start_with_entras_built_in_three() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (status, body) = app.graph(Method::GET, "policies/authenticationStrengthPolicies", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ids: Vec<&str> = body["value"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "00000000-0000-0000-0000-000000000002",
            "00000000-0000-0000-0000-000000000003",
            "00000000-0000-0000-0000-000000000004"
        ]
    );
    let phishing = &body["value"][2];
    assert_eq!(phishing["displayName"], "Phishing-resistant MFA");
    assert_eq!(phishing["policyType"], "builtIn");
    assert_eq!(phishing["requirementsSatisfied"], "mfa");
    let combos: Vec<&str> =
        phishing["allowedCombinations"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert!(combos.contains(&"fido2") && !combos.contains(&"password,softwareOath"), "{combos:?}");
    let mfa = &body["value"][0]["allowedCombinations"];
    for combo in ["password,softwareOath", "federatedSingleFactor,softwareOath", "fido2", "federatedMultiFactor"] {
        assert!(mfa.as_array().unwrap().iter().any(|c| c == combo), "{combo} in {mfa}");
    }

    let (status, one) = app
        .graph(
            Method::GET,
            "policies/authenticationStrengthPolicies/00000000-0000-0000-0000-000000000003",
            Some(&token),
            None,
        )
        .await;
    assert_eq!((status, one["displayName"].as_str()), (StatusCode::OK, Some("Passwordless MFA")), "{one}");
    let (status, err) = app
        .graph(
            Method::GET,
            "policies/authenticationStrengthPolicies/00000000-0000-0000-0000-000000000009",
            Some(&token),
            None,
        )
        .await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let (status, _) = app.graph(Method::GET, "policies/authenticationStrengthPolicies", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let before = app.snapshot().await;
    let policy = json!({
        "displayName": "Phishing-resistant MFA for everyone",
        "state": "enabled",
        "conditions": {"users": {"includeUsers": ["All"]}, "applications": {"includeApplications": ["All"]}},
        "grantControls": {
            "operator": "AND",
            "builtInControls": ["mfa"],
            "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"},
        },
    });
    let (status, err) =
        app.graph(Method::POST, "identity/conditionalAccess/policies", Some(&token), Some(policy)).await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    assert!(
        err["error"]["message"].as_str().unwrap().contains("mfa and authenticationStrength cannot be combined"),
        "{err}"
    );
    assert_eq!(before, app.snapshot().await, "a refused policy stores nothing");
}
