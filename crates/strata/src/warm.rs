//! The warm tier as `serve` opens it: at once when it can, in the background when it cannot.
//!
//! An operator expects a store with a durable front tier to take writes while its backing
//! database is away (InfluxDB keeps accepting into its WAL, Druid keeps ingesting while deep
//! storage or the metadata store is down). So a PostgreSQL that is unreachable when `serve`
//! starts does not stop the start: the APIs come up, ingest lands in the hot tier (up to its
//! disk budget, then 503 + `Retry-After`), and a [`Connector`] keeps retrying with backoff.
//! Until it connects, the warm tier is a [`DeferredWarm`] that answers every call with
//! [`strata_core::Error::Unavailable`]: the flusher backs off and keeps the events in hot,
//! and a query or lookup that needs warm answers 503 rather than a count that silently
//! misses history. That is exactly how the node behaves when warm goes away later, so there
//! is one outage behaviour to learn, not two.
//!
//! `/readyz` does not follow warm. Readiness decides whether a load balancer sends traffic;
//! when every replica shares one PostgreSQL, tying readiness to it would take all of them
//! out of rotation together and turn a warm outage into an ingest outage, the one thing the
//! hot tier exists to prevent. Warm's state is visible instead in the
//! `strata_warm_connected` gauge, the flusher's error, backlog and lag metrics, and the log.
//!
//! Errors that retrying cannot fix (wrong password, missing database, pending migrations with
//! `--warm-migrate false`, a layout the server cannot provide, a reused node id) are fatal:
//! at start before the APIs bind, or later as a shutdown with that error, so a misconfigured
//! node fails loudly instead of quietly filling its hot tier.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, OnceLock},
    time::Duration,
};

use async_trait::async_trait;
use strata_core::{
    Tier,
    hot::FlushBatch,
    warm::{HotWatermark, ScanPage, ScanRequest, WarmMode, WarmTier, WriteOutcome},
};
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent};
use strata_warm::{Layout, WarmConfig};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    Error, Result,
    cli::{WarmArgs, WarmUrl},
};

/// Gauge: 1 once the warm tier is connected, 0 while `serve` is still trying.
pub const WARM_CONNECTED: &str = "strata_warm_connected";

/// First wait between connection attempts; doubled after every failure.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// Longest wait between connection attempts.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Registers the description of [`WARM_CONNECTED`].
pub fn describe_metrics() {
    metrics::describe_gauge!(
        WARM_CONNECTED,
        "1 when the warm tier is connected, 0 while the node is still connecting to it."
    );
}

impl WarmArgs {
    /// The warm configuration these flags describe, for the data directory `data_dir`.
    pub fn to_config(&self, data_dir: &Path, migrate_on_open: bool) -> WarmConfig {
        WarmConfig {
            layout: self.warm_layout.into(),
            migrate_on_open,
            pool_size: self.warm_pool_size as usize,
            connect_timeout: self.warm_connect_timeout,
            chunk_interval: self.warm_chunk_interval,
            compress_after: self.warm_compress_after,
            partitions_ahead: self.warm_partitions_ahead,
            ..WarmConfig::new(data_dir)
        }
    }
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
    Connected(Arc<dyn WarmTier>),
    /// The server could not be reached yet; run the connector to keep trying.
    Connecting(Connector),
}

/// Opens the warm tier `url` names for a node `node` whose hot tier has issued sequence
/// numbers up to `hot_last_seq`. One attempt: a server that cannot be reached yields
/// [`WarmStart::Connecting`]; anything retrying cannot fix is an error.
pub async fn open(
    url: &WarmUrl,
    config: WarmConfig,
    node: &str,
    hot_last_seq: u64,
) -> Result<WarmStart> {
    let target = url.redacted();
    match attempt(url, &config, node, hot_last_seq).await {
        Ok(warm) => Ok(WarmStart::Connected(warm)),
        Err(Failure::Fatal(e)) => Err(e),
        // The embedded store is a local file: there is no server to wait for.
        Err(Failure::Retry(source)) if url.is_embedded() => Err(Error::OpenWarm { target, source }),
        Err(Failure::Retry(e)) => {
            let expected = expected_mode(url, config.layout);
            warn!(
                target = %target,
                warm_mode = %expected,
                error = %e,
                "the warm tier is unreachable; serving anyway: ingest goes to the hot tier and \
                 queries that need warm answer 503 until it connects; retrying in the background"
            );
            metrics::gauge!(WARM_CONNECTED).set(0.0);
            let slot = Arc::new(DeferredWarm {
                inner: OnceLock::new(),
                expected,
                target,
            });
            Ok(WarmStart::Connecting(Connector {
                slot,
                url: url.clone(),
                config,
                node: node.to_owned(),
                hot_last_seq,
                last_error: e.to_string(),
            }))
        }
    }
}

/// Why one connection attempt failed.
enum Failure {
    /// The server cannot be reached now; try again later.
    Retry(strata_core::Error),
    /// Retrying will not help.
    Fatal(Error),
}

async fn attempt(
    url: &WarmUrl,
    config: &WarmConfig,
    node: &str,
    hot_last_seq: u64,
) -> std::result::Result<Arc<dyn WarmTier>, Failure> {
    let classify = |source: strata_core::Error| match source {
        strata_core::Error::Unavailable { .. } => Failure::Retry(source),
        source => Failure::Fatal(Error::OpenWarm {
            target: url.redacted(),
            source,
        }),
    };
    let warm = strata_warm::open_warm(url.expose(), config)
        .await
        .map_err(classify)?;
    // Warm skips rows of a node at or below the highest sequence number it committed for
    // that node. If that is beyond anything this hot tier issued, the hot tier is not the
    // one that wrote them: a new store under a reused id, whose events would vanish.
    let warm_committed = warm.committed_upto(node).await.map_err(classify)?;
    if warm_committed > hot_last_seq {
        return Err(Failure::Fatal(Error::NodeReused {
            node: node.to_owned(),
            warm_committed,
            hot_last_seq,
        }));
    }
    Ok(warm)
}

/// Keeps trying to connect the warm tier that [`open`] could not reach.
#[derive(Debug)]
pub struct Connector {
    slot: Arc<DeferredWarm>,
    url: WarmUrl,
    config: WarmConfig,
    node: String,
    hot_last_seq: u64,
    last_error: String,
}

impl Connector {
    /// The warm tier to build the store on: unavailable until the connector succeeds, then
    /// the real one.
    pub fn warm(&self) -> Arc<dyn WarmTier> {
        self.slot.clone()
    }

    /// Retries with backoff until connected (`Ok`), `shutdown` (`Ok`), or an error retrying
    /// cannot fix. Logs a failure when it differs from the previous one, not every retry.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let mut delay = FIRST_RETRY;
        let mut attempts: u64 = 1;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
            attempts += 1;
            let outcome = tokio::select! {
                biased;
                () = shutdown.cancelled() => return Ok(()),
                outcome = attempt(&self.url, &self.config, &self.node, self.hot_last_seq) => outcome,
            };
            match outcome {
                Ok(warm) => {
                    let mode = warm.mode();
                    // Set once, here only; a failed `set` cannot happen, and would leave the
                    // tier unavailable rather than wrong.
                    let _ = self.slot.inner.set(warm);
                    metrics::gauge!(WARM_CONNECTED).set(1.0);
                    info!(
                        target = %self.slot.target,
                        warm_mode = %mode,
                        attempts,
                        "warm tier connected; the flusher drains the hot backlog"
                    );
                    return Ok(());
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    let message = e.to_string();
                    if message == self.last_error {
                        debug!(error = %e, attempts, "the warm tier is still unreachable");
                    } else {
                        warn!(error = %e, attempts, "the warm tier is still unreachable");
                        self.last_error = message;
                    }
                    delay = (delay * 2).min(MAX_RETRY);
                }
            }
        }
    }
}

/// A warm tier that is not connected yet: every call fails with
/// [`strata_core::Error::Unavailable`] until its [`Connector`] succeeds, then everything goes
/// to the connected tier.
#[derive(Debug)]
pub struct DeferredWarm {
    inner: OnceLock<Arc<dyn WarmTier>>,
    expected: WarmMode,
    target: String,
}

impl DeferredWarm {
    fn tier(&self, op: &'static str) -> strata_core::Result<&Arc<dyn WarmTier>> {
        self.inner
            .get()
            .ok_or_else(|| strata_core::Error::Unavailable {
                tier: Tier::Warm,
                op,
                message: format!(
                    "not connected to {} yet; connecting in the background",
                    self.target
                ),
            })
    }
}

#[async_trait]
impl WarmTier for DeferredWarm {
    fn mode(&self) -> WarmMode {
        self.inner.get().map_or(self.expected, |w| w.mode())
    }

    async fn write_batch(
        &self,
        node: &str,
        batch: &FlushBatch,
    ) -> strata_core::Result<WriteOutcome> {
        self.tier("write_batch")?.write_batch(node, batch).await
    }

    async fn committed_upto(&self, node: &str) -> strata_core::Result<u64> {
        self.tier("committed_upto")?.committed_upto(node).await
    }

    async fn aggregate(
        &self,
        query: &AggregateQuery,
        watermark: &HotWatermark,
    ) -> strata_core::Result<PartialAggregate> {
        self.tier("aggregate")?.aggregate(query, watermark).await
    }

    async fn get(
        &self,
        tenant: &str,
        id: &str,
        watermark: &HotWatermark,
    ) -> strata_core::Result<Option<StoredEvent>> {
        self.tier("get")?.get(tenant, id, watermark).await
    }

    async fn existing_ids(
        &self,
        tenant: &str,
        ids: &[String],
    ) -> strata_core::Result<HashMap<String, u64>> {
        self.tier("existing_ids")?.existing_ids(tenant, ids).await
    }

    async fn scan(
        &self,
        request: &ScanRequest,
        watermark: &HotWatermark,
    ) -> strata_core::Result<ScanPage> {
        self.tier("scan")?.scan(request, watermark).await
    }

    async fn drop_before(&self, before: i64) -> strata_core::Result<u64> {
        self.tier("drop_before")?.drop_before(before).await
    }

    async fn health(&self) -> strata_core::Result<()> {
        self.tier("health")?.health().await
    }
}

#[cfg(test)]
mod tests {
    use strata_types::{AggregateQuery, QueryParams};

    use super::*;

    fn url(s: &str) -> WarmUrl {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn an_unreachable_server_defers_and_answers_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let target = url("postgres://strata:hunter2@127.0.0.1:1/strata");
        let mut config = WarmConfig::new(dir.path());
        config.connect_timeout = Duration::from_millis(500);
        let start = open(&target, config, "node-a", 0).await.unwrap();
        let WarmStart::Connecting(connector) = start else {
            panic!("port 1 should be unreachable")
        };
        let warm = connector.warm();
        assert_eq!(warm.mode(), WarmMode::Postgres);
        let err = warm.committed_upto("node-a").await.unwrap_err();
        assert!(
            matches!(
                err,
                strata_core::Error::Unavailable {
                    tier: Tier::Warm,
                    ..
                }
            ),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("strata:***@127.0.0.1:1"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let query = AggregateQuery::from_params(&QueryParams {
            tenant: "t",
            from: "0",
            to: "60000000",
            bucket: "1m",
            agg: "count",
            ..QueryParams::default()
        })
        .unwrap();
        assert!(
            warm.aggregate(&query, &HotWatermark::everything("node-a"))
                .await
                .is_err()
        );
        // Shutdown ends the retry loop promptly and cleanly.
        let stop = CancellationToken::new();
        stop.cancel();
        connector.run(stop).await.unwrap();
    }

    #[tokio::test]
    async fn embedded_connects_at_once_and_a_reused_node_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let embedded = url("embedded");
        let config = WarmConfig::new(dir.path());
        let WarmStart::Connected(warm) =
            open(&embedded, config.clone(), "node-a", 0).await.unwrap()
        else {
            panic!("embedded never defers")
        };
        assert_eq!(warm.mode(), WarmMode::Embedded);
        // Warm remembers node-a up to seq 3 once a batch is written.
        let events = (1..=3)
            .map(|seq| StoredEvent {
                event: strata_types::Event {
                    tenant: "t".into(),
                    stream: "s".into(),
                    key: "k".into(),
                    id: format!("e{seq}"),
                    ts: 1_000_000,
                    value: None,
                    attrs: Default::default(),
                    payload: None,
                },
                ingest_ts: 1_000_000,
                seq,
            })
            .collect();
        let batch = FlushBatch {
            first_seq: 1,
            last_seq: 3,
            events,
        };
        warm.write_batch("node-a", &batch).await.unwrap();
        drop(warm);
        // The same hot store (issued up to 3) is fine; a new one (issued 0) is not.
        assert!(matches!(
            open(&embedded, config.clone(), "node-a", 3).await.unwrap(),
            WarmStart::Connected(_)
        ));
        let err = open(&embedded, config, "node-a", 0).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::NodeReused {
                    warm_committed: 3,
                    hot_last_seq: 0,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("--node-id"), "{err}");
    }
}
