//! `identity/identityProviders` (DESIGN §16): the partner OpenID Connect providers a tenant
//! federates with, in Entra's `openIdConnectIdentityProvider` shape plus gatehouse's
//! `domains` (home realm discovery) and read-only `issuer`. The client secret is write-only:
//! it is stored sealed and every read shows `****`, as Entra does.
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::odata::Query;
use super::policies::{READ, WRITE};
use super::{Caller, GraphError, json_body};
use crate::app::AppState;
use crate::federation::external::{self, WELL_KNOWN};
use crate::model::{DEFAULT_IDP_SCOPE, DISPLAY_NAME_MAX, ExternalIdp, Tenant, display_text};
use crate::web::Data;

pub const ODATA_TYPE: &str = "#microsoft.graph.openIdConnectIdentityProvider";
/// What every read shows for the write-only client secret (Entra's answer).
pub const SECRET_MASK: &str = "****";
/// Providers one tenant may configure, and domains one provider may claim.
pub const MAX_PROVIDERS: usize = 50;
pub const MAX_DOMAINS: usize = 50;
const CLIENT_ID_MAX: usize = 255;
const SECRET_MAX: usize = 1024;
const SCOPE_MAX: usize = 1024;
const URL_MAX: usize = 2048;

/// An `openIdConnectIdentityProvider` as Graph shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IdentityProvider {
    #[serde(rename = "@odata.type")]
    pub odata_type: String,
    pub id: String,
    pub display_name: String,
    pub client_id: String,
    /// Always `****`: the secret is write-only.
    pub client_secret: String,
    pub metadata_url: String,
    pub scope: String,
    pub response_type: String,
    /// gatehouse extension: the email domains whose guests this provider signs in.
    pub domains: Vec<String>,
    /// gatehouse extension, read only: the issuer its discovery document named.
    pub issuer: String,
}

impl From<&ExternalIdp> for IdentityProvider {
    fn from(i: &ExternalIdp) -> Self {
        let metadata_url = if i.metadata_url.is_empty() {
            format!("{}{WELL_KNOWN}", i.issuer.trim_end_matches('/'))
        } else {
            i.metadata_url.clone()
        };
        Self {
            odata_type: ODATA_TYPE.into(),
            id: i.id.clone(),
            display_name: i.display_name.clone(),
            client_id: i.client_id.clone(),
            client_secret: SECRET_MASK.into(),
            metadata_url,
            scope: i.scope.clone(),
            response_type: "code".into(),
            domains: i.domains.clone(),
            issuer: i.issuer.clone(),
        }
    }
}

/// The body of `POST` (all but `scope` and `responseType` required) and `PATCH` (any).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityProviderIn {
    #[serde(default, rename = "@odata.type", skip_serializing_if = "Option::is_none")]
    pub odata_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domains: Option<Vec<String>>,
}

fn bad(m: impl Into<String>) -> GraphError {
    GraphError::bad_request(m)
}

fn required<'a>(v: &'a Option<String>, field: &str) -> Result<&'a str, GraphError> {
    v.as_deref().ok_or_else(|| bad(format!("{field} is required.")))
}

fn check_odata_type(t: Option<&str>, required: bool) -> Result<(), GraphError> {
    match t {
        Some(ODATA_TYPE) => Ok(()),
        None if !required => Ok(()),
        None => Err(bad(format!("@odata.type is required: {ODATA_TYPE}."))),
        Some(other) => Err(bad(format!("Only {ODATA_TYPE} is supported, not {other}."))),
    }
}

fn display_name(n: &str) -> Result<String, GraphError> {
    display_text("displayName", n, DISPLAY_NAME_MAX).map_err(|e| bad(format!("{e}.")))
}

/// A token of printable ASCII without spaces (what a client id or secret can be on the wire).
fn token(v: &str, field: &str, max: usize) -> Result<String, GraphError> {
    if v.is_empty() || v.len() > max || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!("{field} must be 1 to {max} printable characters without spaces.")));
    }
    Ok(v.to_string())
}

/// Space-separated scope tokens (RFC 6749 §3.3) that include `openid`.
fn scope(s: &str) -> Result<String, GraphError> {
    let tokens: Vec<&str> = s.split(' ').filter(|t| !t.is_empty()).collect();
    let nqchar = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
    if s.len() > SCOPE_MAX || tokens.iter().any(|t| !t.bytes().all(nqchar)) {
        return Err(bad("scope must be space-separated scope tokens."));
    }
    if !tokens.contains(&"openid") {
        return Err(bad("scope must include openid."));
    }
    Ok(tokens.join(" "))
}

fn response_type(r: Option<&str>) -> Result<(), GraphError> {
    match r {
        None | Some("code") => Ok(()),
        Some(other) => Err(bad(format!("responseType must be code, not {other}."))),
    }
}

/// A DNS name of two or more labels (letters, digits, hyphens; not at a label's ends), lowercased.
fn dns_name(d: &str) -> Option<String> {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = d.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    (d.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok)).then_some(d)
}

/// The provider's domains: valid, not the tenant's own, not another provider's (of this
/// tenant) and not verified by another tenant here (which home realm discovery would prefer).
async fn domains(
    state: &AppState,
    tenant: &Tenant,
    given: &[String],
    except: Option<&str>,
) -> Result<Vec<String>, GraphError> {
    if given.is_empty() || given.len() > MAX_DOMAINS {
        return Err(bad(format!("domains must name 1 to {MAX_DOMAINS} email domains.")));
    }
    let mut out: Vec<String> = Vec::new();
    for d in given {
        let d = dns_name(d).ok_or_else(|| bad(format!("{d:?} is not a valid domain name.")))?;
        let own =
            tenant.initial_domain.eq_ignore_ascii_case(&d) || tenant.domains.iter().any(|x| x.eq_ignore_ascii_case(&d));
        if own {
            return Err(bad(format!("{d} is a domain of this tenant.")));
        }
        if let Some(other) = tenant
            .external_idps
            .iter()
            .find(|i| Some(i.id.as_str()) != except && i.domains.iter().any(|x| x.eq_ignore_ascii_case(&d)))
        {
            return Err(bad(format!("{d} is already claimed by the identity provider {}.", other.id)));
        }
        if state.store.tenant_by_domain(&d).await?.is_some_and(|t| t.id != tenant.id) {
            return Err(bad(format!(
                "{d} is verified by a tenant on this instance, which home realm discovery prefers."
            )));
        }
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The discovery check, as Graph's 400 naming what failed (one line, bounded).
async fn discovered_issuer(state: &AppState, metadata_url: &str) -> Result<String, GraphError> {
    if metadata_url.len() > URL_MAX {
        return Err(bad(format!("metadataUrl must be at most {URL_MAX} characters.")));
    }
    match external::check(state, metadata_url).await {
        Ok(c) => Ok(c.issuer),
        Err(e) => {
            let mut m: String = e.to_string().replace(['\r', '\n'], " ");
            if m.chars().count() > 290 {
                m = m.chars().take(287).collect::<String>() + "…";
            }
            Err(bad(m))
        }
    }
}

fn unique_issuer(tenant: &Tenant, issuer: &str, except: Option<&str>) -> Result<(), GraphError> {
    if tenant.external_idps.iter().any(|i| Some(i.id.as_str()) != except && i.issuer == issuer) {
        return Err(bad(format!("An identity provider with the issuer {issuer} exists.")));
    }
    Ok(())
}

fn find<'a>(tenant: &'a mut Tenant, id: &str) -> Result<&'a mut ExternalIdp, GraphError> {
    tenant
        .external_idps
        .iter_mut()
        .find(|i| i.id.eq_ignore_ascii_case(id))
        .ok_or_else(|| GraphError::not_found("No such identity provider."))
}

async fn save(state: &AppState, tenant: &Tenant) -> Result<(), GraphError> {
    state.store.put_tenant(tenant).await?;
    state.store.flush().await?;
    Ok(())
}

/// `GET /identity/identityProviders`.
pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, READ).await?;
    let q = Query::parse(req.query_string(), &["displayName", "id", "issuer", "clientId"])?;
    let base = format!("{}/graph/v1.0/identity/identityProviders", state.public_url);
    let all = caller.tenant.external_idps.iter().map(IdentityProvider::from);
    Ok(HttpResponse::Ok().json(q.respond(all, &base, "#identity/identityProviders")?))
}

pub async fn get(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let mut caller = Caller::require(&req, &state, READ).await?;
    let idp = find(&mut caller.tenant, &path)?;
    Ok(HttpResponse::Ok().json(IdentityProvider::from(&*idp)))
}

/// `POST`: the provider's discovery document and JWKS are fetched and checked first.
pub async fn create(req: HttpRequest, body: web::Bytes, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: IdentityProviderIn = json_body(&req, &body)?;
    check_odata_type(b.odata_type.as_deref(), true)?;
    let name = display_name(required(&b.display_name, "displayName")?)?;
    let client_id = token(required(&b.client_id, "clientId")?, "clientId", CLIENT_ID_MAX)?;
    let secret = token(required(&b.client_secret, "clientSecret")?, "clientSecret", SECRET_MAX)?;
    let metadata_url = required(&b.metadata_url, "metadataUrl")?.to_string();
    let scope = scope(b.scope.as_deref().unwrap_or(DEFAULT_IDP_SCOPE))?;
    response_type(b.response_type.as_deref())?;
    let mut tenant = caller.tenant;
    if tenant.external_idps.len() >= MAX_PROVIDERS {
        return Err(bad(format!("A tenant has at most {MAX_PROVIDERS} identity providers.")));
    }
    let domains = domains(&state, &tenant, b.domains.as_deref().unwrap_or_default(), None).await?;
    external::base_of(&metadata_url).map_err(|e| bad(format!("{e}.")))?;
    let issuer = discovered_issuer(&state, &metadata_url).await?;
    unique_issuer(&tenant, &issuer, None)?;
    let idp = ExternalIdp {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: name,
        issuer,
        client_id,
        client_secret: crate::secrets::Secret::new(state.seal.seal(&secret)),
        domains,
        metadata_url,
        scope,
    };
    let out = IdentityProvider::from(&idp);
    tenant.external_idps.push(idp);
    save(&state, &tenant).await?;
    Ok(HttpResponse::Created().json(out))
}

/// `PATCH`: any field; a new `metadataUrl` is checked as on create and sets the issuer.
pub async fn patch(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let b: IdentityProviderIn = json_body(&req, &body)?;
    check_odata_type(b.odata_type.as_deref(), false)?;
    let mut tenant = caller.tenant;
    let id = find(&mut tenant, &path)?.id.clone();
    let name = b.display_name.as_deref().map(display_name).transpose()?;
    let client_id = b.client_id.as_deref().map(|c| token(c, "clientId", CLIENT_ID_MAX)).transpose()?;
    let secret = b.client_secret.as_deref().map(|c| token(c, "clientSecret", SECRET_MAX)).transpose()?;
    let scope = b.scope.as_deref().map(scope).transpose()?;
    response_type(b.response_type.as_deref())?;
    let domains = match &b.domains {
        Some(d) => Some(domains(&state, &tenant, d, Some(&id)).await?),
        None => None,
    };
    let discovered = match &b.metadata_url {
        Some(u) => {
            external::base_of(u).map_err(|e| bad(format!("{e}.")))?;
            let issuer = discovered_issuer(&state, u).await?;
            unique_issuer(&tenant, &issuer, Some(&id))?;
            Some((u.clone(), issuer))
        }
        None => None,
    };
    let sealed = secret.map(|s| crate::secrets::Secret::new(state.seal.seal(&s)));
    let idp = find(&mut tenant, &id)?;
    if let Some(n) = name {
        idp.display_name = n;
    }
    if let Some(c) = client_id {
        idp.client_id = c;
    }
    if let Some(s) = sealed {
        idp.client_secret = s;
    }
    if let Some(s) = scope {
        idp.scope = s;
    }
    if let Some(d) = domains {
        idp.domains = d;
    }
    if let Some((url, issuer)) = discovered {
        idp.metadata_url = url;
        idp.issuer = issuer;
    }
    save(&state, &tenant).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE`: guests who came through the provider can no longer sign in through it.
pub async fn delete(req: HttpRequest, path: web::Path<String>, state: Data) -> Result<HttpResponse, GraphError> {
    let caller = Caller::require(&req, &state, WRITE).await?;
    let mut tenant = caller.tenant;
    let id = find(&mut tenant, &path)?.id.clone();
    tenant.external_idps.retain(|i| i.id != id);
    save(&state, &tenant).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_dns_names_lowercased() {
        assert_eq!(dns_name("Partner.Example").as_deref(), Some("partner.example"));
        assert_eq!(dns_name("a-b.c.example.").as_deref(), Some("a-b.c.example"));
        for bad in ["partner", "-a.example", "a-.example", "a..example", "a b.example", "ä.example", "", "@x.example"]
        {
            assert_eq!(dns_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn scope_must_hold_openid_and_be_tokens() {
        assert_eq!(scope("openid  email").unwrap(), "openid email");
        assert!(scope("profile email").is_err());
        assert!(scope("openid \"x\"").is_err());
        assert!(scope("openidx").is_err());
    }
}
