//! The warm → cold hand-off seam: how the exporter takes closed partitions out of the warm
//! tier and makes their archived version live, exactly once.
//!
//! Contract every implementation keeps (checked by
//! [`crate::conformance::warm::run_cold_handoff`]):
//!
//! * [`ColdHandoff::flush_marks`] reads every node's highest committed sequence number in one
//!   snapshot; [`ColdHandoff::export_page`] hands out exactly the partition's rows at or below
//!   those marks, in `(ts, seq, node)` order, page by page.
//! * [`ColdHandoff::commit_cold`] is the exactly-once commit point: in one transaction it
//!   compare-and-sets the partition's live manifest pointer and (for an export) drops exactly
//!   the exported rows. A pointer that is not at [`ColdCommit::expected_version`] fails with
//!   [`crate::Error::Conflict`] and changes nothing.
//! * [`ColdHandoff::cold_partitions`] answers the live pointers; readers combine warm rows
//!   and archived versions from one consistent state by reading them around their warm read.
//!
//! Every method is required: a wrapper (a connector that is still connecting, a fault
//! injector) must forward each one, so it can never answer "no archive" by forgetting one.
//! A backend that cannot hand rows to cold does not implement this trait at all.

use std::collections::BTreeMap;

use async_trait::async_trait;
use strata_types::TimeRange;

use crate::{
    Result,
    cold::{ColdRow, LivePartition, PartitionKey},
    warm::{ScanCursor, WarmTier},
};

/// Per node, the highest sequence number an export covers: exactly the partition's warm
/// rows with `seq <= marks[node]` are exported and later dropped from warm. Rows flushed
/// after the marks were taken carry higher sequence numbers, so they stay in warm for the
/// next export.
pub type ExportMarks = BTreeMap<String, u64>;

/// One page of a partition's rows handed to the exporter.
#[derive(Debug, Clone, Default)]
pub struct ExportPage {
    /// The rows with the node that ingested each, in `(ts, seq, node)` order.
    pub rows: Vec<ColdRow>,
    /// Where the next page starts; `None` when the partition is exhausted.
    pub next: Option<ScanCursor>,
}

/// Makes a cold manifest version live, and (for an export) drops the rows it archived, in
/// one warm transaction: the exactly-once commit point between warm and cold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdCommit {
    /// The pointer to record.
    pub live: LivePartition,
    /// The version the pointer must hold now (`None`: no pointer yet). Anything else means
    /// another exporter or compactor committed first, and nothing is changed.
    pub expected_version: Option<u64>,
    /// For an export: the partition's rows with `seq <= marks[node]` are dropped. `None`
    /// (compaction) drops nothing.
    pub exported: Option<ExportMarks>,
}

/// The warm tier's side of the hand-off. See the module docs for the contract.
#[async_trait]
pub trait ColdHandoff: Send + Sync + std::fmt::Debug + 'static {
    /// Live cold manifest pointers (see [`crate::cold`]) of `tenant` (every tenant when
    /// `None`) whose day overlaps `range` (any day when `None`).
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>>;

    /// Partitions holding rows whose whole day lies before `before` (epoch micros), at most
    /// `limit`, oldest days first.
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>>;

    /// Every node's highest committed sequence number, read in one snapshot.
    async fn flush_marks(&self) -> Result<ExportMarks>;

    /// One page of `partition`'s rows with `seq <= marks[node]` (rows of nodes not in
    /// `marks` are left out), after `after`, at most `limit` rows.
    async fn export_page(
        &self,
        partition: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage>;

    /// Applies `commit` atomically (see [`ColdCommit`]); returns the rows dropped. Rollups
    /// stay exact: whatever they counted of the dropped rows is taken out in the same
    /// transaction. A pointer that moved fails with [`crate::Error::Conflict`].
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64>;
}

/// A warm backend that also hands rows to the cold tier: what `strata serve --cold` needs.
/// Implemented for every type that is both; an `Arc<dyn WarmStore>` coerces to
/// `Arc<dyn WarmTier>` and to `Arc<dyn ColdHandoff>`.
pub trait WarmStore: WarmTier + ColdHandoff {}

impl<T: WarmTier + ColdHandoff> WarmStore for T {}
