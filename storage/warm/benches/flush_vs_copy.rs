//! Flush throughput into PostgreSQL next to a raw binary `COPY` of the same rows into the
//! same table, in the same run, so the ratio says what Strata's exactly-once bookkeeping
//! (node lock, ledger, rollup upserts) costs over the bare load path. The raw `COPY` is the
//! flush's own (`PostgresWarm::copy_only`), so both paths encode rows the same way. The embedded store's
//! write rate is printed alongside for reference.
//!
//! ```text
//! STRATA_BENCH_POSTGRES_URL=postgres://user@127.0.0.1:5432/postgres \
//!     cargo bench -p strata-warm --bench flush_vs_copy
//! ```
//!
//! The role must be allowed to create databases; each run uses a fresh one. Rounds
//! alternate between the two paths so both write into a table of the same size.
//! `STRATA_BENCH_WARM_LAYOUT` picks the layout: `postgres` (the default: native partitions
//! and rollup tables), `timescaledb` (hypertable and continuous aggregates) or `auto`. With
//! TimescaleDB every flush refreshes the aggregates over what it wrote, so that both layouts
//! leave their rollups up to date after each flush; `STRATA_BENCH_REFRESH_INTERVAL_SECS`
//! sets `rollup_refresh_interval` instead (refreshes then lag, and the time of the final
//! catch-up refresh is printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use strata_core::{hot::FlushBatch, warm::WarmTier};
use strata_types::{Event, StoredEvent};
use strata_warm::{EmbeddedWarm, Layout, PostgresWarm, WarmConfig, testing};

const ROWS_PER_BATCH: usize = 20_000;
const ROUNDS: usize = 8;
/// 2026-11-20T00:00:00Z.
const T0: i64 = 1_795_651_200_000_000;

fn rows(round: usize) -> Vec<StoredEvent> {
    (0..ROWS_PER_BATCH)
        .map(|i| {
            let n = round * ROWS_PER_BATCH + i;
            StoredEvent {
                event: Event {
                    tenant: format!("tenant-{}", n % 8),
                    stream: ["click", "view", "buy"][n % 3].into(),
                    key: format!("user-{}", n % 10_000),
                    id: format!("evt-{n}"),
                    // Spread over six hours, in ingest order as the hot tier hands them out.
                    ts: T0 + (n as i64 * 21_600_000_000 / (ROUNDS * ROWS_PER_BATCH) as i64),
                    value: (!n.is_multiple_of(4)).then_some((n % 1000) as f64 / 10.0),
                    attrs: [
                        ("page".to_string(), format!("/p{}", n % 20)),
                        ("country".to_string(), ["de", "fr", "us"][n % 3].into()),
                    ]
                    .into(),
                    payload: Some(format!(r#"{{"n":{n},"tags":["a","b"],"ok":true}}"#)),
                },
                ingest_ts: T0 + n as i64,
                seq: n as u64 + 1,
            }
        })
        .collect()
}

fn batch(rows: Vec<StoredEvent>) -> FlushBatch {
    FlushBatch {
        first_seq: rows[0].seq,
        last_seq: rows[rows.len() - 1].seq,
        events: rows,
    }
}

fn rate(rows: usize, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let url = std::env::var("STRATA_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("STRATA_TEST_POSTGRES_URL"))
        .expect("set STRATA_BENCH_POSTGRES_URL to a PostgreSQL server the bench may create a database on");
    let db = testing::fresh_database(&url, "strata_bench").await;

    let layout: Layout = std::env::var("STRATA_BENCH_WARM_LAYOUT")
        .unwrap_or_else(|_| "postgres".into())
        .parse()
        .expect("STRATA_BENCH_WARM_LAYOUT");
    let mut config = WarmConfig::new("unused");
    config.layout = layout;
    config.migrate_on_open = true;
    config.rollup_refresh_interval = Duration::from_secs(
        std::env::var("STRATA_BENCH_REFRESH_INTERVAL_SECS")
            .map(|s| {
                s.parse()
                    .expect("STRATA_BENCH_REFRESH_INTERVAL_SECS: whole seconds")
            })
            .unwrap_or(0),
    );
    let warm = PostgresWarm::open(&db.url, &config).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedWarm::open(dir.path().join("warm.redb"))
        .await
        .unwrap();

    let (mut flush, mut copy, mut emb) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for round in 0..ROUNDS {
        let b = batch(rows(round));
        let started = Instant::now();
        warm.write_batch("bench", &b).await.unwrap();
        flush += started.elapsed();

        let started = Instant::now();
        warm.copy_only("raw-copy", &b.events).await.unwrap();
        copy += started.elapsed();

        let started = Instant::now();
        embedded.write_batch("bench", &b).await.unwrap();
        emb += started.elapsed();
    }
    // Whatever refreshes the flushes left (none with a zero interval), timed on its own.
    let started = Instant::now();
    let caught_up = warm.refresh_rollups().await.unwrap();
    let catch_up = started.elapsed();
    let total = ROUNDS * ROWS_PER_BATCH;
    let (f, c, e) = (rate(total, flush), rate(total, copy), rate(total, emb));
    println!("warm mode: {}", warm.mode());
    println!("rows: {total} in batches of {ROWS_PER_BATCH}, rounds alternating");
    println!("| path | rows/s |");
    println!("| --- | --- |");
    println!("| raw binary COPY into events (one transaction per batch) | {c:.0} |");
    println!("| Strata flush into PostgreSQL (COPY + ledger + rollups) | {f:.0} |");
    println!("| Strata flush into the embedded store | {e:.0} |");
    println!("flush / raw COPY = {:.2}", f / c);
    if warm.mode() == strata_core::warm::WarmMode::Timescale {
        println!(
            "rollup refresh interval {:?}; catch-up refresh afterwards: {caught_up} noted ranges in {:.3} s",
            config.rollup_refresh_interval,
            catch_up.as_secs_f64()
        );
    }

    drop(warm);
    // Best effort: the database is only bench data.
    let _ = testing::drop_database(&url, &db.name).await;
}
