//! The mail outbox, the stub home IdPs' accounts and pending federation states.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxMessage {
    pub id: u64,
    pub tenant_id: Option<super::TenantId>,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub redeem_url: Option<String>,
    pub otp: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StubAccount {
    pub sub: String,
    pub login: String,
    pub display_name: String,
    pub password_hash: String,
}

/// A `state` sent to a home IdP: the sign-in it belongs to and the issuer it was sent to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FedState {
    pub tx: String,
    pub issuer: String,
    pub expires_at: i64,
}
