//! Helpers shared by the cold tier's tests: S3 stores on the test server, sample rows.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use strata_cold::{S3Options, S3Store};

/// Multipart threshold the S3 tests use: S3's smallest part size, so the suite's large
/// objects go up in several parts.
pub(crate) const S3_MULTIPART_THRESHOLD: usize = 5 * 1024 * 1024;

/// The S3-compatible server `scripts/test` started. Panics when it is not set: under the
/// `server-tests` feature a missing server is a failure, never a skip.
pub(crate) fn s3_endpoint() -> String {
    std::env::var("STRATA_TEST_S3_ENDPOINT").expect(
        "STRATA_TEST_S3_ENDPOINT must name the S3-compatible test server (scripts/test starts one)",
    )
}

/// A store on a new, uniquely named bucket (with Object Lock enabled if asked) under a
/// prefix, so the store's key mapping is exercised too.
pub(crate) async fn s3_store(object_lock: bool) -> S3Store {
    let bucket = format!("strata-test-{}", uuid::Uuid::new_v4().simple());
    let options = S3Options {
        endpoint: Some(s3_endpoint()),
        region: Some(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())),
        force_path_style: true,
        multipart_threshold: S3_MULTIPART_THRESHOLD,
        part_size: S3_MULTIPART_THRESHOLD,
    };
    let store = S3Store::open(&format!("s3://{bucket}/archive"), options)
        .await
        .unwrap();
    let mut create = store.client().create_bucket().bucket(&bucket);
    if object_lock {
        create = create.object_lock_enabled_for_bucket(true);
    }
    create.send().await.expect("create test bucket");
    store
}
