//! Every email gatehouse sends goes to the outbox (shown at /outbox in demo mode) and,
//! when SMTP is configured, is delivered in the background.

use crate::app::AppState;
use crate::model::OutboxMessage;
use crate::storage::StoreError;

pub async fn send(
    state: &AppState,
    tenant_id: Option<crate::model::TenantId>,
    to: &str,
    subject: &str,
    body: &str,
    redeem_url: Option<&str>,
    otp: Option<&str>,
) -> Result<(), StoreError> {
    let msg = OutboxMessage {
        id: 0,
        tenant_id,
        to: to.into(),
        subject: subject.into(),
        body: body.into(),
        redeem_url: redeem_url.map(String::from),
        otp: otp.map(String::from),
        created_at: state.now(),
    };
    // The outbox is the demo's mailbox. Outside the demo it keeps a record of what was sent
    // without the bearer secrets (tickets, codes), which are only ever stored hashed.
    let stored = if state.config.demo { msg.clone() } else { redacted(&msg) };
    state.store.push_outbox(stored).await?;
    if let Some(smtp) = state.config.smtp.clone() {
        tokio::spawn(async move {
            if let Err(e) = deliver(&smtp, &msg).await {
                tracing::warn!(error = %e, to = %msg.to, "SMTP delivery failed; the message stays in the outbox");
            }
        });
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

async fn deliver(smtp: &crate::config::Smtp, msg: &OutboxMessage) -> Result<(), String> {
    use lettre::Address;
    use lettre::message::Mailbox;
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let email = Message::builder()
        .from(smtp.from.parse().map_err(|e| format!("from: {e}"))?)
        // A bare address only: a display-name form must never pick the recipient.
        .to(Mailbox::new(None, msg.to.parse::<Address>().map_err(|e| format!("to: {e}"))?))
        .subject(msg.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(msg.body.clone())
        .map_err(|e| e.to_string())?;
    let mut builder = if smtp.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(|e| e.to_string())?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    };
    builder = builder.port(smtp.port);
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    builder.build().send(email).await.map(|_| ()).map_err(|e| e.to_string())
}
