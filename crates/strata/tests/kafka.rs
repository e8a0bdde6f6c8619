//! Kafka ingest against the real binary and a real Kafka-protocol broker: `strata serve`
//! consuming a topic is killed with SIGKILL at random moments while events are produced,
//! restarted on the same data directory each time, and in the end every valid event is
//! stored exactly once and every invalid message is in the dead-letter topic. Also: a topic
//! that does not exist yet is waited for, and `strata load --kafka` feeds a running server.
//!
//! Needs `STRATA_TEST_KAFKA_BROKERS` (set by `scripts/test`); without it these tests fail.
#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use common::{TestEvent, TestServer, assert_same, client, count, get_event, strata_cli};
use rand::Rng;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    message::Headers,
};
use strata_ingest::{ProducerConfig, ensure_topic, produce_json};

const TENANT: &str = "kafka-t";

fn brokers() -> String {
    std::env::var("STRATA_TEST_KAFKA_BROKERS").expect(
        "STRATA_TEST_KAFKA_BROKERS is not set: these tests need a Kafka-protocol broker \
         (scripts/test starts one)",
    )
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A test's own topic and consumer group on the test broker: `(brokers, topic, group)`. The
/// topic is created with `partitions` when given, and left for the server to wait for
/// otherwise.
async fn fresh_topic(name: &str, partitions: Option<i32>) -> (String, String, String) {
    let brokers = brokers();
    let topic = unique(name);
    let group = unique(&format!("g-{name}"));
    if let Some(partitions) = partitions {
        ensure_topic(&producer(&brokers), &topic, partitions, 1)
            .await
            .unwrap();
    }
    (brokers, topic, group)
}

/// A producer for tests. tansu 0.6's in-memory engine mis-serves a fetch that resumes in
/// the middle of a record batch (it skips the rest of that batch), and consumers resume
/// mid-batch after every restart; one message per batch keeps every resume on a boundary.
/// Kafka itself needs none of this.
fn producer(brokers: &str) -> ProducerConfig {
    let mut config = ProducerConfig::new(brokers);
    config.properties.extend(
        [("batch.num.messages", "1"), ("linger.ms", "0")].map(|(k, v)| (k.into(), v.into())),
    );
    config
}

async fn produce(brokers: &str, topic: &str, messages: Vec<(String, Vec<u8>)>) {
    let n = messages.len() as u64;
    let stats = produce_json(&producer(brokers), topic, futures::stream::iter(messages))
        .await
        .expect("produce");
    assert_eq!(stats.delivered, n);
}

/// `serve` flags for a consumer of `topic` in `group`, with a tiny hot retention so events
/// also move to the (embedded) warm tier while the tests run.
fn base_args<'a>(brokers: &'a str, topic: &'a str, group: &'a str) -> Vec<&'a str> {
    vec![
        "--kafka-brokers",
        brokers,
        "--kafka-topics",
        topic,
        "--kafka-group",
        group,
        "--hot-retention",
        "1s",
        "--flush-interval",
        "200ms",
    ]
}

/// A short group session (and a heartbeat to match): a restarted or joining process would
/// otherwise wait out the default 45 s session of a killed member before the group
/// rebalances. As environment variables, the way `properties_from_env` reads them.
const SHORT_SESSION_ENV: [(&str, &str); 2] = [
    ("STRATA_KAFKA_PROPERTY_SESSION_TIMEOUT_MS", "6000"),
    ("STRATA_KAFKA_PROPERTY_HEARTBEAT_INTERVAL_MS", "1000"),
];

/// [`base_args`] plus the short session of [`SHORT_SESSION_ENV`] as `--kafka-property` flags.
fn kafka_args<'a>(brokers: &'a str, topic: &'a str, group: &'a str) -> Vec<&'a str> {
    let mut args = base_args(brokers, topic, group);
    args.extend([
        "--kafka-property",
        "session.timeout.ms=6000",
        "--kafka-property",
        "heartbeat.interval.ms=1000",
    ]);
    args
}

fn range() -> (String, String) {
    (
        common::rfc3339_from_now(chrono::Duration::hours(-1)),
        common::rfc3339_from_now(chrono::Duration::hours(1)),
    )
}

async fn stored_count(server: &TestServer) -> u64 {
    let (from, to) = range();
    count(&client(), &server.http_url(), TENANT, &from, &to)
        .await
        .unwrap_or(0)
}

/// Waits until the server counts `n` events, failing after `timeout`.
async fn wait_for_count(server: &TestServer, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let c = stored_count(server).await;
        if c == n {
            return;
        }
        assert!(c < n, "more events stored ({c}) than produced ({n})");
        assert!(
            Instant::now() < deadline,
            "only {c} of {n} events arrived within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every message of `topic`, read from the beginning of each partition until `timeout`
/// passed after the last new message.
fn read_topic(
    brokers: &str,
    topic: &str,
    quiet: Duration,
) -> Vec<(Vec<u8>, HashMap<String, String>)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    assert!(partitions > 0, "topic {topic} does not exist");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < quiet {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let headers = m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| {
                            let v = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                            (h.key.to_owned(), v.unwrap_or_default())
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
            last = Instant::now();
        }
    }
    out
}

/// Invalid messages, each distinguishable by its bytes.
fn invalid_messages(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let bytes = match i % 3 {
                0 => format!("{{not json {i}"),
                1 => format!(r#"{{"tenant":"{TENANT}","stream":"s","key":"k","ts":1,"n":{i}}}"#),
                _ => format!(
                    r#"{{"tenant":"Bad Tenant","stream":"s","key":"k","id":"bad-{i}","ts":"{}"}}"#,
                    common::now_rfc3339()
                ),
            };
            (format!("bad-{i}"), bytes.into_bytes())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_stores_each_event_once_and_dead_letters_the_invalid() {
    let (brokers, topic, group) = fresh_topic("kill", Some(3)).await;

    const VALID: u64 = 6_000;
    const INVALID: usize = 30;
    let valid: Vec<TestEvent> = (0..VALID)
        .map(|n| TestEvent::new(TENANT, format!("{topic}-{n}"), n))
        .collect();
    let invalid = invalid_messages(INVALID);
    // Invalid messages interleaved with the valid ones, produced in slices while the server
    // is being killed and restarted.
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut bad = invalid.clone().into_iter();
    for (i, e) in valid.iter().enumerate() {
        messages.push((e.key.clone(), e.to_json().into_bytes()));
        if i % 200 == 0
            && let Some(b) = bad.next()
        {
            messages.push(b);
        }
    }
    messages.extend(bad);
    let producing = {
        let (brokers, topic) = (brokers.clone(), topic.clone());
        tokio::spawn(async move {
            for slice in messages.chunks(500) {
                produce(&brokers, &topic, slice.to_vec()).await;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        })
    };

    // This test sets the session through the environment, the others through flags.
    let args = base_args(&brokers, &topic, &group);
    let mut server = TestServer::spawn_async_with_env(&args, &SHORT_SESSION_ENV).await;
    let mut rng = rand::rng();
    for kill in 1..=4 {
        // Kill only once this generation has stored something, at a random moment after.
        let before = stored_count(&server).await;
        let waiting = Instant::now();
        while stored_count(&server).await == before && before < VALID {
            assert!(
                waiting.elapsed() < Duration::from_secs(90),
                "no progress before kill {kill}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..800))).await;
        eprintln!("kill #{kill} after {before}+ events");
        server = server.blocking(TestServer::restart).await;
    }
    producing.await.unwrap();
    wait_for_count(&server, VALID, Duration::from_secs(180)).await;
    // Nothing more trickles in later (a duplicate would).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stored_count(&server).await,
        VALID,
        "each event exactly once"
    );

    let http = client();
    let base = server.http_url();
    for e in valid.iter().step_by(37) {
        let got = get_event(&http, &base, TENANT, &e.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{} lost", e.id));
        assert_same(e, &got);
    }

    let dlq = format!("{group}.dlq");
    let dead = tokio::task::spawn_blocking({
        let brokers = brokers.clone();
        move || read_topic(&brokers, &dlq, Duration::from_secs(5))
    })
    .await
    .unwrap();
    // Dead letters are at least once (a kill between their delivery and the hot commit
    // re-sends them); every invalid message must be there, and nothing valid.
    let dead_bytes: BTreeSet<Vec<u8>> = dead.iter().map(|(b, _)| b.clone()).collect();
    let want: BTreeSet<Vec<u8>> = invalid.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(
        dead_bytes, want,
        "the dead-letter topic holds exactly the invalid messages"
    );
    for (_, headers) in &dead {
        assert_eq!(
            headers.get("strata-source-topic"),
            Some(&topic),
            "{headers:?}"
        );
        assert!(
            headers.contains_key("strata-source-partition"),
            "{headers:?}"
        );
        assert!(headers.contains_key("strata-source-offset"), "{headers:?}");
        assert!(
            !headers
                .get("strata-error-reason")
                .cloned()
                .unwrap_or_default()
                .is_empty(),
            "{headers:?}"
        );
    }
    server.stop_gracefully(Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_topic_is_waited_for_and_load_kafka_feeds_the_server() {
    let (brokers, topic, group) = fresh_topic("later", None).await;
    let server = TestServer::spawn_async(&kafka_args(&brokers, &topic, &group)).await;
    // The topic does not exist: the server says it waits, and keeps running and serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server
        .logs()
        .contains("does not exist yet; waiting for it to be created")
    {
        assert!(
            Instant::now() < deadline,
            "the server does not say it waits for the topic:\n{}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let health = client()
        .get(format!("{}/healthz", server.http_url()))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());

    // `strata load --kafka` creates the topic and produces; the running server consumes.
    let out = strata_cli(
        &[
            "load",
            "--kafka",
            &brokers,
            "--kafka-topic",
            &topic,
            "--kafka-partitions",
            "2",
            "--events",
            "2000",
            "--batch-size",
            "250",
            // One message per record batch, for tansu's in-memory engine (see `producer`).
            "--kafka-property",
            "batch.num.messages=1",
            "--kafka-property",
            "linger.ms=0",
            "--tenants",
            "1",
            "--json",
            "--seed",
            "7",
        ],
        &[],
        Duration::from_secs(300),
    );
    assert!(
        out.status.success(),
        "load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["accepted"], 2000, "{summary}");
    assert_eq!(summary["protocol"], "kafka");

    // With `--tenants 1` every generated event belongs to the generator's first tenant.
    let (from, to) = (
        common::rfc3339_from_now(chrono::Duration::days(-1)),
        common::rfc3339_from_now(chrono::Duration::hours(1)),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let c = count(&client(), &server.http_url(), "acme", &from, &to)
            .await
            .unwrap_or(0);
        if c == 2000 {
            break;
        }
        assert!(c < 2000, "more events than produced: {c}");
        assert!(Instant::now() < deadline, "only {c} of 2000 consumed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Two `strata serve` processes in one consumer group, each with its own data directory: the
/// second joins mid-stream, the first leaves gracefully later, and across both nodes every
/// event is stored exactly once (the union of their stores counts each produced event once,
/// and no event is on both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_between_two_processes_loses_and_duplicates_nothing() {
    let (brokers, topic, group) = fresh_topic("rebalance", Some(4)).await;
    const N: u64 = 6_000;
    let events: Vec<TestEvent> = (0..N)
        .map(|n| TestEvent::new(TENANT, format!("{topic}-{n}"), n))
        .collect();
    let messages: Vec<(String, Vec<u8>)> = events
        .iter()
        .map(|e| (e.key.clone(), e.to_json().into_bytes()))
        .collect();
    let thirds: Vec<Vec<(String, Vec<u8>)>> = messages.chunks(2_000).map(<[_]>::to_vec).collect();

    let args = kafka_args(&brokers, &topic, &group);
    let mut a = TestServer::spawn_async(&args).await;
    produce(&brokers, &topic, thirds[0].clone()).await;
    let producing = {
        let (brokers, topic, second) = (brokers.clone(), topic.clone(), thirds[1].clone());
        tokio::spawn(async move {
            for slice in second.chunks(250) {
                produce(&brokers, &topic, slice.to_vec()).await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    // The second node joins while the first is consuming: the group rebalances.
    let b = TestServer::spawn_async(&args).await;
    producing.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The first node leaves gracefully: its partitions move to the second.
    a.stop_gracefully(Duration::from_secs(60));
    produce(&brokers, &topic, thirds[2].clone()).await;

    // The first node comes back without Kafka flags, only to answer reads of what it stored.
    a.set_args(&["--hot-retention", "1s", "--flush-interval", "200ms"]);
    a.start();
    let a_count = stored_count(&a).await;
    assert!(a_count > 0, "the first node stored nothing before it left");
    // Everything else arrives at the second node.
    wait_for_count(&b, N - a_count, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stored_count(&a).await + stored_count(&b).await,
        N,
        "union of both nodes"
    );
    // No event is on both nodes, and every sampled event is on one of them.
    let http = client();
    for e in events.iter().step_by(29) {
        let on_a = get_event(&http, &a.http_url(), TENANT, &e.id)
            .await
            .unwrap();
        let on_b = get_event(&http, &b.http_url(), TENANT, &e.id)
            .await
            .unwrap();
        assert!(
            on_a.is_some() != on_b.is_some(),
            "{} must be on exactly one node (a: {}, b: {})",
            e.id,
            on_a.is_some(),
            on_b.is_some()
        );
    }
}
