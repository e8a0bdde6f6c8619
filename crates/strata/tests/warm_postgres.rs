//! The flusher and `strata migrate` with a PostgreSQL warm tier, against the real binary and
//! the server `scripts/test` starts (`STRATA_TEST_POSTGRES_URL`; the tests fail without it).
//! Every test gets its own database, and checks the warm table directly as well as through
//! the API.

#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{
    CLI_TIMEOUT, TestEvent, TestServer, post_events, postgres, serve_to_exit, stderr, stdout,
    strata_cli,
    warm::{Backend, flow, kill_mid_flush, wait_flushed},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_layout_events_reach_warm_exactly_once_and_queries_span_both_tiers() {
    flow(Backend::postgres("postgres").await).await;
}

/// The hypertable layout runs whenever the server offers timescaledb; on a server without
/// it, asking for that layout must be refused with a clear error instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timescaledb_layout_flows_when_available_and_is_refused_otherwise() {
    let backend = Backend::postgres("timescaledb").await;
    if postgres::timescale_preloaded(&postgres::server_url()).await {
        flow(backend).await;
        return;
    }
    let out = serve_to_exit(&backend.args()).await;
    let err = stderr(&out);
    assert!(!out.status.success(), "serve must refuse: {err}");
    assert!(err.contains("timescaledb"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_mid_flush_loses_nothing_and_stores_each_event_once() {
    kill_mid_flush(Backend::postgres("auto").await).await;
}

/// `strata migrate ARGS` run to its exit: success, standard output and standard error.
fn strata_migrate(args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    let out = strata_cli(&all, &[], CLI_TIMEOUT);
    (out.status.success(), stdout(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_applies_once_and_reports_status() {
    let db = postgres::fresh_database(&postgres::server_url()).await;
    let timescale = postgres::timescale_preloaded(&db).await;
    let (db2, out) = tokio::task::spawn_blocking(move || {
        let before = strata_migrate(&["--warm", &db, "--status"]);
        let first = strata_migrate(&["--warm", &db]);
        let second = strata_migrate(&["--warm", &db]);
        let after = strata_migrate(&["--warm", &db, "--status"]);
        (db, [before, first, second, after])
    })
    .await
    .unwrap();
    let [before, first, second, after] = out;
    for (ok, stdout, stderr) in [&before, &first, &second, &after] {
        assert!(ok, "strata migrate failed:\n{stdout}\n{stderr}");
    }
    let mode = if timescale { "timescaledb" } else { "postgres" };
    assert!(before.1.contains("not migrated"), "{}", before.1);
    assert!(
        before.1.contains("pending  0001_flush_ledger"),
        "{}",
        before.1
    );
    assert!(
        before.1.contains(&format!(
            "timescaledb extension: {}",
            if timescale {
                "available"
            } else {
                "not available"
            }
        )),
        "{}",
        before.1
    );
    assert!(
        first.1.contains(&format!("warm mode: {mode}")),
        "{}",
        first.1
    );
    assert!(first.1.contains("applied 0001_flush_ledger"), "{}", first.1);
    assert!(second.1.contains("nothing to apply"), "{}", second.1);
    assert!(
        after.1.contains("applied  0001_flush_ledger"),
        "{}",
        after.1
    );
    assert!(!after.1.contains("pending"), "{}", after.1);

    // A migrated database serves with --warm-migrate false.
    let server =
        TestServer::spawn_async(&["--warm", db2.as_str(), "--warm-migrate", "false"]).await;
    assert!(
        server.logs().contains(&format!("\"warm_mode\":\"{mode}\"")),
        "{}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_migrations_refuses_an_unmigrated_database() {
    let db = postgres::fresh_database(&postgres::server_url()).await;
    let out = serve_to_exit(&["--warm", db.as_str(), "--warm-migrate", "false"]).await;
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("strata migrate"), "{err}");
}

/// A StatefulSet pod that lost its volume comes back with its old name and an empty data
/// directory: its new hot tier would reuse sequence numbers warm has already seen, so the
/// node must refuse to start rather than have its events skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_reused_on_a_new_data_directory_is_refused() {
    let backend = Backend::postgres("postgres").await;
    let mut args = backend.args();
    args.extend(
        [
            "--node-id",
            "strata-0",
            "--hot-retention",
            "1s",
            "--flush-interval",
            "200ms",
        ]
        .map(String::from),
    );
    let server = TestServer::spawn_async(&args).await;
    let events: Vec<TestEvent> = (0..50)
        .map(|n| TestEvent::new("reuse", format!("r-{n}"), n))
        .collect();
    post_events(&common::client(), &server.http_url(), &events)
        .await
        .unwrap();
    wait_flushed(&server, &backend, events.len() as u64).await;
    drop(server);

    let out = serve_to_exit(&args).await;
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("`strata-0` is already taken"), "{err}");
    assert!(err.contains("--node-id"), "{err}");
}
