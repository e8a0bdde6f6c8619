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

use std::{collections::HashMap, fmt};

use async_trait::async_trait;
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use crate::{
    Result,
    cold::{ColdRow, ExportMarks, LivePartition, PartitionKey},
    hot::FlushBatch,
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
    /// deduplicate events old enough to have left the hot tier. The default asks
    /// [`WarmTier::get`] once per id; backends override it with one batched lookup.
    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        let everything = HotWatermark::everything("");
        let mut found = HashMap::new();
        for id in ids {
            if let Some(e) = self.get(tenant, id, &everything).await? {
                found.insert(id.clone(), e.seq);
            }
        }
        Ok(found)
    }

    /// One page of a tenant's rows in `range`, ordered by `(ts, seq, node)`, restricted by
    /// `watermark`.
    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage>;

    /// Removes every row with `ts < before` (epoch micros); returns how many rows went, when
    /// the backend can tell cheaply (whole dropped partitions may count as 0).
    async fn drop_before(&self, before: i64) -> Result<u64>;

    /// Succeeds when the tier can serve reads and writes now.
    async fn health(&self) -> Result<()>;

    /// Live cold manifest pointers (see [`crate::cold`]) of `tenant` (every tenant when
    /// `None`) whose day overlaps `range` (any day when `None`). A backend that cannot hand
    /// rows to the cold tier has none, which is what this default answers.
    async fn cold_partitions(
        &self,
        _tenant: Option<&str>,
        _range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        Ok(Vec::new())
    }

    /// Partitions holding rows whose whole day lies before `before` (epoch micros), at most
    /// `limit`, oldest days first. The default (a backend without export support) has none,
    /// so nothing is ever exported from it.
    async fn export_candidates(&self, _before: i64, _limit: usize) -> Result<Vec<PartitionKey>> {
        Ok(Vec::new())
    }

    /// Every node's highest committed sequence number, read in one snapshot.
    async fn flush_marks(&self) -> Result<ExportMarks> {
        Err(unsupported("flush_marks"))
    }

    /// One page of `partition`'s rows with `seq <= marks[node]` (rows of nodes not in
    /// `marks` are left out), after `after`, at most `limit` rows.
    async fn export_page(
        &self,
        _partition: &PartitionKey,
        _marks: &ExportMarks,
        _after: Option<&ScanCursor>,
        _limit: usize,
    ) -> Result<ExportPage> {
        Err(unsupported("export_page"))
    }

    /// Applies `commit` atomically (see [`ColdCommit`]); returns the rows dropped. Rollups
    /// stay exact: whatever they counted of the dropped rows is taken out in the same
    /// transaction.
    async fn commit_cold(&self, _commit: &ColdCommit) -> Result<u64> {
        Err(unsupported("commit_cold"))
    }
}

fn unsupported(op: &'static str) -> crate::Error {
    crate::Error::storage(
        crate::Tier::Warm,
        op,
        "this warm backend cannot hand rows to the cold tier",
    )
}
