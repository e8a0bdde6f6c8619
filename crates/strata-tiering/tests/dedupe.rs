//! Deduplication across the hot/warm hand-off, with a real embedded hot tier and a real
//! embedded warm tier: an event that the flusher already moved to warm and that arrives again
//! (a client retry, a Kafka redelivery, a replay) is a duplicate, not a second event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::Rig;
use strata_core::hot::{AppendOutcome, AppendRequest, SourceOffset};
use strata_tiering::{Flusher, FlusherConfig, Store};
use strata_types::{
    AggregateQuery, Event, QueryParams,
    decode::DecodedBatch,
    time::{DAY, HOUR, SEC, now_micros},
};

/// A store without a cold tier; the tests that need a flusher build it, since without one
/// nothing leaves hot and the write path never asks warm.
async fn rig() -> Rig {
    Rig::builder("node-a").build().await
}

fn events(n: usize, ts: i64) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            tenant: if i % 3 == 0 { "beta" } else { "acme" }.into(),
            stream: "click".into(),
            key: format!("user-{}", i % 7),
            id: format!("evt-{i}"),
            ts: ts + i as i64 * SEC,
            value: Some(i as f64),
            attrs: Default::default(),
            payload: Some(format!(r#"{{"i":{i}}}"#)),
        })
        .collect()
}

fn count_query(tenant: &str, from: i64) -> AggregateQuery {
    let (from, to) = (from.to_string(), (now_micros() + HOUR).to_string());
    AggregateQuery::from_params(&QueryParams {
        tenant,
        from: &from,
        to: &to,
        bucket: "1d",
        agg: "count",
        ..Default::default()
    })
    .unwrap()
}

async fn total(store: &Store, tenant: &str, from: i64) -> f64 {
    let answer = store.aggregate(&count_query(tenant, from)).await.unwrap();
    answer.buckets.iter().filter_map(|b| b.value).sum()
}

/// Flushes everything in hot to warm (hot retention zero).
async fn flush_all(flusher: &Flusher) {
    while flusher.flush_due().await.unwrap().batches > 0 {}
}

#[tokio::test]
async fn resent_events_after_flush_are_duplicates() {
    let rig = rig().await;
    let store = &rig.store;
    let flusher = Flusher::for_store(
        store,
        FlusherConfig {
            hot_retention: Duration::ZERO,
            ..FlusherConfig::default()
        },
    );
    let start = now_micros() - 600 * SEC;
    let sent = events(30, start);
    let report = store
        .ingest(DecodedBatch {
            events: sent.clone(),
            rejected: vec![],
        })
        .await
        .unwrap();
    assert_eq!((report.accepted, report.duplicates), (30, 0));
    flush_all(&flusher).await;
    assert_eq!(store.hot_stats().events, 0, "everything moved to warm");

    // The same events again, one of them with a changed value: all duplicates, nothing
    // stored twice, the first write wins.
    let mut again = sent.clone();
    again[1].value = Some(1000.0);
    let report = store
        .ingest(DecodedBatch {
            events: again,
            rejected: vec![],
        })
        .await
        .unwrap();
    assert_eq!((report.accepted, report.duplicates), (30, 30));
    assert_eq!(store.hot_stats().events, 0, "no duplicate reached hot");
    assert_eq!(total(store, "acme", start).await, 20.0);
    assert_eq!(total(store, "beta", start).await, 10.0);
    let e = store.get_event("acme", "evt-1").await.unwrap().unwrap();
    assert_eq!(e.event.value, Some(1.0));

    // A mix of flushed and new events: only the new ones are stored.
    let mut mixed = events(40, start);
    mixed.rotate_left(7);
    let outcomes = store
        .append(AppendRequest {
            events: mixed.clone(),
            offsets: vec![],
        })
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 40);
    for (e, o) in mixed.iter().zip(&outcomes) {
        let n: usize = e.id.trim_start_matches("evt-").parse().unwrap();
        assert_eq!(
            matches!(o, AppendOutcome::Duplicate { .. }),
            n < 30,
            "{} -> {o:?}",
            e.id
        );
    }
    assert_eq!(store.hot_stats().events, 10);
    assert_eq!(
        total(store, "acme", start).await + total(store, "beta", start).await,
        40.0
    );
}

#[tokio::test]
async fn offsets_advance_when_every_event_was_already_flushed() {
    let rig = rig().await;
    let store = &rig.store;
    let flusher = Flusher::for_store(
        store,
        FlusherConfig {
            hot_retention: Duration::ZERO,
            ..FlusherConfig::default()
        },
    );
    let sent = events(5, now_micros() - 60 * SEC);
    let offset = |next| SourceOffset {
        source: "kafka:g".into(),
        topic: "events".into(),
        partition: 0,
        next_offset: next,
    };
    store
        .append(AppendRequest {
            events: sent.clone(),
            offsets: vec![offset(5)],
        })
        .await
        .unwrap();
    flush_all(&flusher).await;
    // A redelivery of the same messages after the flush.
    let outcomes = store
        .append(AppendRequest {
            events: sent,
            offsets: vec![offset(10)],
        })
        .await
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, AppendOutcome::Duplicate { .. }))
    );
    assert_eq!(store.hot_stats().events, 0);
    assert_eq!(
        store.hot().source_offsets("kafka:g").await.unwrap(),
        vec![offset(10)]
    );
}

#[tokio::test]
async fn recent_events_need_no_warm_lookup_without_a_flusher() {
    // Without a flusher nothing leaves hot, and hot's index alone deduplicates.
    let rig = rig().await;
    let store = &rig.store;
    let sent = events(4, now_micros() - 3 * DAY);
    for expect_dups in [0, 4] {
        let report = store
            .ingest(DecodedBatch {
                events: sent.clone(),
                rejected: vec![],
            })
            .await
            .unwrap();
        assert_eq!(report.duplicates, expect_dups);
    }
}
