//! What hostile or merely slow clients can hold: connections per listener, trickled headers,
//! idle client streams and request body bytes in memory. Every limit is configured short so
//! the tests never sleep long.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, base_ts, event};
use strata_api::ConnectionLimits;
use strata_proto::v1::{self as pb, ingest_client::IngestClient};
use strata_types::Limits;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::{Code, transport::Channel};

/// A running server with these connection limits.
struct Limited(TestServer);

impl std::ops::Deref for Limited {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.0
    }
}

impl Limited {
    async fn start(limits: ConnectionLimits, max_concurrent_requests: usize) -> Self {
        Self(
            TestServer::start_full(
                Limits::default(),
                |_| {},
                |api| api.max_concurrent_requests = max_concurrent_requests,
                |server| server.with_connection_limits(limits),
            )
            .await,
        )
    }

    async fn stop(self) {
        self.0.stop().await;
    }

    async fn healthz(&self) -> u16 {
        reqwest::Client::new()
            .get(format!("{}/healthz", self.http))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn ingest(&self) -> IngestClient<Channel> {
        IngestClient::connect(self.grpc.clone()).await.unwrap()
    }
}

/// Reads until the peer closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

fn pb_event(id: &str, payload: String) -> pb::Event {
    let at = base_ts();
    pb::Event {
        tenant: "acme".into(),
        stream: "click".into(),
        key: "user-1".into(),
        id: id.into(),
        ts: Some(prost_types::Timestamp {
            seconds: at.div_euclid(1_000_000),
            nanos: (at.rem_euclid(1_000_000) * 1_000) as i32,
        }),
        value: None,
        attrs: Default::default(),
        payload,
    }
}

#[tokio::test]
async fn trickled_headers_are_cut_off_while_healthz_answers() {
    let server = Limited::start(
        ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        },
        64,
    )
    .await;
    let mut slow = TcpStream::connect(server.http_addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: strata\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (mut reader, mut writer) = slow.into_split();
    // One header line every 50 ms: the request never completes on its own.
    let trickle = tokio::spawn(async move {
        for i in 0..100 {
            if writer
                .write_all(format!("X-Slow-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(server.healthz().await, 200, "other clients are served");
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the trickling connection is closed");
    assert!(started.elapsed() < Duration::from_secs(3));
    trickle.abort();
    assert_eq!(server.healthz().await, 200);
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let server = Limited::start(
        ConnectionLimits {
            max_connections: 2,
            ..ConnectionLimits::default()
        },
        64,
    )
    .await;
    // Two idle connections take both slots.
    let first = TcpStream::connect(server.http_addr).await.unwrap();
    let _second = TcpStream::connect(server.http_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = reqwest::Client::new()
        .get(format!("{}/healthz", server.http))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(waiting.is_err(), "a third connection is not served");
    drop(first);
    assert_eq!(server.healthz().await, 200, "served once a slot is free");
    server.stop().await;
}

#[tokio::test]
async fn an_idle_write_stream_is_ended_and_frees_its_permit() {
    let server = Limited::start(
        ConnectionLimits {
            stream_idle_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        },
        1,
    )
    .await;
    let mut client = server.ingest().await;
    let mut streaming = client.clone();
    let started = Instant::now();
    let idle = tokio::spawn(async move {
        streaming
            .write_stream(futures::stream::pending::<pb::WriteRequest>())
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let write = || pb::WriteRequest {
        events: vec![pb_event("e1", String::new())],
    };
    // The idle stream holds the only request permit.
    let refused = client.write(write()).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let ended = tokio::time::timeout(Duration::from_secs(5), idle)
        .await
        .expect("the idle stream is ended")
        .unwrap()
        .unwrap_err();
    assert_eq!(ended.code(), Code::DeadlineExceeded, "{ended:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let stored = client.write(write()).await.unwrap().into_inner();
    assert_eq!(stored.accepted, 1, "the permit returned");
    server.stop().await;
}

/// A raw HTTP/1.1 exchange: writes `head` and `body` (ignoring a write cut short by an early
/// answer) and returns the answer's head.
async fn exchange(addr: std::net::SocketAddr, head: String, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let _ = stream.write_all(body).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), read_to_close(&mut stream))
        .await
        .expect("an answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn bodies_beyond_the_budget_get_503_while_small_ones_succeed() {
    let budget = 64 * 1024;
    let server = Limited::start(
        ConnectionLimits {
            max_inflight_body_bytes: budget,
            ..ConnectionLimits::default()
        },
        64,
    )
    .await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(format!("{}/v1/events", server.http))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    // A declared length over the budget is refused before it is read.
    let big = post(vec![b' '; 100 * 1024]).await.unwrap();
    assert_eq!(big.status(), 503);
    assert!(big.headers().contains_key("retry-after"));
    assert!(
        big.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(body["code"], "overloaded");

    // A slow client holding most of the budget: its declared length stays counted.
    let mut slow = TcpStream::connect(server.http_addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: strata\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n[",
            60 * 1024
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = post(vec![b' '; 10 * 1024]).await.unwrap();
    assert_eq!(refused.status(), 503);

    // A body without a length is counted as it arrives, and refused once it does not fit.
    let mut chunked = Vec::new();
    for _ in 0..8 {
        chunked.extend_from_slice(format!("{:x}\r\n", 2048).as_bytes());
        chunked.extend_from_slice(&[b' '; 2048]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(
        server.http_addr,
        "POST /v1/events HTTP/1.1\r\nHost: strata\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_owned(),
        &chunked,
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after"),
        "{answer}"
    );

    // A small request still fits.
    let small = serde_json::to_vec(&[event("acme", "small-1", base_ts())]).unwrap();
    let ok = post(small).await.unwrap();
    assert_eq!(ok.status(), 200);

    // The slow client goes away and its bytes return to the budget.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events: Vec<_> = (0..120)
        .map(|i| event("acme", &format!("mid-{i}"), base_ts()))
        .collect();
    let mid = serde_json::to_vec(&events).unwrap();
    assert!(
        mid.len() > 10 * 1024,
        "as large as the request refused above"
    );
    let ok = post(mid).await.unwrap();
    assert_eq!(ok.status(), 200, "{}", ok.text().await.unwrap());
    server.stop().await;
}

#[tokio::test]
async fn grpc_messages_beyond_the_budget_are_resource_exhausted() {
    let server = Limited::start(
        ConnectionLimits {
            max_inflight_body_bytes: 64 * 1024,
            ..ConnectionLimits::default()
        },
        64,
    )
    .await;
    let mut client = server.ingest().await;
    let payload = format!("{{\"pad\":\"{}\"}}", "x".repeat(4000));
    let big = pb::WriteRequest {
        events: (0..40)
            .map(|i| pb_event(&format!("big-{i}"), payload.clone()))
            .collect(),
    };
    let refused = client.write(big).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let small = pb::WriteRequest {
        events: vec![pb_event("small-1", payload)],
    };
    assert_eq!(client.write(small).await.unwrap().into_inner().accepted, 1);
    server.stop().await;
}
