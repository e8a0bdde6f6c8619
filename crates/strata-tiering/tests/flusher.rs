//! The flusher with a real embedded hot tier and a real embedded warm tier: events move to
//! warm after the hot retention, queries spanning both tiers equal brute force while flushes
//! run, and warm failures (before or after its commit) lose and duplicate nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::{NODE, Rig, assert_buckets};
use strata_core::{Tier, hot::HotWatermark, warm::WarmTier};
use strata_tiering::{Flusher, FlusherConfig, Store};
use strata_types::{
    AggregateQuery, Event, PartialAggregate, QueryParams,
    time::{DAY, HOUR, SEC, now_micros},
};
use tokio_util::sync::CancellationToken;

/// A store without a cold tier and without a flusher: each test builds its own flushers.
async fn rig() -> Rig {
    Rig::builder(NODE).build().await
}

/// `n` events spread over the last two hours, deterministic per `seed`.
fn events(n: usize, seed: usize) -> Vec<Event> {
    let now = now_micros();
    (0..n)
        .map(|i| {
            let k = i * 7919 + seed * 104_729;
            Event {
                tenant: if k.is_multiple_of(5) { "other" } else { "acme" }.into(),
                stream: ["click", "view"][k % 2].into(),
                key: format!("user-{}", k % 7),
                id: format!("e-{seed}-{i}"),
                ts: now - ((k % 7200) as i64) * SEC - (k % 1000) as i64,
                value: (!k.is_multiple_of(3)).then_some((k % 100) as f64 / 4.0),
                attrs: [("page".to_string(), format!("/p{}", k % 3))].into(),
                payload: Some(format!(r#"{{"i":{i}}}"#)),
            }
        })
        .collect()
}

async fn ingest(store: &Store, events: &[Event]) {
    common::ingest(store, events).await;
}

fn query(bucket: &str, agg: &str, group_by: Option<&str>) -> AggregateQuery {
    let now = now_micros();
    let from = (now - 3 * HOUR).to_string();
    let to = (now + HOUR).to_string();
    AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &from,
        to: &to,
        bucket,
        agg,
        group_by,
        ..Default::default()
    })
    .unwrap()
}

fn queries() -> Vec<AggregateQuery> {
    vec![
        // Rollup-shaped: exercises the warm exactness check across the hand-off.
        query("1h", "count", None),
        query("1m", "sum", None),
        query("15m", "avg", Some("key")),
        query("1h", "max", Some("attr:page")),
    ]
}

/// Asserts the store's answer equals a brute-force pass over `all`.
async fn assert_exact(store: &Store, all: &[Event], case: &str) -> bool {
    let mut both = false;
    for q in queries() {
        let mut want = PartialAggregate::default();
        all.iter().for_each(|e| want.add(&q, e));
        let got = store.aggregate(&q).await.unwrap();
        both |= got.tiers.len() == 2;
        assert_buckets(&got.buckets, &want.finish(q.agg), &format!("{case}: {q:?}"));
    }
    both
}

async fn wait_until_hot_is_empty(store: &Store) {
    for _ in 0..2000 {
        if store.hot_stats().events == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the flusher did not drain the hot tier: {:?}",
        store.hot_stats()
    );
}

fn config(retention: Duration, interval: Duration, batch: usize) -> FlusherConfig {
    FlusherConfig {
        node: "ignored: for_store uses the store's node".into(),
        hot_retention: retention,
        flush_interval: interval,
        max_batch_events: batch,
        max_backoff: Duration::from_millis(50),
        max_batches_per_pass: 4,
        warm_retention: None,
        retention_interval: Duration::from_secs(3600),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_move_to_warm_after_the_hot_retention() {
    let rig = rig().await;
    let all = events(300, 1);
    for chunk in all.chunks(70) {
        ingest(&rig.store, chunk).await;
    }
    let flusher = Flusher::for_store(
        &rig.store,
        config(Duration::from_secs(1), Duration::from_millis(50), 100),
    );
    assert_eq!(flusher.config().node, NODE);
    // Nothing is due yet: every event is younger than the retention.
    let report = flusher.flush_due().await.unwrap();
    assert_eq!(report.rows, 0);
    assert_eq!(rig.store.hot_stats().events, 300);
    assert_eq!(rig.embedded.committed_upto(NODE).await.unwrap(), 0);

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(flusher.run(shutdown.clone()));
    wait_until_hot_is_empty(&rig.store).await;
    let stats = rig.store.hot_stats();
    assert_eq!(stats.released_upto, stats.last_seq);
    assert_eq!(
        rig.embedded.committed_upto(NODE).await.unwrap(),
        stats.last_seq
    );
    assert!(assert_exact(&rig.store, &all, "after the move").await);
    let answer = rig
        .store
        .aggregate(&query("1h", "count", None))
        .await
        .unwrap();
    assert_eq!(answer.tiers, vec![Tier::Hot, Tier::Warm]);
    for e in &all {
        let got = rig.store.get_event(&e.tenant, &e.id).await.unwrap();
        assert_eq!(
            got.map(|s| s.event).as_ref(),
            Some(e),
            "get {} from warm",
            e.id
        );
    }
    shutdown.cancel();
    task.await.unwrap();

    // Retention: with one hour kept, only the last hour's events remain countable.
    let mut keep_hour = config(Duration::ZERO, Duration::from_millis(50), 100);
    keep_hour.warm_retention = Some(Duration::from_secs(3600));
    let flusher = Flusher::for_store(&rig.store, keep_hour);
    // The pass picks its cutoff between these two instants.
    let earliest = now_micros() - HOUR;
    let removed = flusher.enforce_retention().await.unwrap();
    let latest = now_micros() - HOUR;
    let gone = all.iter().filter(|e| e.ts < earliest).count();
    assert!(
        gone > 0 && removed as usize >= gone,
        "removed {removed}, expected {gone}"
    );
    let mut kept = 0;
    for e in &all {
        let found = rig
            .store
            .get_event(&e.tenant, &e.id)
            .await
            .unwrap()
            .is_some();
        if e.ts < earliest {
            assert!(!found, "{} is older than the retention", e.id);
        } else if e.ts >= latest {
            assert!(found, "{} is within the retention", e.id);
            kept += 1;
        }
    }
    assert!(kept > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_stay_exact_while_flushes_run() {
    // Each warm write lingers after its commit, so queries regularly land between a warm
    // commit and the matching hot release: the window where double counting would show.
    let rig = rig().await;
    rig.warm.write_batch.delay_after(Duration::from_millis(15));
    let flusher = Flusher::for_store(
        &rig.store,
        config(Duration::ZERO, Duration::from_millis(5), 40),
    );
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(flusher.run(shutdown.clone()));
    let mut all: Vec<Event> = Vec::new();
    let mut mixed = 0;
    for round in 0..40 {
        let batch = events(37, 100 + round);
        ingest(&rig.store, &batch).await;
        all.extend(batch);
        if assert_exact(&rig.store, &all, &format!("round {round}")).await {
            mixed += 1;
        }
        let probe = &all[(round * 31) % all.len()];
        let got = rig.store.get_event(&probe.tenant, &probe.id).await.unwrap();
        assert_eq!(
            got.map(|s| s.event).as_ref(),
            Some(probe),
            "round {round}: get"
        );
    }
    wait_until_hot_is_empty(&rig.store).await;
    assert_exact(&rig.store, &all, "drained").await;
    shutdown.cancel();
    task.await.unwrap();
    assert!(mixed > 0, "no query ever spanned both tiers");
    // Warm holds each event once.
    let mut q = query("1d", "count", None);
    q.range.from -= DAY;
    let stored = rig
        .embedded
        .aggregate(&q, &HotWatermark::everything(NODE))
        .await
        .unwrap()
        .total_count();
    let acme = all.iter().filter(|e| e.tenant == "acme").count() as u64;
    assert_eq!(stored, acme);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_failures_are_retried_and_lose_or_duplicate_nothing() {
    let rig = rig().await;
    // Three writes fail before reaching warm, then two commit and report failure.
    rig.warm.write_batch.fail_before(3);
    rig.warm.write_batch.fail_after(2);
    let all = events(500, 7);
    for chunk in all.chunks(45) {
        ingest(&rig.store, chunk).await;
    }
    let flusher = Flusher::for_store(
        &rig.store,
        config(Duration::ZERO, Duration::from_millis(5), 60),
    );
    // While warm is unreachable nothing is released and queries stay exact from hot.
    assert!(flusher.flush_due().await.is_err());
    assert_eq!(rig.store.hot_stats().events, 500);
    assert_eq!(rig.store.hot_stats().released_upto, 0);
    assert_exact(&rig.store, &all, "warm down").await;

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(flusher.run(shutdown.clone()));
    wait_until_hot_is_empty(&rig.store).await;
    shutdown.cancel();
    task.await.unwrap();
    // Five injected failures, then at least one write that went through. Each call takes
    // one armed failure while any is left, so six calls also mean all five were used up.
    assert!(rig.warm.write_batch.calls() >= 6);
    assert_exact(&rig.store, &all, "after retries").await;
    // Replays after the injected post-commit failures stored nothing twice.
    let mut per_tenant: BTreeMap<&str, u64> = BTreeMap::new();
    for e in &all {
        *per_tenant.entry(&e.tenant).or_default() += 1;
    }
    for (tenant, n) in per_tenant {
        let mut q = query("1d", "count", None);
        q.tenant = tenant.into();
        q.range.from -= DAY;
        let stored = rig
            .embedded
            .aggregate(&q, &HotWatermark::everything(NODE))
            .await
            .unwrap()
            .total_count();
        assert_eq!(stored, n, "{tenant}: each event stored once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_what_is_due_then_returns() {
    let rig = rig().await;
    let all = events(120, 9);
    ingest(&rig.store, &all).await;
    // The interval is far away: only the final flush on shutdown can move anything.
    let flusher = Flusher::for_store(
        &rig.store,
        config(Duration::ZERO, Duration::from_secs(3600), 50),
    );
    let shutdown = CancellationToken::new();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), flusher.run(shutdown))
        .await
        .expect("run returns after the final flush");
    assert_eq!(rig.store.hot_stats().events, 0);
    assert_exact(&rig.store, &all, "after shutdown").await;
}
