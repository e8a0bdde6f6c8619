//! [`ColdStore`]: the Parquet archive on a [`BlobStore`], implementing
//! [`strata_core::cold::ColdTier`].
//!
//! The invariant every part of it keeps: a partition changes only by writing new immutable
//! files and then a new manifest version, the next link of the partition's hash chain.
//! Nothing a version lists is ever rewritten, and nothing is read except through a version a
//! warm-tier pointer names, checked against that pointer's SHA-256. Which version is live is
//! the warm tier's decision, never the archive's.
//!
//! * `export`: writing a version (an export's files or a compaction's), then its manifest,
//!   each read back and checked before a pointer is handed out.
//! * `merge`: the k-way merge of sorted files that compaction writes with.
//! * `maintenance`: compaction, and removing what crashed attempts and compactions left.
//! * `read`: aggregates, id lookups, range reads and partition listings, from live versions.
//! * `verify`: every checksum recomputed, every chain walked.
//! * `lock`: Object Lock retention and legal holds.
//! * `manifests`, `objects`: loading manifests; objects as local files and their checksums.
//! * `ranged`: remote Parquet files read in place with ranged GETs (id lookups).
//! * `config`: [`ColdConfig`] and [`LockSettings`].
//! * `tier`: the `ColdTier` impl, glue over the above.

mod config;
mod export;
mod lock;
mod maintenance;
mod manifests;
mod merge;
mod objects;
mod ranged;
mod read;
mod tier;
mod verify;

use std::sync::{Arc, Mutex};

pub use config::{ColdConfig, LockSettings};
use strata_core::cold::BlobStore;

/// The Parquet archive. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ColdStore {
    blobs: Arc<dyn BlobStore>,
    config: Arc<ColdConfig>,
    /// Parsed manifests by (key, sha256); versions are immutable once live, so entries never
    /// go stale. Bounded by clearing when full.
    manifests: Arc<Mutex<manifests::ManifestCache>>,
    /// Parsed Parquet footers of remote files, for lookups by id (see `ranged`).
    footers: ranged::FooterCache,
}

impl ColdStore {
    /// An archive on `blobs`.
    pub fn new(blobs: Arc<dyn BlobStore>, config: ColdConfig) -> Self {
        Self {
            blobs,
            config: Arc::new(config),
            manifests: Arc::default(),
            footers: ranged::footer_cache(),
        }
    }

    /// The blob store underneath.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The configuration.
    pub fn config(&self) -> &ColdConfig {
        &self.config
    }
}
