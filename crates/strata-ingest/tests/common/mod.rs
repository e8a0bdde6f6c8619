//! Helpers shared by the Kafka ingest tests: events, producing with headers, reading a topic
//! back, hot stores on temporary directories, and the consumer under test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    dead_code,
    unreachable_pub,
    missing_docs
)]

use std::{
    collections::BTreeMap,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
    message::{Header, Headers, OwnedHeaders, OwnedMessage},
    producer::{FutureProducer, FutureRecord},
};
use strata_core::hot::HotTier;
use strata_hot::{HotConfig, HotStore};
use strata_ingest::{ConsumerReport, KafkaConfig};
use strata_types::{Limits, StoredEvent, TimeRange, time::now_micros};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const TENANT: &str = "acme";
use strata_types::time::HOUR;

/// A valid event's JSON, stamped now.
pub fn valid(id: &str) -> Vec<u8> {
    format!(
        r#"{{"tenant":"{TENANT}","stream":"click","key":"user-{}","id":"{id}","ts":{},"value":1.5,"attrs":{{"page":"/"}},"payload":{{"n":"{id}"}}}}"#,
        id.len() % 7,
        now_micros()
    )
    .into_bytes()
}

/// The kinds of invalid message the tests send, by index.
pub fn invalid(i: usize) -> Option<Vec<u8>> {
    match i % 4 {
        0 => Some(b"{not json".to_vec()),
        1 => Some(br#"{"tenant":"ACME","stream":"s","key":"k","id":"x","ts":1}"#.to_vec()),
        2 => Some(
            format!(r#"{{"tenant":"acme","stream":"s","key":"k","id":"bad-{i}","ts":-90000000000000000}}"#)
                .into_bytes(),
        ),
        _ => None,
    }
}

/// One message to produce.
#[derive(Debug, Clone)]
pub struct Msg {
    pub key: String,
    pub value: Option<Vec<u8>>,
    /// `(name, value)` of one header, to check it survives dead-lettering.
    pub header: Option<(String, String)>,
}

/// `n` messages; every `invalid_every`-th one (if not 0) is invalid and carries a header.
/// Valid ids are `{prefix}-{i}`; returns the messages and the valid ids.
pub fn messages(prefix: &str, n: usize, invalid_every: usize) -> (Vec<Msg>, Vec<String>) {
    let mut msgs = Vec::with_capacity(n);
    let mut ids = Vec::new();
    for i in 0..n {
        if invalid_every > 0 && i % invalid_every == invalid_every - 1 {
            msgs.push(Msg {
                key: format!("bad-{i}"),
                value: invalid(i),
                header: Some(("origin".to_owned(), format!("{prefix}-{i}"))),
            });
        } else {
            let id = format!("{prefix}-{i}");
            msgs.push(Msg {
                key: format!("user-{}", i % 13),
                value: Some(valid(&id)),
                header: None,
            });
            ids.push(id);
        }
    }
    (msgs, ids)
}

/// Produces `msgs` in order with an idempotent producer and waits for every acknowledgement.
///
/// One message per record batch: tansu 0.6.0's in-memory engine answers a fetch from an
/// offset inside a record batch with the batches that *start* at or after it, skipping the
/// rest of that batch (Kafka returns the batch holding the offset). Consumers resume
/// mid-batch after every restart, hand-over and pause, so batched test data would lose
/// messages to the broker, not to Strata.
pub async fn produce(brokers: &str, topic: &str, msgs: &[Msg]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("batch.num.messages", "1")
        .create()
        .expect("producer");
    let sends = msgs.iter().map(|m| {
        let mut record = FutureRecord::<str, [u8]>::to(topic).key(m.key.as_str());
        if let Some(v) = &m.value {
            record = record.payload(v.as_slice());
        }
        if let Some((k, v)) = &m.header {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: k.as_str(),
                value: Some(v.as_str()),
            }));
        }
        producer.send(record, Duration::from_secs(30))
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(e, _)| e).expect("delivery");
    }
}

/// Reads every message of `topic` from the beginning of each partition until `expected`
/// arrived (then a moment more, to catch extras) or `timeout` passed.
pub async fn read_topic(
    brokers: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let brokers = brokers.to_owned();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            // Only assigned, never subscribed: the group is needed by librdkafka, not used.
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .create()
            .expect("reader");
        let deadline = Instant::now() + timeout;
        let partitions = loop {
            let md = consumer
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("metadata");
            let n = md
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .map_or(0, |t| t.partitions().len());
            if n > 0 || Instant::now() > deadline {
                break n;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p as i32, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let mut extra_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now > deadline || extra_until.is_some_and(|t| now > t) {
                break;
            }
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(m.detach());
            }
            if out.len() >= expected && extra_until.is_none() {
                extra_until = Some(Instant::now() + Duration::from_millis(1500));
            }
        }
        out
    })
    .await
    .expect("reader task")
}

/// A header's value as text.
pub fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Opens a hot store at `dir/hot.redb` off the async workers.
pub async fn open_hot(dir: &Path, disk_budget: Option<u64>) -> Arc<HotStore> {
    let mut config = HotConfig::new(dir.join("hot.redb"));
    if let Some(budget) = disk_budget {
        config.disk_budget = budget;
    }
    Arc::new(
        tokio::task::spawn_blocking(move || HotStore::open(config))
            .await
            .expect("open task")
            .expect("open hot store"),
    )
}

/// Every event of the test tenant in the hot tier.
pub async fn stored(hot: &dyn HotTier) -> Vec<StoredEvent> {
    let now = now_micros();
    hot.scan(
        TENANT,
        TimeRange {
            from: now - 24 * HOUR,
            to: now + HOUR,
        },
        None,
    )
    .await
    .expect("scan")
}

/// How many times each id is stored across `stores`.
pub async fn id_counts(stores: &[&dyn HotTier]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for hot in stores {
        for e in stored(*hot).await {
            *counts.entry(e.event.id).or_insert(0) += 1;
        }
    }
    counts
}

/// Asserts each of `ids` is stored exactly once across `stores`, and nothing else is.
pub async fn assert_exactly_once(stores: &[&dyn HotTier], ids: &[String]) {
    let counts = id_counts(stores).await;
    let missing: Vec<&String> = ids.iter().filter(|id| !counts.contains_key(*id)).collect();
    let repeated: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events missing, e.g. {:?}",
        missing.len(),
        ids.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        repeated.is_empty(),
        "{} events stored more than once, e.g. {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(counts.len(), ids.len(), "unexpected extra events");
}

/// Waits until `stores` together hold `n` distinct ids of the test tenant.
pub async fn wait_for_events(stores: &[&dyn HotTier], n: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let have = id_counts(stores).await.len();
        if have >= n || Instant::now() > deadline {
            return have;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A consumer configuration for tests: short batches so tests move quickly.
pub fn config(brokers: &str, topic: &str, group: &str) -> KafkaConfig {
    let mut c = KafkaConfig::new(brokers, vec![topic.to_owned()], group);
    c.dlq_topic = Some(format!("{topic}.dlq"));
    c.batch_max_messages = 500;
    c.batch_max_wait = Duration::from_millis(20);
    c.properties = vec![
        ("session.timeout.ms".to_owned(), "6000".to_owned()),
        ("heartbeat.interval.ms".to_owned(), "500".to_owned()),
        (
            "topic.metadata.refresh.interval.ms".to_owned(),
            "1000".to_owned(),
        ),
    ];
    c
}

/// A running consumer and the token that stops it.
pub struct Running {
    pub stop: CancellationToken,
    pub task: JoinHandle<strata_ingest::Result<ConsumerReport>>,
}

impl Running {
    pub fn start(config: KafkaConfig, hot: Arc<dyn HotTier>) -> Self {
        // `RUST_LOG=strata_ingest=debug` shows what the consumer does.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let stop = CancellationToken::new();
        let task = tokio::spawn(strata_ingest::run_consumer(
            config,
            Arc::new(strata_ingest::HotSink(hot)),
            Limits::default(),
            stop.clone(),
        ));
        Self { stop, task }
    }

    /// Stops the consumer and returns its report.
    pub async fn stop(self) -> ConsumerReport {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("consumer stops within a minute")
            .expect("consumer task")
            .expect("consumer result")
    }
}

/// A fresh name for topics and groups, so tests sharing a broker never meet.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:x}",
        std::process::id(),
        now_micros() % 1_000_000_000
    )
}

pub mod scenarios;
