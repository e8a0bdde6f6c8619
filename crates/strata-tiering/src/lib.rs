//! Strata's tiering layer: the one [`Store`] that the APIs talk to.
//!
//! It owns the write path (decode → validate → durable append with deduplication) and the
//! read path (plan a query over the tiers, merge their partial answers). The REST and gRPC
//! handlers stay thin: they translate wire formats and call the same `Store` methods, so both
//! protocols validate, deduplicate and aggregate identically.
//!
//! The [`Flusher`] is the background task that moves sealed hot data to the warm tier
//! exactly once; the `Store` reads both tiers so that every event counts once during and
//! after the move. The [`Exporter`] moves closed warm partitions to the cold archive (Parquet
//! and hash-chained manifests) exactly once and compacts it; with a cold tier the `Store`
//! reads all three tiers and serves the archive API.

mod error;
pub mod exporter;
pub mod flusher;
pub mod metrics_names;
pub mod release_gate;
mod store;

pub use error::{Error, Result};
pub use exporter::{CompactReport, ExportReport, Exporter, ExporterConfig};
pub use flusher::{FlushReport, Flusher, FlusherConfig};
pub use metrics_names::describe_metrics;
pub use store::{AggregateAnswer, CacheStatus, IngestReport, Store};
