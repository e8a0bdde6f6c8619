//! Property tests of the planner and the query cache over real tiers (hot in redb, the
//! embedded warm store, a local-directory archive): random events (several tenants, streams,
//! keys, attributes, values; recent and days-old times; resends), ingested in random
//! interleavings with flush, export and compaction passes, answer random queries exactly
//! like brute force over the distinct events, repeated queries come from the cache with the
//! same answer, and a late event into an archived, cached bucket changes exactly that bucket.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashSet, time::Duration};

use common::{Rig, assert_buckets, exporter_config, moving_flusher, test_cold_config, today};
use proptest::prelude::*;
use strata_core::Tier;
use strata_tiering::{AggregateAnswer, CacheStatus, Store};
use strata_types::{
    AggregateQuery, Bucket, Event, Limits, PartialAggregate, QueryParams,
    decode::DecodedBatch,
    time::{DAY, HOUR, SEC, day_of, day_start, now_micros},
};

async fn rig() -> Rig {
    rig_with(Limits::default()).await
}

/// Hot, warm and a local-directory archive, with small flush batches and export pages.
async fn rig_with(limits: Limits) -> Rig {
    Rig::builder("node-p")
        .limits(limits)
        .cold(test_cold_config())
        .flusher(moving_flusher(50))
        .exporter(exporter_config(17))
        .build()
        .await
}

/// One event of the pool, before it gets its absolute time.
#[derive(Debug, Clone)]
struct Spec {
    tenant: u8,
    stream: u8,
    key: u8,
    page: Option<u8>,
    value: Option<i16>,
    /// `None`: recent (seconds ago); `Some(d)`: `d` days before today, at `secs` into it.
    days_ago: Option<i64>,
    secs: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0u8..2,
        0u8..2,
        0u8..3,
        prop::option::of(0u8..2),
        prop::option::of(-50i16..50),
        prop::option::weighted(0.6, 2i64..5),
        0i64..86_400,
    )
        .prop_map(|(tenant, stream, key, page, value, days_ago, secs)| Spec {
            tenant,
            stream,
            key,
            page,
            value,
            days_ago,
            secs,
        })
}

fn event(i: usize, s: &Spec, now: i64) -> Event {
    let ts = match s.days_ago {
        None => now - (s.secs % 7_200) * SEC - 1,
        Some(d) => today() - d * DAY + s.secs * SEC + (i as i64 % 1_000),
    };
    Event {
        tenant: format!("t{}", s.tenant),
        stream: format!("s{}", s.stream),
        key: format!("k{}", s.key),
        id: format!("e{i}"),
        ts,
        value: s.value.map(|v| f64::from(v) / 4.0),
        attrs: s
            .page
            .map(|p| [("page".to_string(), format!("/p{p}"))].into())
            .unwrap_or_default(),
        payload: None,
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Ingest these pool entries (repeats are resends of the same event).
    Ingest(Vec<usize>),
    Flush,
    Export,
    Compact,
    Query,
}

fn op(pool: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(0..pool, 1..12).prop_map(Op::Ingest),
        1 => Just(Op::Flush),
        1 => Just(Op::Export),
        1 => Just(Op::Compact),
        2 => Just(Op::Query),
    ]
}

/// A query relative to today: `from_h` hours before today's start, `len_h` hours long.
#[derive(Debug, Clone)]
struct QSpec {
    tenant: u8,
    from_h: i64,
    len_h: i64,
    bucket: &'static str,
    agg: &'static str,
    stream: Option<&'static str>,
    group_by: Option<&'static str>,
    filter: Option<&'static str>,
}

fn qspec() -> impl Strategy<Value = QSpec> {
    (
        0u8..2,
        0i64..130,
        1i64..150,
        prop::sample::select(vec!["1m", "15m", "1h", "5h", "1d"]),
        prop::sample::select(vec!["count", "sum", "min", "max", "avg"]),
        prop::option::of(Just("s1")),
        prop::sample::select(vec![None, Some("key"), Some("attr:page")]),
        prop::option::of(Just("attr:page=/p0")),
    )
        .prop_map(
            |(tenant, from_h, len_h, bucket, agg, stream, group_by, filter)| QSpec {
                tenant,
                from_h,
                len_h,
                bucket,
                agg,
                stream,
                group_by,
                filter,
            },
        )
}

fn query(q: &QSpec, today: i64) -> AggregateQuery {
    let from = today - q.from_h * HOUR + 17 * SEC;
    let to = from + q.len_h * HOUR;
    AggregateQuery::from_params(&QueryParams {
        tenant: &format!("t{}", q.tenant),
        from: &from.to_string(),
        to: &to.to_string(),
        bucket: q.bucket,
        agg: q.agg,
        stream: q.stream,
        group_by: q.group_by,
        filter: q.filter,
    })
    .unwrap()
}

fn brute(q: &AggregateQuery, events: &[Event]) -> Vec<Bucket> {
    let mut p = PartialAggregate::default();
    events.iter().for_each(|e| p.add(q, e));
    p.finish(q.agg)
}

/// The distinct events so far (first occurrence of each tenant and id wins).
#[derive(Default)]
struct Truth {
    seen: HashSet<(String, String)>,
    events: Vec<Event>,
}

impl Truth {
    fn add(&mut self, e: &Event) -> bool {
        let fresh = self.seen.insert((e.tenant.clone(), e.id.clone()));
        if fresh {
            self.events.push(e.clone());
        }
        fresh
    }
}

async fn ask(store: &Store, q: &AggregateQuery) -> AggregateAnswer {
    store.aggregate(q).await.unwrap()
}

async fn run_case(pool: Vec<Spec>, ops: Vec<Op>, queries: Vec<QSpec>) {
    let rig = rig().await;
    let now = now_micros();
    let events: Vec<Event> = pool
        .iter()
        .enumerate()
        .map(|(i, s)| event(i, s, now))
        .collect();
    let mut truth = Truth::default();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Ingest(picks) => {
                let batch: Vec<Event> = picks.iter().map(|&i| events[i].clone()).collect();
                let fresh = batch.iter().filter(|e| truth.add(e)).count();
                let report = rig
                    .store
                    .ingest(DecodedBatch {
                        events: batch.clone(),
                        rejected: Vec::new(),
                    })
                    .await
                    .unwrap();
                assert!(report.rejected.is_empty(), "{report:?}");
                assert_eq!(report.accepted, batch.len());
                assert_eq!(report.accepted - report.duplicates, fresh, "step {step}");
            }
            Op::Flush => {
                rig.flusher().flush_due().await.unwrap();
            }
            Op::Export => while rig.exporter().export_due().await.unwrap().more_due {},
            Op::Compact => {
                rig.exporter().maintain().await.unwrap();
            }
            Op::Query => {
                let today = today();
                for qs in &queries {
                    let q = query(qs, today);
                    let want = brute(&q, &truth.events);
                    let first = ask(&rig.store, &q).await;
                    assert_buckets(&first.buckets, &want, &format!("step {step}: {q:?}"));
                    let again = ask(&rig.store, &q).await;
                    assert_buckets(&again.buckets, &want, &format!("step {step} again: {q:?}"));
                    // Ranges holding a whole day that closed over a day ago have at least one
                    // cacheable chunk, which the first answer stored.
                    let closed_day = {
                        let first_day = day_of(q.range.from) + 1;
                        day_start(first_day + 1) <= q.range.to.min(today - DAY)
                    };
                    if closed_day {
                        assert_ne!(again.cache, CacheStatus::Miss, "step {step}: {q:?}");
                    }
                }
            }
        }
    }
    // Finally everything moves as far as it can, and every query still agrees.
    rig.flusher().flush_due().await.unwrap();
    while rig.exporter().export_due().await.unwrap().more_due {}
    rig.exporter().maintain().await.unwrap();
    let today = today();
    for qs in &queries {
        let q = query(qs, today);
        let got = ask(&rig.store, &q).await;
        assert_buckets(
            &got.buckets,
            &brute(&q, &truth.events),
            &format!("end: {q:?}"),
        );
    }
    rig.store.shutdown().await.unwrap();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tiers_and_cache_answer_like_brute_force(
        (pool, ops) in prop::collection::vec(spec(), 8..40).prop_flat_map(|pool| {
            let n = pool.len();
            (Just(pool), prop::collection::vec(op(n), 3..14))
        }),
        queries in prop::collection::vec(qspec(), 1..4),
    ) {
        runtime().block_on(run_case(pool, ops, queries));
    }
}

/// A late event into an archived partition whose bucket is cached: the event is amended
/// into cold before it is acknowledged, and the next answer differs from the cached one in
/// exactly that bucket. A resend of it is a duplicate found in cold.
#[test]
fn late_event_into_an_archived_cached_bucket_changes_exactly_that_bucket() {
    runtime().block_on(async {
        let rig = rig().await;
        let day = today() - 3 * DAY;
        let old: Vec<Event> = (0..60)
            .map(|i| {
                let mut e = event(
                    i,
                    &Spec {
                        tenant: 0,
                        stream: (i % 2) as u8,
                        key: (i % 3) as u8,
                        page: Some((i % 2) as u8),
                        value: Some(i as i16),
                        days_ago: Some(3),
                        secs: (i as i64) * 1_200,
                    },
                    now_micros(),
                );
                e.ts = day + i as i64 * 1_200 * SEC;
                e
            })
            .collect();
        let report = rig
            .store
            .ingest(DecodedBatch {
                events: old.clone(),
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(report.accepted, 60);
        rig.flusher().flush_due().await.unwrap();
        while rig.exporter().export_due().await.unwrap().more_due {}
        assert_eq!(
            rig.store.archive_partitions("t0").await.unwrap().len(),
            2,
            "both streams archived"
        );

        let q = AggregateQuery::from_params(&QueryParams {
            tenant: "t0",
            from: &(day - DAY).to_string(),
            to: &(day + 2 * DAY).to_string(),
            bucket: "1h",
            agg: "sum",
            group_by: Some("attr:page"),
            ..Default::default()
        })
        .unwrap();
        let first = ask(&rig.store, &q).await;
        assert_eq!(first.cache, CacheStatus::Miss);
        assert_eq!(first.tiers, vec![Tier::Hot, Tier::Cold]);
        assert_buckets(&first.buckets, &brute(&q, &old), "archived");
        let cached = ask(&rig.store, &q).await;
        assert_eq!(cached.cache, CacheStatus::Hit);
        assert_eq!(cached.buckets, first.buckets);

        let mut late = old[7].clone();
        late.id = "late-1".into();
        late.ts = day + 13 * HOUR + 5 * SEC;
        late.value = Some(1_000.0);
        let report = rig
            .store
            .ingest(DecodedBatch {
                events: vec![late.clone()],
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!((report.accepted, report.duplicates), (1, 0));
        let parts = rig.store.archive_partitions("t0").await.unwrap();
        assert!(
            parts.iter().any(|p| p.version == 2 && p.files == 2),
            "amended in cold: {parts:?}"
        );

        let after = ask(&rig.store, &q).await;
        assert_ne!(
            after.cache,
            CacheStatus::Hit,
            "the bumped day was recomputed"
        );
        let mut all = old.clone();
        all.push(late.clone());
        assert_buckets(&after.buckets, &brute(&q, &all), "after the late event");
        let bucket = q.bucket_start(late.ts);
        let group = q.group_of(&late);
        let changed: Vec<&Bucket> = after
            .buckets
            .iter()
            .filter(|b| !first.buckets.contains(b))
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!((changed[0].start, &changed[0].group), (bucket, &group));
        assert_eq!(after.buckets.len(), first.buckets.len());

        // A resend of the late event, and of an archived one, are duplicates found in cold.
        let report = rig
            .store
            .ingest(DecodedBatch {
                events: vec![late, old[3].clone()],
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!((report.accepted, report.duplicates), (2, 2));
        let again = ask(&rig.store, &q).await;
        assert_eq!(again.cache, CacheStatus::Hit);
        assert_eq!(again.buckets, after.buckets);

        let stats = rig.store.cache_stats();
        assert!(stats.hits >= 2 && stats.entries > 0, "{stats:?}");
        rig.store.shutdown().await.unwrap();
    });
}

/// Events young enough for the hot tier whose partition is already archived (a long
/// `max_lateness`, a replayed batch) are deduplicated against cold by the ordinary append
/// path too.
#[test]
fn resends_into_archived_partitions_are_duplicates_on_the_hot_path() {
    runtime().block_on(async {
        let rig = rig_with(Limits {
            max_lateness: Duration::from_secs(30 * 86_400),
            ..Limits::default()
        })
        .await;
        let day = today() - 3 * DAY;
        let spec = Spec {
            tenant: 1,
            stream: 0,
            key: 0,
            page: None,
            value: Some(4),
            days_ago: Some(3),
            secs: 0,
        };
        let old: Vec<Event> = (0..20)
            .map(|i| {
                let mut e = event(i, &spec, now_micros());
                e.ts = day + i as i64 * 600 * SEC;
                e
            })
            .collect();
        let ingest = |events: Vec<Event>| {
            let store = rig.store.clone();
            async move {
                store
                    .ingest(DecodedBatch {
                        events,
                        rejected: Vec::new(),
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(ingest(old.clone()).await.duplicates, 0);
        rig.flusher().flush_due().await.unwrap();
        while rig.exporter().export_due().await.unwrap().more_due {}
        assert_eq!(rig.store.archive_partitions("t1").await.unwrap().len(), 1);
        assert_eq!(rig.store.hot_stats().events, 0);

        let mut batch = old[5..9].to_vec();
        let mut fresh = old[0].clone();
        fresh.id = "fresh".into();
        batch.push(fresh.clone());
        let report = ingest(batch).await;
        assert_eq!((report.accepted, report.duplicates), (5, 4), "{report:?}");
        assert_eq!(
            rig.store.hot_stats().events,
            1,
            "only the new event reached hot"
        );
        let q = AggregateQuery::from_params(&QueryParams {
            tenant: "t1",
            from: &day.to_string(),
            to: &(day + DAY).to_string(),
            bucket: "1d",
            agg: "count",
            ..Default::default()
        })
        .unwrap();
        let mut all = old;
        all.push(fresh);
        assert_buckets(
            &ask(&rig.store, &q).await.buckets,
            &brute(&q, &all),
            "count",
        );
        rig.store.shutdown().await.unwrap();
    });
}
