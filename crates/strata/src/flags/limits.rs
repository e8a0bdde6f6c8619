//! What an event and a batch may be: the validation limits, shared by every command that
//! validates events.

use std::time::Duration;

use clap::{Args, ValueEnum};
use strata_types::{Limits, UnknownFields};

use crate::flags::{parse_byte_size_usize, parse_duration, parse_human_duration};

/// Limits on events and batches; each maps to the [`Limits`] field of the same name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsArgs {
    /// Longest `key`, bytes.
    #[arg(long, env = "STRATA_MAX_KEY_BYTES", default_value_t = Limits::default().max_key_bytes)]
    pub max_key_bytes: usize,
    /// Longest `id`, bytes.
    #[arg(long, env = "STRATA_MAX_ID_BYTES", default_value_t = Limits::default().max_id_bytes)]
    pub max_id_bytes: usize,
    /// Most entries in `attrs`.
    #[arg(long, env = "STRATA_MAX_ATTRS", default_value_t = Limits::default().max_attrs)]
    pub max_attrs: usize,
    /// Longest attribute name, bytes.
    #[arg(
        long,
        env = "STRATA_MAX_ATTR_KEY_BYTES",
        default_value_t = Limits::default().max_attr_key_bytes
    )]
    pub max_attr_key_bytes: usize,
    /// Longest attribute value, bytes.
    #[arg(
        long,
        env = "STRATA_MAX_ATTR_VALUE_BYTES",
        default_value_t = Limits::default().max_attr_value_bytes
    )]
    pub max_attr_value_bytes: usize,
    /// Largest `payload` as JSON text (e.g. `64KiB`).
    #[arg(
        long,
        env = "STRATA_MAX_PAYLOAD_BYTES",
        default_value_t = Limits::default().max_payload_bytes,
        value_parser = parse_byte_size_usize
    )]
    pub max_payload_bytes: usize,
    /// Deepest nesting of objects and arrays in `payload`.
    #[arg(
        long,
        env = "STRATA_MAX_PAYLOAD_DEPTH",
        default_value_t = Limits::default().max_payload_depth,
        value_parser = parse_depth
    )]
    pub max_payload_depth: usize,
    /// How far ahead of the server's clock `ts` may be.
    #[arg(
        long,
        env = "STRATA_MAX_FUTURE_SKEW",
        default_value_t = Limits::default().max_future_skew.into(),
        value_parser = parse_human_duration
    )]
    pub max_future_skew: humantime::Duration,
    /// How far behind the server's clock `ts` may be and still go into the hot tier. Older
    /// events are not rejected: they go straight to the tier that owns their time (warm
    /// rows, or a cold amendment file when their day is already archived).
    #[arg(
        long,
        env = "STRATA_MAX_LATENESS",
        default_value_t = Limits::default().max_lateness.into(),
        value_parser = parse_human_duration
    )]
    pub max_lateness: humantime::Duration,
    /// Oldest `ts` accepted at all, as an age (unset: any age; without a cold tier the
    /// warm retention caps it anyway).
    #[arg(long, env = "STRATA_MAX_AGE", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
    /// Most events in one batch (request or stream message).
    #[arg(
        long,
        env = "STRATA_MAX_BATCH_EVENTS",
        default_value_t = Limits::default().max_batch_events
    )]
    pub max_batch_events: usize,
    /// Largest request body (e.g. `16MiB`).
    #[arg(
        long,
        env = "STRATA_MAX_BODY_BYTES",
        default_value_t = Limits::default().max_body_bytes,
        value_parser = parse_byte_size_usize
    )]
    pub max_body_bytes: usize,
    /// What to do with event fields Strata does not define.
    #[arg(
        long,
        env = "STRATA_UNKNOWN_FIELDS",
        value_enum,
        default_value_t = UnknownFieldsArg::Reject
    )]
    pub unknown_fields: UnknownFieldsArg,
}

impl LimitsArgs {
    /// The validation limits these flags describe.
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_id_bytes: self.max_id_bytes,
            max_attrs: self.max_attrs,
            max_attr_key_bytes: self.max_attr_key_bytes,
            max_attr_value_bytes: self.max_attr_value_bytes,
            max_payload_bytes: self.max_payload_bytes,
            max_payload_depth: self.max_payload_depth,
            max_future_skew: self.max_future_skew.into(),
            max_lateness: self.max_lateness.into(),
            max_age: self.max_age,
            max_batch_events: self.max_batch_events,
            max_body_bytes: self.max_body_bytes,
            unknown_fields: self.unknown_fields.into(),
        }
    }
}

/// `--unknown-fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownFieldsArg {
    /// Reject the event, naming the field.
    Reject,
    /// Ignore fields Strata does not define.
    Ignore,
}

impl From<UnknownFieldsArg> for UnknownFields {
    fn from(a: UnknownFieldsArg) -> Self {
        match a {
            UnknownFieldsArg::Reject => UnknownFields::Reject,
            UnknownFieldsArg::Ignore => UnknownFields::Ignore,
        }
    }
}

/// `--max-payload-depth`: 1 to 1024 (deeper documents defeat common JSON parsers).
fn parse_depth(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n @ 1..=1024) => Ok(n),
        _ => Err("expected a whole number from 1 to 1024".into()),
    }
}
