//! The OpenID Connect provider's protocol endpoints, per tenant: discovery and keys, token,
//! userinfo, revocation, introspection and logout; the SSO session and the code it issues.
//! The authorization endpoint starts a sign-in and lives with it (`signin::authorize`).
pub mod claims;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod logout;
pub mod session;
pub mod token;
pub mod userinfo;
