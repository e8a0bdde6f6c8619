//! Late events for archived days are written in batches: one request carrying late events
//! for N archived partitions makes exactly N amendments (one new manifest version and one
//! new file each), however many events each partition gets, and every event is stored once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::{NODE, Rig, click, moving_flusher, test_cold_config, today};
use strata_core::cold::PartitionKey;
use strata_types::{
    Event,
    decode::DecodedBatch,
    time::{DAY, HOUR, SEC},
};

/// Live version and file count of each archived partition of `acme`.
async fn archive(rig: &Rig) -> BTreeMap<PartitionKey, (u64, u64)> {
    rig.store
        .archive_partitions("acme")
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.partition, (p.version, p.files)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_amendment_per_partition_per_request() {
    let rig = Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(500))
        .build()
        .await;
    const DAYS: i64 = 3;
    let days: Vec<i64> = (0..DAYS).map(|d| today() - (3 + d) * DAY).collect();
    let old: Vec<Event> = days
        .iter()
        .flat_map(|&day| (0..5).map(move |i| click(&format!("old-{day}-{i}"), day + i * HOUR, 1.0)))
        .collect();
    common::ingest(&rig.store, &old).await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 0);
    let before = archive(&rig).await;
    assert_eq!(before.len(), DAYS as usize, "{before:?}");
    assert!(before.values().all(|&(v, _)| v == 1), "{before:?}");

    // Seven late events in each archived day, interleaved across the days.
    let late: Vec<Event> = (0..7)
        .flat_map(|i| {
            days.iter().map(move |&day| {
                click(
                    &format!("late-{day}-{i}"),
                    day + 30 * SEC + i * 60 * SEC,
                    2.0,
                )
            })
        })
        .collect();
    let report = rig
        .store
        .ingest(DecodedBatch {
            events: late.clone(),
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        (report.accepted, report.duplicates),
        (late.len(), 0),
        "{report:?}"
    );

    let after = archive(&rig).await;
    for (partition, &(version, files)) in &before {
        assert_eq!(
            after[partition],
            (version + 1, files + 1),
            "one amendment of {partition}"
        );
    }
    for e in &late {
        let got = rig.store.get_event("acme", &e.id).await.unwrap();
        assert_eq!(got.map(|s| s.event.ts), Some(e.ts), "{}", e.id);
    }

    // A resend finds them all, and amends nothing.
    let report = rig
        .store
        .ingest(DecodedBatch {
            events: late.clone(),
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(report.duplicates, late.len(), "{report:?}");
    assert_eq!(archive(&rig).await, after);
    rig.store.shutdown().await.unwrap();
}
