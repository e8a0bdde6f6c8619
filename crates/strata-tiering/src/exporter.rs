//! The exporter and compactor: move closed warm partitions to the cold archive exactly
//! once, and keep the archive's files large.
//!
//! **Export.** A partition is a tenant's stream on one UTC day. Once its day ended more than
//! `export_after` ago, the exporter
//!
//! 1. takes the *marks*: every node's highest sequence number committed to warm, capped for
//!    this node at what its hot tier has released (rows hot still answers are never
//!    archived, or a query would count them in hot and in cold);
//! 2. hands the partition's warm rows with `seq <= marks[node]` to
//!    [`ColdTier::export`], which writes Parquet files and the next manifest version, reads
//!    them back and checks every checksum;
//! 3. then, in **one warm transaction** ([`ColdHandoff::commit_cold`]), drops exactly those
//!    rows and records the new manifest version as the partition's live one.
//!
//! Step 3 is the commit point. A crash before it leaves the rows in warm and the new version
//! unreferenced (queries read only versions warm calls live, so it is ignored, and the next
//! export replaces it); a crash after it leaves the rows in cold only. Rows flushed into the
//! partition while the export ran carry higher sequence numbers than the marks, so they stay
//! in warm and go out with the next export of that partition as an amendment (a new file and
//! a new version listing the old files plus the new one).
//!
//! **Compaction.** A partition whose live version has several small files gets them merged
//! into files of the target size; the new version becomes live through the same warm pointer
//! (compare-and-set on the version, so an export in between wins and the compaction retries
//! later). The merged files are deleted by a later maintenance pass, once the new version
//! has been live for the archive's grace period, so a read that resolved the previous version
//! never finds its files gone. Partitions old enough for Object Lock are locked after their
//! compaction, so maintenance never has to delete a locked object.
//!
//! Within a process, exports, compactions and late-event amendments of one partition take
//! turns (the store's per-partition locks): each writes the partition's next manifest
//! version.
//!
//! The exporter talks to the warm tier only through its hand-off seam ([`ColdHandoff`]):
//! marks, pages, candidates, live pointers and the commit.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use strata_core::{
    Error, Result,
    cold::{ColdRow, ColdTier, LivePartition, PartitionKey},
    handoff::{ColdCommit, ColdHandoff, ExportMarks},
    hot::HotTier,
    warm::ScanCursor,
};
use strata_types::time::{day_of, day_start, duration_micros, now_micros};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{live_pointer::live_pointer, partition_lock::PartitionLocks};

/// Partitions exported.
pub const EXPORT_PARTITIONS: &str = "strata_export_partitions_total";
/// Rows moved from warm to cold.
pub const EXPORT_ROWS: &str = "strata_export_rows_total";
/// Seconds to export one partition (files, manifest, verification, warm commit).
pub const EXPORT_SECONDS: &str = "strata_export_duration_seconds";
/// Failed export, compaction or lock attempts (`stage` = export | commit | compact | lock | clean).
pub const EXPORT_ERRORS: &str = "strata_export_errors_total";
/// Compactions made live.
pub const COMPACTIONS: &str = "strata_compactions_total";

/// Registers descriptions for the exporter's metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(EXPORT_PARTITIONS, "Partitions exported to the cold tier.");
    metrics::describe_counter!(EXPORT_ROWS, "Rows moved from warm to cold.");
    metrics::describe_histogram!(
        EXPORT_SECONDS,
        metrics::Unit::Seconds,
        "Time to export one partition."
    );
    metrics::describe_counter!(
        EXPORT_ERRORS,
        "Failed export or maintenance steps, by stage."
    );
    metrics::describe_counter!(COMPACTIONS, "Compactions made live.");
}

/// How the exporter runs.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// This node's id: its rows are exported only up to what its hot tier released.
    pub node: String,
    /// A partition is exported once its day ended this long ago (`--export-after`).
    pub export_after: Duration,
    /// How often to look for due partitions and maintenance.
    pub interval: Duration,
    /// Rows per warm page read while exporting.
    pub page_rows: usize,
    /// Most partitions per pass before the loop checks for shutdown again.
    pub max_partitions_per_pass: usize,
    /// Run compaction (and Object Lock) passes.
    pub compact: bool,
    /// Longest wait between retries while a tier fails.
    pub max_backoff: Duration,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            node: "node-0".into(),
            export_after: Duration::from_secs(86_400),
            interval: Duration::from_secs(60),
            page_rows: 10_000,
            max_partitions_per_pass: 64,
            compact: true,
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Partitions whose rows went to cold.
    pub partitions: u64,
    /// Rows dropped from warm (now in cold).
    pub rows: u64,
    /// Whether more partitions were due when the pass stopped.
    pub more_due: bool,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Compactions made live.
    pub compactions: u64,
    /// Files merged away.
    pub merged_files: u64,
    /// Objects removed (merged files and leftovers of exports that never went live).
    pub removed_objects: u64,
    /// Objects placed under Object Lock retention.
    pub locked_objects: u64,
}

/// Moves closed warm partitions to cold and maintains the archive. See the module docs.
#[derive(Debug, Clone)]
pub struct Exporter {
    hot: Option<Arc<dyn HotTier>>,
    handoff: Arc<dyn ColdHandoff>,
    cold: Arc<dyn ColdTier>,
    config: ExporterConfig,
    /// The store's query cache, told about the partitions each commit touched.
    cache: Option<Arc<crate::cache::QueryCache>>,
    /// Shared with the store's late writer: one cold writer per partition at a time.
    locks: Arc<PartitionLocks>,
}

fn error_metric(stage: &'static str) {
    metrics::counter!(EXPORT_ERRORS, "stage" => stage).increment(1);
}

impl Exporter {
    /// An exporter from the warm tier behind `handoff` to `cold`. With `hot`, rows of
    /// `config.node` are exported only up to what that hot tier released; without it, every
    /// committed warm row may go (use that only when no hot tier of the node runs, e.g. an
    /// offline `strata export`).
    pub fn new(
        hot: Option<Arc<dyn HotTier>>,
        handoff: Arc<dyn ColdHandoff>,
        cold: Arc<dyn ColdTier>,
        config: ExporterConfig,
    ) -> Self {
        Self {
            hot,
            handoff,
            cold,
            config,
            cache: None,
            locks: Arc::default(),
        }
    }

    /// An exporter for `store`'s tiers and hand-off (the ones [`crate::Store::with_cold`]
    /// was given); `None` when the store has no cold tier. The node id is the store's
    /// (`config.node` is overwritten).
    pub fn for_store(store: &crate::Store, mut config: ExporterConfig) -> Option<Self> {
        let cold = store.cold_side()?;
        config.node = store.node().to_owned();
        Some(Self {
            cache: store.query_cache().cloned(),
            locks: Arc::clone(store.cold_locks()),
            ..Self::new(
                Some(Arc::clone(store.hot())),
                Arc::clone(&cold.handoff),
                Arc::clone(&cold.tier),
                config,
            )
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ExporterConfig {
        &self.config
    }

    /// Rows at or below these marks are exported (see the module docs).
    async fn marks(&self) -> Result<ExportMarks> {
        let mut marks = self.handoff.flush_marks().await?;
        if let Some(hot) = &self.hot {
            let released = hot.stats().released_upto;
            if let Some(m) = marks.get_mut(&self.config.node) {
                *m = (*m).min(released);
            }
        }
        Ok(marks)
    }

    /// Exports what is due now: up to `max_partitions_per_pass` partitions.
    pub async fn export_due(&self) -> Result<ExportReport> {
        let mut report = ExportReport::default();
        let before = now_micros().saturating_sub(duration_micros(self.config.export_after));
        // Only whole days: the last day considered ends at or before `before`.
        let before = day_start(day_of(before));
        let limit = self.config.max_partitions_per_pass.max(1);
        let due = self.handoff.export_candidates(before, limit + 1).await?;
        report.more_due = due.len() > limit;
        if due.is_empty() {
            return Ok(report);
        }
        let marks = self.marks().await?;
        for p in due.iter().take(limit) {
            if let Some(rows) = self.export_partition(p, &marks).await? {
                report.partitions += 1;
                report.rows += rows;
            }
        }
        Ok(report)
    }

    /// Exports one partition's rows at or below `marks`; `None` when it had none.
    pub async fn export_partition(
        &self,
        partition: &PartitionKey,
        marks: &ExportMarks,
    ) -> Result<Option<u64>> {
        let started = Instant::now();
        let _writing = self.locks.lock(partition).await;
        let base = live_pointer(&*self.handoff, partition).await?;
        let pages = futures::stream::unfold(Some(None::<ScanCursor>), |cursor| async move {
            let after = cursor?;
            let page = self
                .handoff
                .export_page(
                    partition,
                    marks,
                    after.as_ref(),
                    self.config.page_rows.max(1),
                )
                .await;
            match page {
                Ok(page) => {
                    let next = page.next.map(Some);
                    Some((Ok::<Vec<ColdRow>, _>(page.rows), next))
                }
                Err(e) => Some((Err(e), None)),
            }
        })
        .boxed();
        let Some(live) = self
            .cold
            .export(partition, base.as_ref(), pages)
            .await
            .inspect_err(|_| error_metric("export"))?
        else {
            return Ok(None);
        };
        let commit = ColdCommit {
            live: live.clone(),
            expected_version: base.as_ref().map(|b| b.version),
            exported: Some(marks.clone()),
        };
        let rows = self
            .handoff
            .commit_cold(&commit)
            .await
            .inspect_err(|_| error_metric("commit"))?;
        self.note_moved(partition);
        metrics::counter!(EXPORT_PARTITIONS).increment(1);
        metrics::counter!(EXPORT_ROWS).increment(rows);
        metrics::histogram!(EXPORT_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::info!(partition = %partition, version = live.version, rows, "partition exported to cold");
        // Leftovers of earlier attempts that never went live; failing here loses nothing.
        if let Err(e) = self.cold.clean_partition(partition, Some(&live)).await {
            error_metric("clean");
            tracing::warn!(partition = %partition, error = %e, "cleaning the partition's leftovers failed; retried on its next export");
        }
        Ok(Some(rows))
    }

    /// A commit moved rows of `partition` (answers are unchanged; belt and braces for the
    /// query cache, which recomputes that tenant's day).
    fn note_moved(&self, partition: &PartitionKey) {
        if let Some(cache) = &self.cache {
            cache.note_change(Some(&partition.tenant), partition.range(), now_micros());
        }
    }

    /// Compacts, cleans and locks every live partition that needs it.
    pub async fn maintain(&self) -> Result<CompactReport> {
        let mut report = CompactReport::default();
        for live in self.handoff.cold_partitions(None, None).await? {
            let live = match self.compact_one(&live, &mut report).await {
                Ok(Some(new)) => new,
                Ok(None) => live,
                // A writer in another process (an export, a late amendment) committed first:
                // a lost race, not a failure. The partition is compacted, and locked, next
                // pass on the version that won; locking `live` now would pin a superseded
                // version's files.
                Err(Error::Conflict { .. }) => {
                    tracing::debug!(partition = %live.partition, "compaction lost a race with another writer; retried next pass");
                    continue;
                }
                Err(e) => {
                    error_metric("compact");
                    tracing::warn!(partition = %live.partition, error = %e, "compaction failed; retried next pass");
                    continue;
                }
            };
            match self.cold.lock_partition(&live).await {
                Ok(n) => report.locked_objects += n,
                Err(e) => {
                    error_metric("lock");
                    tracing::warn!(partition = %live.partition, error = %e, "applying Object Lock failed; retried next pass");
                }
            }
        }
        Ok(report)
    }

    /// One partition's compaction: merge, make live through the warm pointer, then delete
    /// the merged files. Returns the new live pointer when it changed. Fails with
    /// [`Error::Conflict`] when another writer moved the pointer between the merge and the
    /// commit; the files the merge wrote are then leftovers the partition's next clean
    /// removes.
    pub async fn compact_one(
        &self,
        live: &LivePartition,
        report: &mut CompactReport,
    ) -> Result<Option<LivePartition>> {
        let _writing = self.locks.lock(&live.partition).await;
        // The pointer may have moved while this pass waited for the lock.
        if live_pointer(&*self.handoff, &live.partition)
            .await?
            .as_ref()
            != Some(live)
        {
            return Ok(None);
        }
        let Some(compaction) = self.cold.compact(live).await? else {
            return Ok(None);
        };
        self.handoff
            .commit_cold(&ColdCommit {
                live: compaction.live.clone(),
                expected_version: Some(live.version),
                exported: None,
            })
            .await?;
        self.note_moved(&live.partition);
        metrics::counter!(COMPACTIONS).increment(1);
        report.compactions += 1;
        report.merged_files += compaction.merged_files;
        // The merged files are unreferenced now, but a read that resolved the previous
        // version may still be opening them: `clean_partition` removes superseded files only
        // once the version that replaced them has been live for the grace period.
        report.removed_objects += self
            .cold
            .clean_partition(&live.partition, Some(&compaction.live))
            .await?;
        tracing::info!(
            partition = %live.partition,
            version = compaction.live.version,
            merged = compaction.merged_files,
            written = compaction.written_files,
            "compacted"
        );
        Ok(Some(compaction.live))
    }

    /// Runs until `shutdown` is cancelled. Failures are retried with backoff; nothing is
    /// lost by stopping at any point (see the module docs).
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = self.config.interval.max(Duration::from_millis(1));
        let mut backoff = interval;
        let mut failing = false;
        let mut next = Instant::now() + interval;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
            }
            match self.export_due().await {
                Ok(report) => {
                    if failing {
                        tracing::info!("exporting to the cold tier works again");
                        failing = false;
                    }
                    backoff = interval;
                    next = if report.more_due {
                        Instant::now()
                    } else {
                        Instant::now() + interval
                    };
                    if !report.more_due && self.config.compact {
                        match self.maintain().await {
                            Ok(r) => tracing::debug!(?r, "cold maintenance pass done"),
                            Err(e) => tracing::warn!(error = %e, "cold maintenance pass failed"),
                        }
                    }
                }
                Err(e) => {
                    if failing {
                        tracing::debug!(error = %e, "export to cold still failing");
                    } else {
                        tracing::warn!(error = %e, "exporting to the cold tier failed; rows stay in warm and the export is retried with backoff");
                        failing = true;
                    }
                    next = Instant::now() + backoff;
                    backoff = (backoff * 2).min(self.config.max_backoff.max(interval));
                }
            }
        }
    }
}
