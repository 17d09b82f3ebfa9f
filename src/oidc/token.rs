//! The token endpoint: authorization_code (PKCE, single use), refresh_token (rotation,
//! family revocation on reuse, one retry of a lost answer) and client_credentials. Client
//! authentication lives here too.
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;

use super::claims::{UserTokenInput, app_access_token, id_token, user_access_token};
use super::error::{OAuthCode, OAuthError};
use super::wire::{BEARER, TokenResponse};
use crate::access::credential::{GrantState, Presented, Refusal};
use crate::access::{credential_user, credential_user_of, grant_state, reevaluate};
use crate::app::AppState;
use crate::model::{Amr, Application, ClientType, SecretCheck, Tenant};
use crate::model::{Grant, RefreshToken};
use crate::secrets::{b64url, ct_eq, digest, new_token, sha256};
use crate::storage::{CodeUse, RefreshUse};
use crate::web::Data;
use crate::web::params::Params;

/// Reads the form body of a back-channel request.
pub async fn tenant_of(state: &AppState, slug: &str) -> Result<Tenant, OAuthError> {
    state.store.tenant_by_slug(slug).await?.ok_or_else(|| OAuthError::request("unknown tenant"))
}

/// RFC 6749 §2.3: client_secret_basic, client_secret_post or none (public clients).
/// `require_confidential` is for endpoints public clients may not use.
pub async fn authenticate_client(
    req: &HttpRequest,
    p: &Params,
    state: &AppState,
    tenant: &Tenant,
) -> Result<Application, OAuthError> {
    let basic = match req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => Some(parse_basic(&h[6..])?),
        Some(_) | None => None,
    };
    let via_basic = basic.is_some();
    let (client_id, secret) = match basic {
        Some((id, secret)) => {
            if p.contains("client_secret") {
                return Err(OAuthError::request("use one client authentication method, not two"));
            }
            if p.get("client_id").is_some_and(|c| c != id) {
                return Err(OAuthError::request("client_id does not match the authenticated client"));
            }
            (id, Some(secret))
        }
        None => (
            p.get("client_id").ok_or_else(|| OAuthError::client("client authentication is required"))?.to_string(),
            p.get("client_secret").map(String::from),
        ),
    };
    let fail = |msg: &str| OAuthError { basic_challenge: via_basic, ..OAuthError::client(msg) };
    let app = state.store.app(&tenant.id, &client_id).await?.ok_or_else(|| fail("client authentication failed"))?;
    match (app.client_type, secret) {
        (ClientType::Confidential, Some(s)) => match app.check_secret(&s, state.now()) {
            SecretCheck::Valid => Ok(app),
            // The caller holds a real secret: saying it expired tells it nothing new.
            SecretCheck::Expired => Err(fail("the client secret has expired: add a new one")),
            SecretCheck::Wrong => Err(fail("client authentication failed")),
        },
        (ClientType::Public, None) => Ok(app),
        _ => Err(fail("client authentication failed")),
    }
}

pub fn parse_basic(b64: &str) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::client("malformed Basic authorization header");
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    let dec = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.to_string());
    Ok((dec(id).ok_or_else(bad)?, dec(secret).ok_or_else(bad)?))
}

pub async fn token(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, OAuthError> {
    let tenant = tenant_of(&state, &path).await?;
    let p = crate::web::form::body(&req, &body)?;
    let grant_type = p.get("grant_type").unwrap_or_default().to_string();
    let answer = grant(&req, &p, &state, &tenant).await;
    crate::telemetry::token_grant(&tenant.slug, &grant_type, answer.as_ref().err().map(|e| e.code.as_str()));
    answer
}

async fn grant(req: &HttpRequest, p: &Params, state: &Data, tenant: &Tenant) -> Result<HttpResponse, OAuthError> {
    let app = authenticate_client(req, p, state, tenant).await?;
    match p.require("grant_type")? {
        "authorization_code" => authorization_code(state, tenant, &app, p).await,
        "refresh_token" => {
            let ip = crate::web::net::client_ip(req, &state.config.trusted_proxies);
            refresh(state, tenant, &app, p, ip).await
        }
        "client_credentials" => client_credentials(state, tenant, &app).await,
        other => Err(OAuthError::new(OAuthCode::UnsupportedGrantType, format!("grant_type {other} is not supported"))),
    }
}

/// RFC 7636 §4.1: a code verifier (and an S256 challenge) is 43 to 128 unreserved characters.
pub fn pkce_shaped(s: &str) -> bool {
    (43..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn pkce_ok(challenge: &Option<String>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => {
            Err(OAuthError::grant("code_verifier given but the authorization request had no code_challenge"))
        }
        (Some(_), None) => Err(OAuthError::grant("code_verifier is required")),
        (Some(c), Some(v)) => {
            let well_formed = pkce_shaped(v);
            if well_formed && ct_eq(b64url(&sha256(v.as_bytes())).as_bytes(), c.as_bytes()) {
                Ok(())
            } else {
                Err(OAuthError::grant("code_verifier does not match the code_challenge"))
            }
        }
    }
}

async fn authorization_code(
    state: &AppState,
    tenant: &Tenant,
    app: &Application,
    p: &Params,
) -> Result<HttpResponse, OAuthError> {
    let code = p.require("code")?;
    let redirect_uri = p.require("redirect_uri")?;
    let id = digest(code);
    let invalid = || OAuthError::grant("the code is invalid, expired or was already used");
    let record = state.store.code(&id).await?.ok_or_else(invalid)?;
    let now = state.now();
    // Another tenant's or client's code is unknown here, spent or not: presenting it
    // must not revoke what it issued.
    if record.tenant_id != tenant.id || record.client_id != app.client_id {
        return Err(invalid());
    }
    if !record.used {
        if record.expires_at <= now {
            return Err(invalid());
        }
        if record.redirect_uri != redirect_uri {
            return Err(OAuthError::grant("redirect_uri does not match the authorization request"));
        }
        pkce_ok(&record.code_challenge, p.get("code_verifier"))?;
        // The user may have been disabled or had their sessions revoked since the code was issued.
        if let Err(refusal) = credential_user(state, tenant, &Presented::of(&record.auth, None)).await? {
            return Err(OAuthError::grant(refusal.reason()));
        }
    }
    // The scope was consented to before the code was issued (first-party apps by configuration,
    // others on the consent page: OIDC Core §11), offline_access included.
    let scope = record.scope.clone();
    let offline = scope.iter().any(|s| s == "offline_access");
    let t = &state.config.tokens;
    let grant = Grant {
        tenant_id: tenant.id,
        client_id: app.client_id.clone(),
        user_id: record.auth.user_id,
        epoch: record.auth.epoch,
        created_at: now,
        expires_at: now + t.refresh_family_max_secs,
        revoked: false,
    };
    let refresh_secret = offline.then(new_token);
    let refresh_record = RefreshToken {
        tenant_id: tenant.id,
        client_id: app.client_id.clone(),
        grant_id: record.grant_id,
        scope: record.scope.clone(),
        sid: record.sid.clone(),
        auth: record.auth.clone(),
        issued_at: now,
        expires_at: (now + t.refresh_token_secs).min(grant.expires_at),
        rotated: false,
        rotated_at_ms: 0,
        successor: None,
        retried: false,
    };
    let refresh_id = refresh_secret.as_deref().map(digest);
    let outcome = state.store.use_code(&id, &grant, refresh_id.as_ref().map(|i| (i, &refresh_record))).await?;
    let code = match outcome {
        CodeUse::Redeemed(code) => code,
        CodeUse::Replayed => {
            state.store.flush().await?;
            return Err(OAuthError::grant("the code was already used; tokens issued with it are revoked"));
        }
        CodeUse::Unknown => return Err(invalid()),
    };
    let user = state.store.user(&tenant.id, &code.auth.user_id).await?.ok_or_else(invalid)?;
    let device = home_device(state, tenant, app, &user, &code.auth).await?;
    let input = UserTokenInput {
        tenant,
        app,
        user: &user,
        auth: &code.auth,
        sid: &code.sid,
        nonce: code.nonce.as_deref(),
        scope: &scope,
        grant_id: Some(code.grant_id),
        device,
    };
    let body = token_response(state, &input, refresh_secret)?;
    // The code is spent and the refresh token stored before the client sees them.
    state.store.flush().await?;
    Ok(body)
}

/// `xms_dev` for a sibling tenant's federation client: the state of the device the user
/// signed in with here (their own registered device), so the resource's inbound trust can
/// accept it (DESIGN §13). Other clients get none.
async fn home_device(
    state: &AppState,
    tenant: &Tenant,
    app: &Application,
    user: &crate::model::User,
    auth: &crate::model::Authentication,
) -> Result<Option<crate::model::HomeDevice>, OAuthError> {
    let Some(id) = auth.device_id.as_ref().filter(|_| app.client_id == crate::federation::B2B_CLIENT_ID) else {
        return Ok(None);
    };
    let device = state.store.device(&tenant.id, id).await?.filter(|d| d.registered_owner == Some(user.id));
    Ok(device.map(|d| crate::model::HomeDevice {
        is_compliant: d.is_compliant,
        is_managed: d.is_managed,
        trust_type: d.trust_type,
    }))
}

fn token_response(
    state: &AppState,
    input: &UserTokenInput<'_>,
    refresh: Option<String>,
) -> Result<HttpResponse, OAuthError> {
    let access = user_access_token(state, input).map_err(OAuthError::server)?;
    let id = id_token(state, input).map_err(OAuthError::server)?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token: access,
        token_type: BEARER.into(),
        expires_in: state.config.tokens.access_token_secs,
        scope: Some(input.scope.join(" ")),
        id_token: Some(id),
        refresh_token: refresh,
    }))
}

pub fn no_store(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header(("Cache-Control", "no-store")).insert_header(("Pragma", "no-cache"));
    b
}

async fn refresh(
    state: &AppState,
    tenant: &Tenant,
    app: &Application,
    p: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<HttpResponse, OAuthError> {
    let presented = p.require("refresh_token")?;
    let old = digest(presented);
    let invalid = || OAuthError::grant("the refresh token is invalid, expired or revoked");
    let read = state.store.refresh_context(&old).await?.ok_or_else(invalid)?;
    let current = read.token;
    let known = Known { grant: crate::access::grant_state_of(state, read.grant.as_ref()), user: read.user };
    if current.tenant_id != tenant.id || current.client_id != app.client_id {
        return Err(invalid());
    }
    let scope = match p.get("scope") {
        None => current.scope.clone(),
        Some(_) => {
            let asked: Vec<String> =
                p.list("scope").iter().map(|s| super::claims::scope_name(state, s).to_string()).collect();
            if asked.iter().any(|s| !current.scope.contains(s)) {
                return Err(OAuthError::new(OAuthCode::InvalidScope, "scope exceeds what was granted"));
            }
            asked
        }
    };
    let now = state.now();
    let secret = new_token();
    let rules = crate::storage::RefreshRules {
        now,
        now_ms: state.clock.now_ms(),
        life_secs: state.config.tokens.refresh_token_secs,
        grace_secs: state.config.tokens.refresh_reuse_grace_secs,
        retry_after_ms: crate::storage::REFRESH_RETRY_AFTER_MS,
    };
    // A refresh is a non-interactive sign-in: the gate decides before anything rotates.
    // A rotated token that cannot be a retry goes straight on to reuse detection below (so
    // a refusal by the gate never spares a family from revocation); one that may be a
    // retry issues tokens like a rotation, so it is gated like one.
    let gate_first = !current.rotated || may_be_retry(state, &current, &rules).await?;
    let user = if gate_first { Some(gate_refresh(state, tenant, app, &current, Some(known), ip).await?) } else { None };
    let outcome = state.store.rotate_refresh_seen(&old, &current, &digest(&secret), &rules).await?;
    let next = match outcome {
        RefreshUse::Rotated(next) => next,
        RefreshUse::Retried(next) => {
            tracing::info!(client = %app.client_id, "refresh retry: a lost answer, its unused successor retired");
            next
        }
        RefreshUse::Reused => {
            state.store.flush().await?;
            tracing::warn!(client = %app.client_id, "refresh token reuse: grant revoked");
            let user = state.store.user(&tenant.id, &current.auth.user_id).await?;
            let facts = TokenLog { user: user.as_ref(), amr: &current.auth.amr, ip, decision: None };
            token_log(state, tenant, app, facts, Some(("invalid_grant", "refresh token reuse: the grant is revoked")))
                .await;
            return Err(OAuthError::grant("the refresh token was already used; the session is revoked"));
        }
        RefreshUse::Revoked | RefreshUse::Unknown => return Err(invalid()),
    };
    // Tokens are never issued ungated: should the store have seen a retry where the check
    // above did not (it reads the same records with the same rules, so it should not), the
    // gate runs now, before anything is handed out.
    let (user, decision) = match user {
        Some(gated) => gated,
        None => gate_refresh(state, tenant, app, &current, None, ip).await?,
    };
    // The original authentication (auth_time, amr, acr) carries over unchanged.
    let input = UserTokenInput {
        tenant,
        app,
        user: &user,
        auth: &next.auth,
        sid: &next.sid,
        nonce: None,
        scope: &scope,
        grant_id: Some(next.grant_id),
        device: None,
    };
    let body = token_response(state, &input, Some(secret))?;
    // signInActivity: written at most once a minute per user, not on every refresh.
    use crate::directory::users::{SignInKind, record_sign_in};
    record_sign_in(&state.store, &user, SignInKind::NonInteractive, now).await;
    state.store.flush().await?;
    let facts = TokenLog { user: Some(&user), amr: &next.auth.amr, ip, decision: Some(&decision) };
    token_log(state, tenant, app, facts, None).await;
    Ok(body)
}

/// What the refresh read with its token: the grant's state and, when the store read it in
/// the same step, the user (`storage::RefreshContext`).
struct Known {
    grant: GrantState,
    user: Option<Option<crate::model::User>>,
}

/// Whether the rotated token `current` may come back as the one retry of a client that
/// lost its answer (`storage::RefreshRules`): the window is open, the retry unspent and the
/// successor it names not used. Only a hint for whether to run the gate first: the store
/// decides, and reads these records again.
async fn may_be_retry(
    state: &AppState,
    current: &RefreshToken,
    rules: &crate::storage::RefreshRules,
) -> Result<bool, OAuthError> {
    let since = rules.now_ms.saturating_sub(current.rotated_at_ms);
    let window = rules.grace_secs > 0
        && !current.retried
        && since >= rules.retry_after_ms
        && since <= rules.grace_secs.saturating_mul(1000);
    let Some(successor) = current.successor.filter(|_| window) else { return Ok(false) };
    // A successor that is gone was retired by an interrupted retry, not used (see the store).
    Ok(state.store.refresh_token(&successor).await?.is_none_or(|s| !s.rotated))
}

/// The credential gate and conditional access for a refresh. A user who can never use
/// this grant again (deleted, disabled, sessions revoked, redemption reset) has the grant
/// revoked; a policy that now blocks or needs MFA refuses without revoking (the user may
/// satisfy it by signing in again). Both are logged as non-interactive sign-ins.
async fn gate_refresh(
    state: &AppState,
    tenant: &Tenant,
    app: &Application,
    current: &RefreshToken,
    known: Option<Known>,
    ip: Option<std::net::IpAddr>,
) -> Result<(crate::model::User, crate::policy::Decision), OAuthError> {
    let (grant, user) = match known {
        Some(known) => (known.grant, known.user),
        None => (grant_state(state, &current.grant_id).await?, None),
    };
    let presented = Presented::of(&current.auth, Some(grant));
    let checked = match user {
        Some(user) => credential_user_of(user, &presented),
        None => credential_user(state, tenant, &presented).await?,
    };
    let user = match checked {
        Ok(user) => user,
        Err(refusal) => {
            if refusal != Refusal::GrantEnded {
                state.store.revoke_grant(&current.grant_id).await?;
            }
            let user = state.store.user(&tenant.id, &current.auth.user_id).await?;
            let facts = TokenLog { user: user.as_ref(), amr: &current.auth.amr, ip, decision: None };
            token_log(state, tenant, app, facts, Some((refusal.log_code(), refusal.reason()))).await;
            return Err(OAuthError::grant(refusal.reason()));
        }
    };
    if !crate::access::assignment::allows(app, &user) {
        // Unassigned since the sign-in: the grant ends, as a disabled account's does.
        state.store.revoke_grant(&current.grant_id).await?;
        let facts = TokenLog { user: Some(&user), amr: &current.auth.amr, ip, decision: None };
        let why = "the user is no longer assigned to the application";
        token_log(state, tenant, app, facts, Some(("not_assigned", why))).await;
        return Err(OAuthError::grant(why));
    }
    match reevaluate(state, tenant, &user, &app.client_id, ip, &current.auth).await? {
        (decision, None) => Ok((user, decision)),
        (decision, Some(refusal)) => {
            let why = refusal.to_string();
            let facts = TokenLog { user: Some(&user), amr: &current.auth.amr, ip, decision: Some(&decision) };
            token_log(state, tenant, app, facts, Some((refusal.log_code(), &why))).await;
            // Like Entra's continuous access evaluation, a block tells the client to bring the
            // user back too (DESIGN §14); `Interaction` says so already.
            let why = match refusal {
                Refusal::Blocked(_) => format!("interaction_required: {why}"),
                _ => why,
            };
            Err(OAuthError::grant(why))
        }
    }
}

struct TokenLog<'a> {
    user: Option<&'a crate::model::User>,
    amr: &'a [Amr],
    ip: Option<std::net::IpAddr>,
    decision: Option<&'a crate::policy::Decision>,
}

/// Token sign-ins (refresh, client credentials) go to the sign-in log as non-interactive.
async fn token_log(
    state: &AppState,
    tenant: &Tenant,
    app: &Application,
    f: TokenLog<'_>,
    failure: Option<(&str, &str)>,
) {
    let user = f.user;
    if failure.is_none() {
        let key = format!("{}:{}:{}", tenant.id, app.client_id, user.map(|u| u.id.to_string()).unwrap_or_default());
        let now = state.now();
        let mut seen = state.token_log_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&key).is_some_and(|t| now - t < 60) {
            return;
        }
        if seen.len() > 100_000 {
            seen.retain(|_, t| now - *t < 60);
        }
        seen.insert(key, now);
    }
    let facts = crate::audit::LogFacts {
        tenant,
        user,
        app_id: &app.client_id,
        ip: f.ip,
        device: None,
        idp: None,
        amr: f.amr.to_vec(),
        interactive: false,
    };
    crate::audit::log(state, facts, f.decision, failure.map(|(code, why)| (code, why.to_string()))).await;
}

async fn client_credentials(state: &AppState, tenant: &Tenant, app: &Application) -> Result<HttpResponse, OAuthError> {
    if app.client_type != ClientType::Confidential {
        return Err(OAuthError::new(OAuthCode::UnauthorizedClient, "public clients cannot use client_credentials"));
    }
    let token = app_access_token(state, tenant, app).map_err(OAuthError::server)?;
    token_log(state, tenant, app, TokenLog { user: None, amr: &[], ip: None, decision: None }, None).await;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token: token,
        token_type: BEARER.into(),
        expires_in: state.config.tokens.access_token_secs,
        scope: None,
        id_token: None,
        refresh_token: None,
    }))
}
