//! The store facade: write path and query path over the tiers.

use std::{
    collections::{BTreeMap, HashMap, HashSet, hash_map},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use strata_core::{
    Tier,
    cold::{
        ColdTier, DAY_MICROS, LivePartition, PartitionInfo, PartitionKey, Progress, VerifyReport,
    },
    hot::{AppendOutcome, AppendRequest, HotStats, HotTier},
    warm::{HotWatermark, WarmTier},
};
use strata_types::{
    AggregateQuery, Bucket, Event, Limits, PartialAggregate, Rejection, StoredEvent, TimeRange,
    decode::{BatchError, BodyFormat, DecodedBatch, decode_batch},
    time::{MICROS_PER_SEC, now_micros},
    validate::FieldError,
};

use crate::{
    Result,
    cache::{CacheLimits, CacheStats, QueryCache, Shape, TierSet},
    late::{LateWriter, RETENTION_SLACK},
    metrics_names as m,
    partition_lock::PartitionLocks,
    planner,
    release_gate::ReleaseGate,
};

/// How the store caches query results and places late events. Build the store with
/// [`Store::with_config`] before building its flusher and exporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Byte budget of the query-result cache (`--query-cache-size`); 0 turns it off.
    pub cache_capacity_bytes: u64,
    /// Cached chunks expire this long after they were computed (`--query-cache-ttl`);
    /// `None` keeps them until evicted or made stale. Set it when several replicas share
    /// warm and cold: a late event written by another replica does not bump this node's
    /// cache versions.
    pub cache_ttl: Option<Duration>,
    /// Most `(tenant, day)` versions remembered; a forgotten version makes the entries of
    /// that day stale, never wrong.
    pub cache_version_entries: u64,
    /// How long warm keeps rows (the flusher's `--warm-retention`). Late events older than
    /// that go to cold, or, without a cold tier, are rejected at validation (the effective
    /// `max_age` is tightened to it).
    pub warm_retention: Option<Duration>,
    /// Attempts of a late cold amendment that keeps losing the manifest race to exports
    /// and compactions before the request fails with a retryable error.
    pub late_amend_attempts: usize,
    /// Late events for archived days become cold amendments written by this node. `false`
    /// (a replica that does not run the exporter) writes them to warm instead, and the
    /// exporting replica amends the archive from there, so one node writes the archive.
    pub late_to_cold: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_capacity_bytes: 256 * 1024 * 1024,
            cache_ttl: None,
            cache_version_entries: 262_144,
            warm_retention: None,
            late_amend_attempts: 8,
            late_to_cold: true,
        }
    }
}

/// One event's result in a batch: stored (or a duplicate), or rejected for a reason only the
/// tiers know (no tier keeps its time any more).
type Slot = std::result::Result<AppendOutcome, FieldError>;

/// Events whose time is this close to the closed horizon when they reach the hot tier bump
/// the cache versions of their day: covers clock steps between validation and commit.
const CLOSE_SLACK: i64 = 60 * MICROS_PER_SEC;
/// Appends are expected to finish within this; one that takes longer (a stalled disk)
/// invalidates the whole cache rather than risk a stale entry.
const APPEND_WINDOW: i64 = 10 * 60 * MICROS_PER_SEC;

/// What an ingest request achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Events durable now or already stored (an idempotent retry counts as accepted).
    pub accepted: usize,
    /// How many of `accepted` were already stored (same tenant and id).
    pub duplicates: usize,
    /// Per-event reasons for the events that were not stored.
    pub rejected: Vec<Rejection>,
}

/// Whether a query's answer came from the result cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Entirely from the cache.
    Hit,
    /// Entirely computed.
    Miss,
    /// Closed buckets from the cache, open ones computed.
    Partial,
}

impl CacheStatus {
    /// The public name (`hit`, `miss`, `partial`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Partial => "partial",
        }
    }
}

/// A finished aggregate answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateAnswer {
    /// Non-empty buckets, ordered by start then group.
    pub buckets: Vec<Bucket>,
    /// Tiers that contributed.
    pub tiers: Vec<Tier>,
    /// Cache status.
    pub cache: CacheStatus,
}

/// The one store the APIs talk to.
///
/// Reads span the tiers exactly once: the hot tier answers first and reports up to which
/// sequence number it has released events to warm (read atomically with its answer); warm
/// is then asked for this node's rows up to that number only (and every row of other
/// nodes). An event the flusher committed to warm but hot has not released yet is therefore
/// counted from hot alone.
///
/// With a cold tier ([`Store::with_cold`]) the warm tier also answers which cold manifest
/// version of each partition is live ([`WarmTier::cold_partitions`]); the exporter changes
/// those pointers in the same warm transaction that drops the exported rows. The planner
/// reads the pointers before and after its warm read and retries when they moved, so the
/// warm rows and the cold versions it combines come from one consistent state: an exported
/// row is counted from warm or from cold, never both, never neither.
#[derive(Debug, Clone)]
pub struct Store {
    hot: Arc<dyn HotTier>,
    warm: Arc<dyn WarmTier>,
    cold: Option<Arc<dyn ColdTier>>,
    node: Arc<str>,
    /// What validation uses: the configured limits, with `max_age` tightened to warm
    /// retention when no cold tier could take older events.
    limits: Arc<Limits>,
    configured_limits: Arc<Limits>,
    gate: Arc<ReleaseGate>,
    config: Arc<StoreConfig>,
    cache: Option<Arc<QueryCache>>,
    late: Arc<LateWriter>,
    cold_locks: Arc<PartitionLocks>,
}

impl Store {
    /// A store over a hot tier and a warm tier, validating with `limits`. `node` is this
    /// node's id, the same one its flusher stamps on warm rows. The cache and late-event
    /// settings are [`StoreConfig::default`]; see [`Store::with_config`].
    pub fn new(
        hot: Arc<dyn HotTier>,
        warm: Arc<dyn WarmTier>,
        node: impl Into<String>,
        limits: Limits,
    ) -> Self {
        let node: Arc<str> = node.into().into();
        let limits = Arc::new(limits);
        let config = StoreConfig::default();
        Self {
            hot,
            warm,
            cold: None,
            cache: build_cache(&config, &limits),
            late: Arc::new(LateWriter::new(&node, config.warm_retention)),
            cold_locks: Arc::default(),
            node,
            limits: Arc::clone(&limits),
            configured_limits: limits,
            gate: Arc::default(),
            config: Arc::new(config),
        }
    }

    /// The same store with `config` for its query cache and late events. Call it before
    /// building the store's flusher and exporter (they share the cache and the late writer).
    pub fn with_config(mut self, config: StoreConfig) -> Self {
        self.cache = build_cache(&config, &self.configured_limits);
        self.late = Arc::new(LateWriter::new(&self.node, config.warm_retention));
        self.config = Arc::new(config);
        self.limits = self.effective_limits();
        self
    }

    /// The same store with a cold tier: queries, lookups and the archive API read it, and
    /// an [`crate::Exporter`] built from this store moves warm partitions to it.
    pub fn with_cold(mut self, cold: Arc<dyn ColdTier>) -> Self {
        self.cold = Some(cold);
        self.limits = self.effective_limits();
        self
    }

    /// The configured limits, with `max_age` tightened to what warm keeps when there is no
    /// cold tier: validation then rejects such events (on every protocol, and into the
    /// Kafka dead-letter topic) instead of the write path failing on them.
    fn effective_limits(&self) -> Arc<Limits> {
        let mut limits = (*self.configured_limits).clone();
        if (self.cold.is_none() || !self.config.late_to_cold)
            && let Some(keep) = self.config.warm_retention
        {
            let keep = keep.saturating_sub(RETENTION_SLACK * 2);
            limits.max_age = Some(limits.max_age.map_or(keep, |a| a.min(keep)));
        }
        Arc::new(limits)
    }

    /// The configuration.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The result cache, when on (for the flusher's and exporter's tier-move notes).
    pub(crate) fn query_cache(&self) -> Option<&Arc<QueryCache>> {
        self.cache.as_ref()
    }

    /// The per-partition locks every cold writer of this store takes (see
    /// [`crate::partition_lock`]).
    pub(crate) fn cold_locks(&self) -> &Arc<PartitionLocks> {
        &self.cold_locks
    }

    /// The late writer (the flusher tells it the warm retention).
    pub(crate) fn late_writer(&self) -> &Arc<LateWriter> {
        &self.late
    }

    /// Notes that data of `tenant` (every tenant when `None`) in `range` moved between
    /// tiers or changed outside the write path (flush and export commits, compactions,
    /// retention, repairs): cached chunks of the closed days it touched are recomputed.
    /// Cheap; days still open are skipped.
    pub fn note_tier_move(&self, tenant: Option<&str>, range: TimeRange) {
        if let Some(cache) = &self.cache {
            cache.note_change(tenant, range, now_micros());
        }
    }

    /// Query-cache counters and size.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache
            .as_ref()
            .map_or_else(CacheStats::default, |c| c.stats())
    }

    /// The cold tier, when configured.
    pub fn cold(&self) -> Option<&Arc<dyn ColdTier>> {
        self.cold.as_ref()
    }

    /// The gate the flusher takes around hot releases (see [`crate::release_gate`]).
    pub(crate) fn release_gate(&self) -> &Arc<ReleaseGate> {
        &self.gate
    }

    /// The warm tier (for the flusher and retention).
    pub fn warm(&self) -> &Arc<dyn WarmTier> {
        &self.warm
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    fn watermark(&self, released_upto: u64) -> HotWatermark {
        HotWatermark::new(&*self.node, released_upto)
    }

    /// The limits events and batches are validated against.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The hot tier (for the Kafka consumer and the flusher, which need its offsets and
    /// flush seams).
    pub fn hot(&self) -> &Arc<dyn HotTier> {
        &self.hot
    }

    /// Hot tier gauges.
    pub fn hot_stats(&self) -> HotStats {
        self.hot.stats()
    }

    /// Decodes, validates and durably stores a request body.
    pub async fn ingest_body(&self, body: &[u8], format: BodyFormat) -> Result<IngestReport> {
        let batch = decode_batch(body, format, &self.limits, now_micros()).inspect_err(|e| {
            metrics::counter!(m::INGEST_BATCHES_REFUSED, "reason" => batch_reason(e)).increment(1);
        })?;
        self.ingest(batch).await
    }

    /// Durably stores the valid events of a decoded batch; returns once they are durable.
    pub async fn ingest(&self, batch: DecodedBatch) -> Result<IngestReport> {
        let started = Instant::now();
        let DecodedBatch { events, rejected } = batch;
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "rejected")
            .increment(rejected.len() as u64);
        // The body position of each valid event: the positions no rejection took, in order.
        let rejected_at: HashSet<usize> = rejected.iter().map(|r| r.index).collect();
        let positions: Vec<usize> = (0..events.len() + rejected.len())
            .filter(|i| !rejected_at.contains(i))
            .collect();
        let mut report = IngestReport {
            rejected,
            ..IngestReport::default()
        };
        if events.is_empty() {
            return Ok(report);
        }
        let slots = self
            .append_slots(AppendRequest {
                events,
                offsets: Vec::new(),
            })
            .await
            .inspect_err(|e| {
                let reason = match e {
                    crate::Error::Tier(strata_core::Error::Full { .. }) => "full",
                    _ => "error",
                };
                metrics::counter!(m::INGEST_BATCHES_REFUSED, "reason" => reason).increment(1);
            })?;
        let mut refused = 0;
        for (slot, index) in slots.into_iter().zip(positions) {
            match slot {
                Ok(AppendOutcome::Stored { .. }) => report.accepted += 1,
                Ok(AppendOutcome::Duplicate { .. }) => {
                    report.accepted += 1;
                    report.duplicates += 1;
                }
                Err(e) => {
                    refused += 1;
                    report.rejected.push(e.at(index));
                }
            }
        }
        report.rejected.sort_by_key(|r| r.index);
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "rejected").increment(refused);
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "accepted")
            .increment((report.accepted - report.duplicates) as u64);
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "duplicate")
            .increment(report.duplicates as u64);
        metrics::histogram!(m::INGEST_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(report)
    }

    /// Durably appends validated events (and source offsets, for Kafka ingest) with
    /// `(tenant, id)` deduplicated across tiers: against hot's index, and, for events old
    /// enough to have been flushed, against warm and the cold archive (see
    /// [`crate::release_gate`]). Events older than `max_lateness` go straight to warm or
    /// cold (see [`crate::late`]). One outcome per event, in input order; late events get
    /// sequence numbers of the node's late writer.
    ///
    /// Fails when an event's time is kept by no tier (warm retention dropped it and there
    /// is no cold tier); validation with [`Store::limits`] rejects such events first.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>> {
        self.append_slots(request)
            .await?
            .into_iter()
            .enumerate()
            .map(|(i, slot)| {
                slot.map_err(|e| {
                    strata_core::Error::storage(
                        Tier::Warm,
                        "append",
                        format!("event {i}: {}: {}", e.field, e.reason),
                    )
                    .into()
                })
            })
            .collect()
    }

    async fn append_slots(&self, request: AppendRequest) -> Result<Vec<Slot>> {
        let lateness = micros(self.limits.max_lateness);
        let hot_floor = now_micros().saturating_sub(lateness);
        if request.events.iter().all(|e| e.ts >= hot_floor) {
            return Ok(self
                .append_live(request)
                .await?
                .into_iter()
                .map(Ok)
                .collect());
        }
        let AppendRequest { events, offsets } = request;
        let n = events.len();
        // A later event of the batch with the same (tenant, id) as an earlier one shares its
        // outcome as a duplicate, whichever path each would take.
        let mut first: HashMap<(String, String), usize> = HashMap::new();
        let mut alias: Vec<Option<usize>> = vec![None; n];
        let (mut late, mut late_at) = (Vec::new(), Vec::new());
        let (mut live, mut live_at) = (Vec::new(), Vec::new());
        for (i, e) in events.into_iter().enumerate() {
            match first.entry((e.tenant.clone(), e.id.clone())) {
                hash_map::Entry::Occupied(o) => alias[i] = Some(*o.get()),
                hash_map::Entry::Vacant(v) => {
                    v.insert(i);
                    if e.ts < hot_floor {
                        late_at.push(i);
                        late.push(e);
                    } else {
                        live_at.push(i);
                        live.push(e);
                    }
                }
            }
        }
        let mut slots: Vec<Option<Slot>> = vec![None; n];
        // Late events become durable in warm or cold before the hot append, which commits
        // the Kafka offsets with the live events. A crash in between makes Kafka redeliver
        // the batch; the late events are then found in warm or cold and answered as
        // duplicates, so nothing is stored twice.
        for (i, slot) in late_at.into_iter().zip(self.append_late(late).await?) {
            slots[i] = Some(slot);
        }
        if !live.is_empty() || !offsets.is_empty() {
            let outcomes = self
                .append_live(AppendRequest {
                    events: live,
                    offsets,
                })
                .await?;
            if outcomes.len() != live_at.len() {
                return Err(short_answer());
            }
            for (i, o) in live_at.into_iter().zip(outcomes) {
                slots[i] = Some(Ok(o));
            }
        }
        for i in 0..n {
            if let Some(j) = alias[i] {
                slots[i] = match &slots[j] {
                    Some(Ok(o)) => Some(Ok(AppendOutcome::Duplicate { seq: seq_of(o) })),
                    Some(Err(e)) => Some(Err(e.clone())),
                    None => None,
                };
            }
        }
        slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(short_answer)
    }

    /// Appends events young enough for the hot tier.
    async fn append_live(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>> {
        let before = now_micros();
        // Events that reach hot as their bucket closes (validated a moment ago, committed
        // now) may land in a chunk a query has just cached; their days get bumped once they
        // are durable.
        let closing_below = self
            .cache
            .as_ref()
            .map(|c| c.horizon(before) + CLOSE_SLACK + APPEND_WINDOW);
        let closing: Vec<(usize, String, i64)> = match closing_below {
            Some(below) => request
                .events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.ts < below)
                .map(|(i, e)| (i, e.tenant.clone(), e.ts))
                .collect(),
            None => Vec::new(),
        };
        let outcomes = self.append_hot(request).await?;
        if let Some(cache) = &self.cache {
            if now_micros().saturating_sub(before) > APPEND_WINDOW {
                cache.note_change(
                    None,
                    TimeRange {
                        from: i64::MIN,
                        to: i64::MAX,
                    },
                    now_micros(),
                );
            }
            for (i, tenant, ts) in closing {
                if matches!(outcomes.get(i), Some(AppendOutcome::Stored { .. })) {
                    cache.bump(&tenant, ts.div_euclid(DAY_MICROS));
                }
            }
        }
        Ok(outcomes)
    }

    /// The hot append with cross-tier deduplication of events old enough to have left hot.
    async fn append_hot(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>> {
        let Some(horizon) = self.gate.horizon(now_micros(), self.limits.max_future_skew) else {
            return Ok(self.hot.append(request).await?);
        };
        if request.events.iter().all(|e| e.ts > horizon) {
            return Ok(self.hot.append(request).await?);
        }
        let _gate = self.gate.shared().await;
        let old: Vec<&Event> = request.events.iter().filter(|e| e.ts <= horizon).collect();
        let (found, _) = self.find_in_warm_and_cold(&old).await?;
        if found.is_empty() {
            return Ok(self.hot.append(request).await?);
        }
        let AppendRequest { events, offsets } = request;
        let mut outcomes: Vec<Option<AppendOutcome>> = Vec::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        for e in events {
            match found.get(&(e.tenant.clone(), e.id.clone())) {
                Some(&seq) => outcomes.push(Some(AppendOutcome::Duplicate { seq })),
                None => {
                    outcomes.push(None);
                    fresh.push(e);
                }
            }
        }
        // Offsets are committed even when every event was a duplicate, so a consumer moves on.
        let mut stored = self
            .hot
            .append(AppendRequest {
                events: fresh,
                offsets,
            })
            .await?
            .into_iter();
        outcomes
            .into_iter()
            .map(|o| o.or_else(|| stored.next()))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(short_answer)
    }

    /// Which of `events` warm holds (in any state) or the live cold version of their
    /// partition holds, by `(tenant, id)`, and the live cold pointers of their partitions.
    /// Call it under the release gate.
    ///
    /// Warm is asked first, the cold pointers after: an export moves rows out of warm and
    /// makes its version live in one warm commit, so an event warm no longer had is in the
    /// version read afterwards. Cold lookups go partition by partition (each one's Parquet
    /// bloom filters on `id`), a few at a time; they only happen for partitions already
    /// archived, i.e. retries and replays of old events.
    async fn find_in_warm_and_cold(
        &self,
        events: &[&Event],
    ) -> Result<(
        HashMap<(String, String), u64>,
        HashMap<PartitionKey, LivePartition>,
    )> {
        let mut found = HashMap::new();
        if events.is_empty() {
            return Ok((found, HashMap::new()));
        }
        let mut by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
        for e in events {
            by_tenant.entry(&e.tenant).or_default().push(e.id.clone());
        }
        for (tenant, ids) in by_tenant {
            for (id, seq) in self.warm.existing_ids(tenant, &ids).await? {
                found.insert((tenant.to_owned(), id), seq);
            }
        }
        let Some(cold) = &self.cold else {
            return Ok((found, HashMap::new()));
        };
        let days: HashSet<(&str, i64)> = events
            .iter()
            .map(|e| (e.tenant.as_str(), e.ts.div_euclid(DAY_MICROS)))
            .collect();
        let mut pointers = HashMap::new();
        for (tenant, day) in days {
            let range = TimeRange {
                from: day * DAY_MICROS,
                to: (day + 1) * DAY_MICROS,
            };
            for live in self.warm.cold_partitions(Some(tenant), Some(range)).await? {
                pointers.insert(live.partition.clone(), live);
            }
        }
        // Owned lookups: the futures below must not borrow from `events` (the write path's
        // future has to stay `Send` for every caller lifetime).
        let lookups: Vec<(String, String, LivePartition)> = events
            .iter()
            .filter(|e| !found.contains_key(&(e.tenant.clone(), e.id.clone())))
            .filter_map(|e| {
                pointers
                    .get(&PartitionKey::of(&e.tenant, &e.stream, e.ts))
                    .map(|live| (e.tenant.clone(), e.id.clone(), live.clone()))
            })
            .collect();
        let hits: Vec<Option<((String, String), u64)>> = futures::stream::iter(lookups)
            .map(|(tenant, id, live)| {
                let cold = Arc::clone(cold);
                async move {
                    let got = cold.get(&tenant, &id, std::slice::from_ref(&live)).await?;
                    Ok::<_, strata_core::Error>(got.map(|s| ((tenant, id), s.seq)))
                }
            })
            .buffered(4)
            .try_collect()
            .await?;
        found.extend(hits.into_iter().flatten());
        Ok((found, pointers))
    }

    /// Writes events older than `max_lateness` to the tier owning their time; see
    /// [`crate::late`]. One slot per event, in order.
    async fn append_late(&self, events: Vec<Event>) -> Result<Vec<Slot>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut writer = self.late.lock().await;
        let (found, pointers) = {
            let _gate = self.gate.shared().await;
            // Hot, then warm, then cold: each move between tiers adds to the next tier
            // before it removes from the previous one, so an original moving while we look
            // is seen in the tier we ask later.
            let mut in_hot = HashMap::new();
            for e in &events {
                if let Some(s) = self.hot.get(&e.tenant, &e.id).await? {
                    in_hot.insert((e.tenant.clone(), e.id.clone()), s.seq);
                }
            }
            let rest: Vec<&Event> = events
                .iter()
                .filter(|e| !in_hot.contains_key(&(e.tenant.clone(), e.id.clone())))
                .collect();
            let (mut found, pointers) = self.find_in_warm_and_cold(&rest).await?;
            found.extend(in_hot);
            (found, pointers)
        };
        let now = now_micros();
        let floor = self.late.warm_floor(now);
        let mut slots: Vec<Option<Slot>> = vec![None; events.len()];
        let (mut to_warm, mut to_warm_at) = (Vec::new(), Vec::new());
        let mut to_cold: BTreeMap<PartitionKey, (Vec<usize>, Vec<Event>)> = BTreeMap::new();
        for (i, e) in events.into_iter().enumerate() {
            if let Some(&seq) = found.get(&(e.tenant.clone(), e.id.clone())) {
                metrics::counter!(m::LATE_EVENTS, "outcome" => "duplicate").increment(1);
                slots[i] = Some(Ok(AppendOutcome::Duplicate { seq }));
                continue;
            }
            let partition = PartitionKey::of(&e.tenant, &e.stream, e.ts);
            let dropped = floor.is_some_and(|f| e.ts < f);
            // A node that does not write the archive leaves even archived days to warm: the
            // exporting node amends them from there (see `StoreConfig::late_to_cold`).
            let writes_cold = self.cold.is_some() && self.config.late_to_cold;
            if writes_cold && (dropped || pointers.contains_key(&partition)) {
                let group = to_cold.entry(partition).or_default();
                group.0.push(i);
                group.1.push(e);
            } else if dropped {
                metrics::counter!(m::LATE_EVENTS, "outcome" => "rejected").increment(1);
                slots[i] = Some(Err(FieldError::new(
                    "ts",
                    format!(
                        "is {} s behind the server clock; the warm tier keeps {} s (warm_retention) and this node writes no cold tier",
                        now.saturating_sub(e.ts) / MICROS_PER_SEC,
                        self.config.warm_retention.map_or(0, |r| r.as_secs()),
                    ),
                )));
            } else {
                to_warm_at.push(i);
                to_warm.push(e);
            }
        }
        if !to_warm.is_empty() {
            let days: Vec<(String, i64)> = to_warm
                .iter()
                .map(|e| (e.tenant.clone(), e.ts.div_euclid(DAY_MICROS)))
                .collect();
            let seqs = writer.write_warm(&*self.warm, to_warm, now).await?;
            self.bump_days(days);
            metrics::counter!(m::LATE_EVENTS, "tier" => "warm").increment(seqs.len() as u64);
            for (i, seq) in to_warm_at.into_iter().zip(seqs) {
                slots[i] = Some(Ok(AppendOutcome::Stored { seq }));
            }
        }
        if let Some(cold) = &self.cold {
            for (partition, (at, events)) in to_cold {
                let _writing = self.cold_locks.lock(&partition).await;
                let seqs = writer
                    .write_cold(
                        &*self.warm,
                        &**cold,
                        &partition,
                        events,
                        now,
                        self.config.late_amend_attempts,
                    )
                    .await?;
                self.bump_days([(partition.tenant.clone(), partition.day)]);
                metrics::counter!(m::LATE_EVENTS, "tier" => "cold").increment(seqs.len() as u64);
                for (i, seq) in at.into_iter().zip(seqs) {
                    slots[i] = Some(Ok(AppendOutcome::Stored { seq }));
                }
            }
        }
        drop(writer);
        slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(short_answer)
    }

    fn bump_days(&self, days: impl IntoIterator<Item = (String, i64)>) {
        if let Some(cache) = &self.cache {
            for (tenant, day) in days {
                cache.bump(&tenant, day);
            }
        }
    }

    /// The event with this tenant and id, from whichever tier holds it.
    pub async fn get_event(&self, tenant: &str, id: &str) -> Result<Option<StoredEvent>> {
        if let Some(e) = self.hot.get(tenant, id).await? {
            return Ok(Some(e));
        }
        // Read after hot missed: if the event was released in between, the watermark
        // already covers it, so warm finds it.
        let watermark = self.watermark(self.hot.stats().released_upto);
        let Some(cold) = &self.cold else {
            return Ok(self.warm.get(tenant, id, &watermark).await?);
        };
        let (found, parts) = self
            .consistent(Some(tenant), None, || self.warm.get(tenant, id, &watermark))
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        Ok(cold.get(tenant, id, &parts).await?)
    }

    /// Runs a warm read between two reads of the cold pointers (`tenant`, `range`) and
    /// retries until they agree, so the read and the pointers describe one state of the
    /// warm tier (every export commit changes a pointer in the transaction that drops its
    /// rows). Export commits are rare (once per partition per pass), so a retry is rare too.
    pub(crate) async fn consistent<T, F, Fut>(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
        read: F,
    ) -> Result<(T, Vec<LivePartition>)>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = strata_core::Result<T>>,
    {
        const ATTEMPTS: usize = 8;
        let mut before = self.warm.cold_partitions(tenant, range).await?;
        for _ in 0..ATTEMPTS {
            let value = read().await?;
            let after = self.warm.cold_partitions(tenant, range).await?;
            if after == before {
                return Ok((value, after));
            }
            before = after;
        }
        Err(strata_core::Error::Unavailable {
            tier: Tier::Warm,
            op: "read across warm and cold",
            message: format!(
                "the cold pointers kept moving during {ATTEMPTS} consecutive reads; retry"
            ),
        }
        .into())
    }

    /// Answers an aggregate query over all tiers, taking the closed part from the result
    /// cache where it can (see [`crate::planner`] and [`crate::cache`]).
    pub async fn aggregate(&self, query: &AggregateQuery) -> Result<AggregateAnswer> {
        let started = Instant::now();
        let (partial, tiers, cache) = match &self.cache {
            Some(cache) => self.aggregate_cached(cache, query).await?,
            None => {
                let (partial, tiers) = self.aggregate_live(query).await?;
                (partial, tiers, CacheStatus::Miss)
            }
        };
        let answer = AggregateAnswer {
            buckets: partial.finish(query.agg),
            tiers: tiers.to_vec(),
            cache,
        };
        let tiers_label = match answer.tiers.as_slice() {
            [Tier::Hot, Tier::Warm, Tier::Cold] => "hot,warm,cold",
            [Tier::Hot, Tier::Cold] => "hot,cold",
            [Tier::Hot, Tier::Warm] => "hot,warm",
            [Tier::Warm, Tier::Cold] => "warm,cold",
            [Tier::Warm] => "warm",
            [Tier::Cold] => "cold",
            _ => "hot",
        };
        metrics::counter!(m::QUERIES, "tiers" => tiers_label, "cache" => answer.cache.as_str())
            .increment(1);
        metrics::histogram!(m::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(answer)
    }

    /// The cache-aside plan: closed chunks from the cache when their versions still match,
    /// the rest (head, missed chunks, open tail) live, the missed chunks stored afterwards.
    async fn aggregate_cached(
        &self,
        cache: &QueryCache,
        query: &AggregateQuery,
    ) -> Result<(PartialAggregate, TierSet, CacheStatus)> {
        let Some(span) =
            planner::chunk_span(query.range, query.bucket, cache.horizon(now_micros()))
        else {
            let (partial, tiers) = self.aggregate_live(query).await?;
            cache.record(CacheStatus::Miss);
            return Ok((partial, tiers, CacheStatus::Miss));
        };
        // Versions are read before any tier, so a write that lands after this point makes
        // the chunks computed below stale instead of wrong.
        let snap = cache.snapshot(
            &query.tenant,
            span.start.div_euclid(DAY_MICROS),
            (span.end - 1).div_euclid(DAY_MICROS),
        );
        let shape = Arc::new(Shape::of(query));
        let mut cached = Vec::new();
        let mut missing: Option<(i64, i64)> = None;
        for start in span.starts() {
            match cache.get(&shape, start, span.width, &snap) {
                Some(entry) => cached.push((start, entry)),
                None => {
                    let end = start + span.width;
                    missing = Some(missing.map_or((start, end), |(from, _)| (from, end)));
                }
            }
        }
        let mut tiers = TierSet::default();
        let mut live = PartialAggregate::default();
        let live_ranges = planner::live_ranges(query.range, span, missing);
        for range in &live_ranges {
            let mut piece = query.clone();
            piece.range = *range;
            let (partial, t) = self.aggregate_live(&piece).await?;
            tiers.union(t);
            live.merge(partial);
        }
        if let Some((from, to)) = missing {
            let mut start = from;
            while start < to {
                let cells = planner::cells_of_chunk(&live, start, span.width);
                cache.insert(&shape, start, span.width, cells, tiers, &snap);
                start += span.width;
            }
        }
        let mut used = 0usize;
        let mut partial = live;
        for (start, entry) in cached {
            // Chunks inside the missed run were read live again.
            if missing.is_some_and(|(from, to)| from <= start && start < to) {
                continue;
            }
            used += 1;
            tiers.union(entry.tiers);
            partial.merge(entry.partial.clone());
        }
        let status = if live_ranges.is_empty() {
            CacheStatus::Hit
        } else if used > 0 {
            CacheStatus::Partial
        } else {
            CacheStatus::Miss
        };
        cache.record(status);
        Ok((partial, tiers, status))
    }

    /// Reads `query` through the tiers: hot first (its release watermark), then warm with
    /// that watermark, then cold over the live partitions read consistently with warm.
    async fn aggregate_live(&self, query: &AggregateQuery) -> Result<(PartialAggregate, TierSet)> {
        let hot = self.hot.aggregate(query).await?;
        let watermark = self.watermark(hot.released_upto);
        let (warm, cold) = match &self.cold {
            None => (self.warm.aggregate(query, &watermark).await?, None),
            Some(cold) => {
                let (warm, parts) = self
                    .consistent(Some(&query.tenant), Some(query.range), || {
                        self.warm.aggregate(query, &watermark)
                    })
                    .await?;
                let answer: PartialAggregate = if parts.is_empty() {
                    PartialAggregate::default()
                } else {
                    cold.aggregate(query, &parts, &watermark).await?
                };
                (warm, Some(answer))
            }
        };
        let mut tiers = TierSet::default();
        tiers.add(Tier::Hot);
        if !warm.cells.is_empty() {
            tiers.add(Tier::Warm);
        }
        let mut partial = hot.partial;
        partial.merge(warm);
        if let Some(cold) = cold.filter(|c| !c.cells.is_empty()) {
            tiers.add(Tier::Cold);
            partial.merge(cold);
        }
        Ok((partial, tiers))
    }

    fn cold_or_err(&self) -> Result<&Arc<dyn ColdTier>> {
        self.cold.as_ref().ok_or_else(|| {
            strata_core::Error::Unavailable {
                tier: Tier::Cold,
                op: "archive",
                message: "no cold tier is configured".into(),
            }
            .into()
        })
    }

    /// The archive's partitions of `tenant` (`archive ls`): sizes, row counts and time
    /// bounds of each partition's live version.
    pub async fn archive_partitions(&self, tenant: &str) -> Result<Vec<PartitionInfo>> {
        let cold = self.cold_or_err()?;
        let parts = self.warm.cold_partitions(Some(tenant), None).await?;
        let mut infos = cold.partitions(tenant, &parts).await?;
        // Only versions the warm tier made live are part of the archive; a partition whose
        // first export never committed is not listed.
        infos.retain(|i| parts.iter().any(|l| l.partition == i.partition));
        Ok(infos)
    }

    /// The archived events of `tenant` in `range` (optionally one stream), as a stream
    /// (`archive get`, the archive read API): partition by partition in (day, stream) order,
    /// each partition in its files' `(key, ts)` order.
    pub async fn archive_read(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> Result<BoxStream<'static, strata_core::Result<StoredEvent>>> {
        let cold = self.cold_or_err()?;
        let parts = self.warm.cold_partitions(Some(tenant), Some(range)).await?;
        Ok(cold.read(parts, range, stream.map(str::to_owned)))
    }

    /// Verifies `tenant`'s archive (`archive verify`): every checksum recomputed, every
    /// manifest chain walked; `progress` gets `(bytes done, bytes total)`.
    pub async fn archive_verify(
        &self,
        tenant: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<VerifyReport> {
        let cold = self.cold_or_err()?;
        let parts = self.warm.cold_partitions(Some(tenant), None).await?;
        Ok(cold.verify(tenant, &parts, progress).await?)
    }

    /// Sets or clears the legal hold on one archive partition; returns the objects changed.
    /// Fails when the partition has no live version.
    pub async fn archive_legal_hold(&self, partition: &PartitionKey, on: bool) -> Result<u64> {
        let cold = self.cold_or_err()?;
        let live = self
            .warm
            .cold_partitions(Some(&partition.tenant), Some(partition.range()))
            .await?
            .into_iter()
            .find(|l| l.partition == *partition)
            .ok_or_else(|| strata_core::Error::Storage {
                tier: Tier::Cold,
                op: "legal hold",
                source: format!("partition {partition} is not in the archive").into(),
            })?;
        Ok(cold.set_legal_hold(&live, on).await?)
    }

    /// Stops taking writes and waits for in-flight commits (called on shutdown after the
    /// listeners stopped accepting requests and the flusher returned).
    pub async fn shutdown(&self) -> Result<()> {
        Ok(self.hot.shutdown().await?)
    }
}

fn build_cache(config: &StoreConfig, limits: &Limits) -> Option<Arc<QueryCache>> {
    (config.cache_capacity_bytes > 0).then(|| {
        Arc::new(QueryCache::new(&CacheLimits {
            capacity_bytes: config.cache_capacity_bytes,
            ttl: config.cache_ttl,
            version_entries: config.cache_version_entries,
            lateness: limits.max_lateness,
        }))
    })
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn seq_of(o: &AppendOutcome) -> u64 {
    match o {
        AppendOutcome::Stored { seq } | AppendOutcome::Duplicate { seq } => *seq,
    }
}

fn short_answer() -> crate::Error {
    strata_core::Error::Corrupt {
        tier: Tier::Hot,
        what: "append answered fewer outcomes than events".into(),
    }
    .into()
}

fn batch_reason(e: &BatchError) -> &'static str {
    match e {
        BatchError::Unparseable { .. } => "unparseable",
        BatchError::Empty => "empty",
        BatchError::TooManyEvents { .. } => "too_many",
    }
}
