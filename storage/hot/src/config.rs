//! How a hot store is sized and where it lives.

use std::{path::PathBuf, time::Duration};

/// Configuration of a [`crate::HotStore`]. Build it with [`HotConfig::new`] and adjust fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotConfig {
    /// The redb file, e.g. `<data-dir>/hot.redb`. Its parent directory is created on open.
    pub path: PathBuf,
    /// Bytes of memory the tier may use: redb's page cache (1/8), the in-memory indexes
    /// (7/16) and the moka segment cache (7/16).
    pub memory_budget: u64,
    /// Bytes of unreleased log on disk; appends beyond it are refused with `Full`.
    pub disk_budget: u64,
    /// Most events one group commit takes (a single larger request still commits whole).
    pub max_commit_events: usize,
    /// Bound of the queue of append requests waiting for the writer.
    pub queue_depth: usize,
    /// Event-time width of the in-memory window segments queries read.
    pub window: Duration,
}

impl HotConfig {
    /// Defaults: 512 MiB memory, 10 GiB disk, 20,000 events per commit, 256 queued requests,
    /// one-minute windows.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            memory_budget: 512 * 1024 * 1024,
            disk_budget: 10 * 1024 * 1024 * 1024,
            max_commit_events: 20_000,
            queue_depth: 256,
            window: Duration::from_secs(60),
        }
    }
}
