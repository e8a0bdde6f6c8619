//! `strata serve`: open the tiers, bind the APIs, run until a signal, shut down in order.
//!
//! Shutdown order matters for durability: the listeners stop taking requests first, requests
//! already inside finish (their commits complete and they get their answers), background
//! tasks stop, and only then does the store close, finishing any commit still in flight.
//! All of it is bounded by `--shutdown-grace`; what is cut short loses nothing acknowledged,
//! because an acknowledgement is only ever sent after a durable commit.

use std::{path::PathBuf, sync::Arc};

use strata_api::{ApiConfig, Server};
use strata_core::hot::HotTier;
use strata_hot::{HotConfig, HotStore};
use strata_tiering::Store;
use strata_warm::WarmConfig;
use tokio::time::Instant;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{error, info, warn};

use crate::{
    Error, Result,
    cli::{ApiArgs, HotArgs, ServeArgs},
    error::ShutdownCut,
    node,
    shutdown::Signals,
};

/// Name of the hot tier's redb file inside `--data-dir`.
pub const HOT_FILE: &str = "hot.redb";

impl ApiArgs {
    /// The API configuration these flags describe.
    pub fn to_config(&self) -> ApiConfig {
        ApiConfig {
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            max_concurrent_requests: self.max_concurrent_requests as usize,
            request_timeout: self.request_timeout,
        }
    }
}

impl HotArgs {
    /// The hot tier configuration these flags describe, for the redb file at `path`.
    pub fn to_config(&self, path: PathBuf) -> HotConfig {
        HotConfig {
            memory_budget: self.hot_memory,
            disk_budget: self.hot_disk,
            ..HotConfig::new(path)
        }
    }
}

/// Runs the server until SIGTERM/SIGINT and a graceful shutdown.
pub async fn run(args: ServeArgs) -> Result<()> {
    // Installed first so that a signal during a slow start (a large hot tier being opened)
    // still shuts down cleanly instead of killing the process mid-open.
    let signals = Signals::listen().map_err(Error::Signals)?;
    let metrics = strata_api::install_metrics_recorder()?;
    strata_tiering::describe_metrics();

    let store = open_store(&args).await?;
    let server = match Server::bind(args.api.to_config(), store.clone(), metrics).await {
        Ok(server) => server,
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

    // Every background task holds `stop` and is tracked, so shutdown can wait for all of
    // them before the store closes under them. `stop` is not the signal token itself:
    // `shut_down` cancels it after logging, so the log reads in the order things happen.
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut api = tracker.spawn(server.run(stop.clone()));
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
    }

    let deadline = Instant::now() + args.shutdown_grace;
    let api = api_running.then_some(api);
    let outcome = shut_down(
        &signals,
        deadline,
        args.shutdown_grace,
        &stop,
        api,
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

async fn open_store(args: &ServeArgs) -> Result<Store> {
    let dir = args.data_dir.clone();
    let path = dir.join(HOT_FILE);
    let config = args.hot.to_config(path.clone());
    info!(
        path = %path.display(),
        memory_budget = config.memory_budget,
        disk_budget = config.disk_budget,
        "opening the hot tier"
    );
    // Opening redb reads and may repair the file after a crash: blocking IO, so it runs
    // off the async workers.
    let blocking_dir = dir.clone();
    let (hot, node) = tokio::task::spawn_blocking(move || {
        let dir = blocking_dir;
        std::fs::create_dir_all(&dir).map_err(|source| Error::DataDir {
            path: dir.clone(),
            source,
        })?;
        let node = node::load_or_create(&dir, path.exists()).map_err(|source| Error::DataDir {
            path: dir.join(node::NODE_FILE),
            source,
        })?;
        let hot = HotStore::open(config).map_err(|source| Error::OpenHot { path, source })?;
        Ok::<_, Error>((hot, node))
    })
    .await
    .map_err(|source| Error::Task {
        task: "open hot tier",
        source,
    })??;
    info!(%node, "hot tier open");
    let hot: Arc<dyn HotTier> = Arc::new(hot);
    let warm = match strata_warm::open_warm("embedded", &WarmConfig::new(&dir)).await {
        Ok(warm) => warm,
        Err(source) => {
            if let Err(e) = hot.shutdown().await {
                warn!(error = %e, "closing the hot tier after the warm tier failed to open");
            }
            return Err(Error::OpenWarm { source });
        }
    };
    Ok(Store::new(hot, warm, node, args.limits.to_limits()))
}

/// Drains the APIs (`None` when they already ended) and background tasks, then closes the
/// store, all before `deadline`.
async fn shut_down(
    signals: &Signals,
    deadline: Instant,
    grace: std::time::Duration,
    stop: &CancellationToken,
    api: Option<tokio::task::JoinHandle<Result<(), strata_api::Error>>>,
    tracker: &TaskTracker,
    store: &Store,
) -> Result<()> {
    let cut = || async {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => ShutdownCut::GraceExpired(grace),
            () = signals.force.cancelled() => ShutdownCut::SecondSignal,
        }
    };

    info!("closing listeners and waiting for in-flight requests");
    stop.cancel();
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

    info!(tasks = tracker.len(), "waiting for background tasks");
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
