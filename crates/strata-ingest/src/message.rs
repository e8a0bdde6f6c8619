//! Turning one Kafka message into an event, with the same decoding and validation as REST.
//!
//! A message holds one event as a JSON object (the public Event JSON). Anything else, a
//! missing value, bytes that are not UTF-8, a body over `max_body_bytes`, malformed JSON or an
//! event that breaks a limit, is rejected with the field and the reason, and goes to the
//! dead-letter topic.

use strata_types::{
    Event, Limits,
    decode::decode_event,
    validate::{FieldError, validate_event},
};

/// Decodes and validates one message value at server time `now` (epoch micros).
pub fn decode_message(
    value: Option<&[u8]>,
    limits: &Limits,
    now: i64,
) -> Result<Event, FieldError> {
    let bytes = value
        .ok_or_else(|| FieldError::new("", "the message has no value; expected one JSON event"))?;
    if bytes.len() > limits.max_body_bytes {
        return Err(FieldError::new(
            "",
            format!(
                "the message is {} bytes; the limit is {} (max_body_bytes)",
                bytes.len(),
                limits.max_body_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FieldError::new("", format!("the message is not UTF-8 ({e})")))?;
    let event = decode_event(text, limits)?;
    validate_event(&event, limits, now)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    fn valid(id: &str) -> String {
        format!(
            r#"{{"tenant":"acme","stream":"click","key":"u1","id":"{id}","ts":{NOW},"payload":{{"a": 1}}}}"#
        )
    }

    #[test]
    fn valid_events_decode_like_rest() {
        let e = decode_message(Some(valid("e1").as_bytes()), &Limits::default(), NOW).unwrap();
        assert_eq!(e.id, "e1");
        // Stored compact, like REST payloads.
        assert_eq!(e.payload.as_deref(), Some(r#"{"a":1}"#));
    }

    #[test]
    fn rejections_name_field_and_reason() {
        let limits = Limits::default();
        let reject = |v: Option<&[u8]>| decode_message(v, &limits, NOW).unwrap_err();

        let e = reject(None);
        assert_eq!(e.field, "");
        assert!(e.reason.contains("no value"), "{}", e.reason);

        let e = reject(Some(b"\xff\xfe"));
        assert!(e.reason.contains("UTF-8"), "{}", e.reason);

        let e = reject(Some(b"{not json"));
        assert_eq!(e.field, "");
        assert!(e.reason.contains("JSON object"), "{}", e.reason);

        let e = reject(Some(br#"[1, 2]"#));
        assert!(e.reason.contains("JSON object"), "{}", e.reason);

        let late = valid("x").replace(&NOW.to_string(), "0");
        let aged = Limits {
            max_age: Some(std::time::Duration::from_secs(86_400)),
            ..Limits::default()
        };
        let e = decode_message(Some(late.as_bytes()), &aged, NOW).unwrap_err();
        assert_eq!(e.field, "ts");
        assert!(e.reason.contains("max_age"), "{}", e.reason);

        let e = reject(Some(valid("x").replace("acme", "ACME").as_bytes()));
        assert_eq!(e.field, "tenant");

        let small = Limits {
            max_body_bytes: 10,
            ..Limits::default()
        };
        let e = decode_message(Some(valid("x").as_bytes()), &small, NOW).unwrap_err();
        assert!(e.reason.contains("max_body_bytes"), "{}", e.reason);
    }
}
