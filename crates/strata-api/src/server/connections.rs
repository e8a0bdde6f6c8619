//! Accepting connections under a cap, and serving REST connections with hyper's timeouts.
//!
//! Invariant: a listener holds at most `max_connections` sockets open. The accept loop takes a
//! connection slot *before* it accepts, so beyond the cap new connections wait in the kernel's
//! backlog (and are refused by it when that fills) instead of costing the node a descriptor;
//! an accept error (`EMFILE` from other descriptors, a reset before accept) is logged and
//! retried after a pause, never fatal. The slot is released when the socket is dropped.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, extract::Request};
use futures::{Stream, StreamExt};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};
use tower::ServiceExt;

use super::ConnectionLimits;

/// Pause after a failed accept, so a node out of descriptors does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// An accepted socket holding its listener's connection slot.
#[derive(Debug)]
pub(crate) struct Accepted {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
}

/// The sockets of `listener`, at most `limits.max_connections` open at once, with
/// `TCP_NODELAY` and TCP keep-alive set. The stream never yields an error and ends only when
/// the slots' semaphore is closed.
pub(crate) fn accept(
    listener: TcpListener,
    limits: &ConnectionLimits,
) -> impl Stream<Item = io::Result<Accepted>> + Send + 'static {
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(limits.tcp_keepalive);
    futures::stream::unfold((incoming, slots), |(mut incoming, slots)| async move {
        let slot = slots.clone().acquire_owned().await.ok()?;
        loop {
            match incoming.next().await? {
                Ok(io) => return Some((Ok(Accepted { io, _slot: slot }), (incoming, slots))),
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed; retrying");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            }
        }
    })
}

impl AsyncRead for Accepted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Accepted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Connected for Accepted {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// The hyper connection settings of the REST listener.
fn rest_builder(limits: &ConnectionLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // Also bounds how long an HTTP/1 connection may wait for its next request: hyper
        // starts the timer whenever it starts reading a request head.
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_concurrent_streams)
        .keep_alive_interval(limits.http2_keepalive_interval)
        .keep_alive_timeout(limits.http2_keepalive_timeout);
    builder
}

/// Serves `router` on the connections of `listener` until `stop` is cancelled, then closes
/// every connection gracefully (in-flight requests finish) and returns once all are closed.
pub(crate) async fn serve_rest(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let builder = rest_builder(&limits);
    let connections = TaskTracker::new();
    let incoming = accept(listener, &limits);
    futures::pin_mut!(incoming);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = incoming.next() => accepted,
        };
        let Some(Ok(accepted)) = accepted else { break };
        let (builder, router, stop) = (builder.clone(), router.clone(), stop.clone());
        let idle_timeout = limits.idle_timeout;
        connections.spawn(async move {
            serve_one(builder, accepted, router, idle_timeout, stop).await;
        });
    }
    connections.close();
    connections.wait().await;
}

/// Serves one connection: closes it gracefully once it has had no request in flight for
/// `idle_timeout`, or when `stop` is cancelled.
async fn serve_one(
    builder: auto::Builder<TokioExecutor>,
    accepted: Accepted,
    router: Router,
    idle_timeout: Duration,
    stop: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        tower::service_fn(move |request: Request<hyper::body::Incoming>| {
            let in_flight = activity.begin();
            let call = router.clone().oneshot(request.map(axum::body::Body::new));
            async move {
                let response = call.await;
                drop(in_flight);
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        })
    };
    let connection =
        builder.serve_connection(TokioIo::new(accepted), TowerToHyperService::new(service));
    futures::pin_mut!(connection);
    let mut closing = false;
    loop {
        let idle_check = tokio::time::sleep(activity.idle_check_in(idle_timeout));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "REST connection ended with an error");
                }
                return;
            }
            () = stop.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = idle_check, if !closing => {
                if activity.idle_for() >= Some(idle_timeout) {
                    tracing::debug!(?idle_timeout, "closing an idle REST connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// How long the connection has had no request in flight; `None` while one is.
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(
            self.last
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .elapsed(),
        )
    }

    /// When to look again whether the connection has been idle for `timeout`.
    fn idle_check_in(&self, timeout: Duration) -> Duration {
        match self.idle_for() {
            Some(idle) => timeout.saturating_sub(idle).max(Duration::from_millis(1)),
            None => timeout,
        }
    }
}

/// One request in flight; ending it restarts the idle clock.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
