//! Inviting a guest: validates the request, creates (or re-invites) the guest user at once, issues a redemption ticket.
use uuid::Uuid;

use crate::model::{
    DISPLAY_NAME_MAX, Email, ExternalUserState, Invitation, InvitationStatus, MESSAGE_MAX, Tenant, TextError, Ticket,
    TicketState, User, UserType, display_text, guest_upn,
};
use crate::secrets::{digest, new_token};
use crate::storage::{Store, StoreError};

pub struct InviteRequest {
    pub email: String,
    pub display_name: Option<String>,
    pub redirect_url: String,
    pub app_id: Option<String>,
    pub message: Option<String>,
    pub send_message: bool,
    pub reset_redemption: bool,
    /// Graph `invitedUser.id`: when given, it must be the existing guest with that email.
    pub user_id: Option<crate::model::UserId>,
    /// The inviter's object id (or the app's client id); invitations are throttled per inviter.
    pub invited_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("invitedUserEmailAddress is not a valid email address")]
    BadEmail,
    #[error("{0} is a verified domain of this tenant: invite people from other organisations")]
    OwnDomain(String),
    #[error("inviteRedirectUrl must be an absolute http or https URL of at most 2048 characters")]
    BadRedirect,
    #[error("inviteRedirectUrl must not contain control characters or line breaks")]
    RedirectControl,
    #[error(transparent)]
    BadText(#[from] TextError),
    #[error("the application {0} is not registered in this tenant")]
    UnknownApp(String),
    #[error("{0} is already a member of this tenant")]
    AlreadyMember(String),
    #[error("invitedUser.id must be the object id of the existing user with this email address")]
    UserMismatch,
    /// The message names the organisations and the setting (DESIGN §13).
    #[error("{0}")]
    CrossTenantBlocked(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Invited {
    pub invitation: Invitation,
    pub user: User,
    /// The single-use ticket in clear; only its digest is stored.
    pub ticket: String,
    pub redeem_url: String,
}

pub const TICKET_LIFETIME_SECS: i64 = 30 * 86400;

pub const REDIRECT_MAX: usize = 2048;

/// An invitation's redirect as it will be stored and later sent as `Location`: an
/// absolute http(s) URL with a host, in the URL parser's normal form (ASCII only, so it
/// is always a valid header value), at most [`REDIRECT_MAX`] characters.
pub fn redirect_url(raw: &str) -> Result<String, InviteError> {
    // The URL parser silently drops CR, LF and tab: refuse them instead of guessing.
    if raw.chars().any(crate::model::forbidden_in_text) {
        return Err(InviteError::RedirectControl);
    }
    let u = url::Url::parse(raw).map_err(|_| InviteError::BadRedirect)?;
    let ok = matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty());
    if !ok || raw.len() > REDIRECT_MAX || u.as_str().len() > REDIRECT_MAX {
        return Err(InviteError::BadRedirect);
    }
    Ok(u.into())
}

/// Validates everything first, then writes: a rejected invitation stores nothing.
pub async fn invite(
    store: &Store,
    tenant: &Tenant,
    req: InviteRequest,
    public_url: &str,
    now: i64,
) -> Result<Invited, InviteError> {
    // The address is parsed here, once; everything below holds an `Email`.
    let email = Email::parse(&req.email).ok_or(InviteError::BadEmail)?;
    let domain = email.domain().to_string();
    if tenant.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
        return Err(InviteError::OwnDomain(domain));
    }
    let redirect_url = redirect_url(&req.redirect_url)?;
    // A sibling tenant's address: both tenants' cross-tenant access settings must allow
    // collaboration with at least some of its users.
    if let Some(home) = store.tenant_by_domain(&domain).await?
        && home.id != tenant.id
        && let Some(b) = crate::access::cross_tenant::blocks_invitation(tenant, &home)
    {
        let whose = match b.setting.direction {
            crate::policy::cross_tenant::Direction::Inbound => &b.resource,
            crate::policy::cross_tenant::Direction::Outbound => &b.home,
        };
        return Err(InviteError::CrossTenantBlocked(format!(
            "{whose}'s cross-tenant access settings block collaboration between {} and {} ({} setting)",
            b.resource, b.home, b.setting
        )));
    }
    let app = match &req.app_id {
        Some(id) => Some(store.app(&tenant.id, id).await?.ok_or_else(|| InviteError::UnknownApp(id.clone()))?),
        None => None,
    };
    let display_name = match req.display_name.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(name) => display_text("invitedUserDisplayName", name, DISPLAY_NAME_MAX)?,
        None => email.split('@').next().unwrap_or_default().to_string(),
    };
    // The message is a line of the invitation email: no line breaks that could forge others.
    let message = match req.message.as_deref().filter(|m| !m.trim().is_empty()) {
        Some(m) => Some(display_text("customizedMessageBody", m, MESSAGE_MAX)?),
        None => None,
    };
    let existing = store.user_by_login(&tenant.id, &email).await?;
    if let Some(u) = &existing
        && u.user_type == UserType::Member
    {
        return Err(InviteError::AlreadyMember(email.into()));
    }
    // Entra: invitedUser.id names the existing user with this email; it never chooses a new id.
    if let Some(id) = req.user_id
        && existing.as_ref().is_none_or(|u| u.id != id)
    {
        return Err(InviteError::UserMismatch);
    }
    let user = match existing {
        Some(u) if req.reset_redemption => {
            // Entra "reset redemption status": the guest redeems again, possibly with another
            // identity; the old identity's sessions and grants end with the epoch.
            store.void_tickets_of(&tenant.id, &u.id).await?;
            let reset = crate::storage::modify_user(store, &tenant.id, &u.id, |u| {
                u.external_user_state = Some(ExternalUserState::PendingAcceptance);
                u.external_user_state_change_date_time = Some(now);
                u.identities.clear();
                u.session_epoch += 1;
            })
            .await?;
            reset.map(|(u, ())| u).ok_or(InviteError::UserMismatch)?
        }
        Some(u) => u,
        None => {
            let u = User {
                id: crate::model::UserId::new(),
                tenant_id: tenant.id,
                user_type: UserType::Guest,
                user_principal_name: guest_upn(&email, &tenant.initial_domain),
                mail: email.to_string(),
                display_name: display_name.clone(),
                account_enabled: true,
                created_at: now,
                creation_type: Some("Invitation".into()),
                external_user_state: Some(ExternalUserState::PendingAcceptance),
                external_user_state_change_date_time: Some(now),
                ..Default::default()
            };
            store.insert_user(&u).await?;
            u
        }
    };
    let status = match user.external_user_state {
        Some(ExternalUserState::Accepted) => InvitationStatus::Completed,
        _ => InvitationStatus::PendingAcceptance,
    };
    let invitation = Invitation {
        id: Uuid::new_v4(),
        tenant_id: tenant.id,
        invited_user_email_address: email.into(),
        invited_user_display_name: display_name,
        invited_user_id: user.id,
        invite_redirect_url: redirect_url,
        app_id: req.app_id,
        invited_by: req.invited_by,
        message,
        send_invitation_message: req.send_message,
        reset_redemption: req.reset_redemption,
        status,
        created_at: now,
    };
    let ticket = new_token();
    store.put_invitation(&invitation).await?;
    // An invitation to an app that requires assignment assigns the guest (default role), as
    // Entra does for an invitation to an app: else the redemption would end on not_assigned.
    if let Some(mut app) = app.filter(|a| a.assignment_required && !a.is_assigned(&user.id)) {
        app.registration.assignments.push(crate::model::AppAssignment {
            id: Uuid::new_v4(),
            principal_id: user.id,
            app_role_id: Uuid::nil(),
            created_at: now,
        });
        store.put_app(&app).await?;
    }
    store
        .put_ticket(
            &digest(&ticket),
            &Ticket {
                tenant_id: tenant.id,
                invitation_id: invitation.id,
                user_id: user.id,
                expires_at: now + TICKET_LIFETIME_SECS,
                state: TicketState::Active,
            },
        )
        .await?;
    let redeem_url = format!("{public_url}/redeem?ticket={ticket}");
    Ok(Invited { invitation, user, ticket, redeem_url })
}
