//! The start path of `strata serve` (`strata_warm::connect`): a PostgreSQL that cannot be
//! reached defers instead of failing, and the deferred handle answers `Unavailable` for every
//! method of both seams until it connects; errors retrying cannot fix are returned at once.
//! The handle's behaviour once connected is checked by the conformance suites
//! (`embedded_conformance.rs`, and `postgres_deferred.rs` against a real server).

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use strata_core::{
    Error, Tier,
    cold::{LivePartition, PartitionKey},
    handoff::{ColdCommit, ExportMarks, WarmStore},
    hot::{FlushBatch, HotWatermark},
    warm::{ScanRequest, WarmMode},
};
use strata_types::{AggregateQuery, Event, QueryParams, StoredEvent, TimeRange};
use strata_warm::{Connector, Layout, OpenError, WarmConfig, WarmStart, WarmUrl, connect};
use tokio_util::sync::CancellationToken;

/// Nothing listens on port 1 of loopback, so connecting is refused at once.
const UNREACHABLE: &str = "postgres://strata:hunter2@127.0.0.1:1/strata";

fn url(s: &str) -> WarmUrl {
    s.parse().expect("a warm URL")
}

fn config(dir: &std::path::Path) -> WarmConfig {
    let mut config = WarmConfig::new(dir);
    config.connect_timeout = Duration::from_millis(500);
    config
}

fn rows(seqs: std::ops::RangeInclusive<u64>) -> Vec<StoredEvent> {
    seqs.map(|seq| StoredEvent {
        event: Event {
            tenant: "t".into(),
            stream: "s".into(),
            key: "k".into(),
            id: format!("e{seq}"),
            ts: 1_000_000,
            value: None,
            attrs: BTreeMap::new(),
            payload: None,
        },
        ingest_ts: 1_000_000,
        seq,
    })
    .collect()
}

/// Calls every fallible method of both seams and checks that each fails with
/// `Unavailable` for the warm tier, naming that method, without the password.
async fn assert_every_method_unavailable(warm: &dyn WarmStore) {
    let query = AggregateQuery::from_params(&QueryParams {
        tenant: "t",
        from: "0",
        to: "60000000",
        bucket: "1m",
        agg: "count",
        ..QueryParams::default()
    })
    .expect("a query");
    let wm = HotWatermark::everything("node-a");
    let rows = rows(1..=2);
    let batch = FlushBatch {
        first_seq: 1,
        last_seq: 2,
        events: rows.clone(),
    };
    let partition = PartitionKey {
        tenant: "t".into(),
        stream: "s".into(),
        day: 0,
    };
    let marks: ExportMarks = [("node-a".to_owned(), 2)].into();
    let commit = ColdCommit {
        live: LivePartition {
            partition: partition.clone(),
            version: 1,
            manifest_sha256: "00".repeat(32),
        },
        expected_version: None,
        exported: Some(marks.clone()),
    };
    let range = TimeRange {
        from: 0,
        to: 60_000_000,
    };
    let ids = vec!["e1".to_owned()];
    let outcomes: Vec<(&str, strata_core::Result<()>)> = vec![
        (
            "write_batch",
            warm.write_batch("node-a", &batch).await.map(drop),
        ),
        (
            "committed_upto",
            warm.committed_upto("node-a").await.map(drop),
        ),
        ("aggregate", warm.aggregate(&query, &wm).await.map(drop)),
        ("get", warm.get("t", "e1", &wm).await.map(drop)),
        ("existing_ids", warm.existing_ids("t", &ids).await.map(drop)),
        (
            "scan",
            warm.scan(&ScanRequest::new("t", range, 10), &wm)
                .await
                .map(drop),
        ),
        ("drop_before", warm.drop_before(0).await.map(drop)),
        ("health", warm.health().await),
        (
            "cold_partitions",
            warm.cold_partitions(None, None).await.map(drop),
        ),
        (
            "export_candidates",
            warm.export_candidates(i64::MAX, 10).await.map(drop),
        ),
        ("flush_marks", warm.flush_marks().await.map(drop)),
        (
            "export_page",
            warm.export_page(&partition, &marks, None, 10)
                .await
                .map(drop),
        ),
        ("commit_cold", warm.commit_cold(&commit).await.map(drop)),
    ];
    assert_eq!(outcomes.len(), 13, "every fallible method of both seams");
    for (method, outcome) in outcomes {
        match outcome {
            Err(Error::Unavailable {
                tier: Tier::Warm,
                op,
                message,
            }) => {
                assert_eq!(op, method, "the error names the method");
                assert!(!message.contains("hunter2"), "{method}: {message}");
            }
            other => panic!("{method}: expected Unavailable before connecting, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_server_defers_and_every_method_answers_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let start = connect::open(&url(UNREACHABLE), config(dir.path()), "node-a", 0)
        .await
        .expect("an unreachable server is not fatal");
    assert!(started.elapsed() < Duration::from_secs(30));
    let WarmStart::Connecting(connector) = start else {
        panic!("port 1 should be unreachable")
    };
    let warm = connector.warm();
    assert_eq!(
        warm.mode(),
        WarmMode::Postgres,
        "auto reports plain until connected"
    );
    assert_every_method_unavailable(warm.as_ref()).await;
    let message = warm.health().await.expect_err("not connected").to_string();
    assert!(message.contains("strata:***@127.0.0.1:1"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");

    // Shutdown ends the retry loop promptly and cleanly.
    let stop = CancellationToken::new();
    stop.cancel();
    connector.run(stop).await.expect("shutdown is not an error");
    // The handle stays unavailable: nothing connected it.
    assert!(matches!(
        warm.flush_marks().await,
        Err(Error::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_timescaledb_layout_is_reported_before_connecting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.layout = Layout::Timescale;
    let connector = Connector::new(url(UNREACHABLE), config, "node-a", 0);
    assert_eq!(connector.warm().mode(), WarmMode::Timescale);
}

#[tokio::test]
async fn a_connector_that_has_not_run_is_unavailable_and_then_forwards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = Connector::new(WarmUrl::embedded(), config(dir.path()), "node-a", 0);
    let warm = connector.warm();
    assert_eq!(warm.mode(), WarmMode::Embedded);
    assert_every_method_unavailable(warm.as_ref()).await;
    connector
        .run(CancellationToken::new())
        .await
        .expect("the embedded store connects on the first attempt");
    warm.health().await.expect("connected");
    assert_eq!(warm.committed_upto("node-a").await.expect("connected"), 0);
    assert!(
        warm.cold_partitions(None, None)
            .await
            .expect("connected")
            .is_empty()
    );
}

#[tokio::test]
async fn a_connector_keeps_retrying_until_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let connector = Connector::new(url(UNREACHABLE), config(dir.path()), "node-a", 0);
    let warm = connector.warm();
    let stop = CancellationToken::new();
    let run = tokio::spawn(connector.run(stop.clone()));
    // Several attempts (at once, then after 0.5 s and 1 s) fail and are retried.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    assert!(
        !run.is_finished(),
        "an unreachable server is retried, not fatal"
    );
    assert!(matches!(
        warm.health().await,
        Err(Error::Unavailable { .. })
    ));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops promptly")
        .expect("the task did not panic")
        .expect("shutdown is not an error");
}

#[tokio::test]
async fn embedded_connects_at_once_and_a_reused_node_id_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let embedded = url("embedded");
    let config = WarmConfig::new(dir.path());
    let WarmStart::Connected(warm) = connect::open(&embedded, config.clone(), "node-a", 0)
        .await
        .expect("opens")
    else {
        panic!("embedded never defers")
    };
    assert_eq!(warm.mode(), WarmMode::Embedded);
    // Warm remembers node-a up to seq 3 once a batch is written.
    let batch = FlushBatch {
        first_seq: 1,
        last_seq: 3,
        events: rows(1..=3),
    };
    warm.write_batch("node-a", &batch).await.expect("written");
    drop(warm);
    // The same hot store (issued up to 3) is fine; a new one (issued 0) is not.
    assert!(matches!(
        connect::open(&embedded, config.clone(), "node-a", 3)
            .await
            .expect("opens"),
        WarmStart::Connected(_)
    ));
    let err = connect::open(&embedded, config.clone(), "node-a", 0)
        .await
        .expect_err("a reused node id");
    assert!(
        matches!(
            err,
            OpenError::NodeReused {
                warm_committed: 3,
                hot_last_seq: 0,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("another node id"), "{err}");
    // A connector reports the same error instead of retrying it.
    let err = Connector::new(embedded, config, "node-a", 0)
        .run(CancellationToken::new())
        .await
        .expect_err("a reused node id");
    assert!(matches!(err, OpenError::NodeReused { .. }), "{err:?}");
}

#[tokio::test]
async fn an_embedded_store_that_cannot_open_is_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The data directory is a file, so the store cannot be created under it.
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, b"").expect("write a file");
    let err = connect::open(&WarmUrl::embedded(), WarmConfig::new(&file), "node-a", 0)
        .await
        .expect_err("cannot create the store");
    assert!(matches!(err, OpenError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("embedded"), "{err}");
}
