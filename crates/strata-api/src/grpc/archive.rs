//! `strata.v1.Archive`: the compliance archive over gRPC, with the same validation and
//! errors as REST `/v1/archive/*` (the checks live in `rest::archive`).

use std::{pin::Pin, time::Instant};

use futures::{Stream, StreamExt, future, stream};
use strata_core::cold::{PartitionInfo, VerifyReport};
use strata_proto::v1::{self as pb, archive_server::Archive};
use strata_tiering::Store;
use tonic::{Request, Response, Status};

use super::{
    call,
    convert::{micros_to_timestamp, stored_to_proto, timestamp_to_micros},
};
use crate::{
    error::ApiError,
    http::{IssueBody, VerifyBody},
    metrics::record_grpc,
    rest::archive::{read_request, require_cold, set_legal_hold, sorted_partitions, tenant_of},
};

/// Most events per `Read` message.
const BATCH_EVENTS: usize = 500;
/// A `Read` message is closed once its events reach about this many bytes, so a batch of
/// large payloads stays far below the encoding limit (see `replay::max_encoded_message`).
const BATCH_BYTES: usize = 1024 * 1024;

/// The archive service over the store.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveService {
    store: Store,
}

impl ArchiveService {
    pub(crate) fn new(store: Store) -> Self {
        Self { store }
    }
}

fn time_param(t: Option<&prost_types::Timestamp>, field: &str) -> Result<String, ApiError> {
    let t = t.ok_or_else(|| ApiError::missing(field))?;
    timestamp_to_micros(t)
        .map(|m| m.to_string())
        .map_err(|reason| ApiError::invalid(field, reason))
}

/// The report as the gRPC message: the REST body ([`VerifyBody::from`], the one reading of
/// a report) field for field, destructured so a field added to either side fails to compile
/// here until it is mapped.
fn report_to_proto(r: VerifyReport) -> pb::VerifyArchiveResponse {
    let VerifyBody {
        tenant,
        ok,
        partitions,
        manifests,
        files_checked,
        bytes_checked,
        altered,
        missing,
        extra,
        chain_breaks,
        superseded,
    } = r.into();
    let issues = |list: Vec<IssueBody>| {
        list.into_iter()
            .map(|IssueBody { key, detail }| pb::VerifyIssue { key, detail })
            .collect()
    };
    pb::VerifyArchiveResponse {
        ok,
        tenant,
        partitions,
        manifests,
        files_checked,
        bytes_checked,
        altered: issues(altered),
        missing: issues(missing),
        extra: issues(extra),
        chain_breaks: issues(chain_breaks),
        superseded: issues(superseded),
    }
}

/// A partition as the gRPC message: the same members as REST's `PartitionBody`, times as
/// protobuf timestamps rather than RFC 3339 strings. Destructured, so a member added to
/// [`PartitionInfo`] fails to compile here until it is mapped.
fn partition_to_proto(p: PartitionInfo) -> pb::PartitionInfo {
    let PartitionInfo {
        partition,
        version,
        files,
        rows,
        bytes,
        min_ts,
        max_ts,
        legal_hold,
    } = p;
    pb::PartitionInfo {
        date: partition.date(),
        stream: partition.stream,
        version,
        files,
        rows,
        bytes,
        min_ts: Some(micros_to_timestamp(min_ts)),
        max_ts: Some(micros_to_timestamp(max_ts)),
        legal_hold,
    }
}

/// The `Read` response stream type.
type ReadResponses = Pin<Box<dyn Stream<Item = Result<pb::ReadArchiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Archive for ArchiveService {
    type ReadStream = ReadResponses;

    #[tracing::instrument(skip_all)]
    async fn list(
        &self,
        request: Request<pb::ListPartitionsRequest>,
    ) -> Result<Response<pb::ListPartitionsResponse>, Status> {
        call("Archive.List", None, async {
            require_cold(&self.store)?;
            let tenant = tenant_of(Some(&request.get_ref().tenant))?;
            let partitions = sorted_partitions(&self.store, tenant)
                .await?
                .into_iter()
                .map(partition_to_proto)
                .collect();
            Ok::<_, ApiError>(pb::ListPartitionsResponse { partitions })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn read(
        &self,
        request: Request<pb::ReadArchiveRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let started = Instant::now();
        let opened = async {
            require_cold(&self.store)?;
            let r = request.get_ref();
            if r.tenant.is_empty() {
                return Err(ApiError::missing("tenant"));
            }
            let read = read_request(
                &r.tenant,
                &time_param(r.from.as_ref(), "from")?,
                &time_param(r.to.as_ref(), "to")?,
                r.stream.as_deref(),
            )?;
            Ok(self
                .store
                .archive_read(&read.tenant, read.range, read.stream.as_deref())
                .await?)
        }
        .await;
        let events = match opened {
            Ok(events) => events,
            Err(e) => {
                let status = Status::from(e);
                record_grpc("Archive.Read", started, status.code());
                return Err(status);
            }
        };
        record_grpc("Archive.Read", started, tonic::Code::Ok);
        // Nothing after the first error: it ends the call with its status.
        let events = events.scan(false, |failed, r| {
            let item = if *failed {
                None
            } else {
                *failed = r.is_err();
                Some(r)
            };
            future::ready(item)
        });
        let batches = events.ready_chunks(BATCH_EVENTS).flat_map(|chunk| {
            let mut out = Vec::with_capacity(2);
            let mut batch = pb::ReadArchiveResponse::default();
            let mut bytes = 0;
            for item in chunk {
                match item {
                    Ok(e) => {
                        bytes += e.event.approx_size();
                        batch.events.push(stored_to_proto(e));
                        if bytes >= BATCH_BYTES {
                            out.push(Ok(std::mem::take(&mut batch)));
                            bytes = 0;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "archive read broke off");
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

    #[tracing::instrument(skip_all)]
    async fn verify(
        &self,
        request: Request<pb::VerifyArchiveRequest>,
    ) -> Result<Response<pb::VerifyArchiveResponse>, Status> {
        call("Archive.Verify", None, async {
            require_cold(&self.store)?;
            let tenant = tenant_of(Some(&request.get_ref().tenant))?;
            let report = self.store.archive_verify(tenant, None).await?;
            Ok::<_, ApiError>(report_to_proto(report))
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn set_legal_hold(
        &self,
        request: Request<pb::SetLegalHoldRequest>,
    ) -> Result<Response<pb::SetLegalHoldResponse>, Status> {
        call("Archive.SetLegalHold", None, async {
            require_cold(&self.store)?;
            let r = request.get_ref();
            let objects = set_legal_hold(
                &self.store,
                Some(&r.tenant),
                Some(&r.stream),
                Some(&r.date),
                r.on,
            )
            .await?;
            Ok::<_, ApiError>(pb::SetLegalHoldResponse { objects })
        })
        .await
    }
}
