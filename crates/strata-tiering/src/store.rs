//! The store facade: the one [`Store`] the APIs talk to, its configuration and the tiers it
//! holds. What it does is split by idea:
//!
//! * [`write`]: ingest and append — validation reports, cross-tier deduplication, routing
//!   late events to the tier that owns their time;
//! * [`read`]: aggregate planning over the tiers and the result cache, event lookups, and
//!   the consistent warm/cold read every cross-tier read goes through;
//! * [`archive`]: the archive API (partitions, read, verify, legal hold).
//!
//! Invariant kept here: the cold archive and the warm side of its hand-off
//! ([`ColdHandoff`]) are set together ([`Store::with_cold`]), so no path can read archived
//! versions without the pointers that say which of them are live.

mod archive;
mod read;
mod write;

use std::{sync::Arc, time::Duration};

use strata_core::{
    cold::ColdTier,
    handoff::ColdHandoff,
    hot::{HotStats, HotTier, HotWatermark},
    warm::WarmTier,
};
use strata_types::{Limits, TimeRange, time::now_micros};

pub use read::{AggregateAnswer, CacheStatus};
pub use write::IngestReport;

use crate::{
    Error, Result,
    cache::{CacheLimits, CacheStats, QueryCache},
    late::{LateWriter, RETENTION_SLACK},
    partition_lock::PartitionLocks,
    release_gate::ReleaseGate,
};

/// How the store caches query results and places late events. Build the store with
/// [`Store::with_config`] before building its flusher and exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Byte budget of the query-result cache (`--query-cache-size`); 0 turns it off.
    pub cache_capacity_bytes: u64,
    /// Cached chunks expire this long after they were computed (`--query-cache-ttl`);
    /// `None` keeps them until evicted or made stale. Set it when several replicas share
    /// warm and cold: a late event written by another replica does not bump this node's
    /// cache versions.
    pub cache_ttl: Option<Duration>,
    /// Most `(tenant, day)` versions remembered; a forgotten version makes the entries of
    /// that day stale, never wrong.
    pub cache_version_entries: u64,
    /// How long warm keeps rows (the flusher's `--warm-retention`). Late events older than
    /// that go to cold, or, without a cold tier, are rejected at validation (the effective
    /// `max_age` is tightened to it).
    pub warm_retention: Option<Duration>,
    /// Attempts of a late cold amendment that keeps losing the manifest race to exports
    /// and compactions before the request fails with a retryable error.
    pub late_amend_attempts: usize,
    /// Late events for archived days become cold amendments written by this node. `false`
    /// (a replica that does not run the exporter) writes them to warm instead, and the
    /// exporting replica amends the archive from there, so one node writes the archive.
    pub late_to_cold: bool,
    /// Most cells (non-empty buckets × groups) one aggregate answer may hold; a query whose
    /// answer would hold more fails with [`crate::Error::TooManyCells`] instead of building
    /// it. Checked on every partial answer as it is merged, so the work stops early.
    pub max_answer_cells: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_capacity_bytes: 256 * 1024 * 1024,
            cache_ttl: None,
            cache_version_entries: 262_144,
            warm_retention: None,
            late_amend_attempts: 8,
            late_to_cold: true,
            max_answer_cells: 100_000,
        }
    }
}

/// The cold archive and the warm tier's side of the hand-off to it. One value, so a store
/// has both or neither.
#[derive(Debug, Clone)]
pub(crate) struct ColdSide {
    /// The Parquet archive.
    pub(crate) tier: Arc<dyn ColdTier>,
    /// Which archived versions are live, and the compare-and-set that changes them.
    pub(crate) handoff: Arc<dyn ColdHandoff>,
}

/// The one store the APIs talk to.
///
/// Reads span the tiers exactly once: the hot tier answers first and reports up to which
/// sequence number it has released events to warm (read atomically with its answer); warm
/// is then asked for this node's rows up to that number only (and every row of other
/// nodes). An event the flusher committed to warm but hot has not released yet is therefore
/// counted from hot alone.
///
/// With a cold tier ([`Store::with_cold`]) the hand-off also answers which cold manifest
/// version of each partition is live ([`ColdHandoff::cold_partitions`]); the exporter changes
/// those pointers in the same warm transaction that drops the exported rows. The planner
/// reads the pointers before and after its warm read and retries when they moved, so the
/// warm rows and the cold versions it combines come from one consistent state: an exported
/// row is counted from warm or from cold, never both, never neither.
#[derive(Debug, Clone)]
pub struct Store {
    hot: Arc<dyn HotTier>,
    warm: Arc<dyn WarmTier>,
    cold: Option<ColdSide>,
    node: Arc<str>,
    /// What validation uses: the configured limits, with `max_age` tightened to warm
    /// retention when no cold tier could take older events.
    limits: Arc<Limits>,
    configured_limits: Arc<Limits>,
    gate: Arc<ReleaseGate>,
    config: Arc<StoreConfig>,
    cache: Option<Arc<QueryCache>>,
    late: Arc<LateWriter>,
    cold_locks: Arc<PartitionLocks>,
}

impl Store {
    /// A store over a hot tier and a warm tier, validating with `limits`. `node` is this
    /// node's id, the same one its flusher stamps on warm rows. The cache and late-event
    /// settings are [`StoreConfig::default`]; see [`Store::with_config`].
    pub fn new(
        hot: Arc<dyn HotTier>,
        warm: Arc<dyn WarmTier>,
        node: impl Into<String>,
        limits: Limits,
    ) -> Self {
        let node: Arc<str> = node.into().into();
        let limits = Arc::new(limits);
        let config = StoreConfig::default();
        Self {
            hot,
            warm,
            cold: None,
            cache: build_cache(&config, &limits),
            late: Arc::new(LateWriter::new(&node, config.warm_retention)),
            cold_locks: Arc::default(),
            node,
            limits: Arc::clone(&limits),
            configured_limits: limits,
            gate: Arc::default(),
            config: Arc::new(config),
        }
    }

    /// The same store with `config` for its query cache and late events. Call it before
    /// building the store's flusher and exporter (they share the cache and the late writer).
    pub fn with_config(mut self, config: StoreConfig) -> Self {
        self.cache = build_cache(&config, &self.configured_limits);
        self.late = Arc::new(LateWriter::new(&self.node, config.warm_retention));
        self.config = Arc::new(config);
        self.limits = self.effective_limits();
        self
    }

    /// The same store with a cold tier: queries, lookups and the archive API read it, and
    /// an [`crate::Exporter`] built from this store moves warm partitions to it.
    ///
    /// `handoff` is the warm tier's side of the move (live pointers, export pages, the
    /// commit); `strata serve` passes the same warm backend it gave [`Store::new`].
    pub fn with_cold(mut self, cold: Arc<dyn ColdTier>, handoff: Arc<dyn ColdHandoff>) -> Self {
        self.cold = Some(ColdSide {
            tier: cold,
            handoff,
        });
        self.limits = self.effective_limits();
        self
    }

    /// The configured limits, with `max_age` tightened to what warm keeps when there is no
    /// cold tier: validation then rejects such events (on every protocol, and into the
    /// Kafka dead-letter topic) instead of the write path failing on them.
    fn effective_limits(&self) -> Arc<Limits> {
        let mut limits = (*self.configured_limits).clone();
        if (self.cold.is_none() || !self.config.late_to_cold)
            && let Some(keep) = self.config.warm_retention
        {
            let keep = keep.saturating_sub(RETENTION_SLACK * 2);
            limits.max_age = Some(limits.max_age.map_or(keep, |a| a.min(keep)));
        }
        Arc::new(limits)
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The result cache, when on (for the flusher's and exporter's tier-move notes).
    pub(crate) fn query_cache(&self) -> Option<&Arc<QueryCache>> {
        self.cache.as_ref()
    }

    /// The per-partition locks every cold writer of this store takes (see
    /// [`crate::partition_lock`]).
    pub(crate) fn cold_locks(&self) -> &Arc<PartitionLocks> {
        &self.cold_locks
    }

    /// The late writer (the flusher tells it the warm retention).
    pub(crate) fn late_writer(&self) -> &Arc<LateWriter> {
        &self.late
    }

    /// Notes that data of `tenant` (every tenant when `None`) in `range` moved between
    /// tiers or changed outside the write path (flush and export commits, compactions,
    /// retention, repairs): cached chunks of the closed days it touched are recomputed.
    /// Cheap; days still open are skipped.
    pub fn note_tier_move(&self, tenant: Option<&str>, range: TimeRange) {
        if let Some(cache) = &self.cache {
            cache.note_change(tenant, range, now_micros());
        }
    }

    /// Query-cache counters and size.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map_or_else(CacheStats::default, |c| c.stats())
    }

    /// The cold tier, when configured.
    pub fn cold(&self) -> Option<&Arc<dyn ColdTier>> {
        self.cold.as_ref().map(|c| &c.tier)
    }

    /// The warm tier's side of the hand-off to the cold tier, when one is configured (for
    /// the exporter and archive tooling).
    pub fn handoff(&self) -> Option<&Arc<dyn ColdHandoff>> {
        self.cold.as_ref().map(|c| &c.handoff)
    }

    /// The cold tier and its hand-off, when configured.
    pub(crate) fn cold_side(&self) -> Option<&ColdSide> {
        self.cold.as_ref()
    }

    /// The cold tier and its hand-off, or [`Error::NoColdTier`] for calls that need one.
    pub(crate) fn require_cold(&self) -> Result<&ColdSide> {
        self.cold.as_ref().ok_or(Error::NoColdTier)
    }

    /// The gate the flusher takes around hot releases (see [`crate::release_gate`]).
    pub(crate) fn release_gate(&self) -> &Arc<ReleaseGate> {
        &self.gate
    }

    /// The warm tier (for the flusher and retention).
    pub fn warm(&self) -> &Arc<dyn WarmTier> {
        &self.warm
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn watermark(&self, released_upto: u64) -> HotWatermark {
        HotWatermark::new(&*self.node, released_upto)
    }

    /// The limits events and batches are validated against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The hot tier (for the Kafka consumer and the flusher, which need its offsets and
    /// flush seams).
    pub fn hot(&self) -> &Arc<dyn HotTier> {
        &self.hot
    }

    /// Hot tier gauges.
    pub fn hot_stats(&self) -> HotStats {
        self.hot.stats()
    }

    /// Stops taking writes and waits for in-flight commits (called on shutdown after the
    /// listeners stopped accepting requests and the flusher returned).
    pub async fn shutdown(&self) -> Result<()> {
        Ok(self.hot.shutdown().await?)
    }
}

fn build_cache(config: &StoreConfig, limits: &Limits) -> Option<Arc<QueryCache>> {
    (config.cache_capacity_bytes > 0).then(|| {
        Arc::new(QueryCache::new(&CacheLimits {
            capacity_bytes: config.cache_capacity_bytes,
            ttl: config.cache_ttl,
            version_entries: config.cache_version_entries,
            lateness: limits.max_lateness,
        }))
    })
}
