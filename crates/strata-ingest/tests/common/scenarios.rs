//! The consumer scenarios, run against librdkafka's in-process mock cluster (fast, every
//! `cargo test`) and against a real Kafka-protocol broker (`server-tests`).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use strata_core::{
    Tier,
    hot::{AppendOutcome, AppendRequest, FlushBatch, HotPartial, HotStats, HotTier, SourceOffset},
};
use strata_ingest::dead_letter::{
    HEADER_ERROR_FIELD, HEADER_ERROR_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};
use strata_types::{AggregateQuery, StoredEvent, TimeRange};

use super::*;

/// Where the scenarios run.
pub trait Cluster {
    /// `bootstrap.servers`.
    fn brokers(&self) -> String;
    /// Creates a topic with `partitions` partitions.
    fn create_topic(&self, name: &str, partitions: i32) -> impl Future<Output = ()>;
    /// Whether the group coordinator takes offset commits from the current generation while
    /// a rebalance is in progress, as Kafka (and tansu) do. librdkafka's mock cluster refuses
    /// them, so on it a revoked partition cannot be handed over and its next owner starts
    /// from an older committed offset.
    fn commits_during_rebalance(&self) -> bool;
}

const WAIT: Duration = Duration::from_secs(90);

/// Sum over partitions of the furthest `next_offset` any of `stores` holds for `source`.
pub async fn consumed_upto(stores: &[&dyn HotTier], source: &str) -> i64 {
    let mut furthest: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for hot in stores {
        for o in hot.source_offsets(source).await.expect("offsets") {
            let e = furthest.entry((o.topic, o.partition)).or_insert(0);
            *e = (*e).max(o.next_offset);
        }
    }
    furthest.values().sum()
}

/// Waits until `stores` together hold offsets covering `total` messages.
pub async fn wait_consumed(stores: &[&dyn HotTier], source: &str, total: i64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let upto = consumed_upto(stores, source).await;
        if upto >= total {
            assert_eq!(upto, total, "offsets beyond what was produced");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {upto} of {total} messages consumed after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The group's committed offsets of `topic`'s first `partitions` partitions, summed.
pub async fn committed_sum(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let (brokers, group, topic) = (brokers.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", &group)
            .create()
            .expect("offsets reader");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(n) => n,
                _ => 0,
            })
            .sum()
    })
    .await
    .expect("offsets task")
}

/// Checks the dead-letter topic holds each invalid message of `msgs` exactly once (at least
/// once unless `exactly`), with its original bytes, its original header and Strata's headers.
pub async fn assert_dead_letters(brokers: &str, topic: &str, dlq: &str, msgs: &[Msg]) {
    assert_dead_letters_with(brokers, topic, dlq, msgs, true).await;
}

pub async fn assert_dead_letters_with(
    brokers: &str,
    topic: &str,
    dlq: &str,
    msgs: &[Msg],
    exactly: bool,
) {
    let expected: BTreeMap<String, &Msg> = msgs
        .iter()
        .filter_map(|m| m.header.as_ref().map(|(_, origin)| (origin.clone(), m)))
        .collect();
    let letters = read_topic(brokers, dlq, expected.len(), Duration::from_secs(30)).await;
    let mut seen = BTreeSet::new();
    for letter in &letters {
        let origin = header(letter, "origin").expect("the original header is kept");
        let original = expected
            .get(&origin)
            .unwrap_or_else(|| panic!("unexpected dead letter {origin}"));
        assert!(
            seen.insert(origin.clone()) || !exactly,
            "{origin} dead-lettered twice"
        );
        assert_eq!(
            letter.payload().map(<[u8]>::to_vec),
            original.value,
            "original bytes"
        );
        assert_eq!(letter.key(), Some(original.key.as_bytes()), "original key");
        assert_eq!(header(letter, HEADER_SOURCE_TOPIC).as_deref(), Some(topic));
        let partition: i32 = header(letter, HEADER_SOURCE_PARTITION)
            .expect("partition header")
            .parse()
            .expect("partition number");
        assert!(partition >= 0);
        let offset: i64 = header(letter, HEADER_SOURCE_OFFSET)
            .expect("offset header")
            .parse()
            .expect("offset number");
        assert!(offset >= 0);
        let reason = header(letter, HEADER_ERROR_REASON).expect("reason header");
        assert!(!reason.is_empty());
        let field = header(letter, HEADER_ERROR_FIELD).expect("field header");
        match &original.value {
            None => assert!(reason.contains("no value"), "{reason}"),
            Some(v) if v.starts_with(b"{not") => assert!(reason.contains("JSON"), "{reason}"),
            Some(v) if v.windows(4).any(|w| w == b"ACME") => assert_eq!(field, "tenant"),
            Some(_) => {
                assert_eq!(field, "ts");
                assert!(reason.contains("earliest time"), "{reason}");
            }
        }
    }
    assert_eq!(
        seen.len(),
        expected.len(),
        "every invalid message is dead-lettered"
    );
}

/// Valid events are stored once with their offsets; invalid ones are dead-lettered with
/// their reasons; a second consumer of the same group and store finds nothing to redo.
pub async fn valid_stored_invalid_dead_lettered(cluster: &impl Cluster) {
    let brokers = cluster.brokers();
    let topic = unique("mixed");
    let group = unique("g-mixed");
    cluster.create_topic(&topic, 3).await;
    cluster.create_topic(&format!("{topic}.dlq"), 1).await;
    let (msgs, ids) = messages("m", 600, 10);
    produce(&brokers, &topic, &msgs).await;

    let dir = tempfile::tempdir().unwrap();
    let hot = open_hot(dir.path(), None).await;
    let cfg = config(&brokers, &topic, &group);
    let source = cfg.source();
    let consumer = Running::start(cfg.clone(), hot.clone());
    wait_consumed(&[&*hot], &source, msgs.len() as i64).await;
    let report = consumer.stop().await;

    assert_exactly_once(&[&*hot], &ids).await;
    assert_eq!(report.stored, ids.len() as u64, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");
    assert_eq!(report.dead_lettered, 60, "{report:?}");
    assert_eq!(report.messages, 600, "{report:?}");
    let offsets = hot.source_offsets(&source).await.unwrap();
    assert_eq!(offsets.len(), 3, "one offset per partition: {offsets:?}");
    assert!(
        offsets
            .iter()
            .all(|o| o.topic == topic && o.source == source)
    );
    let e = hot
        .get(TENANT, &ids[0])
        .await
        .unwrap()
        .expect("stored event");
    assert_eq!(e.event.payload.as_deref(), Some(r#"{"n":"m-0"}"#));
    assert_eq!(e.event.attrs.get("page").map(String::as_str), Some("/"));
    assert_dead_letters(&brokers, &topic, &format!("{topic}.dlq"), &msgs).await;
    assert_eq!(
        committed_sum(&brokers, &group, &topic, 3).await,
        600,
        "the hand-over on close commits the durable positions to Kafka"
    );

    // The same group and store again: everything is behind the stored offsets.
    let consumer = Running::start(cfg, hot.clone());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let again = consumer.stop().await;
    assert_eq!(again.messages, 0, "nothing consumed twice: {again:?}");
    hot.shutdown().await.unwrap();
}

/// A hot tier that stops answering right after its `n`-th append committed, as if the
/// process died between the redb commit and the Kafka commit.
#[derive(Debug)]
pub struct DiesAfter {
    inner: Arc<dyn HotTier>,
    appends_left: AtomicUsize,
}

impl DiesAfter {
    pub fn new(inner: Arc<dyn HotTier>, n: usize) -> Self {
        Self {
            inner,
            appends_left: AtomicUsize::new(n),
        }
    }
}

#[async_trait]
impl HotTier for DiesAfter {
    async fn append(&self, request: AppendRequest) -> strata_core::Result<Vec<AppendOutcome>> {
        if self.appends_left.load(Ordering::SeqCst) == 0 {
            return Err(strata_core::Error::ShuttingDown { tier: Tier::Hot });
        }
        let outcomes = self.inner.append(request).await?;
        if self.appends_left.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Err(strata_core::Error::storage(
                Tier::Hot,
                "append",
                "simulated crash after the durable commit",
            ));
        }
        Ok(outcomes)
    }
    async fn get(&self, tenant: &str, id: &str) -> strata_core::Result<Option<StoredEvent>> {
        self.inner.get(tenant, id).await
    }
    async fn aggregate(&self, query: &AggregateQuery) -> strata_core::Result<HotPartial> {
        self.inner.aggregate(query).await
    }
    async fn scan(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> strata_core::Result<Vec<StoredEvent>> {
        self.inner.scan(tenant, range, stream).await
    }
    async fn source_offsets(&self, source: &str) -> strata_core::Result<Vec<SourceOffset>> {
        self.inner.source_offsets(source).await
    }
    async fn pending_flush(
        &self,
        max_events: usize,
        ingested_before: i64,
    ) -> strata_core::Result<Option<FlushBatch>> {
        self.inner.pending_flush(max_events, ingested_before).await
    }
    async fn release(&self, upto_seq: u64) -> strata_core::Result<()> {
        self.inner.release(upto_seq).await
    }
    fn stats(&self) -> HotStats {
        self.inner.stats()
    }
    async fn shutdown(&self) -> strata_core::Result<()> {
        self.inner.shutdown().await
    }
}

/// The consumer dies mid-stream right after a durable commit and before telling Kafka; the
/// store is dropped without a clean shutdown and reopened; a new consumer resumes from the
/// offsets in redb (ahead of Kafka's), storing and dead-lettering nothing twice.
pub async fn restart_resumes_from_hot_offsets(cluster: &impl Cluster) {
    let brokers = cluster.brokers();
    let topic = unique("restart");
    let group = unique("g-restart");
    let dlq = format!("{topic}.dlq");
    cluster.create_topic(&topic, 2).await;
    cluster.create_topic(&dlq, 1).await;
    let (first, mut ids) = messages("r1", 2000, 25);
    produce(&brokers, &topic, &first).await;

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&brokers, &topic, &group);
    cfg.batch_max_messages = 100;
    let source = cfg.source();
    {
        let hot = open_hot(dir.path(), None).await;
        let dying: Arc<dyn HotTier> = Arc::new(DiesAfter::new(hot.clone(), 5));
        let consumer = Running::start(cfg.clone(), dying);
        let ended = tokio::time::timeout(WAIT, consumer.task)
            .await
            .expect("the consumer stops when the hot tier fails")
            .expect("task");
        assert!(ended.is_err(), "a failing hot tier stops the consumer");
        let durable = consumer_offsets(&*hot, &source).await;
        assert!(
            durable > 0 && durable < 2000,
            "died mid-stream at {durable}"
        );
        let committed = committed_sum(&brokers, &group, &topic, 2).await;
        assert!(
            committed < durable,
            "Kafka ({committed}) must lag redb ({durable}) for this test to mean anything"
        );
        // Dropped without `shutdown()`: whatever redb made durable is all there is.
    }

    let (second, more) = messages("r2", 1000, 25);
    produce(&brokers, &topic, &second).await;
    ids.extend(more);
    let hot = open_hot(dir.path(), None).await;
    let consumer = Running::start(cfg, hot.clone());
    wait_consumed(&[&*hot], &source, 3000).await;
    let report = consumer.stop().await;
    assert_eq!(
        report.duplicates, 0,
        "nothing stored before the crash is consumed again: {report:?}"
    );
    assert_exactly_once(&[&*hot], &ids).await;
    let all: Vec<Msg> = first.into_iter().chain(second).collect();
    assert_dead_letters(&brokers, &topic, &dlq, &all).await;
    hot.shutdown().await.unwrap();
}

async fn consumer_offsets(hot: &dyn HotTier, source: &str) -> i64 {
    consumed_upto(&[hot], source).await
}

/// Two consumers of one group, each with its own hot tier: the second joins mid-stream, the
/// first leaves later; the two stores together hold every event exactly once and the
/// dead-letter topic every invalid message exactly once. Where the coordinator refuses
/// hand-over commits (the mock cluster), only "nothing lost, nothing twice in one store"
/// can hold.
pub async fn rebalance_loses_and_duplicates_nothing(cluster: &impl Cluster) {
    let brokers = cluster.brokers();
    let topic = unique("rebalance");
    let group = unique("g-rebalance");
    let dlq = format!("{topic}.dlq");
    cluster.create_topic(&topic, 4).await;
    cluster.create_topic(&dlq, 1).await;
    let mut cfg = config(&brokers, &topic, &group);
    cfg.batch_max_messages = 50;
    let source = cfg.source();

    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (hot_a, hot_b) = (
        open_hot(dir_a.path(), None).await,
        open_hot(dir_b.path(), None).await,
    );
    let (p1, mut ids) = messages("b1", 3000, 50);
    produce(&brokers, &topic, &p1).await;
    let a = Running::start(cfg.clone(), hot_a.clone());
    assert!(
        wait_for_events(&[&*hot_a], 300, WAIT).await >= 300,
        "the first consumer makes progress"
    );
    let b = Running::start(cfg.clone(), hot_b.clone());
    // Produce while the group rebalances.
    let (p2, more) = messages("b2", 3000, 50);
    produce(&brokers, &topic, &p2).await;
    ids.extend(more);
    let deadline = Instant::now() + WAIT;
    while stored(&*hot_b).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the second consumer never got partitions"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The first one leaves; the second takes over its partitions.
    let report_a = a.stop().await;
    let (p3, more) = messages("b3", 1000, 50);
    produce(&brokers, &topic, &p3).await;
    ids.extend(more);
    wait_consumed(&[&*hot_a, &*hot_b], &source, 7000).await;
    let report_b = b.stop().await;

    assert!(
        report_a.stored > 0 && report_b.stored > 0,
        "{report_a:?} {report_b:?}"
    );
    assert_eq!(
        report_a.duplicates + report_b.duplicates,
        0,
        "{report_a:?} {report_b:?}"
    );
    let strict = cluster.commits_during_rebalance();
    if strict {
        assert_exactly_once(&[&*hot_a, &*hot_b], &ids).await;
    } else {
        let in_a = id_counts(&[&*hot_a]).await;
        let in_b = id_counts(&[&*hot_b]).await;
        assert!(in_a.values().chain(in_b.values()).all(|n| *n == 1));
        let missing = ids
            .iter()
            .filter(|id| !in_a.contains_key(*id) && !in_b.contains_key(*id))
            .count();
        assert_eq!(missing, 0, "events lost in the rebalance");
    }
    let all: Vec<Msg> = p1.into_iter().chain(p2).chain(p3).collect();
    assert_dead_letters_with(&brokers, &topic, &dlq, &all, strict).await;
    hot_a.shutdown().await.unwrap();
    hot_b.shutdown().await.unwrap();
}

/// A full hot tier pauses consumption without dropping or skipping anything; once the
/// flusher releases room, consumption resumes and every event is stored exactly once.
pub async fn full_hot_tier_pauses_and_resumes(cluster: &impl Cluster) {
    let brokers = cluster.brokers();
    let topic = unique("full");
    let group = unique("g-full");
    cluster.create_topic(&topic, 2).await;
    cluster.create_topic(&format!("{topic}.dlq"), 1).await;
    let (msgs, ids) = messages("f", 2000, 0);
    produce(&brokers, &topic, &msgs).await;

    let dir = tempfile::tempdir().unwrap();
    // Room for a few hundred events.
    let hot = open_hot(dir.path(), Some(48 * 1024)).await;
    let mut cfg = config(&brokers, &topic, &group);
    cfg.batch_max_messages = 40;
    let source = cfg.source();
    let consumer = Running::start(cfg, hot.clone());

    // Wait for the stall: the store stops growing well before everything arrived.
    let deadline = Instant::now() + WAIT;
    let mut last = (0, Instant::now());
    loop {
        let upto = consumed_upto(&[&*hot], &source).await;
        if upto != last.0 {
            last = (upto, Instant::now());
        } else if upto > 0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(upto < 2000, "the budget never filled up");
        assert!(Instant::now() < deadline, "consumption never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stalled_at = last.0;
    assert!(
        !consumer.task.is_finished(),
        "a full hot tier does not stop the consumer"
    );

    // Be the flusher: release what is stored, collecting what was released.
    let mut released = Vec::new();
    let deadline = Instant::now() + WAIT;
    while consumed_upto(&[&*hot], &source).await < 2000 {
        assert!(Instant::now() < deadline, "consumption did not resume");
        if let Some(batch) = hot.pending_flush(10_000, i64::MAX).await.unwrap() {
            released.extend(batch.events.iter().map(|e| e.event.id.clone()));
            hot.release(batch.last_seq).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = consumer.stop().await;
    assert!(report.pauses >= 1, "{report:?}");
    assert!(stalled_at < 2000);
    assert_eq!(report.stored, 2000, "{report:?}");
    assert_eq!(report.duplicates, 0, "{report:?}");

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for id in released {
        *counts.entry(id).or_default() += 1;
    }
    for e in stored(&*hot).await {
        *counts.entry(e.event.id).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = ids.into_iter().map(|id| (id, 1)).collect();
    assert_eq!(
        counts, expected,
        "every event exactly once across released and hot"
    );
    hot.shutdown().await.unwrap();
}

/// Through the tiering `Store`, as `strata serve` runs it: events already moved to warm and
/// released from hot are recognised when Kafka delivers them again, and not stored twice.
pub async fn redelivery_after_flush_is_not_stored_again(cluster: &impl Cluster) {
    let brokers = cluster.brokers();
    let topic = unique("redeliver");
    let group = unique("g-redeliver");
    cluster.create_topic(&topic, 2).await;
    cluster.create_topic(&format!("{topic}.dlq"), 1).await;
    let dir = tempfile::tempdir().unwrap();
    let hot = open_hot(dir.path(), None).await;
    let warm = strata_warm::EmbeddedWarm::open(dir.path().join("warm.redb"))
        .await
        .expect("warm");
    let store = strata_tiering::Store::new(
        hot.clone(),
        Arc::new(warm),
        "node-a",
        strata_types::Limits::default(),
    );
    let flusher = strata_tiering::Flusher::for_store(
        &store,
        strata_tiering::FlusherConfig {
            hot_retention: Duration::ZERO,
            ..strata_tiering::FlusherConfig::default()
        },
    );
    let (msgs, ids) = messages("w", 300, 0);
    produce(&brokers, &topic, &msgs).await;

    let cfg = config(&brokers, &topic, &group);
    let source = cfg.source();
    let stop = tokio_util::sync::CancellationToken::new();
    let consumer = tokio::spawn(strata_ingest::run_consumer(
        cfg,
        Arc::new(store.clone()),
        store.limits().clone(),
        stop.clone(),
    ));
    wait_consumed(&[&*hot], &source, 300).await;
    let flushed = flusher.flush_due().await.expect("flush");
    assert_eq!(flushed.rows, 300, "{flushed:?}");
    assert!(stored(&*hot).await.is_empty(), "everything moved to warm");

    // The same events again, at new offsets (a producer retry, a replay).
    produce(&brokers, &topic, &msgs).await;
    wait_consumed(&[&*hot], &source, 600).await;
    stop.cancel();
    let report = consumer.await.unwrap().expect("consumer");
    assert_eq!(report.stored, 300, "{report:?}");
    assert_eq!(report.duplicates, 300, "{report:?}");
    assert!(stored(&*hot).await.is_empty(), "nothing stored twice");
    for id in ids.iter().step_by(37) {
        assert!(
            store.get_event(TENANT, id).await.unwrap().is_some(),
            "{id} in warm"
        );
    }
    hot.shutdown().await.unwrap();
}
