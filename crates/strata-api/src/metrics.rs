//! Request metrics of the APIs, and installing the process-wide Prometheus recorder.

use std::{sync::Mutex, time::Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::Result;

/// HTTP requests by matched route template and status code (`route`, `status`).
pub const HTTP_REQUESTS: &str = "strata_http_requests_total";
/// Seconds from receiving an HTTP request to its response head (`route`).
pub const HTTP_REQUEST_SECONDS: &str = "strata_http_request_duration_seconds";
/// gRPC calls by method and status code (`method`, `code`).
pub const GRPC_REQUESTS: &str = "strata_grpc_requests_total";
/// Seconds to answer a gRPC call (`method`).
pub const GRPC_REQUEST_SECONDS: &str = "strata_grpc_request_duration_seconds";

/// Histogram bucket bounds, seconds: from a cache hit (sub-millisecond) to a slow bulk write.
const SECONDS_BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Registers descriptions for the metrics above with the installed recorder.
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
    let handle = PrometheusBuilder::new()
        .set_buckets(&SECONDS_BUCKETS)?
        .install_recorder()?;
    describe_metrics();
    strata_tiering::describe_metrics();
    *installed = Some(handle.clone());
    Ok(handle)
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
