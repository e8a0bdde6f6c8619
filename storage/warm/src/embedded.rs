//! The embedded warm store: one redb file (`<data-dir>/warm.redb`), no server.
//!
//! Layout (every table in the same file, every write in one transaction):
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `events` | `(tenant, ts, seq, node)` | the rest of the row, postcard |
//! | `event_ids` | `(tenant, id, node)` | `(ts, seq)` |
//! | `rollup_1m`, `rollup_1h` | `(tenant, bucket start, stream)` | count, value count, sum, min, max |
//! | `flush_nodes` | node | highest committed seq |
//! | `flush_ledger` | `(node, first_seq)` | `(last_seq, rows)` |
//! | `tenants` | tenant | `()` |
//! | `meta` | name | i64 (the retention cutoff) |
//!
//! A (tenant, time range) read is one key-range read in `(ts, seq, node)` order, which is the
//! scan order the contract asks for; a lookup by id is a point read plus one more. redb
//! commits are durable (fsync) and readers see a consistent snapshot, which is what makes
//! the rollup exactness check (committed seq vs. watermark) and the read one atomic step.

use std::{
    collections::HashMap,
    ops::Bound,
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use strata_core::{
    Error, Result, Tier,
    hot::{FlushBatch, HotWatermark},
    warm::{ScanCursor, ScanPage, ScanRequest, WarmMode, WarmTier, WriteOutcome},
};
use strata_types::{AggregateQuery, Cell, Event, GroupBy, PartialAggregate, StoredEvent};
use tracing::instrument;

use strata_types::time::HOUR;

use crate::plan::{self, Source};

mod cold_handoff;

type EventKey<'a> = (&'a str, i64, u64, &'a str);

const EVENTS: TableDefinition<EventKey<'static>, &[u8]> = TableDefinition::new("events");
const EVENT_IDS: TableDefinition<(&str, &str, &str), (i64, u64)> =
    TableDefinition::new("event_ids");
/// `(tenant, bucket start, stream)`.
type RollupKey<'a> = (&'a str, i64, &'a str);
/// count, value count, sum, min, max.
type RollupCell = (u64, u64, f64, f64, f64);
type RollupTable = TableDefinition<'static, RollupKey<'static>, RollupCell>;

const ROLLUP_1M: RollupTable = TableDefinition::new("rollup_1m");
const ROLLUP_1H: RollupTable = TableDefinition::new("rollup_1h");
const FLUSH_NODES: TableDefinition<&str, u64> = TableDefinition::new("flush_nodes");
const FLUSH_LEDGER: TableDefinition<(&str, u64), (u64, u64)> = TableDefinition::new("flush_ledger");
const TENANTS: TableDefinition<&str, ()> = TableDefinition::new("tenants");
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

const RETENTION_CUTOFF: &str = "retention_cutoff";
/// Rows deleted per retention transaction, so one pass never holds a huge transaction.
const RETENTION_CHUNK: usize = 20_000;

fn rollup_table(width: i64) -> RollupTable {
    if width == HOUR { ROLLUP_1H } else { ROLLUP_1M }
}

/// The part of a row that is not in its key. Serialised and read back borrowed, so an
/// aggregate over many rows decodes without allocating.
#[derive(Debug, Serialize, Deserialize)]
struct RowValue<'a> {
    stream: &'a str,
    key: &'a str,
    id: &'a str,
    value: Option<f64>,
    #[serde(borrow)]
    attrs: Vec<(&'a str, &'a str)>,
    #[serde(borrow)]
    payload: Option<&'a str>,
    ingest_ts: i64,
}

impl<'a> RowValue<'a> {
    fn of(r: &'a StoredEvent) -> Self {
        let e = &r.event;
        Self {
            stream: &e.stream,
            key: &e.key,
            id: &e.id,
            value: e.value,
            attrs: e
                .attrs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            payload: e.payload.as_deref(),
            ingest_ts: r.ingest_ts,
        }
    }

    fn attr(&self, name: &str) -> Option<&'a str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn into_stored(self, tenant: &str, ts: i64, seq: u64) -> StoredEvent {
        StoredEvent {
            event: Event {
                tenant: tenant.to_owned(),
                stream: self.stream.to_owned(),
                key: self.key.to_owned(),
                id: self.id.to_owned(),
                ts,
                value: self.value,
                attrs: self
                    .attrs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                payload: self.payload.map(str::to_owned),
            },
            ingest_ts: self.ingest_ts,
            seq,
        }
    }
}

fn decode<'a>(bytes: &'a [u8], where_: &str) -> Result<RowValue<'a>> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("embedded warm row {where_}: {e}"),
    })
}

/// Tags a redb (or task) error with the warm tier and the operation.
fn fail<E: std::error::Error + Send + Sync + 'static>(op: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::storage(Tier::Warm, op, e)
}

/// The embedded warm store. Cheap to share behind an `Arc`; every call runs its redb work on
/// the blocking pool.
#[derive(Debug, Clone)]
pub struct EmbeddedWarm {
    db: Arc<Database>,
    path: PathBuf,
}

impl EmbeddedWarm {
    /// Opens (creating if needed) the store at `path`, usually `<data-dir>/warm.redb`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let db = tokio::task::spawn_blocking(move || -> Result<Database> {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(fail("open"))?;
            }
            let db = Database::create(&p).map_err(fail("open"))?;
            let tx = db.begin_write().map_err(fail("open"))?;
            tx.open_table(EVENTS).map_err(fail("open"))?;
            tx.open_table(EVENT_IDS).map_err(fail("open"))?;
            tx.open_table(ROLLUP_1M).map_err(fail("open"))?;
            tx.open_table(ROLLUP_1H).map_err(fail("open"))?;
            tx.open_table(FLUSH_NODES).map_err(fail("open"))?;
            tx.open_table(FLUSH_LEDGER).map_err(fail("open"))?;
            tx.open_table(TENANTS).map_err(fail("open"))?;
            tx.open_table(META).map_err(fail("open"))?;
            tx.commit().map_err(fail("open"))?;
            Ok(db)
        })
        .await
        .map_err(fail("open"))??;
        tracing::info!(path = %path.display(), "warm tier: embedded store");
        Ok(Self {
            db: Arc::new(db),
            path,
        })
    }

    /// Where the store's file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(fail(op))?
    }
}

fn write_batch(db: &Database, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
    const OP: &str = "write_batch";
    let tx = db.begin_write().map_err(fail(OP))?;
    let committed = {
        let nodes = tx.open_table(FLUSH_NODES).map_err(fail(OP))?;
        nodes.get(node).map_err(fail(OP))?.map_or(0, |g| g.value())
    };
    let cutoff = tx
        .open_table(META)
        .map_err(fail(OP))?
        .get(RETENTION_CUTOFF)
        .map_err(fail(OP))?
        .map_or(i64::MIN, |g| g.value());
    // Rows at or below the node's mark are stored already (a replay after a crash); rows
    // older than the retention cutoff would be dropped at once, so they are not stored (the
    // ledger still records them as handled).
    let new: Vec<&StoredEvent> = batch.events.iter().filter(|r| r.seq > committed).collect();
    let (Some(first), Some(last)) = (new.first(), new.iter().map(|r| r.seq).max()) else {
        tx.abort().map_err(fail(OP))?;
        return Ok(WriteOutcome::AlreadyWritten);
    };
    let fresh: Vec<&StoredEvent> = new
        .iter()
        .copied()
        .filter(|r| r.event.ts >= cutoff)
        .collect();
    {
        let mut events = tx.open_table(EVENTS).map_err(fail(OP))?;
        let mut ids = tx.open_table(EVENT_IDS).map_err(fail(OP))?;
        let mut tenants = tx.open_table(TENANTS).map_err(fail(OP))?;
        let mut buf = Vec::with_capacity(512);
        let mut last_tenant: Option<&str> = None;
        for r in &fresh {
            let e = &r.event;
            buf.clear();
            let bytes = postcard::to_extend(&RowValue::of(r), std::mem::take(&mut buf))
                .map_err(fail(OP))?;
            events
                .insert((e.tenant.as_str(), e.ts, r.seq, node), bytes.as_slice())
                .map_err(fail(OP))?;
            buf = bytes;
            ids.insert((e.tenant.as_str(), e.id.as_str(), node), (e.ts, r.seq))
                .map_err(fail(OP))?;
            if last_tenant != Some(e.tenant.as_str()) {
                tenants.insert(e.tenant.as_str(), ()).map_err(fail(OP))?;
                last_tenant = Some(&e.tenant);
            }
        }
        for width in plan::WIDTHS {
            let mut table = tx.open_table(rollup_table(width)).map_err(fail(OP))?;
            for ((tenant, stream, bucket), d) in plan::rollup_deltas(fresh.iter().copied(), width) {
                let key = (tenant.as_str(), bucket, stream.as_str());
                let mut cell = table
                    .get(key)
                    .map_err(fail(OP))?
                    .map(|g| cell_of(g.value()))
                    .unwrap_or_default();
                cell.merge(&d);
                table
                    .insert(
                        key,
                        (cell.count, cell.value_count, cell.sum, cell.min, cell.max),
                    )
                    .map_err(fail(OP))?;
            }
        }
        let mut ledger = tx.open_table(FLUSH_LEDGER).map_err(fail(OP))?;
        ledger
            .insert((node, first.seq), (last, new.len() as u64))
            .map_err(fail(OP))?;
        let mut nodes = tx.open_table(FLUSH_NODES).map_err(fail(OP))?;
        nodes.insert(node, last).map_err(fail(OP))?;
    }
    tx.commit().map_err(fail(OP))?;
    Ok(WriteOutcome::Written {
        rows: new.len() as u64,
    })
}

fn cell_of((count, value_count, sum, min, max): RollupCell) -> Cell {
    Cell {
        count,
        value_count,
        sum,
        min,
        max,
    }
}

fn aggregate(db: &Database, q: &AggregateQuery, wm: &HotWatermark) -> Result<PartialAggregate> {
    const OP: &str = "aggregate";
    let tx = db.begin_read().map_err(fail(OP))?;
    let committed = tx
        .open_table(FLUSH_NODES)
        .map_err(fail(OP))?
        .get(wm.node.as_str())
        .map_err(fail(OP))?
        .map_or(0, |g| g.value());
    let cutoff = retention_cutoff(&tx)?;
    let mut out = PartialAggregate::default();
    let Some(range) = plan::clip(q.range, cutoff) else {
        return Ok(out);
    };
    let events = tx.open_table(EVENTS).map_err(fail(OP))?;
    let tenant = q.tenant.as_str();
    for seg in plan::plan(q, range, committed <= wm.released_upto) {
        match seg.source {
            Source::Raw => {
                let lo: EventKey<'_> = (tenant, seg.range.from, 0, "");
                let hi: EventKey<'_> = (tenant, seg.range.to, 0, "");
                for item in events.range(lo..hi).map_err(fail(OP))? {
                    let (k, v) = item.map_err(fail(OP))?;
                    let (_, ts, seq, node) = k.value();
                    if !wm.includes(node, seq) {
                        continue;
                    }
                    let bytes = v.value();
                    let row = decode(bytes, "in aggregate")?;
                    if q.stream.as_deref().is_some_and(|s| s != row.stream) {
                        continue;
                    }
                    if let Some(f) = &q.filter
                        && row.attr(&f.name) != Some(f.value.as_str())
                    {
                        continue;
                    }
                    let group = match &q.group_by {
                        GroupBy::None => None,
                        GroupBy::Key => Some(row.key.to_owned()),
                        GroupBy::Attr(name) => row.attr(name).map(str::to_owned),
                    };
                    out.cells
                        .entry((q.bucket_start(ts), group))
                        .or_default()
                        .add(row.value);
                }
            }
            Source::Rollup(width) => {
                let table = tx.open_table(rollup_table(width)).map_err(fail(OP))?;
                let lo = (tenant, seg.range.from, "");
                let hi = (tenant, seg.range.to, "");
                for item in table.range(lo..hi).map_err(fail(OP))? {
                    let (k, v) = item.map_err(fail(OP))?;
                    let (_, bucket, stream) = k.value();
                    if q.stream.as_deref().is_some_and(|s| s != stream) {
                        continue;
                    }
                    out.cells
                        .entry((q.bucket_start(bucket), None))
                        .or_default()
                        .merge(&cell_of(v.value()));
                }
            }
        }
    }
    Ok(out)
}

fn retention_cutoff(tx: &redb::ReadTransaction) -> Result<i64> {
    Ok(tx
        .open_table(META)
        .map_err(fail("read meta"))?
        .get(RETENTION_CUTOFF)
        .map_err(fail("read meta"))?
        .map_or(i64::MIN, |g| g.value()))
}

fn get(db: &Database, tenant: &str, id: &str, wm: &HotWatermark) -> Result<Option<StoredEvent>> {
    const OP: &str = "get";
    let tx = db.begin_read().map_err(fail(OP))?;
    let cutoff = retention_cutoff(&tx)?;
    let ids = tx.open_table(EVENT_IDS).map_err(fail(OP))?;
    let events = tx.open_table(EVENTS).map_err(fail(OP))?;
    let lo = (tenant, id, "");
    let hi = (tenant, id, "\u{10FFFF}");
    let mut best: Option<(i64, u64, String)> = None;
    for item in ids.range(lo..=hi).map_err(fail(OP))? {
        let (k, v) = item.map_err(fail(OP))?;
        let (_, _, node) = k.value();
        let (ts, seq) = v.value();
        if ts >= cutoff
            && wm.includes(node, seq)
            && best.as_ref().is_none_or(|b| (ts, seq) < (b.0, b.1))
        {
            best = Some((ts, seq, node.to_owned()));
        }
    }
    let Some((ts, seq, node)) = best else {
        return Ok(None);
    };
    let Some(v) = events
        .get((tenant, ts, seq, node.as_str()))
        .map_err(fail(OP))?
    else {
        // Retention removes a row and its id entry in the same transaction; an id without
        // its row means the file is damaged.
        return Err(Error::Corrupt {
            tier: Tier::Warm,
            what: format!("embedded warm id index points at a missing row ({tenant}, {id})"),
        });
    };
    let bytes = v.value();
    Ok(Some(decode(bytes, "in get")?.into_stored(tenant, ts, seq)))
}

fn scan(db: &Database, req: &ScanRequest, wm: &HotWatermark) -> Result<ScanPage> {
    const OP: &str = "scan";
    let tx = db.begin_read().map_err(fail(OP))?;
    let cutoff = retention_cutoff(&tx)?;
    let mut page = ScanPage::default();
    let Some(range) = plan::clip(req.range, cutoff) else {
        return Ok(page);
    };
    let limit = req.limit.max(1);
    let tenant = req.tenant.as_str();
    let events = tx.open_table(EVENTS).map_err(fail(OP))?;
    let start: EventKey<'_> = (tenant, range.from, 0, "");
    let lower = match &req.after {
        Some(c) if (c.ts, c.seq) >= (range.from, 0) => {
            Bound::Excluded((tenant, c.ts, c.seq, c.node.as_str()))
        }
        _ => Bound::Included(start),
    };
    let upper = Bound::Excluded((tenant, range.to, 0, ""));
    for item in events
        .range::<EventKey<'_>>((lower, upper))
        .map_err(fail(OP))?
    {
        let (k, v) = item.map_err(fail(OP))?;
        let (_, ts, seq, node) = k.value();
        if !wm.includes(node, seq) {
            continue;
        }
        let bytes = v.value();
        let row = decode(bytes, "in scan")?;
        if req.stream.as_deref().is_some_and(|s| s != row.stream) {
            continue;
        }
        page.events.push(row.into_stored(tenant, ts, seq));
        if page.events.len() == limit {
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

fn drop_before(db: &Database, before: i64) -> Result<u64> {
    const OP: &str = "drop_before";
    // The cutoff goes first: from its commit on, readers clip their ranges to it, so rows
    // still being deleted below are already invisible.
    let tenants: Vec<String> = {
        let tx = db.begin_write().map_err(fail(OP))?;
        {
            let mut meta = tx.open_table(META).map_err(fail(OP))?;
            let old = meta
                .get(RETENTION_CUTOFF)
                .map_err(fail(OP))?
                .map_or(i64::MIN, |g| g.value());
            meta.insert(RETENTION_CUTOFF, old.max(before))
                .map_err(fail(OP))?;
        }
        let names = {
            let t = tx.open_table(TENANTS).map_err(fail(OP))?;
            let mut names = Vec::new();
            for item in t.iter().map_err(fail(OP))? {
                names.push(item.map_err(fail(OP))?.0.value().to_owned());
            }
            names
        };
        tx.commit().map_err(fail(OP))?;
        names
    };
    let mut removed = 0u64;
    for tenant in &tenants {
        let tenant = tenant.as_str();
        loop {
            let tx = db.begin_write().map_err(fail(OP))?;
            let n = {
                let mut events = tx.open_table(EVENTS).map_err(fail(OP))?;
                let mut ids = tx.open_table(EVENT_IDS).map_err(fail(OP))?;
                let lo: EventKey<'_> = (tenant, i64::MIN, 0, "");
                let hi: EventKey<'_> = (tenant, before, 0, "");
                let mut doomed: Vec<(i64, u64, String, String)> = Vec::new();
                for item in events
                    .range(lo..hi)
                    .map_err(fail(OP))?
                    .take(RETENTION_CHUNK)
                {
                    let (k, v) = item.map_err(fail(OP))?;
                    let (_, ts, seq, node) = k.value();
                    let bytes = v.value();
                    let id = decode(bytes, "in retention")?.id.to_owned();
                    doomed.push((ts, seq, node.to_owned(), id));
                }
                for (ts, seq, node, id) in &doomed {
                    events
                        .remove((tenant, *ts, *seq, node.as_str()))
                        .map_err(fail(OP))?;
                    ids.remove((tenant, id.as_str(), node.as_str()))
                        .map_err(fail(OP))?;
                }
                if doomed.len() < RETENTION_CHUNK {
                    // Last chunk of this tenant: drop its rollup buckets below the cutoff
                    // too (they are never read, this only reclaims space).
                    for width in plan::WIDTHS {
                        let mut t = tx.open_table(rollup_table(width)).map_err(fail(OP))?;
                        let lo = (tenant, i64::MIN, "");
                        let hi = (tenant, plan::floor_to(before, width), "");
                        t.retain_in(lo..hi, |_, _| false).map_err(fail(OP))?;
                    }
                }
                doomed.len()
            };
            tx.commit().map_err(fail(OP))?;
            removed += n as u64;
            if n < RETENTION_CHUNK {
                break;
            }
        }
    }
    Ok(removed)
}

#[async_trait]
impl WarmTier for EmbeddedWarm {
    fn mode(&self) -> WarmMode {
        WarmMode::Embedded
    }

    #[instrument(skip_all, fields(node = %node, rows = batch.events.len()))]
    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        let node = node.to_owned();
        let batch = batch.clone();
        self.blocking("write_batch", move |db| write_batch(db, &node, &batch))
            .await
    }

    async fn committed_upto(&self, node: &str) -> Result<u64> {
        let node = node.to_owned();
        self.blocking("committed_upto", move |db| {
            let tx = db.begin_read().map_err(fail("committed_upto"))?;
            let t = tx.open_table(FLUSH_NODES).map_err(fail("committed_upto"))?;
            Ok(t.get(node.as_str())
                .map_err(fail("committed_upto"))?
                .map_or(0, |g| g.value()))
        })
        .await
    }

    #[instrument(skip_all)]
    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        let q = query.clone();
        let wm = watermark.clone();
        self.blocking("aggregate", move |db| aggregate(db, &q, &wm))
            .await
    }

    #[instrument(skip_all)]
    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> Result<Option<StoredEvent>> {
        let (tenant, id, wm) = (tenant.to_owned(), id.to_owned(), watermark.clone());
        self.blocking("get", move |db| get(db, &tenant, &id, &wm))
            .await
    }

    #[instrument(skip_all)]
    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        let (tenant, ids) = (tenant.to_owned(), ids.to_vec());
        // One blocking call for the whole batch rather than one per id.
        self.blocking("existing_ids", move |db| {
            let everything = HotWatermark::everything("");
            let mut found = HashMap::new();
            for id in ids {
                if let Some(e) = get(db, &tenant, &id, &everything)? {
                    found.insert(id, e.seq);
                }
            }
            Ok(found)
        })
        .await
    }

    #[instrument(skip_all)]
    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage> {
        let (req, wm) = (request.clone(), watermark.clone());
        self.blocking("scan", move |db| scan(db, &req, &wm)).await
    }

    #[instrument(skip_all)]
    async fn drop_before(&self, before: i64) -> Result<u64> {
        self.blocking("drop_before", move |db| drop_before(db, before))
            .await
    }

    async fn health(&self) -> Result<()> {
        self.blocking("health", |db| {
            db.begin_read().map_err(fail("health"))?;
            Ok(())
        })
        .await
    }
}
