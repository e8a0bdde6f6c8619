//! The dead-letter topic: where messages that are not valid events go, with the reason.
//!
//! A dead-letter record keeps the original key, value and headers byte for byte, and adds the
//! `HEADER_*` headers below. When the original value is too large for the dead-letter topic,
//! the record is sent without it and says so in [`HEADER_VALUE_OMITTED`]: a bad message must
//! never block its partition.

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use rdkafka::{
    error::KafkaError,
    message::{Header, Headers, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    types::RDKafkaErrorCode,
};
use strata_types::validate::FieldError;

use crate::{Error, Result, config::ProducerConfig, context::LogContext, metrics_names as m};

/// The rejected field (`ts`, `attrs.page`; empty when the message as a whole is bad).
pub const HEADER_ERROR_FIELD: &str = "strata-error-field";
/// Why the message was rejected, naming the limit when one applies.
pub const HEADER_ERROR_REASON: &str = "strata-error-reason";
/// The topic the message was consumed from.
pub const HEADER_SOURCE_TOPIC: &str = "strata-source-topic";
/// Its partition, in decimal.
pub const HEADER_SOURCE_PARTITION: &str = "strata-source-partition";
/// Its offset, in decimal.
pub const HEADER_SOURCE_OFFSET: &str = "strata-source-offset";
/// Present when the original value was left out because the dead-letter topic refused its
/// size; holds the original size in bytes.
pub const HEADER_VALUE_OMITTED: &str = "strata-value-omitted";

/// How long a send waits for room in librdkafka's queue before it counts as failed (and is
/// retried with the rest of the batch).
const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The headers of a dead-letter record: the original ones, then Strata's.
pub fn dead_letter_headers<H: Headers>(
    original: Option<&H>,
    error: &FieldError,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let extra = 5;
    let mut headers = OwnedHeaders::new_with_capacity(original.map_or(0, |h| h.count()) + extra);
    if let Some(original) = original {
        for h in original.iter() {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    let partition = partition.to_string();
    let offset = offset.to_string();
    for (key, value) in [
        (HEADER_ERROR_FIELD, error.field.as_str()),
        (HEADER_ERROR_REASON, error.reason.as_str()),
        (HEADER_SOURCE_TOPIC, topic),
        (HEADER_SOURCE_PARTITION, partition.as_str()),
        (HEADER_SOURCE_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    headers
}

/// A rejected message on its way to the dead-letter topic.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    /// The topic it was consumed from (for metrics).
    pub(crate) source_topic: Arc<str>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: OwnedHeaders,
    /// Set once the broker acknowledged it; a retried batch does not send it again.
    pub(crate) delivered: bool,
    /// Set when the dead-letter topic refused the value's size.
    omit_value: bool,
}

impl DeadLetter {
    pub(crate) fn new(
        source_topic: Arc<str>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: OwnedHeaders,
    ) -> Self {
        Self {
            source_topic,
            key,
            value,
            headers,
            delivered: false,
            omit_value: false,
        }
    }
}

/// The idempotent producer that writes dead letters.
pub(crate) struct DeadLetters {
    producer: FutureProducer<LogContext>,
    topic: String,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    pub(crate) fn new(config: &ProducerConfig, topic: String) -> Result<Self> {
        let producer = config
            .client_config()
            .create_with_context(LogContext::new("dead-letter producer"))
            .map_err(Error::kafka("create the dead-letter producer"))?;
        Ok(Self { producer, topic })
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends every letter not yet delivered and waits for the broker's acknowledgements.
    /// `Err` holds the first failure; letters that did get through are marked and are not
    /// sent again on the next call.
    pub(crate) async fn deliver(
        &self,
        letters: &mut [&mut DeadLetter],
    ) -> std::result::Result<(), String> {
        loop {
            let pending: Vec<usize> = (0..letters.len())
                .filter(|&i| !letters[i].delivered)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            let sends = pending.iter().map(|&i| {
                let letter = &*letters[i];
                let mut headers = letter.headers.clone();
                let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic);
                if let Some(key) = &letter.key {
                    record = record.key(key.as_slice());
                }
                match (&letter.value, letter.omit_value) {
                    (Some(value), false) => record = record.payload(value.as_slice()),
                    (Some(value), true) => {
                        headers = headers.insert(Header {
                            key: HEADER_VALUE_OMITTED,
                            value: Some(&value.len().to_string()),
                        });
                    }
                    (None, _) => {}
                }
                self.producer.send(record.headers(headers), QUEUE_TIMEOUT)
            });
            let results = join_all(sends).await;
            let mut first_error = None;
            let mut resend = false;
            for (i, result) in pending.into_iter().zip(results) {
                let letter = &mut *letters[i];
                match result {
                    Ok(_) => {
                        letter.delivered = true;
                        metrics::counter!(m::DEAD_LETTERS, "topic" => letter.source_topic.to_string())
                            .increment(1);
                    }
                    Err((e, _)) if too_large(&e) && !letter.omit_value => {
                        tracing::warn!(
                            topic = %self.topic,
                            error = %e,
                            "the dead-letter topic refused a message's size; sending it without its value"
                        );
                        letter.omit_value = true;
                        resend = true;
                    }
                    Err((e, _)) => {
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            if let Some(e) = first_error {
                return Err(e);
            }
            if !resend {
                return Ok(());
            }
        }
    }
}

fn too_large(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::MessageSizeTooLarge)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_the_original_and_say_why() {
        let original = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some("abc"),
        });
        let h = dead_letter_headers(
            Some(&original),
            &FieldError::new("ts", "is 9 s behind (max_lateness)"),
            "events",
            3,
            42,
        );
        let all: Vec<(String, Option<String>)> = h
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    h.value.map(|v| String::from_utf8_lossy(v).into_owned()),
                )
            })
            .collect();
        let get = |k: &str| {
            all.iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(all[0].0, "trace", "original headers come first");
        assert_eq!(get("trace").as_deref(), Some("abc"));
        assert_eq!(get(HEADER_ERROR_FIELD).as_deref(), Some("ts"));
        assert!(get(HEADER_ERROR_REASON).unwrap().contains("max_lateness"));
        assert_eq!(get(HEADER_SOURCE_TOPIC).as_deref(), Some("events"));
        assert_eq!(get(HEADER_SOURCE_PARTITION).as_deref(), Some("3"));
        assert_eq!(get(HEADER_SOURCE_OFFSET).as_deref(), Some("42"));
        assert_eq!(all.len(), 6);

        let none: Option<&OwnedHeaders> = None;
        let h = dead_letter_headers(none, &FieldError::new("", "bad"), "t", 0, 0);
        assert_eq!(h.count(), 5);
    }
}
