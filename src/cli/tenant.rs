//! `gatehouse tenant create|list|add-domain`: tenants and their verified domains, written to
//! the store offline (like `keys rotate`: with the embedded store while the server is
//! stopped). `create` can also bootstrap what a new tenant needs before Graph can be used:
//! an admin client (`gatehouse-admin`, secret from an environment variable) and a first
//! member who is a Global Administrator (password from an environment variable).
use crate::config::Config;
use crate::model::{
    Application, ClientType, PasswordCredential, Registration, SigningAlg, Tenant, TenantId, User, UserId, UserType,
    normalize_email,
};
use crate::storage::Store;

/// The admin client `tenant create --client-secret-env` registers.
pub const ADMIN_CLIENT_ID: &str = "gatehouse-admin";
/// Its app roles: the whole admin API.
const ADMIN_ROLES: [&str; 3] = ["Directory.ReadWrite.All", "User.Invite.All", "Application.ReadWrite.All"];
/// Its secret's life (as `addPassword`'s default); rotate it with addPassword/removePassword.
const ADMIN_SECRET_SECS: i64 = 2 * 365 * 86_400;
/// Path segments the server itself routes: a tenant slug must not shadow them.
const RESERVED_SLUGS: &[&str] = &[
    "graph",
    "stub",
    "demo",
    "outbox",
    "static",
    "health",
    "healthz",
    "metrics",
    "federation",
    "redeem",
    "admin",
    "common",
    "organizations",
    "consumers",
    "style.css",
    "favicon.ico",
];

/// What `tenant create` is given.
pub struct NewTenant {
    pub name: String,
    pub slug: Option<String>,
    pub domains: Vec<String>,
    pub seats: u32,
    pub client_secret_env: Option<String>,
    pub admin_upn: Option<String>,
    pub admin_password_env: Option<String>,
}

fn env_secret(var: &str, what: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("the environment variable {var} holds no {what}")),
    }
}

/// A DNS name of two or more labels, lowercased.
fn domain(d: &str) -> Result<String, String> {
    normalize_email(&format!("x@{d}"))
        .and_then(|m| m.split_once('@').map(|(_, d)| d.to_string()))
        .filter(|_| !d.contains('@'))
        .ok_or_else(|| format!("{d:?} is not a domain name (e.g. fabrikam.example)"))
}

fn slug_of(name: &str) -> String {
    let mut s: String = name.to_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    s.trim_matches('-').to_string()
}

fn check_slug(s: &str) -> Result<(), String> {
    let ok = (2..=40).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if !ok {
        return Err(format!(
            "{s:?}: a slug is 2 to 40 lower-case letters, digits and dashes (it is the tenant's URL path)"
        ));
    }
    if RESERVED_SLUGS.contains(&s) {
        return Err(format!("{s:?} is a path the server uses: choose another --slug"));
    }
    Ok(())
}

async fn open(config: &Config) -> Result<Store, String> {
    crate::storage::open_configured(config).await.map_err(|e| e.to_string())
}

/// Every domain must be new on this instance (a domain is verified by one tenant only).
async fn free_domains(store: &Store, domains: &[String]) -> Result<(), String> {
    for d in domains {
        if let Some(t) = store.tenant_by_domain(d).await.map_err(|e| e.to_string())? {
            return Err(format!("the domain {d} is already verified by the tenant {}", t.slug));
        }
    }
    Ok(())
}

/// `tenant create`: checks everything (and reads the secrets) before writing anything.
pub async fn create(config: &Config, n: NewTenant, now: i64) -> Result<String, String> {
    let name =
        crate::model::display_text("--name", &n.name, crate::model::DISPLAY_NAME_MAX).map_err(|e| e.to_string())?;
    let slug = n.slug.clone().unwrap_or_else(|| slug_of(&name));
    check_slug(&slug)?;
    let mut domains: Vec<String> = Vec::new();
    for d in &n.domains {
        let d = domain(d)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let initial = domains.first().cloned().ok_or("give at least one --domain")?;
    let client_secret = n.client_secret_env.as_deref().map(|v| env_secret(v, "client secret")).transpose()?;
    if client_secret.as_ref().is_some_and(|s| s.len() < 32) {
        return Err("the admin client secret must have at least 32 characters (e.g. `openssl rand -base64 32`)".into());
    }
    let admin = match (&n.admin_upn, &n.admin_password_env) {
        (Some(upn), Some(var)) => {
            let upn =
                normalize_email(upn).ok_or_else(|| format!("--admin-upn {upn:?} is not of the form name@domain"))?;
            if !domains.iter().any(|d| upn.ends_with(&format!("@{d}"))) {
                return Err(format!("--admin-upn {upn} is not in the tenant's domains ({})", domains.join(", ")));
            }
            let password = env_secret(var, "password")?;
            if let Some(problem) = crate::password::policy_problem(&password) {
                return Err(format!("the admin password in {var}: {problem}"));
            }
            Some((upn, password))
        }
        (None, None) => None,
        _ => return Err("--admin-upn and --admin-password-env go together".into()),
    };
    let store = open(config).await?;
    if store.tenant_by_slug(&slug).await.map_err(|e| e.to_string())?.is_some() {
        return Err(format!("a tenant {slug} exists already"));
    }
    free_domains(&store, &domains).await?;
    let tenant = Tenant {
        id: TenantId::new(),
        slug: slug.clone(),
        display_name: name,
        initial_domain: initial,
        domains,
        premium_seats: n.seats,
        members_can_invite: true,
        external_idps: vec![],
        cross_tenant: Default::default(),
        require_mfa: false,
        authentication_strengths: vec![],
        groups: vec![],
        agreements: vec![],
    };
    // The hash first: a failure leaves nothing written.
    let admin = match admin {
        Some((upn, password)) => Some((upn, crate::password::hash(&password, &config.argon2)?)),
        None => None,
    };
    store.put_tenant(&tenant).await.map_err(|e| e.to_string())?;
    let mut out = format!(
        "tenant {} ({}) created: id {}, domains {}, premium seats {}\n",
        tenant.slug,
        tenant.display_name,
        tenant.id,
        tenant.domains.join(", "),
        tenant.premium_seats
    );
    if let Some((upn, hash)) = admin {
        let user = User {
            id: UserId::new(),
            tenant_id: tenant.id,
            user_type: UserType::Member,
            user_principal_name: upn.clone(),
            mail: upn.clone(),
            display_name: "Administrator".into(),
            account_enabled: true,
            password_hash: Some(hash),
            roles: vec![crate::admin::ROLE_GLOBAL_ADMIN.into()],
            created_at: now,
            ..Default::default()
        };
        store.insert_user(&user).await.map_err(|e| e.to_string())?;
        out.push_str(&format!("admin member {upn} created (Global Administrator)\n"));
    }
    if let Some(secret) = client_secret {
        let app = Application {
            tenant_id: tenant.id,
            client_id: ADMIN_CLIENT_ID.into(),
            display_name: "gatehouse admin CLI".into(),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            client_type: ClientType::Confidential,
            secret_hashes: vec![],
            id_token_signed_response_alg: SigningAlg::ES256,
            app_roles: ADMIN_ROLES.iter().map(|r| r.to_string()).collect(),
            assignment_required: false,
            home_page_url: None,
            first_party: true,
            group_membership_claims: None,
            registration: Registration {
                password_credentials: vec![PasswordCredential {
                    key_id: uuid::Uuid::new_v4(),
                    display_name: Some("bootstrap (tenant create)".into()),
                    hint: secret.chars().take(3).collect(),
                    hash: crate::secrets::digest_hex(&secret),
                    start: now,
                    end: now + ADMIN_SECRET_SECS,
                }],
                ..Default::default()
            },
        };
        store.put_app(&app).await.map_err(|e| e.to_string())?;
        out.push_str(&format!(
            "admin client {ADMIN_CLIENT_ID} registered (roles {}; secret from {}, valid until {}):\n  \
             GATEHOUSE_SERVER=URL GATEHOUSE_TENANT={slug} GATEHOUSE_CLIENT_ID={ADMIN_CLIENT_ID} GATEHOUSE_CLIENT_SECRET=… gatehouse users list\n",
            ADMIN_ROLES.join(", "),
            n.client_secret_env.as_deref().unwrap_or_default(),
            crate::clock::rfc3339(now + ADMIN_SECRET_SECS)
        ));
    }
    store.flush().await.map_err(|e| e.to_string())?;
    Ok(out)
}

pub async fn list(config: &Config) -> Result<String, String> {
    let store = open(config).await?;
    let mut tenants = store.tenants().await.map_err(|e| e.to_string())?;
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let rows: Vec<Vec<String>> = tenants
        .iter()
        .map(|t| {
            vec![
                t.slug.clone(),
                t.id.to_string(),
                t.display_name.clone(),
                t.domains.join(","),
                t.premium_seats.to_string(),
            ]
        })
        .collect();
    Ok(crate::admin::client::table(&["Slug", "Id", "Name", "Domains", "Seats"], &rows))
}

/// `tenant add-domain`: the admin verified `domain` for the tenant (gatehouse does no DNS check).
pub async fn add_domain(config: &Config, slug: &str, d: &str) -> Result<String, String> {
    let d = domain(d)?;
    let store = open(config).await?;
    let mut tenant =
        store.tenant_by_slug(slug).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("no tenant {slug}"))?;
    if tenant.domains.contains(&d) {
        return Err(format!("{slug} has the domain {d} already"));
    }
    free_domains(&store, std::slice::from_ref(&d)).await?;
    tenant.domains.push(d.clone());
    store.put_tenant(&tenant).await.map_err(|e| e.to_string())?;
    store.flush().await.map_err(|e| e.to_string())?;
    Ok(format!("{slug}: domain {d} added (domains {})", tenant.domains.join(", ")))
}
