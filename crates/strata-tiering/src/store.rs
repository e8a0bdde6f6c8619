//! The store facade: write path and query path over the tiers.

use std::{collections::HashMap, sync::Arc, time::Instant};

use futures::stream::BoxStream;
use strata_core::{
    Tier,
    cold::{ColdTier, LivePartition, PartitionInfo, PartitionKey, Progress, VerifyReport},
    hot::{AppendOutcome, AppendRequest, HotStats, HotTier},
    warm::{HotWatermark, WarmTier},
};
use strata_types::{
    AggregateQuery, Bucket, Limits, PartialAggregate, Rejection, StoredEvent, TimeRange,
    decode::{BatchError, BodyFormat, DecodedBatch, decode_batch},
    time::now_micros,
};

use crate::{Result, metrics_names as m, release_gate::ReleaseGate};

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
    limits: Arc<Limits>,
    gate: Arc<ReleaseGate>,
}

impl Store {
    /// A store over a hot tier and a warm tier, validating with `limits`. `node` is this
    /// node's id, the same one its flusher stamps on warm rows.
    pub fn new(
        hot: Arc<dyn HotTier>,
        warm: Arc<dyn WarmTier>,
        node: impl Into<String>,
        limits: Limits,
    ) -> Self {
        Self {
            hot,
            warm,
            cold: None,
            node: node.into().into(),
            limits: Arc::new(limits),
            gate: Arc::default(),
        }
    }

    /// The same store with a cold tier: queries, lookups and the archive API read it, and
    /// an [`crate::Exporter`] built from this store moves warm partitions to it.
    pub fn with_cold(mut self, cold: Arc<dyn ColdTier>) -> Self {
        self.cold = Some(cold);
        self
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
        let mut report = IngestReport {
            rejected,
            ..IngestReport::default()
        };
        if events.is_empty() {
            return Ok(report);
        }
        let outcomes = self
            .append(AppendRequest {
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
        report.accepted = outcomes.len();
        report.duplicates = outcomes
            .iter()
            .filter(|o| matches!(o, AppendOutcome::Duplicate { .. }))
            .count();
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "accepted")
            .increment((report.accepted - report.duplicates) as u64);
        metrics::counter!(m::INGEST_EVENTS, "outcome" => "duplicate")
            .increment(report.duplicates as u64);
        metrics::histogram!(m::INGEST_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(report)
    }

    /// Durably appends validated events (and source offsets, for Kafka ingest) with
    /// `(tenant, id)` deduplicated across tiers: against hot's index, and, for events old
    /// enough to have been flushed, against warm (see [`crate::release_gate`]). One outcome
    /// per event, in input order.
    pub async fn append(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>> {
        let Some(horizon) = self.gate.horizon(now_micros(), self.limits.max_future_skew) else {
            return Ok(self.hot.append(request).await?);
        };
        if request.events.iter().all(|e| e.ts > horizon) {
            return Ok(self.hot.append(request).await?);
        }
        let _gate = self.gate.shared().await;
        // One lookup per tenant of the old events.
        let mut by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
        for e in request.events.iter().filter(|e| e.ts <= horizon) {
            by_tenant.entry(&e.tenant).or_default().push(e.id.clone());
        }
        let mut in_warm: HashMap<(String, String), u64> = HashMap::new();
        for (tenant, ids) in by_tenant {
            for (id, seq) in self.warm.existing_ids(tenant, &ids).await? {
                in_warm.insert((tenant.to_owned(), id), seq);
            }
        }
        if in_warm.is_empty() {
            return Ok(self.hot.append(request).await?);
        }
        let AppendRequest { events, offsets } = request;
        let mut outcomes: Vec<Option<AppendOutcome>> = Vec::with_capacity(events.len());
        let mut fresh = Vec::with_capacity(events.len());
        for e in events {
            match in_warm.get(&(e.tenant.clone(), e.id.clone())) {
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
            .ok_or_else(|| {
                strata_core::Error::Corrupt {
                    tier: Tier::Hot,
                    what: "append answered fewer outcomes than events".into(),
                }
                .into()
            })
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
    async fn consistent<T, F, Fut>(
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

    /// Answers an aggregate query over all tiers.
    pub async fn aggregate(&self, query: &AggregateQuery) -> Result<AggregateAnswer> {
        let started = Instant::now();
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
        let mut tiers = vec![Tier::Hot];
        if !warm.cells.is_empty() {
            tiers.push(Tier::Warm);
        }
        let mut partial = hot.partial;
        partial.merge(warm);
        if let Some(cold) = cold.filter(|c| !c.cells.is_empty()) {
            tiers.push(Tier::Cold);
            partial.merge(cold);
        }
        let answer = AggregateAnswer {
            buckets: partial.finish(query.agg),
            tiers,
            cache: CacheStatus::Miss,
        };
        let tiers_label = match answer.tiers.as_slice() {
            [_, Tier::Warm, Tier::Cold] => "hot,warm,cold",
            [_, Tier::Cold] => "hot,cold",
            [_, Tier::Warm] => "hot,warm",
            _ => "hot",
        };
        metrics::counter!(m::QUERIES, "tiers" => tiers_label, "cache" => answer.cache.as_str())
            .increment(1);
        metrics::histogram!(m::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(answer)
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

fn batch_reason(e: &BatchError) -> &'static str {
    match e {
        BatchError::Unparseable { .. } => "unparseable",
        BatchError::Empty => "empty",
        BatchError::TooManyEvents { .. } => "too_many",
    }
}
