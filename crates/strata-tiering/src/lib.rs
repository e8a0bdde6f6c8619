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
//!
//! Queries take the closed part of their range (buckets older than `max_lateness`) from a
//! byte-bounded result cache of partial aggregates ([`planner`] splits the range); events
//! older than `max_lateness` skip hot and go straight to the tier owning their time
//! ([`late`]), bumping the cache versions of their days.

mod cache;
mod error;
pub mod exporter;
pub mod flusher;
pub mod late;
mod live_pointer;
pub mod metrics_names;
mod partition_lock;
pub mod planner;
pub mod release_gate;
pub mod replay;
mod store;

pub use cache::CacheStats;
pub use error::{Error, Result};
pub use exporter::{CompactReport, ExportReport, Exporter, ExporterConfig};
pub use flusher::{FlushReport, Flusher, FlusherConfig};
pub use metrics_names::describe_metrics;
pub use replay::{
    ReplayChecksum, ReplayConfig, ReplayCursor, ReplayItem, ReplayLimits, ReplayParams,
    ReplayRequest, ReplayStream,
};
pub use store::{AggregateAnswer, CacheStatus, IngestReport, Store, StoreConfig};
