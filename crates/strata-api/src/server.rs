//! Binding and running both APIs with one shutdown, under the connection and memory limits
//! of [`ConnectionLimits`].

mod body_budget;
mod connections;

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use metrics_exporter_prometheus::PrometheusHandle;
use strata_tiering::{ReplayLimits, Store};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;

pub(crate) use self::{
    body_budget::{BodyBudget, body_budget_exhausted},
    connections::accept as accept_connections,
};
use crate::{
    Error, Result,
    grpc::GrpcApi,
    rest::{self, AppState},
};

/// Default REST address (DESIGN.md).
pub const DEFAULT_HTTP_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
/// Default gRPC address (DESIGN.md).
pub const DEFAULT_GRPC_ADDR: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 50051));

/// Where and how the APIs listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// REST listener (port 0 picks a free port).
    pub http_addr: SocketAddr,
    /// gRPC listener (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// Requests served at once across REST and gRPC; more are refused at once (REST `503
    /// overloaded`, gRPC `RESOURCE_EXHAUSTED`) rather than queued.
    pub max_concurrent_requests: usize,
    /// Longest a request may take (for gRPC `WriteStream`: longest wait for, and handling
    /// of, each message).
    pub request_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            http_addr: DEFAULT_HTTP_ADDR,
            grpc_addr: DEFAULT_GRPC_ADDR,
            max_concurrent_requests: 1024,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// What one client or many together may hold open: connections, time, streams and body
/// bytes. Each listener applies them on its own, except the body budget, which is one for the
/// node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections per listener; beyond it new connections wait in the kernel's backlog
    /// until one closes (the node never runs out of descriptors because of clients).
    pub max_connections: usize,
    /// Longest a client may take to send a REST request's headers (HTTP/1); also how long an
    /// HTTP/1 keep-alive connection may wait for its next request.
    pub header_read_timeout: Duration,
    /// A REST connection with no request in flight for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// Streams (requests) at once on one HTTP/2 connection, REST and gRPC.
    pub http2_max_concurrent_streams: u32,
    /// How often an HTTP/2 connection (REST and gRPC) is pinged to see that the peer is alive.
    pub http2_keepalive_interval: Duration,
    /// How long an HTTP/2 ping may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// TCP keep-alive idle time on accepted sockets (`None`: off).
    pub tcp_keepalive: Option<Duration>,
    /// Longest wait for the next message of a client-streaming RPC (`Ingest.WriteStream`);
    /// past it the call ends with `DEADLINE_EXCEEDED` and its request permit returns.
    pub stream_idle_timeout: Duration,
    /// Request body bytes held in memory at once across REST and gRPC; a body beyond it is
    /// refused (REST `503 overloaded` with `Retry-After`, gRPC `RESOURCE_EXHAUSTED`).
    pub max_inflight_body_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            http2_max_concurrent_streams: 256,
            http2_keepalive_interval: Duration::from_secs(30),
            http2_keepalive_timeout: Duration::from_secs(10),
            tcp_keepalive: Some(Duration::from_secs(60)),
            stream_idle_timeout: Duration::from_secs(30),
            max_inflight_body_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Whether the node takes traffic (`/readyz`, gRPC health). Clones share the flag.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// A flag that starts not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag.
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Reads the flag.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A semaphore size from the configured limit (at least one request; at most what tokio's
/// semaphore can count).
pub(crate) fn permits(max_concurrent_requests: usize) -> usize {
    max_concurrent_requests.clamp(1, Semaphore::MAX_PERMITS)
}

/// Added to the request timeout to bound how long shutdown waits for in-flight requests.
const SHUTDOWN_GRACE_EXTRA: Duration = Duration::from_secs(5);

/// How often the Prometheus recorder's histograms are maintained.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Both API servers, bound and ready to run.
#[derive(Debug)]
pub struct Server {
    config: ApiConfig,
    store: Store,
    metrics: PrometheusHandle,
    http: TcpListener,
    grpc: TcpListener,
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    replay: ReplayLimits,
    connections: ConnectionLimits,
}

impl Server {
    /// Binds both listeners (port 0 allowed) without serving yet.
    pub async fn bind(config: ApiConfig, store: Store, metrics: PrometheusHandle) -> Result<Self> {
        let bind = |api: &'static str, addr: SocketAddr| async move {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { api, addr, source })?;
            let local =
                listener
                    .local_addr()
                    .map_err(|source| Error::Bind { api, addr, source })?;
            Ok::<_, Error>((listener, local))
        };
        let (http, http_addr) = bind("REST", config.http_addr).await?;
        let (grpc, grpc_addr) = bind("gRPC", config.grpc_addr).await?;
        Ok(Self {
            config,
            store,
            metrics,
            http,
            grpc,
            http_addr,
            grpc_addr,
            replay: ReplayLimits::default(),
            connections: ConnectionLimits::default(),
        })
    }

    /// The same server with `limits` on connections, streams and body bytes
    /// ([`ConnectionLimits::default`] otherwise).
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.connections = limits;
        self
    }

    /// The same server with `replay` as the slots and rate limits of replays over both
    /// APIs ([`ReplayLimits::default`] otherwise).
    pub fn with_replay_limits(mut self, replay: ReplayLimits) -> Self {
        self.replay = replay;
        self
    }

    /// The bound REST address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets in-flight requests
    /// finish, and returns.
    ///
    /// On cancellation `/readyz` turns `503` and gRPC health `NOT_SERVING` first. If either
    /// server fails, the other is stopped too and the error returned. The store is not shut
    /// down here: the caller does that once this returns, so no request is cut off mid-write.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        let Self {
            config,
            store,
            metrics,
            http,
            grpc,
            http_addr,
            grpc_addr,
            replay,
            connections: conn_limits,
        } = self;
        // A child token, so a failing server can stop the other without cancelling the
        // caller's token.
        let stop = shutdown.child_token();
        let readiness = Readiness::new();
        let limit = Arc::new(Semaphore::new(permits(config.max_concurrent_requests)));
        let body_budget = BodyBudget::new(conn_limits.max_inflight_body_bytes);

        let router = rest::router(
            AppState {
                store: store.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                replay: replay.clone(),
            },
            limit.clone(),
            config.request_timeout,
            body_budget.clone(),
        );
        let grpc_api = GrpcApi::new(
            store,
            limit,
            config.request_timeout,
            replay,
            conn_limits.clone(),
            body_budget,
        )?;
        let health = grpc_api.health();
        health.set_serving(true).await;
        readiness.set_ready(true);
        tracing::info!(%http_addr, %grpc_addr, "serving");

        let http_server = {
            let stop = stop.clone();
            async move {
                connections::serve_rest(http, router, conn_limits, stop.clone()).await;
                stop.cancel();
                Ok::<_, Error>(())
            }
        };
        let grpc_server = {
            let stop = stop.clone();
            async move {
                let result = grpc_api.serve(grpc, stop.clone()).await;
                stop.cancel();
                result
            }
        };
        let on_stop = {
            let stop = stop.clone();
            async move {
                stop.cancelled().await;
                readiness.set_ready(false);
                health.set_serving(false).await;
                tracing::info!("shutting down: refusing new requests, finishing in-flight ones");
            }
        };
        let upkeep = {
            let stop = stop.clone();
            async move {
                let mut tick = tokio::time::interval(METRICS_UPKEEP_EVERY);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = tick.tick() => metrics.run_upkeep(),
                    }
                }
            }
        };
        // Requests are bounded by the request timeout, but a client can hold a stream open
        // (gRPC health `Watch`, a busy `WriteStream`); past the grace period we return anyway
        // so shutdown cannot hang on a client.
        let grace = config.request_timeout + SHUTDOWN_GRACE_EXTRA;
        let all = async { tokio::join!(http_server, grpc_server, on_stop, upkeep) };
        let drain_deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let (http_result, grpc_result) = tokio::select! {
            (h, g, (), ()) = all => (h, g),
            () = drain_deadline => {
                tracing::warn!(?grace, "in-flight requests did not finish within the grace period");
                (Ok(()), Ok(()))
            }
        };
        tracing::info!("API servers stopped");
        http_result.and(grpc_result)
    }
}
