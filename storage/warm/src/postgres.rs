//! The PostgreSQL / TimescaleDB warm backend: tokio-postgres behind a deadpool pool.
//!
//! Writes are one transaction per flushed batch that binary-`COPY`s the rows and records the
//! batch in the node's ledger (`write.rs`); reads push everything down into SQL
//! (`warm_tier.rs`); retention drops whole days and deletes the rest (`retention.rs`); the
//! hand-off to the cold tier pages out partitions and commits their archived versions
//! (`cold_handoff.rs`). With TimescaleDB the rollups are continuous aggregates kept exact by
//! noting and refreshing what flushes touched (`refresh.rs`); on plain PostgreSQL they are
//! tables updated in the flush's transaction, and the events table has daily partitions
//! (`partitions.rs`).
//!
//! Every statement lives in `postgres/sql/*.sql` (`sql.rs`) and goes to the server through
//! the one helper of its round-trip shape (`round_trip.rs`), which also classifies failures
//! into the tier's error kinds in one place.

mod codec;
mod cold_handoff;
mod migrations;
mod partitions;
mod pool;
mod refresh;
mod retention;
mod round_trip;
mod sql;
mod warm_tier;
mod write;

use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use strata_core::{Error, Result, Tier, warm::WarmMode};

pub use migrations::{Layout, MigrationInfo, MigrationReport, MigrationStatus};
pub(crate) use migrations::{migrate, status};

use self::{partitions::Partitions, refresh::Refresher, sql::Statements};
use crate::WarmConfig;

/// The PostgreSQL warm tier. Clone-cheap; all clones share the pool.
#[derive(Clone)]
pub struct PostgresWarm {
    pool: Pool,
    mode: WarmMode,
    statements: Arc<Statements>,
    /// Plain PostgreSQL's daily partitions known to exist.
    partitions: Arc<Partitions>,
    /// TimescaleDB's continuous-aggregate refreshes.
    refresher: Arc<Refresher>,
}

impl std::fmt::Debug for PostgresWarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWarm")
            .field("mode", &self.mode)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl PostgresWarm {
    /// Connects to `url` (a `postgres://` URL or a libpq key=value string), migrating first
    /// when `config.migrate_on_open` is set, and checks that the schema is current. Fails with
    /// [`Error::Unavailable`] when the server cannot be reached.
    pub async fn open(url: &str, config: &WarmConfig) -> Result<Self> {
        if config.migrate_on_open {
            migrate(url, config).await?;
        }
        let pool = pool::pool(url, config, config.pool_size)?;
        let client = pool::get(&pool, "open").await?;
        let (pending, mode) = migrations::pending(&client).await?;
        let mode = match (mode, pending.is_empty()) {
            (Some(mode), true) => mode,
            _ => {
                return Err(Error::storage(
                    Tier::Warm,
                    "open",
                    format!(
                        "the warm database needs migrations ({}): run `strata migrate`",
                        pending
                            .iter()
                            .map(|m| format!("{:04}_{}", m.version, m.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        let warm = Self {
            pool,
            mode,
            statements: Arc::new(Statements::new()),
            partitions: Arc::new(Partitions::new(config.partitions_ahead)),
            refresher: Arc::new(Refresher::new(config.rollup_refresh_interval)),
        };
        if mode == WarmMode::Postgres {
            let upcoming = warm.partitions.upcoming_days();
            warm.partitions.ensure(&client, &upcoming).await?;
        }
        drop(client);
        tracing::info!(%mode, "warm tier: postgres");
        Ok(warm)
    }

    /// A pooled connection, for `op`.
    async fn client(&self, op: &'static str) -> Result<Object> {
        pool::get(&self.pool, op).await
    }

    /// Refreshes the continuous aggregates over every range flushes noted, then forgets those
    /// ranges, so queries there read the aggregates again; returns how many noted ranges were
    /// cleared. Flushes (at most every `rollup_refresh_interval`) and retention passes call it
    /// on their own; call it to bring the aggregates up to date now. On plain PostgreSQL the
    /// rollups are exact at commit, and this returns 0 at once.
    pub async fn refresh_rollups(&self) -> Result<u64> {
        if self.mode != WarmMode::Timescale {
            return Ok(0);
        }
        let client = self.client("refresh_rollups").await?;
        self.refresher.now(&client).await
    }
}
