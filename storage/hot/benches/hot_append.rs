//! Hot tier append throughput, next to the raw redb ceiling it is built on.
//!
//! * `hot_append/store_16_writers_x_100`: `HotStore::append` with 16 concurrent writers, each
//!   sending batches of 100 realistic events (about 235 bytes as JSON), durable before each
//!   answer. Between measured rounds everything is released, as the flusher would.
//! * `hot_append/redb_ceiling_1600_per_row`: the same kind of bytes written straight to redb,
//!   one 1,600-event blob per row (what 16 × 100 events make in one group commit), append-order
//!   keys, `Durability::Immediate`: what the store's durable write costs by itself.
//!
//! Both report events per second (`Throughput::Elements`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_main};
use redb::{Database, Durability, TableDefinition};
use strata_core::hot::{AppendRequest, HotTier};
use strata_hot::{HotConfig, HotStore};
use strata_types::Event;

const WRITERS: usize = 16;
const BATCH: usize = 100;
const BATCHES_PER_WRITER: usize = 10;
const ROW_EVENTS: usize = WRITERS * BATCH;
/// 2026-11-20T00:00:00Z in epoch micros.
const T0: i64 = 1_795_651_200_000_000;

/// An event shaped like typical click traffic: two attributes and a small JSON payload.
fn realistic_event(n: u64) -> Event {
    Event {
        tenant: format!("tenant-{}", n % 4),
        stream: if n.is_multiple_of(3) {
            "purchase"
        } else {
            "click"
        }
        .into(),
        key: format!("user-{:06}", n % 100_000),
        id: format!("evt-{n:012}"),
        ts: T0 + (n as i64) * 137,
        value: Some((n % 1000) as f64 / 10.0),
        attrs: [
            ("page".to_string(), format!("/p/{}", n % 50)),
            (
                "country".to_string(),
                ["de", "fr", "us", "jp"][(n % 4) as usize].into(),
            ),
        ]
        .into(),
        payload: Some(format!(r#"{{"ref":"campaign-{}","n":{}}}"#, n % 97, n % 13)),
    }
}

fn bench_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hot = Arc::new(HotStore::open(HotConfig::new(dir.path().join("hot.redb"))).unwrap());
    let mut next_id = 0u64;

    let mut group = c.benchmark_group("hot_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(
        (WRITERS * BATCHES_PER_WRITER * BATCH) as u64,
    ));
    group.bench_function("store_16_writers_x_100", |b| {
        b.iter_custom(|iters| {
            let mut measured = Duration::ZERO;
            for _ in 0..iters {
                let work: Vec<Vec<Vec<Event>>> = (0..WRITERS)
                    .map(|_| {
                        (0..BATCHES_PER_WRITER)
                            .map(|_| {
                                (0..BATCH)
                                    .map(|_| {
                                        next_id += 1;
                                        realistic_event(next_id)
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect();
                let started = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = work
                        .into_iter()
                        .map(|batches| {
                            let hot = Arc::clone(&hot);
                            tokio::spawn(async move {
                                for events in batches {
                                    hot.append(AppendRequest {
                                        events,
                                        offsets: Vec::new(),
                                    })
                                    .await
                                    .expect("append");
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("writer task");
                    }
                });
                measured += started.elapsed();
                // What the flusher would do; not part of the measured ingest.
                rt.block_on(hot.release(hot.stats().last_seq))
                    .expect("release");
            }
            measured
        });
    });
    group.finish();
    rt.block_on(hot.shutdown()).expect("shutdown");
}

fn bench_redb_ceiling(c: &mut Criterion) {
    const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
    let events: Vec<Event> = (0..ROW_EVENTS as u64).map(realistic_event).collect();
    // The store's row: a 13-byte header, the postcard-encoded events (the store's record has
    // the same fields in the same order) and a 4-byte offset per event.
    let mut blob = vec![0u8; 13];
    for e in &events {
        blob.extend_from_slice(&postcard::to_stdvec(e).unwrap());
    }
    blob.extend(std::iter::repeat_n(0u8, 4 * events.len()));

    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("ceiling.redb")).unwrap();
    let mut key = 0u64;

    let mut group = c.benchmark_group("hot_append");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(ROW_EVENTS as u64));
    group.bench_function("redb_ceiling_1600_per_row", |b| {
        b.iter(|| {
            let mut txn = db.begin_write().unwrap();
            txn.set_durability(Durability::Immediate).unwrap();
            {
                let mut table = txn.open_table(LOG).unwrap();
                table.insert(key, blob.as_slice()).unwrap();
            }
            txn.commit().unwrap();
            key += ROW_EVENTS as u64;
        });
    });
    group.finish();
}

mod harness {
    // The macro generates an undocumented public function.
    #![allow(missing_docs, unreachable_pub)]
    criterion::criterion_group!(benches, super::bench_store, super::bench_redb_ceiling);
}
criterion_main!(harness::benches);
