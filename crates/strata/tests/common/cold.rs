//! Helpers of the cold-tier black-box tests: running CLI subcommands to completion, events
//! on past days, the archive read back from disk or S3.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use super::STRATA;

/// Microseconds in a day.
pub(crate) const DAY: i64 = 86_400_000_000;

/// The start (UTC midnight, epoch micros) of the day `days_back` days before today.
pub(crate) fn day_start(days_back: i64) -> i64 {
    let now = super::now_micros();
    now.div_euclid(DAY) * DAY - days_back * DAY
}

/// Runs `strata ARGS` to its exit with the test's own `STRATA_*` environment removed (plus
/// `envs`); kills it after `timeout`. Standard output and error are captured.
pub(crate) fn strata_cli(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Output {
    let mut cmd = Command::new(STRATA);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("STRATA_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn strata");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for strata"),
        Err(_) => {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!(
                "`strata {}` did not exit within {timeout:?}",
                args.join(" ")
            );
        }
    }
}

/// Standard output as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what` after
/// `timeout`.
pub(crate) async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The parsed answer of `GET /v1/archive/partitions`, via `strata archive ls --json`:
/// `(stream, date, rows, legal_hold)` per partition.
pub(crate) fn archive_ls(server: &str, tenant: &str) -> Vec<(String, String, u64, bool)> {
    let out = strata_cli(
        &[
            "archive", "ls", "--server", server, "--tenant", tenant, "--json",
        ],
        &[],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "archive ls failed: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("archive ls --json printed {}: {e}", stdout(&out)));
    assert_eq!(v["tenant"], tenant);
    v["partitions"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            (
                p["stream"].as_str().unwrap().to_owned(),
                p["date"].as_str().unwrap().to_owned(),
                p["rows"].as_u64().unwrap(),
                p["legal_hold"].as_bool().unwrap(),
            )
        })
        .collect()
}
