//! The delivery worker: one per node, started with the server when SMTP is configured. It
//! claims one due message at a time from the store's queue (a lease: on PostgreSQL two nodes
//! never claim the same attempt), sends it, and writes the outcome under its claim — sent,
//! or retried after `smtp.retry_base_ms` doubled per attempt, or failed after
//! `smtp.max_attempts` (at once on a permanent 5xx refusal). A node that dies mid-attempt
//! leaves its lease to lapse, and the message is claimed again.
use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::model::{MailJob, MailState};

/// Messages claimed per store round trip: one, so no claimed message waits behind another's
/// SMTP latency while its lease runs.
const CLAIM: usize = 1;
/// Sent and failed messages are kept this long for the admin's view, then trimmed.
const RETENTION_SECS: i64 = 30 * 24 * 3600;
const TRIM_EVERY: Duration = Duration::from_secs(3600);
/// The longest error text kept for the admin view.
const ERROR_CHARS: usize = 300;

/// Woken when this process queues a message, so it goes out at once (the worker also polls:
/// other nodes' messages and retries come due without a wake-up).
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

pub fn wake() {
    WAKE.notify_waiters();
}

/// Starts the worker for `state` (which must have SMTP configured).
pub fn spawn(state: Arc<AppState>) {
    let Some(smtp) = state.config.smtp.clone() else { return };
    let host = url::Url::parse(&state.public_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(|c| c == '[' || c == ']').to_string()))
        .unwrap_or_else(|| "localhost".into());
    let attempt_bound = Duration::from_secs(smtp.timeout_secs.saturating_mul(3));
    // Past the attempt's own bound, so a live worker never loses a lease it is using.
    let lease_ms = i64::try_from(attempt_bound.as_millis().saturating_mul(2)).unwrap_or(i64::MAX);
    let poll = Duration::from_millis(smtp.retry_base_ms.clamp(20, 2000) / 2);
    tokio::spawn(async move {
        let mut trimmed_at: Option<tokio::time::Instant> = None;
        loop {
            let notified = WAKE.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = match state.store.claim_mail(state.clock.now_ms(), lease_ms, CLAIM).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "mail queue not readable; trying again");
                    Vec::new()
                }
            };
            let busy = !claimed.is_empty();
            // The attempt is counted durably before it starts, so a crash cannot hide it.
            if busy && let Err(e) = state.store.flush().await {
                tracing::warn!(error = %e, "mail claim not flushed");
            }
            for job in claimed {
                attempt(&state, &smtp, &host, attempt_bound, job).await;
            }
            if trimmed_at.is_none_or(|t| t.elapsed() >= TRIM_EVERY) {
                trimmed_at = Some(tokio::time::Instant::now());
                if let Err(e) = state.store.trim_mail(state.now() - RETENTION_SECS).await {
                    tracing::warn!(error = %e, "old mail not trimmed");
                }
            }
            if !busy {
                tokio::select! {
                    () = &mut notified => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    });
}

async fn attempt(state: &AppState, smtp: &crate::config::Smtp, host: &str, bound: Duration, job: MailJob) {
    let Some(lease) = job.lease else { return };
    let bodies = (job.sealed_text.as_deref().and_then(|t| state.seal.open(t)))
        .zip(job.sealed_html.as_deref().and_then(|h| state.seal.open(h)));
    let outcome = match &bodies {
        None => Err(super::smtp::Failure { permanent: true, message: "the message body cannot be read".into() }),
        Some((text, html)) => match super::smtp::message(smtp, host, &job, text, html) {
            Err(e) => Err(e),
            Ok(email) => {
                tokio::time::timeout(bound, super::smtp::deliver(smtp, host, email)).await.unwrap_or_else(|_| {
                    Err(super::smtp::Failure {
                        permanent: false,
                        message: "the SMTP server did not answer in time".into(),
                    })
                })
            }
        },
    };
    let now_ms = state.clock.now_ms();
    let next = match outcome {
        Ok(()) => job.sent(now_ms),
        Err(f) => {
            let text = bodies.as_ref().map(|(t, _)| t.as_str()).unwrap_or_default();
            let error = shown_error(&f.message, text);
            job.failed_attempt(
                now_ms,
                &error,
                f.permanent,
                i64::try_from(smtp.retry_base_ms).unwrap_or(i64::MAX),
                smtp.max_attempts,
            )
        }
    };
    // Durable before the next claim: a crash right after a delivery must not send it again.
    let finished = match state.store.finish_mail(&lease, &next).await {
        Ok(true) => state.store.flush().await.map(|()| true),
        other => other,
    };
    match finished {
        Ok(true) => match next.state {
            MailState::Sent => {
                tracing::info!(id = %job.id, kind = job.kind.as_str(), attempts = next.attempts, "mail sent")
            }
            state => tracing::warn!(
                id = %job.id,
                kind = job.kind.as_str(),
                attempts = next.attempts,
                state = state.as_str(),
                error = next.last_error.as_deref().unwrap_or_default(),
                "mail not delivered"
            ),
        },
        Ok(false) => tracing::warn!(id = %job.id, "mail attempt outlived its lease; another worker has the message"),
        Err(e) => tracing::warn!(id = %job.id, error = %e, "mail outcome not stored; the message is tried again"),
    }
}

/// The error as the admin sees it: one line, bounded, and without any long word of the
/// message's own body (an SMTP server that quotes the message back cannot make the admin
/// view show the link or the code).
fn shown_error(error: &str, body: &str) -> String {
    let mut shown: String = error.chars().map(|c| if c.is_control() { ' ' } else { c }).take(ERROR_CHARS).collect();
    for word in body.split_whitespace().map(|w| w.trim_end_matches('.')).filter(|w| w.len() >= 6) {
        shown = shown.replace(word, "[redacted]");
    }
    shown
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_error_that_quotes_the_body_loses_the_secret() {
        let body = "Your code is 12345678.\n\nAccept: https://id.example/redeem?ticket=abcdef";
        let shown = super::shown_error("550 rejected: 12345678 https://id.example/redeem?ticket=abcdef\r\n", body);
        assert_eq!(shown, "550 rejected: [redacted] [redacted]  ");
    }
}
