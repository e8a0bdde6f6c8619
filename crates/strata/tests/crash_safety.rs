//! Invariants 1 and 2 against the real binary: `kill -9` at random moments during ingest
//! loses no acknowledged event, and an idempotent resend of everything ever sent leaves
//! each event stored exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{collections::HashMap, time::Duration};

use common::{
    DEFAULTS, TestEvent, TestServer, assert_all_readable, client, count,
    kill_load::{KillLoad, KillLoadConfig, Ledger},
    post_all, random_sample,
};
use rand::{SeedableRng, rngs::StdRng};

const KILLS: usize = 5;
const TENANTS: [&str; 2] = ["crash-a", "crash-b"];
/// Beyond this many acknowledged events, the earlier rounds are checked by a random sample
/// of this size (the last round is always checked in full).
const SAMPLE: usize = 20_000;
const LOAD: KillLoadConfig = KillLoadConfig {
    clients: 4,
    tenants: &TENANTS,
    id_prefix: "c",
    max_batch: 60,
    pace: Duration::ZERO,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_kill_9_and_resends_count_once() {
    let seed: u64 = rand::random();
    eprintln!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let from = common::rfc3339_from_now(chrono::Duration::hours(-1));

    let mut server = TestServer::spawn_async(&DEFAULTS).await;
    let load = KillLoad::start(&server, seed, LOAD);

    for _ in 0..KILLS {
        // Only while events are being acknowledged, at a random moment after that.
        server = load
            .kill_at_random(server, &mut rng, 0..1_200, |_| async { true })
            .await;
    }
    let Ledger { sent, acked } = load.finish().await;
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
    random_sample(&mut earlier, SAMPLE, &mut rng);
    to_check.extend(earlier);
    assert_all_readable(&base, &to_check).await;

    // A client that never heard back resends; every event must then be stored exactly once.
    post_all(&base, &sent, 500).await;
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
