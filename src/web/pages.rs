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

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../static/style.css"))
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Shared by the sign-in step pages.
pub struct SignInContext {
    pub tenant_name: String,
    pub tenant_slug: String,
    pub app_name: String,
    pub tx: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "identify.html")]
pub struct IdentifyPage {
    pub ctx: SignInContext,
    pub login: String,
    pub error: Option<String>,
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
