//! Tenants, users and applications: the directory every sign-in is checked against.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{AppId, TenantId, UserId};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub initial_domain: String,
    pub domains: Vec<String>,
    pub premium_seats: u32,
    pub members_can_invite: bool,
    /// External OpenID Connect providers this tenant federates with, by email domain.
    #[serde(default)]
    pub external_idps: Vec<ExternalIdp>,
    /// Cross-tenant access settings (DESIGN §13): the default and one entry per partner.
    /// Records from before them hold only the partners' inbound trust, as `inbound_trust`.
    #[serde(default, alias = "inbound_trust", deserialize_with = "cross_tenant_or_legacy")]
    pub cross_tenant: crate::policy::CrossTenantPolicy,
    /// Tenant-level MFA for members (like security defaults / per-user MFA for everyone).
    #[serde(default)]
    pub require_mfa: bool,
    /// Custom authentication strengths (Graph `authenticationStrengthPolicies`, `custom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication_strengths: Vec<crate::policy::AuthenticationStrength>,
    /// Security groups with assigned membership (DESIGN §11); members hold the id in `User::member_of`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
    /// Terms of use (Graph `agreement`) that conditional access can require.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agreements: Vec<Agreement>,
}

/// Terms of use a user accepts in the sign-in (Graph `agreement`, DESIGN §12).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Agreement {
    pub id: Uuid,
    pub display_name: String,
    /// The terms, shown as text on the sign-in page (Graph: the default file's data).
    pub text: String,
    /// The file name and language the admin gave the text (Graph `agreementFile`).
    #[serde(default = "default_terms_file")]
    pub file_name: String,
    #[serde(default = "default_terms_language")]
    pub language: String,
    pub is_viewing_before_acceptance_required: bool,
    /// How long an acceptance lasts (ISO 8601 duration as given); `None`: for ever.
    #[serde(default)]
    pub user_reaccept_required_frequency: Option<String>,
    /// The same frequency in seconds.
    #[serde(default)]
    pub reaccept_secs: Option<i64>,
    pub created_at: i64,
}

fn default_terms_file() -> String {
    "terms.txt".into()
}

fn default_terms_language() -> String {
    "en".into()
}

/// A user's acceptance of an agreement (the latest; Graph `agreementAcceptance`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgreementAcceptance {
    pub agreement_id: Uuid,
    pub accepted_at: i64,
}

impl Agreement {
    /// Whether `user` accepted this agreement and need not accept it again at `now`.
    pub fn accepted_by(&self, user: &User, now: i64) -> bool {
        user.agreement_acceptances
            .iter()
            .any(|a| a.agreement_id == self.id && self.reaccept_secs.is_none_or(|secs| now - a.accepted_at < secs))
    }
}

/// A security group (Graph `group`, assigned membership). Members are users only.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub mail_nickname: String,
    pub security_enabled: bool,
    /// RFC 3339.
    pub created_date_time: String,
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
    /// The discovery document it was configured with (empty for records from before §16).
    #[serde(default)]
    pub metadata_url: String,
    /// The scopes asked of it, space separated (always holds `openid`).
    #[serde(default = "default_idp_scope")]
    pub scope: String,
}

pub const DEFAULT_IDP_SCOPE: &str = "openid profile email";

fn default_idp_scope() -> String {
    DEFAULT_IDP_SCOPE.into()
}

/// A partner's inbound trust as records before cross-tenant access settings kept it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct InboundTrust {
    pub tenant_id: Uuid,
    #[serde(default)]
    pub is_mfa_accepted: bool,
    #[serde(default)]
    pub is_compliant_device_accepted: bool,
}

/// Reads `cross_tenant`, or the older `inbound_trust` list into its partners' trust.
fn cross_tenant_or_legacy<'de, D>(d: D) -> Result<crate::policy::CrossTenantPolicy, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use crate::policy::cross_tenant::{InboundTrustSettings, PartnerSettings};
    // The list first: a struct would also accept a JSON array (as a sequence of its fields).
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Legacy(Vec<InboundTrust>),
        Current(crate::policy::CrossTenantPolicy),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Current(p) => p,
        Stored::Legacy(list) => crate::policy::CrossTenantPolicy {
            default: Default::default(),
            partners: list
                .into_iter()
                .map(|t| PartnerSettings {
                    tenant_id: t.tenant_id,
                    inbound_trust: Some(InboundTrustSettings {
                        is_mfa_accepted: t.is_mfa_accepted,
                        is_compliant_device_accepted: t.is_compliant_device_accepted,
                        is_hybrid_azure_ad_joined_device_accepted: false,
                    }),
                    ..Default::default()
                })
                .collect(),
        },
    })
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum ExternalUserState {
    PendingAcceptance,
    Accepted,
}

impl ExternalUserState {
    /// The serde (and Graph) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExternalUserState::PendingAcceptance => "PendingAcceptance",
            ExternalUserState::Accepted => "Accepted",
        }
    }
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

impl UserType {
    /// The serde (and Graph) name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
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
    /// Passkeys (WebAuthn) registered at this tenant (DESIGN §10).
    #[serde(default)]
    pub passkeys: Vec<crate::mfa::passkey::PasskeyMethod>,
    #[serde(default)]
    pub mfa_lockout: crate::mfa::Lockout,
    /// Raised whenever every credential issued before must stop working (account
    /// disabled, redemption reset, sessions revoked); see `access::credential`.
    #[serde(default)]
    pub session_epoch: u64,
    /// Unix time of the last successful interactive sign-in (Graph
    /// `signInActivity/lastSignInDateTime`); `None`: never (or before it was recorded).
    #[serde(default)]
    pub last_sign_in: Option<i64>,
    /// Unix time of the last successful refresh (`lastNonInteractiveSignInDateTime`),
    /// written at most once a minute per user, so it is approximate (as in Entra).
    #[serde(default)]
    pub last_non_interactive_sign_in: Option<i64>,
    /// Ids of the tenant's groups this user is a member of (DESIGN §11).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_of: Vec<Uuid>,
    /// Terms of use accepted, the latest acceptance per agreement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agreement_acceptances: Vec<AgreementAcceptance>,
    /// Graph `passwordProfile.forceChangePasswordNextSignIn`: the next sign-in asks for a
    /// new password right after the current one is verified.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_change_password: bool,
}

impl User {
    /// Whether this user holds a Premium seat (DESIGN §5): a redeemed guest, or a member
    /// who uses MFA.
    pub fn holds_seat(&self) -> bool {
        if self.is_guest() {
            self.external_user_state == Some(ExternalUserState::Accepted)
        } else {
            self.per_user_mfa || self.has_mfa_method()
        }
    }

    /// Whether the user holds a second factor (a TOTP method or a passkey).
    pub fn has_mfa_method(&self) -> bool {
        !self.totp_methods.is_empty() || !self.passkeys.is_empty()
    }

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
    pub tenant_id: TenantId,
    pub client_id: AppId,
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
    /// Graph `groupMembershipClaims`: `SecurityGroup` or `All` puts a `groups` claim (group
    /// object ids) in ID and access tokens; `None` (or absent) does not.
    #[serde(default)]
    pub group_membership_claims: Option<String>,
    /// What a Graph registration adds (records from before it read as empty).
    #[serde(default, skip_serializing_if = "Registration::is_empty")]
    pub registration: Registration,
}

/// The parts of an application that Graph `POST/PATCH /applications` manages beyond the
/// redirect URIs' union: which platform each URI was registered for, the password
/// credentials (client secrets with expiry) and who is assigned to the app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Registration {
    /// Of `redirect_uris`, those registered as `spa.redirectUris`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spa_redirect_uris: Vec<String>,
    /// Of `redirect_uris`, those registered as `publicClient.redirectUris` (native apps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_client_redirect_uris: Vec<String>,
    /// Graph `appRoles` as defined (their `value`s are `Application::app_roles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub app_role_definitions: Vec<AppRoleDefinition>,
    /// Client secrets added with `addPassword` (each hashed, with an expiry).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub password_credentials: Vec<PasswordCredential>,
    /// Users assigned to the app (what `assignment_required` checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assignments: Vec<AppAssignment>,
}

impl Registration {
    pub fn is_empty(&self) -> bool {
        *self == Registration::default()
    }
}

/// An app role as Graph defines it (`appRole`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppRoleDefinition {
    pub id: Uuid,
    pub value: String,
    pub display_name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// `User` and/or `Application`.
    pub allowed_member_types: Vec<String>,
    pub is_enabled: bool,
}

/// A client secret (Graph `passwordCredential`): only its SHA-256 is kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PasswordCredential {
    pub key_id: Uuid,
    #[serde(default)]
    pub display_name: Option<String>,
    /// The secret's first three characters (Graph `hint`).
    pub hint: String,
    /// SHA-256 (hex) of the secret.
    pub hash: String,
    pub start: i64,
    /// Unix time after which the secret no longer authenticates.
    pub end: i64,
}

/// A user assigned to an application (Graph `appRoleAssignment`, default access role).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AppAssignment {
    pub id: Uuid,
    pub principal_id: UserId,
    pub app_role_id: Uuid,
    pub created_at: i64,
}

/// What a presented client secret is to an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretCheck {
    Valid,
    /// It is one of the app's secrets, but its `endDateTime` has passed.
    Expired,
    Wrong,
}

impl Application {
    /// Whether tokens for this app carry the `groups` claim (`SecurityGroup` and `All` alike:
    /// every group here is a security group).
    pub fn wants_groups_claim(&self) -> bool {
        self.group_membership_claims
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("SecurityGroup") || v.eq_ignore_ascii_case("All"))
    }

    /// Exact match, except that loopback http redirect URIs match on any port (RFC 8252 §7.3).
    pub fn redirect_uri_registered(&self, candidate: &str) -> bool {
        self.redirect_uris.iter().any(|r| redirect_matches(r, candidate))
    }

    pub fn post_logout_uri_registered(&self, candidate: &str) -> bool {
        self.post_logout_redirect_uris.iter().any(|r| redirect_matches(r, candidate))
    }

    /// Whether `user` is assigned to the app, directly (Graph `appRoleAssignments`).
    pub fn is_assigned(&self, user: &UserId) -> bool {
        self.registration.assignments.iter().any(|a| a.principal_id == *user)
    }

    /// Checks a presented secret against the legacy hashes (no expiry) and every password
    /// credential (valid until its end), all of them so timing does not say which matched.
    pub fn check_secret(&self, secret: &str, now: i64) -> SecretCheck {
        let presented = crate::secrets::digest_hex(secret);
        let eq = |h: &str| crate::secrets::ct_eq(h.as_bytes(), presented.as_bytes());
        let legacy = self.secret_hashes.iter().fold(false, |ok, h| eq(h) | ok);
        let (mut live, mut expired) = (false, false);
        for c in &self.registration.password_credentials {
            let hit = eq(&c.hash);
            live |= hit & (c.start <= now && now < c.end);
            expired |= hit & (now >= c.end);
        }
        match (legacy | live, expired) {
            (true, _) => SecretCheck::Valid,
            (false, true) => SecretCheck::Expired,
            (false, false) => SecretCheck::Wrong,
        }
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

/// The one parser for every email address that comes in: a bare RFC 5321 addr-spec
/// (`local@domain`), lowercased. Display syntax (`Name <a@b>`), quoted local parts,
/// comments, IP literals, non-ASCII and control characters are refused, so what is
/// stored is exactly the mailbox that will receive the mail.
pub fn normalize_email(s: &str) -> Option<String> {
    // Only surrounding spaces are forgiven (form fields); a CR/LF anywhere is refused.
    let s = s.trim_matches(' ');
    if s.is_empty() || s.len() > 254 || !s.is_ascii() {
        return None;
    }
    let (local, domain) = s.split_once('@')?;
    (local_part_ok(local) && domain_ok(domain)).then(|| s.to_ascii_lowercase())
}

/// RFC 5322 dot-atom: atext runs separated by single dots. `#` is left out because
/// guest UPNs use `#EXT#` as their separator.
fn local_part_ok(local: &str) -> bool {
    let atext = |c: char| c.is_ascii_alphanumeric() || "!$%&'*+-/=?^_`{|}~".contains(c);
    local.len() <= 64 && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext))
}

/// A DNS host name of at least two LDH labels whose last label is not numeric.
fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(label_ok)
        && labels.last().is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

/// Longest display name (users, invitations, policies, named locations, devices).
pub const DISPLAY_NAME_MAX: usize = 256;
/// Longest personal message in an invitation.
pub const MESSAGE_MAX: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} must be at most {1} characters")]
    TooLong(&'static str, usize),
    #[error("{0} must not contain control characters, line breaks or bidirectional overrides")]
    Control(&'static str),
}

/// True for characters that would forge lines (email bodies, logs, headers) or reorder
/// what a person reads: C0/C1 controls, DEL, Unicode line/paragraph separators and the
/// bidirectional embedding, override and isolate controls.
pub fn forbidden_in_text(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks a display string the admin API is about to store: trimmed, 1 to `max`
/// characters, nothing from [`forbidden_in_text`]. Returns the trimmed text.
pub fn display_text(field: &'static str, s: &str, max: usize) -> Result<String, TextError> {
    if s.chars().any(forbidden_in_text) {
        return Err(TextError::Control(field));
    }
    let t = s.trim();
    if t.is_empty() {
        return Err(TextError::Empty(field));
    }
    if t.chars().count() > max {
        return Err(TextError::TooLong(field, max));
    }
    Ok(t.to_string())
}

/// A browser registered in a tenant by its device cookie (DESIGN §1 "Device").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub display_name: String,
    pub is_managed: bool,
    pub is_compliant: bool,
    #[serde(default)]
    pub trust_type: Option<String>,
    pub registered_owner: Option<UserId>,
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_serde_name() {
        for t in [UserType::Member, UserType::Guest] {
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        for s in [ExternalUserState::PendingAcceptance, ExternalUserState::Accepted] {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
    }

    #[test]
    fn tenants_written_before_cross_tenant_settings_keep_their_inbound_trust() {
        let partner = uuid::Uuid::from_u128(7);
        let base = serde_json::json!({
            "id": uuid::Uuid::from_u128(1), "slug": "f", "display_name": "F", "initial_domain": "f.example",
            "domains": [], "premium_seats": 1, "members_can_invite": true,
        });
        let mut old = base.clone();
        old["inbound_trust"] =
            serde_json::json!([{"tenantId": partner, "isMfaAccepted": true, "isCompliantDeviceAccepted": false}]);
        let t: Tenant = serde_json::from_value(old).unwrap();
        let trust = t.cross_tenant.trust_for(partner);
        assert!(trust.is_mfa_accepted && !trust.is_compliant_device_accepted);
        let none: Tenant = serde_json::from_value(base).unwrap();
        assert_eq!(none.cross_tenant, Default::default());
        // Written again, the record keeps the new shape and reads back the same.
        let again: Tenant = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
        assert_eq!(again, t);
    }

    fn app(uris: &[&str]) -> Application {
        Application {
            tenant_id: TenantId::default(),
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
            group_membership_claims: None,
            registration: Default::default(),
        }
    }

    #[test]
    fn secrets_authenticate_until_their_end_and_legacy_hashes_always() {
        let mut a = app(&[]);
        a.secret_hashes = vec![crate::secrets::digest_hex("legacy")];
        a.registration.password_credentials.push(PasswordCredential {
            key_id: Uuid::from_u128(1),
            display_name: None,
            hint: "new".into(),
            hash: crate::secrets::digest_hex("new-secret"),
            start: 100,
            end: 200,
        });
        assert_eq!(a.check_secret("legacy", 10_000), SecretCheck::Valid);
        assert_eq!(a.check_secret("new-secret", 150), SecretCheck::Valid);
        assert_eq!(a.check_secret("new-secret", 200), SecretCheck::Expired);
        assert_eq!(a.check_secret("new-secret", 99), SecretCheck::Wrong);
        assert_eq!(a.check_secret("other", 150), SecretCheck::Wrong);
        // A record from before registrations reads back with none.
        let mut old = serde_json::to_value(&a).unwrap();
        old.as_object_mut().unwrap().remove("registration");
        let back: Application = serde_json::from_value(old).unwrap();
        assert!(back.registration.is_empty() && back.secret_hashes == a.secret_hashes);
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
        assert_eq!(normalize_email("o'brien+b2b@sub.contoso.example"), Some("o'brien+b2b@sub.contoso.example".into()));
        assert_eq!(normalize_email("a.b-c@xn--bcher-kva.example"), Some("a.b-c@xn--bcher-kva.example".into()));
    }

    #[test]
    fn only_a_bare_addr_spec_is_an_email_address() {
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "a b@c.example",
            "a@b@c.example",
            "@c.example",
            "a@",
            "<sally@contoso.example>",
            "x<iw@fabrikam.example>",
            "Sally <sally@contoso.example>",
            "\"sally\"@contoso.example",
            "sally@contoso.example (Sally)",
            "<svg/onload=alert(3)>@x.example",
            "a\"onmouseover=x@x.example",
            "new@northwind.example\r\nBcc: all@evil.example",
            "new@northwind.example\n",
            "\tnew@northwind.example",
            "a..b@c.example",
            ".a@c.example",
            "a.@c.example",
            "a#EXT#@c.example",
            "a@-c.example",
            "a@c-.example",
            "a@c..example",
            "a@.c.example",
            "a@c.example.",
            "a@[127.0.0.1]",
            "a@127.0.0.1",
            "a@c_d.example",
            "s\u{e4}lly@contoso.example",
            "sally@b\u{fc}cher.example",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
        assert_eq!(normalize_email(&format!("{}@c.example", "a".repeat(65))), None);
        assert_eq!(normalize_email(&format!("a@{}.example", "b".repeat(64))), None);
        assert!(normalize_email(&format!("{}@c.example", "a".repeat(64))).is_some());
    }

    #[test]
    fn display_text_refuses_what_forges_lines_or_reorders_text() {
        assert_eq!(display_text("displayName", "  Sally Contoso ", 256), Ok("Sally Contoso".into()));
        // Letters of any script are fine; only controls and explicit direction overrides are not.
        let name = "Zo\u{eb} \u{5e9}\u{5dc}\u{5d5}\u{5dd}";
        assert_eq!(display_text("displayName", name, 256), Ok(name.to_string()));
        for bad in
            ["a\rb", "a\nb", "a\tb", "a\u{0}", "a\u{7f}", "a\u{85}", "a\u{2028}b", "evil\u{202e}moc", "a\u{2066}b"]
        {
            assert_eq!(display_text("displayName", bad, 256), Err(TextError::Control("displayName")), "{bad:?}");
        }
        assert_eq!(display_text("displayName", "   ", 256), Err(TextError::Empty("displayName")));
        assert_eq!(display_text("displayName", &"\u{e9}".repeat(256), 256).map(|s| s.chars().count()), Ok(256));
        assert_eq!(display_text("displayName", &"x".repeat(257), 256), Err(TextError::TooLong("displayName", 256)));
    }
}
