//! Deduplication across the hot/warm hand-off.
//!
//! The hot tier deduplicates `(tenant, id)` against the events it still holds. Once the
//! flusher has released an event to warm, hot no longer knows it, so a retry or a Kafka
//! redelivery of that event must be caught by asking warm. Asking warm for every event
//! would put a database round trip on the hot path, so the write path asks only for events
//! that *can* have left hot:
//!
//! The flusher releases only commits ingested more than `hot_retention` ago, and validation
//! bounds `ts <= ingest time + max_future_skew`. An original ingested at `t0` that has been
//! released by now therefore has `t0 <= now - hot_retention`, so its
//! `ts <= now - hot_retention + max_future_skew`. A retry carrying the same `ts` that is newer
//! than that horizon cannot have a released original, and the hot index alone is exact. Live
//! traffic (recent `ts`) never waits on warm; replays and late retries of old events get one
//! batched lookup per request. A retry with a *different* `ts` than its original is only
//! caught this way when the new `ts` is old enough to be checked (documented in the README).
//!
//! The gate closes the race between the two steps "warm has no such id" and "hot appends
//! it": the flusher's hot release takes the gate exclusively, the write path holds it shared
//! from the warm lookup until the hot append returns. An original can then not move from hot
//! to warm in between; if it is in hot at append time, hot's own index sees it.

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use strata_types::time::{MINUTE, duration_micros};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Slack for clock adjustments between ingest and release (NTP steps, leap smearing).
const CLOCK_SLACK_MICROS: i64 = MINUTE;

/// Shared by a [`crate::Store`] and its [`crate::Flusher`].
#[derive(Debug)]
pub(crate) struct ReleaseGate {
    lock: RwLock<()>,
    /// The flusher's hot retention in micros; `i64::MAX` while no flusher runs (then
    /// nothing ever leaves hot and no event needs a warm lookup).
    hot_retention: AtomicI64,
}

impl Default for ReleaseGate {
    fn default() -> Self {
        Self {
            lock: RwLock::new(()),
            hot_retention: AtomicI64::new(i64::MAX),
        }
    }
}

impl ReleaseGate {
    /// Called when a flusher starts working for the store.
    pub(crate) fn set_hot_retention(&self, retention: Duration) {
        self.hot_retention
            .store(duration_micros(retention), Ordering::SeqCst);
    }

    /// Events with `ts` at or below this (epoch micros) may have a released original in
    /// warm; `None` when nothing can have been released.
    pub(crate) fn horizon(&self, now: i64, max_future_skew: Duration) -> Option<i64> {
        let retention = self.hot_retention.load(Ordering::SeqCst);
        if retention == i64::MAX {
            return None;
        }
        Some(
            now.saturating_sub(retention)
                .saturating_add(duration_micros(max_future_skew))
                .saturating_add(CLOCK_SLACK_MICROS),
        )
    }

    /// Held by the write path from the warm lookup until the hot append returns.
    pub(crate) async fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().await
    }

    /// Held by the flusher around a hot release.
    pub(crate) async fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.lock.write().await
    }
}

#[cfg(test)]
mod tests {
    use strata_types::time::SEC;

    use super::*;

    #[test]
    fn horizon_follows_retention_and_skew() {
        let gate = ReleaseGate::default();
        assert_eq!(gate.horizon(1_000 * SEC, Duration::from_secs(5)), None);
        gate.set_hot_retention(Duration::from_secs(900));
        let h = gate
            .horizon(10_000 * SEC, Duration::from_secs(300))
            .unwrap();
        assert_eq!(h, 10_000 * SEC - 900 * SEC + 300 * SEC + CLOCK_SLACK_MICROS);
    }
}
