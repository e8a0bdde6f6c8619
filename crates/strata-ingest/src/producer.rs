//! Producing events into a topic, for `strata load --kafka` and tests.

use std::time::{Duration, Instant};

use futures::{FutureExt, Stream, StreamExt, stream::FuturesUnordered};
use rdkafka::{
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};

use crate::{Error, Result, config::ProducerConfig, context::LogContext};

/// Most messages awaiting the broker's acknowledgement at once; bounds memory.
const MAX_IN_FLIGHT: usize = 50_000;

/// What a produce run achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceStats {
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Value bytes of those messages.
    pub bytes: u64,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

/// Produces each `(key, value)` of `messages` to `topic` with an idempotent producer (so
/// retries inside librdkafka never duplicate or reorder a message) and waits until every one
/// is acknowledged. Fails if any message was not delivered, after trying all of them.
///
/// Strata's events are keyed by their `key`, so one entity's events stay in one partition and
/// in order.
pub async fn produce_json<S, K>(
    config: &ProducerConfig,
    topic: &str,
    messages: S,
) -> Result<ProduceStats>
where
    S: Stream<Item = (K, Vec<u8>)>,
    K: AsRef<[u8]>,
{
    let producer: FutureProducer<LogContext> = config
        .client_config()
        .create_with_context(LogContext::new("producer"))
        .map_err(Error::kafka("create the producer"))?;
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut in_flight = FuturesUnordered::new();
    let messages = std::pin::pin!(messages);
    let mut messages = messages;
    while let Some((key, value)) = messages.next().await {
        tally.total += 1;
        let len = value.len() as u64;
        let mut record = FutureRecord::<[u8], [u8]>::to(topic)
            .key(key.as_ref())
            .payload(value.as_slice());
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    in_flight.push(delivery.map(move |r| (r, len)));
                    break;
                }
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    // librdkafka's queue is full: wait for an acknowledgement to make room.
                    match in_flight.next().await {
                        Some(done) => tally.add(done),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => {
                    tally.fail(e.to_string());
                    break;
                }
            }
        }
        while in_flight.len() >= MAX_IN_FLIGHT {
            if let Some(done) = in_flight.next().await {
                tally.add(done);
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        tally.add(done);
    }
    let elapsed = started.elapsed();
    match tally.first_error {
        Some(first) => Err(Error::Delivery {
            topic: topic.to_owned(),
            failed: tally.failed,
            total: tally.total,
            first,
        }),
        None => Ok(ProduceStats {
            delivered: tally.delivered,
            bytes: tally.bytes,
            elapsed,
        }),
    }
}

#[derive(Debug, Default)]
struct Tally {
    total: u64,
    delivered: u64,
    bytes: u64,
    failed: u64,
    first_error: Option<String>,
}

type Done = (
    std::result::Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
    u64,
);

impl Tally {
    fn add(&mut self, (result, len): Done) {
        match result {
            Ok(Ok(_)) => {
                self.delivered += 1;
                self.bytes += len;
            }
            Ok(Err((e, _))) => self.fail(e.to_string()),
            Err(_) => self.fail("the producer stopped before acknowledging".to_owned()),
        }
    }

    fn fail(&mut self, error: String) {
        self.failed += 1;
        self.first_error.get_or_insert(error);
    }
}
