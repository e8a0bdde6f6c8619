//! The REST API (axum): routes, the layers that bound them, and request metrics.
//!
//! `/v1/*` routes go through load shedding (a concurrency limit shared with gRPC), a request
//! timeout and the body limit. The operational routes (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`) skip shedding so probes and scrapes still answer under load.

pub(crate) mod archive;
mod cache;
mod events;
pub mod openapi;
mod ops;
mod query;
mod replay;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::Uri,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metrics_exporter_prometheus::PrometheusHandle;
use strata_tiering::{ReplayLimits, Store};
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer};
use tower_http::trace::TraceLayer;

use crate::{
    ApiConfig,
    error::{ApiError, BoxError, ErrorKind},
    metrics::{HTTP_REQUEST_SECONDS, HTTP_REQUESTS},
    server::Readiness,
};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) metrics: PrometheusHandle,
    pub(crate) readiness: Readiness,
    /// Slots and rates shared by every replay of this server.
    pub(crate) replay: ReplayLimits,
}

/// The REST router over `store`, bounded as `config` says, with its own concurrency limit.
///
/// [`crate::Server`] builds the same router but shares the limit with gRPC; use this one to
/// embed the REST API in another server or to drive it in process.
pub fn rest_router(
    store: Store,
    metrics: PrometheusHandle,
    config: &ApiConfig,
    readiness: Readiness,
) -> Router {
    let limit = Arc::new(Semaphore::new(crate::server::permits(
        config.max_concurrent_requests,
    )));
    router(
        AppState {
            store,
            metrics,
            readiness,
            replay: ReplayLimits::default(),
        },
        limit,
        config.request_timeout,
    )
}

pub(crate) fn router(state: AppState, limit: Arc<Semaphore>, timeout: Duration) -> Router {
    let max_body = state.store.limits().max_body_bytes;
    let api = Router::new()
        .route("/v1/events", post(events::post_events))
        .route("/v1/events/{id}", get(events::get_event))
        .route("/v1/query/aggregate", get(query::aggregate))
        .route("/v1/archive/partitions", get(archive::partitions))
        .route("/v1/archive/events", get(archive::events))
        .route("/v1/archive/verify", post(archive::verify))
        .route("/v1/archive/legal-hold", post(archive::legal_hold))
        .route("/v1/replay", get(replay::replay))
        .route("/v1/cache/stats", get(cache::stats))
        .layer(middleware::from_fn_with_state(timeout, time_limit))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::overloaded()
                }))
                .layer(LoadShedLayer::new())
                .layer(GlobalConcurrencyLimitLayer::with_semaphore(limit)),
        )
        .layer(DefaultBodyLimit::max(max_body));
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi_json));
    api.merge(ops)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(track_metrics))
        .layer(TraceLayer::new_for_http())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::route_not_found(uri.path())
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} does not take this method", uri.path()),
    )
}

/// Answers with a JSON `timeout` error when a handler runs past `limit`. Dropping the handler
/// future is safe: the store either committed the batch or did not, and a retry with the
/// same ids is idempotent.
async fn time_limit(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(limit).into_response(),
    }
}

/// Counts requests by route template (never the raw path, which would make label values
/// unbounded) and status.
async fn track_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(HTTP_REQUEST_SECONDS, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route,
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    response
}
