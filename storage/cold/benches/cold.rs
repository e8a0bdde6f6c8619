//! Cold tier benchmarks: export throughput (rows/s) and bytes per event against the events'
//! JSON size, and a day-range hourly count + sum over the archive's Parquet files. With
//! `STRATA_BENCH_PYTHON` set (a Python with duckdb), DuckDB runs the same aggregate over
//! the same files in the same run (`benches/duckdb_aggregate.py`), for the ratio recorded
//! in BENCHMARKS.md.
//!
//! ```text
//! cargo bench -p strata-cold --bench cold
//! STRATA_BENCH_PYTHON=.venv/bin/python cargo bench -p strata-cold --bench cold
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use strata_cold::{ColdConfig, ColdStore, FileStore};
use strata_core::{
    cold::{ColdRow, ColdTier, LivePartition, PartitionKey},
    hot::HotWatermark,
};
use strata_types::{
    AggregateQuery, Event, QueryParams, StoredEvent,
    time::{DAY, SEC, day_start},
};

/// 2026-11-20T00:00:00Z.
const DAY0: i64 = 1_795_132_800_000_000;
const ROWS: usize = 200_000;

/// Events shaped like the load generator's (≈ 230 bytes of JSON each).
fn rows(p: &PartitionKey, n: usize) -> Vec<ColdRow> {
    (0..n)
        .map(|i| {
            let k = i as u64 * 2_654_435_761 % 1_000_003;
            ColdRow {
                node: "node-0".into(),
                stored: StoredEvent {
                    event: Event {
                        tenant: p.tenant.clone(),
                        stream: p.stream.clone(),
                        key: format!("user-{}", k % 5000),
                        id: format!("evt-{i:010}"),
                        ts: day_start(p.day) + (i as i64 * DAY / n as i64),
                        value: Some((k % 10_000) as f64 / 100.0),
                        attrs: BTreeMap::from([
                            ("page".to_string(), format!("/p{}", k % 20)),
                            ("country".to_string(), ["de", "fr", "us", "br"][(k % 4) as usize].into()),
                        ]),
                        payload: Some(format!(
                            r#"{{"session":"s-{}","ua":"Mozilla/5.0","ref":"https://example.invalid/{}"}}"#,
                            k % 100_000,
                            k % 977
                        )),
                    },
                    ingest_ts: day_start(p.day) + i as i64 + 5 * SEC,
                    seq: i as u64 + 1,
                },
            }
        })
        .collect()
}

fn partition(stream: &str) -> PartitionKey {
    PartitionKey {
        tenant: "acme".into(),
        stream: stream.into(),
        day: DAY0 / DAY,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let p = partition("click");
    let data = rows(&p, ROWS);
    let json_bytes: usize = data.iter().map(|r| r.stored.to_json().len() + 1).sum();

    let mut group = c.benchmark_group("cold");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("export_200k_rows", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().unwrap();
            let cold = ColdStore::new(
                Arc::new(FileStore::open(dir.path()).unwrap()),
                ColdConfig::default(),
            );
            let pages = futures::stream::iter(data.chunks(10_000).map(|c| Ok(c.to_vec()))).boxed();
            rt.block_on(cold.export(&p, None, pages)).unwrap().unwrap();
        })
    });

    // One archive for the query benchmarks: a day of two streams.
    let dir = tempfile::tempdir().unwrap();
    let cold = ColdStore::new(
        Arc::new(FileStore::open(dir.path()).unwrap()),
        ColdConfig::default(),
    );
    let mut parts: Vec<LivePartition> = Vec::new();
    for stream in ["click", "view"] {
        let p = partition(stream);
        let r = rows(&p, ROWS);
        let pages = futures::stream::iter(r.chunks(10_000).map(|c| Ok(c.to_vec()))).boxed();
        parts.push(rt.block_on(cold.export(&p, None, pages)).unwrap().unwrap());
    }
    let parquet_bytes: u64 = rt
        .block_on(cold.partitions("acme", &parts))
        .unwrap()
        .iter()
        .map(|i| i.bytes)
        .sum();
    eprintln!(
        "bytes per event: parquet {:.1}, JSON {:.1} ({:.1}x smaller)",
        parquet_bytes as f64 / (2 * ROWS) as f64,
        json_bytes as f64 / ROWS as f64,
        (json_bytes * 2) as f64 / parquet_bytes as f64
    );
    let q = AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &(DAY0).to_string(),
        to: &(DAY0 + DAY).to_string(),
        bucket: "1h",
        agg: "sum",
        ..Default::default()
    })
    .unwrap();
    group.throughput(Throughput::Elements(2 * ROWS as u64));
    group.bench_function("day_hourly_count_sum_400k_rows", |b| {
        b.iter(|| {
            let got = rt
                .block_on(cold.aggregate(&q, &parts, &HotWatermark::everything("")))
                .unwrap();
            assert_eq!(got.total_count(), 2 * ROWS as u64);
        })
    });
    group.finish();

    if let Ok(python) = std::env::var("STRATA_BENCH_PYTHON") {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/duckdb_aggregate.py");
        let started = Instant::now();
        let out = std::process::Command::new(python)
            .args([script, &dir.path().display().to_string()])
            .output()
            .expect("run the DuckDB peer");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "duckdb peer ({:?} wall incl. start-up): {}",
            started.elapsed(),
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
