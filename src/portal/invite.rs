//! `/{tenant}/invite`: information workers invite guests (when the tenant lets members
//! invite, or the member has the Guest Inviter or Global Administrator role).
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::admin::invitations::{SendError, send_invitation};
use crate::admin::{ROLE_GLOBAL_ADMIN, ROLE_GUEST_INVITER};
use crate::app::AppState;
use crate::directory::invite::InviteRequest;
use crate::model::{Tenant, User};
use crate::web::error::PageError;
use crate::web::pages::{InvitePage, render};
use crate::web::{Data, csrf};

/// The signed-in member allowed to invite, or `Err(redirect to sign in)`.
async fn inviter(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
) -> Result<Result<User, HttpResponse>, PageError> {
    super::signed_in(req, state, tenant, "invite", |user| {
        let privileged = user.roles.iter().any(|r| r == ROLE_GUEST_INVITER || r == ROLE_GLOBAL_ADMIN);
        if !user.is_guest() && (tenant.members_can_invite || privileged) {
            return Ok(());
        }
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "invite_not_allowed",
            format!("Your account cannot invite guests to {}. Ask an administrator.", tenant.display_name),
        ))
    })
    .await
}

async fn apps(state: &AppState, tenant: &Tenant) -> Result<Vec<(String, String)>, PageError> {
    Ok(state
        .store
        .apps(&tenant.id)
        .await?
        .into_iter()
        .filter(|a| a.home_page_url.is_some())
        .map(|a| (a.client_id.into(), a.display_name))
        .collect())
}

async fn page(state: &AppState, req: &HttpRequest, tenant: &Tenant, user: &User) -> Result<InvitePage, PageError> {
    let browser = csrf::issued(req, state).unwrap_or_default();
    Ok(InvitePage {
        tenant_name: tenant.display_name.clone(),
        tenant_slug: tenant.slug.clone(),
        member: user.user_principal_name.clone(),
        apps: apps(state, tenant).await?,
        csrf: csrf::token(state, &browser),
        email: String::new(),
        display_name: String::new(),
        message: String::new(),
        error: None,
        redeem_link: None,
    })
}

pub async fn show(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, PageError> {
    let tenant = crate::web::tenant(&state, &path).await?;
    let user = match inviter(&req, &state, &tenant).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    render(&page(&state, &req, &tenant, &user).await?, vec![])
}

pub async fn submit(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f) = super::posted(&req, &state, &path, &body).await?;
    let user = match inviter(&req, &state, &tenant).await? {
        Ok(u) => u,
        Err(redirect) => return Ok(redirect),
    };
    let mut p = page(&state, &req, &tenant, &user).await?;
    p.email = f.get("email").unwrap_or_default().to_string();
    p.display_name = f.get("display_name").unwrap_or_default().to_string();
    p.message = f.get("message").unwrap_or_default().to_string();
    let app = match f.get("app") {
        Some(id) => state.store.app(&tenant.id, id).await?.filter(|a| a.home_page_url.is_some()),
        None => None,
    };
    let Some(app) = app else {
        p.error = Some("Choose the application to invite the guest to.".into());
        return crate::web::pages::render_status(StatusCode::BAD_REQUEST, &p);
    };
    let request = InviteRequest {
        email: p.email.clone(),
        display_name: Some(p.display_name.clone()),
        redirect_url: app.home_page_url.clone().unwrap_or_else(|| format!("{}/", state.public_url)),
        app_id: Some(app.client_id.to_string()),
        message: Some(p.message.clone()).filter(|m| !m.trim().is_empty()),
        send_message: true,
        reset_redemption: false,
        user_id: None,
        // The object id, as on the Graph path: one throttle per member whichever way they invite.
        invited_by: user.id.to_string(),
    };
    match send_invitation(&state, &tenant, request).await {
        Ok(invited) => {
            state.store.flush().await?;
            p.redeem_link = Some(invited.redeem_url);
            p.email.clear();
            p.display_name.clear();
            p.message.clear();
            render(&p, vec![])
        }
        // The same rules as the Graph API, shown on the form with what was typed.
        Err(SendError::Throttled(secs)) => {
            p.error = Some(format!("You have sent too many invitations. Try again in {secs} seconds."));
            let mut resp = crate::web::pages::render_status(StatusCode::TOO_MANY_REQUESTS, &p)?;
            resp.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(secs));
            Ok(resp)
        }
        Err(SendError::Graph(e)) if e.status.is_client_error() => {
            p.error = Some(e.message);
            crate::web::pages::render_status(e.status, &p)
        }
        Err(e) => Err(PageError::internal(e)),
    }
}
