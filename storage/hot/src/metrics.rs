//! Metric names recorded by the hot tier, registered once with their descriptions.
//!
//! [`describe_metrics`] also registers every counter at zero for each label value the tier
//! records, and the gauges and histograms, so an alert on [`FULL_REJECTIONS`] can fire from
//! the first scrape. [`ALL_COUNTERS`] lists the counters for the tests that check this.

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

/// Every counter of the hot tier, registered at zero by [`describe_metrics`].
pub const ALL_COUNTERS: &[&str] = &[CACHE_HITS, CACHE_MISSES, FULL_REJECTIONS];

/// Label values of [`FULL_REJECTIONS`]' `reason`: the budgets an append can exhaust.
const FULL_REASONS: &[&str] = &["disk", "memory"];

/// Registers descriptions for the metrics above with the installed recorder, and every
/// series at zero.
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
    register_at_zero();
}

/// Registers every series of the hot tier at zero. `absolute(0)` keeps a counter's larger
/// value and adding zero leaves a gauge as it is, so running this after the tier has
/// recorded anything changes nothing.
fn register_at_zero() {
    for reason in FULL_REASONS {
        ::metrics::counter!(FULL_REJECTIONS, "reason" => *reason).absolute(0);
    }
    for name in [CACHE_HITS, CACHE_MISSES] {
        ::metrics::counter!(name).absolute(0);
    }
    for name in [EVENTS, DISK_BYTES, MEMORY_BYTES] {
        ::metrics::gauge!(name).increment(0.0);
    }
    // An empty histogram renders its buckets at zero: the layout is visible from the start.
    for name in [COMMIT_SECONDS, COMMIT_EVENTS] {
        drop(::metrics::histogram!(name));
    }
}
