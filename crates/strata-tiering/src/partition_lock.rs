//! One writer at a time per cold partition within a process.
//!
//! An export, a compaction and a late-event amendment of the same partition each write
//! manifest version `live + 1`. [`strata_core::cold::ColdTier::export`] and `compact`
//! treat an existing, not-live version of that number as the leftover of a crashed writer
//! and remove its files, so two writers of one partition running at once would delete each
//! other's files. The warm compare-and-set keeps the *commit* exactly once either way; this
//! lock keeps the files of an in-flight writer safe. Every cold writer of a process (the
//! exporter built from a [`crate::Store`] and the store's late writer) takes the same lock.
//!
//! Writers on different nodes sharing one archive are not covered by this lock; see the
//! README's notes on running several replicas.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Arc,
};

use strata_core::cold::PartitionKey;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Keyed async locks, one per partition being written; entries go away with their last
/// holder, so the map only holds partitions with a writer or a waiter.
#[derive(Debug, Default)]
pub(crate) struct PartitionLocks {
    locks: std::sync::Mutex<HashMap<PartitionKey, Arc<Mutex<()>>>>,
}

/// Held while a partition is written; dropping it lets the next writer in.
#[derive(Debug)]
pub(crate) struct PartitionGuard {
    _guard: OwnedMutexGuard<()>,
}

impl PartitionLocks {
    /// Waits until no other writer of this process holds `partition`.
    pub(crate) async fn lock(&self, partition: &PartitionKey) -> PartitionGuard {
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Forget partitions nobody holds or waits for.
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            Arc::clone(locks.entry(partition.clone()).or_default())
        };
        PartitionGuard {
            _guard: lock.lock_owned().await,
        }
    }

    /// Waits until no other writer of this process holds any of `partitions`, taking them
    /// in order (so two callers of overlapping sets cannot deadlock).
    pub(crate) async fn lock_all(
        &self,
        partitions: &BTreeSet<PartitionKey>,
    ) -> Vec<PartitionGuard> {
        let locks: Vec<Arc<Mutex<()>>> = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            locks.retain(|_, l| Arc::strong_count(l) > 1);
            partitions
                .iter()
                .map(|p| Arc::clone(locks.entry(p.clone()).or_default()))
                .collect()
        };
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            guards.push(PartitionGuard {
                _guard: lock.lock_owned().await,
            });
        }
        guards
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strata_types::time::DAY;

    use super::*;

    #[tokio::test]
    async fn one_writer_per_partition_others_run() {
        let locks = Arc::new(PartitionLocks::default());
        let a = PartitionKey::of("t", "s", 0);
        let b = PartitionKey::of("t", "s", DAY);
        let held = locks.lock(&a).await;
        // Another partition is not blocked.
        let other = tokio::time::timeout(Duration::from_secs(5), locks.lock(&b)).await;
        assert!(other.is_ok());
        // The same partition waits until the holder lets go.
        let l = Arc::clone(&locks);
        let pa = a.clone();
        let waiter = tokio::spawn(async move { l.lock(&pa).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert!(got.is_ok());
    }
}
