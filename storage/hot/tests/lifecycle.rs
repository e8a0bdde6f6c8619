//! Shutdown, drop without shutdown, and releases that split a commit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{append, brute_force, events, open, query};
use strata_core::{
    Error,
    hot::{AppendOutcome, AppendRequest, HotTier},
};
use strata_hot::HotConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_refuses_new_work_and_frees_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = HotConfig::new(dir.path().join("hot.redb"));
    let hot = open(config.clone()).await;
    let batch = events("acme", "a", 10, 10);
    append(hot.as_ref(), batch.clone()).await;
    hot.shutdown().await.unwrap();
    // A second shutdown is harmless.
    hot.shutdown().await.unwrap();
    let err = hot
        .append(AppendRequest {
            events: events("acme", "b", 1, 10),
            offsets: vec![],
        })
        .await
        .expect_err("closed");
    assert!(matches!(err, Error::ShuttingDown { .. }), "{err:?}");
    assert!(matches!(
        hot.get("acme", "a-0").await,
        Err(Error::ShuttingDown { .. })
    ));
    // The file is closed even though this handle is still alive.
    let again = open(config).await;
    assert_eq!(again.stats().events, 10);
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_without_shutdown_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = HotConfig::new(dir.path().join("hot.redb"));
    let hot = open(config.clone()).await;
    let batch = events("acme", "a", 50, 10);
    append(hot.as_ref(), batch.clone()).await;
    drop(hot);
    let hot = open(config).await;
    let q = query("acme");
    assert_eq!(
        hot.aggregate(&q).await.unwrap().partial,
        brute_force(&q, &batch)
    );
    let out = append(hot.as_ref(), batch[..1].to_vec()).await;
    assert!(matches!(out[0], AppendOutcome::Duplicate { seq: 1 }));
    hot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_inside_a_commit_hides_exactly_the_released_events() {
    let dir = tempfile::tempdir().unwrap();
    let config = HotConfig::new(dir.path().join("hot.redb"));
    let hot = open(config.clone()).await;
    let first = events("acme", "a", 10, 10);
    let second = events("acme", "b", 10, 10);
    append(hot.as_ref(), first.clone()).await;
    append(hot.as_ref(), second.clone()).await;
    // Seqs 1..=10 and 11..=20; release up to 15, inside the second commit.
    hot.release(15).await.unwrap();
    let check = |hot: std::sync::Arc<strata_hot::HotStore>| {
        let second = second.clone();
        let first = first.clone();
        async move {
            let q = query("acme");
            let hp = hot.aggregate(&q).await.unwrap();
            assert_eq!(hp.released_upto, 15);
            assert_eq!(hp.partial, brute_force(&q, &second[5..]));
            assert_eq!(hot.stats().events, 5);
            assert!(hot.get("acme", &second[4].id).await.unwrap().is_none());
            assert!(hot.get("acme", &first[0].id).await.unwrap().is_none());
            assert_eq!(
                hot.get("acme", &second[5].id).await.unwrap().unwrap().seq,
                16
            );
            let batch = hot.pending_flush(1, i64::MAX).await.unwrap().unwrap();
            assert_eq!((batch.first_seq, batch.last_seq), (16, 20));
            assert_eq!(batch.events.len(), 5);
            // Released events still count as duplicates while their commit is in the hot
            // tier, so a retry cannot store them twice.
            let out = append(hot.as_ref(), second[..1].to_vec()).await;
            assert_eq!(out[0], AppendOutcome::Duplicate { seq: 11 });
        }
    };
    check(hot.clone()).await;
    hot.shutdown().await.unwrap();
    drop(hot);
    let hot = open(config).await;
    check(hot.clone()).await;
    // Releasing beyond the last seq is clamped to it, so later seqs are not pre-released.
    hot.release(1_000).await.unwrap();
    assert_eq!(hot.stats().released_upto, 20);
    assert_eq!(hot.stats().events, 0);
    let out = append(hot.as_ref(), events("acme", "c", 1, 10)).await;
    assert_eq!(out[0], AppendOutcome::Stored { seq: 21 });
    assert_eq!(hot.stats().events, 1);
    hot.shutdown().await.unwrap();
}
