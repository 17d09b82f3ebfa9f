//! `/graph/v1.0/users`: list (filter guests), get by id or UPN, patch, delete, and the
//! authentication methods (MFA reset = delete the software OATH method).
use actix_web::{HttpRequest, HttpResponse, web};

use super::odata::Query;
use super::wire::{self, AuthenticationMethod, OData, PasswordProfile, UserCreate, UserPatch};
use super::{Caller, GraphError, ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::model::{DISPLAY_NAME_MAX, Tenant, User, UserId, UserType, display_text, normalize_email};
use crate::web::Data;

pub const READ: &[&str] = &[ROLE_DIRECTORY_RW, "Directory.Read.All", "User.Read.All", ROLE_GLOBAL_ADMIN];
pub const WRITE: &[&str] = &[ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN];

pub fn graph_user(u: &User) -> wire::User {
    wire::User {
        id: u.id,
        user_principal_name: u.user_principal_name.clone(),
        mail: u.mail.clone(),
        display_name: u.display_name.clone(),
        user_type: u.user_type,
        account_enabled: u.account_enabled,
        creation_type: u.creation_type.clone(),
        external_user_state: u.external_user_state,
        external_user_state_change_date_time: u.external_user_state_change_date_time.map(rfc3339),
        identities: u
            .identities
            .iter()
            .map(|i| wire::ObjectIdentity {
                sign_in_type: i.sign_in_type.clone(),
                issuer: i.issuer.clone(),
                issuer_assigned_id: i.issuer_assigned_id.clone(),
            })
            .collect(),
        created_date_time: rfc3339(u.created_at),
        per_user_mfa_enabled: u.per_user_mfa,
        risk_level: u.risk_level.clone(),
        strong_authentication_methods: authentication_methods(u)
            .iter()
            .filter(|m| !matches!(m, AuthenticationMethod::Password(_)))
            .map(|m| wire::StrongAuthenticationMethod { method_type: m.method_type() })
            .collect(),
        sign_in_activity: None,
    }
}

/// The date-time properties of `signInActivity` that `$filter` may use.
const SIGN_IN_DATES: &[&str] =
    &["signInActivity/lastSignInDateTime", "signInActivity/lastNonInteractiveSignInDateTime"];

/// [`graph_user`] with `signInActivity`, which Graph returns only when `$select` names it.
pub fn graph_user_with_activity(u: &User) -> wire::User {
    wire::User {
        sign_in_activity: Some(wire::SignInActivity {
            last_sign_in_date_time: u.last_sign_in.map(rfc3339),
            last_non_interactive_sign_in_date_time: u.last_non_interactive_sign_in.map(rfc3339),
        }),
        ..graph_user(u)
    }
}

/// The user's authentication methods: the password (members), then each software OATH
/// method, then each passkey.
pub fn authentication_methods(u: &User) -> Vec<AuthenticationMethod> {
    let password = u.password_hash.is_some().then(AuthenticationMethod::password);
    let oath = u.totp_methods.iter().map(|m| AuthenticationMethod::software_oath(m.id.clone(), rfc3339(m.created_at)));
    password.into_iter().chain(oath).chain(fido2_methods(u)).collect()
}

fn fido2_methods(u: &User) -> impl Iterator<Item = AuthenticationMethod> + '_ {
    u.passkeys.iter().map(|m| {
        AuthenticationMethod::fido2(m.id.clone(), m.display_name.clone(), m.aaguid.clone(), rfc3339(m.created_at))
    })
}

fn fido2_not_found(method: &str) -> GraphError {
    GraphError::not_found(format!("Authentication method '{method}' does not exist."))
}

/// `GET …/authentication/fido2Methods`: the user's passkeys.
pub async fn fido2_list(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    Ok(HttpResponse::Ok().json(OData::of(fido2_methods(&user).collect::<Vec<_>>())))
}

/// `GET …/authentication/fido2Methods/{id}`.
pub async fn fido2_get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let (key, method) = path.into_inner();
    let user = find(&state, &caller.tenant, &key).await?;
    let found = fido2_methods(&user).find(|m| m.id() == method).ok_or_else(|| fido2_not_found(&method))?;
    Ok(HttpResponse::Ok().json(found))
}

/// `DELETE …/authentication/fido2Methods/{id}`: the passkey goes (with the last method, the
/// recovery codes too); the next MFA sign-in asks for proof-up again.
pub async fn fido2_delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let (key, method) = path.into_inner();
    let user = find(&state, &caller.tenant, &key).await?;
    if !user.passkeys.iter().any(|m| m.id == method) {
        return Err(fido2_not_found(&method));
    }
    crate::directory::users::reset_method(&state.store, &caller.tenant, &user, Some(&method)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `{id}` may be an object id or a UPN (as in Graph).
pub async fn find(state: &AppState, tenant: &Tenant, key: &str) -> Result<User, GraphError> {
    let user = match crate::model::UserId::parse(key).ok_or(()) {
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
            SIGN_IN_DATES[0],
            SIGN_IN_DATES[1],
        ],
    )?;
    q.require_dates(SIGN_IN_DATES)?;
    let base = format!("{}/graph/v1.0/users", state.public_url);
    let context = format!("{}/graph/v1.0/$metadata#users", state.public_url);
    let (mut users, next) = users_page(&state, &caller.tenant, &q).await?;
    if !q.selects("signInActivity") {
        // Read for the filter, returned only when asked for (as in Graph).
        users.iter_mut().for_each(|u| u.sign_in_activity = None);
    }
    Ok(HttpResponse::Ok().json(q.page(users, next.map(|id| id.to_string()), &base, &context)?))
}

/// Users read in store pages of this size while a filter is applied.
const SCAN_CHUNK: usize = 200;

/// One page of the tenant's users for `q`: an index lookup for `userPrincipalName eq` and
/// `mail eq`, otherwise a walk from the `$skiptoken` cursor (the last id of the previous
/// page) in id order, of one `userType` when the filter names one. The work follows the
/// page (and how selective the filter is), never the size of the tenant.
async fn users_page(
    state: &AppState,
    tenant: &Tenant,
    q: &Query,
) -> Result<(Vec<wire::User>, Option<crate::model::UserId>), GraphError> {
    let indexed = match (q.eq_text("userPrincipalName"), q.eq_text("mail")) {
        (Some(upn), _) => Some(state.store.user_by_upn(&tenant.id, upn).await?),
        (None, Some(mail)) => Some(state.store.user_by_mail(&tenant.id, mail).await?),
        (None, None) => None,
    };
    if let Some(found) = indexed {
        let mut out = Vec::new();
        for u in found.iter().map(graph_user_with_activity) {
            if q.accepts(&u)? {
                out.push(u);
            }
        }
        return Ok((out, None));
    }
    let user_type = match q.eq_text("userType") {
        Some(t) if t.eq_ignore_ascii_case("guest") => Some(UserType::Guest),
        Some(t) if t.eq_ignore_ascii_case("member") => Some(UserType::Member),
        Some(_) => return Ok((Vec::new(), None)),
        None => None,
    };
    let mut after = q.cursor()?;
    let mut out: Vec<wire::User> = Vec::new();
    loop {
        let (chunk, more) = state.store.users_page(&tenant.id, user_type, after.as_ref(), SCAN_CHUNK).await?;
        for u in &chunk {
            let g = graph_user_with_activity(u);
            if !q.accepts(&g)? {
                continue;
            }
            if out.len() == q.top {
                // One more match exists: the page ends at the last one it holds.
                let last = out.last().map(|x| x.id);
                return Ok((out, last));
            }
            out.push(g);
        }
        match more {
            Some(cursor) => after = Some(cursor),
            None => return Ok((out, None)),
        }
    }
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    // `$select` (signInActivity only when named, as in Graph); a `$filter` has nothing to filter.
    let q = Query::parse(req.query_string(), &[])?;
    let found = if q.selects("signInActivity") { graph_user_with_activity(&user) } else { graph_user(&user) };
    Ok(HttpResponse::Ok().json(q.project_one(&found)?))
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::bad_request(message)
}

/// Graph's `mailNickname` rule: 1 to 64 ASCII characters, none of `@ () \ [] " ; : <> ,` or space.
fn check_mail_nickname(s: &str) -> Result<(), GraphError> {
    let ok = (1..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_graphic() && !"@()\\[]\";:<>,".contains(c));
    if !ok {
        return Err(bad(
            "mailNickname must be 1 to 64 ASCII characters without spaces or any of @ ( ) \\ [ ] \" ; : < > ,.",
        ));
    }
    Ok(())
}

/// A member's UPN: `local@domain` with a domain the tenant verified, lowercased.
fn check_upn(tenant: &Tenant, upn: &str) -> Result<String, GraphError> {
    let parsed = normalize_email(upn)
        .filter(|u| !u.contains('#'))
        .ok_or_else(|| bad("userPrincipalName is not of the form name@domain."))?;
    let domain = parsed.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    if !tenant.domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        let shown: String = domain.chars().take(80).collect();
        return Err(bad(format!("userPrincipalName: '{shown}' is not a verified domain of this tenant.")));
    }
    Ok(parsed)
}

/// The password of a `passwordProfile`, checked against the policy, hashed off the async threads.
async fn hash_profile(state: &AppState, p: &PasswordProfile) -> Result<String, GraphError> {
    let password = p.password.as_deref().ok_or_else(|| bad("passwordProfile.password is required."))?;
    if let Some(problem) = crate::password::policy_problem(password) {
        return Err(bad(format!("passwordProfile.password: {problem}")));
    }
    crate::password::hash_blocking(password.to_string(), state.config.argon2.clone())
        .await
        .map_err(GraphError::internal)
}

/// `POST /users`: a member (`userType` Member) with a password; guests come by invitation.
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: UserCreate = super::applications_validate::body(&req, &body)?;
    if b.user_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("Member")) {
        return Err(bad("Only members are created here: invite guests (POST /invitations)."));
    }
    let enabled = b.account_enabled.ok_or_else(|| bad("accountEnabled is required."))?;
    let name = b.display_name.as_deref().ok_or_else(|| bad("displayName is required."))?;
    let name = display_text("displayName", name, DISPLAY_NAME_MAX).map_err(|e| bad(format!("{e}.")))?;
    check_mail_nickname(b.mail_nickname.as_deref().ok_or_else(|| bad("mailNickname is required."))?)?;
    let upn = check_upn(
        &caller.tenant,
        b.user_principal_name.as_deref().ok_or_else(|| bad("userPrincipalName is required."))?,
    )?;
    let mail = match b.mail.as_deref() {
        Some(m) => normalize_email(m).ok_or_else(|| bad("mail is not an email address."))?,
        None => upn.clone(),
    };
    let profile = b.password_profile.as_ref().ok_or_else(|| bad("passwordProfile is required."))?;
    // Taken names answer before the (slow) hash; the insert below still decides a race.
    let taken = |what: &str| {
        GraphError::new(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!("Another object with the same value for property {what} already exists."),
        )
    };
    if state.store.user_by_upn(&caller.tenant.id, &upn).await?.is_some() {
        return Err(taken("userPrincipalName"));
    }
    if state.store.user_by_mail(&caller.tenant.id, &mail).await?.is_some() {
        return Err(taken("mail"));
    }
    let hash = hash_profile(&state, profile).await?;
    let user = User {
        id: UserId::new(),
        tenant_id: caller.tenant.id,
        user_type: UserType::Member,
        user_principal_name: upn,
        mail,
        display_name: name,
        account_enabled: enabled,
        password_hash: Some(hash),
        created_at: state.now(),
        force_change_password: profile.force_change_password_next_sign_in,
        ..Default::default()
    };
    match state.store.insert_user(&user).await {
        Ok(()) => {}
        Err(crate::storage::StoreError::Conflict(_)) => return Err(taken("userPrincipalName")),
        Err(e) => return Err(e.into()),
    }
    state.store.flush().await?;
    tracing::info!(tenant = %caller.tenant.slug, user = %user.id, by = %caller.display(), "member created");
    Ok(HttpResponse::Created().json(graph_user(&user)))
}

pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    let p: UserPatch = super::applications_validate::body(&req, &body)?;
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
    let reset = match &p.password_profile {
        Some(_) if user.is_guest() => return Err(bad("A guest's password is kept by their home organisation.")),
        Some(profile) => Some((hash_profile(&state, profile).await?, profile.force_change_password_next_sign_in)),
        None => None,
    };
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
        if let Some((hash, force)) = &reset {
            // A reset password ends what the old one opened (sessions, refresh tokens).
            u.password_hash = Some(hash.clone());
            u.force_change_password = *force;
            u.session_epoch += 1;
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
    Ok(HttpResponse::Ok()
        .json(OData::in_context(format!("{}/graph/v1.0/$metadata#Edm.Boolean", state.public_url), true)))
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
    Ok(HttpResponse::Ok().json(OData::of(authentication_methods(&user))))
}

pub async fn oath_methods(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let user = find(&state, &caller.tenant, &path).await?;
    let oath: Vec<AuthenticationMethod> = authentication_methods(&user)
        .into_iter()
        .filter(|m| matches!(m, AuthenticationMethod::SoftwareOath(_)))
        .collect();
    Ok(HttpResponse::Ok().json(OData::of(oath)))
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
    crate::directory::users::reset_method(&state.store, &caller.tenant, &user, Some(&method)).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{ExternalUserState, Identity, UserType};

    fn guest() -> User {
        User {
            id: uuid::Uuid::from_u128(7).into(),
            user_type: UserType::Guest,
            user_principal_name: "sally_contoso.example#EXT#@fabrikam.example".into(),
            mail: "sally@contoso.example".into(),
            display_name: "Sally".into(),
            account_enabled: true,
            created_at: 0,
            creation_type: Some("Invitation".into()),
            external_user_state: Some(ExternalUserState::Accepted),
            external_user_state_change_date_time: Some(60),
            identities: vec![Identity {
                sign_in_type: "federated".into(),
                issuer: "https://contoso.example".into(),
                issuer_assigned_id: "s-1".into(),
            }],
            totp_methods: vec![crate::mfa::TotpMethod {
                id: "m1".into(),
                sealed_secret: "sealed".into(),
                created_at: 120,
                last_step: None,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_user_is_the_graph_user_with_the_strong_methods_but_not_the_password() {
        let mut u = guest();
        u.password_hash = Some("x".into());
        assert_eq!(
            serde_json::to_value(graph_user(&u)).unwrap(),
            json!({
                "id": "00000000-0000-0000-0000-000000000007",
                "userPrincipalName": "sally_contoso.example#EXT#@fabrikam.example",
                "mail": "sally@contoso.example",
                "displayName": "Sally",
                "userType": "Guest",
                "accountEnabled": true,
                "creationType": "Invitation",
                "externalUserState": "Accepted",
                "externalUserStateChangeDateTime": "1970-01-01T00:01:00Z",
                "identities": [{"signInType": "federated", "issuer": "https://contoso.example", "issuerAssignedId": "s-1"}],
                "createdDateTime": "1970-01-01T00:00:00Z",
                "perUserMfaEnabled": false,
                "riskLevel": null,
                "strongAuthenticationMethods": [{"methodType": "SoftwareOath"}],
            })
        );
        let member = User { user_principal_name: "iw@fabrikam.example".into(), ..Default::default() };
        let v = serde_json::to_value(graph_user(&member)).unwrap();
        assert_eq!(v["userType"], "Member");
        assert_eq!(v["creationType"], json!(null));
        assert_eq!(v["externalUserState"], json!(null));
        assert_eq!(v["externalUserStateChangeDateTime"], json!(null));
        assert_eq!(v["strongAuthenticationMethods"], json!([]));
    }

    #[test]
    fn methods_are_the_password_then_each_software_oath_method() {
        let mut u = guest();
        u.password_hash = Some("x".into());
        assert_eq!(
            serde_json::to_value(authentication_methods(&u)).unwrap(),
            json!([
                {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
                 "id": "28c10230-6103-485e-b985-444c60001490", "methodType": "Password"},
                {"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": "m1",
                 "secretKey": null, "createdDateTime": "1970-01-01T00:02:00Z", "methodType": "SoftwareOath"},
            ])
        );
        u.password_hash = None;
        u.totp_methods.clear();
        assert!(authentication_methods(&u).is_empty());
    }
}
