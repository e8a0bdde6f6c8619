//! `/v1/archive/*`: the compliance archive (the cold tier) for auditors.
//!
//! * `GET /v1/archive/partitions?tenant=T`: partitions at their live manifest versions.
//! * `GET /v1/archive/events?tenant=T&from&to[&stream=S]`: the archived events as NDJSON,
//!   streamed (never the whole range in memory), in archive order. A failure after the
//!   response started ends the body with `{"error": {...}}`, like `/v1/replay`.
//! * `POST /v1/archive/verify?tenant=T[&progress=true]`: every checksum recomputed, every
//!   manifest chain walked. With `progress=true` the answer is NDJSON progress lines and a
//!   final `{"report": {...}}` line, so a CLI can draw a progress bar over a long verify. The
//!   verify runs in its own task; if the client goes away it still runs to the end (it only
//!   reads, and it is bounded by the archive's size), and its result is dropped. Without
//!   `progress` the whole verify must finish within the request timeout (`504` otherwise),
//!   so large archives are verified with `progress=true`, whose body has no time limit.
//! * `POST /v1/archive/legal-hold?tenant=T&stream=S&date=D&on=true|false`.
//!
//! A node without a cold tier answers `501 cold_tier_not_configured`: not `503`, because
//! retrying cannot help until the node is restarted with a cold tier.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use futures::{StreamExt, future};
use serde::Deserialize;
use strata_core::cold::{PartitionInfo, PartitionKey, parse_day};
use strata_tiering::{ReplayParams, ReplayRequest, Store};
use strata_types::TimeRange;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::{
    ApiQuery, AppState,
    replay::{error_line, ndjson, ndjson_line},
};
use crate::{
    error::ApiError,
    http::{
        ErrorBody, HoldBody, PartitionBody, PartitionsBody, VerifyBody, VerifyLine, VerifyProgress,
    },
};

/// Progress lines are sent at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// `tenant` of the archive endpoints.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TenantQuery {
    /// Tenant whose archive is read.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
    /// `verify` only: answer NDJSON progress lines and a final report line.
    progress: Option<bool>,
}

/// Parameters of `GET /v1/archive/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsQuery {
    /// Tenant whose archived events are read.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
    /// Inclusive start: RFC 3339 or integer epoch microseconds.
    #[param(required = true, example = "2026-11-20T00:00:00Z")]
    from: Option<String>,
    /// Exclusive end: RFC 3339 or integer epoch microseconds; after `from`.
    #[param(required = true, example = "2026-11-21T00:00:00Z")]
    to: Option<String>,
    /// Only this stream.
    stream: Option<String>,
}

/// Parameters of `POST /v1/archive/legal-hold`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HoldQuery {
    /// Tenant.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
    /// Stream.
    #[param(required = true, example = "click")]
    stream: Option<String>,
    /// UTC day, `YYYY-MM-DD`.
    #[param(required = true, example = "2026-11-20")]
    date: Option<String>,
    /// `true` places the hold, `false` lifts it.
    #[param(required = true)]
    on: Option<bool>,
}

/// Fails unless the node has a cold tier. The store says so too, but only after the
/// parameters were validated; checking first answers `501` whatever the parameters, so a
/// client learns the one fact that matters.
pub(crate) fn require_cold(store: &Store) -> Result<(), ApiError> {
    if store.cold().is_none() {
        return Err(strata_tiering::Error::NoColdTier.into());
    }
    Ok(())
}

pub(crate) fn tenant_of(tenant: Option<&str>) -> Result<&str, ApiError> {
    let tenant = tenant
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::missing("tenant"))?;
    strata_types::validate::check_name("tenant", tenant)?;
    Ok(tenant)
}

/// The tenant's partitions ordered by day, then stream (both APIs).
pub(crate) async fn sorted_partitions(
    store: &Store,
    tenant: &str,
) -> Result<Vec<PartitionInfo>, ApiError> {
    let mut list = store.archive_partitions(tenant).await?;
    list.sort_by(|a, b| {
        (a.partition.day, &a.partition.stream).cmp(&(b.partition.day, &b.partition.stream))
    });
    Ok(list)
}

/// The archived partitions of a tenant.
#[utoipa::path(
    get,
    path = "/v1/archive/partitions",
    tag = "archive",
    params(TenantQuery),
    responses(
        (status = 200, description = "Partitions at their live manifest versions.", body = PartitionsBody),
        (status = 400, description = "`tenant` is missing or invalid.", body = ErrorBody),
        (status = 501, description = "No cold tier on this node (`cold_tier_not_configured`), or its backend cannot list partitions (`unsupported`).", body = ErrorBody),
        (status = 503, description = "The warm tier, which records the live manifest versions, is unavailable (`warm_unavailable`), or the cold tier is (`unavailable`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub(crate) async fn partitions(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Json<PartitionsBody>, ApiError> {
    require_cold(&state.store)?;
    let tenant = tenant_of(q.tenant.as_deref())?;
    let list = sorted_partitions(&state.store, tenant).await?;
    Ok(Json(PartitionsBody {
        tenant: tenant.to_owned(),
        partitions: list.into_iter().map(PartitionBody::from).collect(),
    }))
}

/// A validated archive read.
pub(crate) struct ReadRequest {
    pub(crate) tenant: String,
    pub(crate) range: TimeRange,
    pub(crate) stream: Option<String>,
}

/// Validates an archive read (`from`/`to` as RFC 3339 or epoch micros) with the replay
/// parser, so both read APIs report the same field errors.
pub(crate) fn read_request(
    tenant: &str,
    from: &str,
    to: &str,
    stream: Option<&str>,
) -> Result<ReadRequest, ApiError> {
    let request = ReplayRequest::from_params(&ReplayParams {
        tenant,
        from,
        to,
        streams: stream.into_iter().collect(),
        key: None,
        filter: None,
        cursor: None,
        max_rate: None,
    })?;
    let mut streams = request.streams.into_iter();
    let stream = streams.next();
    if streams.next().is_some() {
        return Err(ApiError::invalid("stream", "takes one stream"));
    }
    Ok(ReadRequest {
        tenant: request.tenant,
        range: request.range,
        stream,
    })
}

/// The archived events of a tenant's range, as NDJSON.
#[utoipa::path(
    get,
    path = "/v1/archive/events",
    tag = "archive",
    params(EventsQuery),
    responses(
        (status = 200, description = "One stored event per line, partition by partition (day, stream), each in its files' (key, ts) order; a last line `{\"error\": {...}}` when the read broke off.",
            content_type = "application/x-ndjson", body = String),
        (status = 400, description = "A parameter is missing or wrong; `field` names it.", body = ErrorBody),
        (status = 501, description = "No cold tier on this node (`cold_tier_not_configured`), or its backend cannot read (`unsupported`).", body = ErrorBody),
        (status = 503, description = "The warm tier is unavailable (`warm_unavailable`), or the cold tier is (`unavailable`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    require_cold(&state.store)?;
    let required = |v: &Option<String>, name: &str| {
        v.clone()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::missing(name))
    };
    let read = read_request(
        &required(&q.tenant, "tenant")?,
        &required(&q.from, "from")?,
        &required(&q.to, "to")?,
        q.stream.as_deref(),
    )?;
    let events = state
        .store
        .archive_read(&read.tenant, read.range, read.stream.as_deref())
        .await?;
    // The first error is the last line, whatever the reader would yield after it.
    let lines = events.scan(false, |failed, r| {
        let line = match r {
            _ if *failed => None,
            Ok(e) => {
                let mut line = e.to_json();
                line.push('\n');
                Some(line)
            }
            Err(e) => {
                tracing::warn!(error = %e, "archive read broke off");
                *failed = true;
                Some(error_line(&ApiError::from(e)))
            }
        };
        future::ready(line)
    });
    Ok(ndjson(lines))
}

/// Verifies a tenant's archive.
#[utoipa::path(
    post,
    path = "/v1/archive/verify",
    tag = "archive",
    params(TenantQuery),
    responses(
        (status = 200, description = "The report (`ok` false when anything is altered, missing, extra or broken). With `progress=true`: NDJSON lines `{\"progress\": {\"done\", \"total\"}}` (bytes), then `{\"report\": {...}}` (see `VerifyLine`), or a last `{\"error\": {...}}` line.", body = VerifyBody),
        (status = 400, description = "`tenant` is missing or invalid.", body = ErrorBody),
        (status = 501, description = "No cold tier on this node (`cold_tier_not_configured`), or its backend cannot verify (`unsupported`).", body = ErrorBody),
        (status = 503, description = "The warm tier is unavailable (`warm_unavailable`), or the cold tier is (`unavailable`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub(crate) async fn verify(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TenantQuery>,
) -> Result<Response, ApiError> {
    require_cold(&state.store)?;
    let tenant = tenant_of(q.tenant.as_deref())?.to_owned();
    if !q.progress.unwrap_or(false) {
        let report = state.store.archive_verify(&tenant, None).await?;
        return Ok(Json(VerifyBody::from(report)).into_response());
    }
    // Progress goes through a small bounded channel; lines that do not fit are skipped (the
    // next one carries the newer figures), so a slow client never slows the verify.
    let (tx, rx) = mpsc::channel::<String>(16);
    let store = state.store.clone();
    tokio::spawn(async move {
        let last = Mutex::new(Instant::now() - PROGRESS_EVERY);
        let progress_tx = tx.clone();
        let progress = move |done: u64, total: u64| {
            let mut last = last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() >= PROGRESS_EVERY || done >= total {
                *last = Instant::now();
                let line = VerifyLine::Progress(VerifyProgress { done, total });
                let _ = progress_tx.try_send(ndjson_line(&line));
            }
        };
        let line = match store.archive_verify(&tenant, Some(&progress)).await {
            Ok(report) => ndjson_line(&VerifyLine::Report(report.into())),
            Err(e) => error_line(&ApiError::from(e)),
        };
        let _ = tx.send(line).await;
    });
    Ok(ndjson(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Places or lifts the legal hold of one archive partition.
#[utoipa::path(
    post,
    path = "/v1/archive/legal-hold",
    tag = "archive",
    params(HoldQuery),
    responses(
        (status = 200, description = "Objects changed.", body = HoldBody),
        (status = 400, description = "A parameter is missing or wrong; `field` names it.", body = ErrorBody),
        (status = 404, description = "The partition is not in the archive (`partition_not_found`).", body = ErrorBody),
        (status = 501, description = "No cold tier on this node (`cold_tier_not_configured`), or its backend cannot place legal holds (`unsupported`).", body = ErrorBody),
        (status = 503, description = "The warm tier is unavailable (`warm_unavailable`), or the cold tier is (`unavailable`, also when concurrent manifest updates outlasted the server's retries).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
    )
)]
pub(crate) async fn legal_hold(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HoldQuery>,
) -> Result<Json<HoldBody>, ApiError> {
    require_cold(&state.store)?;
    let on = q.on.ok_or_else(|| ApiError::missing("on"))?;
    let objects = set_legal_hold(
        &state.store,
        q.tenant.as_deref(),
        q.stream.as_deref(),
        q.date.as_deref(),
        on,
    )
    .await?;
    Ok(Json(HoldBody { objects }))
}

/// Validates the partition's parameters and changes its hold (both APIs).
pub(crate) async fn set_legal_hold(
    store: &Store,
    tenant: Option<&str>,
    stream: Option<&str>,
    date: Option<&str>,
    on: bool,
) -> Result<u64, ApiError> {
    let tenant = tenant_of(tenant)?;
    let stream = stream
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("stream"))?;
    strata_types::validate::check_name("stream", stream)?;
    let date = date
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ApiError::missing("date"))?;
    let day = parse_day(date).ok_or_else(|| ApiError::invalid("date", "expected YYYY-MM-DD"))?;
    let partition = PartitionKey {
        tenant: tenant.to_owned(),
        stream: stream.to_owned(),
        day,
    };
    // A partition not in the archive is the store's `PartitionNotFound`, `404`.
    Ok(store.archive_legal_hold(&partition, on).await?)
}
