//! Errors: this crate's own [`Error`], and [`ApiError`], the one place where every failure a
//! request can meet becomes an HTTP status, a gRPC code and a stable error body.
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
use serde::Serialize;
use strata_types::{QueryError, Rejection, decode::BatchError, validate::FieldError};
use utoipa::ToSchema;

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
    /// The requested event does not exist for this tenant.
    NotFound,
    /// No route has this path.
    RouteNotFound,
    /// The archive partition does not exist for this tenant.
    PartitionNotFound,
    /// The node has no cold tier, so there is no archive to read.
    ColdTierNotConfigured,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// A tier is at its budget; retry later.
    Full,
    /// A tier cannot be reached now; retry later.
    Unavailable,
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
            Self::NotFound => "not_found",
            Self::RouteNotFound => "route_not_found",
            Self::PartitionNotFound => "partition_not_found",
            Self::ColdTierNotConfigured => "cold_tier_not_configured",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Full => "full",
            Self::Unavailable => "unavailable",
            Self::ShuttingDown => "shutting_down",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::NotReady => "not_ready",
            Self::Internal => "internal",
        }
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
            Self::TooManyEvents | Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::NotFound | Self::RouteNotFound | Self::PartitionNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            // Not retryable on this node: it was started without `--cold`.
            Self::ColdTierNotConfigured => StatusCode::NOT_IMPLEMENTED,
            Self::Full
            | Self::Unavailable
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
            | Self::InvalidQueryString => tonic::Code::InvalidArgument,
            Self::NotFound | Self::RouteNotFound | Self::PartitionNotFound => tonic::Code::NotFound,
            Self::MethodNotAllowed => tonic::Code::Unimplemented,
            Self::ColdTierNotConfigured => tonic::Code::FailedPrecondition,
            Self::Full | Self::Unavailable | Self::ShuttingDown | Self::NotReady => {
                tonic::Code::Unavailable
            }
            Self::Overloaded => tonic::Code::ResourceExhausted,
            Self::Timeout => tonic::Code::DeadlineExceeded,
            Self::Internal => tonic::Code::Internal,
        }
    }
}

/// The JSON body of every REST error.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"code": "invalid_parameter", "message": "bucket: must be a whole number of seconds from 1s to 1d", "field": "bucket"}))]
pub struct ErrorBody {
    /// Stable snake_case error code (`invalid_parameter`, `not_found`, `full`, ...).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The offending field or parameter, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `invalid_events`: why each event was rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<RejectionBody>)]
    pub rejected: Vec<Rejection>,
}

/// Why one event of a batch was not stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RejectionBody {
    /// Position of the event in the batch (array index or NDJSON line from 0, blank lines
    /// not counted).
    pub index: usize,
    /// The offending field (`ts`, `attrs.page`, ...); empty when the event as a whole is bad.
    pub field: String,
    /// What is wrong and which limit applies.
    pub reason: String,
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

    /// The JSON body clients receive.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.kind.code(),
            message: self.message.clone(),
            field: self.field.clone(),
            rejected: self.rejected.clone(),
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
        match e {
            strata_tiering::Error::Batch(b) => b.into(),
            strata_tiering::Error::Query(q) => q.into(),
            strata_tiering::Error::Tier(t) => t.into(),
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
            // The store's answer to an archive call on a node started without a cold tier:
            // a configuration fact, not an outage, so it must not invite retries.
            E::Unavailable {
                tier: strata_core::Tier::Cold,
                op: "archive",
                ..
            } => Self::new(
                ErrorKind::ColdTierNotConfigured,
                "this node has no cold tier (start it with --cold)",
            ),
            E::Unavailable { tier, op, message } => {
                tracing::error!(%tier, op, %message, "tier unavailable");
                Self::new(
                    ErrorKind::Unavailable,
                    format!("the {tier} tier is unavailable; retry later"),
                )
                .with_retry_after(DEFAULT_RETRY_AFTER)
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
mod tests {
    use super::*;

    #[test]
    fn tier_errors_map_to_statuses_without_leaking_internals() {
        let full: ApiError = strata_core::Error::Full {
            tier: strata_core::Tier::Hot,
            reason: "disk budget of 10 GiB at /secret/path".into(),
            retry_after: Duration::from_millis(1500),
        }
        .into();
        assert_eq!(full.kind().http_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!full.message().contains("/secret/path"));
        assert_eq!(full.retry_after_secs(), Some(2));
        let status = tonic::Status::from(full);
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");

        let storage: ApiError = strata_core::Error::storage(
            strata_core::Tier::Hot,
            "append",
            std::io::Error::other("disk /dev/sda1 failed"),
        )
        .into();
        assert_eq!(storage.kind(), ErrorKind::Internal);
        assert!(!storage.message().contains("sda1"));

        let no_cold: ApiError = strata_core::Error::Unavailable {
            tier: strata_core::Tier::Cold,
            op: "archive",
            message: "no cold tier is configured".into(),
        }
        .into();
        assert_eq!(no_cold.kind().http_status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(no_cold.retry_after_secs(), None);
        assert_eq!(
            tonic::Status::from(no_cold).code(),
            tonic::Code::FailedPrecondition
        );
        let cold_down: ApiError = strata_core::Error::Unavailable {
            tier: strata_core::Tier::Cold,
            op: "read",
            message: "connection refused".into(),
        }
        .into();
        assert_eq!(cold_down.kind(), ErrorKind::Unavailable);
    }

    #[test]
    fn field_errors_name_the_field_in_both_protocols() {
        let e: ApiError = QueryError {
            field: "bucket".into(),
            reason: "must be a whole number of seconds".into(),
        }
        .into();
        assert_eq!(e.field(), Some("bucket"));
        let status = tonic::Status::from(e);
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("bucket: "));
        assert_eq!(
            status.metadata().get(GRPC_FIELD_METADATA).unwrap(),
            "bucket"
        );
        assert_eq!(
            status.metadata().get(GRPC_CODE_METADATA).unwrap(),
            "invalid_parameter"
        );
    }

    #[test]
    fn invalid_events_names_the_first_field() {
        let e = ApiError::invalid_events(vec![Rejection {
            index: 0,
            field: "ts".into(),
            reason: "is required".into(),
        }]);
        assert_eq!(e.field(), Some("ts"));
        assert_eq!(e.body().rejected.len(), 1);
        assert!(e.message().contains("ts: is required"), "{}", e.message());
    }
}
