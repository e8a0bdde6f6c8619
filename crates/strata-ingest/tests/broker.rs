//! The consumer scenarios against a real Kafka-protocol broker, plus what only a real broker
//! can show: topics created through the admin API, a consumer waiting for a topic that does
//! not exist yet, and the load producer.
//!
//! Needs `--features server-tests` and `STRATA_TEST_KAFKA_BROKERS` (e.g. `127.0.0.1:9092`),
//! which `scripts/test` sets after starting the broker. Without it these tests fail: under the
//! test script a missing server is an error, never a skip.

#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use common::{
    Running, TENANT, assert_exactly_once, config, open_hot,
    scenarios::{self, Cluster, wait_consumed},
    unique, valid, wait_for_events,
};
use strata_core::hot::HotTier;
use strata_ingest::{ProducerConfig, ensure_topic, produce_json};

struct Broker(String);

impl Broker {
    fn from_env() -> Self {
        let brokers = std::env::var("STRATA_TEST_KAFKA_BROKERS").unwrap_or_default();
        assert!(
            !brokers.trim().is_empty(),
            "STRATA_TEST_KAFKA_BROKERS is not set: start a Kafka-protocol broker (scripts/test \
             starts tansu) and set it to its host:port"
        );
        Self(brokers)
    }
}

impl Cluster for Broker {
    fn brokers(&self) -> String {
        self.0.clone()
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        let created = ensure_topic(&ProducerConfig::new(&self.0), name, partitions, 1)
            .await
            .expect("create topic");
        assert!(created, "{name} is new");
        let again = ensure_topic(&ProducerConfig::new(&self.0), name, partitions, 1)
            .await
            .expect("ensure an existing topic");
        assert!(!again, "an existing topic is left alone");
    }

    fn commits_during_rebalance(&self) -> bool {
        true
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_stored_invalid_dead_lettered() {
    scenarios::valid_stored_invalid_dead_lettered(&Broker::from_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_hot_offsets() {
    scenarios::restart_resumes_from_hot_offsets(&Broker::from_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_loses_and_duplicates_nothing() {
    scenarios::rebalance_loses_and_duplicates_nothing(&Broker::from_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_hot_tier_pauses_and_resumes() {
    scenarios::full_hot_tier_pauses_and_resumes(&Broker::from_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_flush_is_not_stored_again() {
    scenarios::redelivery_after_flush_is_not_stored_again(&Broker::from_env()).await;
}

/// Neither the consumed topic nor the dead-letter topic exists at start: the consumer creates
/// the dead-letter topic, waits for the other, and consumes it once it appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_a_missing_topic_and_creates_the_dead_letter_topic() {
    let broker = Broker::from_env();
    let topic = unique("late");
    let cfg = config(&broker.0, &topic, &unique("g-late"));
    let source = cfg.source();
    let dlq = cfg.dlq_topic_name();
    let dir = tempfile::tempdir().unwrap();
    let hot = open_hot(dir.path(), None).await;
    let consumer = Running::start(cfg, hot.clone());

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !consumer.task.is_finished(),
        "a missing topic must not stop the consumer"
    );
    let created_again = ensure_topic(&ProducerConfig::new(&broker.0), &dlq, 1, 1)
        .await
        .unwrap();
    assert!(!created_again, "the consumer created the dead-letter topic");

    broker.create_topic(&topic, 2).await;
    let (msgs, ids) = common::messages("late", 200, 0);
    common::produce(&broker.0, &topic, &msgs).await;
    wait_consumed(&[&*hot], &source, 200).await;
    let report = consumer.stop().await;
    assert_eq!(report.stored, 200, "{report:?}");
    assert_exactly_once(&[&*hot], &ids).await;
    hot.shutdown().await.unwrap();
}

/// What `strata load --kafka` uses: every produced event arrives, keyed by its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_producer_delivers_every_event() {
    let broker = Broker::from_env();
    let topic = unique("load");
    broker.create_topic(&topic, 3).await;
    let ids: Vec<String> = (0..5000).map(|i| format!("load-{i}")).collect();
    let messages = futures::stream::iter(
        ids.iter()
            .map(|id| (format!("user-{}", id.len()), valid(id)))
            .collect::<Vec<_>>(),
    );
    let stats = produce_json(&ProducerConfig::new(&broker.0), &topic, messages)
        .await
        .expect("produce");
    assert_eq!(stats.delivered, 5000);
    assert!(stats.bytes > 5000 * 100);

    let cfg = config(&broker.0, &topic, &unique("g-load"));
    let dir = tempfile::tempdir().unwrap();
    let hot = open_hot(dir.path(), None).await;
    let consumer = Running::start(cfg, hot.clone());
    let have = wait_for_events(&[&*hot], 5000, Duration::from_secs(60)).await;
    assert_eq!(have, 5000);
    let report = consumer.stop().await;
    assert_eq!(report.messages, 5000, "{report:?}");
    assert_exactly_once(&[&*hot], &ids).await;
    assert!(hot.get(TENANT, "load-42").await.unwrap().is_some());
    hot.shutdown().await.unwrap();
}

/// Environment of the consumer process [`sigkill_mid_stream_then_restart`] starts: its hot
/// tier directory, topic and group.
const CHILD_DIR: &str = "STRATA_INGEST_TEST_CHILD_DIR";
const CHILD_TOPIC: &str = "STRATA_INGEST_TEST_CHILD_TOPIC";
const CHILD_GROUP: &str = "STRATA_INGEST_TEST_CHILD_GROUP";

/// The consumer in a separate process, killed with SIGKILL at random moments while events
/// are being produced, and restarted each time on the same hot-tier directory: in the end
/// every valid event is stored exactly once and every invalid one is in the dead-letter topic.
///
/// The same test function is both roles: started with [`CHILD_DIR`] set (by the parent,
/// re-running this test binary), it is the consumer process, reporting its progress on stdout
/// until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_then_restart() {
    let broker = Broker::from_env();
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child_consumer(&broker.0, &dir).await;
        return;
    }
    let topic = unique("sigkill");
    let group = unique("g-sigkill");
    let dlq = format!("{topic}.dlq");
    broker.create_topic(&topic, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let (msgs, ids) = common::messages("k", 30_000, 40);
    let total = msgs.len() as i64;

    // A backlog, so the consumer is busy when it is killed; the rest is produced in slices
    // while consumers come and go.
    let (backlog, rest) = msgs.split_at(20_000);
    common::produce(&broker.0, &topic, backlog).await;
    let producing = {
        let (brokers, topic, rest) = (broker.0.clone(), topic.clone(), rest.to_vec());
        tokio::spawn(async move {
            for slice in rest.chunks(1000) {
                common::produce(&brokers, &topic, slice).await;
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        })
    };
    let mut rng = now_seed();
    for kill in 0..4 {
        let mut child = Child::start(dir.path(), &topic, &group);
        // Let it make some progress (if there is anything left), then kill it wherever it is.
        let initial = child.first_report(Duration::from_secs(60));
        child.wait_progress((initial + 1).min(total), Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(50 + xorshift(&mut rng) % 750));
        let at = child.kill();
        eprintln!("kill {kill}: consumer killed at {at} of {total} messages");
    }
    producing.await.unwrap();
    let mut child = Child::start(dir.path(), &topic, &group);
    child.wait_progress(total, Duration::from_secs(120));
    child.kill();

    let hot = open_hot(dir.path(), None).await;
    assert_exactly_once(&[&*hot], &ids).await;
    scenarios::assert_dead_letters_with(&broker.0, &topic, &dlq, &msgs, false).await;
    hot.shutdown().await.unwrap();
}

/// The consumer process: consumes until killed, printing `progress <messages covered by the
/// stored offsets>` whenever that changes.
async fn child_consumer(brokers: &str, dir: &str) {
    let topic = std::env::var(CHILD_TOPIC).expect("child topic");
    let group = std::env::var(CHILD_GROUP).expect("child group");
    let hot = open_hot(std::path::Path::new(dir), None).await;
    let mut cfg = config(brokers, &topic, &group);
    cfg.batch_max_messages = 100;
    let source = cfg.source();
    let _consumer = Running::start(cfg, hot.clone());
    let mut last = -1;
    loop {
        let upto = scenarios::consumed_upto(&[&*hot], &source).await;
        if upto != last {
            println!("progress {upto}");
            last = upto;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A consumer process started from this test binary.
struct Child {
    process: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    progress: i64,
}

impl Child {
    fn start(dir: &std::path::Path, topic: &str, group: &str) -> Self {
        let mut process = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["sigkill_mid_stream_then_restart", "--exact", "--nocapture"])
            .env(CHILD_DIR, dir)
            .env(CHILD_TOPIC, topic)
            .env(CHILD_GROUP, group)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the consumer process");
        let stdout = process.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            process,
            lines,
            progress: 0,
        }
    }

    /// The first progress the process reports: what its hot tier held when it started.
    fn first_report(&mut self, timeout: Duration) -> i64 {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "the consumer process reported nothing");
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
                && let Some(n) = line.strip_prefix("progress ")
            {
                self.progress = n.trim().parse().expect("progress number");
                return self.progress;
            }
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("the consumer process exited by itself: {status}");
            }
        }
    }

    /// Waits until the process reports at least `n` messages consumed.
    fn wait_progress(&mut self, n: i64, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.progress < n {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "the consumer process reached only {} of {n}",
                self.progress
            );
            if let Ok(line) = self
                .lines
                .recv_timeout(left.min(Duration::from_millis(200)))
                && let Some(n) = line.strip_prefix("progress ")
            {
                self.progress = n.trim().parse().expect("progress number");
            }
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("the consumer process exited by itself: {status}");
            }
        }
    }

    /// SIGKILLs the process; returns the last progress it reported.
    fn kill(mut self) -> i64 {
        // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no group leave.
        self.process.kill().expect("kill");
        self.process.wait().expect("reap");
        while let Ok(line) = self.lines.try_recv() {
            if let Some(n) = line.strip_prefix("progress ") {
                self.progress = n.trim().parse().unwrap_or(self.progress);
            }
        }
        self.progress
    }
}

fn now_seed() -> u64 {
    u64::try_from(strata_types::time::now_micros()).unwrap_or(1) | 1
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
