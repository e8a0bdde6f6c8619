//! Hot → warm → cold with real embedded tiers and the local-directory archive: queries equal
//! brute force before, during and after exports and compactions; a failure injected at
//! every step of an export or a compaction loses and duplicates nothing; `verify` finds
//! altered, missing and extra files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeSet, time::Duration};

use bytes::Bytes;
use common::{NODE, Rig, assert_buckets, moving_flusher, test_cold_config, today};
use futures::StreamExt;
use strata_cold::ColdConfig;
use strata_core::{Tier, cold::PutOptions, hot::HotWatermark, warm::WarmTier};
use strata_tiering::Store;
use strata_types::{
    AggregateQuery, Event, PartialAggregate, QueryParams, StoredEvent, TimeRange,
    decode::DecodedBatch,
    time::{DAY, HOUR, SEC, now_micros},
};

async fn rig(config: ColdConfig) -> Rig {
    Rig::builder(NODE)
        .cold(config)
        .flusher(moving_flusher(500))
        .build()
        .await
}

/// `n` events spread over the three days before yesterday (old enough to export), plus a
/// few from the last hour (too young), deterministic per `seed`.
fn events(n: usize, seed: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let k = i * 7919 + seed * 104_729;
            let ts = if k.is_multiple_of(10) {
                now_micros() - (k % 3000) as i64 * SEC
            } else {
                today() - 2 * DAY - ((k % (3 * 86_400)) as i64) * SEC - (k % 997) as i64
            };
            Event {
                tenant: if k.is_multiple_of(5) { "other" } else { "acme" }.into(),
                stream: ["click", "view"][k % 2].into(),
                key: format!("user-{}", k % 7),
                id: format!("e-{seed}-{i}"),
                ts,
                value: (!k.is_multiple_of(3)).then_some((k % 100) as f64 / 4.0),
                attrs: [("page".to_string(), format!("/p{}", k % 3))].into(),
                payload: (!k.is_multiple_of(4)).then(|| format!(r#"{{"i": {i},  "s": "é"}}"#)),
            }
        })
        .collect()
}

async fn ingest_and_flush(rig: &Rig, events: &[Event]) {
    let report = common::ingest(&rig.store, events).await;
    assert_eq!(report.duplicates, 0);
    rig.flusher().flush_due().await.unwrap();
    assert_eq!(rig.store.hot_stats().events, 0, "everything flushed");
}

fn queries() -> Vec<AggregateQuery> {
    let from = (today() - 6 * DAY).to_string();
    let to = (today() + DAY).to_string();
    let q = |bucket: &str, agg: &str, group_by: Option<&str>, filter: Option<&str>| {
        AggregateQuery::from_params(&QueryParams {
            tenant: "acme",
            from: &from,
            to: &to,
            bucket,
            agg,
            group_by,
            filter,
            ..Default::default()
        })
        .unwrap()
    };
    let mut narrow = q("1m", "min", None, None);
    narrow.range = TimeRange {
        from: today() - 3 * DAY + HOUR + 17,
        to: today() - 3 * DAY + 5 * HOUR,
    };
    let mut view = q("1h", "count", None, None);
    view.stream = Some("view".into());
    vec![
        q("1h", "count", None, None),
        q("1d", "sum", None, None),
        q("15m", "avg", Some("key"), None),
        q("1h", "max", Some("attr:page"), Some("attr:page=/p1")),
        narrow,
        view,
    ]
}

/// Asserts every query equals brute force over `all`; returns whether cold contributed.
async fn assert_exact(store: &Store, all: &[Event], case: &str) -> bool {
    let mut cold = false;
    for q in queries() {
        let mut want = PartialAggregate::default();
        all.iter().for_each(|e| want.add(&q, e));
        let got = store.aggregate(&q).await.unwrap();
        cold |= got.tiers.contains(&Tier::Cold);
        assert_buckets(&got.buckets, &want.finish(q.agg), &format!("{case}: {q:?}"));
    }
    for e in all.iter().step_by(37) {
        let got = store
            .get_event(&e.tenant, &e.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{case}: {} not found", e.id));
        assert_eq!(&got.event, e, "{case}: lookup returns the event as stored");
    }
    cold
}

/// Rows the warm tier still holds for exportable days (for "dropped only after export").
async fn warm_rows_of_old_days(rig: &Rig) -> u64 {
    let q = AggregateQuery::from_params(&QueryParams {
        tenant: "acme",
        from: &(today() - 6 * DAY).to_string(),
        to: &(today() - DAY).to_string(),
        bucket: "1d",
        agg: "count",
        ..Default::default()
    })
    .unwrap();
    rig.embedded
        .aggregate(&q, &HotWatermark::everything(NODE))
        .await
        .unwrap()
        .total_count()
}

async fn assert_verified(rig: &Rig, case: &str) {
    for tenant in ["acme", "other"] {
        let report = rig.store.archive_verify(tenant, None).await.unwrap();
        assert!(report.is_ok(), "{case}: verify {tenant}: {report:#?}");
        assert!(
            report.superseded.is_empty(),
            "{case}: nothing left behind: {report:#?}"
        );
        assert!(report.files_checked > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_warm_cold_flow_equals_brute_force() {
    let rig = rig(test_cold_config()).await;
    let mut all = events(1500, 1);
    ingest_and_flush(&rig, &all).await;
    assert!(!assert_exact(&rig.store, &all, "before export").await);
    let before = warm_rows_of_old_days(&rig).await;
    assert!(before > 0);
    let rows = rig.export_all().await;
    assert!(rows > 1000, "most rows were old enough: {rows}");
    assert_eq!(
        warm_rows_of_old_days(&rig).await,
        0,
        "exported rows left warm"
    );
    assert!(assert_exact(&rig.store, &all, "after export").await);
    assert_verified(&rig, "after export").await;
    // Nothing due any more: a second pass is a no-op.
    assert_eq!(rig.exporter().export_due().await.unwrap().rows, 0);

    // Late events for archived partitions skip hot and warm: each partition gets an
    // amendment (a new file and manifest version) before the ingest is acknowledged. Late
    // events of partitions without a version yet wait in warm for the next export.
    let late = events(300, 2);
    ingest_and_flush(&rig, &late).await;
    all.extend(late);
    assert!(assert_exact(&rig.store, &all, "late rows amended into cold").await);
    rig.export_all().await;
    assert_eq!(warm_rows_of_old_days(&rig).await, 0);
    assert!(assert_exact(&rig.store, &all, "after the amendment").await);
    let parts = rig.store.archive_partitions("acme").await.unwrap();
    assert!(
        parts.iter().any(|p| p.version == 2 && p.files == 2),
        "{parts:?}"
    );
    let archived: u64 = parts.iter().map(|p| p.rows).sum();
    let old = |e: &&Event| e.tenant == "acme" && e.ts < today() - DAY;
    assert_eq!(archived, all.iter().filter(old).count() as u64);

    // The archive read returns each archived event once, byte for byte.
    let range = TimeRange {
        from: today() - 6 * DAY,
        to: today(),
    };
    let read: Vec<StoredEvent> = rig
        .store
        .archive_read("acme", range, None)
        .await
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
        .await;
    let mut got: Vec<&Event> = read.iter().map(|s| &s.event).collect();
    let mut want: Vec<&Event> = all.iter().filter(old).collect();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    want.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(got, want, "archive read");
    assert_verified(&rig, "after the amendment").await;

    // Compaction merges the partition's files into one and swaps the manifest.
    let report = rig.exporter().maintain().await.unwrap();
    assert!(report.compactions > 0, "{report:?}");
    let parts = rig.store.archive_partitions("acme").await.unwrap();
    assert!(parts.iter().all(|p| p.files == 1), "{parts:?}");
    assert!(assert_exact(&rig.store, &all, "after compaction").await);
    assert_verified(&rig, "after compaction").await;
}

/// A failure injected at each step of an export (data file upload, manifest upload, warm
/// commit refused, warm commit lost after it happened), then a healthy retry: every query
/// equals brute force throughout and the archive verifies with nothing extra.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_is_exactly_once_under_failures() {
    for step in ["data file", "manifest", "commit refused", "commit lost"] {
        let rig = rig(test_cold_config()).await;
        let all = events(800, 3);
        ingest_and_flush(&rig, &all).await;
        match step {
            // Every upload fails: the first data file never lands.
            "data file" => rig.archive().blobs.put.break_after(0),
            // The data file lands, its manifest does not.
            "manifest" => rig.archive().blobs.put.break_after(1),
            "commit refused" => rig.warm.commit_cold.fail_before(1),
            _ => rig.warm.commit_cold.fail_after(1),
        }
        let failed = rig.exporter().export_due().await;
        assert!(failed.is_err(), "{step}: the injected failure surfaces");
        assert!(
            warm_rows_of_old_days(&rig).await > 0,
            "{step}: other partitions still in warm"
        );
        assert_exact(&rig.store, &all, &format!("{step}: after the failure")).await;
        rig.archive().blobs.put.heal();
        rig.export_all().await;
        assert_eq!(warm_rows_of_old_days(&rig).await, 0, "{step}");
        assert!(assert_exact(&rig.store, &all, &format!("{step}: after the retry")).await);
        assert_verified(&rig, step).await;
        let versions: BTreeSet<u64> = rig
            .store
            .archive_partitions("acme")
            .await
            .unwrap()
            .iter()
            .map(|p| p.version)
            .collect();
        assert_eq!(versions, [1].into(), "{step}: one version per partition");
    }
}

/// A compaction whose warm commit fails keeps the old version live and its files in place;
/// the next pass completes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_swaps_manifests_atomically() {
    let rig = rig(test_cold_config()).await;
    let mut all = Vec::new();
    for seed in 10..13 {
        let batch = events(400, seed);
        ingest_and_flush(&rig, &batch).await;
        all.extend(batch);
        rig.export_all().await;
    }
    let multi_file = |parts: &[strata_core::cold::PartitionInfo]| {
        parts.iter().filter(|p| p.files > 1).count() as u64
    };
    let mut before = rig.store.archive_partitions("acme").await.unwrap();
    before.extend(rig.store.archive_partitions("other").await.unwrap());
    assert!(before.iter().any(|p| p.files == 3), "{before:?}");
    rig.warm.commit_cold.fail_before(1);
    let report = rig.exporter().maintain().await.unwrap();
    let mut after_failure = rig.store.archive_partitions("acme").await.unwrap();
    after_failure.extend(rig.store.archive_partitions("other").await.unwrap());
    assert_eq!(
        multi_file(&after_failure),
        multi_file(&before) - report.compactions,
        "every compaction but the failed one went live"
    );
    assert!(
        multi_file(&after_failure) >= 1,
        "the failed one is still pending"
    );
    assert!(assert_exact(&rig.store, &all, "after a failed compaction").await);
    let report = rig.exporter().maintain().await.unwrap();
    assert!(
        report.compactions >= 1 && report.removed_objects >= 2,
        "{report:?}"
    );
    let after = rig.store.archive_partitions("acme").await.unwrap();
    assert!(after.iter().all(|p| p.files == 1), "{after:?}");
    assert!(assert_exact(&rig.store, &all, "after compaction").await);
    assert_verified(&rig, "after compaction").await;
    // Every version of the chain is kept: it is the audit history.
    let p = after.iter().find(|p| p.version > 3).unwrap();
    for v in 1..=p.version {
        let key = strata_cold::manifest::manifest_key(&p.partition, v);
        assert!(
            rig.archive()
                .cold
                .blobs()
                .head(&key)
                .await
                .unwrap()
                .is_some(),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_altered_missing_and_extra_files() {
    let rig = rig(test_cold_config()).await;
    ingest_and_flush(&rig, &events(600, 4)).await;
    rig.export_all().await;
    assert_verified(&rig, "clean").await;
    let mut files: Vec<String> = rig
        .archive()
        .cold
        .blobs()
        .list("tenant=acme/")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert!(files.len() >= 3);
    let altered = files.remove(0);
    let missing = files.remove(0);
    let path = rig.archive().dir.join(&altered);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(rig.archive().dir.join(&missing)).unwrap();
    let extra = "tenant=acme/stream=click/date=2020-01-01/added.parquet";
    rig.archive()
        .cold
        .blobs()
        .put(extra, Bytes::from_static(b"PAR1"), &PutOptions::default())
        .await
        .unwrap();
    let report = rig.store.archive_verify("acme", None).await.unwrap();
    let keys = |v: &[strata_core::cold::VerifyIssue]| -> Vec<String> {
        v.iter().map(|i| i.key.clone()).collect()
    };
    assert_eq!(keys(&report.altered), vec![altered]);
    assert_eq!(keys(&report.missing), vec![missing]);
    assert_eq!(keys(&report.extra), vec![extra.to_string()]);
    assert!(report.chain_breaks.is_empty());
    assert!(!report.is_ok());
    let other = rig.store.archive_verify("other", None).await.unwrap();
    assert!(other.is_ok(), "other tenants are unaffected: {other:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_rewritten_manifest_history() {
    let rig = rig(test_cold_config()).await;
    ingest_and_flush(&rig, &events(300, 5)).await;
    rig.export_all().await;
    ingest_and_flush(&rig, &events(300, 6)).await;
    rig.export_all().await;
    let live = rig
        .store
        .handoff()
        .expect("the store has a cold tier")
        .cold_partitions(Some("acme"), None)
        .await
        .unwrap()
        .into_iter()
        .find(|l| l.version == 2)
        .expect("an amended partition");
    let v1 = strata_cold::manifest::manifest_key(&live.partition, 1);
    let path = rig.archive().dir.join(&v1);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("\"export\"", "\"edited\"")).unwrap();
    let report = rig.store.archive_verify("acme", None).await.unwrap();
    assert!(
        report
            .chain_breaks
            .iter()
            .any(|i| i.key == strata_cold::manifest::manifest_key(&live.partition, 2)),
        "{report:#?}"
    );
}

/// A node that does not write the archive (`late_to_cold: false`, a replica without the
/// exporter) leaves late events of archived days in warm; the exporting node's next pass
/// amends the archive from there, and every answer stays exact throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_exporter_leaves_late_events_to_warm() {
    let rig = rig(test_cold_config()).await;
    let mut all = events(800, 1);
    ingest_and_flush(&rig, &all).await;
    rig.export_all().await;
    let versions = |parts: &[strata_core::cold::PartitionInfo]| {
        parts
            .iter()
            .map(|p| (p.partition.clone(), p.version))
            .collect::<Vec<_>>()
    };
    let archived = versions(&rig.store.archive_partitions("acme").await.unwrap());
    assert!(!archived.is_empty());

    let reader = rig.store.clone().with_config(strata_tiering::StoreConfig {
        late_to_cold: false,
        ..strata_tiering::StoreConfig::default()
    });
    let late: Vec<Event> = events(200, 2)
        .into_iter()
        .filter(|e| e.ts < today() - DAY)
        .collect();
    let report = reader
        .ingest(DecodedBatch {
            events: late.clone(),
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(report.accepted, late.len());
    all.extend(late);
    assert_eq!(
        versions(&rig.store.archive_partitions("acme").await.unwrap()),
        archived,
        "the archive was not written"
    );
    assert!(
        warm_rows_of_old_days(&rig).await > 0,
        "late rows wait in warm"
    );
    assert!(assert_exact(&reader, &all, "late rows in warm").await);

    rig.export_all().await;
    assert_eq!(warm_rows_of_old_days(&rig).await, 0);
    assert_ne!(
        versions(&rig.store.archive_partitions("acme").await.unwrap()),
        archived,
        "the exporter amended the archive"
    );
    assert!(assert_exact(&rig.store, &all, "after the amendment").await);
    assert_verified(&rig, "after the amendment").await;
}

/// Late-event amendments racing exports and compactions of the same partitions: each writes
/// the partition's next manifest version, so without one writer per partition at a time they
/// would remove each other's files. Every answer stays exact and the archive verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_amendments_race_exports_and_compactions() {
    // Readers (the late path's cold dedupe) resolve versions outside the writer lock, so
    // replaced files must outlive them: the production grace period, not the zero one of the
    // other tests.
    let rig = rig(ColdConfig {
        orphan_grace: Duration::from_secs(3600),
        ..test_cold_config()
    })
    .await;
    let mut all = events(600, 1);
    ingest_and_flush(&rig, &all).await;
    rig.export_all().await;
    let late_rounds: Vec<Vec<Event>> = (0..30).map(|round| events(20, 100 + round)).collect();
    // The amendments run on their own task (in parallel with the exporter on the two
    // runtime threads), as requests do next to the exporter task in `strata serve`.
    let store = rig.store.clone();
    let rounds = late_rounds.clone();
    let ingesting = tokio::spawn(async move {
        for late in rounds {
            let report = store
                .ingest(DecodedBatch {
                    events: late.clone(),
                    rejected: Vec::new(),
                })
                .await
                .unwrap();
            assert_eq!(report.accepted, late.len());
            assert_eq!(report.duplicates, 0);
        }
    });
    while !ingesting.is_finished() {
        rig.flusher().flush_due().await.unwrap();
        rig.exporter().export_due().await.unwrap();
        rig.exporter().maintain().await.unwrap();
    }
    ingesting.await.unwrap();
    all.extend(late_rounds.into_iter().flatten());
    rig.flusher().flush_due().await.unwrap();
    rig.export_all().await;
    rig.exporter().maintain().await.unwrap();
    assert!(assert_exact(&rig.store, &all, "after the race").await);
    for tenant in ["acme", "other"] {
        let report = rig.store.archive_verify(tenant, None).await.unwrap();
        assert!(report.is_ok(), "verify {tenant}: {report:#?}");
    }
}
