//! Metric names recorded by Kafka ingest, registered once with their descriptions.

/// Messages consumed and handled, by `topic` and `outcome` (`stored` | `duplicate` |
/// `dead_letter`). `rate()` of it is consumed messages per second.
pub const CONSUMED: &str = "strata_kafka_consumed_messages_total";
/// Messages delivered to the dead-letter topic, by source `topic`.
pub const DEAD_LETTERS: &str = "strata_kafka_dead_letters_total";
/// Messages behind the partition's high watermark: high watermark − this node's position, by
/// `topic` and `partition`, for the partitions this node owns (0 once revoked).
pub const LAG: &str = "strata_kafka_consumer_lag";
/// Seconds one batch's durable commit (events and offsets in one transaction) takes.
pub const COMMIT_SECONDS: &str = "strata_kafka_commit_duration_seconds";
/// Times consumption paused because a batch could not be stored yet, by `reason`
/// (`hot_full` | `unavailable` | `dead_letter`).
pub const PAUSES: &str = "strata_kafka_pauses_total";
/// Rebalance callbacks served, by `kind` (`assign` | `revoke` | `error`).
pub const REBALANCES: &str = "strata_kafka_rebalances_total";

/// Registers descriptions for the metrics above with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        CONSUMED,
        "Kafka messages consumed, by topic and outcome (stored, duplicate, dead_letter)."
    );
    metrics::describe_counter!(
        DEAD_LETTERS,
        "Kafka messages delivered to the dead-letter topic, by source topic."
    );
    metrics::describe_gauge!(
        LAG,
        "Messages between this node's durable position and the high watermark, per partition."
    );
    metrics::describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time of one durable commit of a Kafka batch's events and offsets."
    );
    metrics::describe_counter!(PAUSES, "Times Kafka consumption paused, by reason.");
    metrics::describe_counter!(REBALANCES, "Consumer-group rebalance callbacks, by kind.");
}
