//! The consumer scenarios against librdkafka's in-process mock cluster: no broker needed, so
//! they run with every `cargo test`. The same scenarios run against a real broker in
//! `tests/broker.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::scenarios::{self, Cluster};
use rdkafka::mocking::MockCluster;

struct Mock(MockCluster<'static, rdkafka::producer::DefaultProducerContext>);

impl Mock {
    fn new() -> Self {
        Self(MockCluster::new(1).expect("mock cluster"))
    }
}

impl Cluster for Mock {
    fn brokers(&self) -> String {
        self.0.bootstrap_servers()
    }

    async fn create_topic(&self, name: &str, partitions: i32) {
        self.0
            .create_topic(name, partitions, 1)
            .expect("create mock topic");
    }

    fn commits_during_rebalance(&self) -> bool {
        false
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_stored_invalid_dead_lettered() {
    scenarios::valid_stored_invalid_dead_lettered(&Mock::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_hot_offsets() {
    scenarios::restart_resumes_from_hot_offsets(&Mock::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_loses_and_duplicates_nothing() {
    scenarios::rebalance_loses_and_duplicates_nothing(&Mock::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_hot_tier_pauses_and_resumes() {
    scenarios::full_hot_tier_pauses_and_resumes(&Mock::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_after_flush_is_not_stored_again() {
    scenarios::redelivery_after_flush_is_not_stored_again(&Mock::new()).await;
}
