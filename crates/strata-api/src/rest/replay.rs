//! `GET /v1/replay`: a tenant's events in event-time order as NDJSON.
//!
//! Each line is the event exactly as `GET /v1/events/{id}` returns it, with one more
//! top-level field, `"cursor"`, last: the position after that event. A client that loses the
//! connection resumes with `cursor=<the last line's cursor>` and gets exactly the events
//! after it. A per-line cursor (rather than a periodic cursor line) keeps every line
//! self-contained, so any line a client has processed is a safe resume point.
//!
//! Failures before the first event are ordinary error responses (400 naming the parameter,
//! 503 when a tier is unavailable). A failure after the response started ends the body with
//! one line `{"error": {"code", "message", "field"}}` (the archive read endpoint uses the
//! same convention); a body that ends without it is complete.
//!
//! A replay reads only a few events ahead of what the client has taken; a client that takes
//! nothing for the server's replay idle timeout loses its replay (the body ends with an
//! `unavailable` error line after what was already read) and its slot goes to the next one.
//! A client that leaves while its replay waits for a slot is off the waiting gauge at once.

use std::convert::Infallible;

use axum::{
    body::{Body, Bytes},
    extract::{RawQuery, State},
    http::header,
    response::{IntoResponse, Response},
};
use futures::{StreamExt, stream};
use serde::Deserialize;
use strata_tiering::{ReplayItem, ReplayParams, ReplayRequest};
use utoipa::IntoParams;

use super::AppState;
use crate::{
    error::{ApiError, ErrorKind},
    http::{ErrorBody, ErrorLine},
};

/// Lines gathered into one body chunk when they are ready at once.
const CHUNK_LINES: usize = 256;

/// Replay parameters (documentation only: the handler reads the raw query string, since
/// `stream` may repeat).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(crate) struct ReplayQuery {
    /// Tenant whose events are replayed; no other tenant's event is ever returned.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
    /// Inclusive start: RFC 3339 or integer epoch microseconds.
    #[param(required = true, example = "2026-11-20T00:00:00Z")]
    from: Option<String>,
    /// Exclusive end: RFC 3339 or integer epoch microseconds; after `from`.
    #[param(required = true, example = "2026-11-21T00:00:00Z")]
    to: Option<String>,
    /// Only events of these streams: repeat the parameter or give a comma-separated list.
    stream: Option<String>,
    /// Only events of this key.
    key: Option<String>,
    /// `attr:NAME=VALUE`: only events whose attribute NAME equals VALUE.
    filter: Option<String>,
    /// Resume after this position: the `cursor` of the last line received.
    cursor: Option<String>,
    /// Most events per second to send (at least 1; capped by the server's maximum).
    max_rate: Option<u32>,
}

/// Replays a tenant's events in event-time order.
///
/// NDJSON: one event per line, ordered by `ts` and then `id`, each exactly once however the
/// data moves between tiers meanwhile. Each line is the stored event (the shape of
/// `GET /v1/events/{id}`) plus a last field `"cursor"`; pass it as `cursor` to resume after
/// that event. A failure after the first line ends the body with
/// `{"error": {"code", "message", "field"}}`, also when the client took no line for the
/// server's replay idle timeout. At most a configured number of replays per node, and
/// fewer per tenant, read at once; others wait for a slot.
#[utoipa::path(
    get,
    path = "/v1/replay",
    tag = "replay",
    params(ReplayQuery),
    responses(
        (status = 200, description = "The events, one JSON object per line, each with its `cursor`; a last line `{\"error\": {...}}` when the replay broke off.",
            content_type = "application/x-ndjson", body = String,
            example = json!("{\"tenant\":\"acme\",\"stream\":\"click\",\"key\":\"user-1\",\"id\":\"evt-1\",\"ts\":\"2026-11-20T10:00:00.000000Z\",\"ingest_ts\":\"2026-11-20T10:00:00.004000Z\",\"seq\":1,\"cursor\":\"AQAGRB3ZwE4AZXZ0LTE\"}\n")),
        (status = 400, description = "A parameter is missing (`missing_parameter`) or wrong (`invalid_parameter`, e.g. a malformed `cursor`); `field` names it.", body = ErrorBody),
        (status = 503, description = "A tier is unavailable (`unavailable`; `warm_unavailable` when the warm tier is) or the node overloaded (`overloaded`). A tier failing after the first line ends the body with `{\"error\": {...}}` carrying the same codes.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
        (status = 504, description = "No replay slot freed up within the server's timeout.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
        .map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidQueryString,
            format!("the query string cannot be parsed: {e}"),
        )
    })?;
    let last = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let required = |name: &str| {
        last(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    };
    let request = ReplayRequest::from_params(&ReplayParams {
        tenant: required("tenant")?,
        from: required("from")?,
        to: required("to")?,
        streams: pairs
            .iter()
            .filter(|(k, _)| k == "stream")
            .map(|(_, v)| v.as_str())
            .collect(),
        key: last("key"),
        filter: last("filter"),
        cursor: last("cursor"),
        max_rate: last("max_rate"),
    })?;
    let mut events = state.store.replay(request, &state.replay);
    // The first event (or failure) is awaited here, so a replay that cannot start gets a
    // proper status instead of a 200 with an error line.
    let first = match events.next().await {
        Some(Ok(item)) => Some(item),
        Some(Err(e)) => return Err(e.into()),
        None => None,
    };
    let lines = stream::iter(first.map(Ok)).chain(events).map(|r| match r {
        Ok(item) => line_of(&item),
        Err(e) => error_line(&ApiError::from(e)),
    });
    Ok(ndjson(lines))
}

/// An `application/x-ndjson` response streaming `lines` (each ending in a newline), with
/// the lines that are ready at once sent as one body chunk.
pub(crate) fn ndjson(lines: impl futures::Stream<Item = String> + Send + 'static) -> Response {
    let body = lines
        .ready_chunks(CHUNK_LINES)
        .map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk.concat())));
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

fn line_of(item: &ReplayItem) -> String {
    let mut line = item.line();
    line.push('\n');
    line
}

/// The last line of a body cut short by a failure.
pub(crate) fn error_line(e: &ApiError) -> String {
    ndjson_line(&ErrorLine { error: e.body() })
}

/// `value` as one NDJSON line, newline included. Serialising these bodies cannot fail (no
/// maps with non-string keys, no failing `Serialize` impls); should it ever, the line is a
/// fixed `internal` error line, so the body still ends as the protocol says.
pub(crate) fn ndjson_line(value: &impl serde::Serialize) -> String {
    let mut line = serde_json::to_string(value)
        .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"internal error"}}"#.into());
    line.push('\n');
    line
}
