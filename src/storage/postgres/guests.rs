//! Invitations, tickets and their redemption (one transaction), stub accounts, federation states.
use deadpool_postgres::Transaction;
use uuid::Uuid;

use super::{Cached, PgResult, PgStore, pg_error, row, transact};
use crate::model::{
    ExternalUserState, FedState, Identity, Invitation, InvitationStatus, StubAccount, TenantId, Ticket, TicketState,
    User, UserId,
};
use crate::storage::{Redeemed, Result, api};

#[async_trait::async_trait]
impl api::GuestStore for PgStore {
    async fn put_invitation(&self, inv: &Invitation) -> Result<()> {
        let doc = row::enc(inv)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO invitations (tenant_id, id, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET doc = excluded.doc",
            &[&inv.tenant_id.to_string(), &inv.id, &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn invitation(&self, tenant: &TenantId, id: &Uuid) -> Result<Option<Invitation>> {
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM invitations WHERE tenant_id = $1 AND id = $2", &[&tenant.to_string(), id])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn put_ticket(&self, id: &[u8; 32], t: &Ticket) -> Result<()> {
        let doc = row::enc(t)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO tickets (id, tenant_id, user_id, doc) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET tenant_id = excluded.tenant_id, user_id = excluded.user_id, \
             doc = excluded.doc",
            &[&id.as_slice(), &t.tenant_id.to_string(), &t.user_id.to_string(), &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn ticket(&self, id: &[u8; 32]) -> Result<Option<Ticket>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM tickets WHERE id = $1", &[&id.as_slice()]).await.map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    /// The guest's tickets are locked while they are voided, so a redemption of one of them
    /// runs wholly before (and the ticket is spent) or after (and finds it void).
    async fn void_tickets_of(&self, tenant: &TenantId, user: &UserId) -> Result<()> {
        let (tenant, user) = (tenant.to_string(), user.to_string());
        transact!(self, tx => {
            let rows = tx
                .q("SELECT id, doc FROM tickets WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE", &[&tenant, &user])
                .await?;
            for r in rows {
                let mut t: Ticket = row::doc(&r, "doc")?;
                if t.state == TicketState::Active {
                    t.state = TicketState::Voided;
                    let id: Vec<u8> = r.get("id");
                    tx.exec("UPDATE tickets SET doc = $2 WHERE id = $1", &[&id, &row::enc(&t)?]).await?;
                }
            }
        })
    }

    /// One transaction that locks the ticket row first: of concurrent redemptions one runs
    /// and the others then find the ticket spent. The seat is taken by the conditional
    /// upsert of the tenant's `seats` row (`directory::take_seat`) in the same transaction,
    /// so two guests racing for the last seat have one winner.
    async fn redeem(&self, ticket: &[u8; 32], identity: &Identity, now: i64, seat_limit: u32) -> Result<Redeemed> {
        transact!(self, tx => redeem_in(&tx, ticket, identity, now, seat_limit).await?)
    }

    async fn put_stub_account(&self, stub: &str, acct: &StubAccount) -> Result<()> {
        let doc = row::enc(acct)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO stub_accounts (stub, login, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (stub, login) DO UPDATE SET doc = excluded.doc",
            &[&stub, &acct.login, &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    /// Stored under the login as given; looked up trimmed and lower-cased (as sled does).
    async fn stub_account(&self, stub: &str, login: &str) -> Result<Option<StubAccount>> {
        let login = login.trim().to_ascii_lowercase();
        let c = self.conn().await?;
        let found = c
            .q_opt("SELECT doc FROM stub_accounts WHERE stub = $1 AND login = $2", &[&stub, &login])
            .await
            .map_err(pg_error)?;
        found.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn put_fed_state(&self, state: &str, record: &FedState) -> Result<()> {
        let doc = row::enc(record)?;
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO fed_states (state, expires_at, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (state) DO UPDATE SET expires_at = excluded.expires_at, doc = excluded.doc",
            &[&state, &record.expires_at, &doc],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn fed_state(&self, state: &str) -> Result<Option<FedState>> {
        let c = self.conn().await?;
        let found = c.q_opt("SELECT doc FROM fed_states WHERE state = $1", &[&state]).await.map_err(pg_error)?;
        Ok(found.and_then(|r| row::doc(&r, "doc").ok()))
    }

    /// `DELETE … RETURNING`: of concurrent callers the one whose delete removed the row gets it.
    async fn take_fed_state(&self, state: &str) -> Result<Option<FedState>> {
        let c = self.conn().await?;
        let found =
            c.q_opt("DELETE FROM fed_states WHERE state = $1 RETURNING doc", &[&state]).await.map_err(pg_error)?;
        Ok(found.and_then(|r| row::doc(&r, "doc").ok()))
    }

    /// By the `expires_at` column (indexed). Every row is written from a typed record by this
    /// schema, so there are no unreadable ones to look for.
    async fn sweep_fed_states(&self, now: i64) -> Result<usize> {
        let c = self.conn().await?;
        let removed = c.exec("DELETE FROM fed_states WHERE expires_at < $1", &[&now]).await.map_err(pg_error)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}

async fn redeem_in(
    tx: &Transaction<'_>,
    ticket: &[u8; 32],
    identity: &Identity,
    now: i64,
    seat_limit: u32,
) -> PgResult<Redeemed> {
    let found = tx.q_opt("SELECT doc FROM tickets WHERE id = $1 FOR UPDATE", &[&ticket.as_slice()]).await?;
    let Some(found) = found else { return Ok(Redeemed::Unknown) };
    let mut t: Ticket = row::doc(&found, "doc")?;
    match t.state {
        TicketState::Active => {}
        TicketState::Redeemed => return Ok(Redeemed::AlreadyRedeemed),
        TicketState::Voided => return Ok(Redeemed::Voided),
    }
    let (tenant, user_id) = (t.tenant_id.to_string(), t.user_id.to_string());
    let found =
        tx.q_opt("SELECT doc FROM users WHERE tenant_id = $1 AND id = $2 FOR UPDATE", &[&tenant, &user_id]).await?;
    let Some(found) = found else { return Ok(Redeemed::Unknown) };
    let before: User = row::doc(&found, "doc")?;
    let mut user = before.clone();
    user.external_user_state = Some(ExternalUserState::Accepted);
    user.external_user_state_change_date_time = Some(now);
    user.identities = vec![identity.clone()];
    if !before.holds_seat() && user.holds_seat() && !super::directory::take_seat(tx, &tenant, Some(seat_limit)).await? {
        // Nothing was written yet: the transaction commits no change.
        return Ok(Redeemed::NoSeat);
    }
    // The UPN, mail and type are unchanged by redemption, so their columns stay as they are.
    tx.exec(
        "UPDATE users SET doc = $3, holds_seat = $4, version = version + 1 WHERE tenant_id = $1 AND id = $2",
        &[&tenant, &user_id, &row::enc(&user)?, &user.holds_seat()],
    )
    .await?;
    let inv = tx
        .q_opt("SELECT doc FROM invitations WHERE tenant_id = $1 AND id = $2 FOR UPDATE", &[&tenant, &t.invitation_id])
        .await?;
    if let Some(inv) = inv {
        let mut inv: Invitation = row::doc(&inv, "doc")?;
        inv.status = InvitationStatus::Completed;
        tx.exec(
            "UPDATE invitations SET doc = $3 WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &t.invitation_id, &row::enc(&inv)?],
        )
        .await?;
    }
    t.state = TicketState::Redeemed;
    tx.exec("UPDATE tickets SET doc = $2 WHERE id = $1", &[&ticket.as_slice(), &row::enc(&t)?]).await?;
    Ok(Redeemed::Done(Box::new(user)))
}
