//! `policies/authenticationStrengthPolicies` (DESIGN §10): Entra's three built-in strengths
//! (read only) and the tenant's custom ones — create, rename, change their combinations
//! (`updateAllowedCombinations`, as Entra), delete while no policy names them.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::odata::Query;
use super::policies::{READ, WRITE};
use super::{Caller, GraphError, json_body};
use crate::clock::rfc3339;
use crate::model::{DISPLAY_NAME_MAX, display_text};
use crate::policy::AuthenticationStrength;
use crate::policy::strength::{self, MAX_CUSTOM};
use crate::web::Data;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrengthIn {
    #[serde(default, rename = "@odata.type")]
    _odata_type: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    allowed_combinations: Option<Vec<String>>,
    /// Only `custom` can be created.
    #[serde(default)]
    policy_type: Option<String>,
    #[serde(default)]
    requirements_satisfied: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CombinationsIn {
    allowed_combinations: Vec<String>,
}

fn check_name(name: &str, field: &'static str, max: usize) -> Result<String, GraphError> {
    display_text(field, name, max).map_err(|e| GraphError::bad_request(format!("{e}.")))
}

/// A description may be empty; otherwise it is display text like a name.
fn check_description(d: &str) -> Result<String, GraphError> {
    if d.trim().is_empty() { Ok(String::new()) } else { check_name(d, "description", 1024) }
}

fn combinations(c: &[String]) -> Result<Vec<String>, GraphError> {
    strength::validate_combinations(c).map_err(|e| GraphError::bad_request(format!("Invalid strength: {e}.")))
}

fn unique_name(tenant: &crate::model::Tenant, name: &str, except: Option<&str>) -> Result<(), GraphError> {
    let taken = strength::BUILT_IN
        .iter()
        .chain(&tenant.authentication_strengths)
        .any(|s| s.display_name.eq_ignore_ascii_case(name) && Some(s.id.as_str()) != except);
    if taken {
        return Err(GraphError::bad_request("An authentication strength with this displayName exists."));
    }
    Ok(())
}

fn built_in_refused(id: &str) -> Result<(), GraphError> {
    if strength::built_in(id).is_some() {
        return Err(GraphError::bad_request("Built-in authentication strengths cannot be changed or deleted."));
    }
    Ok(())
}

/// `GET /policies/authenticationStrengthPolicies`: the built-in strengths, then the tenant's.
pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "policyType", "id"])?;
    let base = format!("{}/graph/v1.0/policies/authenticationStrengthPolicies", state.public_url);
    let all = strength::BUILT_IN.iter().chain(&caller.tenant.authentication_strengths);
    Ok(HttpResponse::Ok().json(q.respond(all, &base, "#authenticationStrengthPolicies")?))
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let s = strength::find(&path, &caller.tenant.authentication_strengths)
        .ok_or_else(|| GraphError::not_found("No such authentication strength."))?;
    Ok(HttpResponse::Ok().json(s))
}

/// `POST`: a custom strength (`displayName` and `allowedCombinations` required).
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: StrengthIn = json_body(&req, &body)?;
    if b.policy_type.as_deref().is_some_and(|t| t != "custom") {
        return Err(GraphError::bad_request("Only custom authentication strengths can be created."));
    }
    if b.requirements_satisfied.as_deref().is_some_and(|r| r != "mfa") {
        return Err(GraphError::bad_request("requirementsSatisfied is mfa."));
    }
    let name = check_name(
        b.display_name.as_deref().ok_or_else(|| GraphError::bad_request("displayName is required."))?,
        "displayName",
        DISPLAY_NAME_MAX,
    )?;
    let description = check_description(b.description.as_deref().unwrap_or_default())?;
    let allowed = combinations(
        b.allowed_combinations.as_deref().ok_or_else(|| GraphError::bad_request("allowedCombinations is required."))?,
    )?;
    let mut tenant = caller.tenant;
    unique_name(&tenant, &name, None)?;
    if tenant.authentication_strengths.len() >= MAX_CUSTOM {
        return Err(GraphError::bad_request(format!(
            "A tenant has at most {MAX_CUSTOM} custom authentication strengths."
        )));
    }
    let now = rfc3339(state.now());
    let s = AuthenticationStrength {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: name,
        description,
        policy_type: "custom".into(),
        requirements_satisfied: "mfa".into(),
        allowed_combinations: allowed,
        created_date_time: now.clone(),
        modified_date_time: now,
    };
    tenant.authentication_strengths.push(s.clone());
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Created().json(s))
}

/// `PATCH`: `displayName` and `description` (combinations change through the action below).
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    built_in_refused(&path)?;
    let b: StrengthIn = json_body(&req, &body)?;
    if b.allowed_combinations.is_some() {
        return Err(GraphError::bad_request(
            "allowedCombinations changes through POST …/{id}/updateAllowedCombinations.",
        ));
    }
    if b.policy_type.is_some() || b.requirements_satisfied.is_some() {
        return Err(GraphError::bad_request("policyType and requirementsSatisfied cannot change."));
    }
    let name = b.display_name.as_deref().map(|n| check_name(n, "displayName", DISPLAY_NAME_MAX)).transpose()?;
    let description = b.description.as_deref().map(check_description).transpose()?;
    let tenant = caller.tenant;
    if let Some(n) = &name {
        unique_name(&tenant, n, Some(path.as_str()))?;
    }
    save_custom(&state, tenant, &path, |s| {
        if let Some(n) = name {
            s.display_name = n;
        }
        if let Some(d) = description {
            s.description = d;
        }
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST …/{id}/updateAllowedCombinations` (Entra's action): the strength's new combinations.
pub async fn update_combinations(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    built_in_refused(&path)?;
    let b: CombinationsIn = json_body(&req, &body)?;
    let allowed = combinations(&b.allowed_combinations)?;
    let mut previous = Vec::new();
    let out = save_custom(&state, caller.tenant, &path, |s| {
        previous = std::mem::replace(&mut s.allowed_combinations, allowed);
    })
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "previousCombinations": previous,
        "currentCombinations": out.allowed_combinations,
    })))
}

/// `DELETE`: refused while a conditional access policy names the strength.
pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    built_in_refused(&path)?;
    let mut tenant = caller.tenant;
    custom_mut(&mut tenant, &path)?;
    let users: Vec<String> = state
        .store
        .policies(&tenant.id)
        .await?
        .into_iter()
        .filter(|p| {
            p.grant_controls
                .as_ref()
                .and_then(|g| g.authentication_strength.as_ref())
                .is_some_and(|r| r.id.eq_ignore_ascii_case(&path))
        })
        .map(|p| p.display_name)
        .collect();
    if !users.is_empty() {
        return Err(GraphError::bad_request(format!(
            "The authentication strength is used by conditional access policies: {}.",
            users.join(", ")
        )));
    }
    tenant.authentication_strengths.retain(|s| !s.id.eq_ignore_ascii_case(&path));
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the tenant's custom strength `id` with `f`, stamps it modified and stores the tenant.
async fn save_custom(
    state: &crate::app::AppState,
    mut tenant: crate::model::Tenant,
    id: &str,
    f: impl FnOnce(&mut AuthenticationStrength),
) -> Result<AuthenticationStrength, GraphError> {
    let now = rfc3339(state.now());
    let s = custom_mut(&mut tenant, id)?;
    f(s);
    s.modified_date_time = now;
    let out = s.clone();
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(out)
}

fn custom_mut<'a>(
    tenant: &'a mut crate::model::Tenant,
    id: &str,
) -> Result<&'a mut AuthenticationStrength, GraphError> {
    tenant
        .authentication_strengths
        .iter_mut()
        .find(|s| s.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| GraphError::not_found("No such authentication strength."))
}
