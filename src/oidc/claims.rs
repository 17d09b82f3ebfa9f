//! The claims of ID tokens and access tokens, and pairwise subjects.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::app::AppState;
use crate::keys::TokenType;
use crate::model::{Acr, Amr, Authentication};
use crate::model::{Application, SigningAlg, Tenant, User, UserType};
use crate::secrets::{b64url, mac};

/// `sub` is pairwise: stable per user and client, unlinkable across clients.
pub fn pairwise_sub(state: &AppState, tenant: &Tenant, user_id: &crate::model::UserId, client_id: &str) -> String {
    b64url(&mac(&state.instance_secret, &[b"pairwise", tenant.id.as_bytes(), user_id.as_bytes(), client_id.as_bytes()]))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub sid: String,
    pub amr: Vec<Amr>,
    pub acr: Acr,
    pub oid: crate::model::UserId,
    pub tid: crate::model::TenantId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// 0 member, 1 guest (Entra's `acct`).
    pub acct: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idp: Option<String>,
    pub ver: String,
    /// Group object ids, for apps with `groupMembershipClaims` (Entra's `groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Uuid>,
    /// The device of this sign-in, for sibling tenants' inbound trust (B2B client only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_dev: Option<crate::model::HomeDevice>,
}

/// RFC 9068 access token, with Entra's `scp`/`roles`, `tid`, `oid`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub tid: crate::model::TenantId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<crate::model::UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scp: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant (refresh-token family) this token belongs to; revoked with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idtyp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<Amr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<Acr>,
    /// Group object ids, for apps with `groupMembershipClaims` (Entra's `groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Uuid>,
}

pub struct UserTokenInput<'a> {
    pub tenant: &'a Tenant,
    pub app: &'a Application,
    pub user: &'a User,
    pub auth: &'a Authentication,
    pub sid: &'a str,
    pub nonce: Option<&'a str>,
    pub scope: &'a [String],
    pub grant_id: Option<Uuid>,
    /// `xms_dev`: the device state told to a sibling tenant's federation (B2B) client.
    pub device: Option<crate::model::HomeDevice>,
}

/// The `groups` claim: the user's groups that still exist in the tenant, when the app asks
/// for it (`groupMembershipClaims`); otherwise none.
fn groups_claim(i: &UserTokenInput<'_>) -> Vec<Uuid> {
    if !i.app.wants_groups_claim() {
        return Vec::new();
    }
    i.tenant.groups.iter().map(|g| g.id).filter(|id| i.user.member_of.contains(id)).collect()
}

fn has(scope: &[String], s: &str) -> bool {
    scope.iter().any(|x| x == s)
}

pub fn id_token(state: &AppState, i: &UserTokenInput<'_>) -> Result<String, String> {
    let now = state.now();
    let guest = i.user.user_type == UserType::Guest;
    let profile = has(i.scope, "profile");
    let email = has(i.scope, "email");
    let claims = IdTokenClaims {
        iss: state.issuer(i.tenant),
        sub: pairwise_sub(state, i.tenant, &i.user.id, &i.app.client_id),
        aud: i.app.client_id.to_string(),
        exp: now + state.config.tokens.id_token_secs,
        iat: now,
        nbf: now,
        auth_time: i.auth.auth_time,
        nonce: i.nonce.map(String::from),
        sid: i.sid.to_string(),
        amr: i.auth.amr.clone(),
        acr: i.auth.acr,
        oid: i.user.id,
        tid: i.tenant.id,
        name: profile.then(|| i.user.display_name.clone()),
        preferred_username: profile.then(|| i.user.user_principal_name.clone()),
        email: email.then(|| i.user.mail.clone()),
        email_verified: email.then_some(true),
        acct: u8::from(guest),
        upn: guest.then(|| i.user.user_principal_name.clone()),
        idp: i.auth.idp.clone(),
        ver: "2.0".into(),
        groups: groups_claim(i),
        xms_dev: i.device.clone(),
    };
    state.keys.sign(i.app.id_token_signed_response_alg, TokenType::Id, now, &claims)
}

pub fn user_access_token(state: &AppState, i: &UserTokenInput<'_>) -> Result<String, String> {
    let now = state.now();
    // One resource per access token: the admin API when its permissions were granted.
    let aud =
        if i.scope.iter().any(|s| is_graph_scope(s)) { graph_audience(state) } else { i.app.client_id.to_string() };
    let claims = AccessClaims {
        iss: state.issuer(i.tenant),
        sub: pairwise_sub(state, i.tenant, &i.user.id, &i.app.client_id),
        aud,
        exp: now + state.config.tokens.access_token_secs,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: i.app.client_id.to_string(),
        tid: i.tenant.id,
        oid: Some(i.user.id),
        scp: Some(i.scope.join(" ")),
        roles: i.user.roles.clone(),
        sid: Some(i.sid.to_string()),
        gid: i.grant_id,
        idtyp: Some("user".into()),
        auth_time: Some(i.auth.auth_time),
        amr: i.auth.amr.clone(),
        acr: Some(i.auth.acr),
        groups: groups_claim(i),
    };
    state.keys.sign(SigningAlg::ES256, TokenType::Access, now, &claims)
}

/// Delegated permissions of gatehouse's admin API (Graph's names). A client asks for them
/// in `scope`, bare or prefixed with the API's audience (`{public_url}/graph/User.Read.All`);
/// the access token is then for the admin API (`aud` = [`graph_audience`]).
pub const GRAPH_SCOPES: &[&str] = &[
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "User.Read.All",
    "User.Invite.All",
    "AuditLog.Read.All",
    "Policy.Read.All",
    "Policy.ReadWrite.ConditionalAccess",
];

/// A requested scope value in its granted spelling: the admin API's prefix is dropped.
pub fn scope_name<'s>(state: &AppState, requested: &'s str) -> &'s str {
    let graph = graph_audience(state);
    requested.strip_prefix(graph.as_str()).and_then(|r| r.strip_prefix('/')).unwrap_or(requested)
}

pub fn is_graph_scope(s: &str) -> bool {
    GRAPH_SCOPES.contains(&s)
}

/// The audience of tokens for gatehouse's own admin API.
pub fn graph_audience(state: &AppState) -> String {
    format!("{}/graph", state.public_url)
}

pub fn app_access_token(state: &AppState, tenant: &Tenant, app: &Application) -> Result<String, String> {
    let now = state.now();
    let claims = AccessClaims {
        iss: state.issuer(tenant),
        sub: app.client_id.to_string(),
        aud: graph_audience(state),
        exp: now + state.config.tokens.access_token_secs,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: app.client_id.to_string(),
        tid: tenant.id,
        oid: None,
        scp: None,
        roles: app.app_roles.clone(),
        sid: None,
        gid: None,
        idtyp: Some("app".into()),
        auth_time: None,
        amr: vec![],
        acr: None,
        groups: vec![],
    };
    state.keys.sign(SigningAlg::ES256, TokenType::Access, now, &claims)
}
