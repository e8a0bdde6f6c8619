//! SIGTERM while clients are posting: the server drains, closes the hot tier, exits 0, and
//! every acknowledged event is there after a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    DEFAULTS, TestEvent, TestServer, assert_all_readable, client, count, post_all, post_events,
};

const CLIENTS: usize = 3;
const TENANT: &str = "graceful";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_requests_and_exits_zero() {
    let from = common::rfc3339_from_now(chrono::Duration::hours(-1));
    let mut server = TestServer::spawn_async(&DEFAULTS).await;
    let url = server.http_url();
    let sent = Arc::new(Mutex::new(Vec::<TestEvent>::new()));
    let acked = Arc::new(Mutex::new(Vec::<TestEvent>::new()));
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, sent, acked, acks, stop) = (
                url.clone(),
                sent.clone(),
                acked.clone(),
                acks.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let http = client();
                let mut n = 0u64;
                let mut failures = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    let batch = TestEvent::batch(TENANT, &format!("g{c}"), &mut n, 40);
                    sent.lock().unwrap().extend(batch.iter().cloned());
                    match post_events(&http, &url, &batch).await {
                        Ok(answer) => {
                            assert_eq!(answer.accepted, batch.len() as u64);
                            acks.fetch_add(1, Ordering::SeqCst);
                            acked.lock().unwrap().extend(batch);
                        }
                        Err(_) => {
                            // Refused once the listener closed: a client backs off.
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                failures
            })
        })
        .collect();

    let waiting = Instant::now();
    while acks.load(Ordering::SeqCst) < 20 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "no acknowledgements"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.terminate();
    let (status, server) = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(60));
        (status, server)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    let failures: u32 = futures::future::join_all(clients)
        .await
        .into_iter()
        .map(Result::unwrap)
        .sum();

    let status = status.expect("the server did not exit within 60 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let logs = server.logs();
    for step in [
        "shutdown requested",
        "closing listeners",
        "closing the store",
        "shutdown complete",
    ] {
        assert!(logs.contains(step), "no `{step}` in the log");
    }
    assert!(failures > 0, "clients never saw the server go away");

    let server = server.blocking(TestServer::restart).await;
    let base = server.http_url();
    let http = client();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(!acked.is_empty());
    assert_all_readable(&base, &acked.iter().collect::<Vec<_>>()).await;

    let sent = std::mem::take(&mut *sent.lock().unwrap());
    post_all(&base, &sent, 500).await;
    let to = common::rfc3339_from_now(chrono::Duration::hours(1));
    assert_eq!(
        count(&http, &base, TENANT, &from, &to).await.unwrap(),
        sent.len() as u64
    );
}
