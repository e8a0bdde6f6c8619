//! Replay limits over both APIs: a range over all representable time answers quickly with
//! exactly the data, and a client that goes away while its replay waits for a slot takes
//! it off `strata_replays_waiting` (REST and gRPC).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestServer, base_ts, event, query_string};
use serde_json::Value;
use strata_proto::v1::{self as pb, replay_client::ReplayClient};
use strata_tiering::{ReplayConfig, ReplayLimits};
use strata_types::{Limits, time::MICROS_PER_SEC};

const PATIENCE: Duration = Duration::from_secs(10);

/// A node whose replays share `limits` (one slot unless a test says otherwise).
struct Node {
    server: TestServer,
    limits: ReplayLimits,
}

impl std::ops::Deref for Node {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl Node {
    async fn start(config: ReplayConfig) -> Self {
        let limits = ReplayLimits::new(config);
        let replay = limits.clone();
        let server = TestServer::start_full(
            Limits::default(),
            |_| {},
            |_| {},
            |server| server.with_replay_limits(replay),
        )
        .await;
        Self { server, limits }
    }

    async fn stop(self) {
        self.server.stop().await;
    }

    /// `strata_replays_waiting` as `/metrics` shows it (0 before any replay waited).
    async fn waiting_gauge(&self) -> f64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.http))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("strata_replays_waiting "))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    async fn until_waiting(&self, gauge: f64, count: usize, what: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let now = (self.waiting_gauge().await, self.limits.waiting());
            if now == (gauge, count) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: waiting is {now:?}, want {:?}",
                (gauge, count)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn replay_path(params: &[(&str, &str)]) -> String {
    format!("/v1/replay?{}", query_string(params))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_replay_over_all_representable_time_returns_exactly_the_data() {
    let server = TestServer::start().await;
    let events: Vec<Value> = (0..5)
        .map(|i| event("acme", &format!("e{i}"), base_ts() + i * MICROS_PER_SEC))
        .chain([event("other", "x", base_ts())])
        .collect();
    let (status, body) = server.post_array(&events).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, text) = tokio::time::timeout(
        PATIENCE,
        server.get_raw(&replay_path(&[
            ("tenant", "acme"),
            ("from", "0001-01-01T00:00:00Z"),
            ("to", "9999-12-31T23:59:59.999999Z"),
        ])),
    )
    .await
    .expect("a replay over year 1 to 9999 answers in time proportional to its data");
    assert_eq!(status, 200, "{text}");
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, ["e0", "e1", "e2", "e3", "e4"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_while_waiting_for_a_slot_leaves_the_waiting_gauge() {
    let node = Node::start(ReplayConfig {
        max_concurrent: 1,
        ..ReplayConfig::default()
    })
    .await;
    let events: Vec<Value> = (0..20)
        .map(|i| event("acme", &format!("e{i:02}"), base_ts() + i * MICROS_PER_SEC))
        .collect();
    let resp = node
        .client
        .post(format!("{}/v1/events", node.http))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let from = base_ts().to_string();
    let to = (base_ts() + 60 * MICROS_PER_SEC).to_string();
    // One event per second: this replay holds the only slot for the whole test.
    let slow = replay_path(&[
        ("tenant", "acme"),
        ("from", &from),
        ("to", &to),
        ("max_rate", "1"),
    ]);
    let mut holder = node
        .client
        .get(format!("{}{slow}", node.http))
        .send()
        .await
        .unwrap();
    assert_eq!(holder.status(), 200);
    assert!(
        holder.chunk().await.unwrap().is_some(),
        "the first line came"
    );
    let before = node.waiting_gauge().await;

    // REST: the request waits for the slot; the client gives up and closes the connection.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(500),
        node.client.get(format!("{}{slow}", node.http)).send(),
    )
    .await;
    assert!(gave_up.is_err(), "the second replay waits for the slot");
    node.until_waiting(before, 0, "after the REST client left")
        .await;

    // gRPC: the same with a call that is dropped while it waits.
    let mut grpc = ReplayClient::connect(node.grpc.clone()).await.unwrap();
    let ts = |micros: i64| {
        Some(prost_types::Timestamp {
            seconds: micros.div_euclid(MICROS_PER_SEC),
            nanos: 0,
        })
    };
    let request = pb::ReplayRequest {
        tenant: "acme".into(),
        from: ts(base_ts()),
        to: ts(base_ts() + 60 * MICROS_PER_SEC),
        max_rate: Some(1),
        ..Default::default()
    };
    let call = grpc.replay(request);
    let mut call = Box::pin(call);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut call)
            .await
            .is_err(),
        "the gRPC replay waits for the slot"
    );
    node.until_waiting(before + 1.0, 1, "while the gRPC call waits")
        .await;
    drop(call);
    node.until_waiting(before, 0, "after the gRPC call was dropped")
        .await;

    drop(holder);
    node.stop().await;
}
