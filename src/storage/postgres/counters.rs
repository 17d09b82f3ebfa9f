//! Failure and rate counters shared by every node: one row per key (`counters`) holding the
//! times of its events in the window. A reservation is one `INSERT … ON CONFLICT DO UPDATE`:
//! it takes the key's row lock, drops the events that left the window, and counts one more
//! only while under the limit, so concurrent attempts on any number of nodes queue on the
//! row and at most `limit` are ever let through. A row per key (rather than a row per
//! event) makes that one statement with no explicit transaction or advisory lock, and
//! keeps each key's row as small as its window. Any database error is returned as such:
//! an attempt is never let through because the database did not answer.
use super::{Cached, PgStore, pg_error};
use crate::ratelimit::{in_window, wait};
use crate::storage::{Reserved, Result, api};

/// A limit as the database's `integer` (no limit is that large).
fn db_limit(limit: u32) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}

impl PgStore {
    /// The events of `key` still in the window at `now`.
    async fn recent_events(&self, key: &str, window: i64, now: i64) -> Result<Vec<i64>> {
        let c = self.conn().await?;
        let row = c.q_opt("SELECT events FROM counters WHERE key = $1", &[&key]).await.map_err(pg_error)?;
        let events: Vec<i64> = row.map(|r| r.get(0)).unwrap_or_default();
        Ok(events.into_iter().filter(|t| in_window(*t, window, now)).collect())
    }

    /// Removes the counters whose every event has left its window; how many went. For the
    /// periodic sweep (reservations prune their own key as they go).
    pub(super) async fn sweep_counters(&self, now: i64) -> Result<usize> {
        let c = self.conn().await?;
        let n = c.exec("DELETE FROM counters WHERE expires_at <= $1", &[&now]).await.map_err(pg_error)?;
        Ok(n as usize)
    }
}

#[async_trait::async_trait]
impl api::CounterStore for PgStore {
    async fn reserve(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Reserved> {
        let c = self.conn().await?;
        // The SET sees the row as locked (the latest committed version): `kept` is its
        // events still in the window, and the new event is added only under the limit.
        let row = c
            .q_one(
                "INSERT INTO counters AS c (key, events, expires_at, taken) \
                 VALUES ($1, CASE WHEN $3 > 0 THEN ARRAY[$2::bigint] ELSE '{}' END, $2 + $4, $3 > 0) \
                 ON CONFLICT (key) DO UPDATE SET (events, taken, expires_at) = ( \
                     SELECT CASE WHEN cardinality(w.kept) < $3 THEN w.kept || $2::bigint ELSE w.kept END, \
                            cardinality(w.kept) < $3, \
                            CASE WHEN cardinality(w.kept) < $3 THEN greatest(c.expires_at, $2 + $4) \
                                 ELSE c.expires_at END \
                     FROM (SELECT ARRAY(SELECT t FROM unnest(c.events) t WHERE $2 - t < $4 ORDER BY t) AS kept) w) \
                 RETURNING events, taken",
                &[&key, &now, &db_limit(limit), &window],
            )
            .await
            .map_err(pg_error)?;
        let events: Vec<i64> = row.get(0);
        let taken: bool = row.get(1);
        Ok(if taken {
            Reserved::Yes { before: events.len().saturating_sub(1) }
        } else {
            Reserved::No { retry_after: wait(&events, limit, window, now) }
        })
    }

    async fn release(&self, key: &str, at: i64) -> Result<()> {
        // One event at `at` goes (the first such; they are all alike), under the row lock.
        let c = self.conn().await?;
        c.exec(
            "UPDATE counters SET events = events[:array_position(events, $2) - 1] \
                                       || events[array_position(events, $2) + 1:] \
             WHERE key = $1 AND array_position(events, $2) IS NOT NULL",
            &[&key, &at],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn record(&self, key: &str, window: i64, now: i64) -> Result<()> {
        let c = self.conn().await?;
        c.exec(
            "INSERT INTO counters AS c (key, events, expires_at, taken) VALUES ($1, ARRAY[$2::bigint], $2 + $3, true) \
             ON CONFLICT (key) DO UPDATE SET \
                 events = ARRAY(SELECT t FROM unnest(c.events) t WHERE $2 - t < $3 ORDER BY t) || $2::bigint, \
                 expires_at = greatest(c.expires_at, $2 + $3), \
                 taken = true",
            &[&key, &now, &window],
        )
        .await
        .map_err(pg_error)?;
        Ok(())
    }

    async fn count(&self, key: &str, window: i64, now: i64) -> Result<usize> {
        Ok(self.recent_events(key, window, now).await?.len())
    }

    async fn retry_after(&self, key: &str, limit: u32, window: i64, now: i64) -> Result<Option<i64>> {
        let events = self.recent_events(key, window, now).await?;
        Ok((events.len() >= limit as usize).then(|| wait(&events, limit, window, now)))
    }

    async fn clear(&self, key: &str) -> Result<()> {
        let c = self.conn().await?;
        c.exec("DELETE FROM counters WHERE key = $1", &[&key]).await.map_err(pg_error)?;
        Ok(())
    }
}
