//! Cross-tenant access settings (DESIGN §13): Graph
//! `policies/crossTenantAccessPolicy/default` (GET, PATCH) and `…/partners[/{tenantId}]`
//! (CRUD). Every bad body is a 400 naming what is wrong, and nothing is stored.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::policies::{READ, WRITE};
use super::wire::{self, B2bSetting, InboundTrustPatch, OData, PartnerPatch};
use super::{Caller, GraphError, json_body};
use crate::app::AppState;
use crate::model::{Tenant, TenantId};
use crate::policy::cross_tenant::{
    ALL_APPLICATIONS, ALL_USERS, AccessType, InboundTrustSettings, PartnerSettings, Target, TargetType, Targets,
    validate_setting,
};
use crate::web::Data;

fn everyone(all: &str, target_type: TargetType) -> Targets {
    Targets { access_type: AccessType::Allowed, targets: vec![Target { target: all.into(), target_type }] }
}

/// Entra's service default for a B2B setting: everyone, every application.
fn service_default() -> B2bSetting {
    B2bSetting {
        users_and_groups: Some(everyone(ALL_USERS, TargetType::User)),
        applications: Some(everyone(ALL_APPLICATIONS, TargetType::Application)),
    }
}

/// A configured setting with its unset part filled from Entra's service default.
fn effective(s: Option<&B2bSetting>) -> B2bSetting {
    let d = service_default();
    B2bSetting {
        users_and_groups: s.and_then(|s| s.users_and_groups.clone()).or(d.users_and_groups),
        applications: s.and_then(|s| s.applications.clone()).or(d.applications),
    }
}

fn graph_default(t: &Tenant) -> wire::CrossTenantDefault {
    let d = &t.cross_tenant.default;
    wire::CrossTenantDefault {
        is_service_default: *d == Default::default(),
        b2b_collaboration_inbound: effective(d.b2b_collaboration_inbound.as_ref()),
        b2b_collaboration_outbound: effective(d.b2b_collaboration_outbound.as_ref()),
        inbound_trust: d.inbound_trust.unwrap_or_default(),
    }
}

fn graph_partner(p: &PartnerSettings) -> wire::Partner {
    wire::Partner {
        tenant_id: p.tenant_id,
        is_service_provider: false,
        b2b_collaboration_inbound: p.b2b_collaboration_inbound.clone(),
        b2b_collaboration_outbound: p.b2b_collaboration_outbound.clone(),
        inbound_trust: p.inbound_trust,
    }
}

pub async fn get_default(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    Ok(HttpResponse::Ok().json(graph_default(&caller.tenant)))
}

pub async fn patch_default(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: PartnerPatch = json_body(&req, &body)?;
    if b.tenant_id.is_some() {
        return Err(GraphError::bad_request("tenantId belongs to a partner configuration, not the default."));
    }
    let mut tenant = caller.tenant;
    let d = &tenant.cross_tenant.default;
    let mut entry = PartnerSettings {
        tenant_id: Uuid::nil(),
        b2b_collaboration_inbound: d.b2b_collaboration_inbound.clone(),
        b2b_collaboration_outbound: d.b2b_collaboration_outbound.clone(),
        inbound_trust: d.inbound_trust,
    };
    apply(&state, &tenant, None, &mut entry, b).await?;
    let d = &mut tenant.cross_tenant.default;
    d.b2b_collaboration_inbound = entry.b2b_collaboration_inbound;
    d.b2b_collaboration_outbound = entry.b2b_collaboration_outbound;
    d.inbound_trust = entry.inbound_trust;
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_partners(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let partners: Vec<_> = caller.tenant.cross_tenant.partners.iter().map(graph_partner).collect();
    Ok(HttpResponse::Ok().json(OData::of(partners)))
}

fn partner_id(raw: &str) -> Result<Uuid, GraphError> {
    Uuid::parse_str(raw).map_err(|_| GraphError::not_found("No configuration for this partner (not a tenant id)."))
}

pub async fn get_partner(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let id = partner_id(&path)?;
    let p = caller
        .tenant
        .cross_tenant
        .partner(id)
        .ok_or_else(|| GraphError::not_found("No configuration for this partner."))?;
    Ok(HttpResponse::Ok().json(graph_partner(p)))
}

/// Checks one B2B setting: its shape, and (inbound) that application targets are apps of
/// this tenant, (a partner's outbound) apps of that partner.
async fn check_setting(
    state: &AppState,
    s: &B2bSetting,
    what: &str,
    apps_of: Option<&TenantId>,
) -> Result<(), GraphError> {
    validate_setting(s, what).map_err(GraphError::bad_request)?;
    let (Some(tenant), Some(apps)) = (apps_of, &s.applications) else { return Ok(()) };
    for t in apps.targets.iter().filter(|t| t.target != ALL_APPLICATIONS) {
        if state.store.app(tenant, &t.target).await?.is_none() {
            return Err(GraphError::bad_request(format!(
                "{what}.applications: {} is not an application of that tenant.",
                t.target
            )));
        }
    }
    Ok(())
}

fn merge_trust(old: Option<InboundTrustSettings>, patch: InboundTrustPatch) -> InboundTrustSettings {
    let mut t = old.unwrap_or_default();
    if let Some(v) = patch.is_mfa_accepted {
        t.is_mfa_accepted = v;
    }
    if let Some(v) = patch.is_compliant_device_accepted {
        t.is_compliant_device_accepted = v;
    }
    if let Some(v) = patch.is_hybrid_azure_ad_joined_device_accepted {
        t.is_hybrid_azure_ad_joined_device_accepted = v;
    }
    t
}

/// Validates the whole patch, then applies it to `entry` (`partner`: the partner's tenant,
/// `None` for the default). Nothing is applied when anything is wrong.
async fn apply(
    state: &AppState,
    tenant: &Tenant,
    partner: Option<TenantId>,
    entry: &mut PartnerSettings,
    b: PartnerPatch,
) -> Result<(), GraphError> {
    if b.is_service_provider == Some(true) {
        return Err(GraphError::bad_request("isServiceProvider is read-only and false here."));
    }
    if let Some(Some(s)) = &b.b2b_collaboration_inbound {
        check_setting(state, s, "b2bCollaborationInbound", Some(&tenant.id)).await?;
    }
    if let Some(Some(s)) = &b.b2b_collaboration_outbound {
        check_setting(state, s, "b2bCollaborationOutbound", partner.as_ref()).await?;
    }
    if let Some(s) = b.b2b_collaboration_inbound {
        entry.b2b_collaboration_inbound = s;
    }
    if let Some(s) = b.b2b_collaboration_outbound {
        entry.b2b_collaboration_outbound = s;
    }
    if let Some(t) = b.inbound_trust {
        entry.inbound_trust = t.map(|t| merge_trust(entry.inbound_trust, t));
    }
    Ok(())
}

async fn save_partner(
    state: &AppState,
    caller: Caller,
    tenant_id: Uuid,
    body: PartnerPatch,
    create: bool,
) -> Result<HttpResponse, GraphError> {
    if body.tenant_id.is_some_and(|t| t != tenant_id) {
        return Err(GraphError::bad_request("tenantId does not match."));
    }
    if tenant_id == caller.tenant.id.0 {
        return Err(GraphError::bad_request("A tenant is not its own partner."));
    }
    let mut tenant = caller.tenant;
    let existing = tenant.cross_tenant.partners.iter().position(|p| p.tenant_id == tenant_id);
    match (create, existing) {
        (true, Some(_)) => {
            return Err(GraphError::new(
                StatusCode::CONFLICT,
                "Request_MultipleObjectsWithSameKeyValue",
                "This partner is already configured.",
            ));
        }
        (false, None) => return Err(GraphError::not_found("No configuration for this partner.")),
        _ => {}
    }
    // Entra accepts any tenant id; gatehouse federates only with its own tenants (and external
    // providers, which are not partners), so an unknown id is most likely a typo.
    let partner = TenantId(tenant_id);
    if create && state.store.tenant(&partner).await?.is_none() {
        return Err(GraphError::bad_request(format!("{tenant_id} is not a tenant on this instance.")));
    }
    let mut entry = match existing {
        Some(i) => tenant.cross_tenant.partners[i].clone(),
        None => PartnerSettings { tenant_id, ..Default::default() },
    };
    apply(state, &tenant, Some(partner), &mut entry, body).await?;
    let out = graph_partner(&entry);
    match existing {
        Some(i) => tenant.cross_tenant.partners[i] = entry,
        None => tenant.cross_tenant.partners.push(entry),
    }
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(if create { HttpResponse::Created().json(out) } else { HttpResponse::NoContent().finish() })
}

pub async fn create_partner(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: PartnerPatch = json_body(&req, &body)?;
    let tid = b.tenant_id.ok_or_else(|| GraphError::bad_request("tenantId is required."))?;
    save_partner(&state, caller, tid, b, true).await
}

pub async fn patch_partner(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = partner_id(&path)?;
    let b: PartnerPatch = json_body(&req, &body)?;
    save_partner(&state, caller, id, b, false).await
}

pub async fn delete_partner(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = partner_id(&path)?;
    let mut tenant = caller.tenant;
    let before = tenant.cross_tenant.partners.len();
    tenant.cross_tenant.partners.retain(|p| p.tenant_id != id);
    if tenant.cross_tenant.partners.len() == before {
        return Err(GraphError::not_found("No configuration for this partner."));
    }
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}
