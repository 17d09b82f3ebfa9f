//! The JSON bodies of the admin API in Microsoft Graph's shapes: what the handlers answer
//! and accept, and what the CLI reads back. The field names are Graph's (or gatehouse
//! extensions where marked); a `null` here is a `null` on the wire, an absent field is
//! `skip_serializing_if`.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::InvitationStatus;
use crate::model::{ExternalUserState, UserType};
use crate::policy::{Control, PolicyResult, SignInContext};

/// Conditional access policies and named locations are the policy engine's own types,
/// which already serialize in Graph's shapes (and validate on the way in).
pub use crate::policy::{NamedLocation, Policy};

/// An OData response: `value` with `@odata.context` (when the resource names one) and,
/// when more pages follow, `@odata.nextLink`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OData<V> {
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    pub value: V,
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// A collection: `{"value": [...]}`.
pub type Collection<T> = OData<Vec<T>>;

impl<V> OData<V> {
    /// `{"value": …}` alone.
    pub fn of(value: V) -> Self {
        Self { context: None, value, next_link: None }
    }

    /// `{"@odata.context": …, "value": …}`.
    pub fn in_context(context: impl Into<String>, value: V) -> Self {
        Self { context: Some(context.into()), value, next_link: None }
    }
}

/// Graph's error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// Graph `user`, with gatehouse's extensions at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: crate::model::UserId,
    pub user_principal_name: String,
    pub mail: String,
    pub display_name: String,
    pub user_type: UserType,
    pub account_enabled: bool,
    pub creation_type: Option<String>,
    pub external_user_state: Option<ExternalUserState>,
    pub external_user_state_change_date_time: Option<String>,
    pub identities: Vec<ObjectIdentity>,
    pub created_date_time: String,
    // gatehouse extensions
    pub per_user_mfa_enabled: bool,
    pub risk_level: Option<String>,
    /// The user's methods other than the password (as MSOnline's `StrongAuthenticationMethods`).
    pub strong_authentication_methods: Vec<StrongAuthenticationMethod>,
    /// Only with `$select=signInActivity` (as in Graph, not in the default set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_activity: Option<SignInActivity>,
}

/// Graph `signInActivity`: RFC 3339 UTC times, `null` for never.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SignInActivity {
    pub last_sign_in_date_time: Option<String>,
    pub last_non_interactive_sign_in_date_time: Option<String>,
}

/// Graph `objectIdentity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectIdentity {
    pub sign_in_type: String,
    pub issuer: String,
    pub issuer_assigned_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StrongAuthenticationMethod {
    pub method_type: MethodType,
}

/// The `methodType` of an authentication method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MethodType {
    Password,
    SoftwareOath,
    Fido2,
}

/// Graph `authenticationMethod`, told apart by its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "@odata.type")]
pub enum AuthenticationMethod {
    #[serde(rename = "#microsoft.graph.passwordAuthenticationMethod")]
    Password(PasswordMethod),
    #[serde(rename = "#microsoft.graph.softwareOathAuthenticationMethod")]
    SoftwareOath(SoftwareOathMethod),
    #[serde(rename = "#microsoft.graph.fido2AuthenticationMethod")]
    Fido2(Fido2Method),
}

/// Graph's fixed id of the password method.
pub const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordMethod {
    pub id: String,
    pub method_type: MethodType,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoftwareOathMethod {
    pub id: String,
    /// Never returned (Graph returns `null` too).
    pub secret_key: Option<String>,
    pub created_date_time: String,
    pub method_type: MethodType,
}

/// A passkey (Graph `fido2AuthenticationMethod`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2Method {
    pub id: String,
    pub display_name: String,
    pub aa_guid: String,
    pub created_date_time: String,
    pub method_type: MethodType,
}

impl AuthenticationMethod {
    pub fn password() -> Self {
        Self::Password(PasswordMethod { id: PASSWORD_METHOD_ID.into(), method_type: MethodType::Password })
    }

    pub fn software_oath(id: String, created_date_time: String) -> Self {
        Self::SoftwareOath(SoftwareOathMethod {
            id,
            secret_key: None,
            created_date_time,
            method_type: MethodType::SoftwareOath,
        })
    }

    pub fn fido2(id: String, display_name: String, aa_guid: String, created_date_time: String) -> Self {
        Self::Fido2(Fido2Method { id, display_name, aa_guid, created_date_time, method_type: MethodType::Fido2 })
    }

    pub fn id(&self) -> &str {
        match self {
            Self::Password(m) => &m.id,
            Self::SoftwareOath(m) => &m.id,
            Self::Fido2(m) => &m.id,
        }
    }

    pub fn method_type(&self) -> MethodType {
        match self {
            Self::Password(m) => m.method_type,
            Self::SoftwareOath(m) => m.method_type,
            Self::Fido2(m) => m.method_type,
        }
    }
}

/// `POST /invitations`: Graph `invitation` as sent. The address and redirect URL are
/// required; they are options here so that their absence is answered in Graph's words.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InvitationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_redirect_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_display_name: Option<String>,
    #[serde(default)]
    pub send_invitation_message: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_message_info: Option<MessageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user_type: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_redemption: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_user: Option<InvitedUserRef>,
    /// gatehouse extension: the application the guest is invited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// Graph `invitedUserMessageInfo`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customized_message_body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_language: Option<String>,
    /// Accepted and ignored (no copies are sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cc_recipients: Option<serde_json::Value>,
}

/// The existing user an invitation is for (reset redemption by object id).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitedUserRef {
    pub id: Option<crate::model::UserId>,
}

/// Graph `invitation` as answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    #[serde(rename = "@odata.context")]
    pub context: String,
    pub id: Uuid,
    pub invite_redeem_url: String,
    pub invited_user_display_name: String,
    pub invited_user_email_address: String,
    pub invite_redirect_url: String,
    pub invited_user_type: UserType,
    pub send_invitation_message: bool,
    pub reset_redemption: bool,
    pub status: InvitationStatus,
    pub invited_user: InvitedUser,
    /// gatehouse extension.
    pub app_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvitedUser {
    pub id: crate::model::UserId,
    pub user_principal_name: String,
}

pub use super::applications_wire::{Application, WebApplication};

/// Graph `device`: a browser registered by its device cookie.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub display_name: String,
    pub is_managed: bool,
    pub is_compliant: bool,
    pub trust_type: Option<String>,
    pub registered_owner: Option<crate::model::UserId>,
    pub created_at: i64,
}

/// Graph `signIn`, with gatehouse's extensions (`createdAt`, `idp`, `namedLocations`, `amr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignIn {
    pub id: String,
    pub created_date_time: String,
    pub created_at: i64,
    pub user_id: Option<crate::model::UserId>,
    pub user_principal_name: Option<String>,
    pub user_display_name: Option<String>,
    pub user_type: Option<String>,
    pub app_id: String,
    pub app_display_name: Option<String>,
    pub ip_address: Option<String>,
    pub named_locations: Vec<String>,
    pub device_detail: Option<SignInDevice>,
    pub idp: Option<String>,
    pub is_interactive: bool,
    pub status: SignInStatus,
    pub conditional_access_status: String,
    pub amr: Vec<String>,
    pub applied_conditional_access_policies: Vec<PolicyResult>,
}

/// Graph `deviceDetail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInDevice {
    pub device_id: String,
    pub display_name: String,
    pub is_compliant: bool,
    pub is_managed: bool,
}

/// Graph `signInStatus`, with gatehouse's short `error` code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInStatus {
    /// 0 for success.
    pub error_code: u32,
    pub failure_reason: Option<String>,
    pub error: Option<String>,
}

/// Graph `subscribedSku`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedSku {
    pub id: String,
    pub sku_part_number: String,
    pub capability_status: String,
    pub applies_to: String,
    pub prepaid_units: LicenseUnits,
    pub consumed_units: u32,
}

/// Graph `licenseUnitsDetail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseUnits {
    pub enabled: u32,
    pub suspended: u32,
    pub warning: u32,
}

/// `POST identity/conditionalAccess/evaluate` (What If): the sign-in to evaluate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WhatIfRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    pub app_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<std::net::IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// What the sign-in already proved (e.g. `["pwd"]`, `["fed", "mfa"]`).
    #[serde(default)]
    pub authentication_methods: Vec<String>,
    /// Seconds since the authentication being reused, for sign-in frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_age_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
}

/// What a sign-in would be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhatIfOutcome {
    Allow,
    Mfa,
    Block,
    Reauthenticate,
    /// Only terms of use are left to accept.
    Terms,
}

/// The What If answer: the outcome, the decision behind it and the context evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIfResult {
    pub outcome: WhatIfOutcome,
    pub applied_conditional_access_policies: Vec<PolicyResult>,
    pub matched_named_locations: Vec<String>,
    pub grant_controls_required: Vec<Vec<Control>>,
    pub blocking_policies: Vec<String>,
    pub reauthenticate: bool,
    /// A `secondaryAuthentication` sign-in frequency asks only the second factor again.
    #[serde(default)]
    pub reauthenticate_mfa: bool,
    /// Agreements (ids) the user would be asked to accept.
    #[serde(default)]
    pub terms_of_use_required: Vec<String>,
    /// `persistentBrowser`: `true` always, `false` never (which wins), `null` no policy says.
    #[serde(default)]
    pub persistent_browser: Option<bool>,
    pub context: SignInContext,
}

/// Graph `crossTenantAccessPolicyConfigurationPartner`. A null setting inherits the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Partner {
    pub tenant_id: Uuid,
    pub is_service_provider: bool,
    pub b2b_collaboration_inbound: Option<B2bSetting>,
    pub b2b_collaboration_outbound: Option<B2bSetting>,
    pub inbound_trust: Option<InboundTrust>,
}

/// Graph `crossTenantAccessPolicyConfigurationDefault`: the effective values (Entra's service
/// default where the tenant configured nothing, then `isServiceDefault` is true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrossTenantDefault {
    pub is_service_default: bool,
    pub b2b_collaboration_inbound: B2bSetting,
    pub b2b_collaboration_outbound: B2bSetting,
    pub inbound_trust: InboundTrust,
}

pub use crate::policy::cross_tenant::{B2bSetting, InboundTrustSettings as InboundTrust};

/// `POST` / `PATCH` of a partner, and `PATCH` of the default: absent fields stay as they
/// are; `null` returns a partner's setting to the default (the default's to the service's).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartnerPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_inbound: Option<Option<B2bSetting>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub b2b_collaboration_outbound: Option<Option<B2bSetting>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub inbound_trust: Option<Option<InboundTrustPatch>>,
    /// Read-only in Graph; accepted when false (gatehouse has no service providers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_service_provider: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundTrustPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_mfa_accepted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_compliant_device_accepted: Option<bool>,
    /// Graph's `isHybridAzureADJoinedDeviceAccepted` (the spelling gatehouse answers with);
    /// the camel-case `…AzureAd…` it once expected is still read.
    #[serde(
        default,
        rename = "isHybridAzureADJoinedDeviceAccepted",
        alias = "isHybridAzureAdJoinedDeviceAccepted",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_hybrid_azure_ad_joined_device_accepted: Option<bool>,
}

/// `PATCH users/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_mfa_enabled: Option<bool>,
    /// Members only: none, low, medium, high (admin-set user risk); `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub risk_level: Option<Option<String>>,
    /// Members only: an admin's password reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_profile: Option<PasswordProfile>,
}

/// Graph `passwordProfile` (write-only: never returned).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default)]
    pub force_change_password_next_sign_in: bool,
}

/// `POST users`: a member in one of the tenant's verified domains.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_profile: Option<PasswordProfile>,
    /// Defaults to the UPN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_type: Option<String>,
}

/// A PATCH field that may be absent (`None`), `null` (`Some(None)`: clear it) or a value.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH devices/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevicePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_managed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_compliant: Option<bool>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub trust_type: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Graph `group`: a security group with assigned membership (`groupTypes` empty, not
/// mail-enabled). Listed and in `memberOf` with its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_nickname: String,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    pub group_types: Vec<String>,
    pub created_date_time: String,
}

/// A member in `GET /groups/{id}/members`: the Graph user with its `@odata.type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupMember {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    #[serde(flatten)]
    pub user: User,
}

/// `POST /groups` and `PATCH /groups/{id}`. Only security groups with assigned membership
/// exist here, so `mailEnabled`, `securityEnabled` and `groupTypes` are accepted only with
/// those values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupIn {
    #[serde(default, rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// `null` clears it (PATCH).
    #[serde(default, deserialize_with = "some_or_null", skip_serializing_if = "Option::is_none")]
    pub description: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_types: Option<Vec<String>>,
}

/// A present field (even `null`) is `Some`; an absent one stays `None` (via `default`).
fn some_or_null<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The body of `POST /groups/{id}/members/$ref`: `{"@odata.id": ".../directoryObjects/{id}"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    #[serde(rename = "@odata.id")]
    pub odata_id: String,
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    /// The body reads back into its type and serializes to the same JSON (what the CLI relies on).
    fn round_trip<T: Serialize + DeserializeOwned>(v: Value) {
        let typed: T = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), v);
    }

    #[test]
    fn collections_carry_context_and_next_link_only_when_set() {
        assert_eq!(serde_json::to_value(OData::of(vec![1])).unwrap(), json!({"value": [1]}));
        let mut page = OData::in_context("#users", vec![1]);
        assert_eq!(serde_json::to_value(&page).unwrap(), json!({"@odata.context": "#users", "value": [1]}));
        page.next_link = Some("n".into());
        let v = json!({"@odata.context": "#users", "value": [1], "@odata.nextLink": "n"});
        assert_eq!(serde_json::to_value(&page).unwrap(), v);
        round_trip::<Collection<u8>>(v);
        round_trip::<OData<bool>>(json!({"@odata.context": "c", "value": true}));
    }

    #[test]
    fn methods_are_told_apart_by_their_odata_type() {
        let m: Vec<AuthenticationMethod> = serde_json::from_value(json!([
            {"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": PASSWORD_METHOD_ID, "methodType": "Password"},
            {"@odata.type": "#microsoft.graph.softwareOathAuthenticationMethod", "id": "m1", "secretKey": null,
             "createdDateTime": "1970-01-01T00:00:00Z", "methodType": "SoftwareOath"},
        ]))
        .unwrap();
        assert_eq!(m[0], AuthenticationMethod::password());
        assert_eq!(m[1], AuthenticationMethod::software_oath("m1".into(), "1970-01-01T00:00:00Z".into()));
        assert_eq!((m[1].id(), m[1].method_type()), ("m1", MethodType::SoftwareOath));
        assert!(serde_json::from_value::<AuthenticationMethod>(json!({"@odata.type": "#other", "id": "x"})).is_err());
    }

    #[test]
    fn bodies_read_back_unchanged() {
        round_trip::<ErrorBody>(json!({"error": {"code": "BadRequest", "message": "m"}}));
        round_trip::<User>(json!({
            "id": "00000000-0000-0000-0000-000000000007", "userPrincipalName": "a@b", "mail": "a@b",
            "displayName": "A", "userType": "Member", "accountEnabled": true, "creationType": null,
            "externalUserState": null, "externalUserStateChangeDateTime": null, "identities": [],
            "createdDateTime": "1970-01-01T00:00:00Z", "perUserMfaEnabled": false, "riskLevel": "low",
            "strongAuthenticationMethods": [{"methodType": "SoftwareOath"}],
        }));
        round_trip::<Invitation>(json!({
            "@odata.context": "http://x/graph/v1.0/$metadata#invitations/$entity",
            "id": "00000000-0000-0000-0000-000000000001", "inviteRedeemUrl": "http://x/redeem?ticket=t",
            "invitedUserDisplayName": "s", "invitedUserEmailAddress": "s@c", "inviteRedirectUrl": "http://x/",
            "invitedUserType": "Guest", "sendInvitationMessage": false, "resetRedemption": false,
            "status": "PendingAcceptance",
            "invitedUser": {"id": "00000000-0000-0000-0000-000000000002", "userPrincipalName": "s_c#EXT#@f"},
            "appId": null,
        }));
        round_trip::<Partner>(json!({"tenantId": "00000000-0000-0000-0000-000000000003", "isServiceProvider": false,
            "b2bCollaborationInbound": null, "b2bCollaborationOutbound": null, "inboundTrust":
            {"isMfaAccepted": true, "isCompliantDeviceAccepted": false, "isHybridAzureADJoinedDeviceAccepted": false}}));
        round_trip::<SubscribedSku>(json!({"id": "t_premium", "skuPartNumber": "AAD_PREMIUM",
            "capabilityStatus": "Enabled", "appliesTo": "User",
            "prepaidUnits": {"enabled": 25, "suspended": 0, "warning": 0}, "consumedUnits": 1}));
        round_trip::<Application>(json!({"id": "foo", "appId": "foo", "displayName": "Foo",
            "web": {"redirectUris": ["http://x/cb"], "logoutUrl": null, "homePageUrl": null},
            "spa": {"redirectUris": []}, "publicClient": {"redirectUris": ["http://127.0.0.1/cb"]},
            "isFallbackPublicClient": true, "groupMembershipClaims": null,
            "appRoles": [{"id": "00000000-0000-0000-0000-000000000001", "value": "Reader", "displayName": "Reader",
                "description": null, "allowedMemberTypes": ["Application"], "isEnabled": true}],
            "passwordCredentials": [{"keyId": "00000000-0000-0000-0000-000000000002", "displayName": "ci",
                "hint": "abc", "startDateTime": "1970-01-01T00:00:00Z", "endDateTime": "1970-01-02T00:00:00Z",
                "secretText": null}],
            "idTokenSignedResponseAlg": "RS256", "postLogoutRedirectUris": [], "appRoleAssignmentRequired": true}));
        round_trip::<Group>(json!({"@odata.type": "#microsoft.graph.group",
            "id": "00000000-0000-0000-0000-000000000009", "displayName": "Partner auditors", "description": null,
            "mailNickname": "partner-auditors", "mailEnabled": false, "securityEnabled": true, "groupTypes": [],
            "createdDateTime": "1970-01-01T00:00:00Z"}));
        round_trip::<SignIn>(json!({"id": "1", "createdDateTime": "1970-01-01T00:00:00Z", "createdAt": 0,
            "userId": null, "userPrincipalName": null, "userDisplayName": null, "userType": null, "appId": "foo",
            "appDisplayName": null, "ipAddress": "203.0.113.9", "namedLocations": [],
            "deviceDetail": {"deviceId": "d", "displayName": "D", "isCompliant": true, "isManaged": false},
            "idp": null, "isInteractive": true, "status": {"errorCode": 0, "failureReason": null, "error": null},
            "conditionalAccessStatus": "notApplied", "amr": ["pwd"], "appliedConditionalAccessPolicies": []}));
    }

    #[test]
    fn requests_send_only_what_is_set() {
        let inv = InvitationRequest {
            invited_user_email_address: Some("s@c".into()),
            invite_redirect_url: Some("http://x/".into()),
            send_invitation_message: false,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&inv).unwrap(),
            json!({"invitedUserEmailAddress": "s@c", "inviteRedirectUrl": "http://x/", "sendInvitationMessage": false})
        );
        let reset = InvitationRequest { reset_redemption: true, ..inv };
        assert_eq!(serde_json::to_value(&reset).unwrap()["resetRedemption"], true);
        let w = WhatIfRequest { user_id: Some("u".into()), app_id: "foo".into(), ..Default::default() };
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            json!({"userId": "u", "appId": "foo", "authenticationMethods": []})
        );
    }
}
