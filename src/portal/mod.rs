//! The tenant's own pages for signed-in people: the admin page and the invite page.
pub mod admin;
mod admin_rows;
pub mod invite;

use actix_web::{HttpRequest, HttpResponse};

use crate::app::AppState;
use crate::model::{Tenant, User};
use crate::web::error::PageError;
use crate::web::params::Params;

/// A portal form's tenant and fields, after the CSRF check (every portal POST starts here).
pub(crate) async fn posted(
    req: &HttpRequest,
    state: &AppState,
    slug: &str,
    body: &actix_web::web::Bytes,
) -> Result<(Tenant, Params), PageError> {
    let tenant = crate::web::tenant(state, slug).await?;
    let f = crate::web::form::body(req, body)?;
    crate::web::csrf::verify(req, state, f.get("csrf"))?;
    Ok((tenant, f))
}

/// The signed-in user of a portal page at `/{tenant}/{page}` who passes `allowed`, or
/// `Ok(Err(answer))` (the sign-in, a step-up, a block) for the browser to follow first, or
/// the page's own refusal from `allowed`.
pub(crate) async fn signed_in(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    page: &str,
    allowed: impl FnOnce(&User) -> Result<(), PageError>,
) -> Result<Result<User, HttpResponse>, PageError> {
    let user = match crate::signin::flow::portal_user(req, state, tenant, &format!("/{}/{page}", tenant.slug)).await? {
        Ok(user) => user,
        Err(answer) => return Ok(Err(answer)),
    };
    allowed(&user)?;
    Ok(Ok(user))
}
