//! Disk and memory budgets: a request that would exceed one is refused whole and stores
//! nothing; releasing frees the budget again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{append, brute_force, events, open, query};
use strata_core::{
    Error, Tier,
    hot::{AppendOutcome, AppendRequest, HotTier, SourceOffset},
};
use strata_hot::HotConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_budget_refuses_whole_requests_until_release_frees_space() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    config.disk_budget = 40_000;
    let hot = open(config.clone()).await;

    let first = events("acme", "a", 100, 100);
    append(hot.as_ref(), first.clone()).await;
    let before = hot.stats();
    assert_eq!(before.events, 100);
    assert!(before.disk_bytes > 0 && before.disk_bytes <= config.disk_budget);
    assert_eq!(before.disk_budget, config.disk_budget);

    let refused = events("acme", "b", 200, 100);
    let offset = SourceOffset {
        source: "kafka:g".into(),
        topic: "t".into(),
        partition: 0,
        next_offset: 99,
    };
    let err = hot
        .append(AppendRequest {
            events: refused.clone(),
            offsets: vec![offset],
        })
        .await
        .expect_err("over the disk budget");
    match &err {
        Error::Full {
            tier: Tier::Hot,
            reason,
            retry_after,
        } => {
            assert!(reason.contains("disk"), "{reason}");
            assert!(!retry_after.is_zero());
        }
        other => panic!("expected Full, got {other:?}"),
    }
    // Nothing of the refused request is visible: events, ids, offsets, seqs. (Memory is not
    // compared: the cache fills in the background.)
    let after = hot.stats();
    assert_eq!(
        (after.events, after.disk_bytes, after.last_seq),
        (before.events, before.disk_bytes, before.last_seq)
    );
    assert!(hot.get("acme", &refused[0].id).await.unwrap().is_none());
    assert!(hot.source_offsets("kafka:g").await.unwrap().is_empty());
    let q = query("acme");
    assert_eq!(
        hot.aggregate(&q).await.unwrap().partial,
        brute_force(&q, &first)
    );
    // Retrying events that are already stored needs no space and still succeeds.
    let again = append(hot.as_ref(), first[..10].to_vec()).await;
    assert!(
        again
            .iter()
            .all(|o| matches!(o, AppendOutcome::Duplicate { .. }))
    );

    // Nor does it come back after a reopen.
    hot.shutdown().await.unwrap();
    drop(hot);
    let hot = open(config).await;
    assert_eq!(hot.stats().events, 100);
    assert!(hot.get("acme", &refused[0].id).await.unwrap().is_none());

    // Releasing the first batch frees the budget; the refused request now fits.
    let batch = hot.pending_flush(1000, i64::MAX).await.unwrap().unwrap();
    hot.release(batch.last_seq).await.unwrap();
    assert_eq!(hot.stats().disk_bytes, 0);
    let out = append(hot.as_ref(), refused.clone()).await;
    let seqs: Vec<u64> = out
        .iter()
        .map(|o| match o {
            AppendOutcome::Stored { seq } => *seq,
            other => panic!("expected Stored, got {other:?}"),
        })
        .collect();
    assert_eq!(seqs.first(), Some(&(batch.last_seq + 1)));
    assert_eq!(hot.stats().events, 200);
    let found = hot.get("acme", &refused[0].id).await.unwrap().unwrap();
    assert_eq!(found.event, refused[0]);
    hot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_budget_bounds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    // 7/16 of 64 KiB for the index: room for a few hundred events.
    config.memory_budget = 64 * 1024;
    let hot = open(config).await;
    append(hot.as_ref(), events("acme", "a", 200, 10)).await;
    let before = hot.stats();
    let big = events("acme", "b", 2000, 10);
    match hot
        .append(AppendRequest {
            events: big.clone(),
            offsets: vec![],
        })
        .await
    {
        Err(Error::Full { reason, .. }) => assert!(reason.contains("memory"), "{reason}"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(hot.stats().events, before.events);
    assert_eq!(hot.stats().last_seq, before.last_seq);
    assert!(hot.get("acme", &big[5].id).await.unwrap().is_none());
    // Smaller requests still fit.
    let out = append(hot.as_ref(), events("acme", "c", 20, 10)).await;
    assert!(matches!(out[0], AppendOutcome::Stored { seq } if seq == before.last_seq + 1));
    hot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_request_does_not_take_its_group_commit_down() {
    // Many concurrent writers against a budget that takes only some of them: every request
    // either is stored whole or refused whole, and what was acknowledged is exactly what is
    // stored.
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    config.disk_budget = 60_000;
    let hot = open(config).await;
    let mut tasks = Vec::new();
    for w in 0..20 {
        let hot = hot.clone();
        tasks.push(tokio::spawn(async move {
            let batch = events("acme", &format!("w{w}"), 40, 50);
            let result = hot
                .append(AppendRequest {
                    events: batch.clone(),
                    offsets: vec![],
                })
                .await;
            (batch, result)
        }));
    }
    let mut stored = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (batch, result) = t.await.unwrap();
        match result {
            Ok(out) => {
                assert!(
                    out.iter()
                        .all(|o| matches!(o, AppendOutcome::Stored { .. }))
                );
                stored.extend(batch);
            }
            Err(Error::Full { .. }) => {
                refused += 1;
                for e in &batch {
                    assert!(hot.get("acme", &e.id).await.unwrap().is_none());
                }
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(refused > 0, "the budget must refuse some requests");
    assert!(!stored.is_empty(), "the budget must take some requests");
    assert_eq!(hot.stats().events, stored.len() as u64);
    let q = query("acme");
    assert_eq!(
        hot.aggregate(&q).await.unwrap().partial,
        brute_force(&q, &stored)
    );
    hot.shutdown().await.unwrap();
}
