//! Invitation and redemption-ticket records (Graph `invitation`).
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{TenantId, UserId};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum InvitationStatus {
    PendingAcceptance,
    Completed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Invitation {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub invited_user_email_address: String,
    pub invited_user_display_name: String,
    pub invited_user_id: UserId,
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
    pub tenant_id: TenantId,
    pub invitation_id: Uuid,
    pub user_id: UserId,
    pub expires_at: i64,
    pub state: TicketState,
}
