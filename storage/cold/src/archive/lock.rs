//! Object Lock retention and legal holds on a partition's objects.
//!
//! Invariants: objects are written under retention only when their partition is old enough
//! to lock (see `config`), and existing objects are locked through
//! [`strata_core::cold::ColdTier::lock_partition`] after compaction is done with them. A
//! legal hold covers every file and the manifest of the live version, and a marker object
//! under the partition's manifests records it, so listings can show it without asking the
//! store about each object.

use bytes::Bytes;
use strata_core::{
    Result,
    cold::{LivePartition, PartitionKey, PutOptions, Retention},
};
use strata_types::time::now_micros;

use super::ColdStore;
use crate::manifest::manifest_key;

/// Name of the marker object recording a legal hold, under the partition's manifest prefix.
const HOLD_MARKER: &str = "legal_hold";

/// The marker object recording that a partition is under legal hold.
pub(super) fn hold_marker(p: &PartitionKey) -> String {
    format!("{}{HOLD_MARKER}", p.manifest_prefix())
}

/// Whether `key` (under the manifests) is a legal-hold marker.
pub(super) fn is_hold_marker(key: &str) -> bool {
    key.strip_suffix(HOLD_MARKER)
        .is_some_and(|rest| rest.ends_with('/'))
}

impl ColdStore {
    /// Retention for objects of `p` written now, if the partition is old enough to lock.
    pub(super) fn retention_for(&self, p: &PartitionKey) -> Option<Retention> {
        self.config.lock?.retention_for(p, now_micros())
    }

    /// The keys of every file and the manifest of the live version.
    async fn live_objects(&self, live: &LivePartition) -> Result<Vec<String>> {
        let manifest = self.live_manifest(live).await?;
        let mut keys: Vec<String> = manifest.files.iter().map(|f| f.key.clone()).collect();
        keys.push(manifest_key(&live.partition, live.version));
        Ok(keys)
    }

    /// [`strata_core::cold::ColdTier::set_legal_hold`].
    pub(super) async fn legal_hold(&self, live: &LivePartition, on: bool) -> Result<u64> {
        let keys = self.live_objects(live).await?;
        for key in &keys {
            self.blobs.set_legal_hold(key, on).await?;
        }
        let marker = hold_marker(&live.partition);
        if on {
            self.blobs
                .put(&marker, Bytes::new(), &PutOptions::default())
                .await?;
        } else {
            self.blobs.delete(&marker).await?;
        }
        Ok(keys.len() as u64)
    }

    /// [`strata_core::cold::ColdTier::lock_partition`].
    pub(super) async fn lock(&self, live: &LivePartition) -> Result<u64> {
        let Some(lock) = self.config.lock else {
            return Ok(0);
        };
        let keys = self.live_objects(live).await?;
        let retention = lock.retention_at(now_micros());
        for key in &keys {
            self.blobs.set_retention(key, &retention).await?;
        }
        Ok(keys.len() as u64)
    }
}
