//! The live cold pointer of one partition, as the warm side of the hand-off answers it.
//!
//! Every cold writer (exporter, compactor, late amendment) and the legal-hold path ask for
//! exactly the partition they touch, by its tenant and its day's range, so the question
//! costs one indexed lookup however many partitions the tenant has archived.

use strata_core::{
    Result,
    cold::{LivePartition, PartitionKey},
    handoff::ColdHandoff,
};

/// The live pointer of `partition`; `None` while it has no archived version.
pub(crate) async fn live_pointer(
    handoff: &dyn ColdHandoff,
    partition: &PartitionKey,
) -> Result<Option<LivePartition>> {
    Ok(handoff
        .cold_partitions(Some(&partition.tenant), Some(partition.range()))
        .await?
        .into_iter()
        .find(|l| l.partition == *partition))
}
