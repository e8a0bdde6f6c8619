//! The Parquet archive on each blob store: exports (with amendments) read back equal to
//! brute force through aggregates, id lookups and range reads; Object Lock retention is
//! applied to old partitions and refuses deletes; legal holds; and (with `server-tests`)
//! the same on S3 plus DuckDB reading the archive directly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::file_store;
use futures::StreamExt;
use strata_cold::{ColdConfig, ColdStore, LockSettings};
use strata_core::{
    cold::{BlobStore, ColdRow, ColdTier, LivePartition, PartitionKey, RetentionMode},
    conformance::assert_same,
    hot::HotWatermark,
};
use strata_types::{
    AggregateQuery, Event, PartialAggregate, QueryParams, StoredEvent, TimeRange,
    time::{DAY, HOUR, SEC, day_of, day_start},
};

/// 2026-11-20T00:00:00Z.
const DAY0: i64 = 1_795_132_800_000_000;

fn rows(partition: &PartitionKey, n: usize, seed: u64) -> Vec<ColdRow> {
    (0..n)
        .map(|i| {
            let k = i as u64 * 7919 + seed * 104_729;
            let mut attrs = BTreeMap::new();
            if !k.is_multiple_of(4) {
                attrs.insert("page".to_string(), format!("/p{}", k % 3));
            }
            ColdRow {
                node: format!("node-{}", k % 2),
                stored: StoredEvent {
                    event: Event {
                        tenant: partition.tenant.clone(),
                        stream: partition.stream.clone(),
                        key: format!("user-{}-\"ü", k % 9),
                        id: format!("{}-{seed}-{i}", partition.stream),
                        ts: day_start(partition.day)
                            + ((k * 13) % 86_400) as i64 * SEC
                            + (k % 1000) as i64,
                        value: (!k.is_multiple_of(5)).then_some((k % 1000) as f64 / 8.0 - 20.0),
                        attrs,
                        payload: (!k.is_multiple_of(3))
                            .then(|| format!(r#"{{"i": {i},  "n": [1, 2.50], "s": "é\n"}}"#)),
                    },
                    ingest_ts: DAY0 + 10 * DAY + i as i64,
                    seq: k,
                },
            }
        })
        .collect()
}

fn pages(rows: Vec<ColdRow>) -> strata_core::cold::RowPages<'static> {
    let chunks: Vec<strata_core::Result<Vec<ColdRow>>> =
        rows.chunks(113).map(|c| Ok(c.to_vec())).collect();
    futures::stream::iter(chunks).boxed()
}

fn query(bucket: &str, agg: &str, group_by: Option<&str>, stream: Option<&str>) -> AggregateQuery {
    let mut q = AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &(DAY0 - DAY).to_string(),
        to: &(DAY0 + 3 * DAY).to_string(),
        bucket,
        agg,
        group_by,
        ..Default::default()
    })
    .unwrap();
    q.stream = stream.map(str::to_owned);
    q
}

fn everything() -> HotWatermark {
    HotWatermark::everything("node-0")
}

async fn check_reads(cold: &ColdStore, parts: &[LivePartition], all: &[ColdRow]) {
    let mut narrow = query("1m", "max", None, None);
    narrow.range = TimeRange {
        from: DAY0 + 3 * HOUR + 5,
        to: DAY0 + 9 * HOUR,
    };
    for q in [
        query("1h", "count", None, None),
        query("1d", "sum", Some("key"), None),
        query("15m", "avg", Some("attr:page"), Some("view")),
        narrow,
    ] {
        let mut want = PartialAggregate::default();
        all.iter().for_each(|r| want.add(&q, &r.stored.event));
        let got = cold.aggregate(&q, parts, &everything()).await.unwrap();
        assert_same(&format!("{q:?}"), &got, &want);
    }
    // Rows the hot tier of a node still answers are left out, like in warm.
    let wm = HotWatermark::new("node-1", 400_000);
    let q = query("1h", "count", Some("key"), None);
    let mut want = PartialAggregate::default();
    all.iter()
        .filter(|r| wm.includes(&r.node, r.stored.seq))
        .for_each(|r| want.add(&q, &r.stored.event));
    assert!(want.total_count() < all.len() as u64);
    let got = cold.aggregate(&q, parts, &wm).await.unwrap();
    assert_same("watermark", &got, &want);
    for r in all.iter().step_by(53) {
        let got = cold
            .get("acme", &r.stored.event.id, parts)
            .await
            .unwrap()
            .expect("found by id");
        assert_eq!(got, r.stored);
    }
    assert!(cold.get("acme", "nope", parts).await.unwrap().is_none());
    assert!(
        cold.get("other", &all[0].stored.event.id, parts)
            .await
            .unwrap()
            .is_none(),
        "another tenant's lookup finds nothing"
    );
    let range = TimeRange {
        from: DAY0 + HOUR,
        to: DAY0 + DAY + 2 * HOUR,
    };
    let read: Vec<StoredEvent> = cold
        .read(parts.to_vec(), range, Some("click".into()))
        .map(|r| r.unwrap())
        .collect()
        .await;
    let mut want: Vec<&StoredEvent> = all
        .iter()
        .map(|r| &r.stored)
        .filter(|s| range.contains(s.event.ts) && s.event.stream == "click")
        .collect();
    let mut got: Vec<&StoredEvent> = read.iter().collect();
    want.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    got.sort_by(|a, b| a.event.id.cmp(&b.event.id));
    assert_eq!(got, want, "range read");
}

/// Exports three partitions (one amended), checks every read path and `verify`.
async fn round_trip(blobs: Arc<dyn BlobStore>) -> (ColdStore, Vec<LivePartition>, Vec<ColdRow>) {
    let cold = ColdStore::new(
        blobs,
        ColdConfig {
            rows_per_file: 700,
            row_group_rows: 128,
            orphan_grace: Duration::ZERO,
            ..ColdConfig::default()
        },
    );
    let mut all = Vec::new();
    let mut parts = Vec::new();
    for (stream, day) in [("click", 0), ("view", 0), ("click", 1)] {
        let p = PartitionKey {
            tenant: "acme".into(),
            stream: stream.into(),
            day: day_of(DAY0) + day,
        };
        let r = rows(&p, 1500, day as u64);
        let live = cold
            .export(&p, None, pages(r.clone()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(live.version, 1);
        all.extend(r);
        parts.push(live);
    }
    // An amendment: version 2 lists the first files and the new one.
    let p = parts[0].partition.clone();
    let late = rows(&p, 200, 9);
    let v2 = cold
        .export(&p, Some(&parts[0]), pages(late.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v2.version, 2);
    parts[0] = v2;
    all.extend(late);
    assert!(
        cold.export(&p, Some(&parts[0]), pages(Vec::new()))
            .await
            .unwrap()
            .is_none(),
        "no rows, no version"
    );
    check_reads(&cold, &parts, &all).await;
    let infos = cold.partitions("acme", &parts).await.unwrap();
    assert_eq!(infos.len(), 3);
    assert_eq!(infos.iter().map(|i| i.rows).sum::<u64>(), all.len() as u64);
    let report = cold.verify("acme", &parts, None).await.unwrap();
    assert!(report.is_ok(), "{report:#?}");
    assert_eq!(report.manifests, 4);
    assert_eq!(
        report.files_checked,
        infos.iter().map(|i| i.files).sum::<u64>()
    );
    // Compaction merges the amended partition's files into one; the merged rows read the
    // same.
    let compaction = cold.compact(&parts[0]).await.unwrap().expect("small files");
    assert_eq!(compaction.live.version, 3);
    assert_eq!(compaction.written_files, 1);
    let old = parts[0].clone();
    parts[0] = compaction.live.clone();
    check_reads(&cold, &parts, &all).await;
    cold.delete_objects(&compaction.obsolete).await.unwrap();
    assert!(cold.compact(&parts[0]).await.unwrap().is_none());
    let report = cold.verify("acme", &parts, None).await.unwrap();
    assert!(
        report.is_ok() && report.superseded.is_empty(),
        "{report:#?}"
    );
    // The previous version is history, not live: reading through it now fails loudly
    // rather than silently missing files.
    assert!(
        cold.aggregate(&query("1h", "count", None, None), &[old], &everything())
            .await
            .is_err()
    );
    (cold, parts, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(file_store(dir.path())).await;
}

/// A blob store that behaves like a remote one (no local paths) and meters what is read:
/// whole-object reads of Parquet files and the bytes fetched by ranged GETs. A wrapper over
/// the local directory, since what is counted is Strata's access pattern, not the server.
#[derive(Debug)]
struct MeteredRemote {
    inner: Arc<dyn BlobStore>,
    whole_parquet_reads: std::sync::atomic::AtomicU64,
    range_bytes: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl BlobStore for MeteredRemote {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put(
        &self,
        key: &str,
        body: bytes::Bytes,
        options: &strata_core::cold::PutOptions,
    ) -> strata_core::Result<strata_core::cold::ObjectMeta> {
        self.inner.put(key, body, options).await
    }
    async fn get(&self, key: &str) -> strata_core::Result<Option<bytes::Bytes>> {
        if key.ends_with(".parquet") {
            self.whole_parquet_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get(key).await
    }
    async fn get_range(
        &self,
        key: &str,
        range: std::ops::Range<u64>,
    ) -> strata_core::Result<Option<bytes::Bytes>> {
        let got = self.inner.get_range(key, range).await?;
        if let Some(b) = &got {
            self.range_bytes
                .fetch_add(b.len() as u64, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(got)
    }
    async fn head(&self, key: &str) -> strata_core::Result<Option<strata_core::cold::ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> strata_core::Result<Vec<strata_core::cold::ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> strata_core::Result<()> {
        self.inner.delete(key).await
    }
    async fn set_legal_hold(&self, key: &str, on: bool) -> strata_core::Result<()> {
        self.inner.set_legal_hold(key, on).await
    }
    async fn set_retention(
        &self,
        key: &str,
        retention: &strata_core::cold::Retention,
    ) -> strata_core::Result<()> {
        self.inner.set_retention(key, retention).await
    }
    async fn get_to_file(&self, key: &str, path: &std::path::Path) -> strata_core::Result<bool> {
        if key.ends_with(".parquet") {
            self.whole_parquet_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get_to_file(key, path).await
    }
}

/// An id lookup on a remote store reads footers, bloom filters and candidate pages with
/// ranged GETs, never a whole file: a missing id costs a small fraction of the archive's
/// bytes (it used to download every file of the tenant's partitions), and a present one is
/// found exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_lookups_on_a_remote_store_read_ranges_not_whole_files() {
    use std::sync::atomic::Ordering::SeqCst;
    let dir = tempfile::tempdir().unwrap();
    let local = ColdStore::new(file_store(dir.path()), ColdConfig::default());
    let p = PartitionKey {
        tenant: "acme".into(),
        stream: "click".into(),
        day: day_of(DAY0),
    };
    let all = rows(&p, 60_000, 7);
    let live = local
        .export(&p, None, pages(all.clone()))
        .await
        .unwrap()
        .unwrap();
    let parts = vec![live];
    let archive_bytes: u64 = local
        .partitions("acme", &parts)
        .await
        .unwrap()
        .iter()
        .map(|p| p.bytes)
        .sum();
    let metered = Arc::new(MeteredRemote {
        inner: Arc::clone(local.blobs()),
        whole_parquet_reads: Default::default(),
        range_bytes: Default::default(),
    });
    let remote = ColdStore::new(metered.clone(), ColdConfig::default());
    assert_eq!(
        remote.get("acme", "no-such-id", &parts).await.unwrap(),
        None
    );
    let missing_bytes = metered.range_bytes.load(SeqCst);
    assert!(
        missing_bytes * 5 < archive_bytes,
        "a missing id read {missing_bytes} of {archive_bytes} bytes"
    );
    // Footers are cached: the second miss reads only bloom filters.
    assert_eq!(
        remote.get("acme", "no-such-id-2", &parts).await.unwrap(),
        None
    );
    assert!(metered.range_bytes.load(SeqCst) - missing_bytes < missing_bytes);
    for want in [&all[0], &all[all.len() / 2], &all[all.len() - 1]] {
        let got = remote
            .get("acme", &want.stored.event.id, &parts)
            .await
            .unwrap()
            .expect("archived id found");
        assert_eq!(got, want.stored);
    }
    assert_eq!(
        metered.whole_parquet_reads.load(SeqCst),
        0,
        "no whole-file reads"
    );
}

/// Exports of partitions older than `lock_after` are written under retention, cannot be
/// deleted and are never compacted; legal holds are set and cleared per partition.
async fn object_lock(blobs: Arc<dyn BlobStore>) {
    let cold = ColdStore::new(
        Arc::clone(&blobs),
        ColdConfig {
            rows_per_file: 100,
            lock: Some(LockSettings {
                mode: RetentionMode::Compliance,
                retain_for: Duration::from_secs(86_400),
                lock_after: Duration::from_secs(7 * 86_400),
            }),
            ..ColdConfig::default()
        },
    );
    let old = PartitionKey {
        tenant: "acme".into(),
        stream: "click".into(),
        day: day_of(DAY0) - 400,
    };
    let live = cold
        .export(&old, None, pages(rows(&old, 250, 1)))
        .await
        .unwrap()
        .unwrap();
    let files = blobs.list(&old.data_prefix()).await.unwrap();
    assert_eq!(files.len(), 3);
    assert!(
        blobs.delete(&files[0].key).await.is_err(),
        "COMPLIANCE retention refuses the delete"
    );
    assert!(blobs.get(&files[0].key).await.unwrap().is_some());
    assert!(
        cold.compact(&live).await.unwrap().is_none(),
        "a lockable partition is never compacted"
    );
    // A young partition is written unlocked and locked later, after its compaction window.
    let young = PartitionKey {
        day: day_of(strata_types::time::now_micros()) - 1,
        ..old.clone()
    };
    let young_live = cold
        .export(&young, None, pages(rows(&young, 50, 2)))
        .await
        .unwrap()
        .unwrap();
    let held = cold.set_legal_hold(&young_live, true).await.unwrap();
    assert_eq!(held, 2, "the file and the manifest");
    let file = blobs.list(&young.data_prefix()).await.unwrap().remove(0);
    assert!(
        blobs.delete(&file.key).await.is_err(),
        "legal hold refuses the delete"
    );
    let infos = cold
        .partitions("acme", &[live.clone(), young_live.clone()])
        .await
        .unwrap();
    assert!(infos.iter().any(|i| i.partition == young && i.legal_hold));
    assert!(infos.iter().any(|i| i.partition == old && !i.legal_hold));
    cold.set_legal_hold(&young_live, false).await.unwrap();
    let report = cold
        .verify("acme", &[live, young_live], None)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_lock_on_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    object_lock(file_store(dir.path())).await;
}

#[cfg(feature = "server-tests")]
mod server {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn archive_on_s3() {
        round_trip(Arc::new(common::s3_store(false).await)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn object_lock_on_s3() {
        object_lock(Arc::new(common::s3_store(true).await)).await;
    }

    /// DuckDB (from `STRATA_TEST_PYTHON`, a Python with the duckdb package) reads the
    /// archive directory with Hive partitioning and counts the same rows, sums and ids.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn duckdb_reads_the_archive() {
        let python = std::env::var("STRATA_TEST_PYTHON").expect(
            "STRATA_TEST_PYTHON must name a Python with duckdb installed (scripts/test provides one)",
        );
        let dir = tempfile::tempdir().unwrap();
        let (_, _, all) = round_trip(file_store(dir.path())).await;
        let glob = format!("{}/**/*.parquet", dir.path().display());
        let script = format!(
            "import duckdb\n\
             r = duckdb.connect().execute(\"select count(*), count(distinct id), sum(value), \
             count(*) filter (where stream = 'view' and date = DATE '2026-11-20'), \
             count(*) filter (where attrs['page'] = '/p1') \
             from read_parquet('{glob}', hive_partitioning=true)\").fetchone()\n\
             print(r[0], r[1], repr(r[2]), r[3], r[4])\n"
        );
        let out = std::process::Command::new(&python)
            .args(["-c", &script])
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "duckdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let fields: Vec<&str> = text.split_whitespace().collect();
        let sum: f64 = all.iter().filter_map(|r| r.stored.event.value).sum();
        let view = all
            .iter()
            .filter(|r| r.stored.event.stream == "view" && r.stored.event.ts < DAY0 + DAY)
            .count();
        let p1 = all
            .iter()
            .filter(|r| r.stored.event.attrs.get("page").map(String::as_str) == Some("/p1"))
            .count();
        assert_eq!(fields[0], all.len().to_string(), "duckdb row count: {text}");
        assert_eq!(fields[1], all.len().to_string(), "distinct ids: {text}");
        let got: f64 = fields[2].parse().unwrap();
        assert!(
            (got - sum).abs() < 1e-6 * sum.abs().max(1.0),
            "{got} vs {sum}"
        );
        assert_eq!(fields[3], view.to_string(), "hive columns: {text}");
        assert_eq!(fields[4], p1.to_string(), "attrs map: {text}");
    }
}
