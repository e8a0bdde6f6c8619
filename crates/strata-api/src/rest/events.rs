//! `POST /v1/events` and `GET /v1/events/{id}`.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use strata_types::decode::BodyFormat;
use utoipa::IntoParams;

use super::{ApiPath, ApiQuery, AppState};
use crate::{
    error::{ApiError, ErrorKind},
    http::{ErrorBody, IngestResponse},
    lookup,
};

/// Stores a batch of events.
///
/// The body is a JSON array of events (`Content-Type: application/json`) or one event per
/// line (`application/x-ndjson`). Events that fail validation are listed in `rejected`, the
/// others are stored; when every event fails, the answer is `400 invalid_events` and nothing
/// is stored. An event with the tenant and id of a stored one is not stored again and counts
/// as a duplicate. Answers once every accepted event is durable.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "events",
    request_body(
        description = "A JSON array of events, or NDJSON (one event per line).",
        content(
            (Vec<crate::rest::openapi::EventJson> = "application/json"),
            (String = "application/x-ndjson", example = json!("{\"tenant\":\"acme\",\"stream\":\"click\",\"key\":\"user-1\",\"id\":\"evt-1\",\"ts\":\"2026-11-20T10:00:00Z\"}\n"))
        )
    ),
    responses(
        (status = 200, description = "Stored; per-event rejections listed.", body = IngestResponse),
        (status = 400, description = "Body not parseable (`invalid_body`), no events (`empty_batch`), or every event rejected (`invalid_events`, with `rejected`).", body = ErrorBody),
        (status = 413, description = "Body over `max_body_bytes` (`body_too_large`) or more than `max_batch_events` events (`too_many_events`).", body = ErrorBody),
        (status = 415, description = "Content-Type is neither `application/json` nor `application/x-ndjson`.", body = ErrorBody),
        (status = 503, description = "Hot tier full (`full`), a tier unavailable (`unavailable`; `warm_unavailable` for the warm tier, which takes events older than `max_lateness`) or node overloaded (`overloaded`); nothing stored.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
        (status = 504, description = "The request ran past the server's timeout (`timeout`).", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn post_events(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<IngestResponse>, ApiError> {
    let format = body_format(request.headers())?;
    let max_body = state.store.limits().max_body_bytes;
    let body = Bytes::from_request(request, &())
        .await
        .map_err(|r| ApiError::from_body_rejection(r, max_body))?;
    // A batch whose every event was rejected comes back as `Error::Rejected`, which maps
    // to `400 invalid_events`.
    let report = state.store.ingest_body(&body, format).await?;
    Ok(Json(report.into()))
}

/// The body framing from `Content-Type`, ignoring parameters such as `charset`.
fn body_format(headers: &HeaderMap) -> Result<BodyFormat, ApiError> {
    let unsupported = |got: &str| {
        ApiError::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "Content-Type {got} is not supported; send application/json (a JSON array of events) or application/x-ndjson (one event per line)"
            ),
        )
    };
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported("(none)"));
    };
    let text = value.to_str().map_err(|_| unsupported("(not ASCII)"))?;
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(BodyFormat::JsonArray)
    } else if essence.eq_ignore_ascii_case("application/x-ndjson") {
        Ok(BodyFormat::Ndjson)
    } else {
        Err(unsupported(&format!("`{essence}`")))
    }
}

/// `?tenant=T`
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantParams {
    /// Tenant that owns the event.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
}

/// Returns one stored event.
///
/// An event of another tenant is `404`, exactly like one that does not exist.
#[utoipa::path(
    get,
    path = "/v1/events/{id}",
    tag = "events",
    params(("id" = String, Path, description = "The event's id."), TenantParams),
    responses(
        (status = 200, description = "The stored event, payload as stored: compact JSON, key order, strings and numbers as sent.", body = crate::rest::openapi::StoredEventJson),
        (status = 400, description = "Missing or bad `tenant` or `id`.", body = ErrorBody),
        (status = 404, description = "No such event for this tenant (`not_found`).", body = ErrorBody),
        (status = 503, description = "A tier is unavailable (`unavailable`, `warm_unavailable`) or the node overloaded (`overloaded`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn get_event(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<TenantParams>,
) -> Result<Response, ApiError> {
    let tenant = params.tenant.ok_or_else(|| ApiError::missing("tenant"))?;
    let event = lookup::get_event(&state.store, &tenant, &id).await?;
    // `to_json` keeps the payload's bytes as sent, which re-serialising a Value would not.
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        event.to_json(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(body_format(&h).is_err());
        for (ct, want) in [
            ("application/json", Some(BodyFormat::JsonArray)),
            (
                "Application/JSON; charset=utf-8",
                Some(BodyFormat::JsonArray),
            ),
            ("application/x-ndjson", Some(BodyFormat::Ndjson)),
            ("text/plain", None),
            ("application/jsonx", None),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(body_format(&h).ok(), want, "{ct}");
        }
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv"));
        assert_eq!(
            body_format(&h).unwrap_err().kind(),
            ErrorKind::UnsupportedMediaType
        );
    }
}
