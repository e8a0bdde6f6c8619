//! Operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document.

use axum::{
    Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use utoipa::OpenApi;

use super::{AppState, openapi::ApiDoc};
use crate::{
    error::{ApiError, ErrorKind},
    http::{ErrorBody, StatusBody},
};

fn status(status: &str) -> Json<StatusBody> {
    Json(StatusBody {
        status: status.to_owned(),
    })
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is alive.", body = StatusBody))
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn healthz() -> Json<StatusBody> {
    status("ok")
}

/// Readiness: `503` while the node is starting or shutting down.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving.", body = StatusBody),
        (status = 503, description = "Starting or shutting down (`not_ready`).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<StatusBody>, ApiError> {
    if state.readiness.is_ready() {
        Ok(status("ready"))
    } else {
        Err(ApiError::new(
            ErrorKind::NotReady,
            "the node is starting or shutting down",
        ))
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of this API.", content_type = "application/json"))
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
