//! Strata's tiering layer: the one [`Store`] that the APIs talk to.
//!
//! It owns the write path (decode → validate → durable append with deduplication) and the
//! read path (plan a query over the tiers, merge their partial answers). The REST and gRPC
//! handlers stay thin: they translate wire formats and call the same `Store` methods, so both
//! protocols validate, deduplicate and aggregate identically.

mod error;
pub mod metrics_names;
mod store;

pub use error::{Error, Result};
pub use metrics_names::describe_metrics;
pub use store::{AggregateAnswer, CacheStatus, IngestReport, Store};
