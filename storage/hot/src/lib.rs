//! Strata's hot tier: the durable, group-committed front tier that ingest writes to and that
//! answers queries over the most recent events.
//!
//! [`HotStore`] implements [`strata_core::hot::HotTier`]:
//!
//! * **redb is the truth.** Each group commit is one row of the `log` table (first seq → one
//!   blob with every event of the commit), written with the commit's source offsets in one
//!   durable transaction. Keys only grow, so the B-tree write is sequential, which is what
//!   keeps ingest near the disk's ceiling.
//! * **One writer thread** owns the write side. Appends queue in a bounded channel; the writer
//!   drains what is queued into one commit, so concurrent writers share one fsync.
//! * **Deduplication by `(tenant, id)`** happens in the writer against an in-memory index of
//!   128-bit id hashes, rebuilt from the log on open (a durable per-event index would cap
//!   ingest far lower).
//! * **Queries** read decoded, time-sorted window segments (one tenant, one event-time window,
//!   one row) from a moka cache bounded by bytes; a miss decodes the row from redb. Losing a
//!   cache entry never loses data.
//! * **Budgets**: an append that would push the unreleased log over the disk budget, or the
//!   index over its share of the memory budget, fails with `Full` and stores nothing.
//! * **Flush seam**: [`HotTier::pending_flush`](strata_core::hot::HotTier::pending_flush)
//!   hands out the oldest whole rows; `release` deletes them and advances the watermark in one
//!   durable transaction.
//!
//! ```no_run
//! use strata_hot::{HotConfig, HotStore};
//!
//! let mut config = HotConfig::new("storage/hot.redb");
//! config.disk_budget = 1 << 30;
//! let hot = HotStore::open(config)?;
//! # Ok::<(), strata_core::Error>(())
//! ```

mod codec;
mod config;
mod error;
pub mod metrics;
mod segment;
mod shared;
mod state;
mod store;
mod tables;
mod writer;

pub use config::HotConfig;
pub use store::HotStore;
