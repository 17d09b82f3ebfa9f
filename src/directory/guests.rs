//! Invitations (Graph `invitation`): creating a guest at once, tickets, reset redemption.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ExternalUserState, Tenant, User, UserType, guest_upn, normalize_email};
use crate::secrets::{digest, new_token};
use crate::storage::{Store, StoreError};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum InvitationStatus {
    PendingAcceptance,
    Completed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub invited_user_email_address: String,
    pub invited_user_display_name: String,
    pub invited_user_id: Uuid,
    pub invite_redirect_url: String,
    /// gatehouse extension: the app the guest is invited to.
    pub app_id: Option<String>,
    pub invited_by: String,
    pub message: Option<String>,
    pub send_invitation_message: bool,
    pub reset_redemption: bool,
    pub status: InvitationStatus,
    pub created_at: i64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum TicketState {
    Active,
    Redeemed,
    Voided,
}

/// A redemption ticket, stored under the SHA-256 of the ticket itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ticket {
    pub tenant_id: Uuid,
    pub invitation_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: i64,
    pub state: TicketState,
}

pub struct InviteRequest {
    pub email: String,
    pub display_name: Option<String>,
    pub redirect_url: String,
    pub app_id: Option<String>,
    pub message: Option<String>,
    pub send_message: bool,
    pub reset_redemption: bool,
    /// Graph `invitedUser.id`: when given, it must be the existing guest with that email.
    pub user_id: Option<Uuid>,
    pub invited_by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("invitedUserEmailAddress is not a valid email address")]
    BadEmail,
    #[error("{0} is a verified domain of this tenant: invite people from other organisations")]
    OwnDomain(String),
    #[error("inviteRedirectUrl must be an absolute http or https URL")]
    BadRedirect,
    #[error("the application {0} is not registered in this tenant")]
    UnknownApp(String),
    #[error("{0} is already a member of this tenant")]
    AlreadyMember(String),
    #[error("invitedUser.id does not match the user with this email address")]
    UserMismatch,
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

fn valid_redirect(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// Validates everything first, then writes: a rejected invitation stores nothing.
pub fn invite(
    store: &Store,
    tenant: &Tenant,
    req: InviteRequest,
    public_url: &str,
    now: i64,
) -> Result<Invited, InviteError> {
    let email = normalize_email(&req.email).ok_or(InviteError::BadEmail)?;
    let domain = email.split_once('@').map(|(_, d)| d.to_string()).unwrap_or_default();
    if tenant.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
        return Err(InviteError::OwnDomain(domain));
    }
    if req.redirect_url.len() > 2048 || !valid_redirect(&req.redirect_url) {
        return Err(InviteError::BadRedirect);
    }
    if let Some(app) = &req.app_id
        && store.app(&tenant.id, app)?.is_none()
    {
        return Err(InviteError::UnknownApp(app.clone()));
    }
    let display_name = req
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(256).collect::<String>())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string());
    let existing = store.user_by_login(&tenant.id, &email)?;
    if let Some(u) = &existing
        && u.user_type == UserType::Member
    {
        return Err(InviteError::AlreadyMember(email));
    }
    if let Some(id) = req.user_id
        && existing.as_ref().is_some_and(|u| u.id != id)
    {
        return Err(InviteError::UserMismatch);
    }
    let user = match existing {
        Some(mut u) => {
            if req.reset_redemption {
                // Entra "reset redemption status": the guest redeems again, possibly with another identity.
                store.void_tickets_of(&tenant.id, &u.id)?;
                u.external_user_state = Some(ExternalUserState::PendingAcceptance);
                u.external_user_state_change_date_time = Some(now);
                u.identities.clear();
                // The old identity's sessions and refresh tokens end with it (credential gate).
                u.session_epoch += 1;
                store.put_user(&u)?;
            }
            u
        }
        None => {
            let u = User {
                id: req.user_id.unwrap_or_else(Uuid::new_v4),
                tenant_id: tenant.id,
                user_type: UserType::Guest,
                user_principal_name: guest_upn(&email, &tenant.initial_domain),
                mail: email.clone(),
                display_name: display_name.clone(),
                account_enabled: true,
                created_at: now,
                creation_type: Some("Invitation".into()),
                external_user_state: Some(ExternalUserState::PendingAcceptance),
                external_user_state_change_date_time: Some(now),
                ..Default::default()
            };
            store.put_user(&u)?;
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
        invited_user_email_address: email,
        invited_user_display_name: display_name,
        invited_user_id: user.id,
        invite_redirect_url: req.redirect_url,
        app_id: req.app_id,
        invited_by: req.invited_by,
        message: req.message.map(|m| m.chars().take(2000).collect()),
        send_invitation_message: req.send_message,
        reset_redemption: req.reset_redemption,
        status,
        created_at: now,
    };
    let ticket = new_token();
    store.put_invitation(&invitation)?;
    store.put_ticket(
        &digest(&ticket),
        &Ticket {
            tenant_id: tenant.id,
            invitation_id: invitation.id,
            user_id: user.id,
            expires_at: now + TICKET_LIFETIME_SECS,
            state: TicketState::Active,
        },
    )?;
    let redeem_url = format!("{public_url}/redeem?ticket={ticket}");
    Ok(Invited { invitation, user, ticket, redeem_url })
}
