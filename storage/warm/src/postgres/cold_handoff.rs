//! The PostgreSQL / TimescaleDB side of the warm → cold hand-off: which partitions are due,
//! their rows page by page, and the commit that records the live cold manifest version and
//! deletes the exported rows in one transaction.
//!
//! **Finding due partitions.** `strata_warm_partitions` lists the `(day, tenant, stream)`
//! partitions holding rows; flushes add to it in their transaction, so finding the oldest due
//! partitions reads that small table in key order plus one index probe per entry, instead of
//! a `DISTINCT` over weeks of events (which neither the plain layout's `(tenant, stream, ts)`
//! index nor compressed chunks answer cheaply).
//!
//! **Committing.** [`ColdHandoff::commit_cold`] first takes the advisory lock of the
//! partition's day exclusively; flushes take their days' locks shared before they add rows,
//! rollup cells or partition entries. Under that lock nothing else changes the partition, so
//! the commit can compare-and-set the pointer, delete the rows at or below the export marks,
//! drop the partition's entry if it is now empty and keep the aggregates exact:
//!
//! * plain PostgreSQL: the partition's rollup cells are recomputed from the rows that stay
//!   (late rows above the marks), since min and max cannot be subtracted;
//! * TimescaleDB: the continuous aggregates still count the deleted rows until they are
//!   refreshed, so the day is noted in `strata_rollup_pending` in the same transaction
//!   (queries read raw rows there, see `refresh.rs`) and the throttled refresh runs
//!   after the commit; once a refresh that started after the commit is done, the note goes.
//!
//! The lock is per day modulo [`DAY_LOCK_SLOTS`], not per partition, which bounds the locks a
//! flush holds however many tenants and streams its batch spans; a flush of today's data and
//! the export of a day that ended a while ago use different slots unless the two days are a
//! multiple of the slot count apart, and then the flush only waits for one commit.

use async_trait::async_trait;
use strata_core::{
    Error, Result, Tier,
    cold::{ColdRow, LivePartition, PartitionKey},
    handoff::{ColdCommit, ColdHandoff, ExportMarks, ExportPage},
    warm::{ScanCursor, WarmMode},
};
use strata_types::{TimeRange, time::day_of};
use tokio_postgres::types::ToSql;
use tracing::instrument;

use super::{
    PostgresWarm,
    codec::{MAX_TS, MIN_TS, i64_of, seq_u64, stored_from, ts},
    round_trip::{self, begin, execute, query, query_opt, rollback},
    sql,
};
use crate::plan;

/// Advisory lock class of the per-day hand-off locks ("STCP"); the two-key form keeps them
/// apart from the migration lock's one-key space.
pub(super) const DAY_LOCK_CLASS: i32 = 0x5354_4350;
/// How many per-day locks there are (see the module docs).
pub(super) const DAY_LOCK_SLOTS: i64 = 64;

/// The lock slot of a day (days since the epoch).
pub(super) fn day_lock_slot(day: i64) -> i32 {
    // rem_euclid keeps it in 0..DAY_LOCK_SLOTS, which fits.
    i32::try_from(day.rem_euclid(DAY_LOCK_SLOTS)).unwrap_or(0)
}

/// The first and the last-plus-one microsecond of `day`, within the span PostgreSQL stores.
fn day_bounds(day: i64) -> (i64, i64) {
    let (start, end) = plan::day_range(day);
    (start.clamp(MIN_TS, MAX_TS), end.clamp(MIN_TS, MAX_TS))
}

/// Export marks as the parallel arrays the SQL unnests; marks above `i64::MAX` cannot be
/// stored sequence numbers, so saturating keeps the comparison exact.
fn mark_columns(marks: &ExportMarks) -> (Vec<&str>, Vec<i64>) {
    marks
        .iter()
        .map(|(node, upto)| (node.as_str(), i64::try_from(*upto).unwrap_or(i64::MAX)))
        .unzip()
}

#[async_trait]
impl ColdHandoff for PostgresWarm {
    #[instrument(skip_all)]
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        const OP: &str = "cold_partitions";
        let (lo, hi) = plan::days_touched(range);
        let client = self.client(OP).await?;
        let rows = query(&client, OP, sql::COLD_PARTITIONS, &[&tenant, &lo, &hi]).await?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.get(3);
                Ok(LivePartition {
                    partition: PartitionKey {
                        tenant: r.get(0),
                        stream: r.get(1),
                        day: r.get(2),
                    },
                    version: u64::try_from(version).map_err(|_| Error::Corrupt {
                        tier: Tier::Warm,
                        what: format!("negative cold manifest version {version}"),
                    })?,
                    manifest_sha256: r.get(4),
                })
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        const OP: &str = "export_candidates";
        // Only whole days: the day holding `before` is not over at `before`.
        let first_not_due = day_of(before);
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let client = self.client(OP).await?;
        let rows = query(
            &client,
            OP,
            sql::EXPORT_CANDIDATES,
            &[&first_not_due, &limit],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| PartitionKey {
                tenant: r.get(0),
                stream: r.get(1),
                day: r.get(2),
            })
            .collect())
    }

    async fn flush_marks(&self) -> Result<ExportMarks> {
        const OP: &str = "flush_marks";
        let client = self.client(OP).await?;
        let rows = query(&client, OP, sql::FLUSH_MARKS, &[]).await?;
        rows.iter()
            .map(|r| Ok((r.get::<_, String>(0), seq_u64(r.get(1))?)))
            .collect()
    }

    #[instrument(skip_all, fields(partition = %p))]
    async fn export_page(
        &self,
        p: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        const OP: &str = "export_page";
        let mut page = ExportPage::default();
        if marks.is_empty() {
            return Ok(page);
        }
        let (start, end) = day_bounds(p.day);
        let (c_ts, c_seq, c_node) = match after {
            Some(c) if c.ts >= start => (
                c.ts,
                i64::try_from(c.seq).unwrap_or(i64::MAX),
                c.node.clone(),
            ),
            _ => (start, -1, String::new()),
        };
        if c_ts >= end {
            return Ok(page);
        }
        let (nodes, uptos) = mark_columns(marks);
        let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
        let (lo, hi, cts) = (ts(c_ts), ts(end), ts(c_ts));
        let params: [&(dyn ToSql + Sync); 10] = [
            &p.tenant, &p.stream, &lo, &hi, &nodes, &uptos, &cts, &c_seq, &c_node, &limit,
        ];
        let client = self.client(OP).await?;
        let rows = query(&client, OP, sql::EXPORT_PAGE, &params).await?;
        let full = rows.len() as i64 == limit;
        for row in &rows {
            page.rows.push(ColdRow {
                node: row.get(9),
                stored: stored_from(row, &p.tenant)?,
            });
        }
        if full {
            page.next = page.rows.last().map(|r| ScanCursor {
                ts: r.stored.event.ts,
                seq: r.stored.seq,
                node: r.node.clone(),
            });
        }
        Ok(page)
    }

    #[instrument(
        skip_all,
        fields(partition = %commit.live.partition, version = commit.live.version)
    )]
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        const OP: &str = "commit_cold";
        let p = &commit.live.partition;
        let version = i64_of(commit.live.version, OP, "cold manifest version")?;
        let (start, end) = day_bounds(p.day);
        let (from, to) = (ts(start), ts(end));
        let mut client = self.client(OP).await?;
        let tx = begin(&mut client, OP).await?;
        execute(
            &tx,
            OP,
            sql::COLD_LOCK,
            &[&DAY_LOCK_CLASS, &day_lock_slot(p.day)],
        )
        .await?;
        let current = query_opt(
            &tx,
            OP,
            sql::COLD_POINTER_GET,
            &[&p.tenant, &p.stream, &p.day],
        )
        .await?
        .map(|r| seq_u64(r.get(0)))
        .transpose()?;
        if current != commit.expected_version {
            rollback(tx, OP).await?;
            return Err(Error::Conflict {
                tier: Tier::Warm,
                op: OP,
                message: format!(
                    "cold pointer of {p} is at {current:?}, expected {:?}: another exporter or \
                     compactor committed first",
                    commit.expected_version
                ),
            });
        }
        execute(
            &tx,
            OP,
            sql::COLD_POINTER_SET,
            &[
                &p.tenant,
                &p.stream,
                &p.day,
                &version,
                &commit.live.manifest_sha256,
            ],
        )
        .await?;
        let mut removed = 0;
        if let Some(marks) = &commit.exported {
            let (nodes, uptos) = mark_columns(marks);
            removed = execute(
                &tx,
                OP,
                sql::EXPORT_DELETE,
                &[&p.tenant, &p.stream, &from, &to, &nodes, &uptos],
            )
            .await?;
            if removed > 0 {
                match self.mode {
                    WarmMode::Timescale => {
                        execute(&tx, OP, sql::ROLLUP_PENDING_ADD, &[&vec![from], &vec![to]])
                            .await?;
                    }
                    _ => {
                        for rollup in &self.statements.rollups {
                            let partition: [&(dyn ToSql + Sync); 4] =
                                [&p.tenant, &p.stream, &from, &to];
                            execute(&tx, OP, &rollup.rebuild_clear, &partition).await?;
                            execute(
                                &tx,
                                OP,
                                &rollup.rebuild,
                                &[&p.tenant, &p.stream, &from, &to, &rollup.width],
                            )
                            .await?;
                        }
                    }
                }
            }
            execute(
                &tx,
                OP,
                sql::WARM_PARTITION_DONE,
                &[&p.tenant, &p.stream, &p.day, &from, &to],
            )
            .await?;
        }
        round_trip::commit(tx, OP).await?;
        if self.mode == WarmMode::Timescale && removed > 0 {
            self.refresher.after_commit(&client).await;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use strata_types::time::DAY;

    use super::*;

    #[test]
    fn day_slots_and_bounds() {
        assert_eq!(day_lock_slot(0), 0);
        assert_eq!(day_lock_slot(-1), 63, "negative days wrap into the slots");
        assert_eq!(day_lock_slot(DAY_LOCK_SLOTS + 5), 5);
        assert_eq!(day_bounds(1), (DAY, 2 * DAY));
        let (lo, hi) = day_bounds(i64::MAX);
        assert!(lo <= hi && hi == MAX_TS);
        let marks: ExportMarks = [("a".to_owned(), 3), ("b".to_owned(), u64::MAX)].into();
        assert_eq!(mark_columns(&marks), (vec!["a", "b"], vec![3, i64::MAX]));
    }
}
