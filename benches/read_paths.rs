//! Read-path load scenario: what the users of one Strata store see.
//!
//! One in-process store over real tiers in a temporary directory (hot redb, embedded warm,
//! a local-directory Parquet archive) holds three regions of one tenant's events: two days
//! archived in cold, one day in warm, the last hours in hot. Then, in one run:
//!
//! 1. **Cached query vs Redis GET.** The same closed-range aggregate, answered from the
//!    query cache, over REST (reqwest) and gRPC (tonic), next to a Redis GET of a value the
//!    size of the REST answer from a `redis-server` this scenario starts on loopback: the
//!    cache-aside design Strata replaces. Sequential requests, one connection each, p50/p99
//!    from an HdrHistogram.
//! 2. **Cache-miss latency per tier**: the same query shape over a range held by one tier,
//!    with the cache turned off, next to the cached answer (in process, no network).
//! 3. **Replay events/s per tier**: `Store::replay` over each region next to a bare read of
//!    that tier (hot scan, warm scan pages, cold Parquet read): the cost of ordering,
//!    exactly-once checks and cursors.
//!
//! Run: `cargo bench -p strata-benches --bench read_paths` (`REDIS_SERVER` names the
//! redis-server binary, default `redis-server` on the PATH; `EVENTS_PER_DAY` sizes the data,
//! default 100000; `REQUESTS` the sequential requests per measurement, default 2000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use hdrhistogram::Histogram;
use strata_api::{ApiConfig, Server, install_metrics_recorder};
use strata_cold::{ColdConfig, ColdStore, S3Options, open_blob_store};
use strata_core::{cold::DAY_MICROS, hot::HotWatermark, warm::ScanRequest};
use strata_hot::{HotConfig, HotStore};
use strata_proto::v1::{self as pb, query_client::QueryClient};
use strata_tiering::{
    Exporter, ExporterConfig, ReplayConfig, ReplayLimits, ReplayRequest, Store, StoreConfig,
};
use strata_types::{
    AggregateQuery, Event, Limits, QueryParams, TimeRange,
    decode::DecodedBatch,
    time::{format_rfc3339, now_micros},
};
use strata_warm::WarmConfig;
use tokio_util::sync::CancellationToken;

const TENANT: &str = "bench";
const NODE: &str = "bench-node";
use strata_types::time::HOUR;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn events(range: TimeRange, n: usize, tag: &str) -> Vec<Event> {
    let step = (range.to - range.from) / n as i64;
    (0..n)
        .map(|i| Event {
            tenant: TENANT.into(),
            stream: if i % 4 == 0 { "view" } else { "click" }.into(),
            key: format!("user-{}", i % 1_000),
            id: format!("{tag}-{i}"),
            ts: range.from + step * i as i64,
            value: Some((i % 100) as f64),
            attrs: BTreeMap::from([("page".into(), format!("/p/{}", i % 20))]),
            payload: Some(format!(r#"{{"n":{i},"tag":"{tag}"}}"#)),
        })
        .collect()
}

async fn ingest(store: &Store, events: Vec<Event>) {
    for chunk in events.chunks(1_000) {
        let report = store
            .ingest(DecodedBatch {
                events: chunk.to_vec(),
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        assert!(report.rejected.is_empty(), "{:?}", report.rejected.first());
    }
}

struct Regions {
    cold: TimeRange,
    warm: TimeRange,
    hot: TimeRange,
}

/// Fills the three regions: cold days through the late path and an export, then the warm
/// day through the late path, then recent events into hot.
async fn fill(store: &Store, per_day: usize) -> Regions {
    let now = now_micros();
    let today = now.div_euclid(DAY_MICROS) * DAY_MICROS;
    let cold = TimeRange {
        from: today - 4 * DAY_MICROS,
        to: today - 2 * DAY_MICROS,
    };
    let warm = TimeRange {
        from: today - 2 * DAY_MICROS,
        to: today - DAY_MICROS,
    };
    let hot = TimeRange {
        from: now - 5 * HOUR,
        to: now - HOUR,
    };
    ingest(store, events(cold, 2 * per_day, "c")).await;
    let exporter = Exporter::for_store(
        store,
        ExporterConfig {
            node: NODE.into(),
            export_after: Duration::from_secs(1),
            ..ExporterConfig::default()
        },
    )
    .expect("the store has a cold tier");
    loop {
        let report = exporter.export_due().await.unwrap();
        if !report.more_due {
            break;
        }
    }
    ingest(store, events(warm, per_day, "w")).await;
    ingest(store, events(hot, per_day, "h")).await;
    Regions { cold, warm, hot }
}

fn query(range: TimeRange) -> AggregateQuery {
    let from = format_rfc3339(range.from);
    let to = format_rfc3339(range.to);
    AggregateQuery::from_params(&QueryParams {
        tenant: TENANT,
        from: &from,
        to: &to,
        bucket: "1h",
        agg: "count",
        stream: None,
        group_by: None,
        filter: None,
    })
    .unwrap()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

struct Latency {
    name: String,
    hist: Histogram<u64>,
}

impl Latency {
    fn p50(&self) -> u64 {
        self.hist.value_at_quantile(0.50)
    }
    fn p99(&self) -> u64 {
        self.hist.value_at_quantile(0.99)
    }
}

async fn measure<F, Fut>(name: &str, requests: usize, mut op: F) -> Latency
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..requests / 10 {
        op().await;
    }
    let mut hist = histogram();
    for _ in 0..requests {
        let started = Instant::now();
        op().await;
        hist.record(started.elapsed().as_micros().max(1) as u64)
            .unwrap();
    }
    Latency {
        name: name.into(),
        hist,
    }
}

fn print_latencies(title: &str, rows: &[Latency], peer: &Latency) {
    println!("\n{title}");
    println!(
        "| {:<34} | {:>9} | {:>9} | {:>11} | {:>11} |",
        "what", "p50 µs", "p99 µs", "p50 × peer", "p99 × peer"
    );
    for row in rows {
        println!(
            "| {:<34} | {:>9} | {:>9} | {:>11.2} | {:>11.2} |",
            row.name,
            row.p50(),
            row.p99(),
            row.p50() as f64 / peer.p50() as f64,
            row.p99() as f64 / peer.p99() as f64,
        );
    }
}

/// A redis-server on a free loopback port, stopped (by its PID) when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(&binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{binary}` (apt install redis-server, or set REDIS_SERVER): {e}"
                )
            });
        Self { child, port }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn redis_connection(port: u16) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    for _ in 0..100 {
        if let Ok(con) = client.get_multiplexed_async_connection().await {
            return con;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not answer on port {port}");
}

async fn replay_rate(store: &Store, limits: &ReplayLimits, range: TimeRange) -> (usize, f64) {
    let started = Instant::now();
    let mut stream = store.replay(ReplayRequest::new(TENANT, range), limits);
    let mut n = 0;
    while let Some(item) = stream.next().await {
        item.unwrap();
        n += 1;
    }
    (n, n as f64 / started.elapsed().as_secs_f64())
}

async fn bare_rate(store: &Store, tier: &str, range: TimeRange) -> (usize, f64) {
    let started = Instant::now();
    let n = match tier {
        "hot" => store.hot().scan(TENANT, range, None).await.unwrap().len(),
        "warm" => {
            let everything = HotWatermark::everything(NODE);
            let mut request = ScanRequest::new(TENANT, range, 5_000);
            let mut n = 0;
            loop {
                let page = store.warm().scan(&request, &everything).await.unwrap();
                n += page.events.len();
                match page.next {
                    Some(next) => request.after = Some(next),
                    None => break n,
                }
            }
        }
        _ => {
            let parts = store
                .handoff()
                .unwrap()
                .cold_partitions(Some(TENANT), Some(range))
                .await
                .unwrap();
            let mut read = store.cold().unwrap().read(parts, range, None);
            let mut n = 0;
            while let Some(e) = read.next().await {
                e.unwrap();
                n += 1;
            }
            n
        }
    };
    (n, n as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() {
    let per_day = env_usize("EVENTS_PER_DAY", 100_000);
    let requests = env_usize("REQUESTS", 2_000);
    let dir = tempfile::tempdir().unwrap();

    let hot_config = HotConfig::new(dir.path().join("hot.redb"));
    let hot = tokio::task::spawn_blocking(move || HotStore::open(hot_config))
        .await
        .unwrap()
        .unwrap();
    let warm = strata_warm::open_warm(
        &strata_warm::WarmUrl::embedded(),
        &WarmConfig::new(dir.path()),
    )
    .await
    .unwrap();
    let blobs = open_blob_store(
        &format!("file://{}", dir.path().join("cold").display()),
        &S3Options::default(),
    )
    .await
    .unwrap();
    let cold = Arc::new(ColdStore::new(blobs, ColdConfig::default()));
    let store = Store::new(Arc::new(hot), warm.clone(), NODE, Limits::default())
        .with_config(StoreConfig::default())
        .with_cold(cold, warm);

    let filling = Instant::now();
    let regions = fill(&store, per_day).await;
    println!(
        "data: {} events ({per_day} per day; 2 days cold, 1 day warm, 4 h hot) in {:.1} s",
        4 * per_day,
        filling.elapsed().as_secs_f64()
    );

    // 1. Cached query over REST and gRPC next to a Redis GET of the same size.
    let metrics = install_metrics_recorder().unwrap();
    let server = Server::bind(
        ApiConfig {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_concurrent_requests: 64,
            request_timeout: Duration::from_secs(30),
        },
        store.clone(),
        metrics,
    )
    .await
    .unwrap();
    let http = format!("http://{}", server.http_addr());
    let grpc = format!("http://{}", server.grpc_addr());
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(server.run(shutdown.clone()));

    let closed = TimeRange {
        from: regions.cold.from,
        to: regions.warm.to,
    };
    let url = format!(
        "{http}/v1/query/aggregate?tenant={TENANT}&from={}&to={}&bucket=1h&agg=count",
        format_rfc3339(closed.from),
        format_rfc3339(closed.to)
    );
    let client = reqwest::Client::new();
    let body = client
        .get(&url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let again: serde_json::Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        again["cache"], "hit",
        "the closed range is answered from cache"
    );
    println!("cached answer: {} bytes over REST", body.len());

    let rest = measure("REST aggregate (cache hit)", requests, || {
        let request = client.get(&url);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
    })
    .await;

    let mut query_client = QueryClient::connect(grpc).await.unwrap();
    let grpc_request = pb::AggregateRequest {
        tenant: TENANT.into(),
        from: Some(timestamp(closed.from)),
        to: Some(timestamp(closed.to)),
        bucket: Some(prost_types::Duration {
            seconds: 3_600,
            nanos: 0,
        }),
        agg: pb::Agg::Count as i32,
        stream: None,
        group_by: String::new(),
        filter: String::new(),
    };
    let grpc_latency = measure("gRPC Query.Aggregate (cache hit)", requests, || {
        let mut c = query_client.clone();
        let r = grpc_request.clone();
        async move {
            c.aggregate(r).await.unwrap();
        }
    })
    .await;
    query_client.aggregate(grpc_request.clone()).await.unwrap();

    let redis = Redis::start();
    let mut con = redis_connection(redis.port).await;
    redis::cmd("SET")
        .arg("answer")
        .arg(body.as_ref())
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let redis_latency = measure(
        &format!("Redis GET ({} bytes)", body.len()),
        requests,
        || {
            let mut c = con.clone();
            async move {
                let v: Vec<u8> = redis::cmd("GET")
                    .arg("answer")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                assert!(!v.is_empty());
            }
        },
    )
    .await;
    print_latencies(
        "cached query vs Redis GET (sequential, one connection)",
        &[rest, grpc_latency],
        &redis_latency,
    );
    println!(
        "| {:<34} | {:>9} | {:>9} |",
        redis_latency.name,
        redis_latency.p50(),
        redis_latency.p99()
    );
    drop(redis);
    shutdown.cancel();
    serving.await.unwrap().unwrap();

    // 2. Cache-miss latency per tier, next to the cached answer, in process.
    let uncached = store.clone().with_config(StoreConfig {
        cache_capacity_bytes: 0,
        ..StoreConfig::default()
    });
    let day = |r: TimeRange| TimeRange {
        from: r.from,
        to: r.from + DAY_MICROS,
    };
    let per_tier = [
        ("hot (4 h)", regions.hot),
        ("warm (1 day)", day(regions.warm)),
        ("cold (1 day)", day(regions.cold)),
    ];
    let tier_requests = (requests / 20).max(20);
    let cached_q = query(day(regions.cold));
    store.aggregate(&cached_q).await.unwrap();
    let hit = measure("cold day, cache hit", tier_requests, || {
        let q = cached_q.clone();
        let s = store.clone();
        async move {
            s.aggregate(&q).await.unwrap();
        }
    })
    .await;
    let mut rows = Vec::new();
    for (name, range) in per_tier {
        let q = query(range);
        let answer = uncached.aggregate(&q).await.unwrap();
        let total: f64 = answer.buckets.iter().filter_map(|b| b.value).sum();
        // Every region holds `per_day` events per measured range.
        assert_eq!(total as usize, per_day, "{name}");
        rows.push(
            measure(&format!("{name}, cache miss"), tier_requests, || {
                let q = q.clone();
                let s = uncached.clone();
                async move {
                    s.aggregate(&q).await.unwrap();
                }
            })
            .await,
        );
    }
    rows.push(hit);
    let peer = Latency {
        name: String::new(),
        hist: rows.last().unwrap().hist.clone(),
    };
    print_latencies(
        "aggregate latency per tier, in process (peer = cold day from cache)",
        &rows,
        &peer,
    );

    // 3. Replay events/s per tier next to a bare read of the same tier.
    let limits = ReplayLimits::new(ReplayConfig {
        max_rate: None,
        ..ReplayConfig::default()
    });
    println!("\nreplay vs bare tier read");
    println!(
        "| {:<6} | {:>8} | {:>14} | {:>14} | {:>7} |",
        "tier", "events", "replay ev/s", "bare ev/s", "ratio"
    );
    for (tier, range) in [
        ("hot", regions.hot),
        ("warm", regions.warm),
        ("cold", regions.cold),
    ] {
        let (n, replay) = replay_rate(&store, &limits, range).await;
        let (m, bare) = bare_rate(&store, tier, range).await;
        assert_eq!(n, m, "{tier}: replay and bare read disagree");
        println!(
            "| {tier:<6} | {n:>8} | {replay:>14.0} | {bare:>14.0} | {:>7.2} |",
            replay / bare
        );
    }
}

fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}
