//! The authorization endpoint: validate the request, reuse the SSO session or start a
//! server-side sign-in, and finally send the code back to the relying party.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::claims::pairwise_sub;
use super::error::{OAuthCode, OAuthError};
use super::keys::TokenType;
use super::model::{AuthCode, AuthRequest, Authentication, Purpose, ResponseMode, Session, SignIn, Step};
use super::params::Params;
use crate::credential::Presented;
use crate::directory::{Application, ClientType, Tenant};
use crate::secrets::{digest, new_token};
use crate::web::error::PageError;
use crate::web::pages::{FormPostPage, render};
use crate::web::{AppState, Data, cookie_value, csrf};

pub const SSO_COOKIE: &str = "gh_sso";

/// Where and how answers go back to a relying party whose redirect URI is trusted.
pub struct Reply {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub state: Option<String>,
    pub iss: String,
}

impl Reply {
    pub fn for_request(state: &AppState, tenant: &Tenant, r: &AuthRequest) -> Self {
        Self {
            redirect_uri: r.redirect_uri.clone(),
            mode: r.response_mode,
            state: r.state.clone(),
            iss: state.issuer(tenant),
        }
    }

    fn send(&self, mut fields: Vec<(String, String)>) -> HttpResponse {
        if let Some(s) = &self.state {
            fields.push(("state".into(), s.clone()));
        }
        fields.push(("iss".into(), self.iss.clone()));
        match self.mode {
            ResponseMode::Query => {
                let location = match url::Url::parse(&self.redirect_uri) {
                    Ok(mut u) => {
                        u.query_pairs_mut().extend_pairs(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                        u.to_string()
                    }
                    Err(_) => self.redirect_uri.clone(),
                };
                HttpResponse::Found()
                    .insert_header((header::LOCATION, location))
                    .insert_header(("Cache-Control", "no-store"))
                    .finish()
            }
            ResponseMode::FormPost => {
                let page = FormPostPage { action: self.redirect_uri.clone(), fields };
                let mut resp = render(&page, vec![]).unwrap_or_else(|e| actix_web::ResponseError::error_response(&e));
                // This page's one form goes to the relying party: its own CSP admits exactly that.
                let target = crate::startup::form_action_source(&self.redirect_uri).unwrap_or_else(|| "'none'".into());
                let csp = crate::startup::content_security_policy(Some(&target));
                if let Ok(v) = header::HeaderValue::from_str(&csp) {
                    resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                }
                resp
            }
        }
    }

    pub fn code(&self, code: String) -> HttpResponse {
        self.send(vec![("code".into(), code)])
    }

    pub fn error(&self, e: &OAuthError) -> HttpResponse {
        self.send(vec![("error".into(), e.code.as_str().into()), ("error_description".into(), e.description.clone())])
    }
}

pub async fn authorize_get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    authorize(&req, &path, req.query_string(), &state).await
}

pub async fn authorize_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(PageError::bad_request("invalid_request", "The sign-in request must be sent as a form."));
    }
    let raw = std::str::from_utf8(&body)
        .map_err(|_| PageError::bad_request("invalid_request", "The request is not valid UTF-8."))?;
    authorize(&req, &path, raw, &state).await
}

/// The whole authorization request (query or form) is bounded: what a sign-in stores
/// comes from it, and a browser URL longer than this is not a real client's.
pub const MAX_AUTHORIZE_BYTES: usize = 8 * 1024;

async fn authorize(req: &HttpRequest, slug: &str, raw: &str, state: &AppState) -> Result<HttpResponse, PageError> {
    let tenant = state.tenant(slug)?;
    if raw.len() > MAX_AUTHORIZE_BYTES {
        return Err(PageError::bad_request(
            "invalid_request",
            "The sign-in request is too large. Go back to the application and try again.",
        ));
    }
    let params = Params::parse(raw).map_err(|e| PageError::bad_request("invalid_request", e.description))?;
    // Until both the client and its redirect URI are known, errors stay on our own page.
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request("invalid_request", "The application did not say who it is (client_id is missing).")
    })?;
    let app = state.store.app(&tenant.id, client_id)?.ok_or_else(|| {
        PageError::bad_request(
            "unknown_client",
            format!("The application is not registered in {}.", tenant.display_name),
        )
    })?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        PageError::bad_request(
            "invalid_redirect_uri",
            "The application did not say where to return (redirect_uri is missing).",
        )
    })?;
    if !app.redirect_uri_registered(redirect_uri) {
        return Err(PageError::bad_request(
            "invalid_redirect_uri",
            "The address the application asked to return to is not registered for it, so we will not send you there.",
        ));
    }
    let mode = match params.get("response_mode") {
        Some("form_post") => ResponseMode::FormPost,
        _ => ResponseMode::Query,
    };
    let reply = Reply {
        redirect_uri: redirect_uri.to_string(),
        mode,
        state: params.get("state").filter(|s| s.len() <= MAX_STATE).map(String::from),
        iss: state.issuer(&tenant),
    };
    let mut request = match validate(&params, &app, state) {
        Ok(r) => r,
        Err(e) => return Ok(reply.error(&e)),
    };

    let now = state.now();
    // An expired hint still names the user (OIDC Core §3.1.2.1); one we cannot verify is refused.
    let hint_sub = match params.get("id_token_hint") {
        None => None,
        Some(t) => {
            let claims = state
                .keys
                .verify::<super::claims::IdTokenClaims>(t, TokenType::Id, now, false)
                .ok()
                .filter(|c| c.iss == state.issuer(&tenant) && c.aud == app.client_id);
            match claims {
                Some(c) => Some(c.sub),
                None => {
                    return Ok(reply.error(&OAuthError::request(
                        "id_token_hint is not an ID token this tenant issued to this client",
                    )));
                }
            }
        }
    };
    let current = current_session(req, state, &tenant)?;
    // A completed re-authentication replaces this browser's session at the tenant, also
    // one the gate no longer accepts (its record is retired with it).
    request.replaces_session = cookie_value(req, SSO_COOKIE).map(|c| digest(&c));
    if let Some((cookie, session)) = current {
        let fresh_enough = request.max_age.is_none_or(|m| now - session.auth.auth_time <= m);
        let user = state.store.user(&tenant.id, &session.auth.user_id)?.filter(|u| u.account_enabled);
        let hint_ok = match (&request.login_hint, &user) {
            (Some(h), Some(u)) => h.eq_ignore_ascii_case(&u.user_principal_name) || h.eq_ignore_ascii_case(&u.mail),
            _ => true,
        };
        let id_hint_ok =
            hint_sub.as_ref().is_none_or(|s| *s == pairwise_sub(state, &tenant, &session.auth.user_id, &app.client_id));
        if let Some(user) =
            user.filter(|_| fresh_enough && hint_ok && id_hint_ok && !request.prompt.iter().any(|p| p == "login"))
        {
            // The session proves who it is; conditional access still decides for this app.
            let (browser, new_cookie) = csrf::browser(req, state);
            let signin = SignIn {
                tenant_id: tenant.id,
                browser: digest(&browser),
                login: Some(user.mail.clone()),
                purpose: Purpose::Authorize(Box::new(request)),
                step: Step::Identify,
                user_id: Some(user.id),
                expires_at: now + state.config.tokens.signin_secs,
            };
            let auth = session.auth.clone();
            let mut resp = crate::web::signin::after_primary(
                state,
                req,
                &tenant,
                &new_token(),
                signin,
                auth,
                Some((cookie, session)),
            )?;
            if let Some(c) = new_cookie {
                resp.add_cookie(&c).map_err(PageError::internal)?;
            }
            return Ok(resp);
        }
    }
    if request.prompt.iter().any(|p| p == "none") {
        return Ok(reply.error(&OAuthError::new(OAuthCode::LoginRequired, "the user is not signed in")));
    }

    let login = request.login_hint.clone();
    crate::web::signin::begin(req, state, &tenant, Purpose::Authorize(Box::new(request)), login)
}

const MAX_STATE: usize = 2048;

/// The longest value each parameter may have (the whole request is bounded too).
const PARAM_LIMITS: &[(&str, usize)] = &[
    ("state", MAX_STATE),
    ("nonce", 512),
    ("login_hint", 320),
    ("scope", 1024),
    ("acr_values", 64),
    ("prompt", 64),
    ("max_age", 12),
    ("response_type", 64),
    ("response_mode", 32),
    ("code_challenge_method", 16),
    ("id_token_hint", 4096),
];

/// acr values gatehouse knows (discovery's `acr_values_supported`).
const ACR_VALUES: &[&str] = &["1", "2"];

fn validate(p: &Params, app: &Application, state: &AppState) -> Result<AuthRequest, OAuthError> {
    for (name, limit) in PARAM_LIMITS {
        if p.get(name).is_some_and(|v| v.len() > *limit) {
            return Err(OAuthError::request(format!("{name} is too long (at most {limit} characters)")));
        }
    }
    if p.contains("request") {
        return Err(OAuthError::new(OAuthCode::RequestNotSupported, "request objects are not supported"));
    }
    if p.contains("request_uri") {
        return Err(OAuthError::new(OAuthCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    if let Some(m) = p.get("response_mode")
        && !matches!(m, "query" | "form_post")
    {
        return Err(OAuthError::request("response_mode must be query or form_post"));
    }
    match p.get("response_type") {
        None => return Err(OAuthError::request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(OAuthCode::UnsupportedResponseType, "only response_type=code is supported"));
        }
    }
    let requested: Vec<String> =
        p.list("scope").iter().map(|s| super::claims::scope_name(state, s).to_string()).collect();
    if !requested.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(OAuthCode::InvalidScope, "the openid scope is required"));
    }
    // Unknown scope values are ignored (OIDC Core §3.1.2.1); the granted scope says what was kept.
    let mut scope: Vec<String> = Vec::new();
    for s in super::discovery::SCOPES.iter().chain(super::claims::GRAPH_SCOPES) {
        if requested.iter().any(|r| r == s) {
            scope.push(s.to_string());
        }
    }
    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) => {
            if !(43..=128).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)) {
                return Err(OAuthError::request("code_challenge is malformed"));
            }
            Some(c.to_string())
        }
        (Some(_), None) => {
            return Err(OAuthError::request("code_challenge_method must be S256 (plain is not supported)"));
        }
        (_, Some(_)) => return Err(OAuthError::request("code_challenge_method must be S256 with a code_challenge")),
    };
    if app.client_type == ClientType::Public && code_challenge.is_none() {
        return Err(OAuthError::request("PKCE (code_challenge with S256) is required for public clients"));
    }
    let prompt = p.list("prompt");
    for v in &prompt {
        // select_account is not offered: refused rather than silently ignored.
        if !matches!(v.as_str(), "none" | "login" | "consent") {
            return Err(OAuthError::request(format!("prompt value {v} is not supported")));
        }
    }
    if prompt.iter().any(|v| v == "none") && prompt.len() > 1 {
        return Err(OAuthError::request("prompt=none cannot be combined with other values"));
    }
    let max_age = match p.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| OAuthError::request("max_age must be a non-negative integer"))?,
        ),
    };
    // acr_values are preferences: unknown values are dropped, each kept once in order.
    let mut acr_values: Vec<String> = Vec::new();
    for v in p.list("acr_values") {
        if ACR_VALUES.contains(&v.as_str()) && !acr_values.contains(&v) {
            acr_values.push(v);
        }
    }
    Ok(AuthRequest {
        client_id: app.client_id.clone(),
        redirect_uri: p.get("redirect_uri").unwrap_or_default().to_string(),
        response_mode: if p.get("response_mode") == Some("form_post") {
            ResponseMode::FormPost
        } else {
            ResponseMode::Query
        },
        scope,
        state: p.get("state").map(String::from),
        nonce: p.get("nonce").map(String::from),
        code_challenge,
        prompt,
        max_age,
        login_hint: p.get("login_hint").map(String::from),
        acr_values,
        replaces_session: None,
    })
}

/// The SSO session of this browser at this tenant, if any and still valid.
pub fn current_session(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
) -> Result<Option<(String, Session)>, PageError> {
    let Some(cookie) = cookie_value(req, SSO_COOKIE) else { return Ok(None) };
    let session = state.store.session(&digest(&cookie))?;
    let Some(session) = session.filter(|s| s.tenant_id == tenant.id && s.expires_at > state.now()) else {
        return Ok(None);
    };
    // The credential gate: a session whose user was deleted, disabled, reset or had their
    // sessions revoked since is no session at all.
    if crate::web::access::credential_user(state, tenant, &Presented::of(&session.auth, None))?.is_err() {
        return Ok(None);
    }
    Ok(Some((cookie, session)))
}

/// Ends a sign-in: keeps or opens the SSO session, stores a single-use code and
/// sends it to the relying party. A new session replaces the browser's previous one at
/// this tenant, and a new browser cookie is issued with it (a planted one stops here).
pub fn issue_code(
    state: &AppState,
    tenant: &Tenant,
    request: &AuthRequest,
    auth: Authentication,
    existing: Option<(String, Session)>,
    browser: &[u8; 32],
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let (new_cookie, session) = match existing {
        Some((_, s)) if s.auth.user_id == auth.user_id && s.auth.auth_time == auth.auth_time => (None, s),
        other => {
            let mut replaced: Vec<[u8; 32]> = other.map(|(c, _)| digest(&c)).into_iter().collect();
            replaced.extend(request.replaces_session);
            let (cookie, s) = open_session(state, tenant, auth.clone())?;
            for old in replaced {
                retire_session(state, tenant, &old)?;
            }
            (Some(cookie), s)
        }
    };
    let code = new_token();
    let record = AuthCode {
        tenant_id: tenant.id,
        client_id: request.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scope: request.scope.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        sid: session.sid.clone(),
        auth,
        expires_at: now + state.config.tokens.code_secs,
        grant_id: Uuid::new_v4(),
        used: false,
    };
    state.store.put_code(&digest(&code), &record)?;
    let mut resp = Reply::for_request(state, tenant, request).code(code);
    if let Some(c) = new_cookie {
        resp.add_cookie(&session_cookie(state, tenant, c)).map_err(PageError::internal)?;
        resp.add_cookie(&csrf::rotate(state, browser)?).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Deletes a replaced session (by cookie digest), only if it belongs to this tenant.
pub fn retire_session(state: &AppState, tenant: &Tenant, id: &[u8; 32]) -> Result<(), PageError> {
    if state.store.session(id)?.is_some_and(|s| s.tenant_id == tenant.id) {
        state.store.delete_session(id)?;
    }
    Ok(())
}

/// Stores a new SSO session; returns the cookie value and the session.
pub fn open_session(state: &AppState, tenant: &Tenant, auth: Authentication) -> Result<(String, Session), PageError> {
    let cookie = new_token();
    let s = Session {
        tenant_id: tenant.id,
        sid: Uuid::new_v4().to_string(),
        auth,
        expires_at: state.now() + state.config.tokens.session_secs,
    };
    state.store.put_session(&digest(&cookie), &s)?;
    Ok((cookie, s))
}

pub fn session_cookie(state: &AppState, tenant: &Tenant, value: String) -> actix_web::cookie::Cookie<'static> {
    state.cookie(SSO_COOKIE, value, format!("/{}", tenant.slug), None)
}
