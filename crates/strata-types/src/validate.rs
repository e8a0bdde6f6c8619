//! Validation of single events against [`Limits`]. Every rejection names the field and the
//! limit, so a client can fix its producer without reading server logs.

use serde::Serialize;

use crate::{Event, Limits, time::MICROS_PER_SEC};

/// Why one event of a batch was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// Position of the event in the batch (array index, or NDJSON line number from 0).
    pub index: usize,
    /// The offending field (`attrs.page`, `ts`, ...); empty when the event as a whole is bad.
    pub field: String,
    /// What is wrong and which limit applies.
    pub reason: String,
}

/// A field-level problem before it is tied to a batch position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Ties this error to a batch position.
    pub fn at(self, index: usize) -> Rejection {
        Rejection {
            index,
            field: self.field,
            reason: self.reason,
        }
    }
}

/// Checks `[a-z0-9][a-z0-9_-]{0,63}`, the charset of tenants and streams.
pub fn check_name(field: &str, value: &str) -> Result<(), FieldError> {
    let bytes = value.as_bytes();
    let ok_first = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok_rest = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if bytes.len() > 64 {
        return Err(FieldError::new(
            field,
            format!("is {} bytes; the limit is 64", bytes.len()),
        ));
    }
    if !ok_first || !ok_rest {
        return Err(FieldError::new(
            field,
            "must match [a-z0-9][a-z0-9_-]{0,63} (lowercase letters, digits, '_' and '-')",
        ));
    }
    Ok(())
}

fn check_len(
    field: &str,
    value: &str,
    max: usize,
    limit_name: &str,
    allow_empty: bool,
) -> Result<(), FieldError> {
    if !allow_empty && value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.len() > max {
        return Err(FieldError::new(
            field,
            format!(
                "is {} bytes; the limit is {max} ({limit_name})",
                value.len()
            ),
        ));
    }
    check_no_control(field, value)
}

/// Refuses control characters (NUL, newlines, escape, DEL, C1 controls): PostgreSQL text
/// cannot hold NUL, and line breaks and escapes in ids, keys and attributes break logs, CSV
/// and terminal output downstream. Payloads are JSON, where such characters only appear
/// escaped, so they are not checked here.
fn check_no_control(field: &str, value: &str) -> Result<(), FieldError> {
    match value.char_indices().find(|(_, c)| c.is_control()) {
        None => Ok(()),
        Some((at, c)) => Err(FieldError::new(
            field,
            format!(
                "contains the control character U+{:04X} at byte {at}; control characters \
                 (NUL, line breaks, escapes) are not allowed",
                u32::from(c)
            ),
        )),
    }
}

pub use crate::time::MIN_TS;

/// Validates one decoded event against `limits` at server time `now` (epoch micros).
pub fn validate_event(event: &Event, limits: &Limits, now: i64) -> Result<(), FieldError> {
    check_name("tenant", &event.tenant)?;
    check_name("stream", &event.stream)?;
    check_len(
        "key",
        &event.key,
        limits.max_key_bytes,
        "max_key_bytes",
        false,
    )?;
    check_len("id", &event.id, limits.max_id_bytes, "max_id_bytes", false)?;

    let skew = duration_micros(limits.max_future_skew);
    if event.ts > now.saturating_add(skew) {
        return Err(FieldError::new(
            "ts",
            format!(
                "is {} s ahead of the server clock; the limit is {} s (max_future_skew)",
                (event.ts - now) / MICROS_PER_SEC,
                skew / MICROS_PER_SEC
            ),
        ));
    }
    if event.ts < MIN_TS {
        return Err(FieldError::new(
            "ts",
            "is before 0001-01-01T00:00:00Z, the earliest time Strata stores",
        ));
    }
    // Older than `max_lateness` is fine: the store routes such events to warm or cold.
    if let Some(max_age) = limits.max_age {
        let age = duration_micros(max_age);
        if event.ts < now.saturating_sub(age) {
            return Err(FieldError::new(
                "ts",
                format!(
                    "is {} s behind the server clock; the limit is {} s (max_age)",
                    now.saturating_sub(event.ts) / MICROS_PER_SEC,
                    age / MICROS_PER_SEC
                ),
            ));
        }
    }
    if let Some(v) = event.value
        && !v.is_finite()
    {
        return Err(FieldError::new("value", "must be a finite number"));
    }
    if event.attrs.len() > limits.max_attrs {
        return Err(FieldError::new(
            "attrs",
            format!(
                "has {} entries; the limit is {} (max_attrs)",
                event.attrs.len(),
                limits.max_attrs
            ),
        ));
    }
    for (k, v) in &event.attrs {
        check_len(
            "attrs",
            k,
            limits.max_attr_key_bytes,
            "max_attr_key_bytes",
            false,
        )
        .map_err(|e| FieldError::new(format!("attrs.{k}"), format!("name {}", e.reason)))?;
        check_len(
            "attrs",
            v,
            limits.max_attr_value_bytes,
            "max_attr_value_bytes",
            true,
        )
        .map_err(|e| FieldError::new(format!("attrs.{k}"), e.reason))?;
    }
    if let Some(p) = &event.payload {
        check_len(
            "payload",
            p,
            limits.max_payload_bytes,
            "max_payload_bytes",
            true,
        )?;
    }
    Ok(())
}

/// A payload that arrived as text (gRPC, Kafka) in the form Strata stores: one JSON value,
/// nested at most `max_depth` deep, no object key twice, compact (see [`crate::json`]).
pub fn normalize_payload(payload: &str, max_depth: usize) -> Result<String, FieldError> {
    let raw = serde_json::from_str::<&serde_json::value::RawValue>(payload)
        .map_err(|e| FieldError::new("payload", format!("must be JSON text ({e})")))?;
    crate::json::compact(raw.get(), max_depth)
        .map_err(|e| FieldError::new("payload", e.to_string()))
}

/// Validates already-decoded events (from gRPC or Kafka): splits them into accepted events
/// and per-event rejections, enforcing the batch limits like the JSON decoder does.
pub fn validate_batch(
    events: Vec<Result<Event, FieldError>>,
    limits: &Limits,
    now: i64,
) -> Result<crate::decode::DecodedBatch, crate::decode::BatchError> {
    use crate::decode::{BatchError, DecodedBatch};
    if events.is_empty() {
        return Err(BatchError::Empty);
    }
    if events.len() > limits.max_batch_events {
        return Err(BatchError::TooManyEvents {
            count: events.len(),
            max: limits.max_batch_events,
        });
    }
    let mut out = DecodedBatch::default();
    for (index, e) in events.into_iter().enumerate() {
        match e.and_then(|e| validate_event(&e, limits, now).map(|()| e)) {
            Ok(e) => out.events.push(e),
            Err(err) => out.rejected.push(err.at(index)),
        }
    }
    Ok(out)
}

fn duration_micros(d: std::time::Duration) -> i64 {
    crate::time::duration_micros(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event {
            tenant: "acme".into(),
            stream: "click".into(),
            key: "k".into(),
            id: "i".into(),
            ts: 1_000 * MICROS_PER_SEC * 1_000_000,
            value: None,
            attrs: Default::default(),
            payload: None,
        }
    }

    #[test]
    fn names_field_and_limit() {
        let now = event().ts;
        let limits = Limits::default();
        let mut e = event();
        e.key = "x".repeat(257);
        let err = validate_event(&e, &limits, now).unwrap_err();
        assert_eq!(err.field, "key");
        assert!(err.reason.contains("max_key_bytes"), "{}", err.reason);

        let mut e = event();
        e.tenant = "Acme".into();
        assert_eq!(
            validate_event(&e, &limits, now).unwrap_err().field,
            "tenant"
        );

        let mut e = event();
        e.ts = now + 3600 * MICROS_PER_SEC;
        let err = validate_event(&e, &limits, now).unwrap_err();
        assert!(err.reason.contains("max_future_skew"));

        let mut e = event();
        e.attrs.insert("page".into(), "x".repeat(300));
        assert_eq!(
            validate_event(&e, &limits, now).unwrap_err().field,
            "attrs.page"
        );

        assert!(validate_event(&event(), &limits, now).is_ok());
    }

    #[test]
    fn late_events_pass_until_max_age() {
        let now = event().ts;
        let mut e = event();
        e.ts = now - 30 * 86_400 * MICROS_PER_SEC;
        assert!(
            validate_event(&e, &Limits::default(), now).is_ok(),
            "older than max_lateness is routed, not rejected"
        );
        let aged = Limits {
            max_age: Some(std::time::Duration::from_secs(7 * 86_400)),
            ..Limits::default()
        };
        let err = validate_event(&e, &aged, now).unwrap_err();
        assert_eq!(err.field, "ts");
        assert!(err.reason.contains("max_age"), "{}", err.reason);
        e.ts = now - 86_400 * MICROS_PER_SEC;
        assert!(validate_event(&e, &aged, now).is_ok());
        e.ts = MIN_TS - 1;
        let err = validate_event(&e, &Limits::default(), now).unwrap_err();
        assert!(err.reason.contains("0001-01-01"), "{}", err.reason);
        e.ts = MIN_TS;
        assert!(validate_event(&e, &Limits::default(), now).is_ok());
    }
}
