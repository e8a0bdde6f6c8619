//! `GET /v1/cache/stats`: the query-result cache's counters, for operators.

use axum::{Json, extract::State};

use super::AppState;
use crate::http::CacheStatsBody;

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
