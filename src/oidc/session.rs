//! The SSO session and the answer to a relying party: the session cookie, reusing a
//! session through the credential gate, and issuing the single-use code.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use uuid::Uuid;

use crate::access::credential::Presented;
use crate::app::AppState;
use crate::model::{AuthCode, AuthRequest, Authentication, ResponseMode, Session, Tenant};
use crate::oidc::error::OAuthError;
use crate::secrets::{digest, new_token};
use crate::web::error::PageError;
use crate::web::pages::{FormPostPage, render};
use crate::web::{HttpState, cookie_value, csrf};

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
                let target = crate::web::csp::form_action_source(&self.redirect_uri).unwrap_or_else(|| "'none'".into());
                let csp = crate::web::csp::content_security_policy(Some(&target));
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

/// The SSO session of this browser at this tenant, if any and still valid.
pub async fn current_session(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
) -> Result<Option<(String, Session)>, PageError> {
    let Some(cookie) = cookie_value(req, SSO_COOKIE) else { return Ok(None) };
    let session = state.store.session(&digest(&cookie)).await?;
    let Some(session) = session.filter(|s| s.tenant_id == tenant.id && s.expires_at > state.now()) else {
        return Ok(None);
    };
    // The credential gate: a session whose user was deleted, disabled, reset or had their
    // sessions revoked since is no session at all.
    if crate::access::credential_user(state, tenant, &Presented::of(&session.auth, None)).await?.is_err() {
        return Ok(None);
    }
    Ok(Some((cookie, session)))
}

/// Ends a sign-in: keeps or opens the SSO session, stores a single-use code and
/// sends it to the relying party. A new session replaces the browser's previous one at
/// this tenant, and a new browser cookie is issued with it (a planted one stops here).
pub async fn issue_code(
    state: &AppState,
    tenant: &Tenant,
    request: &AuthRequest,
    auth: Authentication,
    existing: Option<(String, Session)>,
    browser: &[u8; 32],
    persist: bool,
) -> Result<HttpResponse, PageError> {
    let now = state.now();
    let (new_cookie, session) = match existing {
        Some((_, s)) if s.auth.user_id == auth.user_id && s.auth.auth_time == auth.auth_time => (None, s),
        other => {
            let mut replaced: Vec<[u8; 32]> = other.map(|(c, _)| digest(&c)).into_iter().collect();
            replaced.extend(request.replaces_session);
            let (cookie, s) = open_session(state, tenant, auth.clone()).await?;
            for old in replaced {
                retire_session(state, tenant, &old).await?;
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
    state.store.put_code(&digest(&code), &record).await?;
    let mut resp = Reply::for_request(state, tenant, request).code(code);
    if let Some(c) = new_cookie {
        resp.add_cookie(&session_cookie(state, tenant, c, persist)).map_err(PageError::internal)?;
        resp.add_cookie(&csrf::rotate(state, browser).await?).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Deletes a replaced session (by cookie digest), only if it belongs to this tenant.
pub async fn retire_session(state: &AppState, tenant: &Tenant, id: &[u8; 32]) -> Result<(), PageError> {
    if state.store.session(id).await?.is_some_and(|s| s.tenant_id == tenant.id) {
        state.store.delete_session(id).await?;
    }
    Ok(())
}

/// Stores a new SSO session; returns the cookie value and the session.
pub async fn open_session(
    state: &AppState,
    tenant: &Tenant,
    auth: Authentication,
) -> Result<(String, Session), PageError> {
    let cookie = new_token();
    let s = Session {
        tenant_id: tenant.id,
        sid: Uuid::new_v4().to_string(),
        auth,
        expires_at: state.now() + state.config.tokens.session_secs,
    };
    state.store.put_session(&digest(&cookie), &s).await?;
    Ok((cookie, s))
}

/// The SSO cookie: a browser-session cookie, or with `persist` (conditional access's
/// `persistentBrowser: always`) one that lasts as long as the session.
pub fn session_cookie(
    state: &AppState,
    tenant: &Tenant,
    value: String,
    persist: bool,
) -> actix_web::cookie::Cookie<'static> {
    let max_age = persist.then_some(state.config.tokens.session_secs);
    state.cookie(SSO_COOKIE, value, format!("/{}", tenant.slug), max_age)
}
