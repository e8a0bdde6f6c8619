//! `strata load` against a real server, over REST (JSON and NDJSON) and gRPC: every event
//! it reports as accepted is counted by the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{process::Output, time::Duration};

use common::{DEFAULTS, TestServer, client, count, strata_cli};
use serde_json::Value;

fn load(args: &[&str]) -> (Output, Value) {
    let mut all = vec!["load"];
    all.extend_from_slice(args);
    all.extend(["--json", "--log-level", "warn"]);
    let output = strata_cli(&all, &[], Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "summary is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, summary)
}

fn assert_all_accepted(output: &Output, summary: &Value, events: u64) {
    assert!(
        output.status.success(),
        "load failed: {summary}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(summary["sent"], events, "{summary}");
    assert_eq!(summary["accepted"], events, "{summary}");
    assert_eq!(summary["rejected"], 0, "{summary}");
    assert_eq!(summary["failed_requests"], 0, "{summary}");
    assert!(
        summary["latency_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(
        summary["latency_ms"]["max"].as_f64().unwrap()
            >= summary["latency_ms"]["p99"].as_f64().unwrap()
    );
}

fn tenants(summary: &Value) -> Vec<String> {
    summary["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

async fn total_count(base: &str, tenants: &[String], from: &str) -> u64 {
    let http = client();
    let to = common::rfc3339_from_now(chrono::Duration::hours(1));
    let mut total = 0;
    for t in tenants {
        total += count(&http, base, t, from, &to).await.unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_over_rest_and_grpc_is_fully_stored() {
    let from = common::rfc3339_from_now(chrono::Duration::hours(-1));
    let server = TestServer::spawn_async(&DEFAULTS).await;
    let url = server.http_url();
    let grpc = format!("http://{}", server.grpc_addr());

    let runs: [(&str, Vec<&str>, u64); 3] = [
        (
            "rest json",
            vec!["--protocol", "rest", "--target", &url],
            3_000,
        ),
        (
            "rest ndjson",
            vec!["--protocol", "rest", "--target", &url, "--ndjson"],
            2_000,
        ),
        ("grpc", vec!["--protocol", "grpc", "--target", &grpc], 2_500),
    ];
    let mut expected = 0;
    for (name, args, events) in runs {
        let events_arg = events.to_string();
        let mut args = args;
        args.extend([
            "--events",
            &events_arg,
            "--batch-size",
            "300",
            "--concurrency",
            "3",
            "--tenants",
            "3",
            "--seed",
            "7",
        ]);
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let (output, summary) = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            load(&refs)
        })
        .await
        .unwrap();
        eprintln!("{name}: {summary}");
        assert_all_accepted(&output, &summary, events);
        // Same seed, but a fresh run id: nothing of a later run is a duplicate.
        assert_eq!(summary["duplicates"], 0, "{name}: {summary}");
        // 300-event batches: 10, 7 and 9 requests.
        assert_eq!(
            summary["requests"],
            events.div_ceil(300),
            "{name}: {summary}"
        );
        expected += events;
        let all_tenants = tenants(&summary);
        assert_eq!(all_tenants, ["acme", "globex", "initech"]);
        assert_eq!(
            total_count(&url, &all_tenants, &from).await,
            expected,
            "after {name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_rate_and_duration_bound_what_is_sent() {
    let from = common::rfc3339_from_now(chrono::Duration::hours(-1));
    let server = TestServer::spawn_async(&DEFAULTS).await;
    let url = server.http_url();
    let (output, summary) = tokio::task::spawn_blocking(move || {
        load(&[
            "--target",
            &url,
            "--rate",
            "2000",
            "--duration",
            "1s",
            "--batch-size",
            "100",
            "--concurrency",
            "2",
        ])
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{summary}");
    // Batches are due every 50 ms and none at or after 1 s: at most 20 of 100 events.
    let sent = summary["sent"].as_u64().unwrap();
    assert!(sent > 0 && sent <= 2_000, "{summary}");
    assert_eq!(summary["accepted"], sent);
    assert_eq!(sent % 100, 0, "{summary}");
    assert_eq!(
        total_count(&server.http_url(), &tenants(&summary), &from).await,
        sent
    );
}
