//! The admin API in Microsoft Graph's shapes, under `/graph/v1.0`. Callers present a
//! bearer token gatehouse issued; the tenant comes from the token.
pub mod agreements;
pub mod applications;
pub mod applications_assign;
pub mod applications_validate;
pub mod applications_wire;
pub mod client;
pub mod cross_tenant;
pub mod directory;
pub mod groups;
pub mod identity_providers;
pub mod invitations;
pub mod mail;
pub mod odata;
pub mod policies;
pub mod strengths;
pub mod users;
pub mod wire;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::model::{Tenant, User};
use crate::oidc::claims::{AccessClaims, graph_audience};

/// A Graph error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct GraphError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", message)
    }
    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Authorization_RequestDenied", message)
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "internal error")
    }
}

impl From<crate::storage::StoreError> for GraphError {
    fn from(e: crate::storage::StoreError) -> Self {
        match e {
            crate::storage::StoreError::Unavailable(why) => {
                tracing::warn!(error = %why, "store unavailable");
                GraphError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "serviceUnavailable",
                    "The service is temporarily unavailable. Retry shortly.",
                )
            }
            other => GraphError::internal(other),
        }
    }
}

impl ResponseError for GraphError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            b.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"gatehouse\", error=\"invalid_token\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            b.insert_header((header::RETRY_AFTER, "5"));
        }
        b.json(wire::ErrorBody { error: wire::ErrorDetail { code: self.code.into(), message: self.message.clone() } })
    }
}

/// Who is calling the admin API: a capability handle, checked once per request.
pub struct Caller {
    pub tenant: Tenant,
    pub claims: AccessClaims,
    /// The signed-in user behind a delegated (user) token, as stored now; `None` for apps.
    pub user: Option<User>,
}

pub const ROLE_DIRECTORY_RW: &str = "Directory.ReadWrite.All";
pub const ROLE_USER_INVITE: &str = "User.Invite.All";
pub const ROLE_GLOBAL_ADMIN: &str = "Global Administrator";
pub const ROLE_GUEST_INVITER: &str = "Guest Inviter";

impl Caller {
    /// Authenticates the bearer token: our signature, not expired or revoked, its tenant,
    /// the credential gate (user, grant, app still good), and the audience: only tokens
    /// issued for this API (RFC 9068 §4), never a token an app got for itself.
    pub async fn from_request(req: &HttpRequest, state: &AppState) -> Result<Self, GraphError> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| GraphError::unauthorized("Access token is empty."))?;
        let verified: AccessClaims = state
            .keys
            .verify(token, crate::keys::TokenType::Access, state.now(), true)
            .map_err(|_| GraphError::unauthorized("Access token has expired or is not valid yet."))?;
        let tenant = state
            .store
            .tenant(&verified.tid)
            .await?
            .ok_or_else(|| GraphError::unauthorized("The token's tenant does not exist."))?;
        // The signature is verified once, above; the remaining checks need the tenant.
        let checked =
            crate::oidc::userinfo::check_access(state, &tenant, verified).await.map_err(GraphError::unauthorized)?;
        if checked.claims.aud != graph_audience(state) {
            return Err(GraphError::unauthorized("The token's audience is not this API."));
        }
        let caller = Self { tenant, claims: checked.claims, user: checked.user };
        actix_web::HttpMessage::extensions_mut(req).insert(crate::telemetry::http::Actor(caller.display()));
        Ok(caller)
    }

    /// An app holds one of `roles` as an app role; a user needs both a delegated scope and
    /// a directory role (read from the directory now, not from the token) among `roles`.
    pub fn has_any(&self, roles: &[&str]) -> bool {
        let holds = |r: &str| roles.contains(&r);
        match &self.user {
            None => self.claims.roles.iter().any(|r| holds(r)),
            Some(user) => {
                self.claims.scp.as_deref().unwrap_or_default().split(' ').any(holds)
                    && user.roles.iter().any(|r| holds(r))
            }
        }
    }

    /// The first line of every handler: the caller must hold one of `roles`.
    pub async fn require(req: &HttpRequest, state: &AppState, roles: &[&str]) -> Result<Self, GraphError> {
        let caller = Self::from_request(req, state).await?;
        if !caller.has_any(roles) {
            return Err(GraphError::forbidden("Insufficient privileges to complete the operation."));
        }
        Ok(caller)
    }

    pub fn display(&self) -> String {
        match self.claims.oid {
            Some(oid) => oid.to_string(),
            None => self.claims.client_id.clone(),
        }
    }
}

/// Parses a JSON body into `T`, answering Graph's 400 with the reason.
pub fn json_body<T: DeserializeOwned>(req: &HttpRequest, body: &[u8]) -> Result<T, GraphError> {
    let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.starts_with("application/json") {
        return Err(GraphError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            "The body must be application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| GraphError::bad_request(format!("Invalid request body: {e}")))
}

/// The admin API routes (registered before the `/{tenant}/…` routes).
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web::{delete, get, patch, post};
    // Every resource answers a wrong method with a Graph error too.
    let resource = |path: &str| actix_web::web::resource(path).default_service(actix_web::web::to(method_not_allowed));
    cfg.service(resource("/graph/v1.0/invitations").route(post().to(invitations::create)))
        .service(resource("/graph/v1.0/users").route(get().to(users::list)).route(post().to(users::create)))
        .service(
            resource("/graph/v1.0/users/{id}")
                .route(get().to(users::get))
                .route(patch().to(users::patch))
                .route(delete().to(users::delete)),
        )
        .service(
            resource("/graph/v1.0/users/{id}/revokeSignInSessions").route(post().to(users::revoke_sign_in_sessions)),
        )
        .service(resource("/graph/v1.0/users/{id}/authentication/methods").route(get().to(users::methods)))
        .service(
            resource("/graph/v1.0/users/{id}/authentication/softwareOathMethods").route(get().to(users::oath_methods)),
        )
        .service(
            resource("/graph/v1.0/users/{id}/authentication/softwareOathMethods/{method}")
                .route(delete().to(users::delete_oath_method)),
        )
        .service(resource("/graph/v1.0/users/{id}/authentication/fido2Methods").route(get().to(users::fido2_list)))
        .service(
            resource("/graph/v1.0/users/{id}/authentication/fido2Methods/{method}")
                .route(get().to(users::fido2_get))
                .route(delete().to(users::fido2_delete)),
        )
        .service(resource("/graph/v1.0/users/{id}/memberOf").route(get().to(groups::member_of)))
        .service(resource("/graph/v1.0/groups").route(get().to(groups::list)).route(post().to(groups::create)))
        .service(
            resource("/graph/v1.0/groups/{id}")
                .route(get().to(groups::get))
                .route(patch().to(groups::patch))
                .route(delete().to(groups::delete)),
        )
        .service(resource("/graph/v1.0/groups/{id}/members").route(get().to(groups::list_members)))
        .service(resource("/graph/v1.0/groups/{id}/members/$ref").route(post().to(groups::add_member)))
        .service(resource("/graph/v1.0/groups/{id}/members/{member}/$ref").route(delete().to(groups::remove_member)))
        .service(
            resource("/graph/v1.0/identityGovernance/termsOfUse/agreements")
                .route(get().to(agreements::list))
                .route(post().to(agreements::create)),
        )
        .service(
            resource("/graph/v1.0/identityGovernance/termsOfUse/agreements/{id}")
                .route(get().to(agreements::get))
                .route(patch().to(agreements::patch))
                .route(delete().to(agreements::delete)),
        )
        .service(
            resource("/graph/v1.0/identityGovernance/termsOfUse/agreements/{id}/acceptances")
                .route(get().to(agreements::acceptances)),
        )
        .service(
            resource("/graph/v1.0/applications")
                .route(get().to(applications::list))
                .route(post().to(applications::create)),
        )
        .service(
            resource("/graph/v1.0/applications/{id}")
                .route(get().to(applications::get))
                .route(patch().to(applications::patch))
                .route(delete().to(applications::delete)),
        )
        .service(resource("/graph/v1.0/applications/{id}/addPassword").route(post().to(applications::add_password)))
        .service(
            resource("/graph/v1.0/applications/{id}/removePassword").route(post().to(applications::remove_password)),
        )
        .service(
            resource("/graph/v1.0/users/{id}/appRoleAssignments")
                .route(get().to(applications_assign::list))
                .route(post().to(applications_assign::create)),
        )
        .service(
            resource("/graph/v1.0/users/{id}/appRoleAssignments/{assignment}")
                .route(delete().to(applications_assign::delete)),
        )
        .service(resource("/graph/v1.0/devices").route(get().to(directory::devices)))
        .service(resource("/graph/v1.0/devices/{id}").route(patch().to(directory::patch_device)))
        .service(resource("/graph/v1.0/auditLogs/signIns").route(get().to(directory::sign_ins)))
        .service(resource("/graph/v1.0/admin/mailQueue").route(get().to(mail::list)))
        .service(resource("/graph/v1.0/subscribedSkus").route(get().to(directory::subscribed_skus)))
        .service(
            resource("/graph/v1.0/identity/conditionalAccess/policies")
                .route(get().to(policies::list))
                .route(post().to(policies::create)),
        )
        .service(
            resource("/graph/v1.0/identity/conditionalAccess/policies/{id}")
                .route(get().to(policies::get))
                .route(patch().to(policies::patch))
                .route(delete().to(policies::delete)),
        )
        .service(
            resource("/graph/v1.0/identity/conditionalAccess/namedLocations")
                .route(get().to(policies::list_locations))
                .route(post().to(policies::create_location)),
        )
        .service(
            resource("/graph/v1.0/identity/conditionalAccess/namedLocations/{id}")
                .route(get().to(policies::get_location))
                .route(patch().to(policies::patch_location))
                .route(delete().to(policies::delete_location)),
        )
        .service(resource("/graph/v1.0/identity/conditionalAccess/evaluate").route(post().to(policies::evaluate)))
        .service(
            resource("/graph/v1.0/policies/authenticationStrengthPolicies")
                .route(get().to(strengths::list))
                .route(post().to(strengths::create)),
        )
        .service(
            resource("/graph/v1.0/policies/authenticationStrengthPolicies/{id}")
                .route(get().to(strengths::get))
                .route(patch().to(strengths::patch))
                .route(delete().to(strengths::delete)),
        )
        .service(
            resource("/graph/v1.0/policies/authenticationStrengthPolicies/{id}/updateAllowedCombinations")
                .route(post().to(strengths::update_combinations)),
        )
        .service(
            resource("/graph/v1.0/policies/crossTenantAccessPolicy/default")
                .route(get().to(cross_tenant::get_default))
                .route(patch().to(cross_tenant::patch_default)),
        )
        .service(
            resource("/graph/v1.0/policies/crossTenantAccessPolicy/partners")
                .route(get().to(cross_tenant::list_partners))
                .route(post().to(cross_tenant::create_partner)),
        )
        .service(
            resource("/graph/v1.0/policies/crossTenantAccessPolicy/partners/{tenantId}")
                .route(get().to(cross_tenant::get_partner))
                .route(patch().to(cross_tenant::patch_partner))
                .route(delete().to(cross_tenant::delete_partner)),
        )
        .service(
            resource("/graph/v1.0/identity/identityProviders")
                .route(get().to(identity_providers::list))
                .route(post().to(identity_providers::create)),
        )
        .service(
            resource("/graph/v1.0/identity/identityProviders/{id}")
                .route(get().to(identity_providers::get))
                .route(patch().to(identity_providers::patch))
                .route(delete().to(identity_providers::delete)),
        )
        .service(actix_web::web::resource("/graph/v1.0/{rest:.*}").to(not_found));
}

async fn method_not_allowed() -> Result<HttpResponse, GraphError> {
    Err(GraphError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "Request_BadRequest",
        "This method is not supported on this resource.",
    ))
}

async fn not_found() -> Result<HttpResponse, GraphError> {
    Err(GraphError::new(StatusCode::NOT_FOUND, "Request_ResourceNotFound", "Unknown resource or method."))
}
