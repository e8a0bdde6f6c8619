//! The one rig of the cold tier's tests: fresh blob stores (a local directory, a bucket on
//! the S3 test server), the conformance harnesses that open them, and the fault wrapper
//! around either.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, sync::Arc};

use async_trait::async_trait;
use strata_cold::{FileStore, S3Options, S3Store};
use strata_core::{
    cold::BlobStore,
    conformance::{cold::BlobHarness, faults::FaultyBlobs},
};

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

/// A local directory store rooted at `root` (created if missing).
pub(crate) fn file_store(root: &Path) -> Arc<dyn BlobStore> {
    Arc::new(FileStore::open(root).unwrap())
}

/// Fresh local directory stores, each in its own directory under one temporary directory.
pub(crate) struct FileHarness {
    dir: tempfile::TempDir,
}

impl FileHarness {
    /// A harness over a new temporary directory.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[async_trait]
impl BlobHarness for FileHarness {
    async fn open(&self, _object_lock: bool) -> Arc<dyn BlobStore> {
        file_store(&self.dir.path().join(uuid::Uuid::new_v4().to_string()))
    }
}

/// Fresh stores on new buckets of the S3 test server.
pub(crate) struct S3Harness;

#[async_trait]
impl BlobHarness for S3Harness {
    async fn open(&self, object_lock: bool) -> Arc<dyn BlobStore> {
        Arc::new(s3_store(object_lock).await)
    }

    fn large_object_size(&self) -> usize {
        S3_MULTIPART_THRESHOLD
    }
}

/// The stores of `H`, each wrapped in [`FaultyBlobs`] with nothing armed: the wrapper must
/// forward every call and pass the suite like the store it wraps.
pub(crate) struct Faulty<H>(pub(crate) H);

#[async_trait]
impl<H: BlobHarness> BlobHarness for Faulty<H> {
    async fn open(&self, object_lock: bool) -> Arc<dyn BlobStore> {
        Arc::new(FaultyBlobs::new(self.0.open(object_lock).await))
    }

    fn large_object_size(&self) -> usize {
        self.0.large_object_size()
    }
}
