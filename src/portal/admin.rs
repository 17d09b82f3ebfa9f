//! Admin pages for a signed-in Global Administrator: guests with their state and MFA
//! methods (reset), policies (enable / disable / report-only), the sign-in log with
//! per-policy results ("why was I asked for MFA / blocked"), and licence usage.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::admin::ROLE_GLOBAL_ADMIN;
use crate::app::AppState;
use crate::model::{Tenant, User};
use crate::policy::PolicyState;
use crate::web::error::PageError;
use crate::web::pages::{
    AdminGroupRow, AdminGuestRow, AdminIdpRow, AdminMailRow, AdminPage, AdminPolicyRow, AdminSignInRow, render,
};
use crate::web::{Data, csrf};

async fn admin(req: &HttpRequest, state: &AppState, tenant: &Tenant) -> Result<Result<User, HttpResponse>, PageError> {
    super::signed_in(req, state, tenant, "admin", |user| {
        if user.roles.iter().any(|r| r == ROLE_GLOBAL_ADMIN) {
            actix_web::HttpMessage::extensions_mut(req).insert(crate::telemetry::http::Actor(user.id.to_string()));
            return Ok(());
        }
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "admin_only",
            "Only administrators of this tenant can see this page.",
        ))
    })
    .await
}

/// The user's MFA methods in words, one per method: "Authenticator app" for each TOTP
/// method, "Passkey “name”" for each passkey (its display name unless it only says "Passkey").
fn methods_in_words(u: &User) -> String {
    let apps = u.totp_methods.iter().map(|_| "Authenticator app".to_string());
    let passkeys = u.passkeys.iter().map(|p| match p.display_name.trim() {
        "" | "Passkey" => "Passkey".to_string(),
        name => format!("Passkey “{name}”"),
    });
    let all: Vec<String> = apps.chain(passkeys).collect();
    if all.is_empty() { "None".into() } else { all.join(", ") }
}

/// The tenant's groups with their members' UPNs (read from the users already listed).
fn group_rows(tenant: &Tenant, users: &[User]) -> Vec<AdminGroupRow> {
    tenant
        .groups
        .iter()
        .map(|g| {
            let upns: Vec<&str> =
                users.iter().filter(|u| u.member_of.contains(&g.id)).map(|u| u.user_principal_name.as_str()).collect();
            AdminGroupRow {
                id: g.id.to_string(),
                name: g.display_name.clone(),
                count: upns.len(),
                members: if upns.is_empty() { "None".into() } else { upns.join(", ") },
            }
        })
        .collect()
}

pub async fn show(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    let tenant = crate::web::tenant(&state, &path).await?;
    let me = match admin(&req, &state, &tenant).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let browser = csrf::issued(&req, &state).unwrap_or_default();
    let users = state.store.users(&tenant.id).await?;
    let groups = group_rows(&tenant, &users);
    let agreements = super::admin_rows::agreement_rows(&tenant, &users);
    let partners = super::admin_rows::partner_rows(&state, &tenant).await?;
    let guests = users
        .into_iter()
        .filter(|u| u.is_guest())
        .map(|u| AdminGuestRow {
            id: u.id.to_string(),
            upn: u.user_principal_name.clone(),
            state: u.external_user_state.unwrap_or(crate::model::ExternalUserState::PendingAcceptance).as_str().into(),
            home: u.identities.first().map(|i| i.issuer.clone()).unwrap_or_else(|| "-".into()),
            methods: methods_in_words(&u),
            has_methods: u.has_mfa_method(),
            last_sign_in: u.last_sign_in.max(u.last_non_interactive_sign_in).map(crate::clock::rfc3339),
        })
        .collect();
    let policies = state
        .store
        .policies(&tenant.id)
        .await?
        .into_iter()
        .map(|p| AdminPolicyRow { id: p.id.clone(), name: p.display_name.clone(), state: p.state.as_str().into() })
        .collect();
    let sign_ins = state
        .store
        .signin_log(&tenant.id, 50)
        .await?
        .into_iter()
        .map(|e| AdminSignInRow {
            time: e.created_date_time,
            user: e.user_principal_name.unwrap_or_else(|| "(app)".into()),
            app: e.app_id,
            ip: e.ip_address.unwrap_or_else(|| "-".into()),
            result: e.status.error.unwrap_or_else(|| "success".into()),
            amr: e.amr.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(" "),
            why: e
                .applied_conditional_access_policies
                .iter()
                .filter(|r| {
                    !matches!(
                        r.result,
                        crate::policy::PolicyOutcome::NotApplied | crate::policy::PolicyOutcome::NotEnabled
                    )
                })
                .map(|r| {
                    format!(
                        "{}: {}",
                        r.display_name,
                        serde_json::to_value(r.result)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    let page = AdminPage {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        me: me.user_principal_name,
        csrf: csrf::token(&state, &browser),
        seats_used: crate::licensing::seats_used(&state.store, &tenant).await?,
        seats: tenant.premium_seats,
        guests,
        groups,
        policies,
        sign_ins,
        identity_providers: tenant
            .external_idps
            .iter()
            .map(|i| AdminIdpRow {
                name: i.display_name.clone(),
                issuer: i.issuer.clone(),
                domains: i.domains.join(", "),
            })
            .collect(),
        agreements,
        partners,
        smtp: state.config.smtp.is_some(),
        mail: mail_rows(&state, &tenant).await?,
    };
    render(&page, vec![])
}

/// The newest messages sent over SMTP with their delivery state (never a body).
async fn mail_rows(state: &AppState, tenant: &Tenant) -> Result<Vec<AdminMailRow>, PageError> {
    Ok(crate::mail::deliveries(state, &tenant.id, 50)
        .await?
        .into_iter()
        .map(|d| AdminMailRow {
            id: d.id.to_string(),
            created: d.created_date_time,
            to: d.recipient,
            subject: d.subject,
            kind: d.kind.into(),
            state: d.status.into(),
            attempts: d.attempts.to_string(),
            error: d.last_error.unwrap_or_else(|| "-".into()),
            next: d.next_attempt_date_time.unwrap_or_else(|| "-".into()),
        })
        .collect())
}

pub async fn mfa_reset(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f) = super::posted(&req, &state, &path, &body).await?;
    if let Err(redirect) = admin(&req, &state, &tenant).await? {
        return Ok(redirect);
    }
    let id = f
        .get("user")
        .and_then(crate::model::UserId::parse)
        .ok_or_else(|| PageError::bad_request("invalid_request", "No such user."))?;
    let user = state
        .store
        .user(&tenant.id, &id)
        .await?
        .ok_or_else(|| PageError::bad_request("invalid_request", "No such user."))?;
    crate::directory::users::reset_method(&state.store, &tenant, &user, None).await?;
    Ok(crate::signin::see_other(&format!("/{}/admin", tenant.slug)))
}

pub async fn policy_state(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f) = super::posted(&req, &state, &path, &body).await?;
    if let Err(redirect) = admin(&req, &state, &tenant).await? {
        return Ok(redirect);
    }
    let Some(new_state) = f.get("state").and_then(PolicyState::parse) else {
        return Err(PageError::bad_request("invalid_request", "Choose enabled, disabled or report-only."));
    };
    let id = f.get("policy").unwrap_or_default();
    let mut p = state
        .store
        .policy(&tenant.id, id)
        .await?
        .ok_or_else(|| PageError::bad_request("invalid_request", "No such policy."))?;
    p.state = new_state;
    state.store.put_policy(&tenant.id, &p).await?;
    state.store.flush().await?;
    Ok(crate::signin::see_other(&format!("/{}/admin", tenant.slug)))
}
