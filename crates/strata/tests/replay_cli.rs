//! `strata replay` against a real `strata serve` whose data sits in every tier: the output
//! file holds exactly the tenant's events in `(ts, id)` order, byte for byte as the lookup
//! returns them, with the summary's checksum; an interrupted run prints a cursor that a
//! second run resumes from; bad flags and a bad cursor fail naming the problem.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use common::{
    CLI_TIMEOUT, TestEvent, TestServer, client,
    cold::{DAY, day_start, fast_tiering, parquet_files},
    now_micros, post_events, rfc3339_micros, stderr, strata_cli, strata_command,
};
use strata_tiering::ReplayChecksum;

const TENANT: &str = "replay-cli";

/// Events of two tenants: most on the three days before today (archived), the rest now
/// (hot, then warm); some share a timestamp.
fn events() -> Vec<TestEvent> {
    (0..240u64)
        .map(|n| {
            let tenant = if n % 6 == 0 { "replay-other" } else { TENANT };
            let ts = if n % 4 == 0 {
                now_micros() - (n as i64) * 1_000_000
            } else {
                let day = 1 + (n / 6) as i64 % 3;
                day_start(day) + ((n / 2) as i64 * 7_919_000_000) % (DAY - 1)
            };
            TestEvent::at(tenant, format!("evt-{:03}", (n * 37) % 240), n, ts)
        })
        .collect()
}

/// `strata replay` of [`TENANT`]'s events in `[from, to)` from the server at `url`.
fn replay_args<'a>(url: &'a str, from: &'a str, to: &'a str) -> Vec<&'a str> {
    vec![
        "replay", "--server", url, "--tenant", TENANT, "--from", from, "--to", to,
    ]
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn summary_value<'a>(stderr: &'a str, name: &str) -> &'a str {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no `{name}:` in {stderr}"))
}

fn checksum(lines: &[String]) -> String {
    let mut c = ReplayChecksum::new();
    lines.iter().for_each(|l| c.update(l.as_bytes()));
    c.hex()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_a_file_equals_the_events_and_resumes_from_its_cursor() {
    // Flush fast and archive closed days every second, so the replay crosses all tiers.
    let server = TestServer::spawn_async(&fast_tiering("1s")).await;
    let url = server.http_url();
    let sent = events();
    let http = client();
    let answer = post_events(&http, &url, &sent).await.unwrap();
    assert_eq!(answer.accepted, sent.len() as u64, "{:?}", answer.rejected);
    // Wait until the archive holds the old days, so the replay reads cold too.
    let deadline = Instant::now() + Duration::from_secs(60);
    while parquet_files(server.data_dir()).is_empty() {
        assert!(Instant::now() < deadline, "nothing was archived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let from = rfc3339_micros(day_start(5));
    let to = rfc3339_micros(now_micros() + strata_types::time::HOUR);
    let out = dir.path().join("all.ndjson");
    let base = replay_args(&url, &from, &to);
    let run = |extra: &[&str]| {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        strata_cli(&args, &[], CLI_TIMEOUT)
    };
    let result = run(&["--output", out.to_str().unwrap()]);
    let err = stderr(&result);
    assert!(result.status.success(), "{err}");
    let all = lines(&out);

    // Exactly the tenant's events, in (ts, id) order, each as the lookup returns it.
    let mut want: Vec<&TestEvent> = sent.iter().filter(|e| e.tenant == TENANT).collect();
    want.sort_by(|a, b| (&a.ts, &a.id).cmp(&(&b.ts, &b.id)));
    assert_eq!(all.len(), want.len(), "{err}");
    for (line, event) in all.iter().zip(&want) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["id"], event.id.as_str(), "order");
        assert!(
            v.get("cursor").is_none(),
            "the cursor is not part of the output"
        );
        let looked_up = http
            .get(format!("{url}/v1/events/{}?tenant={TENANT}", event.id))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(line, &looked_up, "byte for byte");
    }
    assert_eq!(summary_value(&err, "events"), all.len().to_string());
    assert_eq!(
        summary_value(&err, "checksum"),
        format!("sha256:{}", checksum(&all))
    );
    assert_eq!(summary_value(&err, "first ts"), want[0].ts);
    assert_eq!(summary_value(&err, "last ts"), want[want.len() - 1].ts);

    // Interrupted: a slow run stopped with SIGINT prints where to resume and fails.
    let part1 = dir.path().join("part1.ndjson");
    let mut args: Vec<&str> = base.clone();
    args.extend(["--max-rate", "40", "--output", part1.to_str().unwrap()]);
    let child = strata_command(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    let interrupted = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = stderr(&interrupted);
    assert_eq!(interrupted.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    let first = lines(&part1);
    assert!(!first.is_empty() && first.len() < all.len(), "{err}");
    assert_eq!(first, all[..first.len()], "the prefix up to the cursor");
    let cursor = summary_value(&err, "cursor").to_owned();
    assert!(err.contains(&format!("--cursor {cursor}")), "{err}");

    let part2 = dir.path().join("part2.ndjson");
    let resumed = run(&["--cursor", &cursor, "--output", part2.to_str().unwrap()]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let mut joined = first;
    joined.extend(lines(&part2));
    assert_eq!(joined, all, "the two runs together equal one");

    // Bad input names the problem and exits with 1; bad flags with 2.
    let bad = run(&["--cursor", "not-a-cursor"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("cursor"), "{}", stderr(&bad));
    let bad = strata_cli(&replay_args(&url, "yesterday", &to), &[], CLI_TIMEOUT);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--from"), "{}", stderr(&bad));
    let bad = run(&["--kafka-brokers", "127.0.0.1:1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    drop(server);
}
