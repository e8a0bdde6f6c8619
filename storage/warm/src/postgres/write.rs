//! The flush: one transaction per batch, exactly once per node and sequence number.
//!
//! In order: make sure the batch's daily partitions exist (plain PostgreSQL, outside the
//! transaction, see `partitions.rs`); lock the node's ledger row and read how far it got and
//! the retention cutoff; take the batch's days' hand-off locks shared and register its
//! partitions as export candidates (see `cold_handoff.rs`); binary `COPY` the new rows
//! straight into `events`; add their cells to the rollup tables (plain PostgreSQL) or note
//! their time ranges for a refresh (TimescaleDB, see `refresh.rs`); record the batch in the
//! ledger; commit. Rows at or below the node's mark are already stored (a replay after a
//! crash) and rows below the retention cutoff would be dropped at once, so neither is
//! written, while the ledger still counts both as handled.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use strata_core::{Result, hot::FlushBatch, warm::WarmMode, warm::WriteOutcome};
use strata_types::{Cell, StoredEvent};
use tokio_postgres::types::{Json, ToSql, Type};

use super::{
    PostgresWarm,
    codec::{micros, seq_i64, seq_u64, ts},
    cold_handoff::{DAY_LOCK_CLASS, day_lock_slot},
    partitions::day_of,
    refresh::pending_ranges,
    round_trip::{begin, commit, copy_in, execute, query_one, rollback},
    sql,
};
use crate::plan;

const OP: &str = "write_batch";

/// Column types of `copy_events.sql`, in its column order.
const COPY_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::FLOAT8,
    Type::JSONB,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
];

impl PostgresWarm {
    /// Stores `batch` of `node` (see the module docs).
    pub(super) async fn write(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        let mut client = self.client(OP).await?;
        if self.mode == WarmMode::Postgres {
            let mut days: Vec<NaiveDate> =
                batch.events.iter().map(|r| day_of(r.event.ts)).collect();
            days.sort_unstable();
            days.dedup();
            self.partitions.ensure(&client, &days).await?;
        }
        let tx = begin(&mut client, OP).await?;
        execute(&tx, OP, sql::ENSURE_NODE, &[&node]).await?;
        let row = query_one(&tx, OP, sql::LOCK_NODE, &[&node]).await?;
        let committed = seq_u64(row.get::<_, i64>(0))?;
        let cutoff = row
            .get::<_, Option<DateTime<Utc>>>(1)
            .map_or(i64::MIN, micros);
        let new: Vec<&StoredEvent> = batch.events.iter().filter(|r| r.seq > committed).collect();
        let Some(last) = new.iter().map(|r| r.seq).max() else {
            rollback(tx, OP).await?;
            return Ok(WriteOutcome::AlreadyWritten);
        };
        let first = new.first().map_or(last, |r| r.seq);
        let kept: Vec<&StoredEvent> = new
            .iter()
            .copied()
            .filter(|r| r.event.ts >= cutoff)
            .collect();

        if !kept.is_empty() {
            register_partitions(&tx, &kept).await?;
            copy_rows(&tx, node, &kept).await?;
            match self.mode {
                WarmMode::Timescale => {
                    let (from, to): (Vec<_>, Vec<_>) = pending_ranges(&kept)
                        .into_iter()
                        .map(|r| (ts(r.from), ts(r.to)))
                        .unzip();
                    execute(&tx, OP, sql::ROLLUP_PENDING_ADD, &[&from, &to]).await?;
                }
                _ => {
                    for rollup in &self.statements.rollups {
                        let cells = plan::rollup_deltas(kept.iter().copied(), rollup.width);
                        let c = RollupColumns::of(&cells);
                        let params: [&(dyn ToSql + Sync); 8] = [
                            &c.tenant, &c.stream, &c.bucket, &c.n, &c.n_value, &c.sum, &c.min,
                            &c.max,
                        ];
                        execute(&tx, OP, &rollup.upsert, &params).await?;
                    }
                }
            }
        }
        let rows = new.len() as i64;
        execute(
            &tx,
            OP,
            sql::RECORD_BATCH,
            &[&node, &seq_i64(first)?, &seq_i64(last)?, &rows],
        )
        .await?;
        commit(tx, OP).await?;
        if self.mode == WarmMode::Timescale {
            self.refresher.after_commit(&client).await;
        }
        Ok(WriteOutcome::Written {
            rows: new.len() as u64,
        })
    }
}

#[cfg(feature = "test-support")]
impl PostgresWarm {
    /// Only the binary `COPY` a flush does, in a transaction of its own: no node lock,
    /// ledger, hand-off registration, partitions or rollups. The flush bench measures the
    /// whole flush against it, so what the bookkeeping costs is the difference. With the
    /// plain-PostgreSQL layout the rows' days must already have their partitions.
    pub async fn copy_only(&self, node: &str, rows: &[StoredEvent]) -> Result<()> {
        let mut client = self.client(OP).await?;
        let tx = begin(&mut client, OP).await?;
        copy_rows(&tx, node, &rows.iter().collect::<Vec<_>>()).await?;
        commit(tx, OP).await?;
        Ok(())
    }
}

/// Takes the shared hand-off locks of the rows' days and records their partitions as export
/// candidates, before any row, rollup cell or partition entry of the batch: the day locks
/// order this batch against a cold commit of the same days.
async fn register_partitions(
    tx: &deadpool_postgres::Transaction<'_>,
    rows: &[&StoredEvent],
) -> Result<()> {
    let parts: BTreeSet<(i64, &str, &str)> = rows
        .iter()
        .map(|r| {
            let e = &r.event;
            (
                strata_types::time::day_of(e.ts),
                e.tenant.as_str(),
                e.stream.as_str(),
            )
        })
        .collect();
    let (mut slots, mut days, mut tenants, mut streams) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (day, tenant, stream) in parts {
        slots.push(day_lock_slot(day));
        days.push(day);
        tenants.push(tenant);
        streams.push(stream);
    }
    execute(
        tx,
        OP,
        sql::REGISTER_PARTITIONS,
        &[&DAY_LOCK_CLASS, &slots, &tenants, &streams, &days],
    )
    .await?;
    Ok(())
}

/// Streams the rows into `events` with a binary `COPY`.
async fn copy_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    node: &str,
    rows: &[&StoredEvent],
) -> Result<()> {
    let mut copy = copy_in(tx, OP, sql::COPY_EVENTS, &COPY_TYPES).await?;
    for r in rows {
        let e = &r.event;
        let (t, it, seq) = (ts(e.ts), ts(r.ingest_ts), seq_i64(r.seq)?);
        let attrs = Json(&e.attrs);
        let row: [&(dyn ToSql + Sync); 11] = [
            &e.tenant, &e.stream, &e.key, &e.id, &t, &e.value, &attrs, &e.payload, &it, &node, &seq,
        ];
        copy.write(&row).await?;
    }
    copy.finish().await?;
    Ok(())
}

/// A batch's rollup cells as parallel arrays for `unnest`.
#[derive(Default)]
struct RollupColumns<'a> {
    tenant: Vec<&'a str>,
    stream: Vec<&'a str>,
    bucket: Vec<DateTime<Utc>>,
    n: Vec<i64>,
    n_value: Vec<i64>,
    sum: Vec<Option<f64>>,
    min: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
}

impl<'a> RollupColumns<'a> {
    fn of(cells: &'a BTreeMap<(String, String, i64), Cell>) -> Self {
        let mut c = Self::default();
        for ((tenant, stream, bucket), cell) in cells {
            let has = cell.value_count > 0;
            c.tenant.push(tenant);
            c.stream.push(stream);
            c.bucket.push(ts(*bucket));
            c.n.push(i64::try_from(cell.count).unwrap_or(i64::MAX));
            c.n_value
                .push(i64::try_from(cell.value_count).unwrap_or(i64::MAX));
            c.sum.push(has.then_some(cell.sum));
            c.min.push(has.then_some(cell.min));
            c.max.push(has.then_some(cell.max));
        }
        c
    }
}
