//! Replays under hostile input and overload: an idle client frees its slot, a range over all
//! representable time costs time in proportion to the data, one tenant cannot take every
//! slot, and the waiting and active counts come back down when replays are dropped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{num::NonZeroU32, time::Duration};

use common::{NODE, Rig, ingest, moving_flusher, test_cold_config, today};
use futures::StreamExt;
use strata_tiering::{ReplayConfig, ReplayItem, ReplayLimits, ReplayRequest, Result};
use strata_types::{
    Event, TimeRange,
    time::{DAY, HOUR, MAX_TS, MIN_TS, SEC},
};

/// Long enough for anything a healthy test waits for; short enough to fail a hung one.
const PATIENCE: Duration = Duration::from_secs(10);

fn event(tenant: &str, id: &str, ts: i64) -> Event {
    Event {
        tenant: tenant.into(),
        ..common::click(id, ts, 1.0)
    }
}

/// `n` events of `tenant` an hour ago, one per millisecond.
fn recent(tenant: &str, n: i64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            event(
                tenant,
                &format!("{tenant}-{i:05}"),
                today() - HOUR + i * 1_000,
            )
        })
        .collect()
}

fn around_today() -> TimeRange {
    TimeRange {
        from: today() - 3 * DAY,
        to: today() + DAY,
    }
}

/// A request of `tenant` that emits one event per second, so its replay holds its slot for
/// as long as the test needs.
fn slow(tenant: &str) -> ReplayRequest {
    ReplayRequest {
        max_rate: NonZeroU32::new(1),
        ..ReplayRequest::new(tenant, around_today())
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_is_dropped_and_frees_its_slot() {
    let rig = Rig::builder(NODE).build().await;
    ingest(&rig.store, &recent("acme", 500)).await;
    let limits = ReplayLimits::new(ReplayConfig {
        max_concurrent: 1,
        idle_timeout: Duration::from_millis(300),
        ..ReplayConfig::default()
    });
    let request = ReplayRequest::new("acme", around_today());
    let mut idle = rig.store.replay(request.clone(), &limits);
    assert!(idle.next().await.unwrap().is_ok());
    assert_eq!(limits.active(), 1, "the replay reads");
    // The client stops reading: the replay gives up its slot after the idle timeout.
    until("the idle replay frees its slot", || limits.active() == 0).await;
    let other: Vec<ReplayItem> = tokio::time::timeout(
        PATIENCE,
        rig.store
            .replay(request, &limits)
            .map(|r| r.unwrap())
            .collect(),
    )
    .await
    .expect("another replay gets the freed slot");
    assert_eq!(other.len(), 500);
    // The idle client, reading again, gets what was read ahead and then an error, never
    // an end that looks complete.
    let rest: Vec<Result<ReplayItem>> = idle.collect().await;
    assert!(rest.len() < 100, "{} items read ahead", rest.len());
    assert!(
        rest.last().unwrap().is_err(),
        "the cut-off replay ends with an error"
    );
    assert!(rest[..rest.len() - 1].iter().all(Result::is_ok));
    rig.store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_over_all_representable_time_costs_time_in_proportion_to_its_data() {
    let rig = Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(100))
        .build()
        .await;
    // Some events in cold, some in warm (flushed, not exported yet), some hot.
    let old: Vec<Event> = (0..10)
        .map(|i| event("acme", &format!("old-{i}"), today() - 3 * DAY + i * HOUR))
        .collect();
    ingest(&rig.store, &old).await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 0, "something reached cold");
    let warm: Vec<Event> = (0..5)
        .map(|i| event("acme", &format!("warm-{i}"), today() - 2 * HOUR + i * SEC))
        .collect();
    ingest(&rig.store, &warm).await;
    rig.flusher().flush_due().await.unwrap();
    let hot = recent("acme", 5);
    ingest(&rig.store, &hot).await;
    ingest(&rig.store, &recent("other", 5)).await;

    let mut want: Vec<&Event> = old.iter().chain(&warm).chain(&hot).collect();
    want.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
    let limits = ReplayLimits::default();
    let everything = TimeRange {
        from: MIN_TS,
        to: MAX_TS,
    };
    let got: Vec<ReplayItem> = tokio::time::timeout(
        PATIENCE,
        rig.store
            .replay(ReplayRequest::new("acme", everything), &limits)
            .map(|r| r.unwrap())
            .collect(),
    )
    .await
    .expect("a replay over year 1 to 9999 finishes in time proportional to its data");
    let got: Vec<(i64, &str)> = got
        .iter()
        .map(|i| (i.event.event.ts, i.event.event.id.as_str()))
        .collect();
    let want: Vec<(i64, &str)> = want.iter().map(|e| (e.ts, e.id.as_str())).collect();
    assert_eq!(got, want);
    rig.store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_hold_every_slot() {
    let rig = Rig::builder(NODE).build().await;
    ingest(&rig.store, &recent("acme", 20)).await;
    ingest(&rig.store, &recent("other", 20)).await;
    let limits = ReplayLimits::new(ReplayConfig {
        max_concurrent: 4,
        max_concurrent_per_tenant: 1,
        ..ReplayConfig::default()
    });
    let mut first = rig.store.replay(slow("acme"), &limits);
    assert!(first.next().await.unwrap().is_ok());
    let mut second = rig.store.replay(slow("acme"), &limits);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.next())
            .await
            .is_err(),
        "a second replay of the tenant waits although node-wide slots are free"
    );
    assert_eq!(limits.waiting(), 1);
    let mut other = rig.store.replay(slow("other"), &limits);
    let item = tokio::time::timeout(PATIENCE, other.next())
        .await
        .expect("another tenant's replay does not wait");
    assert_eq!(item.unwrap().unwrap().event.event.tenant, "other");
    drop(first);
    let item = tokio::time::timeout(PATIENCE, second.next())
        .await
        .expect("the tenant's slot freed up");
    assert_eq!(item.unwrap().unwrap().event.event.tenant, "acme");
    rig.store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_and_active_counts_come_back_down_when_replays_are_dropped() {
    let rig = Rig::builder(NODE).build().await;
    ingest(&rig.store, &recent("acme", 20)).await;
    let limits = ReplayLimits::new(ReplayConfig {
        max_concurrent: 1,
        ..ReplayConfig::default()
    });
    let mut reading = rig.store.replay(slow("acme"), &limits);
    assert!(reading.next().await.unwrap().is_ok());
    let mut waiting = rig.store.replay(slow("acme"), &limits);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), waiting.next())
            .await
            .is_err(),
        "the second replay waits for the only slot"
    );
    assert_eq!((limits.waiting(), limits.active()), (1, 1));
    // The waiting client goes away before it got a slot.
    drop(waiting);
    until("the dropped waiter leaves the waiting count", || {
        limits.waiting() == 0
    })
    .await;
    assert_eq!(limits.active(), 1);
    drop(reading);
    until("the dropped reader frees its slot", || limits.active() == 0).await;
    // And the slot really is free.
    let mut next = rig.store.replay(slow("acme"), &limits);
    tokio::time::timeout(PATIENCE, next.next())
        .await
        .expect("the freed slot is taken")
        .unwrap()
        .unwrap();
    rig.store.shutdown().await.unwrap();
}
