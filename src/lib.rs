//! gatehouse: a multi-tenant OpenID Connect identity provider for guest (B2B) collaboration.
//!
//! The layers, top down (docs/architecture.md): `routes` → features (`signin`, `portal`,
//! `admin`, `demo`) → protocol and domain (`oidc`, `directory`, `federation`, `access`,
//! `audit`, `mail`) → the HTTP kit (`web`) → `app` → `keys`, `licensing` → `storage` →
//! `model` → `policy`, `mfa`, `password`, `secrets`, `ratelimit`, `clock`, `config`;
//! `telemetry` (metrics, logs) sits beside the kit, above `storage`.
pub mod access;
pub mod admin;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod directory;
pub mod federation;
pub mod keys;
pub mod licensing;
pub mod mail;
pub mod mfa;
pub mod model;
pub mod oidc;
pub mod password;
pub mod policy;
pub mod portal;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod signin;
pub mod startup;
pub mod storage;
pub mod telemetry;
pub mod web;
