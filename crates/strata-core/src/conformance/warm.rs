//! The warm tier conformance suite. Run it from a backend's tests:
//!
//! ```text
//! strata_core::conformance::warm::run_all(|| MyHarness::new()).await;
//! strata_core::conformance::warm::run_cold_handoff(|| MyHarness::new()).await;
//! ```
//!
//! [`run_cold_handoff`] holds the warm side of the warm → cold hand-off (export marks, export
//! pages, the compare-and-set commit, due partitions, live pointers); every backend that
//! `strata serve --cold` can run with must pass it too.
//!
//! Every scenario compares what the backend answers with a brute-force pass over the same
//! events, so a backend that takes shortcuts (rollups, pushed-down filters, partition
//! pruning) is held to the exact answer.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use strata_types::{AggregateQuery, Event, PartialAggregate, QueryParams, StoredEvent, TimeRange};

use super::{Lcg, assert_same};
use crate::{
    cold::{ColdRow, LivePartition, PartitionKey},
    handoff::{ColdCommit, ExportMarks, WarmStore},
    hot::{FlushBatch, HotWatermark},
    warm::{ScanCursor, ScanRequest, WarmTier, WriteOutcome},
};

/// Opens a backend over persistent state that outlives each instance.
#[async_trait]
pub trait WarmHarness: Send + Sync {
    /// Opens the backend. Opening again after the previous instance was dropped must find
    /// everything that instance committed.
    async fn open(&self) -> Arc<dyn WarmTier>;
}

/// Opens a backend that also hands rows to the cold tier, over persistent state that
/// outlives each instance (for [`run_cold_handoff`]).
#[async_trait]
pub trait HandoffHarness: Send + Sync {
    /// Opens the backend, as [`WarmHarness::open`] does.
    async fn open(&self) -> Arc<dyn WarmStore>;
}

/// 2026-11-26T00:00:00Z in epoch micros: the suite's time origin.
pub const T0: i64 = 1_795_651_200_000_000;
const SEC: i64 = 1_000_000;
const HOUR: i64 = 3600 * SEC;
/// The node the suite's batches come from unless a scenario says otherwise.
pub const NODE: &str = "node-a";

/// Events of one tenant spread over three hours (some on a day boundary's far side), with
/// sub-second timestamps, missing values, missing attributes and odd characters.
pub fn random_events(tenant: &str, n: usize, seed: u64) -> Vec<Event> {
    let mut rng = Lcg::new(seed);
    (0..n)
        .map(|i| {
            // A few events fall before T0 (the previous day) so backends that partition by
            // day are exercised across a partition boundary.
            let ts = T0 - HOUR + rng.below(4 * 3600) as i64 * SEC + rng.below(1_000_000) as i64;
            let mut attrs = BTreeMap::new();
            if rng.below(5) != 0 {
                attrs.insert("page".to_string(), format!("/p{}", rng.below(3)));
            }
            if rng.below(2) == 0 {
                attrs.insert(
                    "country".to_string(),
                    ["de", "fr"][rng.below(2) as usize].into(),
                );
            }
            Event {
                tenant: tenant.into(),
                stream: ["click", "view"][rng.below(2) as usize].into(),
                key: format!("user-{}-ü\"'", rng.below(5)),
                id: format!("{tenant}-{seed}-{i}"),
                ts,
                value: (rng.below(4) != 0).then(|| rng.below(1000) as f64 / 4.0 - 50.0),
                attrs,
                payload: (rng.below(3) != 0)
                    .then(|| format!(r#"{{"i": {i},  "n": [1, 2.50], "s": "é\n"}}"#)),
            }
        })
        .collect()
}

/// Turns events into stored rows with consecutive sequence numbers from `first_seq`.
pub fn stored(events: &[Event], first_seq: u64) -> Vec<StoredEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| StoredEvent {
            event: e.clone(),
            ingest_ts: e.ts + 2 * SEC + i as i64,
            seq: first_seq + i as u64,
        })
        .collect()
}

/// A flush batch holding `rows` (in sequence order).
pub fn batch(rows: &[StoredEvent]) -> FlushBatch {
    FlushBatch {
        first_seq: rows.first().map_or(0, |r| r.seq),
        last_seq: rows.last().map_or(0, |r| r.seq),
        events: rows.to_vec(),
    }
}

fn query(tenant: &str, bucket: &str, agg: &str, range: TimeRange) -> AggregateQuery {
    let from = range.from.to_string();
    let to = range.to.to_string();
    AggregateQuery::from_params(&QueryParams {
        tenant,
        from: &from,
        to: &to,
        bucket,
        agg,
        stream: None,
        group_by: None,
        filter: None,
    })
    .expect("suite query is valid")
}

fn brute_force<'a>(
    q: &AggregateQuery,
    rows: impl IntoIterator<Item = &'a StoredEvent>,
) -> PartialAggregate {
    let mut p = PartialAggregate::default();
    rows.into_iter().for_each(|r| p.add(q, &r.event));
    p
}

async fn write(warm: &dyn WarmTier, node: &str, rows: &[StoredEvent]) -> WriteOutcome {
    warm.write_batch(node, &batch(rows))
        .await
        .expect("write_batch")
}

async fn scan_all(
    warm: &dyn WarmTier,
    tenant: &str,
    range: TimeRange,
    stream: Option<&str>,
    watermark: &HotWatermark,
    page: usize,
) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut after: Option<ScanCursor> = None;
    for _ in 0..100_000 {
        let request = ScanRequest {
            tenant: tenant.into(),
            range,
            stream: stream.map(str::to_owned),
            after: after.clone(),
            limit: page,
        };
        let got = warm.scan(&request, watermark).await.expect("scan");
        assert!(got.events.len() <= page, "scan: page larger than its limit");
        out.extend(got.events);
        match got.next {
            Some(next) => {
                assert!(
                    after.as_ref().is_none_or(|a| *a < next),
                    "scan: cursor must advance"
                );
                after = Some(next);
            }
            None => return out,
        }
    }
    panic!("scan: did not finish")
}

fn everything() -> HotWatermark {
    HotWatermark::everything(NODE)
}

fn whole_range() -> TimeRange {
    TimeRange {
        from: T0 - 2 * 24 * HOUR,
        to: T0 + 2 * 24 * HOUR,
    }
}

/// Runs every scenario, each on a fresh harness from `new_harness`.
pub async fn run_all<H: WarmHarness>(new_harness: impl Fn() -> H) {
    write_then_get(&new_harness()).await;
    batches_are_exactly_once(&new_harness()).await;
    aggregates_match_brute_force(&new_harness()).await;
    watermark_hides_unreleased_rows(&new_harness()).await;
    scan_pages_in_order(&new_harness()).await;
    tenants_are_walled_off(&new_harness()).await;
    retention_drops_old_rows(&new_harness()).await;
    survives_reopen(&new_harness()).await;
    concurrent_writers(&new_harness()).await;
    late_rows_keep_aggregates_exact(&new_harness()).await;
}

/// A written row reads back field for field (payload byte for byte, microsecond times).
pub async fn write_then_get(h: &dyn WarmHarness) {
    let warm = h.open().await;
    warm.health().await.expect("health");
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 0);
    let rows = stored(&random_events("acme", 50, 11), 1);
    let out = write(warm.as_ref(), NODE, &rows).await;
    assert_eq!(out, WriteOutcome::Written { rows: 50 }, "write_then_get");
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 50);
    for r in &rows {
        let got = warm
            .get("acme", &r.event.id, &everything())
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("write_then_get: {} not found", r.event.id));
        assert_eq!(&got, r, "write_then_get: row differs");
    }
    assert!(
        warm.get("acme", "nope", &everything())
            .await
            .expect("get")
            .is_none()
    );
    assert!(
        warm.get("other", &rows[0].event.id, &everything())
            .await
            .expect("get")
            .is_none(),
        "write_then_get: another tenant's id"
    );
}

/// The same batch twice, a replay cut at other boundaries, and a stale replay all store each
/// row once; another node's sequence numbers are independent.
pub async fn batches_are_exactly_once(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let rows = stored(&random_events("acme", 300, 12), 1);
    let q = query("acme", "1h", "count", whole_range());
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..100]).await,
        WriteOutcome::Written { rows: 100 }
    );
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..100]).await,
        WriteOutcome::AlreadyWritten,
        "exactly_once: same batch again"
    );
    // After a crash the hot tier may hand out a longer batch from the same start.
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..180]).await,
        WriteOutcome::Written { rows: 80 },
        "exactly_once: longer replay"
    );
    // ... or a shorter one, and then continue from where that one ended.
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..60]).await,
        WriteOutcome::AlreadyWritten
    );
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[60..]).await,
        WriteOutcome::Written { rows: 120 },
        "exactly_once: replay continuing inside a written batch"
    );
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 300);
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_eq!(got.total_count(), 300, "exactly_once: each row once");
    assert_same("exactly_once", &got, &brute_force(&q, &rows));

    // Another node's rows carry the same sequence numbers but are other events.
    let other = stored(&random_events("acme", 40, 13), 1);
    assert_eq!(
        write(warm.as_ref(), "node-b", &other).await,
        WriteOutcome::Written { rows: 40 }
    );
    assert_eq!(warm.committed_upto("node-b").await.expect("committed"), 40);
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_same(
        "exactly_once: two nodes",
        &got,
        &brute_force(&q, rows.iter().chain(&other)),
    );
}

/// Aggregates equal brute force for every aggregation, grouping, filter and stream, for
/// bucket widths and ranges that a rollup can answer and ones it cannot.
pub async fn aggregates_match_brute_force(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let rows = stored(&random_events("acme", 900, 14), 1);
    for chunk in rows.chunks(211) {
        write(warm.as_ref(), NODE, chunk).await;
    }
    write(
        warm.as_ref(),
        NODE,
        &stored(&random_events("other", 200, 15), 2000),
    )
    .await;
    let ranges = [
        // Aligned to hours: a rollup can answer all of it.
        TimeRange {
            from: T0 - HOUR,
            to: T0 + 3 * HOUR,
        },
        // Aligned to minutes only.
        TimeRange {
            from: T0 - 17 * 60 * SEC,
            to: T0 + 2 * HOUR + 3 * 60 * SEC,
        },
        // Aligned to nothing: raw edges around rolled-up middles.
        TimeRange {
            from: T0 - HOUR + 1_234_567,
            to: T0 + 2 * HOUR + 7 * 60 * SEC + 891,
        },
        // Narrower than a minute.
        TimeRange {
            from: T0 + 30 * SEC,
            to: T0 + 71 * SEC,
        },
    ];
    let shapes: [(Option<&str>, Option<&str>); 6] = [
        (None, None),
        (Some("key"), None),
        (Some("attr:page"), None),
        (Some("attr:missing"), None),
        (None, Some("attr:page=/p1")),
        (Some("attr:country"), Some("attr:page=/p2")),
    ];
    for range in ranges {
        for bucket in ["1s", "1m", "15m", "1h", "2h", "1d"] {
            for agg in ["count", "sum", "min", "max", "avg"] {
                for (group_by, filter) in shapes {
                    for stream in [None, Some("click")] {
                        if bucket == "1s" && (group_by.is_some() || agg != "count") {
                            continue;
                        }
                        let mut q = query("acme", bucket, agg, range);
                        q.stream = stream.map(str::to_owned);
                        if let Some(g) = group_by {
                            q.group_by = match g.strip_prefix("attr:") {
                                Some(name) => strata_types::GroupBy::Attr(name.into()),
                                None => strata_types::GroupBy::Key,
                            };
                        }
                        q.filter = filter.and_then(|f| {
                            let (name, value) = f.strip_prefix("attr:")?.split_once('=')?;
                            Some(strata_types::AttrFilter {
                                name: name.into(),
                                value: value.into(),
                            })
                        });
                        let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
                        assert_same(
                            &format!(
                                "aggregate {range:?} {bucket} {agg} {group_by:?} {filter:?} {stream:?}"
                            ),
                            &got,
                            &brute_force(&q, &rows),
                        );
                    }
                }
            }
        }
    }
}

/// Rows of the watermark's node above `released_upto` are left to hot; other nodes' rows
/// always count. Holds for rollup-shaped queries too.
pub async fn watermark_hides_unreleased_rows(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let mine = stored(&random_events("acme", 400, 16), 1);
    let theirs = stored(&random_events("acme", 100, 17), 1);
    write(warm.as_ref(), NODE, &mine[..200]).await;
    write(warm.as_ref(), NODE, &mine[200..]).await;
    write(warm.as_ref(), "node-b", &theirs).await;
    let range = TimeRange {
        from: T0 - HOUR,
        to: T0 + 3 * HOUR,
    };
    for released in [0u64, 1, 150, 200, 399, 400, 10_000] {
        let wm = HotWatermark::new(NODE, released);
        let visible: Vec<&StoredEvent> = mine
            .iter()
            .filter(|r| r.seq <= released)
            .chain(&theirs)
            .collect();
        for (bucket, agg) in [
            ("1h", "count"),
            ("1m", "sum"),
            ("15m", "max"),
            ("1d", "avg"),
        ] {
            let q = query("acme", bucket, agg, range);
            let got = warm.aggregate(&q, &wm).await.expect("aggregate");
            assert_same(
                &format!("watermark {released} {bucket} {agg}"),
                &got,
                &brute_force(&q, visible.iter().copied()),
            );
        }
        let scanned = scan_all(warm.as_ref(), "acme", whole_range(), None, &wm, 1000).await;
        assert_eq!(scanned.len(), visible.len(), "watermark {released}: scan");
        for probe in [&mine[0], &mine[150], &mine[399]] {
            let got = warm.get("acme", &probe.event.id, &wm).await.expect("get");
            assert_eq!(
                got.is_some(),
                probe.seq <= released,
                "watermark {released}: get seq {}",
                probe.seq
            );
        }
        let other = warm
            .get("acme", &theirs[99].event.id, &wm)
            .await
            .expect("get");
        assert!(
            other.is_some(),
            "watermark: other node's row always visible"
        );
    }
}

/// Paged scans return a tenant's rows in `(ts, seq, node)` order, filtered by range and
/// stream, each row once across pages, including rows that share a timestamp.
pub async fn scan_pages_in_order(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let mut events = random_events("acme", 500, 18);
    // Rows with equal timestamps on both nodes force the tie-breakers.
    for e in events.iter_mut().take(60) {
        e.ts = T0 + 7 * SEC;
    }
    let mine = stored(&events[..300], 1);
    let theirs = stored(&events[300..], 1);
    write(warm.as_ref(), NODE, &mine).await;
    write(warm.as_ref(), "node-b", &theirs).await;
    write(
        warm.as_ref(),
        "node-b",
        &stored(&random_events("other", 50, 19), 1000),
    )
    .await;
    let mut all: Vec<(&str, &StoredEvent)> = mine
        .iter()
        .map(|r| (NODE, r))
        .chain(theirs.iter().map(|r| ("node-b", r)))
        .collect();
    all.sort_by(|a, b| (a.1.event.ts, a.1.seq, a.0).cmp(&(b.1.event.ts, b.1.seq, b.0)));
    let range = TimeRange {
        from: T0 - 30 * 60 * SEC,
        to: T0 + 2 * HOUR + 123,
    };
    for stream in [None, Some("view")] {
        for page in [1usize, 37, 10_000] {
            if page == 1 && stream.is_none() {
                // One-row pages over everything are slow on a server; the view stream
                // covers the same code path.
                continue;
            }
            let got = scan_all(warm.as_ref(), "acme", range, stream, &everything(), page).await;
            let want: Vec<&StoredEvent> = all
                .iter()
                .filter(|(_, r)| {
                    range.contains(r.event.ts) && stream.is_none_or(|s| s == r.event.stream)
                })
                .map(|(_, r)| *r)
                .collect();
            assert_eq!(got.len(), want.len(), "scan {stream:?} page {page}: count");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g, *w, "scan {stream:?} page {page}: order or content");
            }
        }
    }
    let empty = warm
        .scan(
            &ScanRequest::new(
                "acme",
                TimeRange {
                    from: T0 + 10 * 24 * HOUR,
                    to: T0 + 11 * 24 * HOUR,
                },
                10,
            ),
            &everything(),
        )
        .await
        .expect("scan");
    assert!(empty.events.is_empty() && empty.next.is_none());
}

/// Nothing of one tenant is visible through another tenant's queries.
pub async fn tenants_are_walled_off(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let mut beta = random_events("beta", 100, 20);
    // Same ids as acme's, to catch lookups that forget the tenant.
    let acme = random_events("acme", 100, 20);
    for (b, a) in beta.iter_mut().zip(&acme) {
        b.id.clone_from(&a.id);
    }
    write(warm.as_ref(), NODE, &stored(&beta, 1)).await;
    let q = query("acme", "1h", "count", whole_range());
    assert_eq!(
        warm.aggregate(&q, &everything())
            .await
            .expect("aggregate")
            .total_count(),
        0,
        "tenants: aggregate"
    );
    assert!(
        warm.get("acme", &acme[0].id, &everything())
            .await
            .expect("get")
            .is_none(),
        "tenants: get"
    );
    assert!(
        scan_all(
            warm.as_ref(),
            "acme",
            whole_range(),
            None,
            &everything(),
            100
        )
        .await
        .is_empty(),
        "tenants: scan"
    );
    let got = warm
        .get("beta", &acme[0].id, &everything())
        .await
        .expect("get")
        .expect("beta's own row");
    assert_eq!(got.event.tenant, "beta");
}

/// `drop_before` removes exactly the rows before the cutoff; aggregates (rollup-shaped or
/// not), lookups and scans agree, and writes continue afterwards.
pub async fn retention_drops_old_rows(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let mut events = random_events("acme", 400, 21);
    // Some rows days back, in partitions that can be dropped whole.
    for e in events.iter_mut().take(40) {
        e.ts -= 3 * 24 * HOUR;
    }
    let rows = stored(&events, 1);
    write(warm.as_ref(), NODE, &rows[..250]).await;
    write(warm.as_ref(), NODE, &rows[250..]).await;
    let cutoff = T0 + 37 * 60 * SEC + 123_456;
    warm.drop_before(cutoff).await.expect("drop_before");
    let kept: Vec<&StoredEvent> = rows.iter().filter(|r| r.event.ts >= cutoff).collect();
    assert!(!kept.is_empty() && kept.len() < rows.len());
    let range = TimeRange {
        from: T0 - 4 * 24 * HOUR,
        to: T0 + 3 * HOUR,
    };
    for (bucket, agg) in [("1h", "count"), ("1m", "sum"), ("1d", "max")] {
        let q = query("acme", bucket, agg, range);
        let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
        assert_same(
            &format!("retention {bucket} {agg}"),
            &got,
            &brute_force(&q, kept.iter().copied()),
        );
    }
    let scanned = scan_all(warm.as_ref(), "acme", range, None, &everything(), 500).await;
    assert_eq!(scanned.len(), kept.len(), "retention: scan");
    for r in &rows {
        let got = warm
            .get("acme", &r.event.id, &everything())
            .await
            .expect("get");
        assert_eq!(
            got.is_some(),
            r.event.ts >= cutoff,
            "retention: get at {}",
            r.event.ts
        );
    }
    // The ledger survives retention: replays stay no-ops, new rows land.
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..250]).await,
        WriteOutcome::AlreadyWritten
    );
    // Late rows below the cutoff are accepted (the ledger moves on) but not stored.
    let more = stored(&random_events("acme", 50, 22), 401);
    assert_eq!(
        write(warm.as_ref(), NODE, &more).await,
        WriteOutcome::Written { rows: 50 }
    );
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 450);
    let late = more
        .iter()
        .find(|r| r.event.ts < cutoff)
        .expect("a late row");
    assert!(
        warm.get("acme", &late.event.id, &everything())
            .await
            .expect("get")
            .is_none(),
        "retention: a row below the cutoff written later is not stored"
    );
    let q = query("acme", "1h", "count", range);
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_same(
        "retention: after new writes",
        &got,
        &brute_force(
            &q,
            kept.iter()
                .copied()
                .chain(more.iter().filter(|r| r.event.ts >= cutoff)),
        ),
    );
}

/// Everything committed is there after a reopen, including the ledger.
pub async fn survives_reopen(h: &dyn WarmHarness) {
    let rows = stored(&random_events("acme", 300, 23), 1);
    let warm = h.open().await;
    for chunk in rows.chunks(70) {
        write(warm.as_ref(), NODE, chunk).await;
    }
    drop(warm);
    let warm = h.open().await;
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 300);
    assert_eq!(
        write(warm.as_ref(), NODE, &rows[..70]).await,
        WriteOutcome::AlreadyWritten,
        "reopen: ledger is durable"
    );
    let q = query("acme", "15m", "avg", whole_range());
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_same("reopen", &got, &brute_force(&q, &rows));
    let probe = &rows[123];
    assert_eq!(
        warm.get("acme", &probe.event.id, &everything())
            .await
            .expect("get")
            .as_ref(),
        Some(probe)
    );
}

/// Concurrent writers: the same batch from several tasks is stored once; different nodes
/// write side by side.
pub async fn concurrent_writers(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let rows = Arc::new(stored(&random_events("acme", 200, 24), 1));
    let mut tasks = Vec::new();
    for w in 0..6 {
        let warm = Arc::clone(&warm);
        let rows = Arc::clone(&rows);
        tasks.push(tokio::spawn(async move {
            let node = if w % 2 == 0 { NODE } else { "node-b" };
            warm.write_batch(node, &batch(&rows))
                .await
                .expect("write_batch")
        }));
    }
    let mut written = 0;
    for t in tasks {
        if let WriteOutcome::Written { rows } = t.await.expect("writer task") {
            written += rows;
        }
    }
    assert_eq!(written, 400, "concurrent: each node's batch stored once");
    let q = query("acme", "1h", "count", whole_range());
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_eq!(got.total_count(), 400);
}

/// Rows that arrive after their buckets were already aggregated (late data, another node's
/// flush) count at once: whatever a backend pre-aggregates is never stale, whether the query
/// comes right after the first write or after the late ones.
pub async fn late_rows_keep_aggregates_exact(h: &dyn WarmHarness) {
    let warm = h.open().await;
    let range = TimeRange {
        from: T0 - HOUR,
        to: T0 + 3 * HOUR,
    };
    let shapes = [
        ("1h", "count"),
        ("1m", "sum"),
        ("15m", "min"),
        ("1d", "avg"),
    ];
    let first = stored(&random_events("acme", 300, 25), 1);
    // Same time span and buckets as the first rows, flushed afterwards.
    let late = stored(&random_events("acme", 200, 26), 301);
    let other = stored(&random_events("acme", 100, 27), 1);
    let mut written: Vec<&StoredEvent> = Vec::new();
    for (node, rows) in [(NODE, &first), (NODE, &late), ("node-b", &other)] {
        assert_eq!(
            write(warm.as_ref(), node, rows).await,
            WriteOutcome::Written {
                rows: rows.len() as u64
            }
        );
        written.extend(rows.iter());
        for (bucket, agg) in shapes {
            let q = query("acme", bucket, agg, range);
            let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
            assert_same(
                &format!("late rows after {} rows: {bucket} {agg}", written.len()),
                &got,
                &brute_force(&q, written.iter().copied()),
            );
        }
    }
    assert_eq!(written.len(), 600);
}

// ---------------------------------------------------------------------------------------
// The warm → cold hand-off
// ---------------------------------------------------------------------------------------

const DAY: i64 = crate::cold::DAY_MICROS;
const MINUTE: i64 = 60 * SEC;

/// A stored row with the node that flushed it, as the hand-off scenarios track them.
type NodeRow = (String, StoredEvent);

/// The day of [`T0`] (days since the epoch): the suite's events fall on it and the day before.
fn d0() -> i64 {
    T0.div_euclid(DAY)
}

fn partition_of(r: &StoredEvent) -> PartitionKey {
    PartitionKey::of(&r.event.tenant, &r.event.stream, r.event.ts)
}

/// A pointer to manifest `version` of `p`, with a checksum that tells versions (and `salt`s)
/// apart.
fn pointer(p: &PartitionKey, version: u64, salt: u64) -> LivePartition {
    LivePartition {
        partition: p.clone(),
        version,
        manifest_sha256: format!("{:032x}{:032x}", version, salt),
    }
}

fn export_commit(live: LivePartition, expected: Option<u64>, marks: &ExportMarks) -> ColdCommit {
    ColdCommit {
        live,
        expected_version: expected,
        exported: Some(marks.clone()),
    }
}

async fn write_rows(warm: &dyn WarmTier, node: &str, rows: &[StoredEvent], all: &mut Vec<NodeRow>) {
    assert_eq!(
        write(warm, node, rows).await,
        WriteOutcome::Written {
            rows: rows.len() as u64
        },
        "hand-off: flush of {} rows from {node}",
        rows.len()
    );
    all.extend(rows.iter().map(|r| (node.to_owned(), r.clone())));
}

/// Every row `export_page` hands out for `p` at `marks`, page by page.
async fn export_all(
    warm: &dyn WarmStore,
    p: &PartitionKey,
    marks: &ExportMarks,
    page: usize,
) -> Vec<ColdRow> {
    let mut out = Vec::new();
    let mut after: Option<ScanCursor> = None;
    for _ in 0..100_000 {
        let got = warm
            .export_page(p, marks, after.as_ref(), page)
            .await
            .expect("export_page");
        assert!(
            got.rows.len() <= page,
            "export_page: page larger than its limit"
        );
        out.extend(got.rows);
        match got.next {
            Some(next) => {
                assert!(
                    after.as_ref().is_none_or(|a| *a < next),
                    "export_page: cursor must advance"
                );
                after = Some(next);
            }
            None => return out,
        }
    }
    panic!("export_page: did not finish")
}

/// What an export of `p` at `marks` must hand out: the partition's rows of marked nodes at or
/// below their marks, in `(ts, seq, node)` order.
fn marked_rows(all: &[NodeRow], p: &PartitionKey, marks: &ExportMarks) -> Vec<ColdRow> {
    let mut want: Vec<ColdRow> = all
        .iter()
        .filter(|(node, r)| partition_of(r) == *p && marks.get(node).is_some_and(|m| r.seq <= *m))
        .map(|(node, r)| ColdRow {
            node: node.clone(),
            stored: r.clone(),
        })
        .collect();
    want.sort_by(|a, b| {
        (a.stored.event.ts, a.stored.seq, &a.node).cmp(&(b.stored.event.ts, b.stored.seq, &b.node))
    });
    want
}

/// Removes the exported rows from `all`.
fn without(all: &mut Vec<NodeRow>, exported: &[ColdRow]) {
    let gone: std::collections::HashSet<(String, String, u64)> = exported
        .iter()
        .map(|c| (c.stored.event.tenant.clone(), c.node.clone(), c.stored.seq))
        .collect();
    all.retain(|(node, r)| !gone.contains(&(r.event.tenant.clone(), node.clone(), r.seq)));
}

fn sorted_pointers(mut parts: Vec<LivePartition>) -> Vec<LivePartition> {
    parts.sort_by(|a, b| a.partition.cmp(&b.partition));
    parts
}

fn assert_lost_race(result: crate::Result<u64>, case: &str) {
    match result {
        Err(crate::Error::Conflict { op, .. }) => {
            assert_eq!(op, "commit_cold", "{case}: error names the operation")
        }
        other => panic!("{case}: expected the commit to be refused as a conflict, got {other:?}"),
    }
}

/// Runs every hand-off scenario, each on a fresh harness from `new_harness`. Backends that
/// hand rows to the cold tier (every one `strata serve --cold` runs with) must pass it.
pub async fn run_cold_handoff<H: HandoffHarness>(new_harness: impl Fn() -> H) {
    cold_handoff_exports_exactly_marked_rows(&new_harness()).await;
    cold_commit_is_compare_and_set(&new_harness()).await;
    aggregates_exact_after_cold_commit(&new_harness()).await;
    export_candidates_only_closed_days(&new_harness()).await;
    cold_partitions_filter_by_tenant_and_range(&new_harness()).await;
}

/// `flush_marks` reports every node's mark; `export_page` hands out exactly a partition's
/// rows at or below the marks (nodes without a mark left out), with their node, byte for
/// byte, in order; `commit_cold` drops exactly those rows and nothing else, leaves the ledger
/// alone, and afterwards the same marks export nothing.
pub async fn cold_handoff_exports_exactly_marked_rows(h: &dyn HandoffHarness) {
    let warm = h.open().await;
    let w = warm.as_ref();
    let mut all: Vec<NodeRow> = Vec::new();
    let mine = stored(&random_events("acme", 300, 51), 1);
    write_rows(w, NODE, &mine[..200], &mut all).await;
    write_rows(w, NODE, &mine[200..], &mut all).await;
    write_rows(
        w,
        "node-b",
        &stored(&random_events("acme", 120, 52), 1),
        &mut all,
    )
    .await;
    write_rows(
        w,
        "node-c",
        &stored(&random_events("acme", 40, 53), 1),
        &mut all,
    )
    .await;
    write_rows(
        w,
        NODE,
        &stored(&random_events("beta", 50, 54), 500),
        &mut all,
    )
    .await;

    let marks = warm.flush_marks().await.expect("flush_marks");
    let want: ExportMarks = [
        (NODE.to_owned(), 549),
        ("node-b".to_owned(), 120),
        ("node-c".to_owned(), 40),
    ]
    .into();
    assert_eq!(marks, want, "hand-off: flush marks");

    // The exporter caps this node at what its hot tier released and leaves node-c out; rows
    // flushed after the marks were taken carry higher numbers and stay.
    let marks: ExportMarks = [(NODE.to_owned(), 250), ("node-b".to_owned(), 120)].into();
    write_rows(
        w,
        NODE,
        &stored(&random_events("acme", 60, 55), 550),
        &mut all,
    )
    .await;

    let acme: std::collections::BTreeSet<PartitionKey> = all
        .iter()
        .filter(|(_, r)| r.event.tenant == "acme")
        .map(|(_, r)| partition_of(r))
        .collect();
    assert!(acme.len() >= 3, "hand-off: rows span several partitions");
    let mut exported = Vec::new();
    let mut pointers = Vec::new();
    for (i, p) in acme.iter().enumerate() {
        let want = marked_rows(&all, p, &marks);
        assert!(!want.is_empty(), "hand-off: {p} has marked rows");
        for page in [37, 10_000] {
            let got = export_all(w, p, &marks, page).await;
            assert_eq!(
                got.len(),
                want.len(),
                "hand-off: {p} page {page}: row count"
            );
            for (g, x) in got.iter().zip(&want) {
                assert_eq!(g, x, "hand-off: {p} page {page}: row, node or order");
            }
        }
        let live = pointer(p, 1, i as u64);
        let dropped = warm
            .commit_cold(&export_commit(live.clone(), None, &marks))
            .await
            .expect("commit_cold");
        assert_eq!(dropped, want.len() as u64, "hand-off: {p}: rows dropped");
        assert!(
            export_all(w, p, &marks, 100).await.is_empty(),
            "hand-off: {p}: the same marks export nothing after the commit"
        );
        exported.extend(want);
        pointers.push(live);
    }
    without(&mut all, &exported);

    // Exactly the rest stays, in every read path.
    let remaining: Vec<&StoredEvent> = all
        .iter()
        .filter(|(_, r)| r.event.tenant == "acme")
        .map(|(_, r)| r)
        .collect();
    let scanned = scan_all(w, "acme", whole_range(), None, &everything(), 1000).await;
    assert_eq!(
        scanned.len(),
        remaining.len(),
        "hand-off: rows left in warm"
    );
    let mut want_left: Vec<&StoredEvent> = remaining.clone();
    want_left.sort_by_key(|r| (r.event.ts, r.seq));
    let mut got_left: Vec<&StoredEvent> = scanned.iter().collect();
    got_left.sort_by_key(|r| (r.event.ts, r.seq));
    for (g, x) in got_left.iter().zip(&want_left) {
        assert_eq!(
            (g.event.ts, g.seq, &g.event.id),
            (x.event.ts, x.seq, &x.event.id)
        );
    }
    for c in exported.iter().step_by(7) {
        assert!(
            warm.get("acme", &c.stored.event.id, &everything())
                .await
                .expect("get")
                .is_none(),
            "hand-off: exported row {} still in warm",
            c.stored.event.id
        );
    }
    let ids: Vec<String> = remaining
        .iter()
        .map(|r| r.event.id.clone())
        .chain(exported.iter().map(|c| c.stored.event.id.clone()))
        .collect();
    let found = warm.existing_ids("acme", &ids).await.expect("existing_ids");
    assert_eq!(found.len(), remaining.len(), "hand-off: existing_ids");
    for r in &remaining {
        assert_eq!(
            found.get(&r.event.id),
            Some(&r.seq),
            "hand-off: existing_ids"
        );
    }
    let q = query("acme", "1h", "count", whole_range());
    let got = warm.aggregate(&q, &everything()).await.expect("aggregate");
    assert_same(
        "hand-off: aggregate after export",
        &got,
        &brute_force(&q, remaining.iter().copied()),
    );
    // Another tenant is untouched.
    let beta = scan_all(w, "beta", whole_range(), None, &everything(), 1000).await;
    assert_eq!(beta.len(), 50, "hand-off: other tenant untouched");
    // The pointers are live; the ledger is untouched.
    assert_eq!(
        sorted_pointers(
            warm.cold_partitions(Some("acme"), None)
                .await
                .expect("cold_partitions")
        ),
        sorted_pointers(pointers),
        "hand-off: live pointers"
    );
    assert_eq!(warm.committed_upto(NODE).await.expect("committed"), 609);
    assert_eq!(
        write(w, NODE, &mine[..200]).await,
        WriteOutcome::AlreadyWritten,
        "hand-off: a replay of an exported batch stores nothing"
    );
    assert_eq!(
        warm.flush_marks().await.expect("flush_marks").get("node-c"),
        Some(&40)
    );
}

/// The pointer is compare-and-set: a commit that expects another version changes nothing
/// (neither pointer nor rows), compaction commits drop nothing, and of concurrent commits
/// expecting the same version exactly one wins.
pub async fn cold_commit_is_compare_and_set(h: &dyn HandoffHarness) {
    let warm = h.open().await;
    let w = warm.as_ref();
    let mut all: Vec<NodeRow> = Vec::new();
    write_rows(
        w,
        NODE,
        &stored(&random_events("acme", 200, 61), 1),
        &mut all,
    )
    .await;
    let p = partition_of(&all[0].1);
    let in_p = all.iter().filter(|(_, r)| partition_of(r) == p).count();
    let marks = warm.flush_marks().await.expect("flush_marks");
    let live = |version, salt| pointer(&p, version, salt);
    let acme_pointers = || async {
        warm.cold_partitions(Some("acme"), None)
            .await
            .expect("cold_partitions")
    };

    // Expecting a version where there is none: refused, nothing changed.
    assert_lost_race(
        warm.commit_cold(&export_commit(live(1, 0), Some(1), &marks))
            .await,
        "CAS: expected a pointer that does not exist",
    );
    assert!(acme_pointers().await.is_empty(), "CAS: no pointer recorded");
    assert_eq!(
        export_all(w, &p, &marks, 1000).await.len(),
        in_p,
        "CAS: no row dropped"
    );

    let dropped = warm
        .commit_cold(&export_commit(live(1, 0), None, &marks))
        .await
        .expect("commit_cold");
    assert_eq!(dropped, in_p as u64);
    assert_eq!(acme_pointers().await, vec![live(1, 0)]);

    // Rows of the same partition flushed after the export.
    let mut late = random_events("acme", 30, 62);
    for (i, e) in late.iter_mut().enumerate() {
        e.stream.clone_from(&p.stream);
        e.ts = p.range().from + (i as i64 * 997 * SEC) % DAY;
    }
    write_rows(w, NODE, &stored(&late, 201), &mut all).await;
    let marks = warm.flush_marks().await.expect("flush_marks");
    assert_eq!(export_all(w, &p, &marks, 1000).await.len(), 30);

    // A second exporter that saw no pointer lost the race: nothing changes.
    assert_lost_race(
        warm.commit_cold(&export_commit(live(1, 9), None, &marks))
            .await,
        "CAS: stale exporter",
    );
    assert_eq!(acme_pointers().await, vec![live(1, 0)], "CAS: pointer kept");
    assert_eq!(
        export_all(w, &p, &marks, 1000).await.len(),
        30,
        "CAS: the loser dropped no row"
    );

    // Compaction swaps the version and drops nothing; a stale one is refused.
    let compaction = ColdCommit {
        live: live(2, 0),
        expected_version: Some(1),
        exported: None,
    };
    assert_eq!(warm.commit_cold(&compaction).await.expect("compaction"), 0);
    assert_eq!(acme_pointers().await, vec![live(2, 0)]);
    assert_eq!(export_all(w, &p, &marks, 1000).await.len(), 30);
    assert_lost_race(
        warm.commit_cold(&ColdCommit {
            live: live(2, 5),
            ..compaction
        })
        .await,
        "CAS: stale compaction",
    );
    assert_eq!(acme_pointers().await, vec![live(2, 0)]);

    // Concurrent exports expecting the same version: exactly one wins.
    let mut tasks = Vec::new();
    for salt in 0..4u64 {
        let warm = Arc::clone(&warm);
        let commit = export_commit(live(3, salt), Some(2), &marks);
        tasks.push(tokio::spawn(async move {
            (salt, warm.commit_cold(&commit).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (salt, result) = t.await.expect("commit task");
        match result {
            Ok(n) => winners.push((salt, n)),
            Err(e) => assert_lost_race(Err(e), "CAS: concurrent commit"),
        }
    }
    assert_eq!(winners.len(), 1, "CAS: exactly one concurrent commit wins");
    let (salt, n) = winners[0];
    assert_eq!(n, 30, "CAS: the winner dropped the late rows");
    assert_eq!(acme_pointers().await, vec![live(3, salt)]);
    assert!(export_all(w, &p, &marks, 1000).await.is_empty());
    let left = scan_all(w, "acme", whole_range(), None, &everything(), 1000).await;
    assert_eq!(left.len(), 200 - in_p, "CAS: other partitions untouched");
}

/// Aggregates over rows some of whose partitions went to cold (and rows flushed during and
/// after the export into the same buckets) equal brute force over the rows left in warm, for
/// shapes pre-aggregated rollups answer and ones they cannot, before and after a reopen.
pub async fn aggregates_exact_after_cold_commit(h: &dyn HandoffHarness) {
    let warm = h.open().await;
    let mut all: Vec<NodeRow> = Vec::new();
    let first = stored(&random_events("acme", 400, 71), 1);
    write_rows(warm.as_ref(), NODE, &first[..250], &mut all).await;
    write_rows(warm.as_ref(), NODE, &first[250..], &mut all).await;
    write_rows(
        warm.as_ref(),
        "node-b",
        &stored(&random_events("acme", 100, 72), 1),
        &mut all,
    )
    .await;
    write_rows(
        warm.as_ref(),
        NODE,
        &stored(&random_events("beta", 50, 73), 1000),
        &mut all,
    )
    .await;
    assert_exact(warm.as_ref(), &all, "before the export").await;

    let mut marks = warm.flush_marks().await.expect("flush_marks");
    marks.insert(NODE.to_owned(), 350);
    // Flushed while the export runs: above the marks, into the same buckets.
    write_rows(
        warm.as_ref(),
        NODE,
        &stored(&random_events("acme", 80, 74), 1050),
        &mut all,
    )
    .await;
    let due = [
        PartitionKey {
            tenant: "acme".into(),
            stream: "click".into(),
            day: d0() - 1,
        },
        PartitionKey {
            tenant: "acme".into(),
            stream: "view".into(),
            day: d0() - 1,
        },
        // One stream of a day whose other stream stays in warm.
        PartitionKey {
            tenant: "acme".into(),
            stream: "click".into(),
            day: d0(),
        },
    ];
    // Another node flushes into the same days while the commits run; it has no mark, so its
    // rows stay in warm, counted once.
    let late_writer = {
        let warm = Arc::clone(&warm);
        tokio::spawn(async move {
            let mut rows = Vec::new();
            for b in 0..5u64 {
                let batch_rows = stored(&random_events("acme", 20, 80 + b), 1 + b * 20);
                warm.write_batch("node-c", &batch(&batch_rows))
                    .await
                    .expect("write_batch");
                rows.extend(batch_rows);
            }
            rows
        })
    };
    let mut exported = Vec::new();
    for (i, p) in due.iter().enumerate() {
        let rows = export_all(warm.as_ref(), p, &marks, 97).await;
        assert!(!rows.is_empty(), "aggregates: {p} has rows to export");
        let dropped = warm
            .commit_cold(&export_commit(pointer(p, 1, i as u64), None, &marks))
            .await
            .expect("commit_cold");
        assert_eq!(dropped, rows.len() as u64);
        exported.extend(rows);
    }
    without(&mut all, &exported);
    let late = late_writer.await.expect("late writer");
    all.extend(late.into_iter().map(|r| ("node-c".to_owned(), r)));
    assert_exact(warm.as_ref(), &all, "after the export").await;
    // Every partition that still holds rows is due again once its day is over.
    let mut due_again: Vec<PartitionKey> = all.iter().map(|(_, r)| partition_of(r)).collect();
    due_again.sort_by(|a, b| (a.day, &a.tenant, &a.stream).cmp(&(b.day, &b.tenant, &b.stream)));
    due_again.dedup();
    assert_eq!(
        warm.export_candidates((d0() + 1) * DAY, 1000)
            .await
            .expect("export_candidates"),
        due_again,
        "aggregates: partitions left with rows stay due"
    );

    // Late rows into the exported partitions after the commit.
    write_rows(
        warm.as_ref(),
        NODE,
        &stored(&random_events("acme", 60, 75), 1200),
        &mut all,
    )
    .await;
    assert_exact(warm.as_ref(), &all, "late rows after the export").await;
    drop(warm);
    let warm = h.open().await;
    assert_exact(warm.as_ref(), &all, "after a reopen").await;
}

/// Every aggregate shape over aligned and unaligned ranges, with a watermark that hides
/// nothing and one that hides part of [`NODE`]'s rows, against brute force over `all`.
async fn assert_exact(warm: &dyn WarmTier, all: &[NodeRow], case: &str) {
    let ranges = [
        TimeRange {
            from: T0 - 2 * HOUR,
            to: T0 + 4 * HOUR,
        },
        TimeRange {
            from: T0 - 47 * MINUTE,
            to: T0 + 2 * HOUR + 13 * MINUTE,
        },
        TimeRange {
            from: T0 - HOUR + 1_234_567,
            to: T0 + 2 * HOUR + 891,
        },
    ];
    let shapes: [(&str, &str, Option<&str>, bool); 7] = [
        ("1h", "count", None, false),
        ("1m", "sum", None, false),
        ("15m", "min", None, false),
        ("15m", "max", Some("click"), false),
        ("1d", "avg", None, false),
        ("2h", "max", Some("view"), false),
        ("1h", "count", None, true),
    ];
    for wm in [everything(), HotWatermark::new(NODE, 350)] {
        let visible: Vec<&StoredEvent> = all
            .iter()
            .filter(|(node, r)| wm.includes(node, r.seq))
            .map(|(_, r)| r)
            .collect();
        for range in ranges {
            for (bucket, agg, stream, by_key) in shapes {
                let mut q = query("acme", bucket, agg, range);
                q.stream = stream.map(str::to_owned);
                if by_key {
                    q.group_by = strata_types::GroupBy::Key;
                }
                let got = warm.aggregate(&q, &wm).await.expect("aggregate");
                assert_same(
                    &format!(
                        "aggregates {case}: {range:?} {bucket} {agg} {stream:?} key={by_key} \
                         released={}",
                        wm.released_upto
                    ),
                    &got,
                    &brute_force(&q, visible.iter().copied()),
                );
            }
        }
    }
}

fn event_at(tenant: &str, stream: &str, ts: i64, n: usize) -> Event {
    Event {
        tenant: tenant.into(),
        stream: stream.into(),
        key: format!("k{n}"),
        id: format!("{tenant}-{stream}-{ts}-{n}"),
        ts,
        value: Some(n as f64),
        attrs: BTreeMap::new(),
        payload: None,
    }
}

fn key(tenant: &str, stream: &str, day: i64) -> PartitionKey {
    PartitionKey {
        tenant: tenant.into(),
        stream: stream.into(),
        day,
    }
}

/// `export_candidates` lists the partitions holding rows whose whole day ends at or before
/// the cutoff, oldest day first (across tenants), at most `limit`; an exported partition
/// leaves the list, comes back when late rows land in it, stays while rows above the export
/// marks remain, and leaves it when retention drops its rows.
pub async fn export_candidates_only_closed_days(h: &dyn HandoffHarness) {
    let warm = h.open().await;
    let w = warm.as_ref();
    let d = d0();
    let start = |day: i64| day * DAY;
    let mut events = vec![
        event_at("acme", "click", start(d - 3) + 5 * HOUR, 0),
        event_at("acme", "view", start(d - 2), 1),
        event_at("acme", "click", start(d - 1) + 12 * HOUR, 2),
        // The last microsecond of its day.
        event_at("acme", "view", start(d) - 1, 3),
        event_at("beta", "click", start(d - 1), 4),
        // Days not over at the cutoffs below.
        event_at("acme", "click", start(d) + 3 * HOUR, 5),
        event_at("beta", "click", start(d + 1) + 1, 6),
    ];
    // Many days of one tenant that sorts first, all younger than another tenant's two.
    for i in 0..10 {
        events.push(event_at(
            "aaa",
            "s",
            start(d - 12 + i) + HOUR,
            10 + i as usize,
        ));
    }
    events.push(event_at("zzz", "s", start(d - 30) + HOUR, 30));
    events.push(event_at("zzz", "s", start(d - 29) + HOUR, 31));
    let mut all: Vec<NodeRow> = Vec::new();
    write_rows(w, NODE, &stored(&events, 1), &mut all).await;

    let mut want: Vec<PartitionKey> = all
        .iter()
        .map(|(_, r)| partition_of(r))
        .filter(|p| p.day < d)
        .collect();
    want.sort_by(|a, b| (a.day, &a.tenant, &a.stream).cmp(&(b.day, &b.tenant, &b.stream)));
    want.dedup();
    let candidates = move |before: i64, limit: usize| async move {
        w.export_candidates(before, limit)
            .await
            .expect("export_candidates")
    };
    assert_eq!(
        candidates(start(d) + 5 * HOUR, 100).await,
        want,
        "candidates: day not over"
    );
    assert_eq!(
        candidates(start(d), 100).await,
        want,
        "candidates: cutoff on a day boundary"
    );
    assert_eq!(
        candidates(start(d) + 5 * HOUR, 2).await,
        want[..2].to_vec(),
        "candidates: the oldest first, across tenants"
    );
    assert_eq!(want[0], key("zzz", "s", d - 30));
    let mut later = want.clone();
    later.push(key("acme", "click", d));
    assert_eq!(
        candidates(start(d + 1), 100).await,
        later,
        "candidates: the next day once it is over"
    );

    // Exported whole: gone; a late row brings it back.
    let p = key("acme", "click", d - 3);
    let marks = warm.flush_marks().await.expect("flush_marks");
    warm.commit_cold(&export_commit(pointer(&p, 1, 0), None, &marks))
        .await
        .expect("commit_cold");
    want.retain(|c| *c != p);
    assert_eq!(
        candidates(start(d), 100).await,
        want,
        "candidates: exported"
    );
    let n = all.len() as u64;
    write_rows(
        w,
        NODE,
        &stored(
            &[event_at("acme", "click", start(d - 3) + 7 * HOUR, 40)],
            n + 1,
        ),
        &mut all,
    )
    .await;
    let mut with_late = want.clone();
    with_late.push(p.clone());
    with_late.sort_by(|a, b| (a.day, &a.tenant, &a.stream).cmp(&(b.day, &b.tenant, &b.stream)));
    assert_eq!(
        candidates(start(d), 100).await,
        with_late,
        "candidates: late row"
    );

    // Exported while a late row arrived: still due for that row.
    let q = key("acme", "view", d - 2);
    let marks = warm.flush_marks().await.expect("flush_marks");
    write_rows(
        w,
        NODE,
        &stored(&[event_at("acme", "view", start(d - 2) + HOUR, 41)], n + 2),
        &mut all,
    )
    .await;
    assert_eq!(
        warm.commit_cold(&export_commit(pointer(&q, 1, 0), None, &marks))
            .await
            .expect("commit_cold"),
        1
    );
    assert_eq!(
        candidates(start(d), 100).await,
        with_late,
        "candidates: rows above the marks remain"
    );

    // Retention: days wholly below the cutoff leave the list, and a day it cuts through stays
    // only for the partitions that keep rows. Cold pointers stay.
    warm.drop_before(start(d - 1) + HOUR)
        .await
        .expect("drop_before");
    assert_eq!(
        candidates(start(d), 100).await,
        vec![key("acme", "click", d - 1), key("acme", "view", d - 1)],
        "candidates: after retention"
    );
    assert_eq!(
        sorted_pointers(
            warm.cold_partitions(None, None)
                .await
                .expect("cold_partitions")
        ),
        sorted_pointers(vec![pointer(&p, 1, 0), pointer(&q, 1, 0)]),
        "candidates: retention keeps cold pointers"
    );
}

/// `cold_partitions` answers the live pointers of one tenant (or all) whose day overlaps a
/// range (end exclusive), with their versions and checksums as committed; pointers survive
/// retention and a reopen.
pub async fn cold_partitions_filter_by_tenant_and_range(h: &dyn HandoffHarness) {
    let warm = h.open().await;
    let d = d0();
    let parts = [
        key("acme", "click", d - 1),
        key("acme", "view", d - 1),
        key("acme", "click", d),
        key("beta", "click", d - 1),
        key("acme", "click", d + 2),
    ];
    for (i, p) in parts.iter().enumerate() {
        let live = pointer(p, 1, i as u64);
        warm.commit_cold(&ColdCommit {
            live,
            expected_version: None,
            exported: None,
        })
        .await
        .expect("commit_cold");
    }
    // A newer version of one of them.
    let v2 = pointer(&parts[2], 2, 77);
    warm.commit_cold(&ColdCommit {
        live: v2.clone(),
        expected_version: Some(1),
        exported: None,
    })
    .await
    .expect("commit_cold");
    let live: Vec<LivePartition> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i == 2 {
                v2.clone()
            } else {
                pointer(p, 1, i as u64)
            }
        })
        .collect();
    let pick = |idx: &[usize]| sorted_pointers(idx.iter().map(|i| live[*i].clone()).collect());
    let range = |from: i64, to: i64| Some(TimeRange { from, to });
    let start = |day: i64| day * DAY;

    let check = |tenant: Option<&'static str>, r: Option<TimeRange>, want: Vec<LivePartition>| {
        let warm = Arc::clone(&warm);
        async move {
            let got = warm
                .cold_partitions(tenant, r)
                .await
                .expect("cold_partitions");
            let again = warm
                .cold_partitions(tenant, r)
                .await
                .expect("cold_partitions");
            assert_eq!(got, again, "cold_partitions: repeated reads are equal");
            assert_eq!(
                sorted_pointers(got),
                want,
                "cold_partitions: tenant {tenant:?} range {r:?}"
            );
        }
    };
    check(None, None, pick(&[0, 1, 2, 3, 4])).await;
    check(Some("acme"), None, pick(&[0, 1, 2, 4])).await;
    check(Some("beta"), None, pick(&[3])).await;
    check(Some("gamma"), None, Vec::new()).await;
    check(
        Some("acme"),
        range(start(d - 1) + HOUR, start(d - 1) + 2 * HOUR),
        pick(&[0, 1]),
    )
    .await;
    check(
        None,
        range(start(d - 1) + HOUR, start(d - 1) + 2 * HOUR),
        pick(&[0, 1, 3]),
    )
    .await;
    check(
        Some("acme"),
        range(start(d - 1) + 5, start(d)),
        pick(&[0, 1]),
    )
    .await;
    check(
        Some("acme"),
        range(start(d + 1) - 1, start(d + 2)),
        pick(&[2]),
    )
    .await;
    check(Some("acme"), range(start(d), start(d + 3)), pick(&[2, 4])).await;
    check(Some("beta"), range(start(d), start(d + 3)), Vec::new()).await;
    check(Some("acme"), range(start(d + 5), start(d + 6)), Vec::new()).await;

    // Retention never removes a pointer: the archive keeps the partition.
    warm.drop_before(start(d + 3)).await.expect("drop_before");
    check(None, None, pick(&[0, 1, 2, 3, 4])).await;
    drop(warm);
    let warm = h.open().await;
    let got = warm
        .cold_partitions(None, None)
        .await
        .expect("cold_partitions");
    assert_eq!(
        sorted_pointers(got),
        pick(&[0, 1, 2, 3, 4]),
        "cold_partitions: after reopen"
    );
}
