//! The warm tier seam: where the flusher moves sealed hot data, and what answers queries over
//! weeks to months of history.
//!
//! Contract every implementation keeps (checked by [`crate::conformance::warm`]):
//!
//! * [`WarmTier::write_batch`] is exactly once per node and sequence number. Every row carries
//!   the `node` that ingested it and its hot `seq`; the backend records, in the same
//!   transaction as the rows, a ledger entry `(node, first_seq) → last_seq` and the highest
//!   sequence number committed for the node. Rows of a batch at or below that mark are
//!   already stored and skipped, so a batch replayed after a crash between the warm commit
//!   and the hot release (even cut at different commit boundaries) stores nothing twice.
//!   A node's sequence numbers must therefore never restart: a recreated hot store needs a
//!   new node id.
//! * Reads take a [`HotWatermark`]: rows of the watermark's node with `seq > released_upto`
//!   are still answered by the hot tier and are left out here, while rows of other nodes
//!   are always included. A planner that asks hot first and warm second with the watermark
//!   hot reported therefore counts every event exactly once, even while flushes run.
//! * Pre-aggregated rollups are used only when they give the same answer as the raw rows
//!   (no unreleased rows of the node are in warm, no rows were dropped by retention inside
//!   the rollup's buckets); otherwise the backend falls back to raw rows.
//! * [`WarmTier::drop_before`] removes every row with `ts` before the cutoff; nothing at or
//!   after it. Rows below the highest cutoff so far that arrive later are not stored (the
//!   ledger still counts them as handled), so retention holds for late data too.
//!
//! Handing rows to the cold archive is a seam of its own, [`crate::handoff::ColdHandoff`],
//! which every warm backend that `strata serve --cold` runs with implements as well.

use std::{collections::HashMap, fmt};

use async_trait::async_trait;
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use crate::{
    Result,
    hot::{FlushBatch, HotWatermark},
};

/// Which backend and layout serves the warm tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WarmMode {
    /// The embedded store under the data directory (no server).
    Embedded,
    /// PostgreSQL with native daily range partitions and rollup tables Strata maintains.
    Postgres,
    /// PostgreSQL with the timescaledb extension: a hypertable with compression and
    /// continuous aggregates.
    Timescale,
}

impl WarmMode {
    /// The stable name (`embedded`, `postgres`, `timescaledb`), as logged and printed by
    /// `strata migrate --status`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Postgres => "postgres",
            Self::Timescale => "timescaledb",
        }
    }
}

impl fmt::Display for WarmMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`WarmTier::write_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Rows were committed (fewer than the batch holds when part of it was already stored).
    Written {
        /// Rows committed now.
        rows: u64,
    },
    /// Every row of the batch was already stored; nothing was written.
    AlreadyWritten,
}

/// Where a paged scan continues: the last row returned, in `(ts, seq, node)` order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScanCursor {
    /// Event time of the last row.
    pub ts: i64,
    /// Sequence number of the last row.
    pub seq: u64,
    /// Node of the last row.
    pub node: String,
}

/// One page of a scan.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    /// Tenant whose rows are read; never more than one.
    pub tenant: String,
    /// Event-time range.
    pub range: TimeRange,
    /// Only this stream, if set.
    pub stream: Option<String>,
    /// Continue after this row (exclusive); `None` starts at the beginning of the range.
    pub after: Option<ScanCursor>,
    /// Most rows to return (at least one is asked for).
    pub limit: usize,
}

impl ScanRequest {
    /// The first page of up to `limit` rows of `tenant` in `range`, all streams.
    pub fn new(tenant: impl Into<String>, range: TimeRange, limit: usize) -> Self {
        Self {
            tenant: tenant.into(),
            range,
            stream: None,
            after: None,
            limit,
        }
    }
}

/// A page of rows in `(ts, seq, node)` order.
#[derive(Debug, Clone, Default)]
pub struct ScanPage {
    /// The rows.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts; `None` when the range is exhausted.
    pub next: Option<ScanCursor>,
}

/// The warm tier. See the module docs for the contract.
#[async_trait]
pub trait WarmTier: Send + Sync + fmt::Debug + 'static {
    /// Which backend and layout this is.
    fn mode(&self) -> WarmMode;

    /// Stores a flushed batch of `node` exactly once; see the module docs. Returns only after
    /// the rows and the ledger entry are durable.
    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome>;

    /// The highest sequence number of `node` committed to warm (0 when none).
    async fn committed_upto(&self, node: &str) -> Result<u64>;

    /// Partial aggregate over the rows `watermark` leaves to warm.
    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate>;

    /// The row with this tenant and id that `watermark` leaves to warm.
    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> Result<Option<StoredEvent>>;

    /// Which of `ids` (all of `tenant`) warm holds in any state, including rows flushed but
    /// not yet released from hot, with each one's sequence number. The write path uses it to
    /// deduplicate events old enough to have left the hot tier; backends answer it with one
    /// batched lookup.
    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>>;

    /// One page of a tenant's rows in `range`, ordered by `(ts, seq, node)`, restricted by
    /// `watermark`.
    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage>;

    /// Removes every row with `ts < before` (epoch micros); returns how many rows went, when
    /// the backend can tell cheaply (whole dropped partitions may count as 0).
    async fn drop_before(&self, before: i64) -> Result<u64>;

    /// Succeeds when the tier can serve reads and writes now.
    async fn health(&self) -> Result<()>;
}
