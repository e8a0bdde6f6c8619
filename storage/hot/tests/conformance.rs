//! Runs the shared hot tier conformance suite against `HotStore`, one tempdir per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use strata_core::{conformance::hot::HotHarness, hot::HotTier};
use strata_hot::{HotConfig, HotStore};

struct Harness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl HotHarness for Harness {
    async fn open(&self) -> Arc<dyn HotTier> {
        let config = HotConfig::new(self.dir.path().join("hot.redb"));
        let store = tokio::task::spawn_blocking(move || HotStore::open(config))
            .await
            .expect("open task")
            .expect("open hot store");
        Arc::new(store)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_store_passes_the_conformance_suite() {
    strata_core::conformance::hot::run_all(|| Harness {
        dir: tempfile::tempdir().expect("tempdir"),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_holds_with_tiny_windows_and_commits() {
    // One-second windows and small commits stress the window index and row boundaries.
    struct Small {
        dir: tempfile::TempDir,
    }
    #[async_trait]
    impl HotHarness for Small {
        async fn open(&self) -> Arc<dyn HotTier> {
            let mut config = HotConfig::new(self.dir.path().join("nested/dir/hot.redb"));
            config.window = std::time::Duration::from_secs(1);
            config.max_commit_events = 7;
            config.queue_depth = 2;
            let store = tokio::task::spawn_blocking(move || HotStore::open(config))
                .await
                .expect("open task")
                .expect("open hot store");
            Arc::new(store)
        }
    }
    strata_core::conformance::hot::run_all(|| Small {
        dir: tempfile::tempdir().expect("tempdir"),
    })
    .await;
}
