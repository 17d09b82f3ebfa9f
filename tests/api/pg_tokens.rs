//! PostgreSQL only: what the storage contract cannot see through the trait — two nodes (two
//! stores) on one database deciding together, and the columns the database decides on
//! (`grants.revoked`, `refresh_tokens.rotated`, `users.holds_seat`, `signins.version`)
//! agreeing with the records, and the seat count (checked through redemption alone).
//! Prerequisite rows the contract would write through `DirectoryStore` are written here with
//! plain SQL. Each case is skipped without `GATEHOUSE_TEST_DATABASE_URL`.
use std::sync::Arc;

use gatehouse::model::{
    ExternalUserState, FedState, Invitation, InvitationStatus, SignIn, Tenant, TenantId, Ticket, TicketState, User,
    UserType,
};
use gatehouse::storage::{Redeemed, SignInAdmission, Store, decode, encode};
use uuid::Uuid;

use crate::storage_contract::{
    LIFE, N, NOW, code, code_use, count, grant, id32, identity, issue, no_grace, race, redeemed, refresh, refresh_use,
    signin, user,
};

/// Two nodes on one fresh database, and a plain connection to it; `None` without a cluster.
async fn two_nodes() -> Option<(Store, Store, tokio_postgres::Client)> {
    let url = crate::helpers::fresh_database().await?;
    let node = || async {
        let options = gatehouse::storage::postgres::PgOptions {
            url: url.clone(),
            pool_size: 8,
            threads: 1,
            timeout: std::time::Duration::from_secs(10),
        };
        let store: Store = Arc::new(gatehouse::storage::postgres::PgStore::open(options).await.unwrap());
        store
    };
    let (a, b) = (node().await, node().await);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    Some((a, b, client))
}

/// The node task `i` of a race talks to: they alternate.
fn node(i: usize, a: &Store, b: &Store) -> Store {
    if i.is_multiple_of(2) { a.clone() } else { b.clone() }
}

fn tenant(seats: u32) -> Tenant {
    let id = TenantId::new();
    Tenant {
        id,
        slug: format!("t{}", id.0.simple()),
        display_name: "Contoso".into(),
        initial_domain: "contoso.example".into(),
        domains: vec![],
        premium_seats: seats,
        members_can_invite: false,
        external_idps: vec![],
        cross_tenant: Default::default(),
        require_mfa: false,
        authentication_strengths: vec![],
        groups: vec![],
        agreements: vec![],
    }
}

/// Writes a user row as the directory keeps it.
async fn insert_user(db: &tokio_postgres::Client, u: &User) {
    db.execute(
        "INSERT INTO users (tenant_id, id, upn, mail, user_type, holds_seat, doc) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &u.tenant_id.to_string(),
            &u.id.to_string(),
            &u.user_principal_name.to_lowercase(),
            &Some(u.mail.to_lowercase()).filter(|m| !m.is_empty()),
            &u.user_type.as_str(),
            &u.holds_seat(),
            &encode(u).unwrap(),
        ],
    )
    .await
    .unwrap();
}

/// A user row: (holds_seat, version, upn, mail, user_type, the record).
async fn user_row(db: &tokio_postgres::Client, u: &User) -> (bool, i64, String, Option<String>, String, User) {
    let r = db
        .query_one(
            "SELECT holds_seat, version, upn, mail, user_type, doc FROM users WHERE tenant_id = $1 AND id = $2",
            &[&u.tenant_id.to_string(), &u.id.to_string()],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), decode(r.get::<_, &[u8]>(5)).unwrap())
}

/// Checks through redemption alone (whatever table counts seats) that the tenant holds
/// exactly `n` seats: a new guest finds no seat under a limit of `n`, and one under `n + 1`.
/// Takes that seat.
async fn assert_seats_held(store: &Store, db: &tokio_postgres::Client, tenant: TenantId, n: u32) {
    let (_, _, ticket) = invited(store, db, tenant, &format!("probe{n}")).await;
    let at_n = redeemed(&store.redeem(&ticket, &identity(0), NOW, n).await.unwrap());
    assert_eq!(at_n, "no_seat", "at least {n} seats are held");
    let above = redeemed(&store.redeem(&ticket, &identity(0), NOW, n + 1).await.unwrap());
    assert_eq!(above, "done", "fewer than {} seats are held", n + 1);
}

/// A pending guest with an invitation and an active ticket (user row by SQL, the rest by the store).
async fn invited(store: &Store, db: &tokio_postgres::Client, tenant: TenantId, name: &str) -> (User, Uuid, [u8; 32]) {
    let guest = User {
        user_type: UserType::Guest,
        creation_type: Some("Invitation".into()),
        external_user_state: Some(ExternalUserState::PendingAcceptance),
        ..user(tenant, name)
    };
    insert_user(db, &guest).await;
    let inv = Invitation {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        invited_user_email_address: guest.mail.clone(),
        invited_user_display_name: guest.display_name.clone(),
        invited_user_id: guest.id,
        invite_redirect_url: "https://rp.example/".into(),
        app_id: None,
        invited_by: "admin".into(),
        message: None,
        send_invitation_message: false,
        reset_redemption: false,
        status: InvitationStatus::PendingAcceptance,
        created_at: NOW,
    };
    store.put_invitation(&inv).await.unwrap();
    let ticket = id32();
    let t = Ticket {
        tenant_id: tenant,
        invitation_id: inv.id,
        user_id: guest.id,
        expires_at: NOW + LIFE,
        state: TicketState::Active,
    };
    store.put_ticket(&ticket, &t).await.unwrap();
    (guest, inv.id, ticket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_one_ticket_redeemed_on_two_nodes_accepts_once_and_takes_one_seat() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let t = tenant(5);
    a.put_tenant(&t).await.unwrap();
    let (guest, inv, ticket) = invited(&a, &db, t.id, "guest").await;
    let answers = race(|i| {
        let store = node(i, &a, &b);
        async move {
            match store.redeem(&ticket, &identity(i), NOW, 5).await.unwrap() {
                Redeemed::Done(u) => ("done", Some(*u)),
                other => (redeemed(&other), None),
            }
        }
    })
    .await;
    let labels: Vec<&str> = answers.iter().map(|(l, _)| *l).collect();
    assert_eq!(count(&labels, "done"), 1, "{labels:?}");
    assert_eq!(count(&labels, "already_redeemed"), N - 1, "{labels:?}");
    let winner = labels.iter().position(|l| *l == "done").unwrap();
    let done = answers[winner].1.clone().unwrap();
    assert_eq!(done.identities, vec![identity(winner)]);
    let (holds, version, upn, mail, user_type, record) = user_row(&db, &guest).await;
    assert_eq!(record, done, "the stored record is the one answered");
    assert!(holds && record.holds_seat(), "the column follows the record");
    assert_eq!(version, 2, "one write");
    assert_eq!(upn, guest.user_principal_name.to_lowercase(), "the UPN column is unchanged");
    assert_eq!(mail, Some(guest.mail.to_lowercase()));
    assert_eq!(user_type, "Guest");
    assert_eq!(a.ticket(&ticket).await.unwrap().unwrap().state, TicketState::Redeemed);
    assert_eq!(b.invitation(&t.id, &inv).await.unwrap().unwrap().status, InvitationStatus::Completed);

    let (other, _, voided) = invited(&a, &db, t.id, "other").await;
    b.void_tickets_of(&t.id, &other.id).await.unwrap();
    assert_eq!(redeemed(&a.redeem(&voided, &identity(0), NOW, 5).await.unwrap()), "voided");
    assert_eq!(user_row(&db, &other).await.1, 1, "a voided ticket changes no user");
    assert_seats_held(&b, &db, t.id, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_the_last_seat_goes_to_one_of_n_guests_redeeming_on_two_nodes() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let t = tenant(2);
    a.put_tenant(&t).await.unwrap();
    let (_, _, first) = invited(&a, &db, t.id, "first").await;
    assert_eq!(redeemed(&b.redeem(&first, &identity(0), NOW, 1).await.unwrap()), "done", "the first seat");
    let mut guests = Vec::new();
    for i in 0..N {
        guests.push(invited(&a, &db, t.id, &format!("g{i}")).await);
    }
    let answers = race(|i| {
        let (store, ticket) = (node(i, &a, &b), guests[i].2);
        async move { redeemed(&store.redeem(&ticket, &identity(i), NOW, 2).await.unwrap()) }
    })
    .await;
    assert_eq!(count(&answers, "done"), 1, "{answers:?}");
    assert_eq!(count(&answers, "no_seat"), N - 1, "{answers:?}");
    for (i, (guest, inv, ticket)) in guests.iter().enumerate() {
        let (holds, version, ..) = user_row(&db, guest).await;
        let won = answers[i] == "done";
        assert_eq!((holds, version), (won, if won { 2 } else { 1 }), "guest {i}: NoSeat changes nothing");
        let state = a.ticket(ticket).await.unwrap().unwrap().state;
        assert_eq!(state, if won { TicketState::Redeemed } else { TicketState::Active }, "guest {i}");
        let status = a.invitation(&t.id, inv).await.unwrap().unwrap().status;
        let expected = if won { InvitationStatus::Completed } else { InvitationStatus::PendingAcceptance };
        assert_eq!(status, expected, "guest {i}");
    }
    assert_seats_held(&a, &db, t.id, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_without_a_tenant_row_the_seat_holders_are_counted() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let t = TenantId::new();
    let mut guests = Vec::new();
    for i in 0..N {
        guests.push(invited(&a, &db, t, &format!("g{i}")).await);
    }
    let answers = race(|i| {
        let (store, ticket) = (node(i, &a, &b), guests[i].2);
        async move { redeemed(&store.redeem(&ticket, &identity(i), NOW, 1).await.unwrap()) }
    })
    .await;
    assert_eq!(count(&answers, "done"), 1, "{answers:?}");
    assert_eq!(count(&answers, "no_seat"), N - 1, "{answers:?}");
    assert_seats_held(&b, &db, t, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_sign_in_opens_of_one_browser_on_two_nodes_keep_its_cap() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let (t, browser) = (TenantId::new(), id32());
    let ids: Vec<[u8; 32]> = (0..N).map(|_| id32()).collect();
    let answers = race(|i| {
        let (store, id) = (node(i, &a, &b), ids[i]);
        async move { store.open_signin(&id, &signin(t, browser, NOW + LIFE), 3, 1000, NOW).await.unwrap() }
    })
    .await;
    assert!(answers.iter().all(|a| *a == SignInAdmission::Stored), "{answers:?}");
    let kept = db.query("SELECT id FROM signins WHERE browser = $1", &[&browser.as_slice()]).await.unwrap();
    assert_eq!(kept.len(), 3, "the browser holds exactly its cap");
    assert_eq!(a.signin_count().await, 3);
}

/// Every sign-in row as (id, version, browser), to see that nothing changed.
async fn signin_rows(db: &tokio_postgres::Client) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    let rows = db.query("SELECT id, version, browser FROM signins ORDER BY id", &[]).await.unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()
}

#[tokio::test]
async fn pg_a_full_instance_stores_and_evicts_nothing_until_expired_ones_make_room() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let t = TenantId::new();
    let (old_browser, browser) = (id32(), id32());
    let stale = id32();
    a.put_signin(&stale, &signin(t, old_browser, NOW - 1)).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            a.open_signin(&id32(), &signin(t, browser, NOW + LIFE), 3, 4, NOW).await.unwrap(),
            SignInAdmission::Stored
        );
    }
    let live = id32();
    b.put_signin(&live, &signin(t, old_browser, NOW + LIFE)).await.unwrap();
    let before = signin_rows(&db).await;
    let refused = b.open_signin(&id32(), &signin(t, id32(), NOW + LIFE), 3, 3, NOW - 10).await.unwrap();
    assert_eq!(refused, SignInAdmission::Full, "4 held, nothing expired at that time");
    assert_eq!(signin_rows(&db).await, before, "Full stores and evicts nothing");
    let admitted = b.open_signin(&id32(), &signin(t, id32(), NOW + LIFE), 3, 4, NOW).await.unwrap();
    assert_eq!(admitted, SignInAdmission::Stored, "the expired one made room");
    assert_eq!(a.signin(&stale).await.unwrap(), None, "and is gone");
    assert!(a.signin(&live).await.unwrap().is_some());
    assert_eq!(b.signin_count().await, 4);
}

async fn signin_version(db: &tokio_postgres::Client, id: &[u8; 32]) -> i64 {
    db.query_one("SELECT version FROM signins WHERE id = $1", &[&id.as_slice()]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_concurrent_modify_signin_on_two_nodes_loses_no_update() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let id = id32();
    a.put_signin(&id, &signin(TenantId::new(), id32(), NOW + LIFE)).await.unwrap();
    let v0 = signin_version(&db, &id).await;
    race(|i| {
        let store = node(i, &a, &b);
        async move {
            gatehouse::storage::modify_signin(&store, &id, |s: &mut SignIn| {
                s.login.get_or_insert_with(String::new).push('x')
            })
            .await
            .unwrap()
            .unwrap();
        }
    })
    .await;
    assert_eq!(a.signin(&id).await.unwrap().unwrap().login.unwrap().len(), N, "each change counted once");
    assert_eq!(signin_version(&db, &id).await, v0 + N as i64, "one version per change");
    let stale = b.signin_versioned(&id).await.unwrap().unwrap();
    a.put_signin(&id, &stale.value).await.unwrap();
    assert!(!b.replace_signin(&id, &stale, &stale.value).await.unwrap(), "an old version is refused");
}

#[tokio::test]
async fn pg_rebind_moves_the_rows_and_the_records_and_the_cap_follows() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let (t, old, new) = (TenantId::new(), id32(), id32());
    let ids: Vec<[u8; 32]> = (0..2).map(|_| id32()).collect();
    for id in &ids {
        a.open_signin(id, &signin(t, old, NOW + LIFE), 2, 100, NOW).await.unwrap();
    }
    b.rebind_signins(&old, &new).await.unwrap();
    for id in &ids {
        assert_eq!(a.signin(id).await.unwrap().unwrap().browser, new, "the record is rebound");
    }
    let on_old = db.query("SELECT 1 FROM signins WHERE browser = $1", &[&old.as_slice()]).await.unwrap();
    assert!(on_old.is_empty(), "and its column");
    a.open_signin(&id32(), &signin(t, new, NOW + LIFE), 2, 100, NOW).await.unwrap();
    assert_eq!(a.signin(&ids[0]).await.unwrap(), None, "the new browser's cap evicts the oldest moved one");
    assert!(a.signin(&ids[1]).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_federation_state_is_taken_once_across_nodes() {
    let Some((a, b, _db)) = two_nodes().await else { return };
    let state = FedState { tx: "tx".into(), issuer: "https://home.example".into(), expires_at: NOW + 60 };
    a.put_fed_state("s1", &state).await.unwrap();
    assert_eq!(b.fed_state("s1").await.unwrap(), Some(state.clone()), "read without consuming");
    let taken = race(|i| {
        let store = node(i, &a, &b);
        async move { store.take_fed_state("s1").await.unwrap() }
    })
    .await;
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "one caller gets it");
    a.put_fed_state("dead", &FedState { expires_at: NOW - 1, ..state.clone() }).await.unwrap();
    a.put_fed_state("live", &state).await.unwrap();
    assert_eq!(b.sweep_fed_states(NOW).await.unwrap(), 1);
    assert_eq!(a.fed_state("dead").await.unwrap(), None);
    assert!(a.fed_state("live").await.unwrap().is_some());
}

/// The grant's `revoked` column and its record.
async fn revoked(db: &tokio_postgres::Client, grant_id: &Uuid) -> (bool, bool) {
    let r = db.query_one("SELECT revoked, doc FROM grants WHERE id = $1", &[grant_id]).await.unwrap();
    (r.get(0), decode::<gatehouse::model::Grant>(r.get::<_, &[u8]>(1)).unwrap().revoked)
}

#[tokio::test]
async fn pg_grant_revocation_is_in_the_column_and_the_record_alike() {
    let Some((a, b, db)) = two_nodes().await else { return };
    let t = TenantId::new();
    // By a code replay on the other node.
    let (grant_id, code_id) = (Uuid::new_v4(), id32());
    a.put_code(&code_id, &code(t, grant_id)).await.unwrap();
    let g = grant(t, NOW + LIFE);
    let rt = refresh(t, grant_id, NOW + LIFE);
    assert_eq!(code_use(&a.use_code(&code_id, &g, Some((&id32(), &rt))).await.unwrap()), "redeemed");
    assert_eq!(revoked(&db, &grant_id).await, (false, false));
    assert_eq!(code_use(&b.use_code(&code_id, &g, Some((&id32(), &rt))).await.unwrap()), "replayed");
    assert_eq!(revoked(&db, &grant_id).await, (true, true), "a replay");
    // By refresh reuse.
    let (grant_id, old) = issue(&a, t, NOW + LIFE, NOW + LIFE).await;
    assert_eq!(refresh_use(&a.rotate_refresh(&old, &id32(), &no_grace(NOW + 1)).await.unwrap()), "rotated");
    let rotated = db.query_one("SELECT rotated FROM refresh_tokens WHERE id = $1", &[&old.as_slice()]).await.unwrap();
    assert!(rotated.get::<_, bool>(0), "the rotated column follows the record");
    assert_eq!(refresh_use(&b.rotate_refresh(&old, &id32(), &no_grace(NOW + 2)).await.unwrap()), "reused");
    assert_eq!(revoked(&db, &grant_id).await, (true, true), "reuse");
    // By revoke_grant.
    let (grant_id, _) = issue(&a, t, NOW + LIFE, NOW + LIFE).await;
    b.revoke_grant(&grant_id).await.unwrap();
    assert_eq!(revoked(&db, &grant_id).await, (true, true), "revoke_grant");
}
