//! `/metrics` right after start: every counter exists at zero (so an alert on it can fire
//! from the first scrape), size histograms have size buckets, and the process is reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestServer, client};

/// The samples of the Prometheus text `body`: (name, labels, value).
fn samples(body: &str) -> Vec<(&str, &str, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            Some((name, labels, value.parse::<f64>().ok()?))
        })
        .collect()
}

/// Every counter the code names, from each crate's list.
fn all_counters() -> Vec<&'static str> {
    [
        strata_api::metrics::ALL_COUNTERS,
        strata_tiering::metrics_names::ALL_COUNTERS,
        strata_hot::metrics::ALL_COUNTERS,
        strata_ingest::metrics_names::ALL_COUNTERS,
    ]
    .concat()
}

#[tokio::test]
async fn first_scrape_has_every_counter_at_zero_size_buckets_and_process_metrics() {
    let server = TestServer::spawn_async(&[] as &[&str]).await;
    let answer = client()
        .get(format!("{}/metrics", server.http_url()))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "GET /metrics: {}",
        answer.status()
    );
    let body = answer.text().await.unwrap();
    let samples = samples(&body);

    let counters = all_counters();
    assert!(
        counters.len() >= 30,
        "only {} counters listed",
        counters.len()
    );
    for name in &counters {
        let values: Vec<f64> = samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| *v)
            .collect();
        assert!(!values.is_empty(), "counter {name} missing from:\n{body}");
        assert!(
            values.iter().all(|v| *v == 0.0),
            "counter {name} is not zero right after start: {values:?}"
        );
        assert!(
            body.contains(&format!("# TYPE {name} counter")),
            "{name} is not exported as a counter"
        );
    }

    // Labelled error counters have a series per known label value, not just the family.
    for series in [
        r#"strata_flush_errors_total{stage="write"}"#,
        r#"strata_export_errors_total{stage="commit"}"#,
        r#"strata_hot_full_rejections_total{reason="disk"}"#,
        r#"strata_ingest_batches_refused_total{reason="full"}"#,
    ] {
        assert!(
            body.lines().any(|l| l == format!("{series} 0")),
            "{series} 0 missing"
        );
    }

    let commit_events = strata_hot::metrics::COMMIT_EVENTS;
    assert!(
        samples
            .iter()
            .any(|(n, l, _)| *n == format!("{commit_events}_bucket") && l.contains(r#"le="1000""#)),
        "{commit_events} has no size bucket le=\"1000\":\n{body}"
    );
    let commit_seconds = strata_hot::metrics::COMMIT_SECONDS;
    assert!(
        samples.iter().any(
            |(n, l, _)| *n == format!("{commit_seconds}_bucket") && l.contains(r#"le="0.001""#)
        ),
        "{commit_seconds} has no seconds bucket le=\"0.001\""
    );

    let rss = samples
        .iter()
        .find(|(n, _, _)| *n == "process_resident_memory_bytes")
        .map(|(_, _, v)| *v);
    assert!(
        rss.is_some_and(|v| v > 0.0),
        "process_resident_memory_bytes missing or zero: {rss:?}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(samples.iter().any(|(n, _, _)| *n == name), "{name} missing");
    }
}
