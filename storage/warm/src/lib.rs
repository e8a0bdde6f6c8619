//! Strata's warm tier: weeks to months of queryable history behind
//! [`strata_core::warm::WarmTier`], handing closed partitions to the cold archive through
//! [`strata_core::handoff::ColdHandoff`].
//!
//! Two backends, chosen by [`WarmUrl`] like every Strata seam:
//!
//! * `embedded` (the default): [`EmbeddedWarm`], one redb file `<data-dir>/warm.redb`, no
//!   server.
//! * `postgres://…` / `postgresql://…` or a libpq `key=value` string: [`PostgresWarm`],
//!   tokio-postgres with a connection pool. With the timescaledb extension the events table
//!   is a hypertable with compression and continuous aggregates; without it, native daily
//!   partitions and rollup tables Strata maintains. The same SQL (`date_bin` from the epoch)
//!   queries both.
//!
//! ```no_run
//! # async fn demo() -> strata_core::Result<()> {
//! let url: strata_warm::WarmUrl = "embedded".parse().expect("a warm URL");
//! let config = strata_warm::WarmConfig::new("storage");
//! let warm = strata_warm::open_warm(&url, &config).await?;
//! println!("warm mode: {}", warm.mode());
//! # Ok(()) }
//! ```
//!
//! `strata serve` opens the tier through [`connect::open`], which keeps the node serving
//! while PostgreSQL is unreachable and connects in the background. The binary's
//! `strata migrate [--status]` calls [`migrate`] and [`status`]. Every backend, and every
//! wrapper this crate ships, passes the conformance suites in
//! `strata_core::conformance::warm`.

pub mod connect;
mod embedded;
mod plan;
mod postgres;
#[cfg(feature = "test-support")]
pub mod testing;
mod warm_url;

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use connect::{Connector, OpenError, WarmStart};
pub use embedded::EmbeddedWarm;
pub use postgres::{Layout, MigrationInfo, MigrationReport, MigrationStatus, PostgresWarm};
use strata_core::{Result, handoff::WarmStore, warm::WarmMode};
pub use warm_url::{ParseWarmUrlError, WarmUrl};

/// File name of the embedded store inside the data directory.
pub const EMBEDDED_FILE: &str = "warm.redb";

/// Settings of the warm tier; every field has a `serve`/`migrate` flag in the binary.
#[derive(Debug, Clone)]
pub struct WarmConfig {
    /// Data directory; the embedded store lives at `<data_dir>/warm.redb`.
    pub data_dir: PathBuf,
    /// Layout to create in a database that has none yet.
    pub layout: Layout,
    /// Apply pending migrations when opening (`serve --warm-migrate`); otherwise opening a
    /// database that needs migrations fails and asks for `strata migrate`.
    pub migrate_on_open: bool,
    /// Most pooled connections.
    pub pool_size: usize,
    /// How long to wait for a connection (connect, or a free pooled one).
    pub connect_timeout: Duration,
    /// TimescaleDB chunk interval.
    pub chunk_interval: Duration,
    /// TimescaleDB: compress chunks older than this.
    pub compress_after: Duration,
    /// TimescaleDB: least time between the continuous-aggregate refreshes that flushes
    /// trigger. Until a flushed range is refreshed, queries read raw rows there (exact, only
    /// slower); refreshing less often re-aggregates each row fewer times. Zero refreshes
    /// after every flush.
    pub rollup_refresh_interval: Duration,
    /// Plain PostgreSQL: daily partitions created ahead of today.
    pub partitions_ahead: u32,
}

impl WarmConfig {
    /// Defaults with the embedded store under `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            layout: Layout::Auto,
            migrate_on_open: false,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            chunk_interval: Duration::from_secs(86_400),
            compress_after: Duration::from_secs(7 * 86_400),
            rollup_refresh_interval: Duration::from_secs(30),
            partitions_ahead: 3,
        }
    }
}

/// Opens the warm tier `url` names, with its hand-off to the cold tier.
pub async fn open_warm(url: &WarmUrl, config: &WarmConfig) -> Result<Arc<dyn WarmStore>> {
    let warm: Arc<dyn WarmStore> = if url.is_embedded() {
        Arc::new(EmbeddedWarm::open(config.data_dir.join(EMBEDDED_FILE)).await?)
    } else {
        Arc::new(PostgresWarm::open(url.expose(), config).await?)
    };
    tracing::info!(mode = %warm.mode(), "warm tier open");
    Ok(warm)
}

/// Applies pending migrations (`strata migrate`). For `embedded` there is nothing to apply.
pub async fn migrate(url: &WarmUrl, config: &WarmConfig) -> Result<MigrationReport> {
    if url.is_embedded() {
        return Ok(MigrationReport {
            mode: WarmMode::Embedded,
            applied: Vec::new(),
            already_applied: 0,
        });
    }
    postgres::migrate(url.expose(), config).await
}

/// The migration state (`strata migrate --status`).
pub async fn status(url: &WarmUrl, config: &WarmConfig) -> Result<MigrationStatus> {
    if url.is_embedded() {
        return Ok(MigrationStatus {
            mode: Some(WarmMode::Embedded),
            timescaledb_available: false,
            timescaledb_usable: false,
            applied: Vec::new(),
            pending: Vec::new(),
        });
    }
    postgres::status(url.expose(), config).await
}
