//! Events as the tests send them, and the event times they are stamped with.

use std::collections::BTreeMap;

use chrono::{SecondsFormat, Utc};
use serde_json::Value;

/// An event as a test sends it; `payload` is JSON text sent and expected back compacted
/// (whitespace outside strings removed, everything else byte for byte).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TestEvent {
    pub(crate) tenant: String,
    pub(crate) stream: String,
    pub(crate) key: String,
    pub(crate) id: String,
    /// RFC 3339 with microseconds, as the server formats it.
    pub(crate) ts: String,
    pub(crate) value: f64,
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) payload: String,
}

impl TestEvent {
    /// A valid event stamped now.
    pub(crate) fn new(tenant: &str, id: String, n: u64) -> Self {
        Self {
            tenant: tenant.into(),
            stream: ["click", "view", "purchase"][(n % 3) as usize].into(),
            key: format!("user-{}", n % 97),
            id,
            ts: now_rfc3339(),
            value: (n % 1000) as f64 / 4.0,
            attrs: [
                (
                    "region".to_string(),
                    ["eu", "us"][(n % 2) as usize].to_string(),
                ),
                (
                    "device".to_string(),
                    ["web", "ios", "android"][(n % 3) as usize].to_string(),
                ),
            ]
            .into(),
            // Odd spacing and key order: a server that re-serialises the payload (instead of
            // only compacting it) fails.
            payload: format!(
                r#"{{"n": {n},  "tags":["a", "b"] ,"nested":{{"z":1,"a":[true,null]}}}}"#
            ),
        }
    }

    /// A valid event with event time `ts` (epoch micros).
    pub(crate) fn at(tenant: &str, id: String, n: u64, ts: i64) -> Self {
        Self {
            ts: rfc3339_micros(ts),
            ..Self::new(tenant, id, n)
        }
    }

    /// `size` events of `tenant` stamped now, with ids `{prefix}-{n}` numbered on from
    /// `*next` (which is advanced past them), as a client generates its batches.
    pub(crate) fn batch(tenant: &str, prefix: &str, next: &mut u64, size: usize) -> Vec<Self> {
        (0..size)
            .map(|_| {
                *next += 1;
                Self::new(tenant, format!("{prefix}-{next}"), *next)
            })
            .collect()
    }

    /// The public event JSON.
    pub(crate) fn to_json(&self) -> String {
        format!(
            r#"{{"tenant":{},"stream":{},"key":{},"id":{},"ts":{},"value":{},"attrs":{},"payload":{}}}"#,
            Value::from(self.tenant.as_str()),
            Value::from(self.stream.as_str()),
            Value::from(self.key.as_str()),
            Value::from(self.id.as_str()),
            Value::from(self.ts.as_str()),
            Value::from(self.value),
            serde_json::to_string(&self.attrs).unwrap(),
            self.payload
        )
    }
}

/// A JSON array body of `events`.
pub(crate) fn json_body(events: &[TestEvent]) -> String {
    let parts: Vec<String> = events.iter().map(TestEvent::to_json).collect();
    format!("[{}]", parts.join(","))
}

/// Now as RFC 3339 UTC with microseconds.
pub(crate) fn now_rfc3339() -> String {
    rfc3339_micros(now_micros())
}

/// RFC 3339 of now plus `offset` (negative to go back).
pub(crate) fn rfc3339_from_now(offset: chrono::Duration) -> String {
    (Utc::now() + offset).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Epoch microseconds as RFC 3339 UTC with microseconds, as the server formats times.
pub(crate) fn rfc3339_micros(micros: i64) -> String {
    chrono::DateTime::<Utc>::from_timestamp_micros(micros)
        .expect("time in range")
        .to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// RFC 3339 to epoch microseconds.
pub(crate) fn parse_micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad time {rfc3339}: {e}"))
        .timestamp_micros()
}

/// Now, epoch microseconds.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}
