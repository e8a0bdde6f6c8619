//! The query-result cache (cache-aside) for the closed part of aggregate queries.
//!
//! Entries hold [`PartialAggregate`]s of one chunk (see [`crate::planner`]), not finished
//! values, so one entry serves count, sum, min, max and avg alike (the aggregation is left
//! out of the key for that reason) and an average is merged from sums and counts, never
//! averaged twice. The key is the normalised query shape: tenant, stream, grouping, filter
//! and bucket width, plus the chunk's start.
//!
//! **Versions.** Each `(tenant, UTC day)` has a version, and so has each day for all tenants
//! at once. A write that lands in a closed bucket (a late event, an event that reached the
//! hot tier just as its bucket closed) bumps its `(tenant, day)` after it is durable; tier
//! moves bump the days they touched (they never change answers, so that is belt and braces).
//! An entry records the versions of its days as they were *before* its data was read, and is
//! served only while they all still match: a bump after the snapshot makes it stale, and a
//! bump before it means the read already saw the write. Unrelated entries survive.
//!
//! The version map is bounded by entries. Versions are drawn from one counter that only
//! grows, and a day without a version gets a fresh one, so a day whose version was evicted
//! comes back with a number no entry recorded: its entries read as stale, never as valid.
//!
//! Warm retention drops rows of old days; the cache records the highest retention cutoff
//! and an epoch, and an entry made before the latest drop is stale when its chunk starts
//! below that cutoff.
//!
//! The cache is local to the node: a late event another replica writes does not bump this
//! node's versions, so deployments with several replicas should set a TTL.
//!
//! **Empty chunks** get no entry of their own: a query over years of nothing would otherwise
//! fill the cache with entries that hold no cell and evict other tenants' work. Instead each
//! maximal run of empty chunks a query computed is remembered as one small [`EmptyRun`]
//! (its bounds and the version clock as it was before the query read the tiers), whatever
//! its length. A run answers for a chunk only while every version of that chunk's days is
//! older than the run's clock: any later bump, and any version forgotten and drawn afresh,
//! is newer. Runs are bounded in number (a small share of the byte budget, oldest first
//! out); a chunk no entry and no run answers for is simply read live.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::sync::Cache;
use strata_core::Tier;
use strata_types::{
    AggregateQuery, AttrFilter, GroupBy, PartialAggregate, TimeRange,
    time::{day_of, duration_micros},
};

use crate::metrics_names as m;

/// Counters and gauges of the query cache, as `GET /v1/cache/stats` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Cached chunks; a run of empty chunks (kept as one small marker) counts every chunk
    /// it answers for.
    pub entries: u64,
    /// Approximate bytes they hold.
    pub bytes: u64,
    /// The byte budget (0: the cache is off).
    pub capacity_bytes: u64,
    /// Queries answered entirely from the cache.
    pub hits: u64,
    /// Queries computed entirely through the tiers.
    pub misses: u64,
    /// Queries whose closed part came (partly) from the cache and the rest live.
    pub partial: u64,
    /// Entries evicted for size or age.
    pub evictions: u64,
}

/// Which tiers contributed to a piece of an answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TierSet(u8);

impl TierSet {
    pub(crate) fn add(&mut self, tier: Tier) {
        self.0 |= Self::bit(tier);
    }

    pub(crate) fn union(&mut self, other: TierSet) {
        self.0 |= other.0;
    }

    pub(crate) fn contains(&self, tier: Tier) -> bool {
        self.0 & Self::bit(tier) != 0
    }

    /// The tiers in hot, warm, cold order.
    pub(crate) fn to_vec(self) -> Vec<Tier> {
        [Tier::Hot, Tier::Warm, Tier::Cold]
            .into_iter()
            .filter(|t| self.contains(*t))
            .collect()
    }

    fn bit(tier: Tier) -> u8 {
        match tier {
            Tier::Hot => 1,
            Tier::Warm => 2,
            Tier::Cold => 4,
        }
    }
}

/// A query's shape: everything that selects and groups its cells except the time range.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Shape {
    tenant: String,
    stream: Option<String>,
    group_by: GroupBy,
    filter: Option<AttrFilter>,
    bucket: i64,
}

impl Shape {
    pub(crate) fn of(q: &AggregateQuery) -> Self {
        Self {
            tenant: q.tenant.clone(),
            stream: q.stream.clone(),
            group_by: q.group_by.clone(),
            filter: q.filter.clone(),
            bucket: q.bucket,
        }
    }

    fn approx_size(&self) -> usize {
        let group = match &self.group_by {
            GroupBy::Attr(a) => a.len(),
            _ => 0,
        };
        std::mem::size_of::<Self>()
            + self.tenant.len()
            + self.stream.as_ref().map_or(0, String::len)
            + group
            + self
                .filter
                .as_ref()
                .map_or(0, |f| f.name.len() + f.value.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChunkKey {
    shape: Arc<Shape>,
    start: i64,
}

/// Versions of one day: the tenant's and the all-tenants one.
type DayVersion = (u64, u64);

/// One cached chunk.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) partial: PartialAggregate,
    pub(crate) tiers: TierSet,
    /// Versions of the chunk's days, first day first.
    days: Vec<DayVersion>,
    generation: u64,
    retention_epoch: u64,
}

impl Entry {
    fn approx_size(&self, key: &ChunkKey) -> u32 {
        // Per cell: the BTreeMap slot (key, cell, node overhead) plus the group's bytes.
        const CELL: usize = 48 + 40 + 32;
        let cells: usize = self
            .partial
            .cells
            .keys()
            .map(|(_, g)| CELL + g.as_ref().map_or(0, String::len))
            .sum();
        let total = 128 + key.shape.approx_size() + cells + self.days.len() * 16;
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// What the cache knows of a chunk.
#[derive(Debug)]
pub(crate) enum Cached {
    /// The chunk's cells.
    Chunk(Arc<Entry>),
    /// The chunk holds no cell; the tiers that were read to learn that.
    Empty(TierSet),
}

/// Chunks `[start, end)` of one shape that held no cell when read (see the module docs).
#[derive(Debug, Clone)]
struct EmptyRun {
    end: i64,
    tiers: TierSet,
    /// The version clock before the run was read: versions below it are older than the read.
    clock: u64,
    generation: u64,
    retention_epoch: u64,
    made: Instant,
}

/// Accounted size of one run (its map slot, the run and its place in the eviction queue).
const EMPTY_RUN_BYTES: u64 = 160;
/// The share of the byte budget empty runs may take (1/16th).
const EMPTY_RUN_SHARE: u64 = 16;

/// The empty runs, per shape by start, with their insertion order for eviction.
#[derive(Debug, Default)]
struct EmptyRuns {
    by_shape: HashMap<Arc<Shape>, BTreeMap<i64, EmptyRun>>,
    /// Oldest first; may name runs already replaced or dropped (skipped when popped).
    order: VecDeque<(Arc<Shape>, i64)>,
    count: usize,
}

impl EmptyRuns {
    /// Chunks the runs answer for.
    fn chunks(&self) -> u64 {
        self.by_shape
            .iter()
            .map(|(shape, runs)| {
                let width = crate::planner::chunk_width(shape.bucket);
                runs.iter()
                    .map(|(start, run)| u64::try_from((run.end - start) / width).unwrap_or(0))
                    .sum::<u64>()
            })
            .sum()
    }

    /// The run holding chunk `[start, start + width)` of `shape`.
    fn find(&self, shape: &Shape, start: i64, width: i64) -> Option<&EmptyRun> {
        let (_, run) = self.by_shape.get(shape)?.range(..=start).next_back()?;
        (start.saturating_add(width) <= run.end).then_some(run)
    }

    /// Remembers `[from, run.end)` as empty, replacing what overlapped it (the parts of
    /// older runs outside it stay); keeps at most `max` runs.
    fn insert(&mut self, shape: &Arc<Shape>, from: i64, run: EmptyRun, max: usize) {
        let to = run.end;
        let runs = self.by_shape.entry(Arc::clone(shape)).or_default();
        // Runs never overlap, so only the one starting before `from` can reach into it.
        let first = runs
            .range(..from)
            .next_back()
            .filter(|(_, r)| r.end > from)
            .map_or(from, |(s, _)| *s);
        let overlapping: Vec<i64> = runs.range(first..to).map(|(s, _)| *s).collect();
        let mut kept = Vec::new();
        for s in overlapping {
            let Some(old) = runs.remove(&s) else {
                continue;
            };
            self.count -= 1;
            if old.end > to {
                kept.push((to, old.clone()));
            }
            if s < from {
                kept.push((s, EmptyRun { end: from, ..old }));
            }
        }
        kept.push((from, run));
        for (start, run) in kept {
            runs.insert(start, run);
            self.count += 1;
            self.order.push_back((Arc::clone(shape), start));
        }
        while self.count > max {
            let Some((shape, start)) = self.order.pop_front() else {
                break;
            };
            if let Some(runs) = self.by_shape.get_mut(&shape) {
                if runs.remove(&start).is_some() {
                    self.count -= 1;
                }
                if runs.is_empty() {
                    self.by_shape.remove(&shape);
                }
            }
        }
        // Replaced runs leave stale names behind; keep the queue proportional to the runs.
        if self.order.len() > 2 * max.max(self.count) + 64 {
            let by_shape = &self.by_shape;
            self.order.retain(|(shape, start)| {
                by_shape.get(shape).is_some_and(|r| r.contains_key(start))
            });
        }
    }
}

/// The versions a query read before touching the tiers.
#[derive(Debug)]
pub(crate) struct Snapshot {
    first_day: i64,
    days: Vec<DayVersion>,
    /// The version clock after `days` were read: every version they hold is below it.
    clock: u64,
    generation: u64,
    retention_epoch: u64,
    retention_cutoff: i64,
}

impl Snapshot {
    fn days_of(&self, start: i64, width: i64) -> Option<&[DayVersion]> {
        let (a, b) = day_span(start, width);
        let lo = usize::try_from(a - self.first_day).ok()?;
        let hi = usize::try_from(b - self.first_day).ok()?;
        self.days.get(lo..=hi)
    }
}

fn day_span(start: i64, width: i64) -> (i64, i64) {
    (day_of(start), day_of(start.saturating_add(width) - 1))
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    partial: AtomicU64,
    evictions: AtomicU64,
}

/// How the query cache is sized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheLimits {
    pub(crate) capacity_bytes: u64,
    pub(crate) ttl: Option<Duration>,
    pub(crate) version_entries: u64,
    pub(crate) lateness: Duration,
}

/// The cache and its versions. See the module docs.
pub(crate) struct QueryCache {
    entries: Cache<ChunkKey, Arc<Entry>>,
    empty: Mutex<EmptyRuns>,
    max_empty_runs: usize,
    ttl: Option<Duration>,
    versions: Cache<(Arc<str>, i64), u64>,
    clock: AtomicU64,
    generation: AtomicU64,
    retention_epoch: AtomicU64,
    retention_cutoff: AtomicI64,
    counters: Arc<Counters>,
    capacity: u64,
    lateness: i64,
}

impl fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

/// The all-tenants key of the version map (tenant names are never empty).
const ALL_TENANTS: &str = "";

impl QueryCache {
    pub(crate) fn new(limits: &CacheLimits) -> Self {
        let counters = Arc::new(Counters::default());
        let evicted = Arc::clone(&counters);
        let mut builder = Cache::builder()
            .max_capacity(limits.capacity_bytes)
            .weigher(|k: &ChunkKey, v: &Arc<Entry>| v.approx_size(k))
            .eviction_listener(move |_k, _v, cause| {
                if cause.was_evicted() {
                    evicted.evictions.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!(m::QUERY_CACHE_EVICTIONS).increment(1);
                }
            });
        if let Some(ttl) = limits.ttl {
            builder = builder.time_to_live(ttl);
        }
        let max_empty_runs = limits.capacity_bytes / EMPTY_RUN_SHARE / EMPTY_RUN_BYTES;
        Self {
            entries: builder.build(),
            empty: Mutex::default(),
            max_empty_runs: usize::try_from(max_empty_runs.max(1)).unwrap_or(usize::MAX),
            ttl: limits.ttl,
            versions: Cache::new(limits.version_entries.max(1)),
            clock: AtomicU64::new(1),
            generation: AtomicU64::new(0),
            retention_epoch: AtomicU64::new(0),
            retention_cutoff: AtomicI64::new(i64::MIN),
            counters,
            capacity: limits.capacity_bytes,
            lateness: duration_micros(limits.lateness),
        }
    }

    /// Buckets ending at or before this (epoch micros) are closed.
    pub(crate) fn horizon(&self, now: i64) -> i64 {
        now.saturating_sub(self.lateness)
    }

    fn next(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn version(&self, tenant: &Arc<str>, day: i64) -> u64 {
        self.versions
            .get_with((Arc::clone(tenant), day), || self.next())
    }

    /// The versions of `tenant`'s days `first_day..=last_day`, read before the tiers are.
    pub(crate) fn snapshot(&self, tenant: &str, first_day: i64, last_day: i64) -> Snapshot {
        // Order matters: the generation and retention marks first, so a concurrent
        // invalidation is either seen here or makes the entries written later stale.
        let generation = self.generation.load(Ordering::SeqCst);
        let retention_epoch = self.retention_epoch.load(Ordering::SeqCst);
        let retention_cutoff = self.retention_cutoff.load(Ordering::SeqCst);
        let tenant: Arc<str> = tenant.into();
        let all: Arc<str> = ALL_TENANTS.into();
        let days = (first_day..=last_day)
            .map(|d| (self.version(&tenant, d), self.version(&all, d)))
            .collect();
        let clock = self.clock.load(Ordering::SeqCst);
        Snapshot {
            first_day,
            days,
            clock,
            generation,
            retention_epoch,
            retention_cutoff,
        }
    }

    /// The chunk of `shape` starting at `start`, if cached and still valid under `snap`.
    pub(crate) fn get(
        &self,
        shape: &Arc<Shape>,
        start: i64,
        width: i64,
        snap: &Snapshot,
    ) -> Option<Cached> {
        let key = ChunkKey {
            shape: Arc::clone(shape),
            start,
        };
        if let Some(entry) = self.entries.get(&key) {
            let fresh = entry.generation == snap.generation
                && (entry.retention_epoch == snap.retention_epoch
                    || start >= snap.retention_cutoff)
                && snap.days_of(start, width) == Some(entry.days.as_slice());
            if fresh {
                return Some(Cached::Chunk(entry));
            }
            self.entries.invalidate(&key);
        }
        let empty = self.empty.lock().unwrap_or_else(PoisonError::into_inner);
        let run = empty.find(shape, start, width)?;
        let fresh = run.generation == snap.generation
            && (run.retention_epoch == snap.retention_epoch || start >= snap.retention_cutoff)
            && self.ttl.is_none_or(|ttl| run.made.elapsed() < ttl)
            && snap
                .days_of(start, width)
                .is_some_and(|days| days.iter().all(|&(t, a)| t < run.clock && a < run.clock));
        fresh.then_some(Cached::Empty(run.tiers))
    }

    /// Remembers that the chunks `[from, to)` of `shape`, read after `snap` was taken, hold
    /// no cell: one small run, however many chunks it spans.
    pub(crate) fn insert_empty(
        &self,
        shape: &Arc<Shape>,
        from: i64,
        to: i64,
        tiers: TierSet,
        snap: &Snapshot,
    ) {
        if from >= to {
            return;
        }
        let run = EmptyRun {
            end: to,
            tiers,
            clock: snap.clock,
            generation: snap.generation,
            retention_epoch: snap.retention_epoch,
            made: Instant::now(),
        };
        self.empty
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(shape, from, run, self.max_empty_runs);
    }

    /// Caches the chunk of `shape` at `start`, computed after `snap` was taken.
    pub(crate) fn insert(
        &self,
        shape: &Arc<Shape>,
        start: i64,
        width: i64,
        partial: PartialAggregate,
        tiers: TierSet,
        snap: &Snapshot,
    ) {
        let Some(days) = snap.days_of(start, width) else {
            return;
        };
        let entry = Entry {
            partial,
            tiers,
            days: days.to_vec(),
            generation: snap.generation,
            retention_epoch: snap.retention_epoch,
        };
        self.entries.insert(
            ChunkKey {
                shape: Arc::clone(shape),
                start,
            },
            Arc::new(entry),
        );
    }

    /// Counts a query by how the cache served it.
    pub(crate) fn record(&self, status: crate::CacheStatus) {
        let (counter, metric) = match status {
            crate::CacheStatus::Hit => (&self.counters.hits, m::QUERY_CACHE_HITS),
            crate::CacheStatus::Miss => (&self.counters.misses, m::QUERY_CACHE_MISSES),
            crate::CacheStatus::Partial => (&self.counters.partial, m::QUERY_CACHE_PARTIAL),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric).increment(1);
        metrics::gauge!(m::QUERY_CACHE_BYTES).set(self.entries.weighted_size() as f64);
    }

    /// A write landed in `tenant`'s `day` (after it became durable).
    pub(crate) fn bump(&self, tenant: &str, day: i64) {
        self.versions.insert((tenant.into(), day), self.next());
    }

    /// Data of `tenant` (every tenant when `None`) in `range` moved between tiers or
    /// changed. Only days that reach into the closed region are bumped: later ones have no
    /// cached chunk. Very wide ranges invalidate everything instead of bumping day by day.
    pub(crate) fn note_change(&self, tenant: Option<&str>, range: TimeRange, now: i64) {
        let horizon = self.horizon(now);
        if range.from >= range.to || range.from >= horizon {
            return;
        }
        let first = day_of(range.from);
        let last = day_of(range.to.min(horizon) - 1);
        const MAX_DAYS: i64 = 1_000;
        if last - first >= MAX_DAYS {
            self.generation.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let tenant = tenant.unwrap_or(ALL_TENANTS);
        for day in first..=last {
            self.bump(tenant, day);
        }
    }

    /// Warm retention dropped every row before `cutoff`.
    pub(crate) fn note_retention(&self, cutoff: i64) {
        self.retention_cutoff.fetch_max(cutoff, Ordering::SeqCst);
        self.retention_epoch.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn stats(&self) -> CacheStats {
        self.entries.run_pending_tasks();
        let (runs, run_chunks) = {
            let empty = self.empty.lock().unwrap_or_else(PoisonError::into_inner);
            (empty.count as u64, empty.chunks())
        };
        CacheStats {
            entries: self.entries.entry_count() + run_chunks,
            bytes: self.entries.weighted_size() + runs * EMPTY_RUN_BYTES,
            capacity_bytes: self.capacity,
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            partial: self.counters.partial.load(Ordering::Relaxed),
            evictions: self.counters.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use strata_types::time::{DAY, HOUR, MINUTE};

    use super::*;

    fn cache() -> QueryCache {
        QueryCache::new(&CacheLimits {
            capacity_bytes: 1 << 20,
            ttl: None,
            version_entries: 1_000,
            lateness: Duration::from_secs(3_600),
        })
    }

    fn shape(tenant: &str) -> Arc<Shape> {
        Arc::new(Shape {
            tenant: tenant.into(),
            stream: None,
            group_by: GroupBy::None,
            filter: None,
            bucket: MINUTE,
        })
    }

    #[test]
    fn bumps_make_only_their_days_stale() {
        let c = cache();
        let width = HOUR;
        let (a, b) = (shape("a"), shape("b"));
        let snap_a = c.snapshot("a", 0, 2);
        let snap_b = c.snapshot("b", 0, 2);
        c.insert(
            &a,
            0,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap_a,
        );
        c.insert(
            &a,
            DAY,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap_a,
        );
        c.insert(
            &b,
            0,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap_b,
        );
        c.bump("a", 0);
        let snap_a = c.snapshot("a", 0, 2);
        let snap_b = c.snapshot("b", 0, 2);
        assert!(c.get(&a, 0, width, &snap_a).is_none(), "bumped day");
        assert!(c.get(&a, DAY, width, &snap_a).is_some(), "other day");
        assert!(c.get(&b, 0, width, &snap_b).is_some(), "other tenant");
        c.note_change(
            None,
            TimeRange {
                from: DAY,
                to: DAY + 1,
            },
            10 * DAY,
        );
        let snap_a = c.snapshot("a", 0, 2);
        assert!(c.get(&a, DAY, width, &snap_a).is_none(), "all tenants");
    }

    #[test]
    fn empty_runs_answer_for_their_chunks_until_a_bump() {
        let c = cache();
        let a = shape("a");
        let snap = c.snapshot("a", 0, 2);
        c.insert_empty(&a, 0, 2 * DAY, TierSet::default(), &snap);
        // Overwriting the middle keeps both ends of the older run.
        c.insert_empty(&a, 5 * HOUR, 7 * HOUR, TierSet::default(), &snap);
        // Three runs, answering for 48 hourly chunks (the shape's chunks are an hour).
        assert_eq!(c.stats().entries, 48);
        assert_eq!(c.stats().bytes, 3 * EMPTY_RUN_BYTES);
        let snap = c.snapshot("a", 0, 2);
        for h in [0, 4, 5, 6, 7, 30, 47] {
            assert!(
                matches!(c.get(&a, h * HOUR, HOUR, &snap), Some(Cached::Empty(_))),
                "hour {h}"
            );
        }
        assert!(c.get(&a, 2 * DAY, HOUR, &snap).is_none(), "past the run");
        assert!(
            c.get(&shape("b"), 0, HOUR, &snap).is_none(),
            "another shape"
        );
        c.bump("a", 1);
        let snap = c.snapshot("a", 0, 2);
        assert!(c.get(&a, 0, HOUR, &snap).is_some(), "other day");
        assert!(c.get(&a, DAY + HOUR, HOUR, &snap).is_none(), "bumped day");
        // A forgotten version is drawn afresh, hence newer than the run.
        c.versions.invalidate_all();
        c.versions.run_pending_tasks();
        let snap = c.snapshot("a", 0, 2);
        assert!(c.get(&a, 0, HOUR, &snap).is_none());
    }

    #[test]
    fn empty_runs_are_bounded_in_number() {
        let c = QueryCache::new(&CacheLimits {
            capacity_bytes: 16 * EMPTY_RUN_BYTES * 4,
            ttl: None,
            version_entries: 1_000,
            lateness: Duration::from_secs(3_600),
        });
        let a = shape("a");
        let snap = c.snapshot("a", 0, 0);
        for i in 0..100 {
            c.insert_empty(
                &a,
                2 * i * MINUTE,
                (2 * i + 1) * MINUTE,
                TierSet::default(),
                &snap,
            );
        }
        assert_eq!(c.stats().bytes, 4 * EMPTY_RUN_BYTES);
        // The newest survive.
        assert!(c.get(&a, 198 * MINUTE, MINUTE, &snap).is_some());
        assert!(c.get(&a, 0, MINUTE, &snap).is_none());
    }

    #[test]
    fn an_evicted_version_reads_as_stale() {
        let c = QueryCache::new(&CacheLimits {
            capacity_bytes: 1 << 20,
            ttl: None,
            version_entries: 1,
            lateness: Duration::from_secs(3_600),
        });
        let width = HOUR;
        let a = shape("a");
        let snap = c.snapshot("a", 0, 0);
        c.insert(
            &a,
            0,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap,
        );
        // Push the version of ("a", 0) out of the one-entry map.
        c.versions.invalidate_all();
        c.versions.run_pending_tasks();
        let snap = c.snapshot("a", 0, 0);
        assert!(c.get(&a, 0, width, &snap).is_none());
    }

    #[test]
    fn retention_makes_older_chunks_stale() {
        let c = cache();
        let width = HOUR;
        let a = shape("a");
        let snap = c.snapshot("a", 0, 1);
        c.insert(
            &a,
            0,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap,
        );
        c.insert(
            &a,
            DAY,
            width,
            PartialAggregate::default(),
            TierSet::default(),
            &snap,
        );
        c.note_retention(DAY);
        let snap = c.snapshot("a", 0, 1);
        assert!(c.get(&a, 0, width, &snap).is_none());
        assert!(c.get(&a, DAY, width, &snap).is_some());
    }

    #[test]
    fn open_days_are_not_bumped() {
        let c = cache();
        let now = 10 * DAY + 12 * HOUR;
        let before = c.version(&Arc::from("a"), 10);
        c.note_change(
            Some("a"),
            TimeRange {
                from: now - MINUTE,
                to: now,
            },
            now,
        );
        assert_eq!(c.version(&Arc::from("a"), 10), before);
        c.note_change(
            Some("a"),
            TimeRange {
                from: now - 2 * HOUR,
                to: now,
            },
            now,
        );
        assert_ne!(c.version(&Arc::from("a"), 10), before);
    }
}
