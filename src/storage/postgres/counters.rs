//! Failure and rate counters: one row per event, checked and counted under a per-key transaction lock.
#![allow(unused_variables, unused_imports)]
use uuid::Uuid;

use super::PgStore;
use crate::model::*;
use crate::policy::{NamedLocation, Policy};
use crate::storage::*;

#[async_trait::async_trait]
impl api::CounterStore for PgStore {
    async fn reserve(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Reserved> {
        todo!()
    }

    async fn release(&self, key: &str, at: i64) -> Result<()> {
        todo!()
    }

    async fn record(&self, key: &str, window: i64, now: i64) -> Result<()> {
        todo!()
    }

    async fn count(&self, key: &str, window: i64, now: i64) -> Result<usize> {
        todo!()
    }

    async fn retry_after(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Option<i64>> {
        todo!()
    }

    async fn clear(&self, key: &str) -> Result<()> {
        todo!()
    }
}
