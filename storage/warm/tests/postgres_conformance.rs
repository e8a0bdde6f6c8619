//! The warm conformance suite against a real PostgreSQL server, plus migration behaviour.
//!
//! Runs only with `--features server-tests` and needs `STRATA_TEST_POSTGRES_URL` (a role
//! that may create databases); without it the test fails, it never skips. Every scenario
//! gets a fresh database. The plain-PostgreSQL layout always runs. The `auto` layout runs the
//! identical suite too, and must pick TimescaleDB whenever the server can load the extension
//! (installed and in `shared_preload_libraries`); on a server without it only the plain
//! layout is exercised, unless `STRATA_TEST_REQUIRE_TIMESCALEDB=1` turns that into a failure.
//! Each test names the layout it ran on stderr (`warm layout under test: ...`).
#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::{Databases, admin, config, connect, report, timescale_usable, warm_url};
use strata_core::{
    Error,
    conformance::{
        assert_same,
        warm::{NODE, T0, batch, random_events, run_all, run_cold_handoff, stored},
    },
    handoff::WarmStore,
    hot::HotWatermark,
    warm::{ScanRequest, WarmMode, WarmTier, WriteOutcome},
};
use strata_types::{
    AggregateQuery, PartialAggregate, QueryParams, StoredEvent, TimeRange, time::HOUR,
};
use strata_warm::{Layout, PostgresWarm};
use tokio::sync::OnceCell;

struct Harness {
    layout: Layout,
    want: WarmMode,
    dbs: Databases,
    url: OnceCell<String>,
}

impl Harness {
    async fn store(&self) -> Arc<dyn WarmStore> {
        let url = self.url.get_or_init(|| self.dbs.fresh()).await;
        let warm = PostgresWarm::open(url, &config(self.layout))
            .await
            .expect("open postgres warm tier");
        assert_eq!(warm.mode(), self.want, "layout {:?}", self.layout);
        Arc::new(warm)
    }
}

common::suite_harness!(Harness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_postgres_passes_the_warm_suite() {
    let dbs = Databases::default();
    run_all(|| Harness {
        layout: Layout::Postgres,
        want: WarmMode::Postgres,
        dbs: dbs.clone(),
        url: OnceCell::new(),
    })
    .await;
    dbs.drop_all().await;
    report("postgres (native partitions): warm suite passed");
}

/// What a deployment gets by default: with the extension usable, `auto` must choose the
/// hypertable layout, and that layout must pass the identical suite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_layout_picks_timescaledb_when_usable_and_passes_the_warm_suite() {
    if !timescale_usable().await {
        report(
            "timescaledb not usable on this server (not installed or not preloaded): \
             only the plain layout ran",
        );
        return;
    }
    let dbs = Databases::default();
    run_all(|| Harness {
        layout: Layout::Auto,
        want: WarmMode::Timescale,
        dbs: dbs.clone(),
        url: OnceCell::new(),
    })
    .await;
    dbs.drop_all().await;
    report("timescaledb (hypertable, chosen by auto): warm suite passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_postgres_passes_the_cold_handoff_suite() {
    let dbs = Databases::default();
    run_cold_handoff(|| Harness {
        layout: Layout::Postgres,
        want: WarmMode::Postgres,
        dbs: dbs.clone(),
        url: OnceCell::new(),
    })
    .await;
    dbs.drop_all().await;
    report("postgres (native partitions): cold hand-off suite passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledb_passes_the_cold_handoff_suite() {
    if !timescale_usable().await {
        report("timescaledb not usable on this server: cold hand-off suite ran on plain only");
        return;
    }
    let dbs = Databases::default();
    run_cold_handoff(|| Harness {
        layout: Layout::Timescale,
        want: WarmMode::Timescale,
        dbs: dbs.clone(),
        url: OnceCell::new(),
    })
    .await;
    dbs.drop_all().await;
    report("timescaledb (hypertable): cold hand-off suite passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_and_rerun_as_no_ops() {
    let dbs = Databases::default();
    let url = dbs.fresh().await;
    let mut c = config(Layout::Postgres);
    c.migrate_on_open = false;

    let before = strata_warm::status(&warm_url(&url), &c).await.unwrap();
    assert_eq!(before.mode, None);
    assert!(before.applied.is_empty());
    assert_eq!(before.pending.len(), 4);
    assert!(before.to_string().contains("not migrated"), "{before}");

    // Opening an unmigrated database names the fix.
    let err = PostgresWarm::open(&url, &c).await.unwrap_err().to_string();
    assert!(err.contains("strata migrate"), "{err}");

    let first = strata_warm::migrate(&warm_url(&url), &c).await.unwrap();
    assert_eq!(first.mode, WarmMode::Postgres);
    assert_eq!(first.applied.len(), 4);
    let again = strata_warm::migrate(&warm_url(&url), &c).await.unwrap();
    assert!(again.applied.is_empty(), "re-running applies nothing");
    assert_eq!(again.already_applied, 4);
    assert!(again.to_string().contains("warm mode: postgres"), "{again}");

    let after = strata_warm::status(&warm_url(&url), &c).await.unwrap();
    assert_eq!(after.mode, Some(WarmMode::Postgres));
    assert!(after.pending.is_empty());
    assert!(
        after.to_string().contains("applied  0004_cold_partitions"),
        "{after}"
    );

    // Auto keeps the recorded layout; asking for another one is refused.
    c.layout = Layout::Auto;
    assert_eq!(
        strata_warm::migrate(&warm_url(&url), &c)
            .await
            .unwrap()
            .mode,
        WarmMode::Postgres
    );
    c.layout = Layout::Timescale;
    assert!(strata_warm::migrate(&warm_url(&url), &c).await.is_err());

    // Concurrent migrators on a fresh database apply each migration once.
    let url = dbs.fresh().await;
    let c = config(Layout::Postgres);
    let target = warm_url(&url);
    let runs = futures::future::join_all((0..4).map(|_| strata_warm::migrate(&target, &c))).await;
    let applied: usize = runs.into_iter().map(|r| r.unwrap().applied.len()).sum();
    assert_eq!(applied, 4);

    // Auto picks TimescaleDB exactly when the server can load it; asking for TimescaleDB
    // where it cannot be loaded is refused with the reason.
    let usable = timescale_usable().await;
    let url = dbs.fresh().await;
    let auto = strata_warm::migrate(&warm_url(&url), &config(Layout::Auto))
        .await
        .unwrap();
    let want = if usable {
        WarmMode::Timescale
    } else {
        WarmMode::Postgres
    };
    assert_eq!(auto.mode, want);
    let status = strata_warm::status(&warm_url(&url), &config(Layout::Auto))
        .await
        .unwrap();
    assert_eq!(status.mode, Some(want));
    assert_eq!(status.timescaledb_usable, usable);
    if !usable {
        let url = dbs.fresh().await;
        let err = strata_warm::migrate(&warm_url(&url), &config(Layout::Timescale))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("shared_preload_libraries"), "{err}");
    }
    dbs.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_unavailable_then_replaced() {
    let dbs = Databases::default();
    let url = dbs.fresh().await;
    let mut c = config(Layout::Postgres);
    c.connect_timeout = Duration::from_secs(2);
    let warm = PostgresWarm::open(&url, &c).await.unwrap();
    warm.health().await.unwrap();
    // Terminate every connection of this database, as a server restart would.
    let db = url.rsplit('/').next().unwrap().to_owned();
    admin()
        .await
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap();
    // A dead pooled connection may fail one call; that failure must be Unavailable (so the
    // flusher backs off and retries), and the pool must replace it.
    let mut healthy = false;
    for _ in 0..8 {
        match warm.health().await {
            Ok(()) => {
                healthy = true;
                break;
            }
            Err(Error::Unavailable { .. }) => {}
            Err(other) => panic!("expected Unavailable, got {other}"),
        }
    }
    assert!(
        healthy,
        "the pool reconnects after its connections were killed"
    );
    assert_eq!(warm.committed_upto("node-a").await.unwrap(), 0);
    dbs.drop_all().await;
}

fn query(bucket: &str, agg: &str, group_by: Option<&str>, range: TimeRange) -> AggregateQuery {
    let (from, to) = (range.from.to_string(), range.to.to_string());
    AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &from,
        to: &to,
        bucket,
        agg,
        stream: None,
        group_by,
        filter: None,
    })
    .unwrap()
}

/// Every aggregate shape, rollup-shaped or not, equals a brute-force pass over `rows`.
async fn assert_aggregates(warm: &PostgresWarm, rows: &[StoredEvent], case: &str) {
    let range = TimeRange {
        from: T0 - 4 * 24 * HOUR,
        to: T0 + 4 * HOUR + 17,
    };
    let shapes = [
        ("1h", "count", None),
        ("1m", "sum", None),
        ("15m", "max", None),
        ("2h", "min", None),
        ("1d", "avg", None),
        ("1h", "count", Some("key")),
    ];
    for (bucket, agg, group_by) in shapes {
        let q = query(bucket, agg, group_by, range);
        let got = warm
            .aggregate(&q, &HotWatermark::everything(NODE))
            .await
            .unwrap();
        let mut want = PartialAggregate::default();
        rows.iter().for_each(|r| want.add(&q, &r.event));
        assert_same(&format!("{case}: {bucket} {agg} {group_by:?}"), &got, &want);
    }
    let mut scanned = 0;
    let mut request = ScanRequest::new("acme", range, 1000);
    loop {
        let page = warm
            .scan(&request, &HotWatermark::everything(NODE))
            .await
            .unwrap();
        scanned += page.events.len();
        match page.next {
            Some(next) => request.after = Some(next),
            None => break,
        }
    }
    assert_eq!(scanned, rows.len(), "{case}: scan");
}

/// Cells of a continuous aggregate (materialised and real-time parts together) that differ
/// from the same aggregation over the raw rows.
async fn aggregate_differences(client: &tokio_postgres::Client, view: &str, width: &str) -> i64 {
    let sql = format!(
        "WITH raw AS (
             SELECT tenant, stream, date_bin(INTERVAL '{width}', ts, TIMESTAMPTZ 'epoch') AS bucket,
                    count(*) AS n, count(value) AS n_value, sum(value) AS s,
                    min(value) AS lo, max(value) AS hi
             FROM events GROUP BY 1, 2, 3)
         SELECT count(*) FROM raw FULL JOIN {view} c USING (tenant, stream, bucket)
         WHERE c.n IS DISTINCT FROM raw.n OR c.n_value IS DISTINCT FROM raw.n_value
            OR c.sum_value IS DISTINCT FROM raw.s OR c.min_value IS DISTINCT FROM raw.lo
            OR c.max_value IS DISTINCT FROM raw.hi"
    );
    client.query_one(&sql, &[]).await.unwrap().get(0)
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// What only the hypertable layout has: its catalog shape (hypertable on ts, compression
/// segmented by tenant and stream, real-time continuous aggregates, policies), flushes whose
/// ranges stay noted until a refresh and are read raw meanwhile, late rows written into
/// compressed chunks, and retention dropping whole chunks and deleting from compressed ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledb_hypertable_compression_and_continuous_aggregates() {
    if !timescale_usable().await {
        report("timescaledb not usable on this server: hypertable scenarios not run");
        return;
    }
    let dbs = Databases::default();
    let url = dbs.fresh().await;
    let mut c = config(Layout::Timescale);
    // Flushes after the first leave their ranges noted, so the test decides when to refresh.
    c.rollup_refresh_interval = Duration::from_secs(3600);
    let warm = PostgresWarm::open(&url, &c).await.unwrap();
    assert_eq!(warm.mode(), WarmMode::Timescale);
    let db = connect(&url).await;

    // The layout.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM timescaledb_information.dimensions \
             WHERE hypertable_name = 'events' AND column_name = 'ts' AND dimension_type = 'Time'"
        )
        .await,
        1
    );
    let settings: Vec<(String, Option<i16>, Option<i16>)> = db
        .query(
            "SELECT attname::text, segmentby_column_index, orderby_column_index \
             FROM timescaledb_information.compression_settings \
             WHERE hypertable_name = 'events' ORDER BY attname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        settings,
        vec![
            ("stream".into(), Some(2), None),
            ("tenant".into(), Some(1), None),
            ("ts".into(), None, Some(1)),
        ]
    );
    let caggs: Vec<(String, bool)> = db
        .query(
            "SELECT view_name::text, materialized_only \
             FROM timescaledb_information.continuous_aggregates ORDER BY view_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        caggs,
        vec![("events_1h".into(), false), ("events_1m".into(), false)]
    );
    let jobs: Vec<(String, String)> = db
        .query(
            "SELECT proc_name::text, hypertable_name::text FROM timescaledb_information.jobs \
             WHERE hypertable_name IS NOT NULL ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        jobs,
        vec![
            ("policy_compression".into(), "events".into()),
            (
                "policy_refresh_continuous_aggregate".into(),
                "events_1h".into()
            ),
            (
                "policy_refresh_continuous_aggregate".into(),
                "events_1m".into()
            ),
        ]
    );

    // Flushes: the first refreshes, the later ones leave their ranges noted; queries stay
    // exact either way, and a refresh makes the aggregates equal the rows.
    let mut events = random_events("acme", 560, 31);
    for e in events.iter_mut().take(60) {
        e.ts -= 3 * 24 * HOUR;
    }
    let mut rows = stored(&events, 1);
    for chunk in rows.chunks(140) {
        let out = warm.write_batch(NODE, &batch(chunk)).await.unwrap();
        assert_eq!(
            out,
            WriteOutcome::Written {
                rows: chunk.len() as u64
            }
        );
    }
    let noted = "SELECT count(*) FROM strata_rollup_pending";
    assert!(
        count(&db, noted).await > 0,
        "later flushes leave ranges noted"
    );
    assert_aggregates(&warm, &rows, "noted ranges read raw").await;
    assert!(warm.refresh_rollups().await.unwrap() > 0);
    assert_eq!(count(&db, noted).await, 0);
    assert_eq!(aggregate_differences(&db, "events_1m", "1 minute").await, 0);
    assert_eq!(aggregate_differences(&db, "events_1h", "1 hour").await, 0);
    assert_aggregates(&warm, &rows, "refreshed aggregates").await;

    // Compress every chunk, then flush late rows into them.
    let chunks = count(
        &db,
        "SELECT count(compress_chunk(c)) FROM show_chunks('events') c",
    )
    .await;
    assert!(
        chunks >= 3,
        "rows span at least three daily chunks, got {chunks}"
    );
    let uncompressed = "SELECT count(*) FROM timescaledb_information.chunks \
                        WHERE hypertable_name = 'events' AND NOT is_compressed";
    assert_eq!(count(&db, uncompressed).await, 0);
    let late = stored(&random_events("acme", 200, 33), 561);
    assert_eq!(
        warm.write_batch(NODE, &batch(&late)).await.unwrap(),
        WriteOutcome::Written { rows: 200 }
    );
    rows.extend(late.iter().cloned());
    assert_eq!(
        count(&db, uncompressed).await,
        0,
        "late rows land in the compressed chunks, not in new ones"
    );
    assert!(count(&db, noted).await > 0);
    assert_aggregates(&warm, &rows, "late rows in compressed chunks, noted").await;
    let probe = &late[17];
    assert_eq!(
        warm.get("acme", &probe.event.id, &HotWatermark::everything(NODE))
            .await
            .unwrap()
            .as_ref(),
        Some(probe)
    );
    assert!(warm.refresh_rollups().await.unwrap() > 0);
    assert_eq!(aggregate_differences(&db, "events_1m", "1 minute").await, 0);
    assert_eq!(aggregate_differences(&db, "events_1h", "1 hour").await, 0);
    assert_aggregates(&warm, &rows, "late rows in compressed chunks, refreshed").await;

    // Retention: whole chunks below the cutoff are dropped, the rest deleted row by row
    // (also from compressed chunks), and noted ranges below the cutoff are forgotten.
    let more = stored(&random_events("acme", 100, 34), 761);
    warm.write_batch(NODE, &batch(&more)).await.unwrap();
    rows.extend(more.iter().cloned());
    let all_chunks = "SELECT count(*) FROM show_chunks('events')";
    let before = count(&db, all_chunks).await;
    let cutoff = T0 + 37 * 60 * 1_000_000 + 123_456;
    warm.drop_before(cutoff).await.unwrap();
    assert!(count(&db, all_chunks).await < before, "old chunks dropped");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE ts < '2026-11-20 00:37:00.123456+00'"
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, noted).await,
        0,
        "retention refreshes what was noted"
    );
    let kept: Vec<StoredEvent> = rows.into_iter().filter(|r| r.event.ts >= cutoff).collect();
    assert!(!kept.is_empty());
    assert_aggregates(&warm, &kept, "after retention").await;

    // The (tenant, id) lookup that ingest deduplicates with finds exactly the kept rows.
    let ids: Vec<String> = kept.iter().map(|r| r.event.id.clone()).collect();
    let found = warm.existing_ids("acme", &ids).await.unwrap();
    let want: BTreeMap<&str, u64> = kept.iter().map(|r| (r.event.id.as_str(), r.seq)).collect();
    assert_eq!(found.len(), want.len());
    for (id, seq) in &found {
        assert_eq!(want.get(id.as_str()), Some(seq));
    }
    drop((warm, db));
    dbs.drop_all().await;
    report("timescaledb (hypertable): compression, late rows and aggregate refresh passed");
}

/// A refresh that collides with another one over an overlapping window (a policy job, another
/// node) is retried, and one that keeps colliding fails without forgetting the noted ranges,
/// so queries keep reading raw rows there and stay exact. The collision is staged the way
/// TimescaleDB 2.28 tracks running refreshes: a registered window owned by a live backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledb_refresh_retries_around_a_concurrent_refresh() {
    if !timescale_usable().await {
        report("timescaledb not usable on this server: concurrent-refresh scenario not run");
        return;
    }
    let dbs = Databases::default();
    let url = dbs.fresh().await;
    let mut c = config(Layout::Timescale);
    c.rollup_refresh_interval = Duration::from_secs(3600);
    let warm = PostgresWarm::open(&url, &c).await.unwrap();
    let db = connect(&url).await;
    let first = stored(&random_events("acme", 200, 41), 1);
    warm.write_batch(NODE, &batch(&first)).await.unwrap();
    let late = stored(&random_events("acme", 150, 42), 201);
    warm.write_batch(NODE, &batch(&late)).await.unwrap();
    let rows: Vec<StoredEvent> = first.iter().chain(&late).cloned().collect();
    let noted = "SELECT count(*) FROM strata_rollup_pending";
    assert!(count(&db, noted).await > 0);

    // `db` stays connected, so the registration below belongs to a live backend.
    let block = "INSERT INTO _timescaledb_catalog.continuous_aggs_jobs_refresh_ranges \
                 (materialization_id, start_range, end_range, pid, job_id, created_at) \
                 SELECT mat_hypertable_id, -9223372036854775807, 9223372036854775806, \
                        pg_backend_pid(), -1, now() \
                 FROM _timescaledb_catalog.continuous_agg WHERE user_view_name = 'events_1m'";
    let unblock = "DELETE FROM _timescaledb_catalog.continuous_aggs_jobs_refresh_ranges \
                   WHERE pid = pg_backend_pid()";
    assert_eq!(db.execute(block, &[]).await.unwrap(), 1);
    let err = warm.refresh_rollups().await.unwrap_err().to_string();
    assert!(err.contains("concurrent refresh"), "{err}");
    assert!(
        count(&db, noted).await > 0,
        "a failed refresh forgets nothing"
    );
    assert_aggregates(&warm, &rows, "after a failed refresh").await;

    // Released while the refresh is backing off: it goes through.
    db.execute(block, &[]).await.unwrap();
    let refresh = tokio::spawn({
        let warm = warm.clone();
        async move { warm.refresh_rollups().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.execute(unblock, &[]).await.unwrap();
    assert!(refresh.await.unwrap().unwrap() > 0);
    assert_eq!(count(&db, noted).await, 0);
    assert_eq!(aggregate_differences(&db, "events_1m", "1 minute").await, 0);
    assert_eq!(aggregate_differences(&db, "events_1h", "1 hour").await, 0);
    assert_aggregates(&warm, &rows, "after the retried refresh").await;
    drop((warm, db));
    dbs.drop_all().await;
    report("timescaledb (hypertable): refresh retried around a concurrent one");
}
