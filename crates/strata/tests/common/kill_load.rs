//! Clients that keep posting while a test kills the server under them (`kill -9`) and
//! restarts it: every event put on the wire and every acknowledgement is recorded, with the
//! server generation that acknowledged it, so a test can check afterwards what survived.

use std::{
    future::Future,
    ops::Range,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::task::JoinHandle;

use super::{PostOutcome, TestEvent, TestServer, client_with_timeout, try_post_events};

/// What the clients send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillLoadConfig {
    /// Concurrent clients.
    pub(crate) clients: usize,
    /// Each event goes to one of these, at random.
    pub(crate) tenants: &'static [&'static str],
    /// Client `c` numbers its events `{id_prefix}{c}-{n}`.
    pub(crate) id_prefix: &'static str,
    /// Batches have 1 to this many events, at random.
    pub(crate) max_batch: usize,
    /// Pause after every request (zero: none), so that the acknowledged set stays small
    /// enough to check event by event.
    pub(crate) pace: Duration,
}

/// What the clients did.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Every event ever put on the wire.
    pub(crate) sent: Vec<TestEvent>,
    /// Acknowledged events with the server generation that acknowledged them.
    pub(crate) acked: Vec<(u64, TestEvent)>,
}

/// Where the clients send, and which server generation that is.
struct Target {
    generation: u64,
    url: String,
}

/// Running clients; see the module docs.
pub(crate) struct KillLoad {
    target: Arc<RwLock<Target>>,
    ledger: Arc<Mutex<Ledger>>,
    acked_in_generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<()>>,
}

impl KillLoad {
    /// Starts `config.clients` clients against `server` (generation 0); client `c` draws its
    /// batches from a generator seeded with `seed ^ (c + 1)`.
    pub(crate) fn start(server: &TestServer, seed: u64, config: KillLoadConfig) -> Self {
        let load = Self {
            target: Arc::new(RwLock::new(Target {
                generation: 0,
                url: server.http_url(),
            })),
            ledger: Arc::default(),
            acked_in_generation: Arc::default(),
            stop: Arc::default(),
            clients: Vec::new(),
        };
        let clients = (0..config.clients)
            .map(|c| {
                tokio::spawn(run_client(
                    c,
                    StdRng::seed_from_u64(seed ^ (c as u64 + 1)),
                    config,
                    load.target.clone(),
                    load.ledger.clone(),
                    load.acked_in_generation.clone(),
                    load.stop.clone(),
                ))
            })
            .collect();
        Self { clients, ..load }
    }

    /// Events the running server generation acknowledged so far.
    pub(crate) fn acked_in_generation(&self) -> u64 {
        self.acked_in_generation.load(Ordering::SeqCst)
    }

    /// Kills `server` (SIGKILL) at a random moment: once the running generation acknowledged
    /// events and `ready(base URL)` holds (within a minute), plus a random `delay_ms`. The
    /// clients run into the dead server for a moment, as real ones would; then it is
    /// restarted on the same data directory as the next generation and the clients are
    /// pointed at it.
    pub(crate) async fn kill_at_random<F, Fut>(
        &self,
        mut server: TestServer,
        rng: &mut StdRng,
        delay_ms: Range<u64>,
        mut ready: F,
    ) -> TestServer
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = bool>,
    {
        let generation = self.target.read().unwrap().generation;
        let waiting = Instant::now();
        while self.acked_in_generation() == 0 || !ready(server.http_url()).await {
            assert!(
                waiting.elapsed() < Duration::from_secs(60),
                "generation {generation} acknowledged nothing (or never got ready) within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(delay_ms))).await;
        server.kill();
        eprintln!("kill #{}", generation + 1);
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..150))).await;
        let server = server.blocking(TestServer::restart).await;
        let mut t = self.target.write().unwrap();
        t.generation += 1;
        t.url = server.http_url();
        self.acked_in_generation.store(0, Ordering::SeqCst);
        drop(t);
        server
    }

    /// Stops the clients (each finishes its request in flight) and returns what they did.
    pub(crate) async fn finish(self) -> Ledger {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients {
            c.await.unwrap();
        }
        std::mem::take(&mut *self.ledger.lock().unwrap())
    }
}

async fn run_client(
    c: usize,
    mut rng: StdRng,
    config: KillLoadConfig,
    target: Arc<RwLock<Target>>,
    ledger: Arc<Mutex<Ledger>>,
    acked_in_generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    // A short timeout: a request to a killed server must fail fast, not hang the test.
    let http = client_with_timeout(Duration::from_secs(10));
    let mut n: u64 = 0;
    while !stop.load(Ordering::SeqCst) {
        let (generation, url) = {
            let t = target.read().unwrap();
            (t.generation, t.url.clone())
        };
        let size = rng.random_range(1..=config.max_batch);
        let batch: Vec<TestEvent> = (0..size)
            .map(|_| {
                n += 1;
                let tenant = config.tenants[rng.random_range(0..config.tenants.len())];
                TestEvent::new(tenant, format!("{}{c}-{n}", config.id_prefix), n)
            })
            .collect();
        ledger.lock().unwrap().sent.extend(batch.iter().cloned());
        match try_post_events(&http, &url, &batch).await {
            PostOutcome::Acked(answer) => {
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
            PostOutcome::Busy(wait) => tokio::time::sleep(wait.min(Duration::from_secs(1))).await,
            // The server was killed under the request, or is restarting.
            PostOutcome::Failed(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        if !config.pace.is_zero() {
            tokio::time::sleep(config.pace).await;
        }
    }
}
