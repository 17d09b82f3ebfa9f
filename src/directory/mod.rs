//! Tenants, users and applications: the directory every sign-in is checked against.
pub mod demo;
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
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum UserType {
    Member,
    Guest,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
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
    loopback(&r)
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
