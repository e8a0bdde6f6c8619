//! How the archive writes and maintains files ([`ColdConfig`]) and when it locks them
//! ([`LockSettings`]).
//!
//! Invariant: objects of a partition get Object Lock retention only once the partition's day
//! ended at least `lock_after` ago, and compaction skips exactly those partitions, so
//! maintenance never has to replace or delete an object that may be locked.

use std::{path::PathBuf, time::Duration};

use strata_core::cold::{PartitionKey, Retention, RetentionMode};
use strata_types::time::{day_start, duration_micros};

use crate::codec::WriteSettings;

/// Object Lock settings: new objects of partitions old enough get this retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: RetentionMode,
    /// Retain-until is the time of locking plus this.
    pub retain_for: Duration,
    /// Partitions whose day ended at least this long ago are locked (after their last
    /// compaction); younger ones stay unlocked so compaction can still replace their files.
    pub lock_after: Duration,
}

impl LockSettings {
    /// The retention of an object locked at `now` (epoch micros).
    pub(super) fn retention_at(&self, now: i64) -> Retention {
        Retention {
            mode: self.mode,
            retain_until: now.saturating_add(duration_micros(self.retain_for)),
        }
    }

    /// The retention of objects of `p` written at `now`, if the partition is old enough to
    /// lock.
    pub(super) fn retention_for(&self, p: &PartitionKey, now: i64) -> Option<Retention> {
        let day_end = day_start(p.day + 1);
        (day_end.saturating_add(duration_micros(self.lock_after)) <= now)
            .then(|| self.retention_at(now))
    }
}

/// How the archive writes and maintains files.
#[derive(Debug, Clone)]
pub struct ColdConfig {
    /// Most rows per file an export writes (rows are sorted in memory per file, so this
    /// bounds the exporter's memory).
    pub rows_per_file: usize,
    /// Compaction merges small files into files of about this size.
    pub target_file_size: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// Files of an export or compaction that never went live are left alone this long
    /// (another replica may still be writing them) and `verify` does not call them extra.
    /// Files a compaction replaced are also kept this long after the replacing version went
    /// live, so reads that resolved the previous version can still open them.
    pub orphan_grace: Duration,
    /// Object Lock; `None` writes unlocked objects.
    pub lock: Option<LockSettings>,
    /// Where temporary files go (downloads for reads, files being written); the system's
    /// temp directory by default.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for ColdConfig {
    fn default() -> Self {
        Self {
            rows_per_file: 250_000,
            target_file_size: 128 * 1024 * 1024,
            row_group_rows: 128 * 1024,
            zstd_level: 3,
            orphan_grace: Duration::from_secs(3600),
            lock: None,
            scratch_dir: None,
        }
    }
}

impl ColdConfig {
    /// How the Parquet writer encodes files.
    pub(super) fn write_settings(&self) -> WriteSettings {
        WriteSettings {
            zstd_level: self.zstd_level,
            row_group_rows: self.row_group_rows,
        }
    }

    /// Objects written after this time (epoch micros) are within the grace period at `now`.
    pub(super) fn orphan_cutoff(&self, now: i64) -> i64 {
        now.saturating_sub(duration_micros(self.orphan_grace))
    }
}
