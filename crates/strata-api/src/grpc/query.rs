//! `strata.v1.Query`.

use std::time::Duration;

use strata_proto::v1::{self as pb, query_server::Query};
use strata_tiering::Store;
use strata_types::{AggregateQuery, QueryParams};
use tonic::{Request, Response, Status};

use super::{
    call,
    convert::{micros_to_timestamp, stored_to_proto, timestamp_to_micros},
};
use crate::{error::ApiError, lookup};

/// The query service over the store.
#[derive(Debug, Clone)]
pub(crate) struct QueryService {
    store: Store,
    timeout: Duration,
}

impl QueryService {
    pub(crate) fn new(store: Store, timeout: Duration) -> Self {
        Self { store, timeout }
    }
}

/// A required timestamp as the epoch-micros text `AggregateQuery::from_params` parses, so
/// both APIs go through the same validation.
fn time_param(t: Option<&prost_types::Timestamp>, field: &str) -> Result<String, ApiError> {
    let t = t.ok_or_else(|| ApiError::missing(field))?;
    timestamp_to_micros(t)
        .map(|m| m.to_string())
        .map_err(|reason| ApiError::invalid(field, reason))
}

/// A required bucket width as duration text (`60s`).
fn bucket_param(d: Option<&prost_types::Duration>) -> Result<String, ApiError> {
    let d = d.ok_or_else(|| ApiError::missing("bucket"))?;
    if d.seconds < 0 || d.nanos < 0 {
        return Err(ApiError::invalid("bucket", "must be positive"));
    }
    if d.nanos != 0 {
        return Err(ApiError::invalid(
            "bucket",
            "must be a whole number of seconds from 1s to 1d",
        ));
    }
    Ok(format!("{}s", d.seconds))
}

fn agg_param(agg: i32) -> Result<&'static str, ApiError> {
    match pb::Agg::try_from(agg) {
        Ok(pb::Agg::Count) => Ok("count"),
        Ok(pb::Agg::Sum) => Ok("sum"),
        Ok(pb::Agg::Min) => Ok("min"),
        Ok(pb::Agg::Max) => Ok("max"),
        Ok(pb::Agg::Avg) => Ok("avg"),
        Ok(pb::Agg::Unspecified) => Err(ApiError::missing("agg")),
        Err(_) => Err(ApiError::invalid(
            "agg",
            format!("{agg} is not one of AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_AVG"),
        )),
    }
}

#[tonic::async_trait]
impl Query for QueryService {
    #[tracing::instrument(skip_all)]
    async fn aggregate(
        &self,
        request: Request<pb::AggregateRequest>,
    ) -> Result<Response<pb::AggregateResponse>, Status> {
        call("Aggregate", Some(self.timeout), async {
            let r = request.into_inner();
            let from = time_param(r.from.as_ref(), "from")?;
            let to = time_param(r.to.as_ref(), "to")?;
            let bucket = bucket_param(r.bucket.as_ref())?;
            let query = AggregateQuery::from_params(&QueryParams {
                tenant: &r.tenant,
                from: &from,
                to: &to,
                bucket: &bucket,
                agg: agg_param(r.agg)?,
                stream: r.stream.as_deref(),
                group_by: Some(&r.group_by),
                filter: Some(&r.filter),
            })?;
            let answer = self.store.aggregate(&query).await?;
            Ok::<_, ApiError>(pb::AggregateResponse {
                buckets: answer
                    .buckets
                    .into_iter()
                    .map(|b| pb::Bucket {
                        start: Some(micros_to_timestamp(b.start)),
                        group: b.group,
                        value: b.value,
                    })
                    .collect(),
                tiers: answer.tiers.iter().map(ToString::to_string).collect(),
                cache: answer.cache.as_str().to_owned(),
            })
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        call("GetEvent", Some(self.timeout), async {
            let r = request.into_inner();
            let event = lookup::get_event(&self.store, &r.tenant, &r.id).await?;
            Ok::<_, ApiError>(pb::GetEventResponse {
                event: Some(stored_to_proto(event)),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_name_their_field() {
        assert_eq!(time_param(None, "from").unwrap_err().field(), Some("from"));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -5,
        };
        assert_eq!(
            time_param(Some(&bad), "to").unwrap_err().field(),
            Some("to")
        );
        let half = prost_types::Duration {
            seconds: 1,
            nanos: 500_000_000,
        };
        assert_eq!(
            bucket_param(Some(&half)).unwrap_err().field(),
            Some("bucket")
        );
        let minute = prost_types::Duration {
            seconds: 60,
            nanos: 0,
        };
        assert_eq!(bucket_param(Some(&minute)).unwrap(), "60s");
        assert_eq!(agg_param(0).unwrap_err().field(), Some("agg"));
        assert_eq!(agg_param(99).unwrap_err().field(), Some("agg"));
        assert_eq!(agg_param(5).unwrap(), "avg");
    }
}
