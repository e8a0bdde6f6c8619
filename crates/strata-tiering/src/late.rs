//! Late events: events older than `max_lateness` skip the hot tier and go straight to the
//! tier that owns their time, acknowledged once durable there.
//!
//! * A partition `(tenant, stream, day)` with a live cold pointer gets a cold **amendment**:
//!   a new Parquet file and the next manifest version listing the old files plus the new
//!   one, made live through the warm pointer with a compare-and-set on its version (lost
//!   races with the exporter or the compactor are retried). Reads merge the new file at
//!   once; the next compaction folds it in.
//! * Otherwise the rows go to warm as a batch of this node's *late writer*, `<node>.late`,
//!   whose sequence numbers continue after what the warm ledger holds for it, so the ledger
//!   keeps the write exactly once like a flush. The exporter later moves them like any
//!   other node's rows (the late writer never has rows in a hot tier, so its rows are always
//!   visible to reads).
//! * A time warm retention already dropped goes to cold as a new partition when there is a
//!   cold tier, and is rejected (naming `warm_retention`) when there is none.
//!
//! A request's late events for one partition are written together: one warm batch for all
//! its warm-bound events, one amendment per archived partition.
//!
//! Late writes of one partition run one at a time per node: a request takes the lock of
//! every partition its late events fall in (in order, so overlapping requests cannot
//! deadlock) and holds them across the duplicate checks and the writes, so two requests
//! carrying the same late event (same tenant, stream and time, hence the same partition)
//! cannot both find it absent and both store it. Requests for other partitions (another
//! tenant's, another day's) run meanwhile. The warm ledger batch (sequence allocation and
//! the write) is serialized on its own, briefly, since the ledger takes batches in order.

use std::{
    collections::BTreeSet,
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use futures::StreamExt;
use strata_core::{
    Error, Result, Tier,
    cold::{ColdRow, ColdTier, LivePartition, PartitionKey},
    handoff::ColdCommit,
    hot::FlushBatch,
    warm::WarmTier,
};
use strata_types::{Event, StoredEvent, time::duration_micros};
use tokio::sync::Mutex;

use crate::{
    live_pointer::live_pointer,
    partition_lock::{PartitionGuard, PartitionLocks},
    store::ColdSide,
};

/// Slack between the warm retention cutoff and the oldest time written to warm: a retention
/// pass on another node with a clock slightly ahead must not drop a row just acknowledged.
pub(crate) const RETENTION_SLACK: Duration = Duration::from_secs(30 * 60);

/// This node's late writer: its id on warm and cold rows and its sequence numbers.
#[derive(Debug)]
pub(crate) struct LateWriter {
    node: String,
    /// The next sequence number, once read from the warm ledger; `None` after a failed
    /// write (it may or may not have committed, so the ledger is asked again). Held across
    /// a warm batch's allocation and write, so batches reach the ledger in order.
    next: Mutex<Option<u64>>,
    /// Late writes in flight, by partition (see the module docs).
    partitions: PartitionLocks,
    /// Warm retention in micros (`i64::MAX`: rows are kept forever).
    warm_retention: AtomicI64,
}

impl LateWriter {
    pub(crate) fn new(node: &str, warm_retention: Option<Duration>) -> Self {
        let writer = Self {
            node: format!("{node}.late"),
            next: Mutex::new(None),
            partitions: PartitionLocks::default(),
            warm_retention: AtomicI64::new(i64::MAX),
        };
        writer.set_warm_retention(warm_retention);
        writer
    }

    /// Sets how long warm keeps rows (the flusher's `warm_retention`); the tighter of the
    /// values seen wins, since a row warm would drop at once must go to cold.
    pub(crate) fn set_warm_retention(&self, retention: Option<Duration>) {
        if let Some(r) = retention {
            self.warm_retention
                .fetch_min(duration_micros(r), Ordering::SeqCst);
        }
    }

    /// Rows with `ts` below this may be dropped by warm retention (or already were);
    /// `None` when warm keeps everything.
    pub(crate) fn warm_floor(&self, now: i64) -> Option<i64> {
        let retention = self.warm_retention.load(Ordering::SeqCst);
        if retention == i64::MAX {
            return None;
        }
        Some(
            now.saturating_sub(retention)
                .saturating_add(duration_micros(RETENTION_SLACK)),
        )
    }

    /// Takes the late writer for `partitions`; held across the duplicate checks and the
    /// writes of their events.
    pub(crate) async fn lock(&self, partitions: &BTreeSet<PartitionKey>) -> LateGuard<'_> {
        LateGuard {
            _partitions: self.partitions.lock_all(partitions).await,
            writer: self,
        }
    }
}

/// Exclusive use of the late writer for some partitions.
pub(crate) struct LateGuard<'a> {
    _partitions: Vec<PartitionGuard>,
    writer: &'a LateWriter,
}

/// Reserves `n` sequence numbers of `node` under `next`; returns the first.
async fn allocate(
    next: &mut Option<u64>,
    node: &str,
    warm: &dyn WarmTier,
    n: usize,
) -> Result<u64> {
    let first = match *next {
        Some(next) => next,
        None => warm.committed_upto(node).await?.saturating_add(1),
    };
    *next = Some(first.saturating_add(n as u64));
    Ok(first)
}

impl LateGuard<'_> {
    /// Writes `events` to warm as one ledger batch; returns their sequence numbers.
    pub(crate) async fn write_warm(
        &mut self,
        warm: &dyn WarmTier,
        events: Vec<Event>,
        now: i64,
    ) -> Result<Vec<u64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let node = self.writer.node.as_str();
        let mut next = self.writer.next.lock().await;
        let first = allocate(&mut next, node, warm, events.len()).await?;
        let stored: Vec<StoredEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| StoredEvent {
                event,
                ingest_ts: now,
                seq: first + i as u64,
            })
            .collect();
        let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
        let batch = FlushBatch {
            first_seq: first,
            last_seq: first + (stored.len() as u64 - 1),
            events: stored,
        };
        if let Err(e) = warm.write_batch(node, &batch).await {
            *next = None;
            return Err(e);
        }
        Ok(seqs)
    }

    /// Writes `events` (all of `partition`) to cold as an amendment of its live version, or
    /// as its first version when it has none; returns their sequence numbers.
    ///
    /// The amendment goes live through a compare-and-set on the partition's pointer. A lost
    /// race ([`Error::Conflict`]: an export or compaction committed first, nothing changed)
    /// is retried on the version that won, up to `attempts` times. Any other failure may
    /// have hidden a commit that went through: the pointer is read again, and when it is the
    /// amendment's own the rows are acknowledged. Otherwise the write fails without a retry
    /// here, since a retry could archive the rows twice (the commit went through and another
    /// writer already built on it); the client's retry finds them as duplicates instead.
    pub(crate) async fn write_cold(
        &mut self,
        warm: &dyn WarmTier,
        cold: &ColdSide,
        partition: &PartitionKey,
        events: Vec<Event>,
        now: i64,
        attempts: usize,
    ) -> Result<Vec<u64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // The cold rows share the late writer's sequence so a row's (node, seq) stays unique
        // within this process; nothing relies on it beyond reading order.
        let node = self.writer.node.as_str();
        let first = allocate(
            &mut *self.writer.next.lock().await,
            node,
            warm,
            events.len(),
        )
        .await?;
        let rows: Vec<ColdRow> = events
            .into_iter()
            .enumerate()
            .map(|(i, event)| ColdRow {
                node: node.to_owned(),
                stored: StoredEvent {
                    event,
                    ingest_ts: now,
                    seq: first + i as u64,
                },
            })
            .collect();
        let seqs: Vec<u64> = rows.iter().map(|r| r.stored.seq).collect();
        let handoff = &*cold.handoff;
        for _ in 0..attempts.max(1) {
            let base = live_pointer(handoff, partition).await?;
            let pages = futures::stream::iter([Ok(rows.clone())]).boxed();
            let Some(live) = cold.tier.export(partition, base.as_ref(), pages).await? else {
                return Err(Error::Corrupt {
                    tier: Tier::Cold,
                    what: format!("the amendment of {partition} wrote no rows"),
                });
            };
            let commit = ColdCommit {
                live: live.clone(),
                expected_version: base.as_ref().map(|b| b.version),
                exported: None,
            };
            match handoff.commit_cold(&commit).await {
                Ok(_) => {
                    clean(&*cold.tier, partition, &live).await;
                    return Ok(seqs);
                }
                Err(Error::Conflict { .. }) => {
                    tracing::debug!(partition = %partition, "late amendment lost a race with an export or compaction; retrying");
                }
                Err(e) => {
                    if live_pointer(handoff, partition).await?.as_ref() == Some(&live) {
                        // The commit went through; only its answer was lost.
                        clean(&*cold.tier, partition, &live).await;
                        return Ok(seqs);
                    }
                    return Err(e);
                }
            }
        }
        Err(Error::Unavailable {
            tier: Tier::Cold,
            op: "late amendment",
            message: format!(
                "the manifest of {partition} kept changing during {attempts} attempts; retry"
            ),
        })
    }
}

/// Removes leftovers of earlier attempts; failing here loses nothing.
async fn clean(cold: &dyn ColdTier, partition: &PartitionKey, live: &LivePartition) {
    if let Err(e) = cold.clean_partition(partition, Some(live)).await {
        tracing::warn!(partition = %partition, error = %e, "cleaning after a late amendment failed; retried by the next export");
    }
}

#[cfg(test)]
mod tests {
    use strata_types::time::DAY;

    use super::*;

    /// A late write holds only its own partitions: another tenant's (or day's) late write
    /// goes ahead, one sharing a partition waits.
    #[tokio::test]
    async fn late_writes_wait_only_for_their_own_partitions() {
        let writer = std::sync::Arc::new(LateWriter::new("n", None));
        let backfill: BTreeSet<PartitionKey> = (0..50)
            .map(|d| PartitionKey::of("big", "s", d * DAY))
            .collect();
        let held = writer.lock(&backfill).await;
        let other: BTreeSet<PartitionKey> = [PartitionKey::of("small", "s", 0)].into();
        let quick = tokio::time::timeout(Duration::from_secs(5), writer.lock(&other)).await;
        assert!(quick.is_ok(), "another tenant's partition is not held up");
        drop(quick);
        let overlapping: BTreeSet<PartitionKey> = [
            PartitionKey::of("big", "s", 7 * DAY),
            PartitionKey::of("small", "s", 0),
        ]
        .into();
        let w = std::sync::Arc::clone(&writer);
        let waiter = tokio::spawn(async move {
            let _guard = w.lock(&overlapping).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "a shared partition waits");
        drop(held);
        let done = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(done.is_ok());
    }
}
