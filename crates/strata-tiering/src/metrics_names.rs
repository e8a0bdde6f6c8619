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
/// Aggregate queries answered entirely from the result cache.
pub const QUERY_CACHE_HITS: &str = "strata_query_cache_hits_total";
/// Aggregate queries computed entirely through the tiers (nothing usable was cached).
pub const QUERY_CACHE_MISSES: &str = "strata_query_cache_misses_total";
/// Aggregate queries that took part of their closed range from the cache.
pub const QUERY_CACHE_PARTIAL: &str = "strata_query_cache_partial_total";
/// Cache entries evicted for size or age.
pub const QUERY_CACHE_EVICTIONS: &str = "strata_query_cache_evictions_total";
/// Approximate bytes the result cache holds.
pub const QUERY_CACHE_BYTES: &str = "strata_query_cache_bytes";
/// Events older than `max_lateness` by the tier that took them (`tier` = warm | cold) or
/// `outcome` = duplicate | rejected.
pub const LATE_EVENTS: &str = "strata_late_events_total";

/// Registers descriptions for the metrics above with the installed recorder.
pub fn describe_metrics() {
    crate::replay::describe_metrics();
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
    metrics::describe_counter!(
        QUERY_CACHE_HITS,
        "Queries answered entirely from the cache."
    );
    metrics::describe_counter!(
        QUERY_CACHE_MISSES,
        "Queries computed entirely through the tiers."
    );
    metrics::describe_counter!(
        QUERY_CACHE_PARTIAL,
        "Queries whose closed part came partly from the cache."
    );
    metrics::describe_counter!(
        QUERY_CACHE_EVICTIONS,
        "Cache entries evicted for size or age."
    );
    metrics::describe_gauge!(
        QUERY_CACHE_BYTES,
        metrics::Unit::Bytes,
        "Approximate bytes held by the query cache."
    );
    metrics::describe_counter!(
        LATE_EVENTS,
        "Events older than max_lateness, by the tier that took them or their outcome."
    );
}
