//! Late events amended into archived partitions while the warm commit fails or races: a
//! commit whose answer is lost is acknowledged once, a refused commit fails and its retry
//! stores once, and a commit that loses the compare-and-set to another node's writer is
//! retried on the version that won. Each late event ends up in the archive exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_trait::async_trait;
use common::{NODE, Rig, click, moving_flusher, test_cold_config, today};
use futures::StreamExt;
use strata_core::{
    Result,
    cold::{LivePartition, PartitionKey},
    handoff::{ColdCommit, ColdHandoff, ExportMarks, ExportPage},
    warm::ScanCursor,
};
use strata_tiering::{Error, Store};
use strata_types::{
    Event, Limits, TimeRange,
    decode::DecodedBatch,
    time::{DAY, SEC},
};

/// The day every event of this suite falls in: archived, and long past `max_lateness`.
fn day() -> i64 {
    today() - 3 * DAY
}

fn event(id: &str, offset_secs: i64) -> Event {
    click(id, day() + offset_secs * SEC, 1.0)
}

fn partition() -> PartitionKey {
    PartitionKey::of("acme", "click", day())
}

/// A rig whose partition of [`day`] is archived (version 1).
async fn archived() -> Rig {
    let rig = Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(500))
        .build()
        .await;
    let old: Vec<Event> = (0..20)
        .map(|i| event(&format!("old-{i}"), i * 60))
        .collect();
    common::ingest(&rig.store, &old).await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 0);
    assert_eq!(version(&rig.store).await, 1);
    rig
}

async fn ingest(store: &Store, events: Vec<Event>) -> strata_tiering::Result<(usize, usize)> {
    let report = store
        .ingest(DecodedBatch {
            events,
            rejected: Vec::new(),
        })
        .await?;
    Ok((report.accepted, report.duplicates))
}

/// The live version of [`partition`].
async fn version(store: &Store) -> u64 {
    store
        .archive_partitions("acme")
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.partition == partition())
        .expect("the partition is archived")
        .version
}

/// How often the archive holds the event `id`.
async fn copies(store: &Store, id: &str) -> usize {
    let range = TimeRange {
        from: day(),
        to: day() + DAY,
    };
    store
        .archive_read("acme", range, None)
        .await
        .unwrap()
        .filter(|e| std::future::ready(e.as_ref().unwrap().event.id == id))
        .count()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_answer_is_acknowledged_once() {
    let rig = archived().await;
    // The commit goes through; the connection drops before its answer arrives.
    rig.warm.commit_cold.fail_after(1);
    let calls = rig.warm.commit_cold.calls();
    assert_eq!(
        ingest(&rig.store, vec![event("late-1", 7_000)])
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(
        rig.warm.commit_cold.calls() - calls,
        1,
        "the pointer showed the commit went through; nothing was written again"
    );
    assert_eq!(version(&rig.store).await, 2);
    assert_eq!(copies(&rig.store, "late-1").await, 1);
    assert_eq!(
        ingest(&rig.store, vec![event("late-1", 7_000)])
            .await
            .unwrap(),
        (1, 1),
        "a resend is a duplicate found in cold"
    );
    assert!(
        rig.store
            .archive_verify("acme", None)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_commit_fails_and_its_retry_stores_once() {
    let rig = archived().await;
    rig.warm.commit_cold.fail_before(1);
    let err = ingest(&rig.store, vec![event("late-2", 7_100)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Tier(strata_core::Error::Unavailable { .. })),
        "a retryable outage, not a lost race: {err:?}"
    );
    assert_eq!(version(&rig.store).await, 1, "nothing went live");
    assert!(
        rig.store
            .get_event("acme", "late-2")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        ingest(&rig.store, vec![event("late-2", 7_100)])
            .await
            .unwrap(),
        (1, 0),
        "the client's retry stores it"
    );
    assert_eq!(version(&rig.store).await, 2);
    assert_eq!(copies(&rig.store, "late-2").await, 1);
}

/// The hand-off as another node sees it: just before this node's first amendment commits,
/// that node amends the same partition first, so the commit loses the compare-and-set.
#[derive(Debug)]
struct Rival {
    inner: Arc<dyn ColdHandoff>,
    /// A store of another node over the same warm and cold tiers (its own late writer and
    /// partition locks, as in another process).
    other: Store,
    event: Event,
    commits: AtomicUsize,
}

#[async_trait]
impl ColdHandoff for Rival {
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        self.inner.cold_partitions(tenant, range).await
    }
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        self.inner.export_candidates(before, limit).await
    }
    async fn flush_marks(&self) -> Result<ExportMarks> {
        self.inner.flush_marks().await
    }
    async fn export_page(
        &self,
        p: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        self.inner.export_page(p, marks, after, limit).await
    }
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        if self.commits.fetch_add(1, Ordering::SeqCst) == 0 {
            let report = self
                .other
                .ingest(DecodedBatch {
                    events: vec![self.event.clone()],
                    rejected: Vec::new(),
                })
                .await
                .expect("the rival's amendment");
            assert_eq!((report.accepted, report.duplicates), (1, 0));
        }
        self.inner.commit_cold(commit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_is_retried_on_the_version_that_won() {
    let rig = archived().await;
    let cold = Arc::clone(&rig.archive().cold);
    let other = Store::new(
        Arc::clone(rig.store.hot()),
        Arc::clone(rig.store.warm()),
        "node-rival",
        Limits::default(),
    )
    .with_cold(cold.clone(), rig.warm.clone());
    let rival = Arc::new(Rival {
        inner: rig.warm.clone(),
        other,
        event: event("rival-1", 7_300),
        commits: AtomicUsize::new(0),
    });
    let store = rig.store.clone().with_cold(cold, rival.clone());
    assert_eq!(
        ingest(&store, vec![event("late-3", 7_200)]).await.unwrap(),
        (1, 0)
    );
    assert_eq!(
        rival.commits.load(Ordering::SeqCst),
        2,
        "one commit lost the race, the retry on the rival's version won"
    );
    assert_eq!(
        version(&rig.store).await,
        3,
        "the rival's version, then ours"
    );
    assert_eq!(copies(&rig.store, "late-3").await, 1);
    assert_eq!(copies(&rig.store, "rival-1").await, 1);
    assert!(
        rig.store
            .archive_verify("acme", None)
            .await
            .unwrap()
            .is_ok()
    );
}
