//! Conditional access: `identity/conditionalAccess/policies` and `namedLocations` (CRUD
//! with validation) and `evaluate` (What If). Cross-tenant access settings: `cross_tenant`.
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;
use uuid::Uuid;

use super::odata::Query;
use super::wire::{self, WhatIfOutcome, WhatIfRequest};
use super::{Caller, GraphError, ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN, json_body};
use crate::access::{Gate, gate};
use crate::model::{Acr, Amr, DISPLAY_NAME_MAX, display_text};
use crate::policy::{self, NamedLocation, Policy};
use crate::web::Data;

pub const READ: &[&str] = &[ROLE_DIRECTORY_RW, "Policy.Read.All", "Directory.Read.All", ROLE_GLOBAL_ADMIN];
pub const WRITE: &[&str] = &[ROLE_DIRECTORY_RW, "Policy.ReadWrite.ConditionalAccess", ROLE_GLOBAL_ADMIN];

/// RFC 7386 merge patch, for PATCH on Graph resources.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Every string a policy or named location stores (its displayName above all) is shown
/// on admin pages and in logs: refuse what would forge lines or reorder text there.
fn check_strings(v: &Value, path: &str) -> Result<(), GraphError> {
    match v {
        Value::String(s) if s.chars().any(crate::model::forbidden_in_text) => Err(GraphError::bad_request(format!(
            "{path} must not contain control characters, line breaks or bidirectional overrides."
        ))),
        Value::Array(items) => items.iter().try_for_each(|i| check_strings(i, path)),
        Value::Object(map) => map.iter().try_for_each(|(k, i)| {
            check_strings(&Value::String(k.clone()), path)?;
            check_strings(i, if path.is_empty() { k } else { path })
        }),
        _ => Ok(()),
    }
}

fn check_display_name(name: &str) -> Result<(), GraphError> {
    display_text("displayName", name, DISPLAY_NAME_MAX)
        .map(|_| ())
        .map_err(|e| GraphError::bad_request(format!("{e}.")))
}

fn parse_policy(
    v: Value,
    locations: &[NamedLocation],
    strengths: &[policy::AuthenticationStrength],
) -> Result<Policy, GraphError> {
    check_strings(&v, "")?;
    let p: Policy = serde_json::from_value(v).map_err(|e| GraphError::bad_request(format!("Invalid policy: {e}")))?;
    policy::validate(&p).map_err(|e| GraphError::bad_request(format!("Invalid policy: {e}")))?;
    policy::validate_references(&p, locations, strengths)
        .map_err(|e| GraphError::bad_request(format!("Invalid policy: {e}")))?;
    check_display_name(&p.display_name)?;
    Ok(p)
}

/// Every group the policy names (`includeGroups`, `excludeGroups`) and every agreement
/// (`termsOfUse`) is one of the tenant's.
fn check_groups(p: &Policy, tenant: &crate::model::Tenant) -> Result<(), GraphError> {
    let invalid = |e: String| GraphError::bad_request(format!("Invalid policy: {e}"));
    let known: Vec<Uuid> = tenant.groups.iter().map(|g| g.id).collect();
    policy::validate_group_references(p, &known).map_err(invalid)?;
    let agreements: Vec<Uuid> = tenant.agreements.iter().map(|a| a.id).collect();
    policy::validate_terms_references(p, &agreements).map_err(invalid)
}

/// New resources get a server-assigned id; the body must be a JSON object.
fn assign_id(v: &mut Value) -> Result<(), GraphError> {
    let Value::Object(map) = v else { return Err(GraphError::bad_request("The body must be a JSON object.")) };
    if map.get("id").and_then(Value::as_str).is_some_and(|id| !id.is_empty()) {
        return Err(GraphError::bad_request("id is assigned by the server."));
    }
    map.insert("id".into(), Value::String(Uuid::new_v4().to_string()));
    Ok(())
}

pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "state", "id"])?;
    let policies = state.store.policies(&caller.tenant.id).await?;
    let base = format!("{}/graph/v1.0/identity/conditionalAccess/policies", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(&policies, &base, "#conditionalAccessPolicies")?))
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let p =
        state.store.policy(&caller.tenant.id, &path).await?.ok_or_else(|| GraphError::not_found("No such policy."))?;
    Ok(HttpResponse::Ok().json(p))
}

pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut v: Value = json_body(&req, &body)?;
    assign_id(&mut v)?;
    let locations = state.store.named_locations(&caller.tenant.id).await?;
    let p = parse_policy(v, &locations, &caller.tenant.authentication_strengths)?;
    check_groups(&p, &caller.tenant)?;
    state.store.put_policy(&caller.tenant.id, &p).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Created().json(p))
}

pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let existing =
        state.store.policy(&caller.tenant.id, &path).await?.ok_or_else(|| GraphError::not_found("No such policy."))?;
    let patch: Value = json_body(&req, &body)?;
    if !patch.is_object() {
        return Err(GraphError::bad_request("The body must be a JSON object."));
    }
    if patch.get("id").is_some_and(|id| id.as_str() != Some(existing.id.as_str())) {
        return Err(GraphError::bad_request("id cannot change."));
    }
    let mut v = serde_json::to_value(&existing).map_err(GraphError::internal)?;
    merge(&mut v, &patch);
    let locations = state.store.named_locations(&caller.tenant.id).await?;
    let p = parse_policy(v, &locations, &caller.tenant.authentication_strengths)?;
    check_groups(&p, &caller.tenant)?;
    state.store.put_policy(&caller.tenant.id, &p).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    if !state.store.delete_policy(&caller.tenant.id, &path).await? {
        return Err(GraphError::not_found("No such policy."));
    }
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn parse_location(v: Value) -> Result<NamedLocation, GraphError> {
    check_strings(&v, "")?;
    let l: NamedLocation =
        serde_json::from_value(v).map_err(|e| GraphError::bad_request(format!("Invalid named location: {e}")))?;
    if l.display_name.trim().is_empty() || l.ip_ranges.is_empty() {
        return Err(GraphError::bad_request("A named location needs a displayName and at least one ipRange."));
    }
    check_display_name(&l.display_name)?;
    Ok(l)
}

pub async fn list_locations(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "id", "isTrusted"])?;
    let locations = state.store.named_locations(&caller.tenant.id).await?;
    let base = format!("{}/graph/v1.0/identity/conditionalAccess/namedLocations", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(&locations, &base, "#namedLocations")?))
}

pub async fn get_location(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let l = state
        .store
        .named_location(&caller.tenant.id, &path)
        .await?
        .ok_or_else(|| GraphError::not_found("No such named location."))?;
    Ok(HttpResponse::Ok().json(l))
}

pub async fn create_location(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut v: Value = json_body(&req, &body)?;
    assign_id(&mut v)?;
    let l = parse_location(v)?;
    state.store.put_named_location(&caller.tenant.id, &l).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Created().json(l))
}

pub async fn patch_location(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let existing = state
        .store
        .named_location(&caller.tenant.id, &path)
        .await?
        .ok_or_else(|| GraphError::not_found("No such named location."))?;
    let patch: Value = json_body(&req, &body)?;
    if !patch.is_object() {
        return Err(GraphError::bad_request("The body must be a JSON object."));
    }
    let mut v = serde_json::to_value(&existing).map_err(GraphError::internal)?;
    merge(&mut v, &patch);
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), Value::String(existing.id.clone()));
    }
    let l = parse_location(v)?;
    state.store.put_named_location(&caller.tenant.id, &l).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

pub async fn delete_location(
    req: HttpRequest,
    path: web::Path<String>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let in_use = state.store.policies(&caller.tenant.id).await?.into_iter().any(|p| {
        p.conditions
            .locations
            .as_ref()
            .is_some_and(|l| l.include_locations.contains(&path) || l.exclude_locations.contains(&path))
    });
    if in_use {
        return Err(GraphError::bad_request("The named location is used by a policy; change the policy first."));
    }
    if !state.store.delete_named_location(&caller.tenant.id, &path).await? {
        return Err(GraphError::not_found("No such named location."));
    }
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What If: the same engine, inputs and extra MFA rules as a real sign-in.
pub async fn evaluate(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let w: WhatIfRequest = json_body(&req, &body)?;
    let key = w
        .user_id
        .or(w.user_principal_name)
        .ok_or_else(|| GraphError::bad_request("userId or userPrincipalName is required."))?;
    let user = super::users::find(&state, &caller.tenant, &key).await?;
    let device = match &w.device_id {
        Some(id) => Some(
            state
                .store
                .device(&caller.tenant.id, id)
                .await?
                .ok_or_else(|| GraphError::bad_request("No such device."))?,
        ),
        None => None,
    };
    let auth = crate::model::Authentication {
        user_id: user.id,
        auth_time: 0,
        // Methods gatehouse does not know prove nothing (as in a sign-in, only `mfa` counts).
        amr: w.authentication_methods.iter().filter_map(|m| Amr::parse(m)).collect(),
        acr: Acr::SingleFactor,
        idp: None,
        epoch: user.session_epoch,
        device_id: None,
        home: None,
        mfa_time: None,
    };
    let mut ctx = crate::access::context(&user, &w.app_id, w.ip_address, device.as_ref(), &auth, w.auth_age_secs);
    ctx.accepted_terms = crate::access::accepted_terms(&caller.tenant, &user, state.now());
    // The same rule as a sign-in: the first supported acr value ("1" or "2") is the aim.
    let aim = w.acr_values.iter().find_map(|a| Acr::parse(a));
    let step_up = aim == Some(Acr::MultiFactor);
    let g = gate(&state, &caller.tenant, &user, &ctx, step_up).await?;
    let (outcome, decision) = match g {
        Gate::Allow(d) => (WhatIfOutcome::Allow, d),
        Gate::Mfa(d) => (WhatIfOutcome::Mfa, d),
        Gate::Block { decision, .. } => (WhatIfOutcome::Block, decision),
        Gate::Reauthenticate(d) => (WhatIfOutcome::Reauthenticate, d),
        Gate::Terms(d) => (WhatIfOutcome::Terms, d),
    };
    Ok(HttpResponse::Ok().json(wire::WhatIfResult {
        outcome,
        applied_conditional_access_policies: decision.results,
        matched_named_locations: decision.matched_locations,
        grant_controls_required: decision.required,
        blocking_policies: decision.block,
        reauthenticate: decision.reauthenticate,
        reauthenticate_mfa: decision.reauthenticate_mfa,
        terms_of_use_required: decision.terms,
        persistent_browser: decision.persistent_browser,
        context: ctx,
    }))
}
