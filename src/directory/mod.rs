//! Tenants, users and applications: the directory every sign-in is checked against.
pub mod demo;
pub mod guests;
pub mod password;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    pub id: Uuid,
    pub slug: String,
    pub display_name: String,
    pub initial_domain: String,
    pub domains: Vec<String>,
    pub premium_seats: u32,
    pub members_can_invite: bool,
    /// External OpenID Connect providers this tenant federates with, by email domain.
    #[serde(default)]
    pub external_idps: Vec<ExternalIdp>,
    /// Cross-tenant inbound trust, per partner tenant id.
    #[serde(default)]
    pub inbound_trust: Vec<InboundTrust>,
    /// Tenant-level MFA for members (like security defaults / per-user MFA for everyone).
    #[serde(default)]
    pub require_mfa: bool,
}

/// A home identity provider configured on a resource tenant (DESIGN §1 case 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExternalIdp {
    pub id: String,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    /// Our credential at the provider; it must be sent, so it cannot be stored hashed.
    pub client_secret: crate::secrets::Secret,
    pub domains: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InboundTrust {
    pub tenant_id: Uuid,
    #[serde(default)]
    pub is_mfa_accepted: bool,
    #[serde(default)]
    pub is_compliant_device_accepted: bool,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ExternalUserState {
    PendingAcceptance,
    Accepted,
}

/// How a guest proves who they are at home (Graph `objectIdentity`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Identity {
    pub sign_in_type: String,
    pub issuer: String,
    pub issuer_assigned_id: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum UserType {
    #[default]
    Member,
    Guest,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub user_type: UserType,
    pub user_principal_name: String,
    pub mail: String,
    pub display_name: String,
    pub account_enabled: bool,
    #[serde(default)]
    pub per_user_mfa: bool,
    /// argon2id PHC string; members only.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Admin-set risk level for members: none, low, medium, high.
    #[serde(default)]
    pub risk_level: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub created_at: i64,
    /// Guests: "Invitation".
    #[serde(default)]
    pub creation_type: Option<String>,
    #[serde(default)]
    pub external_user_state: Option<ExternalUserState>,
    #[serde(default)]
    pub external_user_state_change_date_time: Option<i64>,
    #[serde(default)]
    pub identities: Vec<Identity>,
    /// Software OATH (TOTP) methods and hashed recovery codes enrolled at this tenant.
    #[serde(default)]
    pub totp_methods: Vec<crate::mfa::TotpMethod>,
    #[serde(default)]
    pub recovery_code_hashes: Vec<String>,
    #[serde(default)]
    pub mfa_lockout: crate::mfa::Lockout,
    /// Raised whenever every credential issued before must stop working (account
    /// disabled, redemption reset, sessions revoked); see `access::credential`.
    #[serde(default)]
    pub session_epoch: u64,
}

impl User {
    pub fn is_guest(&self) -> bool {
        self.user_type == UserType::Guest
    }
}

/// `sally@contoso.example` invited by fabrikam → `sally_contoso.example#EXT#@fabrikam.example`.
pub fn guest_upn(mail: &str, initial_domain: &str) -> String {
    format!("{}#EXT#@{initial_domain}", mail.replace('@', "_"))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    Public,
    Confidential,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum SigningAlg {
    #[default]
    ES256,
    RS256,
}

impl SigningAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::ES256 => "ES256",
            SigningAlg::RS256 => "RS256",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Application {
    pub tenant_id: Uuid,
    pub client_id: String,
    pub display_name: String,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub client_type: ClientType,
    /// SHA-256 (hex) of each valid client secret.
    #[serde(default)]
    pub secret_hashes: Vec<String>,
    #[serde(default)]
    pub id_token_signed_response_alg: SigningAlg,
    /// App roles granted to this client for client_credentials (e.g. User.Invite.All).
    #[serde(default)]
    pub app_roles: Vec<String>,
    #[serde(default)]
    pub assignment_required: bool,
    /// Where people start using the app (Entra `web.homePageUrl`); invitations to it end here.
    #[serde(default)]
    pub home_page_url: Option<String>,
    /// First-party by configuration: gets `offline_access` without a consent question (OIDC Core §11).
    #[serde(default)]
    pub first_party: bool,
}

impl Application {
    /// Exact match, except that loopback http redirect URIs match on any port (RFC 8252 §7.3).
    pub fn redirect_uri_registered(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|r| redirect_matches(r, candidate))
    }

    pub fn post_logout_uri_registered(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| redirect_matches(r, candidate))
    }

    pub fn verify_secret(&self, secret: &str) -> bool {
        let presented = crate::secrets::digest_hex(secret);
        // Check every stored hash so timing does not say which one matched.
        self.secret_hashes.iter().fold(false, |ok, h| crate::secrets::ct_eq(h.as_bytes(), presented.as_bytes()) | ok)
    }
}

fn redirect_matches(registered: &str, candidate: &str) -> bool {
    if registered == candidate {
        return true;
    }
    let (Ok(r), Ok(c)) = (url::Url::parse(registered), url::Url::parse(candidate)) else {
        return false;
    };
    let loopback = |u: &url::Url| u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"));
    // Only a candidate already in normal form: `/a/../callback` is not `/callback`.
    c.as_str() == candidate
        && loopback(&r)
        && loopback(&c)
        && r.host_str() == c.host_str()
        && r.path() == c.path()
        && r.query() == c.query()
        && c.fragment().is_none()
        && c.username().is_empty()
        && c.password().is_none()
}

/// Lowercased, trimmed email address with exactly one `@` and non-empty parts.
pub fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim().to_ascii_lowercase();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c == '#' || c.is_control())
        && !domain.contains('@')
        && s.len() <= 254;
    ok.then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(uris: &[&str]) -> Application {
        Application {
            tenant_id: Uuid::nil(),
            client_id: "c".into(),
            display_name: "c".into(),
            redirect_uris: uris.iter().map(|s| s.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            client_type: ClientType::Public,
            secret_hashes: vec![],
            id_token_signed_response_alg: SigningAlg::ES256,
            app_roles: vec![],
            assignment_required: false,
            home_page_url: None,
            first_party: false,
        }
    }

    #[test]
    fn redirect_uris_match_exactly_except_loopback_port() {
        let a = app(&["http://127.0.0.1/callback", "https://rp.example/cb"]);
        assert!(a.redirect_uri_registered("https://rp.example/cb"));
        assert!(!a.redirect_uri_registered("https://rp.example/cb/"));
        assert!(!a.redirect_uri_registered("https://rp.example/cb?x=1"));
        assert!(!a.redirect_uri_registered("https://RP.example:443/cb#"));
        assert!(a.redirect_uri_registered("http://127.0.0.1:53111/callback"));
        assert!(!a.redirect_uri_registered("http://127.0.0.1:53111/callbackx"));
        assert!(!a.redirect_uri_registered("http://localhost:53111/callback"));
        assert!(!a.redirect_uri_registered("http://127.0.0.1.evil.example/callback"));
        assert!(!a.redirect_uri_registered("http://127.0.0.1:9/evil/../callback"));
        assert!(!a.redirect_uri_registered("http://127.0.0.1@evil.example/callback"));
    }

    #[test]
    fn guest_upn_follows_entra() {
        assert_eq!(
            guest_upn("sally@contoso.example", "fabrikam.example"),
            "sally_contoso.example#EXT#@fabrikam.example"
        );
        assert_eq!(
            guest_upn("gsamoogle@gmail.com", "WoodGroveAzureAD.onmicrosoft.com"),
            "gsamoogle_gmail.com#EXT#@WoodGroveAzureAD.onmicrosoft.com"
        );
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(normalize_email(" Sally@Contoso.Example "), Some("sally@contoso.example".into()));
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b"), None);
        assert_eq!(normalize_email("a b@c.example"), None);
        assert_eq!(normalize_email("a@b@c.example"), None);
    }
}
