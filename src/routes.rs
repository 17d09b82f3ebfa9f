//! The one route table: every path of the server and the handler that answers it.
use actix_web::web;

/// Routes shared by `serve` and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::demo::{rp as demo, stub_idp as stub};
    use crate::oidc::{discovery, introspect, logout, token, userinfo};
    use crate::portal::{admin, invite};
    use crate::signin::{self, authorize, flow, guest, member, mfa, passkey, passwordless, redeem};
    use crate::web::pages;
    crate::admin::configure(cfg);
    cfg.route("/redeem", web::get().to(redeem::redeem))
        .route("/federation/callback", web::get().to(guest::federation_callback))
        .route("/outbox", web::get().to(demo::outbox))
        .route("/stub/{name}/.well-known/openid-configuration", web::get().to(stub::configuration))
        .route("/stub/{name}/keys", web::get().to(stub::jwks))
        .route("/stub/{name}/authorize", web::get().to(stub::authorize))
        .route("/stub/{name}/login", web::post().to(stub::login))
        .route("/stub/{name}/token", web::post().to(stub::token))
        .route("/", web::get().to(demo::home))
        .route("/healthz", web::get().to(|| async { "ok" }))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/static/style.css", web::get().to(pages::stylesheet))
        .route("/static/passkey.js", web::get().to(pages::passkey_script))
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
        .route("/{tenant}/login/identify", web::post().to(member::identify))
        .route("/{tenant}/login/password", web::post().to(member::password))
        .route("/{tenant}/login/change-password", web::post().to(signin::change_password::change))
        .route("/{tenant}/login/cancel", web::post().to(signin::cancel))
        .route("/{tenant}/login/email-otp", web::post().to(guest::email_otp))
        .route("/{tenant}/login/email-otp/send", web::post().to(guest::email_otp_resend))
        .route("/{tenant}/login/email-otp/resend", web::post().to(guest::email_otp_resend))
        .route("/{tenant}/login/consent", web::post().to(redeem::consent))
        .route("/{tenant}/login/app-consent", web::post().to(flow::app_consent))
        .route("/{tenant}/login/terms", web::post().to(crate::signin::terms::answer))
        .route("/{tenant}/login/totp-enroll", web::post().to(mfa::enroll))
        .route("/{tenant}/login/continue", web::post().to(mfa::proceed))
        .route("/{tenant}/login/totp", web::post().to(mfa::challenge))
        .route("/{tenant}/login/method", web::post().to(passkey::choose))
        .route("/{tenant}/login/passkey-register", web::post().to(passkey::register))
        .route("/{tenant}/login/passkey", web::post().to(passkey::challenge))
        .route("/{tenant}/login/passkey-signin", web::post().to(passwordless::sign_in))
        .route("/{tenant}/invite", web::get().to(invite::show))
        .route("/{tenant}/invite", web::post().to(invite::submit))
        .route("/{tenant}/admin", web::get().to(admin::show))
        .route("/{tenant}/admin/mfa-reset", web::post().to(admin::mfa_reset))
        .route("/{tenant}/admin/policy-state", web::post().to(admin::policy_state));
}

/// The metrics listener's one route (`metrics_bind`, DESIGN §15).
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(crate::telemetry::http::metrics));
}

/// `/health/live`: the process answers (DESIGN §15).
async fn live() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(serde_json::json!({ "status": "UP" }))
}

/// `/health/ready`: 200 `{"status":"UP"}` when the store answers within two seconds, else
/// 503 `{"status":"DOWN","checks":[…]}` (a load balancer takes the node out of rotation until
/// its database is back). The reason is generic: no connection string or error text leaks.
async fn ready(state: web::Data<crate::app::AppState>) -> actix_web::HttpResponse {
    use actix_web::HttpResponse;
    let store = match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            Some("the store does not answer")
        }
        Err(_) => Some("the store does not answer in time"),
    };
    match store {
        None => HttpResponse::Ok().json(serde_json::json!({
            "status": "UP",
            "checks": [{ "name": "store", "status": "UP" }],
        })),
        Some(reason) => HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "status": "DOWN",
            "checks": [{ "name": "store", "status": "DOWN", "reason": reason }],
        })),
    }
}
