//! Metric names recorded by the tiering layer, registered once with their descriptions.
//!
//! [`describe_metrics`] also registers every counter of the layer (these, the flusher's, the
//! exporter's and replay's) at zero for each label value the code records, and every gauge
//! and unlabelled histogram, so an alert on an error counter can fire from the first scrape
//! instead of waiting for a first error to create the series. [`ALL_COUNTERS`] lists them for
//! the tests that check this.

use crate::{exporter, flusher, replay};

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

/// Every counter of the tiering layer, registered at zero by [`describe_metrics`].
pub const ALL_COUNTERS: &[&str] = &[
    INGEST_EVENTS,
    INGEST_BATCHES_REFUSED,
    QUERIES,
    QUERY_CACHE_HITS,
    QUERY_CACHE_MISSES,
    QUERY_CACHE_PARTIAL,
    QUERY_CACHE_EVICTIONS,
    LATE_EVENTS,
    flusher::FLUSH_BATCHES,
    flusher::FLUSH_ROWS,
    flusher::FLUSH_BYTES,
    flusher::FLUSH_ERRORS,
    flusher::WARM_RETENTION_ROWS,
    flusher::WARM_RETENTION_ERRORS,
    exporter::EXPORT_PARTITIONS,
    exporter::EXPORT_ROWS,
    exporter::EXPORT_ERRORS,
    exporter::COMPACTIONS,
    replay::REPLAY_EVENTS,
    replay::REPLAY_SLICES,
    replay::REPLAY_DUPLICATES,
];

/// Label values of [`INGEST_EVENTS`]' `outcome`.
const INGEST_OUTCOMES: &[&str] = &["accepted", "duplicate", "rejected"];
/// Label values of [`INGEST_BATCHES_REFUSED`]' `reason`.
const REFUSAL_REASONS: &[&str] = &["unparseable", "empty", "too_many", "full", "error"];
/// Label values of [`QUERIES`]' `tiers`: the tier sets a query can touch, hot first.
const QUERY_TIERS: &[&str] = &[
    "hot",
    "warm",
    "cold",
    "hot,warm",
    "hot,cold",
    "warm,cold",
    "hot,warm,cold",
];
/// Label values of [`QUERIES`]' `cache`.
const CACHE_STATUSES: &[&str] = &["hit", "miss", "partial"];
/// Label values of [`LATE_EVENTS`]' `tier`, then of its `outcome`.
const LATE_TIERS: &[&str] = &["warm", "cold"];
const LATE_OUTCOMES: &[&str] = &["duplicate", "rejected"];
/// Label values of the flusher's `stage` on [`flusher::FLUSH_ERRORS`].
const FLUSH_STAGES: &[&str] = &["read", "write", "release"];
/// Label values of the exporter's `stage` on [`exporter::EXPORT_ERRORS`].
const EXPORT_STAGES: &[&str] = &["export", "commit", "compact", "lock", "clean"];
/// Label values of [`replay::REPLAY_SLICES`]' `outcome`.
const SLICE_OUTCOMES: &[&str] = &["read", "split"];
/// Label values of [`replay::REPLAY_DUPLICATES`]' `cause`.
const DUPLICATE_CAUSES: &[&str] = &["release_race", "unexpected"];

/// Registers descriptions for the metrics of the tiering layer with the installed recorder,
/// and every one of its series whose labels are known up front at zero.
pub fn describe_metrics() {
    replay::describe_metrics();
    flusher::describe_metrics();
    exporter::describe_metrics();
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
    register_at_zero();
}

/// Registers every series of the layer whose label values are known, at zero.
///
/// `absolute(0)` and `increment(0.0)` only create the series: an atomic counter's
/// `absolute` keeps the larger value, and adding zero leaves a gauge as it is, so this is
/// safe to run after recording has begun (`serve` and the recorder install both call it).
fn register_at_zero() {
    for outcome in INGEST_OUTCOMES {
        metrics::counter!(INGEST_EVENTS, "outcome" => *outcome).absolute(0);
    }
    for reason in REFUSAL_REASONS {
        metrics::counter!(INGEST_BATCHES_REFUSED, "reason" => *reason).absolute(0);
    }
    for tiers in QUERY_TIERS {
        for cache in CACHE_STATUSES {
            metrics::counter!(QUERIES, "tiers" => *tiers, "cache" => *cache).absolute(0);
        }
    }
    for tier in LATE_TIERS {
        metrics::counter!(LATE_EVENTS, "tier" => *tier).absolute(0);
    }
    for outcome in LATE_OUTCOMES {
        metrics::counter!(LATE_EVENTS, "outcome" => *outcome).absolute(0);
    }
    for stage in FLUSH_STAGES {
        metrics::counter!(flusher::FLUSH_ERRORS, "stage" => *stage).absolute(0);
    }
    for stage in EXPORT_STAGES {
        metrics::counter!(exporter::EXPORT_ERRORS, "stage" => *stage).absolute(0);
    }
    for outcome in SLICE_OUTCOMES {
        metrics::counter!(replay::REPLAY_SLICES, "outcome" => *outcome).absolute(0);
    }
    for cause in DUPLICATE_CAUSES {
        metrics::counter!(replay::REPLAY_DUPLICATES, "cause" => *cause).absolute(0);
    }
    for name in [
        QUERY_CACHE_HITS,
        QUERY_CACHE_MISSES,
        QUERY_CACHE_PARTIAL,
        QUERY_CACHE_EVICTIONS,
        flusher::FLUSH_BATCHES,
        flusher::FLUSH_ROWS,
        flusher::FLUSH_BYTES,
        flusher::WARM_RETENTION_ROWS,
        flusher::WARM_RETENTION_ERRORS,
        exporter::EXPORT_PARTITIONS,
        exporter::EXPORT_ROWS,
        exporter::COMPACTIONS,
        replay::REPLAY_EVENTS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for name in [
        QUERY_CACHE_BYTES,
        flusher::FLUSH_LAG,
        flusher::FLUSH_BACKLOG,
        replay::REPLAYS_ACTIVE,
        replay::REPLAYS_WAITING,
    ] {
        metrics::gauge!(name).increment(0.0);
    }
    // An empty histogram renders its buckets at zero, so dashboards see the bucket layout
    // before the first observation.
    for name in [
        INGEST_SECONDS,
        QUERY_SECONDS,
        flusher::FLUSH_BATCH_EVENTS,
        flusher::FLUSH_SECONDS,
        exporter::EXPORT_SECONDS,
    ] {
        drop(metrics::histogram!(name));
    }
}
