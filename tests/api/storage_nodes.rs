//! Two nodes on one PostgreSQL database (two `PgStore`s, as two gatehouse processes would
//! open): a write on one invalidates the other's caches within a second, through the
//! database's notifications rather than anything local. Skipped (said so) when
//! `GATEHOUSE_TEST_DATABASE_URL` is unset.
use std::sync::Arc;
use std::time::Duration;

use gatehouse::model::{Application, ClientType, KeyMeta, SigningAlg, Tenant, TenantId};
use gatehouse::policy::Policy;
use gatehouse::storage::{Change, Store};

/// How long a change may take to reach the other node (DESIGN §8: within one second).
const WITHIN: Duration = Duration::from_secs(1);

async fn node(url: &str) -> Store {
    let options = gatehouse::storage::postgres::PgOptions {
        url: url.into(),
        pool_size: 4,
        threads: 1,
        timeout: Duration::from_secs(10),
    };
    Arc::new(gatehouse::storage::postgres::PgStore::open(options).await.unwrap())
}

/// Two nodes whose listeners are up: each has heard a change of its own through the database.
async fn two_nodes() -> Option<(Store, Store)> {
    let Some(url) = crate::helpers::fresh_database().await else {
        println!("storage_nodes: PostgreSQL skipped (GATEHOUSE_TEST_DATABASE_URL is not set)");
        return None;
    };
    let (a, b) = (node(&url).await, node(&url).await);
    for store in [&a, &b] {
        let mut heard = store.changes();
        let probe = TenantId::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            store.put_policy(&probe, &policy("probe")).await.unwrap();
            match tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + WITHIN), heard.recv()).await {
                Ok(Ok(Change::Policies(t))) if t == probe => break,
                Ok(_) => {}
                Err(_) => assert!(tokio::time::Instant::now() < deadline, "a node's listener never came up"),
            }
        }
    }
    Some((a, b))
}

fn policy(id: &str) -> Policy {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "displayName": format!("policy {id}"),
        "state": "enabled",
        "conditions": {
            "users": { "includeUsers": ["All"] },
            "applications": { "includeApplications": ["All"] }
        },
        "grantControls": { "builtInControls": ["mfa"] }
    }))
    .unwrap()
}

/// The ids of the policies `store` evaluates for `tenant`, once they equal `want` (or
/// whatever they are when `WITHIN` has passed).
async fn evaluated_within(store: &Store, tenant: &TenantId, want: &[&str]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let ids: Vec<String> = store.ca_records(tenant).await.unwrap().policies.iter().map(|p| p.id.clone()).collect();
        if ids == want || tokio::time::Instant::now() >= deadline {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_written_on_one_node_is_evaluated_by_the_other_within_a_second() {
    let Some((a, b)) = two_nodes().await else { return };
    let tenant = TenantId::new();
    assert!(b.ca_records(&tenant).await.unwrap().policies.is_empty(), "B caches the empty set");
    assert!(b.ca_records(&tenant).await.unwrap().policies.is_empty());

    a.put_policy(&tenant, &policy("p1")).await.unwrap();
    assert_eq!(a.ca_records(&tenant).await.unwrap().policies.len(), 1, "the writing node sees its write at once");
    assert_eq!(evaluated_within(&b, &tenant, &["p1"]).await, ["p1"], "B drops its cached set");

    a.put_policy(&tenant, &policy("p2")).await.unwrap();
    assert_eq!(evaluated_within(&b, &tenant, &["p1", "p2"]).await, ["p1", "p2"]);
    assert!(a.delete_policy(&tenant, "p1").await.unwrap());
    assert_eq!(evaluated_within(&b, &tenant, &["p2"]).await, ["p2"], "a delete reaches B too");
    let other = TenantId::new();
    assert!(b.ca_records(&other).await.unwrap().policies.is_empty(), "another tenant is not touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_on_one_node_are_heard_by_the_other() {
    let Some((a, b)) = two_nodes().await else { return };
    let mut heard = b.changes();
    let key = KeyMeta { kid: "k1".into(), alg: SigningAlg::ES256, created_at: 0, activates_at: 0, retires_at: None };
    a.put_key_sealed(&key, &[1, 2, 3]).await.unwrap();
    assert_eq!(hear_keys(&mut heard).await, Change::Keys, "a new key");
    assert_eq!(b.key_sealed("k1").await.unwrap(), Some(vec![1, 2, 3]), "and B reads it");
    a.delete_key_meta("k1").await.unwrap();
    assert_eq!(hear_keys(&mut heard).await, Change::Keys, "a retired key");
    assert!(b.key_metas().await.unwrap().is_empty());
}

/// The next key change B hears within a second. A late echo of `two_nodes`'s probe (a
/// policy change: the probe may have been written more than once) is not it.
async fn hear_keys(heard: &mut tokio::sync::broadcast::Receiver<Change>) -> Change {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let change = tokio::time::timeout_at(deadline, heard.recv()).await.expect("B hears within a second").unwrap();
        if !matches!(change, Change::Policies(_)) {
            return change;
        }
    }
}

fn tenant(id: TenantId, slug: &str, name: &str) -> Tenant {
    Tenant {
        id,
        slug: slug.into(),
        display_name: name.into(),
        initial_domain: format!("{slug}.example"),
        domains: vec![],
        premium_seats: 0,
        members_can_invite: true,
        external_idps: vec![],
        cross_tenant: Default::default(),
        require_mfa: false,
        authentication_strengths: vec![],
        groups: vec![],
        agreements: vec![],
    }
}

fn app(tenant: TenantId, name: &str) -> Application {
    Application {
        tenant_id: tenant,
        client_id: "rp".into(),
        display_name: name.into(),
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec![],
        client_type: ClientType::Confidential,
        secret_hashes: vec![],
        id_token_signed_response_alg: SigningAlg::ES256,
        app_roles: vec![],
        assignment_required: false,
        home_page_url: None,
        first_party: false,
        group_membership_claims: None,
        registration: Default::default(),
    }
}

/// What `read` gives once it equals `want` (or whatever it is when `WITHIN` has passed).
async fn read_within<T: PartialEq, F: std::future::Future<Output = T>>(want: T, mut read: impl FnMut() -> F) -> T {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let got = read().await;
        if got == want || tokio::time::Instant::now() >= deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Tenants (by id and by slug) and applications are cached per node: a change on A reaches
/// B's cache within a second, and A reads its own write at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_or_app_written_on_one_node_is_read_by_the_other_within_a_second() {
    let Some((a, b)) = two_nodes().await else { return };
    let id = TenantId::new();
    a.put_tenant(&tenant(id, "nodes", "Before")).await.unwrap();
    a.put_app(&app(id, "Old app")).await.unwrap();
    let name = |t: Option<Tenant>| t.map(|t| t.display_name);
    // B reads (and caches) all three; twice, so the second comes from its cache.
    for _ in 0..2 {
        assert_eq!(name(b.tenant(&id).await.unwrap()).as_deref(), Some("Before"));
        assert_eq!(name(b.tenant_by_slug("nodes").await.unwrap()).as_deref(), Some("Before"));
        assert_eq!(b.app(&id, "rp").await.unwrap().map(|a| a.display_name).as_deref(), Some("Old app"));
    }

    a.put_tenant(&tenant(id, "renamed", "After")).await.unwrap();
    assert_eq!(name(a.tenant(&id).await.unwrap()).as_deref(), Some("After"), "the writing node sees its write at once");
    let got = read_within(Some("After".to_string()), || async { name(b.tenant(&id).await.unwrap()) }).await;
    assert_eq!(got.as_deref(), Some("After"), "B drops its cached tenant");
    let got = read_within(None, || async { name(b.tenant_by_slug("nodes").await.unwrap()) }).await;
    assert_eq!(got, None, "B drops the old slug");
    assert_eq!(name(b.tenant_by_slug("renamed").await.unwrap()).as_deref(), Some("After"));

    a.put_app(&app(id, "New app")).await.unwrap();
    assert_eq!(a.app(&id, "rp").await.unwrap().map(|a| a.display_name).as_deref(), Some("New app"));
    let got =
        read_within(Some("New app".to_string()), || async { b.app(&id, "rp").await.unwrap().map(|a| a.display_name) })
            .await;
    assert_eq!(got.as_deref(), Some("New app"), "B drops its cached application");
}

/// Two nodes starting together on an empty database migrate it once (the advisory lock),
/// and a database whose schema is newer than this binary knows is refused with a clear
/// message, nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once_and_a_newer_schema_is_refused() {
    let Some(url) = crate::helpers::fresh_database().await else {
        println!("storage_nodes: PostgreSQL skipped (GATEHOUSE_TEST_DATABASE_URL is not set)");
        return;
    };
    let (a, b) = tokio::join!(node(&url), node(&url));
    drop((a, b));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let applied = client.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    let versions: Vec<i32> = applied.iter().map(|r| r.get(0)).collect();
    assert_eq!(versions, [1, 2, 3], "each migration applied once");

    client.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)", &[]).await.unwrap();
    let options = gatehouse::storage::postgres::PgOptions {
        url: url.clone(),
        pool_size: 2,
        threads: 1,
        timeout: Duration::from_secs(10),
    };
    let refused = gatehouse::storage::postgres::PgStore::open(options).await.err().expect("a newer schema is refused");
    let message = refused.to_string();
    assert!(message.contains("newer than this gatehouse knows"), "{message}");
    let after = client.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
    assert_eq!(after.len(), versions.len() + 1, "nothing was applied or removed");
}
