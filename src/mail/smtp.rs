//! One delivery attempt over SMTP (lettre): the message as real mailboxes expect it —
//! `Message-ID` (the same on every attempt), `Date` (when it was written), `From` with the
//! tenant's name, `Reply-To` the inviter, `Auto-Submitted: auto-generated`, and a
//! multipart/alternative of the plain-text and the HTML body.
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Smtp;
use crate::model::MailJob;

/// Why an attempt failed, and whether trying again can help.
#[derive(Debug)]
pub(super) struct Failure {
    pub permanent: bool,
    pub message: String,
}

impl Failure {
    fn permanent(message: String) -> Self {
        Self { permanent: true, message }
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no vacation or out-of-office replies to it.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// The message of `job` with its opened bodies; `host` names the `Message-ID`'s right part.
pub(super) fn message(smtp: &Smtp, host: &str, job: &MailJob, text: &str, html: &str) -> Result<Message, Failure> {
    let configured: Mailbox =
        smtp.from.parse().map_err(|e| Failure::permanent(format!("smtp.from is not an address: {e}")))?;
    let from = Mailbox::new(job.from_name.clone().or(configured.name), configured.email);
    // A bare address only: a display-name form must never pick the recipient.
    let to = job.to.parse::<Address>().map_err(|e| Failure::permanent(format!("recipient: {e}")))?;
    let mut builder = Message::builder()
        .from(from)
        .to(Mailbox::new(None, to))
        .subject(job.subject.clone())
        .message_id(Some(format!("<{}@{host}>", job.id)))
        .date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(job.created_at).unwrap_or(0)))
        .header(AutoSubmitted);
    if let Some(r) = &job.reply_to
        && let Ok(address) = r.address.parse::<Address>()
    {
        builder = builder.reply_to(Mailbox::new(r.name.clone(), address));
    }
    builder
        .multipart(MultiPart::alternative_plain_html(text.to_string(), html.to_string()))
        .map_err(|e| Failure::permanent(format!("message: {e}")))
}

/// Hands `email` to the configured SMTP server. A 5xx answer is permanent; anything else
/// (no connection, a timeout, a 4xx answer) may pass on a later attempt.
pub(super) async fn deliver(smtp: &Smtp, host: &str, email: Message) -> Result<(), Failure> {
    let mut builder = if smtp.starttls {
        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| Failure::permanent(format!("smtp.host: {e}")))?
    } else {
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
    };
    let hello = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(std::net::IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) => ClientId::Domain(host.to_string()),
    };
    builder =
        builder.port(smtp.port).hello_name(hello).timeout(Some(std::time::Duration::from_secs(smtp.timeout_secs)));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose().to_string()));
    }
    match builder.build().send(email).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Failure { permanent: e.is_permanent(), message: e.to_string() }),
    }
}
