//! How the consumer and the producers connect, and the librdkafka settings Strata relies on.

use std::time::Duration;

use rdkafka::ClientConfig;

use crate::{Error, Result};

/// Prefix of environment variables that pass librdkafka properties through:
/// `STRATA_KAFKA_PROPERTY_SESSION_TIMEOUT_MS=10000` sets `session.timeout.ms`.
pub const PROPERTY_ENV_PREFIX: &str = "STRATA_KAFKA_PROPERTY_";

/// Configuration of [`crate::run_consumer`]. Build it with [`KafkaConfig::new`] and adjust
/// fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub brokers: String,
    /// Topics to consume (a name starting with `^` is a regular expression, as in
    /// librdkafka). Topics that do not exist yet are waited for.
    pub topics: Vec<String>,
    /// Consumer group; also names the offsets in the hot tier (`kafka:<group>`).
    pub group: String,
    /// Dead-letter topic; `None` means `<group>.dlq`.
    pub dlq_topic: Option<String>,
    /// Partitions of the dead-letter topic when Strata creates it.
    pub dlq_partitions: i32,
    /// Replication factor of the dead-letter topic when Strata creates it.
    pub dlq_replication: i32,
    /// librdkafka properties passed through to every client (consumer, dead-letter producer,
    /// admin), e.g. security settings or `session.timeout.ms`. They override Strata's
    /// defaults, except the few the exactly-once design depends on (see
    /// [`KafkaConfig::consumer_config`]).
    pub properties: Vec<(String, String)>,
    /// Most messages in one batch (one hot-tier commit).
    pub batch_max_messages: usize,
    /// Longest a batch waits for more messages after its first one.
    pub batch_max_wait: Duration,
    /// Timeout of the blocking broker calls made during a rebalance: reading the group's
    /// committed offsets, and committing on revocation.
    pub offsets_timeout: Duration,
}

impl KafkaConfig {
    /// Defaults: dead-letter topic `<group>.dlq` with 1 partition and replication 1, batches
    /// of up to 10,000 messages or 100 ms, 10 s for offset calls during rebalances.
    pub fn new(brokers: impl Into<String>, topics: Vec<String>, group: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topics,
            group: group.into(),
            dlq_topic: None,
            dlq_partitions: 1,
            dlq_replication: 1,
            properties: Vec::new(),
            batch_max_messages: 10_000,
            batch_max_wait: Duration::from_millis(100),
            offsets_timeout: Duration::from_secs(10),
        }
    }

    /// The source name the consumer's offsets are stored under in the hot tier.
    pub fn source(&self) -> String {
        format!("kafka:{}", self.group)
    }

    /// The dead-letter topic.
    pub fn dlq_topic_name(&self) -> String {
        self.dlq_topic
            .clone()
            .unwrap_or_else(|| format!("{}.dlq", self.group))
    }

    /// Checks what librdkafka would only complain about later, or not at all.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Config(what.to_owned()));
        if self.brokers.trim().is_empty() {
            return bad("no brokers given (--kafka-brokers)");
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return bad("no topics given, or an empty topic name (--kafka-topics)");
        }
        if self.group.trim().is_empty() {
            return bad("the consumer group is empty (--kafka-group)");
        }
        let dlq = self.dlq_topic_name();
        if self.topics.contains(&dlq) {
            return Err(Error::Config(format!(
                "the dead-letter topic {dlq} is also a consumed topic; a bad message would loop"
            )));
        }
        if self.batch_max_messages == 0 {
            return bad("batch_max_messages must be at least 1");
        }
        if self.dlq_partitions < 1 || self.dlq_replication < 1 {
            return bad("the dead-letter topic needs at least one partition and one replica");
        }
        Ok(())
    }

    /// The consumer's librdkafka configuration.
    ///
    /// Always set, whatever [`KafkaConfig::properties`] say: `enable.auto.commit=false` and
    /// `enable.auto.offset.store=false` (an automatic commit could run ahead of what is durable
    /// and make the next owner of a partition skip events), and `enable.partition.eof=false`.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("client.id", "strata")
            .set("auto.offset.reset", "earliest")
            // Lag per partition comes from librdkafka's statistics.
            .set("statistics.interval.ms", "5000")
            // Topics created after the consumer started are noticed at the next refresh; the
            // default of five minutes is far too slow for that.
            .set("topic.metadata.refresh.interval.ms", "5000");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        config
    }

    /// The dead-letter producer's configuration: idempotent, so retries never reorder or
    /// duplicate within a session.
    pub(crate) fn dead_letter_producer(&self) -> ProducerConfig {
        // A delivery that cannot succeed fails after 30 s (not librdkafka's 5 min) so the
        // consumer gets back to polling its group well within `max.poll.interval.ms`.
        let mut properties = vec![("message.timeout.ms".to_owned(), "30000".to_owned())];
        properties.extend(self.properties.iter().cloned());
        ProducerConfig {
            brokers: self.brokers.clone(),
            properties,
        }
    }
}

/// Where and how a producer connects ([`crate::produce_json`], the dead-letter producer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// librdkafka properties passed through (they override Strata's defaults, except
    /// `enable.idempotence=true`, which is always set).
    pub properties: Vec<(String, String)>,
}

impl ProducerConfig {
    /// A producer of `brokers` with no extra properties.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            properties: Vec::new(),
        }
    }

    /// The librdkafka configuration.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "strata")
            .set("linger.ms", "5");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config.set("enable.idempotence", "true");
        config
    }

    /// The admin client's configuration: the brokers and the passed-through properties only.
    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "strata-admin")
            // Asking whether a topic exists must not create it with the broker's defaults.
            .set("allow.auto.create.topics", "false");
        for (k, v) in &self.properties {
            config.set(k, v);
        }
        config
    }
}

/// Parses `name=value` (the `--kafka-property` flag) into a librdkafka property.
pub fn parse_property(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!(
            "expected NAME=VALUE (a librdkafka property), got `{s}`"
        )),
    }
}

/// The librdkafka properties set through the environment: each `STRATA_KAFKA_PROPERTY_<NAME>`
/// becomes `<name>` lowercased with `_` read as `.` (librdkafka's property names use dots).
/// Pass `std::env::vars()`.
pub fn properties_from_env(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix(PROPERTY_ENV_PREFIX)?;
            (!name.is_empty()).then(|| (name.to_ascii_lowercase().replace('_', "."), v))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_come_from_flags_and_env() {
        assert_eq!(
            parse_property("session.timeout.ms=6000").unwrap(),
            ("session.timeout.ms".to_owned(), "6000".to_owned())
        );
        assert_eq!(
            parse_property("sasl.password=a=b").unwrap().1,
            "a=b",
            "only the first '=' separates"
        );
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
        let env = properties_from_env([
            (
                "STRATA_KAFKA_PROPERTY_SESSION_TIMEOUT_MS".into(),
                "6000".into(),
            ),
            ("STRATA_KAFKA_BROKERS".into(), "b:9092".into()),
            ("STRATA_KAFKA_PROPERTY_".into(), "ignored".into()),
            ("PATH".into(), "/bin".into()),
        ]);
        assert_eq!(
            env,
            vec![("session.timeout.ms".to_owned(), "6000".to_owned())]
        );
    }

    #[test]
    fn exactly_once_settings_cannot_be_overridden() {
        let mut c = KafkaConfig::new("b:1", vec!["t".into()], "g");
        c.properties = vec![
            ("enable.auto.commit".into(), "true".into()),
            ("auto.offset.reset".into(), "latest".into()),
        ];
        let cc = c.consumer_config();
        assert_eq!(cc.get("enable.auto.commit"), Some("false"));
        assert_eq!(cc.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(
            cc.get("auto.offset.reset"),
            Some("latest"),
            "others pass through"
        );
        assert_eq!(cc.get("group.id"), Some("g"));
        let mut p = ProducerConfig::new("b:1");
        p.properties = vec![("enable.idempotence".into(), "false".into())];
        assert_eq!(p.client_config().get("enable.idempotence"), Some("true"));
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = KafkaConfig::new("b:1", vec!["t".into()], "g");
        assert!(ok.validate().is_ok());
        assert_eq!(ok.source(), "kafka:g");
        assert_eq!(ok.dlq_topic_name(), "g.dlq");
        let mut c = ok.clone();
        c.topics.clear();
        assert!(c.validate().unwrap_err().to_string().contains("topics"));
        let mut c = ok.clone();
        c.dlq_topic = Some("t".into());
        assert!(c.validate().unwrap_err().to_string().contains("loop"));
        let mut c = ok.clone();
        c.batch_max_messages = 0;
        assert!(c.validate().is_err());
        let mut c = ok;
        c.brokers = " ".into();
        assert!(c.validate().unwrap_err().to_string().contains("brokers"));
    }
}
