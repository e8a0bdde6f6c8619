//! Where the consumer stores its batches.

use std::sync::Arc;

use async_trait::async_trait;
use strata_core::{
    Tier,
    hot::{AppendOutcome, AppendRequest, HotTier, SourceOffset},
};
use strata_tiering::Store;

/// What the consumer appends batches to, and reads its offsets back from.
///
/// `strata serve` passes its [`Store`]: its append deduplicates `(tenant, id)` against the
/// warm tier too, so a message redelivered after its event moved to warm is still stored only
/// once. [`HotSink`] appends to a bare hot tier (deduplication within hot only), for tests and
/// benchmarks.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Durably stores the events and the offsets in one transaction, or nothing; see
    /// [`HotTier::append`]. `Full` and `Unavailable` make the consumer pause and retry.
    async fn append(&self, request: AppendRequest) -> strata_core::Result<Vec<AppendOutcome>>;

    /// The offsets committed for `source`.
    async fn source_offsets(&self, source: &str) -> strata_core::Result<Vec<SourceOffset>>;
}

#[async_trait]
impl EventSink for Store {
    async fn append(&self, request: AppendRequest) -> strata_core::Result<Vec<AppendOutcome>> {
        Store::append(self, request).await.map_err(|e| match e {
            strata_tiering::Error::Tier(e) => e,
            // Appending validated events raises neither body nor query errors; should it
            // ever, it is the store failing.
            other => strata_core::Error::storage(Tier::Hot, "append", other),
        })
    }

    async fn source_offsets(&self, source: &str) -> strata_core::Result<Vec<SourceOffset>> {
        self.hot().source_offsets(source).await
    }
}

/// A bare hot tier as an [`EventSink`].
#[derive(Debug, Clone)]
pub struct HotSink(pub Arc<dyn HotTier>);

#[async_trait]
impl EventSink for HotSink {
    async fn append(&self, request: AppendRequest) -> strata_core::Result<Vec<AppendOutcome>> {
        self.0.append(request).await
    }

    async fn source_offsets(&self, source: &str) -> strata_core::Result<Vec<SourceOffset>> {
        self.0.source_offsets(source).await
    }
}
