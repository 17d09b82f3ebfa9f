//! Observability (DESIGN §15): the Prometheus recorder and every metric's name and labels,
//! the log subscriber (text or JSON), the per-request middleware (`http.rs`: request id,
//! request metrics, the admin audit line) and the timed store (`store.rs`).
//!
//! Labels are bounded: a tenant slug, a route template, a method, a status, a result or a
//! kind named in this file — never a user, a client-supplied path or an address.
pub mod http;
pub mod store;

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "gatehouse_http_requests_total";
pub const HTTP_DURATION: &str = "gatehouse_http_request_duration_seconds";
pub const SIGNINS: &str = "gatehouse_signins_total";
pub const MFA_PROMPTS: &str = "gatehouse_mfa_prompts_total";
pub const MFA_VERIFICATIONS: &str = "gatehouse_mfa_verifications_total";
pub const CA_DECISIONS: &str = "gatehouse_ca_decisions_total";
pub const TOKEN_GRANTS: &str = "gatehouse_token_grants_total";
pub const REDEMPTIONS: &str = "gatehouse_redemptions_total";
pub const LOCKOUTS: &str = "gatehouse_lockouts_total";
pub const STORE_DURATION: &str = "gatehouse_store_operation_duration_seconds";

/// Seconds: from a cached store read (tens of µs) to a slow argon2 page or a database timeout.
const BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide recorder once (a second server in the same process, as in the
/// tests, shares it) and returns the handle `/metrics` renders.
pub fn recorder() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .map_err(|e| e.to_string())?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| "another metrics recorder is installed".to_string())?;
            describe();
            Ok(handle)
        })
        .clone()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by route template, method and status");
    describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "HTTP request latency, by route template and method");
    describe_counter!(SIGNINS, "Sign-ins (sign-in log entries), by tenant, user kind, mode and result");
    describe_counter!(MFA_PROMPTS, "MFA steps shown, by tenant and step");
    describe_counter!(MFA_VERIFICATIONS, "MFA answers checked, by tenant, method and result");
    describe_counter!(CA_DECISIONS, "Conditional access decisions, by tenant and result");
    describe_counter!(TOKEN_GRANTS, "Token endpoint requests, by tenant, grant type and result");
    describe_counter!(REDEMPTIONS, "Invitation redemptions, by tenant and result");
    describe_counter!(LOCKOUTS, "Lockouts begun, by tenant and kind (password or MFA)");
    describe_histogram!(STORE_DURATION, metrics::Unit::Seconds, "Store operation latency, by operation");
}

/// Installs the log subscriber on stderr (`RUST_LOG` filters, `info` by default). A second
/// call does nothing.
pub fn init_logs(format: crate::config::LogFormat) {
    use crate::config::LogFormat;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}

/// One sign-in log entry: `user_type` member, guest or unknown (no account); `interactive`
/// a browser sign-in, else a token (refresh) sign-in; `result` `success` or the error code.
pub fn signin(tenant: &str, user_type: Option<&str>, interactive: bool, result: Option<&str>) {
    let kind = match user_type {
        Some("Guest") => "guest",
        Some(_) => "member",
        None => "unknown",
    };
    let mode = if interactive { "interactive" } else { "token" };
    let result = bounded(result.unwrap_or("success"));
    counter!(SIGNINS, "tenant" => tenant.to_string(), "kind" => kind, "mode" => mode, "result" => result).increment(1);
}

/// An MFA step a sign-in is sent to: proof-up (`totp_enroll`, `passkey_enroll`,
/// `enroll_choice`) or a challenge (`totp`, `passkey`, `challenge_choice`).
pub fn mfa_prompt(tenant: &str, step: &crate::model::Step) {
    use crate::model::Step;
    let step = match step {
        Step::MfaEnroll { .. } => "totp_enroll",
        Step::MfaChoose { .. } => "enroll_choice",
        Step::PasskeyEnroll { .. } => "passkey_enroll",
        Step::MfaChallenge { .. } => "totp",
        Step::MfaChallengeChoose { .. } => "challenge_choice",
        Step::PasskeyChallenge { .. } => "passkey",
        _ => return,
    };
    counter!(MFA_PROMPTS, "tenant" => tenant.to_string(), "step" => step).increment(1);
}

/// An MFA answer checked: `method` `totp`, `recovery_code` or `passkey`.
pub fn mfa_verification(tenant: &str, method: &'static str, ok: bool) {
    let result = if ok { "success" } else { "failure" };
    counter!(MFA_VERIFICATIONS, "tenant" => tenant.to_string(), "method" => method, "result" => result).increment(1);
}

/// A conditional access decision: `allow`, `mfa`, `block` or `reauthenticate`.
pub fn ca_decision(tenant: &str, result: &'static str) {
    counter!(CA_DECISIONS, "tenant" => tenant.to_string(), "result" => result).increment(1);
}

/// A token request: the grant type (unknown ones as `other`) and `success` or the OAuth error.
pub fn token_grant(tenant: &str, grant_type: &str, error: Option<&str>) {
    let grant = match grant_type {
        "authorization_code" | "refresh_token" | "client_credentials" => grant_type.to_string(),
        _ => "other".to_string(),
    };
    let result = bounded(error.unwrap_or("success"));
    counter!(TOKEN_GRANTS, "tenant" => tenant.to_string(), "grant_type" => grant, "result" => result).increment(1);
}

/// An invitation redemption and its outcome.
pub fn redemption(tenant: &str, outcome: &crate::storage::Redeemed) {
    use crate::storage::Redeemed;
    let result = match outcome {
        Redeemed::Done(_) => "success",
        Redeemed::NoSeat => "no_seat",
        Redeemed::AlreadyRedeemed => "already_redeemed",
        Redeemed::Voided => "voided",
        Redeemed::Unknown => "unknown_ticket",
    };
    counter!(REDEMPTIONS, "tenant" => tenant.to_string(), "result" => result).increment(1);
}

/// A lockout begins (`password` or `mfa`); logged with the account it locks.
pub fn lockout(tenant: &str, kind: &'static str, user: Option<&crate::model::UserId>) {
    counter!(LOCKOUTS, "tenant" => tenant.to_string(), "kind" => kind).increment(1);
    match user {
        Some(user) => tracing::info!(tenant, kind, user = %user, "lockout: account locked"),
        None => tracing::info!(tenant, kind, "lockout: an unknown login locked"),
    }
}

/// Awaits `fut` and records how long it took as `STORE_DURATION{operation}`.
pub async fn timed<T>(operation: &'static str, fut: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let out = fut.await;
    histogram!(STORE_DURATION, "operation" => operation).record(start.elapsed().as_secs_f64());
    out
}

/// A result or error code as a label: codes are the server's own identifiers; anything
/// else (it never should be) becomes `other`, so no free text reaches a label.
fn bounded(code: &str) -> String {
    if !code.is_empty() && code.len() <= 48 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        code.to_string()
    } else {
        "other".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn only_identifier_like_codes_become_labels() {
        assert_eq!(bounded("invalid_grant"), "invalid_grant");
        assert_eq!(bounded("sally@contoso.example"), "other");
        assert_eq!(bounded("10.0.0.1"), "other");
        assert_eq!(bounded(""), "other");
    }
}
