//! Replays that match no event: they end cleanly with zero events, and stay ended when the
//! caller polls again after the end (as the REST and gRPC handlers do after taking the first
//! item apart).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NODE, Rig, ingest, moving_flusher, test_cold_config, today};
use futures::{StreamExt, stream};
use strata_tiering::{ReplayItem, ReplayLimits, ReplayRequest, ReplayStream, Result};
use strata_types::{
    Event, TimeRange,
    time::{DAY, HOUR, SEC},
};

fn event(id: &str, ts: i64) -> Event {
    common::click(id, ts, 1.0)
}

/// Drains `events` the way the API handlers do: the first item on its own, then the rest
/// chained after it, then one more poll past the end.
async fn drain_like_a_handler(mut events: ReplayStream) -> Vec<Result<ReplayItem>> {
    let first = events.next().await;
    let mut rest = stream::iter(first).chain(events);
    let mut out = Vec::new();
    while let Some(item) = rest.next().await {
        out.push(item);
    }
    assert!(rest.next().await.is_none(), "ended once, ended for good");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_of_an_empty_store_ends_with_no_events() {
    let rig = Rig::builder(NODE).build().await;
    let range = TimeRange {
        from: today() - 3 * DAY,
        to: today() + DAY,
    };
    let got = drain_like_a_handler(
        rig.store
            .replay(ReplayRequest::new("acme", range), &ReplayLimits::default()),
    )
    .await;
    assert!(got.is_empty(), "{} items", got.len());
    rig.store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_past_the_data_in_every_tier_ends_with_no_events() {
    let rig = Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(100))
        .build()
        .await;
    // Old events (exported to cold), and recent ones (hot, then flushed to warm).
    let old: Vec<Event> = (0..20)
        .map(|i| event(&format!("old-{i}"), today() - 3 * DAY + i * HOUR))
        .collect();
    ingest(&rig.store, &old).await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 0, "something reached cold");
    let recent: Vec<Event> = (0..5)
        .map(|i| event(&format!("new-{i}"), today() - HOUR + i * SEC))
        .collect();
    ingest(&rig.store, &recent).await;

    let limits = ReplayLimits::default();
    for (what, tenant, range) in [
        (
            "after the last event",
            "acme",
            TimeRange {
                from: today() + 2 * DAY,
                to: today() + 400 * DAY,
            },
        ),
        (
            "before the first event",
            "acme",
            TimeRange {
                from: today() - 900 * DAY,
                to: today() - 10 * DAY,
            },
        ),
        (
            "another tenant",
            "other",
            TimeRange {
                from: today() - 4 * DAY,
                to: today() + DAY,
            },
        ),
    ] {
        let got =
            drain_like_a_handler(rig.store.replay(ReplayRequest::new(tenant, range), &limits))
                .await;
        assert!(got.is_empty(), "{what}: {} items", got.len());
    }
    // The same store still replays what it holds.
    let all = TimeRange {
        from: today() - 4 * DAY,
        to: today() + DAY,
    };
    let got =
        drain_like_a_handler(rig.store.replay(ReplayRequest::new("acme", all), &limits)).await;
    assert_eq!(got.len(), old.len() + recent.len());
    assert!(got.iter().all(Result::is_ok));
    rig.store.shutdown().await.unwrap();
}
