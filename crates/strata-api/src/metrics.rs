//! Request metrics of the APIs, and installing the process-wide Prometheus recorder.
//!
//! Histogram buckets follow the metric's unit, read from its name: a histogram named
//! `*_events` counts events (per commit, per batch) and gets [`EVENT_COUNT_BUCKETS`], one named
//! `*_bytes` gets [`BYTE_BUCKETS`], and every other one, `*_seconds`, gets
//! [`SECONDS_BUCKETS`] (the export of a whole partition, slower by nature, gets
//! [`LONG_SECONDS_BUCKETS`]). A new histogram therefore only has to be named after its unit.
//!
//! The recorder also reports the process itself in the standard Prometheus names
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`,
//! `process_start_time_seconds`, ...) so the usual dashboards and alerts work unchanged.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::Result;

/// HTTP requests by matched route template and status code (`route`, `status`).
pub const HTTP_REQUESTS: &str = "strata_http_requests_total";
/// Seconds from receiving an HTTP request to its response head (`route`).
pub const HTTP_REQUEST_SECONDS: &str = "strata_http_request_duration_seconds";
/// gRPC calls by method and status code (`method`, `code`).
pub const GRPC_REQUESTS: &str = "strata_grpc_requests_total";
/// Seconds to answer a gRPC call (`method`).
pub const GRPC_REQUEST_SECONDS: &str = "strata_grpc_request_duration_seconds";

/// Every counter of the APIs, registered at zero by [`describe_metrics`].
pub const ALL_COUNTERS: &[&str] = &[HTTP_REQUESTS, GRPC_REQUESTS];

/// Histogram bucket bounds, seconds: from a cache hit (sub-millisecond) to a slow bulk write.
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Histogram bucket bounds, seconds, for work on a whole partition: up to ten minutes.
const LONG_SECONDS_BUCKETS: [f64; 12] = [
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Histogram bucket bounds, events: from a lone event to the largest batches a group commit
/// or a flush takes (1-2-5 steps, so a quantile is never off by more than a factor 2.5).
const EVENT_COUNT_BUCKETS: [f64; 16] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0,
    25_000.0, 50_000.0, 100_000.0,
];

/// Histogram bucket bounds, bytes: 1 KiB to 1 GiB in steps of 4.
const BYTE_BUCKETS: [f64; 11] = [
    1_024.0,
    4_096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];

/// How often the process metrics are read. A scrape sees values at most this old.
const PROCESS_METRICS_PERIOD: Duration = Duration::from_secs(5);

/// Registers descriptions for the metrics above with the installed recorder, and the
/// counters at zero.
///
/// Routes, methods and status codes are open-ended label values, so the zero series are the
/// unlabelled ones: the families exist from the first scrape (an alert's `rate()` has a
/// series to work on) and every `sum` over them is unchanged.
pub fn describe_metrics() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status.");
    metrics::describe_histogram!(
        HTTP_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time from an HTTP request to its response head, by route."
    );
    metrics::describe_counter!(GRPC_REQUESTS, "gRPC calls by method and status code.");
    metrics::describe_histogram!(
        GRPC_REQUEST_SECONDS,
        metrics::Unit::Seconds,
        "Time to answer a gRPC call, by method."
    );
    // `absolute` keeps the larger value, so this never resets a counter already counting.
    for name in ALL_COUNTERS {
        metrics::counter!(*name).absolute(0);
    }
}

static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs the process-wide Prometheus recorder (once; later calls return the same handle)
/// and describes the metrics of this crate and of the tiering layer.
///
/// The handle renders `/metrics`; [`crate::Server::run`] also runs its periodic upkeep.
pub fn install_metrics_recorder() -> Result<PrometheusHandle> {
    // A poisoned lock only means another thread panicked mid-install; the Option is still
    // either empty or a valid handle.
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    // A full-name matcher wins over a suffix matcher, and both over the default.
    let handle = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_events".into()), &EVENT_COUNT_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_bytes".into()), &BYTE_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(strata_tiering::exporter::EXPORT_SECONDS.into()),
            &LONG_SECONDS_BUCKETS,
        )?
        .install_recorder()?;
    describe_metrics();
    strata_tiering::describe_metrics();
    start_process_metrics();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Reads the process metrics once, so the first scrape has them, then every
/// [`PROCESS_METRICS_PERIOD`] on a thread of its own.
///
/// A plain thread rather than a task: the recorder is installed before (and independently
/// of) any runtime, and reading `/proc` blocks. The thread holds nothing that needs a clean
/// shutdown, so it ends with the process.
fn start_process_metrics() {
    let collector = metrics_process::Collector::default();
    collector.describe();
    collector.collect();
    let spawned = std::thread::Builder::new()
        .name("process-metrics".into())
        .spawn(move || {
            loop {
                std::thread::sleep(PROCESS_METRICS_PERIOD);
                collector.collect();
            }
        });
    if let Err(e) = spawned {
        // Only the periodic refresh is lost; the values read above stay exported.
        tracing::warn!(error = %e, "cannot start the process metrics thread");
    }
}

/// Records one finished gRPC call.
pub(crate) fn record_grpc(method: &'static str, started: Instant, code: tonic::Code) {
    metrics::counter!(GRPC_REQUESTS, "method" => method, "code" => grpc_code_name(code))
        .increment(1);
    metrics::histogram!(GRPC_REQUEST_SECONDS, "method" => method)
        .record(started.elapsed().as_secs_f64());
}

fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}
