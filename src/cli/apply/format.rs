//! The declarative file (`gatehouse apply -f`, `gatehouse export`): TOML, every table
//! closed to unknown keys, objects named by their natural keys (tenant slug, client id,
//! UPN, group and location and policy display names) so that applying twice changes nothing.
use serde::{Deserialize, Serialize};

use crate::model::ClientType;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    #[serde(default)]
    pub tenants: Vec<TenantDecl>,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDecl {
    pub slug: String,
    pub display_name: String,
    /// Verified domains; the first is the initial domain (guest UPNs end in it).
    pub domains: Vec<String>,
    #[serde(default)]
    pub premium_seats: u32,
    #[serde(default = "yes")]
    pub members_can_invite: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apps: Vec<AppDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<LocationDecl>,
    /// Conditional access policies in the Graph shape (`displayName`, `state`,
    /// `conditions`, `grantControls`, `sessionControls`), without `id`; users, groups and
    /// named locations are named by UPN, group name and location name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<toml::Table>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppDecl {
    pub client_id: String,
    pub name: String,
    /// `public` (no secret, PKCE) or `confidential`.
    pub client_type: ClientType,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// App roles for client_credentials (e.g. `User.Invite.All`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_roles: Vec<String>,
    /// The environment variable holding the client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A file holding the client secret (trailing newline ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// Refused: a secret is given only by reference.
    #[serde(default, skip_serializing)]
    pub secret: Option<toml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDecl {
    pub upn: String,
    /// Default: the UPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub per_user_mfa: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// Refused: a password is given only by reference.
    #[serde(default, skip_serializing)]
    pub password: Option<toml::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDecl {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// UPNs of the tenant's members (guests' memberships are left as they are).
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationDecl {
    pub name: String,
    pub cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub trusted: bool,
}

/// Parses the file: an unknown key is named by its path with the closest known key.
pub fn parse(text: &str) -> Result<File, String> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.message().to_string();
        let line = inner.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
        match unknown_field(&msg) {
            Some((key, expected)) => {
                let hint = suggest(&key, &expected).map(|s| format!(", did you mean {s}?")).unwrap_or_default();
                format!("{path}: unknown key{hint}{at}")
            }
            None if path == "." || path.is_empty() => format!("{}{at}", msg.trim()),
            None => format!("{path}: {}{at}", msg.trim()),
        }
    })
}

/// `unknown field `x`, expected one of `a`, `b`` → (x, [a, b]).
pub fn unknown_field(msg: &str) -> Option<(String, Vec<String>)> {
    let rest = msg.split("unknown field `").nth(1)?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).map(str::to_string).collect();
    Some((key.to_string(), expected))
}

/// The known key closest to `key` by edit distance, when close enough to be a typo.
pub fn suggest(key: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3) || k.starts_with(key) || key.starts_with(k.as_str()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.clone())
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named_by_path_with_a_suggestion() {
        let text = "[[tenants]]\nslug = \"f\"\ndisplay_name = \"F\"\ndomains = [\"f.example\"]\n\
                    [[tenants.apps]]\nclient_id = \"a\"\nname = \"A\"\nclient_type = \"public\"\nredirect_uri = \"x\"\n";
        let err = parse(text).unwrap_err();
        assert!(err.starts_with("tenants[0].apps[0].redirect_uri: unknown key, did you mean redirect_uris?"), "{err}");
    }

    #[test]
    fn suggestion_only_for_near_keys() {
        let known = vec!["slug".to_string(), "display_name".to_string()];
        assert_eq!(suggest("displayname", &known).as_deref(), Some("display_name"));
        assert_eq!(suggest("qqqqqqqqqqqq", &known), None);
    }
}
