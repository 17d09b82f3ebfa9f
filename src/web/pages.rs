//! One askama struct per page (templates/). The ids and field names are the page
//! contract of DESIGN.md §6.
use actix_web::{HttpResponse, cookie::Cookie};
use askama::Template;

use super::error::PageError;

/// Renders a page with no-store caching and any cookies to set.
pub fn render(page: &impl Template, cookies: Vec<Cookie<'static>>) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(PageError::internal)?;
    let mut resp = HttpResponse::Ok();
    resp.content_type("text/html; charset=utf-8").insert_header(("Cache-Control", "no-store"));
    for c in cookies {
        resp.cookie(c);
    }
    Ok(resp.body(body))
}

pub fn render_status(status: actix_web::http::StatusCode, page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(PageError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/style.css"))
}

/// Shared by the sign-in step pages.
pub struct SignInContext {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub app_name: String,
    pub tx: String,
    pub csrf: String,
    /// Why the MFA step offers only some methods (an authentication strength), in one sentence.
    pub strength_note: Option<String>,
}

#[derive(Template)]
#[template(path = "identify.html")]
pub struct IdentifyPage {
    pub ctx: SignInContext,
    pub login: String,
    pub error: Option<String>,
    /// The passwordless ceremony's options (JSON safe in a script block), when passkeys
    /// are possible here.
    pub passwordless: Option<String>,
}

#[derive(Template)]
#[template(path = "password.html")]
pub struct PasswordPage {
    pub ctx: SignInContext,
    pub login: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "form_post.html")]
pub struct FormPostPage {
    pub action: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub tenant_name: String,
    pub action: String,
    pub csrf: String,
    pub fields: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage {
    pub tenant_name: String,
}

pub struct DemoUserRow {
    pub tenant: String,
    pub login: String,
    pub password: String,
}

pub struct DemoAppRow {
    pub name: String,
    pub path: String,
    pub note: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub demo: bool,
    pub users: Vec<DemoUserRow>,
    pub apps: Vec<DemoAppRow>,
    pub tenants: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "demo_app.html")]
pub struct DemoAppPage {
    pub app_name: String,
    pub app_slug: String,
    pub tenant_name: String,
    pub claims: Vec<(String, String)>,
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "stub_login.html")]
pub struct StubLoginPage {
    pub provider: String,
    pub action: String,
    pub req: String,
    pub login: String,
    pub csrf: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "email_otp.html")]
pub struct EmailOtpPage {
    pub ctx: SignInContext,
    pub email: String,
    /// Whether a code was sent: before, the page offers only "Send code".
    pub sent: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub ctx: SignInContext,
    pub name: String,
    pub email: String,
    pub home: String,
}

#[derive(Template)]
#[template(path = "app_consent.html")]
pub struct AppConsentPage {
    pub ctx: SignInContext,
    /// One line per scope value asked for.
    pub shares: Vec<String>,
}

#[derive(Template)]
#[template(path = "terms.html")]
pub struct TermsPage {
    pub ctx: SignInContext,
    pub agreements: Vec<TermsView>,
}

/// One agreement on the terms page: its text split into paragraphs at blank lines.
pub struct TermsView {
    pub id: String,
    pub name: String,
    pub paragraphs: Vec<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub id: String,
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

#[derive(Template)]
#[template(path = "invite.html")]
pub struct InvitePage {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub member: String,
    pub apps: Vec<(String, String)>,
    pub csrf: String,
    pub email: String,
    pub display_name: String,
    pub message: String,
    pub error: Option<String>,
    pub redeem_link: Option<String>,
}

pub struct OutboxRow {
    pub to: String,
    pub subject: String,
    pub body: String,
    pub redeem_url: Option<String>,
    pub otp: Option<String>,
    pub sent: String,
}

#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub messages: Vec<OutboxRow>,
}

#[derive(Template)]
#[template(path = "totp_enroll.html")]
pub struct TotpEnrollPage {
    pub ctx: SignInContext,
    pub secret: String,
    pub qr: String,
    pub uri: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub struct RecoveryCodesPage {
    pub ctx: SignInContext,
    pub codes: Vec<String>,
}

#[derive(Template)]
#[template(path = "totp_challenge.html")]
pub struct TotpChallengePage {
    pub ctx: SignInContext,
    pub error: Option<String>,
}

/// Which second factor: at proof-up (`proof_up`) the ones to set up, else the ones held.
#[derive(Template)]
#[template(path = "method_choice.html")]
pub struct MethodChoicePage {
    pub ctx: SignInContext,
    pub proof_up: bool,
    pub error: Option<String>,
    /// The methods offered (an authentication strength may allow only one).
    pub totp: bool,
    pub passkey: bool,
}

/// `form#passkey-register` (`challenge: false`) or `form#passkey-challenge`; `options` is
/// the ceremony's JSON, already safe inside a `<script type="application/json">` block.
#[derive(Template)]
#[template(path = "passkey.html")]
pub struct PasskeyPage {
    pub ctx: SignInContext,
    pub challenge: bool,
    pub options: String,
    pub error: Option<String>,
}

pub async fn passkey_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(PASSKEY_SCRIPT)
}

/// `static/passkey.js`, the one script the passkey pages may run (see `csp::passkey_page`).
pub const PASSKEY_SCRIPT: &str = include_str!("../../static/passkey.js");

/// JSON to place inside a `<script type="application/json">` block: `<`, `>` and `&` only
/// occur inside JSON strings, where their `\u` escapes mean the same.
pub fn json_in_script(json: &str) -> String {
    json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

pub struct AdminGuestRow {
    pub id: String,
    pub upn: String,
    pub state: String,
    pub home: String,
    pub methods: String,
    pub has_methods: bool,
    /// The later of the last interactive and non-interactive sign-in (RFC 3339); `None`: never.
    pub last_sign_in: Option<String>,
}

/// A group on the admin page: its name, how many members, and their UPNs.
pub struct AdminGroupRow {
    pub id: String,
    pub name: String,
    pub count: usize,
    pub members: String,
}

pub struct AdminPolicyRow {
    pub id: String,
    pub name: String,
    pub state: String,
}

/// An external identity provider on the admin page (read only).
pub struct AdminIdpRow {
    pub name: String,
    pub issuer: String,
    pub domains: String,
}

/// Terms of use on the admin page: how often they are asked again and by how many accepted.
pub struct AdminAgreementRow {
    pub id: String,
    pub name: String,
    pub reaccept: String,
    pub accepted: usize,
}

/// Cross-tenant access settings on the admin page, in words.
pub struct AdminPartnerRow {
    pub name: String,
    pub tenant_id: String,
    pub inbound: String,
    pub outbound: String,
    pub trust: String,
}

pub struct AdminSignInRow {
    pub time: String,
    pub user: String,
    pub app: String,
    pub ip: String,
    pub result: String,
    pub amr: String,
    pub why: String,
}

/// A message the tenant sent over SMTP, on the admin page (its state, never its body).
pub struct AdminMailRow {
    pub id: String,
    pub created: String,
    pub to: String,
    pub subject: String,
    pub kind: String,
    pub state: String,
    pub attempts: String,
    pub error: String,
    pub next: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub me: String,
    pub csrf: String,
    pub seats_used: u32,
    pub seats: u32,
    pub guests: Vec<AdminGuestRow>,
    pub groups: Vec<AdminGroupRow>,
    pub policies: Vec<AdminPolicyRow>,
    pub sign_ins: Vec<AdminSignInRow>,
    pub identity_providers: Vec<AdminIdpRow>,
    pub agreements: Vec<AdminAgreementRow>,
    pub partners: Vec<AdminPartnerRow>,
    /// Whether mail is delivered over SMTP (else it only goes to the outbox).
    pub smtp: bool,
    pub mail: Vec<AdminMailRow>,
}
