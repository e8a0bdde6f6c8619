//! The embedded store's side of the warm → cold hand-off: which partitions are due, their
//! rows page by page, and the commit that drops exported rows and records the live cold
//! manifest version in one redb transaction.
//!
//! Table `cold_partitions`: `(tenant, day, stream)` → `(manifest version, manifest
//! SHA-256)`. Readers that need rows and pointers from one snapshot read both tables in
//! one read transaction or compare the pointers before and after (the planner does the
//! latter through the trait).
//!
//! Every call runs on the blocking pool in one redb transaction, so the compare-and-set of
//! [`ColdHandoff::commit_cold`] and the rows it drops commit together or not at all; redb
//! has one writer at a time, so two commits of one partition are simply serialised and the
//! second one sees the first one's pointer.

use std::collections::BTreeSet;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableError};
use strata_core::{
    Error, Result, Tier,
    cold::{ColdRow, LivePartition, PartitionKey},
    handoff::{ColdCommit, ColdHandoff, ExportMarks, ExportPage},
    warm::ScanCursor,
};
use strata_types::{
    Cell, TimeRange,
    time::{day_of, day_start},
};
use tracing::instrument;

use super::{
    EVENT_IDS, EVENTS, EmbeddedWarm, EventKey, FLUSH_NODES, TENANTS, decode, fail, rollup_table,
};
use crate::plan;

/// `(tenant, day, stream)` → `(version, manifest sha256)`.
const COLD_PARTITIONS: TableDefinition<(&str, i64, &str), (u64, &str)> =
    TableDefinition::new("cold_partitions");

#[async_trait]
impl ColdHandoff for EmbeddedWarm {
    #[instrument(skip_all)]
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        let tenant = tenant.map(str::to_owned);
        self.blocking("cold_partitions", move |db| {
            cold_partitions(db, tenant.as_deref(), range)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        self.blocking("export_candidates", move |db| {
            export_candidates(db, before, limit)
        })
        .await
    }

    async fn flush_marks(&self) -> Result<ExportMarks> {
        self.blocking("flush_marks", flush_marks).await
    }

    #[instrument(skip_all, fields(partition = %partition))]
    async fn export_page(
        &self,
        partition: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        let (p, marks, after) = (partition.clone(), marks.clone(), after.cloned());
        self.blocking("export_page", move |db| {
            export_page(db, &p, &marks, after.as_ref(), limit)
        })
        .await
    }

    #[instrument(
        skip_all,
        fields(partition = %commit.live.partition, version = commit.live.version)
    )]
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        let commit = commit.clone();
        self.blocking("commit_cold", move |db| commit_cold(db, &commit))
            .await
    }
}

fn cold_partitions(
    db: &Database,
    tenant: Option<&str>,
    range: Option<TimeRange>,
) -> Result<Vec<LivePartition>> {
    const OP: &str = "cold_partitions";
    let tx = db.begin_read().map_err(fail(OP))?;
    let table = match tx.open_table(COLD_PARTITIONS) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(fail(OP)(e)),
    };
    let (lo_day, hi_day) = plan::days_touched(range);
    let mut out = Vec::new();
    let mut push = |k: (&str, i64, &str), v: (u64, &str)| {
        out.push(LivePartition {
            partition: PartitionKey {
                tenant: k.0.to_owned(),
                stream: k.2.to_owned(),
                day: k.1,
            },
            version: v.0,
            manifest_sha256: v.1.to_owned(),
        });
    };
    match tenant {
        Some(t) => {
            for item in table
                .range((t, lo_day, "")..=(t, hi_day, "\u{10FFFF}"))
                .map_err(fail(OP))?
            {
                let (k, v) = item.map_err(fail(OP))?;
                push(k.value(), v.value());
            }
        }
        None => {
            for item in table.iter().map_err(fail(OP))? {
                let (k, v) = item.map_err(fail(OP))?;
                let key = k.value();
                if (lo_day..=hi_day).contains(&key.1) {
                    push(key, v.value());
                }
            }
        }
    }
    Ok(out)
}

fn flush_marks(db: &Database) -> Result<ExportMarks> {
    const OP: &str = "flush_marks";
    let tx = db.begin_read().map_err(fail(OP))?;
    let nodes = tx.open_table(FLUSH_NODES).map_err(fail(OP))?;
    let mut marks = ExportMarks::new();
    for item in nodes.iter().map_err(fail(OP))? {
        let (k, v) = item.map_err(fail(OP))?;
        marks.insert(k.value().to_owned(), v.value());
    }
    Ok(marks)
}

/// Skips from day to day through each tenant's rows: the first row at or after a day's
/// start names the next day holding rows, so days without rows cost nothing.
fn export_candidates(db: &Database, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
    const OP: &str = "export_candidates";
    let tx = db.begin_read().map_err(fail(OP))?;
    let tenants = tx.open_table(TENANTS).map_err(fail(OP))?;
    let events = tx.open_table(EVENTS).map_err(fail(OP))?;
    let last_day = day_of(before) - 1;
    let mut out = BTreeSet::new();
    for item in tenants.iter().map_err(fail(OP))? {
        let (t, _) = item.map_err(fail(OP))?;
        let tenant = t.value();
        let mut from = i64::MIN;
        // A tenant's days come oldest first, so once it has `limit` partitions its later
        // days cannot be among the oldest `limit` overall; another tenant's older days can.
        let mut found = 0usize;
        loop {
            let lo: EventKey<'_> = (tenant, from, 0, "");
            let hi: EventKey<'_> = (tenant, day_start(last_day + 1), 0, "");
            let Some(first) = events.range(lo..hi).map_err(fail(OP))?.next() else {
                break;
            };
            let (k, _) = first.map_err(fail(OP))?;
            let day = day_of(k.value().1);
            let (start, end) = plan::day_range(day);
            let mut streams = BTreeSet::new();
            for row in events
                .range::<EventKey<'_>>((tenant, start, 0, "")..(tenant, end, 0, ""))
                .map_err(fail(OP))?
            {
                let (_, v) = row.map_err(fail(OP))?;
                let bytes = v.value();
                streams.insert(decode(bytes, "in export_candidates")?.stream.to_owned());
            }
            found += streams.len();
            for stream in streams {
                out.insert((day, tenant.to_owned(), stream));
            }
            if found >= limit.max(1) {
                break;
            }
            from = end;
        }
    }
    Ok(out
        .into_iter()
        .take(limit.max(1))
        .map(|(day, tenant, stream)| PartitionKey {
            tenant,
            stream,
            day,
        })
        .collect())
}

fn exported(marks: &ExportMarks, node: &str, seq: u64) -> bool {
    marks.get(node).is_some_and(|m| seq <= *m)
}

fn export_page(
    db: &Database,
    p: &PartitionKey,
    marks: &ExportMarks,
    after: Option<&ScanCursor>,
    limit: usize,
) -> Result<ExportPage> {
    const OP: &str = "export_page";
    let tx = db.begin_read().map_err(fail(OP))?;
    let cutoff = super::retention_cutoff(&tx)?;
    let events = tx.open_table(EVENTS).map_err(fail(OP))?;
    let tenant = p.tenant.as_str();
    let (start, end) = plan::day_range(p.day);
    let start = start.max(cutoff);
    let mut page = ExportPage::default();
    if start >= end {
        return Ok(page);
    }
    let lower = match after {
        Some(c) if (c.ts, c.seq) >= (start, 0) => {
            std::ops::Bound::Excluded((tenant, c.ts, c.seq, c.node.as_str()))
        }
        _ => std::ops::Bound::Included((tenant, start, 0, "")),
    };
    let upper = std::ops::Bound::Excluded((tenant, end, 0, ""));
    let limit = limit.max(1);
    for item in events
        .range::<EventKey<'_>>((lower, upper))
        .map_err(fail(OP))?
    {
        let (k, v) = item.map_err(fail(OP))?;
        let (_, ts, seq, node) = k.value();
        if !exported(marks, node, seq) {
            continue;
        }
        let bytes = v.value();
        let row = decode(bytes, "in export_page")?;
        if row.stream != p.stream {
            continue;
        }
        page.rows.push(ColdRow {
            node: node.to_owned(),
            stored: row.into_stored(tenant, ts, seq),
        });
        if page.rows.len() == limit {
            page.next = Some(ScanCursor {
                ts,
                seq,
                node: node.to_owned(),
            });
            break;
        }
    }
    Ok(page)
}

fn commit_cold(db: &Database, commit: &ColdCommit) -> Result<u64> {
    const OP: &str = "commit_cold";
    let p = &commit.live.partition;
    let tenant = p.tenant.as_str();
    let key = (tenant, p.day, p.stream.as_str());
    let tx = db.begin_write().map_err(fail(OP))?;
    let mut removed = 0u64;
    {
        let mut pointers = tx.open_table(COLD_PARTITIONS).map_err(fail(OP))?;
        let current = pointers.get(key).map_err(fail(OP))?.map(|g| g.value().0);
        if current != commit.expected_version {
            drop(pointers);
            tx.abort().map_err(fail(OP))?;
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
        pointers
            .insert(
                key,
                (commit.live.version, commit.live.manifest_sha256.as_str()),
            )
            .map_err(fail(OP))?;
    }
    if let Some(marks) = &commit.exported {
        let (start, end) = plan::day_range(p.day);
        let mut events = tx.open_table(EVENTS).map_err(fail(OP))?;
        let mut ids = tx.open_table(EVENT_IDS).map_err(fail(OP))?;
        let mut doomed: Vec<(i64, u64, String, String)> = Vec::new();
        for item in events
            .range::<EventKey<'_>>((tenant, start, 0, "")..(tenant, end, 0, ""))
            .map_err(fail(OP))?
        {
            let (k, v) = item.map_err(fail(OP))?;
            let (_, ts, seq, node) = k.value();
            if !exported(marks, node, seq) {
                continue;
            }
            let bytes = v.value();
            let row = decode(bytes, "in commit_cold")?;
            if row.stream == p.stream {
                doomed.push((ts, seq, node.to_owned(), row.id.to_owned()));
            }
        }
        for (ts, seq, node, id) in &doomed {
            events
                .remove((tenant, *ts, *seq, node.as_str()))
                .map_err(fail(OP))?;
            ids.remove((tenant, id.as_str(), node.as_str()))
                .map_err(fail(OP))?;
        }
        removed = doomed.len() as u64;
        // The stream's rollup cells of that day are rebuilt from the rows that stay (late
        // rows not covered by the export), so rollup answers keep equalling raw rows.
        let mut rebuilt: std::collections::BTreeMap<(i64, i64), Cell> = Default::default();
        for item in events
            .range::<EventKey<'_>>((tenant, start, 0, "")..(tenant, end, 0, ""))
            .map_err(fail(OP))?
        {
            let (k, v) = item.map_err(fail(OP))?;
            let (_, ts, _, _) = k.value();
            let bytes = v.value();
            let row = decode(bytes, "in commit_cold")?;
            if row.stream != p.stream {
                continue;
            }
            for width in plan::WIDTHS {
                rebuilt
                    .entry((width, plan::floor_to(ts, width)))
                    .or_default()
                    .add(row.value);
            }
        }
        for width in plan::WIDTHS {
            let mut table = tx.open_table(rollup_table(width)).map_err(fail(OP))?;
            let stream = p.stream.as_str();
            table
                .retain_in((tenant, start, "")..(tenant, end, ""), |k, _| k.2 != stream)
                .map_err(fail(OP))?;
            for ((w, bucket), c) in rebuilt.iter().filter(|((w, _), _)| *w == width) {
                debug_assert_eq!(*w, width);
                table
                    .insert(
                        (tenant, *bucket, stream),
                        (c.count, c.value_count, c.sum, c.min, c.max),
                    )
                    .map_err(fail(OP))?;
            }
        }
    }
    tx.commit().map_err(fail(OP))?;
    Ok(removed)
}
