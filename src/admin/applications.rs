//! `/applications`: list, get, create, update, delete, and the client secrets
//! (`addPassword` shows a secret once and stores its SHA-256; `removePassword`). The
//! shapes are in `applications_wire`, the rules in `applications_validate`.
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::applications_validate::{apply, graph_app};
use super::applications_wire::{self as w, AddPasswordRequest, ApplicationRequest, RemovePasswordRequest};
use super::odata::Query;
use super::{Caller, GraphError, ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::model::{
    Application, ClientType, DISPLAY_NAME_MAX, PasswordCredential, Registration, SigningAlg, Tenant, display_text,
};
use crate::web::Data;

pub const READ: &[&str] =
    &[ROLE_DIRECTORY_RW, "Directory.Read.All", "Application.Read.All", "Application.ReadWrite.All", ROLE_GLOBAL_ADMIN];
pub const WRITE: &[&str] = &[ROLE_DIRECTORY_RW, "Application.ReadWrite.All", ROLE_GLOBAL_ADMIN];

/// Client secrets per application, and the longest a new one may live (Entra's portal: 2 years).
pub const PASSWORDS_MAX: usize = 16;
pub const PASSWORD_LIFE_MAX_SECS: i64 = 2 * 365 * 86_400 + 86_400;
const PASSWORD_LIFE_DEFAULT_SECS: i64 = 2 * 365 * 86_400;

/// The admin API's own permissions: an app role with one of these names lets its app call
/// the API, so only a caller that holds the permission itself may give it (no escalation
/// from `Application.ReadWrite.All` to `Directory.ReadWrite.All`).
const API_PERMISSIONS: &[&str] = &[
    "Application.Read.All",
    "Application.ReadWrite.All",
    "AuditLog.Read.All",
    "Directory.Read.All",
    ROLE_DIRECTORY_RW,
    "Policy.Read.All",
    "Policy.ReadWrite.ConditionalAccess",
    super::ROLE_USER_INVITE,
    "User.Read.All",
    ROLE_GLOBAL_ADMIN,
];

fn no_escalation(caller: &Caller, before: &[String], after: &Application) -> Result<(), GraphError> {
    let gained = after.app_roles.iter().filter(|r| !before.contains(r));
    for role in gained {
        if let Some(p) = API_PERMISSIONS.iter().find(|p| p.eq_ignore_ascii_case(role))
            && !caller.has_any(&[*p])
        {
            return Err(GraphError::forbidden(format!(
                "The app role {p} is a permission of the admin API that you do not hold: you cannot give it."
            )));
        }
    }
    Ok(())
}

/// Applications gatehouse itself keeps (federation between its tenants, its own pages).
fn built_in(client_id: &str) -> bool {
    client_id == crate::federation::B2B_CLIENT_ID || client_id == crate::access::PORTAL_APP
}

fn not_found(key: &str) -> GraphError {
    GraphError::not_found(format!(
        "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
    ))
}

/// The tenant's application `key` (its `id`, which is its `appId`).
pub async fn find(state: &AppState, tenant: &Tenant, key: &str) -> Result<Application, GraphError> {
    state.store.app(&tenant.id, key).await?.ok_or_else(|| not_found(key))
}

/// One the admin API may change: not a built-in one.
async fn find_editable(state: &AppState, tenant: &Tenant, key: &str) -> Result<Application, GraphError> {
    let app = find(state, tenant, key).await?;
    if built_in(&app.client_id) {
        return Err(GraphError::bad_request(format!("'{key}' is built into gatehouse and cannot be changed.")));
    }
    Ok(app)
}

pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["appId", "displayName"])?;
    let items = state.store.apps(&caller.tenant.id).await?.iter().map(graph_app).collect::<Vec<_>>();
    let base = format!("{}/graph/v1.0/applications", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#applications")?))
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let app = find(&state, &caller.tenant, &path).await?;
    let q = Query::parse(req.query_string(), &[])?;
    Ok(HttpResponse::Ok().json(q.project_one(&graph_app(&app))?))
}

/// `POST /applications`: a new registration; `appId` (= `id`) is a new UUID.
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let r: ApplicationRequest = super::applications_validate::body(&req, &body)?;
    let mut app = Application {
        tenant_id: caller.tenant.id,
        client_id: Uuid::new_v4().to_string().into(),
        display_name: String::new(),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        client_type: ClientType::Confidential,
        secret_hashes: vec![],
        id_token_signed_response_alg: SigningAlg::ES256,
        app_roles: vec![],
        assignment_required: false,
        home_page_url: None,
        // Registered by an admin, used by people: they are asked what it may have (OIDC Core §11).
        first_party: false,
        group_membership_claims: None,
        registration: Registration::default(),
    };
    apply(&mut app, &r, true)?;
    no_escalation(&caller, &[], &app)?;
    state.store.put_app(&app).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, by = %caller.display(), "application created");
    Ok(HttpResponse::Created().json(graph_app(&app)))
}

/// `PATCH /applications/{id}`: changes what the body names; all of it or nothing.
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut app = find_editable(&state, &caller.tenant, &path).await?;
    let r: ApplicationRequest = super::applications_validate::body(&req, &body)?;
    let before = app.app_roles.clone();
    apply(&mut app, &r, false)?;
    no_escalation(&caller, &before, &app)?;
    state.store.put_app(&app).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, by = %caller.display(), "application updated");
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /applications/{id}`: its tokens stop working (the credential gate finds no app).
pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let app = find_editable(&state, &caller.tenant, &path).await?;
    if caller.user.is_none() && caller.claims.client_id == app.client_id.as_str() {
        return Err(GraphError::bad_request("An application cannot delete itself: use another admin credential."));
    }
    state.store.delete_app(&caller.tenant.id, &app.client_id).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, by = %caller.display(), "application deleted");
    Ok(HttpResponse::NoContent().finish())
}

fn parse_end(s: &str, now: i64) -> Result<i64, GraphError> {
    let end = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|_| {
            GraphError::bad_request("endDateTime is not an ISO 8601 date-time with a zone (e.g. 2027-01-31T00:00:00Z).")
        })?
        .timestamp();
    if end <= now {
        return Err(GraphError::bad_request("endDateTime must be in the future."));
    }
    if end - now > PASSWORD_LIFE_MAX_SECS {
        return Err(GraphError::bad_request("endDateTime: a client secret lives at most two years; rotate it."));
    }
    Ok(end)
}

/// `POST /applications/{id}/addPassword`: a new client secret, returned once in
/// `secretText`; only its SHA-256 is kept. It authenticates until `endDateTime`.
pub async fn add_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut app = find_editable(&state, &caller.tenant, &path).await?;
    let r: AddPasswordRequest =
        if body.is_empty() { AddPasswordRequest::default() } else { super::applications_validate::body(&req, &body)? };
    let p = r.password_credential.unwrap_or_default();
    if app.client_type == ClientType::Public {
        return Err(GraphError::bad_request(
            "A public client (isFallbackPublicClient) signs in with PKCE and no secret: it cannot have one.",
        ));
    }
    let display_name = p
        .display_name
        .as_deref()
        .map(|n| display_text("displayName", n, DISPLAY_NAME_MAX).map_err(|e| GraphError::bad_request(format!("{e}."))))
        .transpose()?;
    let now = state.now();
    let end = match &p.end_date_time {
        Some(s) => parse_end(s, now)?,
        None => now + PASSWORD_LIFE_DEFAULT_SECS,
    };
    if app.registration.password_credentials.len() >= PASSWORDS_MAX {
        return Err(GraphError::bad_request(format!(
            "An application has at most {PASSWORDS_MAX} client secrets: remove one first."
        )));
    }
    let secret = crate::secrets::new_token();
    let credential = PasswordCredential {
        key_id: Uuid::new_v4(),
        display_name,
        hint: secret.chars().take(3).collect(),
        hash: crate::secrets::digest_hex(&secret),
        start: now,
        end,
    };
    app.registration.password_credentials.push(credential.clone());
    state.store.put_app(&app).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, key_id = %credential.key_id,
        by = %caller.display(), "client secret added");
    Ok(HttpResponse::Ok().json(w::PasswordCredential {
        key_id: credential.key_id,
        display_name: credential.display_name,
        hint: credential.hint,
        start_date_time: rfc3339(credential.start),
        end_date_time: rfc3339(credential.end),
        secret_text: Some(secret),
    }))
}

/// `POST /applications/{id}/removePassword` `{keyId}`: the secret stops authenticating.
pub async fn remove_password(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut app = find_editable(&state, &caller.tenant, &path).await?;
    let r: RemovePasswordRequest = super::applications_validate::body(&req, &body)?;
    let raw = r.key_id.ok_or_else(|| GraphError::bad_request("keyId is required."))?;
    let key_id = Uuid::parse_str(&raw).map_err(|_| GraphError::bad_request("keyId is not a GUID."))?;
    let before = app.registration.password_credentials.len();
    app.registration.password_credentials.retain(|c| c.key_id != key_id);
    if app.registration.password_credentials.len() == before {
        return Err(GraphError::not_found(format!(
            "No password credential with keyId '{key_id}' on this application."
        )));
    }
    state.store.put_app(&app).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, key_id = %key_id,
        by = %caller.display(), "client secret removed");
    Ok(HttpResponse::NoContent().finish())
}
