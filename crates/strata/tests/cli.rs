//! The command line as an operator meets it: help, environment variables, bad values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{CLI_TIMEOUT, assert_help_lists, stderr, stdout, strata_cli, strata_command};

/// Arguments, environment, and the flag the error must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn serve_help_lists_every_flag_with_its_env_var() {
    let out = strata_cli(&["serve", "--help"], &[], CLI_TIMEOUT);
    assert!(out.status.success());
    let help = stdout(&out);
    let flags = [
        "data-dir",
        "http-addr",
        "grpc-addr",
        "max-concurrent-requests",
        "request-timeout",
        "hot-memory",
        "hot-disk",
        "max-key-bytes",
        "max-id-bytes",
        "max-attrs",
        "max-attr-key-bytes",
        "max-attr-value-bytes",
        "max-payload-bytes",
        "max-future-skew",
        "max-lateness",
        "max-batch-events",
        "max-body-bytes",
        "unknown-fields",
        "shutdown-grace",
        "log-format",
        "log-level",
        "warm",
        "warm-layout",
        "warm-pool-size",
        "warm-connect-timeout",
        "warm-chunk-interval",
        "warm-compress-after",
        "warm-partitions-ahead",
        "warm-migrate",
        "warm-retention",
        "hot-retention",
        "flush-interval",
        "flush-max-batch-events",
        "node-id",
    ];
    assert_help_lists(&help, "STRATA_", &flags);
    for default in [
        "[default: storage]",
        "[default: 512MiB]",
        "[default: 30s]",
        "[default: embedded]",
        "[default: auto]",
        "[default: 15m]",
        "[default: 5s]",
        "[default: 90d]",
        "[default: 1d]",
        "[default: 7d]",
    ] {
        assert!(help.contains(default), "{default} missing:\n{help}");
    }
}

#[test]
fn help_never_shows_the_warm_password_from_the_environment() {
    for sub in ["serve", "migrate"] {
        let out = strata_cli(
            &[sub, "--help"],
            &[("STRATA_WARM", "postgres://strata:hunter2@db:5432/strata")],
            CLI_TIMEOUT,
        );
        assert!(out.status.success());
        let help = stdout(&out);
        assert!(help.contains("STRATA_WARM"), "{help}");
        assert!(
            !help.contains("hunter2"),
            "{sub} --help shows the password:\n{help}"
        );
    }
}

#[test]
fn a_bad_warm_url_is_refused_without_echoing_it() {
    let out = strata_cli(
        &["serve", "--warm", "mysql://root:hunter2@db/strata"],
        &[],
        CLI_TIMEOUT,
    );
    let stderr = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value"), "{stderr}");
    assert!(stderr.contains("--warm"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn load_help_lists_its_flags() {
    let out = strata_cli(&["load", "--help"], &[], CLI_TIMEOUT);
    assert!(out.status.success());
    let help = stdout(&out);
    let flags = [
        "protocol",
        "target",
        "ndjson",
        "rate",
        "events",
        "duration",
        "batch-size",
        "concurrency",
        "tenants",
        "streams",
        "keys",
        "zipf-s",
        "seed",
        "json",
    ];
    assert_help_lists(&help, "STRATA_LOAD_", &flags);
}

#[test]
fn invalid_values_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let cases: [Case<'_>; 4] = [
        (
            &["serve", "--data-dir", data, "--hot-memory", "lots"],
            &[],
            "--hot-memory",
        ),
        (
            &["serve", "--data-dir", data],
            &[("STRATA_HOT_DISK", "huge")],
            "--hot-disk",
        ),
        (
            &["serve", "--data-dir", data, "--max-lateness", "old"],
            &[],
            "--max-lateness",
        ),
        (
            &["serve", "--data-dir", data, "--unknown-fields", "maybe"],
            &[],
            "--unknown-fields",
        ),
    ];
    for (args, envs, flag) in cases {
        let out = strata_cli(args, envs, CLI_TIMEOUT);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {err}");
        assert!(err.contains("invalid value"), "{err}");
        assert!(err.contains(flag), "{flag} not named: {err}");
    }
    let out = strata_cli(
        &["serve", "--data-dir", data, "--hot-memory", "lots"],
        &[],
        CLI_TIMEOUT,
    );
    let err = stderr(&out);
    assert!(err.contains("'lots'") && err.contains("byte size"), "{err}");
    // Nothing was started, so nothing was created.
    assert!(!dir.path().join("data").exists());
}

#[test]
fn serve_reads_its_configuration_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("from-env");
    let mut cmd = strata_command(&["serve"]);
    cmd.env("STRATA_DATA_DIR", &data)
        .env("STRATA_HTTP_ADDR", "127.0.0.1:0")
        .env("STRATA_GRPC_ADDR", "127.0.0.1:0")
        .env("STRATA_LOG_FORMAT", "json")
        .env("STRATA_HOT_MEMORY", "64MiB");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (mut child, http, grpc) = common::spawn_and_wait_listening(cmd, log.clone());
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(http.port(), 0);
    assert_ne!(grpc.port(), 0);
    assert!(
        data.join("hot.redb").exists(),
        "hot tier not under STRATA_DATA_DIR"
    );
    let log = log.lock().unwrap().join("\n");
    assert!(
        log.contains("67108864"),
        "memory budget from STRATA_HOT_MEMORY not used: {log}"
    );
}

#[test]
fn load_fails_when_requests_fail() {
    // Port 9 (discard) on loopback has no listener here: every request is refused.
    let out = strata_cli(
        &[
            "load",
            "--target",
            "http://127.0.0.1:9",
            "--events",
            "20",
            "--batch-size",
            "10",
            "--json",
        ],
        &[],
        CLI_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(summary["failed_requests"], 2, "{summary}");
    assert_eq!(summary["accepted"], 0);
    assert!(stderr(&out).contains("2 of 2 requests failed"));
}

#[test]
fn a_failing_kafka_consumer_shuts_the_server_down_with_status_1() {
    let dir = tempfile::tempdir().unwrap();
    // An empty topic name is refused by the consumer before it contacts any broker, so
    // nothing needs to listen at the (discard) port.
    let cmd = common::serve_command(
        &dir.path().join("data"),
        &[
            "--kafka-brokers",
            "127.0.0.1:9",
            "--kafka-topics",
            "events,",
        ],
    );
    let out = common::run_to_exit(cmd, CLI_TIMEOUT);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the Kafka consumer failed"), "{err}");
    // The failure is handled like a signal: an orderly shutdown that closes the store.
    assert!(err.contains("store closed"), "{err}");
}
