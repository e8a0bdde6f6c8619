//! The kinds of error callers branch on: a batch none of whose events was accepted fails as
//! a whole with `Rejected` (a mixed batch, or one of duplicates, is acknowledged); archive
//! calls on a node without a cold tier fail with `NoColdTier`; a legal hold on a partition
//! with no live version fails with `PartitionNotFound`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NODE, Rig, click, ingest_json, moving_flusher, test_cold_config, today, warm_only};
use strata_core::cold::PartitionKey;
use strata_tiering::Error;
use strata_types::{
    TimeRange,
    decode::DecodedBatch,
    time::{DAY, SEC, now_micros},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_one_accepted_event_is_rejected_as_a_whole() {
    let rig = warm_only(NODE).await;
    let now = now_micros();

    // Validation refuses every event of the body.
    let body = format!(
        r#"[{{"tenant":"acme","stream":"s","key":"k","id":"a"}},
            {{"tenant":"acme","stream":"s","key":"k","id":"b","ts":{}}}]"#,
        now - 30 * DAY
    );
    let err = ingest_json(&rig.store, &body).await.unwrap_err();
    let Error::Rejected(rejected) = err else {
        panic!("expected Rejected, got {err:?}");
    };
    let at: Vec<usize> = rejected.iter().map(|r| r.index).collect();
    assert_eq!(at, vec![0, 1], "{rejected:?}");
    assert_eq!(rig.store.hot_stats().events, 0, "nothing was stored");

    // The tiers refuse every event (warm retention dropped their time, no cold tier):
    // the same answer, with the tiers' reason.
    let err = rig
        .store
        .ingest(DecodedBatch {
            events: vec![click("gone", now - 20 * DAY, 1.0)],
            rejected: Vec::new(),
        })
        .await
        .unwrap_err();
    let Error::Rejected(rejected) = err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert_eq!(rejected.len(), 1);
    assert_eq!((rejected[0].index, rejected[0].field.as_str()), (0, "ts"));
    assert!(
        rejected[0].reason.contains("warm_retention"),
        "{rejected:?}"
    );

    // One valid event is enough for an acknowledgement that lists the others.
    let body = format!(
        r#"[{{"tenant":"acme","stream":"s","key":"k","id":"a"}},
            {{"tenant":"acme","stream":"s","key":"k","id":"c","ts":{now}}}]"#,
    );
    let report = ingest_json(&rig.store, &body).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].index, 0);

    // A batch of duplicates was accepted before: it is no rejection.
    let report = ingest_json(&rig.store, &body).await.unwrap();
    assert_eq!((report.accepted, report.duplicates), (1, 1));

    // An empty decoded batch is no rejection either (the decoder refuses empty bodies).
    let report = rig.store.ingest(DecodedBatch::default()).await.unwrap();
    assert_eq!((report.accepted, report.rejected.len()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_calls_without_a_cold_tier_say_so() {
    let rig = warm_only(NODE).await;
    let store = &rig.store;
    let partition = PartitionKey::of("acme", "click", today() - 3 * DAY);
    assert!(matches!(
        store.archive_partitions("acme").await,
        Err(Error::NoColdTier)
    ));
    let range = TimeRange {
        from: today() - 3 * DAY,
        to: today(),
    };
    assert!(matches!(
        store.archive_read("acme", range, None).await,
        Err(Error::NoColdTier)
    ));
    assert!(matches!(
        store.archive_verify("acme", None).await,
        Err(Error::NoColdTier)
    ));
    assert!(matches!(
        store.archive_legal_hold(&partition, true).await,
        Err(Error::NoColdTier)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legal_hold_needs_a_live_partition() {
    let rig = Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(500))
        .build()
        .await;
    let ts = today() - 3 * DAY + 600 * SEC;
    let archived = PartitionKey::of("acme", "click", ts);
    let never = PartitionKey::of("acme", "view", ts);
    let missing = rig.store.archive_legal_hold(&archived, true).await;
    assert!(
        matches!(&missing, Err(Error::PartitionNotFound(p)) if *p == archived),
        "{missing:?}"
    );

    common::ingest(
        &rig.store,
        &[click("e-1", ts, 1.0), click("e-2", ts + SEC, 1.0)],
    )
    .await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 0);
    let held = rig.store.archive_legal_hold(&archived, true).await.unwrap();
    assert!(held > 0, "the live version's objects are held");

    // Another stream of the same tenant and day has no live version of its own.
    let missing = rig.store.archive_legal_hold(&never, false).await;
    assert!(
        matches!(&missing, Err(Error::PartitionNotFound(p)) if *p == never),
        "{missing:?}"
    );
}
