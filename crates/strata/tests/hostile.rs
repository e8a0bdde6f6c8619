//! Hostile and careless clients against the real binary: every request below once stalled,
//! crashed or poisoned a node. Each must now get a clear 4xx naming the field (or a clean,
//! empty answer), store nothing of a refused event, and leave `/healthz` answering within
//! 100 ms throughout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{
    HttpAnswer, TestEvent, TestServer, client, get_event, now_micros, rfc3339_micros, send,
};
use serde_json::Value;

const TENANT: &str = "hostile";

/// Fails unless `/healthz` answers 200 within 100 ms.
async fn assert_healthy(http: &reqwest::Client, base: &str, after: &str) {
    let started = Instant::now();
    let answer = send(http.get(format!("{base}/healthz"))).await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "after {after}: {}", answer.failure());
    assert!(
        took < Duration::from_millis(100),
        "after {after}: /healthz took {took:?}"
    );
}

async fn post_raw(http: &reqwest::Client, base: &str, body: String) -> HttpAnswer {
    send(
        http.post(format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .body(body),
    )
    .await
    .unwrap()
}

/// The `(field, reason)` of the only rejection of a fully refused batch.
fn only_rejection(answer: &HttpAnswer) -> (String, String) {
    assert_eq!(answer.status, 400, "{}", answer.failure());
    assert_eq!(answer.error_code().as_deref(), Some("invalid_events"));
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    let rejected = body["rejected"].as_array().expect("rejected list");
    assert_eq!(rejected.len(), 1, "{}", answer.body);
    (
        rejected[0]["field"].as_str().unwrap().to_owned(),
        rejected[0]["reason"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_events_are_refused_naming_the_field_and_store_nothing() {
    let server = TestServer::spawn_async(&[] as &[&str]).await;
    let http = client();
    let base = server.http_url();
    let base_event = TestEvent::new(TENANT, "base".into(), 1);
    let ok = base_event.to_json();

    // (description, the event's JSON, the field the rejection must name, a word of its reason)
    let deep = "[".repeat(30_000) + &"]".repeat(30_000);
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "a second tenant",
            ok.replacen(
                r#""tenant":"hostile""#,
                r#""tenant":"hostile","tenant":"other""#,
                1,
            ),
            "tenant",
            "more than once",
        ),
        (
            "NUL in id",
            ok.replacen(r#""id":"base""#, r#""id":"ba\u0000se""#, 1),
            "id",
            "control character",
        ),
        (
            "a newline in key",
            ok.replacen(r#""key":"user-1""#, r#""key":"user\n1""#, 1),
            "key",
            "control character",
        ),
        (
            "payload nested 30,000 deep",
            {
                let i = ok.find(r#""payload":"#).unwrap() + r#""payload":"#.len();
                format!("{}{deep}}}", &ok[..i])
            },
            "payload",
            "max_payload_depth",
        ),
        (
            "a value out of range",
            {
                let value = format!(r#""value":{}"#, Value::from(base_event.value));
                ok.replacen(&value, r#""value":1e400"#, 1)
            },
            "value",
            "range",
        ),
    ];
    for (what, event, field, reason) in cases {
        assert!(event != ok, "{what}: the case did not change the event");
        let answer = post_raw(&http, &base, format!("[{event}]")).await;
        let (got_field, got_reason) = only_rejection(&answer);
        assert_eq!(got_field, field, "{what}: {got_reason}");
        assert!(got_reason.contains(reason), "{what}: {got_reason}");
        assert_healthy(&http, &base, what).await;
    }
    // Nothing of any refused event was stored, under either tenant.
    for tenant in [TENANT, "other"] {
        for id in ["base", "ba\u{0}se"] {
            assert!(
                get_event(&http, &base, tenant, id).await.unwrap().is_none(),
                "{tenant}/{id:?} was stored"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ranges_answer_400_at_once_and_never_stall_the_node() {
    let server = TestServer::spawn_async(&[] as &[&str]).await;
    let http = client();
    let base = server.http_url();
    let max = i64::MAX.to_string();
    let min = i64::MIN.to_string();
    for (from, to, bucket, field) in [
        ("-1", max.as_str(), "1s", "to"),
        (min.as_str(), "0", "1s", "from"),
        (
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1s",
            "bucket",
        ),
    ] {
        let started = Instant::now();
        let answer = send(http.get(format!("{base}/v1/query/aggregate")).query(&[
            ("tenant", TENANT),
            ("from", from),
            ("to", to),
            ("bucket", bucket),
            ("agg", "count"),
        ]))
        .await
        .unwrap();
        assert_eq!(answer.status, 400, "{from}..{to}: {}", answer.failure());
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(body["field"], field, "{}", answer.body);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{from}..{to} took long"
        );
        assert_healthy(&http, &base, &format!("{from}..{to}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_with_newlines_keep_replay_one_event_per_line() {
    let server = TestServer::spawn_async(&[] as &[&str]).await;
    let http = client();
    let base = server.http_url();
    let ts = now_micros() - 60_000_000;
    let events: Vec<String> = (0..5)
        .map(|n| {
            let mut e = TestEvent::at(TENANT, format!("nl-{n}"), n, ts + n as i64);
            // Pretty-printed JSON: newlines and indentation outside strings, an escaped
            // newline inside one.
            e.payload = format!("{{\n  \"n\": {n},\n  \"text\": \"line\\nbreak\"\n}}");
            e.to_json()
        })
        .collect();
    let answer = post_raw(&http, &base, format!("[{}]", events.join(","))).await;
    assert_eq!(answer.status, 200, "{}", answer.failure());
    let replay = send(http.get(format!("{base}/v1/replay")).query(&[
        ("tenant", TENANT),
        ("from", rfc3339_micros(ts - 1_000_000).as_str()),
        ("to", rfc3339_micros(ts + 1_000_000).as_str()),
    ]))
    .await
    .unwrap();
    assert_eq!(replay.status, 200, "{}", replay.failure());
    let lines: Vec<Value> = replay
        .body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one event: {l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 5, "{}", replay.body);
    assert_eq!(lines[0]["payload"]["text"], "line\nbreak");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_that_matches_nothing_ends_cleanly() {
    let server = TestServer::spawn_async(&[] as &[&str]).await;
    let http = client();
    let base = server.http_url();
    for (from, to) in [
        ("2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z"),
        ("0001-01-01T00:00:00Z", "0002-01-01T00:00:00Z"),
    ] {
        let replay = send(http.get(format!("{base}/v1/replay")).query(&[
            ("tenant", TENANT),
            ("from", from),
            ("to", to),
        ]))
        .await
        .unwrap();
        assert_eq!(replay.status, 200, "{from}..{to}: {}", replay.failure());
        assert!(
            replay.body.trim().is_empty(),
            "{from}..{to}: expected no events: {}",
            replay.body
        );
        assert_healthy(&http, &base, "an empty replay").await;
    }
}
