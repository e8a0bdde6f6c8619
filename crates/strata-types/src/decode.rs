//! Decoding untrusted request bodies (a JSON array, or NDJSON) into validated events.
//!
//! Each event is first split into its fields as raw JSON text, then each field is decoded on
//! its own. That is what lets every rejection name its field exactly (`ts`, `attrs.page`),
//! keeps `payload` byte-for-byte, and applies the unknown-field policy without a second
//! struct. A body that is not JSON at all fails as a whole ([`BatchError`]); a bad event only
//! rejects itself.

use std::collections::BTreeMap;

use serde_json::value::RawValue;

use crate::{
    Event, Limits, UnknownFields,
    json::{self, first_duplicate, object_entries},
    time::parse_rfc3339,
    validate::{FieldError, Rejection, validate_event},
};

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `[ {...}, {...} ]`
    JsonArray,
    /// One JSON object per line (`application/x-ndjson`); blank lines are skipped.
    Ndjson,
}

/// A batch split into the events that passed and the reasons for those that did not.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    /// Valid events, in body order.
    pub events: Vec<Event>,
    /// One entry per rejected event, in body order.
    pub rejected: Vec<Rejection>,
}

/// Why a whole body was refused (nothing of it is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body is not JSON of the expected framing.
    #[error("body is not {expected}: {reason}")]
    Unparseable {
        /// What the body should have been.
        expected: &'static str,
        /// The parser's complaint, with line and column.
        reason: String,
    },
    /// The batch has no events.
    #[error("batch is empty; send at least one event")]
    Empty,
    /// The batch has more events than `max_batch_events`.
    #[error("batch has {count} events; the limit is {max} (max_batch_events)")]
    TooManyEvents {
        /// Events in the body.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Decodes and validates a request body at server time `now` (epoch micros).
pub fn decode_batch(
    body: &[u8],
    format: BodyFormat,
    limits: &Limits,
    now: i64,
) -> Result<DecodedBatch, BatchError> {
    let raws: Vec<Result<&RawValue, String>> = match format {
        BodyFormat::JsonArray => serde_json::from_slice::<Vec<&RawValue>>(body)
            .map_err(|e| BatchError::Unparseable {
                expected: "a JSON array of events",
                reason: e.to_string(),
            })?
            .into_iter()
            .map(Ok)
            .collect(),
        BodyFormat::Ndjson => {
            let text = std::str::from_utf8(body).map_err(|e| BatchError::Unparseable {
                expected: "UTF-8 NDJSON",
                reason: e.to_string(),
            })?;
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str::<&RawValue>(l).map_err(|e| e.to_string()))
                .collect()
        }
    };
    if raws.is_empty() {
        return Err(BatchError::Empty);
    }
    if raws.len() > limits.max_batch_events {
        return Err(BatchError::TooManyEvents {
            count: raws.len(),
            max: limits.max_batch_events,
        });
    }
    let mut out = DecodedBatch {
        events: Vec::with_capacity(raws.len()),
        rejected: Vec::new(),
    };
    for (index, raw) in raws.into_iter().enumerate() {
        let decoded = raw
            .map_err(|reason| FieldError::new("", format!("malformed JSON: {reason}")))
            .and_then(|raw| decode_event(raw.get(), limits))
            .and_then(|event| validate_event(&event, limits, now).map(|()| event));
        match decoded {
            Ok(event) => out.events.push(event),
            Err(e) => out.rejected.push(e.at(index)),
        }
    }
    Ok(out)
}

const KNOWN_FIELDS: [&str; 8] = [
    "tenant", "stream", "key", "id", "ts", "value", "attrs", "payload",
];

/// Decodes one event from its JSON text (no limit checks beyond the unknown-field policy;
/// see [`validate_event`]).
pub fn decode_event(raw: &str, limits: &Limits) -> Result<Event, FieldError> {
    let entries = object_entries(raw)
        .map_err(|e| FieldError::new("", format!("an event must be a JSON object ({e})")))?;
    // serde_json keeps the last of two equal keys; a gateway that reads the first would
    // then disagree with Strata about, say, the tenant. Refuse the ambiguity.
    if let Some(dup) = first_duplicate(&entries) {
        return Err(FieldError::new(
            dup,
            "appears more than once in the event; every field must be given once",
        ));
    }
    let fields: BTreeMap<String, &RawValue> = entries.into_iter().collect();
    if limits.unknown_fields == UnknownFields::Reject
        && let Some(unknown) = fields.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str()))
    {
        return Err(FieldError::new(
            unknown.as_str(),
            format!(
                "unknown field; known fields are {} (unknown_fields=reject)",
                KNOWN_FIELDS.join(", ")
            ),
        ));
    }
    let string = |name: &str| -> Result<String, FieldError> {
        let raw = non_null(&fields, name)?.ok_or_else(|| FieldError::new(name, "is required"))?;
        serde_json::from_str::<String>(raw.get())
            .map_err(|_| FieldError::new(name, format!("must be a string, got {}", kind(raw))))
    };
    let event = Event {
        tenant: string("tenant")?,
        stream: string("stream")?,
        key: string("key")?,
        id: string("id")?,
        ts: decode_ts(
            non_null(&fields, "ts")?.ok_or_else(|| FieldError::new("ts", "is required"))?,
        )?,
        value: match non_null(&fields, "value")? {
            None => None,
            Some(raw) => Some(decode_value(raw)?),
        },
        attrs: match non_null(&fields, "attrs")? {
            None => BTreeMap::new(),
            Some(raw) => decode_attrs(raw)?,
        },
        // Stored compact, so that every NDJSON line of a replay or an archive read is one
        // event whatever whitespace the client sent.
        payload: non_null(&fields, "payload")?
            .map(|raw| json::compact(raw.get(), limits.max_payload_depth))
            .transpose()
            .map_err(|e| FieldError::new("payload", e.to_string()))?,
    };
    Ok(event)
}

/// A field's raw value; `null` counts as absent.
fn non_null<'a>(
    fields: &BTreeMap<String, &'a RawValue>,
    name: &str,
) -> Result<Option<&'a RawValue>, FieldError> {
    Ok(fields.get(name).copied().filter(|raw| raw.get() != "null"))
}

fn decode_ts(raw: &RawValue) -> Result<i64, FieldError> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text)
            .map_err(|e| FieldError::new("ts", format!("bad string ({e})")))?;
        parse_rfc3339(&s).map_err(|reason| FieldError::new("ts", reason))
    } else {
        serde_json::from_str::<i64>(text).map_err(|_| {
            FieldError::new(
                "ts",
                format!(
                    "must be an RFC 3339 string or integer epoch microseconds, got {}",
                    kind(raw)
                ),
            )
        })
    }
}

fn decode_value(raw: &RawValue) -> Result<f64, FieldError> {
    let text = raw.get();
    if kind(raw) != "a number" {
        return Err(FieldError::new(
            "value",
            format!("must be a number, got {}", kind(raw)),
        ));
    }
    match serde_json::from_str::<f64>(text) {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(FieldError::new(
            "value",
            format!(
                "{} is outside the range of a 64-bit float (about ±1.8e308)",
                text.chars().take(40).collect::<String>()
            ),
        )),
    }
}

fn decode_attrs(raw: &RawValue) -> Result<BTreeMap<String, String>, FieldError> {
    let entries = object_entries(raw.get()).map_err(|_| {
        FieldError::new(
            "attrs",
            format!("must be an object of strings, got {}", kind(raw)),
        )
    })?;
    if let Some(dup) = first_duplicate(&entries) {
        return Err(FieldError::new(
            format!("attrs.{dup}"),
            "appears more than once; every attribute must be given once",
        ));
    }
    entries
        .into_iter()
        .map(|(k, v)| match serde_json::from_str::<String>(v.get()) {
            Ok(s) => Ok((k, s)),
            Err(_) => Err(FieldError::new(
                format!("attrs.{k}"),
                format!("must be a string, got {}", kind(v)),
            )),
        })
        .collect()
}

/// The JSON kind of a raw value, for error messages.
fn kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    fn ok_event(id: &str) -> String {
        format!(
            r#"{{"tenant":"acme","stream":"click","key":"u1","id":"{id}","ts":{NOW},"value":2,"attrs":{{"page":"/"}},"payload":{{"x": [1, 2]}}}}"#
        )
    }

    fn decode(body: &str, format: BodyFormat) -> Result<DecodedBatch, BatchError> {
        decode_batch(body.as_bytes(), format, &Limits::default(), NOW)
    }

    #[test]
    fn decodes_array_and_stores_payload_compact() {
        let body = format!("[{}, {}]", ok_event("a"), ok_event("b"));
        let b = decode(&body, BodyFormat::JsonArray).unwrap();
        assert_eq!(b.events.len(), 2);
        // Whitespace outside strings goes, so NDJSON answers keep one event per line.
        assert_eq!(b.events[0].payload.as_deref(), Some(r#"{"x":[1,2]}"#));
        assert_eq!(b.events[1].id, "b");
        assert_eq!(b.events[0].value, Some(2.0));
    }

    #[test]
    fn ndjson_rejects_only_bad_lines() {
        let body = format!("{}\n{{not json\n\n{}\r\n", ok_event("a"), ok_event("b"));
        let b = decode(&body, BodyFormat::Ndjson).unwrap();
        assert_eq!(b.events.len(), 2);
        assert_eq!(b.rejected.len(), 1);
        assert_eq!(b.rejected[0].index, 1);
        assert!(b.rejected[0].reason.contains("malformed JSON"));
    }

    #[test]
    fn whole_body_errors() {
        assert!(matches!(
            decode("[1, 2", BodyFormat::JsonArray),
            Err(BatchError::Unparseable { .. })
        ));
        assert_eq!(
            decode("[]", BodyFormat::JsonArray).unwrap_err(),
            BatchError::Empty
        );
        assert_eq!(
            decode("\n\n", BodyFormat::Ndjson).unwrap_err(),
            BatchError::Empty
        );
        let limits = Limits {
            max_batch_events: 1,
            ..Limits::default()
        };
        let body = format!("[{}, {}]", ok_event("a"), ok_event("b"));
        assert!(matches!(
            decode_batch(body.as_bytes(), BodyFormat::JsonArray, &limits, NOW),
            Err(BatchError::TooManyEvents { count: 2, max: 1 })
        ));
    }

    #[test]
    fn field_errors_name_the_field() {
        let cases = [
            (
                r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":"x"}"#,
                "ts",
            ),
            (
                r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":1.5}"#,
                "ts",
            ),
            (r#"{"tenant":"acme","stream":"s","key":"k","id":"i"}"#, "ts"),
            (r#"{"tenant":"acme","stream":"s","key":"k","ts":1}"#, "id"),
            (
                r#"{"tenant":1,"stream":"s","key":"k","id":"i","ts":1}"#,
                "tenant",
            ),
            (
                r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":1,"value":"3"}"#,
                "value",
            ),
            (
                r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":1,"attrs":{"a":1}}"#,
                "attrs.a",
            ),
            (
                r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":1,"vaule":3}"#,
                "vaule",
            ),
            (r#"[1]"#, ""),
        ];
        for (raw, field) in cases {
            let err = decode_event(raw, &Limits::default()).unwrap_err();
            assert_eq!(err.field, field, "{raw}: {}", err.reason);
        }
    }

    #[test]
    fn unknown_fields_can_be_ignored() {
        let limits = Limits {
            unknown_fields: UnknownFields::Ignore,
            ..Limits::default()
        };
        let raw = r#"{"tenant":"acme","stream":"s","key":"k","id":"i","ts":1,"extra":{}}"#;
        assert_eq!(decode_event(raw, &limits).unwrap().id, "i");
    }

    #[test]
    fn validation_rejects_after_decoding() {
        let body = format!(
            "[{}, {}]",
            ok_event("a"),
            ok_event("a").replace(&NOW.to_string(), "0")
        );
        let limits = Limits {
            max_age: Some(std::time::Duration::from_secs(86_400)),
            ..Limits::default()
        };
        let b = decode_batch(body.as_bytes(), BodyFormat::JsonArray, &limits, NOW).unwrap();
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.rejected[0].field, "ts");
        assert!(b.rejected[0].reason.contains("max_age"));
        // Without `max_age` a late event is valid: the store routes it to warm or cold.
        assert_eq!(
            decode(&body, BodyFormat::JsonArray).unwrap().events.len(),
            2
        );
    }

    fn reject_reason(event: &str) -> (String, String) {
        let b = decode(&format!("[{event}]"), BodyFormat::JsonArray).unwrap();
        assert!(b.events.is_empty(), "accepted: {event}");
        (b.rejected[0].field.clone(), b.rejected[0].reason.clone())
    }

    #[test]
    fn hostile_events_are_rejected_naming_the_field() {
        let e = ok_event("a");
        // Two tenants: a gateway authorising on the first must not be bypassed.
        let twice = e.replacen(
            r#""tenant":"acme""#,
            r#""tenant":"acme","tenant":"evil""#,
            1,
        );
        assert_eq!(reject_reason(&twice).0, "tenant");
        let attrs = e.replacen(r#""page":"/""#, r#""page":"/","page":"/x""#, 1);
        assert_eq!(reject_reason(&attrs).0, "attrs.page");
        let payload = e.replacen(r#"{"x": [1, 2]}"#, r#"{"x":1,"x":2}"#, 1);
        let (field, reason) = reject_reason(&payload);
        assert_eq!(field, "payload");
        assert!(reason.contains("twice"), "{reason}");
        let deep = "[".repeat(30_000) + &"]".repeat(30_000);
        let (field, reason) = reject_reason(&e.replacen(r#"{"x": [1, 2]}"#, &deep, 1));
        assert_eq!(field, "payload");
        assert!(reason.contains("max_payload_depth"), "{reason}");
        let (field, reason) = reject_reason(&e.replacen(r#""value":2"#, r#""value":1e400"#, 1));
        assert_eq!(field, "value");
        assert!(reason.contains("range"), "{reason}");
        for (field, bad) in [("id", r#""id":"a\u0000b""#), ("key", r#""key":"u\n1""#)] {
            let original = if field == "id" {
                r#""id":"a""#
            } else {
                r#""key":"u1""#
            };
            let (got, reason) = reject_reason(&e.replacen(original, bad, 1));
            assert_eq!(got, field);
            assert!(reason.contains("control character"), "{reason}");
        }
        let (field, _) = reject_reason(&e.replacen(r#""page":"/""#, r#""page":"a\u0000""#, 1));
        assert_eq!(field, "attrs.page");
        let (field, _) = reject_reason(&e.replacen(r#""page":"/""#, r#""p\u0007":"/""#, 1));
        assert_eq!(field, "attrs.p\u{7}");
    }

    #[test]
    fn payload_newlines_never_break_ndjson() {
        let e = ok_event("a").replacen(
            r#"{"x": [1, 2]}"#,
            "{\n \"s\": \"a\\nb\",\n \"n\": 1.50\n}",
            1,
        );
        let b = decode(&format!("[{e}]"), BodyFormat::JsonArray).unwrap();
        let payload = b.events[0].payload.as_deref().unwrap();
        assert_eq!(payload, r#"{"s":"a\nb","n":1.50}"#);
        assert!(!payload.contains('\n'));
    }
}
