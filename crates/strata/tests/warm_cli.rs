//! The warm tier and node id as an operator meets them, without a PostgreSQL server: a node
//! whose PostgreSQL is unreachable still starts and takes writes, passwords never reach the
//! log, `strata migrate` fails clearly, and a data directory is never renumbered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{net::TcpListener, time::Duration};

use common::{
    CLI_TIMEOUT, DEFAULTS, PostOutcome, TestEvent, TestServer, aggregate, client, count_params,
    get_event, now_micros, rfc3339_micros, run_to_exit, serve_command, stderr, stdout, strata_cli,
    try_post_events,
};

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// `strata ARGS` run to its exit: exit code, standard output and standard error.
fn strata(args: &[&str]) -> (Option<i32>, String, String) {
    let out = strata_cli(args, &[], CLI_TIMEOUT);
    (out.status.code(), stdout(&out), stderr(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_postgres_does_not_stop_the_node_and_its_password_is_never_logged() {
    let url = format!(
        "postgres://strata:hunter2@127.0.0.1:{}/strata",
        closed_port()
    );
    let args = [
        "--warm",
        url.as_str(),
        "--warm-connect-timeout",
        "500ms",
        // Longer than --max-future-skew plus a minute: live writes need no warm lookup.
        "--hot-retention",
        "65s",
        "--max-future-skew",
        "1s",
    ];
    let server = TestServer::spawn_async(&args).await;
    let http = client();
    let base = server.http_url();
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let events: Vec<TestEvent> = (0..50)
        .map(|n| TestEvent::new("nowarm", format!("n-{n}"), n))
        .collect();
    match try_post_events(&http, &base, &events).await {
        PostOutcome::Acked(a) => assert_eq!(a.accepted, 50),
        other => panic!("writes must be taken while warm is away: {other:?}"),
    }
    let got = get_event(&http, &base, "nowarm", "n-7").await.unwrap();
    assert!(got.is_some(), "an event still in hot is readable");
    let from = rfc3339_micros(now_micros() - strata_types::time::HOUR);
    let to = rfc3339_micros(now_micros() + strata_types::time::HOUR);
    let (status, body) = aggregate(&http, &base, &count_params("nowarm", &from, &to))
        .await
        .unwrap_err();
    assert_eq!(status, 503, "a query that needs warm says so: {body}");

    let server = server
        .blocking(|s| s.stop_gracefully(Duration::from_secs(30)))
        .await;
    let logs = server.logs();
    assert!(logs.contains("the warm tier is unreachable"), "{logs}");
    assert!(logs.contains("strata:***@127.0.0.1"), "{logs}");
    assert!(logs.contains("\"warm_mode\":\"postgres\""), "{logs}");
    assert!(
        !logs.contains("hunter2"),
        "the password was logged:\n{logs}"
    );
    for step in [
        "flusher started",
        "stopping the flusher",
        "final flush before shutdown",
        "closing the store",
        "shutdown complete",
    ] {
        assert!(logs.contains(step), "no `{step}` in the log:\n{logs}");
    }
}

#[test]
fn a_short_hot_retention_warns_that_writes_then_depend_on_warm() {
    let mut server = TestServer::spawn_with(&["--hot-retention", "10s"]);
    server.stop_gracefully(Duration::from_secs(30));
    let logs = server.logs();
    assert!(
        logs.contains("--hot-retention is not longer than --max-future-skew"),
        "{logs}"
    );
    let mut server = TestServer::spawn();
    server.stop_gracefully(Duration::from_secs(30));
    assert!(
        !server.logs().contains("--hot-retention is not longer"),
        "the defaults must not warn"
    );
}

#[test]
fn migrate_fails_clearly_when_the_server_is_unreachable() {
    let url = format!(
        "postgres://strata:hunter2@127.0.0.1:{}/strata",
        closed_port()
    );
    for extra in [&[][..], &["--status"][..]] {
        let mut args = vec![
            "migrate",
            "--warm",
            url.as_str(),
            "--warm-connect-timeout",
            "1s",
            "--log-format",
            "json",
        ];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = strata(&args);
        assert_eq!(code, Some(1), "{extra:?}: {stdout}{stderr}");
        assert!(
            stderr.contains("the warm tier at postgres://strata:***@127.0.0.1"),
            "{stderr}"
        );
        assert!(stderr.contains("unavailable"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
}

#[test]
fn migrate_on_the_embedded_store_has_nothing_to_do() {
    let (code, stdout, stderr) = strata(&["migrate"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("warm mode: embedded"), "{stdout}");
    assert!(stdout.contains("nothing to apply"), "{stdout}");
    let (code, stdout, stderr) = strata(&["migrate", "--status"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("warm mode: embedded"), "{stdout}");
}

#[test]
fn a_data_directory_is_never_renumbered() {
    let mut server = TestServer::spawn_with(&["--node-id", "pod-a"]);
    assert!(
        server.logs().contains("\"node\":\"pod-a\""),
        "{}",
        server.logs()
    );
    let data = server.data_dir().to_path_buf();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let event = TestEvent::new("ids", "keep-me".into(), 1);
    rt.block_on(async {
        match try_post_events(&client(), &server.http_url(), std::slice::from_ref(&event)).await {
            PostOutcome::Acked(a) => assert_eq!(a.accepted, 1),
            other => panic!("{other:?}"),
        }
    });
    server.stop_gracefully(Duration::from_secs(30));

    let out = run_to_exit(
        serve_command(&data, &["--node-id", "pod-b"]),
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refusing to renumber"), "{err}");
    assert!(err.contains("pod-a"), "{err}");
    let mut cmd = serve_command(&data, &DEFAULTS);
    cmd.env("STRATA_NODE_ID", "pod-b");
    let out = run_to_exit(cmd, Duration::from_secs(60));
    assert!(
        !out.status.success(),
        "STRATA_NODE_ID must be checked too: {}",
        stderr(&out)
    );

    // The right id (or none) starts it, with its data.
    server.set_args(&["--node-id", "pod-a"]);
    server.start();
    rt.block_on(async {
        let got = get_event(&client(), &server.http_url(), "ids", "keep-me")
            .await
            .unwrap();
        assert!(got.is_some());
    });
}
