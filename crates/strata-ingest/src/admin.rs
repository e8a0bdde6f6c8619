//! Topic administration: creating a topic when it is missing (brokers may not auto-create).

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    types::RDKafkaErrorCode,
};

use crate::{Error, Result, config::ProducerConfig, context::LogContext};

/// How long the broker may take to create a topic.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Creates `topic` with `partitions` partitions and `replication` replicas unless it exists.
/// Returns whether it was created now.
///
/// Existence is checked first, so a client allowed to write to the topic but not to create
/// topics works as long as the topic is there.
pub async fn ensure_topic(
    config: &ProducerConfig,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<bool> {
    let admin: AdminClient<LogContext> = config
        .admin_config()
        .create_with_context(LogContext::new("admin"))
        .map_err(Error::kafka("create the admin client"))?;
    let admin = std::sync::Arc::new(admin);
    let probe = std::sync::Arc::clone(&admin);
    let name = topic.to_owned();
    // A metadata request blocks until the broker answers.
    let exists = tokio::task::spawn_blocking(move || {
        probe
            .inner()
            .fetch_metadata(Some(&name), CREATE_TIMEOUT)
            .map(|md| {
                md.topics()
                    .iter()
                    .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty())
            })
    })
    .await
    .map_err(|e| Error::Thread(format!("metadata lookup failed: {e}")))?
    .map_err(Error::kafka("look up a topic"))?;
    if exists {
        return Ok(false);
    }
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .request_timeout(Some(CREATE_TIMEOUT))
        .operation_timeout(Some(CREATE_TIMEOUT));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .map_err(Error::kafka("create a topic"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => {
            tracing::info!(topic, partitions, replication, "created topic");
            Ok(true)
        }
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok(false),
        Some(Err((_, code))) => Err(Error::CreateTopic {
            topic: topic.to_owned(),
            reason: code.to_string(),
        }),
        None => Err(Error::CreateTopic {
            topic: topic.to_owned(),
            reason: "the broker returned no result".to_owned(),
        }),
    }
}
