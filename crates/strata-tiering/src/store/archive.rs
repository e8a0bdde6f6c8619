//! The archive API over the cold tier: list partitions, read events back, verify
//! checksums and chains, set legal holds.
//!
//! Invariant: the archive is exactly the versions the warm tier made live. Every call asks
//! the hand-off for the live pointers first and passes exactly those to the cold tier, so a
//! version written by an export that never committed (or one already superseded) is never
//! listed, read or held. Without a cold tier every call fails with [`Error::NoColdTier`], a
//! configuration fact rather than an outage.

use futures::stream::BoxStream;
use strata_core::cold::{PartitionInfo, PartitionKey, Progress, VerifyReport};
use strata_types::{StoredEvent, TimeRange};

use super::Store;
use crate::{Error, Result, live_pointer::live_pointer};

impl Store {
    /// The archive's partitions of `tenant` (`archive ls`): sizes, row counts and time
    /// bounds of each partition's live version.
    pub async fn archive_partitions(&self, tenant: &str) -> Result<Vec<PartitionInfo>> {
        let cold = self.require_cold()?;
        let parts = cold.handoff.cold_partitions(Some(tenant), None).await?;
        let mut infos = cold.tier.partitions(tenant, &parts).await?;
        // Only versions the warm tier made live are part of the archive; a partition whose
        // first export never committed is not listed.
        infos.retain(|i| parts.iter().any(|l| l.partition == i.partition));
        Ok(infos)
    }

    /// The archived events of `tenant` in `range` (optionally one stream), as a stream
    /// (`archive get`, the archive read API): partition by partition in (day, stream) order,
    /// each partition in its files' `(key, ts)` order.
    pub async fn archive_read(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> Result<BoxStream<'static, strata_core::Result<StoredEvent>>> {
        let cold = self.require_cold()?;
        let parts = cold
            .handoff
            .cold_partitions(Some(tenant), Some(range))
            .await?;
        Ok(cold.tier.read(parts, range, stream.map(str::to_owned)))
    }

    /// Verifies `tenant`'s archive (`archive verify`): every checksum recomputed, every
    /// manifest chain walked; `progress` gets `(bytes done, bytes total)`.
    pub async fn archive_verify(
        &self,
        tenant: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<VerifyReport> {
        let cold = self.require_cold()?;
        let parts = cold.handoff.cold_partitions(Some(tenant), None).await?;
        Ok(cold.tier.verify(tenant, &parts, progress).await?)
    }

    /// Sets or clears the legal hold on one archive partition; returns the objects changed.
    /// Fails with [`Error::PartitionNotFound`] when the partition has no live version; only
    /// that partition's pointer is read, never the tenant's whole list.
    pub async fn archive_legal_hold(&self, partition: &PartitionKey, on: bool) -> Result<u64> {
        let cold = self.require_cold()?;
        let live = live_pointer(&*cold.handoff, partition)
            .await?
            .ok_or_else(|| Error::PartitionNotFound(partition.clone()))?;
        Ok(cold.tier.set_legal_hold(&live, on).await?)
    }
}
