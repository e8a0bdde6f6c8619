//! Invariants 1 and 2 against the real binary: `kill -9` at random moments during ingest
//! loses no acknowledged event, and an idempotent resend of everything ever sent leaves
//! each event stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::{TestEvent, TestServer, assert_same, client, count, get_event, post_events};
use futures::{StreamExt, stream};
use rand::{Rng, SeedableRng, rngs::StdRng};

const CLIENTS: usize = 4;
const KILLS: usize = 5;
const TENANTS: [&str; 2] = ["crash-a", "crash-b"];
/// Beyond this many acknowledged events, the earlier rounds are checked by a random sample
/// of this size (the last round is always checked in full).
const SAMPLE: usize = 20_000;

/// Where the clients should send, and which server generation that is.
struct Target {
    generation: u64,
    url: String,
}

#[derive(Default)]
struct Ledger {
    /// Every event ever put on the wire, by id.
    sent: Vec<TestEvent>,
    /// Acknowledged events with the server generation that acknowledged them.
    acked: Vec<(u64, TestEvent)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_and_resends_count_once() {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let from = common::rfc3339_from_now(chrono::Duration::hours(-1));

    let mut server = tokio::task::spawn_blocking(TestServer::spawn)
        .await
        .unwrap();
    let target = Arc::new(RwLock::new(Target {
        generation: 0,
        url: server.http_url(),
    }));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let acked_in_generation = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            tokio::spawn(run_client(
                c,
                seed,
                target.clone(),
                ledger.clone(),
                acked_in_generation.clone(),
                stop.clone(),
            ))
        })
        .collect();

    for kill in 1..=KILLS {
        // Kill only while events are being acknowledged, at a random moment after that.
        let waiting = Instant::now();
        while acked_in_generation.load(Ordering::SeqCst) == 0 {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "no acknowledgement from generation {}",
                kill - 1
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_200))).await;
        server.kill();
        eprintln!("kill #{kill}");
        // Let clients run into the dead server for a moment, as real ones would.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        server = tokio::task::spawn_blocking(move || {
            server.restart();
            server
        })
        .await
        .unwrap();
        let mut t = target.write().unwrap();
        t.generation = kill as u64;
        t.url = server.http_url();
        acked_in_generation.store(0, Ordering::SeqCst);
        drop(t);
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }

    let Ledger { sent, acked } = std::mem::take(&mut *ledger.lock().unwrap());
    let base = server.http_url();
    let http = client();
    let last_round = KILLS as u64 - 1;
    let in_last_round = acked.iter().filter(|(g, _)| *g == last_round).count();
    eprintln!(
        "sent {} events, {} acknowledged, {in_last_round} in the round before the last kill",
        sent.len(),
        acked.len()
    );
    assert!(in_last_round > 0, "the last round acknowledged nothing");

    // Every acknowledged event is readable with the fields it was sent with: all of the
    // rounds before and after the last kill, and a large sample of the earlier ones.
    let mut to_check: Vec<&TestEvent> = Vec::new();
    let mut earlier: Vec<&TestEvent> = Vec::new();
    for (generation, event) in &acked {
        if *generation >= last_round {
            to_check.push(event);
        } else {
            earlier.push(event);
        }
    }
    if earlier.len() > SAMPLE {
        for i in 0..SAMPLE {
            let j = rng.random_range(i..earlier.len());
            earlier.swap(i, j);
        }
        earlier.truncate(SAMPLE);
    }
    to_check.extend(earlier);
    let checked = to_check.len();
    let lost: Vec<String> = stream::iter(to_check)
        .map(|event| {
            let http = http.clone();
            let base = base.clone();
            async move {
                match get_event(&http, &base, &event.tenant, &event.id).await {
                    Ok(Some(got)) => {
                        assert_same(event, &got);
                        None
                    }
                    Ok(None) => Some(event.id.clone()),
                    Err(e) => panic!("GET {}: {e}", event.id),
                }
            }
        })
        .buffer_unordered(8)
        .filter_map(|lost| async move { lost })
        .collect()
        .await;
    assert!(
        lost.is_empty(),
        "{} of {checked} acknowledged events lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );

    // A client that never heard back resends; every event must then be stored exactly once.
    for chunk in sent.chunks(500) {
        let answer = post_events(&http, &base, chunk).await.expect("resend");
        assert_eq!(answer.accepted, chunk.len() as u64, "{:?}", answer.rejected);
    }
    let to = common::rfc3339_from_now(chrono::Duration::hours(1));
    let mut distinct: HashMap<&str, u64> = HashMap::new();
    for e in &sent {
        *distinct.entry(e.tenant.as_str()).or_default() += 1;
    }
    for tenant in TENANTS {
        let counted = count(&http, &base, tenant, &from, &to).await.unwrap();
        assert_eq!(
            counted,
            distinct.get(tenant).copied().unwrap_or(0),
            "tenant {tenant}: the aggregate must count each sent event exactly once"
        );
    }
}

async fn run_client(
    c: usize,
    seed: u64,
    target: Arc<RwLock<Target>>,
    ledger: Arc<Mutex<Ledger>>,
    acked_in_generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (c as u64 + 1));
    // A short timeout: a request to a killed server must fail fast, not hang the test.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let (generation, url) = {
            let t = target.read().unwrap();
            (t.generation, t.url.clone())
        };
        let size = rng.random_range(1..=60);
        let batch: Vec<TestEvent> = (0..size)
            .map(|_| {
                n += 1;
                let tenant = TENANTS[rng.random_range(0..TENANTS.len())];
                TestEvent::new(tenant, format!("c{c}-{n}"), n)
            })
            .collect();
        ledger.lock().unwrap().sent.extend(batch.iter().cloned());
        match post_events(&http, &url, &batch).await {
            Ok(answer) => {
                assert_eq!(
                    answer.accepted,
                    batch.len() as u64,
                    "valid events must all be accepted: {:?}",
                    answer.rejected
                );
                let mut l = ledger.lock().unwrap();
                l.acked.extend(batch.into_iter().map(|e| (generation, e)));
                drop(l);
                // Under the read lock, so a restart cannot reset the counter in between.
                let t = target.read().unwrap();
                if t.generation == generation {
                    acked_in_generation.fetch_add(size as u64, Ordering::SeqCst);
                }
            }
            // The server was killed under the request, or is restarting.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
