//! Metric names recorded by Kafka ingest, registered once with their descriptions.
//!
//! [`describe_metrics`] also registers every counter at zero for each label value the code
//! records, so alerts on pauses or dead letters can fire from the first scrape. The `topic`
//! label is open-ended (the topics come from the configuration, known only once the consumer
//! starts), so the zero series carry no `topic`: `sum`/`rate` over the family are unchanged
//! and the family exists from the start. [`LAG`] has no zero series: a lag is only
//! meaningful for a partition this node owns, and 0 for an unowned one would read as
//! "caught up". [`ALL_COUNTERS`] lists the counters for the tests that check this.

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

/// Every counter of Kafka ingest, registered at zero by [`describe_metrics`].
pub const ALL_COUNTERS: &[&str] = &[CONSUMED, DEAD_LETTERS, PAUSES, REBALANCES];

/// Label values of [`CONSUMED`]' `outcome`.
const CONSUMED_OUTCOMES: &[&str] = &["stored", "duplicate", "dead_letter"];
/// Label values of [`PAUSES`]' `reason`.
const PAUSE_REASONS: &[&str] = &["hot_full", "unavailable", "dead_letter"];
/// Label values of [`REBALANCES`]' `kind`.
const REBALANCE_KINDS: &[&str] = &["assign", "revoke", "error"];

/// Registers descriptions for the metrics above with the installed recorder, and the series
/// whose labels are known up front at zero.
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
    register_at_zero();
}

/// Registers the series of Kafka ingest whose labels are known at zero. `absolute(0)` keeps a
/// counter's larger value, so running this after recording has begun changes nothing.
fn register_at_zero() {
    for outcome in CONSUMED_OUTCOMES {
        metrics::counter!(CONSUMED, "outcome" => *outcome).absolute(0);
    }
    metrics::counter!(DEAD_LETTERS).absolute(0);
    for reason in PAUSE_REASONS {
        metrics::counter!(PAUSES, "reason" => *reason).absolute(0);
    }
    for kind in REBALANCE_KINDS {
        metrics::counter!(REBALANCES, "kind" => *kind).absolute(0);
    }
    drop(metrics::histogram!(COMMIT_SECONDS));
}
