//! The flusher with the default embedded warm tier, against the real binary: events reach
//! warm exactly once, queries across hot and warm match a brute-force computation, and
//! `kill -9` in the middle of flushing loses and doubles nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::warm::{Backend, flow, kill_mid_flush};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_events_reach_warm_exactly_once_and_queries_span_both_tiers() {
    flow(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_kill_9_mid_flush_loses_nothing_and_stores_each_event_once() {
    kill_mid_flush(Backend::Embedded).await;
}
