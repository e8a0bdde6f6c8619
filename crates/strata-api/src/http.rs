//! The REST API's request and response bodies, defined once and shared by the server, which
//! serialises them, and by clients (the `strata` CLI, tests, other Rust programs), which
//! decode them: every type derives both `Serialize` and `Deserialize`, so a field renamed on
//! one side is renamed on the other.
//!
//! | Route | Body |
//! |---|---|
//! | `POST /v1/events` | [`IngestResponse`] |
//! | `GET /v1/events/{id}` | [`StoredEventJson`] |
//! | `GET /v1/query/aggregate` | [`AggregateResponse`] of [`BucketJson`] |
//! | `GET /v1/replay` | NDJSON of [`ReplayLine`] |
//! | `GET /v1/archive/partitions` | [`PartitionsBody`] of [`PartitionBody`] |
//! | `GET /v1/archive/events` | NDJSON of [`StoredEventJson`] |
//! | `POST /v1/archive/verify` | [`VerifyBody`]; with `progress=true` NDJSON of [`VerifyLine`] |
//! | `POST /v1/archive/legal-hold` | [`HoldBody`] |
//! | `GET /v1/cache/stats` | [`CacheStatsBody`] |
//! | `/healthz`, `/readyz` | [`StatusBody`] |
//! | any failure | [`ErrorBody`] (status `4xx`/`5xx`) |
//!
//! A streamed (NDJSON) answer that breaks off after it started ends with one
//! [`ErrorLine`], `{"error": {...}}`; a body that ends without it is complete.
//! [`NdjsonReader`] reads such an answer from any byte stream, line by line or decoded,
//! and turns that last line into [`NdjsonError::Server`].
//!
//! A few members default when absent on the way to a client (the issue lists of a verify
//! report, `legal_hold`, `field`, `rejected` of an error) so clients keep decoding answers
//! of a server one version apart; the document still marks those the server always sends
//! as required.

mod ndjson;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_core::cold::{PartitionInfo, VerifyIssue, VerifyReport};
use strata_tiering::{AggregateAnswer, CacheStats, IngestReport};
use strata_types::{Rejection, time::format_rfc3339};
use utoipa::ToSchema;

pub use self::ndjson::{DEFAULT_MAX_LINE_BYTES, NdjsonError, NdjsonReader, NdjsonRecords};
use crate::error::ErrorKind;

/// The JSON body of every REST error, and the `error` member of the last line of a streamed
/// answer that broke off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"code": "invalid_parameter", "message": "bucket: must be a whole number of seconds from 1s to 1d", "field": "bucket"}))]
pub struct ErrorBody {
    /// Stable snake_case error code (`invalid_parameter`, `not_found`, `full`,
    /// `unavailable`, `warm_unavailable`, `unsupported`, ...); each route's responses name
    /// the codes it can answer.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The offending field or parameter, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `invalid_events`: why each event was rejected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectionBody>,
}

impl ErrorBody {
    /// The kind `code` names; `None` for a code this version does not know (a newer
    /// server's), which a client should treat like `internal`.
    pub fn kind(&self) -> Option<ErrorKind> {
        ErrorKind::from_code(&self.code)
    }
}

/// `message (code, field `f`)`: what a CLI prints.
impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.message, self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        f.write_str(")")
    }
}

/// The last line of an NDJSON answer cut short by a failure: `{"error": {...}}`.
///
/// Unknown members are refused, so a data line that happens to carry an `error` key among
/// others is never mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorLine {
    /// Why the answer broke off.
    pub error: ErrorBody,
}

/// Why one event of a batch was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RejectionBody {
    /// Position of the event in the batch (array index or NDJSON line from 0, blank lines
    /// not counted).
    pub index: usize,
    /// The offending field (`ts`, `attrs.page`, ...); empty when the event as a whole is bad.
    pub field: String,
    /// What is wrong and which limit applies.
    pub reason: String,
}

impl From<Rejection> for RejectionBody {
    fn from(r: Rejection) -> Self {
        Self {
            index: r.index,
            field: r.field,
            reason: r.reason,
        }
    }
}

/// What an ingest request (`POST /v1/events`) achieved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IngestResponse {
    /// Events durable now or stored before (an idempotent retry counts as accepted).
    pub accepted: usize,
    /// How many of `accepted` were already stored (same tenant and id).
    pub duplicates: usize,
    /// Events that were not stored, with the field and the reason.
    pub rejected: Vec<RejectionBody>,
}

impl From<IngestReport> for IngestResponse {
    fn from(r: IngestReport) -> Self {
        Self {
            accepted: r.accepted,
            duplicates: r.duplicates,
            rejected: r.rejected.into_iter().map(RejectionBody::from).collect(),
        }
    }
}

/// An event time as a client may send it: an RFC 3339 string, or an integer of epoch
/// microseconds. Stored events always answer the RFC 3339 form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventTime {
    /// RFC 3339 (any offset; microsecond precision), e.g. `2026-11-20T10:00:00.123456Z`.
    #[schema(format = DateTime)]
    Rfc3339(String),
    /// Integer microseconds since the Unix epoch, UTC.
    EpochMicros(i64),
}

/// An event as a producer sends it (`POST /v1/events`).
///
/// The server decodes event bodies field by field (`strata_types::decode`) to name the
/// offending field of a bad event; this type is the same shape for clients that build
/// events and for the OpenAPI document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    pub ts: EventTime,
    /// Optional finite measure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// String dimensions for filters and group-by (at most `max_attrs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<BTreeMap<String, String>>,
    /// Any JSON value (at most `max_payload_bytes`, nested at most `max_payload_depth`),
    /// stored compact: whitespace outside strings removed, strings and numbers as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// An event as stored: the body of `GET /v1/events/{id}` and each line of
/// `GET /v1/archive/events`.
///
/// The server renders stored events itself to keep the payload's bytes as sent; decoding
/// into this type re-parses the payload as a JSON value (key order and spacing are not
/// kept). A client that must keep the event's bytes (to checksum it, say) keeps the raw
/// line from `NdjsonReader::next_line`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Attributes, when the event had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<BTreeMap<String, String>>,
    /// The payload exactly as sent, when the event had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    /// When the node accepted the event, RFC 3339 UTC.
    #[schema(value_type = String, format = DateTime)]
    pub ingest_ts: String,
    /// Per-node sequence number, increasing in commit order.
    pub seq: u64,
}

/// One line of `GET /v1/replay`: the stored event plus `cursor`, its last member, the
/// position after this event (pass it as `cursor=` to resume after it).
///
/// The event's JSON without the cursor, byte for byte, is what
/// `strata_tiering::replay::split_line` cuts out of the raw line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplayLine {
    /// The event, as `GET /v1/events/{id}` returns it.
    #[serde(flatten)]
    pub event: StoredEventJson,
    /// The resume position after this event.
    pub cursor: String,
}

/// One non-empty (bucket, group) of an aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BucketJson {
    /// Bucket start, RFC 3339 UTC.
    #[schema(example = "2026-11-20T10:00:00.000000Z")]
    pub start: String,
    /// The group when grouping; `null` when not grouping or for events without the
    /// grouped attribute.
    #[schema(required = true)]
    pub group: Option<String>,
    /// The aggregate; `null` when no event of the bucket had a value (sum, min, max, avg).
    #[schema(required = true)]
    pub value: Option<f64>,
}

/// An aggregate answer (`GET /v1/query/aggregate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AggregateResponse {
    /// Non-empty buckets, ordered by start, then group.
    pub buckets: Vec<BucketJson>,
    /// Tiers that contributed: `hot`, `warm`, `cold`.
    #[schema(example = json!(["hot"]))]
    pub tiers: Vec<String>,
    /// `hit`, `miss` or `partial`: how much came from the result cache.
    #[schema(example = "miss")]
    pub cache: String,
}

impl From<AggregateAnswer> for AggregateResponse {
    fn from(a: AggregateAnswer) -> Self {
        Self {
            buckets: a
                .buckets
                .into_iter()
                .map(|b| BucketJson {
                    start: format_rfc3339(b.start),
                    group: b.group,
                    value: b.value,
                })
                .collect(),
            tiers: a.tiers.iter().map(ToString::to_string).collect(),
            cache: a.cache.as_str().to_owned(),
        }
    }
}

/// One archived partition at its live manifest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionBody {
    /// Stream.
    pub stream: String,
    /// UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// Live manifest version.
    pub version: u64,
    /// Parquet files.
    pub files: u64,
    /// Rows in them.
    pub rows: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Earliest event time (RFC 3339).
    pub min_ts: String,
    /// Latest event time (RFC 3339).
    pub max_ts: String,
    /// Whether the partition's objects carry a legal hold.
    #[serde(default)]
    #[schema(required = true)]
    pub legal_hold: bool,
}

impl From<PartitionInfo> for PartitionBody {
    fn from(p: PartitionInfo) -> Self {
        Self {
            date: p.partition.date(),
            stream: p.partition.stream,
            version: p.version,
            files: p.files,
            rows: p.rows,
            bytes: p.bytes,
            min_ts: format_rfc3339(p.min_ts),
            max_ts: format_rfc3339(p.max_ts),
            legal_hold: p.legal_hold,
        }
    }
}

/// The archived partitions of a tenant (`GET /v1/archive/partitions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartitionsBody {
    /// Tenant.
    pub tenant: String,
    /// Partitions, ordered by date then stream.
    pub partitions: Vec<PartitionBody>,
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IssueBody {
    /// The object concerned.
    pub key: String,
    /// What is wrong.
    pub detail: String,
}

impl From<VerifyIssue> for IssueBody {
    fn from(i: VerifyIssue) -> Self {
        Self {
            key: i.key,
            detail: i.detail,
        }
    }
}

/// What `verify` found (`POST /v1/archive/verify`, or the `report` line with
/// `progress=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyBody {
    /// Tenant verified.
    pub tenant: String,
    /// True when nothing is altered, missing, extra or broken.
    pub ok: bool,
    /// Partitions checked.
    pub partitions: u64,
    /// Manifest versions whose chain was checked.
    pub manifests: u64,
    /// Files whose SHA-256 was recomputed.
    pub files_checked: u64,
    /// Bytes read to recompute them.
    pub bytes_checked: u64,
    /// Live files whose content no longer matches the manifest.
    #[serde(default)]
    #[schema(required = true)]
    pub altered: Vec<IssueBody>,
    /// Live files the manifest lists that are not in the store.
    #[serde(default)]
    #[schema(required = true)]
    pub missing: Vec<IssueBody>,
    /// Data files no manifest version lists.
    #[serde(default)]
    #[schema(required = true)]
    pub extra: Vec<IssueBody>,
    /// Manifest versions missing, unreadable or not chained to their predecessor.
    #[serde(default)]
    #[schema(required = true)]
    pub chain_breaks: Vec<IssueBody>,
    /// Files only superseded versions list, awaiting removal (not an error).
    #[serde(default)]
    #[schema(required = true)]
    pub superseded: Vec<IssueBody>,
}

impl From<VerifyReport> for VerifyBody {
    fn from(r: VerifyReport) -> Self {
        let issues = |list: Vec<VerifyIssue>| list.into_iter().map(IssueBody::from).collect();
        Self {
            ok: r.is_ok(),
            tenant: r.tenant,
            partitions: r.partitions,
            manifests: r.manifests,
            files_checked: r.files_checked,
            bytes_checked: r.bytes_checked,
            altered: issues(r.altered),
            missing: issues(r.missing),
            extra: issues(r.extra),
            chain_breaks: issues(r.chain_breaks),
            superseded: issues(r.superseded),
        }
    }
}

/// How far a verify has got, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerifyProgress {
    /// Bytes verified so far.
    pub done: u64,
    /// Bytes to verify in all.
    pub total: u64,
}

/// One line of `POST /v1/archive/verify?progress=true`: `{"progress": {...}}` any number of
/// times, then one `{"report": {...}}` (or an error line, `{"error": {...}}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyLine {
    /// Bytes verified so far.
    Progress(VerifyProgress),
    /// The final report.
    Report(VerifyBody),
}

/// What a legal-hold change did (`POST /v1/archive/legal-hold`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldBody {
    /// Objects whose hold was set or cleared.
    pub objects: u64,
}

/// The query cache's size and counters since the node started (`GET /v1/cache/stats`).
/// Queries are counted once, by how their closed part was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CacheStatsBody {
    /// Cached chunks (closed spans of one query shape).
    pub entries: u64,
    /// Approximate bytes the entries hold.
    pub bytes: u64,
    /// The byte budget; 0 when the cache is off.
    pub capacity_bytes: u64,
    /// Queries answered entirely from the cache.
    pub hits: u64,
    /// Queries computed entirely through the tiers.
    pub misses: u64,
    /// Queries whose closed part came (partly) from the cache, the rest computed live.
    pub partial: u64,
    /// Entries evicted for size or age.
    pub evictions: u64,
}

impl From<CacheStats> for CacheStatsBody {
    fn from(s: CacheStats) -> Self {
        Self {
            entries: s.entries,
            bytes: s.bytes,
            capacity_bytes: s.capacity_bytes,
            hits: s.hits,
            misses: s.misses,
            partial: s.partial,
            evictions: s.evictions,
        }
    }
}

/// `{"status": "..."}` of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusBody {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    pub status: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What the server sends, decoded and re-encoded, is byte for byte what it sent: the
    /// client and the server read the same shape.
    fn round_trips<T: Serialize + serde::de::DeserializeOwned>(text: &str) {
        let value: T = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
    }

    #[test]
    fn bodies_round_trip_byte_for_byte() {
        round_trips::<ErrorBody>(r#"{"code":"invalid_parameter","message":"m","field":"bucket"}"#);
        round_trips::<ErrorBody>(r#"{"code":"unavailable","message":"m"}"#);
        round_trips::<ErrorBody>(
            r#"{"code":"invalid_events","message":"m","field":"ts","rejected":[{"index":0,"field":"ts","reason":"is required"}]}"#,
        );
        round_trips::<ErrorLine>(r#"{"error":{"code":"warm_unavailable","message":"m"}}"#);
        round_trips::<IngestResponse>(r#"{"accepted":2,"duplicates":1,"rejected":[]}"#);
        round_trips::<VerifyLine>(r#"{"progress":{"done":5,"total":10}}"#);
        round_trips::<HoldBody>(r#"{"objects":3}"#);
        round_trips::<StatusBody>(r#"{"status":"ready"}"#);
        round_trips::<AggregateResponse>(
            r#"{"buckets":[{"start":"2026-11-20T10:00:00.000000Z","group":null,"value":1.5}],"tiers":["hot"],"cache":"miss"}"#,
        );
        round_trips::<ReplayLine>(
            r#"{"tenant":"acme","stream":"s","key":"k","id":"e","ts":"1970-01-01T00:00:00.000005Z","payload":{"a":1},"ingest_ts":"1970-01-01T00:00:00.000006Z","seq":1,"cursor":"AQ"}"#,
        );
    }

    #[test]
    fn optional_members_may_be_absent() {
        let report: VerifyLine = serde_json::from_value(json!({"report": {
            "tenant": "acme", "ok": true, "partitions": 1, "manifests": 1,
            "files_checked": 1, "bytes_checked": 10}}))
        .unwrap();
        let VerifyLine::Report(report) = report else {
            panic!("not a report")
        };
        assert!(report.altered.is_empty() && report.superseded.is_empty());
        let p: PartitionBody = serde_json::from_value(json!({"stream": "s", "date": "2026-01-01",
            "version": 1, "files": 1, "rows": 1, "bytes": 1,
            "min_ts": "2026-01-01T00:00:00.000000Z", "max_ts": "2026-01-01T00:00:00.000000Z"}))
        .unwrap();
        assert!(!p.legal_hold);
    }

    #[test]
    fn error_bodies_print_for_people_and_name_their_kind() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"code":"invalid_parameter","message":"bad date","field":"date"}"#,
        )
        .unwrap();
        assert_eq!(
            body.to_string(),
            "bad date (invalid_parameter, field `date`)"
        );
        assert_eq!(body.kind(), Some(ErrorKind::InvalidParameter));
        let newer = ErrorBody {
            code: "from_the_future".into(),
            message: "m".into(),
            field: None,
            rejected: Vec::new(),
        };
        assert_eq!(newer.kind(), None);
        assert_eq!(newer.to_string(), "m (from_the_future)");
    }

    #[test]
    fn an_event_with_an_error_member_is_not_an_error_line() {
        assert!(
            serde_json::from_str::<ErrorLine>(
                r#"{"error":{"code":"x","message":"y"},"tenant":"a"}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<ErrorLine>(r#"{"error":"not an object"}"#).is_err());
    }
}
