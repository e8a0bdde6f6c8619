//! The REST API (axum): routes, the layers that bound them, and request metrics.
//!
//! `/v1/*` routes go through load shedding (a concurrency limit shared with gRPC), a request
//! timeout and the body limit. The operational routes (`/healthz`, `/readyz`, `/metrics`,
//! `/openapi.json`) skip shedding so probes and scrapes still answer under load. A `/v1/*`
//! body is counted against the node's body budget before it is buffered.
//!
//! Every error answer is the JSON [`crate::ErrorBody`]: handlers take their query string and
//! path through [`ApiQuery`] and [`ApiPath`], whose rejections are [`ApiError`]s, and
//! [`json_errors`] rewrites any other error answer (one axum or a layer produced as plain
//! text) into that body.

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
    body::{Body, HttpBody},
    error_handling::HandleErrorLayer,
    extract::{
        DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Query, Request, State,
        rejection::{PathRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, Uri, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::de::DeserializeOwned;
use strata_tiering::{ReplayLimits, Store};
use tokio::sync::Semaphore;
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer, load_shed::LoadShedLayer};
use tower_http::trace::TraceLayer;

use crate::{
    ApiConfig,
    error::{ApiError, BoxError, ErrorKind},
    metrics::{HTTP_REQUEST_SECONDS, HTTP_REQUESTS},
    server::{BodyBudget, ConnectionLimits, Readiness, body_budget_exhausted},
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

/// The REST router over `store`, bounded as `config` says, with its own concurrency limit
/// and body budget (of [`ConnectionLimits::default`]).
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
        BodyBudget::new(ConnectionLimits::default().max_inflight_body_bytes),
    )
}

pub(crate) fn router(
    state: AppState,
    limit: Arc<Semaphore>,
    timeout: Duration,
    budget: BodyBudget,
) -> Router {
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
        .layer(middleware::from_fn_with_state(
            (budget, max_body),
            count_body_bytes,
        ))
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
        .layer(middleware::from_fn(json_errors))
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

/// Counts the request's body against the node's body budget before a handler buffers it,
/// and keeps it counted until the response is produced. A known length up to `max_body` is
/// counted at once (and refused before a byte is read); any other body frame by frame.
async fn count_body_bytes(
    State((budget, max_body)): State<(BodyBudget, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let body = request.body();
    if body.is_end_stream() {
        return next.run(request).await;
    }
    let upfront = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= max_body);
    let Some(reservation) = budget.try_reserve(upfront.unwrap_or(0)) else {
        return body_budget_exhausted().into_response();
    };
    let request = if upfront.is_some() {
        request
    } else {
        request.map(|body| Body::new(budget.meter(body, reservation.clone(), None)))
    };
    let response = next.run(request).await;
    if reservation.exhausted() {
        return body_budget_exhausted().into_response();
    }
    drop(reservation);
    response
}

/// The query string deserialised as `T`; a malformed one is `400 invalid_query_string` in the
/// JSON error body (axum's own `Query` answers plain text).
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r: QueryRejection| ApiError::from(r))?;
        Ok(Self(value))
    }
}

/// The path parameters deserialised as `T`; a bad one is `400 invalid_parameter` in the JSON
/// error body.
#[derive(Debug)]
pub(crate) struct ApiPath<T>(pub(crate) T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|r: PathRejection| ApiError::from(r))?;
        Ok(Self(value))
    }
}

/// Rewrites an error answer that is not JSON (a rejection of an axum extractor or a layer,
/// which answer plain text) into the documented JSON error body, keeping its message.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let kind = match status {
        StatusCode::NOT_FOUND => ErrorKind::RouteNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorKind::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorKind::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorKind::Timeout,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => ErrorKind::Overloaded,
        s if s.is_client_error() => ErrorKind::InvalidParameter,
        _ => ErrorKind::Internal,
    };
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    // Plain-text rejections are short; anything else is not echoed.
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .filter(|t| !t.trim().is_empty() && kind != ErrorKind::Internal)
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let mut rewritten = ApiError::new(kind, text.trim().to_owned()).into_response();
    if let Some(value) = retry_after {
        rewritten.headers_mut().insert(header::RETRY_AFTER, value);
    }
    rewritten
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|ct| {
            let essence = ct.split(';').next().unwrap_or("").trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.eq_ignore_ascii_case("application/x-ndjson")
        })
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
