//! The built-in stub home providers (`social`, Google-like; `msa`, Microsoft-account-like)
//! that federation may send a guest to. Their OpenID Connect endpoints are served by the
//! demo feature (`demo::stub_idp`).
use crate::secrets::{b64url, mac};

pub struct Stub {
    pub name: &'static str,
    pub display_name: &'static str,
    pub domains: &'static [&'static str],
}

pub const STUBS: &[Stub] = &[
    Stub { name: "social", display_name: "Social sign-in (Google-like)", domains: &["gmail.example"] },
    Stub { name: "msa", display_name: "Personal Microsoft account (consumer)", domains: &["outlook.example"] },
];

/// gatehouse is the only client of its stubs.
pub const CLIENT_ID: &str = "gatehouse";

pub fn client_secret(instance_secret: &[u8], stub: &str) -> String {
    b64url(&mac(instance_secret, &[b"stub-client", stub.as_bytes()]))
}
