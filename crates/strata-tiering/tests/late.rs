//! Late events without a cold tier: older than `max_lateness` they go straight to warm
//! under the node's late writer, mixed batches keep their order, Kafka offsets still commit
//! with the hot append, resends are duplicates, and times warm retention already dropped are
//! rejected per event (and by validation through the tightened `max_age`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{click, ingest_json, warm_only};
use strata_core::{
    Tier,
    hot::{AppendOutcome, AppendRequest, SourceOffset},
    warm::WarmTier,
};
use strata_types::{
    AggregateQuery, Event, QueryParams,
    decode::DecodedBatch,
    time::{DAY, SEC, now_micros},
};

fn event(id: &str, ts: i64) -> Event {
    click(id, ts, 2.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_events_go_to_warm_and_keep_their_place_in_the_batch() {
    let rig = warm_only("node-l").await;
    let (store, warm) = (&rig.store, &rig.embedded);
    let now = now_micros();
    let batch = vec![
        event("live-1", now - 5 * SEC),
        event("late-1", now - 2 * DAY),
        event("live-1", now - 5 * SEC),
        event("gone-1", now - 20 * DAY),
        event("late-2", now - 3 * DAY),
        event("late-1", now - 2 * DAY),
    ];
    let report = store
        .ingest(DecodedBatch {
            events: batch,
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(report.accepted, 5, "{report:?}");
    assert_eq!(report.duplicates, 2, "{report:?}");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let rejected = &report.rejected[0];
    assert_eq!((rejected.index, rejected.field.as_str()), (3, "ts"));
    assert!(rejected.reason.contains("warm_retention"), "{rejected:?}");

    assert_eq!(store.hot_stats().events, 1, "only the live event is in hot");
    assert_eq!(warm.committed_upto("node-l.late").await.unwrap(), 2);
    let late = store.get_event("acme", "late-2").await.unwrap().unwrap();
    assert_eq!(late.event.ts, now - 3 * DAY);
    assert!(store.get_event("acme", "gone-1").await.unwrap().is_none());

    let q = AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &(now - 4 * DAY).to_string(),
        to: &(now + SEC).to_string(),
        bucket: "1d",
        agg: "count",
        ..Default::default()
    })
    .unwrap();
    let answer = store.aggregate(&q).await.unwrap();
    let total: f64 = answer.buckets.iter().filter_map(|b| b.value).sum();
    assert_eq!(total, 3.0);
    assert!(answer.tiers.contains(&Tier::Warm), "{:?}", answer.tiers);

    // Resends are duplicates wherever the original is, and store nothing.
    let report = store
        .ingest(DecodedBatch {
            events: vec![
                event("late-2", now - 3 * DAY),
                event("live-1", now - 5 * SEC),
            ],
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!((report.accepted, report.duplicates), (2, 2));
    assert_eq!(warm.committed_upto("node-l.late").await.unwrap(), 2);
    store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_offsets_commit_with_the_hot_append_of_a_mixed_batch() {
    let rig = warm_only("node-l").await;
    let (store, warm) = (&rig.store, &rig.embedded);
    let now = now_micros();
    let offset = SourceOffset {
        source: "kafka:g".into(),
        topic: "events".into(),
        partition: 0,
        next_offset: 3,
    };
    let outcomes = store
        .append(AppendRequest {
            events: vec![event("k-late", now - DAY), event("k-live", now)],
            offsets: vec![offset.clone()],
        })
        .await
        .unwrap();
    assert!(
        matches!(outcomes[0], AppendOutcome::Stored { seq: 1 }),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], AppendOutcome::Stored { .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        store.hot().source_offsets("kafka:g").await.unwrap(),
        vec![offset]
    );
    // Only late events: the offsets still move on.
    let moved = SourceOffset {
        next_offset: 4,
        ..store.hot().source_offsets("kafka:g").await.unwrap()[0].clone()
    };
    let outcomes = store
        .append(AppendRequest {
            events: vec![event("k-late", now - DAY)],
            offsets: vec![moved.clone()],
        })
        .await
        .unwrap();
    assert_eq!(outcomes, vec![AppendOutcome::Duplicate { seq: 1 }]);
    assert_eq!(
        store.hot().source_offsets("kafka:g").await.unwrap(),
        vec![moved]
    );
    // An event no tier keeps fails the append as a whole (validation stops it first).
    let err = store
        .append(AppendRequest {
            events: vec![event("k-gone", now - 30 * DAY)],
            offsets: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("warm_retention"), "{err}");
    assert_eq!(warm.committed_upto("node-l.late").await.unwrap(), 1);
    store.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_cold_validation_caps_the_age_at_warm_retention() {
    let rig = warm_only("node-l").await;
    let store = &rig.store;
    let max_age = store.limits().max_age.unwrap();
    assert!(max_age < Duration::from_secs(10 * 86_400), "{max_age:?}");
    assert!(max_age > Duration::from_secs(9 * 86_400), "{max_age:?}");
    let now = now_micros();
    let body = format!(
        r#"[{{"tenant":"acme","stream":"s","key":"k","id":"old","ts":{}}},
            {{"tenant":"acme","stream":"s","key":"k","id":"late","ts":{}}}]"#,
        now - 12 * DAY,
        now - 2 * DAY
    );
    let report = ingest_json(store, &body).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 0);
    assert!(report.rejected[0].reason.contains("max_age"), "{report:?}");
    store.shutdown().await.unwrap();
}
