//! Every statement the PostgreSQL backend runs, each from its own file in `sql/` (Tansu's
//! `src/sql/*.sql`), so SQL is read and reviewed as SQL. A file's header says what it does and
//! what its parameters are.
//!
//! A few statements have a placeholder filled in by Strata, never from input: `{rollup}` (the
//! rollup table: `events_1m` or `events_1h`) and `{stream_filter}` (the optional
//! `AND stream = $n`). [`Statements`] expands those once per backend, so the text of every
//! statement is fixed after start and the per-connection statement cache prepares each one
//! once; `{name}`, `{from}` and `{to}` of the DDL are filled in per call.

use strata_types::time::{HOUR, MINUTE};

/// The text of `sql/<name>.sql`.
macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("sql/", $name, ".sql"))
    };
}

// Flushes (the write transaction).
pub(super) const ENSURE_NODE: &str = sql!("ensure_node");
pub(super) const LOCK_NODE: &str = sql!("lock_node");
pub(super) const REGISTER_PARTITIONS: &str = sql!("register_partitions");
pub(super) const COPY_EVENTS: &str = sql!("copy_events");
pub(super) const RECORD_BATCH: &str = sql!("record_batch");
pub(super) const COMMITTED_UPTO: &str = sql!("committed_upto");

// Reads.
pub(super) const AGGREGATE_STATE: &str = sql!("aggregate_state");
pub(super) const GET: &str = sql!("get");
pub(super) const EXISTING_IDS: &str = sql!("existing_ids");
pub(super) const HEALTH: &str = sql!("health");

// Plain PostgreSQL's daily partitions.
pub(super) const LIST_PARTITIONS: &str = sql!("list_partitions");
pub(super) const CREATE_PARTITION: &str = sql!("create_partition");
pub(super) const DROP_PARTITION: &str = sql!("drop_partition");

// Retention.
pub(super) const RETENTION_STATE: &str = sql!("retention_state");
pub(super) const RETENTION_DELETE: &str = sql!("retention_delete");
pub(super) const RETENTION_DROP_CHUNKS: &str = sql!("retention_drop_chunks");
pub(super) const WARM_PARTITIONS_RETENTION: &str = sql!("warm_partitions_retention");

// TimescaleDB's continuous-aggregate refresh.
pub(super) const ROLLUP_PENDING_ADD: &str = sql!("rollup_pending_add");
pub(super) const ROLLUP_PENDING_LIST: &str = sql!("rollup_pending_list");
pub(super) const ROLLUP_PENDING_DONE: &str = sql!("rollup_pending_done");
pub(super) const ROLLUP_PENDING_RETENTION: &str = sql!("rollup_pending_retention");
pub(super) const REFRESH_ROLLUP: &str = sql!("refresh_rollup");

// The hand-off to the cold tier.
pub(super) const COLD_LOCK: &str = sql!("cold_lock");
pub(super) const COLD_POINTER_GET: &str = sql!("cold_pointer_get");
pub(super) const COLD_POINTER_SET: &str = sql!("cold_pointer_set");
pub(super) const COLD_PARTITIONS: &str = sql!("cold_partitions");
pub(super) const FLUSH_MARKS: &str = sql!("flush_marks");
pub(super) const EXPORT_CANDIDATES: &str = sql!("export_candidates");
pub(super) const EXPORT_PAGE: &str = sql!("export_page");
pub(super) const EXPORT_DELETE: &str = sql!("export_delete");
pub(super) const WARM_PARTITION_DONE: &str = sql!("warm_partition_done");

// Migrations and the settings applied after them.
pub(super) const MIGRATIONS_CREATE_TABLE: &str = sql!("migrations_create_table");
pub(super) const MIGRATIONS_TABLE_EXISTS: &str = sql!("migrations_table_exists");
pub(super) const MIGRATIONS_APPLIED: &str = sql!("migrations_applied");
pub(super) const MIGRATIONS_RECORD: &str = sql!("migrations_record");
pub(super) const MIGRATIONS_LOCK: &str = sql!("migrations_lock");
pub(super) const MIGRATIONS_UNLOCK: &str = sql!("migrations_unlock");
pub(super) const TIMESCALEDB_AVAILABLE: &str = sql!("timescaledb_available");
pub(super) const TIMESCALEDB_USABLE: &str = sql!("timescaledb_usable");
pub(super) const TIMESCALEDB_CHUNK_INTERVAL: &str = sql!("timescaledb_chunk_interval");
pub(super) const TIMESCALEDB_COMPRESSION_POLICY_REMOVE: &str =
    sql!("timescaledb_compression_policy_remove");
pub(super) const TIMESCALEDB_COMPRESSION_POLICY_ADD: &str =
    sql!("timescaledb_compression_policy_add");

// Templates expanded by `Statements`.
const AGGREGATE_RAW: &str = sql!("aggregate_raw");
const AGGREGATE_ROLLUP: &str = sql!("aggregate_rollup");
const SCAN: &str = sql!("scan");
const UPSERT_ROLLUP: &str = sql!("upsert_rollup");
const ROLLUP_REBUILD_CLEAR: &str = sql!("rollup_rebuild_clear");
const ROLLUP_REBUILD: &str = sql!("rollup_rebuild");
const ROLLUP_RETENTION: &str = sql!("rollup_retention");

/// The rollup tables (plain PostgreSQL) or continuous aggregates (TimescaleDB), with the same
/// names and columns, and their bucket widths: per minute first, since the hourly continuous
/// aggregate is computed from the per-minute one and refreshes go in this order.
pub(super) const ROLLUP_TABLES: [(&str, i64); 2] = [("events_1m", MINUTE), ("events_1h", HOUR)];

/// `{stream_filter}` replaced by `AND stream = $n`, or removed.
fn with_stream(sql: &str, param: Option<usize>) -> String {
    sql.replace(
        "{stream_filter}",
        &param.map_or(String::new(), |n| format!("AND stream = ${n}")),
    )
}

/// The two variants of a statement with `{stream_filter}`: `[all streams, one stream]`,
/// indexed by whether the query names a stream.
type ByStream = [String; 2];

fn by_stream(sql: &str, stream_param: usize) -> ByStream {
    [with_stream(sql, None), with_stream(sql, Some(stream_param))]
}

/// The statements of one rollup table (plain PostgreSQL tables or TimescaleDB continuous
/// aggregates, with the same names and columns).
#[derive(Debug)]
pub(super) struct RollupStatements {
    /// Its bucket width in microseconds.
    pub(super) width: i64,
    /// [`AGGREGATE_ROLLUP`] on this table.
    pub(super) aggregate: ByStream,
    /// [`UPSERT_ROLLUP`] on this table (plain PostgreSQL).
    pub(super) upsert: String,
    /// [`ROLLUP_REBUILD_CLEAR`] on this table (plain PostgreSQL).
    pub(super) rebuild_clear: String,
    /// [`ROLLUP_REBUILD`] on this table (plain PostgreSQL).
    pub(super) rebuild: String,
    /// [`ROLLUP_RETENTION`] on this table (plain PostgreSQL).
    pub(super) retention: String,
}

impl RollupStatements {
    fn new(table: &'static str, width: i64) -> Self {
        let on_table = |sql: &str| sql.replace("{rollup}", table);
        Self {
            width,
            aggregate: by_stream(&on_table(AGGREGATE_ROLLUP), 5),
            upsert: on_table(UPSERT_ROLLUP),
            rebuild_clear: on_table(ROLLUP_REBUILD_CLEAR),
            rebuild: on_table(ROLLUP_REBUILD),
            retention: on_table(ROLLUP_RETENTION),
        }
    }
}

/// The statements whose text depends on a rollup table or a stream filter, expanded once.
#[derive(Debug)]
pub(super) struct Statements {
    /// [`AGGREGATE_RAW`].
    pub(super) aggregate_raw: ByStream,
    /// [`SCAN`].
    pub(super) scan: ByStream,
    /// Per rollup table, in the order of [`ROLLUP_TABLES`].
    pub(super) rollups: [RollupStatements; 2],
}

impl Statements {
    pub(super) fn new() -> Self {
        Self {
            aggregate_raw: by_stream(AGGREGATE_RAW, 11),
            scan: by_stream(SCAN, 10),
            rollups: ROLLUP_TABLES.map(|(table, width)| RollupStatements::new(table, width)),
        }
    }

    /// The rollup of bucket width `width` (one minute or one hour).
    pub(super) fn rollup(&self, width: i64) -> &RollupStatements {
        let [minute, hour] = &self.rollups;
        if width == HOUR { hour } else { minute }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_all_expanded() {
        let s = Statements::new();
        let mut texts: Vec<&str> = s
            .aggregate_raw
            .iter()
            .chain(&s.scan)
            .map(String::as_str)
            .collect();
        for r in &s.rollups {
            texts.extend(r.aggregate.iter().map(String::as_str));
            texts.extend(
                [&r.upsert, &r.rebuild_clear, &r.rebuild, &r.retention].map(String::as_str),
            );
        }
        for t in texts {
            assert!(!t.contains('{'), "unexpanded placeholder in {t}");
        }
        assert!(s.scan[1].contains("AND stream = $10"));
        assert!(s.aggregate_raw[1].contains("AND stream = $11"));
        assert!(s.rollup(HOUR).aggregate[1].contains("FROM events_1h"));
        assert!(s.rollup(HOUR).aggregate[1].contains("AND stream = $5"));
        assert_eq!(s.rollup(MINUTE).width, MINUTE);
        assert!(s.rollup(MINUTE).upsert.contains("INTO events_1m"));
    }
}
