//! Every email gatehouse sends goes to the outbox (shown at /outbox in demo mode) and, when
//! SMTP is configured, into the persisted delivery queue (`MailQueueStore`) that the
//! background [`worker`] drains: the request that sends mail only writes it, never waits for
//! an SMTP server, and a restart loses nothing queued. Failed deliveries are retried with
//! exponential backoff; the admin sees each message's state (`/{tenant}/admin`,
//! `GET /graph/v1.0/admin/mailQueue`) but never its body.
pub mod compose;
mod smtp;
pub mod worker;

use crate::app::AppState;
use crate::model::{MailAddress, MailJob, MailKind, MailState, OutboxMessage, TenantId};
use crate::storage::StoreError;

/// A message to send: both bodies carry the same link or code.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub tenant_id: Option<TenantId>,
    pub kind: MailKind,
    /// The `From` display name (the tenant's); the address is `smtp.from`'s.
    pub from_name: Option<String>,
    pub reply_to: Option<MailAddress>,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The bearer secret the message carries (kept out of the stored outbox outside the demo).
    pub redeem_url: Option<String>,
    pub otp: Option<String>,
}

/// Writes the message to the outbox and, with SMTP configured, queues it for delivery
/// (durable before this returns); the worker is woken to send it at once.
pub async fn send(state: &AppState, mail: Outgoing) -> Result<(), StoreError> {
    let msg = OutboxMessage {
        id: 0,
        tenant_id: mail.tenant_id,
        to: mail.to.clone(),
        subject: mail.subject.clone(),
        body: mail.text.clone(),
        redeem_url: mail.redeem_url.clone(),
        otp: mail.otp.clone(),
        created_at: state.now(),
    };
    // The outbox is the demo's mailbox. Outside the demo it keeps a record of what was sent
    // without the bearer secrets (tickets, codes), which are only ever stored hashed.
    let stored = if state.config.demo { msg } else { redacted(&msg) };
    state.store.push_outbox(stored).await?;
    if state.config.smtp.is_some() {
        let job = MailJob {
            id: uuid::Uuid::new_v4(),
            seq: 0,
            tenant_id: mail.tenant_id,
            kind: mail.kind,
            to: mail.to,
            from_name: mail.from_name,
            reply_to: mail.reply_to,
            subject: mail.subject,
            // Sealed: the queue is in the store, and the bodies carry the link or the code.
            sealed_text: Some(state.seal.seal(&mail.text)),
            sealed_html: Some(state.seal.seal(&mail.html)),
            created_at: state.now(),
            state: MailState::Queued,
            attempts: 0,
            last_error: None,
            last_attempt_ms: None,
            next_attempt_ms: state.clock.now_ms(),
            lease: None,
            lease_until_ms: 0,
            sent_ms: None,
        };
        state.store.enqueue_mail(&job).await?;
        state.store.flush().await?;
        worker::wake();
    }
    Ok(())
}

fn redacted(msg: &OutboxMessage) -> OutboxMessage {
    let mut body = msg.body.clone();
    for secret in [msg.redeem_url.as_deref(), msg.otp.as_deref()].into_iter().flatten() {
        body = body.replace(secret, "[sent, not stored]");
    }
    OutboxMessage { body, redeem_url: None, otp: None, ..msg.clone() }
}

/// A queued message as the admin sees it: where it is, never what it says.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: uuid::Uuid,
    pub recipient: String,
    pub subject: String,
    pub kind: &'static str,
    /// `queued`, `sending`, `retrying`, `sent` or `failed`.
    pub status: &'static str,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub created_date_time: String,
    pub last_attempt_date_time: Option<String>,
    pub next_attempt_date_time: Option<String>,
    pub sent_date_time: Option<String>,
}

/// The tenant's newest `limit` queued messages as the admin sees them.
pub async fn deliveries(state: &AppState, tenant: &TenantId, limit: usize) -> Result<Vec<Delivery>, StoreError> {
    let max_attempts = state.config.smtp.as_ref().map(|s| s.max_attempts).unwrap_or(0);
    let at = |ms: i64| crate::clock::rfc3339(ms.div_euclid(1000));
    Ok(state
        .store
        .mail_jobs(tenant, limit)
        .await?
        .into_iter()
        .map(|j| Delivery {
            id: j.id,
            recipient: j.to,
            subject: j.subject,
            kind: j.kind.as_str(),
            status: j.state.as_str(),
            attempts: j.attempts,
            max_attempts,
            last_error: j.last_error,
            created_date_time: crate::clock::rfc3339(j.created_at),
            last_attempt_date_time: j.last_attempt_ms.map(at),
            next_attempt_date_time: matches!(j.state, MailState::Queued | MailState::Retrying)
                .then(|| at(j.next_attempt_ms)),
            sent_date_time: j.sent_ms.map(at),
        })
        .collect())
}
