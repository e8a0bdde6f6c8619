//! `strata serve`: open the tiers, bind the APIs, run the flusher, run until a signal, shut
//! down in order.
//!
//! Shutdown order matters for durability: the listeners stop taking requests first, requests
//! already inside finish (their commits complete and they get their answers), then the Kafka
//! consumer (if any) stores its last batch and commits its offsets for the next owner, then the
//! exporter stops (mid-pass if need be; see [`run_exporter`] for why that is safe), then the
//! flusher is stopped and makes one last pass (what is due goes to warm), the warm connector
//! gives up, and only then does the store close, finishing any commit still in flight.
//! All of it is bounded by `--shutdown-grace`; what is cut short loses nothing acknowledged,
//! because an acknowledgement is only ever sent after a durable commit, and nothing leaves
//! the hot tier before warm has committed it.
//!
//! A warm tier that cannot be reached at start does not stop the start; see
//! [`strata_warm::connect`]
//! for that decision and for why `/readyz` does not follow warm.

use std::{sync::Arc, time::Duration};

use strata_api::Server;
use strata_core::hot::HotTier;
use strata_tiering::{Exporter, ExporterConfig, Flusher, ReplayLimits, Store};
use tokio::{sync::oneshot, time::Instant};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{error, info, warn};

mod args;

pub use args::{ApiArgs, FlushArgs, HotArgs, KafkaArgs, ReadArgs, ServeArgs};

use crate::{
    Error, Result,
    data_dir::{self, OpenMode},
    error::ShutdownCut,
    shutdown::Signals,
};
use strata_warm::connect::{self as warm, Connector, WarmStart};

/// Runs the server until SIGTERM/SIGINT and a graceful shutdown.
pub async fn run(args: ServeArgs) -> Result<()> {
    // Installed first so that a signal during a slow start (a large hot tier being opened)
    // still shuts down cleanly instead of killing the process mid-open.
    let signals = Signals::listen().map_err(Error::Signals)?;
    let metrics = strata_api::install_metrics_recorder()?;
    strata_tiering::describe_metrics();
    strata_tiering::flusher::describe_metrics();
    strata_tiering::exporter::describe_metrics();
    strata_hot::metrics::describe_metrics();
    warm::describe_metrics();
    strata_ingest::describe_metrics();

    let (store, connector) = open_store(&args).await?;
    // Built before the APIs serve: it tells the store's write path that events can now leave
    // hot, so from the first request on, retries of events an earlier run already flushed
    // are checked against warm.
    let flusher = Flusher::for_store(&store, args.flush.to_config());
    let exporter = args
        .runs_exporter(store.node())
        .then(|| {
            Exporter::for_store(
                &store,
                ExporterConfig {
                    export_after: args.cold.export_after,
                    interval: args.export_interval,
                    ..ExporterConfig::default()
                },
            )
        })
        .flatten();
    let server = match Server::bind(args.api.to_config(), store.clone(), metrics).await {
        Ok(server) => server
            .with_replay_limits(ReplayLimits::new(args.reads.replay_config()))
            .with_connection_limits(args.api.connections.to_limits()),
        Err(e) => {
            close_store(&store).await;
            return Err(e.into());
        }
    };
    info!(
        http_addr = %server.http_addr(),
        grpc_addr = %server.grpc_addr(),
        "listening"
    );

    // Every task is tracked, so shutdown can wait for all of them before the store closes
    // under them. The APIs and the back end have separate tokens because they stop at
    // different steps: listeners first, then the flusher (after the last request that could
    // add to what is due) and the warm connector. Neither is the signal token itself:
    // `shut_down` cancels them after logging, so the log reads in the order things happen.
    let stop = CancellationToken::new();
    let background = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut api = tracker.spawn(server.run(stop.clone()));
    info!(
        node = store.node(),
        hot_retention = %humantime::format_duration(args.flush.hot_retention),
        flush_interval = %humantime::format_duration(args.flush.flush_interval),
        max_batch_events = args.flush.flush_max_batch_events,
        warm_retention = %args
            .flush
            .warm_retention
            .0
            .map_or_else(|| "off".to_owned(), |d| humantime::format_duration(d).to_string()),
        "flusher started"
    );
    warn_if_writes_need_warm(&args);
    tracker.spawn(flusher.run(background.clone()));
    let export = CancellationToken::new();
    let exporter = exporter.map(|exporter| {
        info!(
            cold = %args.cold.url(&args.data_dir),
            export_after = %humantime::format_duration(args.cold.export_after),
            export_interval = %humantime::format_duration(args.export_interval),
            compaction_target_size = args.cold.compaction_target_size,
            "exporter started"
        );
        tracker.spawn(run_exporter(exporter, export.clone()))
    });
    // The connector reports an error that retrying cannot fix through `warm_failed`; it
    // drops the sender when it connects or stops, which disables that branch below.
    let (warm_failed_tx, mut warm_failed) = oneshot::channel::<Error>();
    if let Some(connector) = connector {
        let background = background.clone();
        tracker.spawn(async move {
            if let Err(e) = connector.run(background).await {
                let _ = warm_failed_tx.send(e.into());
            }
        });
    }
    // The Kafka consumer writes through the store (deduplicating across tiers like REST).
    // It has its own token because it stops at its own step: after the listeners, before the
    // flusher, so its last batch and its hand-over commit land while the store is fully up
    // and the flusher's final pass sees them.
    let ingest = CancellationToken::new();
    let (kafka_failed_tx, mut kafka_failed) = oneshot::channel::<Error>();
    let consumer = if let Some(config) = args.kafka.to_config() {
        info!(
            brokers = %config.brokers,
            topics = ?config.topics,
            group = %config.group,
            "starting the Kafka consumer"
        );
        let (store, ingest) = (store.clone(), ingest.clone());
        Some(tracker.spawn(async move {
            let limits = store.limits().clone();
            match strata_ingest::run_consumer(config, Arc::new(store), limits, ingest).await {
                Ok(report) => info!(?report, "Kafka consumer stopped"),
                Err(e) => {
                    let _ = kafka_failed_tx.send(Error::Kafka(e));
                }
            }
        }))
    } else {
        drop(kafka_failed_tx);
        None
    };
    tracker.close();

    let mut failure = None;
    let mut api_running = true;
    tokio::select! {
        () = signals.graceful.cancelled() => {}
        ended = &mut api => {
            // The APIs stopped on their own: that is a failure whatever they returned,
            // because nothing asked them to stop.
            let e = match ended {
                Ok(Ok(())) => Error::ApiStopped,
                Ok(Err(e)) => Error::Api(e),
                Err(source) => Error::Task { task: "api", source },
            };
            error!(error = %e, "the APIs stopped unexpectedly; shutting down");
            failure = Some(e);
            api_running = false;
        }
        Ok(e) = &mut kafka_failed => {
            error!(error = %e, "the Kafka consumer failed; shutting down");
            failure = Some(e);
        }
        Ok(e) = &mut warm_failed => {
            error!(error = %e, "the warm tier cannot be used; shutting down");
            failure = Some(e);
        }
    }

    let api = api_running.then_some(api);
    let outcome = shut_down(
        &signals,
        args.shutdown_grace,
        Tokens {
            api: &stop,
            ingest: &ingest,
            export: &export,
            background: &background,
        },
        Steps {
            api,
            consumer,
            exporter,
        },
        &tracker,
        &store,
    )
    .await;
    match (failure, outcome) {
        (Some(e), _) | (None, Err(e)) => Err(e),
        (None, Ok(())) => {
            info!("shutdown complete");
            Ok(())
        }
    }
}

/// Slack the write path adds to its duplicate-check horizon for clock steps
/// (`strata_tiering::release_gate`); mirrored here only to word the warning below.
const DEDUPE_CLOCK_SLACK: Duration = Duration::from_secs(60);

/// Writes of events whose `ts` is older than `now - hot_retention + max_future_skew + 1m`
/// ask warm whether an earlier copy was already flushed. With a hot retention at or below
/// `max_future_skew + 1m` that is every live write, so a warm outage refuses writes (503)
/// instead of letting the hot tier absorb them. Legitimate for tests and demos; an operator
/// should hear about it.
fn warn_if_writes_need_warm(args: &ServeArgs) {
    let skew: Duration = args.limits.max_future_skew.into();
    let hot_retention = args.flush.hot_retention;
    if hot_retention <= skew + DEDUPE_CLOCK_SLACK {
        warn!(
            hot_retention = %humantime::format_duration(hot_retention),
            max_future_skew = %humantime::format_duration(skew),
            "--hot-retention is not longer than --max-future-skew plus a minute: every write \
             checks the warm tier for an already flushed copy of its events, so while warm is \
             unreachable writes are refused (503) instead of being absorbed by the hot tier"
        );
    }
}

/// The tokens `shut_down` cancels, in this order.
struct Tokens<'a> {
    /// Stops the listeners.
    api: &'a CancellationToken,
    /// Stops the Kafka consumer (after it committed its hand-over).
    ingest: &'a CancellationToken,
    /// Stops the exporter, mid-pass if need be.
    export: &'a CancellationToken,
    /// Stops the flusher (after its final pass) and the warm connector.
    background: &'a CancellationToken,
}

/// The tasks `shut_down` stops one by one, in this order; `None` when not running.
struct Steps {
    /// The APIs (already ended on their own when `None`).
    api: Option<tokio::task::JoinHandle<Result<(), strata_api::Error>>>,
    /// The Kafka consumer.
    consumer: Option<tokio::task::JoinHandle<()>>,
    /// The exporter (no cold tier when `None`).
    exporter: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the hot tier, settles the node id and opens the warm tier; returns the store and,
/// when warm could not be reached yet, the connector that keeps trying.
async fn open_store(args: &ServeArgs) -> Result<(Store, Option<Connector>)> {
    let dir = args.data_dir.clone();
    let config = args.hot.to_config(data_dir::hot_path(&dir));
    info!(
        path = %config.path.display(),
        memory_budget = config.memory_budget,
        disk_budget = config.disk_budget,
        "opening the hot tier"
    );
    let (hot, node) =
        data_dir::open_hot(&dir, config, args.node_id.clone(), OpenMode::Create).await?;
    info!(%node, "hot tier open");
    let hot: Arc<dyn HotTier> = Arc::new(hot);

    let url = &args.warm.warm;
    info!(warm = %url, "opening the warm tier");
    let config = args.warm.to_config(&dir, args.warm_migrate);
    let (warm, connector) = match warm::open(url, config, &node, hot.stats().last_seq).await {
        Ok(WarmStart::Connected(warm)) => {
            info!(warm = %url, warm_mode = %warm.mode(), "warm tier ready");
            (warm, None)
        }
        Ok(WarmStart::Connecting(connector)) => (connector.warm(), Some(connector)),
        Err(e) => {
            if let Err(e) = hot.shutdown().await {
                warn!(error = %e, "closing the hot tier after the warm tier failed to open");
            }
            return Err(e.into());
        }
    };
    let cold = match args.cold.open(&dir).await {
        Ok(cold) => cold,
        Err(e) => {
            if let Err(e) = hot.shutdown().await {
                warn!(error = %e, "closing the hot tier after the cold tier failed to open");
            }
            return Err(e);
        }
    };
    let writes_cold = args.runs_exporter(&node);
    let store = Store::new(hot, warm.clone(), node, args.limits.to_limits()).with_config(
        args.reads
            .store_config(args.flush.warm_retention.0, writes_cold),
    );
    let store = match cold {
        // The warm backend is also the hand-off: the same connection pool serves both seams.
        Some(cold) => store.with_cold(cold, warm),
        None => store,
    };
    Ok((store, connector))
}

/// Runs the exporter until `stop`, and stops it at once when `stop` fires, even in the
/// middle of a pass.
///
/// Cutting a pass short is safe because an export or a compaction has exactly one commit
/// point, a single warm transaction that drops the exported rows and records the new
/// manifest version as live (compare-and-set on the previous version). Dropping the pass
/// before that transaction leaves the rows in warm and the files already written
/// unreferenced: queries read only the versions warm calls live, and the next export or
/// maintenance pass of that partition removes them. A transaction already submitted either
/// commits whole or not at all. Either way every event is counted once, from warm or from
/// cold. The exporter is stopped before the flusher's last pass because that pass only adds
/// rows to warm; the exporter does not have to see them, they go out with a later export.
async fn run_exporter(exporter: Exporter, stop: CancellationToken) {
    tokio::select! {
        biased;
        () = stop.cancelled() => info!("exporter stopped"),
        () = exporter.run(stop.clone()) => info!("exporter stopped"),
    }
}

/// Drains the APIs, stops the Kafka consumer, the exporter and the background tasks, then
/// closes the store, all within `grace` from now.
async fn shut_down(
    signals: &Signals,
    grace: std::time::Duration,
    tokens: Tokens<'_>,
    steps: Steps,
    tracker: &TaskTracker,
    store: &Store,
) -> Result<()> {
    let Steps {
        api,
        consumer,
        exporter,
    } = steps;
    let deadline = Instant::now() + grace;
    let cut = || async {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => ShutdownCut::GraceExpired(grace),
            () = signals.force.cancelled() => ShutdownCut::SecondSignal,
        }
    };

    info!("closing listeners and waiting for in-flight requests");
    tokens.api.cancel();
    let mut result = Ok(());
    if let Some(mut api) = api {
        tokio::select! {
            ended = &mut api => match ended {
                Ok(Ok(())) => info!("listeners closed; in-flight requests finished"),
                Ok(Err(e)) => {
                    error!(error = %e, "the APIs failed while draining");
                    result = Err(Error::Api(e));
                }
                Err(source) => result = Err(Error::Task { task: "api", source }),
            },
            reason = cut() => {
                warn!(%reason, "abandoning in-flight requests");
                api.abort();
                return Err(Error::ShutdownIncomplete { step: "draining requests", reason });
            }
        }
    }

    if let Some(mut consumer) = consumer {
        info!("stopping the Kafka consumer (storing its last batch, committing its offsets)");
        tokens.ingest.cancel();
        tokio::select! {
            ended = &mut consumer => {
                if let Err(source) = ended {
                    result = result.and(Err(Error::Task { task: "kafka consumer", source }));
                }
            }
            reason = cut() => {
                warn!(%reason, "abandoning the Kafka consumer");
                // Dropping its future stops its thread; what it had not stored is redelivered
                // from the offsets it did store.
                consumer.abort();
                return Err(Error::ShutdownIncomplete { step: "stopping the Kafka consumer", reason });
            }
        }
    }

    if let Some(exporter) = exporter {
        info!("stopping the exporter");
        tokens.export.cancel();
        tokio::select! {
            ended = exporter => {
                if let Err(source) = ended {
                    result = result.and(Err(Error::Task { task: "exporter", source }));
                }
            }
            reason = cut() => {
                warn!(%reason, "abandoning the exporter");
                return Err(Error::ShutdownIncomplete { step: "stopping the exporter", reason });
            }
        }
    }

    info!(
        tasks = tracker.len(),
        "stopping the flusher (final flush of what is due) and background tasks"
    );
    tokens.background.cancel();
    tokio::select! {
        () = tracker.wait() => info!("background tasks stopped"),
        reason = cut() => {
            warn!(%reason, "abandoning background tasks");
            return Err(Error::ShutdownIncomplete { step: "stopping background tasks", reason });
        }
    }

    info!("closing the store: finishing in-flight commits");
    tokio::select! {
        closed = store.shutdown() => match closed {
            Ok(()) => info!("store closed"),
            Err(e) => {
                error!(error = %e, "the store failed while closing");
                result = result.and(Err(Error::StoreShutdown(e)));
            }
        },
        reason = cut() => {
            warn!(%reason, "the store did not close in time");
            return Err(Error::ShutdownIncomplete { step: "closing the store", reason });
        }
    }
    result
}

/// Closes the store after a failed start; the failure that caused it is what gets reported.
async fn close_store(store: &Store) {
    if let Err(e) = store.shutdown().await {
        warn!(error = %e, "closing the hot tier after a failed start");
    }
}
