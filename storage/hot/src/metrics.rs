//! Metric names recorded by the hot tier, registered once with their descriptions.

/// Seconds one group commit takes, from taking the first request to the durable commit.
pub const COMMIT_SECONDS: &str = "strata_hot_commit_duration_seconds";
/// Events stored by one group commit.
pub const COMMIT_EVENTS: &str = "strata_hot_commit_events";
/// Unreleased events held by the hot tier.
pub const EVENTS: &str = "strata_hot_events";
/// Bytes of unreleased log on disk.
pub const DISK_BYTES: &str = "strata_hot_disk_bytes";
/// Bytes held in memory: indexes plus cached segments.
pub const MEMORY_BYTES: &str = "strata_hot_memory_bytes";
/// Window segments found in the cache.
pub const CACHE_HITS: &str = "strata_hot_cache_hits_total";
/// Window segments decoded from the log because the cache did not hold them.
pub const CACHE_MISSES: &str = "strata_hot_cache_misses_total";
/// Append requests refused because a budget was exhausted (`reason` = disk | memory).
pub const FULL_REJECTIONS: &str = "strata_hot_full_rejections_total";

/// Registers descriptions for the metrics above with the installed recorder.
pub fn describe_metrics() {
    ::metrics::describe_histogram!(
        COMMIT_SECONDS,
        ::metrics::Unit::Seconds,
        "Time of one durable group commit."
    );
    ::metrics::describe_histogram!(COMMIT_EVENTS, "Events stored by one group commit.");
    ::metrics::describe_gauge!(EVENTS, "Unreleased events in the hot tier.");
    ::metrics::describe_gauge!(
        DISK_BYTES,
        ::metrics::Unit::Bytes,
        "Bytes of unreleased log on disk."
    );
    ::metrics::describe_gauge!(
        MEMORY_BYTES,
        ::metrics::Unit::Bytes,
        "Bytes of indexes and cached segments in memory."
    );
    ::metrics::describe_counter!(CACHE_HITS, "Window segments served from the cache.");
    ::metrics::describe_counter!(CACHE_MISSES, "Window segments decoded from the log.");
    ::metrics::describe_counter!(
        FULL_REJECTIONS,
        "Append requests refused at a budget, by reason."
    );
}
