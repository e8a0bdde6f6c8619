//! PostgreSQL going away under a running node, and being away when it starts. Each test runs
//! a private cluster it can stop (`pg_ctl stop -m immediate`, like a crash) and start again;
//! the assertions are the invariants: every acknowledged event is stored exactly once, the
//! backlog drains once the server is back, and ingest does not depend on warm where the
//! configuration promises that.

#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    PostOutcome, TestEvent, TestServer, aggregate, client, count, metric, now_micros,
    postgres::{self, PgCluster},
    rfc3339_micros, try_post_events,
    warm::{Backend, FLUSH_ERRORS, restart_with, set_flag, spawn, wait_flushed},
};

const TENANT: &str = "outage";

/// What the clients got acknowledged.
#[derive(Default)]
struct Tally {
    acked: Vec<TestEvent>,
}

/// Clients that post batches of live events, each batch retried (same ids) until it is
/// acknowledged, as a well-behaved client would; 503 waits for `Retry-After`. `busy` counts
/// 503 answers, `failed` other failures (connection errors, other statuses).
fn start_clients(
    clients: usize,
    url: String,
    tally: Arc<Mutex<Tally>>,
    busy: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|c| {
            let (url, tally, busy, failed, stop) = (
                url.clone(),
                tally.clone(),
                busy.clone(),
                failed.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let batch: Vec<TestEvent> = (0..25)
                        .map(|_| {
                            n += 1;
                            TestEvent::new(TENANT, format!("o{c}-{n}"), n)
                        })
                        .collect();
                    let started = Instant::now();
                    loop {
                        assert!(
                            started.elapsed() < Duration::from_secs(90),
                            "a batch was not acknowledged within 90 s"
                        );
                        match try_post_events(&http, &url, &batch).await {
                            PostOutcome::Acked(answer) => {
                                assert_eq!(answer.accepted, batch.len() as u64);
                                tally.lock().unwrap().acked.extend(batch);
                                break;
                            }
                            PostOutcome::Busy(wait) => {
                                busy.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                            }
                            PostOutcome::Failed(e) => {
                                failed.fetch_add(1, Ordering::SeqCst);
                                eprintln!("client {c}: {e}");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect()
}

async fn stop_postgres(mut cluster: PgCluster) -> PgCluster {
    tokio::task::spawn_blocking(move || {
        cluster.stop_immediate();
        cluster
    })
    .await
    .unwrap()
}

async fn start_postgres(mut cluster: PgCluster) -> PgCluster {
    tokio::task::spawn_blocking(move || {
        cluster.start();
        cluster
    })
    .await
    .unwrap()
}

/// A cluster that runs, with a fresh database; returns both.
async fn running_cluster() -> (PgCluster, String) {
    let cluster = tokio::task::spawn_blocking(|| {
        let mut c = PgCluster::init();
        c.start();
        c
    })
    .await
    .unwrap();
    let db = postgres::fresh_database(&cluster.url()).await;
    (cluster, db)
}

/// Checks that every acknowledged event is in warm exactly once and counted once.
async fn assert_exactly_once(server: &TestServer, backend: &Backend, acked: &[TestEvent]) {
    let Backend::Postgres { db, .. } = backend else {
        unreachable!("PostgreSQL only")
    };
    let ids: HashSet<(String, String)> = acked
        .iter()
        .map(|e| (e.tenant.clone(), e.id.clone()))
        .collect();
    assert_eq!(
        ids.len(),
        acked.len(),
        "the clients never resend an acked id"
    );
    let n = ids.len() as u64;
    assert_eq!(
        backend.sql_counts().await,
        Some((n, n)),
        "warm rows (all, distinct) must equal the acknowledged events"
    );
    let in_warm = postgres::event_ids(db).await;
    let missing: Vec<_> = ids.difference(&in_warm).take(10).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in warm: {missing:?}"
    );
    let from = rfc3339_micros(now_micros() - 3600 * 1_000_000);
    let to = rfc3339_micros(now_micros() + 3600 * 1_000_000);
    assert_eq!(
        count(&client(), &server.http_url(), TENANT, &from, &to)
            .await
            .unwrap(),
        n
    );
}

/// The flusher is busy moving a continuous stream to warm when PostgreSQL crashes; it comes
/// back a few seconds later. Requests that need warm meanwhile (with a hot retention this
/// short, every write's duplicate check does) are refused with 503 + `Retry-After` and
/// retried; nothing acknowledged is lost or doubled and the backlog drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_loses_nothing_and_the_backlog_drains() {
    let (cluster, db) = running_cluster().await;
    let backend = Backend::Postgres {
        db: db.clone(),
        layout: "auto",
    };
    let mut args = backend.args();
    for (flag, value) in [
        ("--warm-connect-timeout", "1s"),
        ("--hot-retention", "500ms"),
        ("--flush-interval", "100ms"),
        ("--flush-max-batch-events", "200"),
    ] {
        set_flag(&mut args, flag, value);
    }
    let server = spawn(args).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let busy = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(
        2,
        server.http_url(),
        tally.clone(),
        busy.clone(),
        failed.clone(),
        stop.clone(),
    );
    let http = client();

    // Flushing is under way before the crash.
    let waiting = Instant::now();
    while metric(&http, &server.http_url(), "strata_flush_batches_total").await < 3.0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "nothing flushed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cluster = stop_postgres(cluster).await;
    eprintln!("postgres stopped");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let errors_during = metric(&http, &server.http_url(), FLUSH_ERRORS).await;
    let cluster = start_postgres(cluster).await;
    eprintln!("postgres started");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let acked = std::mem::take(&mut tally.lock().unwrap().acked);
    eprintln!(
        "{} events acknowledged; {} answers were 503, {} requests failed otherwise",
        acked.len(),
        busy.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst)
    );
    // Someone must have run into the outage: the flusher, or writes whose duplicate check
    // needs warm (with a hot retention this short, all of them).
    assert!(
        errors_during > 0.0 || busy.load(Ordering::SeqCst) > 0,
        "nothing noticed that PostgreSQL was down"
    );

    // The backlog drains without a restart, within a bounded wait.
    wait_flushed(&server, &backend, acked.len() as u64).await;
    assert_exactly_once(&server, &backend, &acked).await;
    if errors_during > 0.0 {
        assert!(
            server
                .logs()
                .contains("flushing to the warm tier works again"),
            "the flusher must log its recovery"
        );
    }
    drop(server);
    drop(cluster);
}

/// With a hot retention longer than `--max-future-skew` plus a minute, live writes never
/// need warm: while PostgreSQL is down every request is acknowledged from the hot tier
/// alone, and once it is back everything reaches warm exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keeps_going_into_hot_while_postgres_is_down() {
    let (cluster, db) = running_cluster().await;
    let backend = Backend::Postgres {
        db: db.clone(),
        layout: "auto",
    };
    let mut args = backend.args();
    for (flag, value) in [
        ("--warm-connect-timeout", "1s"),
        ("--hot-retention", "65s"),
        ("--max-future-skew", "1s"),
        ("--flush-interval", "100ms"),
    ] {
        set_flag(&mut args, flag, value);
    }
    let server = spawn(args.clone()).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let busy = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = start_clients(
        2,
        server.http_url(),
        tally.clone(),
        busy.clone(),
        failed.clone(),
        stop.clone(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cluster = stop_postgres(cluster).await;
    let acked_before = tally.lock().unwrap().acked.len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked_during = tally.lock().unwrap().acked.len() - acked_before;
    let cluster = start_postgres(cluster).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let acked = std::mem::take(&mut tally.lock().unwrap().acked);
    assert!(
        acked_during > 0,
        "nothing was acknowledged while PostgreSQL was down"
    );
    assert_eq!(
        (busy.load(Ordering::SeqCst), failed.load(Ordering::SeqCst)),
        (0, 0),
        "no write may be refused while warm is down"
    );

    // Drain: the same node with a short retention flushes everything.
    set_flag(&mut args, "--hot-retention", "1s");
    let server = restart_with(server, args).await;
    wait_flushed(&server, &backend, acked.len() as u64).await;
    assert_exactly_once(&server, &backend, &acked).await;
    drop(server);
    drop(cluster);
}

/// PostgreSQL is down when the node starts: the node starts anyway (ready, taking writes
/// into hot), says so without leaking the password, answers 503 for what needs warm, and
/// connects, migrates and drains once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_while_postgres_is_down_and_connects_when_it_returns() {
    let (cluster, db) = running_cluster().await;
    let cluster = stop_postgres(cluster).await;
    // Trust authentication ignores the password; it is there to prove it is never logged.
    let db_with_password = db.replacen("postgres@", "postgres:not-for-logs@", 1);
    assert_ne!(db_with_password, db);
    let backend = Backend::Postgres {
        db: db.clone(),
        layout: "auto",
    };
    let mut args: Vec<String> = [
        "--warm",
        &db_with_password,
        "--warm-connect-timeout",
        "1s",
        "--hot-retention",
        "65s",
        "--max-future-skew",
        "1s",
        "--flush-interval",
        "100ms",
    ]
    .map(String::from)
    .to_vec();
    let server = spawn(args.clone()).await;
    let http = client();
    let base = server.http_url();
    assert!(
        server.logs().contains("the warm tier is unreachable"),
        "{}",
        server.logs()
    );
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready although warm is not connected");

    let events: Vec<TestEvent> = (0..300)
        .map(|n| TestEvent::new(TENANT, format!("s-{n}"), n))
        .collect();
    for chunk in events.chunks(100) {
        match try_post_events(&http, &base, chunk).await {
            PostOutcome::Acked(a) => assert_eq!(a.accepted, chunk.len() as u64),
            other => panic!("writes must go to hot while warm is down: {other:?}"),
        }
    }
    let from = rfc3339_micros(now_micros() - 3600 * 1_000_000);
    let to = rfc3339_micros(now_micros() + 3600 * 1_000_000);
    let params = [
        ("tenant", TENANT),
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("bucket", "1h"),
        ("agg", "count"),
    ];
    let (status, body) = aggregate(&http, &base, &params).await.unwrap_err();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"unavailable\""), "{body}");

    let cluster = start_postgres(cluster).await;
    let waiting = Instant::now();
    while !server.logs().contains("warm tier connected") {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "never connected: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(metric(&http, &base, "strata_warm_connected").await, 1.0);
    let answer = aggregate(&http, &base, &params).await.unwrap();
    let total: f64 = answer.buckets.iter().filter_map(|b| b.value).sum();
    assert_eq!(total, events.len() as f64);
    // The connector applied the migrations: the table exists, still empty.
    assert_eq!(backend.sql_counts().await, Some((0, 0)));
    let logs = server.logs();
    assert!(!logs.contains("not-for-logs"), "the password was logged");
    assert!(logs.contains("postgres:***@"), "the URL is logged redacted");

    // Drain with a short retention.
    set_flag(&mut args, "--hot-retention", "1s");
    let server = restart_with(server, args).await;
    wait_flushed(&server, &backend, events.len() as u64).await;
    assert_exactly_once(&server, &backend, &events).await;
    drop(server);
    drop(cluster);
}
