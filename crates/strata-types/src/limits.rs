//! Configurable limits on what an event and a batch may be.

use std::time::Duration;

/// What to do with JSON fields an event does not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownFields {
    /// Reject the event, naming the field (the default: a typo such as `vaule` must not be
    /// silently dropped and leave a wrong aggregate behind).
    #[default]
    Reject,
    /// Ignore unknown fields (for producers that add envelope fields Strata doesn't use).
    Ignore,
}

impl std::str::FromStr for UnknownFields {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reject" => Ok(Self::Reject),
            "ignore" => Ok(Self::Ignore),
            other => Err(format!("expected `reject` or `ignore`, got `{other}`")),
        }
    }
}

/// Limits on events and batches. Every rejection names the field and the limit it broke by
/// the name of the field here, which is also the name of its `serve` flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest `key`, bytes.
    pub max_key_bytes: usize,
    /// Longest `id`, bytes.
    pub max_id_bytes: usize,
    /// Most entries in `attrs`.
    pub max_attrs: usize,
    /// Longest attribute name, bytes.
    pub max_attr_key_bytes: usize,
    /// Longest attribute value, bytes.
    pub max_attr_value_bytes: usize,
    /// Largest `payload`, bytes of JSON text.
    pub max_payload_bytes: usize,
    /// Deepest nesting of objects and arrays in `payload` (common JSON parsers, including
    /// the ones replay and archive readers use, give up on very deep documents).
    pub max_payload_depth: usize,
    /// How far in the future (by the server's clock) `ts` may be.
    pub max_future_skew: Duration,
    /// How far in the past `ts` may be for the event to enter the hot tier. Older events
    /// are still accepted (up to [`Limits::max_age`]): the store writes them straight to the
    /// tier that owns their time (warm, or the cold archive), acknowledging them once they
    /// are durable there. Buckets older than this are also what the query cache treats as
    /// closed, so a smaller value caches more of each query.
    pub max_lateness: Duration,
    /// How far in the past `ts` may be at all; `None` (the default) sets no bound beyond the
    /// earliest representable time. Events older than this are rejected, naming `max_age`.
    pub max_age: Option<Duration>,
    /// Most events in one batch (request or stream message).
    pub max_batch_events: usize,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Policy for fields an event does not define.
    pub unknown_fields: UnknownFields,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_key_bytes: 256,
            max_id_bytes: 128,
            max_attrs: 32,
            max_attr_key_bytes: 64,
            max_attr_value_bytes: 256,
            max_payload_bytes: 64 * 1024,
            max_payload_depth: 64,
            max_future_skew: Duration::from_secs(5 * 60),
            // Six hours cover producers that buffer through an outage of a few hours (edge
            // gateways, mobile clients) and drifting clocks; anything later takes the late
            // path (straight to warm or cold, slower per event). It is also the query
            // cache's open window: buckets older than this are served from the cache.
            max_lateness: Duration::from_secs(6 * 3600),
            max_age: None,
            max_batch_events: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
            unknown_fields: UnknownFields::Reject,
        }
    }
}
