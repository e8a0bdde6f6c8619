//! Strata's network APIs over the [`strata_tiering::Store`] facade: REST (axum) and gRPC
//! (tonic), with one error mapping, OpenAPI, health, reflection and request metrics; and,
//! for clients, the REST bodies and an NDJSON reader ([`http`]).
//!
//! The binary calls three things:
//!
//! ```no_run
//! # async fn run(store: strata_tiering::Store) -> Result<(), strata_api::Error> {
//! use strata_api::{ApiConfig, Server, install_metrics_recorder};
//! use tokio_util::sync::CancellationToken;
//!
//! let metrics = install_metrics_recorder()?;
//! let server = Server::bind(ApiConfig::default(), store.clone(), metrics).await?;
//! let shutdown = CancellationToken::new();
//! server.run(shutdown).await?; // returns after `shutdown.cancel()` and a drain
//! store.shutdown().await.ok();
//! # Ok(()) }
//! ```
//!
//! REST (`127.0.0.1:8080` by default; [`openapi::ApiDoc`] is the full contract, served at
//! `/openapi.json`):
//!
//! | Route | What |
//! |---|---|
//! | `POST /v1/events` | store a batch (JSON array or NDJSON) |
//! | `GET /v1/events/{id}?tenant=` | one stored event |
//! | `GET /v1/query/aggregate` | per-bucket aggregates over every tier |
//! | `GET /v1/replay` | a tenant's events in event-time order, NDJSON, resumable by cursor |
//! | `GET /v1/archive/partitions` | the archived partitions of a tenant |
//! | `GET /v1/archive/events` | archived events of a range, NDJSON |
//! | `POST /v1/archive/verify` | recompute every checksum, walk every manifest chain |
//! | `POST /v1/archive/legal-hold` | place or lift the legal hold of a partition |
//! | `GET /v1/cache/stats` | the query-result cache's counters |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /openapi.json` | the OpenAPI 3 document |
//!
//! gRPC (`127.0.0.1:50051`): `strata.v1.Ingest` (`Write`, `WriteStream`), `strata.v1.Query`
//! (`Aggregate`, `GetEvent`), `strata.v1.Replay` (`Replay`), `strata.v1.Archive` (`List`,
//! `Read`, `Verify`, `SetLegalHold`), `grpc.health.v1.Health` and server reflection (v1 and
//! v1alpha).
//!
//! Both protocols call the same `Store` methods, validate with the same code and map errors
//! in one place, [`ApiError`]: a bad field is `400`/`INVALID_ARGUMENT` naming the field, a
//! full hot tier `503` with `Retry-After`/`UNAVAILABLE`, an unreachable warm tier
//! `503 warm_unavailable`, an unknown event `404`/`NOT_FOUND`, an archive call on a node
//! without a cold tier `501 cold_tier_not_configured`/`FAILED_PRECONDITION`. Every request
//! is bounded: body and message size by `max_body_bytes`, concurrency by
//! [`ApiConfig::max_concurrent_requests`] (excess requests are shed, not queued), time by
//! [`ApiConfig::request_timeout`]; what clients hold open (connections per listener, slow
//! headers, idle connections and streams, HTTP/2 streams, request body bytes in memory
//! across the node) by [`ConnectionLimits`]. Every REST error, extractor rejections and
//! unknown routes included, is the JSON [`ErrorBody`].
//!
//! Clients decode the REST answers with the same types the server encodes them with
//! ([`http`], re-exported here), and read streamed answers with [`NdjsonReader`].

pub mod error;
mod grpc;
pub mod http;
mod lookup;
pub mod metrics;
mod rest;
mod server;

pub use error::{ApiError, Error, ErrorKind, Result};
pub use metrics::install_metrics_recorder;
pub use rest::{openapi, rest_router};
pub use server::{
    ApiConfig, ConnectionLimits, DEFAULT_GRPC_ADDR, DEFAULT_HTTP_ADDR, Readiness, Server,
};

pub use self::http::{
    AggregateResponse, BucketJson, CacheStatsBody, DEFAULT_MAX_LINE_BYTES, ErrorBody, ErrorLine,
    EventJson, EventTime, HoldBody, IngestResponse, IssueBody, NdjsonError, NdjsonReader,
    NdjsonRecords, PartitionBody, PartitionsBody, RejectionBody, ReplayLine, StatusBody,
    StoredEventJson, VerifyBody, VerifyLine, VerifyProgress,
};
