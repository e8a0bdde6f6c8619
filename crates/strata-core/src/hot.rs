//! The hot tier seam: what ingest writes to and what answers queries over recent data.
//!
//! Contract every implementation keeps (checked by [`crate::conformance::hot`]):
//!
//! * [`HotTier::append`] returns only after the events are durable (fsync'd); concurrent
//!   callers may share one commit (group commit).
//! * `(tenant, id)` is unique: a second event with the same pair is not stored again and its
//!   outcome is [`AppendOutcome::Duplicate`] with the first one's sequence number.
//! * Every stored event gets a per-node sequence number, strictly increasing in commit order.
//! * Source offsets passed with an append are committed in the same transaction, so a
//!   consumer that seeks to them after a crash neither loses nor repeats an event.
//! * Released events (moved to warm by the flusher) are no longer answered by the hot tier;
//!   [`HotPartial::released_upto`] says up to which sequence number that happened, read
//!   atomically with the answer, so a planner can ask the warm tier for exactly the rest.

use async_trait::async_trait;
use strata_types::{AggregateQuery, Event, PartialAggregate, StoredEvent, TimeRange};

use crate::Result;

/// Which rows the hot tier still answers: those of `node` with `seq > released_upto`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HotWatermark {
    /// The node whose hot tier was asked.
    pub node: String,
    /// Every row of `node` with `seq <= released_upto` is answered by warm.
    pub released_upto: u64,
}

impl HotWatermark {
    /// The watermark a hot tier of `node` reported.
    pub fn new(node: impl Into<String>, released_upto: u64) -> Self {
        Self {
            node: node.into(),
            released_upto,
        }
    }

    /// A watermark that hides nothing (every row of every node is read from warm).
    pub fn everything(node: impl Into<String>) -> Self {
        Self::new(node, u64::MAX)
    }

    /// Whether a row of `node` with `seq` is answered by warm.
    pub fn includes(&self, node: &str, seq: u64) -> bool {
        node != self.node || seq <= self.released_upto
    }

    /// `released_upto` as the signed 64-bit integer SQL backends store; sequence numbers
    /// above `i64::MAX` cannot exist there, so saturating keeps the comparison exact.
    pub fn released_upto_i64(&self) -> i64 {
        i64::try_from(self.released_upto).unwrap_or(i64::MAX)
    }
}

/// Events to append, and optionally the consumer offsets they came from.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    /// Validated events.
    pub events: Vec<Event>,
    /// Offsets to commit atomically with the events (Kafka ingest); empty for REST/gRPC.
    pub offsets: Vec<SourceOffset>,
}

/// The position a consumer has durably reached in one source partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SourceOffset {
    /// The consumer, e.g. `kafka:<group>`.
    pub source: String,
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume.
    pub next_offset: i64,
}

/// What happened to one appended event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored now with this sequence number.
    Stored {
        /// Sequence number.
        seq: u64,
    },
    /// Already stored (same tenant and id) under this sequence number; nothing written.
    Duplicate {
        /// Sequence number of the stored event.
        seq: u64,
    },
}

/// A hot answer plus the release watermark it was computed at.
#[derive(Debug, Clone, Default)]
pub struct HotPartial {
    /// Partial aggregate over the unreleased events.
    pub partial: PartialAggregate,
    /// Every event with `seq <= released_upto` has been released to warm and is not part of
    /// `partial`.
    pub released_upto: u64,
}

/// The oldest unreleased events, handed to the flusher.
#[derive(Debug, Clone)]
pub struct FlushBatch {
    /// Lowest sequence number in the batch.
    pub first_seq: u64,
    /// Highest sequence number; [`HotTier::release`] takes this after the warm commit.
    pub last_seq: u64,
    /// The events, in sequence order.
    pub events: Vec<StoredEvent>,
}

/// Gauges describing the hot tier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HotStats {
    /// Unreleased events.
    pub events: u64,
    /// Bytes of unreleased log on disk.
    pub disk_bytes: u64,
    /// Disk budget.
    pub disk_budget: u64,
    /// Bytes held in memory (index and cached segments).
    pub memory_bytes: u64,
    /// Memory budget.
    pub memory_budget: u64,
    /// Highest sequence number assigned.
    pub last_seq: u64,
    /// Highest sequence number released to warm.
    pub released_upto: u64,
}

/// The hot tier. See the module docs for the contract.
#[async_trait]
pub trait HotTier: Send + Sync + std::fmt::Debug + 'static {
    /// Appends events durably and returns one outcome per event, in input order. Fails with
    /// [`crate::Error::Full`] (storing nothing) when a budget would be exceeded.
    async fn append(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>>;

    /// The unreleased event with this tenant and id.
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<StoredEvent>>;

    /// Partial aggregate over unreleased events, with the watermark it was read at.
    async fn aggregate(&self, query: &AggregateQuery) -> Result<HotPartial>;

    /// Unreleased events of a tenant in `range` (optionally one stream), ordered by
    /// `(ts, seq)`.
    async fn scan(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> Result<Vec<StoredEvent>>;

    /// Offsets committed for `source`.
    async fn source_offsets(&self, source: &str) -> Result<Vec<SourceOffset>>;

    /// The oldest unreleased events that were ingested before `ingested_before` (epoch
    /// micros), about `max_events` of them (whole commits; at least one), or `None`.
    async fn pending_flush(
        &self,
        max_events: usize,
        ingested_before: i64,
    ) -> Result<Option<FlushBatch>>;

    /// Releases every event with `seq <= upto_seq`; call only after they are durable in warm.
    async fn release(&self, upto_seq: u64) -> Result<()>;

    /// Current gauges.
    fn stats(&self) -> HotStats;

    /// Refuses new appends, waits for in-flight commits and closes the store.
    async fn shutdown(&self) -> Result<()>;
}
