//! Replaying events into a Kafka topic, for reprocessing jobs (`strata replay --kafka-*`).
//!
//! Each replayed event becomes one record: key = the event's `key` (so one entity's events
//! stay in one partition, in order), value = the event's JSON exactly as `GET
//! /v1/events/{id}` returns it, headers `tenant`, `stream` and `id`. The producer is
//! idempotent with `acks=all`, so librdkafka's own retries never duplicate or reorder a
//! record within a partition.
//!
//! Records are acknowledged in the order they were sent; the summary (and, on failure, the
//! [`ReplayFailed`] error) describes exactly the acknowledged prefix: its count, event-time
//! bounds, checksum ([`strata_tiering::ReplayChecksum`], the same value `strata replay
//! --output` computes over its file) and the cursor to resume after it. A failure never goes
//! unreported: a record the broker did not take ends the run with an error. Records sent
//! after the failed one may still have reached the topic, so resuming from the reported
//! cursor delivers at least once; consumers deduplicate by the `id` header.

use std::{collections::VecDeque, pin::pin, time::Duration};

use futures::{FutureExt, Stream, StreamExt, stream::FuturesOrdered};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    types::RDKafkaErrorCode,
};
use serde::Deserialize;
use strata_tiering::{ReplayChecksum, ReplayItem, replay::split_line};
use strata_types::time::parse_param;

use crate::{config::ProducerConfig, context::LogContext};

/// Header carrying the event's tenant.
pub const HEADER_TENANT: &str = "tenant";
/// Header carrying the event's stream.
pub const HEADER_STREAM: &str = "stream";
/// Header carrying the event's id.
pub const HEADER_ID: &str = "id";

/// Most records awaiting acknowledgement at once.
const MAX_IN_FLIGHT: usize = 10_000;
/// Most value bytes awaiting acknowledgement at once (kept for the checksum).
const MAX_IN_FLIGHT_BYTES: usize = 64 * 1024 * 1024;
/// How long the final flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// One event to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRecord {
    /// Tenant (header).
    pub tenant: String,
    /// Stream (header).
    pub stream: String,
    /// Key (the record key).
    pub key: String,
    /// Id (header).
    pub id: String,
    /// Event time, epoch micros.
    pub ts: i64,
    /// The event's JSON (the record value).
    pub value: String,
    /// The replay cursor after this event.
    pub cursor: String,
}

impl ReplayRecord {
    /// The record of a replayed event.
    pub fn from_item(item: &ReplayItem) -> Self {
        let e = &item.event.event;
        Self {
            tenant: e.tenant.clone(),
            stream: e.stream.clone(),
            key: e.key.clone(),
            id: e.id.clone(),
            ts: e.ts,
            value: item.json(),
            cursor: item.cursor.encode(),
        }
    }

    /// The record of one `GET /v1/replay` line. Fails on anything else (an error line, a
    /// line that is not an event).
    pub fn from_line(line: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Head {
            tenant: String,
            stream: String,
            key: String,
            id: String,
            ts: String,
        }
        let (value, cursor) =
            split_line(line).ok_or_else(|| format!("not a replay event line: {line}"))?;
        let head: Head = serde_json::from_str(&value)
            .map_err(|e| format!("not a replay event line ({e}): {line}"))?;
        let ts = parse_param(&head.ts).map_err(|e| format!("bad ts in a replay line: {e}"))?;
        Ok(Self {
            tenant: head.tenant,
            stream: head.stream,
            key: head.key,
            id: head.id,
            ts,
            value,
            cursor: cursor.encode(),
        })
    }
}

/// What has been acknowledged so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Records acknowledged.
    pub events: u64,
    /// Event time of the first one.
    pub first_ts: Option<i64>,
    /// Event time of the last one.
    pub last_ts: Option<i64>,
    /// SHA-256 (hex) over their values in order, each followed by a newline.
    pub checksum: String,
    /// The cursor after the last one: resume there.
    pub cursor: Option<String>,
}

/// A replay into Kafka that stopped early: why, and what was acknowledged before.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the replay to Kafka stopped after {} acknowledged events: {reason}", delivered.events)]
pub struct ReplayFailed {
    /// What went wrong.
    pub reason: String,
    /// The acknowledged prefix; resume from its cursor.
    pub delivered: ReplaySummary,
}

/// Sent records in order, `(ts, value, cursor)`, matched one to one with the pending
/// deliveries; values are kept for the checksum until acknowledged.
#[derive(Default)]
struct Sent {
    records: VecDeque<(i64, String, String)>,
    bytes: usize,
}

impl Sent {
    fn push(&mut self, ts: i64, value: String, cursor: String) {
        self.bytes += value.len();
        self.records.push_back((ts, value, cursor));
    }

    fn pop(&mut self) -> Option<(i64, String, String)> {
        let r = self.records.pop_front()?;
        self.bytes -= r.1.len();
        Some(r)
    }
}

struct Tally {
    checksum: ReplayChecksum,
    summary: ReplaySummary,
}

impl Tally {
    fn ack(&mut self, ts: i64, value: &[u8], cursor: String) {
        self.checksum.update(value);
        self.summary.events += 1;
        self.summary.first_ts.get_or_insert(ts);
        self.summary.last_ts = Some(ts);
        self.summary.cursor = Some(cursor);
    }

    fn summary(&self) -> ReplaySummary {
        ReplaySummary {
            checksum: self.checksum.hex(),
            ..self.summary.clone()
        }
    }

    fn failed(&self, reason: impl Into<String>) -> ReplayFailed {
        ReplayFailed {
            reason: reason.into(),
            delivered: self.summary(),
        }
    }
}

type Delivery = futures::future::Map<
    rdkafka::producer::DeliveryFuture,
    fn(
        Result<
            rdkafka::producer::future_producer::OwnedDeliveryResult,
            futures::channel::oneshot::Canceled,
        >,
    ) -> Result<(), String>,
>;

fn delivery_result(
    r: Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
) -> Result<(), String> {
    match r {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(e.to_string()),
        Err(_) => Err("the producer stopped before acknowledging".into()),
    }
}

/// Produces every record of `records` to `topic` in order (see the module docs), calling
/// `progress` with the acknowledged prefix after each acknowledgement, flushes, and returns
/// the summary. A source error (`Err` item) or a record the broker refused ends the run
/// with [`ReplayFailed`], after every record sent before it was acknowledged or failed.
pub async fn replay_to_kafka<S, E>(
    config: &ProducerConfig,
    topic: &str,
    records: S,
    progress: &(dyn Fn(&ReplaySummary) + Send + Sync),
) -> Result<ReplaySummary, ReplayFailed>
where
    S: Stream<Item = Result<ReplayRecord, E>>,
    E: std::fmt::Display,
{
    let mut client = config.client_config();
    client.set("acks", "all");
    let producer: FutureProducer<LogContext> = client
        .create_with_context(LogContext::new("replay producer"))
        .map_err(|e| ReplayFailed {
            reason: format!("cannot create the producer: {e}"),
            delivered: ReplaySummary {
                checksum: ReplayChecksum::new().hex(),
                ..ReplaySummary::default()
            },
        })?;
    let mut tally = Tally {
        checksum: ReplayChecksum::new(),
        summary: ReplaySummary::default(),
    };
    let mut sent = Sent::default();
    let mut in_flight: FuturesOrdered<Delivery> = FuturesOrdered::new();
    let mut records = pin!(records);
    let mut source_error = None;

    // Takes the oldest acknowledgement into the tally; `Err` once a record failed.
    macro_rules! settle {
        ($done:expr) => {{
            let result: Result<(), String> = $done;
            let (ts, value, cursor) = sent
                .pop()
                .ok_or_else(|| tally.failed("acknowledgements out of step with sends"))?;
            match result {
                Ok(()) => {
                    tally.ack(ts, value.as_bytes(), cursor);
                    progress(&tally.summary);
                }
                Err(e) => {
                    return Err(
                        tally.failed(format!("a record for {topic} was not delivered: {e}"))
                    );
                }
            }
        }};
    }

    loop {
        if in_flight.len() >= MAX_IN_FLIGHT || sent.bytes >= MAX_IN_FLIGHT_BYTES {
            if let Some(done) = in_flight.next().await {
                settle!(done);
            }
            continue;
        }
        let next = tokio::select! {
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                settle!(done);
                continue;
            }
            next = records.next() => next,
        };
        let record = match next {
            None => break,
            Some(Err(e)) => {
                source_error = Some(format!("the replay source failed: {e}"));
                break;
            }
            Some(Ok(record)) => record,
        };
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_TENANT,
                value: Some(record.tenant.as_str()),
            })
            .insert(Header {
                key: HEADER_STREAM,
                value: Some(record.stream.as_str()),
            })
            .insert(Header {
                key: HEADER_ID,
                value: Some(record.id.as_str()),
            });
        let mut out = FutureRecord::<str, str>::to(topic)
            .key(&record.key)
            .payload(&record.value)
            .headers(headers);
        loop {
            match producer.send_result(out) {
                Ok(delivery) => {
                    in_flight.push_back(delivery.map(delivery_result as _));
                    break;
                }
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    out = back;
                    // librdkafka's queue is full: make room by settling the oldest send.
                    match in_flight.next().await {
                        Some(done) => settle!(done),
                        None => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
                Err((e, _)) => {
                    return Err(tally.failed(format!("cannot send to {topic}: {e}")));
                }
            }
        }
        sent.push(record.ts, record.value, record.cursor);
    }
    while let Some(done) = in_flight.next().await {
        settle!(done);
    }
    if let Some(reason) = source_error {
        return Err(tally.failed(reason));
    }
    // Every delivery is settled, so this returns at once; it is the documented end of a
    // producer's life and surfaces anything librdkafka still holds.
    let flushed = tokio::task::spawn_blocking(move || producer.flush(FLUSH_TIMEOUT))
        .await
        .map_err(|e| tally.failed(format!("the flush task failed: {e}")))?;
    flushed.map_err(|e| tally.failed(format!("flushing the producer failed: {e}")))?;
    Ok(tally.summary())
}
