//! The rig of the black-box tests: run the real `strata` binary on a temporary data
//! directory and talk to it like a client. Each test file uses part of it.
//!
//! * [`server`]: [`TestServer`], a `strata serve` process that outlives restarts;
//! * [`cli`]: one-shot commands (`strata export`, `archive`, `replay`, `migrate`, a `serve`
//!   expected to fail) run to their exit;
//! * [`http`]: the REST calls a client makes, and what they answered;
//! * [`events`]: the events the tests send and the times on them;
//! * [`cold`], [`warm`], [`postgres`], [`kill_load`]: rigs of the tier, outage and crash
//!   scenarios.

#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

pub(crate) mod cli;
pub(crate) mod cold;
pub(crate) mod events;
pub(crate) mod http;
pub(crate) mod kill_load;
pub(crate) mod postgres;
pub(crate) mod server;
pub(crate) mod warm;

use std::time::{Duration, Instant};

use rand::Rng;

pub(crate) use cli::{
    CLI_TIMEOUT, STRATA, assert_help_lists, run_to_exit, serve_command, serve_to_exit, stderr,
    stdout, strata_cli, strata_command,
};
pub(crate) use events::{
    TestEvent, json_body, now_micros, now_rfc3339, parse_micros, rfc3339_from_now, rfc3339_micros,
};
pub(crate) use http::{
    AggregateView, BucketView, HttpAnswer, PostOutcome, StoredView, WriteAnswer, aggregate,
    assert_all_readable, assert_same, client, client_with_timeout, count, count_params, get_event,
    lookup, metric, post_all, post_events, send, try_post_events,
};
pub(crate) use server::{DEFAULTS, TestServer, spawn_and_wait_listening};

/// Polls `check` every 100 ms until it returns `Some`, panicking with `what` after
/// `timeout`.
pub(crate) async fn wait_until<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps a uniformly random `n` of `items` (all of them when there are no more than `n`),
/// so that a check of every item stays short on a long run.
pub(crate) fn random_sample<T>(items: &mut Vec<T>, n: usize, rng: &mut impl Rng) {
    if items.len() <= n {
        return;
    }
    for i in 0..n {
        let j = rng.random_range(i..items.len());
        items.swap(i, j);
    }
    items.truncate(n);
}
