//! Refresh rotations in batches. A worker thread sends its rotations to one task of its own;
//! the task sends whatever arrived while its previous batch was at the database as one
//! statement, so many rotations share one round trip, one plan and one commit (one WAL
//! flush). Nothing waits for a batch to fill: a rotation alone goes at once.
//!
//! Each rotation in a batch is decided by the database exactly as alone: the presented
//! token's row is updated only while it is still unrotated and its family live, and the
//! successor is written only for a row that was. A rotation the statement did not make is
//! decided again on the transactional path (`rotate_refresh`), which sees why.
use std::collections::HashSet;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{Cached, PgError, pg_error, retryable};
use crate::storage::{Result, StoreError};

/// The most rotations one statement carries.
const MAX_BATCH: usize = 64;

/// One rotation as the statement needs it: the presented token (`old`) with its rotated
/// document, and the successor (`new`) with its.
pub(super) struct Rotation {
    pub old: [u8; 32],
    pub spent_doc: Vec<u8>,
    pub grant_id: Uuid,
    pub now: i64,
    pub new: [u8; 32],
    pub next_expires: i64,
    pub next_doc: Vec<u8>,
    pub tenant_id: String,
    pub user_id: String,
}

/// Whether the statement rotated it (`false`: decide on the transactional path).
type Reply = oneshot::Sender<Result<bool>>;

/// A thread's batching task, fed through this sender.
#[derive(Clone)]
pub(super) struct Batcher(mpsc::UnboundedSender<(Rotation, Reply)>);

impl Batcher {
    /// Starts the task on the current (single-threaded) runtime, with the thread's pool.
    pub fn start(pool: Pool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx));
        Self(tx)
    }

    pub async fn rotate(&self, r: Rotation) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.0.send((r, reply)).map_err(|_| StoreError::Unavailable("the rotation task has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Unavailable("the rotation task has stopped".into()))?
    }
}

async fn run(pool: Pool, mut rx: mpsc::UnboundedReceiver<(Rotation, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        // One token presented twice in a batch: the second is decided on the transactional
        // path, after or before this statement (each way one of them rotates).
        let mut olds = HashSet::with_capacity(batch.len());
        let (mut send, mut again) = (Vec::with_capacity(batch.len()), Vec::new());
        for (r, reply) in batch {
            if olds.insert(r.old) { send.push((r, reply)) } else { again.push(reply) }
        }
        for reply in again {
            let _ = reply.send(Ok(false));
        }
        let rotations: Vec<&Rotation> = send.iter().map(|(r, _)| r).collect();
        let outcome = match pool.get().await {
            Ok(c) => execute(&c, &rotations).await,
            Err(e) => Err(super::pool_error(e)),
        };
        for (r, reply) in send {
            let _ = reply.send(outcome.as_ref().map(|made| made.contains(&r.new)).map_err(Clone::clone));
        }
    }
}

/// The statement: every rotation whose token is still unrotated and whose family is live is
/// made; the successors written say which. The tokens are found by their primary key
/// (`id = ANY`: whichever way the planner joins, it fetches exactly the batch's rows, never
/// scans the table) and each grant by a subquery of its own; no condition offers the
/// family's index (a family that rotated for long has as many rows as rotations). A statement undone by a deadlock or a
/// serialization failure made none (all go to the transactional path); any other failure
/// is the caller's, since a lost answer may hide a commit.
pub(super) async fn execute<C: Cached>(c: &C, batch: &[&Rotation]) -> Result<HashSet<[u8; 32]>> {
    let col = |f: fn(&Rotation) -> Vec<u8>| batch.iter().map(|r| f(r)).collect::<Vec<_>>();
    let olds = col(|r| r.old.to_vec());
    let spent = col(|r| r.spent_doc.clone());
    let news = col(|r| r.new.to_vec());
    let nexts = col(|r| r.next_doc.clone());
    let grants: Vec<Uuid> = batch.iter().map(|r| r.grant_id).collect();
    let nows: Vec<i64> = batch.iter().map(|r| r.now).collect();
    let expires: Vec<i64> = batch.iter().map(|r| r.next_expires).collect();
    let tenants: Vec<&str> = batch.iter().map(|r| r.tenant_id.as_str()).collect();
    let users: Vec<&str> = batch.iter().map(|r| r.user_id.as_str()).collect();
    let made = c
        .q(
            "WITH input AS ( \
               SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::uuid[], $4::bigint[], $5::bytea[], \
                                    $6::bigint[], $7::bytea[], $8::text[], $9::text[]) \
                 AS i(old, spent_doc, grant_id, now, new, next_expires, next_doc, tenant_id, user_id)), \
             spent AS ( \
               UPDATE refresh_tokens r SET rotated = true, doc = i.spent_doc FROM input i \
               WHERE r.id = ANY($1::bytea[]) AND r.id = i.old AND NOT r.rotated AND r.expires_at >= i.now \
                 AND coalesce((SELECT NOT g.revoked AND g.expires_at >= i.now \
                               FROM grants g WHERE g.id = r.grant_id), false) \
               RETURNING r.id) \
             INSERT INTO refresh_tokens (id, grant_id, rotated, expires_at, doc, tenant_id, user_id) \
             SELECT i.new, i.grant_id, false, i.next_expires, i.next_doc, i.tenant_id, i.user_id \
             FROM input i JOIN spent s ON s.id = i.old \
             RETURNING id",
            &[&olds, &spent, &grants, &nows, &news, &expires, &nexts, &tenants, &users],
        )
        .await;
    match made {
        Ok(rows) => Ok(rows.iter().filter_map(|row| <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok()).collect()),
        Err(e) => {
            let e = PgError::Pg(e);
            if retryable(&e) {
                return Ok(HashSet::new());
            }
            match e {
                PgError::Pg(e) => Err(pg_error(e)),
                PgError::Store(e) => Err(e),
            }
        }
    }
}
