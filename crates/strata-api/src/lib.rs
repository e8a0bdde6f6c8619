//! Strata's network APIs over the [`strata_tiering::Store`] facade: REST (axum) and gRPC
//! (tonic), with one error mapping, OpenAPI, health, reflection and request metrics.
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
//! * REST (`127.0.0.1:8080` by default): `POST /v1/events`, `GET /v1/events/{id}`,
//!   `GET /v1/query/aggregate`, `/healthz`, `/readyz`, `/metrics`, `/openapi.json`; see
//!   [`openapi::ApiDoc`] for the full contract.
//! * gRPC (`127.0.0.1:50051`): `strata.v1.Ingest`, `strata.v1.Query`, `grpc.health.v1.Health`
//!   and server reflection (v1 and v1alpha).
//!
//! Both protocols call the same `Store` methods, validate with the same code and map errors
//! in one place, [`ApiError`]: a bad field is `400`/`INVALID_ARGUMENT` naming the field, a
//! full hot tier `503` with `Retry-After`/`UNAVAILABLE`, an unknown event
//! `404`/`NOT_FOUND`. Every request is bounded: body and message size by `max_body_bytes`,
//! concurrency by [`ApiConfig::max_concurrent_requests`] (excess requests are shed, not
//! queued), time by [`ApiConfig::request_timeout`].

pub mod error;
mod grpc;
mod lookup;
pub mod metrics;
mod rest;
mod server;

pub use error::{ApiError, Error, ErrorKind, Result};
pub use metrics::install_metrics_recorder;
pub use rest::{openapi, rest_router};
pub use server::{ApiConfig, DEFAULT_GRPC_ADDR, DEFAULT_HTTP_ADDR, Readiness, Server};
