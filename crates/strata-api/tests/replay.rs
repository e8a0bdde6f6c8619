//! Replay over both APIs: REST NDJSON and gRPC server streaming return what the store's
//! replay returns, resume from a cursor, reject bad parameters naming them, and never cross
//! tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{MIN, TestServer, base_ts, query_string, rfc};
use futures::StreamExt;
use serde_json::{Value, json};
use strata_proto::v1::{self as pb, replay_client::ReplayClient};
use strata_tiering::{
    Flusher, FlusherConfig, ReplayCursor, ReplayItem, ReplayLimits, ReplayRequest,
    replay::split_line,
};
use strata_types::TimeRange;
use tonic::{Code, transport::Channel};

fn ts(micros: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

/// 300 events of two tenants over an hour, three streams, shared timestamps; the first
/// half flushed to warm, the rest hot.
async fn seeded() -> TestServer {
    let server = TestServer::start().await;
    let base = base_ts();
    let events: Vec<Value> = (0..300)
        .map(|i: i64| {
            let stream = ["click", "view", "buy"][(i % 3) as usize];
            json!({
                "tenant": if i % 4 == 0 { "other" } else { "acme" },
                "stream": stream,
                "key": format!("user-{}", i % 5),
                "id": format!("evt-{:03}", (i * 37) % 300),
                "ts": rfc(base + (i / 2) * MIN / 3),
                "value": i as f64 / 2.0,
                "attrs": {"page": format!("/p{}", i % 2)},
                "payload": {"i": i, "text": "a \"quoted\"\nline é"},
            })
        })
        .collect();
    let (status, body) = server.post_array(&events[..150]).await;
    assert_eq!(status, 200, "{body}");
    let flusher = Flusher::for_store(
        &server.store,
        FlusherConfig {
            hot_retention: Duration::ZERO,
            ..FlusherConfig::default()
        },
    );
    assert!(flusher.flush_due().await.unwrap().rows >= 150);
    let (status, body) = server.post_array(&events[150..]).await;
    assert_eq!(status, 200, "{body}");
    server
}

fn range() -> (String, String, TimeRange) {
    let base = base_ts();
    let r = TimeRange {
        from: base - MIN,
        to: base + 60 * MIN,
    };
    (r.from.to_string(), r.to.to_string(), r)
}

async fn store_replay(server: &TestServer, request: ReplayRequest) -> Vec<ReplayItem> {
    server
        .store
        .replay(request, &ReplayLimits::default())
        .map(|r| r.unwrap())
        .collect()
        .await
}

async fn rest_lines(server: &TestServer, params: &[(&str, &str)]) -> Vec<String> {
    let (status, headers, body) = server
        .get_raw(&format!("/v1/replay?{}", query_string(params)))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["content-type"], "application/x-ndjson");
    assert!(body.is_empty() || body.ends_with('\n'));
    body.lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn rest_ndjson_equals_the_store_and_resumes() {
    let server = seeded().await;
    let (from, to, range) = range();
    let all = store_replay(&server, ReplayRequest::new("acme", range)).await;
    assert!(all.len() > 200);
    let lines = rest_lines(&server, &[("tenant", "acme"), ("from", &from), ("to", &to)]).await;
    let want: Vec<String> = all.iter().map(ReplayItem::line).collect();
    assert_eq!(lines, want);
    {
        let (line, item) = (&lines[0], &all[0]);
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["id"], item.event.event.id);
        assert_eq!(v["cursor"], item.cursor.encode());
        // Same shape as the lookup, plus the cursor.
        let (_, _, looked_up) = server
            .get_raw(&format!("/v1/events/{}?tenant=acme", item.event.event.id))
            .await;
        assert_eq!(split_line(line).unwrap().0, looked_up);
    }

    // Filters: repeated and comma-listed streams, key, attribute.
    let filtered = rest_lines(
        &server,
        &[
            ("tenant", "acme"),
            ("from", &from),
            ("to", &to),
            ("stream", "click"),
            ("stream", "view,buy"),
            ("key", "user-2"),
            ("filter", "attr:page=/p1"),
        ],
    )
    .await;
    let want: Vec<String> = all
        .iter()
        .filter(|i| i.event.event.key == "user-2" && i.event.event.attrs["page"] == "/p1")
        .map(ReplayItem::line)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(filtered, want);
    let one_stream = rest_lines(
        &server,
        &[
            ("tenant", "acme"),
            ("from", &from),
            ("to", &to),
            ("stream", "view"),
        ],
    )
    .await;
    assert!(!one_stream.is_empty());
    assert!(one_stream.iter().all(|l| l.contains(r#""stream":"view""#)));

    // Resume after the 100th line: exactly the rest.
    let (_, cursor) = split_line(&lines[99]).unwrap();
    let rest = rest_lines(
        &server,
        &[
            ("tenant", "acme"),
            ("from", &from),
            ("to", &to),
            ("cursor", &cursor.encode()),
            ("max_rate", "100000"),
        ],
    )
    .await;
    assert_eq!(rest, lines[100..]);

    // Another tenant's replay holds only its own events, even with acme's cursor.
    let other = rest_lines(
        &server,
        &[
            ("tenant", "other"),
            ("from", &from),
            ("to", &to),
            ("cursor", &cursor.encode()),
        ],
    )
    .await;
    assert!(!other.is_empty());
    assert!(other.iter().all(|l| l.starts_with(r#"{"tenant":"other""#)));
    server.stop().await;
}

#[tokio::test]
async fn rest_rejects_bad_parameters_by_name() {
    let server = seeded().await;
    let (from, to, _) = range();
    for (params, code, field) in [
        (
            vec![("from", from.as_str()), ("to", &to)],
            "missing_parameter",
            "tenant",
        ),
        (
            vec![("tenant", "acme"), ("to", &to)],
            "missing_parameter",
            "from",
        ),
        (
            vec![("tenant", "acme"), ("from", &to), ("to", &from)],
            "invalid_parameter",
            "to",
        ),
        (
            vec![
                ("tenant", "acme"),
                ("from", &from),
                ("to", &to),
                ("cursor", "not-a-cursor!"),
            ],
            "invalid_parameter",
            "cursor",
        ),
        (
            vec![
                ("tenant", "acme"),
                ("from", &from),
                ("to", &to),
                ("cursor", "AgAAAAAAAAAAYQ"),
            ],
            "invalid_parameter",
            "cursor",
        ),
        (
            vec![
                ("tenant", "acme"),
                ("from", &from),
                ("to", &to),
                ("max_rate", "0"),
            ],
            "invalid_parameter",
            "max_rate",
        ),
        (
            vec![
                ("tenant", "acme"),
                ("from", &from),
                ("to", &to),
                ("filter", "page"),
            ],
            "invalid_parameter",
            "filter",
        ),
        (
            vec![("tenant", "ACME"), ("from", &from), ("to", &to)],
            "invalid_parameter",
            "tenant",
        ),
    ] {
        let (status, body) = server
            .get_json(&format!("/v1/replay?{}", query_string(&params)))
            .await;
        assert_eq!(status, 400, "{params:?}: {body}");
        assert_eq!(body["code"], code, "{params:?}: {body}");
        assert_eq!(body["field"], field, "{params:?}: {body}");
    }
    // The document lists the route.
    let (_, doc) = server.get_json("/openapi.json").await;
    assert!(doc["paths"]["/v1/replay"]["get"].is_object());
    server.stop().await;
}

async fn client(server: &TestServer) -> ReplayClient<Channel> {
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    ReplayClient::new(channel)
}

async fn grpc_replay(
    client: &mut ReplayClient<Channel>,
    request: pb::ReplayRequest,
) -> Vec<pb::ReplayResponse> {
    let mut stream = client.replay(request).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        out.push(message);
    }
    out
}

#[tokio::test]
async fn grpc_stream_equals_the_store_and_resumes() {
    let server = seeded().await;
    let (_, _, range) = range();
    let mut client = client(&server).await;
    let request = pb::ReplayRequest {
        tenant: "acme".into(),
        from: ts(range.from),
        to: ts(range.to),
        ..Default::default()
    };
    let all = store_replay(&server, ReplayRequest::new("acme", range)).await;
    let messages = grpc_replay(&mut client, request.clone()).await;
    assert!(!messages.is_empty());
    let mut ids = Vec::new();
    for m in &messages {
        assert!(!m.events.is_empty() && m.events.len() <= 500);
        let last = m.events.last().unwrap().event.as_ref().unwrap();
        // The message's cursor is the one after its last event.
        let cursor = ReplayCursor::decode(&m.cursor).unwrap();
        assert_eq!(cursor.id, last.id);
        for e in &m.events {
            let e = e.event.as_ref().unwrap();
            assert_eq!(e.tenant, "acme");
            ids.push(e.id.clone());
        }
    }
    let want: Vec<String> = all.iter().map(|i| i.event.event.id.clone()).collect();
    assert_eq!(ids, want);
    // Payloads arrive byte for byte.
    let first = messages[0].events[0].event.as_ref().unwrap();
    assert_eq!(Some(&first.payload), all[0].event.event.payload.as_ref());

    // Resume from the cursor after the 50th event; streams and key filters apply.
    let resumed = grpc_replay(
        &mut client,
        pb::ReplayRequest {
            cursor: all[49].cursor.encode(),
            ..request.clone()
        },
    )
    .await;
    let rest: Vec<String> = resumed
        .iter()
        .flat_map(|m| {
            m.events
                .iter()
                .map(|e| e.event.as_ref().unwrap().id.clone())
        })
        .collect();
    assert_eq!(rest, want[50..]);
    let filtered = grpc_replay(
        &mut client,
        pb::ReplayRequest {
            streams: vec!["click".into()],
            key: Some("user-1".into()),
            filter: "attr:page=/p1".into(),
            ..request.clone()
        },
    )
    .await;
    let got: Vec<String> = filtered
        .iter()
        .flat_map(|m| {
            m.events
                .iter()
                .map(|e| e.event.as_ref().unwrap().id.clone())
        })
        .collect();
    let want: Vec<String> = all
        .iter()
        .map(|i| &i.event.event)
        .filter(|e| e.stream == "click" && e.key == "user-1" && e.attrs["page"] == "/p1")
        .map(|e| e.id.clone())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);

    // Bad input: INVALID_ARGUMENT naming the field.
    for (bad, field) in [
        (
            pb::ReplayRequest {
                cursor: "%%%".into(),
                ..request.clone()
            },
            "cursor",
        ),
        (
            pb::ReplayRequest {
                to: None,
                ..request.clone()
            },
            "to",
        ),
        (
            pb::ReplayRequest {
                streams: vec!["NO".into()],
                ..request.clone()
            },
            "stream",
        ),
    ] {
        let status = client.replay(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            status.metadata().get("strata-error-field").unwrap(),
            field,
            "{status:?}"
        );
        assert!(status.message().starts_with(field), "{status:?}");
    }
    server.stop().await;
}

/// The chunks of a response body, as the stream `NdjsonReader` reads.
fn chunks(
    response: reqwest::Response,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> {
    futures::stream::unfold(response, |mut r| async move {
        r.chunk().await.transpose().map(|chunk| (chunk, r))
    })
}

#[tokio::test]
async fn the_shared_reader_and_bodies_decode_a_replay() {
    use strata_api::http::{ErrorBody, NdjsonReader, ReplayLine};

    let server = seeded().await;
    let (from, to, range) = range();
    let all = store_replay(&server, ReplayRequest::new("acme", range)).await;
    let url = format!(
        "{}/v1/replay?{}",
        server.http,
        query_string(&[("tenant", "acme"), ("from", &from), ("to", &to)])
    );

    // Raw lines: the server's bytes, so a client can checksum the events.
    let response = server.client.get(&url).send().await.unwrap();
    let mut reader = NdjsonReader::new(chunks(response));
    let mut raw = Vec::new();
    while let Some(line) = reader.next_line().await.unwrap() {
        raw.push(String::from_utf8(line.to_vec()).unwrap());
    }
    let want: Vec<String> = all.iter().map(ReplayItem::line).collect();
    assert_eq!(raw, want);

    // Decoded lines: the event and its cursor.
    let response = server.client.get(&url).send().await.unwrap();
    let lines: Vec<ReplayLine> = NdjsonReader::new(chunks(response))
        .records::<ReplayLine>()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(lines.len(), all.len());
    for (line, item) in lines.iter().zip(&all) {
        assert_eq!(line.event.id, item.event.event.id);
        assert_eq!(line.event.tenant, "acme");
        assert_eq!(line.cursor, item.cursor.encode());
        assert_eq!(
            line.event.payload.as_ref().unwrap()["text"],
            "a \"quoted\"\nline é"
        );
    }

    // A replay that cannot start is an ordinary error response with the shared body.
    let response = server
        .client
        .get(format!(
            "{}/v1/replay?{}",
            server.http,
            query_string(&[("tenant", "acme"), ("from", &from), ("to", &from)])
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: ErrorBody = response.json().await.unwrap();
    assert_eq!(body.kind(), Some(strata_api::ErrorKind::InvalidParameter));
    assert_eq!(body.field.as_deref(), Some("to"));
    server.stop().await;
}
