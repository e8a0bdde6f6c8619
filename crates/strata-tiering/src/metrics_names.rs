//! Metric names recorded by the tiering layer, registered once with their descriptions.

/// Events by ingest outcome (`outcome` = accepted | duplicate | rejected).
pub const INGEST_EVENTS: &str = "strata_ingest_events_total";
/// Batches refused as a whole (`reason` = unparseable | empty | too_many | full | error).
pub const INGEST_BATCHES_REFUSED: &str = "strata_ingest_batches_refused_total";
/// Seconds from receiving a decoded batch to its durable acknowledgement.
pub const INGEST_SECONDS: &str = "strata_ingest_duration_seconds";
/// Aggregate queries by tiers touched and cache status.
pub const QUERIES: &str = "strata_queries_total";
/// Seconds to answer an aggregate query.
pub const QUERY_SECONDS: &str = "strata_query_duration_seconds";

/// Registers descriptions for the metrics above with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(INGEST_EVENTS, "Events by ingest outcome.");
    metrics::describe_counter!(
        INGEST_BATCHES_REFUSED,
        "Batches refused as a whole, by reason."
    );
    metrics::describe_histogram!(
        INGEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from decoded batch to durable acknowledgement."
    );
    metrics::describe_counter!(QUERIES, "Aggregate queries by tiers and cache status.");
    metrics::describe_histogram!(
        QUERY_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer an aggregate query."
    );
}
