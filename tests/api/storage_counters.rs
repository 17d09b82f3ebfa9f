//! The counter contract (`CounterStore`): lockouts and rate limits in a sliding window,
//! checked and counted in one step. Each case runs on every backend of
//! [`backends`](crate::storage_contract::backends); the PostgreSQL-only cases run two stores
//! on one database, as two nodes would.
use std::sync::Arc;

use gatehouse::storage::{Reserved, Store};

// `N` (how many attempts each race runs at once) and `race` are the contract suite's.
use crate::storage_contract::{N, backends, race};

const NOW: i64 = 1_700_000_000;
const LIMIT: u32 = 5;
const WINDOW: i64 = 900;

fn yes(answers: &[Reserved]) -> Vec<usize> {
    let mut before: Vec<usize> =
        answers.iter().filter_map(|a| if let Reserved::Yes { before } = a { Some(*before) } else { None }).collect();
    before.sort_unstable();
    before
}

async fn reserve(store: &Store, key: &str, now: i64) -> Reserved {
    store.reserve(key, LIMIT, WINDOW, now).await.unwrap()
}

#[tokio::test]
async fn counters_reserve_up_to_the_limit_then_refuse_with_the_wait() {
    for (name, store, _dir) in backends().await {
        for i in 0..LIMIT as usize {
            let at = NOW + i as i64;
            assert_eq!(reserve(&store, "acct:a", at).await, Reserved::Yes { before: i }, "{name}: attempt {i}");
        }
        // The oldest (at NOW) leaves the window at NOW + WINDOW: 890 s from NOW + 10.
        assert_eq!(reserve(&store, "acct:a", NOW + 10).await, Reserved::No { retry_after: WINDOW - 10 }, "{name}");
        assert_eq!(store.count("acct:a", WINDOW, NOW + 10).await.unwrap(), 5, "{name}: a refusal is not counted");
        assert_eq!(store.retry_after("acct:a", LIMIT, WINDOW, NOW + 10).await.unwrap(), Some(WINDOW - 10), "{name}");
        assert_eq!(store.retry_after("acct:a", LIMIT + 1, WINDOW, NOW + 10).await.unwrap(), None, "{name}");
        // Another key has its own count.
        assert_eq!(reserve(&store, "acct:b", NOW + 10).await, Reserved::Yes { before: 0 }, "{name}");
        assert_eq!(store.count("acct:c", WINDOW, NOW).await.unwrap(), 0, "{name}: an unknown key counts nothing");
        assert_eq!(store.retry_after("acct:c", LIMIT, WINDOW, NOW).await.unwrap(), None, "{name}");
        // A limit of nothing refuses at once and counts nothing.
        assert!(matches!(store.reserve("acct:d", 0, WINDOW, NOW).await.unwrap(), Reserved::No { .. }), "{name}");
        assert_eq!(store.count("acct:d", WINDOW, NOW).await.unwrap(), 0, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reserves_let_exactly_the_limit_through() {
    for (name, store, _dir) in backends().await {
        let answers = race(|_| {
            let store = store.clone();
            async move { reserve(&store, "acct:race", NOW).await }
        })
        .await;
        assert_eq!(yes(&answers), vec![0, 1, 2, 3, 4], "{name}: {answers:?}");
        let refused = answers.iter().filter(|a| **a == Reserved::No { retry_after: WINDOW }).count();
        assert_eq!(refused, N - LIMIT as usize, "{name}: {answers:?}");
        assert_eq!(store.count("acct:race", WINDOW, NOW).await.unwrap(), 5, "{name}");
    }
}

#[tokio::test]
async fn a_release_gives_one_attempt_back() {
    for (name, store, _dir) in backends().await {
        for i in 0..LIMIT as i64 {
            reserve(&store, "acct:r", NOW + i).await;
        }
        assert!(matches!(reserve(&store, "acct:r", NOW + 5).await, Reserved::No { .. }), "{name}");
        // Releasing a time nothing was reserved at, or an unknown key, gives nothing back.
        store.release("acct:r", NOW + 100).await.unwrap();
        store.release("acct:unknown", NOW).await.unwrap();
        assert!(matches!(reserve(&store, "acct:r", NOW + 5).await, Reserved::No { .. }), "{name}");
        store.release("acct:r", NOW + 2).await.unwrap();
        assert_eq!(store.count("acct:r", WINDOW, NOW + 5).await.unwrap(), 4, "{name}: exactly one went");
        assert_eq!(reserve(&store, "acct:r", NOW + 6).await, Reserved::Yes { before: 4 }, "{name}");
        assert!(matches!(reserve(&store, "acct:r", NOW + 7).await, Reserved::No { .. }), "{name}: only one");
        // Two attempts at one second: a release gives back one of them, not both.
        for _ in 0..2 {
            reserve(&store, "acct:same", NOW).await;
        }
        store.release("acct:same", NOW).await.unwrap();
        assert_eq!(store.count("acct:same", WINDOW, NOW).await.unwrap(), 1, "{name}");
    }
}

#[tokio::test]
async fn events_leave_the_window_and_free_their_slots() {
    for (name, store, _dir) in backends().await {
        for i in 0..LIMIT as i64 {
            reserve(&store, "acct:w", NOW + 100 * i).await;
        }
        // At NOW + WINDOW the first event (at NOW) has left; the others are still in.
        assert_eq!(store.count("acct:w", WINDOW, NOW + WINDOW - 1).await.unwrap(), 5, "{name}");
        assert_eq!(store.count("acct:w", WINDOW, NOW + WINDOW).await.unwrap(), 4, "{name}");
        assert_eq!(store.retry_after("acct:w", LIMIT, WINDOW, NOW + WINDOW).await.unwrap(), None, "{name}");
        assert_eq!(reserve(&store, "acct:w", NOW + WINDOW).await, Reserved::Yes { before: 4 }, "{name}");
        assert_eq!(
            reserve(&store, "acct:w", NOW + WINDOW).await,
            Reserved::No { retry_after: 100 },
            "{name}: the next slot frees when the event at NOW + 100 leaves"
        );
        // Long after, everything is gone.
        let later = NOW + 10 * WINDOW;
        assert_eq!(store.count("acct:w", WINDOW, later).await.unwrap(), 0, "{name}");
        assert_eq!(reserve(&store, "acct:w", later).await, Reserved::Yes { before: 0 }, "{name}");
    }
}

#[tokio::test]
async fn recorded_events_count_without_a_check_and_the_wait_is_for_dropping_below_the_limit() {
    for (name, store, _dir) in backends().await {
        for i in 0..7 {
            store.record("ip:x", WINDOW, NOW + 10 * i).await.unwrap();
        }
        assert_eq!(store.count("ip:x", WINDOW, NOW + 60).await.unwrap(), 7, "{name}: past the limit");
        // 7 events, limit 5: under the limit once the third (at NOW + 20) has left.
        assert_eq!(store.retry_after("ip:x", LIMIT, WINDOW, NOW + 60).await.unwrap(), Some(WINDOW - 40), "{name}");
        assert_eq!(
            store.reserve("ip:x", LIMIT, WINDOW, NOW + 60).await.unwrap(),
            Reserved::No { retry_after: WINDOW - 40 },
            "{name}"
        );
        assert_eq!(store.count("ip:x", WINDOW, NOW + WINDOW + 5).await.unwrap(), 6, "{name}: the window forgets");
    }
}

#[tokio::test]
async fn clear_forgets_one_key_only() {
    for (name, store, _dir) in backends().await {
        for i in 0..LIMIT as i64 {
            reserve(&store, "acct:c1", NOW + i).await;
            reserve(&store, "acct:c2", NOW + i).await;
        }
        store.clear("acct:c1").await.unwrap();
        store.clear("acct:never").await.unwrap();
        assert_eq!(store.count("acct:c1", WINDOW, NOW + 5).await.unwrap(), 0, "{name}");
        assert_eq!(reserve(&store, "acct:c1", NOW + 5).await, Reserved::Yes { before: 0 }, "{name}");
        assert_eq!(store.count("acct:c2", WINDOW, NOW + 5).await.unwrap(), 5, "{name}: the other key is kept");
        assert!(matches!(reserve(&store, "acct:c2", NOW + 5).await, Reserved::No { .. }), "{name}");
    }
}

#[tokio::test]
async fn limiters_namespace_their_keys() {
    for (name, store, _dir) in backends().await {
        let pwd = gatehouse::storage::Limiter::new(store.clone(), "pwd", 2, WINDOW);
        let otp = gatehouse::storage::Limiter::new(store.clone(), "otp", 2, WINDOW);
        assert_eq!(pwd.try_reserve("k", NOW).await.unwrap(), Reserved::Yes { before: 0 }, "{name}");
        assert_eq!(pwd.try_reserve("k", NOW).await.unwrap(), Reserved::Yes { before: 1 }, "{name}");
        assert!(matches!(pwd.try_reserve("k", NOW).await.unwrap(), Reserved::No { .. }), "{name}");
        assert_eq!(otp.try_reserve("k", NOW).await.unwrap(), Reserved::Yes { before: 0 }, "{name}: its own count");
        assert_eq!(store.count("pwd:k", WINDOW, NOW).await.unwrap(), 2, "{name}: stored as name:key");
        pwd.clear("k").await.unwrap();
        assert_eq!(otp.count("k", NOW).await.unwrap(), 1, "{name}: clearing one limiter keeps the other's");
    }
}

// ---- two nodes on one database (PostgreSQL) ----

/// Two stores on one fresh database (two nodes), when a test cluster is configured.
pub(crate) async fn two_nodes() -> Option<(Store, Store, String)> {
    let url = crate::helpers::fresh_database().await?;
    let open = |url: String| async move {
        let options = gatehouse::storage::postgres::PgOptions {
            url,
            pool_size: 8,
            threads: 1,
            timeout: std::time::Duration::from_secs(10),
        };
        let store: Store = Arc::new(gatehouse::storage::postgres::PgStore::open(options).await.unwrap());
        store
    };
    Some((open(url.clone()).await, open(url.clone()).await, url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lockout_holds_across_nodes_and_cannot_be_raced_past() {
    let Some((a, b, _)) = two_nodes().await else { return };
    // 3 wrong passwords on A and 3 on B, alternating: the sixth is refused (limit 5).
    for i in 0..5 {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(reserve(node, "acct:n", NOW + i as i64).await, Reserved::Yes { before: i }, "attempt {i}");
    }
    assert_eq!(reserve(&b, "acct:n", NOW + 5).await, Reserved::No { retry_after: WINDOW - 5 }, "locked on B too");
    assert_eq!(a.count("acct:n", WINDOW, NOW + 6).await.unwrap(), 5);
    assert_eq!(b.count("acct:n", WINDOW, NOW + 6).await.unwrap(), 5, "both nodes see one count");
    // 16 at once, alternating between the nodes: exactly the limit gets through.
    let answers = race(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { reserve(&store, "acct:m", NOW).await }
    })
    .await;
    assert_eq!(yes(&answers), vec![0, 1, 2, 3, 4], "{answers:?}");
    // A release on one node frees the slot for the other.
    a.release("acct:m", NOW).await.unwrap();
    assert_eq!(reserve(&b, "acct:m", NOW + 1).await, Reserved::Yes { before: 4 });
    b.clear("acct:m").await.unwrap();
    assert_eq!(a.count("acct:m", WINDOW, NOW + 1).await.unwrap(), 0, "a clear on one node holds on the other");
}

#[tokio::test]
async fn a_counter_the_database_cannot_answer_is_an_error_never_an_allowed_attempt() {
    let Some((a, _b, url)) = two_nodes().await else { return };
    assert_eq!(reserve(&a, "acct:down", NOW).await, Reserved::Yes { before: 0 });
    // The database stops answering this store: every connection is ended and no new one
    // is let in. The next reservation must fail, not pass.
    let admin = std::env::var("GATEHOUSE_TEST_DATABASE_URL").unwrap();
    let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let db = url::Url::parse(&url).unwrap().path().trim_start_matches('/').to_string();
    client.batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false")).await.unwrap();
    client.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&db]).await.unwrap();
    let refused = a.reserve("acct:down", LIMIT, WINDOW, NOW + 1).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(a.record("ip:down", WINDOW, NOW + 1).await.is_err());
    assert!(a.retry_after("acct:down", LIMIT, WINDOW, NOW + 1).await.is_err());
}
