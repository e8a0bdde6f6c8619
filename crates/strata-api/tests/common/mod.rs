//! An in-process Strata API over a real hot tier in a temporary directory, and helpers to
//! drive it over HTTP.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use strata_api::{ApiConfig, Server, install_metrics_recorder};
use strata_hot::{HotConfig, HotStore};
use strata_tiering::Store;
use strata_types::{
    Limits,
    time::{MICROS_PER_SEC, format_rfc3339, now_micros},
};
use strata_warm::WarmConfig;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One minute in microseconds.
pub const MIN: i64 = 60 * MICROS_PER_SEC;
/// One hour in microseconds.
pub const HOUR: i64 = 60 * MIN;

/// A running server and what it stands on.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// The REST listener's address.
    pub http_addr: std::net::SocketAddr,
    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub grpc: String,
    /// The store behind both APIs.
    pub store: Store,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), strata_api::Error>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Default limits and hot tier.
    pub async fn start() -> Self {
        Self::start_with(Limits::default(), |_| {}).await
    }

    /// Custom limits; `tweak` adjusts the hot tier's configuration.
    pub async fn start_with(limits: Limits, tweak: impl FnOnce(&mut HotConfig)) -> Self {
        Self::start_configured(limits, tweak, |_| {}).await
    }

    /// Custom limits, hot tier and API configuration (the addresses are always port 0).
    pub async fn start_configured(
        limits: Limits,
        tweak: impl FnOnce(&mut HotConfig),
        api: impl FnOnce(&mut ApiConfig),
    ) -> Self {
        Self::start_full(limits, tweak, api, |server| server).await
    }

    /// As [`TestServer::start_configured`], and `server` adjusts the bound server before it
    /// runs (connection limits, replay limits).
    pub async fn start_full(
        limits: Limits,
        tweak: impl FnOnce(&mut HotConfig),
        api: impl FnOnce(&mut ApiConfig),
        server: impl FnOnce(Server) -> Server,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = HotConfig::new(dir.path().join("hot.redb"));
        config.memory_budget = 64 * 1024 * 1024;
        tweak(&mut config);
        let hot = tokio::task::spawn_blocking(move || HotStore::open(config))
            .await
            .unwrap()
            .unwrap();
        let warm =
            strata_warm::open_warm(&"embedded".parse().unwrap(), &WarmConfig::new(dir.path()))
                .await
                .unwrap();
        let store = Store::new(Arc::new(hot), warm, "test-node", limits);
        let metrics = install_metrics_recorder().unwrap();
        let mut api_config = ApiConfig {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_concurrent_requests: 64,
            request_timeout: Duration::from_secs(20),
        };
        api(&mut api_config);
        let server = server(
            Server::bind(api_config, store.clone(), metrics)
                .await
                .unwrap(),
        );
        let http_addr = server.http_addr();
        let http = format!("http://{http_addr}");
        let grpc = format!("http://{}", server.grpc_addr());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.run(shutdown.clone()));
        // `run` flips readiness as it starts serving; wait for it so tests see a ready node.
        // A throwaway client, so no pooled connection of it holds a slot of a listener
        // whose connections a test counts.
        let probe = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = probe.get(format!("{http}/readyz")).send().await
                && r.status() == 200
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(probe);
        let client = reqwest::Client::new();
        Self {
            http,
            http_addr,
            grpc,
            store,
            client,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Cancels the server, waits for `run` to return, and closes the store.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("run returns after shutdown")
            .unwrap()
            .unwrap();
        self.store.shutdown().await.unwrap();
    }

    /// Cancels the server without waiting.
    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// POSTs `body` to `/v1/events` with `content_type` (none when `None`).
    pub async fn post_events(&self, content_type: Option<&str>, body: String) -> (u16, Value) {
        let mut req = self.client.post(format!("{}/v1/events", self.http));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.body(body).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {text}"));
        (status, value)
    }

    /// POSTs events as a JSON array.
    pub async fn post_array(&self, events: &[Value]) -> (u16, Value) {
        self.post_events(
            Some("application/json"),
            serde_json::to_string(events).unwrap(),
        )
        .await
    }

    /// GETs `path` (with its query string) and returns status, headers and body text.
    pub async fn get_raw(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    /// GETs `path` and parses the body as JSON.
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, _, text) = self.get_raw(path).await;
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: response is not JSON ({e}): {text}"));
        (status, value)
    }

    /// `GET /v1/query/aggregate` with these parameters.
    pub async fn aggregate(&self, params: &[(&str, &str)]) -> (u16, Value) {
        self.get_json(&format!("/v1/query/aggregate?{}", query_string(params)))
            .await
    }

    /// How many events of `tenant` the store counts over the whole accepted time range.
    pub async fn count(&self, tenant: &str) -> u64 {
        let now = now_micros();
        let from = format_rfc3339(now - 8 * 24 * HOUR);
        let to = format_rfc3339(now + HOUR);
        let (status, body) = self
            .aggregate(&[
                ("tenant", tenant),
                ("from", &from),
                ("to", &to),
                ("bucket", "1d"),
                ("agg", "count"),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["value"].as_f64().unwrap() as u64)
            .sum()
    }
}

/// The start of the hour before the current one: every minute of that hour is a valid
/// event time (in the past, well within the allowed lateness).
pub fn base_ts() -> i64 {
    let now = now_micros();
    now - now.rem_euclid(HOUR) - HOUR
}

/// RFC 3339 text of epoch micros.
pub fn rfc(micros: i64) -> String {
    format_rfc3339(micros)
}

/// A valid event.
pub fn event(tenant: &str, id: &str, ts: i64) -> Value {
    json!({
        "tenant": tenant,
        "stream": "click",
        "key": "user-1",
        "id": id,
        "ts": rfc(ts),
    })
}

/// Percent-encodes query parameters.
pub fn query_string(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
