//! The warm tier conformance suite. Run it from a backend's tests:
//!
//! ```text
//! strata_core::conformance::warm::run_all(|| MyHarness::new()).await;
//! ```
//!
//! Every scenario compares what the backend answers with a brute-force pass over the same
//! events, so a backend that takes shortcuts (rollups, pushed-down filters, partition
//! pruning) is held to the exact answer.

use std::{collections::BTreeMap, sync::Arc};

use async_trait::async_trait;
use strata_types::{AggregateQuery, Event, PartialAggregate, QueryParams, StoredEvent, TimeRange};

use super::{Lcg, assert_same};
use crate::{
    hot::FlushBatch,
    warm::{HotWatermark, ScanCursor, ScanRequest, WarmTier, WriteOutcome},
};

/// Opens a backend over persistent state that outlives each instance.
#[async_trait]
pub trait WarmHarness: Send + Sync {
    /// Opens the backend. Opening again after the previous instance was dropped must find
    /// everything that instance committed.
    async fn open(&self) -> Arc<dyn WarmTier>;
}

/// 2026-11-20T00:00:00Z in epoch micros: the suite's time origin.
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
