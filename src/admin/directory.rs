//! `devices`, `auditLogs/signIns`, `subscribedSkus`.
use actix_web::{HttpRequest, HttpResponse, web};

use super::odata::Query;
use super::wire::{self, DevicePatch, OData};
use super::{Caller, GraphError, json_body};
use crate::web::Data;

pub async fn devices(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let q = Query::parse(req.query_string(), &["id", "displayName", "isCompliant", "isManaged", "registeredOwner"])?;
    let items = state.store.devices(&caller.tenant.id).await?.into_iter().map(|d| wire::Device {
        id: d.id,
        display_name: d.display_name,
        is_managed: d.is_managed,
        is_compliant: d.is_compliant,
        trust_type: d.trust_type,
        registered_owner: d.registered_owner,
        created_at: d.created_at,
    });
    let base = format!("{}/graph/v1.0/devices", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#devices")?))
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
    let items = state.store.signin_log(&caller.tenant.id, 10_000).await?.into_iter().map(sign_in);
    let base = format!("{}/graph/v1.0/auditLogs/signIns", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#auditLogs/signIns")?))
}

pub async fn subscribed_skus(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let used = crate::licensing::seats_used(&state.store, &caller.tenant).await?;
    Ok(HttpResponse::Ok().json(OData::of(vec![wire::SubscribedSku {
        id: format!("{}_premium", caller.tenant.id),
        sku_part_number: "AAD_PREMIUM".into(),
        capability_status: "Enabled".into(),
        applies_to: "User".into(),
        prepaid_units: wire::LicenseUnits { enabled: caller.tenant.premium_seats, suspended: 0, warning: 0 },
        consumed_units: used,
    }])))
}

fn sign_in(e: crate::model::SignInLogEntry) -> wire::SignIn {
    wire::SignIn {
        id: e.id,
        created_date_time: e.created_date_time,
        created_at: e.created_at,
        user_id: e.user_id,
        user_principal_name: e.user_principal_name,
        user_display_name: e.user_display_name,
        user_type: e.user_type,
        app_id: e.app_id,
        app_display_name: e.app_display_name,
        ip_address: e.ip_address,
        named_locations: e.named_locations,
        device_detail: e.device_detail.map(|d| wire::SignInDevice {
            device_id: d.device_id,
            display_name: d.display_name,
            is_compliant: d.is_compliant,
            is_managed: d.is_managed,
        }),
        idp: e.idp,
        is_interactive: e.is_interactive,
        status: wire::SignInStatus {
            error_code: e.status.error_code,
            failure_reason: e.status.failure_reason,
            error: e.status.error,
        },
        conditional_access_status: e.conditional_access_status,
        amr: e.amr.iter().map(|a| a.as_str().to_string()).collect(),
        applied_conditional_access_policies: e.applied_conditional_access_policies,
    }
}
