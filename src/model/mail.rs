//! The mail delivery queue: one record per message handed to SMTP, with its delivery state.
//! The bodies carry the redeem link or the one-time code, so they are kept sealed and only
//! until the message is sent or has failed for good.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::TenantId;

/// What a message is for (the admin view says it; the code and the link are never shown).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MailKind {
    Invitation,
    OneTimeCode,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Invitation => "invitation",
            MailKind::OneTimeCode => "oneTimeCode",
        }
    }
}

/// Where a message is on its way out.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MailState {
    /// Waiting for its first attempt.
    Queued,
    /// A worker (on some node) holds it until `lease_until_ms` and is talking to SMTP.
    Sending,
    /// An attempt failed; the next one is due at `next_attempt_ms`.
    Retrying,
    /// The SMTP server accepted it.
    Sent,
    /// Given up: the attempts are spent, or the server refused it for good.
    Failed,
}

impl MailState {
    pub fn as_str(self) -> &'static str {
        match self {
            MailState::Queued => "queued",
            MailState::Sending => "sending",
            MailState::Retrying => "retrying",
            MailState::Sent => "sent",
            MailState::Failed => "failed",
        }
    }

    /// Sent or failed: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, MailState::Sent | MailState::Failed)
    }
}

/// A mailbox: an address with an optional display name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MailAddress {
    pub name: Option<String>,
    pub address: String,
}

/// One message in the delivery queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MailJob {
    /// Also the left part of its `Message-ID` (the same on every attempt).
    pub id: Uuid,
    /// The order of enqueueing, given by the store (`MailQueueStore::enqueue_mail`).
    #[serde(default)]
    pub seq: u64,
    pub tenant_id: Option<TenantId>,
    pub kind: MailKind,
    pub to: String,
    /// The `From` display name (the tenant's); the address is the configured one.
    pub from_name: Option<String>,
    pub reply_to: Option<MailAddress>,
    pub subject: String,
    /// The plain-text and HTML bodies, sealed (`secrets::SealKey`); `None` once final.
    pub sealed_text: Option<String>,
    pub sealed_html: Option<String>,
    /// When the message was written (its `Date`), Unix seconds.
    pub created_at: i64,
    pub state: MailState,
    /// Attempts started (a claim counts one, so a node that dies mid-send used it up).
    pub attempts: u32,
    pub last_error: Option<String>,
    pub last_attempt_ms: Option<i64>,
    /// When the next attempt is due (queued, retrying).
    pub next_attempt_ms: i64,
    /// The claim of the worker sending it, and until when it holds it (sending).
    pub lease: Option<Uuid>,
    pub lease_until_ms: i64,
    pub sent_ms: Option<i64>,
}

impl MailJob {
    /// When a worker may claim it: its next attempt, or the end of a lease whose holder
    /// stopped answering; `None` when final.
    pub fn due_at_ms(&self) -> Option<i64> {
        match self.state {
            MailState::Queued | MailState::Retrying => Some(self.next_attempt_ms),
            MailState::Sending => Some(self.lease_until_ms),
            MailState::Sent | MailState::Failed => None,
        }
    }

    pub fn is_due(&self, now_ms: i64) -> bool {
        self.due_at_ms().is_some_and(|at| at <= now_ms)
    }

    /// The job as claimed by a worker at `now_ms` for `lease_ms` under the claim `lease`:
    /// one more attempt started.
    pub fn claimed(&self, now_ms: i64, lease_ms: i64, lease: Uuid) -> MailJob {
        MailJob {
            state: MailState::Sending,
            attempts: self.attempts.saturating_add(1),
            last_attempt_ms: Some(now_ms),
            lease: Some(lease),
            lease_until_ms: now_ms.saturating_add(lease_ms),
            ..self.clone()
        }
    }

    /// The job after the SMTP server accepted it: final, the bodies dropped.
    pub fn sent(&self, now_ms: i64) -> MailJob {
        MailJob {
            state: MailState::Sent,
            sent_ms: Some(now_ms),
            last_error: None,
            sealed_text: None,
            sealed_html: None,
            lease: None,
            ..self.clone()
        }
    }

    /// The job after a failed attempt at `now_ms`: retried after `base_ms` doubled per
    /// attempt already made (`base`, `2 × base`, `4 × base` …), or failed for good when the
    /// failure is `permanent` or this was attempt `max_attempts`.
    pub fn failed_attempt(
        &self,
        now_ms: i64,
        error: &str,
        permanent: bool,
        base_ms: i64,
        max_attempts: u32,
    ) -> MailJob {
        let mut next = MailJob { last_error: Some(error.to_string()), lease: None, ..self.clone() };
        if permanent || self.attempts >= max_attempts {
            next.state = MailState::Failed;
            next.sealed_text = None;
            next.sealed_html = None;
        } else {
            let doublings = self.attempts.saturating_sub(1).min(30);
            next.state = MailState::Retrying;
            next.next_attempt_ms = now_ms.saturating_add(base_ms.max(1).saturating_mul(1i64 << doublings));
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> MailJob {
        MailJob {
            id: Uuid::nil(),
            seq: 0,
            tenant_id: None,
            kind: MailKind::Invitation,
            to: "pat@northwind.example".into(),
            from_name: None,
            reply_to: None,
            subject: "s".into(),
            sealed_text: Some("t".into()),
            sealed_html: Some("h".into()),
            created_at: 0,
            state: MailState::Queued,
            attempts: 0,
            last_error: None,
            last_attempt_ms: None,
            next_attempt_ms: 0,
            lease: None,
            lease_until_ms: 0,
            sent_ms: None,
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_and_fails_after_the_last_attempt() {
        let mut j = job();
        let mut waits = Vec::new();
        for _ in 0..8 {
            j = j.claimed(1000, 500, Uuid::nil()).failed_attempt(1000, "down", false, 60_000, 8);
            waits.push(j.next_attempt_ms - 1000);
        }
        assert_eq!(j.state, MailState::Failed);
        assert_eq!(j.attempts, 8);
        assert_eq!(j.sealed_text, None, "a failed message keeps no body");
        assert_eq!(&waits[..7], &[60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000, 3_840_000]);
    }

    #[test]
    fn a_permanent_refusal_fails_at_once_and_a_lease_ends() {
        let claimed = job().claimed(1000, 500, Uuid::nil());
        assert!(!claimed.is_due(1499) && claimed.is_due(1500), "a lapsed lease may be claimed again");
        let failed = claimed.failed_attempt(1000, "550 no such user", true, 60_000, 8);
        assert_eq!((failed.state, failed.due_at_ms()), (MailState::Failed, None));
    }
}
