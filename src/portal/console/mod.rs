//! The admin console under `/{tenant}/admin/…`: one module per page, each with its own
//! askama struct, all sharing [`Nav`] (the `nav#admin-nav` bar of `templates/admin_base.html`)
//! and the [`admin_user`] gate.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::admin::ROLE_GLOBAL_ADMIN;
use crate::app::AppState;
use crate::model::{Tenant, User};
use crate::web::csrf;
use crate::web::error::PageError;

/// The console's routes: each page module adds its own `configure` here (one line each).
pub fn configure(_cfg: &mut web::ServiceConfig) {}

/// The signed-in Global Administrator of `tenant` for the console page at
/// `/{tenant}/{page}` (e.g. `admin/users`), `Ok(Err(answer))` for the browser to follow first
/// (sign-in, step-up, block), or a 403 page for anyone else.
pub(crate) async fn admin_user(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    page: &str,
) -> Result<Result<User, HttpResponse>, PageError> {
    super::signed_in(req, state, tenant, page, |user| {
        if user.roles.iter().any(|r| r == ROLE_GLOBAL_ADMIN) {
            actix_web::HttpMessage::extensions_mut(req).insert(crate::telemetry::http::Actor(user.id.to_string()));
            return Ok(());
        }
        Err(PageError::new(
            StatusCode::FORBIDDEN,
            "admin_only",
            "Only administrators of this tenant can see this page.",
        ))
    })
    .await
}

/// The console's navigation bar and what every console page needs: which tenant, who is
/// signed in, the CSRF token for its forms, and which entry is the current page.
pub struct Nav {
    pub tenant_slug: String,
    pub tenant_name: String,
    pub me: String,
    pub csrf: String,
    /// One of [`Nav::ENTRIES`]' keys: marked `aria-current="page"`.
    pub current: &'static str,
}

impl Nav {
    /// The entries of `nav#admin-nav`: key, path below `/{tenant}/`, label.
    pub const ENTRIES: &'static [(&'static str, &'static str, &'static str)] = &[
        ("overview", "admin", "Overview"),
        ("users", "admin/users", "Users"),
        ("invitations", "admin/invitations", "Invitations"),
        ("policies", "admin/policies", "Conditional access"),
        ("whatif", "admin/whatif", "What If"),
        ("locations", "admin/locations", "Named locations"),
        ("partners", "admin/partners", "Partners"),
        ("devices", "admin/devices", "Devices"),
        ("licences", "admin/licences", "Licences"),
        ("signins", "admin/signins", "Sign-in log"),
    ];

    pub fn entries(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        Self::ENTRIES
    }

    pub fn new(req: &HttpRequest, state: &AppState, tenant: &Tenant, me: &User, current: &'static str) -> Nav {
        let browser = csrf::issued(req, state).unwrap_or_default();
        Nav {
            tenant_slug: tenant.slug.clone(),
            tenant_name: tenant.display_name.clone(),
            me: me.user_principal_name.clone(),
            csrf: csrf::token(state, &browser),
            current,
        }
    }

    /// Where a console POST goes back to: `/{tenant}/{path}` as a 303.
    pub fn back(tenant: &Tenant, path: &str) -> HttpResponse {
        crate::signin::see_other(&format!("/{}/{path}", tenant.slug))
    }
}
