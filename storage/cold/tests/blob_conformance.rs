//! The blob store conformance suite against the local directory store and, with the
//! `server-tests` feature, against the S3-compatible server at `STRATA_TEST_S3_ENDPOINT`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use strata_cold::FileStore;
use strata_core::{cold::BlobStore, conformance::cold::BlobHarness};

struct FileHarness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl BlobHarness for FileHarness {
    async fn open(&self, _object_lock: bool) -> Arc<dyn BlobStore> {
        let root = self.dir.path().join(uuid::Uuid::new_v4().to_string());
        Arc::new(FileStore::open(root).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_the_suite() {
    strata_core::conformance::cold::run_all(|| FileHarness {
        dir: tempfile::tempdir().unwrap(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_puts_nothing_half_written_and_hides_its_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let opts = strata_core::cold::PutOptions::default();
    store
        .put("a/b.bin", bytes::Bytes::from_static(b"xyz"), &opts)
        .await
        .unwrap();
    // A crash between the temp write and the rename leaves only a temp file, which is
    // never listed as an object.
    std::fs::write(dir.path().join(".strata-tmp/leftover.tmp"), b"partial").unwrap();
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(keys, vec!["a/b.bin".to_string()]);
    assert!(
        store
            .put(".strata-tmp/x", bytes::Bytes::new(), &opts)
            .await
            .is_err(),
        "internal names are reserved"
    );
}

#[cfg(feature = "server-tests")]
mod s3 {
    use super::*;

    struct S3Harness;

    #[async_trait]
    impl BlobHarness for S3Harness {
        async fn open(&self, object_lock: bool) -> Arc<dyn BlobStore> {
            Arc::new(common::s3_store(object_lock).await)
        }

        fn large_object_size(&self) -> usize {
            common::S3_MULTIPART_THRESHOLD
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_store_passes_the_suite() {
        strata_core::conformance::cold::run_all(|| S3Harness).await;
    }
}
