//! `groups` (DESIGN §11): security groups with assigned membership. The definitions live on
//! the tenant record, the membership on each member (`User::member_of`), so conditional
//! access and the `groups` claim read it from the user they already hold. Members are users
//! only (guests included); nested groups are refused.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::odata::Query;
use super::users::{READ, WRITE, graph_user};
use super::wire::{self, GroupIn, GroupMember, OData, ObjectRef};
use super::{Caller, GraphError, json_body};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::model::{DISPLAY_NAME_MAX, Group, Tenant, User, UserId, display_text};
use crate::web::Data;

/// Groups a tenant may hold: their definitions travel with the tenant record.
pub const MAX_GROUPS: usize = 500;
/// Graph's limit on `mailNickname`.
const MAIL_NICKNAME_MAX: usize = 64;
const DESCRIPTION_MAX: usize = 1024;

pub const ODATA_GROUP: &str = "#microsoft.graph.group";
const ODATA_USER: &str = "#microsoft.graph.user";

pub fn graph_group(g: &Group) -> wire::Group {
    wire::Group {
        odata_type: ODATA_GROUP.into(),
        id: g.id,
        display_name: g.display_name.clone(),
        description: g.description.clone(),
        mail_nickname: g.mail_nickname.clone(),
        mail_enabled: false,
        security_enabled: g.security_enabled,
        group_types: vec![],
        created_date_time: g.created_date_time.clone(),
    }
}

fn not_found(key: &str) -> GraphError {
    GraphError::not_found(format!(
        "Resource '{key}' does not exist or one of its queried reference-property objects are not present."
    ))
}

/// Entra's 400 for reference changes it refuses.
fn ref_refused(message: impl Into<String>) -> GraphError {
    GraphError::new(StatusCode::BAD_REQUEST, "Request_BadRequest", message)
}

/// The tenant's group `key` (an object id).
fn find<'a>(tenant: &'a Tenant, key: &str) -> Result<&'a Group, GraphError> {
    Uuid::parse_str(key).ok().and_then(|id| tenant.groups.iter().find(|g| g.id == id)).ok_or_else(|| not_found(key))
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<String, GraphError> {
    display_text(field, s, max).map_err(|e| GraphError::bad_request(format!("{e}.")))
}

/// Graph's rule: 1 to 64 ASCII characters, none of `@ () \ [] " ; : <> ,` or space.
fn check_mail_nickname(s: &str) -> Result<String, GraphError> {
    let ok = (1..=MAIL_NICKNAME_MAX).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(c));
    if !ok {
        return Err(GraphError::bad_request(
            "mailNickname must be 1 to 64 ASCII characters without spaces or any of @ ( ) \\ [ ] \" ; : < > ,.",
        ));
    }
    Ok(s.to_string())
}

fn check_description(d: Option<&str>) -> Result<Option<String>, GraphError> {
    match d {
        None => Ok(None),
        Some(d) if d.trim().is_empty() => Ok(None),
        Some(d) => check_text("description", d, DESCRIPTION_MAX).map(Some),
    }
}

/// What this instance has: security groups with assigned membership, not mail-enabled.
fn check_kind(b: &GroupIn) -> Result<(), GraphError> {
    if b.odata_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case(ODATA_GROUP)) {
        return Err(GraphError::bad_request(format!("@odata.type must be {ODATA_GROUP}.")));
    }
    if b.mail_enabled == Some(true) {
        return Err(GraphError::bad_request("Mail-enabled groups are not supported: mailEnabled must be false."));
    }
    if b.security_enabled == Some(false) {
        return Err(GraphError::bad_request("Only security groups are supported: securityEnabled must be true."));
    }
    if b.group_types.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(GraphError::bad_request(
            "Only security groups with assigned membership are supported: groupTypes must be empty.",
        ));
    }
    Ok(())
}

/// Group names are unique in a tenant (case-insensitive): the admin page, the CLI and
/// people pick groups by name.
fn unique_name(tenant: &Tenant, name: &str, except: Option<Uuid>) -> Result<(), GraphError> {
    if tenant.groups.iter().any(|g| g.display_name.eq_ignore_ascii_case(name) && Some(g.id) != except) {
        return Err(GraphError::bad_request("A group with this displayName exists."));
    }
    Ok(())
}

/// `GET /groups`.
pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "mailNickname", "id", "securityEnabled"])?;
    let base = format!("{}/graph/v1.0/groups", state.public_url);
    let context = format!("{}/graph/v1.0/$metadata#groups", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(caller.tenant.groups.iter().map(graph_group), &base, &context)?))
}

/// `GET /groups/{id}`.
pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    Ok(HttpResponse::Ok().json(graph_group(find(&caller.tenant, &path)?)))
}

/// `POST /groups`: `displayName` and `mailNickname` are required (as in Graph).
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: GroupIn = json_body(&req, &body)?;
    check_kind(&b)?;
    let name = check_text(
        "displayName",
        b.display_name.as_deref().ok_or_else(|| GraphError::bad_request("displayName is required."))?,
        DISPLAY_NAME_MAX,
    )?;
    let nickname = check_mail_nickname(
        b.mail_nickname.as_deref().ok_or_else(|| GraphError::bad_request("mailNickname is required."))?,
    )?;
    let description = check_description(b.description.flatten().as_deref())?;
    let mut tenant = caller.tenant;
    unique_name(&tenant, &name, None)?;
    if tenant.groups.len() >= MAX_GROUPS {
        return Err(GraphError::bad_request(format!("A tenant has at most {MAX_GROUPS} groups.")));
    }
    let group = Group {
        id: Uuid::new_v4(),
        display_name: name,
        description,
        mail_nickname: nickname,
        security_enabled: true,
        created_date_time: rfc3339(state.now()),
    };
    tenant.groups.push(group.clone());
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Created().json(graph_group(&group)))
}

/// `PATCH /groups/{id}`: `displayName`, `description`, `mailNickname`.
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = find(&caller.tenant, &path)?.id;
    let b: GroupIn = json_body(&req, &body)?;
    check_kind(&b)?;
    let name = b.display_name.as_deref().map(|n| check_text("displayName", n, DISPLAY_NAME_MAX)).transpose()?;
    let nickname = b.mail_nickname.as_deref().map(check_mail_nickname).transpose()?;
    let description = b.description.map(|d| check_description(d.as_deref())).transpose()?;
    let mut tenant = caller.tenant;
    if let Some(n) = &name {
        unique_name(&tenant, n, Some(id))?;
    }
    let g = tenant.groups.iter_mut().find(|g| g.id == id).ok_or_else(|| not_found(&path))?;
    if let Some(n) = name {
        g.display_name = n;
    }
    if let Some(n) = nickname {
        g.mail_nickname = n;
    }
    if let Some(d) = description {
        g.description = d;
    }
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /groups/{id}`: refused while a conditional access policy names the group; else
/// its members leave it first, then the group goes (a crash in between leaves the group,
/// with fewer members, to be deleted again).
pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let id = find(&caller.tenant, &path)?.id;
    let naming: Vec<String> = state
        .store
        .policies(&caller.tenant.id)
        .await?
        .into_iter()
        .filter(|p| policy_names_group(p, id))
        .map(|p| p.display_name)
        .collect();
    if !naming.is_empty() {
        return Err(GraphError::bad_request(format!(
            "The group is used by conditional access policies: {}.",
            naming.join(", ")
        )));
    }
    for member in members(&state, &caller.tenant, id).await? {
        crate::storage::modify_user(&state.store, &caller.tenant.id, &member.id, |u| u.member_of.retain(|g| *g != id))
            .await?;
    }
    let mut tenant = caller.tenant;
    tenant.groups.retain(|g| g.id != id);
    state.store.put_tenant(&tenant).await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Whether the policy names group `id` in `includeGroups` or `excludeGroups`.
pub fn policy_names_group(p: &crate::policy::Policy, id: Uuid) -> bool {
    let u = &p.conditions.users;
    u.include_groups.iter().chain(&u.exclude_groups).any(|g| Uuid::parse_str(g).is_ok_and(|g| g == id))
}

/// Every member of group `id`: one walk over the tenant's users in store pages.
pub async fn members(state: &AppState, tenant: &Tenant, id: Uuid) -> Result<Vec<User>, GraphError> {
    Ok(crate::directory::users::users_where(&state.store, tenant, |u| u.member_of.contains(&id)).await?)
}

/// `GET /groups/{id}/members`: the member users, each with its `@odata.type`.
pub async fn list_members(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["userType", "userPrincipalName", "mail", "displayName", "id"])?;
    let id = find(&caller.tenant, &path)?.id;
    let items = members(&state, &caller.tenant, id)
        .await?
        .iter()
        .map(|u| GroupMember { odata_type: ODATA_USER.into(), user: graph_user(u) })
        .collect::<Vec<_>>();
    let base = format!("{}/graph/v1.0/groups/{id}/members", state.public_url);
    let context = format!("{}/graph/v1.0/$metadata#directoryObjects", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, &context)?))
}

/// The object id a `$ref` body points at: the last segment of its `@odata.id`
/// (`…/directoryObjects/{id}`, `…/users/{id}`) or a bare id.
fn referenced_id(r: &ObjectRef) -> Result<Uuid, GraphError> {
    let raw = r.odata_id.trim().trim_end_matches('/');
    let last = raw.rsplit('/').next().unwrap_or(raw);
    Uuid::parse_str(last).map_err(|_| {
        ref_refused(format!("Invalid object identifier '{last}': @odata.id must end with a directory object id."))
    })
}

/// `POST /groups/{id}/members/$ref`: adds a user of this tenant (member or guest).
pub async fn add_member(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let group = find(&caller.tenant, &path)?.id;
    let r: ObjectRef = json_body(&req, &body)?;
    let member = referenced_id(&r)?;
    if caller.tenant.groups.iter().any(|g| g.id == member) {
        return Err(ref_refused("Nested groups are not supported: the members of a group are users only."));
    }
    // Users of other tenants are not found here, as unknown ids are not.
    let user =
        state.store.user(&caller.tenant.id, &UserId(member)).await?.ok_or_else(|| not_found(&member.to_string()))?;
    if user.member_of.contains(&group) {
        return Err(already_member());
    }
    let added = crate::storage::modify_user(&state.store, &caller.tenant.id, &user.id, |u| {
        let new = !u.member_of.contains(&group);
        if new {
            u.member_of.push(group);
        }
        new
    })
    .await?;
    match added {
        None => return Err(not_found(&member.to_string())),
        Some((_, false)) => return Err(already_member()),
        Some((_, true)) => {}
    }
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

fn already_member() -> GraphError {
    ref_refused("One or more added object references already exist for the following modified properties: 'members'.")
}

/// `DELETE /groups/{id}/members/{userId}/$ref`.
pub async fn remove_member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let (key, member) = path.into_inner();
    let group = find(&caller.tenant, &key)?.id;
    let user = match UserId::parse(&member) {
        Some(id) => state.store.user(&caller.tenant.id, &id).await?,
        None => None,
    };
    let user = user.filter(|u| u.member_of.contains(&group)).ok_or_else(|| not_found(&member))?;
    crate::storage::modify_user(&state.store, &caller.tenant.id, &user.id, |u| u.member_of.retain(|g| *g != group))
        .await?;
    state.store.flush().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /users/{id}/memberOf`: the user's groups (id or UPN, as for the user itself).
pub async fn member_of(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = super::users::find(&state, &caller.tenant, &path).await?;
    let groups: Vec<wire::Group> =
        caller.tenant.groups.iter().filter(|g| user.member_of.contains(&g.id)).map(graph_group).collect();
    Ok(HttpResponse::Ok()
        .json(OData::in_context(format!("{}/graph/v1.0/$metadata#directoryObjects", state.public_url), groups)))
}
