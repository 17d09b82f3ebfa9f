//! The mail queue contract (`MailQueueStore`): jobs persist, a due job is claimed by exactly
//! one of concurrent claimers under a lease, an outcome is written only under its claim, a
//! lapsed lease is claimed again, retries wait for their time, retention keeps what is not
//! final. Each case runs on every backend of [`backends`](crate::storage_contract::backends).
use gatehouse::model::{MailJob, MailKind, MailState, TenantId};
use gatehouse::storage::{Store, StoreError};
use uuid::Uuid;

use crate::storage_contract::{N, NOW, backends, race};

const NOW_MS: i64 = NOW * 1000;
const LEASE: i64 = 10_000;

fn job(tenant: TenantId, created_at: i64) -> MailJob {
    MailJob {
        id: Uuid::new_v4(),
        seq: 0,
        tenant_id: Some(tenant),
        kind: MailKind::Invitation,
        to: "pat@northwind.example".into(),
        from_name: Some("Fabrikam".into()),
        reply_to: None,
        subject: "You're invited to Fabrikam".into(),
        sealed_text: Some("s1.text".into()),
        sealed_html: Some("s1.html".into()),
        created_at,
        state: MailState::Queued,
        attempts: 0,
        last_error: None,
        last_attempt_ms: None,
        next_attempt_ms: created_at * 1000,
        lease: None,
        lease_until_ms: 0,
        sent_ms: None,
    }
}

async fn stored(store: &Store, id: &Uuid) -> MailJob {
    store.mail_job(id).await.unwrap().expect("the job is stored")
}

#[tokio::test]
async fn a_job_is_stored_once_and_claimed_once_under_a_lease() {
    for (name, store, _dir) in backends().await {
        let j = store.enqueue_mail(&job(TenantId::new(), NOW)).await.unwrap();
        let before = store.snapshot().await.unwrap();
        let again = store.enqueue_mail(&MailJob { subject: "other".into(), ..j.clone() }).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{name}: {again:?}");
        assert_eq!(store.snapshot().await.unwrap(), before, "{name}: a refused enqueue changes nothing");
        assert_eq!(stored(&store, &j.id).await, j, "{name}");

        let claimed = store.claim_mail(NOW_MS, LEASE, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "{name}");
        let c = &claimed[0];
        assert_eq!((c.state, c.attempts, c.lease_until_ms), (MailState::Sending, 1, NOW_MS + LEASE), "{name}");
        assert_eq!(&stored(&store, &j.id).await, c, "{name}: the claim is stored");
        assert!(store.claim_mail(NOW_MS + LEASE - 1, LEASE, 10).await.unwrap().is_empty(), "{name}: leased");

        let lease = c.lease.unwrap();
        let sent = c.sent(NOW_MS + 5);
        assert!(!store.finish_mail(&Uuid::new_v4(), &sent).await.unwrap(), "{name}: another claim writes nothing");
        assert_eq!(&stored(&store, &j.id).await, c, "{name}");
        assert!(store.finish_mail(&lease, &sent).await.unwrap(), "{name}");
        assert_eq!(stored(&store, &j.id).await, sent, "{name}");
        assert!(!store.finish_mail(&lease, &sent).await.unwrap(), "{name}: an outcome is written once");
        assert!(store.claim_mail(NOW_MS + 10 * LEASE, LEASE, 10).await.unwrap().is_empty(), "{name}: sent is final");
    }
}

#[tokio::test]
async fn concurrent_claims_of_one_job_have_exactly_one_winner() {
    for (name, store, _dir) in backends().await {
        let j = job(TenantId::new(), NOW);
        store.enqueue_mail(&j).await.unwrap();
        let answers = race(|_| {
            let store = store.clone();
            async move { store.claim_mail(NOW_MS, LEASE, 1).await.unwrap().len() }
        })
        .await;
        assert_eq!(answers.iter().sum::<usize>(), 1, "{name}: {N} claimers, {answers:?}");
        assert_eq!(stored(&store, &j.id).await.attempts, 1, "{name}: one attempt counted");
    }
}

#[tokio::test]
async fn a_lapsed_lease_is_claimed_again_and_the_first_claimer_writes_nothing() {
    for (name, store, _dir) in backends().await {
        let j = job(TenantId::new(), NOW);
        store.enqueue_mail(&j).await.unwrap();
        let first = store.claim_mail(NOW_MS, LEASE, 1).await.unwrap().remove(0);
        let second = store.claim_mail(NOW_MS + LEASE, LEASE, 1).await.unwrap();
        assert_eq!(second.len(), 1, "{name}: the holder stopped answering");
        assert_eq!(second[0].attempts, 2, "{name}");
        assert_ne!(second[0].lease, first.lease, "{name}");
        let late = first.sent(NOW_MS + LEASE + 1);
        assert!(!store.finish_mail(&first.lease.unwrap(), &late).await.unwrap(), "{name}");
        assert_eq!(stored(&store, &j.id).await, second[0], "{name}: the new claim stands");
    }
}

#[tokio::test]
async fn a_retry_waits_for_its_time_and_the_last_attempt_fails() {
    for (name, store, _dir) in backends().await {
        let j = job(TenantId::new(), NOW);
        store.enqueue_mail(&j).await.unwrap();
        let c = store.claim_mail(NOW_MS, LEASE, 1).await.unwrap().remove(0);
        let retry = c.failed_attempt(NOW_MS, "connection refused", false, 1000, 2);
        assert!(store.finish_mail(&c.lease.unwrap(), &retry).await.unwrap(), "{name}");
        assert_eq!((retry.state, retry.next_attempt_ms), (MailState::Retrying, NOW_MS + 1000), "{name}");
        assert!(store.claim_mail(NOW_MS + 999, LEASE, 1).await.unwrap().is_empty(), "{name}: not yet");
        let c = store.claim_mail(NOW_MS + 1000, LEASE, 1).await.unwrap().remove(0);
        assert_eq!(c.attempts, 2, "{name}");
        let failed = c.failed_attempt(NOW_MS + 1000, "connection refused", false, 1000, 2);
        assert!(store.finish_mail(&c.lease.unwrap(), &failed).await.unwrap(), "{name}");
        let s = stored(&store, &j.id).await;
        assert_eq!((s.state, s.sealed_text.as_deref()), (MailState::Failed, None), "{name}: no body is kept");
        assert_eq!(s.last_error.as_deref(), Some("connection refused"), "{name}");
        assert!(store.claim_mail(i64::MAX / 2, LEASE, 1).await.unwrap().is_empty(), "{name}: failed is final");
    }
}

#[tokio::test]
async fn jobs_are_listed_per_tenant_newest_first_and_trimmed_only_when_final() {
    for (name, store, _dir) in backends().await {
        let (t, other) = (TenantId::new(), TenantId::new());
        let old = job(t, NOW - 100);
        let new = job(t, NOW);
        // Written in the same second: the later one is listed first all the same.
        let newer = job(t, NOW);
        let theirs = job(other, NOW);
        for j in [&old, &new, &newer, &theirs] {
            store.enqueue_mail(j).await.unwrap();
        }
        let ids: Vec<Uuid> = store.mail_jobs(&t, 10).await.unwrap().iter().map(|j| j.id).collect();
        assert_eq!(ids, [newer.id, new.id, old.id], "{name}");
        assert_eq!(store.mail_jobs(&t, 1).await.unwrap().len(), 1, "{name}: capped");
        // The old one is sent; a trim after both were written removes only it.
        let c = store.claim_mail(old.next_attempt_ms, LEASE, 1).await.unwrap().remove(0);
        assert_eq!(c.id, old.id, "{name}: the oldest due first");
        assert!(store.finish_mail(&c.lease.unwrap(), &c.sent(NOW_MS)).await.unwrap(), "{name}");
        assert_eq!(store.trim_mail(NOW + 1).await.unwrap(), 1, "{name}");
        let ids: Vec<Uuid> = store.mail_jobs(&t, 10).await.unwrap().iter().map(|j| j.id).collect();
        assert_eq!(ids, [newer.id, new.id], "{name}: a queued job is never trimmed");
        assert_eq!(store.mail_jobs(&other, 10).await.unwrap().len(), 1, "{name}");
    }
}

/// Two nodes on one PostgreSQL database drain one queue together: every message is claimed
/// by exactly one of them, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_draining_one_queue_claim_each_message_once() {
    let Some((a, b, _)) = crate::storage_counters::two_nodes().await else { return };
    let tenant = TenantId::new();
    let mut ids = Vec::new();
    for _ in 0..(2 * N) {
        ids.push(a.enqueue_mail(&job(tenant, NOW)).await.unwrap().id);
    }
    let claims = race(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move {
            let mut mine = Vec::new();
            for _ in 0..(4 * N) {
                let got = store.claim_mail(NOW_MS, LEASE, 1).await.unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
            mine
        }
    })
    .await;
    let mut claimed: Vec<Uuid> = claims.into_iter().flatten().collect();
    claimed.sort();
    ids.sort();
    assert_eq!(claimed, ids, "every message claimed, none twice");
    for id in &ids {
        assert_eq!(stored(&b, id).await.attempts, 1, "one attempt each");
    }
}
