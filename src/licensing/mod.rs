//! Premium seats (DESIGN §5): members with MFA/CA and every redeemed guest take a seat of
//! the resource tenant; when none is left, redemption and MFA sign-ins stop, clearly.
use crate::model::{ExternalUserState, Tenant, User};
use crate::storage::{Store, StoreError};

/// Whether this user holds a seat: a redeemed guest, or a member who uses MFA.
pub fn holds_seat(user: &User) -> bool {
    if user.is_guest() {
        user.external_user_state == Some(ExternalUserState::Accepted)
    } else {
        user.per_user_mfa || !user.totp_methods.is_empty()
    }
}

pub async fn seats_used(store: &Store, tenant: &Tenant) -> Result<u32, StoreError> {
    Ok(store.users(&tenant.id).await?.iter().filter(|u| holds_seat(u)).count() as u32)
}

/// True when `user` already holds a seat or one is free.
pub async fn can_take_seat(store: &Store, tenant: &Tenant, user: &User) -> Result<bool, StoreError> {
    Ok(holds_seat(user) || seats_used(store, tenant).await? < tenant.premium_seats)
}
