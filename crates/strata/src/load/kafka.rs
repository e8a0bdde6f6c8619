//! `strata load --kafka`: the generator's events produced into a Kafka topic.
//!
//! One idempotent producer sends every event as its own message (key = event key), paced by
//! `--rate` when set; the summary counts what the brokers acknowledged.

use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use tokio::time::Instant;
use tracing::info;

use super::generator::{Generator, kafka_message};
use crate::{Error, Result, load::LoadArgs};

/// What a Kafka load run achieved.
#[derive(Debug, Serialize)]
pub struct KafkaSummary {
    /// Always `kafka`.
    pub protocol: &'static str,
    /// Topic produced into.
    pub topic: String,
    /// Events generated.
    pub sent: u64,
    /// Events the brokers acknowledged.
    pub accepted: u64,
    /// Bytes of JSON acknowledged.
    pub bytes: u64,
    /// Wall time.
    pub elapsed_s: f64,
    /// Acknowledged events per second.
    pub events_per_s: f64,
    /// Seed of the generator.
    pub seed: u64,
    /// Prefix of every id of this run.
    pub run_id: String,
}

/// Produces `events` generated events into `--kafka-topic`.
pub async fn run(
    args: &LoadArgs,
    brokers: &str,
    generator: Generator,
    events: u64,
    seed: u64,
    run_id: String,
) -> Result<()> {
    let mut config = strata_ingest::ProducerConfig::new(brokers);
    config
        .properties
        .extend(args.kafka_properties.iter().cloned());
    let created = strata_ingest::ensure_topic(&config, &args.kafka_topic, args.kafka_partitions, 1)
        .await
        .map_err(|e| Error::LoadSetup(format!("cannot prepare topic {}: {e}", args.kafka_topic)))?;
    info!(topic = %args.kafka_topic, created, events, "producing");
    let batch = u64::from(args.batch_size.max(1));
    let rate = args.rate;
    let start = Instant::now();
    let generator = &generator;
    let messages = futures::stream::iter(0..events.div_ceil(batch))
        .then(move |n| async move {
            if rate > 0 {
                let due = start + Duration::from_secs_f64((n * batch) as f64 / rate as f64);
                tokio::time::sleep_until(due).await;
            }
            let size = batch.min(events - n * batch) as usize;
            let now = strata_types::time::now_micros();
            generator
                .batch(n, size, now)
                .iter()
                .map(kafka_message)
                .collect::<Vec<_>>()
        })
        .flat_map(futures::stream::iter);
    let stats = strata_ingest::produce_json(&config, &args.kafka_topic, messages)
        .await
        .map_err(|e| Error::LoadSetup(format!("producing into {}: {e}", args.kafka_topic)))?;
    let elapsed = start.elapsed().as_secs_f64();
    let summary = KafkaSummary {
        protocol: "kafka",
        topic: args.kafka_topic.clone(),
        sent: events,
        accepted: stats.delivered,
        bytes: stats.bytes,
        elapsed_s: elapsed,
        events_per_s: stats.delivered as f64 / elapsed.max(1e-9),
        seed,
        run_id,
    };
    if args.json {
        let line = serde_json::to_string(&summary)
            .map_err(|e| Error::LoadSetup(format!("cannot encode the summary: {e}")))?;
        println!("{line}");
    } else {
        println!(
            "produced {} of {} events into {} in {:.2} s: {:.0} events/s",
            summary.accepted, summary.sent, summary.topic, summary.elapsed_s, summary.events_per_s
        );
    }
    if summary.accepted != summary.sent {
        return Err(Error::LoadFailed {
            failed: summary.sent - summary.accepted,
            requests: summary.sent,
        });
    }
    Ok(())
}
