//! The seams between Strata's tiers, and the conformance suites that hold every backend to
//! them.
//!
//! * [`hot::HotTier`]: the durable, group-committed front tier that ingest writes to.
//! * [`warm::WarmTier`]: the SQL (or embedded) tier that holds weeks to months.
//! * [`handoff::ColdHandoff`]: the warm tier's side of moving closed partitions to cold
//!   exactly once (export marks and pages, the compare-and-set commit, live pointers).
//! * [`cold::BlobStore`] and [`cold::ColdTier`]: the object store and the Parquet archive
//!   on it.
//! * [`Error`]: the one error type tier backends return, carrying the tier and operation.
//! * [`conformance`]: scenario suites a backend crate runs from its own tests, so every
//!   backend (embedded or real server) is checked by the same assertions.
//!
//! Everything above these traits (the tiering crate, the APIs) takes trait objects; only the
//! binary names concrete backends.

pub mod cold;
pub mod conformance;
pub mod error;
pub mod handoff;
pub mod hot;
pub mod warm;

pub use error::{BoxError, Error, Result, Tier};
