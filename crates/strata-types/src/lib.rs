//! Strata's vocabulary: the [`Event`], the [`Limits`] that bound it, the validation and wire
//! decoding that turn untrusted JSON into events with per-event reasons, and the query model
//! ([`AggregateQuery`], [`PartialAggregate`]) that every tier answers in.
//!
//! This crate does no IO. Every other Strata crate depends on it; it depends on none of them.
//!
//! ```
//! use strata_types::{decode::{decode_batch, BodyFormat}, Limits};
//!
//! let body = br#"[{"tenant":"acme","stream":"click","key":"user-1","id":"e1",
//!                  "ts":"2026-11-20T10:00:00Z","value":1.5}]"#;
//! let now = strata_types::time::parse_rfc3339("2026-11-20T10:00:01Z").unwrap();
//! let batch = decode_batch(body, BodyFormat::JsonArray, &Limits::default(), now).unwrap();
//! assert_eq!(batch.events.len(), 1);
//! assert!(batch.rejected.is_empty());
//! ```

pub mod decode;
pub mod event;
pub mod json;
pub mod limits;
pub mod query;
pub mod time;
pub mod validate;

pub use event::{Event, StoredEvent};
pub use limits::{Limits, UnknownFields};
pub use query::{
    Agg, AggregateQuery, AttrFilter, Bucket, Cell, GroupBy, PartialAggregate, QueryError,
    QueryParams, TimeRange,
};
pub use validate::Rejection;
