//! Invariants 1, 2 and 6 across the cold tier, against the real binary: events on past days
//! are ingested in rounds, so every partition is exported several times (amendments) and
//! compacted; the server is SIGKILLed at random moments while exports and compactions run
//! and restarted. After every restart and at the end every acknowledged event is counted
//! exactly once per day and readable by id, and at the end the archive holds each event
//! once and verifies clean.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use common::{
    PostOutcome, TestEvent, TestServer, assert_same, client,
    cold::{DAY, day_start, fast_tiering},
    count, get_event, metric, rfc3339_micros, stderr, stdout, strata_cli, try_post_events,
    wait_until,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use strata_cold::ColdStore;
use strata_core::{cold::ColdTier, handoff::WarmStore};

const TENANTS: [&str; 2] = ["cold-a", "cold-b"];
/// Days before today the events fall on.
const DAYS: [i64; 3] = [1, 2, 3];
const ROUNDS: usize = 6;
const EVENTS_PER_ROUND: usize = 240;

/// Where the warm and cold tiers live.
enum Backend {
    /// Embedded warm, `file://` cold inside the data directory.
    Embedded,
    /// PostgreSQL warm (a fresh database) and S3 cold (a fresh bucket).
    #[cfg_attr(not(feature = "server-tests"), allow(dead_code))]
    Servers {
        warm: String,
        bucket: String,
        endpoint: String,
    },
}

impl Backend {
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = fast_tiering("300ms").map(str::to_owned).to_vec();
        args.extend(
            [
                "--compaction-target-size",
                "1MiB",
                // Days-old events then travel hot -> warm -> cold like live ones, so the
                // kills land in flushes, exports and compactions rather than in late writes.
                "--max-lateness",
                "7d",
            ]
            .map(str::to_owned),
        );
        if let Self::Servers {
            warm,
            bucket,
            endpoint,
        } = self
        {
            args.extend([
                "--warm".into(),
                warm.clone(),
                "--cold".into(),
                format!("s3://{bucket}/archive"),
                "--s3-endpoint".into(),
                endpoint.clone(),
                "--s3-force-path-style".into(),
            ]);
        }
        args
    }

    /// The tiers as the server left them, opened directly (the server must be stopped for
    /// the embedded ones).
    async fn open(&self, data_dir: &std::path::Path) -> (Arc<dyn WarmStore>, ColdStore) {
        match self {
            Self::Embedded => {
                let warm = strata_warm::open_warm(
                    &strata_warm::WarmUrl::embedded(),
                    &strata_warm::WarmConfig::new(data_dir),
                )
                .await
                .unwrap();
                let url = format!("file://{}", data_dir.join("cold").display());
                let blobs = strata_cold::open_blob_store(&url, &Default::default())
                    .await
                    .unwrap();
                (warm, ColdStore::new(blobs, Default::default()))
            }
            Self::Servers {
                warm,
                bucket,
                endpoint,
            } => {
                let warm = strata_warm::open_warm(
                    &warm.parse().unwrap(),
                    &strata_warm::WarmConfig::new(data_dir),
                )
                .await
                .unwrap();
                let blobs = strata_cold::open_blob_store(
                    &format!("s3://{bucket}/archive"),
                    &strata_cold::S3Options {
                        endpoint: Some(endpoint.clone()),
                        force_path_style: true,
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
                (warm, ColdStore::new(blobs, Default::default()))
            }
        }
    }
}

/// One event on one of the past days, spread over tenants, streams and days by `n`.
fn event(round: usize, n: usize, rng: &mut StdRng) -> TestEvent {
    let tenant = TENANTS[n % TENANTS.len()];
    // `n % 6` picks the tenant and the stream (`TestEvent` takes the stream from `n % 3`),
    // `n / 6` the day, so every tenant has every stream on every day.
    let day = DAYS[(n / 6) % DAYS.len()];
    let ts = day_start(day) + rng.random_range(0..DAY - 1_000_000);
    TestEvent::at(tenant, format!("r{round}-e{n}"), n as u64, ts)
}

/// Posts `events` until acknowledged (the server is not killed while a post is in flight).
async fn post_all(base: &str, events: &[TestEvent]) {
    let http = client();
    for chunk in events.chunks(60) {
        loop {
            match try_post_events(&http, base, chunk).await {
                PostOutcome::Acked(answer) => {
                    assert_eq!(answer.accepted, chunk.len() as u64, "{:?}", answer.rejected);
                    break;
                }
                PostOutcome::Busy(wait) => tokio::time::sleep(wait).await,
                PostOutcome::Failed(e) => panic!("posting events failed: {e}"),
            }
        }
    }
}

/// Every acknowledged event counted exactly once, per tenant and day.
async fn assert_counts(base: &str, acked: &[TestEvent]) {
    let http = client();
    let mut want: BTreeMap<(&str, i64), u64> = BTreeMap::new();
    for e in acked {
        let day = common::parse_micros(&e.ts).div_euclid(DAY) * DAY;
        *want.entry((e.tenant.as_str(), day)).or_default() += 1;
    }
    for ((tenant, day), expected) in want {
        let (from, to) = (rfc3339_micros(day), rfc3339_micros(day + DAY));
        // A read racing a pointer move may be refused as retryable; anything else fails.
        let got = wait_until(Duration::from_secs(30), "a count", || {
            let (http, from, to) = (http.clone(), from.clone(), to.clone());
            async move { count(&http, base, tenant, &from, &to).await.ok() }
        })
        .await;
        assert_eq!(got, expected, "events of {tenant} on {from}");
    }
}

/// A random sample of `acked` reads back by id, field for field.
async fn assert_readable(base: &str, acked: &[TestEvent], rng: &mut StdRng) {
    let http = client();
    for _ in 0..60.min(acked.len()) {
        let sent = &acked[rng.random_range(0..acked.len())];
        let got = get_event(&http, base, &sent.tenant, &sent.id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged event {} is gone", sent.id));
        assert_same(sent, &got);
    }
}

async fn kill_during_export_and_compaction(backend: Backend) {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let args = backend.args();
    let mut server = TestServer::spawn_async(&args).await;
    let http = client();
    let mut acked: Vec<TestEvent> = Vec::new();
    let (mut exports_seen, mut compactions_seen) = (0.0, 0.0);

    for round in 0..ROUNDS {
        let events: Vec<TestEvent> = (0..EVENTS_PER_ROUND)
            .map(|n| event(round, n, &mut rng))
            .collect();
        post_all(&server.http_url(), &events).await;
        acked.extend(events);

        // Kill while the exporter works: once this generation exported a partition (or,
        // from the second round on, compacted one), after a random extra moment.
        // Odd rounds kill during a compaction, even ones during an export: both are always
        // exercised, whatever the random kill delays.
        let watch_compactions = round % 2 == 1;
        let base = server.http_url();
        let name = if watch_compactions {
            "strata_compactions_total"
        } else {
            "strata_export_partitions_total"
        };
        let seen = wait_until(Duration::from_secs(90), name, || {
            let (http, base) = (http.clone(), base.clone());
            async move {
                let v = metric(&http, &base, name).await;
                (v > 0.0).then_some(v)
            }
        })
        .await;
        if watch_compactions {
            compactions_seen += seen;
        } else {
            exports_seen += seen;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..400))).await;
        eprintln!("round {round}: SIGKILL while watching {name}");
        server = server.blocking(TestServer::restart).await;
        assert_counts(&server.http_url(), &acked).await;
        assert_readable(&server.http_url(), &acked, &mut rng).await;
    }
    assert!(exports_seen > 0.0, "no export was ever seen");
    assert!(
        compactions_seen > 0.0 || ROUNDS < 2,
        "no compaction was ever seen"
    );

    // Let the last generation export and compact in peace.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Stop it, archive whatever is left with `strata export`, and read the archive itself.
    let server = server
        .blocking(|s| s.stop_gracefully(Duration::from_secs(60)))
        .await;
    let data_dir = server.data_dir().to_path_buf();
    let mut export_args = vec![
        "export".to_owned(),
        "--data-dir".to_owned(),
        data_dir.display().to_string(),
    ];
    export_args.extend(strip_serve_only(&args));
    let refs: Vec<&str> = export_args.iter().map(String::as_str).collect();
    let out = strata_cli(&refs, &[], Duration::from_secs(180));
    assert!(
        out.status.success(),
        "strata export failed: {}",
        stderr(&out)
    );
    eprintln!("strata export:\n{}", stdout(&out));

    let (warm, cold) = backend.open(&data_dir).await;
    for tenant in TENANTS {
        let sent: u64 = acked.iter().filter(|e| e.tenant == tenant).count() as u64;
        let parts = warm.cold_partitions(Some(tenant), None).await.unwrap();
        let infos = cold.partitions(tenant, &parts).await.unwrap();
        let rows: u64 = infos.iter().map(|p| p.rows).sum();
        assert_eq!(rows, sent, "archived rows of {tenant}");
        assert_eq!(
            infos.len(),
            DAYS.len() * 3,
            "one partition per stream and day for {tenant}: {infos:?}"
        );
        let report = cold.verify(tenant, &parts, None).await.unwrap();
        assert!(report.is_ok(), "verify {tenant}: {report:?}");
    }
    drop(warm);

    // And the server answers the same from the archive alone.
    let server = server.blocking(TestServer::start).await;
    assert_counts(&server.http_url(), &acked).await;
    assert_readable(&server.http_url(), &acked, &mut rng).await;
}

/// `args` without the flags `export` does not take (serve's flusher and exporter cadence).
fn strip_serve_only(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if matches!(
            a.as_str(),
            "--flush-interval" | "--hot-retention" | "--export-interval" | "--max-lateness"
        ) {
            skip = true;
            continue;
        }
        out.push(a.clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_tiers_survive_kill_9_during_export_and_compaction() {
    kill_during_export_and_compaction(Backend::Embedded).await;
}

#[cfg(feature = "server-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_and_s3_survive_kill_9_during_export_and_compaction() {
    let warm = common::postgres::fresh_database(&common::postgres::server_url()).await;
    let endpoint = std::env::var("STRATA_TEST_S3_ENDPOINT").expect(
        "STRATA_TEST_S3_ENDPOINT must name the S3-compatible test server (scripts/test starts one)",
    );
    let bucket = format!("strata-crash-{:x}", rand::random::<u64>());
    let store = strata_cold::S3Store::open(
        &format!("s3://{bucket}/archive"),
        strata_cold::S3Options {
            endpoint: Some(endpoint.clone()),
            force_path_style: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the test bucket");
    kill_during_export_and_compaction(Backend::Servers {
        warm,
        bucket,
        endpoint,
    })
    .await;
}
