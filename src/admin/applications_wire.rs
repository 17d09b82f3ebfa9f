//! Graph `application` bodies: what `GET /applications` answers and what `POST`/`PATCH`
//! take, `addPassword`/`removePassword`, and `appRoleAssignment`. Shared by server and CLI.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Graph `application`: the parts gatehouse has. `id` equals `appId` (the client id).
/// Extensions: `idTokenSignedResponseAlg`, `postLogoutRedirectUris`, and
/// `appRoleAssignmentRequired` (Entra keeps it on the servicePrincipal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    pub id: String,
    pub app_id: String,
    pub display_name: String,
    pub web: WebApplication,
    #[serde(default)]
    pub spa: RedirectUris,
    #[serde(default)]
    pub public_client: RedirectUris,
    pub is_fallback_public_client: bool,
    pub app_roles: Vec<AppRole>,
    /// `SecurityGroup` or `All`: tokens carry a `groups` claim; `null`: they do not.
    #[serde(default)]
    pub group_membership_claims: Option<String>,
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    #[serde(default = "es256")]
    pub id_token_signed_response_alg: String,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    #[serde(default)]
    pub app_role_assignment_required: bool,
}

fn es256() -> String {
    "ES256".into()
}

/// Graph `webApplication`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebApplication {
    pub redirect_uris: Vec<String>,
    pub logout_url: Option<String>,
    pub home_page_url: Option<String>,
}

/// Graph `spaApplication` and `publicClientApplication`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectUris {
    pub redirect_uris: Vec<String>,
}

/// Graph `appRole`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRole {
    pub id: Uuid,
    pub value: String,
    pub display_name: String,
    pub description: Option<String>,
    pub allowed_member_types: Vec<String>,
    pub is_enabled: bool,
}

/// Graph `passwordCredential`: `secretText` only in the answer to `addPassword`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: Uuid,
    pub display_name: Option<String>,
    pub hint: String,
    pub start_date_time: String,
    pub end_date_time: String,
    pub secret_text: Option<String>,
}

/// A PATCH field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `POST /applications` and `PATCH /applications/{id}`: every field optional (a PATCH
/// changes what it names); unknown fields are refused, so nothing is silently ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spa: Option<RedirectUrisRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_client: Option<RedirectUrisRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_fallback_public_client: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_roles: Option<Vec<AppRoleRequest>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub group_membership_claims: Option<Option<String>>,
    /// Entra's servicePrincipal property, accepted on the application (also as `assignmentRequired`).
    #[serde(default, alias = "assignmentRequired", skip_serializing_if = "Option::is_none")]
    pub app_role_assignment_required: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Server-assigned: refused when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<serde_json::Value>,
    /// Server-assigned: refused when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<serde_json::Value>,
    /// Added with `addPassword` only: refused here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_credentials: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub logout_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub home_page_url: Option<Option<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectUrisRequest {
    #[serde(default)]
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_member_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// Graph sends it on read-back; accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// `POST /applications/{id}/addPassword`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddPasswordRequest {
    #[serde(default)]
    pub password_credential: Option<PasswordCredentialRequest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordCredentialRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
}

/// `POST /applications/{id}/removePassword`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemovePasswordRequest {
    #[serde(default)]
    pub key_id: Option<String>,
}

/// Graph `appRoleAssignment` (`resourceId`: the application's `id`, gatehouse has no
/// separate servicePrincipal; `appRoleId`: the default-access role, all zeros).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoleAssignment {
    pub id: Uuid,
    pub principal_id: crate::model::UserId,
    pub principal_type: String,
    pub principal_display_name: String,
    pub resource_id: String,
    pub resource_display_name: String,
    pub app_role_id: Uuid,
    pub created_date_time: String,
}

/// `POST /users/{id}/appRoleAssignments`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppRoleAssignmentRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role_id: Option<String>,
}
