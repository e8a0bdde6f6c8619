//! The cold tier's operator commands against the real binary: `strata export` on a stopped
//! node (and its refusal on a running one), then `strata archive ls | get | verify | hold`
//! against the server, including `verify` catching an altered Parquet file, and the flag
//! errors of all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use common::{
    CLI_TIMEOUT, TestEvent, TestServer, assert_help_lists, client,
    cold::{DAY, archive_ls, day_start, fast_tiering, parquet_files},
    count, post_events, rfc3339_micros, stderr, stdout, strata_cli,
};

const TENANT: &str = "archive-cli";

fn events() -> Vec<TestEvent> {
    (0..90u64)
        .map(|n| {
            let day = 1 + (n / 6) as i64 % 3;
            let ts = day_start(day) + (n as i64 * 7_919_000_000) % (DAY - 1);
            TestEvent::at(TENANT, format!("evt-{n}"), n, ts)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_archive_ls_get_verify_hold() {
    // Days are due for export after a second, but looked for only every hour, so
    // `strata export` does the work.
    let server = TestServer::spawn_async(&fast_tiering("1h")).await;
    let data_dir = server.data_dir().to_path_buf();
    let data = data_dir.display().to_string();
    let sent = events();
    let http = client();
    let answer = post_events(&http, &server.http_url(), &sent).await.unwrap();
    assert_eq!(answer.accepted, sent.len() as u64, "{:?}", answer.rejected);

    // The embedded files belong to the running server.
    let out = strata_cli(&["export", "--data-dir", &data], &[], CLI_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stop `strata serve` first"),
        "{}",
        stderr(&out)
    );

    // Stopped after the hot retention: the final flush moves everything to warm.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let server = server
        .blocking(|s| s.stop_gracefully(Duration::from_secs(60)))
        .await;
    let out = strata_cli(
        &["export", "--data-dir", &data, "--export-after", "1s"],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!("exported: 9 partitions, {} rows", sent.len())),
        "{printed}"
    );
    // A second run finds nothing left to do.
    let out = strata_cli(
        &["export", "--data-dir", &data, "--export-after", "1s"],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("exported: 0 partitions, 0 rows"),
        "{}",
        stdout(&out)
    );

    let server = server.blocking(TestServer::start).await;
    let base = server.http_url();

    // ls: nine partitions (3 streams x 3 days) holding every event once.
    let parts = archive_ls(&base, TENANT);
    assert_eq!(parts.len(), 9, "{parts:?}");
    assert_eq!(parts.iter().map(|p| p.2).sum::<u64>(), sent.len() as u64);
    assert!(parts.iter().all(|p| !p.3), "no hold yet: {parts:?}");
    let out = strata_cli(
        &["archive", "ls", "--server", &base, "--tenant", TENANT],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("9 partitions of tenant {TENANT}")),
        "{}",
        stdout(&out)
    );
    // Queries count each event once, now from cold.
    let (from, to) = (rfc3339_micros(day_start(4)), rfc3339_micros(day_start(0)));
    assert_eq!(
        count(&http, &base, TENANT, &from, &to).await.unwrap(),
        sent.len() as u64
    );

    // get: exactly the events of one day, to stdout and to a file.
    let day_from = day_start(2);
    let want: BTreeMap<String, &TestEvent> = sent
        .iter()
        .filter(|e| {
            let ts = common::parse_micros(&e.ts);
            ts >= day_from && ts < day_from + DAY
        })
        .map(|e| (e.id.clone(), e))
        .collect();
    assert!(!want.is_empty());
    let (f, t) = (rfc3339_micros(day_from), rfc3339_micros(day_from + DAY));
    let out = strata_cli(
        &[
            "archive", "get", "--server", &base, "--tenant", TENANT, "--from", &f, "--to", &t,
        ],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let got = parse_events(&stdout(&out));
    assert_eq!(
        got.keys().collect::<BTreeSet<_>>(),
        want.keys().collect::<BTreeSet<_>>()
    );
    for (id, event) in &got {
        let sent = want[id];
        assert_eq!(event["ts"], sent.ts.as_str());
        assert_eq!(event["stream"], sent.stream.as_str());
        assert_eq!(event["key"], sent.key.as_str());
        assert_eq!(event["value"], sent.value);
    }
    let file = data_dir.parent().unwrap().join("day.ndjson");
    let out = strata_cli(
        &[
            "archive",
            "get",
            "--server",
            &base,
            "--tenant",
            TENANT,
            "--from",
            &f,
            "--to",
            &t,
            "--stream",
            "click",
            "--output",
            &file.display().to_string(),
        ],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let clicks = parse_events(&std::fs::read_to_string(&file).unwrap());
    let want_clicks: BTreeSet<&String> = want
        .iter()
        .filter(|(_, e)| e.stream == "click")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(clicks.keys().collect::<BTreeSet<_>>(), want_clicks);
    assert!(!want_clicks.is_empty());

    // hold on, then off.
    let date = common::rfc3339_micros(day_from)[..10].to_owned();
    let hold = |flag: &str| {
        strata_cli(
            &[
                "archive", "hold", "--server", &base, "--tenant", TENANT, "--stream", "view",
                "--date", &date, flag,
            ],
            &[],
            CLI_TIMEOUT,
        )
    };
    let out = hold("--on");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("legal hold placed"),
        "{}",
        stdout(&out)
    );
    let held: Vec<_> = archive_ls(&base, TENANT)
        .into_iter()
        .filter(|p| p.3)
        .collect();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(
        (held[0].0.as_str(), held[0].1.as_str()),
        ("view", date.as_str())
    );
    let out = hold("--off");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(archive_ls(&base, TENANT).iter().all(|p| !p.3));

    // verify: clean, then an altered file is named and the exit code is 1.
    let out = strata_cli(
        &["archive", "verify", "--server", &base, "--tenant", TENANT],
        &[],
        CLI_TIMEOUT,
    );
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("OK"), "{}", stdout(&out));
    let files = parquet_files(&data_dir.join("cold"));
    assert!(!files.is_empty());
    let victim = &files[files.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(victim, &bytes).unwrap();
    let out = strata_cli(
        &["archive", "verify", "--server", &base, "--tenant", TENANT],
        &[],
        CLI_TIMEOUT,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let name = victim.file_name().unwrap().to_str().unwrap();
    let report = stdout(&out);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("altered: ") && l.contains(name)),
        "the report must name {name}:\n{report}"
    );
    assert!(report.contains("FAILED"), "{report}");
}

fn parse_events(ndjson: &str) -> BTreeMap<String, serde_json::Value> {
    ndjson
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}"));
            assert_eq!(v["tenant"], TENANT);
            (v["id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

#[test]
fn bad_flags_are_refused_by_the_command_line() {
    let get = |from: &'static str, to: &[&'static str]| {
        let mut args = vec!["archive", "get", "--tenant", "t", "--from", from];
        args.extend_from_slice(to);
        args
    };
    let hold = |date: &'static str, switches: &[&'static str]| {
        let mut args = vec![
            "archive", "hold", "--tenant", "t", "--stream", "s", "--date", date,
        ];
        args.extend_from_slice(switches);
        args
    };
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["archive", "ls"], "--tenant"),
        (
            get("yesterday", &["--to", "2026-01-01T00:00:00Z"]),
            "--from",
        ),
        (get("2026-01-01T00:00:00Z", &[]), "--to"),
        (hold("2026-01-01", &[]), "--on"),
        (hold("2026-01-01", &["--on", "--off"]), "--off"),
        (hold("2026-13-01", &["--on"]), "--date"),
        (
            vec!["archive", "verify", "--tenant", "t", "--server", "ftp://x"],
            "--server",
        ),
        (vec!["serve", "--cold", "ftp://bucket"], "--cold"),
        (
            vec!["serve", "--object-lock-mode", "GOVERNANCE"],
            "--object-lock-retention",
        ),
        (
            vec!["serve", "--object-lock-retention", "30d"],
            "--object-lock-mode",
        ),
        (
            vec![
                "serve",
                "--object-lock-mode",
                "forever",
                "--object-lock-retention",
                "1d",
            ],
            "--object-lock-mode",
        ),
        (
            vec!["serve", "--compaction-target-size", "0"],
            "--compaction-target-size",
        ),
        (
            vec!["serve", "--export-interval", "0s"],
            "--export-interval",
        ),
        (vec!["export", "--export-after", "soon"], "--export-after"),
        (vec!["export", "--cold", "s3://"], "--cold"),
    ];
    for (args, flag) in cases {
        let out = strata_cli(&args, &[], Duration::from_secs(30));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} must name {flag}: {err}");
    }
}

#[test]
fn export_refuses_a_directory_without_a_hot_tier() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("empty").display().to_string();
    let out = strata_cli(&["export", "--data-dir", &data], &[], CLI_TIMEOUT);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no hot tier"), "{}", stderr(&out));
    assert!(
        !dir.path().join("empty").join("hot.redb").exists(),
        "nothing is created"
    );
}

#[test]
fn help_lists_the_cold_flags_with_their_env_vars() {
    for (sub, flags) in [
        (
            &["serve", "--help"][..],
            &[
                "cold",
                "s3-endpoint",
                "s3-force-path-style",
                "export-after",
                "export-interval",
                "compaction-target-size",
                "object-lock-mode",
                "object-lock-retention",
                "object-lock-after",
            ][..],
        ),
        (
            &["export", "--help"][..],
            &["data-dir", "warm", "cold", "export-after", "node-id"][..],
        ),
        (&["archive", "ls", "--help"][..], &["server"][..]),
    ] {
        let out = strata_cli(sub, &[], Duration::from_secs(30));
        assert!(out.status.success());
        assert_help_lists(&stdout(&out), "STRATA_", flags);
    }
}

#[test]
fn archive_commands_name_an_unreachable_server() {
    let out = strata_cli(
        &[
            "archive",
            "ls",
            "--tenant",
            "t",
            "--server",
            "http://127.0.0.1:9",
        ],
        &[],
        CLI_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot reach the server at http://127.0.0.1:9"),
        "{}",
        stderr(&out)
    );
}
