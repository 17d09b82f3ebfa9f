//! The stub home providers' endpoints (`social`, Google-like; `msa`, Microsoft-account-like):
//! small but real OpenID Connect providers under `/stub/{name}/`, with their own accounts,
//! so federation to them takes exactly the path a real external IdP takes.
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::federation::stub::{CLIENT_ID, STUBS, Stub, client_secret};

use crate::app::AppState;
use crate::keys::TokenType;
use crate::model::{Amr, SigningAlg};
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::token::no_store;
use crate::secrets::{b64url, ct_eq, new_token, sha256};
use crate::web::error::PageError;
use crate::web::pages::{StubLoginPage, render};
use crate::web::{Data, csrf};

const LOCKED: &str =
    "Too many failed sign-in attempts. This account is locked for a while to protect it; try again later.";

/// Pending sign-ins and unspent codes held at most, per kind (all stubs together).
pub const MAX_PENDING: usize = 10_000;
/// How long a pending sign-in at a stub lives.
pub const REQUEST_SECS: i64 = 600;
/// How long a stub's code lives.
pub const CODE_SECS: i64 = 60;
/// Longest accepted `state`, `nonce` and `login_hint` (as gatehouse's own /authorize).
const MAX_STATE: usize = 2048;
const MAX_NONCE: usize = 512;
const MAX_LOGIN_HINT: usize = 320;

#[derive(Clone)]
struct StubRequest {
    stub: String,
    redirect_uri: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: String,
    login_hint: String,
    expires_at: i64,
}

struct StubCode {
    stub: String,
    sub: String,
    email: String,
    name: String,
    nonce: Option<String>,
    code_challenge: String,
    redirect_uri: String,
    auth_time: i64,
    expires_at: i64,
}

/// Pending requests and codes, in memory: a stub is a demo of a home IdP. Both maps are
/// bounded: expired entries go first, and past [`MAX_PENDING`] live ones a new one is refused.
#[derive(Default)]
pub struct StubState {
    requests: Mutex<HashMap<String, StubRequest>>,
    codes: Mutex<HashMap<String, StubCode>>,
    discovery_served: AtomicU64,
    jwks_served: AtomicU64,
}

impl StubState {
    /// Sign-ins waiting at a stub's login form.
    pub fn pending_requests(&self) -> usize {
        lock(&self.requests).len()
    }

    /// Codes issued and not yet redeemed (or swept).
    pub fn pending_codes(&self) -> usize {
        lock(&self.codes).len()
    }

    /// Discovery documents and key sets served so far (how often gatehouse fetched its homes' metadata).
    pub fn metadata_served(&self) -> (u64, u64) {
        (self.discovery_served.load(Ordering::Relaxed), self.jwks_served.load(Ordering::Relaxed))
    }
}

/// Inserts into a bounded map: expired entries are dropped first; `false` when it is still full.
fn insert_bounded<T>(map: &mut HashMap<String, T>, key: String, value: T, now: i64, exp: impl Fn(&T) -> i64) -> bool {
    if map.len() >= MAX_PENDING {
        map.retain(|_, v| exp(v) > now);
    }
    if map.len() >= MAX_PENDING {
        return false;
    }
    map.insert(key, value);
    true
}

fn busy() -> PageError {
    PageError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_signins",
        "Too many sign-ins are waiting at this identity provider. Try again in a few minutes.",
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn stub(state: &AppState, name: &str) -> Result<&'static Stub, PageError> {
    STUBS
        .iter()
        .find(|s| s.name == name && crate::federation::stubs_enabled(state))
        .ok_or_else(|| PageError::new(StatusCode::NOT_FOUND, "not_found", "There is no such identity provider here."))
}

fn issuer(state: &AppState, name: &str) -> String {
    format!("{}/stub/{name}", state.public_url)
}

pub async fn configuration(
    path: web::Path<String>,
    state: Data,
    stubs: web::Data<StubState>,
) -> Result<HttpResponse, PageError> {
    let s = stub(&state, &path)?;
    let iss = issuer(&state, s.name);
    stubs.discovery_served.fetch_add(1, Ordering::Relaxed);
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/keys"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "email", "email_verified", "name", "amr"],
    })))
}

pub async fn jwks(
    path: web::Path<String>,
    state: Data,
    stubs: web::Data<StubState>,
) -> Result<HttpResponse, PageError> {
    stub(&state, &path)?;
    stubs.jwks_served.fetch_add(1, Ordering::Relaxed);
    Ok(HttpResponse::Ok().content_type("application/json").body(state.keys.jwks_json().to_string()))
}

pub async fn authorize(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
    stubs: web::Data<StubState>,
) -> Result<HttpResponse, PageError> {
    let s = stub(&state, &path)?;
    let p = crate::web::form::query(&req)?;
    if p.get("client_id") != Some(CLIENT_ID) {
        return Err(PageError::bad_request("unknown_client", "This provider only serves gatehouse."));
    }
    let redirect_uri = p.get("redirect_uri").unwrap_or_default();
    if redirect_uri != crate::federation::callback_url(&state) {
        return Err(PageError::bad_request("invalid_redirect_uri", "The return address is not registered."));
    }
    let challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        // RFC 7636 §4.2: BASE64URL(SHA-256) is 43 characters; 43..=128 is the allowed range.
        (Some(c), Some("S256"))
            if (43..=128).contains(&c.len())
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            c.to_string()
        }
        _ => return Err(PageError::bad_request("invalid_request", "PKCE with S256 is required.")),
    };
    for (name, limit) in [("state", MAX_STATE), ("nonce", MAX_NONCE), ("login_hint", MAX_LOGIN_HINT)] {
        if p.get(name).is_some_and(|v| v.len() > limit) {
            return Err(PageError::bad_request("invalid_request", format!("{name} is longer than {limit} bytes.")));
        }
    }
    if p.get("response_type") != Some("code") || !p.list("scope").iter().any(|x| x == "openid") {
        return Err(PageError::bad_request("invalid_request", "Only the OpenID Connect code flow is supported."));
    }
    let id = new_token();
    let now = state.now();
    let request = StubRequest {
        stub: s.name.into(),
        redirect_uri: redirect_uri.into(),
        state: p.get("state").map(String::from),
        nonce: p.get("nonce").map(String::from),
        code_challenge: challenge,
        login_hint: p.get("login_hint").unwrap_or_default().into(),
        expires_at: now + REQUEST_SECS,
    };
    if !insert_bounded(&mut lock(&stubs.requests), id.clone(), request.clone(), now, |r| r.expires_at) {
        tracing::warn!(stub = s.name, "stub sign-in refused: too many pending");
        return Err(busy());
    }
    login_page(&state, &req, s, &id, &request.login_hint, None)
}

fn login_page(
    state: &AppState,
    req: &HttpRequest,
    s: &Stub,
    id: &str,
    login: &str,
    error: Option<String>,
) -> Result<HttpResponse, PageError> {
    let (browser, cookie) = csrf::browser(req, state);
    let page = StubLoginPage {
        provider: s.display_name.into(),
        action: format!("/stub/{}/login", s.name),
        req: id.into(),
        login: login.into(),
        csrf: csrf::token(state, &browser),
        error,
    };
    render(&page, cookie.into_iter().collect())
}

pub async fn login(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
    stubs: web::Data<StubState>,
) -> Result<HttpResponse, PageError> {
    let s = stub(&state, &path)?;
    let f = crate::web::form::body(&req, &body)?;
    csrf::verify(&req, &state, f.get("csrf"))?;
    let id = f.get("req").unwrap_or_default().to_string();
    let now = state.now();
    let request = lock(&stubs.requests).get(&id).cloned().filter(|r| r.stub == s.name && r.expires_at > now);
    let Some(request) = request else {
        return Err(PageError::bad_request("signin_expired", "This sign-in has expired. Go back and start again."));
    };
    let login = f.get("login").unwrap_or_default().trim().to_ascii_lowercase();
    if login.len() > MAX_LOGIN_HINT {
        return login_page(&state, &req, s, &id, "", Some("That account or password is not right.".into()));
    }
    // Per stub account, the members' limit: the attempt is counted before the hash is
    // checked (so concurrent guesses cannot all slip past) and forgotten on success.
    let account_key = format!("stub:{}:{login}", s.name);
    if let crate::storage::Reserved::No { .. } = state.limiter.try_reserve(&account_key, now).await? {
        tracing::warn!(stub = s.name, login = %login, "stub sign-in refused: account locked");
        return login_page(&state, &req, s, &id, &login, Some(LOCKED.into()));
    }
    let account = state.store.stub_account(s.name, &login).await?;
    let password = f.get("password").unwrap_or_default().to_string();
    let ok = crate::password::verify_blocking(
        password,
        account.as_ref().map(|a| a.password_hash.clone()),
        state.dummy_hash.clone(),
    )
    .await;
    let Some(account) = account.filter(|_| ok) else {
        tracing::info!(stub = s.name, login = %login, "stub sign-in: wrong account or password");
        return login_page(&state, &req, s, &id, &login, Some("That account or password is not right.".into()));
    };
    state.limiter.clear(&account_key).await?;
    if lock(&stubs.requests).remove(&id).is_none() {
        // A concurrent login spent this request first.
        return Err(PageError::bad_request("signin_expired", "This sign-in has expired. Go back and start again."));
    }
    let code = new_token();
    let issued = insert_bounded(
        &mut lock(&stubs.codes),
        code.clone(),
        StubCode {
            stub: s.name.into(),
            sub: account.sub,
            email: account.login,
            name: account.display_name,
            nonce: request.nonce,
            code_challenge: request.code_challenge,
            redirect_uri: request.redirect_uri.clone(),
            auth_time: now,
            expires_at: now + CODE_SECS,
        },
        now,
        |c| c.expires_at,
    );
    if !issued {
        return Err(busy());
    }
    let mut u = url::Url::parse(&request.redirect_uri).map_err(PageError::internal)?;
    u.query_pairs_mut().append_pair("code", &code);
    if let Some(st) = &request.state {
        u.query_pairs_mut().append_pair("state", st);
    }
    // RFC 9207: the answer names who sent it, so the client can detect a mix-up.
    u.query_pairs_mut().append_pair("iss", &issuer(&state, s.name));
    Ok(HttpResponse::Found().insert_header((header::LOCATION, u.to_string())).finish())
}

#[derive(Serialize)]
struct StubIdToken<'a> {
    iss: String,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    email: &'a str,
    email_verified: bool,
    name: &'a str,
    amr: [Amr; 1],
}

pub async fn token(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
    stubs: web::Data<StubState>,
) -> Result<HttpResponse, OAuthError> {
    let s = stub(&state, &path).map_err(|_| OAuthError::request("unknown provider"))?;
    let p = crate::web::form::body(&req, &body)?;
    let secret = client_secret(&state.instance_secret, s.name);
    // client_secret_basic (form-urlencoded parts, RFC 6749 §2.3.1) or client_secret_post.
    let presented = match req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(h) => h.strip_prefix("Basic ").map(crate::oidc::token::parse_basic).transpose()?,
        None => p.get("client_id").zip(p.get("client_secret")).map(|(i, s)| (i.to_string(), s.to_string())),
    };
    let authenticated = presented.is_some_and(|(id, sec)| id == CLIENT_ID && ct_eq(sec.as_bytes(), secret.as_bytes()));
    if !authenticated {
        return Err(OAuthError::client("client authentication failed"));
    }
    if p.get("grant_type") != Some("authorization_code") {
        return Err(OAuthError::new(OAuthCode::UnsupportedGrantType, "only authorization_code"));
    }
    let code = lock(&stubs.codes).remove(p.require("code")?);
    let now = state.now();
    let Some(code) = code.filter(|c| c.stub == s.name && c.expires_at > now) else {
        return Err(OAuthError::grant("the code is invalid or expired"));
    };
    if p.get("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::grant("redirect_uri does not match"));
    }
    let verifier = p.require("code_verifier")?;
    if !ct_eq(b64url(&sha256(verifier.as_bytes())).as_bytes(), code.code_challenge.as_bytes()) {
        return Err(OAuthError::grant("code_verifier does not match"));
    }
    let claims = StubIdToken {
        iss: issuer(&state, s.name),
        sub: &code.sub,
        aud: CLIENT_ID,
        exp: now + 600,
        iat: now,
        auth_time: code.auth_time,
        nonce: code.nonce.as_deref(),
        email: &code.email,
        email_verified: true,
        name: &code.name,
        amr: [Amr::Pwd],
    };
    let id_token = state.keys.sign(SigningAlg::ES256, TokenType::Id, now, &claims).map_err(OAuthError::server)?;
    Ok(no_store(HttpResponse::Ok()).json(serde_json::json!({
        "access_token": new_token(),
        "token_type": "Bearer",
        "expires_in": 600,
        "id_token": id_token,
    })))
}
