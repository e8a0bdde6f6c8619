//! The gRPC API (tonic): `strata.v1.Ingest`, `strata.v1.Query`, `strata.v1.Replay`,
//! `strata.v1.Archive`, the
//! standard health service and reflection (v1 and v1alpha, so `grpcurl list` works against
//! any client version).

mod archive;
mod convert;
mod ingest;
mod query;
mod replay;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use strata_proto::v1::{
    archive_server::ArchiveServer, ingest_server::IngestServer, query_server::QueryServer,
    replay_server::ReplayServer,
};
use strata_tiering::{ReplayLimits, Store};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::sync::CancellationToken;
use tonic::{server::NamedService, service::Routes};
use tonic_health::{ServingStatus, server::HealthReporter};
use tower::{ServiceBuilder, limit::GlobalConcurrencyLimitLayer};

use crate::{
    Error, Result,
    error::ApiError,
    metrics::record_grpc,
    server::{BodyBudget, ConnectionLimits, accept_connections},
};

/// The gRPC services, ready to serve.
pub(crate) struct GrpcApi {
    routes: Routes,
    health: GrpcHealth,
    limit: Arc<Semaphore>,
    connections: ConnectionLimits,
    budget: BodyBudget,
    max_message: usize,
}

impl GrpcApi {
    /// Builds every service over `store`. `limit` is shared with REST, and so are the
    /// replay slots in `replay` and the body `budget`.
    pub(crate) fn new(
        store: Store,
        limit: Arc<Semaphore>,
        timeout: Duration,
        replay: ReplayLimits,
        connections: ConnectionLimits,
        budget: BodyBudget,
    ) -> Result<Self> {
        let max_message = store.limits().max_body_bytes;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(strata_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let routes = Routes::new(health_service)
            .add_service(reflection().build_v1()?)
            .add_service(reflection().build_v1alpha()?)
            .add_service(
                IngestServer::new(ingest::IngestService::new(
                    store.clone(),
                    timeout,
                    connections.stream_idle_timeout,
                ))
                .max_decoding_message_size(max_message)
                .max_encoding_message_size(max_message),
            )
            .add_service(
                QueryServer::new(query::QueryService::new(store.clone(), timeout))
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(max_message),
            )
            .add_service(
                ArchiveServer::new(archive::ArchiveService::new(store.clone()))
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(replay::max_encoded_message(max_message)),
            )
            .add_service(
                ReplayServer::new(replay::ReplayService::new(store, replay))
                    .max_decoding_message_size(max_message)
                    .max_encoding_message_size(replay::max_encoded_message(max_message)),
            );
        Ok(Self {
            routes,
            health: GrpcHealth(reporter),
            limit,
            connections,
            budget,
            max_message,
        })
    }

    /// A handle on the health statuses.
    pub(crate) fn health(&self) -> GrpcHealth {
        self.health.clone()
    }

    /// Serves on `listener` until `stop` is cancelled, then drains in-flight calls.
    ///
    /// Every request body is counted against the node's body budget as it arrives; only the
    /// last `max_message` bytes of a call stay counted, since tonic holds at most one message
    /// being decoded.
    pub(crate) async fn serve(self, listener: TcpListener, stop: CancellationToken) -> Result<()> {
        let limits = self.connections;
        let incoming = accept_connections(listener, &limits);
        let (budget, window) = (self.budget, self.max_message.saturating_add(FRAME_SLACK));
        let meter = move |request: http::Request<tonic::body::Body>| {
            let budget = budget.clone();
            request.map(|body| match budget.try_reserve(0) {
                Some(reservation) => {
                    tonic::body::Body::new(budget.meter(body, reservation, Some(window)))
                }
                None => body,
            })
        };
        tonic::transport::Server::builder()
            .max_concurrent_streams(Some(limits.http2_max_concurrent_streams))
            .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
            .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
            .layer(
                ServiceBuilder::new()
                    .load_shed()
                    .layer(GlobalConcurrencyLimitLayer::with_semaphore(self.limit))
                    .map_request(meter),
            )
            .add_routes(self.routes)
            .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
            .await
            .map_err(|e| Error::Serve {
                api: "gRPC",
                source: e.into(),
            })
    }
}

/// Bytes of a gRPC call counted beyond its largest message: the 5-byte message header and an
/// HTTP/2 frame's worth of the next message, which tonic may hold while it assembles one.
const FRAME_SLACK: usize = 16 * 1024 + 5;

/// The statuses the standard health service reports.
#[derive(Debug, Clone)]
pub(crate) struct GrpcHealth(HealthReporter);

impl GrpcHealth {
    /// Reports every service, and the server as a whole (the empty name), as serving or not.
    pub(crate) async fn set_serving(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in [
            "",
            <IngestServer<ingest::IngestService> as NamedService>::NAME,
            <QueryServer<query::QueryService> as NamedService>::NAME,
            <ReplayServer<replay::ReplayService> as NamedService>::NAME,
            <ArchiveServer<archive::ArchiveService> as NamedService>::NAME,
        ] {
            self.0.set_service_status(name, status).await;
        }
    }
}

/// Runs one call (under `timeout`, when given), maps its error to a status and records its
/// metrics.
async fn call<T, E: Into<tonic::Status>>(
    method: &'static str,
    timeout: Option<Duration>,
    work: impl Future<Output = Result<T, E>>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let started = Instant::now();
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, work).await {
            Ok(outcome) => outcome.map_err(Into::into),
            Err(_) => Err(ApiError::timeout(limit).into()),
        },
        None => work.await.map_err(Into::into),
    };
    let result = outcome.map(tonic::Response::new);
    record_grpc(
        method,
        started,
        result
            .as_ref()
            .map_or_else(tonic::Status::code, |_| tonic::Code::Ok),
    );
    result
}
