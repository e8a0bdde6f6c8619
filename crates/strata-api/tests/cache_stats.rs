//! The query cache over REST: `GET /v1/cache/stats`, the `cache` field of aggregate answers,
//! and a late event changing a cached answer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HOUR, TestServer, event, rfc};
use serde_json::Value;
use strata_types::time::now_micros;

const DAY: i64 = 24 * HOUR;

fn count_of(body: &Value) -> f64 {
    body["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {body}"))
        .iter()
        .map(|b| b["value"].as_f64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_ranges_are_cached_and_late_events_refresh_them() {
    let server = TestServer::start().await;
    let (status, stats) = server.get_json("/v1/cache/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["capacity_bytes"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(stats["hits"], 0);

    // A range of whole days that ended long before max_lateness: closed, hence cacheable.
    let now = now_micros();
    let day0 = now - now.rem_euclid(DAY) - 3 * DAY;
    let (from, to) = (rfc(day0), rfc(day0 + 2 * DAY));
    let params = [
        ("tenant", "acme"),
        ("from", from.as_str()),
        ("to", to.as_str()),
        ("bucket", "1h"),
        ("agg", "count"),
    ];
    let (status, first) = server.aggregate(&params).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cache"], "miss", "{first}");
    assert_eq!(count_of(&first), 0.0);
    let (_, second) = server.aggregate(&params).await;
    assert_eq!(second["cache"], "hit", "{second}");

    // A late event (days old) goes straight to warm and bumps its day's version.
    let (status, answer) = server
        .post_array(&[event("acme", "late-1", day0 + 5 * HOUR)])
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 1, "{answer}");
    let (_, third) = server.aggregate(&params).await;
    assert_eq!(count_of(&third), 1.0, "{third}");
    assert_ne!(
        third["cache"], "hit",
        "the late event's chunk was recomputed"
    );
    let (_, fourth) = server.aggregate(&params).await;
    assert_eq!(fourth["cache"], "hit", "{fourth}");
    assert_eq!(count_of(&fourth), 1.0);

    let (_, stats) = server.get_json("/v1/cache/stats").await;
    assert_eq!(stats["hits"], 2, "{stats}");
    assert_eq!(
        stats["misses"].as_u64().unwrap() + stats["partial"].as_u64().unwrap(),
        2
    );
    assert!(stats["entries"].as_u64().unwrap() >= 48, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() > 0, "{stats}");

    let (_, doc) = server.get_json("/openapi.json").await;
    assert!(
        doc["paths"]["/v1/cache/stats"]["get"].is_object(),
        "the route is documented"
    );
    server.stop().await;
}
