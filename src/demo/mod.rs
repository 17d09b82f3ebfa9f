//! The demo (DESIGN §7): seeded tenants and accounts, the built-in relying party, and the
//! stub home identity providers' endpoints.
pub mod rp;
pub mod seed;
pub mod stub_idp;
