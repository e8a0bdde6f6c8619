//! The store facade: write path and query path over the tiers.

use std::{collections::HashMap, sync::Arc, time::Instant};

use strata_core::{
    Tier,
    hot::{AppendOutcome, AppendRequest, HotStats, HotTier},
    warm::{HotWatermark, WarmTier},
};
use strata_types::{
    AggregateQuery, Bucket, Limits, Rejection, StoredEvent,
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
#[derive(Debug, Clone)]
pub struct Store {
    hot: Arc<dyn HotTier>,
    warm: Arc<dyn WarmTier>,
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
            node: node.into().into(),
            limits: Arc::new(limits),
            gate: Arc::default(),
        }
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
        Ok(self.warm.get(tenant, id, &watermark).await?)
    }

    /// Answers an aggregate query over all tiers.
    pub async fn aggregate(&self, query: &AggregateQuery) -> Result<AggregateAnswer> {
        let started = Instant::now();
        let hot = self.hot.aggregate(query).await?;
        let warm = self
            .warm
            .aggregate(query, &self.watermark(hot.released_upto))
            .await?;
        let mut tiers = vec![Tier::Hot];
        if !warm.cells.is_empty() {
            tiers.push(Tier::Warm);
        }
        let mut partial = hot.partial;
        partial.merge(warm);
        let answer = AggregateAnswer {
            buckets: partial.finish(query.agg),
            tiers,
            cache: CacheStatus::Miss,
        };
        let tiers_label = if answer.tiers.len() > 1 {
            "hot,warm"
        } else {
            "hot"
        };
        metrics::counter!(m::QUERIES, "tiers" => tiers_label, "cache" => answer.cache.as_str())
            .increment(1);
        metrics::histogram!(m::QUERY_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(answer)
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
