//! The write path: decode → validate → durable append, each event exactly once.
//!
//! Invariant: an acknowledged event is durable in exactly one tier, once. Events young
//! enough for the hot tier are appended there; hot deduplicates `(tenant, id)` against what
//! it holds, and events old enough to have been flushed are checked against warm and the
//! archive first ([`dedupe`], under the release gate). Events older than `max_lateness` skip
//! hot and go straight to the tier owning their time ([`late`]). A batch whose events all
//! fail validation stores nothing and fails as a whole with [`Error::Rejected`]; a mixed
//! batch is acknowledged with a report listing the rejected events.

mod dedupe;
mod late;

use std::{
    collections::{HashMap, HashSet, hash_map},
    time::Instant,
};

use strata_core::{
    Tier,
    hot::{AppendOutcome, AppendRequest},
};
use strata_types::{
    Event, Rejection, TimeRange,
    decode::{BatchError, BodyFormat, DecodedBatch, decode_batch},
    time::{MINUTE, day_of, duration_micros, now_micros},
    validate::FieldError,
};

use super::Store;
use crate::{Error, Result, metrics_names as m};

/// One event's result in a batch: stored (or a duplicate), or rejected for a reason only the
/// tiers know (no tier keeps its time any more).
type Slot = std::result::Result<AppendOutcome, FieldError>;

/// Events whose time is this close to the closed horizon when they reach the hot tier bump
/// the cache versions of their day: covers clock steps between validation and commit.
const CLOSE_SLACK: i64 = MINUTE;
/// Appends are expected to finish within this; one that takes longer (a stalled disk)
/// invalidates the whole cache rather than risk a stale entry.
const APPEND_WINDOW: i64 = 10 * MINUTE;

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

impl Store {
    /// Decodes, validates and durably stores a request body. Fails with
    /// [`Error::Rejected`] when every event of the body was rejected (see [`Store::ingest`]).
    pub async fn ingest_body(&self, body: &[u8], format: BodyFormat) -> Result<IngestReport> {
        let batch = decode_batch(body, format, &self.limits, now_micros()).inspect_err(|e| {
            metrics::counter!(m::INGEST_BATCHES_REFUSED, "reason" => batch_reason(e)).increment(1);
        })?;
        self.ingest(batch).await
    }

    /// Durably stores the valid events of a decoded batch; returns once they are durable.
    ///
    /// When the batch has events and not one of them was accepted (each failed validation,
    /// or no tier keeps its time), nothing was stored and the answer is
    /// [`Error::Rejected`] with every reason, so each protocol refuses the batch the same
    /// way. A batch with at least one accepted event (a duplicate counts) is `Ok`, its
    /// report listing the rejected ones.
    pub async fn ingest(&self, batch: DecodedBatch) -> Result<IngestReport> {
        let report = self.ingest_report(batch).await?;
        if report.accepted == 0 && !report.rejected.is_empty() {
            return Err(Error::Rejected(report.rejected));
        }
        Ok(report)
    }

    async fn ingest_report(&self, batch: DecodedBatch) -> Result<IngestReport> {
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
                    Error::Tier(strata_core::Error::Full { .. }) => "full",
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

    /// Splits a request into live and late events, stores both, and answers one slot per
    /// event in input order.
    async fn append_slots(&self, request: AppendRequest) -> Result<Vec<Slot>> {
        let hot_floor = now_micros().saturating_sub(duration_micros(self.limits.max_lateness));
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
                    cache.bump(&tenant, day_of(ts));
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

    /// A write landed in these `(tenant, day)`s: cached chunks of them are stale now.
    fn bump_days(&self, days: impl IntoIterator<Item = (String, i64)>) {
        if let Some(cache) = &self.cache {
            for (tenant, day) in days {
                cache.bump(&tenant, day);
            }
        }
    }
}

fn seq_of(o: &AppendOutcome) -> u64 {
    match o {
        AppendOutcome::Stored { seq } | AppendOutcome::Duplicate { seq } => *seq,
    }
}

/// A tier answered fewer outcomes than it was given events: it broke its contract, so the
/// request fails rather than acknowledge events nobody vouched for.
fn short_answer() -> Error {
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
