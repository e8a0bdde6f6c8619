//! Helpers shared by the integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::sync::Arc;

use strata_core::{
    conformance::hot::{T0, event},
    hot::{AppendOutcome, AppendRequest, HotTier},
};
use strata_hot::{HotConfig, HotStore};
use strata_types::{AggregateQuery, Event, PartialAggregate, QueryParams};

pub use strata_types::time::SEC;

/// Opens a store off the async workers.
pub async fn open(config: HotConfig) -> Arc<HotStore> {
    Arc::new(
        tokio::task::spawn_blocking(move || HotStore::open(config))
            .await
            .expect("open task")
            .expect("open hot store"),
    )
}

/// `n` events of `tenant` named `{prefix}-{i}`, one second apart from `T0`, each carrying
/// `payload_bytes` of payload.
pub fn events(tenant: &str, prefix: &str, n: usize, payload_bytes: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let mut e = event(
                tenant,
                &format!("{prefix}-{i}"),
                T0 + (i as i64 % 7200) * SEC,
                Some(i as f64),
            );
            e.payload = Some(format!(r#"{{"pad":"{}"}}"#, "x".repeat(payload_bytes)));
            e
        })
        .collect()
}

/// Appends and expects success.
pub async fn append(hot: &dyn HotTier, events: Vec<Event>) -> Vec<AppendOutcome> {
    hot.append(AppendRequest {
        events,
        offsets: vec![],
    })
    .await
    .expect("append")
}

/// Sum by 15 minutes over four hours from `T0`.
pub fn query(tenant: &str) -> AggregateQuery {
    let from = T0.to_string();
    let to = (T0 + 4 * 3600 * SEC).to_string();
    AggregateQuery::from_params(&QueryParams {
        tenant,
        from: &from,
        to: &to,
        bucket: "15m",
        agg: "sum",
        group_by: Some("key"),
        ..Default::default()
    })
    .expect("query")
}

/// The expected answer.
pub fn brute_force(q: &AggregateQuery, events: &[Event]) -> PartialAggregate {
    let mut p = PartialAggregate::default();
    events.iter().for_each(|e| p.add(q, e));
    p
}
