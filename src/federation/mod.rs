//! Home identity providers: home realm discovery, and outbound OpenID Connect (code +
//! PKCE + nonce, ID token validated against the home issuer's JWKS) with `openidconnect`.
//! Sibling tenants, external providers and the built-in stubs all take this one path.
pub mod stub;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

use crate::directory::{Application, ClientType, SigningAlg, Tenant};
use crate::oidc::model::Home;
use crate::secrets::{b64url, digest_hex, mac};
use crate::storage::Store;
use crate::web::AppState;

/// The client gatehouse registers in each of its own tenants to federate guests to them.
pub const B2B_CLIENT_ID: &str = "gatehouse-b2b";

/// What a home IdP proved, after its ID token was validated.
#[derive(Debug, Clone)]
pub struct HomeIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub amr: Vec<String>,
}

struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
}

pub fn callback_url(state: &AppState) -> String {
    format!("{}/federation/callback", state.public_url)
}

pub fn stubs_enabled(state: &AppState) -> bool {
    state.config.demo || state.config.stubs
}

/// Home realm discovery on the email's domain, in Entra's order.
pub fn discover(state: &AppState, resource: &Tenant, email: &str) -> Result<Home, crate::storage::StoreError> {
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    if let Some(home) = state.store.tenant_by_domain(&domain)?
        && home.id != resource.id
    {
        return Ok(Home::Tenant { slug: home.slug });
    }
    if let Some(idp) = resource.external_idps.iter().find(|i| i.domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)))
    {
        return Ok(Home::External { idp_id: idp.id.clone() });
    }
    if stubs_enabled(state)
        && let Some(s) = stub::STUBS.iter().find(|s| s.domains.contains(&domain.as_str()))
    {
        return Ok(Home::Stub { name: s.name.into() });
    }
    Ok(Home::EmailOtp)
}

/// The home recorded for an accepted guest, from the issuer of its identity.
pub fn home_of_issuer(
    state: &AppState,
    resource: &Tenant,
    issuer: &str,
) -> Result<Option<Home>, crate::storage::StoreError> {
    if issuer == "mail" {
        return Ok(Some(Home::EmailOtp));
    }
    if let Some(name) = issuer.strip_prefix(&format!("{}/stub/", state.public_url))
        && stub::STUBS.iter().any(|s| s.name == name)
    {
        return Ok(Some(Home::Stub { name: name.into() }));
    }
    if let Some(slug) = issuer.strip_prefix(&format!("{}/", state.public_url)).and_then(|r| r.strip_suffix("/v2.0"))
        && state.store.tenant_by_slug(slug)?.is_some()
    {
        return Ok(Some(Home::Tenant { slug: slug.into() }));
    }
    Ok(resource.external_idps.iter().find(|i| i.issuer == issuer).map(|i| Home::External { idp_id: i.id.clone() }))
}

fn provider(state: &AppState, resource: &Tenant, home: &Home) -> Result<Provider, String> {
    match home {
        Home::Tenant { slug } => Ok(Provider {
            issuer: format!("{}/{slug}/v2.0", state.public_url),
            client_id: B2B_CLIENT_ID.into(),
            client_secret: b2b_secret(&state.instance_secret, slug),
        }),
        Home::External { idp_id } => {
            let idp = resource.external_idps.iter().find(|i| &i.id == idp_id).ok_or("the home provider is gone")?;
            Ok(Provider {
                issuer: idp.issuer.clone(),
                client_id: idp.client_id.clone(),
                client_secret: idp.client_secret.expose().to_string(),
            })
        }
        Home::Stub { name } => Ok(Provider {
            issuer: format!("{}/stub/{name}", state.public_url),
            client_id: stub::CLIENT_ID.into(),
            client_secret: stub::client_secret(&state.instance_secret, name),
        }),
        Home::EmailOtp => Err("email one-time passcode is not federation".into()),
    }
}

pub fn b2b_secret(instance_secret: &[u8], home_slug: &str) -> String {
    b64url(&mac(instance_secret, &[b"b2b", home_slug.as_bytes()]))
}

/// Registers (or refreshes) the federation client in every tenant of this instance.
pub fn ensure_b2b_clients(
    store: &Store,
    public_url: &str,
    instance_secret: &[u8],
) -> Result<(), crate::storage::StoreError> {
    for t in store.tenants()? {
        let app = Application {
            tenant_id: t.id,
            client_id: B2B_CLIENT_ID.into(),
            display_name: "gatehouse B2B federation".into(),
            redirect_uris: vec![format!("{public_url}/federation/callback")],
            post_logout_redirect_uris: vec![],
            client_type: ClientType::Confidential,
            secret_hashes: vec![digest_hex(&b2b_secret(instance_secret, &t.slug))],
            id_token_signed_response_alg: SigningAlg::ES256,
            app_roles: vec![],
            assignment_required: false,
            home_page_url: None,
            first_party: false,
        };
        if store.app(&t.id, B2B_CLIENT_ID)?.as_ref() != Some(&app) {
            store.put_app(&app)?;
        }
    }
    Ok(())
}

type Discovered =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

async fn client(state: &AppState, p: &Provider) -> Result<Discovered, String> {
    let issuer = IssuerUrl::new(p.issuer.clone()).map_err(|e| e.to_string())?;
    let metadata = CoreProviderMetadata::discover_async(issuer, &state.http)
        .await
        .map_err(|e| format!("discovery of {}: {e}", p.issuer))?;
    let redirect = RedirectUrl::new(callback_url(state)).map_err(|e| e.to_string())?;
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

/// Builds the authorization request to the home IdP.
pub async fn start(state: &AppState, resource: &Tenant, home: &Home, login_hint: &str) -> Result<Started, String> {
    let p = provider(state, resource, home)?;
    let client = client(state, &p).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .add_extra_param("login_hint", login_hint)
        .set_pkce_challenge(challenge)
        .url();
    Ok(Started {
        url: url.to_string(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    })
}

/// Redeems the home IdP's code and validates its ID token (signature, issuer, audience,
/// expiry, nonce).
pub async fn finish(
    state: &AppState,
    resource: &Tenant,
    home: &Home,
    code: &str,
    nonce: &str,
    verifier: &str,
) -> Result<HomeIdentity, String> {
    let p = provider(state, resource, home)?;
    let client = client(state, &p).await?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&state.http)
        .await
        .map_err(|e| format!("the home provider refused the code: {e}"))?;
    let id_token = response.id_token().ok_or("the home provider sent no ID token")?;
    let verifier = client.id_token_verifier().set_allowed_algs(vec![
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    ]);
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_string()))
        .map_err(|e| format!("the home ID token did not validate: {e}"))?;
    Ok(HomeIdentity {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string().to_ascii_lowercase()),
        email_verified: claims.email_verified().unwrap_or(false),
        amr: claims.auth_method_refs().map(|a| a.iter().map(|r| r.to_string()).collect()).unwrap_or_default(),
    })
}
