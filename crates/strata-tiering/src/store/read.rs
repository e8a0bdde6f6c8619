//! The read path: aggregate planning over the tiers and the result cache, event lookups,
//! and the consistent warm/cold read they share.
//!
//! # Exactly once while data moves
//!
//! Every read takes the tiers in the order data moves through them, so an event moving
//! while it is read is counted once, never twice, never not at all:
//!
//! * **hot → warm.** The hot tier answers first, together with the sequence number up to
//!   which it has released events to warm (read atomically with its answer). Warm is then
//!   asked for this node's rows up to that number only (and every row of other nodes). An
//!   event the flusher committed to warm but hot has not released yet is counted from hot
//!   alone; one released in between is covered by the watermark, so warm has it.
//! * **warm → cold.** The exporter drops rows from warm and makes their archived version
//!   live in one warm transaction. `ColdSide::consistent` reads the live cold pointers
//!   before and after the warm read and retries while they move, so the warm rows and the
//!   cold versions combined come from one state of the warm tier: an exported row is in
//!   one of them, never both, never neither.
//!
//! The closed part of an aggregate's range may come from the result cache instead
//! ([`crate::planner`] splits the range, [`crate::cache`] keeps the partial aggregates);
//! cache versions are read before any tier, so a write that lands meanwhile makes what is
//! computed stale, never wrong.

use std::{sync::Arc, time::Instant};

use strata_core::{Tier, cold::LivePartition};
use strata_types::{
    AggregateQuery, Bucket, PartialAggregate, StoredEvent, TimeRange,
    time::{day_of, now_micros},
};

use super::{ColdSide, Store};
use crate::{
    Error, Result,
    cache::{Cached, QueryCache, Shape, TierSet},
    metrics_names as m, planner,
};

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

impl Store {
    /// The event with this tenant and id, from whichever tier holds it.
    pub async fn get_event(&self, tenant: &str, id: &str) -> Result<Option<StoredEvent>> {
        if let Some(e) = self.hot.get(tenant, id).await? {
            return Ok(Some(e));
        }
        // Read after hot missed: if the event was released in between, the watermark
        // already covers it, so warm finds it.
        let watermark = self.watermark(self.hot.stats().released_upto);
        let Some(cold) = self.cold_side() else {
            return Ok(self.warm.get(tenant, id, &watermark).await?);
        };
        let (found, parts) = cold
            .consistent(Some(tenant), None, || self.warm.get(tenant, id, &watermark))
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        Ok(cold.tier.get(tenant, id, &parts).await?)
    }

    /// Answers an aggregate query over all tiers, taking the closed part from the result
    /// cache where it can (see [`crate::planner`]; the cache keeps partial aggregates per chunk).
    pub async fn aggregate(&self, query: &AggregateQuery) -> Result<AggregateAnswer> {
        let started = Instant::now();
        let (partial, tiers, cache) = match &self.cache {
            Some(cache) => self.aggregate_cached(cache, query).await?,
            None => {
                let (partial, tiers) = self.aggregate_live(query).await?;
                (partial, tiers, CacheStatus::Miss)
            }
        };
        self.check_cells(&partial)?;
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
        // `recent` bounds the chunk and day walks below (see the planner's docs).
        let Some(span) =
            planner::chunk_span(query.range, query.bucket, cache.horizon(now_micros()))
                .and_then(planner::ChunkSpan::recent)
        else {
            let (partial, tiers) = self.aggregate_live(query).await?;
            cache.record(CacheStatus::Miss);
            return Ok((partial, tiers, CacheStatus::Miss));
        };
        // Versions are read before any tier, so a write that lands after this point makes
        // the chunks computed below stale instead of wrong.
        let snap = cache.snapshot(&query.tenant, day_of(span.start), day_of(span.end - 1));
        let shape = Arc::new(Shape::of(query));
        let mut cached = Vec::new();
        let mut missing: Option<(i64, i64)> = None;
        for start in span.starts() {
            match cache.get(&shape, start, span.width, &snap) {
                Some(found) => cached.push((start, found)),
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
            self.check_cells(&live)?;
        }
        if let Some((from, to)) = missing {
            // Chunks with cells get an entry each; each run of empty ones one small marker.
            let mut empty_from: Option<i64> = None;
            let mut start = from;
            while start < to {
                let cells = planner::cells_of_chunk(&live, start, span.width);
                if cells.cells.is_empty() {
                    empty_from.get_or_insert(start);
                } else {
                    if let Some(run) = empty_from.take() {
                        cache.insert_empty(&shape, run, start, tiers, &snap);
                    }
                    cache.insert(&shape, start, span.width, cells, tiers, &snap);
                }
                start += span.width;
            }
            if let Some(run) = empty_from {
                cache.insert_empty(&shape, run, to, tiers, &snap);
            }
        }
        let mut used = 0usize;
        let mut partial = live;
        for (start, found) in cached {
            // Chunks inside the missed run were read live again.
            if missing.is_some_and(|(from, to)| from <= start && start < to) {
                continue;
            }
            used += 1;
            match found {
                Cached::Chunk(entry) => {
                    tiers.union(entry.tiers);
                    partial.merge(entry.partial.clone());
                    self.check_cells(&partial)?;
                }
                Cached::Empty(t) => tiers.union(t),
            }
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
        let (warm, cold) = match self.cold_side() {
            None => (self.warm.aggregate(query, &watermark).await?, None),
            Some(cold) => {
                let (warm, parts) = cold
                    .consistent(Some(&query.tenant), Some(query.range), || {
                        self.warm.aggregate(query, &watermark)
                    })
                    .await?;
                let answer: PartialAggregate = if parts.is_empty() {
                    PartialAggregate::default()
                } else {
                    cold.tier.aggregate(query, &parts, &watermark).await?
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
        self.check_cells(&partial)?;
        Ok((partial, tiers))
    }

    /// Fails once a (partial) answer holds more cells than
    /// [`crate::StoreConfig::max_answer_cells`]: merging only adds cells, so a partial answer
    /// over the limit means the whole one is too.
    fn check_cells(&self, partial: &PartialAggregate) -> Result<()> {
        let limit = self.config.max_answer_cells;
        if partial.cells.len() > limit {
            return Err(Error::TooManyCells { limit });
        }
        Ok(())
    }
}

impl ColdSide {
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
        Fut: Future<Output = strata_core::Result<T>>,
    {
        const ATTEMPTS: usize = 8;
        let mut before = self.handoff.cold_partitions(tenant, range).await?;
        for _ in 0..ATTEMPTS {
            let value = read().await?;
            let after = self.handoff.cold_partitions(tenant, range).await?;
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
}
