//! The [`ColdTier`] impl of [`ColdStore`]: glue that hands each seam method to the module
//! that owns it (`export`, `maintenance`, `read`, `verify`, `lock`).
//!
//! Invariant: no logic lives here, so the seam's contract is kept (and documented) where the
//! work is done.

use async_trait::async_trait;
use futures::stream::BoxStream;
use strata_core::{
    Result,
    cold::{
        ColdTier, Compaction, LivePartition, PartitionInfo, PartitionKey, Progress, RowPages,
        VerifyReport,
    },
    hot::HotWatermark,
};
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use super::ColdStore;

#[async_trait]
impl ColdTier for ColdStore {
    fn describe(&self) -> String {
        self.blobs.describe()
    }

    #[tracing::instrument(skip_all, fields(partition = %partition))]
    async fn export(
        &self,
        partition: &PartitionKey,
        base: Option<&LivePartition>,
        pages: RowPages<'_>,
    ) -> Result<Option<LivePartition>> {
        self.export_partition(partition, base, pages).await
    }

    async fn compact(&self, live: &LivePartition) -> Result<Option<Compaction>> {
        self.compact_partition(live).await
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        self.delete_keys(keys).await
    }

    async fn clean_partition(
        &self,
        partition: &PartitionKey,
        live: Option<&LivePartition>,
    ) -> Result<u64> {
        self.clean(partition, live).await
    }

    async fn aggregate(
        &self,
        query: &AggregateQuery,
        parts: &[LivePartition],
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        self.aggregate_parts(query, parts, watermark).await
    }

    async fn get(
        &self,
        tenant: &str,
        id: &str,
        parts: &[LivePartition],
    ) -> Result<Option<StoredEvent>> {
        self.get_by_id(tenant, id, parts).await
    }

    fn read(
        &self,
        parts: Vec<LivePartition>,
        range: TimeRange,
        stream: Option<String>,
    ) -> BoxStream<'static, Result<StoredEvent>> {
        self.read_range(parts, range, stream)
    }

    async fn partitions(
        &self,
        tenant: &str,
        parts: &[LivePartition],
    ) -> Result<Vec<PartitionInfo>> {
        self.partition_infos(tenant, parts).await
    }

    async fn verify(
        &self,
        tenant: &str,
        parts: &[LivePartition],
        progress: Option<Progress<'_>>,
    ) -> Result<VerifyReport> {
        self.verify_tenant(tenant, parts, progress).await
    }

    async fn set_legal_hold(&self, live: &LivePartition, on: bool) -> Result<u64> {
        self.legal_hold(live, on).await
    }

    async fn lock_partition(&self, live: &LivePartition) -> Result<u64> {
        self.lock(live).await
    }
}
