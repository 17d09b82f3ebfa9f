//! Invitations, tickets and their redemption (one transaction), stub accounts, federation states.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::PgStore;
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::GuestStore for PgStore {
    async fn put_invitation(&self, inv: &Invitation) -> Result<()> {
        todo!()
    }

    async fn invitation(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<Invitation>> {
        todo!()
    }

    async fn put_ticket(&self, id: &[u8; 32], t: &Ticket) -> Result<()> {
        todo!()
    }

    async fn ticket(&self, id: &[u8; 32]) -> Result<Option<Ticket>> {
        todo!()
    }

    async fn void_tickets_of(&self, tenant: &TenantId, user: &UserId) -> Result<()> {
        todo!()
    }

    async fn redeem(&self, ticket: &[u8; 32], identity: &Identity, now: i64, seat_limit: u32) -> Result<Redeemed> {
        todo!()
    }

    async fn put_stub_account(&self, stub: &str, acct: &StubAccount) -> Result<()> {
        todo!()
    }

    async fn stub_account(&self, stub: &str, login: &str) -> Result<Option<StubAccount>> {
        todo!()
    }

    async fn put_fed_state(&self, state: &str, record: &FedState) -> Result<()> {
        todo!()
    }

    async fn fed_state(&self, state: &str) -> Result<Option<FedState>> {
        todo!()
    }

    async fn take_fed_state(&self, state: &str) -> Result<Option<FedState>> {
        todo!()
    }

    async fn sweep_fed_states(&self, now: i64) -> Result<usize> {
        todo!()
    }
}
