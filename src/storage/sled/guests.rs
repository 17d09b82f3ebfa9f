//! Invitations, redemption tickets (keyed by digest), the outbox, stub IdP accounts and
//! pending federation states.
use uuid::Uuid;

use super::{Result, SledStore, api, decode, encode, get, key2, put, update, uuid_key};
use crate::model::{ExternalUserState, FedState, Identity, OutboxMessage, StubAccount, TenantId, User, UserId};
use crate::model::{Invitation, InvitationStatus, Ticket, TicketState};
use crate::storage::Redeemed;

#[async_trait::async_trait]
impl api::GuestStore for SledStore {
    async fn put_invitation(&self, inv: &Invitation) -> Result<()> {
        put(&self.invitations, &key2(&uuid_key(&inv.tenant_id), inv.id.as_bytes()), inv)
    }

    async fn invitation(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<Invitation>> {
        get(&self.invitations, &key2(&uuid_key(tenant), id.as_bytes()))
    }

    async fn put_ticket(&self, id: &[u8; 32], t: &Ticket) -> Result<()> {
        put(&self.tickets, id, t)
    }

    async fn ticket(&self, id: &[u8; 32]) -> Result<Option<Ticket>> {
        get(&self.tickets, id)
    }

    async fn void_tickets_of(&self, tenant: &TenantId, user: &UserId) -> Result<()> {
        let _one_at_a_time = self.tickets_lock.lock().unwrap_or_else(|p| p.into_inner());
        for item in self.tickets.iter() {
            let (k, v) = item?;
            let mut t: Ticket = decode(&v)?;
            if t.tenant_id == *tenant && t.user_id == *user && t.state == TicketState::Active {
                t.state = TicketState::Voided;
                self.tickets.insert(k, encode(&t)?)?;
            }
        }
        Ok(())
    }

    async fn redeem(&self, ticket: &[u8; 32], identity: &Identity, now: i64, seat_limit: u32) -> Result<Redeemed> {
        let _one_at_a_time = self.tickets_lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut t) = get::<Ticket>(&self.tickets, ticket)? else { return Ok(Redeemed::Unknown) };
        match t.state {
            TicketState::Active => {}
            TicketState::Redeemed => return Ok(Redeemed::AlreadyRedeemed),
            TicketState::Voided => return Ok(Redeemed::Voided),
        }
        let tenant = uuid_key(&t.tenant_id);
        // The seat is checked and taken under the seat lock, in the same step as the write.
        let mut seats = self.seats_lock();
        let key = key2(&tenant, t.user_id.as_bytes());
        let Some(before) = get::<User>(&self.users, &key)? else { return Ok(Redeemed::Unknown) };
        if !before.holds_seat() && seats.get(&t.tenant_id).copied().unwrap_or(0) >= seat_limit {
            return Ok(Redeemed::NoSeat);
        }
        let accepted = update(&self.users, &key, |user: &mut User| {
            user.external_user_state = Some(ExternalUserState::Accepted);
            user.external_user_state_change_date_time = Some(now);
            user.identities = vec![identity.clone()];
        })?;
        let Some((user, ())) = accepted else { return Ok(Redeemed::Unknown) };
        super::directory::seat_change(&mut seats, &t.tenant_id, Some(&before), Some(&user));
        drop(seats);
        update(&self.invitations, &key2(&tenant, t.invitation_id.as_bytes()), |inv: &mut Invitation| {
            inv.status = InvitationStatus::Completed;
        })?;
        t.state = TicketState::Redeemed;
        put(&self.tickets, ticket, &t)?;
        Ok(Redeemed::Done(Box::new(user)))
    }

    async fn put_stub_account(&self, stub: &str, acct: &StubAccount) -> Result<()> {
        put(&self.stub_accounts, &key2(stub.as_bytes(), acct.login.as_bytes()), acct)
    }

    async fn stub_account(&self, stub: &str, login: &str) -> Result<Option<StubAccount>> {
        get(&self.stub_accounts, &key2(stub.as_bytes(), login.trim().to_ascii_lowercase().as_bytes()))
    }

    async fn put_fed_state(&self, state: &str, record: &FedState) -> Result<()> {
        put(&self.fed_states, state.as_bytes(), record)
    }

    async fn fed_state(&self, state: &str) -> Result<Option<FedState>> {
        Ok(self.fed_states.get(state.as_bytes())?.and_then(|v| decode(&v).ok()))
    }

    async fn take_fed_state(&self, state: &str) -> Result<Option<FedState>> {
        Ok(self.fed_states.remove(state.as_bytes())?.and_then(|v| decode(&v).ok()))
    }

    async fn sweep_fed_states(&self, now: i64) -> Result<usize> {
        let mut removed = 0;
        for item in self.fed_states.iter() {
            let (k, v) = item?;
            if decode::<FedState>(&v).ok().is_none_or(|r| r.expires_at < now) {
                self.fed_states.remove(k)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[async_trait::async_trait]
impl api::OutboxStore for SledStore {
    async fn push_outbox(&self, mut msg: OutboxMessage) -> Result<OutboxMessage> {
        msg.id = self.db.generate_id()?;
        put(&self.outbox, &msg.id.to_be_bytes(), &msg)?;
        Ok(msg)
    }

    async fn outbox(&self, limit: usize) -> Result<Vec<OutboxMessage>> {
        self.outbox.iter().values().rev().take(limit).map(|v| decode(&v?)).collect()
    }
}
