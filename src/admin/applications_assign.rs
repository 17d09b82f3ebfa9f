//! `/users/{id}/appRoleAssignments`: who may sign in to an application that requires
//! assignment (`appRoleAssignmentRequired`). gatehouse has no separate servicePrincipal, so
//! `resourceId` is the application's `id`; the role is the default access role (all zeros)
//! or one of the app's roles that allows `User` members. Kept on the application record.
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::applications_wire::{AppRoleAssignment, AppRoleAssignmentRequest};
use super::users::find as find_user;
use super::wire::OData;
use super::{Caller, GraphError};
use crate::clock::rfc3339;
use crate::model::{AppAssignment, Application, User};
use crate::web::Data;

/// Assignments per application (they travel with its record).
pub const ASSIGNMENTS_MAX: usize = 5000;

fn graph_assignment(app: &Application, user: &User, a: &AppAssignment) -> AppRoleAssignment {
    AppRoleAssignment {
        id: a.id,
        principal_id: a.principal_id,
        principal_type: "User".into(),
        principal_display_name: user.display_name.clone(),
        resource_id: app.client_id.to_string(),
        resource_display_name: app.display_name.clone(),
        app_role_id: a.app_role_id,
        created_date_time: rfc3339(a.created_at),
    }
}

pub async fn list(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::READ).await?;
    let user = find_user(&state, &caller.tenant, &path).await?;
    let mut out = Vec::new();
    for app in state.store.apps(&caller.tenant.id).await? {
        for a in app.registration.assignments.iter().filter(|a| a.principal_id == user.id) {
            out.push(graph_assignment(&app, &user, a));
        }
    }
    Ok(HttpResponse::Ok().json(OData::of(out)))
}

/// `POST /users/{id}/appRoleAssignments` `{principalId, resourceId, appRoleId}`.
pub async fn create(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::WRITE).await?;
    let user = find_user(&state, &caller.tenant, &path).await?;
    let r: AppRoleAssignmentRequest = super::applications_validate::body(&req, &body)?;
    let principal = r.principal_id.ok_or_else(|| GraphError::bad_request("principalId is required."))?;
    if Uuid::parse_str(&principal).ok() != Some(*user.id.as_uuid()) {
        return Err(GraphError::bad_request("principalId must be the id of the user in the URL."));
    }
    let resource = r.resource_id.ok_or_else(|| GraphError::bad_request("resourceId is required."))?;
    let mut app = state
        .store
        .app(&caller.tenant.id, &resource)
        .await?
        .ok_or_else(|| GraphError::bad_request("resourceId names no application of this tenant."))?;
    let role = match r.app_role_id.as_deref() {
        None => Uuid::nil(),
        Some(s) => Uuid::parse_str(s).map_err(|_| GraphError::bad_request("appRoleId is not a GUID."))?,
    };
    let role_ok = role.is_nil()
        || app
            .registration
            .app_role_definitions
            .iter()
            .any(|d| d.id == role && d.is_enabled && d.allowed_member_types.iter().any(|t| t == "User"));
    if !role_ok {
        return Err(GraphError::bad_request(format!(
            "appRoleId: {role} is not an enabled role of this application that users may hold (or the default 00000000-0000-0000-0000-000000000000)."
        )));
    }
    if app.registration.assignments.iter().any(|a| a.principal_id == user.id && a.app_role_id == role) {
        return Err(GraphError::bad_request("Permission being assigned already exists on the object."));
    }
    if app.registration.assignments.len() >= ASSIGNMENTS_MAX {
        return Err(GraphError::bad_request(format!("An application has at most {ASSIGNMENTS_MAX} assignments.")));
    }
    let a = AppAssignment { id: Uuid::new_v4(), principal_id: user.id, app_role_id: role, created_at: state.now() };
    app.registration.assignments.push(a.clone());
    state.store.put_app(&app).await?;
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, app = %app.client_id, user = %user.id, by = %caller.display(),
        "user assigned to application");
    Ok(HttpResponse::Created().json(graph_assignment(&app, &user, &a)))
}

/// `DELETE /users/{id}/appRoleAssignments/{assignmentId}`.
pub async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, super::users::WRITE).await?;
    let (key, assignment) = path.into_inner();
    let user = find_user(&state, &caller.tenant, &key).await?;
    let missing = || GraphError::not_found(format!("No app role assignment '{assignment}' for this user."));
    let id = Uuid::parse_str(&assignment).map_err(|_| missing())?;
    for mut app in state.store.apps(&caller.tenant.id).await? {
        let before = app.registration.assignments.len();
        app.registration.assignments.retain(|a| !(a.id == id && a.principal_id == user.id));
        if app.registration.assignments.len() < before {
            state.store.put_app(&app).await?;
            state.store.flush().await?;
            return Ok(HttpResponse::NoContent().finish());
        }
    }
    Err(missing())
}
