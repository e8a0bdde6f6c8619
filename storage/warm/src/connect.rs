//! The warm tier as `serve` opens it: at once when it can, in the background when it cannot.
//!
//! An operator expects a store with a durable front tier to take writes while its backing
//! database is away (InfluxDB keeps accepting into its WAL, Druid keeps ingesting while deep
//! storage or the metadata store is down). So a PostgreSQL that is unreachable when `serve`
//! starts does not stop the start: the APIs come up, ingest lands in the hot tier (up to its
//! disk budget, then 503 + `Retry-After`), and a [`Connector`] keeps retrying with backoff.
//! Until it connects, the warm tier is a deferred handle ([`Connector::warm`]) that answers
//! every call, of the tier and of the hand-off to cold alike, with
//! [`strata_core::Error::Unavailable`]: the flusher backs off and keeps the events in hot, the
//! exporter waits, and a query or lookup that needs warm answers 503 rather than a count that
//! silently misses history (or misses the archive). Once connected, the handle forwards every
//! call to the connected tier. That is exactly how the node behaves when warm goes away
//! later, so there is one outage behaviour to learn, not two.
//!
//! `/readyz` does not follow warm. Readiness decides whether a load balancer sends traffic;
//! when every replica shares one PostgreSQL, tying readiness to it would take all of them
//! out of rotation together and turn a warm outage into an ingest outage, the one thing the
//! hot tier exists to prevent. Warm's state is visible instead in the
//! [`WARM_CONNECTED`] gauge, the flusher's error, backlog and lag metrics, and the log.
//!
//! Errors that retrying cannot fix (wrong password, missing database, pending migrations
//! without `migrate_on_open`, a layout the server cannot provide, a reused node id) are
//! fatal: [`open`] returns them before the APIs bind, and [`Connector::run`] returns them
//! later so the caller shuts down with that error; a misconfigured node fails loudly instead
//! of quietly filling its hot tier. Only [`strata_core::Error::Unavailable`] is retried, and
//! never for the embedded store, a local file with no server to wait for.

mod deferred;

use std::{sync::Arc, time::Duration};

use strata_core::{handoff::WarmStore, warm::WarmMode};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::deferred::DeferredWarm;
use crate::{Layout, WarmConfig, WarmUrl, open_warm};

/// Gauge: 1 once the warm tier is connected, 0 while the node is still trying.
pub const WARM_CONNECTED: &str = "strata_warm_connected";

/// First wait between connection attempts; doubled after every failure.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between connection attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Registers the description of [`WARM_CONNECTED`], and the gauge itself at 0 (not
/// connected) until [`open`] or the [`Connector`] sets it, so an alert on it has a series
/// from the first scrape. Adding zero leaves a gauge that was already set as it is.
pub fn describe_metrics() {
    metrics::describe_gauge!(
        WARM_CONNECTED,
        "1 when the warm tier is connected, 0 while the node is still connecting to it."
    );
    metrics::gauge!(WARM_CONNECTED).increment(0.0);
}

/// Why the warm tier cannot be used, and retrying would not help.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The warm tier refused to open (wrong credentials, missing database, pending
    /// migrations without `migrate_on_open`, an embedded store that cannot be opened, ...).
    #[error("cannot open the warm tier at {target}: {source}")]
    Backend {
        /// The warm URL, password hidden.
        target: String,
        /// What the warm tier said.
        #[source]
        source: strata_core::Error,
    },
    /// Warm holds rows of this node id beyond any sequence number its hot tier issued: a new
    /// hot store runs under a reused id, and warm would skip its events as already written.
    #[error(
        "node id `{node}` is already taken: the warm tier holds its events up to sequence \
         number {warm_committed}, but this hot tier has issued only up to {hot_last_seq}, so \
         this is a new hot store under a reused id and warm would skip its events as already \
         written; start it under another node id"
    )]
    NodeReused {
        /// The node id.
        node: String,
        /// Highest sequence number of `node` committed to warm.
        warm_committed: u64,
        /// Highest sequence number the hot tier has issued.
        hot_last_seq: u64,
    },
}

/// The mode to report for `url` before the backend could say: `timescaledb` only when the
/// layout demands it (with `auto` the database decides, once reachable).
fn expected_mode(url: &WarmUrl, layout: Layout) -> WarmMode {
    match (url.is_embedded(), layout) {
        (true, _) => WarmMode::Embedded,
        (false, Layout::Timescale) => WarmMode::Timescale,
        (false, _) => WarmMode::Postgres,
    }
}

/// What [`open`] achieved.
#[derive(Debug)]
pub enum WarmStart {
    /// The warm tier is open and checked.
    Connected(Arc<dyn WarmStore>),
    /// The server could not be reached yet; run the connector to keep trying, and build the
    /// store on [`Connector::warm`] meanwhile.
    Connecting(Connector),
}

/// Opens the warm tier `url` names for a node `node` whose hot tier has issued sequence
/// numbers up to `hot_last_seq`. One attempt: a server that cannot be reached yields
/// [`WarmStart::Connecting`]; anything retrying cannot fix is an error. Sets
/// [`WARM_CONNECTED`].
pub async fn open(
    url: &WarmUrl,
    config: WarmConfig,
    node: &str,
    hot_last_seq: u64,
) -> Result<WarmStart, OpenError> {
    match attempt(url, &config, node, hot_last_seq).await {
        Ok(warm) => {
            metrics::gauge!(WARM_CONNECTED).set(1.0);
            Ok(WarmStart::Connected(warm))
        }
        Err(Failure::Fatal(e)) => Err(e),
        // The embedded store is a local file: there is no server to wait for.
        Err(Failure::Retry(source)) if url.is_embedded() => Err(OpenError::Backend {
            target: url.redacted(),
            source,
        }),
        Err(Failure::Retry(e)) => {
            warn!(
                target = %url,
                warm_mode = %expected_mode(url, config.layout),
                error = %e,
                "the warm tier is unreachable; serving anyway: ingest goes to the hot tier and \
                 queries that need warm answer 503 until it connects; retrying in the background"
            );
            Ok(WarmStart::Connecting(Connector {
                attempts: 1,
                next_delay: FIRST_RETRY,
                last_error: Some(e.to_string()),
                ..Connector::new(url.clone(), config, node, hot_last_seq)
            }))
        }
    }
}

/// Why one connection attempt failed.
enum Failure {
    /// The server cannot be reached now; try again later.
    Retry(strata_core::Error),
    /// Retrying will not help.
    Fatal(OpenError),
}

async fn attempt(
    url: &WarmUrl,
    config: &WarmConfig,
    node: &str,
    hot_last_seq: u64,
) -> Result<Arc<dyn WarmStore>, Failure> {
    let classify = |source: strata_core::Error| match source {
        strata_core::Error::Unavailable { .. } => Failure::Retry(source),
        source => Failure::Fatal(OpenError::Backend {
            target: url.redacted(),
            source,
        }),
    };
    let warm = open_warm(url, config).await.map_err(classify)?;
    // Warm skips rows of a node at or below the highest sequence number it committed for
    // that node. If that is beyond anything this hot tier issued, the hot tier is not the
    // one that wrote them: a new store under a reused id, whose events would vanish.
    let warm_committed = warm.committed_upto(node).await.map_err(classify)?;
    if warm_committed > hot_last_seq {
        return Err(Failure::Fatal(OpenError::NodeReused {
            node: node.to_owned(),
            warm_committed,
            hot_last_seq,
        }));
    }
    Ok(warm)
}

/// Keeps trying to connect a warm tier, and fills the deferred handle ([`Connector::warm`])
/// once it has.
#[derive(Debug)]
pub struct Connector {
    slot: Arc<DeferredWarm>,
    /// What to connect to (boxed: it is most of a connector, which travels inside
    /// [`WarmStart`]).
    target: Box<Target>,
    /// Attempts made so far.
    attempts: u64,
    /// Wait before the next attempt.
    next_delay: Duration,
    /// The last failure, logged again only when a later one differs.
    last_error: Option<String>,
}

/// What a connector connects to, and for which node.
#[derive(Debug)]
struct Target {
    url: WarmUrl,
    config: WarmConfig,
    node: String,
    hot_last_seq: u64,
}

impl Connector {
    /// A connector that has not tried yet: [`Connector::run`] makes its first attempt at
    /// once. [`open`] is the usual way to get one (it tries once first and hands out a
    /// connector only when the server is unreachable); this is for a caller that wants the
    /// node up before even trying. Sets [`WARM_CONNECTED`] to 0.
    pub fn new(
        url: WarmUrl,
        config: WarmConfig,
        node: impl Into<String>,
        hot_last_seq: u64,
    ) -> Self {
        metrics::gauge!(WARM_CONNECTED).set(0.0);
        let slot = Arc::new(DeferredWarm::new(
            expected_mode(&url, config.layout),
            url.redacted(),
        ));
        Self {
            slot,
            target: Box::new(Target {
                url,
                config,
                node: node.into(),
                hot_last_seq,
            }),
            attempts: 0,
            next_delay: Duration::ZERO,
            last_error: None,
        }
    }

    /// The warm tier (and hand-off) to build the store on: every call fails with
    /// [`strata_core::Error::Unavailable`] until the connector succeeds, then every call goes
    /// to the connected tier.
    pub fn warm(&self) -> Arc<dyn WarmStore> {
        self.slot.clone()
    }

    /// Retries with backoff until connected (`Ok`), `shutdown` (`Ok`), or an error retrying
    /// cannot fix. Logs a failure when it differs from the previous one, not every retry.
    /// Sets [`WARM_CONNECTED`] to 1 once connected.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), OpenError> {
        let Target {
            url,
            config,
            node,
            hot_last_seq,
        } = &*self.target;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.next_delay) => {}
            }
            self.attempts += 1;
            let outcome = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                outcome = attempt(url, config, node, *hot_last_seq) => outcome,
            };
            match outcome {
                Ok(warm) => {
                    let mode = warm.mode();
                    self.slot.connect(warm);
                    metrics::gauge!(WARM_CONNECTED).set(1.0);
                    info!(
                        target = %url,
                        warm_mode = %mode,
                        attempts = self.attempts,
                        "warm tier connected; the flusher drains the hot backlog"
                    );
                    return Ok(());
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(source)) if url.is_embedded() => {
                    return Err(OpenError::Backend {
                        target: url.redacted(),
                        source,
                    });
                }
                Err(Failure::Retry(e)) => {
                    let message = e.to_string();
                    let attempts = self.attempts;
                    if self.last_error.as_ref() == Some(&message) {
                        debug!(error = %e, attempts, "the warm tier is still unreachable");
                    } else {
                        warn!(error = %e, attempts, "the warm tier is still unreachable");
                        self.last_error = Some(message);
                    }
                    self.next_delay = if self.next_delay.is_zero() {
                        FIRST_RETRY
                    } else {
                        (self.next_delay * 2).min(MAX_RETRY)
                    };
                }
            }
        }
    }
}
