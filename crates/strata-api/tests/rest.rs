//! The REST API end to end: a server on a free port over a real hot tier, driven with
//! reqwest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HOUR, MIN, TestServer, base_ts, event, query_string, rfc};
use serde_json::{Value, json};
use strata_types::{Limits, time::now_micros};

/// The buckets of an aggregate answer as (start, group, value).
fn buckets(body: &Value) -> Vec<(String, Option<String>, Option<f64>)> {
    body["buckets"]
        .as_array()
        .unwrap_or_else(|| panic!("no buckets in {body}"))
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap().to_owned(),
                b["group"].as_str().map(str::to_owned),
                b["value"].as_f64(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_a_json_array_and_reads_events_back_with_compact_payloads() {
    let server = TestServer::start().await;
    let t = base_ts() + 5 * MIN + 123_456;
    // Key order, number spellings and strings survive; whitespace outside strings does not
    // (payloads are stored compact so every NDJSON line is one event).
    let body = format!(
        r#"[{{"tenant":"acme","stream":"click","key":"user-1","id":"evt-1","ts":"{}","value":1.5,"attrs":{{"page":"/home"}},"payload":{{"b": 1,  "a":[1, 2.50]}}}},
            {{"tenant":"acme","stream":"view","key":"user-2","id":"evt-2","ts":{}}}]"#,
        rfc(t),
        t + MIN
    );
    let (status, answer) = server
        .post_events(Some("application/json; charset=utf-8"), body)
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"accepted": 2, "duplicates": 0, "rejected": []})
    );

    let (status, headers, text) = server.get_raw("/v1/events/evt-1?tenant=acme").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    assert!(text.contains(r#""payload":{"b":1,"a":[1,2.50]}"#), "{text}");
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stored["tenant"], "acme");
    assert_eq!(stored["stream"], "click");
    assert_eq!(stored["key"], "user-1");
    assert_eq!(stored["ts"], rfc(t));
    assert_eq!(stored["value"], 1.5);
    assert_eq!(stored["attrs"], json!({"page": "/home"}));
    assert!(stored["seq"].as_u64().is_some());
    assert!(stored["ingest_ts"].as_str().is_some());

    let (status, stored) = server.get_json("/v1/events/evt-2?tenant=acme").await;
    assert_eq!(status, 200);
    assert_eq!(stored["ts"], rfc(t + MIN), "integer epoch micros accepted");
    assert!(stored.get("payload").is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingests_ndjson() {
    let server = TestServer::start().await;
    let t = base_ts();
    let lines: Vec<String> = (0..5)
        .map(|i| event("acme", &format!("n{i}"), t + i * MIN).to_string())
        .collect();
    // Blank lines and CRLF endings are tolerated.
    let body = format!(
        "{}\r\n\n{}\n",
        lines[..3].join("\n"),
        lines[3..].join("\r\n")
    );
    let (status, answer) = server.post_events(Some("application/x-ndjson"), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 5);
    assert_eq!(server.count("acme").await, 5);
    let (status, stored) = server.get_json("/v1/events/n4?tenant=acme").await;
    assert_eq!(status, 200);
    assert_eq!(stored["ts"], rfc(t + 4 * MIN));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_count_sum_min_max_avg_with_groups_filters_and_streams() {
    let server = TestServer::start().await;
    let t = base_ts();
    // (id, minute, key, stream, page, value)
    let rows = [
        ("a", 0, "u1", "click", "/home", Some(1.0)),
        ("b", 1, "u1", "click", "/cart", Some(3.0)),
        ("c", 2, "u2", "view", "/home", Some(5.0)),
        ("d", 11, "u2", "click", "/home", Some(10.0)),
        ("e", 12, "u3", "click", "/cart", None),
        ("f", 13, "u1", "view", "", Some(-2.0)),
    ];
    let events: Vec<Value> = rows
        .iter()
        .map(|(id, minute, key, stream, page, value)| {
            let mut e = event("acme", id, t + minute * MIN);
            e["key"] = json!(key);
            e["stream"] = json!(stream);
            if !page.is_empty() {
                e["attrs"] = json!({ "page": page });
            }
            if let Some(v) = value {
                e["value"] = json!(v);
            }
            e
        })
        .collect();
    let (status, answer) = server.post_array(&events).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 6);

    let from = rfc(t);
    let to = rfc(t + HOUR);
    let b0 = rfc(t);
    let b10 = rfc(t + 10 * MIN);
    let run = |agg: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let server = &server;
        let from = from.clone();
        let to = to.clone();
        async move {
            let mut params = vec![
                ("tenant", "acme"),
                ("from", from.as_str()),
                ("to", to.as_str()),
                ("bucket", "10m"),
                ("agg", agg),
            ];
            params.extend(extra);
            let (status, body) = server.aggregate(&params).await;
            assert_eq!(status, 200, "{agg}: {body}");
            assert_eq!(body["tiers"], json!(["hot"]));
            assert!(["hit", "miss", "partial"].contains(&body["cache"].as_str().unwrap()));
            buckets(&body)
        }
    };

    assert_eq!(
        run("count", vec![]).await,
        vec![
            (b0.clone(), None, Some(3.0)),
            (b10.clone(), None, Some(3.0))
        ]
    );
    assert_eq!(
        run("sum", vec![]).await,
        vec![
            (b0.clone(), None, Some(9.0)),
            (b10.clone(), None, Some(8.0))
        ]
    );
    assert_eq!(
        run("min", vec![]).await,
        vec![
            (b0.clone(), None, Some(1.0)),
            (b10.clone(), None, Some(-2.0))
        ]
    );
    assert_eq!(
        run("max", vec![]).await,
        vec![
            (b0.clone(), None, Some(5.0)),
            (b10.clone(), None, Some(10.0))
        ]
    );
    // avg over the events that have a value: (10 - 2) / 2 in the second bucket.
    assert_eq!(
        run("avg", vec![]).await,
        vec![
            (b0.clone(), None, Some(3.0)),
            (b10.clone(), None, Some(4.0))
        ]
    );
    assert_eq!(
        run("count", vec![("group_by", "key")]).await,
        vec![
            (b0.clone(), Some("u1".into()), Some(2.0)),
            (b0.clone(), Some("u2".into()), Some(1.0)),
            (b10.clone(), Some("u1".into()), Some(1.0)),
            (b10.clone(), Some("u2".into()), Some(1.0)),
            (b10.clone(), Some("u3".into()), Some(1.0)),
        ]
    );
    // Events without the attribute form the null group.
    assert_eq!(
        run("sum", vec![("group_by", "attr:page")]).await,
        vec![
            (b0.clone(), Some("/cart".into()), Some(3.0)),
            (b0.clone(), Some("/home".into()), Some(6.0)),
            (b10.clone(), None, Some(-2.0)),
            (b10.clone(), Some("/cart".into()), None),
            (b10.clone(), Some("/home".into()), Some(10.0)),
        ]
    );
    assert_eq!(
        run("count", vec![("filter", "attr:page=/home")]).await,
        vec![
            (b0.clone(), None, Some(2.0)),
            (b10.clone(), None, Some(1.0))
        ]
    );
    assert_eq!(
        run("sum", vec![("stream", "view")]).await,
        vec![
            (b0.clone(), None, Some(5.0)),
            (b10.clone(), None, Some(-2.0))
        ]
    );
    assert_eq!(
        run(
            "max",
            vec![
                ("stream", "click"),
                ("group_by", "key"),
                ("filter", "attr:page=/home")
            ]
        )
        .await,
        vec![
            (b0.clone(), Some("u1".into()), Some(1.0)),
            (b10.clone(), Some("u2".into()), Some(10.0)),
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reposting_is_idempotent() {
    let server = TestServer::start().await;
    let t = base_ts();
    let batch: Vec<Value> = (0..4)
        .map(|i| event("acme", &format!("dup-{i}"), t + i * MIN))
        .collect();
    let (status, first) = server.post_array(&batch).await;
    assert_eq!(status, 200);
    assert_eq!(first["accepted"], 4);
    assert_eq!(first["duplicates"], 0);

    let (status, again) = server.post_array(&batch).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["accepted"], 4);
    assert_eq!(again["duplicates"], 4);

    // The same ids over NDJSON are duplicates too, and one new id is stored.
    let mut lines: Vec<String> = batch[..2].iter().map(Value::to_string).collect();
    lines.push(event("acme", "dup-new", t).to_string());
    let (status, mixed) = server
        .post_events(Some("application/x-ndjson"), lines.join("\n"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(mixed["accepted"], 3);
    assert_eq!(mixed["duplicates"], 2);

    assert_eq!(server.count("acme").await, 5);
    server.stop().await;
}

/// Limits small enough to test the batch and body limits cheaply, with an absolute age bound.
fn small_limits() -> Limits {
    Limits {
        max_batch_events: 50,
        max_body_bytes: 256 * 1024,
        max_age: Some(std::time::Duration::from_secs(7 * 24 * 3600)),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_a_named_reason_and_stores_nothing() {
    let server = TestServer::start_with(small_limits(), |_| {}).await;
    let now = now_micros();
    let t = base_ts();
    let ok = |id: &str| event("bad", id, t);
    let with = |id: &str, field: &str, value: Value| {
        let mut e = ok(id);
        e[field] = value;
        e
    };

    // (case, content type, body, status, code, field)
    type BodyCase<'a> = (
        &'a str,
        Option<&'a str>,
        String,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<BodyCase<'_>> = vec![
        (
            "malformed JSON",
            Some("application/json"),
            r#"[{"tenant":"bad","#.into(),
            400,
            "invalid_body",
            None,
        ),
        (
            "not an array",
            Some("application/json"),
            ok("x1").to_string(),
            400,
            "invalid_body",
            None,
        ),
        (
            "empty array",
            Some("application/json"),
            "[]".into(),
            400,
            "empty_batch",
            None,
        ),
        (
            "empty NDJSON",
            Some("application/x-ndjson"),
            "\n\n".into(),
            400,
            "empty_batch",
            None,
        ),
        (
            "unsupported content type",
            Some("text/plain"),
            serde_json::to_string(&[ok("x2")]).unwrap(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "no content type",
            None,
            serde_json::to_string(&[ok("x3")]).unwrap(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "too many events",
            Some("application/json"),
            serde_json::to_string(
                &(0..51)
                    .map(|i| ok(&format!("many-{i}")))
                    .collect::<Vec<_>>(),
            )
            .unwrap(),
            413,
            "too_many_events",
            None,
        ),
        (
            "oversize body",
            Some("application/json"),
            serde_json::to_string(&[with("big", "payload", json!("x".repeat(300 * 1024)))])
                .unwrap(),
            413,
            "body_too_large",
            None,
        ),
    ];
    for (case, ct, body, want_status, want_code, want_field) in cases {
        let (status, answer) = server.post_events(ct, body).await;
        assert_eq!(status, want_status, "{case}: {answer}");
        assert_eq!(answer["code"], want_code, "{case}: {answer}");
        assert!(
            !answer["message"].as_str().unwrap().is_empty(),
            "{case}: {answer}"
        );
        assert_eq!(answer["field"].as_str(), want_field, "{case}: {answer}");
    }

    // Events that parse but break a rule: each is refused alone (so nothing is stored), and
    // the error names the field and the limit.
    let mut unknown = ok("unknown");
    unknown["vaule"] = json!(3);
    let mut missing_ts = ok("missing-ts");
    missing_ts.as_object_mut().unwrap().remove("ts");
    let bad_events: Vec<(&str, Value, &str, &str)> = vec![
        (
            "wrong type",
            with("wt", "value", json!("3")),
            "value",
            "must be a number",
        ),
        (
            "wrong attr type",
            with("wa", "attrs", json!({"page": 1})),
            "attrs.page",
            "must be a string",
        ),
        (
            "tenant charset",
            with("tc", "tenant", json!("Bad")),
            "tenant",
            "[a-z0-9]",
        ),
        (
            "oversize key",
            with("ok", "key", json!("k".repeat(257))),
            "key",
            "max_key_bytes",
        ),
        (
            "oversize id",
            with(&"i".repeat(129), "stream", json!("click")),
            "id",
            "max_id_bytes",
        ),
        (
            "oversize attr value",
            with("oa", "attrs", json!({"page": "p".repeat(257)})),
            "attrs.page",
            "max_attr_value_bytes",
        ),
        (
            "oversize payload",
            with("op", "payload", json!("p".repeat(70 * 1024))),
            "payload",
            "max_payload_bytes",
        ),
        (
            "unparseable ts",
            with("ut", "ts", json!("yesterday")),
            "ts",
            "RFC 3339",
        ),
        (
            "ts too far in the future",
            with("ft", "ts", json!(rfc(now + HOUR))),
            "ts",
            "max_future_skew",
        ),
        (
            "ts too old",
            with("ot", "ts", json!(rfc(now - 30 * 24 * HOUR))),
            "ts",
            "max_age",
        ),
        ("missing ts", missing_ts, "ts", "is required"),
        ("unknown field", unknown, "vaule", "unknown field"),
    ];
    for (case, bad, field, reason) in bad_events {
        let (status, answer) = server.post_array(&[bad]).await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert_eq!(answer["code"], "invalid_events", "{case}: {answer}");
        assert_eq!(answer["field"], field, "{case}: {answer}");
        let rejected = &answer["rejected"][0];
        assert_eq!(rejected["index"], 0, "{case}: {answer}");
        assert_eq!(rejected["field"], field, "{case}: {answer}");
        assert!(
            rejected["reason"].as_str().unwrap().contains(reason),
            "{case}: {answer}"
        );
    }
    assert_eq!(
        server.count("bad").await,
        0,
        "nothing of a refused body is stored"
    );

    // In a mixed batch the good events are stored and the bad one is listed, not stored.
    let batch = [
        ok("good-1"),
        with("bad-ts", "ts", json!("nope")),
        ok("good-2"),
    ];
    let (status, answer) = server.post_array(&batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(
        answer["rejected"],
        json!([{"index": 1, "field": "ts", "reason": answer["rejected"][0]["reason"]}])
    );
    assert_eq!(server.count("bad").await, 2);
    let (status, _) = server.get_json("/v1/events/bad-ts?tenant=bad").await;
    assert_eq!(status, 404);

    // NDJSON: a malformed line rejects only itself, indexed by its line among events.
    let body = format!("{}\n{{oops\n{}", ok("nd-1"), ok("nd-2"));
    let (status, answer) = server.post_events(Some("application/x-ndjson"), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 2);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(server.count("bad").await, 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_query_parameters_name_their_field() {
    let server = TestServer::start().await;
    let good = [
        ("tenant", "acme"),
        ("from", "2026-11-20T00:00:00Z"),
        ("to", "2026-11-21T00:00:00Z"),
        ("bucket", "1h"),
        ("agg", "count"),
    ];
    let (status, body) = server.aggregate(&good).await;
    assert_eq!(status, 200, "{body}");

    let replace = |name: &str, value: Option<&'static str>| {
        let mut p: Vec<(&str, &str)> = good.iter().copied().filter(|(k, _)| *k != name).collect();
        if let Some(v) = value {
            p.push((
                good.iter()
                    .map(|(k, _)| *k)
                    .chain(["stream", "group_by", "filter"])
                    .find(|k| *k == name)
                    .unwrap(),
                v,
            ));
        }
        p
    };
    let cases = [
        ("tenant", None, "missing_parameter"),
        ("tenant", Some("Acme!"), "invalid_parameter"),
        ("from", None, "missing_parameter"),
        ("from", Some("last tuesday"), "invalid_parameter"),
        ("to", None, "missing_parameter"),
        ("to", Some("2026-11-19T00:00:00Z"), "invalid_parameter"),
        ("bucket", None, "missing_parameter"),
        ("bucket", Some("500ms"), "invalid_parameter"),
        ("bucket", Some("2d"), "invalid_parameter"),
        ("bucket", Some("1s"), "invalid_parameter"),
        ("agg", None, "missing_parameter"),
        ("agg", Some("median"), "invalid_parameter"),
        ("stream", Some("No Spaces"), "invalid_parameter"),
        ("group_by", Some("attr:"), "invalid_parameter"),
        ("group_by", Some("tenant"), "invalid_parameter"),
        ("filter", Some("page=x"), "invalid_parameter"),
    ];
    for (field, value, code) in cases {
        let mut params = replace(field, value);
        if field == "bucket" && value == Some("1s") {
            // One-second buckets over a year are over the bucket-count limit.
            params.retain(|(k, _)| *k != "to");
            params.push(("to", "2027-11-21T00:00:00Z"));
        }
        let (status, body) = server.aggregate(&params).await;
        assert_eq!(status, 400, "{field}={value:?}: {body}");
        assert_eq!(body["code"], code, "{field}={value:?}: {body}");
        assert_eq!(body["field"], field, "{field}={value:?}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }

    // A query string that cannot be decoded at all is still a JSON 400.
    let (status, body) = server
        .get_json("/v1/query/aggregate?tenant=acme&tenant=other")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["code"].as_str().is_some(), "{body}");

    // Event lookups validate their parameters the same way.
    let (status, body) = server.get_json("/v1/events/x").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("tenant")),
        "{body}"
    );
    let (status, body) = server.get_json("/v1/events/x?tenant=A").await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("tenant")),
        "{body}"
    );
    let long_id = "i".repeat(200);
    let (status, body) = server
        .get_json(&format!("/v1/events/{long_id}?tenant=acme"))
        .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (400, Some("id")),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_other_tenants_are_not_found() {
    let server = TestServer::start().await;
    let t = base_ts();
    let mut e = event("acme", "secret-1", t);
    e["value"] = json!(42);
    let (status, _) = server.post_array(&[e]).await;
    assert_eq!(status, 200);

    let (status, body) = server.get_json("/v1/events/nope?tenant=acme").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");

    // Another tenant sees neither the event nor its aggregate.
    let (status, body) = server.get_json("/v1/events/secret-1?tenant=rival").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
    assert_eq!(server.count("rival").await, 0);
    assert_eq!(server.count("acme").await, 1);

    // Unknown routes and methods answer the same JSON error shape.
    let (status, body) = server.get_json("/v1/nothing").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("route_not_found"))
    );
    let resp = server
        .client
        .delete(format!("{}/v1/events", server.http))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_hot_tier_answers_503_with_retry_after_and_stores_nothing() {
    let server = TestServer::start_with(Limits::default(), |hot| hot.disk_budget = 4 * 1024).await;
    let t = base_ts();
    let batch: Vec<Value> = (0..40)
        .map(|i| {
            let mut e = event("acme", &format!("full-{i}"), t);
            e["payload"] = json!({"pad": "x".repeat(512)});
            e
        })
        .collect();
    let resp = server
        .client
        .post(format!("{}/v1/events", server.http))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&batch).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "full");
    assert!(
        !body["message"].as_str().unwrap().contains("bytes"),
        "budget internals stay in the log: {body}"
    );
    assert_eq!(server.count("acme").await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_metrics_and_probes() {
    let server = TestServer::start().await;
    let (status, _) = server.post_array(&[event("acme", "m-1", base_ts())]).await;
    assert_eq!(status, 200);

    let (status, doc) = server.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/events/{id}", "get"),
        ("/v1/query/aggregate", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from {}",
            paths.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let aggregate_params: Vec<&str> = paths["/v1/query/aggregate"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "tenant", "from", "to", "bucket", "agg", "stream", "group_by", "filter",
    ] {
        assert!(aggregate_params.contains(&name), "{aggregate_params:?}");
    }
    let post = &paths["/v1/events"]["post"];
    assert!(post["requestBody"]["content"]["application/x-ndjson"].is_object());
    for status in ["200", "400", "413", "415", "503"] {
        assert!(post["responses"][status].is_object(), "{status}: {post}");
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for schema in [
        "ErrorBody",
        "EventJson",
        "IngestResponse",
        "AggregateResponse",
    ] {
        assert!(schemas.contains_key(schema), "{schema}");
    }

    let (status, headers, text) = server.get_raw("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    for metric in [
        "strata_http_requests_total",
        "strata_http_request_duration_seconds",
        "strata_ingest_events_total",
    ] {
        assert!(text.contains(metric), "{metric} missing from:\n{text}");
    }
    assert!(
        text.contains(r#"route="/v1/events",status="200""#)
            || text.contains(r#"status="200",route="/v1/events""#),
        "{text}"
    );

    let (status, body) = server.get_json("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = server.get_json("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_ready_and_run_returns_on_shutdown() {
    use strata_api::{ApiConfig, Readiness, rest_router};

    let server = TestServer::start().await;
    let readiness = Readiness::new();
    let router = rest_router(
        server.store.clone(),
        strata_api::install_metrics_recorder().unwrap(),
        &ApiConfig::default(),
        readiness.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_ready");
    readiness.set_ready(true);
    let resp = client
        .get(format!("http://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    serve.abort();

    // After cancellation the server stops accepting and `run` returns.
    let http = server.http.clone();
    server.stop().await;
    assert!(
        client.get(format!("{http}/healthz")).send().await.is_err(),
        "the listener is closed after run returns"
    );
}

/// Opens a request that never finishes sending its body, so its handler holds a
/// concurrency permit until the request timeout.
async fn stalled_post(http: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let addr = http.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
        )
        .await
        .unwrap();
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excess_requests_are_shed_and_slow_ones_time_out() {
    use tokio::io::AsyncReadExt;

    let server = TestServer::start_configured(
        Limits::default(),
        |_| {},
        |api| {
            api.max_concurrent_requests = 1;
            api.request_timeout = std::time::Duration::from_secs(3);
        },
    )
    .await;
    // While a stalled request holds the only permit, API requests are refused at once and
    // probes still answer. The stalled request is given time to take the permit before
    // probing, so a probe does not take it first; if one did (the stalled request was shed
    // itself), start over with a new one.
    let mut shed = None;
    let mut stalled = None;
    for _ in 0..20 {
        let socket = stalled_post(&server.http).await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let resp = server
            .client
            .get(format!("{}/v1/events/x?tenant=acme", server.http))
            .send()
            .await
            .unwrap();
        if resp.status() == 503 {
            shed = Some((
                resp.headers().get("retry-after").cloned(),
                resp.json::<Value>().await.unwrap(),
            ));
            stalled = Some(socket);
            break;
        }
        assert_eq!(resp.status(), 404, "served while no request is stalled");
    }
    let mut stalled = stalled.expect("a request stalled on its body holds the permit");
    let (retry_after, body) = shed.expect("a request is shed while the permit is held");
    assert_eq!(body["code"], "overloaded", "{body}");
    assert!(retry_after.is_some());
    let (status, _) = server.get_json("/healthz").await;
    assert_eq!(status, 200);

    // The stalled request itself ends with a JSON timeout once the limit passes.
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stalled.read_to_end(&mut response),
    )
    .await
    .expect("the server answers the stalled request")
    .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 504"), "{response}");
    assert!(response.contains(r#""code":"timeout""#), "{response}");

    // With the permit released, requests are served again.
    let (status, _) = server.get_json("/v1/events/x?tenant=acme").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[test]
fn query_strings_are_encoded() {
    assert_eq!(
        query_string(&[("filter", "attr:page=/a b")]),
        "filter=attr%3Apage%3D%2Fa%20b"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_bodies_decode_what_the_server_sends() {
    use strata_api::{
        ErrorKind,
        http::{AggregateResponse, ErrorBody, IngestResponse, StatusBody},
    };

    let server = TestServer::start().await;
    let base = base_ts();
    let bad = json!({"tenant": "acme", "stream": "click", "key": "k", "id": "bad"});

    // Decoding and re-encoding gives the server's JSON back: same fields, same optionality.
    let (status, answer) = server
        .post_array(&[event("acme", "shared-1", base), bad.clone()])
        .await;
    assert_eq!(status, 200, "{answer}");
    let ingest: IngestResponse = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(serde_json::to_value(&ingest).unwrap(), answer);
    assert_eq!((ingest.accepted, ingest.duplicates), (1, 0));
    assert_eq!(ingest.rejected[0].index, 1);
    assert_eq!(ingest.rejected[0].field, "ts");

    let (status, answer) = server.post_array(&[bad]).await;
    assert_eq!(status, 400, "{answer}");
    let error: ErrorBody = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(serde_json::to_value(&error).unwrap(), answer);
    assert_eq!(error.kind(), Some(ErrorKind::InvalidEvents));
    assert_eq!(error.field.as_deref(), Some("ts"));
    assert_eq!(error.rejected[0].index, 0);

    let (status, answer) = server
        .aggregate(&[
            ("tenant", "acme"),
            ("from", &rfc(base)),
            ("to", &rfc(base + HOUR)),
            ("bucket", "1h"),
            ("agg", "count"),
        ])
        .await;
    assert_eq!(status, 200, "{answer}");
    let aggregate: AggregateResponse = serde_json::from_value(answer.clone()).unwrap();
    assert_eq!(serde_json::to_value(&aggregate).unwrap(), answer);
    assert_eq!(aggregate.buckets[0].value, Some(1.0));

    let (status, answer) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
    let ready: StatusBody = serde_json::from_value(answer).unwrap();
    assert_eq!(ready.status, "ready");
    server.stop().await;
}
