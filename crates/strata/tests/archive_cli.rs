//! The cold tier's operator commands against the real binary: `strata export` on a stopped
//! node (and its refusal on a running one), then `strata archive ls | get | verify | hold`
//! against the server, including `verify` catching an altered Parquet file, and the flag
//! errors of all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use common::{
    TestEvent, TestServer, client,
    cold::{DAY, archive_ls, day_start, stderr, stdout, strata_cli},
    count, post_events, rfc3339_micros,
};

const TENANT: &str = "archive-cli";
const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Serve flags: export after 1s but only every hour, so `strata export` does the work.
const SERVE: [&str; 8] = [
    "--flush-interval",
    "200ms",
    "--hot-retention",
    "1s",
    "--export-after",
    "1s",
    "--export-interval",
    "1h",
];

fn events() -> Vec<TestEvent> {
    (0..90u64)
        .map(|n| {
            let day = 1 + (n / 6) as i64 % 3;
            let ts = day_start(day) + (n as i64 * 7_919_000_000) % (DAY - 1);
            TestEvent::at(TENANT, format!("evt-{n}"), n, ts)
        })
        .collect()
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_archive_ls_get_verify_hold() {
    let mut server = tokio::task::spawn_blocking(|| TestServer::spawn_with(&SERVE))
        .await
        .unwrap();
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
    let mut server = tokio::task::spawn_blocking(move || {
        server.stop_gracefully(Duration::from_secs(60));
        server
    })
    .await
    .unwrap();
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

    server = tokio::task::spawn_blocking(move || {
        server.start();
        server
    })
    .await
    .unwrap();
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
    let cases: &[(&[&str], &str)] = &[
        (&["archive", "ls"], "--tenant"),
        (
            &[
                "archive",
                "get",
                "--tenant",
                "t",
                "--from",
                "yesterday",
                "--to",
                "2026-01-01T00:00:00Z",
            ],
            "--from",
        ),
        (
            &[
                "archive",
                "get",
                "--tenant",
                "t",
                "--from",
                "2026-01-01T00:00:00Z",
            ],
            "--to",
        ),
        (
            &[
                "archive",
                "hold",
                "--tenant",
                "t",
                "--stream",
                "s",
                "--date",
                "2026-01-01",
            ],
            "--on",
        ),
        (
            &[
                "archive",
                "hold",
                "--tenant",
                "t",
                "--stream",
                "s",
                "--date",
                "2026-01-01",
                "--on",
                "--off",
            ],
            "--off",
        ),
        (
            &[
                "archive",
                "hold",
                "--tenant",
                "t",
                "--stream",
                "s",
                "--date",
                "2026-13-01",
                "--on",
            ],
            "--date",
        ),
        (
            &["archive", "verify", "--tenant", "t", "--server", "ftp://x"],
            "--server",
        ),
        (&["serve", "--cold", "ftp://bucket"], "--cold"),
        (
            &["serve", "--object-lock-mode", "GOVERNANCE"],
            "--object-lock-retention",
        ),
        (
            &["serve", "--object-lock-retention", "30d"],
            "--object-lock-mode",
        ),
        (
            &[
                "serve",
                "--object-lock-mode",
                "forever",
                "--object-lock-retention",
                "1d",
            ],
            "--object-lock-mode",
        ),
        (
            &["serve", "--compaction-target-size", "0"],
            "--compaction-target-size",
        ),
        (&["serve", "--export-interval", "0s"], "--export-interval"),
        (&["export", "--export-after", "soon"], "--export-after"),
        (&["export", "--cold", "s3://"], "--cold"),
    ];
    for (args, flag) in cases {
        let out = strata_cli(args, &[], Duration::from_secs(30));
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
        let help = stdout(&out);
        for flag in flags {
            assert!(
                help.contains(&format!("--{flag}")),
                "--{flag} missing:\n{help}"
            );
            let env = format!("STRATA_{}", flag.to_uppercase().replace('-', "_"));
            assert!(help.contains(&env), "{env} missing:\n{help}");
        }
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
