//! The PostgreSQL / TimescaleDB warm backend: tokio-postgres behind a deadpool pool.
//!
//! Writes are one transaction per flushed batch: lock the node's ledger row, binary `COPY`
//! the new rows straight into `events`, add their cells to the rollup tables (plain
//! PostgreSQL) or note their time ranges for a continuous-aggregate refresh (TimescaleDB),
//! record the batch in the ledger, commit. Reads push tenant, range, stream, filter, grouping,
//! bucket (`date_bin` from the epoch, so both layouts run the same SQL) and the hot watermark
//! down into SQL. All SQL lives in `postgres/sql/*.sql`.
//!
//! With TimescaleDB the rollups are continuous aggregates, which only hold rows below their
//! materialisation watermark after a refresh. Queries therefore read raw rows wherever a noted
//! range overlaps, and noted ranges are refreshed (at most every `rollup_refresh_interval`
//! after flushes, and on every retention pass) and then forgotten. A refresh that starts after
//! a batch committed includes its rows, so forgetting the batch's ranges afterwards keeps
//! answers exact.
//!
//! The hand-off to the cold tier (due partitions, export pages, the commit that drops exported
//! rows and records the live manifest version) lives in `postgres/cold_handoff.rs`; flushes
//! take part in it by registering their partitions under shared per-day locks.

mod cold_handoff;
mod migrations;

use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures::pin_mut;
use strata_core::{
    Error, Result, Tier,
    cold::{ExportMarks, LivePartition, PartitionKey},
    hot::FlushBatch,
    warm::{
        ColdCommit, ExportPage, HotWatermark, ScanCursor, ScanPage, ScanRequest, WarmMode,
        WarmTier, WriteOutcome,
    },
};
use strata_types::{
    AggregateQuery, Cell, Event, GroupBy, PartialAggregate, StoredEvent, TimeRange,
};
use tokio_postgres::{
    IsolationLevel, Row,
    binary_copy::BinaryCopyInWriter,
    error::SqlState,
    types::{Json, ToSql, Type},
};
use tracing::instrument;

pub use migrations::{Layout, MigrationInfo, MigrationReport, MigrationStatus};

use crate::{
    WarmConfig,
    plan::{self, HOUR, MINUTE, Source},
};

const AGGREGATE_RAW: &str = include_str!("postgres/sql/aggregate_raw.sql");
const AGGREGATE_ROLLUP: &str = include_str!("postgres/sql/aggregate_rollup.sql");
const AGGREGATE_STATE: &str = include_str!("postgres/sql/aggregate_state.sql");
const GET: &str = include_str!("postgres/sql/get.sql");
const EXISTING_IDS: &str = include_str!("postgres/sql/existing_ids.sql");
const SCAN: &str = include_str!("postgres/sql/scan.sql");
const COPY_EVENTS: &str = include_str!("postgres/sql/copy_events.sql");
const ENSURE_NODE: &str = include_str!("postgres/sql/ensure_node.sql");
const LOCK_NODE: &str = include_str!("postgres/sql/lock_node.sql");
const RECORD_BATCH: &str = include_str!("postgres/sql/record_batch.sql");
const COMMITTED_UPTO: &str = include_str!("postgres/sql/committed_upto.sql");
const UPSERT_ROLLUP: &str = include_str!("postgres/sql/upsert_rollup.sql");
const CREATE_PARTITION: &str = include_str!("postgres/sql/create_partition.sql");
const LIST_PARTITIONS: &str = include_str!("postgres/sql/list_partitions.sql");
const RETENTION_STATE: &str = include_str!("postgres/sql/retention_state.sql");
const RETENTION_DELETE: &str = include_str!("postgres/sql/retention_delete.sql");
const ROLLUP_PENDING_ADD: &str = include_str!("postgres/sql/rollup_pending_add.sql");
const ROLLUP_PENDING_LIST: &str = include_str!("postgres/sql/rollup_pending_list.sql");
const ROLLUP_PENDING_DONE: &str = include_str!("postgres/sql/rollup_pending_done.sql");
const ROLLUP_PENDING_RETENTION: &str = include_str!("postgres/sql/rollup_pending_retention.sql");
const REFRESH_ROLLUP: &str = include_str!("postgres/sql/refresh_rollup.sql");

/// Noted ranges read per refresh round, and most rounds per refresh: one refresh stays
/// bounded while flushes keep noting ranges.
const REFRESH_BATCH: i64 = 256;
const REFRESH_ROUNDS: usize = 8;
/// Tries of one aggregate refresh that collides with a concurrent refresh of an overlapping
/// window (a policy job, another node), and the pause before the first retry (then doubled up
/// to the cap): TimescaleDB refuses such a refresh at once instead of waiting for the other.
const REFRESH_TRIES: u32 = 8;
const REFRESH_BACKOFF: Duration = Duration::from_millis(50);
const REFRESH_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A batch's rows further apart than this in event time are noted as separate ranges, so a
/// few late rows do not make a refresh re-aggregate everything in between.
const PENDING_GAP: i64 = HOUR;
/// More noted ranges than this overlapping one query: read all of it raw rather than
/// splitting it into that many reads.
const MAX_STALE_RANGES: usize = 16;

/// Column types of [`COPY_EVENTS`], in its column order.
const COPY_TYPES: [Type; 11] = [
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::FLOAT8,
    Type::JSONB,
    Type::TEXT,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::INT8,
];

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the span both chrono and
/// PostgreSQL represent, to which query bounds are clamped.
const MIN_TS: i64 = -62_135_596_800_000_000;
const MAX_TS: i64 = 253_402_300_799_999_999;

/// Maps a tokio-postgres error to the tier error: lost or refused connections (and the
/// server shutting down) are [`Error::Unavailable`], everything else [`Error::Storage`].
pub(crate) fn pg_error(op: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| {
        let unavailable = e.is_closed()
            || match e.code() {
                None => e.as_db_error().is_none(),
                Some(code) => {
                    let c = code.code();
                    c.starts_with("08")
                        || *code == SqlState::ADMIN_SHUTDOWN
                        || *code == SqlState::CRASH_SHUTDOWN
                        || *code == SqlState::CANNOT_CONNECT_NOW
                        || *code == SqlState::TOO_MANY_CONNECTIONS
                }
            };
        if unavailable {
            Error::Unavailable {
                tier: Tier::Warm,
                op,
                message: e.to_string(),
            }
        } else {
            let message = match e.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => e.to_string(),
            };
            Error::storage(Tier::Warm, op, message)
        }
    }
}

fn pool_error(op: &'static str) -> impl Fn(deadpool_postgres::PoolError) -> Error {
    move |e| match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(op)(e),
        other => Error::Unavailable {
            tier: Tier::Warm,
            op,
            message: other.to_string(),
        },
    }
}

fn ts(micros: i64) -> DateTime<Utc> {
    // Clamped into the representable span, so the conversion cannot fail.
    DateTime::from_timestamp_micros(micros.clamp(MIN_TS, MAX_TS)).unwrap_or_default()
}

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| Error::storage(Tier::Warm, "write_batch", "seq above i64::MAX"))
}

fn seq_u64(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("negative seq {seq} in warm events"),
    })
}

/// `{stream_filter}` replaced by `AND stream = $n`, or removed.
fn with_stream(sql: &str, param: Option<usize>) -> String {
    sql.replace(
        "{stream_filter}",
        &param.map_or(String::new(), |n| format!("AND stream = ${n}")),
    )
}

/// Prepared SQL text variants, built once.
#[derive(Debug)]
struct Sql {
    raw: [String; 2],
    rollup_1m: [String; 2],
    rollup_1h: [String; 2],
    scan: [String; 2],
    upsert_1m: String,
    upsert_1h: String,
}

impl Sql {
    fn new() -> Self {
        let rollup = |table: &str| {
            let s = AGGREGATE_ROLLUP.replace("{rollup}", table);
            [with_stream(&s, None), with_stream(&s, Some(5))]
        };
        Self {
            raw: [
                with_stream(AGGREGATE_RAW, None),
                with_stream(AGGREGATE_RAW, Some(11)),
            ],
            rollup_1m: rollup("events_1m"),
            rollup_1h: rollup("events_1h"),
            scan: [with_stream(SCAN, None), with_stream(SCAN, Some(10))],
            upsert_1m: UPSERT_ROLLUP.replace("{rollup}", "events_1m"),
            upsert_1h: UPSERT_ROLLUP.replace("{rollup}", "events_1h"),
        }
    }
}

/// The PostgreSQL warm tier. Clone-cheap; all clones share the pool.
#[derive(Clone)]
pub struct PostgresWarm {
    pool: Pool,
    mode: WarmMode,
    sql: Arc<Sql>,
    /// Days (as `YYYYMMDD`) whose partition is known to exist (plain mode only).
    partitions: Arc<Mutex<HashSet<u32>>>,
    partitions_ahead: u32,
    /// When this process last refreshed the continuous aggregates; held while refreshing, so
    /// one refresh runs at a time per process (TimescaleDB mode only).
    refresh: Arc<tokio::sync::Mutex<Option<Instant>>>,
    refresh_interval: Duration,
}

impl std::fmt::Debug for PostgresWarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWarm")
            .field("mode", &self.mode)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    url.parse::<tokio_postgres::Config>().map_err(|e| {
        Error::storage(
            Tier::Warm,
            "open",
            format!("not a PostgreSQL connection URL: {e}"),
        )
    })
}

fn pg_config(url: &str, config: &WarmConfig) -> Result<tokio_postgres::Config> {
    let mut pg = parse_url(url)?;
    if pg.get_connect_timeout().is_none() {
        pg.connect_timeout(config.connect_timeout);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("strata");
    }
    Ok(pg)
}

/// Refuses a URL that requires TLS when this build cannot do TLS, with a clear message
/// instead of a failed handshake.
fn check_tls(pg: &tokio_postgres::Config) -> Result<()> {
    let required = matches!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    if required && !cfg!(feature = "tls") {
        return Err(Error::storage(
            Tier::Warm,
            "open",
            "the URL requires TLS (sslmode=require) but this build has no TLS support \
             (build strata-warm with the `tls` feature)",
        ));
    }
    Ok(())
}

/// The TLS connector: rustls with the system's root certificates. With `sslmode=prefer`
/// (the default) a server without TLS is still reached in plain text.
#[cfg(feature = "tls")]
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A certificate the store cannot parse is skipped like other TLS clients do.
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::storage(Tier::Warm, "open", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A pool manager over `pg`, with TLS when built with the `tls` feature.
fn manager(pg: tokio_postgres::Config) -> Result<Manager> {
    check_tls(&pg)?;
    let config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    #[cfg(feature = "tls")]
    let manager = Manager::from_config(pg, tls_connector()?, config);
    #[cfg(not(feature = "tls"))]
    let manager = Manager::from_config(pg, tokio_postgres::NoTls, config);
    Ok(manager)
}

/// One connection outside the pool (migrations hold a session-level advisory lock).
async fn connect_one(url: &str, config: &WarmConfig) -> Result<tokio_postgres::Client> {
    let pg = pg_config(url, config)?;
    check_tls(&pg)?;
    #[cfg(feature = "tls")]
    let (client, connection) = pg
        .connect(tls_connector()?)
        .await
        .map_err(pg_error("connect"))?;
    #[cfg(not(feature = "tls"))]
    let (client, connection) = pg
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(pg_error("connect"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "warm migration connection closed");
        }
    });
    Ok(client)
}

/// Applies pending migrations; see [`migrations`].
pub(crate) async fn migrate(url: &str, config: &WarmConfig) -> Result<MigrationReport> {
    let mut client = connect_one(url, config).await?;
    let report = migrations::migrate(&mut client, config.layout).await?;
    apply_settings(&client, report.mode, config).await?;
    Ok(report)
}

/// The database's migration state.
pub(crate) async fn status(url: &str, config: &WarmConfig) -> Result<MigrationStatus> {
    let client = connect_one(url, config).await?;
    migrations::status(&client).await
}

/// Settings that are configuration rather than schema, applied after every migrate.
async fn apply_settings(
    client: &tokio_postgres::Client,
    mode: WarmMode,
    config: &WarmConfig,
) -> Result<()> {
    if mode != WarmMode::Timescale {
        return Ok(());
    }
    let chunk = duration_micros(config.chunk_interval);
    let compress = duration_micros(config.compress_after);
    client
        .execute(
            "SELECT set_chunk_time_interval('events', $1::int8 * INTERVAL '1 microsecond')",
            &[&chunk],
        )
        .await
        .map_err(pg_error("migrate"))?;
    client
        .execute(
            "SELECT remove_compression_policy('events', if_exists => true)",
            &[],
        )
        .await
        .map_err(pg_error("migrate"))?;
    client
        .execute(
            "SELECT add_compression_policy('events', \
             compress_after => $1::int8 * INTERVAL '1 microsecond')",
            &[&compress],
        )
        .await
        .map_err(pg_error("migrate"))?;
    Ok(())
}

fn duration_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn day_of(micros: i64) -> NaiveDate {
    ts(micros).date_naive()
}

fn day_key(d: NaiveDate) -> u32 {
    d.format("%Y%m%d").to_string().parse().unwrap_or(0)
}

impl PostgresWarm {
    /// Connects to `url`, migrating first when `config.migrate_on_open` is set, and checks
    /// that the schema is current. Fails when the server cannot be reached.
    pub async fn open(url: &str, config: &WarmConfig) -> Result<Self> {
        if config.migrate_on_open {
            migrate(url, config).await?;
        }
        let manager = manager(pg_config(url, config)?)?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| Error::storage(Tier::Warm, "open", e))?;
        let client = pool.get().await.map_err(pool_error("open"))?;
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
        drop(client);
        let warm = Self {
            pool,
            mode,
            sql: Arc::new(Sql::new()),
            partitions: Arc::new(Mutex::new(HashSet::new())),
            partitions_ahead: config.partitions_ahead,
            refresh: Arc::new(tokio::sync::Mutex::new(None)),
            refresh_interval: config.rollup_refresh_interval,
        };
        if mode == WarmMode::Postgres {
            let client = warm.client("open").await?;
            warm.ensure_partitions(&client, &warm.upcoming_days())
                .await?;
        }
        tracing::info!(%mode, "warm tier: postgres");
        Ok(warm)
    }

    /// Today and the `partitions_ahead` days after it.
    fn upcoming_days(&self) -> Vec<NaiveDate> {
        let today = Utc::now().date_naive();
        (0..=self.partitions_ahead)
            .filter_map(|i| today.checked_add_days(chrono::Days::new(u64::from(i))))
            .collect()
    }

    async fn client(&self, op: &'static str) -> Result<Object> {
        self.pool.get().await.map_err(pool_error(op))
    }

    fn known_partitions(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        // A poisoned cache only means a panic elsewhere; the set itself is still valid.
        self.partitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Creates the daily partitions of `days` that do not exist yet (plain mode). Runs
    /// outside the batch transaction: creating a partition locks the parent table, and
    /// doing it in its own short transaction keeps that lock brief.
    async fn ensure_partitions(&self, client: &Object, days: &[NaiveDate]) -> Result<()> {
        let missing: Vec<NaiveDate> = {
            let known = self.known_partitions();
            days.iter()
                .copied()
                .filter(|d| !known.contains(&day_key(*d)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let existing: HashSet<String> = client
            .query(LIST_PARTITIONS, &[])
            .await
            .map_err(pg_error("create partition"))?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        for day in missing {
            let name = format!("events_p{}", day.format("%Y%m%d"));
            if !existing.contains(&name) {
                let next = day.succ_opt().unwrap_or(day);
                let sql = CREATE_PARTITION
                    .replace("{name}", &name)
                    .replace("{from}", &format!("{} 00:00:00+00", day.format("%Y-%m-%d")))
                    .replace("{to}", &format!("{} 00:00:00+00", next.format("%Y-%m-%d")));
                if let Err(e) = client.batch_execute(&sql).await {
                    // Another node may have created it between our listing and now.
                    let raced = matches!(
                        e.code(),
                        Some(c) if *c == SqlState::DUPLICATE_TABLE || *c == SqlState::UNIQUE_VIOLATION
                    );
                    if !raced {
                        return Err(pg_error("create partition")(e));
                    }
                }
                tracing::debug!(partition = %name, "warm partition created");
            }
            self.known_partitions().insert(day_key(day));
        }
        Ok(())
    }

    async fn write(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        const OP: &str = "write_batch";
        let mut client = self.client(OP).await?;
        if self.mode == WarmMode::Postgres {
            let mut days: Vec<NaiveDate> =
                batch.events.iter().map(|r| day_of(r.event.ts)).collect();
            days.sort_unstable();
            days.dedup();
            self.ensure_partitions(&client, &days).await?;
        }
        let tx = client
            .build_transaction()
            .start()
            .await
            .map_err(pg_error(OP))?;
        let ensure = tx.prepare_cached(ENSURE_NODE).await.map_err(pg_error(OP))?;
        tx.execute(&ensure, &[&node]).await.map_err(pg_error(OP))?;
        let lock = tx.prepare_cached(LOCK_NODE).await.map_err(pg_error(OP))?;
        let row = tx.query_one(&lock, &[&node]).await.map_err(pg_error(OP))?;
        let committed = seq_u64(row.get::<_, i64>(0))?;
        let cutoff = row
            .get::<_, Option<DateTime<Utc>>>(1)
            .map_or(i64::MIN, |t| t.timestamp_micros());
        // Rows at or below the node's mark are stored already (a replay after a crash);
        // rows older than the retention cutoff would be dropped at once, so they are not
        // stored (the ledger still records them as handled).
        let new: Vec<&StoredEvent> = batch.events.iter().filter(|r| r.seq > committed).collect();
        let Some(last) = new.iter().map(|r| r.seq).max() else {
            tx.rollback().await.map_err(pg_error(OP))?;
            return Ok(WriteOutcome::AlreadyWritten);
        };
        let first = new.first().map_or(last, |r| r.seq);
        let kept: Vec<&StoredEvent> = new
            .iter()
            .copied()
            .filter(|r| r.event.ts >= cutoff)
            .collect();

        if !kept.is_empty() {
            // Before any row, rollup cell or partition entry of the batch: the shared day
            // locks order this batch against a cold commit of the same days.
            let parts: BTreeSet<(i64, &str, &str)> = kept
                .iter()
                .map(|r| {
                    let e = &r.event;
                    (
                        cold_handoff::day_of_micros(e.ts),
                        e.tenant.as_str(),
                        e.stream.as_str(),
                    )
                })
                .collect();
            let (mut slots, mut days, mut tenants, mut streams) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (day, tenant, stream) in parts {
                slots.push(cold_handoff::day_lock_slot(day));
                days.push(day);
                tenants.push(tenant);
                streams.push(stream);
            }
            let register = tx
                .prepare_cached(cold_handoff::REGISTER_PARTITIONS)
                .await
                .map_err(pg_error(OP))?;
            tx.execute(
                &register,
                &[
                    &cold_handoff::DAY_LOCK_CLASS,
                    &slots,
                    &tenants,
                    &streams,
                    &days,
                ],
            )
            .await
            .map_err(pg_error(OP))?;
            let sink = tx.copy_in(COPY_EVENTS).await.map_err(pg_error(OP))?;
            let writer = BinaryCopyInWriter::new(sink, &COPY_TYPES);
            pin_mut!(writer);
            for r in &kept {
                let e = &r.event;
                let (t, it, seq) = (ts(e.ts), ts(r.ingest_ts), seq_i64(r.seq)?);
                let attrs = Json(&e.attrs);
                let row: [&(dyn ToSql + Sync); 11] = [
                    &e.tenant, &e.stream, &e.key, &e.id, &t, &e.value, &attrs, &e.payload, &it,
                    &node, &seq,
                ];
                writer.as_mut().write(&row).await.map_err(pg_error(OP))?;
            }
            writer.finish().await.map_err(pg_error(OP))?;
            match self.mode {
                WarmMode::Timescale => {
                    let (from, to): (Vec<_>, Vec<_>) = pending_ranges(&kept)
                        .into_iter()
                        .map(|r| (ts(r.from), ts(r.to)))
                        .unzip();
                    let add = tx
                        .prepare_cached(ROLLUP_PENDING_ADD)
                        .await
                        .map_err(pg_error(OP))?;
                    tx.execute(&add, &[&from, &to])
                        .await
                        .map_err(pg_error(OP))?;
                }
                _ => {
                    for (width, sql) in [(MINUTE, &self.sql.upsert_1m), (HOUR, &self.sql.upsert_1h)]
                    {
                        let cells = plan::rollup_deltas(kept.iter().copied(), width);
                        let cols = RollupColumns::of(&cells);
                        let stmt = tx.prepare_cached(sql).await.map_err(pg_error(OP))?;
                        tx.execute(
                            &stmt,
                            &[
                                &cols.tenant,
                                &cols.stream,
                                &cols.bucket,
                                &cols.n,
                                &cols.n_value,
                                &cols.sum,
                                &cols.min,
                                &cols.max,
                            ],
                        )
                        .await
                        .map_err(pg_error(OP))?;
                    }
                }
            }
        }
        let record = tx
            .prepare_cached(RECORD_BATCH)
            .await
            .map_err(pg_error(OP))?;
        tx.execute(
            &record,
            &[
                &node,
                &seq_i64(first)?,
                &seq_i64(last)?,
                &(new.len() as i64),
            ],
        )
        .await
        .map_err(pg_error(OP))?;
        tx.commit().await.map_err(pg_error(OP))?;
        if self.mode == WarmMode::Timescale {
            self.refresh_after_flush(&client).await;
        }
        Ok(WriteOutcome::Written {
            rows: new.len() as u64,
        })
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
        let mut last = self.refresh.lock().await;
        let cleared = self.refresh_noted(&client).await;
        *last = Some(Instant::now());
        cleared
    }

    /// The refresh after a flush or a cold commit: skipped while another one runs in this
    /// process or when the last one is more recent than the refresh interval. Whatever it
    /// leaves is refreshed by a later flush or retention pass; until then queries read raw
    /// rows there. A failure is only logged, since the batch itself is committed.
    async fn refresh_after_flush(&self, client: &Object) {
        let Ok(mut last) = self.refresh.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < self.refresh_interval) {
            return;
        }
        let result = self.refresh_noted(client).await;
        *last = Some(Instant::now());
        if let Err(e) = result {
            tracing::warn!(
                error = %e,
                "warm: continuous aggregate refresh failed; queries read raw rows over the \
                 ranges it would have covered until a later refresh succeeds"
            );
        }
    }

    /// Refreshes noted ranges, oldest first, in bounded rounds. The caller holds `refresh`.
    async fn refresh_noted(&self, client: &Object) -> Result<u64> {
        const OP: &str = "refresh_rollups";
        let list = client
            .prepare_cached(ROLLUP_PENDING_LIST)
            .await
            .map_err(pg_error(OP))?;
        let done = client
            .prepare_cached(ROLLUP_PENDING_DONE)
            .await
            .map_err(pg_error(OP))?;
        let mut cleared = 0;
        for _ in 0..REFRESH_ROUNDS {
            let rows = client
                .query(&list, &[&REFRESH_BATCH])
                .await
                .map_err(pg_error(OP))?;
            let noted: Vec<(i64, TimeRange)> = rows
                .iter()
                .map(|r| {
                    let from: DateTime<Utc> = r.get(1);
                    let to: DateTime<Utc> = r.get(2);
                    let range = TimeRange {
                        from: from.timestamp_micros(),
                        to: to.timestamp_micros(),
                    };
                    (r.get(0), range)
                })
                .collect();
            for (window, ids) in coalesce(&noted) {
                self.refresh_window(client, window).await?;
                client.execute(&done, &[&ids]).await.map_err(pg_error(OP))?;
                cleared += ids.len() as u64;
            }
            if (rows.len() as i64) < REFRESH_BATCH {
                break;
            }
        }
        Ok(cleared)
    }

    /// Refreshes both aggregates over `window`, widened to their buckets: the per-minute one
    /// first, since the hourly one is computed from it.
    async fn refresh_window(&self, client: &Object, window: TimeRange) -> Result<()> {
        const OP: &str = "refresh_rollups";
        // CALL cannot run inside a transaction block; a lone extended-protocol statement on a
        // pooled connection outside any transaction is not in one.
        let stmt = client
            .prepare_cached(REFRESH_ROLLUP)
            .await
            .map_err(pg_error(OP))?;
        for (view, width) in [("events_1m", MINUTE), ("events_1h", HOUR)] {
            let from = ts(plan::floor_to(window.from, width));
            let to = ts(plan::ceil_to(window.to, width));
            let mut pause = REFRESH_BACKOFF;
            for attempt in 1..=REFRESH_TRIES {
                match client.execute(&stmt, &[&view, &from, &to]).await {
                    Ok(_) => break,
                    Err(e)
                        if attempt < REFRESH_TRIES
                            && e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
                    {
                        tracing::debug!(
                            view,
                            attempt,
                            "warm: concurrent aggregate refresh, retrying"
                        );
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(REFRESH_BACKOFF_MAX);
                    }
                    Err(e) => return Err(pg_error(OP)(e)),
                }
            }
        }
        Ok(())
    }

    async fn aggregate_raw(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        q: &AggregateQuery,
        range: TimeRange,
        wm: &HotWatermark,
        out: &mut PartialAggregate,
    ) -> Result<()> {
        const OP: &str = "aggregate";
        let (kind, attr): (i32, Option<&str>) = match &q.group_by {
            GroupBy::None => (0, None),
            GroupBy::Key => (1, None),
            GroupBy::Attr(name) => (2, Some(name)),
        };
        let (fname, fvalue) = match &q.filter {
            Some(f) => (Some(f.name.as_str()), Some(f.value.as_str())),
            None => (None, None),
        };
        let (from, to, released) = (ts(range.from), ts(range.to), wm.released_upto_i64());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &q.tenant, &from, &to, &q.bucket, &wm.node, &released, &kind, &attr, &fname, &fvalue,
        ];
        if let Some(s) = &q.stream {
            params.push(s);
        }
        let sql = &self.sql.raw[usize::from(q.stream.is_some())];
        let stmt = client.prepare_cached(sql).await.map_err(pg_error(OP))?;
        for row in client.query(&stmt, &params).await.map_err(pg_error(OP))? {
            let bucket: DateTime<Utc> = row.get(0);
            let group: Option<String> = row.get(1);
            out.cells
                .entry((bucket.timestamp_micros(), group))
                .or_default()
                .merge(&cell_from(&row, 2)?);
        }
        Ok(())
    }

    async fn aggregate_rollup(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        q: &AggregateQuery,
        width: i64,
        range: TimeRange,
        out: &mut PartialAggregate,
    ) -> Result<()> {
        const OP: &str = "aggregate";
        let (from, to) = (ts(range.from), ts(range.to));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&q.tenant, &from, &to, &q.bucket];
        if let Some(s) = &q.stream {
            params.push(s);
        }
        let variants = if width == HOUR {
            &self.sql.rollup_1h
        } else {
            &self.sql.rollup_1m
        };
        let stmt = client
            .prepare_cached(&variants[usize::from(q.stream.is_some())])
            .await
            .map_err(pg_error(OP))?;
        for row in client.query(&stmt, &params).await.map_err(pg_error(OP))? {
            let bucket: DateTime<Utc> = row.get(0);
            out.cells
                .entry((bucket.timestamp_micros(), None))
                .or_default()
                .merge(&cell_from(&row, 1)?);
        }
        Ok(())
    }
}

/// The event-time ranges a batch's continuous-aggregate refresh must cover: whole minutes
/// around runs of rows, split where rows are more than [`PENDING_GAP`] apart.
fn pending_ranges(rows: &[&StoredEvent]) -> Vec<TimeRange> {
    let mut times: Vec<i64> = rows.iter().map(|r| r.event.ts).collect();
    times.sort_unstable();
    let mut out: Vec<TimeRange> = Vec::new();
    for t in times {
        let from = plan::floor_to(t, MINUTE);
        let to = from.saturating_add(MINUTE);
        match out.last_mut() {
            Some(last) if from - last.to <= PENDING_GAP => last.to = last.to.max(to),
            _ => out.push(TimeRange { from, to }),
        }
    }
    out
}

/// Noted ranges merged where they overlap or touch, each window with the ids it covers.
fn coalesce(noted: &[(i64, TimeRange)]) -> Vec<(TimeRange, Vec<i64>)> {
    let mut sorted = noted.to_vec();
    sorted.sort_by_key(|(_, r)| r.from);
    let mut out: Vec<(TimeRange, Vec<i64>)> = Vec::new();
    for (id, r) in sorted {
        match out.last_mut() {
            Some((window, ids)) if r.from <= window.to => {
                window.to = window.to.max(r.to);
                ids.push(id);
            }
            _ => out.push((r, vec![id])),
        }
    }
    out
}

/// A cell from columns `count, value count, sum, min, max` starting at `at`.
fn cell_from(row: &Row, at: usize) -> Result<Cell> {
    let count: i64 = row.get(at);
    let value_count: i64 = row.get(at + 1);
    let corrupt = |what: &str| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("negative {what} in a warm aggregate"),
    };
    Ok(Cell {
        count: u64::try_from(count).map_err(|_| corrupt("count"))?,
        value_count: u64::try_from(value_count).map_err(|_| corrupt("value count"))?,
        sum: row.get::<_, Option<f64>>(at + 2).unwrap_or(0.0),
        min: row.get::<_, Option<f64>>(at + 3).unwrap_or(f64::INFINITY),
        max: row
            .get::<_, Option<f64>>(at + 4)
            .unwrap_or(f64::NEG_INFINITY),
    })
}

/// A batch's rollup cells as parallel arrays for `unnest`.
#[derive(Default)]
struct RollupColumns<'a> {
    tenant: Vec<&'a str>,
    stream: Vec<&'a str>,
    bucket: Vec<DateTime<Utc>>,
    n: Vec<i64>,
    n_value: Vec<i64>,
    sum: Vec<Option<f64>>,
    min: Vec<Option<f64>>,
    max: Vec<Option<f64>>,
}

impl<'a> RollupColumns<'a> {
    fn of(cells: &'a BTreeMap<(String, String, i64), Cell>) -> Self {
        let mut c = Self::default();
        for ((tenant, stream, bucket), cell) in cells {
            let has = cell.value_count > 0;
            c.tenant.push(tenant);
            c.stream.push(stream);
            c.bucket.push(ts(*bucket));
            c.n.push(i64::try_from(cell.count).unwrap_or(i64::MAX));
            c.n_value
                .push(i64::try_from(cell.value_count).unwrap_or(i64::MAX));
            c.sum.push(has.then_some(cell.sum));
            c.min.push(has.then_some(cell.min));
            c.max.push(has.then_some(cell.max));
        }
        c
    }
}

fn stored_from(row: &Row, tenant: &str) -> Result<StoredEvent> {
    let attrs: Json<BTreeMap<String, String>> = row.try_get(5).map_err(|e| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("warm attrs are not a string map: {e}"),
    })?;
    let t: DateTime<Utc> = row.get(3);
    let it: DateTime<Utc> = row.get(7);
    Ok(StoredEvent {
        event: Event {
            tenant: tenant.to_owned(),
            stream: row.get(0),
            key: row.get(1),
            id: row.get(2),
            ts: t.timestamp_micros(),
            value: row.get(4),
            attrs: attrs.0,
            payload: row.get(6),
        },
        ingest_ts: it.timestamp_micros(),
        seq: seq_u64(row.get(8))?,
    })
}

#[async_trait]
impl WarmTier for PostgresWarm {
    fn mode(&self) -> WarmMode {
        self.mode
    }

    #[instrument(skip_all, fields(node = %node, rows = batch.events.len()))]
    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        let result = self.write(node, batch).await;
        if result.is_err() {
            // A failed write may be due to a partition retention dropped; forget what we
            // believe exists so the next attempt checks again.
            self.known_partitions().clear();
        }
        result
    }

    async fn committed_upto(&self, node: &str) -> Result<u64> {
        let client = self.client("committed_upto").await?;
        let row = client
            .query_one(COMMITTED_UPTO, &[&node])
            .await
            .map_err(pg_error("committed_upto"))?;
        seq_u64(row.get(0))
    }

    #[instrument(skip_all)]
    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        const OP: &str = "aggregate";
        let mut out = PartialAggregate::default();
        let Some(range) = plan::clip(query.range, MIN_TS) else {
            return Ok(out);
        };
        let range = TimeRange {
            from: range.from,
            to: range.to.min(MAX_TS),
        };
        if range.from >= range.to {
            return Ok(out);
        }
        let mut client = self.client(OP).await?;
        if !plan::rollup_shaped(query) {
            // Raw rows only: retention deletes atomically, so no snapshot juggling needed.
            self.aggregate_raw(&client, query, range, watermark, &mut out)
                .await?;
            return Ok(out);
        }
        // The exactness check and the reads share one snapshot.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error(OP))?;
        let state = tx
            .prepare_cached(AGGREGATE_STATE)
            .await
            .map_err(pg_error(OP))?;
        let row = tx
            .query_one(&state, &[&watermark.node, &ts(range.from), &ts(range.to)])
            .await
            .map_err(pg_error(OP))?;
        let committed = seq_u64(row.get(0))?;
        let cutoff = row
            .get::<_, Option<DateTime<Utc>>>(1)
            .map_or(i64::MIN, |t| t.timestamp_micros());
        let stale_from: Vec<DateTime<Utc>> = row.get(2);
        let stale_to: Vec<DateTime<Utc>> = row.get(3);
        let stale: Vec<TimeRange> = stale_from
            .iter()
            .zip(&stale_to)
            .map(|(f, t)| TimeRange {
                from: f.timestamp_micros(),
                to: t.timestamp_micros(),
            })
            .collect();
        let Some(range) = plan::clip(range, cutoff) else {
            tx.rollback().await.map_err(pg_error(OP))?;
            return Ok(out);
        };
        let use_rollups = committed <= watermark.released_upto && stale.len() <= MAX_STALE_RANGES;
        for seg in plan::plan_around(query, range, use_rollups, &stale) {
            match seg.source {
                Source::Raw => {
                    self.aggregate_raw(&tx, query, seg.range, watermark, &mut out)
                        .await?;
                }
                Source::Rollup(w) => {
                    self.aggregate_rollup(&tx, query, w, seg.range, &mut out)
                        .await?;
                }
            }
        }
        tx.rollback().await.map_err(pg_error(OP))?;
        Ok(out)
    }

    #[instrument(skip_all)]
    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> Result<Option<StoredEvent>> {
        let client = self.client("get").await?;
        let stmt = client.prepare_cached(GET).await.map_err(pg_error("get"))?;
        let released = watermark.released_upto_i64();
        let row = client
            .query_opt(&stmt, &[&tenant, &id, &watermark.node, &released])
            .await
            .map_err(pg_error("get"))?;
        row.map(|r| stored_from(&r, tenant)).transpose()
    }

    #[instrument(skip_all)]
    async fn existing_ids(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, u64>> {
        const OP: &str = "existing_ids";
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let client = self.client(OP).await?;
        let stmt = client
            .prepare_cached(EXISTING_IDS)
            .await
            .map_err(pg_error(OP))?;
        let rows = client
            .query(&stmt, &[&tenant, &ids])
            .await
            .map_err(pg_error(OP))?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0).map_err(pg_error(OP))?;
                let seq: i64 = r.try_get(1).map_err(pg_error(OP))?;
                Ok((id, u64::try_from(seq).unwrap_or_default()))
            })
            .collect()
    }

    #[instrument(skip_all)]
    async fn scan(&self, request: &ScanRequest, watermark: &HotWatermark) -> Result<ScanPage> {
        const OP: &str = "scan";
        let mut page = ScanPage::default();
        let from = request.range.from.max(MIN_TS);
        let to = request.range.to.min(MAX_TS);
        let (c_ts, c_seq, c_node) = match &request.after {
            Some(c) => (c.ts, seq_i64(c.seq)?, c.node.clone()),
            None => (from, -1, String::new()),
        };
        let lower = from.max(c_ts);
        if lower >= to {
            return Ok(page);
        }
        let limit = i64::try_from(request.limit.max(1)).unwrap_or(i64::MAX);
        let (lo, hi, cts) = (ts(lower), ts(to), ts(c_ts));
        let released = watermark.released_upto_i64();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &request.tenant,
            &lo,
            &hi,
            &watermark.node,
            &released,
            &cts,
            &c_seq,
            &c_node,
            &limit,
        ];
        if let Some(s) = &request.stream {
            params.push(s);
        }
        let client = self.client(OP).await?;
        let stmt = client
            .prepare_cached(&self.sql.scan[usize::from(request.stream.is_some())])
            .await
            .map_err(pg_error(OP))?;
        let rows = client.query(&stmt, &params).await.map_err(pg_error(OP))?;
        let full = rows.len() as i64 == limit;
        let mut last = None;
        for row in &rows {
            let e = stored_from(row, &request.tenant)?;
            last = Some(ScanCursor {
                ts: e.event.ts,
                seq: e.seq,
                node: row.get(9),
            });
            page.events.push(e);
        }
        if full {
            page.next = last;
        }
        Ok(page)
    }

    #[instrument(skip_all)]
    async fn drop_before(&self, before: i64) -> Result<u64> {
        const OP: &str = "drop_before";
        let cutoff = ts(before);
        let mut client = self.client(OP).await?;
        let tx = client
            .build_transaction()
            .start()
            .await
            .map_err(pg_error(OP))?;
        tx.query_one(RETENTION_STATE, &[&cutoff])
            .await
            .map_err(pg_error(OP))?;
        let mut dropped_days = Vec::new();
        match self.mode {
            WarmMode::Timescale => {
                tx.execute(
                    "SELECT drop_chunks('events', older_than => $1::timestamptz)",
                    &[&cutoff],
                )
                .await
                .map_err(pg_error(OP))?;
                tx.execute(ROLLUP_PENDING_RETENTION, &[&cutoff])
                    .await
                    .map_err(pg_error(OP))?;
            }
            _ => {
                for row in tx.query(LIST_PARTITIONS, &[]).await.map_err(pg_error(OP))? {
                    let name: String = row.get(0);
                    let Some(day) = name
                        .strip_prefix("events_p")
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
                    else {
                        continue;
                    };
                    let end = day
                        .succ_opt()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|d| d.and_utc().timestamp_micros());
                    if end.is_some_and(|end| end <= before) {
                        // The name was read from the catalog and matched events_pYYYYMMDD.
                        tx.batch_execute(&format!("DROP TABLE {name}"))
                            .await
                            .map_err(pg_error(OP))?;
                        dropped_days.push(day_key(day));
                    }
                }
                for table in ["events_1m", "events_1h"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE bucket < $1"),
                        &[&cutoff],
                    )
                    .await
                    .map_err(pg_error(OP))?;
                }
            }
        }
        let removed = tx
            .execute(RETENTION_DELETE, &[&cutoff])
            .await
            .map_err(pg_error(OP))?;
        // Export candidates of days now wholly gone; cold pointers stay, as the archive
        // keeps those partitions.
        tx.execute(
            cold_handoff::WARM_PARTITIONS_RETENTION,
            &[&cold_handoff::day_of_micros(before)],
        )
        .await
        .map_err(pg_error(OP))?;
        tx.commit().await.map_err(pg_error(OP))?;
        {
            let mut known = self.known_partitions();
            for d in dropped_days {
                known.remove(&d);
            }
        }
        match self.mode {
            WarmMode::Postgres => {
                // Retention runs periodically, so it is also where upcoming days get their
                // partitions, keeping DDL off the flush path.
                self.ensure_partitions(&client, &self.upcoming_days())
                    .await?;
            }
            WarmMode::Timescale => {
                // ... and where ranges the flushes left unrefreshed are caught up, so a quiet
                // tier does not read raw rows there for longer than a retention interval.
                let mut last = self.refresh.lock().await;
                let refreshed = self.refresh_noted(&client).await;
                *last = Some(Instant::now());
                if let Err(e) = refreshed {
                    tracing::warn!(error = %e, "warm: continuous aggregate refresh after retention failed");
                }
            }
            _ => {}
        }
        Ok(removed)
    }

    async fn health(&self) -> Result<()> {
        let client = self.client("health").await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(pg_error("health"))?;
        Ok(())
    }

    #[instrument(skip_all)]
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        self.cold_pointers(tenant, range).await
    }

    #[instrument(skip_all)]
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        self.due_partitions(before, limit).await
    }

    async fn flush_marks(&self) -> Result<ExportMarks> {
        self.marks().await
    }

    #[instrument(skip_all, fields(partition = %partition))]
    async fn export_page(
        &self,
        partition: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        self.page_for_export(partition, marks, after, limit).await
    }

    #[instrument(
        skip_all,
        fields(partition = %commit.live.partition, version = commit.live.version)
    )]
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        self.commit_to_cold(commit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ts: i64) -> StoredEvent {
        StoredEvent {
            event: Event {
                tenant: "acme".into(),
                stream: "click".into(),
                key: "k".into(),
                id: format!("id-{ts}"),
                ts,
                value: None,
                attrs: BTreeMap::new(),
                payload: None,
            },
            ingest_ts: ts,
            seq: 1,
        }
    }

    fn range(from: i64, to: i64) -> TimeRange {
        TimeRange { from, to }
    }

    #[test]
    fn pending_ranges_cover_whole_minutes_and_split_at_gaps() {
        let rows: Vec<StoredEvent> = [
            10 * HOUR + 5 * MINUTE + 7,
            // Out of order, a little earlier and within the same run.
            10 * HOUR + MINUTE - 1,
            10 * HOUR + 40 * MINUTE,
            // More than an hour after the run: its own range.
            12 * HOUR,
            // Negative times floor downwards.
            -1,
        ]
        .into_iter()
        .map(at)
        .collect();
        let refs: Vec<&StoredEvent> = rows.iter().collect();
        assert_eq!(
            pending_ranges(&refs),
            vec![
                range(-MINUTE, 0),
                range(10 * HOUR, 10 * HOUR + 41 * MINUTE),
                range(12 * HOUR, 12 * HOUR + MINUTE),
            ]
        );
        assert!(pending_ranges(&[]).is_empty());
    }

    #[test]
    fn coalesce_merges_overlapping_and_touching_ranges() {
        let noted = [
            (1, range(10 * MINUTE, 12 * MINUTE)),
            (2, range(0, MINUTE)),
            (3, range(11 * MINUTE, 13 * MINUTE)),
            (4, range(MINUTE, 2 * MINUTE)),
            (5, range(HOUR, HOUR + MINUTE)),
        ];
        assert_eq!(
            coalesce(&noted),
            vec![
                (range(0, 2 * MINUTE), vec![2, 4]),
                (range(10 * MINUTE, 13 * MINUTE), vec![1, 3]),
                (range(HOUR, HOUR + MINUTE), vec![5]),
            ]
        );
    }
}
