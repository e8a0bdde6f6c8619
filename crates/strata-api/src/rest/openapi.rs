//! The OpenAPI 3 document (`/openapi.json`).
//!
//! The schemas are the body types of [`crate::http`], the same ones the handlers serialise
//! and clients decode. Event bodies are decoded field by field (see `strata_types::decode`)
//! and stored events are rendered with their payload kept byte-for-byte, so [`EventJson`]
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
