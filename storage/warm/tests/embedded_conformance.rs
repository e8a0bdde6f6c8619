//! The warm conformance suite against the embedded store.

use std::sync::Arc;

use async_trait::async_trait;
use strata_core::{
    conformance::warm::{WarmHarness, run_all, run_cold_handoff},
    warm::WarmTier,
};
use strata_warm::{EMBEDDED_FILE, EmbeddedWarm};

struct Harness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl WarmHarness for Harness {
    async fn open(&self) -> Arc<dyn WarmTier> {
        Arc::new(
            EmbeddedWarm::open(self.dir.path().join(EMBEDDED_FILE))
                .await
                .expect("open embedded warm store"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_passes_the_warm_suite() {
    run_all(|| Harness {
        dir: tempfile::tempdir().expect("tempdir"),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_passes_the_cold_handoff_suite() {
    run_cold_handoff(|| Harness {
        dir: tempfile::tempdir().expect("tempdir"),
    })
    .await;
}
