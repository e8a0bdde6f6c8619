//! `strata.v1.Replay`: ordered replay as server streaming, in batches.
//!
//! Flow control is the store's: a replay reads only a few events ahead of the batches the
//! client has taken, and ends with `UNAVAILABLE` (resume from the last cursor) when the client
//! takes nothing for the replay idle timeout, freeing its slot.

use std::{pin::Pin, time::Instant};

use futures::{Stream, StreamExt, stream};
use strata_proto::v1::{self as pb, replay_server::Replay};
use strata_tiering::{ReplayLimits, ReplayParams, ReplayRequest, Store};
use tonic::{Request, Response, Status};

use super::convert::{stored_to_proto, timestamp_to_micros};
use crate::{error::ApiError, metrics::record_grpc};

/// Most events per response message.
const BATCH_EVENTS: usize = 500;
/// A message is closed once its events reach about this many bytes.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The largest message the service sends: a full batch plus one event of at most
/// `max_event` bytes (an event is never larger than the request body limit).
pub(crate) fn max_encoded_message(max_event: usize) -> usize {
    max_event.saturating_mul(2).saturating_add(BATCH_BYTES)
}

/// The replay service over the store.
#[derive(Debug, Clone)]
pub(crate) struct ReplayService {
    store: Store,
    limits: ReplayLimits,
}

impl ReplayService {
    pub(crate) fn new(store: Store, limits: ReplayLimits) -> Self {
        Self { store, limits }
    }
}

/// A required timestamp as the epoch-micros text `ReplayRequest::from_params` parses, so
/// both APIs go through the same validation.
fn time_param(t: Option<&prost_types::Timestamp>, field: &str) -> Result<String, ApiError> {
    let t = t.ok_or_else(|| ApiError::missing(field))?;
    timestamp_to_micros(t)
        .map(|m| m.to_string())
        .map_err(|reason| ApiError::invalid(field, reason))
}

fn request_of(r: &pb::ReplayRequest) -> Result<ReplayRequest, ApiError> {
    if r.tenant.is_empty() {
        return Err(ApiError::missing("tenant"));
    }
    let from = time_param(r.from.as_ref(), "from")?;
    let to = time_param(r.to.as_ref(), "to")?;
    let max_rate = r.max_rate.map(|n| n.to_string());
    Ok(ReplayRequest::from_params(&ReplayParams {
        tenant: &r.tenant,
        from: &from,
        to: &to,
        streams: r.streams.iter().map(String::as_str).collect(),
        key: r.key.as_deref(),
        filter: Some(&r.filter),
        cursor: Some(&r.cursor),
        max_rate: max_rate.as_deref(),
    })?)
}

/// The response stream type.
type ReplayResponses = Pin<Box<dyn Stream<Item = Result<pb::ReplayResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Replay for ReplayService {
    type ReplayStream = ReplayResponses;

    #[tracing::instrument(skip_all)]
    async fn replay(
        &self,
        request: Request<pb::ReplayRequest>,
    ) -> Result<Response<Self::ReplayStream>, Status> {
        let started = Instant::now();
        let request = match request_of(request.get_ref()) {
            Ok(r) => r,
            Err(e) => {
                let status = Status::from(e);
                record_grpc("Replay", started, status.code());
                return Err(status);
            }
        };
        let mut events = self.store.replay(request, &self.limits);
        // Like REST: wait for the first event so a replay that cannot start fails with a
        // status rather than an empty stream and a trailing error.
        let first = match events.next().await {
            Some(Ok(item)) => Some(item),
            Some(Err(e)) => {
                let status = Status::from(ApiError::from(e));
                record_grpc("Replay", started, status.code());
                return Err(status);
            }
            None => None,
        };
        record_grpc("Replay", started, tonic::Code::Ok);
        let batches = stream::iter(first.map(Ok))
            .chain(events)
            .ready_chunks(BATCH_EVENTS)
            .flat_map(|chunk| {
                let mut out = Vec::with_capacity(2);
                let mut batch = pb::ReplayResponse::default();
                let mut bytes = 0;
                for item in chunk {
                    match item {
                        Ok(item) => {
                            bytes += item.event.event.approx_size();
                            batch.cursor = item.cursor.encode();
                            batch.events.push(stored_to_proto(item.event));
                            if bytes >= BATCH_BYTES {
                                out.push(Ok(std::mem::take(&mut batch)));
                                bytes = 0;
                            }
                        }
                        Err(e) => {
                            // Events before the failure go out first, then the status ends
                            // the stream; the client resumes from the last cursor it got.
                            if !batch.events.is_empty() {
                                out.push(Ok(std::mem::take(&mut batch)));
                            }
                            out.push(Err(Status::from(ApiError::from(e))));
                            return stream::iter(out);
                        }
                    }
                }
                if !batch.events.is_empty() {
                    out.push(Ok(batch));
                }
                stream::iter(out)
            });
        Ok(Response::new(Box::pin(batches)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_name_their_field() {
        let t = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let ok = pb::ReplayRequest {
            tenant: "acme".into(),
            from: t(0),
            to: t(10),
            ..Default::default()
        };
        assert!(request_of(&ok).is_ok());
        for (field, r) in [
            (
                "tenant",
                pb::ReplayRequest {
                    tenant: String::new(),
                    ..ok.clone()
                },
            ),
            (
                "from",
                pb::ReplayRequest {
                    from: None,
                    ..ok.clone()
                },
            ),
            (
                "to",
                pb::ReplayRequest {
                    to: t(0),
                    ..ok.clone()
                },
            ),
            (
                "cursor",
                pb::ReplayRequest {
                    cursor: "not a cursor".into(),
                    ..ok.clone()
                },
            ),
            (
                "max_rate",
                pb::ReplayRequest {
                    max_rate: Some(0),
                    ..ok.clone()
                },
            ),
            (
                "stream",
                pb::ReplayRequest {
                    streams: vec!["Bad".into()],
                    ..ok.clone()
                },
            ),
        ] {
            assert_eq!(request_of(&r).unwrap_err().field(), Some(field));
        }
    }
}
