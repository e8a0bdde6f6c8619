//! The ingest crate's error.

use rdkafka::error::KafkaError;

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What stops the consumer or a producer. Anything transient (a broker away for a while, a
/// full hot tier) is retried inside and never surfaces here.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot work.
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    /// A librdkafka call failed in a way retrying does not fix.
    #[error("Kafka {op} failed: {source}")]
    Kafka {
        /// What was being done.
        op: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The hot tier failed (other than being full, which is waited out).
    #[error(transparent)]
    Hot(#[from] strata_core::Error),
    /// A topic could not be created.
    #[error("could not create topic {topic}: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// Messages were not delivered.
    #[error("{failed} of {total} messages to {topic} were not delivered; first error: {first}")]
    Delivery {
        /// The topic.
        topic: String,
        /// Undelivered messages.
        failed: u64,
        /// Messages attempted.
        total: u64,
        /// The first delivery error.
        first: String,
    },
    /// The consumer thread could not start or ended without an answer.
    #[error("the Kafka consumer thread {0}")]
    Thread(String),
}

impl Error {
    pub(crate) fn kafka(op: &'static str) -> impl FnOnce(KafkaError) -> Self {
        move |source| Self::Kafka { op, source }
    }
}
