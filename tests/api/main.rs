#![allow(clippy::unwrap_used, clippy::expect_used, clippy::type_complexity)]
//! Black-box tests: the real server on port 0 with a temp data dir, driven over HTTP
//! as a browser or a relying party would.
mod access;
mod admin;
mod admin_methods;
mod architecture;
mod bad_input;
mod bad_input_table;
mod browser;
mod conformance;
mod crash;
mod cross_tenant;
mod directory_paging;
mod guests;
mod helpers;
mod member_flow;
mod multi_node;
mod nodes;
mod non_demo;
mod passkey;
mod passkey_strength;
mod pg_tokens;
mod process;
mod refresh_retry;
mod rp_libraries;
mod sec_admin;
mod sec_bounds;
mod sec_fed;
mod sec_gate;
mod sec_limits;
mod sec_session;
mod storage_contract;
mod storage_copy;
mod storage_counters;
mod storage_nodes;
