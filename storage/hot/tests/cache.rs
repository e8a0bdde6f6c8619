//! The segment cache is an optimisation only: with a memory budget far smaller than the data,
//! every answer still comes out right (read back from redb) and memory stays in budget.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{SEC, append, brute_force, events, open, query};
use strata_core::{
    conformance::hot::T0,
    hot::{AppendOutcome, HotTier},
};
use strata_hot::{HotConfig, HotStore};
use strata_types::{Event, TimeRange};

async fn check_everything(hot: &HotStore, all: &[Event]) {
    let q = query("acme");
    let got = hot.aggregate(&q).await.unwrap();
    assert_eq!(got.partial, brute_force(&q, all));
    assert_eq!(got.partial.total_count(), all.len() as u64);
    let range = TimeRange {
        from: T0,
        to: T0 + 3 * 3600 * SEC,
    };
    let scanned = hot.scan("acme", range, None).await.unwrap();
    assert_eq!(scanned.len(), all.len());
    assert!(
        scanned
            .windows(2)
            .all(|w| (w[0].event.ts, w[0].seq) < (w[1].event.ts, w[1].seq))
    );
    let mut want: Vec<&Event> = all.iter().collect();
    want.sort_by_key(|e| e.ts);
    for (g, w) in scanned.iter().zip(&want) {
        assert_eq!(g.event.ts, w.ts);
    }
    for e in all.iter().step_by(97) {
        let found = hot.get("acme", &e.id).await.unwrap().expect("found");
        assert_eq!(&found.event, e);
    }
    let stats = hot.stats();
    assert!(
        stats.memory_bytes <= stats.memory_budget,
        "memory {} over budget {}",
        stats.memory_bytes,
        stats.memory_budget
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evicted_segments_are_read_back_from_redb() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    config.memory_budget = 2 * 1024 * 1024;
    let hot = open(config.clone()).await;
    // About 5 MB of decoded events against under 1 MB of cache.
    let all = events("acme", "e", 4000, 1000);
    for chunk in all.chunks(100) {
        append(hot.as_ref(), chunk.to_vec()).await;
    }
    append(hot.as_ref(), events("other", "o", 300, 1000)).await;
    check_everything(&hot, &all).await;
    // A second pass goes through the same evictions and misses again.
    check_everything(&hot, &all).await;
    hot.shutdown().await.unwrap();
    drop(hot);

    let hot = open(config).await;
    check_everything(&hot, &all).await;
    hot.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_releases_see_consistent_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = HotConfig::new(dir.path().join("hot.redb"));
    // Small enough that most segments are read from redb while rows are being deleted.
    config.memory_budget = 320 * 1024;
    let hot = open(config).await;
    let commits = 50u64;
    let per_commit = 40u64;
    for c in 0..commits {
        let batch: Vec<Event> = (0..per_commit)
            .map(|i| {
                let mut e = strata_core::conformance::hot::event(
                    "acme",
                    &format!("c{c}-{i}"),
                    T0 + (c * per_commit + i) as i64 * SEC,
                    Some(1.0),
                );
                e.payload = Some(format!(r#""{}""#, "y".repeat(500)));
                e
            })
            .collect();
        let out = append(hot.as_ref(), batch).await;
        assert_eq!(
            out[0],
            AppendOutcome::Stored {
                seq: c * per_commit + 1
            }
        );
    }
    let total = commits * per_commit;

    let flusher = {
        let hot = Arc::clone(&hot);
        tokio::spawn(async move {
            while let Some(batch) = hot.pending_flush(1, i64::MAX).await.unwrap() {
                assert_eq!(batch.events.len() as u64, per_commit);
                hot.release(batch.last_seq).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let q = query("acme");
    let range = TimeRange {
        from: T0,
        to: T0 + 4 * 3600 * SEC,
    };
    let mut checks = 0;
    loop {
        let done = flusher.is_finished();
        let hp = hot.aggregate(&q).await.unwrap();
        assert_eq!(
            hp.partial.total_count(),
            total - hp.released_upto,
            "an answer counts exactly the events above its watermark"
        );
        let scanned = hot.scan("acme", range, None).await.unwrap();
        if let Some(first) = scanned.first() {
            // Contiguous seqs from a commit boundary up to the last one.
            assert_eq!((first.seq - 1) % per_commit, 0);
            assert!(scanned.iter().zip(first.seq..).all(|(e, s)| e.seq == s));
            assert_eq!(scanned.last().map(|e| e.seq), Some(total));
        }
        checks += 1;
        if done {
            break;
        }
    }
    flusher.await.unwrap();
    assert!(checks > 1);
    assert_eq!(hot.stats().events, 0);
    assert_eq!(hot.stats().released_upto, total);
    hot.shutdown().await.unwrap();
}
