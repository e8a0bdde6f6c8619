//! Applying the numbered schema migrations of the top-level `migrations/` directory (embedded
//! by the `strata-migrations` crate), and reporting which are applied.
//!
//! `strata_migrations` records each applied version with the layout it was applied in, so
//! re-running is a no-op and a database never switches layout. Migrations run on a connection
//! of their own under a session-level advisory lock, each in its own transaction with its
//! version row, so replicas starting together apply each one once. Settings that are
//! configuration rather than schema (TimescaleDB's chunk interval and compression age) are
//! applied after every migrate, so changing a flag and migrating again takes effect.

use std::fmt;

use deadpool_postgres::Object;
use strata_core::{Error, Result, Tier, warm::WarmMode};
use strata_migrations::{MIGRATIONS, Migration};
use strata_types::time::duration_micros;

use super::{
    pool,
    round_trip::{batch, begin, commit, execute, query, query_one},
    sql,
};
use crate::WarmConfig;

/// The SQL of `m` for a database in `mode`.
fn sql_for(m: &Migration, mode: WarmMode) -> &'static str {
    match mode {
        WarmMode::Timescale => m.timescaledb(),
        _ => m.postgres(),
    }
}

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

/// Applied versions and the recorded mode, or nothing when the table does not exist.
async fn applied(client: &Object) -> Result<(Vec<i32>, Option<WarmMode>)> {
    const OP: &str = "migration status";
    let exists: bool = query_one(client, OP, sql::MIGRATIONS_TABLE_EXISTS, &[])
        .await?
        .get(0);
    if !exists {
        return Ok((Vec::new(), None));
    }
    let rows = query(client, OP, sql::MIGRATIONS_APPLIED, &[]).await?;
    let mut mode = None;
    let mut versions = Vec::new();
    for r in rows {
        versions.push(r.get::<_, i32>(0));
        mode = Some(parse_mode(r.get(1))?);
    }
    Ok((versions, mode))
}

/// Whether the server offers the extension at all.
async fn timescale_available(client: &Object) -> Result<bool> {
    let row = query_one(client, "migration status", sql::TIMESCALEDB_AVAILABLE, &[]).await?;
    Ok(row.get(0))
}

/// Whether the extension can be used here: installed in this database already, or offered
/// by the server and preloaded (a listed but not preloaded extension cannot be created).
async fn timescale_usable(client: &Object) -> Result<bool> {
    let row = query_one(client, "migration status", sql::TIMESCALEDB_USABLE, &[]).await?;
    Ok(row.get(0))
}

/// The migration state of the database at `url` (`strata migrate --status`).
pub(crate) async fn status(url: &str, config: &WarmConfig) -> Result<MigrationStatus> {
    let client = pool::single(url, config).await?;
    let (versions, mode) = applied(&client).await?;
    Ok(MigrationStatus {
        mode,
        timescaledb_available: timescale_available(&client).await?,
        timescaledb_usable: timescale_usable(&client).await?,
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

/// Applies pending migrations to the database at `url` in `config.layout` (or the layout
/// already recorded), then the layout's settings.
pub(crate) async fn migrate(url: &str, config: &WarmConfig) -> Result<MigrationReport> {
    const OP: &str = "migrate";
    let mut client = pool::single(url, config).await?;
    query_one(&client, OP, sql::MIGRATIONS_LOCK, &[&MIGRATION_LOCK]).await?;
    let result = migrate_locked(&mut client, config.layout).await;
    // The lock is per session; a reused connection must not keep it.
    let unlock = query_one(&client, OP, sql::MIGRATIONS_UNLOCK, &[&MIGRATION_LOCK]).await;
    let report = result?;
    unlock?;
    apply_settings(&client, report.mode, config).await?;
    Ok(report)
}

async fn migrate_locked(client: &mut Object, layout: Layout) -> Result<MigrationReport> {
    const OP: &str = "migrate";
    batch(&*client, OP, sql::MIGRATIONS_CREATE_TABLE).await?;
    let (versions, recorded) = applied(client).await?;
    let mode = match (recorded, layout) {
        (Some(m), Layout::Auto) => m,
        (Some(m), Layout::Postgres) if m == WarmMode::Postgres => m,
        (Some(m), Layout::Timescale) if m == WarmMode::Timescale => m,
        (Some(m), wanted) => {
            return Err(Error::storage(
                Tier::Warm,
                OP,
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
                    OP,
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
        let tx = begin(client, OP).await?;
        batch(&tx, OP, sql_for(m, mode)).await.map_err(|e| {
            Error::storage(
                Tier::Warm,
                OP,
                format!("{:04}_{} ({mode}): {}", m.version, m.name, e.describe()),
            )
        })?;
        execute(
            &tx,
            OP,
            sql::MIGRATIONS_RECORD,
            &[&m.version, &m.name, &mode.as_str()],
        )
        .await?;
        commit(tx, OP).await?;
        tracing::info!(version = m.version, name = m.name, %mode, "warm migration applied");
        report.applied.push(info(m));
    }
    Ok(report)
}

/// Settings that are configuration rather than schema, applied after every migrate.
async fn apply_settings(client: &Object, mode: WarmMode, config: &WarmConfig) -> Result<()> {
    const OP: &str = "migrate";
    if mode != WarmMode::Timescale {
        return Ok(());
    }
    let chunk = duration_micros(config.chunk_interval);
    let compress = duration_micros(config.compress_after);
    execute(client, OP, sql::TIMESCALEDB_CHUNK_INTERVAL, &[&chunk]).await?;
    execute(client, OP, sql::TIMESCALEDB_COMPRESSION_POLICY_REMOVE, &[]).await?;
    execute(
        client,
        OP,
        sql::TIMESCALEDB_COMPRESSION_POLICY_ADD,
        &[&compress],
    )
    .await?;
    Ok(())
}

/// The migrations not applied yet, and the layout recorded (none before the first).
pub(super) async fn pending(client: &Object) -> Result<(Vec<MigrationInfo>, Option<WarmMode>)> {
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
