//! The authorization endpoint: validate the request, reuse the SSO session or start a
//! server-side sign-in, and finally send the code back to the relying party.
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::keys::TokenType;
use crate::model::{Acr, Application, ClientType};
use crate::model::{AuthRequest, Purpose, ResponseMode, SignIn, Step};
use crate::oidc::claims::pairwise_sub;
use crate::oidc::error::{OAuthCode, OAuthError};
use crate::oidc::session::{Reply, SSO_COOKIE, current_session};
use crate::secrets::{digest, new_token};
use crate::signin::flow::after_primary;
use crate::web::error::PageError;
use crate::web::params::Params;
use crate::web::{Data, cookie_value, csrf};

pub async fn authorize_get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    authorize(&req, &path, req.query_string(), &state).await
}

pub async fn authorize_post(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    if !crate::web::form::is_form(&req) {
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
    let tenant = crate::web::tenant(state, slug).await?;
    if raw.len() > MAX_AUTHORIZE_BYTES {
        return Err(PageError::bad_request(
            "invalid_request",
            "The sign-in request is too large. Go back to the application and try again.",
        ));
    }
    let params = Params::parse(raw)?;
    // Until both the client and its redirect URI are known, errors stay on our own page.
    let client_id = params.get("client_id").ok_or_else(|| {
        PageError::bad_request("invalid_request", "The application did not say who it is (client_id is missing).")
    })?;
    let app = state.store.app(&tenant.id, client_id).await?.ok_or_else(|| {
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
                .verify::<crate::oidc::claims::IdTokenClaims>(t, TokenType::Id, now, false)
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
    let current = current_session(req, state, &tenant).await?;
    // A completed re-authentication replaces this browser's session at the tenant, also
    // one the gate no longer accepts (its record is retired with it).
    request.replaces_session = cookie_value(req, SSO_COOKIE).map(|c| digest(&c));
    if let Some((cookie, session)) = current {
        let fresh_enough = request.max_age.is_none_or(|m| now - session.auth.auth_time <= m);
        let user = state.store.user(&tenant.id, &session.auth.user_id).await?.filter(|u| u.account_enabled);
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
                strengths: vec![],
                passwordless: None,
                persistent_browser: None,
            };
            let auth = session.auth.clone();
            let mut resp =
                after_primary(state, req, &tenant, &new_token(), signin, auth, Some((cookie, session))).await?;
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
    crate::signin::begin(req, state, &tenant, Purpose::Authorize(Box::new(request)), login).await
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
        p.list("scope").iter().map(|s| crate::oidc::claims::scope_name(state, s).to_string()).collect();
    if !requested.iter().any(|s| s == "openid") {
        return Err(OAuthError::new(OAuthCode::InvalidScope, "the openid scope is required"));
    }
    // Unknown scope values are ignored (OIDC Core §3.1.2.1); the granted scope says what was kept.
    let mut scope: Vec<String> = Vec::new();
    for s in crate::oidc::discovery::SCOPES.iter().chain(crate::oidc::claims::GRAPH_SCOPES) {
        if requested.iter().any(|r| r == s) {
            scope.push(s.to_string());
        }
    }
    let code_challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) => {
            if !crate::oidc::token::pkce_shaped(c) {
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
    let mut acr_values: Vec<Acr> = Vec::new();
    for v in p.list("acr_values").iter().filter_map(|v| Acr::parse(v)) {
        if !acr_values.contains(&v) {
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
