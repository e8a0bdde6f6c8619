//! The blob store conformance suite against the local directory store and, with the
//! `server-tests` feature, against the S3-compatible server at `STRATA_TEST_S3_ENDPOINT`;
//! each also wrapped in the fault injector with nothing armed, which must pass it the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Faulty, FileHarness};
use strata_cold::FileStore;
use strata_core::{cold::BlobStore, conformance::cold::run_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_the_suite() {
    run_all(FileHarness::new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_wrapper_on_the_file_store_passes_the_suite() {
    run_all(|| Faulty(FileHarness::new())).await;
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
    use crate::common::S3Harness;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_store_passes_the_suite() {
        run_all(|| S3Harness).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fault_wrapper_on_s3_passes_the_suite() {
        run_all(|| Faulty(S3Harness)).await;
    }
}
