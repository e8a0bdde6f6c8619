//! Errors: this crate's own [`Error`], and [`ApiError`], the one place where every failure a
//! request can meet becomes an HTTP status, a gRPC code and a stable error body.
//!
//! Every variant of [`strata_tiering::Error`] and [`strata_core::Error`] is mapped by name,
//! with no catch-all, so a new kind of failure does not compile until someone decides what
//! clients see for it. Nothing here looks at an operation name or a message text.
//!
//! Server-side failures (a tier that failed or is unreachable) are logged here, once, with
//! their full context; clients only ever see the stable `code`, a message written for them,
//! and the offending `field`.

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json,
    extract::rejection::{BytesRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use strata_core::Tier;
use strata_types::{QueryError, Rejection, decode::BatchError, validate::FieldError};

pub use crate::http::{ErrorBody, RejectionBody};

/// Boxed error from a server library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the API servers from starting or serving.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot bind the {api} listener on {addr}: {source}")]
    Bind {
        /// `REST` or `gRPC`.
        api: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("the {api} server failed: {source}")]
    Serve {
        /// `REST` or `gRPC`.
        api: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// The Prometheus recorder could not be built or installed.
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(#[from] metrics_exporter_prometheus::BuildError),
    /// The gRPC reflection service rejected the descriptor sets.
    #[error("cannot build the gRPC reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// The kinds of request failure; each has a stable `code`, an HTTP status and a gRPC code.
///
/// The codes are part of the API contract (clients match on them, the OpenAPI document
/// lists them): a kind may be added, but a code never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The body is not JSON of the expected framing, or could not be read.
    InvalidBody,
    /// The batch has no events.
    EmptyBatch,
    /// The batch has more events than `max_batch_events`.
    TooManyEvents,
    /// The body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// The `Content-Type` is neither JSON nor NDJSON.
    UnsupportedMediaType,
    /// Every event of the batch was rejected; nothing was stored.
    InvalidEvents,
    /// A required parameter is missing.
    MissingParameter,
    /// A parameter is present but wrong.
    InvalidParameter,
    /// The query string as a whole cannot be parsed.
    InvalidQueryString,
    /// The aggregate answer would hold more buckets × groups than the node's limit; a
    /// narrower range, a wider bucket or less grouping fits.
    TooManyBuckets,
    /// The requested event (or other object) does not exist for this tenant.
    NotFound,
    /// No route has this path.
    RouteNotFound,
    /// The archive partition does not exist for this tenant.
    PartitionNotFound,
    /// The node has no cold tier, so there is no archive to read.
    ColdTierNotConfigured,
    /// A tier of this node cannot do what the request asks at all; retrying will not help.
    Unsupported,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// A tier is at its budget; retry later.
    Full,
    /// A tier cannot be reached now, or lost a race with a concurrent update; retry later.
    Unavailable,
    /// The warm tier (PostgreSQL or the embedded warm store) cannot be reached now; retry
    /// later. Its own code, so operators and clients tell a database outage from the rest.
    WarmUnavailable,
    /// The node is shutting down.
    ShuttingDown,
    /// The node has too many requests in flight.
    Overloaded,
    /// The request took longer than the configured timeout.
    Timeout,
    /// The node is not ready to serve.
    NotReady,
    /// Something failed on the server; details are in its log.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 24] = [
        Self::InvalidBody,
        Self::EmptyBatch,
        Self::TooManyEvents,
        Self::BodyTooLarge,
        Self::UnsupportedMediaType,
        Self::InvalidEvents,
        Self::MissingParameter,
        Self::InvalidParameter,
        Self::InvalidQueryString,
        Self::TooManyBuckets,
        Self::NotFound,
        Self::RouteNotFound,
        Self::PartitionNotFound,
        Self::ColdTierNotConfigured,
        Self::Unsupported,
        Self::MethodNotAllowed,
        Self::Full,
        Self::Unavailable,
        Self::WarmUnavailable,
        Self::ShuttingDown,
        Self::Overloaded,
        Self::Timeout,
        Self::NotReady,
        Self::Internal,
    ];

    /// The stable, documented error code clients match on.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidBody => "invalid_body",
            Self::EmptyBatch => "empty_batch",
            Self::TooManyEvents => "too_many_events",
            Self::BodyTooLarge => "body_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::InvalidEvents => "invalid_events",
            Self::MissingParameter => "missing_parameter",
            Self::InvalidParameter => "invalid_parameter",
            Self::InvalidQueryString => "invalid_query_string",
            Self::TooManyBuckets => "too_many_buckets",
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::PartitionNotFound => "partition_not_found",
            Self::ColdTierNotConfigured => "cold_tier_not_configured",
            Self::Unsupported => "unsupported",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Full => "full",
            Self::Unavailable => "unavailable",
            Self::WarmUnavailable => "warm_unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
        }
    }

    /// The kind whose [`code`](Self::code) is `code`, for clients decoding an
    /// [`ErrorBody`]; `None` for a code this version does not know.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The HTTP status of this kind.
    pub fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidBody
            | Self::EmptyBatch
            | Self::InvalidEvents
            | Self::MissingParameter
            | Self::InvalidParameter
            | Self::InvalidQueryString => StatusCode::BAD_REQUEST,
            Self::TooManyBuckets => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyEvents | Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound | Self::RouteNotFound | Self::PartitionNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            // Not retryable on this node: it was started without `--cold`, or its backend
            // lacks the operation.
            Self::ColdTierNotConfigured | Self::Unsupported => StatusCode::NOT_IMPLEMENTED,
            Self::Full
            | Self::Unavailable
            | Self::WarmUnavailable
            | Self::ShuttingDown
            | Self::Overloaded
            | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The gRPC code of this kind.
    pub fn grpc_code(self) -> tonic::Code {
        match self {
            Self::InvalidBody
            | Self::EmptyBatch
            | Self::TooManyEvents
            | Self::BodyTooLarge
            | Self::UnsupportedMediaType
            | Self::InvalidEvents
            | Self::MissingParameter
            | Self::InvalidParameter
            | Self::InvalidQueryString
            | Self::TooManyBuckets => tonic::Code::InvalidArgument,
            Self::NotFound | Self::RouteNotFound | Self::PartitionNotFound => tonic::Code::NotFound,
            Self::MethodNotAllowed | Self::Unsupported => tonic::Code::Unimplemented,
            Self::ColdTierNotConfigured => tonic::Code::FailedPrecondition,
            Self::Full
            | Self::Unavailable
            | Self::WarmUnavailable
            | Self::ShuttingDown
            | Self::NotReady => tonic::Code::Unavailable,
            Self::Overloaded => tonic::Code::ResourceExhausted,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }
}

/// A request failure, ready to become an HTTP response or a gRPC status.
#[derive(Debug, Clone)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    retry_after: Option<Duration>,
    rejected: Vec<Rejection>,
}

/// What a retry-able failure suggests waiting when the tier gives no hint.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

impl ApiError {
    /// An error of `kind` with a client-facing message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
            rejected: Vec::new(),
        }
    }

    /// Names the offending field or parameter.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Suggests when to retry (`Retry-After` header, `retry-after` metadata).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// A required parameter is absent.
    pub fn missing(field: &str) -> Self {
        Self::new(ErrorKind::MissingParameter, format!("{field}: is required")).with_field(field)
    }

    /// A parameter is wrong.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::InvalidParameter, format!("{field}: {reason}")).with_field(field)
    }

    /// The body exceeds `max_body_bytes`.
    pub fn body_too_large(max_body_bytes: usize) -> Self {
        Self::new(
            ErrorKind::BodyTooLarge,
            format!("the request body is larger than {max_body_bytes} bytes (max_body_bytes)"),
        )
    }

    /// Every event of a batch was rejected, so nothing was stored.
    pub fn invalid_events(rejected: Vec<Rejection>) -> Self {
        let message = match rejected.first() {
            Some(first) if first.field.is_empty() => format!(
                "every event was rejected, nothing stored; event {}: {}",
                first.index, first.reason
            ),
            Some(first) => format!(
                "every event was rejected, nothing stored; event {}: {}: {}",
                first.index, first.field, first.reason
            ),
            None => "every event was rejected, nothing stored".to_owned(),
        };
        let field = rejected
            .first()
            .map(|r| r.field.clone())
            .filter(|f| !f.is_empty());
        Self {
            kind: ErrorKind::InvalidEvents,
            message,
            field,
            retry_after: None,
            rejected,
        }
    }

    /// A route that does not exist.
    pub fn route_not_found(path: &str) -> Self {
        Self::new(ErrorKind::RouteNotFound, format!("no route for {path}"))
    }

    /// Too many requests in flight.
    pub fn overloaded() -> Self {
        Self::new(
            ErrorKind::Overloaded,
            "too many requests in flight; retry shortly",
        )
        .with_retry_after(DEFAULT_RETRY_AFTER)
    }

    /// The request ran past the configured timeout.
    pub fn timeout(limit: Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!(
                "the request took longer than {}; it may or may not have taken effect (retry with the same event ids is safe)",
                humantime::format_duration(limit)
            ),
        )
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The offending field, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The suggested wait before retrying, if the failure is worth retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The JSON body clients receive.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.kind.code().to_owned(),
            message: self.message.clone(),
            field: self.field.clone(),
            rejected: self
                .rejected
                .iter()
                .cloned()
                .map(RejectionBody::from)
                .collect(),
        }
    }

    fn retry_after_secs(&self) -> Option<u64> {
        // Retry-After takes whole seconds; rounding up keeps clients from retrying too early.
        self.retry_after
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
            .map(|s| s.max(1))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<strata_tiering::Error> for ApiError {
    fn from(e: strata_tiering::Error) -> Self {
        use strata_tiering::Error as E;
        match e {
            E::Batch(b) => b.into(),
            E::Rejected(rejected) => Self::invalid_events(rejected),
            E::Query(q) => q.into(),
            // A configuration fact, not an outage: it must not invite retries.
            E::NoColdTier => Self::new(
                ErrorKind::ColdTierNotConfigured,
                "this node has no cold tier (start it with --cold)",
            ),
            // The key is the client's own tenant, stream and day.
            E::PartitionNotFound(partition) => Self::new(
                ErrorKind::PartitionNotFound,
                format!("partition {partition} is not in the archive"),
            ),
            // The limit is configuration the client may know; nothing internal in it.
            E::TooManyCells { limit } => Self::new(
                ErrorKind::TooManyBuckets,
                format!(
                    "the answer would hold more than {limit} buckets (counting each group of a bucket); narrow the range, widen the bucket or group by less"
                ),
            ),
            E::Tier(t) => t.into(),
        }
    }
}

impl From<BatchError> for ApiError {
    fn from(e: BatchError) -> Self {
        let kind = match e {
            BatchError::Unparseable { .. } => ErrorKind::InvalidBody,
            BatchError::Empty => ErrorKind::EmptyBatch,
            BatchError::TooManyEvents { .. } => ErrorKind::TooManyEvents,
        };
        Self::new(kind, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        Self::invalid(&e.field, &e.reason)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self::invalid(&e.field, &e.reason)
    }
}

impl From<strata_core::Error> for ApiError {
    fn from(e: strata_core::Error) -> Self {
        use strata_core::Error as E;
        match e {
            E::Full {
                tier,
                reason,
                retry_after,
            } => {
                tracing::warn!(%tier, %reason, ?retry_after, "refusing a write: tier full");
                Self::new(
                    ErrorKind::Full,
                    format!("the {tier} tier is full; nothing of this request was stored"),
                )
                .with_retry_after(retry_after)
            }
            E::Unavailable { tier, op, message } => {
                tracing::error!(%tier, op, %message, "tier unavailable");
                let kind = match tier {
                    Tier::Warm => ErrorKind::WarmUnavailable,
                    Tier::Hot | Tier::Cold => ErrorKind::Unavailable,
                };
                Self::new(kind, format!("the {tier} tier is unavailable; retry later"))
                    .with_retry_after(DEFAULT_RETRY_AFTER)
            }
            // The tier retries a lost compare-and-set itself; one that reaches a client means
            // those retries ran out under contention, which passes.
            E::Conflict { tier, op, message } => {
                tracing::warn!(%tier, op, %message, "concurrent updates outlasted the retries");
                Self::new(
                    ErrorKind::Unavailable,
                    format!("the {tier} tier is busy with concurrent updates; retry later"),
                )
                .with_retry_after(DEFAULT_RETRY_AFTER)
            }
            E::Unsupported { tier, op } => {
                tracing::error!(%tier, op, "operation not supported by the tier's backend");
                Self::new(
                    ErrorKind::Unsupported,
                    format!("the {tier} tier of this node does not support this operation"),
                )
            }
            // `what` may name storage objects, so it stays in the log.
            E::NotFound { tier, what } => {
                tracing::info!(%tier, %what, "not found in a tier");
                Self::new(
                    ErrorKind::NotFound,
                    format!("the {tier} tier has no such data"),
                )
            }
            E::ShuttingDown { tier } => {
                tracing::info!(%tier, "refusing a request: shutting down");
                Self::new(ErrorKind::ShuttingDown, "the node is shutting down")
                    .with_retry_after(DEFAULT_RETRY_AFTER)
            }
            e @ (E::Storage { .. } | E::Corrupt { .. }) => {
                tracing::error!(error = %e, "request failed in a tier");
                Self::new(
                    ErrorKind::Internal,
                    "internal error; the server log has the details",
                )
            }
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(ErrorKind::InvalidQueryString, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(ErrorKind::InvalidParameter, r.body_text())
    }
}

impl ApiError {
    /// Maps a failure to read the body; `max_body_bytes` names the limit in the message.
    pub fn from_body_rejection(r: BytesRejection, max_body_bytes: usize) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Self::body_too_large(max_body_bytes)
        } else {
            Self::new(
                ErrorKind::InvalidBody,
                format!("cannot read the request body: {}", r.body_text()),
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.kind.http_status().is_server_error() {
            tracing::debug!(code = self.kind.code(), message = %self.message, "request failed");
        }
        let retry_after = self.retry_after_secs();
        let mut response = (self.kind.http_status(), Json(self.body())).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Metadata key holding the stable error code of a failed gRPC call.
pub const GRPC_CODE_METADATA: &str = "strata-error-code";
/// Metadata key holding the offending field of a failed gRPC call.
pub const GRPC_FIELD_METADATA: &str = "strata-error-field";
/// Metadata key holding the suggested wait, in seconds, before retrying.
pub const GRPC_RETRY_AFTER_METADATA: &str = "retry-after";

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(
            GRPC_CODE_METADATA,
            tonic::metadata::MetadataValue::from_static(e.kind.code()),
        );
        // Field names come from client data (attribute names) and may not be valid ASCII
        // metadata; the message names the field anyway.
        if let Some(field) = e.field.as_deref()
            && let Ok(value) = field.parse()
        {
            metadata.insert(GRPC_FIELD_METADATA, value);
        }
        if let Some(secs) = e.retry_after_secs() {
            metadata.insert(GRPC_RETRY_AFTER_METADATA, secs.into());
        }
        tonic::Status::with_metadata(e.kind.grpc_code(), e.message, metadata)
    }
}

#[cfg(test)]
mod tests;
