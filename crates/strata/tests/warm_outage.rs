//! PostgreSQL going away under a running node, and being away when it starts. Each test runs
//! a private cluster it can stop (`pg_ctl stop -m immediate`, like a crash) and start again;
//! the assertions are the invariants: every acknowledged event is stored exactly once, the
//! backlog drains once the server is back, ingest does not depend on warm where the
//! configuration promises that, and a read that needs warm or the archive is refused with
//! `503 warm_unavailable` while warm is away, never answered short.

#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    HttpAnswer, PostOutcome, TestEvent, TestServer, aggregate, assert_same, client,
    client_with_timeout,
    cold::{DAY, archive_partitions, day_start, fast_tiering},
    count, count_params, get_event, lookup, metric, now_micros, post_all,
    postgres::{self, PgCluster},
    rfc3339_micros, send, try_post_events, wait_until,
    warm::{Backend, FLUSH_ERRORS, set_flag, wait_flushed},
};

const TENANT: &str = "outage";

/// A hot retention longer than `--max-future-skew` plus a minute: the duplicate check of a
/// live write never needs warm, so ingest does not depend on it.
const WRITES_WITHOUT_WARM: [(&str, &str); 3] = [
    ("--hot-retention", "65s"),
    ("--max-future-skew", "1s"),
    ("--flush-interval", "100ms"),
];

/// A private cluster (see [`PgCluster`]) with a fresh database, and the `serve` flags of a
/// node whose warm tier it is (`auto` layout, a 1 s connect timeout) with `flags` on top.
async fn private_warm(flags: &[(&str, &str)]) -> (PgCluster, Backend, Vec<String>) {
    let (cluster, db) = PgCluster::running_with_database().await;
    let backend = Backend::Postgres { db, layout: "auto" };
    let mut args = backend.args();
    set_flag(&mut args, "--warm-connect-timeout", "1s");
    for (flag, value) in flags {
        set_flag(&mut args, flag, value);
    }
    (cluster, backend, args)
}

/// Clients that post batches of live events, each batch retried (same ids) until it is
/// acknowledged, as a well-behaved client would; 503 waits for `Retry-After`.
struct Clients {
    acked: Arc<Mutex<Vec<TestEvent>>>,
    /// 503 answers.
    busy: Arc<AtomicU64>,
    /// Other failures (connection errors, other statuses).
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Clients {
    fn start(clients: usize, url: String) -> Self {
        let mut this = Self {
            acked: Arc::default(),
            busy: Arc::default(),
            failed: Arc::default(),
            stop: Arc::default(),
            tasks: Vec::new(),
        };
        this.tasks = (0..clients)
            .map(|c| {
                let (url, acked, busy, failed, stop) = (
                    url.clone(),
                    this.acked.clone(),
                    this.busy.clone(),
                    this.failed.clone(),
                    this.stop.clone(),
                );
                tokio::spawn(async move {
                    let http = client_with_timeout(Duration::from_secs(20));
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let batch = TestEvent::batch(TENANT, &format!("o{c}"), &mut n, 25);
                        let started = Instant::now();
                        loop {
                            assert!(
                                started.elapsed() < Duration::from_secs(90),
                                "a batch was not acknowledged within 90 s"
                            );
                            match try_post_events(&http, &url, &batch).await {
                                PostOutcome::Acked(answer) => {
                                    assert_eq!(answer.accepted, batch.len() as u64);
                                    acked.lock().unwrap().extend(batch);
                                    break;
                                }
                                PostOutcome::Busy(wait) => {
                                    busy.fetch_add(1, Ordering::SeqCst);
                                    tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
                                }
                                PostOutcome::Failed(e) => {
                                    failed.fetch_add(1, Ordering::SeqCst);
                                    eprintln!("client {c}: {e}");
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        this
    }

    /// Events acknowledged so far.
    fn acked_len(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// 503 answers so far.
    fn busy(&self) -> u64 {
        self.busy.load(Ordering::SeqCst)
    }

    /// Other failures so far.
    fn failed(&self) -> u64 {
        self.failed.load(Ordering::SeqCst)
    }

    /// Stops the clients (each finishes its batch) and returns what was acknowledged.
    async fn finish(self) -> Vec<TestEvent> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        std::mem::take(&mut *self.acked.lock().unwrap())
    }
}

/// Restarts `server` with a short hot retention, so that it flushes everything it holds,
/// and checks that every one of `acked` then is in warm exactly once.
async fn drain(server: TestServer, backend: &Backend, mut args: Vec<String>, acked: &[TestEvent]) {
    set_flag(&mut args, "--hot-retention", "1s");
    let server = server.restart_with(args).await;
    wait_flushed(&server, backend, acked.len() as u64).await;
    assert_exactly_once(&server, backend, acked).await;
}

/// Waits until `server` logs that its warm tier connected (within a minute), and checks that
/// it reports so on `/metrics` too.
async fn wait_connected(server: &TestServer) {
    let waiting = Instant::now();
    while !server.logs().contains("warm tier connected") {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "never connected: {}",
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&client(), &server.http_url(), "strata_warm_connected").await,
        1.0
    );
}

/// Checks that `answer` is how a read that needs warm (or the archive, whose catalogue warm
/// holds) is refused while warm is not connected: 503, the error code `warm_unavailable` and
/// a `Retry-After` in seconds; never a 200 that silently leaves out what warm and cold hold.
fn assert_warm_unavailable(what: &str, answer: &HttpAnswer) {
    assert_eq!(
        answer.status,
        503,
        "{what} while warm is not connected must be refused, not answered without warm and \
         the archive: {}",
        answer.failure()
    );
    assert_eq!(
        answer.error_code().as_deref(),
        Some("warm_unavailable"),
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.retry_after_secs().is_some(),
        "{what}: a 503 must say when to retry, got Retry-After {:?}",
        answer.retry_after
    );
}

/// Checks that every acknowledged event is in warm exactly once and counted once.
async fn assert_exactly_once(server: &TestServer, backend: &Backend, acked: &[TestEvent]) {
    let Backend::Postgres { db, .. } = backend else {
        unreachable!("PostgreSQL only")
    };
    let ids: HashSet<(String, String)> = acked
        .iter()
        .map(|e| (e.tenant.clone(), e.id.clone()))
        .collect();
    assert_eq!(
        ids.len(),
        acked.len(),
        "the clients never resend an acked id"
    );
    let n = ids.len() as u64;
    assert_eq!(
        backend.sql_counts().await,
        Some((n, n)),
        "warm rows (all, distinct) must equal the acknowledged events"
    );
    let in_warm = postgres::event_ids(db).await;
    let missing: Vec<_> = ids.difference(&in_warm).take(10).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in warm: {missing:?}"
    );
    let from = rfc3339_micros(now_micros() - strata_types::time::HOUR);
    let to = rfc3339_micros(now_micros() + strata_types::time::HOUR);
    assert_eq!(
        count(&client(), &server.http_url(), TENANT, &from, &to)
            .await
            .unwrap(),
        n
    );
}

/// The flusher is busy moving a continuous stream to warm when PostgreSQL crashes; it comes
/// back a few seconds later. Requests that need warm meanwhile (with a hot retention this
/// short, every write's duplicate check does) are refused with 503 + `Retry-After` and
/// retried; nothing acknowledged is lost or doubled and the backlog drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_loses_nothing_and_the_backlog_drains() {
    let (cluster, backend, args) = private_warm(&[
        ("--hot-retention", "500ms"),
        ("--flush-interval", "100ms"),
        ("--flush-max-batch-events", "200"),
    ])
    .await;
    let server = TestServer::spawn_async(&args).await;
    let clients = Clients::start(2, server.http_url());
    let http = client();

    // Flushing is under way before the crash.
    let waiting = Instant::now();
    while metric(&http, &server.http_url(), "strata_flush_batches_total").await < 3.0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "nothing flushed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cluster = cluster.blocking(PgCluster::stop_immediate).await;
    eprintln!("postgres stopped");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let errors_during = metric(&http, &server.http_url(), FLUSH_ERRORS).await;
    let cluster = cluster.blocking(PgCluster::start).await;
    eprintln!("postgres started");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (busy, failed) = (clients.busy(), clients.failed());
    let acked = clients.finish().await;
    eprintln!(
        "{} events acknowledged; {busy} answers were 503, {failed} requests failed otherwise",
        acked.len(),
    );
    // Someone must have run into the outage: the flusher, or writes whose duplicate check
    // needs warm (with a hot retention this short, all of them).
    assert!(
        errors_during > 0.0 || busy > 0,
        "nothing noticed that PostgreSQL was down"
    );

    // The backlog drains without a restart, within a bounded wait.
    wait_flushed(&server, &backend, acked.len() as u64).await;
    assert_exactly_once(&server, &backend, &acked).await;
    if errors_during > 0.0 {
        assert!(
            server
                .logs()
                .contains("flushing to the warm tier works again"),
            "the flusher must log its recovery"
        );
    }
    drop(server);
    drop(cluster);
}

/// With a hot retention longer than `--max-future-skew` plus a minute, live writes never
/// need warm: while PostgreSQL is down every request is acknowledged from the hot tier
/// alone, and once it is back everything reaches warm exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_keeps_going_into_hot_while_postgres_is_down() {
    let (cluster, backend, args) = private_warm(&WRITES_WITHOUT_WARM).await;
    let server = TestServer::spawn_async(&args).await;
    let clients = Clients::start(2, server.http_url());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cluster = cluster.blocking(PgCluster::stop_immediate).await;
    let acked_before = clients.acked_len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked_during = clients.acked_len() - acked_before;
    let cluster = cluster.blocking(PgCluster::start).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (busy, failed) = (clients.busy(), clients.failed());
    let acked = clients.finish().await;
    assert!(
        acked_during > 0,
        "nothing was acknowledged while PostgreSQL was down"
    );
    assert_eq!(
        (busy, failed),
        (0, 0),
        "no write may be refused while warm is down"
    );

    drain(server, &backend, args, &acked).await;
    drop(cluster);
}

/// PostgreSQL is down when the node starts: the node starts anyway (ready, taking writes
/// into hot), says so without leaking the password, answers 503 for what needs warm, and
/// connects, migrates and drains once the server is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_while_postgres_is_down_and_connects_when_it_returns() {
    let (cluster, backend, mut args) = private_warm(&WRITES_WITHOUT_WARM).await;
    let cluster = cluster.blocking(PgCluster::stop_immediate).await;
    let Backend::Postgres { db, .. } = &backend else {
        unreachable!("PostgreSQL only")
    };
    // Trust authentication ignores the password; it is there to prove it is never logged.
    let db_with_password = db.replacen("postgres@", "postgres:not-for-logs@", 1);
    assert_ne!(&db_with_password, db);
    set_flag(&mut args, "--warm", &db_with_password);
    let server = TestServer::spawn_async(&args).await;
    let http = client();
    let base = server.http_url();
    assert!(
        server.logs().contains("the warm tier is unreachable"),
        "{}",
        server.logs()
    );
    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "ready although warm is not connected");

    let events: Vec<TestEvent> = (0..300)
        .map(|n| TestEvent::new(TENANT, format!("s-{n}"), n))
        .collect();
    for chunk in events.chunks(100) {
        match try_post_events(&http, &base, chunk).await {
            PostOutcome::Acked(a) => assert_eq!(a.accepted, chunk.len() as u64),
            other => panic!("writes must go to hot while warm is down: {other:?}"),
        }
    }
    let from = rfc3339_micros(now_micros() - strata_types::time::HOUR);
    let to = rfc3339_micros(now_micros() + strata_types::time::HOUR);
    let params = count_params(TENANT, &from, &to);
    let (status, body) = aggregate(&http, &base, &params).await.unwrap_err();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"warm_unavailable\""), "{body}");

    let cluster = cluster.blocking(PgCluster::start).await;
    wait_connected(&server).await;
    let answer = aggregate(&http, &base, &params).await.unwrap();
    let total: f64 = answer.buckets.iter().filter_map(|b| b.value).sum();
    assert_eq!(total, events.len() as f64);
    // The connector applied the migrations: the table exists, still empty.
    assert_eq!(backend.sql_counts().await, Some((0, 0)));
    let logs = server.logs();
    assert!(!logs.contains("not-for-logs"), "the password was logged");
    assert!(logs.contains("postgres:***@"), "the URL is logged redacted");

    drain(server, &backend, args, &events).await;
    drop(cluster);
}

/// Events of [`TENANT`] on the UTC day starting at `day`, spread over it, with ids
/// `{prefix}-{n}`.
fn events_on_day(prefix: &str, day: i64, n: u64) -> Vec<TestEvent> {
    (0..n)
        .map(|i| {
            let ts = day + (i as i64 * 7_919_000_000 + 1_000_000) % (DAY - 1_000_000);
            TestEvent::at(TENANT, format!("{prefix}-{i}"), i, ts)
        })
        .collect()
}

/// Waits (bounded) until the archive lists `rows` rows of [`TENANT`] on the day starting at
/// `day`, which all of that day's rows are.
async fn wait_archived(base: &str, day: i64, rows: u64, timeout: Duration) {
    let date = rfc3339_micros(day)[..10].to_owned();
    let http = client();
    wait_until(
        timeout,
        &format!("{rows} rows of {date} in the archive"),
        || {
            let (http, date) = (http.clone(), date.clone());
            async move {
                let partitions = archive_partitions(&http, base, TENANT).await.ok()?;
                let archived: u64 = partitions.iter().filter(|p| p.1 == date).map(|p| p.2).sum();
                assert!(
                    archived <= rows,
                    "{archived} rows of {date} archived, only {rows} sent: {partitions:?}"
                );
                (archived == rows).then_some(())
            }
        },
    )
    .await;
}

/// A node that starts while PostgreSQL is down must not answer reads of history it cannot
/// see: before the restart, an archived day is in the cold tier only (its warm rows are
/// gone), and the node restarted without PostgreSQL
///
/// * refuses the aggregate over that day, the lookup of an archived event by id and the
///   replay of that day with `503`, the error code `warm_unavailable` and a `Retry-After`
///   (never a `200` counting nothing: warm holds the archive's catalogue), while `/readyz`
///   stays `200`;
///
/// then, once PostgreSQL is back and the node reports `strata_warm_connected` = 1, it
/// counts exactly the events sent, finds the archived event and replays the whole day, and
/// its exporter (which must have survived the deferred start) archives a further past day
/// within a bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_without_postgres_refuses_archived_reads_then_answers_exactly_and_exports() {
    const ARCHIVED: u64 = 3_000;
    const LATER: u64 = 400;
    let cold = tempfile::tempdir().unwrap();
    let cold_url = format!("file://{}", cold.path().display());
    let (cluster, backend, mut args) = private_warm(&[]).await;
    let Backend::Postgres { db, .. } = &backend else {
        unreachable!("PostgreSQL only")
    };
    args.extend(fast_tiering("300ms").map(str::to_owned));
    // Days-old events are late: they skip hot and go straight to warm, whence the exporter
    // archives their (closed) day.
    args.extend(["--max-lateness", "1h", "--cold", &cold_url].map(str::to_owned));
    let server = TestServer::spawn_async(&args).await;
    let base = server.http_url();
    let http = client();

    // An archived day: in cold only, its warm rows dropped by the export.
    let day = day_start(2);
    let (from, to) = (rfc3339_micros(day), rfc3339_micros(day + DAY));
    let archived = events_on_day("archived", day, ARCHIVED);
    post_all(&base, &archived, 500).await;
    wait_archived(&base, day, ARCHIVED, Duration::from_secs(120)).await;
    wait_until(
        Duration::from_secs(60),
        "the warm rows to be gone",
        || async move { (postgres::event_counts(db).await.unwrap() == (0, 0)).then_some(()) },
    )
    .await;
    assert_eq!(count(&http, &base, TENANT, &from, &to).await, Ok(ARCHIVED));

    // The node stops, PostgreSQL goes away, and the node starts again without it.
    let server = server
        .blocking(|s| s.stop_gracefully(Duration::from_secs(60)))
        .await;
    let cluster = cluster.blocking(PgCluster::stop_immediate).await;
    let server = server.blocking(TestServer::start).await;
    let base = server.http_url();
    assert_eq!(metric(&http, &base, "strata_warm_connected").await, 0.0);

    let answer = send(
        http.get(format!("{base}/v1/query/aggregate"))
            .query(&count_params(TENANT, &from, &to)),
    )
    .await
    .unwrap();
    assert_warm_unavailable("the aggregate over an archived day", &answer);
    let probe = &archived[ARCHIVED as usize / 2];
    let answer = lookup(&http, &base, TENANT, &probe.id).await.unwrap();
    assert_warm_unavailable("the lookup of an archived event", &answer);
    let replay = || {
        send(http.get(format!("{base}/v1/replay")).query(&[
            ("tenant", TENANT),
            ("from", from.as_str()),
            ("to", to.as_str()),
        ]))
    };
    let answer = replay().await.unwrap();
    assert_warm_unavailable("the replay of an archived day", &answer);
    let ready = send(http.get(format!("{base}/readyz"))).await.unwrap();
    assert_eq!(ready.status, 200, "ready although warm is not connected");

    // PostgreSQL is back: the node connects and answers exactly (a retryable refusal may
    // linger a moment; a short answer never may).
    let cluster = cluster.blocking(PgCluster::start).await;
    wait_connected(&server).await;
    let counted = wait_until(
        Duration::from_secs(30),
        "an answer to the aggregate",
        || {
            let (http, base, from, to) = (http.clone(), base.clone(), from.clone(), to.clone());
            async move {
                match aggregate(&http, &base, &count_params(TENANT, &from, &to)).await {
                    Ok(answer) => Some(answer.buckets.iter().filter_map(|b| b.value).sum::<f64>()),
                    Err((503, _)) => None,
                    Err(other) => panic!("the aggregate after warm connected: {other:?}"),
                }
            }
        },
    )
    .await;
    assert_eq!(
        counted, ARCHIVED as f64,
        "every archived event, exactly once"
    );
    let got = get_event(&http, &base, TENANT, &probe.id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the archived event {} is not found", probe.id));
    assert_same(probe, &got);
    let answer = replay().await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.failure());
    let lines: Vec<&str> = answer.body.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        !lines.iter().any(|l| l.starts_with("{\"error\"")),
        "the replay broke off: {:?}",
        lines.last()
    );
    let replayed: HashSet<String> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}"));
            v["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let sent: HashSet<String> = archived.iter().map(|e| e.id.clone()).collect();
    assert_eq!(lines.len(), archived.len(), "one line per archived event");
    assert!(
        replayed == sent,
        "the replay of the archived day holds exactly its events"
    );

    // The exporter runs too: late events for another past day go to warm and are archived.
    let later_day = day_start(3);
    let later = events_on_day("later", later_day, LATER);
    post_all(&base, &later, 200).await;
    wait_archived(&base, later_day, LATER, Duration::from_secs(120)).await;
    assert!(
        metric(&http, &base, "strata_export_partitions_total").await > 0.0,
        "this node exported the later day"
    );
    drop(server);
    drop(cluster);
    drop(cold);
}
