//! The flusher: moves sealed hot data to the warm tier, exactly once.
//!
//! Every `flush_interval` it asks the hot tier for its oldest whole commits ingested more
//! than `hot_retention` ago ([`HotTier::pending_flush`]), writes them to warm in one batch
//! ([`WarmTier::write_batch`], which records the batch in its ledger in the same transaction)
//! and only then releases them from hot ([`HotTier::release`]). A crash between the warm
//! commit and the hot release replays the batch on restart, and warm skips the rows it
//! already holds, so nothing is stored twice and nothing is released before it is durable
//! in warm.
//!
//! When warm fails the flusher backs off (doubling up to `max_backoff`) and logs once per
//! change of state, not per retry; the hot tier keeps absorbing up to its disk budget, after
//! which ingest answers `Full` (503 + `Retry-After`). When warm returns, the backlog drains
//! batch after batch without waiting for the next tick.

use std::{sync::Arc, time::Duration};

use strata_core::{
    Result,
    hot::{FlushBatch, HotTier},
    warm::{WarmTier, WriteOutcome},
};
use strata_types::time::{duration_micros, now_micros};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::release_gate::ReleaseGate;

/// Batches committed to warm.
pub const FLUSH_BATCHES: &str = "strata_flush_batches_total";
/// Rows handed to warm (replayed rows warm already held included).
pub const FLUSH_ROWS: &str = "strata_flush_rows_total";
/// Approximate in-memory bytes of the rows handed to warm.
pub const FLUSH_BYTES: &str = "strata_flush_bytes_total";
/// Events per flushed batch.
pub const FLUSH_BATCH_EVENTS: &str = "strata_flush_batch_events";
/// Seconds to write one batch to warm and release it from hot.
pub const FLUSH_SECONDS: &str = "strata_flush_duration_seconds";
/// Failed flush attempts (`stage` = read | write | release).
pub const FLUSH_ERRORS: &str = "strata_flush_errors_total";
/// Age in seconds of the oldest event not yet released from hot (0 when hot is empty).
pub const FLUSH_LAG: &str = "strata_flush_lag_seconds";
/// Events in hot not yet released to warm.
pub const FLUSH_BACKLOG: &str = "strata_flush_backlog_events";
/// Warm rows removed by retention passes (whole dropped partitions may count as 0).
pub const WARM_RETENTION_ROWS: &str = "strata_warm_retention_rows_total";
/// Failed warm retention passes.
pub const WARM_RETENTION_ERRORS: &str = "strata_warm_retention_errors_total";

/// Registers descriptions for the flusher's metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(FLUSH_BATCHES, "Batches committed to the warm tier.");
    metrics::describe_counter!(FLUSH_ROWS, "Rows handed to the warm tier.");
    metrics::describe_counter!(
        FLUSH_BYTES,
        metrics::Unit::Bytes,
        "Approximate bytes of rows handed to the warm tier."
    );
    metrics::describe_histogram!(FLUSH_BATCH_EVENTS, "Events per flushed batch.");
    metrics::describe_histogram!(
        FLUSH_SECONDS,
        metrics::Unit::Seconds,
        "Time to write one batch to warm and release it from hot."
    );
    metrics::describe_counter!(FLUSH_ERRORS, "Failed flush attempts, by stage.");
    metrics::describe_gauge!(
        FLUSH_LAG,
        metrics::Unit::Seconds,
        "Age of the oldest event not yet released from hot."
    );
    metrics::describe_gauge!(FLUSH_BACKLOG, "Events in hot not yet released to warm.");
    metrics::describe_counter!(WARM_RETENTION_ROWS, "Warm rows removed by retention.");
    metrics::describe_counter!(WARM_RETENTION_ERRORS, "Failed warm retention passes.");
}

/// How the flusher runs.
#[derive(Debug, Clone)]
pub struct FlusherConfig {
    /// This node's id; stamped on every warm row and the warm ledger. It must identify the
    /// hot store: a recreated hot store (sequence numbers starting over) needs a new id.
    pub node: String,
    /// Events stay in hot at least this long after ingest (`--hot-retention`).
    pub hot_retention: Duration,
    /// How often to look for due events (`--flush-interval`).
    pub flush_interval: Duration,
    /// About this many events per warm batch (whole hot commits, so sometimes more).
    pub max_batch_events: usize,
    /// Longest wait between retries while warm fails.
    pub max_backoff: Duration,
    /// Most batches per pass before the loop checks for shutdown again.
    pub max_batches_per_pass: usize,
    /// Warm rows older than this are dropped (`--warm-retention`); `None` keeps everything.
    pub warm_retention: Option<Duration>,
    /// How often the retention pass runs (it also creates upcoming daily partitions on
    /// plain PostgreSQL).
    pub retention_interval: Duration,
}

impl Default for FlusherConfig {
    fn default() -> Self {
        Self {
            node: "node-0".into(),
            hot_retention: Duration::from_secs(15 * 60),
            flush_interval: Duration::from_secs(5),
            max_batch_events: 50_000,
            max_backoff: Duration::from_secs(30),
            max_batches_per_pass: 16,
            warm_retention: Some(Duration::from_secs(90 * 86_400)),
            retention_interval: Duration::from_secs(3600),
        }
    }
}

/// What one pass flushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Batches released from hot.
    pub batches: u64,
    /// Rows in them.
    pub rows: u64,
    /// Whether more was due when the pass stopped at `max_batches_per_pass`.
    pub more_due: bool,
}

/// Moves due hot events to warm. See the module docs.
#[derive(Debug, Clone)]
pub struct Flusher {
    hot: Arc<dyn HotTier>,
    warm: Arc<dyn WarmTier>,
    config: FlusherConfig,
    /// The store's gate, taken around hot releases so the write path's cross-tier
    /// deduplication never misses an event in flight between the tiers.
    gate: Option<Arc<ReleaseGate>>,
    /// The store's query cache, told about moved days and retention drops.
    cache: Option<Arc<crate::cache::QueryCache>>,
}

impl Flusher {
    /// A flusher from `hot` to `warm`.
    ///
    /// Without a [`crate::Store`], nothing deduplicates ingest against warm; a running
    /// service uses [`Flusher::for_store`].
    pub fn new(hot: Arc<dyn HotTier>, warm: Arc<dyn WarmTier>, config: FlusherConfig) -> Self {
        Self {
            hot,
            warm,
            config,
            gate: None,
            cache: None,
        }
    }

    /// A flusher for `store`'s tiers. The node id is the store's (`config.node` is
    /// overwritten), since reads and flushes must agree on it.
    pub fn for_store(store: &crate::Store, mut config: FlusherConfig) -> Self {
        config.node = store.node().to_owned();
        let gate = Arc::clone(store.release_gate());
        // From now on events can leave hot, so the store's write path starts checking warm
        // for old enough events.
        gate.set_hot_retention(config.hot_retention);
        // Late events must not go to warm for times this retention drops.
        store
            .late_writer()
            .set_warm_retention(config.warm_retention);
        Self {
            gate: Some(gate),
            cache: store.query_cache().cloned(),
            ..Self::new(Arc::clone(store.hot()), Arc::clone(store.warm()), config)
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FlusherConfig {
        &self.config
    }

    /// Flushes what is due now: up to `max_batches_per_pass` batches.
    pub async fn flush_due(&self) -> Result<FlushReport> {
        let mut report = FlushReport::default();
        let retention = duration_micros(self.config.hot_retention);
        for _ in 0..self.config.max_batches_per_pass.max(1) {
            let before = now_micros().saturating_sub(retention);
            let batch = self
                .hot
                .pending_flush(self.config.max_batch_events.max(1), before)
                .await
                .inspect_err(|_| error_metric("read"))?;
            let Some(batch) = batch else {
                return Ok(report);
            };
            report.rows += self.flush_one(&batch).await?;
            report.batches += 1;
        }
        report.more_due = true;
        Ok(report)
    }

    async fn flush_one(&self, batch: &FlushBatch) -> Result<u64> {
        let started = Instant::now();
        if let Some(oldest) = batch.events.iter().map(|e| e.ingest_ts).min() {
            metrics::gauge!(FLUSH_LAG).set(age_seconds(oldest));
        }
        let outcome = self
            .warm
            .write_batch(&self.config.node, batch)
            .await
            .inspect_err(|_| error_metric("write"))?;
        // Released only now that warm has committed the batch (or had it already).
        let gate = match &self.gate {
            Some(g) => Some(g.exclusive().await),
            None => None,
        };
        self.hot
            .release(batch.last_seq)
            .await
            .inspect_err(|_| error_metric("release"))?;
        drop(gate);
        self.note_moved(batch);
        let rows = batch.events.len() as u64;
        let bytes: usize = batch.events.iter().map(|e| e.event.approx_size()).sum();
        metrics::counter!(FLUSH_BATCHES).increment(1);
        metrics::counter!(FLUSH_ROWS).increment(rows);
        metrics::counter!(FLUSH_BYTES).increment(bytes as u64);
        metrics::histogram!(FLUSH_BATCH_EVENTS).record(rows as f64);
        metrics::histogram!(FLUSH_SECONDS).record(started.elapsed().as_secs_f64());
        tracing::debug!(
            first_seq = batch.first_seq,
            last_seq = batch.last_seq,
            rows,
            replay = matches!(outcome, WriteOutcome::AlreadyWritten),
            "flushed a batch to warm"
        );
        Ok(rows)
    }

    /// Drops warm rows older than `warm_retention` (if set); returns how many went.
    pub async fn enforce_retention(&self) -> Result<u64> {
        let Some(keep) = self.config.warm_retention else {
            return Ok(0);
        };
        let cutoff = now_micros().saturating_sub(duration_micros(keep));
        let removed = self
            .warm
            .drop_before(cutoff)
            .await
            .inspect_err(|_| metrics::counter!(WARM_RETENTION_ERRORS).increment(1))?;
        if let Some(cache) = &self.cache {
            cache.note_retention(cutoff);
        }
        metrics::counter!(WARM_RETENTION_ROWS).increment(removed);
        Ok(removed)
    }

    /// Tells the query cache which tenants' times the batch moved (answers do not change,
    /// so this only guards against a reader bug; days still open are skipped cheaply).
    fn note_moved(&self, batch: &FlushBatch) {
        let Some(cache) = &self.cache else {
            return;
        };
        let mut ranges: std::collections::HashMap<&str, (i64, i64)> =
            std::collections::HashMap::new();
        for e in &batch.events {
            let r = ranges
                .entry(&e.event.tenant)
                .or_insert((e.event.ts, e.event.ts));
            r.0 = r.0.min(e.event.ts);
            r.1 = r.1.max(e.event.ts);
        }
        let now = now_micros();
        for (tenant, (from, to)) in ranges {
            let range = strata_types::TimeRange {
                from,
                to: to.saturating_add(1),
            };
            cache.note_change(Some(tenant), range, now);
        }
    }

    /// Sets the backlog and lag gauges from the hot tier.
    async fn observe(&self) {
        let stats = self.hot.stats();
        metrics::gauge!(FLUSH_BACKLOG).set(stats.events as f64);
        if stats.events == 0 {
            metrics::gauge!(FLUSH_LAG).set(0.0);
            return;
        }
        if let Ok(Some(oldest)) = self.hot.pending_flush(1, i64::MAX).await
            && let Some(ts) = oldest.events.iter().map(|e| e.ingest_ts).min()
        {
            metrics::gauge!(FLUSH_LAG).set(age_seconds(ts));
        }
    }

    /// Runs until `shutdown` is cancelled, then flushes what is due one last time and
    /// returns. Warm failures never end the loop; they are retried with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        let interval = self.config.flush_interval.max(Duration::from_millis(1));
        let mut backoff = interval;
        let mut failing = false;
        let mut next = Instant::now() + interval;
        // The first retention pass runs soon after start, then every retention_interval.
        let mut next_retention = Instant::now() + interval;
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
            }
            match self.flush_due().await {
                Ok(report) => {
                    if failing {
                        tracing::info!(
                            "flushing to the warm tier works again; draining the backlog"
                        );
                        failing = false;
                    }
                    backoff = interval;
                    next = if report.more_due {
                        Instant::now()
                    } else {
                        Instant::now() + interval
                    };
                }
                Err(e) => {
                    if failing {
                        tracing::debug!(error = %e, "flush to warm still failing");
                    } else {
                        tracing::warn!(
                            error = %e,
                            "flushing to the warm tier failed; events stay in the hot tier and the flush is retried with backoff"
                        );
                        failing = true;
                    }
                    next = Instant::now() + backoff;
                    backoff = (backoff * 2).min(self.config.max_backoff.max(interval));
                }
            }
            self.observe().await;
            if Instant::now() >= next_retention {
                next_retention = Instant::now() + self.config.retention_interval;
                match self.enforce_retention().await {
                    Ok(removed) => tracing::debug!(removed, "warm retention pass done"),
                    Err(e) => {
                        tracing::warn!(error = %e, "warm retention pass failed; retried next interval")
                    }
                }
            }
        }
        // Shutdown: what is due now goes to warm before the hot tier closes. One attempt per
        // batch; if warm is down the events simply stay in hot for the next start.
        loop {
            match self.flush_due().await {
                Ok(report) if report.more_due => continue,
                Ok(report) => {
                    tracing::info!(
                        batches = report.batches,
                        rows = report.rows,
                        "final flush before shutdown done"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "final flush before shutdown failed; the events stay in the hot tier");
                    break;
                }
            }
        }
        self.observe().await;
    }
}

fn error_metric(stage: &'static str) {
    metrics::counter!(FLUSH_ERRORS, "stage" => stage).increment(1);
}

fn age_seconds(ingest_ts: i64) -> f64 {
    (now_micros().saturating_sub(ingest_ts)).max(0) as f64 / 1e6
}
