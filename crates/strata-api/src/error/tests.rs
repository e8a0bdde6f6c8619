//! The mapping table: every error variant a request can meet, what clients see for it, and
//! that nothing internal reaches them.

use std::collections::BTreeSet;

use axum::body::to_bytes;
use strata_core::{Tier, cold::PartitionKey};
use tonic::Code;

use super::*;

/// Every variant of both error enums, by name. [`variant`] fails to compile when a variant
/// is added; add it there, here, and a row to [`table`].
const VARIANTS: &[&str] = &[
    "Batch::Unparseable",
    "Batch::Empty",
    "Batch::TooManyEvents",
    "Rejected",
    "Query",
    "NoColdTier",
    "PartitionNotFound",
    "TooManyCells",
    "Tier::Full",
    "Tier::Unavailable",
    "Tier::Storage",
    "Tier::Corrupt",
    "Tier::Conflict",
    "Tier::Unsupported",
    "Tier::NotFound",
    "Tier::ShuttingDown",
];

fn variant(e: &strata_tiering::Error) -> &'static str {
    use strata_core::Error as C;
    use strata_tiering::Error as E;
    match e {
        E::Batch(BatchError::Unparseable { .. }) => "Batch::Unparseable",
        E::Batch(BatchError::Empty) => "Batch::Empty",
        E::Batch(BatchError::TooManyEvents { .. }) => "Batch::TooManyEvents",
        E::Rejected(_) => "Rejected",
        E::Query(_) => "Query",
        E::NoColdTier => "NoColdTier",
        E::PartitionNotFound(_) => "PartitionNotFound",
        E::TooManyCells { .. } => "TooManyCells",
        E::Tier(C::Full { .. }) => "Tier::Full",
        E::Tier(C::Unavailable { .. }) => "Tier::Unavailable",
        E::Tier(C::Storage { .. }) => "Tier::Storage",
        E::Tier(C::Corrupt { .. }) => "Tier::Corrupt",
        E::Tier(C::Conflict { .. }) => "Tier::Conflict",
        E::Tier(C::Unsupported { .. }) => "Tier::Unsupported",
        E::Tier(C::NotFound { .. }) => "Tier::NotFound",
        E::Tier(C::ShuttingDown { .. }) => "Tier::ShuttingDown",
    }
}

/// What a client must see for one error.
struct Row {
    error: strata_tiering::Error,
    status: StatusCode,
    code: &'static str,
    grpc: Code,
    /// `Retry-After` seconds, when the answer invites a retry.
    retry_after: Option<u64>,
}

fn row(
    error: impl Into<strata_tiering::Error>,
    status: StatusCode,
    code: &'static str,
    grpc: Code,
    retry_after: Option<u64>,
) -> Row {
    Row {
        error: error.into(),
        status,
        code,
        grpc,
        retry_after,
    }
}

/// Internal details planted in the errors: every one contains `secret`, none may reach a
/// client.
const OP: &str = "secret_op_commit_manifest";
const SQL: &str = "SELECT secret FROM warm_events WHERE tenant = $1";
const PATH: &str = "/var/lib/strata/secret/hot.redb";

fn table() -> Vec<Row> {
    use strata_core::Error as C;
    let unavailable = |tier| C::Unavailable {
        tier,
        op: OP,
        message: format!("connection refused running {SQL}"),
    };
    vec![
        row(
            BatchError::Unparseable {
                expected: "a JSON array of events",
                reason: "expected `,` at line 1 column 9".into(),
            },
            StatusCode::BAD_REQUEST,
            "invalid_body",
            Code::InvalidArgument,
            None,
        ),
        row(
            BatchError::Empty,
            StatusCode::BAD_REQUEST,
            "empty_batch",
            Code::InvalidArgument,
            None,
        ),
        row(
            BatchError::TooManyEvents { count: 11, max: 10 },
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            Code::InvalidArgument,
            None,
        ),
        row(
            strata_tiering::Error::Rejected(vec![Rejection {
                index: 0,
                field: "ts".into(),
                reason: "is required".into(),
            }]),
            StatusCode::BAD_REQUEST,
            "invalid_events",
            Code::InvalidArgument,
            None,
        ),
        row(
            QueryError {
                field: "bucket".into(),
                reason: "must be a whole number of seconds".into(),
            },
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            Code::InvalidArgument,
            None,
        ),
        row(
            strata_tiering::Error::NoColdTier,
            StatusCode::NOT_IMPLEMENTED,
            "cold_tier_not_configured",
            Code::FailedPrecondition,
            None,
        ),
        row(
            strata_tiering::Error::PartitionNotFound(PartitionKey {
                tenant: "acme".into(),
                stream: "click".into(),
                day: 0,
            }),
            StatusCode::NOT_FOUND,
            "partition_not_found",
            Code::NotFound,
            None,
        ),
        row(
            strata_tiering::Error::TooManyCells { limit: 100_000 },
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_buckets",
            Code::InvalidArgument,
            None,
        ),
        row(
            C::Full {
                tier: Tier::Hot,
                reason: format!("disk budget of 10 GiB at {PATH}"),
                retry_after: Duration::from_millis(1500),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "full",
            Code::Unavailable,
            Some(2),
        ),
        row(
            unavailable(Tier::Hot),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Code::Unavailable,
            Some(1),
        ),
        row(
            unavailable(Tier::Warm),
            StatusCode::SERVICE_UNAVAILABLE,
            "warm_unavailable",
            Code::Unavailable,
            Some(1),
        ),
        row(
            unavailable(Tier::Cold),
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Code::Unavailable,
            Some(1),
        ),
        row(
            C::storage(
                Tier::Warm,
                OP,
                std::io::Error::other(format!("{SQL}: syntax error at {PATH}")),
            ),
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            Code::Internal,
            None,
        ),
        row(
            C::Corrupt {
                tier: Tier::Hot,
                what: format!("{PATH}: page 7 checksum mismatch"),
            },
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            Code::Internal,
            None,
        ),
        row(
            C::Conflict {
                tier: Tier::Cold,
                op: OP,
                message: "expected manifest version 3 of secret/_manifests/v3.json, found 4".into(),
            },
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            Code::Unavailable,
            Some(1),
        ),
        row(
            C::Unsupported {
                tier: Tier::Cold,
                op: OP,
            },
            StatusCode::NOT_IMPLEMENTED,
            "unsupported",
            Code::Unimplemented,
            None,
        ),
        row(
            C::NotFound {
                tier: Tier::Cold,
                what: "object secret/tenant=acme/part-0.parquet".into(),
            },
            StatusCode::NOT_FOUND,
            "not_found",
            Code::NotFound,
            None,
        ),
        row(
            C::ShuttingDown { tier: Tier::Hot },
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            Code::Unavailable,
            Some(1),
        ),
    ]
}

/// Fails when `text`, which a client receives, carries an internal detail.
fn assert_no_leak(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for needle in [
        "secret",
        "select ",
        "/var/",
        ".redb",
        ".parquet",
        "_manifests",
        "sql",
    ] {
        assert!(!lower.contains(needle), "{what} leaks `{needle}`: {text}");
    }
}

#[tokio::test]
async fn every_error_maps_to_its_status_code_and_retry_without_leaking_internals() {
    let rows = table();
    let covered: BTreeSet<&str> = rows.iter().map(|r| variant(&r.error)).collect();
    let expected: BTreeSet<&str> = VARIANTS.iter().copied().collect();
    assert_eq!(covered, expected, "every variant has a row");

    for row in rows {
        let name = format!("{:?}", row.error);
        let api = ApiError::from(row.error);
        assert_eq!(api.kind().code(), row.code, "{name}");
        assert_eq!(api.kind().http_status(), row.status, "{name}");
        assert_eq!(api.kind().grpc_code(), row.grpc, "{name}");

        let status = tonic::Status::from(api.clone());
        assert_eq!(status.code(), row.grpc, "{name}");
        assert_eq!(
            status.metadata().get(GRPC_CODE_METADATA).unwrap(),
            row.code,
            "{name}"
        );
        assert_eq!(
            status.metadata().get(GRPC_RETRY_AFTER_METADATA).map(|v| v
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()),
            row.retry_after,
            "{name}"
        );
        assert_no_leak(&name, status.message());
        for value in status.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = value {
                assert_no_leak(&name, &format!("{key}: {}", value.to_str().unwrap()));
            }
        }

        let response = api.into_response();
        assert_eq!(response.status(), row.status, "{name}");
        assert_eq!(
            response.headers().get(header::RETRY_AFTER).map(|v| v
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()),
            row.retry_after,
            "{name}"
        );
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        assert_no_leak(&name, body);
        let body: ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(body.code, row.code, "{name}");
        assert_eq!(body.kind().map(ErrorKind::code), Some(row.code), "{name}");
        assert!(!body.message.is_empty(), "{name}");
    }
}

#[test]
fn codes_are_unique_and_decode_back() {
    let codes: BTreeSet<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::from_code(kind.code()), Some(kind));
        // Only statuses that invite a retry carry the retryable gRPC codes.
        if kind.http_status() == StatusCode::NOT_IMPLEMENTED {
            assert_ne!(kind.grpc_code(), Code::Unavailable, "{kind:?}");
        }
    }
    assert_eq!(ErrorKind::from_code("no_such_code"), None);
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
    assert_eq!(status.code(), Code::InvalidArgument);
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
    let e: ApiError = strata_tiering::Error::Rejected(vec![Rejection {
        index: 0,
        field: "ts".into(),
        reason: "is required".into(),
    }])
    .into();
    assert_eq!(e.field(), Some("ts"));
    assert_eq!(e.body().rejected.len(), 1);
    assert!(e.message().contains("ts: is required"), "{}", e.message());
}

#[test]
fn too_many_buckets_names_the_limit() {
    let e = ApiError::from(strata_tiering::Error::TooManyCells { limit: 12_345 });
    assert_eq!(e.kind(), ErrorKind::TooManyBuckets);
    assert!(e.message().contains("12345"), "{}", e.message());
}
