//! From a Graph `application` body to the stored [`Application`] and back. A request is
//! applied to a copy: the first bad field answers 400 and nothing is stored.
use uuid::Uuid;

use super::GraphError;
use super::applications_wire::{self as w, AppRoleRequest, ApplicationRequest};
use crate::clock::rfc3339;
use crate::model::{AppRoleDefinition, Application, ClientType, DISPLAY_NAME_MAX, SigningAlg, display_text};

/// Longest redirect URI, and most URIs per platform (Entra: 256 each).
pub const URI_MAX: usize = 1024;
pub const URIS_PER_PLATFORM: usize = 256;
/// Most app roles per application.
pub const ROLES_MAX: usize = 100;
const ROLE_VALUE_MAX: usize = 249;
const MEMBER_TYPES: [&str; 2] = ["User", "Application"];

/// Where a URI is registered: the rules differ (RFC 8252 for native apps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Web,
    Spa,
    PublicClient,
    /// `web.logoutUrl`, `postLogoutRedirectUris`, `web.homePageUrl`.
    Page,
}

fn bad(message: impl Into<String>) -> GraphError {
    GraphError::bad_request(message)
}

/// [`super::json_body`] with serde's list of expected fields left out of the message (it
/// would outgrow one short line); the unknown field is still named.
pub fn body<T: serde::de::DeserializeOwned>(req: &actix_web::HttpRequest, raw: &[u8]) -> Result<T, GraphError> {
    super::json_body(req, raw).map_err(|mut e| {
        if let Some(cut) = e.message.find(", expected") {
            e.message.truncate(cut);
            e.message.push('.');
        }
        e
    })
}

/// A value as a message names it: escaped and at most 80 characters.
fn short(s: &str) -> String {
    s.escape_debug().take(80).collect()
}

fn is_loopback(u: &url::Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

/// An absolute URI without fragment, user information or wildcard; `https`, or `http` on
/// loopback (any port matches there, RFC 8252 §7.3); native apps also a private-use scheme
/// in reverse-domain form (RFC 8252 §7.1, e.g. `com.example.app:/callback`).
pub fn check_uri(field: &str, raw: &str, platform: Platform) -> Result<(), GraphError> {
    if raw.is_empty() || raw.len() > URI_MAX {
        return Err(bad(format!("{field}: a URI must have 1 to {URI_MAX} characters.")));
    }
    // Named in the message, shortened so that the message stays one short line.
    let uri = short(raw);
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!("{field}: '{uri}' must not contain spaces or control characters.")));
    }
    let uri = uri.as_str();
    if raw.contains('*') {
        return Err(bad(format!("{field}: '{uri}': wildcards are not allowed; register each URI exactly.")));
    }
    let u = url::Url::parse(raw).map_err(|_| bad(format!("{field}: '{uri}' is not an absolute URI.")))?;
    if raw.contains('#') {
        return Err(bad(format!("{field}: '{uri}' must not contain a fragment (#).")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(format!("{field}: '{uri}' must not contain user information.")));
    }
    match u.scheme() {
        "https" if u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" if is_loopback(&u) => Ok(()),
        "http" => Err(bad(format!(
            "{field}: '{uri}' uses http on a host that is not loopback: use https (http only for 127.0.0.1 or [::1])."
        ))),
        s if platform == Platform::PublicClient && s.contains('.') && u.host_str().is_none_or(str::is_empty) => Ok(()),
        _ if platform == Platform::PublicClient => Err(bad(format!(
            "{field}: '{uri}': a native redirect URI is https, http on 127.0.0.1 or [::1], or a reverse-domain private-use scheme (com.example.app:/callback)."
        ))),
        _ => Err(bad(format!("{field}: '{uri}' must be an https URI (or http on 127.0.0.1 or [::1])."))),
    }
}

fn check_list(field: &str, uris: &[String], platform: Platform) -> Result<(), GraphError> {
    if uris.len() > URIS_PER_PLATFORM {
        return Err(bad(format!("{field}: at most {URIS_PER_PLATFORM} URIs.")));
    }
    uris.iter().try_for_each(|u| check_uri(field, u, platform))
}

/// The web platform's redirect URIs: the union minus the SPA and native ones.
pub fn web_uris(app: &Application) -> Vec<String> {
    let r = &app.registration;
    app.redirect_uris
        .iter()
        .filter(|u| !r.spa_redirect_uris.contains(u) && !r.public_client_redirect_uris.contains(u))
        .cloned()
        .collect()
}

/// A role's id when the record has only its value (apps from before role definitions).
fn legacy_role_id(value: &str) -> Uuid {
    let d = crate::secrets::sha256(value.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_random_bytes(b).into_uuid()
}

pub fn roles_of(app: &Application) -> Vec<w::AppRole> {
    let defs = &app.registration.app_role_definitions;
    if defs.is_empty() {
        return app
            .app_roles
            .iter()
            .map(|v| w::AppRole {
                id: legacy_role_id(v),
                value: v.clone(),
                display_name: v.clone(),
                description: None,
                allowed_member_types: vec!["Application".into()],
                is_enabled: true,
            })
            .collect();
    }
    defs.iter()
        .map(|d| w::AppRole {
            id: d.id,
            value: d.value.clone(),
            display_name: d.display_name.clone(),
            description: d.description.clone(),
            allowed_member_types: d.allowed_member_types.clone(),
            is_enabled: d.is_enabled,
        })
        .collect()
}

/// The Graph view of a stored application (secrets never, only their hints).
pub fn graph_app(a: &Application) -> w::Application {
    let r = &a.registration;
    w::Application {
        id: a.client_id.to_string(),
        app_id: a.client_id.to_string(),
        display_name: a.display_name.clone(),
        web: w::WebApplication {
            redirect_uris: web_uris(a),
            logout_url: a.post_logout_redirect_uris.first().cloned(),
            home_page_url: a.home_page_url.clone(),
        },
        spa: w::RedirectUris { redirect_uris: r.spa_redirect_uris.clone() },
        public_client: w::RedirectUris { redirect_uris: r.public_client_redirect_uris.clone() },
        is_fallback_public_client: a.client_type == ClientType::Public,
        app_roles: roles_of(a),
        group_membership_claims: a.group_membership_claims.clone(),
        password_credentials: r
            .password_credentials
            .iter()
            .map(|c| w::PasswordCredential {
                key_id: c.key_id,
                display_name: c.display_name.clone(),
                hint: c.hint.clone(),
                start_date_time: rfc3339(c.start),
                end_date_time: rfc3339(c.end),
                secret_text: None,
            })
            .collect(),
        id_token_signed_response_alg: a.id_token_signed_response_alg.as_str().into(),
        post_logout_redirect_uris: a.post_logout_redirect_uris.clone(),
        app_role_assignment_required: a.assignment_required,
    }
}

fn roles(req: &[AppRoleRequest]) -> Result<Vec<AppRoleDefinition>, GraphError> {
    if req.len() > ROLES_MAX {
        return Err(bad(format!("appRoles: at most {ROLES_MAX} roles.")));
    }
    let mut out: Vec<AppRoleDefinition> = Vec::new();
    for (i, r) in req.iter().enumerate() {
        let field = format!("appRoles[{i}]");
        let v = r.value.as_str();
        let value_ok = !v.is_empty()
            && v.len() <= ROLE_VALUE_MAX
            && !v.starts_with('.')
            && v.chars().all(|c| c.is_ascii_graphic() && c != ',');
        if !value_ok {
            return Err(bad(format!(
                "{field}.value: 1 to {ROLE_VALUE_MAX} printable ASCII characters without spaces or commas, not starting with '.'."
            )));
        }
        if out.iter().any(|d| d.value.eq_ignore_ascii_case(v)) {
            return Err(bad(format!("{field}.value: '{}' is defined twice; role values must be unique.", short(v))));
        }
        let id = r.id.unwrap_or_else(Uuid::new_v4);
        if out.iter().any(|d| d.id == id) {
            return Err(bad(format!("{field}.id: {id} is used twice; role ids must be unique.")));
        }
        let types = r.allowed_member_types.clone().unwrap_or_else(|| vec!["Application".into()]);
        if types.is_empty() || types.iter().any(|t| !MEMBER_TYPES.contains(&t.as_str())) {
            return Err(bad(format!("{field}.allowedMemberTypes: one or both of User and Application.")));
        }
        let text = |name: &'static str, s: &str| {
            display_text(name, s, DISPLAY_NAME_MAX).map_err(|e| bad(format!("{field}: {e}.")))
        };
        let display_name = match &r.display_name {
            Some(n) => text("displayName", n)?,
            None => v.to_string(),
        };
        let description = r.description.as_deref().map(|d| text("description", d)).transpose()?;
        out.push(AppRoleDefinition {
            id,
            value: v.to_string(),
            display_name,
            description,
            allowed_member_types: types,
            is_enabled: r.is_enabled.unwrap_or(true),
        });
    }
    Ok(out)
}

fn alg(s: &str) -> Result<SigningAlg, GraphError> {
    match s {
        "ES256" => Ok(SigningAlg::ES256),
        "RS256" => Ok(SigningAlg::RS256),
        other => {
            Err(bad(format!("idTokenSignedResponseAlg: '{}' is not supported; use ES256 or RS256.", short(other))))
        }
    }
}

fn group_claims(s: &Option<String>) -> Result<Option<String>, GraphError> {
    match s.as_deref() {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("None") => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("SecurityGroup") => Ok(Some("SecurityGroup".into())),
        Some(v) if v.eq_ignore_ascii_case("All") => Ok(Some("All".into())),
        Some(v) => {
            Err(bad(format!("groupMembershipClaims: '{}' is not supported; use None, SecurityGroup or All.", short(v))))
        }
    }
}

/// Applies `req` to `app` (a copy; the caller stores it only on `Ok`). `creating`: a POST,
/// where `displayName` is required.
pub fn apply(app: &mut Application, req: &ApplicationRequest, creating: bool) -> Result<(), GraphError> {
    if req.id.is_some() || req.app_id.is_some() {
        return Err(bad("id and appId are assigned by the server."));
    }
    if req.password_credentials.is_some() {
        return Err(bad("passwordCredentials are added with addPassword, which shows the secret once."));
    }
    match (&req.display_name, creating) {
        (Some(n), _) => {
            app.display_name = display_text("displayName", n, DISPLAY_NAME_MAX).map_err(|e| bad(format!("{e}.")))?
        }
        (None, true) => return Err(bad("displayName is required.")),
        (None, false) => {}
    }
    if let Some(p) = req.is_fallback_public_client {
        let public = if p { ClientType::Public } else { ClientType::Confidential };
        let has_secrets = !app.secret_hashes.is_empty() || !app.registration.password_credentials.is_empty();
        if public == ClientType::Public && app.client_type == ClientType::Confidential && has_secrets {
            return Err(bad(
                "This application has client secrets: remove them (removePassword) before making it a public client.",
            ));
        }
        app.client_type = public;
    }
    let mut web = web_uris(app);
    let mut spa = app.registration.spa_redirect_uris.clone();
    let mut native = app.registration.public_client_redirect_uris.clone();
    if let Some(wr) = &req.web {
        if let Some(list) = &wr.redirect_uris {
            check_list("web.redirectUris", list, Platform::Web)?;
            web = list.clone();
        }
        if let Some(home) = &wr.home_page_url {
            if let Some(h) = home {
                check_uri("web.homePageUrl", h, Platform::Page)?;
            }
            app.home_page_url = home.clone();
        }
        if let Some(logout) = &wr.logout_url
            && req.post_logout_redirect_uris.is_none()
        {
            if let Some(l) = logout {
                check_uri("web.logoutUrl", l, Platform::Page)?;
            }
            app.post_logout_redirect_uris = logout.iter().cloned().collect();
        }
    }
    if let Some(list) = &req.post_logout_redirect_uris {
        check_list("postLogoutRedirectUris", list, Platform::Page)?;
        app.post_logout_redirect_uris = dedup(list);
    }
    if let Some(s) = &req.spa {
        check_list("spa.redirectUris", &s.redirect_uris, Platform::Spa)?;
        spa = s.redirect_uris.clone();
    }
    if let Some(p) = &req.public_client {
        check_list("publicClient.redirectUris", &p.redirect_uris, Platform::PublicClient)?;
        native = p.redirect_uris.clone();
    }
    if app.client_type == ClientType::Confidential && !(spa.is_empty() && native.is_empty()) {
        return Err(bad(
            "spa and publicClient redirect URIs are for public clients: set isFallbackPublicClient to true (they sign in with PKCE, no secret).",
        ));
    }
    let mut all: Vec<String> = Vec::new();
    for u in web.iter().chain(&spa).chain(&native) {
        if all.contains(u) {
            return Err(bad(format!("The redirect URI '{}' is registered twice.", short(u))));
        }
        all.push(u.clone());
    }
    app.redirect_uris = all;
    app.registration.spa_redirect_uris = spa;
    app.registration.public_client_redirect_uris = native;
    if let Some(a) = &req.id_token_signed_response_alg {
        app.id_token_signed_response_alg = alg(a)?;
    }
    if let Some(list) = &req.app_roles {
        let defs = roles(list)?;
        // What client credentials tokens carry in `roles`: the enabled application roles.
        app.app_roles = defs
            .iter()
            .filter(|d| d.is_enabled && d.allowed_member_types.iter().any(|t| t == "Application"))
            .map(|d| d.value.clone())
            .collect();
        app.registration.app_role_definitions = defs;
    }
    if let Some(g) = &req.group_membership_claims {
        app.group_membership_claims = group_claims(g)?;
    }
    if let Some(r) = req.app_role_assignment_required {
        app.assignment_required = r;
    }
    Ok(())
}

fn dedup(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in list {
        if !out.contains(u) {
            out.push(u.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_follow_the_platform_rules() {
        use Platform::*;
        let ok = |u: &str, p| check_uri("f", u, p).is_ok();
        assert!(ok("https://rp.example/cb", Web));
        assert!(ok("http://127.0.0.1/cb", Web) && ok("http://127.0.0.1:8400/cb", Spa) && ok("http://[::1]/cb", Web));
        assert!(!ok("http://rp.example/cb", Web) && !ok("http://localhost/cb", Web));
        assert!(!ok("/cb", Web) && !ok("rp.example/cb", Web));
        assert!(!ok("https://rp.example/cb#x", Web) && !ok("https://rp.example/cb#", Web));
        assert!(!ok("https://*.rp.example/cb", Web) && !ok("https://rp.example/*", Web));
        assert!(!ok("https://user:pw@rp.example/cb", Web));
        assert!(!ok("https://rp.example/c b", Web) && !ok("https://rp.example/c\nb", Web));
        assert!(ok("com.example.app:/callback", PublicClient) && !ok("com.example.app:/callback", Web));
        assert!(!ok("myapp:/cb", PublicClient) && !ok("javascript:alert(1)", PublicClient));
        assert!(!ok("file:///etc/passwd", PublicClient) && !ok("data:text/html,x", PublicClient));
    }
}
