//! The demo declaration (DESIGN.md §7), applied once to a new data dir. Passwords and
//! client secrets are random per data dir and written to `demo-credentials.json` (0600).
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Argon2Params;
use crate::model::{Application, ClientType, SigningAlg, Tenant, User, UserType};
use crate::password;
use crate::secrets::{b64url, digest_hex, mac, random_bytes};
use crate::storage::{Store, StoreError};

/// The built-in demo relying parties: (path slug, tenant slug, client id, display name, note).
pub const DEMO_APPS: &[(&str, &str, &str, &str, &str)] = &[
    ("foo", "fabrikam", "foo", "Foo", "Fabrikam's app Foo"),
    ("bar", "fabrikam", "bar", "Bar", "Fabrikam's app Bar"),
    ("portal", "contoso", "portal", "Contoso Portal", "Contoso's own app"),
];

pub const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// Fabrikam's group that its guest device policy excludes.
pub const PARTNER_AUDITORS: &str = "Partner auditors";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoUser {
    pub tenant: String,
    pub login: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoClient {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoAdmin {
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoCredentials {
    pub url: String,
    pub users: Vec<DemoUser>,
    pub clients: Vec<DemoClient>,
    pub admin: DemoAdmin,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("demo credentials file: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo credentials file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("hashing a demo password: {0}")]
    Hash(String),
}

/// The client secret of a built-in demo RP, derived so it is never stored in clear.
pub fn demo_rp_secret(instance_secret: &[u8], tenant: &str, client_id: &str) -> String {
    b64url(&mac(instance_secret, &[b"demo-rp", tenant.as_bytes(), client_id.as_bytes()]))
}

fn password_like() -> String {
    // 96 bits, readable: four groups of four base64url characters.
    let raw = b64url(&random_bytes::<12>());
    raw.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).to_string()).collect::<Vec<_>>().join("-")
}

fn tenant(slug: &str, name: &str, domain: &str, seats: u32) -> Tenant {
    Tenant {
        id: crate::model::TenantId::new(),
        slug: slug.into(),
        display_name: name.into(),
        initial_domain: domain.into(),
        domains: vec![domain.into()],
        premium_seats: seats,
        members_can_invite: true,
        external_idps: vec![],
        cross_tenant: Default::default(),
        require_mfa: false,
        authentication_strengths: vec![],
        groups: vec![],
        agreements: vec![],
    }
}

fn confidential(
    tenant: &Tenant,
    client_id: &str,
    name: &str,
    secret: &str,
    redirect: &[String],
    logout: &[String],
) -> Application {
    Application {
        tenant_id: tenant.id,
        client_id: client_id.into(),
        display_name: name.into(),
        redirect_uris: redirect.to_vec(),
        post_logout_redirect_uris: logout.to_vec(),
        client_type: ClientType::Confidential,
        secret_hashes: vec![digest_hex(secret)],
        id_token_signed_response_alg: SigningAlg::ES256,
        app_roles: vec![],
        assignment_required: false,
        home_page_url: None,
        // Every app the demo declares (its own apps, test-rp, the admin client) is first-party.
        first_party: true,
        group_membership_claims: None,
        registration: Default::default(),
    }
}

/// Seeds the demo once; on later starts refreshes what depends on the URL.
/// Returns the credentials, also written to `{data_dir}/demo-credentials.json`.
/// The demo credentials in the store, sealed under the key-encryption key, for nodes that
/// did not seed (a shared database): the demo passwords are never stored in clear.
pub const SEALED_CREDENTIALS: &str = "demo_credentials_sealed";

pub async fn apply(
    store: &Store,
    data_dir: &Path,
    public_url: &str,
    instance_secret: &[u8],
    argon2: &Argon2Params,
    now: i64,
    kek: Option<&crate::secrets::Kek>,
) -> Result<DemoCredentials, DemoError> {
    // Nodes starting together on one database seed once: the first holds the lock, the
    // others wait and then find the demo seeded.
    let _lock = store.hold_lock("demo-seed").await?;
    let file = data_dir.join(CREDENTIALS_FILE);
    let mut creds = match crate::storage::meta::<bool>(store, "demo_seeded").await? {
        Some(true) => match (std::fs::read(&file), kek) {
            (Ok(bytes), _) => serde_json::from_slice::<DemoCredentials>(&bytes)?,
            // Another node seeded: its credentials are in the store, sealed.
            (Err(_), Some(kek)) => {
                let sealed = store.meta_raw(SEALED_CREDENTIALS).await?.unwrap_or_default();
                let plain = kek.open(SEALED_CREDENTIALS, &sealed).map_err(DemoError::Hash)?;
                serde_json::from_slice::<DemoCredentials>(&plain)?
            }
            (Err(e), None) => return Err(e.into()),
        },
        // One argon2 block buffer for all the seeded passwords, freed once after them.
        _ => {
            let _blocks = password::ReusedBlocks::start();
            seed(store, argon2, now).await?
        }
    };
    // The demo RPs return to wherever this instance is served now.
    for (path, tenant_slug, client_id, name, _) in DEMO_APPS {
        if let Some(t) = store.tenant_by_slug(tenant_slug).await? {
            let secret = demo_rp_secret(instance_secret, tenant_slug, client_id);
            let redirect = vec![format!("{public_url}/demo/{path}/callback")];
            let logout = vec![format!("{public_url}/demo/{path}")];
            let mut app = confidential(&t, client_id, name, &secret, &redirect, &logout);
            app.home_page_url = Some(format!("{public_url}/demo/{path}/login"));
            // Bar's tokens name the user's groups (DESIGN §11).
            if *client_id == "bar" {
                app.group_membership_claims = Some("SecurityGroup".into());
            }
            store.put_app(&app).await?;
        }
    }
    creds.url = public_url.to_string();
    write_private(&file, &serde_json::to_vec_pretty(&creds)?)?;
    if let Some(kek) = kek {
        let sealed = kek.seal(SEALED_CREDENTIALS, &serde_json::to_vec(&creds)?).map_err(DemoError::Hash)?;
        store.put_meta_raw(SEALED_CREDENTIALS, &sealed).await?;
    }
    crate::storage::put_meta(store, "demo_seeded", &true).await?;
    store.flush().await?;
    Ok(creds)
}

async fn seed(store: &Store, argon2: &Argon2Params, now: i64) -> Result<DemoCredentials, DemoError> {
    let mut fabrikam = tenant("fabrikam", "Fabrikam", "fabrikam.example", 25);
    // The seed's "exclusion list of specific partner users", as a group the device policy
    // excludes. Guests exist only once invited, so it starts empty (README: how to add Sally).
    fabrikam.groups.push(crate::model::Group {
        id: Uuid::new_v4(),
        display_name: PARTNER_AUDITORS.into(),
        description: Some("Partner users the guest device policy does not apply to".into()),
        mail_nickname: "partner-auditors".into(),
        security_enabled: true,
        created_date_time: crate::clock::rfc3339(now),
    });
    let contoso = tenant("contoso", "Contoso", "contoso.example", 5);
    store.put_tenant(&fabrikam).await?;
    store.put_tenant(&contoso).await?;

    let mut users = Vec::new();
    let mut fabrikam_admin = crate::model::UserId::new();
    for (t, login, name, roles) in [
        (&fabrikam, "admin@fabrikam.example", "Fabrikam Admin", vec!["Global Administrator".to_string()]),
        (&fabrikam, "iw@fabrikam.example", "Ivan Worker", vec![]),
        (&contoso, "sally@contoso.example", "Sally Contoso", vec![]),
        // Contoso's own admin can turn on "Contoso MFA for everyone" to show double MFA.
        (&contoso, "admin@contoso.example", "Contoso Admin", vec!["Global Administrator".to_string()]),
    ] {
        let pw = password_like();
        let hash = password::hash(&pw, argon2).map_err(DemoError::Hash)?;
        let id = crate::model::UserId::new();
        if login == "admin@fabrikam.example" {
            fabrikam_admin = id;
        }
        store
            .insert_user(&User {
                id,
                tenant_id: t.id,
                user_type: UserType::Member,
                user_principal_name: login.into(),
                mail: login.into(),
                display_name: name.into(),
                account_enabled: true,
                per_user_mfa: false,
                password_hash: Some(hash),
                risk_level: None,
                roles,
                created_at: now,
                ..Default::default()
            })
            .await?;
        users.push(DemoUser { tenant: t.slug.clone(), login: login.into(), password: pw });
    }

    for (stub, login, name) in
        [("social", "gsamoogle@gmail.example", "G. Samoogle"), ("msa", "alex@outlook.example", "Alex Outlook")]
    {
        let pw = password_like();
        let hash = password::hash(&pw, argon2).map_err(DemoError::Hash)?;
        store
            .put_stub_account(
                stub,
                &crate::model::StubAccount {
                    sub: Uuid::new_v4().simple().to_string(),
                    login: login.into(),
                    display_name: name.into(),
                    password_hash: hash,
                },
            )
            .await?;
        users.push(DemoUser { tenant: format!("stub:{stub}"), login: login.into(), password: pw });
    }

    let mut clients = Vec::new();
    let redirect = vec!["http://127.0.0.1/callback".to_string()];
    let logout = vec!["http://127.0.0.1/logged-out".to_string()];
    for t in [&fabrikam, &contoso] {
        let secret = crate::secrets::new_token();
        store.put_app(&confidential(t, "test-rp", "Test RP", &secret, &redirect, &logout)).await?;
        clients.push(DemoClient {
            tenant: t.slug.clone(),
            client_id: "test-rp".into(),
            client_secret: secret,
            redirect_uris: redirect.clone(),
        });
    }

    seed_policies(store, &fabrikam, &contoso, &fabrikam_admin).await?;

    let admin_secret = crate::secrets::new_token();
    let mut admin = confidential(&fabrikam, "gatehouse-admin", "gatehouse admin CLI", &admin_secret, &[], &[]);
    admin.app_roles = vec!["Directory.ReadWrite.All".into(), "User.Invite.All".into()];
    store.put_app(&admin).await?;

    Ok(DemoCredentials {
        url: String::new(),
        users,
        clients,
        admin: DemoAdmin {
            tenant: "fabrikam".into(),
            client_id: "gatehouse-admin".into(),
            client_secret: admin_secret,
        },
    })
}

/// Fabrikam: "Require MFA for Foo" (app level), the trusted "Partner network", a report-only
/// device policy for guests that excludes the "Partner auditors" group, and a report-only phishing-resistant strength for its admin on
/// Bar (the sign-in log shows which strength it wanted and what met it). Contoso: its own MFA
/// policy, off until an admin turns it on.
async fn seed_policies(
    store: &Store,
    fabrikam: &Tenant,
    contoso: &Tenant,
    fabrikam_admin: &crate::model::UserId,
) -> Result<(), DemoError> {
    let location: crate::policy::NamedLocation = serde_json::from_value(serde_json::json!({
        "id": Uuid::new_v4().to_string(),
        "displayName": "Partner network",
        "isTrusted": true,
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}],
    }))?;
    store.put_named_location(&fabrikam.id, &location).await?;
    let auditors: Vec<String> =
        fabrikam.groups.iter().filter(|g| g.display_name == PARTNER_AUDITORS).map(|g| g.id.to_string()).collect();
    let policies = [
        (
            fabrikam,
            serde_json::json!({
                "id": Uuid::new_v4().to_string(),
                "displayName": "Require MFA for Foo",
                "state": "enabled",
                "conditions": {
                    "users": {"includeUsers": ["All"]},
                    "applications": {"includeApplications": ["foo"]},
                },
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
            }),
        ),
        (
            fabrikam,
            serde_json::json!({
                "id": Uuid::new_v4().to_string(),
                "displayName": "Guests need a compliant device (report-only)",
                "state": "enabledForReportingButNotEnforced",
                "conditions": {
                    "users": {"includeUsers": ["GuestsOrExternalUsers"], "excludeGroups": auditors},
                    "applications": {"includeApplications": ["All"]},
                },
                "grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]},
            }),
        ),
        (
            fabrikam,
            serde_json::json!({
                "id": Uuid::new_v4().to_string(),
                "displayName": "Phishing-resistant MFA for Bar admins",
                "state": "enabledForReportingButNotEnforced",
                "conditions": {
                    "users": {"includeUsers": [fabrikam_admin.to_string()]},
                    "applications": {"includeApplications": ["bar"]},
                },
                "grantControls": {
                    "operator": "OR",
                    "builtInControls": [],
                    "authenticationStrength": {"id": crate::policy::strength::PHISHING_RESISTANT_ID},
                },
            }),
        ),
        (
            contoso,
            serde_json::json!({
                "id": Uuid::new_v4().to_string(),
                "displayName": "Contoso MFA for everyone",
                "state": "disabled",
                "conditions": {
                    "users": {"includeUsers": ["All"]},
                    "applications": {"includeApplications": ["All"]},
                },
                "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
            }),
        ),
    ];
    for (tenant, json) in policies {
        let policy: crate::policy::Policy = serde_json::from_value(json)?;
        store.put_policy(&tenant.id, &policy).await?;
    }
    Ok(())
}

pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)
}
