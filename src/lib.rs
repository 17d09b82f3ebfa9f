//! gatehouse: a multi-tenant OpenID Connect identity provider for guest (B2B) collaboration.
pub mod admin;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod credential;
pub mod directory;
pub mod federation;
pub mod licensing;
pub mod mfa;
pub mod oidc;
pub mod policy;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod web;
