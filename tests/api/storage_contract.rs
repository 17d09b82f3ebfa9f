//! The storage contract: what every backend behind `gatehouse::storage::Store` must do,
//! checked through the trait only (no backend types). Each case runs once per backend in
//! [`backends`]; a new backend is one more line there.
use std::future::Future;
use std::sync::Arc;

use gatehouse::model::{
    AuthCode, Authentication, ExternalUserState, Grant, Identity, Invitation, InvitationStatus, Purpose, RefreshToken,
    Session, SignIn, SignInLogEntry, Step, TenantId, Ticket, TicketState, User, UserId, UserType,
};
use gatehouse::storage::{CodeUse, Redeemed, RefreshRules, RefreshUse, SignInAdmission, Store, StoreError};
use tempfile::TempDir;
use uuid::Uuid;

/// How many tasks each race runs at once.
pub(crate) const N: usize = 16;
/// The clock every case runs at.
pub(crate) const NOW: i64 = 1_700_000_000;
pub(crate) const LIFE: i64 = 3600;

fn sled() -> (&'static str, Store, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = gatehouse::storage::open(dir.path(), 8).unwrap();
    ("sled", store, dir)
}

/// A fresh, empty PostgreSQL database on the test cluster named by
/// `GATEHOUSE_TEST_DATABASE_URL` (`.ci/run` starts one), when there is one.
async fn postgres() -> Option<(&'static str, Store, TempDir)> {
    let url = crate::helpers::fresh_database().await?;
    let options = gatehouse::storage::postgres::PgOptions {
        url,
        pool_size: 8,
        threads: 1,
        timeout: std::time::Duration::from_secs(10),
    };
    let store: Store = Arc::new(gatehouse::storage::postgres::PgStore::open(options).await.unwrap());
    Some(("postgres", store, tempfile::tempdir().unwrap()))
}

/// A fresh, empty store of every backend (each case gets its own).
pub async fn backends() -> Vec<(&'static str, Store, TempDir)> {
    let mut all = vec![sled()];
    all.extend(postgres().await);
    all
}

/// Rotation at `now` with the retry window closed (every second use is reuse).
pub(crate) fn no_grace(now: i64) -> RefreshRules {
    RefreshRules { now, now_ms: now * 1000, life_secs: LIFE, grace_secs: 0, retry_after_ms: 1000 }
}

// ---- record builders ----

/// A fresh 32-byte id (a digest-shaped key).
pub(crate) fn id32() -> [u8; 32] {
    let mut id = [0; 32];
    id[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    id[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    id
}

pub(crate) fn user(tenant: TenantId, name: &str) -> User {
    User {
        id: UserId::new(),
        tenant_id: tenant,
        user_principal_name: format!("{name}@contoso.example"),
        mail: format!("{name}@mail.contoso.example"),
        display_name: name.into(),
        account_enabled: true,
        created_at: NOW,
        ..Default::default()
    }
}

fn auth(user: UserId) -> Authentication {
    Authentication {
        user_id: user,
        auth_time: NOW,
        amr: vec![gatehouse::model::Amr::Pwd],
        acr: gatehouse::model::Acr::SingleFactor,
        idp: None,
        epoch: 0,
        device_id: None,
        mfa_time: None,
        home: None,
    }
}

pub(crate) fn code(tenant: TenantId, grant_id: Uuid) -> AuthCode {
    AuthCode {
        tenant_id: tenant,
        client_id: "rp".into(),
        redirect_uri: "https://rp.example/cb".into(),
        scope: vec!["openid".into(), "offline_access".into()],
        nonce: Some("n".into()),
        code_challenge: None,
        sid: "sid-1".into(),
        auth: auth(UserId::default()),
        expires_at: NOW + 60,
        grant_id,
        used: false,
    }
}

pub(crate) fn grant(tenant: TenantId, expires_at: i64) -> Grant {
    Grant {
        tenant_id: tenant,
        client_id: "rp".into(),
        user_id: UserId::default(),
        epoch: 0,
        created_at: NOW,
        expires_at,
        revoked: false,
    }
}

pub(crate) fn refresh(tenant: TenantId, grant_id: Uuid, expires_at: i64) -> RefreshToken {
    RefreshToken {
        tenant_id: tenant,
        client_id: "rp".into(),
        grant_id,
        scope: vec!["openid".into(), "offline_access".into()],
        sid: "sid-1".into(),
        auth: auth(UserId::default()),
        issued_at: NOW,
        expires_at,
        rotated: false,
        rotated_at_ms: 0,
        successor: None,
        retried: false,
    }
}

fn session(tenant: TenantId, expires_at: i64) -> Session {
    Session { tenant_id: tenant, sid: "sid-1".into(), auth: auth(UserId::default()), expires_at }
}

pub(crate) fn signin(tenant: TenantId, browser: [u8; 32], expires_at: i64) -> SignIn {
    SignIn {
        tenant_id: tenant,
        browser,
        purpose: Purpose::Portal { return_to: "/".into(), replaces_session: None },
        step: Step::Identify,
        login: None,
        user_id: None,
        expires_at,
        strengths: vec![],
        passwordless: None,
        persistent_browser: None,
    }
}

fn log_entry(id: &str, created_at: i64) -> SignInLogEntry {
    SignInLogEntry { id: id.into(), created_at, app_id: "rp".into(), ..Default::default() }
}

pub(crate) fn identity(n: usize) -> Identity {
    Identity {
        sign_in_type: "federated".into(),
        issuer: "https://home.example".into(),
        issuer_assigned_id: n.to_string(),
    }
}

/// A guest with its invitation and an active ticket, stored; returns the ticket id.
async fn invited_guest(store: &Store, tenant: TenantId) -> (User, Invitation, [u8; 32]) {
    let guest = User {
        user_type: UserType::Guest,
        creation_type: Some("Invitation".into()),
        external_user_state: Some(ExternalUserState::PendingAcceptance),
        ..user(tenant, "guest")
    };
    store.insert_user(&guest).await.unwrap();
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
    (guest, inv, ticket)
}

/// Spends a fresh code: the grant and its first refresh token are stored. Returns their ids.
pub(crate) async fn issue(
    store: &Store,
    tenant: TenantId,
    grant_expires: i64,
    refresh_expires: i64,
) -> (Uuid, [u8; 32]) {
    let (grant_id, code_id, refresh_id) = (Uuid::new_v4(), id32(), id32());
    store.put_code(&code_id, &code(tenant, grant_id)).await.unwrap();
    let rt = refresh(tenant, grant_id, refresh_expires);
    let used = store.use_code(&code_id, &grant(tenant, grant_expires), Some((&refresh_id, &rt))).await.unwrap();
    assert_eq!(code_use(&used), "redeemed");
    (grant_id, refresh_id)
}

// ---- outcomes as labels (the enums carry no Debug/PartialEq) ----

pub(crate) fn code_use(o: &CodeUse) -> &'static str {
    match o {
        CodeUse::Redeemed(_) => "redeemed",
        CodeUse::Replayed => "replayed",
        CodeUse::Unknown => "unknown",
    }
}

pub(crate) fn refresh_use(o: &RefreshUse) -> &'static str {
    match o {
        RefreshUse::Rotated(_) => "rotated",
        RefreshUse::Retried(_) => "retried",
        RefreshUse::Reused => "reused",
        RefreshUse::Revoked => "revoked",
        RefreshUse::Unknown => "unknown",
    }
}

pub(crate) fn redeemed(o: &Redeemed) -> &'static str {
    match o {
        Redeemed::Done(_) => "done",
        Redeemed::AlreadyRedeemed => "already_redeemed",
        Redeemed::Voided => "voided",
        Redeemed::Unknown => "unknown",
        Redeemed::NoSeat => "no_seat",
    }
}

pub(crate) fn count(labels: &[&str], label: &str) -> usize {
    labels.iter().filter(|l| **l == label).count()
}

/// Runs `N` copies of `task` released together by a barrier; their answers in task order.
pub(crate) async fn race<T, Fut>(task: impl Fn(usize) -> Fut) -> Vec<T>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(N));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let (barrier, run) = (barrier.clone(), task(i));
            tokio::spawn(async move {
                barrier.wait().await;
                run.await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(N);
    for h in handles {
        answers.push(h.await.unwrap());
    }
    answers
}

// ---- cases ----

#[tokio::test]
async fn codes_are_spent_once_and_a_replay_revokes_the_grant() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, code_id, refresh_id) = (Uuid::new_v4(), id32(), id32());
        store.put_code(&code_id, &code(tenant, grant_id)).await.unwrap();
        let (g, rt) = (grant(tenant, NOW + LIFE), refresh(tenant, grant_id, NOW + LIFE));

        let CodeUse::Redeemed(spent) = store.use_code(&code_id, &g, Some((&refresh_id, &rt))).await.unwrap() else {
            panic!("{name}: the first use redeems");
        };
        assert_eq!(*spent, AuthCode { used: true, ..code(tenant, grant_id) }, "{name}");
        assert!(store.code(&code_id).await.unwrap().unwrap().used, "{name}: the code is marked used");
        assert_eq!(store.grant(&grant_id).await.unwrap(), Some(g.clone()), "{name}: the grant is stored");
        assert_eq!(store.refresh_token(&refresh_id).await.unwrap(), Some(rt.clone()), "{name}: the token is stored");

        let second = id32();
        let replay = store.use_code(&code_id, &g, Some((&second, &rt))).await.unwrap();
        assert_eq!(code_use(&replay), "replayed", "{name}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: a replay revokes the grant");
        assert_eq!(store.refresh_token(&second).await.unwrap(), None, "{name}: a replay stores no token");
        let after = store.rotate_refresh(&refresh_id, &id32(), &no_grace(NOW + 1)).await.unwrap();
        assert_eq!(refresh_use(&after), "revoked", "{name}: the replayed code's token is dead");

        let (unknown, third) = (id32(), id32());
        let answer = store.use_code(&unknown, &g, Some((&third, &rt))).await.unwrap();
        assert_eq!(code_use(&answer), "unknown", "{name}");
        assert_eq!(store.refresh_token(&third).await.unwrap(), None, "{name}: an unknown code stores nothing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_code_uses_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, code_id) = (Uuid::new_v4(), id32());
        store.put_code(&code_id, &code(tenant, grant_id)).await.unwrap();
        let refresh_ids: Vec<[u8; 32]> = (0..N).map(|_| id32()).collect();
        let answers = race(|i| {
            let (store, rid) = (store.clone(), refresh_ids[i]);
            async move {
                let rt = refresh(tenant, grant_id, NOW + LIFE);
                code_use(&store.use_code(&code_id, &grant(tenant, NOW + LIFE), Some((&rid, &rt))).await.unwrap())
            }
        })
        .await;
        assert_eq!(count(&answers, "redeemed"), 1, "{name}: {answers:?}");
        assert_eq!(count(&answers, "replayed"), N - 1, "{name}: {answers:?}");
        let winner = answers.iter().position(|a| *a == "redeemed").unwrap();
        for (i, rid) in refresh_ids.iter().enumerate() {
            let stored = store.refresh_token(rid).await.unwrap().is_some();
            assert_eq!(stored, i == winner, "{name}: only the winner's refresh token is stored (task {i})");
        }
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: the replays revoked the grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, old) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
        let new_ids: Vec<[u8; 32]> = (0..N).map(|_| id32()).collect();
        let answers = race(|i| {
            let (store, new) = (store.clone(), new_ids[i]);
            async move { refresh_use(&store.rotate_refresh(&old, &new, &no_grace(NOW + 1)).await.unwrap()) }
        })
        .await;
        assert_eq!(count(&answers, "rotated"), 1, "{name}: {answers:?}");
        // A loser that read the token before the winner marked it, and the grant after another
        // loser revoked it, sees a revoked family: also refused, and the family is dead either way.
        assert!(count(&answers, "reused") >= 1, "{name}: {answers:?}");
        assert_eq!(count(&answers, "reused") + count(&answers, "revoked"), N - 1, "{name}: {answers:?}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revoked the grant");
        assert!(store.refresh_token(&old).await.unwrap().unwrap().rotated, "{name}: the old token is rotated");
        let winner = answers.iter().position(|a| *a == "rotated").unwrap();
        for (i, new) in new_ids.iter().enumerate() {
            let stored = store.refresh_token(new).await.unwrap().is_some();
            assert_eq!(stored, i == winner, "{name}: only the winner's successor is stored (task {i})");
        }
        let next = store.rotate_refresh(&new_ids[winner], &id32(), &no_grace(NOW + 2)).await.unwrap();
        assert_eq!(refresh_use(&next), "revoked", "{name}: the winner's successor died with the family");
    }
}

/// A refresh's context is the token, its grant and (where the store reads it in the same
/// step, as PostgreSQL does) its user, each as stored at that moment.
#[tokio::test]
async fn refresh_context_reads_the_token_its_grant_and_its_user_as_stored() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let member = user(tenant, "holder");
        store.insert_user(&member).await.unwrap();
        let (grant_id, rid) = (Uuid::new_v4(), id32());
        let code_id = id32();
        let mut c = code(tenant, grant_id);
        c.auth = auth(member.id);
        store.put_code(&code_id, &c).await.unwrap();
        let rt = RefreshToken { auth: auth(member.id), ..refresh(tenant, grant_id, NOW + LIFE) };
        let g = Grant { user_id: member.id, ..grant(tenant, NOW + LIFE) };
        assert_eq!(code_use(&store.use_code(&code_id, &g, Some((&rid, &rt))).await.unwrap()), "redeemed");

        let read = store.refresh_context(&rid).await.unwrap().expect("the token is found");
        assert_eq!(read.token.grant_id, grant_id, "{name}");
        assert_eq!(read.token.auth.user_id, member.id, "{name}");
        assert!(read.grant.as_ref().is_some_and(|g| !g.revoked && g.expires_at == NOW + LIFE), "{name}");
        if name == "postgres" {
            assert!(read.user.is_some(), "{name}: the user is read in the same statement");
        }
        if let Some(u) = &read.user {
            assert_eq!(u.as_ref().map(|u| (u.id, u.account_enabled)), Some((member.id, true)), "{name}");
        }

        // What changes afterwards is what the next read sees: the user disabled, the grant revoked.
        store.put_user(&User { account_enabled: false, ..member.clone() }).await.unwrap();
        store.revoke_grant(&grant_id).await.unwrap();
        let again = store.refresh_context(&rid).await.unwrap().expect("the token is still found");
        assert!(again.grant.is_some_and(|g| g.revoked), "{name}: the revocation is read");
        if let Some(u) = &again.user {
            assert_eq!(u.as_ref().map(|u| u.account_enabled), Some(false), "{name}: the change is read");
        }
        // A rotation's successor names the same user.
        let (_, live) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
        let seen = store.refresh_token(&live).await.unwrap().unwrap();
        let next_id = id32();
        let RefreshUse::Rotated(_) =
            store.rotate_refresh_seen(&live, &seen, &next_id, &no_grace(NOW + 1)).await.unwrap()
        else {
            panic!("{name}: a live token rotates");
        };
        let next = store.refresh_context(&next_id).await.unwrap().expect("the successor is found");
        assert_eq!(next.token.auth.user_id, seen.auth.user_id, "{name}");
        if name == "postgres" {
            assert_eq!(next.user.map(|u| u.is_none()), Some(true), "{name}: a token of no stored user reads none");
        }
        assert!(store.refresh_context(&id32()).await.unwrap().is_none(), "{name}: an unknown token is none");
    }
}

/// An access token's context: its id's revocation, its grant and (where the store reads it
/// in the same step, as PostgreSQL does) its user, each as stored at that moment.
#[tokio::test]
async fn access_context_reads_revocation_grant_and_user_as_stored() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let member = user(tenant, "bearer");
        store.insert_user(&member).await.unwrap();
        let (grant_id, _) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
        let (revoked, grant, read) = store.access_context("jti-1", &grant_id, &tenant, &member.id).await.unwrap();
        assert!(!revoked, "{name}");
        assert!(grant.is_some_and(|g| !g.revoked), "{name}: the grant is read");
        if name == "postgres" {
            assert!(read.is_some(), "{name}: the user is read in the same statement");
        }
        if let Some(u) = read {
            assert_eq!(u.map(|u| u.id), Some(member.id), "{name}");
        }
        store.revoke_jti("jti-1", NOW + 60).await.unwrap();
        store.revoke_grant(&grant_id).await.unwrap();
        let (revoked, grant, _) = store.access_context("jti-1", &grant_id, &tenant, &member.id).await.unwrap();
        assert!(revoked, "{name}: the revocation is read");
        assert!(grant.is_some_and(|g| g.revoked), "{name}: the grant's revocation is read");
        let (revoked, grant, read) =
            store.access_context("jti-2", &Uuid::new_v4(), &tenant, &UserId::new()).await.unwrap();
        assert!(!revoked && grant.is_none(), "{name}: unknown ids read as nothing");
        if let Some(u) = read {
            assert!(u.is_none(), "{name}: an unknown user reads as none");
        }
    }
}

/// `rotate_refresh_seen` with the token every caller read before any rotated it: the same
/// single winner as `rotate_refresh`, the losers decided as reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_of_one_seen_token_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, old) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
        let seen = store.refresh_token(&old).await.unwrap().unwrap();
        let new_ids: Vec<[u8; 32]> = (0..N).map(|_| id32()).collect();
        let answers = race(|i| {
            let (store, new, seen) = (store.clone(), new_ids[i], seen.clone());
            async move { refresh_use(&store.rotate_refresh_seen(&old, &seen, &new, &no_grace(NOW + 1)).await.unwrap()) }
        })
        .await;
        assert_eq!(count(&answers, "rotated"), 1, "{name}: {answers:?}");
        assert!(count(&answers, "reused") >= 1, "{name}: {answers:?}");
        assert_eq!(count(&answers, "reused") + count(&answers, "revoked"), N - 1, "{name}: {answers:?}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revoked the grant");
        let winner = answers.iter().position(|a| *a == "rotated").unwrap();
        for (i, new) in new_ids.iter().enumerate() {
            let stored = store.refresh_token(new).await.unwrap().is_some();
            assert_eq!(stored, i == winner, "{name}: only the winner's successor is stored (task {i})");
        }
    }
}

/// Rotations at once on one thread (where PostgreSQL sends them as one statement): every
/// family presented once rotates, and of a token presented twice in the same instant exactly
/// one presentation rotates and the other is reuse.
#[tokio::test]
async fn rotations_at_once_on_one_thread_each_decide_alone() {
    // F families: tasks 0..F present family i once, tasks F..N present families 0..N-F again.
    const F: usize = N * 3 / 4;
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let mut families = Vec::new();
        for _ in 0..F {
            let (grant_id, old) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
            families.push((grant_id, old, store.refresh_token(&old).await.unwrap().unwrap()));
        }
        let families = Arc::new(families);
        let answers = race(|i| {
            let (store, families) = (store.clone(), families.clone());
            async move {
                let (_, old, seen) = &families[if i < F { i } else { i - F }];
                refresh_use(&store.rotate_refresh_seen(old, seen, &id32(), &no_grace(NOW + 1)).await.unwrap())
            }
        })
        .await;
        for (f, family) in families.iter().enumerate() {
            let mine: Vec<&str> =
                answers.iter().enumerate().filter(|(i, _)| *i == f || *i == f + F).map(|(_, a)| *a).collect();
            let twice = f < N - F;
            assert_eq!(mine.len(), if twice { 2 } else { 1 }, "{name}: family {f}");
            assert_eq!(mine.iter().filter(|a| **a == "rotated").count(), 1, "{name}: family {f}: {mine:?}");
            let revoked = store.grant(&family.0).await.unwrap().unwrap().revoked;
            assert_eq!(revoked, twice, "{name}: family {f} is revoked exactly when presented twice: {mine:?}");
            if twice {
                assert!(mine.contains(&"reused"), "{name}: family {f}: {mine:?}");
            }
        }
    }
}

/// A `seen` copy that is out of date (the token rotated since, or its family revoked) is
/// decided on what the store holds, never on the copy.
#[tokio::test]
async fn a_stale_seen_token_is_decided_on_what_the_store_holds() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, old) = issue(&store, tenant, NOW + LIFE, NOW + LIFE).await;
        let seen = store.refresh_token(&old).await.unwrap().unwrap();
        let first = id32();
        let RefreshUse::Rotated(next) =
            store.rotate_refresh_seen(&old, &seen, &first, &no_grace(NOW + 1)).await.unwrap()
        else {
            panic!("{name}: the first presentation rotates");
        };
        assert_eq!(next.grant_id, grant_id, "{name}: the successor is in the family");
        assert!(!next.rotated && next.expires_at > NOW + 1, "{name}: the successor is fresh");
        let stored = store.refresh_token(&old).await.unwrap().unwrap();
        assert!(stored.rotated && stored.successor == Some(first), "{name}: the old token names its successor");
        // The same unrotated copy again: the store knows better, and it is reuse.
        let again = store.rotate_refresh_seen(&old, &seen, &id32(), &no_grace(NOW + 2)).await.unwrap();
        assert_eq!(refresh_use(&again), "reused", "{name}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revoked the grant");
        let successor = store.refresh_token(&first).await.unwrap().unwrap();
        let after = store.rotate_refresh_seen(&first, &successor, &id32(), &no_grace(NOW + 3)).await.unwrap();
        assert_eq!(refresh_use(&after), "revoked", "{name}: a copy read before the revocation does not rotate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_of_one_ticket_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (guest, inv, ticket) = invited_guest(&store, tenant).await;
        let answers = race(|i| {
            let store = store.clone();
            async move {
                match store.redeem(&ticket, &identity(i), NOW, u32::MAX).await.unwrap() {
                    Redeemed::Done(u) => ("done", Some(*u)),
                    other => (redeemed(&other), None),
                }
            }
        })
        .await;
        let labels: Vec<&str> = answers.iter().map(|(l, _)| *l).collect();
        assert_eq!(count(&labels, "done"), 1, "{name}: {labels:?}");
        assert_eq!(count(&labels, "already_redeemed"), N - 1, "{name}: {labels:?}");
        let winner = labels.iter().position(|l| *l == "done").unwrap();
        let accepted = User {
            external_user_state: Some(ExternalUserState::Accepted),
            external_user_state_change_date_time: Some(NOW),
            identities: vec![identity(winner)],
            ..guest.clone()
        };
        assert_eq!(answers[winner].1.as_ref(), Some(&accepted), "{name}: Done carries the accepted guest");
        assert_eq!(store.user(&tenant, &guest.id).await.unwrap(), Some(accepted), "{name}: only the winner's identity");
        assert_eq!(store.ticket(&ticket).await.unwrap().unwrap().state, TicketState::Redeemed, "{name}");
        let inv_now = store.invitation(&tenant, &inv.id).await.unwrap().unwrap();
        assert_eq!(inv_now.status, InvitationStatus::Completed, "{name}");

        let again = store.redeem(&ticket, &identity(0), NOW, u32::MAX).await.unwrap();
        assert_eq!(redeemed(&again), "already_redeemed", "{name}");
        assert_eq!(redeemed(&store.redeem(&id32(), &identity(0), NOW, u32::MAX).await.unwrap()), "unknown", "{name}");
        let (other, _, voided) = invited_guest(&store, TenantId::new()).await;
        store.void_tickets_of(&other.tenant_id, &other.id).await.unwrap();
        assert_eq!(redeemed(&store.redeem(&voided, &identity(0), NOW, u32::MAX).await.unwrap()), "voided", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_last_seat_goes_to_one_of_n_concurrent_takers() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let holder = User { per_user_mfa: true, ..user(tenant, "holder") };
        store.insert_user(&holder).await.unwrap();
        let takers: Vec<User> = (0..N).map(|i| user(tenant, &format!("m{i}"))).collect();
        for t in &takers {
            store.insert_user(t).await.unwrap();
        }
        assert_eq!(store.seats_used(&tenant).await.unwrap(), 1, "{name}");
        // Two seats: one is held, so exactly one of N members enrolling at once gets the other.
        let answers = race(|i| {
            let (store, id) = (store.clone(), takers[i].id);
            async move {
                match gatehouse::storage::modify_user_within_seats(&store, &tenant, &id, Some(2), |u| {
                    u.per_user_mfa = true
                })
                .await
                {
                    Ok(Some(_)) => "took",
                    Err(StoreError::NoSeat) => "no_seat",
                    other => panic!("unexpected {:?}", other.map(|o| o.is_some())),
                }
            }
        })
        .await;
        assert_eq!(count(&answers, "took"), 1, "{name}: {answers:?}");
        assert_eq!(count(&answers, "no_seat"), N - 1, "{name}");
        assert_eq!(store.seats_used(&tenant).await.unwrap(), 2, "{name}: the counter follows");
        let holding = store.users(&tenant).await.unwrap().iter().filter(|u| u.holds_seat()).count();
        assert_eq!(holding, 2, "{name}: the records agree with the counter");
        // A change that takes no seat is never refused, and without a limit nothing is.
        assert!(
            gatehouse::storage::modify_user_within_seats(&store, &tenant, &holder.id, Some(0), |u| u.session_epoch +=
                1)
            .await
            .unwrap()
            .is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_modify_user_loses_no_update() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let u = user(tenant, "iw");
        store.insert_user(&u).await.unwrap();
        let seen = race(|_| {
            let store = store.clone();
            async move {
                let bumped = gatehouse::storage::modify_user(&store, &tenant, &u.id, |u| {
                    u.session_epoch += 1;
                    u.session_epoch
                });
                bumped.await.unwrap().map(|(_, epoch)| epoch)
            }
        })
        .await;
        let mut seen: Vec<u64> = seen.into_iter().map(Option::unwrap).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=N as u64).collect::<Vec<_>>(), "{name}: each increment saw its own value");
        let stored = store.user(&tenant, &u.id).await.unwrap().unwrap();
        assert_eq!(stored.session_epoch, N as u64, "{name}: no lost update");
        let nobody = UserId::new();
        let missing = gatehouse::storage::modify_user(&store, &tenant, &nobody, |u| u.session_epoch += 1).await;
        assert!(missing.unwrap().is_none(), "{name}: no such user");
    }
}

#[tokio::test]
async fn modify_user_refuses_to_change_what_the_indexes_key() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let u = user(tenant, "ada");
        store.insert_user(&u).await.unwrap();
        let changes: [(&str, fn(&mut User)); 4] = [
            ("user_principal_name", |u| u.user_principal_name = "grace@contoso.example".into()),
            ("mail", |u| u.mail = "grace@mail.contoso.example".into()),
            ("tenant_id", |u| u.tenant_id = TenantId::new()),
            ("id", |u| u.id = UserId::new()),
        ];
        for (field, change) in changes {
            let before = store.snapshot().await.unwrap();
            let changed = gatehouse::storage::modify_user(&store, &tenant, &u.id, |u| {
                u.display_name = "changed".into();
                change(u);
            })
            .await;
            assert!(matches!(changed, Err(StoreError::Conflict(_))), "{name}: {field} cannot change this way");
            assert!(before == store.snapshot().await.unwrap(), "{name}: a refused change of {field} writes nothing");
        }
        for login in [&u.user_principal_name, &u.mail] {
            assert_eq!(store.user_by_login(&tenant, login).await.unwrap().as_ref(), Some(&u), "{name}: {login}");
        }
        let renamed = gatehouse::storage::modify_user(&store, &tenant, &u.id, |u| u.display_name = "Ada L.".into());
        assert_eq!(renamed.await.unwrap().unwrap().0.display_name, "Ada L.", "{name}: other fields still change");
    }
}

/// `Ok` or `Conflict` as a label; any other error fails the case.
fn inserted(r: Result<(), StoreError>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(StoreError::Conflict(_)) => "conflict",
        Err(e) => panic!("insert_user: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_of_one_id_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let id = UserId::new();
        let candidates: Vec<User> = (0..N).map(|i| User { id, ..user(tenant, &format!("u{i}")) }).collect();
        let answers = race(|i| {
            let (store, u) = (store.clone(), candidates[i].clone());
            async move { inserted(store.insert_user(&u).await) }
        })
        .await;
        assert_eq!(count(&answers, "ok"), 1, "{name}: {answers:?}");
        let winner = &candidates[answers.iter().position(|a| *a == "ok").unwrap()];
        assert_eq!(store.users(&tenant).await.unwrap(), vec![winner.clone()], "{name}");
        for c in &candidates {
            let found = store.user_by_login(&tenant, &c.user_principal_name).await.unwrap();
            let expected = (c == winner).then(|| winner.clone());
            assert_eq!(found, expected, "{name}: a loser's name is released, the winner's kept ({})", c.display_name);
        }
    }
}

/// How many rounds a race over one name runs (a lost race shows in some rounds only).
const ROUNDS: usize = 25;

/// `N` concurrent creates of `candidates` in a fresh tenant, `ROUNDS` times: exactly one
/// wins each round, only the winner is stored and found by its UPN and mail, and every
/// name only a loser asked for is free again.
async fn one_create_wins(name: &str, store: &Store, candidates: impl Fn(TenantId) -> Vec<User>) {
    for round in 0..ROUNDS {
        let tenant = TenantId::new();
        let candidates = candidates(tenant);
        let answers = race(|i| {
            let (store, u) = (store.clone(), candidates[i].clone());
            async move { inserted(store.insert_user(&u).await) }
        })
        .await;
        assert_eq!(count(&answers, "ok"), 1, "{name}, round {round}: {answers:?}");
        let winner = &candidates[answers.iter().position(|a| *a == "ok").unwrap()];
        assert_eq!(store.users(&tenant).await.unwrap(), vec![winner.clone()], "{name}, round {round}");
        for login in [&winner.user_principal_name, &winner.mail] {
            let found = store.user_by_login(&tenant, login).await.unwrap();
            assert_eq!(found.as_ref(), Some(winner), "{name}, round {round}: the winner keeps {login}");
        }
        for c in candidates.iter().filter(|c| c.id != winner.id) {
            for login in [&c.user_principal_name, &c.mail] {
                if *login != winner.user_principal_name && *login != winner.mail {
                    let found = store.user_by_login(&tenant, login).await.unwrap();
                    assert_eq!(found, None, "{name}, round {round}: a loser's {login} is released");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_of_one_upn_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let upn = "shared@contoso.example";
        one_create_wins(name, &store, |tenant| {
            (0..N).map(|i| User { user_principal_name: upn.into(), ..user(tenant, &format!("u{i}")) }).collect()
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_of_one_mail_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let mail = "shared@mail.contoso.example";
        one_create_wins(name, &store, |tenant| {
            (0..N).map(|i| User { mail: mail.into(), ..user(tenant, &format!("u{i}")) }).collect()
        })
        .await;
    }
}

#[tokio::test]
async fn expired_refresh_tokens_and_families_do_not_rotate() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (_, token) = issue(&store, tenant, NOW + LIFE, NOW + 10).await;
        let new = id32();
        let answer = store.rotate_refresh(&token, &new, &no_grace(NOW + 11)).await.unwrap();
        assert_eq!(refresh_use(&answer), "revoked", "{name}: an expired token");
        assert!(!store.refresh_token(&token).await.unwrap().unwrap().rotated, "{name}: it is not marked rotated");
        assert_eq!(store.refresh_token(&new).await.unwrap(), None, "{name}: no successor is stored");

        let (_, in_old_family) = issue(&store, tenant, NOW + 10, NOW + LIFE).await;
        let answer = store.rotate_refresh(&in_old_family, &id32(), &no_grace(NOW + 11)).await.unwrap();
        assert_eq!(refresh_use(&answer), "revoked", "{name}: a live token of an expired grant");

        let unknown = store.rotate_refresh(&id32(), &id32(), &no_grace(NOW)).await.unwrap();
        assert_eq!(refresh_use(&unknown), "unknown", "{name}");
    }
}

#[tokio::test]
async fn sweep_removes_what_expired_and_keeps_what_lives() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (dead, live) = (NOW - 1, NOW + LIFE);
        let (session_dead, session_live) = (id32(), id32());
        store.put_session(&session_dead, &session(tenant, dead)).await.unwrap();
        store.put_session(&session_live, &session(tenant, live)).await.unwrap();
        let (code_dead, code_live) = (id32(), id32());
        store.put_code(&code_dead, &AuthCode { expires_at: dead, ..code(tenant, Uuid::new_v4()) }).await.unwrap();
        store.put_code(&code_live, &AuthCode { expires_at: live, ..code(tenant, Uuid::new_v4()) }).await.unwrap();
        let (_, refresh_dead) = issue(&store, tenant, live, dead).await;
        let (_, refresh_live) = issue(&store, tenant, live, live).await;
        let (signin_dead, signin_live) = (id32(), id32());
        store.put_signin(&signin_dead, &signin(tenant, id32(), dead)).await.unwrap();
        store.put_signin(&signin_live, &signin(tenant, id32(), live)).await.unwrap();
        store.revoke_jti("jti-dead", dead).await.unwrap();
        store.revoke_jti("jti-live", live).await.unwrap();
        assert_eq!(store.signin_count().await, 2, "{name}");

        assert_eq!(store.sweep(NOW).await.unwrap(), 5, "{name}: one expired record of each kind");
        assert_eq!(store.session(&session_dead).await.unwrap(), None, "{name}");
        assert_eq!(store.session(&session_live).await.unwrap(), Some(session(tenant, live)), "{name}");
        assert_eq!(store.code(&code_dead).await.unwrap(), None, "{name}");
        assert!(store.code(&code_live).await.unwrap().is_some(), "{name}");
        assert_eq!(store.refresh_token(&refresh_dead).await.unwrap(), None, "{name}");
        assert!(store.refresh_token(&refresh_live).await.unwrap().is_some(), "{name}");
        assert_eq!(store.signin(&signin_dead).await.unwrap(), None, "{name}");
        assert!(store.signin(&signin_live).await.unwrap().is_some(), "{name}");
        assert_eq!(store.signin_count().await, 1, "{name}: the count follows the sweep");
        assert!(!store.jti_revoked("jti-dead").await.unwrap(), "{name}");
        assert!(store.jti_revoked("jti-live").await.unwrap(), "{name}");
        assert_eq!(store.sweep(NOW).await.unwrap(), 0, "{name}: a second sweep finds nothing");
    }
}

#[tokio::test]
async fn sweep_removes_grants_past_their_lifetime() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (dead, live) = (NOW - 1, NOW + LIFE);
        let (grant_dead, refresh_dead) = issue(&store, tenant, dead, dead).await;
        // A token dated past its grant's end is dead with the grant.
        let (grant_ended, refresh_outlives) = issue(&store, tenant, dead, live).await;
        let (grant_live, refresh_live) = issue(&store, tenant, live, live).await;
        let (grant_revoked, _) = issue(&store, tenant, live, live).await;
        store.revoke_grant(&grant_revoked).await.unwrap();

        assert_eq!(store.sweep(NOW).await.unwrap(), 3, "{name}: two grants and one refresh token expired");
        assert_eq!(store.grant(&grant_dead).await.unwrap(), None, "{name}");
        assert_eq!(store.refresh_token(&refresh_dead).await.unwrap(), None, "{name}");
        assert_eq!(store.grant(&grant_ended).await.unwrap(), None, "{name}: a grant past its end is swept");
        let late = refresh_use(&store.rotate_refresh(&refresh_outlives, &id32(), &no_grace(NOW)).await.unwrap());
        assert!(matches!(late, "revoked" | "unknown"), "{name}: its token does not rotate: {late}");
        assert!(store.grant(&grant_live).await.unwrap().is_some(), "{name}: a live grant is kept");
        assert!(store.grant(&grant_revoked).await.unwrap().unwrap().revoked, "{name}: a revoked live grant is kept");
        let next = store.rotate_refresh(&refresh_live, &id32(), &no_grace(NOW)).await.unwrap();
        assert_eq!(refresh_use(&next), "rotated", "{name}: the live family still rotates");
        assert_eq!(store.sweep(NOW).await.unwrap(), 0, "{name}: a second sweep finds nothing");
    }
}

#[tokio::test]
async fn a_rotated_token_presented_again_revokes_the_family() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (grant_id, old) = issue(&store, tenant, NOW + 10 * LIFE, NOW + LIFE).await;
        let new = id32();
        let RefreshUse::Rotated(next) = store.rotate_refresh(&old, &new, &no_grace(NOW + 5)).await.unwrap() else {
            panic!("{name}: a live token rotates");
        };
        let expected = RefreshToken { issued_at: NOW + 5, expires_at: NOW + 5 + LIFE, ..refresh(tenant, grant_id, 0) };
        assert_eq!(*next, expected, "{name}: the successor keeps the family and lives `life_secs`");
        assert_eq!(store.refresh_token(&new).await.unwrap(), Some(expected), "{name}");

        let stolen = id32();
        let reuse = store.rotate_refresh(&old, &stolen, &no_grace(NOW + 6)).await.unwrap();
        assert_eq!(refresh_use(&reuse), "reused", "{name}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revokes the grant");
        assert_eq!(store.refresh_token(&stolen).await.unwrap(), None, "{name}: reuse stores no successor");
        let honest = refresh_use(&store.rotate_refresh(&new, &id32(), &no_grace(NOW + 7)).await.unwrap());
        assert!(matches!(honest, "revoked" | "reused"), "{name}: the successor no longer rotates: {honest}");
    }
}

#[tokio::test]
async fn signin_log_is_newest_first_per_tenant_and_capped_by_limit() {
    for (name, store, _dir) in backends().await {
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut last_seq: Option<u64> = None;
        for i in 0..5 {
            let mut entry = log_entry(&format!("a{i}"), NOW + i);
            store.append_signin_log(&a, &mut entry).await.unwrap();
            assert!(last_seq.is_none_or(|l| entry.seq > l), "{name}: append assigns an increasing sequence");
            last_seq = Some(entry.seq);
            if i < 3 {
                store.append_signin_log(&b, &mut log_entry(&format!("b{i}"), NOW + i)).await.unwrap();
            }
        }
        let ids = |entries: Vec<SignInLogEntry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();
        // The trait documents newest first (the admin API lists sign-ins that way).
        assert_eq!(ids(store.signin_log(&a, 10).await.unwrap()), ["a4", "a3", "a2", "a1", "a0"], "{name}");
        assert_eq!(ids(store.signin_log(&a, 2).await.unwrap()), ["a4", "a3"], "{name}: limit caps");
        assert!(store.signin_log(&a, 0).await.unwrap().is_empty(), "{name}");
        assert_eq!(ids(store.signin_log(&b, 10).await.unwrap()), ["b2", "b1", "b0"], "{name}: only b's entries");
        assert!(store.signin_log(&TenantId::new(), 10).await.unwrap().is_empty(), "{name}");
        assert_eq!(store.signin_log_len(&a).await, 5, "{name}");
        assert_eq!(store.signin_log_len(&b).await, 3, "{name}");
    }
}

#[tokio::test]
async fn open_signin_evicts_a_browsers_oldest_and_refuses_when_full() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (per_browser, total) = (3, 100);
        let (other_browser, other) = (id32(), id32());
        let s = signin(tenant, other_browser, NOW + LIFE);
        let admitted = store.open_signin(&other, &s, per_browser, total, NOW).await.unwrap();
        assert_eq!(admitted, SignInAdmission::Stored, "{name}");
        let browser = id32();
        let ids: Vec<[u8; 32]> = (0..5).map(|_| id32()).collect();
        for id in &ids {
            let s = signin(tenant, browser, NOW + LIFE);
            assert_eq!(store.open_signin(id, &s, per_browser, total, NOW).await.unwrap(), SignInAdmission::Stored);
        }
        for (i, id) in ids.iter().enumerate() {
            let kept = store.signin(id).await.unwrap().is_some();
            assert_eq!(kept, i >= 2, "{name}: the browser keeps its newest {per_browser} (sign-in {i})");
        }
        assert!(store.signin(&other).await.unwrap().is_some(), "{name}: another browser's sign-in stays");
        assert_eq!(store.signin_count().await, 4, "{name}");

        // From a browser below its cap (one at its cap gives up its oldest to make room).
        let before = store.snapshot().await.unwrap();
        let refused = id32();
        let full = store.open_signin(&refused, &signin(tenant, other_browser, NOW + LIFE), per_browser, 4, NOW).await;
        assert_eq!(full.unwrap(), SignInAdmission::Full, "{name}: the instance holds its total");
        assert_eq!(store.signin(&refused).await.unwrap(), None, "{name}: Full stores nothing");
        assert_eq!(store.signin_count().await, 4, "{name}");
        assert!(before == store.snapshot().await.unwrap(), "{name}: Full evicts nothing either");
    }
}

#[tokio::test]
async fn open_signin_at_the_total_evicts_a_browser_at_its_cap_first() {
    for (name, store, _dir) in backends().await {
        let tenant = TenantId::new();
        let (per_browser, total) = (3, 4);
        let (other_browser, other) = (id32(), id32());
        let s = signin(tenant, other_browser, NOW + LIFE);
        assert_eq!(store.open_signin(&other, &s, per_browser, total, NOW).await.unwrap(), SignInAdmission::Stored);
        let browser = id32();
        let mut ids: Vec<[u8; 32]> = (0..3).map(|_| id32()).collect();
        for id in &ids {
            let s = signin(tenant, browser, NOW + LIFE);
            assert_eq!(store.open_signin(id, &s, per_browser, total, NOW).await.unwrap(), SignInAdmission::Stored);
        }
        assert_eq!(store.signin_count().await, total, "{name}: the instance is at its total");

        // The browser is at its cap too: its oldest makes room, as it would below the total.
        for round in 0..2 {
            let newest = id32();
            let s = signin(tenant, browser, NOW + LIFE);
            let admitted = store.open_signin(&newest, &s, per_browser, total, NOW).await.unwrap();
            assert_eq!(admitted, SignInAdmission::Stored, "{name}, round {round}");
            let oldest = ids.remove(0);
            assert_eq!(store.signin(&oldest).await.unwrap(), None, "{name}, round {round}: the oldest is evicted");
            ids.push(newest);
            for id in &ids {
                assert!(store.signin(id).await.unwrap().is_some(), "{name}, round {round}: the newest are kept");
            }
            assert!(store.signin(&other).await.unwrap().is_some(), "{name}, round {round}: another browser's stays");
            assert_eq!(store.signin_count().await, total, "{name}, round {round}: still at the total, not over");
        }

        // A browser below its cap has nothing of its own to give up: Full, and nothing changes.
        let before = store.snapshot().await.unwrap();
        let refused = id32();
        let s = signin(tenant, other_browser, NOW + LIFE);
        let full = store.open_signin(&refused, &s, per_browser, total, NOW).await.unwrap();
        assert_eq!(full, SignInAdmission::Full, "{name}");
        assert!(before == store.snapshot().await.unwrap(), "{name}: Full stores and evicts nothing");
        // At its cap, but the total is now under what the store holds: one eviction makes no room.
        let s = signin(tenant, browser, NOW + LIFE);
        let full = store.open_signin(&id32(), &s, per_browser, total - 1, NOW).await.unwrap();
        assert_eq!(full, SignInAdmission::Full, "{name}: one eviction cannot bring the store under the total");
        assert!(before == store.snapshot().await.unwrap(), "{name}: and nothing was evicted for it");
    }
}

#[tokio::test]
async fn users_lists_exactly_the_tenants_users() {
    for (name, store, _dir) in backends().await {
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut of_a: Vec<User> = (0..5).map(|i| user(a, &format!("a{i}"))).collect();
        let of_b: Vec<User> = (0..2).map(|i| user(b, &format!("b{i}"))).collect();
        for u in of_a.iter().chain(&of_b) {
            store.insert_user(u).await.unwrap();
        }
        let sorted = |mut users: Vec<User>| {
            users.sort_by_key(|u| u.id);
            users
        };
        let listed = store.users(&a).await.unwrap();
        assert_eq!(store.users(&a).await.unwrap(), listed, "{name}: the order is stable");
        assert_eq!(sorted(listed), sorted(of_a.clone()), "{name}: each of a's users once, no one else");
        assert_eq!(sorted(store.users(&b).await.unwrap()), sorted(of_b), "{name}");
        assert!(store.users(&TenantId::new()).await.unwrap().is_empty(), "{name}");

        let gone = of_a.remove(0);
        store.delete_user(&a, &gone.id).await.unwrap();
        assert_eq!(sorted(store.users(&a).await.unwrap()), sorted(of_a), "{name}: a deleted user is not listed");
    }
}

// ---- the retry rule of refresh rotation (RefreshRules) ----

/// The grace window of the retry cases, and the instant (ms) of their first rotation.
const GRACE: i64 = 30;
const ROTATED_AT_MS: i64 = (NOW + 1) * 1000;

/// Rotation at `now_ms` with the retry window `GRACE` open.
fn with_grace(now_ms: i64) -> RefreshRules {
    RefreshRules { now: now_ms / 1000, now_ms, life_secs: LIFE, grace_secs: GRACE, retry_after_ms: 1000 }
}

/// A family whose first token was rotated at `ROTATED_AT_MS`: (grant, old token, its successor).
async fn rotated_family(name: &str, store: &Store) -> (Uuid, [u8; 32], [u8; 32]) {
    let tenant = TenantId::new();
    let (grant_id, old) = issue(store, tenant, NOW + 10 * LIFE, NOW + LIFE).await;
    let first = id32();
    let answer = store.rotate_refresh(&old, &first, &with_grace(ROTATED_AT_MS)).await.unwrap();
    assert_eq!(refresh_use(&answer), "rotated", "{name}");
    (grant_id, old, first)
}

#[tokio::test]
async fn a_rotated_token_retried_within_grace_gets_a_fresh_successor_and_retires_the_unused_one() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, first) = rotated_family(name, &store).await;
        let retry_ms = ROTATED_AT_MS + 1500;
        let second = id32();
        let RefreshUse::Retried(next) = store.rotate_refresh(&old, &second, &with_grace(retry_ms)).await.unwrap()
        else {
            panic!("{name}: the previous token once more within the grace window is a retry");
        };
        let now = retry_ms / 1000;
        let old_token = store.refresh_token(&old).await.unwrap().unwrap();
        let expected =
            RefreshToken { issued_at: now, expires_at: now + LIFE, ..refresh(old_token.tenant_id, grant_id, 0) };
        assert_eq!(*next, expected, "{name}: the retried successor is fresh and of the same family");
        assert_eq!(store.refresh_token(&second).await.unwrap(), Some(expected), "{name}: and it is stored");
        assert_eq!(store.refresh_token(&first).await.unwrap(), None, "{name}: the unused successor is retired");
        let gone = store.rotate_refresh(&first, &id32(), &with_grace(retry_ms + 10)).await.unwrap();
        assert_eq!(refresh_use(&gone), "unknown", "{name}: the retired successor is unknown");
        assert!(!store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: a retry revokes nothing");

        let third = id32();
        let on = store.rotate_refresh(&second, &third, &with_grace(retry_ms + 2000)).await.unwrap();
        assert_eq!(refresh_use(&on), "rotated", "{name}: the retried successor rotates normally");
        assert!(store.refresh_token(&third).await.unwrap().is_some(), "{name}");
    }
}

#[tokio::test]
async fn a_second_retry_of_one_token_is_reuse() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, _) = rotated_family(name, &store).await;
        let retried = store.rotate_refresh(&old, &id32(), &with_grace(ROTATED_AT_MS + 1500)).await.unwrap();
        assert_eq!(refresh_use(&retried), "retried", "{name}");
        let again = id32();
        let answer = store.rotate_refresh(&old, &again, &with_grace(ROTATED_AT_MS + 3000)).await.unwrap();
        assert_eq!(refresh_use(&answer), "reused", "{name}: only one retry per token");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revokes the grant");
        assert_eq!(store.refresh_token(&again).await.unwrap(), None, "{name}: reuse stores no successor");
    }
}

#[tokio::test]
async fn a_retry_after_the_successor_was_used_is_reuse() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, first) = rotated_family(name, &store).await;
        let used = store.rotate_refresh(&first, &id32(), &with_grace(ROTATED_AT_MS + 1200)).await.unwrap();
        assert_eq!(refresh_use(&used), "rotated", "{name}");
        let late = id32();
        let answer = store.rotate_refresh(&old, &late, &with_grace(ROTATED_AT_MS + 1500)).await.unwrap();
        assert_eq!(refresh_use(&answer), "reused", "{name}: the successor was used, so the answer was not lost");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revokes the grant");
        assert_eq!(store.refresh_token(&late).await.unwrap(), None, "{name}: reuse stores no successor");
    }
}

#[tokio::test]
async fn a_rotated_token_presented_again_at_once_is_reuse_not_a_retry() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, first) = rotated_family(name, &store).await;
        let answer = store.rotate_refresh(&old, &id32(), &with_grace(ROTATED_AT_MS + 10)).await.unwrap();
        assert_eq!(refresh_use(&answer), "reused", "{name}: sooner than retry_after_ms is a concurrent copy");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revokes the grant");
        let after = store.rotate_refresh(&first, &id32(), &with_grace(ROTATED_AT_MS + 20)).await.unwrap();
        assert_eq!(refresh_use(&after), "revoked", "{name}: the successor died with the family");
    }
}

#[tokio::test]
async fn a_rotated_token_presented_again_past_the_grace_is_reuse() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, _) = rotated_family(name, &store).await;
        let past = ROTATED_AT_MS + GRACE * 1000 + 1;
        let answer = store.rotate_refresh(&old, &id32(), &with_grace(past)).await.unwrap();
        assert_eq!(refresh_use(&answer), "reused", "{name}: outside the window a second use is reuse");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: reuse revokes the grant");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_token_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let (grant_id, old, first) = rotated_family(name, &store).await;
        let new_ids: Vec<[u8; 32]> = (0..N).map(|_| id32()).collect();
        let answers =
            race(|i| {
                let (store, new) = (store.clone(), new_ids[i]);
                async move {
                    refresh_use(&store.rotate_refresh(&old, &new, &with_grace(ROTATED_AT_MS + 1500)).await.unwrap())
                }
            })
            .await;
        assert_eq!(count(&answers, "retried"), 1, "{name}: {answers:?}");
        assert_eq!(count(&answers, "reused"), N - 1, "{name}: the one retry is spent: {answers:?}");
        assert!(store.grant(&grant_id).await.unwrap().unwrap().revoked, "{name}: the copies revoked the grant");
        assert_eq!(store.refresh_token(&first).await.unwrap(), None, "{name}: the unused successor is retired");
        let winner = answers.iter().position(|a| *a == "retried").unwrap();
        for (i, new) in new_ids.iter().enumerate() {
            let stored = store.refresh_token(new).await.unwrap().is_some();
            assert_eq!(stored, i == winner, "{name}: only the retry's successor is stored (task {i})");
        }
    }
}

#[tokio::test]
async fn users_pages_walk_each_user_once_in_id_order() {
    for (name, store, _dir) in backends().await {
        let (a, b) = (TenantId::new(), TenantId::new());
        let mut members: Vec<User> = (0..7).map(|i| user(a, &format!("m{i}"))).collect();
        let mut guests: Vec<User> =
            (0..3).map(|i| User { user_type: UserType::Guest, ..user(a, &format!("g{i}")) }).collect();
        for u in members.iter().chain(&guests).chain(&[user(b, "other")]) {
            store.insert_user(u).await.unwrap();
        }
        members.sort_by_key(|u| u.id);
        guests.sort_by_key(|u| u.id);
        let mut everyone: Vec<User> = members.iter().chain(&guests).cloned().collect();
        everyone.sort_by_key(|u| u.id);
        for (kind, expected) in
            [(None, &everyone), (Some(UserType::Member), &members), (Some(UserType::Guest), &guests)]
        {
            for limit in [1, 3, expected.len(), expected.len() + 1] {
                let (mut walked, mut after, mut pages) = (Vec::new(), None, 0);
                loop {
                    let (page, next) = store.users_page(&a, kind, after.as_ref(), limit).await.unwrap();
                    assert!(page.len() <= limit, "{name}: a page of {} over its limit {limit}", page.len());
                    pages += 1;
                    walked.extend(page);
                    match next {
                        Some(cursor) => {
                            assert_eq!(Some(cursor), walked.last().map(|u| u.id), "{name}: the cursor is the last id");
                            after = Some(cursor);
                        }
                        None => break,
                    }
                    assert!(pages <= expected.len(), "{name}: the walk ends");
                }
                assert_eq!(&walked, expected, "{name}: {kind:?} by {limit}: each once, in id order");
                assert_eq!(pages, expected.len().div_ceil(limit).max(1), "{name}: no empty page at the end");
            }
        }
        let (page, next) = store.users_page(&a, None, None, 0).await.unwrap();
        assert!(page.is_empty() && next.is_none(), "{name}: a page of nothing");
        let last = everyone.last().unwrap().id;
        let (page, next) = store.users_page(&a, None, Some(&last), 5).await.unwrap();
        assert!(page.is_empty() && next.is_none(), "{name}: nothing after the last user");
    }
}

#[tokio::test]
async fn trim_drops_old_entries_then_unknown_account_failures_first() {
    for (name, store, _dir) in backends().await {
        let (a, b) = (TenantId::new(), TenantId::new());
        let failure = |id: &str, at: i64, user: Option<UserId>| SignInLogEntry {
            user_id: user,
            status: gatehouse::model::Status { error_code: 50126, ..Default::default() },
            ..log_entry(id, at)
        };
        let known = Some(UserId::new());
        let entries = [
            log_entry("old-success", NOW - 100),
            failure("old-anonymous", NOW - 90, None),
            SignInLogEntry { user_id: known, ..log_entry("success-1", NOW) },
            failure("anonymous-1", NOW + 1, None),
            failure("known-failure", NOW + 2, known),
            failure("anonymous-2", NOW + 3, None),
            SignInLogEntry { user_id: known, ..log_entry("success-2", NOW + 4) },
            failure("anonymous-3", NOW + 5, None),
        ];
        for e in &entries {
            store.append_signin_log(&a, &mut e.clone()).await.unwrap();
        }
        for i in 0..3 {
            store.append_signin_log(&b, &mut failure(&format!("b{i}"), NOW + i, None)).await.unwrap();
        }
        let ids = |entries: Vec<SignInLogEntry>| entries.into_iter().map(|e| e.id).collect::<Vec<_>>();

        // Retention first (2 old), then a's 6 left are 2 over `keep`: its 2 oldest anonymous failures.
        assert_eq!(store.trim_signin_log(NOW - 10, 4).await.unwrap(), 4, "{name}");
        let kept = ids(store.signin_log(&a, 10).await.unwrap());
        assert_eq!(kept, ["anonymous-3", "success-2", "known-failure", "success-1"], "{name}");
        assert_eq!(store.signin_log_len(&b).await, 3, "{name}: a tenant under the cap keeps everything");

        // Over the cap with one anonymous failure left: it goes, then the oldest others.
        assert_eq!(store.trim_signin_log(NOW - 10, 2).await.unwrap(), 2 + 1, "{name}");
        assert_eq!(ids(store.signin_log(&a, 10).await.unwrap()), ["success-2", "known-failure"], "{name}");
        assert_eq!(ids(store.signin_log(&b, 10).await.unwrap()), ["b2", "b1"], "{name}: b's oldest goes");
        assert_eq!(store.trim_signin_log(NOW - 10, 2).await.unwrap(), 0, "{name}: nothing more to trim");
    }
}
