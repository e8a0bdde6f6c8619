//! Kafka topic → durable hot tier, next to a bare librdkafka consumer that only counts the
//! same messages, in the same run. The ratio is what decoding, validating, dead-letter
//! checking and the durable hot-tier commit (events and offsets in one redb transaction) cost
//! on top of fetching.
//!
//! Needs a Kafka-protocol broker: `STRATA_BENCH_KAFKA_BROKERS=127.0.0.1:9092 cargo bench -p
//! strata-ingest --bench kafka_ingest`. `STRATA_BENCH_EVENTS` (default 500,000) events of about
//! 235 bytes are produced once into a fresh 4-partition topic; then each round runs the bare
//! consumer and the Strata consumer (fresh consumer group, fresh hot tier on a temporary
//! directory), each from the beginning of the topic until it has every event. Both times
//! include joining the group. Without the variable the bench says so and exits.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig,
    consumer::{BaseConsumer, Consumer},
};
use strata_core::hot::HotTier;
use strata_hot::{HotConfig, HotStore};
use strata_ingest::{
    HotSink, KafkaConfig, ProducerConfig, ensure_topic, produce_json, run_consumer,
};
use strata_types::{Limits, time::now_micros};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 4;
const ROUNDS: usize = 3;
const TENANTS: [&str; 4] = ["acme", "globex", "initech", "umbrella"];
const STREAMS: [&str; 3] = ["page_view", "click", "purchase"];
const PAGES: [&str; 4] = ["/", "/pricing", "/docs", "/cart"];

/// An event of about 235 bytes, like the load generator's.
fn event(run: &str, i: u64, now: i64) -> (String, Vec<u8>) {
    let key = format!("user-{}", i % 10_007);
    let json = format!(
        r#"{{"tenant":"{}","stream":"{}","key":"{key}","id":"{run}-{i:09}","ts":{},"value":{}.25,"attrs":{{"page":"{}","region":"eu-west"}},"payload":{{"session":"s{:08x}","n":{i}}}}}"#,
        TENANTS[(i % 4) as usize],
        STREAMS[(i % 3) as usize],
        now - (i % 1000) as i64,
        i % 100,
        PAGES[(i % 4) as usize],
        i.wrapping_mul(2_654_435_761) % 0xffff_ffff,
    );
    (key, json.into_bytes())
}

fn bare_count(brokers: &str, topic: &str, group: &str, n: u64) -> Duration {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("bare consumer");
    let started = Instant::now();
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut count = 0u64;
    let mut bytes = 0usize;
    while count < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            // Touch the value, so the count is of messages actually handed over.
            bytes += m.payload_len();
            count += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "bare consumer stuck"
        );
    }
    let elapsed = started.elapsed();
    assert!(bytes > 0);
    elapsed
}

async fn strata_ingest(brokers: &str, topic: &str, group: &str, n: u64) -> Duration {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    config.memory_budget = 1 << 30;
    let hot = Arc::new(
        tokio::task::spawn_blocking(move || HotStore::open(config))
            .await
            .unwrap()
            .expect("hot store"),
    );
    let mut kafka = KafkaConfig::new(brokers, vec![topic.to_owned()], group);
    kafka.dlq_topic = Some(format!("{topic}.dlq"));
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(run_consumer(
        kafka,
        Arc::new(HotSink(hot.clone())),
        Limits::default(),
        stop.clone(),
    ));
    while hot.stats().events < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "Strata consumer stuck at {} events",
            hot.stats().events
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    let report = task.await.unwrap().expect("consumer");
    assert_eq!(report.stored, n, "{report:?}");
    hot.shutdown().await.unwrap();
    elapsed
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(brokers) = std::env::var("STRATA_BENCH_KAFKA_BROKERS") else {
        println!("kafka_ingest: skipped; set STRATA_BENCH_KAFKA_BROKERS to a broker's host:port");
        return;
    };
    let n: u64 = std::env::var("STRATA_BENCH_EVENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500_000);
    let run = format!("{:x}", now_micros());
    let topic = format!("bench-{run}");
    ensure_topic(&ProducerConfig::new(&brokers), &topic, PARTITIONS, 1)
        .await
        .expect("topic");

    let now = now_micros();
    let produced = Instant::now();
    let stats = produce_json(
        &ProducerConfig::new(&brokers),
        &topic,
        futures::stream::iter((0..n).map(|i| event(&run, i, now))),
    )
    .await
    .expect("produce");
    println!(
        "produced {} events ({:.0} bytes each) into {PARTITIONS} partitions in {:.1} s ({:.0}/s)",
        stats.delivered,
        stats.bytes as f64 / stats.delivered as f64,
        produced.elapsed().as_secs_f64(),
        per_sec(stats.delivered, produced.elapsed()),
    );

    let mut bare = Vec::new();
    let mut strata = Vec::new();
    for round in 0..ROUNDS {
        let (b, t) = (brokers.clone(), topic.clone());
        let group = format!("bench-bare-{run}-{round}");
        let d = tokio::task::spawn_blocking(move || bare_count(&b, &t, &group, n))
            .await
            .unwrap();
        bare.push(per_sec(n, d));
        let group = format!("bench-strata-{run}-{round}");
        let d = strata_ingest(&brokers, &topic, &group, n).await;
        strata.push(per_sec(n, d));
        println!(
            "round {round}: bare consumer {:>9.0} events/s   strata → durable hot {:>9.0} events/s   ratio {:.2}",
            bare[round],
            strata[round],
            strata[round] / bare[round]
        );
    }
    bare.sort_by(f64::total_cmp);
    strata.sort_by(f64::total_cmp);
    let (b, s) = (bare[ROUNDS / 2], strata[ROUNDS / 2]);
    println!(
        "median: bare consumer {b:.0} events/s, strata {s:.0} events/s, strata/bare = {:.2}",
        s / b
    );
}
