//! The OpenAPI 3 document (`/openapi.json`), and the schemas of the event shapes it shows.
//!
//! Event bodies are decoded field by field (see `strata_types::decode`) and stored events are
//! rendered with their payload kept byte-for-byte, so the two structs below describe the wire
//! shapes for the document rather than being what the handlers (de)serialise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::{
    error::{ErrorBody, RejectionBody},
    rest::{archive, cache, events, ops, query, replay},
};

/// An event as a producer sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"tenant": "acme", "stream": "click", "key": "user-1", "id": "evt-123",
    "ts": "2026-11-20T10:00:00.123456Z", "value": 1.5, "attrs": {"page": "/home"}, "payload": {"ref": "email"}}))]
pub struct EventJson {
    /// Tenant, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub tenant: String,
    /// Event type, same charset as `tenant`.
    pub stream: String,
    /// Entity the event is about; 1 to `max_key_bytes` (256) bytes.
    pub key: String,
    /// Client id, unique per tenant: the idempotency key; 1 to `max_id_bytes` (128) bytes.
    pub id: String,
    /// Event time: RFC 3339 (any offset; microsecond precision) or integer epoch
    /// microseconds. At most `max_future_skew` ahead of the server; events more than
    /// `max_lateness` behind go straight to the warm or cold tier (bounded by `max_age`).
    #[schema(value_type = String, format = DateTime)]
    pub ts: String,
    /// Optional finite measure.
    pub value: Option<f64>,
    /// String dimensions for filters and group-by (at most `max_attrs`).
    pub attrs: Option<BTreeMap<String, String>>,
    /// Any JSON value, stored byte-for-byte (at most `max_payload_bytes`).
    pub payload: Option<serde_json::Value>,
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredEventJson {
    /// Tenant.
    pub tenant: String,
    /// Stream.
    pub stream: String,
    /// Key.
    pub key: String,
    /// Id.
    pub id: String,
    /// Event time, RFC 3339 UTC with microseconds.
    #[schema(value_type = String, format = DateTime)]
    pub ts: String,
    /// Measure, when the event had one.
    pub value: Option<f64>,
    /// Attributes, when the event had any.
    pub attrs: Option<BTreeMap<String, String>>,
    /// The payload exactly as sent, when the event had one.
    pub payload: Option<serde_json::Value>,
    /// When the node accepted the event, RFC 3339 UTC.
    #[schema(value_type = String, format = DateTime)]
    pub ingest_ts: String,
    /// Per-node sequence number, increasing in commit order.
    pub seq: u64,
}

/// The OpenAPI document of the REST API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Strata",
        description = "A tiered event store: ingest events, look them up, aggregate them over every tier. \
Every error is `{\"code\", \"message\", \"field\"}` with a stable snake_case `code`."
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
        ErrorBody,
        RejectionBody,
        events::IngestResponse,
        query::AggregateResponse,
        query::BucketJson,
        ops::StatusBody,
        cache::CacheStatsBody,
        archive::PartitionsBody,
        archive::PartitionBody,
        archive::VerifyBody,
        archive::IssueBody,
        archive::HoldBody,
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
