//! librdkafka callbacks: logging into `tracing`, and the consumer's rebalance handling (start
//! positions on assignment, the hand-over commit on revocation) and lag gauges.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    ClientContext, Offset, Statistics, TopicPartitionList,
    config::RDKafkaLogLevel,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol},
    error::{KafkaError, KafkaResult},
    types::RDKafkaRespErr,
};
use tracing::{debug, error, info, warn};

use crate::{
    metrics_names as m,
    offsets::{OffsetBook, PartitionKey},
};

/// Routes librdkafka's log lines and global errors into `tracing`.
#[derive(Debug, Clone)]
pub(crate) struct LogContext {
    client: &'static str,
}

impl LogContext {
    pub(crate) fn new(client: &'static str) -> Self {
        Self { client }
    }
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_line(self.client, level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(client = self.client, %error, reason, "librdkafka error");
    }
}

fn log_line(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    // The passed-through properties go to every client, so each client warns about the ones
    // meant for the others; that is expected, not worth a warning.
    let level = if fac == "CONFWARN" {
        RDKafkaLogLevel::Debug
    } else {
        level
    };
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => error!(client, fac, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => warn!(client, fac, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(client, fac, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => debug!(client, fac, "librdkafka: {message}"),
    }
}

/// The consumer's context. Its callbacks run on the consumer thread, inside `poll`.
#[derive(Debug)]
pub(crate) struct IngestContext {
    book: Arc<OffsetBook>,
    offsets_timeout: Duration,
    /// Partitions revoked (or lost) since the consumer loop last looked; it drops what it
    /// polled from them and did not store.
    revoked: Mutex<Vec<PartitionKey>>,
    /// Bumped by every rebalance, so the loop knows to re-pause a new assignment while it is
    /// holding back.
    generation: AtomicU64,
}

impl IngestContext {
    pub(crate) fn new(book: Arc<OffsetBook>, offsets_timeout: Duration) -> Self {
        Self {
            book,
            offsets_timeout,
            revoked: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Partitions revoked since the last call.
    pub(crate) fn take_revoked(&self) -> Vec<PartitionKey> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes whenever the assignment changes.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Sets each newly assigned partition's start: `max(redb, committed)`, or the committed
    /// offset (then `auto.offset.reset`) when neither is known or the committed offsets cannot
    /// be read.
    fn resolve_starts(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) {
        let keys = partitions(tpl);
        let committed = self.committed(consumer, tpl);
        for (topic, partition) in &keys {
            let start = match &committed {
                Some(committed) => self.book.assign(
                    topic,
                    *partition,
                    committed.get(&(topic.clone(), *partition)).copied(),
                ),
                // Without the committed offset, this node's redb offset alone could be behind
                // what other nodes stored since; the committed offset is never ahead of any
                // durable state, and re-reading this node's own events is deduplicated.
                None => {
                    self.book.revoke(topic, *partition);
                    None
                }
            };
            let offset = start.map_or(Offset::Stored, Offset::Offset);
            if let Err(e) = tpl.set_partition_offset(topic, *partition, offset) {
                warn!(topic, partition, error = %e, "could not set a start offset");
            }
            info!(
                topic,
                partition,
                start = ?offset,
                durable = ?self.book.durable(topic, *partition),
                "partition assigned"
            );
        }
    }

    /// The group's committed offsets of `tpl`, or `None` when they cannot be read.
    fn committed(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &TopicPartitionList,
    ) -> Option<HashMap<PartitionKey, i64>> {
        for attempt in 1..=2 {
            match consumer.committed_offsets(tpl.clone(), self.offsets_timeout) {
                Ok(list) => {
                    let mut out = HashMap::new();
                    let mut failed = false;
                    for e in list.elements() {
                        if let Err(err) = e.error() {
                            warn!(topic = e.topic(), partition = e.partition(), error = %err, attempt,
                                "could not read a committed offset");
                            failed = true;
                            break;
                        }
                        if let Offset::Offset(n) = e.offset() {
                            out.insert((e.topic().to_owned(), e.partition()), n);
                        }
                    }
                    if !failed {
                        return Some(out);
                    }
                }
                Err(e) => warn!(error = %e, attempt, "could not read the committed offsets"),
            }
        }
        None
    }

    /// Commits this node's durable position of each revoked partition, synchronously, so the
    /// next owner starts exactly where this node's durable state ends.
    fn hand_over(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList, commit: bool) {
        let mut positions = TopicPartitionList::new();
        let keys = partitions(tpl);
        for (topic, partition) in &keys {
            if let Some(position) = self.book.revoke(topic, *partition)
                && let Err(e) =
                    positions.add_partition_offset(topic, *partition, Offset::Offset(position))
            {
                warn!(topic, partition, error = %e, "could not list a hand-over offset");
            }
            metrics::gauge!(m::LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                .set(0.0);
        }
        self.revoked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(keys);
        if !commit || positions.count() == 0 {
            return;
        }
        match consumer.commit(&positions, CommitMode::Sync) {
            Ok(()) => info!(
                partitions = positions.count(),
                "handed over revoked partitions"
            ),
            // The next owner then starts from an older committed offset and stores the events
            // in between a second time, in its own hot tier (see the crate docs).
            Err(e) => warn!(error = %e, "could not commit the hand-over offsets"),
        }
    }
}

fn partitions(tpl: &TopicPartitionList) -> Vec<PartitionKey> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

impl ClientContext for IngestContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        log_line("consumer", level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(%error, reason, "librdkafka consumer error");
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // Partition -1 is librdkafka's internal "unassigned" bucket.
                if *partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                if let Some(position) = self.book.live(topic, *partition) {
                    let lag = (p.hi_offset - position).max(0);
                    metrics::gauge!(m::LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result: KafkaResult<()> = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                metrics::counter!(m::REBALANCES, "kind" => "assign").increment(1);
                self.resolve_starts(consumer, tpl);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                metrics::counter!(m::REBALANCES, "kind" => "revoke").increment(1);
                let lost = consumer.assignment_lost();
                if lost {
                    warn!("the group considers this consumer's partitions lost; not committing");
                }
                self.hand_over(consumer, tpl, !lost);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                metrics::counter!(m::REBALANCES, "kind" => "error").increment(1);
                error!(error = ?other, "rebalance failed; dropping the assignment");
                self.hand_over(consumer, tpl, false);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            error!(error = %e, "could not apply the rebalance");
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        // Kafka's committed offsets are advisory here (the hot tier holds the real ones), so
        // a failed commit only delays a hand-over; it is retried with the next batch.
        if let Err(e) = result {
            debug!(error = %e, partitions = offsets.count(), "Kafka offset commit failed");
        }
    }
}
