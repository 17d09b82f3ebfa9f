//! The mail delivery queue (`schema_3.sql`). Several nodes run a worker each: a claim locks
//! due rows with `FOR UPDATE SKIP LOCKED` (a row another node is claiming is skipped, not
//! waited for) and writes each a fresh lease in the same transaction, so one attempt has one
//! sender; an outcome is an `UPDATE … WHERE lease = <its claim>`, which a node whose lease
//! lapsed and was taken over cannot pass.
use uuid::Uuid;

use super::{Cached, PgStore, pg_error, row, transact};
use crate::model::{MailJob, TenantId};
use crate::storage::{Result, StoreError, api};

#[async_trait::async_trait]
impl api::MailQueueStore for PgStore {
    /// The `seq` comes from the `mail_queue` bigserial (taken first, so the stored record carries it).
    async fn enqueue_mail(&self, job: &MailJob) -> Result<MailJob> {
        let c = self.conn().await?;
        let next =
            c.q_one("SELECT nextval(pg_get_serial_sequence('mail_queue', 'seq'))", &[]).await.map_err(pg_error)?;
        let seq: i64 = next.get(0);
        let job = MailJob { seq: u64::try_from(seq).unwrap_or(0), ..job.clone() };
        let tenant = job.tenant_id.map(|t| t.to_string());
        let inserted = c
            .exec(
                "INSERT INTO mail_queue (id, seq, tenant_id, created_at, due_at, lease, doc) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                &[&job.id, &seq, &tenant, &job.created_at, &job.due_at_ms(), &job.lease, &row::enc(&job)?],
            )
            .await
            .map_err(pg_error)?;
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("mail job {} exists", job.id)));
        }
        Ok(job)
    }

    async fn claim_mail(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<MailJob>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        transact!(self, tx => {
            let rows = tx
                .q(
                    "SELECT doc FROM mail_queue WHERE due_at <= $1 ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&now_ms, &limit],
                )
                .await?;
            let mut claimed = Vec::with_capacity(rows.len());
            for r in rows {
                let job: MailJob = row::doc(&r, "doc")?;
                let next = job.claimed(now_ms, lease_ms, Uuid::new_v4());
                tx.exec(
                    "UPDATE mail_queue SET due_at = $2, lease = $3, doc = $4 WHERE id = $1",
                    &[&next.id, &next.due_at_ms(), &next.lease, &row::enc(&next)?],
                )
                .await?;
                claimed.push(next);
            }
            claimed
        })
    }

    async fn finish_mail(&self, lease: &Uuid, job: &MailJob) -> Result<bool> {
        let c = self.conn().await?;
        let changed = c
            .exec(
                "UPDATE mail_queue SET due_at = $3, lease = $4, doc = $5 WHERE id = $1 AND lease = $2",
                &[&job.id, lease, &job.due_at_ms(), &job.lease, &row::enc(job)?],
            )
            .await
            .map_err(pg_error)?;
        Ok(changed == 1)
    }

    async fn mail_job(&self, id: &Uuid) -> Result<Option<MailJob>> {
        let c = self.conn().await?;
        let r = c.q_opt("SELECT doc FROM mail_queue WHERE id = $1", &[id]).await.map_err(pg_error)?;
        r.map(|r| row::doc(&r, "doc")).transpose()
    }

    async fn mail_jobs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<MailJob>> {
        let c = self.conn().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c
            .q(
                "SELECT doc FROM mail_queue WHERE tenant_id = $1 ORDER BY created_at DESC, seq DESC LIMIT $2",
                &[&tenant.to_string(), &limit],
            )
            .await
            .map_err(pg_error)?;
        rows.iter().map(|r| row::doc(r, "doc")).collect()
    }

    async fn trim_mail(&self, before: i64) -> Result<usize> {
        let c = self.conn().await?;
        let removed = c
            .exec("DELETE FROM mail_queue WHERE due_at IS NULL AND created_at < $1", &[&before])
            .await
            .map_err(pg_error)?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }
}
