//! `GET /v1/query/aggregate`.

use axum::{Json, extract::State};
use serde::Deserialize;
use strata_types::{AggregateQuery, QueryParams};
use utoipa::IntoParams;

use super::{ApiQuery, AppState};
use crate::{
    error::ApiError,
    http::{AggregateResponse, ErrorBody},
};

/// Aggregate query parameters. Every field is optional to serde so that a missing one is
/// reported by name (`missing_parameter`, `field: "bucket"`) instead of as a parse failure
/// of the whole query string.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AggregateParams {
    /// Tenant whose events are read.
    #[param(required = true, example = "acme")]
    tenant: Option<String>,
    /// Inclusive start: RFC 3339 or integer epoch microseconds.
    #[param(required = true, example = "2026-11-20T00:00:00Z")]
    from: Option<String>,
    /// Exclusive end: RFC 3339 or integer epoch microseconds; after `from`.
    #[param(required = true, example = "2026-11-21T00:00:00Z")]
    to: Option<String>,
    /// Bucket width, a whole number of seconds from `1s` to `1d` (`1m`, `15m`, `1h`, ...).
    /// Buckets are aligned to the Unix epoch; a query spans at most 100,000 buckets.
    #[param(required = true, example = "1h")]
    bucket: Option<String>,
    /// `count`, `sum`, `min`, `max` or `avg` (the last four over events that have a value).
    #[param(required = true, example = "count")]
    agg: Option<String>,
    /// Only events of this stream.
    stream: Option<String>,
    /// `key`, or `attr:NAME` to group by an attribute.
    group_by: Option<String>,
    /// `attr:NAME=VALUE`: only events whose attribute NAME equals VALUE.
    filter: Option<String>,
}

/// Aggregates one tenant's events per time bucket.
#[utoipa::path(
    get,
    path = "/v1/query/aggregate",
    tag = "query",
    params(AggregateParams),
    responses(
        (status = 200, description = "The non-empty buckets.", body = AggregateResponse),
        (status = 400, description = "A parameter is missing (`missing_parameter`) or wrong (`invalid_parameter`); `field` names it.", body = ErrorBody),
        (status = 422, description = "The answer would hold more cells (buckets × groups) than the server allows (`too_many_buckets`; the message names the limit): use a wider bucket, a shorter range or a narrower group-by.", body = ErrorBody),
        (status = 503, description = "A tier is unavailable (`unavailable`; `warm_unavailable` when the warm tier is) or the node overloaded (`overloaded`).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before retrying."))),
        (status = 504, description = "The query ran past the server's timeout.", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub(crate) async fn aggregate(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<AggregateParams>,
) -> Result<Json<AggregateResponse>, ApiError> {
    let query = AggregateQuery::from_params(&QueryParams {
        tenant: required(&p.tenant, "tenant")?,
        from: required(&p.from, "from")?,
        to: required(&p.to, "to")?,
        bucket: required(&p.bucket, "bucket")?,
        agg: required(&p.agg, "agg")?,
        stream: p.stream.as_deref(),
        group_by: p.group_by.as_deref(),
        filter: p.filter.as_deref(),
    })?;
    let answer = state.store.aggregate(&query).await?;
    Ok(Json(answer.into()))
}

/// A parameter that must be present and non-empty.
fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing(field))
}
