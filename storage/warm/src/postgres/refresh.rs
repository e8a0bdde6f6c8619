//! TimescaleDB's continuous aggregates, kept exact: which ranges a flush (or a cold commit)
//! leaves stale, and the refresh that brings them up to date.
//!
//! A continuous aggregate only holds rows below its materialisation watermark after a
//! refresh. So every flush notes, in its own transaction, the event-time ranges it wrote to
//! (`strata_rollup_pending`), and queries read raw rows wherever a noted range overlaps. Noted
//! ranges are refreshed (at most every `rollup_refresh_interval` after flushes, and on every
//! retention pass) and then forgotten. A refresh that starts after a batch committed includes
//! its rows, so forgetting the batch's ranges afterwards keeps answers exact; a refresh that
//! fails forgets nothing.
//!
//! One refresh runs at a time per process. A refresh that collides with another one over an
//! overlapping window (a policy job, another node) is refused by TimescaleDB at once rather
//! than queued, so it is retried with backoff a few times.

use std::time::{Duration, Instant};

use deadpool_postgres::Object;
use strata_core::Result;
use strata_types::{
    StoredEvent, TimeRange,
    time::{HOUR, MINUTE},
};
use tokio_postgres::error::SqlState;

use super::{
    codec::{micros, ts},
    round_trip::{execute, query},
    sql,
};
use crate::plan;

/// Noted ranges read per refresh round, and most rounds per refresh: one refresh stays
/// bounded while flushes keep noting ranges.
const REFRESH_BATCH: i64 = 256;
const REFRESH_ROUNDS: usize = 8;
/// Tries of one aggregate refresh that collides with a concurrent refresh of an overlapping
/// window (a policy job, another node), and the pause before the first retry (then doubled up
/// to the cap): TimescaleDB refuses such a refresh at once instead of waiting for the other.
const REFRESH_TRIES: u32 = 8;
const REFRESH_BACKOFF: Duration = Duration::from_millis(50);
const REFRESH_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A batch's rows further apart than this in event time are noted as separate ranges, so a
/// few late rows do not make a refresh re-aggregate everything in between.
const PENDING_GAP: i64 = HOUR;

const OP: &str = "refresh_rollups";

/// When this process last refreshed, and how often flushes may trigger a refresh.
#[derive(Debug)]
pub(super) struct Refresher {
    /// Held while refreshing, so one refresh runs at a time per process.
    last: tokio::sync::Mutex<Option<Instant>>,
    interval: Duration,
}

impl Refresher {
    /// Flushes trigger a refresh at most every `interval`.
    pub(super) fn new(interval: Duration) -> Self {
        Self {
            last: tokio::sync::Mutex::new(None),
            interval,
        }
    }

    /// Refreshes every noted range now (waiting for a refresh in progress to end first);
    /// returns how many noted ranges were cleared.
    pub(super) async fn now(&self, client: &Object) -> Result<u64> {
        let mut last = self.last.lock().await;
        let cleared = refresh_noted(client).await;
        *last = Some(Instant::now());
        cleared
    }

    /// The refresh after a flush or a cold commit: skipped while another one runs in this
    /// process or when the last one is more recent than the interval. Whatever it leaves is
    /// refreshed by a later flush or retention pass; until then queries read raw rows there.
    /// A failure is only logged, since the batch itself is committed.
    pub(super) async fn after_commit(&self, client: &Object) {
        let Ok(mut last) = self.last.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < self.interval) {
            return;
        }
        let result = refresh_noted(client).await;
        *last = Some(Instant::now());
        if let Err(e) = result {
            tracing::warn!(
                error = %e,
                "warm: continuous aggregate refresh failed; queries read raw rows over the \
                 ranges it would have covered until a later refresh succeeds"
            );
        }
    }
}

/// Refreshes noted ranges, oldest first, in bounded rounds. The caller holds the lock.
async fn refresh_noted(client: &Object) -> Result<u64> {
    let mut cleared = 0;
    for _ in 0..REFRESH_ROUNDS {
        let rows = query(client, OP, sql::ROLLUP_PENDING_LIST, &[&REFRESH_BATCH]).await?;
        let noted: Vec<(i64, TimeRange)> = rows
            .iter()
            .map(|r| {
                let range = TimeRange {
                    from: micros(r.get(1)),
                    to: micros(r.get(2)),
                };
                (r.get(0), range)
            })
            .collect();
        for (window, ids) in coalesce(&noted) {
            refresh_window(client, window).await?;
            execute(client, OP, sql::ROLLUP_PENDING_DONE, &[&ids]).await?;
            cleared += ids.len() as u64;
        }
        if (rows.len() as i64) < REFRESH_BATCH {
            break;
        }
    }
    Ok(cleared)
}

/// Refreshes both aggregates over `window`, widened to their buckets: the per-minute one
/// first, since the hourly one is computed from it.
async fn refresh_window(client: &Object, window: TimeRange) -> Result<()> {
    // CALL cannot run inside a transaction block; a lone extended-protocol statement on a
    // pooled connection outside any transaction is not in one.
    for (view, width) in sql::ROLLUP_TABLES {
        let from = ts(plan::floor_to(window.from, width));
        let to = ts(plan::ceil_to(window.to, width));
        let mut pause = REFRESH_BACKOFF;
        for attempt in 1..=REFRESH_TRIES {
            match execute(client, OP, sql::REFRESH_ROLLUP, &[&view, &from, &to]).await {
                Ok(_) => break,
                Err(e)
                    if attempt < REFRESH_TRIES
                        && e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
                {
                    tracing::debug!(
                        view,
                        attempt,
                        "warm: concurrent aggregate refresh, retrying"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(REFRESH_BACKOFF_MAX);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// The event-time ranges a batch's continuous-aggregate refresh must cover: whole minutes
/// around runs of rows, split where rows are more than [`PENDING_GAP`] apart.
pub(super) fn pending_ranges(rows: &[&StoredEvent]) -> Vec<TimeRange> {
    let mut times: Vec<i64> = rows.iter().map(|r| r.event.ts).collect();
    times.sort_unstable();
    let mut out: Vec<TimeRange> = Vec::new();
    for t in times {
        let from = plan::floor_to(t, MINUTE);
        let to = from.saturating_add(MINUTE);
        match out.last_mut() {
            Some(last) if from - last.to <= PENDING_GAP => last.to = last.to.max(to),
            _ => out.push(TimeRange { from, to }),
        }
    }
    out
}

/// Noted ranges merged where they overlap or touch, each window with the ids it covers.
fn coalesce(noted: &[(i64, TimeRange)]) -> Vec<(TimeRange, Vec<i64>)> {
    let mut sorted = noted.to_vec();
    sorted.sort_by_key(|(_, r)| r.from);
    let mut out: Vec<(TimeRange, Vec<i64>)> = Vec::new();
    for (id, r) in sorted {
        match out.last_mut() {
            Some((window, ids)) if r.from <= window.to => {
                window.to = window.to.max(r.to);
                ids.push(id);
            }
            _ => out.push((r, vec![id])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_types::Event;

    use super::*;

    fn at(ts: i64) -> StoredEvent {
        StoredEvent {
            event: Event {
                tenant: "acme".into(),
                stream: "click".into(),
                key: "k".into(),
                id: format!("id-{ts}"),
                ts,
                value: None,
                attrs: BTreeMap::new(),
                payload: None,
            },
            ingest_ts: ts,
            seq: 1,
        }
    }

    fn range(from: i64, to: i64) -> TimeRange {
        TimeRange { from, to }
    }

    #[test]
    fn pending_ranges_cover_whole_minutes_and_split_at_gaps() {
        let rows: Vec<StoredEvent> = [
            10 * HOUR + 5 * MINUTE + 7,
            // Out of order, a little earlier and within the same run.
            10 * HOUR + MINUTE - 1,
            10 * HOUR + 40 * MINUTE,
            // More than an hour after the run: its own range.
            12 * HOUR,
            // Negative times floor downwards.
            -1,
        ]
        .into_iter()
        .map(at)
        .collect();
        let refs: Vec<&StoredEvent> = rows.iter().collect();
        assert_eq!(
            pending_ranges(&refs),
            vec![
                range(-MINUTE, 0),
                range(10 * HOUR, 10 * HOUR + 41 * MINUTE),
                range(12 * HOUR, 12 * HOUR + MINUTE),
            ]
        );
        assert!(pending_ranges(&[]).is_empty());
    }

    #[test]
    fn coalesce_merges_overlapping_and_touching_ranges() {
        let noted = [
            (1, range(10 * MINUTE, 12 * MINUTE)),
            (2, range(0, MINUTE)),
            (3, range(11 * MINUTE, 13 * MINUTE)),
            (4, range(MINUTE, 2 * MINUTE)),
            (5, range(HOUR, HOUR + MINUTE)),
        ];
        assert_eq!(
            coalesce(&noted),
            vec![
                (range(0, 2 * MINUTE), vec![2, 4]),
                (range(10 * MINUTE, 13 * MINUTE), vec![1, 3]),
                (range(HOUR, HOUR + MINUTE), vec![5]),
            ]
        );
    }
}
