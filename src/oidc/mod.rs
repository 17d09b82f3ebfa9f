//! The OpenID Connect provider: discovery, keys, authorize, token, userinfo,
//! revocation, introspection and logout, per tenant; `wire` holds their JSON bodies.
pub mod claims;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod logout;
pub mod session;
pub mod token;
pub mod userinfo;
pub mod wire;
