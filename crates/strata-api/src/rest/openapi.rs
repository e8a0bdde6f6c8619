//! The OpenAPI 3 document (`/openapi.json`).
//!
//! The schemas are the body types of [`crate::http`], the same ones the handlers serialise
//! and clients decode. Event bodies are decoded field by field (see `strata_types::decode`)
//! and stored events are rendered with their payload as stored (compact JSON), so [`EventJson`]
//! and [`StoredEventJson`] describe those wire shapes rather than being what the handlers
//! (de)serialise.

use utoipa::OpenApi;

pub use crate::http::{EventJson, StoredEventJson};
use crate::{
    http::{
        AggregateResponse, BucketJson, CacheStatsBody, ErrorBody, ErrorLine, HoldBody,
        IngestResponse, IssueBody, PartitionBody, PartitionsBody, RejectionBody, ReplayLine,
        StatusBody, VerifyBody, VerifyLine, VerifyProgress,
    },
    rest::{archive, cache, events, ops, query, replay},
};

/// The OpenAPI document of the REST API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Strata",
        description = "A tiered event store: ingest events, look them up, aggregate them over every tier. \
Every error is `{\"code\", \"message\", \"field\"}` with a stable snake_case `code`. \
`503` answers (`full`, `unavailable`, `warm_unavailable`, `shutting_down`, `overloaded`) carry `Retry-After`: \
`unavailable` means a tier cannot be reached or concurrent updates outlasted the server's retries, \
`warm_unavailable` that the warm tier (PostgreSQL) cannot be reached. \
`501` answers will not succeed on retry: `cold_tier_not_configured` (the node has no cold tier) and \
`unsupported` (a tier's backend cannot do the operation). \
A streamed (NDJSON) answer that breaks off ends with one line `{\"error\": {...}}` carrying the same codes."
    ),
    paths(
        events::post_events,
        events::get_event,
        query::aggregate,
        replay::replay,
        archive::partitions,
        archive::events,
        archive::verify,
        archive::legal_hold,
        cache::stats,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        ops::openapi_json,
    ),
    components(schemas(
        EventJson,
        crate::http::EventTime,
        StoredEventJson,
        ReplayLine,
        ErrorBody,
        ErrorLine,
        RejectionBody,
        IngestResponse,
        AggregateResponse,
        BucketJson,
        StatusBody,
        CacheStatsBody,
        PartitionsBody,
        PartitionBody,
        VerifyBody,
        VerifyLine,
        VerifyProgress,
        IssueBody,
        HoldBody,
    )),
    tags(
        (name = "events", description = "Write events and read them back by id."),
        (name = "query", description = "Aggregates over every tier."),
        (name = "replay", description = "Every event of a range in event-time order, resumable from a cursor."),
        (name = "archive", description = "The compliance archive: partitions, archived events, verification and legal holds."),
        (name = "operations", description = "Health, readiness, metrics and this document."),
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// `ts` is documented as the two forms the decoder accepts, and both decode into the
    /// shared client type.
    #[test]
    fn event_time_is_a_string_or_an_integer() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let one_of = doc["components"]["schemas"]["EventTime"]["oneOf"]
            .as_array()
            .unwrap();
        let kinds: Vec<&str> = one_of.iter().filter_map(|s| s["type"].as_str()).collect();
        assert_eq!(kinds, ["string", "integer"], "{one_of:?}");
        for ts in [r#""2026-11-20T10:00:00Z""#, "1795651200000000"] {
            let e: EventJson = serde_json::from_str(&format!(
                r#"{{"tenant":"a","stream":"s","key":"k","id":"i","ts":{ts}}}"#
            ))
            .unwrap();
            assert_eq!(serde_json::to_string(&e.ts).unwrap(), ts);
        }
    }
}
