//! Premium seats (DESIGN §5): members with MFA/CA and every redeemed guest take a seat of
//! the resource tenant; when none is left, redemption and MFA sign-ins stop, clearly.
use crate::model::{Tenant, User};
use crate::storage::{Store, StoreError};

/// Whether this user holds a seat: a redeemed guest, or a member who uses MFA.
pub fn holds_seat(user: &User) -> bool {
    user.holds_seat()
}

/// Seats in use: a counter the store keeps with every user write (never a scan).
pub async fn seats_used(store: &Store, tenant: &Tenant) -> Result<u32, StoreError> {
    store.seats_used(&tenant.id).await
}

/// True when `user` already holds a seat or one is free.
pub async fn can_take_seat(store: &Store, tenant: &Tenant, user: &User) -> Result<bool, StoreError> {
    Ok(holds_seat(user) || seats_used(store, tenant).await? < tenant.premium_seats)
}
