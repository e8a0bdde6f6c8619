//! The warm conformance suites against the embedded store, and against every wrapper this
//! crate ships or the layers above use, each wrapping the embedded store: the fault injector
//! with nothing armed, and the deferred handle of a connector once it has connected. A
//! wrapper that forgot to forward a method fails here.

mod common;

use std::sync::Arc;

use strata_core::{
    conformance::{
        faults::FaultyWarm,
        warm::{run_all, run_cold_handoff},
    },
    handoff::WarmStore,
    warm::WarmMode,
};
use strata_warm::{Connector, EMBEDDED_FILE, EmbeddedWarm, WarmConfig, WarmUrl};
use tokio_util::sync::CancellationToken;

/// What the suite talks to, over the embedded store.
#[derive(Debug, Clone, Copy)]
enum Wrapper {
    /// The store itself.
    None,
    /// `FaultyWarm` with nothing armed.
    Faulty,
    /// The deferred handle of a `Connector`, after `run` connected it.
    Deferred,
}

struct Harness {
    dir: tempfile::TempDir,
    wrapper: Wrapper,
}

impl Harness {
    fn new(wrapper: Wrapper) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            wrapper,
        }
    }

    async fn store(&self) -> Arc<dyn WarmStore> {
        let embedded = || async {
            Arc::new(
                EmbeddedWarm::open(self.dir.path().join(EMBEDDED_FILE))
                    .await
                    .expect("open embedded warm store"),
            )
        };
        match self.wrapper {
            Wrapper::None => embedded().await,
            Wrapper::Faulty => Arc::new(FaultyWarm::new(embedded().await)),
            Wrapper::Deferred => {
                // Any hot tier may write: the suite's nodes never reuse an id.
                let connector = Connector::new(
                    WarmUrl::embedded(),
                    WarmConfig::new(self.dir.path()),
                    "suite",
                    u64::MAX,
                );
                let warm = connector.warm();
                connector
                    .run(CancellationToken::new())
                    .await
                    .expect("the connector connects the embedded store");
                assert_eq!(warm.mode(), WarmMode::Embedded);
                warm
            }
        }
    }
}

common::suite_harness!(Harness);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_passes_the_warm_suite() {
    run_all(|| Harness::new(Wrapper::None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_passes_the_cold_handoff_suite() {
    run_cold_handoff(|| Harness::new(Wrapper::None)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unarmed_fault_injector_passes_the_warm_suite() {
    run_all(|| Harness::new(Wrapper::Faulty)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unarmed_fault_injector_passes_the_cold_handoff_suite() {
    run_cold_handoff(|| Harness::new(Wrapper::Faulty)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_deferred_handle_passes_the_warm_suite() {
    run_all(|| Harness::new(Wrapper::Deferred)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_deferred_handle_passes_the_cold_handoff_suite() {
    run_cold_handoff(|| Harness::new(Wrapper::Deferred)).await;
}
