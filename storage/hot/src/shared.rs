//! What the store's handle, its reads and the writer thread share, and the read paths.
//!
//! Reads follow one rule that makes them consistent with release: the row list and
//! `released_upto` are taken under the index's read lock, and the redb read transaction any
//! cache miss will be served from is begun *under that same lock*. The writer drops released
//! rows from the index (under the write lock) before it commits their deletion, so a
//! transaction begun while a row was still in the index always still sees that row. Appends
//! go the other way round (durable commit first, index second), so a row in the index is
//! always visible to a transaction begun after it got there.

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::{
        Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, Ordering},
    },
};

use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase};
use strata_core::{
    Result,
    hot::{FlushBatch, HotPartial, HotStats, SourceOffset},
};
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use crate::{
    codec::RowView,
    error::{corrupt, corrupt_row, shutting_down, storage},
    metrics as m,
    segment::{Segment, SegmentCache, SegmentKey, build_segments},
    state::{State, id_hash, window_of},
    tables::{LOG, OFFSETS},
};

/// State shared by the handle, blocking read tasks and the writer thread.
pub(crate) struct Shared {
    /// The in-memory index.
    state: RwLock<State>,
    /// Decoded window segments.
    pub(crate) cache: SegmentCache,
    /// The database for reads; `None` once shut down, so the file closes.
    db: RwLock<Option<Arc<Database>>>,
    /// Set by shutdown: appends are refused from then on.
    pub(crate) closing: AtomicBool,
    /// Seed of the id hashes (random per open).
    pub(crate) seed: u64,
    /// Window width, micros.
    pub(crate) window: i64,
    /// Disk budget, bytes.
    pub(crate) disk_budget: u64,
    /// Memory budget, bytes.
    pub(crate) memory_budget: u64,
    /// The share of the memory budget the index may use.
    pub(crate) index_budget: u64,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("window", &self.window)
            .field("disk_budget", &self.disk_budget)
            .field("memory_budget", &self.memory_budget)
            .finish_non_exhaustive()
    }
}

/// Parameters of [`Shared::new`].
#[derive(Debug)]
pub(crate) struct SharedParts {
    pub(crate) state: State,
    pub(crate) cache: SegmentCache,
    pub(crate) db: Arc<Database>,
    pub(crate) seed: u64,
    pub(crate) window: i64,
    pub(crate) disk_budget: u64,
    pub(crate) memory_budget: u64,
    pub(crate) index_budget: u64,
}

/// Segments a read visits, with the snapshot they were planned at.
struct SegmentPlan {
    released_upto: u64,
    tenant: Option<Arc<str>>,
    refs: Vec<(u64, i64)>,
}

impl Shared {
    pub(crate) fn new(p: SharedParts) -> Self {
        Self {
            state: RwLock::new(p.state),
            cache: p.cache,
            db: RwLock::new(Some(p.db)),
            closing: AtomicBool::new(false),
            seed: p.seed,
            window: p.window,
            disk_budget: p.disk_budget,
            memory_budget: p.memory_budget,
            index_budget: p.index_budget,
        }
    }

    // A panic while holding the lock cannot leave the index half-updated in a way that
    // matters more than refusing all further reads would, so poisoning is ignored.
    pub(crate) fn state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn state_mut(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn db(&self) -> Result<Arc<Database>> {
        self.db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(shutting_down)
    }

    /// Forgets the database so the file closes once the last reader is done.
    pub(crate) fn close_db(&self) {
        *self.db.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub(crate) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Runs `plan` under the index's read lock and, if `needs_txn` says so, begins the read
    /// transaction under the same lock (see the module docs for why).
    fn snapshot<T>(
        &self,
        plan: impl FnOnce(&State) -> T,
        needs_txn: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Option<ReadTransaction>)> {
        let db = self.db()?;
        let state = self.state();
        let planned = plan(&state);
        let txn = if needs_txn(&planned) {
            Some(db.begin_read().map_err(storage("begin read"))?)
        } else {
            None
        };
        drop(state);
        Ok((planned, txn))
    }

    /// Current gauges.
    pub(crate) fn stats(&self) -> HotStats {
        // Let moka apply pending evictions so the reported size is the bounded one.
        self.cache.run_pending_tasks();
        let cache_bytes = self.cache.weighted_size();
        let s = self.state();
        HotStats {
            events: s.unreleased_events(),
            disk_bytes: s.disk_bytes,
            disk_budget: self.disk_budget,
            memory_bytes: s.index_bytes + cache_bytes,
            memory_budget: self.memory_budget,
            last_seq: s.last_seq(),
            released_upto: s.released_upto,
        }
    }

    /// Publishes the gauges.
    pub(crate) fn record_gauges(&self) {
        let (events, disk, index) = {
            let s = self.state();
            (s.unreleased_events(), s.disk_bytes, s.index_bytes)
        };
        ::metrics::gauge!(m::EVENTS).set(events as f64);
        ::metrics::gauge!(m::DISK_BYTES).set(disk as f64);
        ::metrics::gauge!(m::MEMORY_BYTES).set((index + self.cache.weighted_size()) as f64);
    }

    /// The (row, window) pairs of `tenant` whose windows overlap `range`.
    fn plan_segments(&self, s: &State, tenant: &str, range: TimeRange) -> SegmentPlan {
        let mut plan = SegmentPlan {
            released_upto: s.released_upto,
            tenant: None,
            refs: Vec::new(),
        };
        if range.from >= range.to {
            return plan;
        }
        if let Some((t, windows)) = s.windows.get_key_value(tenant) {
            plan.tenant = Some(Arc::clone(t));
            for (window, rows) in windows.range(window_of(range.from, self.window)..range.to) {
                plan.refs.extend(rows.iter().map(|row| (*row, *window)));
            }
        }
        plan
    }

    /// The segments of `plan`, from the cache or, on a miss, decoded from `txn`.
    fn segments(
        &self,
        plan: &SegmentPlan,
        txn: Option<&ReadTransaction>,
    ) -> Result<Vec<Arc<Segment>>> {
        let Some(tenant) = &plan.tenant else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(plan.refs.len());
        let mut loaded: HashMap<u64, Vec<(SegmentKey, Arc<Segment>)>> = HashMap::new();
        let mut log = None;
        let (mut hits, mut misses) = (0u64, 0u64);
        for &(row, window) in &plan.refs {
            let key = SegmentKey {
                row,
                tenant: Arc::clone(tenant),
                window,
            };
            if let Some(segment) = self.cache.get(&key) {
                hits += 1;
                out.push(segment);
                continue;
            }
            misses += 1;
            if let Entry::Vacant(slot) = loaded.entry(row) {
                let txn = txn.ok_or_else(|| corrupt(row, "read without a transaction"))?;
                let segments = self.load_row(txn, &mut log, row)?;
                for (k, s) in &segments {
                    self.cache.insert(k.clone(), Arc::clone(s));
                }
                slot.insert(segments);
            }
            let segment = loaded
                .get(&row)
                .and_then(|segments| segments.iter().find(|(k, _)| *k == key))
                .map(|(_, s)| Arc::clone(s))
                .ok_or_else(|| {
                    corrupt(
                        row,
                        format!("holds no events of tenant {tenant} in window {window}"),
                    )
                })?;
            out.push(segment);
        }
        ::metrics::counter!(m::CACHE_HITS).increment(hits);
        ::metrics::counter!(m::CACHE_MISSES).increment(misses);
        Ok(out)
    }

    /// Decodes one row into its segments.
    fn load_row(
        &self,
        txn: &ReadTransaction,
        log: &mut Option<ReadOnlyTable<u64, &'static [u8]>>,
        row: u64,
    ) -> Result<Vec<(SegmentKey, Arc<Segment>)>> {
        let events = read_row(txn, log, row)?;
        Ok(build_segments(row, events, self.window))
    }

    /// Blocking body of `HotTier::aggregate`.
    pub(crate) fn aggregate(&self, q: &AggregateQuery) -> Result<HotPartial> {
        let (plan, txn) = self.snapshot(
            |s| self.plan_segments(s, &q.tenant, q.range),
            |p| !p.refs.is_empty(),
        )?;
        let mut partial = PartialAggregate::default();
        for segment in self.segments(&plan, txn.as_ref())? {
            for e in segment.in_range(q.range.from, q.range.to) {
                if e.seq > plan.released_upto {
                    partial.add(q, &e.event);
                }
            }
        }
        Ok(HotPartial {
            partial,
            released_upto: plan.released_upto,
        })
    }

    /// Blocking body of `HotTier::scan`.
    pub(crate) fn scan(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> Result<Vec<StoredEvent>> {
        let (plan, txn) = self.snapshot(
            |s| self.plan_segments(s, tenant, range),
            |p| !p.refs.is_empty(),
        )?;
        let mut out = Vec::new();
        for segment in self.segments(&plan, txn.as_ref())? {
            out.extend(
                segment
                    .in_range(range.from, range.to)
                    .iter()
                    .filter(|e| {
                        e.seq > plan.released_upto && stream.is_none_or(|s| s == e.event.stream)
                    })
                    .cloned(),
            );
        }
        out.sort_unstable_by_key(|e| (e.event.ts, e.seq));
        Ok(out)
    }

    /// Blocking body of `HotTier::get`.
    pub(crate) fn get(&self, tenant: &str, id: &str) -> Result<Option<StoredEvent>> {
        let h = id_hash(self.seed, tenant, id, &mut Vec::new());
        let (found, txn) = self.snapshot(
            |s| {
                let seq = *s.ids.get(&h)?;
                if seq <= s.released_upto {
                    return None;
                }
                let (row, meta) = s.row_of(seq)?;
                let windows: Vec<i64> = meta
                    .segments
                    .iter()
                    .filter(|(t, _)| &**t == tenant)
                    .map(|(_, w)| *w)
                    .collect();
                Some((seq, row, windows))
            },
            Option::is_some,
        )?;
        let Some((seq, row, windows)) = found else {
            return Ok(None);
        };
        let is_it = |e: &StoredEvent| e.event.tenant == tenant && e.event.id == id;
        let tenant_arc: Arc<str> = Arc::from(tenant);
        for window in windows {
            let key = SegmentKey {
                row,
                tenant: Arc::clone(&tenant_arc),
                window,
            };
            if let Some(segment) = self.cache.get(&key) {
                ::metrics::counter!(m::CACHE_HITS).increment(1);
                if let Some(e) = segment.events.iter().find(|e| e.seq == seq) {
                    return Ok(is_it(e).then(|| e.clone()));
                }
            }
        }
        ::metrics::counter!(m::CACHE_MISSES).increment(1);
        let txn = txn.ok_or_else(|| corrupt(row, "read without a transaction"))?;
        let log = txn.open_table(LOG).map_err(storage("open log"))?;
        let guard = log
            .get(row)
            .map_err(storage("read log"))?
            .ok_or_else(|| corrupt(row, "missing from the log"))?;
        let view = RowView::parse(guard.value()).map_err(corrupt_row(row))?;
        let index = usize::try_from(seq - row).map_err(|e| corrupt(row, e))?;
        let stored = StoredEvent {
            event: view.event(index).map_err(corrupt_row(row))?,
            ingest_ts: view.ingest_ts,
            seq,
        };
        // The hash matched; the exact comparison rules out a collision.
        Ok(is_it(&stored).then_some(stored))
    }

    /// Blocking body of `HotTier::pending_flush`.
    pub(crate) fn pending_flush(
        &self,
        max_events: usize,
        ingested_before: i64,
    ) -> Result<Option<FlushBatch>> {
        let ((released, rows), txn) = self.snapshot(
            |s| {
                let mut rows = Vec::new();
                let mut total = 0u64;
                // Commit times never go backwards, so the first row too young ends the batch.
                for (key, meta) in &s.rows {
                    if meta.ingest_ts >= ingested_before {
                        break;
                    }
                    rows.push(*key);
                    total += meta.last_seq(*key) - s.released_upto.max(*key - 1);
                    if total >= max_events as u64 {
                        break;
                    }
                }
                (s.released_upto, rows)
            },
            |(_, rows)| !rows.is_empty(),
        )?;
        let Some(txn) = txn else {
            return Ok(None);
        };
        let mut log = None;
        let mut events = Vec::new();
        for row in rows {
            events.extend(
                read_row(&txn, &mut log, row)?
                    .into_iter()
                    .filter(|e| e.seq > released),
            );
        }
        Ok(match (events.first(), events.last()) {
            (Some(first), Some(last)) => Some(FlushBatch {
                first_seq: first.seq,
                last_seq: last.seq,
                events,
            }),
            _ => None,
        })
    }

    /// Blocking body of `HotTier::source_offsets`.
    pub(crate) fn source_offsets(&self, source: &str) -> Result<Vec<SourceOffset>> {
        let txn = self.db()?.begin_read().map_err(storage("begin read"))?;
        let table = txn.open_table(OFFSETS).map_err(storage("open offsets"))?;
        let mut out = Vec::new();
        for item in table
            .range((source, "", i32::MIN)..)
            .map_err(storage("read offsets"))?
        {
            let (k, v) = item.map_err(storage("read offsets"))?;
            let (s, topic, partition) = k.value();
            if s != source {
                break;
            }
            out.push(SourceOffset {
                source: s.to_owned(),
                topic: topic.to_owned(),
                partition,
                next_offset: v.value(),
            });
        }
        Ok(out)
    }
}

/// Reads and fully decodes one row, opening the log table on first use.
fn read_row(
    txn: &ReadTransaction,
    log: &mut Option<ReadOnlyTable<u64, &'static [u8]>>,
    row: u64,
) -> Result<Vec<StoredEvent>> {
    if log.is_none() {
        *log = Some(txn.open_table(LOG).map_err(storage("open log"))?);
    }
    let Some(table) = log.as_ref() else {
        return Err(corrupt(row, "log table not open"));
    };
    let guard = table
        .get(row)
        .map_err(storage("read log"))?
        .ok_or_else(|| corrupt(row, "missing from the log"))?;
    let view = RowView::parse(guard.value()).map_err(corrupt_row(row))?;
    let events = view.events().map_err(corrupt_row(row))?;
    Ok(events
        .into_iter()
        .zip(row..)
        .map(|(event, seq)| StoredEvent {
            event,
            ingest_ts: view.ingest_ts,
            seq,
        })
        .collect())
}
