//! Home identity providers: home realm discovery, and outbound OpenID Connect (code +
//! PKCE + nonce, ID token validated against the home issuer's JWKS) with `openidconnect`.
//! Sibling tenants, external providers and the built-in stubs all take this one path.
pub mod external;
pub mod ssrf;
pub mod stub;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, JsonWebKeySet, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::model::{Amr, EMAIL_OTP_ISSUER, Home};
use crate::model::{Application, ClientType, SigningAlg, Tenant};
use crate::secrets::{b64url, digest_hex, mac};
use crate::storage::Store;

/// The client gatehouse registers in each of its own tenants to federate guests to them.
pub const B2B_CLIENT_ID: &str = "gatehouse-b2b";

/// What a home IdP proved, after its ID token was validated.
#[derive(Debug, Clone)]
pub struct HomeIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// The methods of the home's `amr` that gatehouse knows (only `mfa` counts here).
    pub amr: Vec<Amr>,
    /// A sibling home tenant's `tid`, `oid` and `xms_dev` (cross-tenant access); `None` for
    /// every other home, whose claims of that name mean nothing here.
    pub sibling: Option<crate::model::HomeSignIn>,
}

/// The claims only a sibling tenant's ID token carries for gatehouse (read after validation).
#[derive(serde::Deserialize)]
struct SiblingClaims {
    tid: crate::model::TenantId,
    oid: crate::model::UserId,
    #[serde(default)]
    xms_dev: Option<crate::model::HomeDevice>,
}

/// `tid`, `oid` and `xms_dev` of an ID token whose signature and claims were already checked.
fn sibling_claims(id_token: &str) -> Option<crate::model::HomeSignIn> {
    let payload = id_token.split('.').nth(1)?;
    let c: SiblingClaims = serde_json::from_slice(&crate::secrets::b64url_decode(payload)?).ok()?;
    Some(crate::model::HomeSignIn { tenant_id: c.tid, user_id: c.oid, device: c.xms_dev })
}

struct Provider {
    issuer: String,
    client_id: String,
    client_secret: String,
    /// Scopes asked besides `openid` (which openidconnect always sends).
    scopes: Vec<String>,
}

/// What gatehouse asks of its own tenants and the stubs besides `openid`.
fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

pub fn callback_url(state: &AppState) -> String {
    format!("{}/federation/callback", state.public_url)
}

pub fn stubs_enabled(state: &AppState) -> bool {
    state.config.demo || state.config.stubs
}

/// Home realm discovery on the email's domain, in Entra's order.
pub async fn discover(state: &AppState, resource: &Tenant, email: &str) -> Result<Home, crate::storage::StoreError> {
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).unwrap_or_default();
    if let Some(home) = state.store.tenant_by_domain(&domain).await?
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
pub async fn home_of_issuer(
    state: &AppState,
    resource: &Tenant,
    issuer: &str,
) -> Result<Option<Home>, crate::storage::StoreError> {
    if issuer == EMAIL_OTP_ISSUER {
        return Ok(Some(Home::EmailOtp));
    }
    if let Some(name) = issuer.strip_prefix(&format!("{}/stub/", state.public_url))
        && stub::STUBS.iter().any(|s| s.name == name)
    {
        return Ok(Some(Home::Stub { name: name.into() }));
    }
    if let Some(slug) = state.slug_of_issuer(issuer)
        && state.store.tenant_by_slug(slug).await?.is_some()
    {
        return Ok(Some(Home::Tenant { slug: slug.into() }));
    }
    Ok(resource.external_idps.iter().find(|i| i.issuer == issuer).map(|i| Home::External { idp_id: i.id.clone() }))
}

fn provider(state: &AppState, resource: &Tenant, home: &Home) -> Result<Provider, String> {
    match home {
        Home::Tenant { slug } => Ok(Provider {
            issuer: state.issuer_of_slug(slug),
            client_id: B2B_CLIENT_ID.into(),
            client_secret: b2b_secret(&state.instance_secret, slug),
            scopes: default_scopes(),
        }),
        Home::External { idp_id } => {
            let idp = resource.external_idps.iter().find(|i| &i.id == idp_id).ok_or("the home provider is gone")?;
            Ok(Provider {
                issuer: idp.issuer.clone(),
                client_id: idp.client_id.clone(),
                // Sealed since Graph configures it; a record written before that holds it in clear.
                client_secret: state
                    .seal
                    .open(idp.client_secret.expose())
                    .ok_or("the provider's secret cannot be opened")?,
                scopes: idp.scope.split_whitespace().filter(|s| *s != "openid").map(String::from).collect(),
            })
        }
        Home::Stub { name } => Ok(Provider {
            issuer: format!("{}/stub/{name}", state.public_url),
            client_id: stub::CLIENT_ID.into(),
            client_secret: stub::client_secret(&state.instance_secret, name),
            scopes: default_scopes(),
        }),
        Home::EmailOtp => Err("email one-time passcode is not federation".into()),
    }
}

pub fn b2b_secret(instance_secret: &[u8], home_slug: &str) -> String {
    b64url(&mac(instance_secret, &[b"b2b", home_slug.as_bytes()]))
}

/// Registers (or refreshes) the federation client in every tenant of this instance.
pub async fn ensure_b2b_clients(
    store: &Store,
    public_url: &str,
    instance_secret: &[u8],
) -> Result<(), crate::storage::StoreError> {
    for t in store.tenants().await? {
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
            // The instance's own federation between its tenants: consent is the redemption's.
            first_party: true,
            group_membership_claims: None,
            registration: Default::default(),
        };
        if store.app(&t.id, B2B_CLIENT_ID).await?.as_ref() != Some(&app) {
            store.put_app(&app).await?;
        }
    }
    Ok(())
}

/// Largest answer accepted from a home IdP (discovery, JWKS, token): a few KiB in practice.
pub const HOME_BODY_LIMIT: usize = 256 * 1024;
/// Longest a whole request to a home IdP may take, body included.
pub const HOME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a home's discovery document and JWKS are reused before they are fetched again.
pub const METADATA_TTL_SECS: i64 = 300;
/// Issuers whose metadata is kept at most (they come from configuration: a handful).
const METADATA_CACHE_MAX: usize = 1000;
/// Clock difference tolerated between gatehouse and a home when checking `auth_time`.
pub const AUTH_TIME_SKEW_SECS: i64 = 30;

/// Why a request to a home IdP failed.
#[derive(Debug, thiserror::Error)]
pub enum HomeHttpError {
    #[error("request to the home provider failed: {0}")]
    Request(String),
    #[error("the home provider's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the home provider did not answer within {0:?}")]
    Timeout(Duration),
}

/// One request to a home IdP, with the body read as it streams in and cut at `limit` bytes,
/// and the whole exchange cut at `timeout` (openidconnect's own reqwest client reads any size).
pub async fn capped_call(
    http: &reqwest::Client,
    request: HttpRequest,
    limit: usize,
    timeout: Duration,
) -> Result<HttpResponse, HomeHttpError> {
    let exchange = async {
        let request: reqwest::Request =
            request.try_into().map_err(|e: reqwest::Error| HomeHttpError::Request(e.to_string()))?;
        let mut response = http.execute(request).await.map_err(|e| HomeHttpError::Request(e.to_string()))?;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(HomeHttpError::TooLarge(limit));
        }
        let mut builder = openidconnect::http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| HomeHttpError::Request(e.to_string()))? {
            if body.len() + chunk.len() > limit {
                return Err(HomeHttpError::TooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        builder.body(body).map_err(|e| HomeHttpError::Request(e.to_string()))
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| HomeHttpError::Timeout(timeout))?
}

/// The one extra discovery field gatehouse reads (RFC 9207 §3).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
}
impl AdditionalProviderMetadata for IssMetadata {}

pub type HomeMetadata = ProviderMetadata<
    IssMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// Home metadata (discovery + JWKS) by issuer, with the time it was fetched.
#[derive(Default)]
pub struct MetadataCache {
    entries: Mutex<HashMap<String, (i64, Arc<HomeMetadata>)>>,
}

impl MetadataCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, Arc<HomeMetadata>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, issuer: &str, now: i64) -> Option<Arc<HomeMetadata>> {
        self.lock().get(issuer).filter(|(at, _)| now - at < METADATA_TTL_SECS && *at <= now).map(|(_, m)| m.clone())
    }

    fn store(&self, issuer: &str, now: i64, metadata: Arc<HomeMetadata>) {
        let mut map = self.lock();
        if map.len() >= METADATA_CACHE_MAX && !map.contains_key(issuer) {
            map.retain(|_, (at, _)| now - *at < METADATA_TTL_SECS);
            if map.len() >= METADATA_CACHE_MAX {
                map.clear();
            }
        }
        map.insert(issuer.to_string(), (now, metadata));
    }
}

type HomeFuture<'a> = std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HomeHttpError>> + Send + 'a>>;

/// The HTTP client openidconnect uses for every request to a home: capped in size and time.
fn home_http<'a>(state: &'a AppState) -> impl Fn(HttpRequest) -> HomeFuture<'a> + 'a {
    move |r| Box::pin(capped_call(&state.http, r, HOME_BODY_LIMIT, HOME_TIMEOUT))
}

/// The home's metadata, from the cache while it is fresh.
async fn metadata(state: &AppState, homes: &MetadataCache, issuer: &str) -> Result<Arc<HomeMetadata>, String> {
    let now = state.now();
    if let Some(m) = homes.fresh(issuer, now) {
        return Ok(m);
    }
    let url = IssuerUrl::new(issuer.to_string()).map_err(|e| e.to_string())?;
    let fetched = HomeMetadata::discover_async(url, &home_http(state))
        .await
        .map_err(|e| format!("discovery of {issuer}: {e}"))?;
    let fetched = Arc::new(fetched);
    homes.store(issuer, now, fetched.clone());
    Ok(fetched)
}

/// Fetches the home's JWKS again (an ID token named a key the cached set lacks: rotation).
async fn refresh_jwks(
    state: &AppState,
    homes: &MetadataCache,
    issuer: &str,
    old: &HomeMetadata,
) -> Result<Arc<HomeMetadata>, String> {
    let keys = JsonWebKeySet::fetch_async(old.jwks_uri(), &home_http(state))
        .await
        .map_err(|e| format!("JWKS of {issuer}: {e}"))?;
    let fresh = Arc::new(old.clone().set_jwks(keys));
    homes.store(issuer, state.now(), fresh.clone());
    Ok(fresh)
}

type Discovered =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

fn make_client(state: &AppState, p: &Provider, metadata: &HomeMetadata) -> Result<Discovered, String> {
    let redirect = RedirectUrl::new(callback_url(state)).map_err(|e| e.to_string())?;
    Ok(CoreClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(p.client_id.clone()),
        Some(ClientSecret::new(p.client_secret.clone())),
    )
    .set_redirect_uri(redirect))
}

/// What the resource tenant's sign-in asks of the home (forwarded as Keycloak's broker does).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Freshness {
    /// `prompt=login`: the person must authenticate again at the home.
    pub prompt_login: bool,
    /// The oldest authentication accepted, in seconds (`max_age`, sign-in frequency).
    pub max_age: Option<i64>,
}

pub struct Started {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// The issuer the request went to: the only `iss` its answer may carry.
    pub issuer: String,
    /// The home advertises RFC 9207, so its answer must carry `iss`.
    pub iss_required: bool,
}

/// Builds the authorization request to the home IdP.
pub async fn start(
    state: &AppState,
    homes: &MetadataCache,
    resource: &Tenant,
    home: &Home,
    login_hint: &str,
    fresh: Freshness,
) -> Result<Started, String> {
    let p = provider(state, resource, home)?;
    let metadata = metadata(state, homes, &p.issuer).await?;
    let client = make_client(state, &p, &metadata)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scopes(p.scopes.iter().map(|s| Scope::new(s.clone())))
        .add_extra_param("login_hint", login_hint)
        .set_pkce_challenge(challenge);
    if fresh.prompt_login {
        request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
    }
    if let Some(m) = fresh.max_age {
        request = request.set_max_age(Duration::from_secs(m.max(0).unsigned_abs()));
    }
    let (url, csrf, nonce) = request.url();
    Ok(Started {
        url: url.to_string(),
        state: csrf.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        issuer: metadata.issuer().to_string(),
        iss_required: metadata.additional_metadata().authorization_response_iss_parameter_supported == Some(true),
    })
}

/// Whether an authorization response's `iss` is acceptable (RFC 9207 §2.4): when present it
/// must be the issuer the request went to; when the home advertises the parameter it must be present.
pub fn iss_acceptable(presented: Option<&str>, expected: &str, required: bool) -> bool {
    match presented {
        Some(iss) => crate::secrets::ct_eq(iss.as_bytes(), expected.as_bytes()),
        None => !required,
    }
}

/// Whether the home's `auth_time` honours what was forwarded: after the request was sent for
/// `prompt=login`, within `max_age` of it otherwise. Missing is fine only when nothing was asked.
pub fn auth_time_acceptable(auth_time: Option<i64>, started_at: i64, now: i64, fresh: Freshness) -> bool {
    let oldest = match (fresh.prompt_login, fresh.max_age) {
        (true, Some(m)) => started_at.min(started_at - m),
        (true, None) => started_at,
        (false, Some(m)) => started_at - m,
        // Nothing was asked: any auth_time (or none) will do; the caller clamps it to now.
        (false, None) => return true,
    };
    let Some(at) = auth_time else { return false };
    at <= now + AUTH_TIME_SKEW_SECS && at >= oldest - AUTH_TIME_SKEW_SECS
}

/// Redeems the home IdP's code and validates its ID token (signature, issuer, audience,
/// expiry, nonce). Returns the identity and the home's `auth_time`, if it sent one.
pub async fn finish(
    state: &AppState,
    homes: &MetadataCache,
    resource: &Tenant,
    home: &Home,
    code: &str,
    nonce: &str,
    verifier: &str,
) -> Result<(HomeIdentity, Option<i64>), String> {
    let p = provider(state, resource, home)?;
    let mut metadata = metadata(state, homes, &p.issuer).await?;
    let client = make_client(state, &p, &metadata)?;
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| e.to_string())?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
        .request_async(&home_http(state))
        .await
        .map_err(|e| format!("the home provider refused the code: {e}"))?;
    let id_token = response.id_token().ok_or("the home provider sent no ID token")?.clone();
    let now = state.now();
    let nonce = Nonce::new(nonce.to_string());
    let mut refreshed = false;
    let claims = loop {
        let client = make_client(state, &p, &metadata)?;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(vec![
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            ])
            .set_time_fn(move || chrono::DateTime::from_timestamp(now, 0).unwrap_or_default());
        match id_token.claims(&verifier, &nonce) {
            Ok(c) => break c.clone(),
            // A key the cached JWKS lacks: the home rotated; fetch its keys once more.
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                if !refreshed =>
            {
                refreshed = true;
                metadata = refresh_jwks(state, homes, &p.issuer, &metadata).await?;
            }
            Err(e) => return Err(format!("the home ID token did not validate: {e}")),
        }
    };
    let identity = HomeIdentity {
        issuer: claims.issuer().to_string(),
        subject: claims.subject().to_string(),
        email: claims.email().map(|e| e.to_string().to_ascii_lowercase()),
        email_verified: claims.email_verified().unwrap_or(false),
        amr: claims.auth_method_refs().map(|a| a.iter().filter_map(|r| Amr::parse(r)).collect()).unwrap_or_default(),
        sibling: match home {
            Home::Tenant { .. } => sibling_claims(&id_token.to_string()),
            _ => None,
        },
    };
    Ok((identity, claims.auth_time().map(|t| t.timestamp())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iss_is_checked_when_present_and_required_when_advertised() {
        let home = "https://home.example/v2.0";
        assert!(iss_acceptable(Some(home), home, true));
        assert!(iss_acceptable(Some(home), home, false));
        assert!(!iss_acceptable(Some("https://other.example"), home, false));
        assert!(!iss_acceptable(None, home, true));
        assert!(iss_acceptable(None, home, false));
    }

    #[test]
    fn auth_time_must_honour_what_was_forwarded() {
        let none = Freshness::default();
        let login = Freshness { prompt_login: true, max_age: None };
        let zero = Freshness { prompt_login: false, max_age: Some(0) };
        let hour = Freshness { prompt_login: false, max_age: Some(3600) };
        let (started, now) = (10_000, 10_100);
        assert!(auth_time_acceptable(None, started, now, none));
        assert!(auth_time_acceptable(Some(1), started, now, none));
        assert!(auth_time_acceptable(Some(now + 3600), started, now, none), "a skewed home clock, nothing asked");
        for f in [login, zero, hour] {
            assert!(!auth_time_acceptable(None, started, now, f), "{f:?}: auth_time is required");
            assert!(auth_time_acceptable(Some(started + 50), started, now, f), "{f:?}");
            assert!(!auth_time_acceptable(Some(now + 3600), started, now, f), "{f:?}: from the future");
        }
        assert!(!auth_time_acceptable(Some(started - 600), started, now, login));
        assert!(!auth_time_acceptable(Some(started - 600), started, now, zero));
        assert!(auth_time_acceptable(Some(started - 600), started, now, hour));
        assert!(!auth_time_acceptable(Some(started - 7200), started, now, hour));
        assert!(auth_time_acceptable(Some(started - AUTH_TIME_SKEW_SECS), started, now, login), "skew");
    }

    /// A loopback server that answers each connection with `reply` (headers and all), once per
    /// connection, for at most `n` connections; `None` reads the request and never answers.
    fn loopback(reply: Option<Vec<u8>>, n: usize) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let Ok(mut stream) = stream else { continue };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                match &reply {
                    Some(r) => drop(stream.write_all(r)),
                    // Silent until the client gives up and closes (read returns 0 or fails).
                    None => while stream.read(&mut buf).is_ok_and(|k| k > 0) {},
                }
            }
        });
        url
    }

    fn get(url: &str) -> HttpRequest {
        openidconnect::http::Request::builder().uri(url).body(Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn home_answers_are_cut_at_the_size_limit_and_the_time_limit() {
        let http = crate::secrets::http_client_builder().unwrap().build().unwrap();
        let limit = 1024;
        let declared = b"HTTP/1.1 200 OK\r\ncontent-length: 67108864\r\n\r\n{".to_vec();
        let r = capped_call(&http, get(&loopback(Some(declared), 1)), limit, HOME_TIMEOUT).await;
        assert!(matches!(r, Err(HomeHttpError::TooLarge(1024))), "a declared 64 MiB body: {r:?}");
        let mut streamed = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
        streamed.extend(std::iter::repeat_n(b'a', 4 * limit));
        let r = capped_call(&http, get(&loopback(Some(streamed), 1)), limit, HOME_TIMEOUT).await;
        assert!(matches!(r, Err(HomeHttpError::TooLarge(1024))), "an undeclared body: {r:?}");
        let mut small = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n".to_vec();
        small.extend(b"{}");
        let r = capped_call(&http, get(&loopback(Some(small), 1)), limit, HOME_TIMEOUT).await;
        assert_eq!(r.map(|r| r.into_body()).ok(), Some(b"{}".to_vec()), "a small body passes");
        let r = capped_call(&http, get(&loopback(None, 1)), limit, Duration::from_millis(200)).await;
        assert!(matches!(r, Err(HomeHttpError::Timeout(_))), "a home that never answers: {r:?}");
    }
}
