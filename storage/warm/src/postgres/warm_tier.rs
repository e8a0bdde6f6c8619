//! [`WarmTier`] for PostgreSQL: the reads, and the entry points of the flush (`write.rs`)
//! and of retention (`retention.rs`).
//!
//! Reads push tenant, range, stream, filter, grouping, bucket (`date_bin` from the epoch, so
//! both layouts run the same SQL) and the hot watermark down into SQL. An aggregate that
//! rollups could answer reads the exactness check (the node's committed mark, the retention
//! cutoff, the ranges whose continuous aggregates are stale) and the rows from one snapshot,
//! then asks `plan` which parts of the range to read from rollups and which raw.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use strata_core::{
    Result,
    hot::{FlushBatch, HotWatermark},
    warm::{ScanCursor, ScanPage, ScanRequest, WarmMode, WarmTier, WriteOutcome},
};
use strata_types::{AggregateQuery, GroupBy, PartialAggregate, StoredEvent, TimeRange};
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::{
    PostgresWarm,
    codec::{MAX_TS, MIN_TS, cell_from, column, micros, seq_i64, seq_u64, stored_from, ts},
    round_trip::{batch, begin_snapshot, query, query_one, query_opt, rollback},
    sql,
};
use crate::plan::{self, Source};

/// More noted ranges than this overlapping one query: read all of it raw rather than
/// splitting it into that many reads.
const MAX_STALE_RANGES: usize = 16;

#[async_trait]
impl WarmTier for PostgresWarm {
    fn mode(&self) -> WarmMode {
        self.mode
    }

    #[instrument(skip_all, fields(node = %node, rows = batch.events.len()))]
    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        let result = self.write(node, batch).await;
        if result.is_err() {
            // A failed write may be due to a partition retention dropped; forget what we
            // believe exists so the next attempt checks again.
            self.partitions.forget_all();
        }
        result
    }

    async fn committed_upto(&self, node: &str) -> Result<u64> {
        const OP: &str = "committed_upto";
        let client = self.client(OP).await?;
        let row = query_one(&client, OP, sql::COMMITTED_UPTO, &[&node]).await?;
        seq_u64(row.get(0))
    }

    #[instrument(skip_all)]
    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        const OP: &str = "aggregate";
        let mut out = PartialAggregate::default();
        let Some(range) = plan::clip(query.range, MIN_TS) else {
            return Ok(out);
        };
        let range = TimeRange {
            from: range.from,
            to: range.to.min(MAX_TS),
        };
        if range.from >= range.to {
            return Ok(out);
        }
        let mut client = self.client(OP).await?;
        if !plan::rollup_shaped(query) {
            // Raw rows only: retention deletes atomically, so no snapshot juggling needed.
            self.aggregate_raw(&client, query, range, watermark, &mut out)
                .await?;
            return Ok(out);
        }
        // The exactness check and the reads share one snapshot.
        let tx = begin_snapshot(&mut client, OP).await?;
        let row = query_one(
            &tx,
            OP,
            sql::AGGREGATE_STATE,
            &[&watermark.node, &ts(range.from), &ts(range.to)],
        )
        .await?;
        let committed = seq_u64(row.get(0))?;
        let cutoff = row
            .get::<_, Option<DateTime<Utc>>>(1)
            .map_or(i64::MIN, micros);
        let stale_from: Vec<DateTime<Utc>> = row.get(2);
        let stale_to: Vec<DateTime<Utc>> = row.get(3);
        let stale: Vec<TimeRange> = stale_from
            .iter()
            .zip(&stale_to)
            .map(|(f, t)| TimeRange {
                from: micros(*f),
                to: micros(*t),
            })
            .collect();
        let Some(range) = plan::clip(range, cutoff) else {
            rollback(tx, OP).await?;
            return Ok(out);
        };
        let use_rollups = committed <= watermark.released_upto && stale.len() <= MAX_STALE_RANGES;
        for seg in plan::plan_around(query, range, use_rollups, &stale) {
            match seg.source {
                Source::Raw => {
                    self.aggregate_raw(&tx, query, seg.range, watermark, &mut out)
                        .await?;
                }
                Source::Rollup(w) => {
                    self.aggregate_rollup(&tx, query, w, seg.range, &mut out)
                        .await?;
                }
            }
        }
        rollback(tx, OP).await?;
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> Result<Option<StoredEvent>> {
        const OP: &str = "get";
        let client = self.client(OP).await?;
        let released = watermark.released_upto_i64();
        let row = query_opt(
            &client,
            OP,
            sql::GET,
            &[&tenant, &id, &watermark.node, &released],
        )
        .await?;
        row.map(|r| stored_from(&r, tenant)).transpose()
    }

    #[instrument(skip_all)]
    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        const OP: &str = "existing_ids";
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let client = self.client(OP).await?;
        let rows = query(&client, OP, sql::EXISTING_IDS, &[&tenant, &ids]).await?;
        rows.iter()
            .map(|r| {
                let id: String = column(r, 0)?;
                let seq: i64 = column(r, 1)?;
                Ok((id, u64::try_from(seq).unwrap_or_default()))
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage> {
        const OP: &str = "scan";
        let mut page = ScanPage::default();
        let from = request.range.from.max(MIN_TS);
        let to = request.range.to.min(MAX_TS);
        let (c_ts, c_seq, c_node) = match &request.after {
            Some(c) => (c.ts, seq_i64(c.seq)?, c.node.clone()),
            None => (from, -1, String::new()),
        };
        let lower = from.max(c_ts);
        if lower >= to {
            return Ok(page);
        }
        let limit = i64::try_from(request.limit.max(1)).unwrap_or(i64::MAX);
        let (lo, hi, cts) = (ts(lower), ts(to), ts(c_ts));
        let released = watermark.released_upto_i64();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &request.tenant,
            &lo,
            &hi,
            &watermark.node,
            &released,
            &cts,
            &c_seq,
            &c_node,
            &limit,
        ];
        if let Some(s) = &request.stream {
            params.push(s);
        }
        let client = self.client(OP).await?;
        let sql = &self.statements.scan[usize::from(request.stream.is_some())];
        let rows = query(&client, OP, sql, &params).await?;
        let full = rows.len() as i64 == limit;
        let mut last = None;
        for row in &rows {
            let e = stored_from(row, &request.tenant)?;
            last = Some(ScanCursor {
                ts: e.event.ts,
                seq: e.seq,
                node: row.get(9),
            });
            page.events.push(e);
        }
        if full {
            page.next = last;
        }
        Ok(page)
    }

    #[instrument(skip_all)]
    async fn drop_before(&self, before: i64) -> Result<u64> {
        self.retain_from(before).await
    }

    async fn health(&self) -> Result<()> {
        const OP: &str = "health";
        let client = self.client(OP).await?;
        batch(&client, OP, sql::HEALTH).await?;
        Ok(())
    }
}

impl PostgresWarm {
    /// Adds the raw rows of `range` that `wm` leaves to warm to `out`.
    async fn aggregate_raw(
        &self,
        db: &impl GenericClient,
        q: &AggregateQuery,
        range: TimeRange,
        wm: &HotWatermark,
        out: &mut PartialAggregate,
    ) -> Result<()> {
        const OP: &str = "aggregate";
        let (kind, attr): (i32, Option<&str>) = match &q.group_by {
            GroupBy::None => (0, None),
            GroupBy::Key => (1, None),
            GroupBy::Attr(name) => (2, Some(name)),
        };
        let (fname, fvalue) = match &q.filter {
            Some(f) => (Some(f.name.as_str()), Some(f.value.as_str())),
            None => (None, None),
        };
        let (from, to, released) = (ts(range.from), ts(range.to), wm.released_upto_i64());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &q.tenant, &from, &to, &q.bucket, &wm.node, &released, &kind, &attr, &fname, &fvalue,
        ];
        if let Some(s) = &q.stream {
            params.push(s);
        }
        let sql = &self.statements.aggregate_raw[usize::from(q.stream.is_some())];
        for row in query(db, OP, sql, &params).await? {
            let bucket: DateTime<Utc> = row.get(0);
            let group: Option<String> = row.get(1);
            out.cells
                .entry((micros(bucket), group))
                .or_default()
                .merge(&cell_from(&row, 2)?);
        }
        Ok(())
    }

    /// Adds the rollup of bucket width `width` over `range` (aligned to it) to `out`.
    async fn aggregate_rollup(
        &self,
        db: &impl GenericClient,
        q: &AggregateQuery,
        width: i64,
        range: TimeRange,
        out: &mut PartialAggregate,
    ) -> Result<()> {
        const OP: &str = "aggregate";
        let (from, to) = (ts(range.from), ts(range.to));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&q.tenant, &from, &to, &q.bucket];
        if let Some(s) = &q.stream {
            params.push(s);
        }
        let sql = &self.statements.rollup(width).aggregate[usize::from(q.stream.is_some())];
        for row in query(db, OP, sql, &params).await? {
            let bucket: DateTime<Utc> = row.get(0);
            out.cells
                .entry((micros(bucket), None))
                .or_default()
                .merge(&cell_from(&row, 1)?);
        }
        Ok(())
    }
}
