//! Scenarios of events moving from hot to warm, run against every warm backend: the embedded
//! store and PostgreSQL (each layout). They talk to the real binary over REST and, for
//! PostgreSQL, also look at the warm table directly.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::{
    TestEvent, TestServer, aggregate, assert_all_readable, client, count,
    kill_load::{KillLoad, KillLoadConfig, Ledger},
    metric, now_micros, parse_micros, post_all, postgres, random_sample, rfc3339_micros,
};

/// Unreleased events in the hot tier (a gauge).
pub(crate) const HOT_EVENTS: &str = "strata_hot_events";
/// Failed flush attempts.
pub(crate) const FLUSH_ERRORS: &str = "strata_flush_errors_total";
/// Longest a test waits for the flusher to move what is due.
pub(crate) const FLUSH_WAIT: Duration = Duration::from_secs(90);

/// The warm tier a scenario runs against.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// `--warm embedded`.
    Embedded,
    /// `--warm <db>` with `--warm-layout <layout>`; `db` is a fresh database.
    Postgres { db: String, layout: &'static str },
}

impl Backend {
    /// A fresh database on the `scripts/test` server, in `layout`.
    pub(crate) async fn postgres(layout: &'static str) -> Self {
        Self::Postgres {
            db: postgres::fresh_database(&postgres::server_url()).await,
            layout,
        }
    }

    /// The `serve` flags selecting this backend.
    pub(crate) fn args(&self) -> Vec<String> {
        match self {
            Self::Embedded => vec!["--warm".into(), "embedded".into()],
            Self::Postgres { db, layout } => vec![
                "--warm".into(),
                db.clone(),
                "--warm-layout".into(),
                (*layout).into(),
                "--warm-connect-timeout".into(),
                "2s".into(),
            ],
        }
    }

    /// [`Backend::args`] followed by `extra`.
    pub(crate) fn args_with(&self, extra: &[&str]) -> Vec<String> {
        let mut args = self.args();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The warm mode `serve` must report.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Postgres { layout, .. } => layout,
        }
    }

    /// `count(*)` and `count(DISTINCT (tenant, id))` of the warm table, for PostgreSQL.
    pub(crate) async fn sql_counts(&self) -> Option<(u64, u64)> {
        match self {
            Self::Embedded => None,
            Self::Postgres { db, .. } => Some(
                postgres::event_counts(db)
                    .await
                    .unwrap_or_else(|e| panic!("count warm rows: {e}")),
            ),
        }
    }
}

/// Sets `flag` to `value` in `args`: replaces its value when present, appends it otherwise
/// (clap refuses a flag given twice).
pub(crate) fn set_flag(args: &mut Vec<String>, flag: &str, value: &str) {
    match args.iter().position(|a| a == flag) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value.to_owned(),
        _ => args.extend([flag.to_owned(), value.to_owned()]),
    }
}

/// Waits until the hot tier has released everything and, for PostgreSQL, the warm table
/// holds `expected` rows; panics after [`FLUSH_WAIT`].
pub(crate) async fn wait_flushed(server: &TestServer, backend: &Backend, expected: u64) {
    let http = client();
    let base = server.http_url();
    let started = Instant::now();
    loop {
        let hot = metric(&http, &base, HOT_EVENTS).await;
        let sql = backend.sql_counts().await;
        if hot == 0.0 && sql.is_none_or(|(all, _)| all >= expected) {
            return;
        }
        assert!(
            started.elapsed() < FLUSH_WAIT,
            "not flushed within {FLUSH_WAIT:?}: {hot} events still in hot, warm rows {sql:?}, \
             expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per-tenant counts of distinct events.
fn per_tenant<'a>(events: impl IntoIterator<Item = &'a TestEvent>) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    let mut seen = HashSet::new();
    for e in events {
        if seen.insert((e.tenant.clone(), e.id.clone())) {
            *out.entry(e.tenant.clone()).or_default() += 1;
        }
    }
    out
}

/// The aggregate count over `[from, to)` per tenant equals the number of distinct events.
pub(crate) async fn assert_api_counts(
    server: &TestServer,
    events: &[TestEvent],
    tenants: &[&str],
    from: &str,
    to: &str,
) {
    let http = client();
    let base = server.http_url();
    let want = per_tenant(events);
    for tenant in tenants {
        let got = count(&http, &base, tenant, from, to).await.unwrap();
        assert_eq!(
            got,
            want.get(*tenant).copied().unwrap_or(0),
            "tenant {tenant}: the aggregate must count each event exactly once"
        );
    }
}

/// A (bucket start, group) of an aggregate answer.
type Cell = (i64, Option<String>);
/// Count, sum, min and max of one cell.
type Running = (u64, f64, f64, f64);

/// Brute force over the raw events: `(bucket start, group) → value` for one tenant.
fn expected_buckets(
    events: &[TestEvent],
    tenant: &str,
    from: i64,
    to: i64,
    bucket: i64,
    agg: &str,
    group_by: Option<&str>,
) -> BTreeMap<Cell, f64> {
    let mut cells: BTreeMap<Cell, Running> = BTreeMap::new();
    for e in events.iter().filter(|e| e.tenant == tenant) {
        let ts = parse_micros(&e.ts);
        if ts < from || ts >= to {
            continue;
        }
        let start = ts - ts.rem_euclid(bucket);
        let group = match group_by {
            None => None,
            Some("key") => Some(e.key.clone()),
            Some(g) => {
                let name = g.strip_prefix("attr:").expect("group_by");
                e.attrs.get(name).cloned()
            }
        };
        let cell =
            cells
                .entry((start, group))
                .or_insert((0, 0.0, f64::INFINITY, f64::NEG_INFINITY));
        cell.0 += 1;
        cell.1 += e.value;
        cell.2 = cell.2.min(e.value);
        cell.3 = cell.3.max(e.value);
    }
    cells
        .into_iter()
        .map(|(k, (n, sum, min, max))| {
            let v = match agg {
                "count" => n as f64,
                "sum" => sum,
                "min" => min,
                "max" => max,
                "avg" => sum / n as f64,
                other => panic!("agg {other}"),
            };
            (k, v)
        })
        .collect()
}

/// Every aggregation, ungrouped and grouped by key and by attribute, for every tenant,
/// equals the brute-force answer over `events` (which must hold no duplicates). Returns the
/// tiers the answers came from.
pub(crate) async fn assert_aggregates_match(
    server: &TestServer,
    events: &[TestEvent],
    tenants: &[&str],
    from: i64,
    to: i64,
) -> HashSet<String> {
    let http = client();
    let base = server.http_url();
    let (from_s, to_s) = (rfc3339_micros(from), rfc3339_micros(to));
    let bucket = 15 * 60 * 1_000_000;
    let mut tiers = HashSet::new();
    for tenant in tenants {
        for agg in ["count", "sum", "min", "max", "avg"] {
            for group_by in [None, Some("key"), Some("attr:region")] {
                let mut params = vec![
                    ("tenant", *tenant),
                    ("from", from_s.as_str()),
                    ("to", to_s.as_str()),
                    ("bucket", "15m"),
                    ("agg", agg),
                ];
                if let Some(g) = group_by {
                    params.push(("group_by", g));
                }
                let answer = aggregate(&http, &base, &params)
                    .await
                    .unwrap_or_else(|e| panic!("{agg} {group_by:?}: {e:?}"));
                tiers.extend(answer.tiers.iter().cloned());
                let got: BTreeMap<Cell, f64> = answer
                    .buckets
                    .iter()
                    .map(|b| {
                        let v = b.value.unwrap_or_else(|| panic!("null value in {b:?}"));
                        ((parse_micros(&b.start), b.group.clone()), v)
                    })
                    .collect();
                let want = expected_buckets(events, tenant, from, to, bucket, agg, group_by);
                assert_eq!(
                    got.keys().collect::<Vec<_>>(),
                    want.keys().collect::<Vec<_>>(),
                    "{tenant} {agg} {group_by:?}: buckets differ"
                );
                for (k, w) in &want {
                    let g = got[k];
                    // Sums of quarter values are exact in f64; an average may differ in
                    // the last bit depending on the order of additions.
                    assert!(
                        (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                        "{tenant} {agg} {group_by:?} {k:?}: got {g}, brute force {w}"
                    );
                }
            }
        }
    }
    tiers
}

const FLOW_TENANTS: [&str; 2] = ["flow-a", "flow-b"];

/// Events with event times spread over the two hours before now.
fn spread_events(prefix: &str, n: u64, rng: &mut StdRng) -> Vec<TestEvent> {
    let now = now_micros();
    (0..n)
        .map(|i| {
            let tenant = FLOW_TENANTS[rng.random_range(0..FLOW_TENANTS.len())];
            let ts = now - rng.random_range(60_000_000..2 * strata_types::time::HOUR);
            TestEvent::at(
                tenant,
                format!("{prefix}-{i}"),
                rng.random_range(0..10_000),
                ts,
            )
        })
        .collect()
}

/// Events ingested over REST reach warm after the flush interval, exactly once; a query over
/// a range that spans hot and warm gives the brute-force answer.
pub(crate) async fn flow(backend: Backend) {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let fast = backend.args_with(&["--hot-retention", "1s", "--flush-interval", "200ms"]);
    let slow = backend.args_with(&["--hot-retention", "1h", "--flush-interval", "200ms"]);
    let from = now_micros() - 3 * strata_types::time::HOUR;
    let to = now_micros() + 10 * 60 * 1_000_000;
    let (from_s, to_s) = (rfc3339_micros(from), rfc3339_micros(to));

    // 1. Everything sent goes to warm once its hot retention passes; a resent chunk
    // (a client retrying) changes nothing.
    let server = TestServer::spawn_async(&fast).await;
    assert!(
        server
            .logs()
            .contains(&format!("\"warm_mode\":\"{}\"", backend.mode())),
        "serve must log the warm mode {}",
        backend.mode()
    );
    let first = spread_events("a", 1200, &mut rng);
    post_all(&server.http_url(), &first, 250).await;
    post_all(&server.http_url(), &first[..250], 250).await;
    wait_flushed(&server, &backend, first.len() as u64).await;
    if let Some(counts) = backend.sql_counts().await {
        let n = first.len() as u64;
        assert_eq!(
            counts,
            (n, n),
            "warm rows (all, distinct) after the first flush"
        );
    }
    assert_api_counts(&server, &first, &FLOW_TENANTS, &from_s, &to_s).await;
    assert_all_readable(&server.http_url(), &first.iter().collect::<Vec<_>>()).await;

    // 2. With a long hot retention the next events stay in hot: a query now spans both
    // tiers and must equal the brute force over everything sent.
    let server = server.restart_with(slow).await;
    let second = spread_events("b", 800, &mut rng);
    post_all(&server.http_url(), &second, 250).await;
    let http = client();
    // The gauge is published right after the commit's acknowledgement: poll briefly.
    let waiting = Instant::now();
    loop {
        let hot = metric(&http, &server.http_url(), HOT_EVENTS).await;
        if hot == second.len() as f64 {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the second batch must still be in hot: {hot} events there, {} sent",
            second.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(counts) = backend.sql_counts().await {
        let n = first.len() as u64;
        assert_eq!(counts, (n, n), "the second batch must not be in warm yet");
    }
    let all: Vec<TestEvent> = first.iter().chain(&second).cloned().collect();
    let tiers = assert_aggregates_match(&server, &all, &FLOW_TENANTS, from, to).await;
    assert!(
        tiers.contains("hot") && tiers.contains("warm"),
        "answers must come from both tiers: {tiers:?}"
    );
    assert_api_counts(&server, &all, &FLOW_TENANTS, &from_s, &to_s).await;

    // 3. Back to a short retention: everything ends up in warm, exactly once, and the
    // answers do not change.
    let server = server.restart_with(fast).await;
    wait_flushed(&server, &backend, all.len() as u64).await;
    if let Some(counts) = backend.sql_counts().await {
        let n = all.len() as u64;
        assert_eq!(counts, (n, n), "warm rows (all, distinct) at the end");
    }
    assert_eq!(metric(&http, &server.http_url(), HOT_EVENTS).await, 0.0);
    assert_aggregates_match(&server, &all, &FLOW_TENANTS, from, to).await;
    let sample: Vec<&TestEvent> = second.iter().step_by(4).collect();
    assert_all_readable(&server.http_url(), &sample).await;
}

const CRASH_TENANTS: [&str; 2] = ["kill-a", "kill-b"];
const CRASH_KILLS: usize = 4;
const CRASH_LOAD: KillLoadConfig = KillLoadConfig {
    clients: 2,
    tenants: &CRASH_TENANTS,
    id_prefix: "k",
    max_batch: 40,
    pace: Duration::from_millis(15),
};

/// `kill -9` at random moments while the flusher moves a continuous stream of events to warm;
/// after restarts and a resend of everything ever sent, every event is stored exactly once
/// and every acknowledged one is readable.
pub(crate) async fn kill_mid_flush(backend: Backend) {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let from = rfc3339_micros(now_micros() - strata_types::time::HOUR);
    // Tiny retention and batches: the flusher is almost always inside a warm transaction or
    // a hot release when the kill comes.
    let args = backend.args_with(&[
        "--hot-retention",
        "200ms",
        "--flush-interval",
        "50ms",
        "--flush-max-batch-events",
        "100",
    ]);
    let mut server = TestServer::spawn_async(&args).await;
    let load = KillLoad::start(&server, seed, CRASH_LOAD);

    let http = client();
    for _ in 0..CRASH_KILLS {
        // Once this generation acknowledged events and flushed some of them.
        let flushed = |base: String| {
            let http = http.clone();
            async move { metric(&http, &base, "strata_flush_batches_total").await > 0.0 }
        };
        server = load
            .kill_at_random(server, &mut rng, 100..1_200, flushed)
            .await;
    }
    // Let the last generation ingest and flush for a moment too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let Ledger { sent, acked } = load.finish().await;
    let acked: Vec<TestEvent> = acked.into_iter().map(|(_, e)| e).collect();
    eprintln!("sent {} events, {} acknowledged", sent.len(), acked.len());
    assert!(!acked.is_empty(), "nothing was acknowledged");

    // Every acknowledged event survived the kills (checked before any resend could mask a
    // loss): in warm, once the backlog has drained, and readable through the API.
    let acked_ids: HashSet<(String, String)> = acked
        .iter()
        .map(|e| (e.tenant.clone(), e.id.clone()))
        .collect();
    wait_flushed(&server, &backend, acked_ids.len() as u64).await;
    if let Backend::Postgres { db, .. } = &backend {
        let in_warm = postgres::event_ids(db).await;
        let missing: Vec<_> = acked_ids.difference(&in_warm).take(10).collect();
        assert!(
            missing.is_empty(),
            "acknowledged events missing from warm, e.g. {missing:?}"
        );
    }
    let mut check: Vec<&TestEvent> = acked.iter().collect();
    // A random sample keeps the run short; the SQL check above is complete.
    random_sample(&mut check, 6_000, &mut rng);
    assert_all_readable(&server.http_url(), &check).await;

    // A client that never heard back resends; each event must then be stored exactly once,
    // in warm as well once it is flushed again.
    post_all(&server.http_url(), &sent, 250).await;
    let distinct = per_tenant(&sent).values().sum::<u64>();
    wait_flushed(&server, &backend, distinct).await;
    if let Some(counts) = backend.sql_counts().await {
        assert_eq!(
            counts,
            (distinct, distinct),
            "warm rows (all, distinct) must equal the distinct events sent"
        );
    }
    let to = rfc3339_micros(now_micros() + strata_types::time::HOUR);
    assert_api_counts(&server, &sent, &CRASH_TENANTS, &from, &to).await;
}
