//! The home page and the built-in demo relying parties at `/demo/{app}`. The RP signs in
//! through real OpenID Connect with the `openidconnect` crate, over HTTP to this server.
use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use crate::app::AppState;
use crate::demo::seed::{CREDENTIALS_FILE, DEMO_APPS, DemoCredentials, demo_rp_secret};
use crate::secrets::new_token;
use crate::web::HttpState;
use crate::web::error::PageError;
use crate::web::pages::{DemoAppPage, DemoAppRow, DemoUserRow, HomePage, render};
use crate::web::{Data, cookie_value, csrf};

const DEMO_COOKIE: &str = "gh_demo";

/// The demo RP's own sessions, in memory (it is a demo of an application, not of gatehouse).
#[derive(Default)]
pub struct DemoRp {
    sessions: Mutex<HashMap<String, DemoSession>>,
}

#[derive(Default, Clone)]
struct DemoSession {
    pending: Option<(String, String, String)>,
    claims: Vec<(String, String)>,
}

impl DemoRp {
    fn with<R>(&self, id: &str, f: impl FnOnce(&mut DemoSession) -> R) -> R {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.clear();
        }
        f(map.entry(id.to_string()).or_default())
    }
}

pub async fn home(state: Data) -> Result<HttpResponse, PageError> {
    let mut users = Vec::new();
    let mut apps = Vec::new();
    if state.config.demo {
        if let Ok(bytes) = std::fs::read(state.config.data_dir.join(CREDENTIALS_FILE))
            && let Ok(creds) = serde_json::from_slice::<DemoCredentials>(&bytes)
        {
            users = creds
                .users
                .into_iter()
                .map(|u| DemoUserRow { tenant: u.tenant, login: u.login, password: u.password })
                .collect();
        }
        apps = DEMO_APPS
            .iter()
            .map(|(path, _, _, name, note)| DemoAppRow {
                name: name.to_string(),
                path: format!("/demo/{path}"),
                note: note.to_string(),
            })
            .collect();
    }
    let tenants = state
        .store
        .tenants()
        .await?
        .into_iter()
        .map(|t| (t.display_name.clone(), format!("{}/.well-known/openid-configuration", state.issuer(&t))))
        .collect();
    render(&HomePage { demo: state.config.demo, users, apps, tenants }, vec![])
}

fn demo_app(
    state: &AppState,
    slug: &str,
) -> Result<(&'static str, &'static str, &'static str, &'static str), PageError> {
    if !state.config.demo {
        return Err(PageError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "The demo applications are only served with --demo.",
        ));
    }
    DEMO_APPS.iter().find(|(p, ..)| *p == slug).map(|(p, t, c, n, _)| (*p, *t, *c, *n)).ok_or_else(|| {
        PageError::new(actix_web::http::StatusCode::NOT_FOUND, "not_found", "There is no such demo application.")
    })
}

type DiscoveredClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

async fn client(
    state: &AppState,
    tenant_slug: &str,
    client_id: &str,
    path: &str,
) -> Result<(DiscoveredClient, Vec<CoreJwsSigningAlgorithm>), String> {
    let issuer = IssuerUrl::new(format!("{}/{tenant_slug}/v2.0", state.public_url)).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &state.http)
        .await
        .map_err(|e| format!("discovery failed: {e}"))?;
    let secret = demo_rp_secret(&state.instance_secret, tenant_slug, client_id);
    let redirect = RedirectUrl::new(format!("{}/demo/{path}/callback", state.public_url)).map_err(|e| e.to_string())?;
    let c =
        CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.into()), Some(ClientSecret::new(secret)))
            .set_redirect_uri(redirect);
    Ok((c, vec![CoreJwsSigningAlgorithm::EcdsaP256Sha256, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]))
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    app: (&str, &str, &str, &str),
    claims: Vec<(String, String)>,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (browser, new_cookie) = csrf::browser(req, state);
    let tenant_name = state.store.tenant_by_slug(app.1).await?.map(|t| t.display_name).unwrap_or_default();
    let page = DemoAppPage {
        app_name: app.3.into(),
        app_slug: app.0.into(),
        tenant_name,
        claims,
        csrf: csrf::token(state, &browser),
        error,
    };
    render(&page, new_cookie.into_iter().collect())
}

pub async fn app_page(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
    demo: web::Data<DemoRp>,
) -> Result<HttpResponse, PageError> {
    let app = demo_app(&state, &path)?;
    let claims = match cookie_value(&req, DEMO_COOKIE) {
        Some(id) => demo.with(&format!("{}:{id}", app.0), |s| s.claims.clone()),
        None => vec![],
    };
    page(&state, &req, app, claims, None).await
}

pub async fn login(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
    demo: web::Data<DemoRp>,
) -> Result<HttpResponse, PageError> {
    let app = demo_app(&state, &path)?;
    let (client, _) = client(&state, app.1, app.2, app.0).await.map_err(PageError::internal)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let id = cookie_value(&req, DEMO_COOKIE).unwrap_or_else(new_token);
    demo.with(&format!("{}:{id}", app.0), |s| {
        s.pending = Some((csrf_state.secret().clone(), nonce.secret().clone(), verifier.secret().clone()));
    });
    let cookie = state.cookie(DEMO_COOKIE, id, format!("/demo/{}", app.0), None);
    Ok(HttpResponse::Found().insert_header((header::LOCATION, url.to_string())).cookie(cookie).finish())
}

pub async fn callback(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
    demo: web::Data<DemoRp>,
) -> Result<HttpResponse, PageError> {
    let app = demo_app(&state, &path)?;
    let query = crate::web::form::query(&req)?;
    let id = cookie_value(&req, DEMO_COOKIE).ok_or_else(|| {
        PageError::bad_request("demo_no_session", "This browser did not start a sign-in here. Start again.")
    })?;
    let key = format!("{}:{id}", app.0);
    let pending = demo.with(&key, |s| s.pending.take());
    let Some((expected_state, nonce, verifier)) = pending else {
        return Err(PageError::bad_request(
            "demo_no_session",
            "This sign-in was already completed or never started. Start again.",
        ));
    };
    if query.get("state") != Some(&expected_state) {
        return Err(PageError::bad_request(
            "demo_state_mismatch",
            "The answer does not belong to the sign-in this browser started.",
        ));
    }
    if let Some(err) = query.get("error") {
        let desc = query.get("error_description").unwrap_or_default();
        return page(&state, &req, app, vec![], Some(format!("Sign-in did not complete: {err} — {desc}"))).await;
    }
    let code =
        query.get("code").ok_or_else(|| PageError::bad_request("demo_no_code", "The answer carries no code."))?;
    let (client, algs) = client(&state, app.1, app.2, app.0).await.map_err(PageError::internal)?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(PageError::internal)?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&state.http)
        .await
        .map_err(|e| PageError::bad_request("demo_token_failed", format!("The token request failed: {e}")))?;
    let id_token =
        response.id_token().ok_or_else(|| PageError::bad_request("demo_token_failed", "No ID token came back."))?;
    let verifier = client.id_token_verifier().set_allowed_algs(algs);
    id_token
        .claims(&verifier, &Nonce::new(nonce))
        .map_err(|e| PageError::bad_request("demo_token_invalid", format!("The ID token did not validate: {e}")))?;
    // The token is validated; show its payload claim by claim.
    let payload = id_token.to_string().split('.').nth(1).and_then(crate::secrets::b64url_decode).unwrap_or_default();
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&payload).unwrap_or_default();
    let claims: Vec<(String, String)> = json
        .into_iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            (k, shown)
        })
        .collect();
    demo.with(&key, |s| s.claims = claims);
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/demo/{}", app.0))).finish())
}

pub async fn logout(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
    demo: web::Data<DemoRp>,
) -> Result<HttpResponse, PageError> {
    let app = demo_app(&state, &path)?;
    let f = crate::web::form::body(&req, &body)?;
    csrf::verify(&req, &state, f.get("csrf"))?;
    if let Some(id) = cookie_value(&req, DEMO_COOKIE) {
        demo.with(&format!("{}:{id}", app.0), |s| s.claims.clear());
    }
    let target = format!(
        "{}/{}/oauth2/v2.0/logout?client_id={}&post_logout_redirect_uri={}",
        state.public_url,
        app.1,
        app.2,
        url::form_urlencoded::byte_serialize(format!("{}/demo/{}", state.public_url, app.0).as_bytes())
            .collect::<String>()
    );
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, target)).finish())
}

/// `/outbox`: every email sent, newest first; demo mode only (it shows codes and links).
pub async fn outbox(state: Data) -> Result<HttpResponse, PageError> {
    if !state.config.demo {
        return Err(PageError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "not_found",
            "The outbox is only shown with --demo.",
        ));
    }
    let messages = state
        .store
        .outbox(200)
        .await?
        .into_iter()
        .map(|m| crate::web::pages::OutboxRow {
            to: m.to,
            subject: m.subject,
            body: m.body,
            redeem_url: m.redeem_url,
            otp: m.otp,
            sent: crate::clock::rfc3339(m.created_at),
        })
        .collect();
    render(&crate::web::pages::OutboxPage { messages }, vec![])
}
