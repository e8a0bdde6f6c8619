//! What the PostgreSQL test files share: the server `scripts/test` started, a fresh database
//! per scenario (dropped when the test passes), the configuration the suites open with, and
//! whether the server can run the TimescaleDB layout.
//!
//! (`common/mod.rs` rather than `common.rs`: cargo would build the latter as a test target of
//! its own.) Each test file uses part of it.
#![allow(dead_code)]

use std::{
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use strata_warm::{Layout, WarmConfig, WarmUrl};

/// The server's URL, `STRATA_TEST_POSTGRES_URL` (a role that may create databases). Without
/// it the test fails: under `server-tests` a missing server is never a skip.
pub(crate) fn server_url() -> String {
    std::env::var("STRATA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "STRATA_TEST_POSTGRES_URL is not set: the server tests need a PostgreSQL server \
             (scripts/test starts one)"
        )
    })
}

/// `url` with its database name replaced by `db`.
pub(crate) fn with_database(url: &str, db: &str) -> String {
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

/// A plain client of `url`.
pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
}

/// A client of the server's own database, for creating and dropping test databases.
pub(crate) async fn admin() -> tokio_postgres::Client {
    connect(&server_url()).await
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database; returns its name and URL.
async fn fresh_database() -> (String, String) {
    let name = format!(
        "strata_warm_test_{}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_millis(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = with_database(&server_url(), &name);
    (name, url)
}

/// The databases one test created, dropped when it passes (a failing test leaves them for a
/// look). TimescaleDB runs a background scheduler per database, so leftovers would pile up
/// on a long-lived server.
#[derive(Clone, Default)]
pub(crate) struct Databases(Arc<std::sync::Mutex<Vec<String>>>);

impl Databases {
    /// A fresh database's URL.
    pub(crate) async fn fresh(&self) -> String {
        let (name, url) = fresh_database().await;
        self.0.lock().expect("not poisoned").push(name);
        url
    }

    /// Drops every database handed out.
    pub(crate) async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.0.lock().expect("not poisoned"));
        let admin = admin().await;
        for name in names {
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop test database");
        }
    }
}

/// What the suites open with: migrating on open, a small pool, and continuous aggregates
/// refreshed after every flush, so the suite's queries read them (and not only raw rows) in
/// TimescaleDB mode.
pub(crate) fn config(layout: Layout) -> WarmConfig {
    let mut c = WarmConfig::new("unused");
    c.layout = layout;
    c.migrate_on_open = true;
    c.pool_size = 4;
    c.rollup_refresh_interval = Duration::ZERO;
    c
}

/// `s` as a warm URL.
pub(crate) fn warm_url(s: &str) -> WarmUrl {
    s.parse().expect("a PostgreSQL URL")
}

/// Names the layout a test ran, unbuffered so it shows even when the harness captures
/// `println!` output.
pub(crate) fn report(what: &str) {
    let _ = writeln!(std::io::stderr(), "warm layout under test: {what}");
}

/// Whether this server can run the TimescaleDB layout, by the same rule `Layout::Auto`
/// applies. With `STRATA_TEST_REQUIRE_TIMESCALEDB=1` (set by a test script that started the
/// server with the extension) a server that cannot is a failure.
pub(crate) async fn timescale_usable() -> bool {
    let status = strata_warm::status(&warm_url(&server_url()), &config(Layout::Auto))
        .await
        .expect("migration status of STRATA_TEST_POSTGRES_URL");
    let required = std::env::var("STRATA_TEST_REQUIRE_TIMESCALEDB").is_ok_and(|v| v == "1");
    assert!(
        status.timescaledb_usable || !required,
        "STRATA_TEST_REQUIRE_TIMESCALEDB=1 but the server cannot load timescaledb \
         (installed: {}; it must also be in shared_preload_libraries)",
        status.timescaledb_available
    );
    status.timescaledb_usable
}
