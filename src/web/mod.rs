//! HTTP: shared state, routes, cookies, CSRF, pages.
pub mod access;
pub mod admin;
pub mod csrf;
pub mod demo;
pub mod error;
pub mod invite;
pub mod mail;
pub mod mfa;
pub mod net;
pub mod pages;
pub mod ratelimit;
pub mod redeem;
pub mod signin;
pub mod signin_guest;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, web};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::directory::Tenant;
use crate::oidc::keys::KeyRing;
use crate::storage::Store;
use error::PageError;

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
    /// Failed passwords per account.
    pub limiter: ratelimit::Limiter,
    /// Failed passwords per client IP: throttles a spraying address for accounts that
    /// already have failures of their own (never an account with none).
    pub ip_limiter: ratelimit::Limiter,
    /// Email one-time codes sent per address and client IP (pacing one requester).
    pub otp_send_limiter: ratelimit::Limiter,
    /// Invitations per inviter and tenant (each one writes a user and may send an email).
    pub invite_limiter: ratelimit::Limiter,
    /// Email one-time codes sent per address from anywhere (the mailbox's cap, larger).
    pub otp_address_limiter: ratelimit::Limiter,
    /// SSO session reuses per session at /authorize.
    pub sso_limiter: ratelimit::Limiter,
    /// The sign-in page's password checks: a bounded queue that sheds load.
    pub passwords: crate::directory::password::Checker,
    /// For federation and the demo RP: no redirects followed.
    pub http: reqwest::Client,
    pub demo: demo::DemoRp,
    /// Discovery documents by tenant slug (tenants are never renamed: the slug is immutable).
    pub discovery_cache: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<str>>>,
    /// When a non-interactive sign-in (app, user) was last logged: token sign-ins are
    /// aggregated per minute, as Entra does, so the log does not grow with every token.
    pub token_log_seen: std::sync::Mutex<std::collections::HashMap<String, i64>>,
    pub stubs: crate::federation::stub::StubState,
    /// Home IdPs' discovery documents and JWKS, reused for a few minutes.
    pub home_metadata: crate::federation::MetadataCache,
}

pub type Data = web::Data<AppState>;

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    pub fn issuer(&self, tenant: &Tenant) -> String {
        format!("{}/{}/v2.0", self.public_url, tenant.slug)
    }

    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn cookie<'c>(&self, name: &'c str, value: String, path: String, max_age_secs: Option<i64>) -> Cookie<'c> {
        let mut c = Cookie::build(name, value)
            .path(path)
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure_cookies())
            .finish();
        if let Some(age) = max_age_secs {
            c.set_max_age(actix_web::cookie::time::Duration::seconds(age));
        }
        c
    }

    pub fn removal_cookie<'c>(&self, name: &'c str, path: String) -> Cookie<'c> {
        let mut c = self.cookie(name, String::new(), path, Some(0));
        c.make_removal();
        c
    }

    /// The tenant named in the URL, or the "unknown tenant" page.
    pub fn tenant(&self, slug: &str) -> Result<Tenant, PageError> {
        self.store.tenant_by_slug(slug)?.ok_or_else(|| {
            PageError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "unknown_tenant",
                "There is no directory with this name.",
            )
        })
    }
}

pub const RESERVED_SLUGS: &[&str] =
    &["graph", "demo", "stub", "static", "redeem", "outbox", "healthz", "common", "federation"];

/// Reads a cookie value from the request.
pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}

/// Routes shared by `serve` and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::federation::stub;
    use crate::oidc::{authorize, discovery, introspect, logout, token, userinfo};
    crate::admin::configure(cfg);
    cfg.route("/redeem", web::get().to(redeem::redeem))
        .route("/federation/callback", web::get().to(signin::federation_callback))
        .route("/outbox", web::get().to(demo::outbox))
        .route("/stub/{name}/.well-known/openid-configuration", web::get().to(stub::configuration))
        .route("/stub/{name}/keys", web::get().to(stub::jwks))
        .route("/stub/{name}/authorize", web::get().to(stub::authorize))
        .route("/stub/{name}/login", web::post().to(stub::login))
        .route("/stub/{name}/token", web::post().to(stub::token))
        .route("/", web::get().to(demo::home))
        .route("/healthz", web::get().to(|| async { "ok" }))
        .route("/static/style.css", web::get().to(pages::stylesheet))
        .route("/demo/{app}", web::get().to(demo::app_page))
        .route("/demo/{app}/login", web::get().to(demo::login))
        .route("/demo/{app}/callback", web::get().to(demo::callback))
        .route("/demo/{app}/logout", web::post().to(demo::logout))
        .route("/{tenant}/v2.0/.well-known/openid-configuration", web::get().to(discovery::configuration))
        .route("/{tenant}/discovery/v2.0/keys", web::get().to(discovery::jwks))
        .route("/{tenant}/oauth2/v2.0/authorize", web::get().to(authorize::authorize_get))
        .route("/{tenant}/oauth2/v2.0/authorize", web::post().to(authorize::authorize_post))
        .route("/{tenant}/oauth2/v2.0/token", web::post().to(token::token))
        .route("/{tenant}/oidc/userinfo", web::get().to(userinfo::userinfo_get))
        .route("/{tenant}/oidc/userinfo", web::post().to(userinfo::userinfo_post))
        .route("/{tenant}/oauth2/v2.0/revoke", web::post().to(introspect::revoke))
        .route("/{tenant}/oauth2/v2.0/introspect", web::post().to(introspect::introspect))
        .route("/{tenant}/oauth2/v2.0/logout", web::get().to(logout::end_session_get))
        .route("/{tenant}/oauth2/v2.0/logout", web::post().to(logout::end_session_post))
        .route("/{tenant}/login", web::get().to(signin::show))
        .route("/{tenant}/login/identify", web::post().to(signin::identify))
        .route("/{tenant}/login/password", web::post().to(signin::password))
        .route("/{tenant}/login/cancel", web::post().to(signin::cancel))
        .route("/{tenant}/login/email-otp", web::post().to(signin::email_otp))
        .route("/{tenant}/login/email-otp/send", web::post().to(signin::email_otp_resend))
        .route("/{tenant}/login/email-otp/resend", web::post().to(signin::email_otp_resend))
        .route("/{tenant}/login/consent", web::post().to(signin::consent))
        .route("/{tenant}/login/app-consent", web::post().to(signin::app_consent))
        .route("/{tenant}/login/totp-enroll", web::post().to(mfa::enroll))
        .route("/{tenant}/login/continue", web::post().to(mfa::proceed))
        .route("/{tenant}/login/totp", web::post().to(mfa::challenge))
        .route("/{tenant}/invite", web::get().to(invite::show))
        .route("/{tenant}/invite", web::post().to(invite::submit))
        .route("/{tenant}/admin", web::get().to(admin::show))
        .route("/{tenant}/admin/mfa-reset", web::post().to(admin::mfa_reset))
        .route("/{tenant}/admin/policy-state", web::post().to(admin::policy_state));
}
