//! The mail delivery queue: tree `mail_queue`, job id -> job. One process owns the store, so
//! a claim is a compare-and-swap on the job's record (one winner among this process's
//! workers) and the walks are over a queue that the retention trim keeps short.
use uuid::Uuid;

use super::{Result, SledStore, api, decode, encode};
use crate::model::{MailJob, MailState, TenantId};
use crate::storage::StoreError;

const TREE: &str = "mail_queue";

impl SledStore {
    fn mail_tree(&self) -> Result<sled::Tree> {
        Ok(self.db.open_tree(TREE)?)
    }
}

#[async_trait::async_trait]
impl api::MailQueueStore for SledStore {
    async fn enqueue_mail(&self, job: &MailJob) -> Result<MailJob> {
        let tree = self.mail_tree()?;
        let job = MailJob { seq: self.db.generate_id()?, ..job.clone() };
        match tree.compare_and_swap(job.id.as_bytes(), None as Option<&[u8]>, Some(encode(&job)?))? {
            Ok(()) => Ok(job),
            Err(_) => Err(StoreError::Conflict(format!("mail job {} exists", job.id))),
        }
    }

    async fn claim_mail(&self, now_ms: i64, lease_ms: i64, limit: usize) -> Result<Vec<MailJob>> {
        let tree = self.mail_tree()?;
        let mut due = Vec::new();
        for item in tree.iter() {
            let (key, raw) = item?;
            let job: MailJob = decode(&raw)?;
            if let Some(at) = job.due_at_ms().filter(|at| *at <= now_ms) {
                due.push((at, key, raw, job));
            }
        }
        due.sort_by_key(|(at, ..)| *at);
        let mut claimed = Vec::new();
        for (_, key, raw, job) in due {
            if claimed.len() >= limit {
                break;
            }
            let next = job.claimed(now_ms, lease_ms, Uuid::new_v4());
            // Another claimer that changed the record first keeps it.
            if tree.compare_and_swap(&key, Some(&raw), Some(encode(&next)?))?.is_ok() {
                claimed.push(next);
            }
        }
        Ok(claimed)
    }

    async fn finish_mail(&self, lease: &Uuid, job: &MailJob) -> Result<bool> {
        let tree = self.mail_tree()?;
        let key = job.id.as_bytes();
        loop {
            let Some(raw) = tree.get(key)? else { return Ok(false) };
            let stored: MailJob = decode(&raw)?;
            // The lease is checked on what is stored: a claimer that lost it writes nothing.
            if stored.state != MailState::Sending || stored.lease != Some(*lease) {
                return Ok(false);
            }
            if tree.compare_and_swap(key, Some(&raw), Some(encode(job)?))?.is_ok() {
                return Ok(true);
            }
        }
    }

    async fn mail_job(&self, id: &Uuid) -> Result<Option<MailJob>> {
        self.mail_tree()?.get(id.as_bytes())?.map(|v| decode(&v)).transpose()
    }

    async fn mail_jobs(&self, tenant: &TenantId, limit: usize) -> Result<Vec<MailJob>> {
        let mut jobs = Vec::new();
        for raw in self.mail_tree()?.iter().values() {
            let job: MailJob = decode(&raw?)?;
            if job.tenant_id.as_ref() == Some(tenant) {
                jobs.push(job);
            }
        }
        jobs.sort_by_key(|j| std::cmp::Reverse((j.created_at, j.seq)));
        jobs.truncate(limit);
        Ok(jobs)
    }

    async fn trim_mail(&self, before: i64) -> Result<usize> {
        let tree = self.mail_tree()?;
        let mut removed = 0;
        for item in tree.iter() {
            let (key, raw) = item?;
            let job: MailJob = decode(&raw)?;
            if job.state.is_final()
                && job.created_at < before
                && tree.compare_and_swap(&key, Some(&raw), None as Option<&[u8]>)?.is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
