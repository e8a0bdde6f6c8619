//! The consumer loop: poll a batch, dead-letter the invalid messages, store the valid events
//! with the batch's offsets in one hot-tier transaction, then tell Kafka.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, Instant},
};

use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{BaseConsumer, CommitMode, Consumer},
    error::KafkaError,
    message::BorrowedMessage,
    types::RDKafkaErrorCode,
};
use strata_core::hot::{AppendOutcome, AppendRequest, SourceOffset};
use strata_types::{Event, Limits, time::now_micros};
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::{
    Error, Result,
    admin::ensure_topic,
    config::KafkaConfig,
    context::IngestContext,
    dead_letter::{DeadLetter, DeadLetters, dead_letter_headers},
    message::decode_message,
    metrics_names as m,
    offsets::OffsetBook,
    sink::EventSink,
};

/// How long one poll waits when nothing arrives; bounds how late shutdown is noticed.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// First wait before retrying a batch that could not be stored.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Repeated warnings (a missing topic, a broker away) are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// What a consumer did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Messages handled: stored, found to be duplicates, or dead-lettered.
    pub messages: u64,
    /// Events newly stored in the hot tier.
    pub stored: u64,
    /// Valid events the hot tier already held (same tenant and id).
    pub duplicates: u64,
    /// Messages delivered to the dead-letter topic.
    pub dead_lettered: u64,
    /// Durable commits (batches).
    pub batches: u64,
    /// Times consumption paused because a batch could not be stored yet.
    pub pauses: u64,
}

/// Consumes `config.topics` as a member of `config.group` into `sink` until `shutdown` is
/// cancelled, validating with `limits`. See the crate docs for the guarantees.
///
/// Returns what it did once it stopped: after `shutdown`, having left the group and handed
/// its positions over; or with an error when the sink fails (other than being full or a tier
/// being unavailable, which pause consumption until the batch can be stored) or librdkafka
/// reports a fatal error. Brokers that are unreachable and topics that do not exist yet are
/// waited for, with a warning.
///
/// The consumer runs on a thread of its own; it needs a multi-threaded Tokio runtime (the
/// hot tier and the dead-letter producer are driven from that thread through the runtime).
pub async fn run_consumer(
    config: KafkaConfig,
    sink: Arc<dyn EventSink>,
    limits: Limits,
    shutdown: CancellationToken,
) -> Result<ConsumerReport> {
    config.validate()?;
    // Dropping this future (instead of cancelling `shutdown`) must stop the thread too.
    let stop = shutdown.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let source = config.source();
    let stored = sink.source_offsets(&source).await?;
    info!(
        %source,
        partitions = stored.len(),
        "loaded the consumer's offsets from the hot tier"
    );
    let book = Arc::new(OffsetBook::from_stored(&stored));

    let producer = config.dead_letter_producer();
    let dlq_topic = config.dlq_topic_name();
    let mut backoff = MIN_BACKOFF;
    loop {
        match ensure_topic(
            &producer,
            &dlq_topic,
            config.dlq_partitions,
            config.dlq_replication,
        )
        .await
        {
            Ok(_) => break,
            Err(e) => {
                warn!(topic = %dlq_topic, error = %e, "cannot make sure the dead-letter topic exists; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.cancelled() => return Ok(ConsumerReport::default()),
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let dead_letters = DeadLetters::new(&producer, dlq_topic)?;

    let worker = Worker {
        topics: config
            .topics
            .iter()
            .map(|t| Arc::from(t.as_str()))
            .collect(),
        source,
        config,
        sink,
        limits,
        book,
        dead_letters,
        runtime: Handle::current(),
        shutdown: stop.clone(),
        report: ConsumerReport::default(),
        topic_warning: Throttle::default(),
        poll_warning: Throttle::default(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("strata-kafka".into())
        .spawn(move || {
            // The receiver is gone only when the caller stopped waiting; nobody to tell then.
            let _ = tx.send(worker.run());
        })
        .map_err(|e| Error::Thread(format!("could not start: {e}")))?;
    rx.await
        .map_err(|_| Error::Thread("ended without an answer".to_owned()))?
}

/// The state of the consumer thread.
struct Worker {
    config: KafkaConfig,
    sink: Arc<dyn EventSink>,
    limits: Limits,
    book: Arc<OffsetBook>,
    dead_letters: DeadLetters,
    runtime: Handle,
    shutdown: CancellationToken,
    /// The configured topics, shared by the records of a batch.
    topics: Vec<Arc<str>>,
    source: String,
    report: ConsumerReport,
    topic_warning: Throttle,
    poll_warning: Throttle,
}

/// Why a batch was not stored.
enum Stalled {
    /// Try again later: a tier is full or unavailable, or the dead-letter topic is not
    /// reachable.
    Retry {
        kind: &'static str,
        reason: String,
        wait: Option<Duration>,
    },
    /// Shutdown interrupted the attempt; the batch is dropped (nothing of it is committed).
    ShuttingDown,
    /// Stop the consumer.
    Fatal(Error),
}

impl Worker {
    fn run(mut self) -> Result<ConsumerReport> {
        let context = IngestContext::new(Arc::clone(&self.book), self.config.offsets_timeout);
        let consumer: BaseConsumer<IngestContext> = self
            .config
            .consumer_config()
            .create_with_context(context)
            .map_err(Error::kafka("create the consumer"))?;
        let topics: Vec<&str> = self.config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(Error::kafka("subscribe"))?;
        info!(
            topics = ?self.config.topics,
            group = %self.config.group,
            dead_letters = %self.dead_letters.topic(),
            "Kafka consumer started"
        );
        let result = self.consume(&consumer);
        if let Err(e) = &result {
            error!(error = %e, "Kafka consumer stopped");
        }
        // Closing leaves the group; the revocation callback commits this node's durable
        // positions first, so whoever takes the partitions starts where this node ended.
        drop(consumer);
        info!(report = ?self.report, "Kafka consumer closed");
        result.map(|()| self.report)
    }

    fn consume(&mut self, consumer: &BaseConsumer<IngestContext>) -> Result<()> {
        while !self.shutdown.is_cancelled() {
            let mut batch = self.collect(consumer)?;
            // A batch cut short by shutdown is dropped: none of it is durable or committed,
            // so whoever consumes these partitions next reads it again.
            if batch.is_empty() || self.shutdown.is_cancelled() {
                continue;
            }
            self.store(consumer, &mut batch)?;
        }
        Ok(())
    }

    /// Polls until the batch is full, `batch_max_wait` has passed since its first message,
    /// or shutdown.
    fn collect(&mut self, consumer: &BaseConsumer<IngestContext>) -> Result<Batch> {
        let mut batch = Batch::default();
        let mut deadline = None;
        while batch.len() < self.config.batch_max_messages && !self.shutdown.is_cancelled() {
            let timeout = match deadline {
                None => IDLE_POLL,
                Some(deadline) => {
                    let left = deadline - Instant::now().min(deadline);
                    if left.is_zero() {
                        break;
                    }
                    left.min(IDLE_POLL)
                }
            };
            if self.poll_one(consumer, timeout, &mut batch)? && deadline.is_none() {
                deadline = Some(Instant::now() + self.config.batch_max_wait);
            }
            self.drop_revoked(consumer, &mut batch);
        }
        Ok(batch)
    }

    /// Polls once (serving callbacks); adds a message to `batch`. Returns whether one came.
    fn poll_one(
        &mut self,
        consumer: &BaseConsumer<IngestContext>,
        timeout: Duration,
        batch: &mut Batch,
    ) -> Result<bool> {
        let error = match consumer.poll(timeout) {
            None => return Ok(false),
            Some(Ok(message)) => {
                batch.push(&message, &self.limits, &self.topics);
                return Ok(true);
            }
            Some(Err(e)) => e,
        };
        self.consumer_error(error)?;
        Ok(false)
    }

    fn consumer_error(&mut self, error: KafkaError) -> Result<()> {
        if let KafkaError::MessageConsumptionFatal(_) = error {
            return Err(Error::Kafka {
                op: "consume",
                source: error,
            });
        }
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                if self.topic_warning.ready() {
                    warn!(
                        topics = ?self.config.topics,
                        "a consumed topic does not exist yet; waiting for it to be created"
                    );
                }
            }
            _ => {
                if self.poll_warning.ready() {
                    warn!(%error, "Kafka consumer error; retrying");
                }
            }
        }
        Ok(())
    }

    /// Drops what was polled from partitions revoked since the last look: it is not durable
    /// here, and the next owner starts at this node's durable position, so it reads it.
    fn drop_revoked(&self, consumer: &BaseConsumer<IngestContext>, batch: &mut Batch) {
        let revoked = consumer.context().take_revoked();
        if revoked.is_empty() {
            return;
        }
        let before = batch.len();
        batch.records.retain(|r| {
            !revoked
                .iter()
                .any(|(topic, partition)| *partition == r.partition && **topic == *r.topic)
        });
        if batch.len() < before {
            info!(
                dropped = before - batch.len(),
                "dropped messages of revoked partitions that were not stored yet"
            );
        }
    }

    /// Stores the batch, pausing consumption and retrying for as long as that takes.
    fn store(&mut self, consumer: &BaseConsumer<IngestContext>, batch: &mut Batch) -> Result<()> {
        let mut paused: Option<u64> = None;
        let mut backoff = MIN_BACKOFF;
        loop {
            let (kind, reason, wait) = match self.attempt(consumer, batch) {
                Ok(()) => break,
                Err(Stalled::Fatal(e)) => return Err(e),
                Err(Stalled::ShuttingDown) => return Ok(()),
                Err(Stalled::Retry { kind, reason, wait }) => (kind, reason, wait),
            };
            if paused.is_none() {
                self.report.pauses += 1;
                metrics::counter!(m::PAUSES, "reason" => kind).increment(1);
                warn!(%reason, "pausing consumption until the batch can be stored");
            } else {
                debug!(%reason, "the batch still cannot be stored");
            }
            paused = Some(pause(consumer));
            let wait = wait.unwrap_or(backoff).clamp(MIN_BACKOFF, MAX_BACKOFF);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            self.hold(consumer, batch, wait, &mut paused)?;
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            if batch.is_empty() {
                break;
            }
        }
        if paused.is_some() {
            match consumer.assignment().and_then(|a| consumer.resume(&a)) {
                Ok(()) => info!("resumed consumption"),
                Err(e) => warn!(error = %e, "could not resume consumption"),
            }
        }
        Ok(())
    }

    /// Waits `wait` while serving the group: polls (nothing comes from paused partitions),
    /// pauses partitions newly assigned meanwhile, and drops revoked ones from the batch.
    fn hold(
        &mut self,
        consumer: &BaseConsumer<IngestContext>,
        batch: &mut Batch,
        wait: Duration,
        paused: &mut Option<u64>,
    ) -> Result<()> {
        let until = Instant::now() + wait;
        loop {
            let left = until - Instant::now().min(until);
            if left.is_zero() || self.shutdown.is_cancelled() {
                return Ok(());
            }
            // A message can still arrive from a partition assigned since the last pause; it
            // joins the batch, which is retried whole.
            self.poll_one(consumer, left.min(IDLE_POLL), batch)?;
            self.drop_revoked(consumer, batch);
            if *paused != Some(consumer.context().generation()) {
                *paused = Some(pause(consumer));
            }
        }
    }

    /// One try at storing the batch: dead letters first (their offsets must not become
    /// durable before they are safe), then events and offsets in one transaction, then the
    /// advisory Kafka commit.
    fn attempt(
        &mut self,
        consumer: &BaseConsumer<IngestContext>,
        batch: &mut Batch,
    ) -> std::result::Result<(), Stalled> {
        let events = batch.take_events(&self.limits);

        let mut letters = batch.undelivered_letters();
        if !letters.is_empty() {
            let before = letters.len();
            let delivery = self.runtime.block_on(async {
                tokio::select! {
                    result = self.dead_letters.deliver(&mut letters) => Some(result),
                    () = self.shutdown.cancelled() => None,
                }
            });
            let delivered = before - letters.iter().filter(|l| !l.delivered).count();
            self.report.dead_lettered += delivered as u64;
            match delivery {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    return Err(Stalled::Retry {
                        kind: "dead_letter",
                        reason: format!(
                            "the dead-letter topic {} is not taking messages: {e}",
                            self.dead_letters.topic()
                        ),
                        wait: None,
                    });
                }
                None => return Err(Stalled::ShuttingDown),
            }
        }

        let offsets = batch.offsets(&self.source);
        debug!(
            messages = batch.len(),
            first = ?batch.first_offsets(),
            next = ?offsets.iter().map(|o| (o.partition, o.next_offset)).collect::<Vec<_>>(),
            "storing a batch"
        );
        let started = Instant::now();
        let appended = self.runtime.block_on(self.sink.append(AppendRequest {
            events,
            offsets: offsets.clone(),
        }));
        let outcomes = match appended {
            Ok(outcomes) => outcomes,
            Err(strata_core::Error::Full {
                tier,
                reason,
                retry_after,
            }) => {
                return Err(Stalled::Retry {
                    kind: "hot_full",
                    reason: format!("the {tier} tier is full ({reason})"),
                    wait: Some(retry_after),
                });
            }
            Err(strata_core::Error::Unavailable { tier, op, message }) => {
                return Err(Stalled::Retry {
                    kind: "unavailable",
                    reason: format!("the {tier} tier is unavailable during {op}: {message}"),
                    wait: None,
                });
            }
            Err(e) => return Err(Stalled::Fatal(e.into())),
        };
        metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        self.book.stored(
            offsets
                .iter()
                .map(|o| (o.topic.as_str(), o.partition, o.next_offset)),
        );
        self.account(batch, &outcomes);
        commit_to_kafka(consumer, &offsets);
        Ok(())
    }

    fn account(&mut self, batch: &Batch, outcomes: &[AppendOutcome]) {
        let mut outcomes = outcomes.iter();
        let mut counts: HashMap<(&str, &'static str), u64> = HashMap::new();
        for record in &batch.records {
            let outcome = match &record.body {
                Body::DeadLetter(_) => "dead_letter",
                Body::Event { .. } => match outcomes.next() {
                    Some(AppendOutcome::Duplicate { .. }) => {
                        self.report.duplicates += 1;
                        "duplicate"
                    }
                    Some(AppendOutcome::Stored { .. }) | None => {
                        self.report.stored += 1;
                        "stored"
                    }
                },
            };
            *counts.entry((&record.topic, outcome)).or_default() += 1;
        }
        for ((topic, outcome), n) in counts {
            metrics::counter!(m::CONSUMED, "topic" => topic.to_owned(), "outcome" => outcome)
                .increment(n);
        }
        self.report.messages += batch.len() as u64;
        self.report.batches += 1;
    }
}

/// Pauses the whole current assignment; returns the assignment generation it paused.
fn pause(consumer: &BaseConsumer<IngestContext>) -> u64 {
    let generation = consumer.context().generation();
    if let Err(e) = consumer.assignment().and_then(|a| consumer.pause(&a)) {
        warn!(error = %e, "could not pause consumption");
    }
    generation
}

/// Tells Kafka the offsets just made durable. Advisory: the hot tier holds the real ones,
/// and a lost commit only makes a later owner start earlier (see the crate docs).
fn commit_to_kafka(consumer: &BaseConsumer<IngestContext>, offsets: &[SourceOffset]) {
    let mut tpl = TopicPartitionList::with_capacity(offsets.len());
    for o in offsets {
        if let Err(e) =
            tpl.add_partition_offset(&o.topic, o.partition, Offset::Offset(o.next_offset))
        {
            debug!(error = %e, "could not list an offset to commit");
        }
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        debug!(error = %e, "could not queue the Kafka offset commit");
    }
}

/// Messages polled and not yet stored, in poll order.
#[derive(Debug, Default)]
struct Batch {
    /// Server time the batch is validated at, fixed at its first message so a retry decodes
    /// exactly as the first attempt did.
    now: Option<i64>,
    records: Vec<Record>,
}

#[derive(Debug)]
struct Record {
    topic: Arc<str>,
    partition: i32,
    offset: i64,
    body: Body,
}

#[derive(Debug)]
enum Body {
    /// A valid event. `raw` is kept so a retried batch can be decoded again: the decoded
    /// event moves into the append request, which the hot tier consumes.
    Event {
        raw: Vec<u8>,
        event: Option<Event>,
    },
    DeadLetter(DeadLetter),
}

impl Batch {
    fn len(&self) -> usize {
        self.records.len()
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn push(&mut self, message: &BorrowedMessage<'_>, limits: &Limits, topics: &[Arc<str>]) {
        let now = *self.now.get_or_insert_with(now_micros);
        let topic = topics
            .iter()
            .find(|t| ***t == *message.topic())
            .cloned()
            // A regex subscription names topics that are not in the configuration.
            .unwrap_or_else(|| Arc::from(message.topic()));
        let body = match decode_message(message.payload(), limits, now) {
            Ok(event) => Body::Event {
                raw: message.payload().unwrap_or_default().to_vec(),
                event: Some(event),
            },
            Err(error) => {
                debug!(
                    topic = message.topic(),
                    partition = message.partition(),
                    offset = message.offset(),
                    field = %error.field,
                    reason = %error.reason,
                    "invalid message; dead-lettering it"
                );
                let headers = dead_letter_headers(
                    message.headers(),
                    &error,
                    message.topic(),
                    message.partition(),
                    message.offset(),
                );
                Body::DeadLetter(DeadLetter::new(
                    Arc::clone(&topic),
                    message.key().map(<[u8]>::to_vec),
                    message.payload().map(<[u8]>::to_vec),
                    headers,
                ))
            }
        };
        self.records.push(Record {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            body,
        });
    }

    /// The valid events, in poll order; decoded again from their bytes on a retry.
    fn take_events(&mut self, limits: &Limits) -> Vec<Event> {
        let now = *self.now.get_or_insert_with(now_micros);
        let mut events = Vec::with_capacity(self.records.len());
        for record in &mut self.records {
            let Body::Event { raw, event } = &mut record.body else {
                continue;
            };
            if let Some(event) = event.take() {
                events.push(event);
                continue;
            }
            // Decoding is a function of the bytes, the limits and `now`, all unchanged, so
            // this succeeds as it did the first time; should it not, the message is
            // dead-lettered like any other invalid one (before the offsets are committed).
            match decode_message(Some(raw), limits, now) {
                Ok(event) => events.push(event),
                Err(error) => {
                    let headers = dead_letter_headers(
                        None::<&rdkafka::message::OwnedHeaders>,
                        &error,
                        &record.topic,
                        record.partition,
                        record.offset,
                    );
                    let value = std::mem::take(raw);
                    record.body = Body::DeadLetter(DeadLetter::new(
                        Arc::clone(&record.topic),
                        None,
                        Some(value),
                        headers,
                    ));
                }
            }
        }
        events
    }

    fn undelivered_letters(&mut self) -> Vec<&mut DeadLetter> {
        self.records
            .iter_mut()
            .filter_map(|r| match &mut r.body {
                Body::DeadLetter(letter) if !letter.delivered => Some(letter),
                _ => None,
            })
            .collect()
    }

    /// The first offset of every partition in the batch, for logs.
    fn first_offsets(&self) -> BTreeMap<(&str, i32), i64> {
        let mut first = BTreeMap::new();
        for r in &self.records {
            first.entry((&*r.topic, r.partition)).or_insert(r.offset);
        }
        first
    }

    /// The next offset of every partition in the batch.
    fn offsets(&self, source: &str) -> Vec<SourceOffset> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for r in &self.records {
            let n = next.entry((&r.topic, r.partition)).or_insert(r.offset + 1);
            *n = (*n).max(r.offset + 1);
        }
        next.into_iter()
            .map(|((topic, partition), next_offset)| SourceOffset {
                source: source.to_owned(),
                topic: topic.to_owned(),
                partition,
                next_offset,
            })
            .collect()
    }
}

/// Lets a repeated warning through at most once per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < WARN_EVERY)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::message::OwnedHeaders;

    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    fn event_record(topic: &Arc<str>, partition: i32, offset: i64, id: &str) -> Record {
        let raw = format!(r#"{{"tenant":"acme","stream":"s","key":"k","id":"{id}","ts":{NOW}}}"#)
            .into_bytes();
        let event = decode_message(Some(&raw), &Limits::default(), NOW).unwrap();
        Record {
            topic: Arc::clone(topic),
            partition,
            offset,
            body: Body::Event {
                raw,
                event: Some(event),
            },
        }
    }

    fn letter_record(topic: &Arc<str>, partition: i32, offset: i64) -> Record {
        Record {
            topic: Arc::clone(topic),
            partition,
            offset,
            body: Body::DeadLetter(DeadLetter::new(
                Arc::clone(topic),
                None,
                Some(b"{bad".to_vec()),
                OwnedHeaders::new(),
            )),
        }
    }

    #[test]
    fn offsets_cover_every_partition_including_dead_letters() {
        let (t, u): (Arc<str>, Arc<str>) = (Arc::from("t"), Arc::from("u"));
        let batch = Batch {
            now: Some(NOW),
            records: vec![
                event_record(&t, 0, 5, "a"),
                letter_record(&t, 0, 6),
                event_record(&t, 1, 3, "b"),
                letter_record(&u, 0, 9),
            ],
        };
        let next: Vec<(String, i32, i64)> = batch
            .offsets("kafka:g")
            .into_iter()
            .map(|o| {
                assert_eq!(o.source, "kafka:g");
                (o.topic, o.partition, o.next_offset)
            })
            .collect();
        assert_eq!(
            next,
            vec![
                ("t".to_owned(), 0, 7),
                ("t".to_owned(), 1, 4),
                ("u".to_owned(), 0, 10)
            ]
        );
    }

    #[test]
    fn a_retried_batch_decodes_the_same_events_again() {
        let t: Arc<str> = Arc::from("t");
        let mut batch = Batch {
            now: Some(NOW),
            records: vec![
                event_record(&t, 0, 0, "a"),
                letter_record(&t, 0, 1),
                event_record(&t, 0, 2, "b"),
            ],
        };
        let first = batch.take_events(&Limits::default());
        assert_eq!(
            first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        // The first attempt's events went into the (refused) request; a retry rebuilds them.
        let second = batch.take_events(&Limits::default());
        assert_eq!(first, second);
        assert_eq!(batch.undelivered_letters().len(), 1);
        batch.undelivered_letters()[0].delivered = true;
        assert!(
            batch.undelivered_letters().is_empty(),
            "delivered once, sent once"
        );
    }

    #[test]
    fn repeated_warnings_are_throttled() {
        let mut t = Throttle::default();
        assert!(t.ready());
        assert!(!t.ready());
    }
}
