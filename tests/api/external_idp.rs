//! External identity providers (DESIGN §16): a partner's own OpenID Connect provider,
//! configured through Graph `identity/identityProviders` and used to redeem invitations.
//! The happy path runs against unmodified `oidc-provider` from npm (tests/rp/partner-idp.mjs).
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::guests::{LANDING, accept};
use crate::helpers::*;

const PAT: &str = "pat@partner.example";
const PAT_PASSWORD: &str = "Partner-pass-1";
const PARTNER_SECRET: &str = "partner-client-secret-0123456789";
const IDPS: &str = "identity/identityProviders";

/// oidc-provider running as the partner's provider; killed when dropped.
struct Partner {
    issuer: String,
    _child: tokio::process::Child,
    _stdout: tokio::io::BufReader<tokio::process::ChildStdout>,
}

async fn start_partner(app: &TestApp) -> Partner {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rp");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/rp` (.ci/run does)"
    );
    let mut child = tokio::process::Command::new("node")
        .arg("partner-idp.mjs")
        .current_dir(&dir)
        .env("PARTNER_REDIRECT_URI", format!("{}/federation/callback", app.url))
        .env("PARTNER_CLIENT_SECRET", PARTNER_SECRET)
        .env("PARTNER_PASSWORD", PAT_PASSWORD)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(stdout);
    let read = reader.read_line(&mut line);
    tokio::time::timeout(std::time::Duration::from_secs(30), read).await.expect("the partner starts").unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Partner { issuer: v["issuer"].as_str().expect("issuer").to_string(), _child: child, _stdout: reader }
}

fn provider_body(metadata_url: &str, domain: &str) -> Value {
    json!({
        "@odata.type": "#microsoft.graph.openIdConnectIdentityProvider",
        "displayName": "Partner",
        "clientId": "gatehouse-fabrikam",
        "clientSecret": PARTNER_SECRET,
        "metadataUrl": metadata_url,
        "domains": [domain],
    })
}

/// Whether `needle` appears anywhere in the store.
fn store_holds(snapshot: &[(String, Vec<u8>, Vec<u8>)], needle: &str) -> bool {
    snapshot.iter().any(|(_, k, v)| [k, v].iter().any(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())))
}

#[tokio::test]
async fn a_guest_of_a_partner_oidc_provider_redeems_through_it() {
    let app = spawn_with(|c| c.federation.allow_insecure_hosts = vec!["127.0.0.1".into()]).await;
    let partner = start_partner(&app).await;
    let token = app.admin_token().await;
    let metadata_url = format!("{}/.well-known/openid-configuration", partner.issuer);
    let (status, created) =
        app.graph(Method::POST, IDPS, Some(&token), Some(provider_body(&metadata_url, "Partner.Example"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["@odata.type"], "#microsoft.graph.openIdConnectIdentityProvider");
    assert_eq!(created["issuer"], partner.issuer.as_str());
    assert_eq!(created["domains"], json!(["partner.example"]));
    assert_eq!(created["scope"], "openid profile email");
    assert_eq!(created["responseType"], "code");
    assert_eq!(created["clientSecret"], "****");
    assert!(!store_holds(&app.snapshot().await, PARTNER_SECRET), "the secret is stored sealed");

    let inv = app.invite(PAT, LANDING, None).await;
    let browser = app.browser();
    let login = browser.follow_any(browser.get(inv["inviteRedeemUrl"].as_str().unwrap()).await).await;
    assert!(login.url.starts_with(&partner.issuer), "sent to the partner: {}", login.url);
    assert_eq!(login.attr("form#home-login input[name=login]", "value").as_deref(), Some(PAT), "login_hint");
    let partner_consent = browser.home_sign_in(login, PAT, PAT_PASSWORD).await;
    assert!(partner_consent.has("form#partner-consent"), "{} {}", partner_consent.url, partner_consent.body);
    let scope = partner_consent.text("form#partner-consent p").unwrap_or_default();
    assert!(scope.contains("openid") && scope.contains("email") && scope.contains("profile"), "{scope}");
    let consent = browser
        .follow_any(browser.post_abs(&partner_consent.url, &partner_consent.form("partner-consent")).await)
        .await;
    assert!(consent.has("form#consent"), "back at gatehouse's consent: {} {}", consent.url, consent.body);
    assert_eq!(accept(&browser, &consent).await.location.as_deref(), Some(LANDING));

    let user = app.user("fabrikam", PAT).await;
    assert_eq!(user.external_user_state, Some(gatehouse::model::ExternalUserState::Accepted));
    assert_eq!(user.identities[0].issuer, partner.issuer);

    // Signed in at the resource tenant's app: the tokens say the guest came from the partner.
    let rp = app.rp("fabrikam");
    let start = rp.authorize_url(&[]);
    let page = browser.follow_any(browser.get(&start.url).await).await;
    let loc = page.location.clone().unwrap_or_else(|| panic!("a redirect to the RP: {}", page.body));
    let (status, tokens) = rp.exchange(&query_param(&loc, "code").expect("code"), &start.verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = rp.verify(tokens["id_token"].as_str().unwrap(), "JWT").await;
    assert_eq!(claims["idp"], partner.issuer.as_str());
    assert_eq!(claims["amr"], json!(["fed"]));
    assert_eq!(claims["acct"], 1);
    assert_eq!(claims["email"], PAT);
    assert_eq!(claims["oid"], user.id.to_string());
}

/// A loopback server answering `GET {path}` with the body `routes` gives (404 otherwise),
/// counting the connections it accepted.
struct DocServer {
    base: String,
    connections: Arc<AtomicUsize>,
}

fn doc_server(routes: impl Fn(&str, &str) -> Option<String> + Send + 'static) -> DocServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let (b, n) = (base.clone(), connections.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            n.fetch_add(1, Ordering::SeqCst);
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => head.extend_from_slice(&buf[..k]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let (status, body) = match routes(&b, &path) {
                Some(body) => ("200 OK", body),
                None => ("404 Not Found", "{}".to_string()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    DocServer { base, connections }
}

const KEY: &str = r#"{"keys":[{"kty":"EC","use":"sig","kid":"k1","alg":"ES256","crv":"P-256","x":"h-Z0Rx7q75mEL5WqqSsJJi8_Iw1sxPgNHofLqXiwXPM","y":"x3oMSrpkmm4ndYeSKveLGBC4sMHp67zrTDZp34mXjNQ"}]}"#;

fn discovery(issuer: &str, jwks_uri: &str) -> String {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": jwks_uri,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
    })
    .to_string()
}

/// Providers at `{base}/{name}`: `good` and `other` are valid; the rest fail one check each.
fn partner_docs() -> DocServer {
    doc_server(|base, path| {
        let (name, rest) = path.trim_start_matches('/').split_once('/')?;
        let issuer = format!("{base}/{name}");
        match (name, rest) {
            (_, ".well-known/openid-configuration") => Some(match name {
                "good" | "other" | "emptyjwks" | "nojwks" => discovery(&issuer, &format!("{issuer}/keys")),
                "mismatch" => discovery("http://elsewhere.example", &format!("{issuer}/keys")),
                "notjson" => "<html>hello</html>".into(),
                "notoidc" => json!({"issuer": issuer, "jwks_uri": format!("{issuer}/keys")}).to_string(),
                "privatejwks" => discovery(&issuer, "https://10.0.0.1/keys"),
                _ => return None,
            }),
            ("good" | "other", "keys") => Some(KEY.into()),
            ("emptyjwks", "keys") => Some(json!({"keys": []}).to_string()),
            _ => None,
        }
    })
}

fn host_port(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

#[tokio::test]
async fn bad_identity_provider_bodies_get_their_graph_error_and_change_nothing() {
    let docs = partner_docs();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let allow = vec![host_port(&docs.base), format!("127.0.0.1:{closed}")];
    let app = spawn_with(move |c| c.federation.allow_insecure_hosts = allow).await;
    let token = app.admin_token().await;
    let well_known = |name: &str| format!("{}/{name}/.well-known/openid-configuration", docs.base);
    let (status, good) =
        app.graph(Method::POST, IDPS, Some(&token), Some(provider_body(&well_known("good"), "partner.example"))).await;
    assert_eq!(status, StatusCode::CREATED, "{good}");

    let ok = provider_body(&well_known("other"), "other.example");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = ok.clone();
        f(&mut b);
        b
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        ("wrong @odata.type", with(&|b| b["@odata.type"] = json!("#microsoft.graph.socialIdentityProvider")), "Only"),
        ("no @odata.type", with(&|b| drop(b.as_object_mut().unwrap().remove("@odata.type"))), "@odata.type"),
        ("missing clientId", with(&|b| drop(b.as_object_mut().unwrap().remove("clientId"))), "clientId"),
        ("missing clientSecret", with(&|b| drop(b.as_object_mut().unwrap().remove("clientSecret"))), "clientSecret"),
        ("missing displayName", with(&|b| drop(b.as_object_mut().unwrap().remove("displayName"))), "displayName"),
        ("missing metadataUrl", with(&|b| drop(b.as_object_mut().unwrap().remove("metadataUrl"))), "metadataUrl"),
        ("missing domains", with(&|b| drop(b.as_object_mut().unwrap().remove("domains"))), "domains"),
        ("unknown field", with(&|b| b["claimsMapping"] = json!({})), "unknown field"),
        ("scope without openid", with(&|b| b["scope"] = json!("profile email")), "openid"),
        ("responseType id_token", with(&|b| b["responseType"] = json!("id_token")), "responseType"),
        ("not a domain", with(&|b| b["domains"] = json!(["not a domain"])), "domain"),
        ("the tenant's own domain", with(&|b| b["domains"] = json!(["fabrikam.example"])), "this tenant"),
        ("another tenant's domain", with(&|b| b["domains"] = json!(["contoso.example"])), "verified"),
        ("a domain already claimed", with(&|b| b["domains"] = json!(["Partner.Example"])), "claimed"),
        ("not a well-known URL", with(&|b| b["metadataUrl"] = json!(format!("{}/other", docs.base))), "well-known"),
        (
            "http of a host not allowed",
            with(&|b| b["metadataUrl"] = json!("http://partner.example/.well-known/openid-configuration")),
            "https",
        ),
        (
            "https on loopback",
            with(&|b| b["metadataUrl"] = json!("https://127.0.0.1:1/.well-known/openid-configuration")),
            "loopback",
        ),
        (
            "https on a private address",
            with(&|b| b["metadataUrl"] = json!("https://10.0.0.1/.well-known/openid-configuration")),
            "private",
        ),
        (
            "unreachable metadata",
            with(&|b| b["metadataUrl"] = json!(format!("http://127.0.0.1:{closed}/.well-known/openid-configuration"))),
            "unreachable",
        ),
        ("metadata answered 404", with(&|b| b["metadataUrl"] = json!(well_known("missing"))), "unreachable"),
        ("not JSON", with(&|b| b["metadataUrl"] = json!(well_known("notjson"))), "not JSON"),
        ("not OIDC", with(&|b| b["metadataUrl"] = json!(well_known("notoidc"))), "authorization_endpoint is missing"),
        ("issuer differs", with(&|b| b["metadataUrl"] = json!(well_known("mismatch"))), "issuer"),
        ("JWKS on a private address", with(&|b| b["metadataUrl"] = json!(well_known("privatejwks"))), "10.0.0.1"),
        ("JWKS empty", with(&|b| b["metadataUrl"] = json!(well_known("emptyjwks"))), "no keys"),
        ("JWKS unreachable", with(&|b| b["metadataUrl"] = json!(well_known("nojwks"))), "JWKS"),
        ("the same issuer twice", with(&|b| b["metadataUrl"] = json!(well_known("good"))), "issuer"),
    ];
    let before = app.snapshot().await;
    for (what, body, says) in cases {
        let (status, err) = app.graph(Method::POST, IDPS, Some(&token), Some(body)).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{what}: {message:?} should name {says:?}");
        assert_same(&before, &app.snapshot().await, what);
    }
    // PATCH refuses the same way.
    let id = good["id"].as_str().unwrap();
    let path = format!("{IDPS}/{id}");
    for (what, body) in [
        ("wrong @odata.type", json!({"@odata.type": "#microsoft.graph.appleManagedIdentityProvider"})),
        ("scope without openid", json!({"scope": "email"})),
        ("own domain", json!({"domains": ["fabrikam.example"]})),
        ("no domains", json!({"domains": []})),
        ("issuer differs", json!({"metadataUrl": well_known("mismatch")})),
        ("loopback https", json!({"metadataUrl": "https://127.0.0.1:1/.well-known/openid-configuration"})),
        ("empty secret", json!({"clientSecret": ""})),
    ] {
        let (status, err) = app.graph(Method::PATCH, &path, Some(&token), Some(body)).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, what);
    }
    let (status, err) = app.graph(Method::PATCH, &format!("{IDPS}/nope"), Some(&token), Some(json!({}))).await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_same(&before, &app.snapshot().await, "an unknown provider");
}

#[tokio::test]
async fn the_request_forgery_guard_refuses_before_any_connection() {
    // A listener on loopback that the configuration does not allow: the guard must refuse
    // https and http to it without connecting.
    let trap = doc_server(|base, path| {
        path.ends_with("openid-configuration").then(|| discovery(base, &format!("{base}/keys")))
    });
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let port = host_port(&trap.base).rsplit_once(':').unwrap().1.to_string();
    let before = app.snapshot().await;
    for url in [
        format!("https://127.0.0.1:{port}/.well-known/openid-configuration"),
        format!("http://127.0.0.1:{port}/.well-known/openid-configuration"),
        format!("https://[::ffff:127.0.0.1]:{port}/.well-known/openid-configuration"),
        format!("https://localhost:{port}/.well-known/openid-configuration"),
        "https://169.254.169.254/.well-known/openid-configuration".into(),
        "https://[fd00::1]/.well-known/openid-configuration".into(),
        "https://100.64.0.1/.well-known/openid-configuration".into(),
    ] {
        let (status, err) =
            app.graph(Method::POST, IDPS, Some(&token), Some(provider_body(&url, "partner.example"))).await;
        assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
        assert_same(&before, &app.snapshot().await, &url);
    }
    assert_eq!(trap.connections.load(Ordering::SeqCst), 0, "nothing reached the loopback listener");
}

#[tokio::test]
async fn identity_providers_round_trip_and_never_show_the_secret() {
    let docs = partner_docs();
    let allow = vec![host_port(&docs.base)];
    let app = spawn_with(move |c| c.federation.allow_insecure_hosts = allow).await;
    let token = app.admin_token().await;
    let well_known = |name: &str| format!("{}/{name}/.well-known/openid-configuration", docs.base);
    let mut body = provider_body(&well_known("good"), "partner.example");
    body["scope"] = json!("openid email");
    let (status, created) = app.graph(Method::POST, IDPS, Some(&token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let path = format!("{IDPS}/{id}");
    let expected = json!({
        "@odata.type": "#microsoft.graph.openIdConnectIdentityProvider",
        "id": id,
        "displayName": "Partner",
        "clientId": "gatehouse-fabrikam",
        "clientSecret": "****",
        "metadataUrl": well_known("good"),
        "scope": "openid email",
        "responseType": "code",
        "domains": ["partner.example"],
        "issuer": format!("{}/good", docs.base),
    });
    assert_eq!(created, expected);
    let (status, one) = app.graph(Method::GET, &path, Some(&token), None).await;
    assert_eq!((status, &one), (StatusCode::OK, &expected));
    let (status, list) = app.graph(Method::GET, IDPS, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["value"], json!([expected]));
    assert!(!list.to_string().contains(PARTNER_SECRET));
    let stored = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap().external_idps;
    assert!(stored[0].client_secret.expose().starts_with("s1."), "sealed");
    assert!(!store_holds(&app.snapshot().await, PARTNER_SECRET));

    // The admin page lists it (read only), never the secret.
    let browser = app.browser();
    let login = browser.follow(browser.get("/fabrikam/admin").await).await;
    let admin = "admin@fabrikam.example";
    let p = browser.follow(browser.submit(&login.form("identify").set("login", admin)).await).await;
    let page = browser.follow(browser.submit(&p.form("password").set("password", &app.password(admin))).await).await;
    assert!(page.has("table#identity-providers caption"), "{}", page.body);
    let cells: Vec<String> = page
        .html()
        .select(&scraper::Selector::parse("table#identity-providers tbody tr > *").unwrap())
        .map(|c| c.text().collect())
        .collect();
    assert_eq!(cells, vec!["Partner".to_string(), format!("{}/good", docs.base), "partner.example".into()]);
    let headers =
        page.html().select(&scraper::Selector::parse("table#identity-providers th[scope=col]").unwrap()).count();
    assert_eq!(headers, 3);
    assert!(!page.body.contains(PARTNER_SECRET));

    // PATCH: names, secret, domains and a new metadata URL (checked, issuer follows).
    let patch = json!({
        "displayName": "Partner Two",
        "clientSecret": "a-new-secret-9876543210",
        "domains": ["partner.example", "second.example"],
        "metadataUrl": well_known("other"),
    });
    let (status, answer) = app.graph(Method::PATCH, &path, Some(&token), Some(patch)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{answer}");
    let (_, one) = app.graph(Method::GET, &path, Some(&token), None).await;
    assert_eq!(one["displayName"], "Partner Two");
    assert_eq!(one["clientSecret"], "****");
    assert_eq!(one["domains"], json!(["partner.example", "second.example"]));
    assert_eq!(one["issuer"], format!("{}/other", docs.base));
    assert_eq!(one["metadataUrl"], well_known("other"));
    assert!(!store_holds(&app.snapshot().await, "a-new-secret-9876543210"));

    // DELETE, then it is gone.
    let (status, _) = app.graph(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, err) = app.graph(Method::GET, &path, Some(&token), None).await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    let before = app.snapshot().await;
    let (status, err) = app.graph(Method::DELETE, &path, Some(&token), None).await;
    assert_graph_error(status, &err, StatusCode::NOT_FOUND, "Request_ResourceNotFound");
    assert_same(&before, &app.snapshot().await, "a second delete");
    let (_, list) = app.graph(Method::GET, IDPS, Some(&token), None).await;
    assert_eq!(list["value"], json!([]));
}

#[tokio::test]
async fn members_without_a_role_and_foreign_tokens_are_refused_and_change_nothing() {
    let docs = partner_docs();
    let allow = vec![host_port(&docs.base)];
    let app = spawn_with(move |c| c.federation.allow_insecure_hosts = allow).await;
    let admin = app.admin_token().await;
    let url = format!("{}/good/.well-known/openid-configuration", docs.base);
    let (status, created) =
        app.graph(Method::POST, IDPS, Some(&admin), Some(provider_body(&url, "partner.example"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = format!("{IDPS}/{}", created["id"].as_str().unwrap());
    let (member, _) = app
        .rp("fabrikam")
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
    let before = app.snapshot().await;
    let calls = [
        (Method::GET, IDPS.to_string(), None),
        (Method::POST, IDPS.to_string(), Some(provider_body(&url, "x.example"))),
        (Method::GET, path.clone(), None),
        (Method::PATCH, path.clone(), Some(json!({"displayName": "X"}))),
        (Method::DELETE, path.clone(), None),
    ];
    for (m, p, body) in &calls {
        for (token, expected, code) in [
            (None, StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken"),
            (Some(member.as_str()), StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
            (Some(foreign.as_str()), StatusCode::FORBIDDEN, "Authorization_RequestDenied"),
        ] {
            let (status, err) = app.graph(m.clone(), p, token, body.clone()).await;
            assert_graph_error(status, &err, expected, code);
            assert_same(&before, &app.snapshot().await, format!("{m} {p}"));
        }
    }
}

/// Runs the CLI against `app` with its admin credential and `env`; returns (success, stdout + stderr).
async fn cli(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = tokio::process::Command::new(crate::process::BIN)
        .args(args)
        .args(["--server", &app.url, "--tenant", "fabrikam", "--client-id", &app.creds.admin.client_id])
        .args(["--client-secret", &app.creds.admin.client_secret, "--data-dir"])
        .arg(app.dir.path())
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_a_provider_with_the_secret_from_the_environment() {
    let docs = partner_docs();
    let allow = vec![host_port(&docs.base)];
    let app = spawn_with(move |c| c.federation.allow_insecure_hosts = allow).await;
    let url = format!("{}/good/.well-known/openid-configuration", docs.base);
    let add = [
        "idp",
        "add",
        "--name",
        "Partner",
        "--metadata-url",
        &url,
        "--partner-client-id",
        "gatehouse-fabrikam",
        "--client-secret-env",
        "PARTNER_SECRET",
        "--domain",
        "partner.example",
        "--domain",
        "second.example",
    ];
    // The CLI's own client-credentials sign-in is logged; nothing else may change.
    let before = app.snapshot_without_log().await;
    let (ok, out) = cli(&app, &add, &[]).await;
    assert!(!ok && out.contains("PARTNER_SECRET"), "an unset variable is refused: {out}");
    assert_same(&before, &app.snapshot_without_log().await, "no secret, nothing stored");
    let (ok, out) = cli(&app, &add, &[("PARTNER_SECRET", PARTNER_SECRET)]).await;
    assert!(ok, "{out}");
    let stored = app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap().external_idps;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].domains, vec!["partner.example", "second.example"]);
    assert_eq!(app.state.seal.open(stored[0].client_secret.expose()).as_deref(), Some(PARTNER_SECRET));
    let (ok, list) = cli(&app, &["idp", "list"], &[]).await;
    assert!(ok, "{list}");
    let row: Vec<&str> =
        list.lines().find(|l| l.starts_with(&stored[0].id)).expect("a row").split_whitespace().collect();
    assert_eq!(
        row,
        vec![stored[0].id.as_str(), "Partner", &format!("{}/good", docs.base), "partner.example,second.example"]
    );
    assert!(!list.contains(PARTNER_SECRET));
    let (ok, out) = cli(&app, &["idp", "remove", &stored[0].id], &[]).await;
    assert!(ok, "{out}");
    assert!(app.state.store.tenant_by_slug("fabrikam").await.unwrap().unwrap().external_idps.is_empty());
}

/// A TLS server nobody trusts (`openssl s_server` with a self-signed certificate).
async fn untrusted_tls_server(dir: &Path) -> (u16, tokio::process::Child) {
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("openssl runs (Debian's openssl package; .ci/run installs it)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_server", "-www", "-naccept", "1", "-accept", &format!("127.0.0.1:{port}")])
        .arg("-cert")
        .arg(dir.join("cert.pem"))
        .arg("-key")
        .arg(dir.join("key.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // Keep reading stdout after ACCEPT in the background (s_server reports there too).
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !line.contains("ACCEPT") {
            line.clear();
            assert!(out.read_line(&mut line).await.unwrap() > 0, "s_server ended before listening");
        }
    })
    .await
    .expect("s_server listens within 20 s");
    (port, child)
}

#[tokio::test]
async fn an_https_provider_is_reached_over_tls_and_an_untrusted_certificate_is_refused() {
    let app = spawn_with(|c| c.federation.allow_insecure_hosts = vec!["127.0.0.1".into()]).await;
    let dir = tempfile::tempdir().unwrap();
    let (port, mut server) = untrusted_tls_server(dir.path()).await;
    let token = app.admin_token().await;
    let before = app.snapshot().await;
    let url = format!("https://127.0.0.1:{port}/.well-known/openid-configuration");
    let (status, err) =
        app.graph(Method::POST, IDPS, Some(&token), Some(provider_body(&url, "untrusted.example"))).await;
    assert_graph_error(status, &err, StatusCode::BAD_REQUEST, "BadRequest");
    assert_same(&before, &app.snapshot().await, "an unreachable provider stores nothing");
    // The server saw a TLS handshake that gatehouse ended for its certificate: TLS is there,
    // and it checks the certificate against the system's roots.
    let mut said = String::new();
    let stderr = server.stderr.take().unwrap();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut stderr = stderr;
        let _ = stderr.read_to_string(&mut said).await;
    })
    .await;
    let _ = server.kill().await;
    assert!(
        said.to_ascii_lowercase().contains("alert"),
        "a TLS alert from gatehouse's client: {said} (Graph said {err})"
    );
}
