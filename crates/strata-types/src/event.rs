//! The event as Strata stores it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time;

/// One event, validated. Field meanings and limits are in DESIGN.md and [`crate::Limits`].
///
/// `ts` is event time in microseconds since the Unix epoch (UTC). `payload` is the client's
/// JSON text kept byte-for-byte (never re-serialised), so replays and the archive return
/// exactly what was sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Tenant, `[a-z0-9][a-z0-9_-]{0,63}`.
    pub tenant: String,
    /// Event type, same charset as `tenant`.
    pub stream: String,
    /// Entity the event is about (user, device, account).
    pub key: String,
    /// Client-chosen id, unique per tenant: the idempotency key.
    pub id: String,
    /// Event time, microseconds since the Unix epoch, UTC.
    pub ts: i64,
    /// Optional measure.
    pub value: Option<f64>,
    /// Low-cardinality string dimensions used for filters and group-by.
    pub attrs: BTreeMap<String, String>,
    /// Arbitrary JSON text, byte-for-byte as received.
    pub payload: Option<String>,
}

impl Event {
    /// Approximate bytes this event occupies in memory; used for byte-bounded caches and
    /// budgets, so it errs on the high side.
    pub fn approx_size(&self) -> usize {
        const FIXED: usize = std::mem::size_of::<Event>();
        let attrs: usize = self
            .attrs
            .iter()
            .map(|(k, v)| k.len() + v.len() + 3 * std::mem::size_of::<usize>() * 2)
            .sum();
        FIXED
            + self.tenant.len()
            + self.stream.len()
            + self.key.len()
            + self.id.len()
            + attrs
            + self.payload.as_ref().map_or(0, String::len)
    }

    /// The public JSON shape (DESIGN.md "Event JSON") with `ts` as RFC 3339.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        self.write_json_fields(&mut out);
        out.push('}');
        out
    }

    /// Writes this event's JSON fields, without the enclosing braces.
    fn write_json_fields(&self, out: &mut String) {
        push_field(out, "tenant", &self.tenant);
        out.push(',');
        push_field(out, "stream", &self.stream);
        out.push(',');
        push_field(out, "key", &self.key);
        out.push(',');
        push_field(out, "id", &self.id);
        out.push(',');
        push_field(out, "ts", &time::format_rfc3339(self.ts));
        if let Some(v) = self.value {
            out.push_str(",\"value\":");
            // serde_json renders finite f64 exactly (shortest round-trip form).
            out.push_str(&serde_json::Value::from(v).to_string());
        }
        if !self.attrs.is_empty() {
            out.push_str(",\"attrs\":");
            out.push_str(&serde_json::to_string(&self.attrs).unwrap_or_else(|_| "{}".into()));
        }
        if let Some(p) = &self.payload {
            out.push_str(",\"payload\":");
            out.push_str(p);
        }
    }
}

fn push_field(out: &mut String, name: &str, value: &str) {
    out.push('"');
    out.push_str(name);
    out.push_str("\":");
    // A string always serialises; the fallback only keeps this infallible.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into()));
}

/// An event as stored: the client's event plus what the server added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// The event as validated.
    pub event: Event,
    /// When the node accepted it, microseconds since the Unix epoch.
    pub ingest_ts: i64,
    /// Per-node sequence number; strictly increasing in commit order.
    pub seq: u64,
}

impl StoredEvent {
    /// The public JSON shape plus `ingest_ts` and `seq`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push('{');
        self.event.write_json_fields(&mut out);
        out.push_str(",\"ingest_ts\":");
        out.push_str(
            &serde_json::to_string(&time::format_rfc3339(self.ingest_ts))
                .unwrap_or_else(|_| "\"\"".into()),
        );
        out.push_str(",\"seq\":");
        out.push_str(&self.seq.to_string());
        out.push('}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_payload_byte_for_byte() {
        let e = Event {
            tenant: "acme".into(),
            stream: "click".into(),
            key: "user-\"1\"".into(),
            id: "e1".into(),
            ts: 1_700_000_000_123_456,
            value: Some(1.5),
            attrs: [("page".to_string(), "/home".to_string())].into(),
            payload: Some(r#"{"b": 1,  "a":[1,2]}"#.into()),
        };
        let s = StoredEvent {
            event: e,
            ingest_ts: 1_700_000_000_200_000,
            seq: 7,
        };
        let json = s.to_json();
        assert!(json.contains(r#""payload":{"b": 1,  "a":[1,2]}"#), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["key"], "user-\"1\"");
        assert_eq!(v["ts"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(v["value"], 1.5);
        assert_eq!(v["attrs"]["page"], "/home");
        assert_eq!(v["seq"], 7);
    }
}
