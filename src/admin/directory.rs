//! `applications`, `devices`, `auditLogs/signIns`, `subscribedSkus`.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::odata::Query;
use super::{Caller, GraphError, json_body};
use crate::web::Data;

pub async fn applications(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let q = Query::parse(req.query_string(), &["appId", "displayName"])?;
    let items = state
        .store
        .apps(&caller.tenant.id).await?
        .into_iter()
        .map(|a| {
            json!({
                "id": a.client_id, "appId": a.client_id, "displayName": a.display_name,
                "web": {"redirectUris": a.redirect_uris, "logoutUrl": a.post_logout_redirect_uris.first(), "homePageUrl": a.home_page_url},
                "isFallbackPublicClient": a.client_type == crate::model::ClientType::Public,
                "appRoles": a.app_roles,
            })
        })
        .collect();
    let base = format!("{}/graph/v1.0/applications", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#applications")))
}

pub async fn devices(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let q = Query::parse(req.query_string(), &["id", "displayName", "isCompliant", "isManaged", "registeredOwner"])?;
    let items = state
        .store
        .devices(&caller.tenant.id)
        .await?
        .into_iter()
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .collect();
    let base = format!("{}/graph/v1.0/devices", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#devices")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DevicePatch {
    is_managed: Option<bool>,
    is_compliant: Option<bool>,
    trust_type: Option<Option<String>>,
    display_name: Option<String>,
}

pub async fn patch_device(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::WRITE).await?;
    let mut d =
        state.store.device(&caller.tenant.id, &path).await?.ok_or_else(|| GraphError::not_found("No such device."))?;
    let p: DevicePatch = json_body(&req, &body)?;
    if let Some(Some(t)) = &p.trust_type
        && !matches!(t.as_str(), "AzureAD" | "ServerAD" | "Workplace")
    {
        return Err(GraphError::bad_request("trustType must be AzureAD, ServerAD or Workplace."));
    }
    let display_name = match &p.display_name {
        Some(n) => Some(
            crate::model::display_text("displayName", n, crate::model::DISPLAY_NAME_MAX)
                .map_err(|e| GraphError::bad_request(format!("{e}.")))?,
        ),
        None => None,
    };
    if let Some(m) = p.is_managed {
        d.is_managed = m;
    }
    if let Some(c) = p.is_compliant {
        d.is_compliant = c;
    }
    if let Some(t) = p.trust_type {
        d.trust_type = t;
    }
    if let Some(n) = display_name {
        d.display_name = n;
    }
    state.store.put_device(&caller.tenant.id, &d).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn sign_ins(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller =
        Caller::require(&req, &state, &["AuditLog.Read.All", super::ROLE_DIRECTORY_RW, super::ROLE_GLOBAL_ADMIN])
            .await?;
    let q = Query::parse(
        req.query_string(),
        &[
            "userPrincipalName",
            "userId",
            "appId",
            "createdDateTime",
            "status/errorCode",
            "isInteractive",
            "conditionalAccessStatus",
            "userType",
        ],
    )?;
    let items = state
        .store
        .signin_log(&caller.tenant.id, 10_000)
        .await?
        .into_iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    let base = format!("{}/graph/v1.0/auditLogs/signIns", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#auditLogs/signIns")))
}

pub async fn subscribed_skus(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let used = crate::licensing::seats_used(&state.store, &caller.tenant).await?;
    Ok(HttpResponse::Ok().json(json!({"value": [{
        "id": format!("{}_premium", caller.tenant.id),
        "skuPartNumber": "AAD_PREMIUM",
        "capabilityStatus": "Enabled",
        "appliesTo": "User",
        "prepaidUnits": {"enabled": caller.tenant.premium_seats, "suspended": 0, "warning": 0},
        "consumedUnits": used,
    }]})))
}
