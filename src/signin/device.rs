//! The device cookie: registering this browser as a device of the signed-in user, and
//! recognising it again (DESIGN §1 "Device").
use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use crate::app::AppState;
use crate::model::{Device, Tenant, User};
use crate::secrets::{b64url, ct_eq, mac};
use crate::web::HttpState;
use crate::web::error::PageError;

pub const DEVICE_COOKIE: &str = "gh_dev";
/// The device cookie carries the device id and a MAC over (tenant, id, owner) keyed by the
/// instance secret: only the server can mint one, and it is good only for its owner.
fn device_seal(state: &AppState, tenant: &Tenant, id: &str, owner: &crate::model::UserId) -> String {
    b64url(&mac(&state.instance_secret, &[b"device", tenant.id.as_bytes(), id.as_bytes(), owner.as_bytes()]))
}

/// The registered device of this browser at `tenant` for `user`, registering it on first
/// sight. A cookie the server did not mint, or minted for another user (a copied cookie,
/// a shared browser), is a new, unregistered device of this user.
pub async fn device(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<(Device, Option<Cookie<'static>>), PageError> {
    if let Some(d) = known_device(req, state, tenant, user).await? {
        return Ok((d, None));
    }
    let agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("browser");
    let d = Device {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: agent.chars().take(80).collect(),
        is_managed: false,
        is_compliant: false,
        trust_type: None,
        registered_owner: Some(user.id),
        created_at: state.now(),
    };
    state.store.put_device(&tenant.id, &d).await?;
    let value = format!("{}.{}", d.id, device_seal(state, tenant, &d.id, &user.id));
    let cookie = state.cookie(DEVICE_COOKIE, value, format!("/{}", tenant.slug), Some(400 * 86400));
    Ok((d, Some(cookie)))
}

/// The registered device this browser presents for `user` (a cookie the server minted for
/// this user), without registering one.
pub async fn known_device(
    req: &HttpRequest,
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Option<Device>, crate::storage::StoreError> {
    let Some(value) = crate::web::cookie_value(req, DEVICE_COOKIE) else { return Ok(None) };
    let Some((id, tag)) = value.split_once('.') else { return Ok(None) };
    if !ct_eq(tag.as_bytes(), device_seal(state, tenant, id, &user.id).as_bytes()) {
        return Ok(None);
    }
    Ok(state.store.device(&tenant.id, id).await?.filter(|d| d.registered_owner == Some(user.id)))
}
