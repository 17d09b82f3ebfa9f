//! `/graph/v1.0/users`: list (filter guests), get by id or UPN, patch, delete, and the
//! authentication methods (MFA reset = delete the software OATH method).
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::odata::Query;
use super::{Caller, GraphError, ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN, json_body};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::model::{DISPLAY_NAME_MAX, ExternalUserState, Tenant, User, UserType, display_text};
use crate::web::Data;

pub const READ: &[&str] = &[ROLE_DIRECTORY_RW, "Directory.Read.All", "User.Read.All", ROLE_GLOBAL_ADMIN];
pub const WRITE: &[&str] = &[ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN];

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "userPrincipalName": u.user_principal_name,
        "mail": u.mail,
        "displayName": u.display_name,
        "userType": match u.user_type { UserType::Member => "Member", UserType::Guest => "Guest" },
        "accountEnabled": u.account_enabled,
        "creationType": u.creation_type,
        "externalUserState": u.external_user_state.map(|s| match s {
            ExternalUserState::PendingAcceptance => "PendingAcceptance",
            ExternalUserState::Accepted => "Accepted",
        }),
        "externalUserStateChangeDateTime": u.external_user_state_change_date_time.map(rfc3339),
        "identities": u.identities.iter().map(|i| json!({
            "signInType": i.sign_in_type, "issuer": i.issuer, "issuerAssignedId": i.issuer_assigned_id,
        })).collect::<Vec<_>>(),
        "createdDateTime": rfc3339(u.created_at),
        // gatehouse extensions
        "perUserMfaEnabled": u.per_user_mfa,
        "riskLevel": u.risk_level,
        "strongAuthenticationMethods": methods_json(u).iter().filter(|m| m["@odata.type"] != "#microsoft.graph.passwordAuthenticationMethod").map(|m| json!({"methodType": m["methodType"]})).collect::<Vec<_>>(),
    })
}

pub fn methods_json(u: &User) -> Vec<Value> {
    let mut out = Vec::new();
    if u.password_hash.is_some() {
        out.push(json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": "28c10230-6103-485e-b985-444c60001490", "methodType": "Password"}));
    }
    for m in &u.totp_methods {
        out.push(json!({
            "@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod",
            "id": m.id,
            "secretKey": null,
            "createdDateTime": rfc3339(m.created_at),
            "methodType": "SoftwareOath",
        }));
    }
    out
}

/// `{id}` may be an object id or a UPN (as in Graph).
pub async fn find(state: &AppState, tenant: &Tenant, key: &str) -> Result<User, GraphError> {
    let user = match Uuid::parse_str(key) {
        Ok(id) => state.store.user(&tenant.id, &id).await?,
        Err(_) => state.store.user_by_login(&tenant.id, key).await?,
    };
    user.ok_or_else(|| {
        GraphError::not_found(format!(
            "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
        ))
    })
}

pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(
        req.query_string(),
        &[
            "userType",
            "userPrincipalName",
            "mail",
            "displayName",
            "accountEnabled",
            "externalUserState",
            "creationType",
            "id",
        ],
    )?;
    let items = state.store.users(&caller.tenant.id).await?.iter().map(user_json).collect();
    let base = format!("{}/graph/v1.0/users", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, &format!("{}/graph/v1.0/$metadata#users", state.public_url))))
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Ok().json(user_json(&user)))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UserPatch {
    display_name: Option<String>,
    account_enabled: Option<bool>,
    per_user_mfa_enabled: Option<bool>,
    /// Members only: none, low, medium, high (admin-set user risk).
    risk_level: Option<Option<String>>,
}

pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    let p: UserPatch = json_body(&req, &body)?;
    let display_name = match &p.display_name {
        Some(n) => Some(
            display_text("displayName", n, DISPLAY_NAME_MAX).map_err(|e| GraphError::bad_request(format!("{e}.")))?,
        ),
        None => None,
    };
    if let Some(Some(level)) = &p.risk_level {
        if !matches!(level.as_str(), "none" | "low" | "medium" | "high") {
            return Err(GraphError::bad_request("riskLevel must be none, low, medium or high."));
        }
        if user.is_guest() {
            return Err(GraphError::bad_request("A guest's risk is evaluated at their home organisation."));
        }
    }
    crate::storage::modify_user(&state.store, &caller.tenant.id, &user.id, |u| {
        if let Some(n) = &display_name {
            u.display_name = n.clone();
        }
        if let Some(e) = p.account_enabled {
            // Disabling ends every session and token at once; enabling again revives none.
            if u.account_enabled && !e {
                u.session_epoch += 1;
            }
            u.account_enabled = e;
        }
        if let Some(m) = p.per_user_mfa_enabled {
            u.per_user_mfa = m;
        }
        if let Some(r) = &p.risk_level {
            u.risk_level = r.clone();
        }
    })
    .await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /users/{id}/revokeSignInSessions`: every SSO session, refresh token and access
/// token of the user stops working at once (the credential gate compares epochs).
pub async fn revoke_sign_in_sessions(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    crate::storage::modify_user(&state.store, &caller.tenant.id, &user.id, |u| u.session_epoch += 1).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "@odata.context": format!("{}/graph/v1.0/$metadata#Edm.Boolean", state.public_url),
        "value": true,
    })))
}

pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    if caller.claims.oid == Some(user.id) {
        return Err(GraphError::bad_request("You cannot delete your own account."));
    }
    state.store.delete_user(&caller.tenant.id, &user.id).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn methods(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "value": methods_json(&user) })))
}

pub async fn oath_methods(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    let list: Vec<Value> = methods_json(&user).into_iter().filter(|m| m["methodType"] == "SoftwareOath").collect();
    Ok(HttpResponse::Ok().json(json!({ "value": list })))
}

/// Reset-MsolStrongAuthenticationMethodByUpn: the method (and the recovery codes that
/// go with TOTP) are removed; the next MFA sign-in asks for proof-up again.
pub async fn delete_oath_method(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let (key, method) = path.into_inner();
    let user = find(&state, &caller.tenant, &key).await?;
    if !user.totp_methods.iter().any(|m| m.id == method) {
        return Err(GraphError::not_found(format!("Authentication method '{method}' does not exist.")));
    }
    reset_method(&state, &caller.tenant, &user, Some(&method)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes one TOTP method (or all with `None`); shared with the admin page and the CLI path.
pub async fn reset_method(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
    method: Option<&str>,
) -> Result<(), GraphError> {
    crate::storage::modify_user(&state.store, &tenant.id, &user.id, |u| {
        u.totp_methods.retain(|m| method.is_some_and(|id| m.id != id));
        if u.totp_methods.is_empty() {
            u.recovery_code_hashes.clear();
            u.mfa_lockout.clear();
        }
    })
    .await?;
    state.store.flush().await?;
    tracing::info!(user = %user.id, "MFA methods reset by an admin");
    Ok(())
}
