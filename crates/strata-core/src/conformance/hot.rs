//! The hot tier conformance suite. Run it from a backend's tests:
//!
//! ```ignore
//! strata_core::conformance::hot::run_all(|| MyHarness::new()).await;
//! ```

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use strata_types::{
    AggregateQuery, Event, GroupBy, PartialAggregate, QueryParams, StoredEvent, TimeRange,
};

use super::{Lcg, assert_same};
use crate::hot::{AppendOutcome, AppendRequest, HotTier, SourceOffset};

/// Opens a backend over persistent state that outlives each instance.
#[async_trait]
pub trait HotHarness: Send + Sync {
    /// Opens the backend. Opening again after [`HotTier::shutdown`] of the previous instance
    /// must find everything that instance committed.
    async fn open(&self) -> Arc<dyn HotTier>;
}

/// 2026-11-20T00:00:00Z in epoch micros: the suite's time origin.
pub const T0: i64 = 1_795_651_200_000_000;
const SEC: i64 = 1_000_000;

/// An event of the suite's data set.
pub fn event(tenant: &str, id: &str, ts: i64, value: Option<f64>) -> Event {
    Event {
        tenant: tenant.into(),
        stream: if id.len().is_multiple_of(2) {
            "click"
        } else {
            "view"
        }
        .into(),
        key: format!("user-{}", id.len() % 3),
        id: id.into(),
        ts,
        value,
        attrs: [("page".to_string(), format!("/p{}", id.len() % 4))].into(),
        payload: Some(format!(r#"{{"id": "{id}", "n": [1, 2.50]}}"#)),
    }
}

fn random_events(tenant: &str, n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|i| {
            let mut e = event(
                tenant,
                &format!("{tenant}-{seed}-{i}"),
                T0 + rng.below(3 * 3600) as i64 * SEC,
                (rng.below(4) != 0).then(|| rng.below(1000) as f64 / 4.0),
            );
            e.key = format!("user-{}", rng.below(5));
            e.stream = ["click", "view"][rng.below(2) as usize].into();
            e.attrs = [("page".to_string(), format!("/p{}", rng.below(3)))].into();
            e
        })
        .collect()
}

fn query(tenant: &str, group_by: Option<&str>, filter: Option<&str>) -> AggregateQuery {
    let from = T0.to_string();
    let to = (T0 + 4 * 3600 * SEC).to_string();
    AggregateQuery::from_params(&QueryParams {
        tenant,
        from: &from,
        to: &to,
        bucket: "15m",
        agg: "sum",
        stream: None,
        group_by,
        filter,
    })
    .expect("suite query is valid")
}

fn brute_force(q: &AggregateQuery, events: &[Event]) -> PartialAggregate {
    let mut p = PartialAggregate::default();
    events.iter().for_each(|e| p.add(q, e));
    p
}

async fn append(hot: &dyn HotTier, events: Vec<Event>) -> Vec<AppendOutcome> {
    hot.append(AppendRequest {
        events,
        offsets: vec![],
    })
    .await
    .expect("append")
}

/// Runs every scenario, each on a fresh harness from `new_harness`.
pub async fn run_all<H: HotHarness>(new_harness: impl Fn() -> H) {
    append_then_get(&new_harness()).await;
    dedupe_by_tenant_and_id(&new_harness()).await;
    aggregates_match_brute_force(&new_harness()).await;
    survives_reopen(&new_harness()).await;
    concurrent_appends_get_unique_seqs(&new_harness()).await;
    offsets_commit_with_events(&new_harness()).await;
    flush_and_release(&new_harness()).await;
    scan_orders_by_time(&new_harness()).await;
}

/// Appended events read back field for field; other tenants see nothing.
pub async fn append_then_get(h: &dyn HotHarness) {
    let hot = h.open().await;
    let e = event("acme", "evt-1", T0 + 5 * SEC, Some(1.5));
    let out = append(hot.as_ref(), vec![e.clone()]).await;
    let AppendOutcome::Stored { seq } = out[0] else {
        panic!("append_then_get: expected Stored, got {out:?}")
    };
    let got = hot.get("acme", "evt-1").await.expect("get").expect("found");
    assert_eq!(got.event, e, "append_then_get: event differs");
    assert_eq!(got.seq, seq);
    assert!(got.ingest_ts > 0);
    assert!(hot.get("other", "evt-1").await.expect("get").is_none());
    assert!(hot.get("acme", "evt-2").await.expect("get").is_none());
    hot.shutdown().await.expect("shutdown");
}

/// One event per `(tenant, id)`, within a request and across requests.
pub async fn dedupe_by_tenant_and_id(h: &dyn HotHarness) {
    let hot = h.open().await;
    let a = event("acme", "dup", T0, Some(1.0));
    let mut a2 = a.clone();
    a2.value = Some(99.0);
    let b = event("beta", "dup", T0, Some(2.0));
    let out = append(hot.as_ref(), vec![a.clone(), a2.clone(), b]).await;
    let AppendOutcome::Stored { seq: first } = out[0] else {
        panic!("dedupe: first must be stored: {out:?}")
    };
    assert_eq!(out[1], AppendOutcome::Duplicate { seq: first });
    assert!(matches!(out[2], AppendOutcome::Stored { .. }), "{out:?}");
    let again = append(hot.as_ref(), vec![a2]).await;
    assert_eq!(again[0], AppendOutcome::Duplicate { seq: first });
    let got = hot.get("acme", "dup").await.expect("get").expect("found");
    assert_eq!(got.event.value, Some(1.0), "dedupe: first write wins");
    let q = query("acme", None, None);
    let p = hot.aggregate(&q).await.expect("aggregate").partial;
    assert_eq!(p.total_count(), 1, "dedupe: counted once");
    hot.shutdown().await.expect("shutdown");
}

/// Aggregates equal a brute-force pass over the same events, for each grouping and filter.
pub async fn aggregates_match_brute_force(h: &dyn HotHarness) {
    let hot = h.open().await;
    let acme = random_events("acme", 600, 1);
    let other = random_events("other", 200, 2);
    for chunk in acme.chunks(97) {
        append(hot.as_ref(), chunk.to_vec()).await;
    }
    append(hot.as_ref(), other).await;
    let cases = [
        (None, None),
        (Some("key"), None),
        (Some("attr:page"), None),
        (Some("attr:missing"), None),
        (None, Some("attr:page=/p1")),
        (Some("key"), Some("attr:page=/p2")),
    ];
    for (group_by, filter) in cases {
        let mut q = query("acme", group_by, filter);
        for stream in [None, Some("click".to_string())] {
            q.stream = stream;
            let got = hot.aggregate(&q).await.expect("aggregate").partial;
            assert_same(
                &format!("aggregate {group_by:?} {filter:?} {:?}", q.stream),
                &got,
                &brute_force(&q, &acme),
            );
        }
    }
    let mut q = query("acme", None, None);
    q.group_by = GroupBy::None;
    q.range = TimeRange {
        from: T0 + 3600 * SEC,
        to: T0 + 3600 * SEC + 7 * 60 * SEC,
    };
    let got = hot.aggregate(&q).await.expect("aggregate").partial;
    assert_same("aggregate sub-range", &got, &brute_force(&q, &acme));
    hot.shutdown().await.expect("shutdown");
}

/// Everything acknowledged is there after a reopen; sequence numbers keep increasing and
/// deduplication still holds.
pub async fn survives_reopen(h: &dyn HotHarness) {
    let events = random_events("acme", 300, 3);
    let hot = h.open().await;
    let mut last = 0;
    for chunk in events.chunks(50) {
        for o in append(hot.as_ref(), chunk.to_vec()).await {
            if let AppendOutcome::Stored { seq } = o {
                last = last.max(seq);
            }
        }
    }
    hot.shutdown().await.expect("shutdown");
    drop(hot);

    let hot = h.open().await;
    let q = query("acme", Some("key"), None);
    let got = hot.aggregate(&q).await.expect("aggregate").partial;
    assert_same("survives_reopen", &got, &brute_force(&q, &events));
    let probe = &events[17];
    let found = hot
        .get("acme", &probe.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(&found.event, probe);
    let out = append(hot.as_ref(), vec![events[0].clone()]).await;
    assert!(
        matches!(out[0], AppendOutcome::Duplicate { .. }),
        "survives_reopen: dedupe index must be rebuilt: {out:?}"
    );
    let out = append(hot.as_ref(), vec![event("acme", "after-reopen", T0, None)]).await;
    let AppendOutcome::Stored { seq } = out[0] else {
        panic!("survives_reopen: {out:?}")
    };
    assert!(seq > last, "survives_reopen: seq {seq} must exceed {last}");
    assert!(hot.stats().last_seq >= seq);
    hot.shutdown().await.expect("shutdown");
}

/// Many concurrent writers: every event stored once, every seq distinct.
pub async fn concurrent_appends_get_unique_seqs(h: &dyn HotHarness) {
    let hot = h.open().await;
    let mut tasks = Vec::new();
    for w in 0..16 {
        let hot = Arc::clone(&hot);
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for r in 0..10 {
                let events = (0..20)
                    .map(|i| event("acme", &format!("w{w}-r{r}-i{i}"), T0 + i * SEC, Some(1.0)))
                    .collect();
                for o in append(hot.as_ref(), events).await {
                    match o {
                        AppendOutcome::Stored { seq } => seqs.push(seq),
                        other => panic!("concurrent: unexpected {other:?}"),
                    }
                }
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer task"));
    }
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "concurrent: duplicate sequence numbers");
    assert_eq!(n, 16 * 10 * 20);
    let p = hot
        .aggregate(&query("acme", None, None))
        .await
        .expect("aggregate")
        .partial;
    assert_eq!(p.total_count(), n as u64);
    assert_eq!(hot.stats().events, n as u64);
    hot.shutdown().await.expect("shutdown");
}

/// Offsets committed with an append are read back, also after a reopen; the latest wins.
pub async fn offsets_commit_with_events(h: &dyn HotHarness) {
    let hot = h.open().await;
    let off = |p: i32, o: i64| SourceOffset {
        source: "kafka:g".into(),
        topic: "events".into(),
        partition: p,
        next_offset: o,
    };
    hot.append(AppendRequest {
        events: vec![event("acme", "k1", T0, None)],
        offsets: vec![off(0, 10), off(1, 5)],
    })
    .await
    .expect("append");
    // A batch that is all duplicates still advances the offsets.
    hot.append(AppendRequest {
        events: vec![event("acme", "k1", T0, None)],
        offsets: vec![off(0, 11)],
    })
    .await
    .expect("append");
    hot.shutdown().await.expect("shutdown");
    drop(hot);
    let hot = h.open().await;
    let mut got = hot.source_offsets("kafka:g").await.expect("offsets");
    got.sort_by_key(|o| o.partition);
    assert_eq!(got, vec![off(0, 11), off(1, 5)]);
    assert!(
        hot.source_offsets("kafka:other")
            .await
            .expect("offsets")
            .is_empty()
    );
    hot.shutdown().await.expect("shutdown");
}

/// The flusher's view: oldest first, whole commits, and released events leave the hot tier
/// for good (also after a reopen), with the watermark reported by aggregates.
pub async fn flush_and_release(h: &dyn HotHarness) {
    let hot = h.open().await;
    let first = random_events("acme", 100, 4);
    let second = random_events("acme", 100, 5);
    append(hot.as_ref(), first.clone()).await;
    append(hot.as_ref(), second.clone()).await;
    assert!(
        hot.pending_flush(1000, 0).await.expect("pending").is_none(),
        "flush: nothing was ingested before epoch 0"
    );
    let batch = hot
        .pending_flush(1, i64::MAX)
        .await
        .expect("pending")
        .expect("a batch");
    assert_eq!(batch.events.len(), 100, "flush: whole commits");
    assert_eq!(
        batch
            .events
            .iter()
            .map(|e| e.event.clone())
            .collect::<Vec<_>>(),
        first
    );
    assert!(batch.events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(batch.first_seq, batch.events[0].seq);
    hot.release(batch.last_seq).await.expect("release");
    let q = query("acme", None, None);
    let hp = hot.aggregate(&q).await.expect("aggregate");
    assert_eq!(hp.released_upto, batch.last_seq);
    assert_same(
        "flush: after release",
        &hp.partial,
        &brute_force(&q, &second),
    );
    assert!(hot.get("acme", &first[0].id).await.expect("get").is_none());
    assert_eq!(hot.stats().events, 100);
    hot.shutdown().await.expect("shutdown");
    drop(hot);

    let hot = h.open().await;
    let hp = hot.aggregate(&q).await.expect("aggregate");
    assert_eq!(
        hp.released_upto, batch.last_seq,
        "flush: watermark is durable"
    );
    assert_same(
        "flush: after reopen",
        &hp.partial,
        &brute_force(&q, &second),
    );
    let next = hot
        .pending_flush(1000, i64::MAX)
        .await
        .expect("pending")
        .expect("a batch");
    assert!(next.first_seq > batch.last_seq);
    assert_eq!(next.events.len(), 100);
    hot.release(next.last_seq).await.expect("release");
    assert!(
        hot.pending_flush(1000, i64::MAX)
            .await
            .expect("pending")
            .is_none()
    );
    assert_eq!(hot.stats().events, 0);
    hot.shutdown().await.expect("shutdown");
}

/// Scans return one tenant's events in `(ts, seq)` order, filtered by range and stream.
pub async fn scan_orders_by_time(h: &dyn HotHarness) {
    let hot = h.open().await;
    let events = random_events("acme", 300, 6);
    for chunk in events.chunks(60) {
        append(hot.as_ref(), chunk.to_vec()).await;
    }
    append(hot.as_ref(), random_events("other", 50, 7)).await;
    let range = TimeRange {
        from: T0 + 1800 * SEC,
        to: T0 + 7200 * SEC,
    };
    for stream in [None, Some("view")] {
        let got: Vec<StoredEvent> = hot.scan("acme", range, stream).await.expect("scan");
        assert!(
            got.windows(2)
                .all(|w| (w[0].event.ts, w[0].seq) < (w[1].event.ts, w[1].seq))
        );
        let mut want: BTreeMap<&str, &Event> = BTreeMap::new();
        for e in &events {
            if range.contains(e.ts) && stream.is_none_or(|s| s == e.stream) {
                want.insert(&e.id, e);
            }
        }
        assert_eq!(got.len(), want.len(), "scan {stream:?}: count");
        for g in &got {
            assert_eq!(
                Some(&&g.event),
                want.get(g.event.id.as_str()),
                "scan: event differs"
            );
        }
    }
    hot.shutdown().await.expect("shutdown");
}
