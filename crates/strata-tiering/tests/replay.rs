//! Ordered replay over real embedded hot, warm and local-directory cold tiers: every event
//! exactly once in `(ts, id)` order, equal to brute force with every filter; still exactly
//! once while flushes and exports run; interrupted and resumed from a cursor; tenants walled
//! off; the concurrency cap holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{NODE, Rig, moving_flusher, test_cold_config, today};
use futures::StreamExt;
use strata_tiering::{ReplayConfig, ReplayCursor, ReplayItem, ReplayLimits, ReplayRequest, Store};
use strata_types::{
    AttrFilter, Event, TimeRange,
    time::{DAY, HOUR, SEC, now_micros},
};

/// Hot, warm and a local-directory archive; the flusher moves `flush_batch` events per
/// batch.
async fn rig(flush_batch: usize) -> Rig {
    Rig::builder(NODE)
        .cold(test_cold_config())
        .flusher(moving_flusher(flush_batch))
        .build()
        .await
}

/// `n` events of two tenants: most on the three days before yesterday (old enough to
/// export), some within the last hour; every eleventh shares its `ts` with the previous one
/// so ties are broken by id.
fn events(n: usize, seed: usize) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::with_capacity(n);
    for i in 0..n {
        let k = i * 7919 + seed * 104_729;
        let ts = if i % 11 == 10 {
            out[i - 1].ts
        } else if k.is_multiple_of(10) {
            now_micros() - (k % 3000) as i64 * SEC
        } else {
            today() - 2 * DAY - ((k % (3 * 86_400)) as i64) * SEC - (k % 997) as i64
        };
        out.push(Event {
            tenant: if k.is_multiple_of(5) { "other" } else { "acme" }.into(),
            stream: ["click", "view", "buy"][k % 3].into(),
            key: format!("user-{}", k % 7),
            // Ids deliberately not in ts order.
            id: format!("e-{seed}-{:05}", (i * 7) % n),
            ts,
            value: (!k.is_multiple_of(3)).then_some((k % 100) as f64 / 4.0),
            attrs: [("page".to_string(), format!("/p{}", k % 3))].into(),
            payload: (!k.is_multiple_of(4)).then(|| format!(r#"{{"i": {i},  "s": "é"}}"#)),
        });
    }
    out
}

async fn ingest(store: &Store, events: &[Event]) {
    let report = common::ingest(store, events).await;
    assert_eq!(report.duplicates, 0);
}

/// Small slices and a small slice bound, so splitting and growing are exercised.
fn limits() -> ReplayLimits {
    ReplayLimits::new(ReplayConfig {
        slice: Duration::from_secs(600),
        max_slice: Duration::from_secs(86_400),
        max_slice_events: 40,
        warm_page_rows: 7,
        ..ReplayConfig::default()
    })
}

fn whole() -> TimeRange {
    TimeRange {
        from: today() - 6 * DAY,
        to: today() + DAY,
    }
}

/// What a replay must yield: matching events sorted by `(ts, id)`.
fn brute_force(all: &[Event], request: &ReplayRequest) -> Vec<Event> {
    let mut want: Vec<Event> = all.iter().filter(|e| request.matches(e)).cloned().collect();
    want.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
    want
}

async fn replay(store: &Store, request: ReplayRequest, limits: &ReplayLimits) -> Vec<ReplayItem> {
    store
        .replay(request, limits)
        .map(|r| r.unwrap())
        .collect()
        .await
}

fn assert_replay(got: &[ReplayItem], want: &[Event], case: &str) {
    let events: Vec<&Event> = got.iter().map(|i| &i.event.event).collect();
    let want: Vec<&Event> = want.iter().collect();
    assert_eq!(events.len(), want.len(), "{case}: count");
    assert_eq!(events, want, "{case}: events in (ts, id) order");
    for item in got {
        assert_eq!(
            item.cursor,
            ReplayCursor::after(&item.event.event),
            "{case}"
        );
    }
}

/// Every filter combination the API offers.
fn cases() -> Vec<(&'static str, ReplayRequest)> {
    let base = ReplayRequest::new("acme", whole());
    let narrow = TimeRange {
        from: today() - 3 * DAY + HOUR + 17,
        to: today() - 3 * DAY + 9 * HOUR,
    };
    vec![
        ("all", base.clone()),
        (
            "one stream",
            ReplayRequest {
                streams: vec!["view".into()],
                ..base.clone()
            },
        ),
        (
            "two streams",
            ReplayRequest {
                streams: vec!["buy".into(), "click".into()],
                ..base.clone()
            },
        ),
        (
            "key",
            ReplayRequest {
                key: Some("user-3".into()),
                ..base.clone()
            },
        ),
        (
            "attr",
            ReplayRequest {
                filter: Some(AttrFilter {
                    name: "page".into(),
                    value: "/p1".into(),
                }),
                streams: vec!["click".into()],
                ..base.clone()
            },
        ),
        (
            "narrow",
            ReplayRequest {
                range: narrow,
                ..base.clone()
            },
        ),
        ("other tenant", ReplayRequest::new("other", whole())),
        ("nobody", ReplayRequest::new("nobody", whole())),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_over_hot_warm_and_cold_equals_brute_force() {
    let rig = rig(500).await;
    // Old events end up in cold; recent ones flushed stay in warm; a late batch for the
    // archived days waits in warm next to the archive (or amends it); the last batch stays hot.
    let archived = events(900, 1);
    ingest(&rig.store, &archived).await;
    rig.flusher().flush_due().await.unwrap();
    assert!(rig.export_all().await > 500);
    let warm = events(300, 2);
    ingest(&rig.store, &warm).await;
    rig.flusher().flush_due().await.unwrap();
    let hot = events(300, 3);
    ingest(&rig.store, &hot).await;
    assert!(rig.store.hot_stats().events > 0, "some events still hot");
    let all: Vec<Event> = [archived, warm, hot].concat();
    assert!(
        !rig.store
            .archive_partitions("acme")
            .await
            .unwrap()
            .is_empty(),
        "some events are in cold"
    );

    let limits = limits();
    for (case, request) in cases() {
        let got = replay(&rig.store, request.clone(), &limits).await;
        assert_replay(&got, &brute_force(&all, &request), case);
        if case == "all" {
            assert!(got.len() > 800, "{case}: {}", got.len());
        }
        if case == "nobody" {
            assert!(got.is_empty());
        }
    }
    // Tenants are walled off: no replay of one tenant yields another's event.
    for tenant in ["acme", "other"] {
        let got = replay(&rig.store, ReplayRequest::new(tenant, whole()), &limits).await;
        assert!(!got.is_empty());
        assert!(got.iter().all(|i| i.event.event.tenant == tenant));
    }
    // The same answer with the default (large) slices.
    let request = ReplayRequest::new("acme", whole());
    let got = replay(&rig.store, request.clone(), &ReplayLimits::default()).await;
    assert_replay(&got, &brute_force(&all, &request), "default config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_is_exactly_once_while_flushes_and_exports_run() {
    for round in 0..3 {
        // Small flush batches: the flusher releases many times while the replay reads.
        let rig = rig(23).await;
        let all = events(1200, 10 + round);
        ingest(&rig.store, &all).await;
        let mover = {
            let flusher = rig.flusher().clone();
            let exporter = rig.exporter().clone();
            tokio::spawn(async move {
                let mut moved = 0;
                loop {
                    let f = flusher.flush_due().await.unwrap();
                    let e = exporter.export_due().await.unwrap();
                    moved += f.rows + e.rows;
                    if !f.more_due && f.rows == 0 && !e.more_due && e.rows == 0 {
                        return moved;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        let request = ReplayRequest::new("acme", whole());
        let limits = limits();
        let mut got = Vec::new();
        let mut stream = rig.store.replay(request.clone(), &limits);
        while let Some(item) = stream.next().await {
            got.push(item.unwrap());
            if got.len() % 17 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let moved = mover.await.unwrap();
        assert!(moved > 0, "round {round}: the tiers moved data");
        assert_replay(
            &got,
            &brute_force(&all, &request),
            &format!("round {round} during moves"),
        );
        // And once everything settled.
        let got = replay(&rig.store, request.clone(), &limits).await;
        assert_replay(
            &got,
            &brute_force(&all, &request),
            &format!("round {round} after moves"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_replay_resumes_from_its_cursor() {
    let rig = rig(500).await;
    let all = events(900, 20);
    ingest(&rig.store, &all).await;
    let limits = limits();
    let request = ReplayRequest {
        streams: vec!["click".into(), "view".into()],
        ..ReplayRequest::new("acme", whole())
    };
    let want = brute_force(&all, &request);
    assert!(want.len() > 300);
    for cut in [1, 150, want.len() - 1, want.len()] {
        let mut first: Vec<ReplayItem> = rig
            .store
            .replay(request.clone(), &limits)
            .take(cut)
            .map(|r| r.unwrap())
            .collect()
            .await;
        // The data moves between the two halves: hot → warm → cold.
        if cut == 150 {
            rig.flusher().flush_due().await.unwrap();
            rig.export_all().await;
        }
        let cursor = first.last().unwrap().cursor.clone();
        let resumed = ReplayRequest {
            after: Some(ReplayCursor::decode(&cursor.encode()).unwrap()),
            ..request.clone()
        };
        let rest = replay(&rig.store, resumed, &limits).await;
        first.extend(rest);
        assert_replay(&first, &want, &format!("cut after {cut}"));
    }
    // A cursor taken from one tenant's replay leaks nothing of it into another's.
    let acme = replay(&rig.store, request.clone(), &limits).await;
    let cursor = acme[10].cursor.clone();
    let other = ReplayRequest {
        after: Some(cursor),
        ..ReplayRequest::new("other", whole())
    };
    let got = replay(&rig.store, other.clone(), &limits).await;
    assert!(got.iter().all(|i| i.event.event.tenant == "other"));
    assert_replay(
        &got,
        &brute_force(&all, &other),
        "other tenant after acme's cursor",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_beyond_the_cap_wait_for_a_slot() {
    let rig = rig(500).await;
    let all = events(200, 30);
    ingest(&rig.store, &all).await;
    let limits = ReplayLimits::new(ReplayConfig {
        max_concurrent: 1,
        ..ReplayConfig::default()
    });
    let request = ReplayRequest::new("acme", whole());
    let mut first = rig.store.replay(request.clone(), &limits);
    assert!(
        first.next().await.is_some(),
        "the first replay holds the slot"
    );
    let mut second = rig.store.replay(request.clone(), &limits);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.next())
            .await
            .is_err(),
        "the second replay waits while the first one reads"
    );
    drop(first);
    let got: Vec<ReplayItem> = second.map(|r| r.unwrap()).collect().await;
    assert_replay(&got, &brute_force(&all, &request), "after the slot freed");
    // A finished replay frees its slot without being dropped.
    let mut third = rig.store.replay(request.clone(), &limits);
    while third.next().await.is_some() {}
    let again = replay(&rig.store, request.clone(), &limits).await;
    assert_eq!(again.len(), got.len());
}
