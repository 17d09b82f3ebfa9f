//! `POST /graph/v1.0/invitations` (Graph `invitation`).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use super::wire::{self, InvitationRequest};
use super::{
    Caller, GraphError, ROLE_DIRECTORY_RW, ROLE_GLOBAL_ADMIN, ROLE_GUEST_INVITER, ROLE_USER_INVITE, json_body,
};
use crate::app::AppState;
use crate::directory::invite::{InviteError, InviteRequest, Invited, invite};
use crate::model::{Tenant, UserType};
use crate::web::Data;

/// Why an invitation was not sent: a Graph error, or the inviter's throttle (with the
/// seconds after which `Retry-After` says to try again).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error("too many invitations; retry after {0} s")]
    Throttled(i64),
}

impl SendError {
    pub fn graph(&self) -> GraphError {
        match self {
            SendError::Graph(e) => e.clone(),
            SendError::Throttled(secs) => GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!("Too many invitations from this inviter. Retry after {secs} seconds."),
            ),
        }
    }
}

impl From<crate::storage::StoreError> for SendError {
    fn from(e: crate::storage::StoreError) -> Self {
        SendError::Graph(e.into())
    }
}

impl ResponseError for SendError {
    fn status_code(&self) -> StatusCode {
        self.graph().status
    }
    fn error_response(&self) -> HttpResponse {
        let mut resp = self.graph().error_response();
        if let SendError::Throttled(secs) = self {
            resp.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(*secs));
        }
        resp
    }
}

pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, SendError> {
    let caller =
        Caller::require(&req, &state, &[ROLE_DIRECTORY_RW, ROLE_USER_INVITE, ROLE_GLOBAL_ADMIN, ROLE_GUEST_INVITER])
            .await?;
    let b: InvitationRequest = json_body(&req, &body)?;
    let email =
        b.invited_user_email_address.ok_or_else(|| GraphError::bad_request("invitedUserEmailAddress is required."))?;
    let redirect = b.invite_redirect_url.ok_or_else(|| GraphError::bad_request("inviteRedirectUrl is required."))?;
    if let Some(t) = &b.invited_user_type
        && !t.eq_ignore_ascii_case("guest")
    {
        return Err(GraphError::bad_request("Only invitedUserType Guest is supported.").into());
    }
    let request = InviteRequest {
        email,
        display_name: b.invited_user_display_name,
        redirect_url: redirect,
        app_id: b.app_id,
        message: b.invited_user_message_info.and_then(|m| m.customized_message_body),
        send_message: b.send_invitation_message,
        reset_redemption: b.reset_redemption,
        user_id: b.invited_user.and_then(|u| u.id),
        invited_by: caller.display(),
    };
    let invited = send_invitation(&state, &caller.tenant, request).await?;
    state.store.flush().await?;
    Ok(HttpResponse::Created().json(graph_invitation(&state, &invited)))
}

/// Creates the invitation and, when asked, emails it. Shared with the member invite page,
/// so both count against the same per-inviter throttle (`invited_by` is the member's
/// object id on both paths). Every attempt counts, refused ones too.
pub async fn send_invitation(state: &AppState, tenant: &Tenant, request: InviteRequest) -> Result<Invited, SendError> {
    let now = state.now();
    let inviter = format!("{}:{}", tenant.id, request.invited_by);
    if let crate::storage::Reserved::No { retry_after } = state.invite_limiter.try_reserve(&inviter, now).await? {
        return Err(SendError::Throttled(retry_after));
    }
    let invited = invite(&state.store, tenant, request, &state.public_url, now).await.map_err(|e| match e {
        InviteError::Store(crate::storage::StoreError::Conflict(m)) => {
            GraphError::new(StatusCode::CONFLICT, "Request_MultipleObjectsWithSameKeyValue", m)
        }
        InviteError::Store(e) => GraphError::internal(e),
        other => GraphError::bad_request(other.to_string()),
    })?;
    if invited.invitation.send_invitation_message {
        let inv = &invited.invitation;
        // Replies go to the inviter when the inviter is a user of the tenant (not an app).
        let inviter = match inv.invited_by.parse::<crate::model::UserId>() {
            Ok(id) => state.store.user(&tenant.id, &id).await?,
            Err(_) => None,
        };
        let reply_to = inviter.map(|u| crate::model::MailAddress { name: Some(u.display_name), address: u.mail });
        crate::mail::send(state, crate::mail::compose::invitation(tenant, inv, &invited.redeem_url, reply_to))
            .await
            .map_err(|e| SendError::Graph(GraphError::internal(e)))?;
    }
    Ok(invited)
}

pub fn graph_invitation(state: &AppState, invited: &Invited) -> wire::Invitation {
    let inv = &invited.invitation;
    wire::Invitation {
        context: format!("{}/graph/v1.0/$metadata#invitations/$entity", state.public_url),
        id: inv.id,
        invite_redeem_url: invited.redeem_url.clone(),
        invited_user_display_name: inv.invited_user_display_name.clone(),
        invited_user_email_address: inv.invited_user_email_address.clone(),
        invite_redirect_url: inv.invite_redirect_url.clone(),
        invited_user_type: UserType::Guest,
        send_invitation_message: inv.send_invitation_message,
        reset_redemption: inv.reset_redemption,
        status: inv.status,
        invited_user: wire::InvitedUser {
            id: invited.user.id,
            user_principal_name: invited.user.user_principal_name.clone(),
        },
        app_id: inv.app_id.clone(),
    }
}
