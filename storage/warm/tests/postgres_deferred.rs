//! The deferred handle of `strata_warm::connect` against a real PostgreSQL server: once
//! connected it passes the cold hand-off suite, and a node started while the server was
//! unreachable reaches it when it comes back, with the archive pointers and the export path
//! working through the handle (the deferred handle of old forwarded neither).
//!
//! Runs only with `--features server-tests` and needs `STRATA_TEST_POSTGRES_URL`, like
//! `postgres_conformance.rs`.
#![cfg(feature = "server-tests")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use common::{Databases, config, report, warm_url};
use strata_core::{
    Error,
    cold::LivePartition,
    conformance::warm::{HandoffHarness, NODE, T0, batch, random_events, run_cold_handoff, stored},
    handoff::{ColdCommit, ExportMarks, WarmStore},
    warm::WarmMode,
};
use strata_warm::{Connector, Layout, WarmStart, connect};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::OnceCell,
};
use tokio_util::sync::CancellationToken;

struct Harness {
    dbs: Databases,
    url: OnceCell<String>,
}

#[async_trait]
impl HandoffHarness for Harness {
    async fn open(&self) -> Arc<dyn WarmStore> {
        let url = self.url.get_or_init(|| self.dbs.fresh()).await;
        let connector = Connector::new(warm_url(url), config(Layout::Postgres), "suite", u64::MAX);
        let warm = connector.warm();
        connector
            .run(CancellationToken::new())
            .await
            .expect("the connector reaches the server");
        assert_eq!(warm.mode(), WarmMode::Postgres);
        warm
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connected_deferred_handle_passes_the_cold_handoff_suite() {
    let dbs = Databases::default();
    run_cold_handoff(|| Harness {
        dbs: dbs.clone(),
        url: OnceCell::new(),
    })
    .await;
    dbs.drop_all().await;
    report("postgres (native partitions) behind the deferred handle: cold hand-off suite passed");
}

/// Forwards every connection accepted on `listener` to `server`.
async fn proxy(listener: TcpListener, server: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&server).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_while_postgres_is_down_connects_when_it_is_back() {
    let dbs = Databases::default();
    let url = dbs.fresh().await;
    // The server, reached through a port nothing listens on yet.
    let pg: tokio_postgres::Config = url.parse().unwrap();
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("a TCP host, got {other:?}"),
    };
    let server = format!("{host}:{}", pg.get_ports().first().copied().unwrap_or(5432));
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    // A key=value string, the other form operators write, with a password to keep hidden.
    let target = warm_url(&format!(
        "host=127.0.0.1 port={port} user={} password=hunter2 dbname={} connect_timeout=2",
        pg.get_user().unwrap_or("postgres"),
        pg.get_dbname().unwrap_or("postgres"),
    ));
    assert!(!target.to_string().contains("hunter2"));

    let WarmStart::Connecting(connector) =
        connect::open(&target, config(Layout::Postgres), NODE, u64::MAX)
            .await
            .expect("an unreachable server is not fatal")
    else {
        panic!("nothing listens on port {port} yet")
    };
    let warm = connector.warm();
    assert!(matches!(
        warm.cold_partitions(None, None).await,
        Err(Error::Unavailable { .. })
    ));
    assert!(matches!(
        warm.export_candidates(i64::MAX, 10).await,
        Err(Error::Unavailable { .. })
    ));

    // The server comes back; the connector, retrying meanwhile, reaches it.
    let stop = CancellationToken::new();
    let run = tokio::spawn(connector.run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let forward = tokio::spawn(proxy(listener, server));
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("connects within a minute")
        .unwrap()
        .expect("connected");
    assert_eq!(warm.mode(), WarmMode::Postgres);

    // Every seam works through the handle: flush, export, commit, archive pointers.
    let day_before = T0 - 86_400_000_000;
    let mut events = random_events("acme", 50, 7);
    for e in &mut events {
        e.ts = day_before + e.ts.rem_euclid(3_600_000_000);
        e.stream = "click".into();
    }
    let rows = stored(&events, 1);
    warm.write_batch(NODE, &batch(&rows)).await.unwrap();
    let due = warm.export_candidates(T0, 10).await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    let marks: ExportMarks = warm.flush_marks().await.unwrap();
    assert_eq!(marks.get(NODE), Some(&50));
    let page = warm.export_page(&due[0], &marks, None, 1000).await.unwrap();
    assert_eq!(page.rows.len(), 50);
    let live = LivePartition {
        partition: due[0].clone(),
        version: 1,
        manifest_sha256: "ab".repeat(32),
    };
    let commit = ColdCommit {
        live: live.clone(),
        expected_version: None,
        exported: Some(marks),
    };
    assert_eq!(warm.commit_cold(&commit).await.unwrap(), 50);
    assert!(matches!(
        warm.commit_cold(&commit).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(warm.cold_partitions(None, None).await.unwrap(), vec![live]);
    assert!(warm.export_candidates(T0, 10).await.unwrap().is_empty());

    stop.cancel();
    forward.abort();
    drop(warm);
    dbs.drop_all().await;
    report("postgres (native partitions): deferred start connected when the server came back");
}
