//! What every request may use, built once at start: configuration, the store, keys, the
//! clock, secrets, limiters and caches. Imports no HTTP framework and no feature: features
//! keep their own state (the demo RP's sessions, the stub IdPs) as their own `app_data`.
use crate::clock::SharedClock;
use crate::config::Config;
use crate::keys::KeyRing;
use crate::model::Tenant;
use crate::storage::{Limiter, Store};

/// Everything a handler may use, built once at start.
pub struct AppState {
    pub config: Config,
    /// Base URL without a trailing slash.
    pub public_url: String,
    pub store: Store,
    pub keys: KeyRing,
    pub clock: SharedClock,
    /// Keys CSRF tokens, pairwise subjects and the demo RP's client secrets.
    pub instance_secret: [u8; 32],
    /// Seals TOTP seeds at rest; kept in `{keys_dir}/seal.key`, outside the store.
    pub seal: crate::secrets::SealKey,
    /// An argon2id hash of a random password, verified when the login is unknown.
    pub dummy_hash: String,
    /// Failed passwords per account. These limiters count in the store, so on a shared
    /// database a lockout or a quota holds across every node.
    pub limiter: Limiter,
    /// Failed passwords per client IP: throttles a spraying address for accounts that
    /// already have failures of their own (never an account with none).
    pub ip_limiter: Limiter,
    /// Email one-time codes sent per address and client IP (pacing one requester).
    pub otp_send_limiter: Limiter,
    /// Invitations per inviter and tenant (each one writes a user and may send an email).
    pub invite_limiter: Limiter,
    /// Email one-time codes sent per address from anywhere (the mailbox's cap, larger).
    pub otp_address_limiter: Limiter,
    /// SSO session reuses per session at /authorize.
    pub sso_limiter: Limiter,
    /// The sign-in page's password checks: a bounded queue that sheds load.
    pub passwords: crate::password::Checker,
    /// For federation and the demo RP: no redirects followed.
    pub http: reqwest::Client,
    /// Discovery documents by tenant slug (tenants are never renamed: the slug is immutable).
    pub discovery_cache: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<str>>>,
    /// When a non-interactive sign-in (app, user) was last logged: token sign-ins are
    /// aggregated per minute, as Entra does, so the log does not grow with every token.
    pub token_log_seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn issuer(&self, tenant: &Tenant) -> String {
        self.issuer_of_slug(&tenant.slug)
    }

    /// The issuer of the tenant with this slug: `{public_url}/{slug}/v2.0`.
    pub fn issuer_of_slug(&self, slug: &str) -> String {
        format!("{}/{slug}/v2.0", self.public_url)
    }

    /// The slug named by one of this instance's tenant issuers (the inverse of
    /// [`AppState::issuer_of_slug`]); whether such a tenant exists is the caller's question.
    pub fn slug_of_issuer<'a>(&self, issuer: &'a str) -> Option<&'a str> {
        issuer
            .strip_prefix(self.public_url.as_str())?
            .strip_prefix('/')?
            .strip_suffix("/v2.0")
            .filter(|s| !s.contains('/'))
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}
