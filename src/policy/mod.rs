//! Conditional access (DESIGN.md §4): Graph-shaped policies and named locations, and
//! [`evaluate`], a pure function of one sign-in and the tenant's policies. No I/O and no
//! clock: the caller passes the age of the authentication it wants to reuse.
//!
//! Input is parsed strictly: unknown fields are rejected, and Graph fields gatehouse does not
//! evaluate (roles, platforms, …) are accepted only when empty or null, so a policy
//! never silently means less than the admin wrote.
const ALL: &str = "All";
const NONE: &str = "None";
const GUESTS: &str = "GuestsOrExternalUsers";
const ALL_TRUSTED: &str = "AllTrusted";
const COMPLIANT: &str = "Compliant";
const DOMAIN_JOINED: &str = "DomainJoined";
const SERVER_AD: &str = "ServerAD";
const TRUST_TYPES: [&str; 3] = ["AzureAD", SERVER_AD, "Workplace"];
const ODATA_IP_LOCATION: &str = "#microsoft.graph.ipNamedLocation";
const ODATA_V4_RANGE: &str = "#microsoft.graph.iPv4CidrRange";
const ODATA_V6_RANGE: &str = "#microsoft.graph.iPv6CidrRange";
/// Graph's limit on a device filter rule; also bounds parser work.
const MAX_RULE_LEN: usize = 3072;
/// Bounds parser recursion on hostile input.
const MAX_RULE_DEPTH: usize = 16;

/// Condition names as Graph's `conditionalAccessConditions` flags.
pub mod condition {
    pub const APPLICATION: &str = "application";
    pub const USERS: &str = "users";
    pub const LOCATION: &str = "location";
    pub const SIGN_IN_RISK: &str = "signInRisk";
    pub const USER_RISK: &str = "userRisk";
    pub const DEVICE_STATE: &str = "deviceState";
}

pub mod cross_tenant;
mod decision;
mod device_rule;
mod evaluate;
mod model;
pub mod strength;
#[cfg(test)]
pub(crate) mod testkit;
mod validate;
mod wire;

pub use cross_tenant::CrossTenantPolicy;
pub use decision::*;
use device_rule::*;
pub use evaluate::*;
pub use model::*;
pub use strength::AuthenticationStrength;
pub use validate::*;
