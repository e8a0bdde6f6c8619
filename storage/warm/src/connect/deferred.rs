//! The deferred handle: a warm store that is not connected yet.
//!
//! It implements both seams a warm store offers, [`WarmTier`] and [`ColdHandoff`], and
//! forwards every method of both once connected; before, every one fails with
//! [`Error::Unavailable`] naming the method. Both traits have no default bodies, so a method
//! added to either one does not compile here until it is forwarded: the handle can never
//! answer "no rows" or "no archive" for a method it forgot.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use async_trait::async_trait;
use strata_core::{
    Error, Result, Tier,
    cold::{LivePartition, PartitionKey},
    handoff::{ColdCommit, ColdHandoff, ExportMarks, ExportPage, WarmStore},
    hot::{FlushBatch, HotWatermark},
    warm::{ScanCursor, ScanPage, ScanRequest, WarmMode, WarmTier, WriteOutcome},
};
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

/// A warm store filled in once, by its connector.
#[derive(Debug)]
pub(super) struct DeferredWarm {
    inner: OnceLock<Arc<dyn WarmStore>>,
    /// The mode reported until connected.
    expected: WarmMode,
    /// Where it connects to, password hidden, for the errors before.
    target: String,
}

impl DeferredWarm {
    /// Not connected; reports `expected` as its mode meanwhile.
    pub(super) fn new(expected: WarmMode, target: String) -> Self {
        Self {
            inner: OnceLock::new(),
            expected,
            target,
        }
    }

    /// From now on every call goes to `warm`. Only the first call has an effect: the
    /// connector fills the handle once.
    pub(super) fn connect(&self, warm: Arc<dyn WarmStore>) {
        // A second store (which the connector never offers) would be dropped, leaving the
        // first in place rather than switching stores under running readers.
        let _ = self.inner.set(warm);
    }

    fn store(&self, op: &'static str) -> Result<&dyn WarmStore> {
        self.inner
            .get()
            .map(|w| w.as_ref())
            .ok_or_else(|| Error::Unavailable {
                tier: Tier::Warm,
                op,
                message: format!(
                    "not connected to {} yet; connecting in the background",
                    self.target
                ),
            })
    }
}

#[async_trait]
impl WarmTier for DeferredWarm {
    fn mode(&self) -> WarmMode {
        self.inner.get().map_or(self.expected, |w| w.mode())
    }

    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        self.store("write_batch")?.write_batch(node, batch).await
    }

    async fn committed_upto(&self, node: &str) -> Result<u64> {
        self.store("committed_upto")?.committed_upto(node).await
    }

    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        self.store("aggregate")?.aggregate(query, watermark).await
    }

    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> Result<Option<StoredEvent>> {
        self.store("get")?.get(tenant, id, watermark).await
    }

    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        self.store("existing_ids")?.existing_ids(tenant, ids).await
    }

    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage> {
        self.store("scan")?.scan(request, watermark).await
    }

    async fn drop_before(&self, before: i64) -> Result<u64> {
        self.store("drop_before")?.drop_before(before).await
    }

    async fn health(&self) -> Result<()> {
        self.store("health")?.health().await
    }
}

#[async_trait]
impl ColdHandoff for DeferredWarm {
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        self.store("cold_partitions")?
            .cold_partitions(tenant, range)
            .await
    }

    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        self.store("export_candidates")?
            .export_candidates(before, limit)
            .await
    }

    async fn flush_marks(&self) -> Result<ExportMarks> {
        self.store("flush_marks")?.flush_marks().await
    }

    async fn export_page(
        &self,
        partition: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        self.store("export_page")?
            .export_page(partition, marks, after, limit)
            .await
    }

    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        self.store("commit_cold")?.commit_cold(commit).await
    }
}
