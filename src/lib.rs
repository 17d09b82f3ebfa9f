//! gatehouse: a multi-tenant OpenID Connect identity provider for guest (B2B) collaboration.
pub mod cli;
pub mod clock;
pub mod config;
pub mod directory;
pub mod oidc;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod web;
