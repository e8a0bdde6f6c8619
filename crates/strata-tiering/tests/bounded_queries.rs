//! Bounded work per aggregate query: a range of many empty days costs the result cache
//! next to nothing yet is still served from it, answers stay exact whatever part of the
//! range the cache covers, and an answer with more cells than the store's limit fails with
//! `TooManyCells` instead of being built.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NODE, Rig, assert_buckets, click, today};
use strata_tiering::{CacheStatus, Error, StoreConfig};
use strata_types::{
    AggregateQuery, Event, PartialAggregate, QueryParams,
    time::{DAY, HOUR},
};

fn query(from: i64, to: i64, bucket: &str, group_by: Option<&str>) -> AggregateQuery {
    AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &from.to_string(),
        to: &to.to_string(),
        bucket,
        agg: "count",
        group_by,
        ..Default::default()
    })
    .unwrap()
}

fn brute(q: &AggregateQuery, events: &[Event]) -> Vec<strata_types::Bucket> {
    let mut p = PartialAggregate::default();
    events.iter().for_each(|e| p.add(q, e));
    p.finish(q.agg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_days_cost_the_cache_almost_nothing() {
    let rig = Rig::builder(NODE).build().await;
    // A few events on two days, with decades of nothing around them.
    let events: Vec<Event> = [10, 11, 40]
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let mut e = click(&format!("e-{i}"), today() - d * DAY + HOUR, 1.0);
            e.key = format!("user-{i}");
            e
        })
        .collect();
    common::ingest(&rig.store, &events).await;

    // Day buckets over ~270 years that ended two days ago: every chunk is closed.
    let to = today() - 2 * DAY;
    let q = query(to - 99_000 * DAY, to, "1d", None);
    let first = rig.store.aggregate(&q).await.unwrap();
    assert_buckets(&first.buckets, &brute(&q, &events), "first");
    let stats = rig.store.cache_stats();
    assert!(
        stats.bytes < 64 * 1024,
        "empty chunks filled the cache: {stats:?}"
    );
    // Yet the empty days count as cached chunks: the runs answer for them.
    assert!(stats.entries > 1_000, "{stats:?}");

    // The same query again: the cached part is served (empty runs and the two days with
    // events), the part beyond the bounded cached span is read live; exact either way.
    let second = rig.store.aggregate(&q).await.unwrap();
    assert_eq!(second.buckets, first.buckets);
    assert_ne!(second.cache, CacheStatus::Miss, "{stats:?}");

    // A recent window is served from the cache entirely, empty days included.
    let recent = query(to - 60 * DAY, to, "1d", None);
    let a = rig.store.aggregate(&recent).await.unwrap();
    assert_buckets(&a.buckets, &brute(&recent, &events), "recent");
    let b = rig.store.aggregate(&recent).await.unwrap();
    assert_eq!(b.cache, CacheStatus::Hit);
    assert_eq!(b.buckets, a.buckets);

    // A late event in an empty day is seen at once (its day's version moved on).
    let late = click("late-1", today() - 20 * DAY + 3 * HOUR, 1.0);
    common::ingest(&rig.store, std::slice::from_ref(&late)).await;
    let mut all = events.clone();
    all.push(late);
    let c = rig.store.aggregate(&recent).await.unwrap();
    assert_ne!(c.cache, CacheStatus::Hit);
    assert_buckets(&c.buckets, &brute(&recent, &all), "after the late event");
    let d = rig.store.aggregate(&recent).await.unwrap();
    assert_eq!(d.cache, CacheStatus::Hit);
    assert_eq!(d.buckets, c.buckets);
    let again = rig.store.aggregate(&q).await.unwrap();
    assert_buckets(
        &again.buckets,
        &brute(&q, &all),
        "the long range after the late event",
    );
    rig.store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_the_cell_limit_fail() {
    for cache in [0, 1 << 20] {
        let rig = Rig::builder(NODE)
            .store_config(StoreConfig {
                max_answer_cells: 10,
                cache_capacity_bytes: cache,
                ..StoreConfig::default()
            })
            .build()
            .await;
        // Twelve events in twelve distinct hours of one closed day, six keys.
        let day = today() - 3 * DAY;
        let events: Vec<Event> = (0..12)
            .map(|i| {
                let mut e = click(&format!("e-{i}"), day + i * HOUR, 1.0);
                e.key = format!("user-{}", i % 6);
                e
            })
            .collect();
        common::ingest(&rig.store, &events).await;

        for (bucket, group_by) in [("1h", None), ("1d", Some("key")), ("6h", Some("key"))] {
            let q = query(day, day + DAY, bucket, group_by);
            let cells = brute(&q, &events).len();
            let got = rig.store.aggregate(&q).await;
            if cells > 10 {
                assert!(
                    matches!(got, Err(Error::TooManyCells { limit: 10 })),
                    "{bucket} {group_by:?} ({cells} cells): {got:?}"
                );
            } else {
                assert_buckets(&got.unwrap().buckets, &brute(&q, &events), bucket);
            }
        }
        // Over the limit every time, also once parts of it are cached.
        let wide = query(day - 5 * DAY, day + DAY, "1h", None);
        for _ in 0..2 {
            assert!(matches!(
                rig.store.aggregate(&wide).await,
                Err(Error::TooManyCells { limit: 10 })
            ));
        }
        rig.store.shutdown().await.unwrap();
    }
}
