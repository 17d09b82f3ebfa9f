//! The OAuth 2.0 / OpenID Connect JSON bodies the provider answers: token (RFC 6749 §5.1),
//! introspection (RFC 7662 §2.2), UserInfo (OIDC Core §5.3) and the bearer error
//! (RFC 6750 §3). Shared with the CLI, which reads the token response back.
use serde::{Deserialize, Serialize};

/// The `token_type` of every access token gatehouse issues.
pub const BEARER: &str = "Bearer";

/// A successful token response. Client credentials get neither `scope` nor an ID token;
/// `refresh_token` only comes with `offline_access`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An introspection response: `{"active": false}` alone, or `active: true` with what is
/// known about the token, by its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    pub active: bool,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub token: Option<ActiveToken>,
}

impl IntrospectionResponse {
    /// Unknown, expired, revoked or foreign tokens: nothing else is said (RFC 7662 §2.2).
    pub fn inactive() -> Self {
        Self { active: false, token: None }
    }

    pub fn active(token: ActiveToken) -> Self {
        Self { active: true, token: Some(token) }
    }
}

/// An active token, told apart by its `token_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "token_type")]
pub enum ActiveToken {
    #[serde(rename = "refresh_token")]
    Refresh(RefreshTokenInfo),
    #[serde(rename = "Bearer")]
    Access(AccessTokenInfo),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshTokenInfo {
    pub client_id: String,
    pub scope: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub tid: crate::model::TenantId,
    pub oid: crate::model::UserId,
}

/// The access token's claims. `scope` is `null` for an app token (roles instead) and
/// `oid` is `null` for an app token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenInfo {
    pub client_id: String,
    pub scope: Option<String>,
    pub roles: Vec<String>,
    pub sub: String,
    pub aud: String,
    pub iss: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub tid: crate::model::TenantId,
    pub oid: Option<crate::model::UserId>,
}

/// UserInfo: `sub` always; the `profile` and `email` claims only when those scopes were granted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// An error body: `{"error", "error_description"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: String,
    pub error_description: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn introspection_says_only_inactive_or_the_claims_of_its_kind() {
        assert_eq!(serde_json::to_value(IntrospectionResponse::inactive()).unwrap(), json!({"active": false}));
        let tid = uuid::Uuid::from_u128(1);
        let access = IntrospectionResponse::active(ActiveToken::Access(AccessTokenInfo {
            client_id: "app".into(),
            scope: None,
            roles: vec!["User.Invite.All".into()],
            sub: "app".into(),
            aud: "http://x/graph".into(),
            iss: "http://x/t/v2.0".into(),
            exp: 2,
            iat: 1,
            nbf: 1,
            jti: "j".into(),
            tid: tid.into(),
            oid: None,
        }));
        let v = json!({"active": true, "token_type": "Bearer", "client_id": "app", "scope": null,
            "roles": ["User.Invite.All"], "sub": "app", "aud": "http://x/graph", "iss": "http://x/t/v2.0",
            "exp": 2, "iat": 1, "nbf": 1, "jti": "j", "tid": tid, "oid": null});
        assert_eq!(serde_json::to_value(&access).unwrap(), v);
        assert_eq!(serde_json::from_value::<IntrospectionResponse>(v).unwrap(), access);
        let refresh = IntrospectionResponse::active(ActiveToken::Refresh(RefreshTokenInfo {
            client_id: "rp".into(),
            scope: "openid offline_access".into(),
            sub: "s".into(),
            exp: 2,
            iat: 1,
            iss: "http://x/t/v2.0".into(),
            tid: tid.into(),
            oid: tid.into(),
        }));
        let v = json!({"active": true, "token_type": "refresh_token", "client_id": "rp",
            "scope": "openid offline_access", "sub": "s", "exp": 2, "iat": 1, "iss": "http://x/t/v2.0",
            "tid": tid, "oid": tid});
        assert_eq!(serde_json::to_value(&refresh).unwrap(), v);
        assert_eq!(serde_json::from_value::<IntrospectionResponse>(v).unwrap(), refresh);
        assert_eq!(
            serde_json::from_value::<IntrospectionResponse>(json!({"active": false})).unwrap(),
            IntrospectionResponse::inactive()
        );
    }

    #[test]
    fn token_and_userinfo_leave_out_what_was_not_granted() {
        let t = TokenResponse {
            access_token: "a".into(),
            token_type: BEARER.into(),
            expires_in: 3600,
            scope: None,
            id_token: None,
            refresh_token: None,
        };
        assert_eq!(
            serde_json::to_value(&t).unwrap(),
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": 3600})
        );
        assert_eq!(
            serde_json::to_value(UserInfo { sub: "s".into(), ..Default::default() }).unwrap(),
            json!({"sub": "s"})
        );
    }
}
