//! Strata's warm tier: weeks to months of queryable history behind
//! [`strata_core::warm::WarmTier`].
//!
//! Two backends, chosen by URL like every Strata seam:
//!
//! * `embedded` (the default): [`EmbeddedWarm`], one redb file `<data-dir>/warm.redb`, no
//!   server.
//! * `postgres://…` / `postgresql://…`: [`PostgresWarm`], tokio-postgres with a connection
//!   pool. With the timescaledb extension the events table is a hypertable with compression
//!   and continuous aggregates; without it, native daily partitions and rollup tables Strata
//!   maintains. The same SQL (`date_bin` from the epoch) queries both.
//!
//! ```no_run
//! # async fn demo() -> strata_core::Result<()> {
//! let config = strata_warm::WarmConfig::new("storage");
//! let warm = strata_warm::open_warm("embedded", &config).await?;
//! println!("warm mode: {}", warm.mode());
//! # Ok(()) }
//! ```
//!
//! The binary's `strata migrate [--status]` calls [`migrate`] and [`status`]. Every backend
//! passes the conformance suite in `strata_core::conformance::warm`.

mod embedded;
mod plan;
mod postgres;

use std::{path::PathBuf, sync::Arc, time::Duration};

pub use embedded::EmbeddedWarm;
pub use postgres::{Layout, MigrationInfo, MigrationReport, MigrationStatus, PostgresWarm};
use strata_core::{
    Error, Result, Tier,
    warm::{WarmMode, WarmTier},
};

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

/// Which backend a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Embedded,
    Postgres,
}

fn scheme(url: &str) -> Result<Scheme> {
    if url == "embedded" || url.starts_with("embedded:") {
        Ok(Scheme::Embedded)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Scheme::Postgres)
    } else {
        Err(Error::storage(
            Tier::Warm,
            "open",
            format!(
                "unknown warm tier `{}`: expected `embedded` or a postgres:// URL",
                redact(url)
            ),
        ))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Opens the warm tier `url` names: `embedded` or `postgres://…`.
pub async fn open_warm(url: &str, config: &WarmConfig) -> Result<Arc<dyn WarmTier>> {
    let warm: Arc<dyn WarmTier> = match scheme(url)? {
        Scheme::Embedded => {
            Arc::new(EmbeddedWarm::open(config.data_dir.join(EMBEDDED_FILE)).await?)
        }
        Scheme::Postgres => Arc::new(PostgresWarm::open(url, config).await?),
    };
    tracing::info!(mode = %warm.mode(), "warm tier open");
    Ok(warm)
}

/// Applies pending migrations (`strata migrate`). For `embedded` there is nothing to apply.
pub async fn migrate(url: &str, config: &WarmConfig) -> Result<MigrationReport> {
    match scheme(url)? {
        Scheme::Embedded => Ok(MigrationReport {
            mode: WarmMode::Embedded,
            applied: Vec::new(),
            already_applied: 0,
        }),
        Scheme::Postgres => postgres::migrate(url, config).await,
    }
}

/// The migration state (`strata migrate --status`).
pub async fn status(url: &str, config: &WarmConfig) -> Result<MigrationStatus> {
    match scheme(url)? {
        Scheme::Embedded => Ok(MigrationStatus {
            mode: Some(WarmMode::Embedded),
            timescaledb_available: false,
            timescaledb_usable: false,
            applied: Vec::new(),
            pending: Vec::new(),
        }),
        Scheme::Postgres => postgres::status(url, config).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_redaction() {
        assert_eq!(scheme("embedded").unwrap(), Scheme::Embedded);
        assert_eq!(
            scheme("postgres://u:p@h:5432/db").unwrap(),
            Scheme::Postgres
        );
        let err = scheme("mysql://u:secret@h/db").unwrap_err().to_string();
        assert!(err.contains("mysql://u:***@h/db"), "{err}");
        assert!(!err.contains("secret"));
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
