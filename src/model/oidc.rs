//! Records of the protocol: sign-in transactions, SSO sessions, codes, grants, refresh tokens.
use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{AppId, TenantId, UserId};

/// An authentication method reference (`amr`, RFC 8176): what a sign-in proved. Serialized
/// as its lowercase name, the spelling records and tokens have always carried.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Amr {
    /// A password (RFC 8176 `pwd`).
    Pwd,
    /// Federated: the guest signed in at a home identity provider (Entra's `fed`).
    Fed,
    /// A one-time password: a TOTP code or an emailed code (RFC 8176 `otp`).
    Otp,
    /// Multiple factors (RFC 8176 `mfa`).
    Mfa,
    /// Proof of possession of a hardware-secured key: a passkey (RFC 8176 `hwk`).
    Hwk,
    /// User presence and verification at the authenticator: a PIN or biometric (RFC 8176 `user`).
    User,
}

impl Amr {
    pub const ALL: [Amr; 6] = [Amr::Pwd, Amr::Fed, Amr::Otp, Amr::Mfa, Amr::Hwk, Amr::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Amr::Pwd => "pwd",
            Amr::Fed => "fed",
            Amr::Otp => "otp",
            Amr::Mfa => "mfa",
            Amr::Hwk => "hwk",
            Amr::User => "user",
        }
    }

    /// The method this value names, if gatehouse knows it.
    pub fn parse(value: &str) -> Option<Amr> {
        Amr::ALL.into_iter().find(|a| a.as_str() == value)
    }
}

impl fmt::Display for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authentication context class (`acr`): the level a sign-in reached, `"1"` or `"2"`
/// on the wire (discovery's `acr_values_supported`). `2` is what `acr_values=2` steps up to.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum Acr {
    /// `1`: no second factor proven.
    #[serde(rename = "1")]
    SingleFactor,
    /// `2`: multi-factor authentication proven (`mfa` in `amr`).
    #[serde(rename = "2")]
    MultiFactor,
}

impl Acr {
    pub const ALL: [Acr; 2] = [Acr::SingleFactor, Acr::MultiFactor];

    pub fn as_str(self) -> &'static str {
        match self {
            Acr::SingleFactor => "1",
            Acr::MultiFactor => "2",
        }
    }

    /// The level this value names, if gatehouse supports it.
    pub fn parse(value: &str) -> Option<Acr> {
        Acr::ALL.into_iter().find(|a| a.as_str() == value)
    }

    /// The level of a sign-in that proved `amr`.
    pub fn of(amr: &[Amr]) -> Acr {
        if amr.contains(&Amr::Mfa) { Acr::MultiFactor } else { Acr::SingleFactor }
    }
}

impl fmt::Display for Acr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the relying party asked for at the authorization endpoint, validated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthRequest {
    pub client_id: AppId,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The supported values of `acr_values`, in the order asked, each once.
    pub acr_values: Vec<Acr>,
    /// Digest of this browser's SSO session at the tenant when the request came: the session
    /// a completed re-authentication replaces (one session per browser and tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_session: Option<[u8; 32]>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// Where a guest proves who they are (DESIGN §1, home realm discovery order).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Home {
    /// Another tenant on this instance that verified the email's domain.
    Tenant {
        slug: String,
    },
    /// An external OpenID Connect provider configured on the resource tenant.
    External {
        idp_id: String,
    },
    /// A built-in stub provider (`social`, `msa`).
    Stub {
        name: String,
    },
    EmailOtp,
}

/// The issuer of the identity of a guest who signs in with a code sent by email
/// ([`Home::EmailOtp`]): `Identity.issuer`, and so `Authentication.idp` and the `idp` claim.
/// There is no identity provider, only the mailbox.
pub const EMAIL_OTP_ISSUER: &str = "mail";

/// The steps of a sign-in; a handler only accepts the step the transaction is at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Identify,
    Password,
    /// Sent to the home IdP; waiting for its answer at /federation/callback.
    Federating {
        home: Home,
        state: String,
        nonce: String,
        verifier: String,
        /// The issuer the request went to: the only `iss` its answer may carry (RFC 9207).
        #[serde(default)]
        issuer: String,
        /// The home advertises `authorization_response_iss_parameter_supported`.
        #[serde(default)]
        iss_required: bool,
        /// When the request to the home was built (`auth_time` is checked against it).
        #[serde(default)]
        started_at: i64,
        /// `prompt=login` was forwarded to the home.
        #[serde(default)]
        prompt_login: bool,
        /// `max_age` forwarded to the home (the RP's, or a sign-in frequency).
        #[serde(default)]
        max_age: Option<i64>,
    },
    EmailOtp {
        code_hash: String,
        expires_at: i64,
        attempts: u32,
        sends: u32,
        last_sent: i64,
    },
    /// Redemption: the home identity is proven; the guest reviews what is shared.
    Consent {
        identity: crate::model::Identity,
        amr: Vec<Amr>,
        idp: String,
        /// A sibling home's facts (cross-tenant access), carried into the guest's session.
        #[serde(default)]
        home: Option<HomeSignIn>,
    },
    /// Primary authentication is done and MFA is required: first-time TOTP proof-up.
    MfaEnroll {
        auth: Authentication,
        /// The new seed, sealed (`secrets::SealKey`) like the enrolled method's.
        secret_b32: String,
    },
    /// MFA is required and the user holds no method yet: TOTP or a passkey (DESIGN §10).
    MfaChoose {
        auth: Authentication,
    },
    /// Proof-up with a passkey: the registration ceremony, kept server side and spent by
    /// the first answer (a failed one gets a fresh ceremony).
    PasskeyEnroll {
        auth: Authentication,
        /// The `CreationChallengeResponse` for the browser (JSON).
        options: String,
        /// The `PasskeyRegistration` (JSON).
        ceremony: String,
    },
    /// The user holds a passkey and TOTP: which one answers the challenge.
    MfaChallengeChoose {
        auth: Authentication,
    },
    /// The passkey challenge: the authentication ceremony, single use like the registration.
    PasskeyChallenge {
        auth: Authentication,
        /// The `RequestChallengeResponse` for the browser (JSON).
        options: String,
        /// The `PasskeyAuthentication` (JSON).
        ceremony: String,
    },
    /// TOTP enrolled and recovery codes shown once; waiting for "continue".
    MfaEnrolled {
        auth: Authentication,
    },
    /// Primary authentication is done; the user must answer the TOTP challenge.
    MfaChallenge {
        auth: Authentication,
    },
    /// The password was verified and the admin asked for a new one
    /// (`forceChangePasswordNextSignIn`): waiting for it before conditional access.
    ChangePassword {
        auth: Authentication,
    },
    /// Everything is satisfied; the user is asked what the application may have (OIDC Core
    /// §11: `prompt=consent`, or an application that is not first-party by configuration).
    AppConsent {
        auth: Authentication,
    },
    /// Conditional access requires terms of use (DESIGN §12): the agreements to accept.
    Terms {
        auth: Authentication,
        agreements: Vec<String>,
    },
}

/// What the sign-in is for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "purpose", rename_all = "snake_case")]
pub enum Purpose {
    /// A relying party's authorization request.
    Authorize(Box<AuthRequest>),
    /// Redeeming an invitation ticket (its digest).
    Redeem { ticket: [u8; 32] },
    /// gatehouse's own pages (e.g. the invite page): sign in, then return there.
    Portal {
        return_to: String,
        /// The browser's session at the tenant that this sign-in replaces (see AuthRequest).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces_session: Option<[u8; 32]>,
    },
}

/// A sign-in in progress, stored server side and referenced by an opaque id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SignIn {
    pub tenant_id: TenantId,
    /// SHA-256 of the browser cookie this sign-in is bound to.
    pub browser: [u8; 32],
    pub purpose: Purpose,
    pub step: Step,
    pub login: Option<String>,
    pub user_id: Option<UserId>,
    pub expires_at: i64,
    /// The authentication strengths conditional access requires of the MFA step (the
    /// methods offered are the ones that meet them all); empty: any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strengths: Vec<crate::policy::AuthenticationStrength>,
    /// The passwordless passkey ceremony the identify page offers (single use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passwordless: Option<Ceremony>,
    /// Conditional access's `persistentBrowser` for the SSO session this sign-in opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_browser: Option<bool>,
}

/// A WebAuthn ceremony kept with a sign-in: the options the browser got and the state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ceremony {
    pub options: String,
    pub state: String,
}

impl SignIn {
    pub fn client_id(&self) -> Option<&str> {
        match &self.purpose {
            Purpose::Authorize(r) => Some(&r.client_id),
            _ => None,
        }
    }
}

/// What a completed sign-in proved, carried into codes, sessions and refresh tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Authentication {
    pub user_id: UserId,
    pub auth_time: i64,
    pub amr: Vec<Amr>,
    pub acr: Acr,
    /// Home identity provider issuer for guests; `None` for members.
    #[serde(default)]
    pub idp: Option<String>,
    /// The user's `session_epoch` when this sign-in happened: a credential whose epoch is
    /// behind the user's (disabled, redemption reset, sessions revoked) is no longer good.
    #[serde(default)]
    pub epoch: u64,
    /// The registered device this sign-in came from, when known (re-checked on refresh).
    #[serde(default)]
    pub device_id: Option<String>,
    /// A guest whose home is a tenant on this instance: who they are there and their home
    /// device (cross-tenant access settings and inbound trust, re-checked on refresh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<HomeSignIn>,
    /// When the second factor was last proven, if later than `auth_time` (a
    /// `secondaryAuthentication` sign-in frequency asks only it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_time: Option<i64>,
}

/// What a sibling home tenant's ID token says about the guest (DESIGN §13): the home user's
/// object id (`oid`), the home tenant (`tid`) and the device they signed in with (`xms_dev`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct HomeSignIn {
    pub tenant_id: crate::model::TenantId,
    pub user_id: crate::model::UserId,
    #[serde(default)]
    pub device: Option<HomeDevice>,
}

/// The `xms_dev` claim: the home's registered device for that browser and user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HomeDevice {
    #[serde(default)]
    pub is_compliant: bool,
    #[serde(default)]
    pub is_managed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_type: Option<String>,
}

/// An SSO session (cookie per tenant).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Session {
    pub tenant_id: TenantId,
    /// Public session id, the `sid` claim.
    pub sid: String,
    pub auth: Authentication,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuthCode {
    pub tenant_id: TenantId,
    pub client_id: AppId,
    pub redirect_uri: String,
    pub scope: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub sid: String,
    pub auth: Authentication,
    pub expires_at: i64,
    /// The grant this code opens; a replayed code revokes it.
    pub grant_id: Uuid,
    pub used: bool,
}

/// A grant (refresh-token family): what one code exchange issued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Grant {
    pub tenant_id: TenantId,
    pub client_id: AppId,
    pub user_id: UserId,
    /// The user's `session_epoch` at the sign-in behind this grant.
    #[serde(default)]
    pub epoch: u64,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshToken {
    pub tenant_id: TenantId,
    pub client_id: AppId,
    pub grant_id: Uuid,
    pub scope: Vec<String>,
    pub sid: String,
    pub auth: Authentication,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Set when this token was exchanged for a new one; a second use is reuse (but for
    /// one retry within the grace window, `storage::RefreshRules`).
    pub rotated: bool,
    /// When it was rotated (milliseconds since the epoch).
    #[serde(default)]
    pub rotated_at_ms: i64,
    /// The digest of the token it was rotated to: retired if this one comes back as a retry.
    #[serde(default)]
    pub successor: Option<[u8; 32]>,
    /// Whether the one retry was already spent.
    #[serde(default)]
    pub retried: bool,
}

/// What a user agreed to share with one application (scope values), kept so the question is
/// asked again only when the application asks for more.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Consent {
    pub scopes: Vec<String>,
    pub granted_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: crate::model::SigningAlg,
    pub created_at: i64,
    /// Signing starts at this time; the key is published in JWKS from creation.
    pub activates_at: i64,
    /// Set when a successor activates: the key leaves JWKS after this time.
    #[serde(default)]
    pub retires_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_serde_name() {
        for a in Amr::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
            assert_eq!(Amr::parse(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        for a in Acr::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), serde_json::json!(a.as_str()));
            assert_eq!(Acr::parse(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        assert_eq!(Amr::parse("hwk"), Some(Amr::Hwk));
        assert_eq!(Amr::parse("sms"), None);
        assert_eq!(Acr::parse("3"), None);
        assert_eq!(Acr::of(&[Amr::Fed]), Acr::SingleFactor);
        assert_eq!(Acr::of(&[Amr::Pwd, Amr::Otp, Amr::Mfa]), Acr::MultiFactor);
    }
}
