//! Strata's Kafka ingest: a consumer-group member that stores events in the hot tier exactly
//! once, a dead-letter topic for what cannot be stored, and the producer `strata load --kafka`
//! uses.
//!
//! ```no_run
//! # async fn demo(store: strata_tiering::Store) -> strata_ingest::Result<()> {
//! use std::sync::Arc;
//! use strata_ingest::{KafkaConfig, run_consumer};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = KafkaConfig::new("127.0.0.1:9092", vec!["events".into()], "strata");
//! let shutdown = CancellationToken::new();
//! let limits = store.limits().clone();
//! let report = run_consumer(config, Arc::new(store), limits, shutdown).await?;
//! println!("stored {} events", report.stored);
//! # Ok(()) }
//! ```
//!
//! # The consumer
//!
//! [`run_consumer`] runs one consumer on a dedicated thread (librdkafka's rebalance callbacks
//! run on the polling thread and make blocking broker calls, which must not happen on the
//! async workers). It repeats:
//!
//! 1. poll a batch: up to [`KafkaConfig::batch_max_messages`] messages, or whatever arrived
//!    within [`KafkaConfig::batch_max_wait`] of the first one;
//! 2. decode and validate each message exactly like REST does (one JSON event per message);
//! 3. produce the invalid ones to the dead-letter topic (original key, bytes and headers, plus
//!    `strata-error-*` and `strata-source-*` headers) and wait for their delivery;
//! 4. append the valid events to the hot tier **together with the next offset of every
//!    partition in the batch, in one durable transaction** ([`strata_core::hot::HotTier::append`]
//!    with source `kafka:<group>`), through an [`EventSink`]: in `strata serve` the tiering
//!    `Store`, whose append also deduplicates against the warm tier;
//! 5. commit the same offsets to Kafka asynchronously (advisory, see below).
//!
//! When the hot tier answers `Full` (or a tier is `Unavailable`, or the dead-letter topic does
//! not take messages), the consumer pauses its partitions, keeps polling (so the group does not
//! evict it and rebalances are served) and retries the same batch with backoff; once the batch
//! is stored it resumes. Nothing is dropped and no offset is skipped. A message
//! that is not a valid event never blocks its partition: it goes to the dead-letter topic and
//! its offset is committed like any other.
//!
//! # What "exactly once" means here
//!
//! **On one node.** The redb transaction that makes a batch's events durable also records the
//! next offset of each of its partitions. After a crash at any point, the consumer starts
//! each partition at the offset stored in redb, which is exactly past the last durable event:
//! a batch is either wholly stored with its offsets or not at all, so no event is lost and
//! none is stored twice. Should a message be delivered again anyway (an offset lookup that
//! failed, a hand-over, a producer retry), the hot tier's `(tenant, id)` deduplication makes the
//! second copy a no-op.
//!
//! **Across nodes.** Nodes in one group have separate hot tiers; each node's redb offsets are
//! authoritative for what *that node* stored, and say nothing about what the others stored.
//! Kafka's committed offset is what hands a partition from one node to the next:
//!
//! * A node commits a batch's offsets to Kafka only after the batch is durable, so the group's
//!   committed offset never runs ahead of what some node has stored.
//! * Rebalance callbacks run inside `poll`, and the consumer only polls between durable
//!   commits, so no commit is ever in flight when a partition is revoked. On revocation the
//!   consumer drops whatever it polled but did not store yet (it is not durable anywhere and
//!   the next owner will read it), then commits its durable position of each revoked
//!   partition *synchronously*, so the next owner starts exactly where this node's durable
//!   state ends. This relies on the group coordinator accepting that commit from the current
//!   generation while the rebalance is under way, as Kafka and tansu do (librdkafka's mock
//!   cluster does not).
//! * On assignment a partition starts at `max(offset in this node's redb, Kafka's committed
//!   offset)`. The redb offset wins after this node crashed between its redb commit and its
//!   Kafka commit; the committed offset wins when other nodes consumed the partition since
//!   this node last owned it (taking this node's older redb offset would store their events a
//!   second time, here). With neither, `auto.offset.reset` applies (`earliest` by default).
//!
//! **The residual risk.** A node that crashes (SIGKILL, power loss) after a redb commit but
//! before the Kafka commit of the same offsets leaves the committed offset behind its durable
//! state. If it restarts and gets its partitions back, the redb offsets win and nothing
//! repeats. If instead the group moves those partitions to another node first, that node
//! starts from the older committed offset and stores the events of that last batch (or the
//! last few, if async commits were still queued) a second time, in *its* hot tier. The
//! duplicates are bounded by what one node consumed in the moments before the crash, share
//! their `(tenant, id)` with the originals, and are therefore collapsed by any tier that
//! deduplicates by `(tenant, id)` after the hot tier; while both copies are hot, a query that
//! fans out to both nodes can count them twice. Dead-lettered messages of such a batch can
//! likewise appear twice in the dead-letter topic. Nothing is ever lost.
//!
//! # Known broker quirk
//!
//! tansu 0.6.0's in-memory engine answers a fetch from an offset inside a record batch with
//! the batches that *start* at or after that offset, silently skipping the rest of the batch
//! (Kafka returns the batch that holds the offset). Every resume mid-batch (a restart, a
//! hand-over, a pause for backpressure) then misses messages on the broker side. Against that
//! broker, produce one message per record batch (`batch.num.messages=1`); Kafka needs no such
//! setting.
//!
//! # The dead-letter topic
//!
//! Named by [`KafkaConfig::dlq_topic`] (default `<group>.dlq`) and created through the admin
//! API when it is missing (brokers may not auto-create topics). Each record keeps the original
//! key, value and headers and adds the headers named by the `HEADER_*` constants in
//! [`dead_letter`].
//!
//! # Metrics
//!
//! See [`metrics_names`]: messages consumed, dead letters, lag per partition, durable commit
//! latency, pauses and rebalances.

mod admin;
mod config;
mod consumer;
mod context;
pub mod dead_letter;
mod error;
pub mod message;
pub mod metrics_names;
mod offsets;
mod producer;
pub mod replay;
mod sink;

pub use admin::ensure_topic;
pub use config::{
    KafkaConfig, PROPERTY_ENV_PREFIX, ProducerConfig, parse_property, properties_from_env,
};
pub use consumer::{ConsumerReport, run_consumer};
pub use error::{Error, Result};
pub use metrics_names::describe_metrics;
pub use producer::{ProduceStats, produce_json};
pub use replay::{ReplayFailed, ReplayRecord, ReplaySummary, replay_to_kafka};
pub use sink::{EventSink, HotSink};
