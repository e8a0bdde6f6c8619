//! `GET /v1/cache/stats`: the query-result cache's counters, for operators.

use axum::{Json, extract::State};
use serde::Serialize;
use strata_tiering::CacheStats;
use utoipa::ToSchema;

use super::AppState;

/// The query cache's size and counters since the node started. Queries are counted once,
/// by how their closed part was served.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CacheStatsBody {
    /// Cached chunks (closed spans of one query shape).
    entries: u64,
    /// Approximate bytes the entries hold.
    bytes: u64,
    /// The byte budget; 0 when the cache is off.
    capacity_bytes: u64,
    /// Queries answered entirely from the cache.
    hits: u64,
    /// Queries computed entirely through the tiers.
    misses: u64,
    /// Queries whose closed part came (partly) from the cache, the rest computed live.
    partial: u64,
    /// Entries evicted for size or age.
    evictions: u64,
}

impl From<CacheStats> for CacheStatsBody {
    fn from(s: CacheStats) -> Self {
        Self {
            entries: s.entries,
            bytes: s.bytes,
            capacity_bytes: s.capacity_bytes,
            hits: s.hits,
            misses: s.misses,
            partial: s.partial,
            evictions: s.evictions,
        }
    }
}

/// Query-cache statistics of this node (an operator endpoint: it names no tenant and
/// reveals no data).
#[utoipa::path(
    get,
    path = "/v1/cache/stats",
    tag = "operations",
    responses((status = 200, description = "The cache's size and counters.", body = CacheStatsBody))
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn stats(State(state): State<AppState>) -> Json<CacheStatsBody> {
    Json(state.store.cache_stats().into())
}
