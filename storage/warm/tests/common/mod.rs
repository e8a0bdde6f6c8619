//! What the test files share: the server `scripts/test` started, a fresh database per
//! scenario (dropped when the test passes), the configuration the suites open with, whether
//! the server can run the TimescaleDB layout, and the suites' harness traits over a store
//! opener ([`suite_harness!`]).
//!
//! (`common/mod.rs` rather than `common.rs`: cargo would build the latter as a test target of
//! its own.) Each test file uses part of it.
#![allow(dead_code)]

use std::{io::Write, sync::Arc, time::Duration};

use strata_warm::{Layout, WarmConfig, WarmUrl, testing};

pub(crate) use strata_warm::testing::{connect, server_url};

/// A client of the server's own database, for creating and dropping test databases.
pub(crate) async fn admin() -> tokio_postgres::Client {
    connect(&server_url()).await
}

/// The databases one test created, dropped when it passes (a failing test leaves them for a
/// look). TimescaleDB runs a background scheduler per database, so leftovers would pile up
/// on a long-lived server.
#[derive(Clone, Default)]
pub(crate) struct Databases(Arc<std::sync::Mutex<Vec<String>>>);

impl Databases {
    /// A fresh database's URL.
    pub(crate) async fn fresh(&self) -> String {
        let db = testing::fresh_database(&server_url(), "strata_warm_test").await;
        self.0.lock().expect("not poisoned").push(db.name);
        db.url
    }

    /// Drops every database handed out.
    pub(crate) async fn drop_all(&self) {
        let names = std::mem::take(&mut *self.0.lock().expect("not poisoned"));
        let server = server_url();
        for name in names {
            testing::drop_database(&server, &name)
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

/// Implements both conformance suites' harness traits (`WarmHarness`, `HandoffHarness`) for
/// `$harness` through its `async fn store(&self) -> Arc<dyn WarmStore>`, so one opener serves
/// the warm suite and the cold hand-off suite.
#[allow(unused_macros)] // Not every test file runs the suites.
macro_rules! suite_harness {
    ($harness:ty) => {
        #[async_trait::async_trait]
        impl strata_core::conformance::warm::WarmHarness for $harness {
            async fn open(&self) -> std::sync::Arc<dyn strata_core::warm::WarmTier> {
                self.store().await
            }
        }

        #[async_trait::async_trait]
        impl strata_core::conformance::warm::HandoffHarness for $harness {
            async fn open(&self) -> std::sync::Arc<dyn strata_core::handoff::WarmStore> {
                self.store().await
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use suite_harness;
