//! The warm conformance suite against a real PostgreSQL server, plus migration behaviour.
//!
//! Runs only with `--features server-tests` and needs `STRATA_TEST_POSTGRES_URL` (a role
//! that may create databases); without it the test fails, it never skips. Every scenario
//! gets a fresh database. The plain-PostgreSQL layout always runs; the TimescaleDB layout
//! runs too whenever the server offers the extension, and must pass the identical suite.
#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use strata_core::{
    Error,
    conformance::warm::{WarmHarness, run_all},
    warm::{WarmMode, WarmTier},
};
use strata_warm::{Layout, PostgresWarm, WarmConfig};
use tokio::sync::OnceCell;

fn server_url() -> String {
    std::env::var("STRATA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "STRATA_TEST_POSTGRES_URL is not set: the server tests need a PostgreSQL server \
             (scripts/test starts one)"
        )
    })
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{db}{query}", &base[..host_end])
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&server_url(), tokio_postgres::NoTls)
        .await
        .expect("connect to STRATA_TEST_POSTGRES_URL");
    tokio::spawn(conn);
    client
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database; returns its URL.
async fn fresh_database() -> String {
    let name = format!(
        "strata_warm_test_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    with_database(&server_url(), &name)
}

fn config(layout: Layout) -> WarmConfig {
    let mut c = WarmConfig::new("unused");
    c.layout = layout;
    c.migrate_on_open = true;
    c.pool_size = 4;
    c
}

struct Harness {
    layout: Layout,
    url: OnceCell<String>,
}

#[async_trait]
impl WarmHarness for Harness {
    async fn open(&self) -> Arc<dyn WarmTier> {
        let url = self.url.get_or_init(fresh_database).await;
        let warm = PostgresWarm::open(url, &config(self.layout))
            .await
            .expect("open postgres warm tier");
        let want = match self.layout {
            Layout::Timescale => WarmMode::Timescale,
            _ => WarmMode::Postgres,
        };
        assert_eq!(warm.mode(), want);
        Arc::new(warm)
    }
}

async fn timescale_available() -> bool {
    admin()
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_postgres_passes_the_warm_suite() {
    run_all(|| Harness {
        layout: Layout::Postgres,
        url: OnceCell::new(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledb_passes_the_warm_suite_when_installed() {
    if !timescale_available().await {
        eprintln!("timescaledb is not installed on this server: only the plain layout runs");
        return;
    }
    run_all(|| Harness {
        layout: Layout::Timescale,
        url: OnceCell::new(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_recorded_and_rerun_as_no_ops() {
    let url = fresh_database().await;
    let mut c = config(Layout::Postgres);
    c.migrate_on_open = false;

    let before = strata_warm::status(&url, &c).await.unwrap();
    assert_eq!(before.mode, None);
    assert!(before.applied.is_empty());
    assert_eq!(before.pending.len(), 3);
    assert!(before.to_string().contains("not migrated"), "{before}");

    // Opening an unmigrated database names the fix.
    let err = PostgresWarm::open(&url, &c).await.unwrap_err().to_string();
    assert!(err.contains("strata migrate"), "{err}");

    let first = strata_warm::migrate(&url, &c).await.unwrap();
    assert_eq!(first.mode, WarmMode::Postgres);
    assert_eq!(first.applied.len(), 3);
    let again = strata_warm::migrate(&url, &c).await.unwrap();
    assert!(again.applied.is_empty(), "re-running applies nothing");
    assert_eq!(again.already_applied, 3);
    assert!(again.to_string().contains("warm mode: postgres"), "{again}");

    let after = strata_warm::status(&url, &c).await.unwrap();
    assert_eq!(after.mode, Some(WarmMode::Postgres));
    assert!(after.pending.is_empty());
    assert!(
        after.to_string().contains("applied  0003_rollups"),
        "{after}"
    );

    // Auto keeps the recorded layout; asking for another one is refused.
    c.layout = Layout::Auto;
    assert_eq!(
        strata_warm::migrate(&url, &c).await.unwrap().mode,
        WarmMode::Postgres
    );
    c.layout = Layout::Timescale;
    assert!(strata_warm::migrate(&url, &c).await.is_err());

    // Concurrent migrators on a fresh database apply each migration once.
    let url = fresh_database().await;
    let c = config(Layout::Postgres);
    let runs = futures::future::join_all((0..4).map(|_| strata_warm::migrate(&url, &c))).await;
    let applied: usize = runs.into_iter().map(|r| r.unwrap().applied.len()).sum();
    assert_eq!(applied, 3);

    // Auto picks TimescaleDB exactly when it is installed.
    let url = fresh_database().await;
    let auto = strata_warm::migrate(&url, &config(Layout::Auto))
        .await
        .unwrap();
    let want = if timescale_available().await {
        WarmMode::Timescale
    } else {
        WarmMode::Postgres
    };
    assert_eq!(auto.mode, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_are_unavailable_then_replaced() {
    let url = fresh_database().await;
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
}
