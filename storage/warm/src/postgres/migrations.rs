//! Numbered schema migrations from the top-level `migrations/` directory, embedded at build
//! time.
//!
//! A migration is `NNNN_name.sql` (both layouts) or a pair `NNNN_name.postgres.sql` /
//! `NNNN_name.timescaledb.sql` (one per layout). `strata_migrations` records each applied
//! version with the layout it was applied in, so re-running is a no-op and a database never
//! switches layout. Migrations run under an advisory lock, each in its own transaction with
//! its version row, so replicas starting together apply each one once.

use std::fmt;

use strata_core::{Error, Result, Tier, warm::WarmMode};
use tokio_postgres::Client;

use super::pg_error;

/// One schema migration.
#[derive(Debug, Clone, Copy)]
struct Migration {
    version: i32,
    name: &'static str,
    postgres: &'static str,
    timescale: &'static str,
}

impl Migration {
    fn sql(&self, mode: WarmMode) -> &'static str {
        match mode {
            WarmMode::Timescale => self.timescale,
            _ => self.postgres,
        }
    }
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "flush_ledger",
        postgres: include_str!("../../../../migrations/0001_flush_ledger.sql"),
        timescale: include_str!("../../../../migrations/0001_flush_ledger.sql"),
    },
    Migration {
        version: 2,
        name: "events",
        postgres: include_str!("../../../../migrations/0002_events.postgres.sql"),
        timescale: include_str!("../../../../migrations/0002_events.timescaledb.sql"),
    },
    Migration {
        version: 3,
        name: "rollups",
        postgres: include_str!("../../../../migrations/0003_rollups.postgres.sql"),
        timescale: include_str!("../../../../migrations/0003_rollups.timescaledb.sql"),
    },
    Migration {
        version: 4,
        name: "cold_partitions",
        postgres: include_str!("../../../../migrations/0004_cold_partitions.sql"),
        timescale: include_str!("../../../../migrations/0004_cold_partitions.sql"),
    },
];

/// Serialises migrations of one database across processes ("STRATA" in ASCII).
const MIGRATION_LOCK: i64 = 0x5354_5241_5441;

/// Which layout to create when a database has none yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// TimescaleDB when the extension can be created, native partitions otherwise.
    #[default]
    Auto,
    /// Native daily partitions and Strata-maintained rollups, even if TimescaleDB exists.
    Postgres,
    /// TimescaleDB; fails when the extension is not available.
    Timescale,
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "postgres" => Ok(Self::Postgres),
            "timescaledb" => Ok(Self::Timescale),
            other => Err(format!(
                "expected `auto`, `postgres` or `timescaledb`, got `{other}`"
            )),
        }
    }
}

/// One migration, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    /// Its number.
    pub version: i32,
    /// Its name.
    pub name: String,
}

/// What `strata migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The layout the database uses.
    pub mode: WarmMode,
    /// Migrations applied by this run.
    pub applied: Vec<MigrationInfo>,
    /// Migrations that were already applied before.
    pub already_applied: usize,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "warm mode: {}", self.mode)?;
        if self.applied.is_empty() {
            writeln!(
                f,
                "nothing to apply ({} migrations already applied)",
                self.already_applied
            )?;
        }
        for m in &self.applied {
            writeln!(f, "applied {:04}_{}", m.version, m.name)?;
        }
        Ok(())
    }
}

/// What `strata migrate --status` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The layout the database uses, or `None` before the first migration.
    pub mode: Option<WarmMode>,
    /// Whether the server offers the timescaledb extension.
    pub timescaledb_available: bool,
    /// Whether the extension can be used here (installed in this database, or offered and
    /// preloaded): what `Layout::Auto` goes by.
    pub timescaledb_usable: bool,
    /// Applied migrations.
    pub applied: Vec<MigrationInfo>,
    /// Migrations not applied yet.
    pub pending: Vec<MigrationInfo>,
}

impl fmt::Display for MigrationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            Some(mode) => writeln!(f, "warm mode: {mode}")?,
            None => writeln!(f, "warm mode: none yet (not migrated)")?,
        }
        writeln!(
            f,
            "timescaledb extension: {}",
            match (self.timescaledb_available, self.timescaledb_usable) {
                (_, true) => "available",
                (true, false) => {
                    "not available (installed, but missing from shared_preload_libraries)"
                }
                (false, false) => "not available",
            }
        )?;
        for m in &self.applied {
            writeln!(f, "applied  {:04}_{}", m.version, m.name)?;
        }
        for m in &self.pending {
            writeln!(f, "pending  {:04}_{}", m.version, m.name)?;
        }
        Ok(())
    }
}

fn info(m: &Migration) -> MigrationInfo {
    MigrationInfo {
        version: m.version,
        name: m.name.to_owned(),
    }
}

fn parse_mode(s: &str) -> Result<WarmMode> {
    match s {
        "postgres" => Ok(WarmMode::Postgres),
        "timescaledb" => Ok(WarmMode::Timescale),
        other => Err(Error::Corrupt {
            tier: Tier::Warm,
            what: format!("strata_migrations records an unknown mode `{other}`"),
        }),
    }
}

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS strata_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    mode text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)";

/// Applied versions and the recorded mode, or nothing when the table does not exist.
async fn applied(client: &Client) -> Result<(Vec<i32>, Option<WarmMode>)> {
    let exists: bool = client
        .query_one("SELECT to_regclass('strata_migrations') IS NOT NULL", &[])
        .await
        .map_err(pg_error("migration status"))?
        .get(0);
    if !exists {
        return Ok((Vec::new(), None));
    }
    let rows = client
        .query(
            "SELECT version, mode FROM strata_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(pg_error("migration status"))?;
    let mut mode = None;
    let mut versions = Vec::new();
    for r in rows {
        versions.push(r.get::<_, i32>(0));
        mode = Some(parse_mode(r.get(1))?);
    }
    Ok((versions, mode))
}

async fn timescale_available(client: &Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
            &[],
        )
        .await
        .map_err(pg_error("migration status"))?
        .get(0))
}

/// Whether the extension can be used here: installed in this database already, or offered
/// by the server and preloaded (a listed but not preloaded extension cannot be created).
async fn timescale_usable(client: &Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') \
             OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') \
                 AND COALESCE(current_setting('shared_preload_libraries', true), '') \
                     LIKE '%timescaledb%')",
            &[],
        )
        .await
        .map_err(pg_error("migration status"))?
        .get(0))
}

/// The database's migration state.
pub(crate) async fn status(client: &Client) -> Result<MigrationStatus> {
    let (versions, mode) = applied(client).await?;
    Ok(MigrationStatus {
        mode,
        timescaledb_available: timescale_available(client).await?,
        timescaledb_usable: timescale_usable(client).await?,
        applied: MIGRATIONS
            .iter()
            .filter(|m| versions.contains(&m.version))
            .map(info)
            .collect(),
        pending: MIGRATIONS
            .iter()
            .filter(|m| !versions.contains(&m.version))
            .map(info)
            .collect(),
    })
}

/// Applies pending migrations in `layout` (or the layout already recorded).
pub(crate) async fn migrate(client: &mut Client, layout: Layout) -> Result<MigrationReport> {
    client
        .query_one("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error("migrate"))?;
    let result = migrate_locked(client, layout).await;
    // The lock is per session; a pooled or reused connection must not keep it.
    let unlock = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_error("migrate"));
    let report = result?;
    unlock?;
    Ok(report)
}

async fn migrate_locked(client: &mut Client, layout: Layout) -> Result<MigrationReport> {
    client
        .batch_execute(CREATE_TABLE)
        .await
        .map_err(pg_error("migrate"))?;
    let (versions, recorded) = applied(client).await?;
    let mode = match (recorded, layout) {
        (Some(m), Layout::Auto) => m,
        (Some(m), Layout::Postgres) if m == WarmMode::Postgres => m,
        (Some(m), Layout::Timescale) if m == WarmMode::Timescale => m,
        (Some(m), wanted) => {
            return Err(Error::storage(
                Tier::Warm,
                "migrate",
                format!(
                    "the database was migrated for `{m}`; it cannot switch to {wanted:?} \
                     (use a fresh database)"
                ),
            ));
        }
        (None, Layout::Postgres) => WarmMode::Postgres,
        (None, Layout::Timescale) => {
            if !timescale_usable(client).await? {
                return Err(Error::storage(
                    Tier::Warm,
                    "migrate",
                    "the timescaledb layout was asked for, but this server cannot load the \
                     extension (install it and add timescaledb to shared_preload_libraries)",
                ));
            }
            WarmMode::Timescale
        }
        (None, Layout::Auto) => {
            if timescale_usable(client).await? {
                WarmMode::Timescale
            } else {
                tracing::info!("timescaledb is not usable on this server: using native partitions");
                WarmMode::Postgres
            }
        }
    };
    let mut report = MigrationReport {
        mode,
        applied: Vec::new(),
        already_applied: 0,
    };
    for m in MIGRATIONS {
        if versions.contains(&m.version) {
            report.already_applied += 1;
            continue;
        }
        let tx = client.transaction().await.map_err(pg_error("migrate"))?;
        tx.batch_execute(m.sql(mode)).await.map_err(|e| {
            Error::storage(
                Tier::Warm,
                "migrate",
                format!("{:04}_{} ({mode}): {}", m.version, m.name, describe(&e)),
            )
        })?;
        tx.execute(
            "INSERT INTO strata_migrations (version, name, mode) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &mode.as_str()],
        )
        .await
        .map_err(pg_error("migrate"))?;
        tx.commit().await.map_err(pg_error("migrate"))?;
        tracing::info!(version = m.version, name = m.name, %mode, "warm migration applied");
        report.applied.push(info(m));
    }
    Ok(report)
}

/// The server's message, which `Display` of a database error leaves out.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// Whether every known migration is applied.
pub(crate) async fn pending(client: &Client) -> Result<(Vec<MigrationInfo>, Option<WarmMode>)> {
    let (versions, mode) = applied(client).await?;
    Ok((
        MIGRATIONS
            .iter()
            .filter(|m| !versions.contains(&m.version))
            .map(info)
            .collect(),
        mode,
    ))
}
