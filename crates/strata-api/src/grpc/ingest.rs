//! `strata.v1.Ingest`.

use std::time::Duration;

use strata_proto::v1::{self as pb, ingest_server::Ingest};
use strata_tiering::{IngestReport, Store, metrics_names::INGEST_BATCHES_REFUSED};
use strata_types::{
    Rejection,
    decode::{BatchError, DecodedBatch},
    time::now_micros,
    validate::validate_batch,
};
use tonic::{Request, Response, Status, Streaming};

use super::{
    call,
    convert::{event_from_proto, rejection_to_proto},
};
use crate::error::{ApiError, ErrorKind};

/// The ingest service over the store.
#[derive(Debug, Clone)]
pub(crate) struct IngestService {
    store: Store,
    timeout: Duration,
    /// Longest wait for the next message of a `WriteStream`.
    stream_idle_timeout: Duration,
}

impl IngestService {
    pub(crate) fn new(store: Store, timeout: Duration, stream_idle_timeout: Duration) -> Self {
        Self {
            store,
            timeout,
            stream_idle_timeout,
        }
    }

    /// Converts and validates a message's events with the store's limits, exactly as the
    /// REST decoder does for JSON.
    fn decode(&self, events: Vec<pb::Event>) -> Result<DecodedBatch, ApiError> {
        let depth = self.store.limits().max_payload_depth;
        let events = events
            .into_iter()
            .map(|e| event_from_proto(e, depth))
            .collect();
        validate_batch(events, self.store.limits(), now_micros()).map_err(|e| {
            let reason = match e {
                BatchError::Unparseable { .. } => "unparseable",
                BatchError::Empty => "empty",
                BatchError::TooManyEvents { .. } => "too_many",
            };
            metrics::counter!(INGEST_BATCHES_REFUSED, "reason" => reason).increment(1);
            ApiError::from(e)
        })
    }
}

/// Totals of a `WriteStream`, with a bounded list of rejections.
#[derive(Debug, Default)]
struct StreamSummary {
    events_seen: usize,
    accepted: u64,
    duplicates: u64,
    /// Rejections with their index across the whole stream.
    rejected: Vec<Rejection>,
    omitted: u64,
}

impl StreamSummary {
    fn add(&mut self, report: IngestReport, events_in_message: usize, max_listed: usize) {
        self.accepted += report.accepted as u64;
        self.duplicates += report.duplicates as u64;
        for mut r in report.rejected {
            if self.rejected.len() < max_listed {
                r.index = r.index.saturating_add(self.events_seen);
                self.rejected.push(r);
            } else {
                self.omitted += 1;
            }
        }
        self.events_seen += events_in_message;
    }
}

/// A `WriteStream` that sent nothing for `limit`; what its earlier messages stored stays.
fn stream_idle(limit: Duration) -> ApiError {
    ApiError::new(
        ErrorKind::Timeout,
        format!(
            "no message for {}; the stream was ended (events of earlier messages were stored; retrying them with the same ids is safe)",
            humantime::format_duration(limit)
        ),
    )
}

#[tonic::async_trait]
impl Ingest for IngestService {
    #[tracing::instrument(skip_all)]
    async fn write(
        &self,
        request: Request<pb::WriteRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        call("Write", Some(self.timeout), async {
            let batch = self.decode(request.into_inner().events)?;
            // Every event rejected is `Error::Rejected`: `INVALID_ARGUMENT`, `invalid_events`.
            let report = self.store.ingest(batch).await?;
            Ok::<_, ApiError>(pb::WriteResponse {
                accepted: report.accepted as u64,
                duplicates: report.duplicates as u64,
                rejected: report
                    .rejected
                    .into_iter()
                    .map(|r| rejection_to_proto(r, 0))
                    .collect(),
                rejections_omitted: 0,
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn write_stream(
        &self,
        request: Request<Streaming<pb::WriteRequest>>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        // No overall deadline: a bulk load may stream for long. Each wait for a message (by
        // the stream idle timeout) and each durable write (by the request timeout) is bounded
        // instead, so a stalled client cannot pin a request permit: ending the call returns it.
        call("WriteStream", None, async {
            let mut stream = request.into_inner();
            let max_listed = self.store.limits().max_batch_events;
            let mut summary = StreamSummary::default();
            loop {
                let message = tokio::time::timeout(self.stream_idle_timeout, stream.message())
                    .await
                    .map_err(|_| Status::from(stream_idle(self.stream_idle_timeout)))??;
                let Some(message) = message else { break };
                if message.events.is_empty() {
                    continue;
                }
                let count = message.events.len();
                let batch = self.decode(message.events)?;
                let stored = tokio::time::timeout(self.timeout, self.store.ingest(batch))
                    .await
                    .map_err(|_| Status::from(ApiError::timeout(self.timeout)))?;
                let report = match stored {
                    Ok(report) => report,
                    // One message wholly rejected does not fail the stream: other messages
                    // may have stored events. It counts like a report with nothing accepted.
                    Err(strata_tiering::Error::Rejected(rejected)) => IngestReport {
                        rejected,
                        ..IngestReport::default()
                    },
                    Err(e) => return Err(ApiError::from(e).into()),
                };
                summary.add(report, count, max_listed);
            }
            if summary.events_seen == 0 {
                return Err(ApiError::from(BatchError::Empty).into());
            }
            // The stream as a whole stored nothing: refused like a single batch would be.
            if summary.accepted == 0 {
                let rejected = strata_tiering::Error::Rejected(summary.rejected);
                return Err(ApiError::from(rejected).into());
            }
            Ok::<_, Status>(pb::WriteResponse {
                accepted: summary.accepted,
                duplicates: summary.duplicates,
                rejected: summary
                    .rejected
                    .into_iter()
                    .map(|r| rejection_to_proto(r, 0))
                    .collect(),
                rejections_omitted: summary.omitted,
            })
        })
        .await
    }
}
