//! Conversions between the protobuf messages and Strata's types.

use prost_types::Timestamp;
use strata_proto::v1 as pb;
use strata_types::{
    Event, Rejection, StoredEvent,
    time::MICROS_PER_SEC,
    validate::{FieldError, normalize_payload},
};

const NANOS_PER_MICRO: i64 = 1_000;

/// Epoch microseconds of a timestamp; sub-microsecond digits are truncated like RFC 3339
/// input on the REST side.
pub(crate) fn timestamp_to_micros(t: &Timestamp) -> Result<i64, String> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(format!(
            "nanos must be from 0 to 999,999,999, got {}",
            t.nanos
        ));
    }
    t.seconds
        .checked_mul(MICROS_PER_SEC)
        .and_then(|s| s.checked_add(i64::from(t.nanos) / NANOS_PER_MICRO))
        .ok_or_else(|| format!("{} s is out of range", t.seconds))
}

/// The timestamp of epoch microseconds.
pub(crate) fn micros_to_timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(MICROS_PER_SEC),
        // The remainder is below 10^6, so the product fits an i32.
        nanos: i32::try_from(micros.rem_euclid(MICROS_PER_SEC) * NANOS_PER_MICRO)
            .unwrap_or_default(),
    }
}

/// An event from its protobuf form, its payload in stored form (compact, at most
/// `max_payload_depth` deep, no key twice); validation against limits happens afterwards,
/// exactly as for REST.
pub(crate) fn event_from_proto(
    e: pb::Event,
    max_payload_depth: usize,
) -> Result<Event, FieldError> {
    let ts =
        e.ts.as_ref()
            .ok_or_else(|| FieldError::new("ts", "is required"))?;
    let ts = timestamp_to_micros(ts).map_err(|reason| FieldError::new("ts", reason))?;
    let payload = if e.payload.is_empty() {
        None
    } else {
        Some(normalize_payload(&e.payload, max_payload_depth)?)
    };
    Ok(Event {
        tenant: e.tenant,
        stream: e.stream,
        key: e.key,
        id: e.id,
        ts,
        value: e.value,
        attrs: e.attrs.into_iter().collect(),
        payload,
    })
}

/// The protobuf form of a stored event.
pub(crate) fn stored_to_proto(s: StoredEvent) -> pb::StoredEvent {
    let StoredEvent {
        event,
        ingest_ts,
        seq,
    } = s;
    pb::StoredEvent {
        event: Some(pb::Event {
            tenant: event.tenant,
            stream: event.stream,
            key: event.key,
            id: event.id,
            ts: Some(micros_to_timestamp(event.ts)),
            value: event.value,
            attrs: event.attrs.into_iter().collect(),
            payload: event.payload.unwrap_or_default(),
        }),
        ingest_ts: Some(micros_to_timestamp(ingest_ts)),
        seq,
    }
}

/// The protobuf form of a rejection, its index shifted by `offset` (events of earlier
/// messages of a stream).
pub(crate) fn rejection_to_proto(r: Rejection, offset: usize) -> pb::Rejection {
    let index = r.index.saturating_add(offset);
    pb::Rejection {
        index: u32::try_from(index).unwrap_or(u32::MAX),
        field: r.field,
        reason: r.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_and_reject_bad_nanos() {
        for micros in [0, 1, -1, 1_795_651_200_123_456, -1_795_651_200_123_456] {
            let t = micros_to_timestamp(micros);
            assert!((0..1_000_000_000).contains(&t.nanos));
            assert_eq!(timestamp_to_micros(&t).unwrap(), micros);
        }
        let truncated = Timestamp {
            seconds: 1,
            nanos: 999,
        };
        assert_eq!(timestamp_to_micros(&truncated).unwrap(), MICROS_PER_SEC);
        assert!(
            timestamp_to_micros(&Timestamp {
                seconds: 1,
                nanos: -1
            })
            .is_err()
        );
        assert!(
            timestamp_to_micros(&Timestamp {
                seconds: i64::MAX,
                nanos: 0
            })
            .is_err()
        );
    }

    #[test]
    fn events_name_their_bad_field() {
        let ok = pb::Event {
            tenant: "acme".into(),
            stream: "click".into(),
            key: "k".into(),
            id: "i".into(),
            ts: Some(micros_to_timestamp(1_795_651_200_000_000)),
            value: None,
            attrs: Default::default(),
            payload: r#"{"a": [1,  2]}"#.into(),
        };
        let e = event_from_proto(ok.clone(), 64).unwrap();
        // Stored compact, like REST payloads.
        assert_eq!(e.payload.as_deref(), Some(r#"{"a":[1,2]}"#));
        assert_eq!(e.ts, 1_795_651_200_000_000);

        let no_ts = pb::Event {
            ts: None,
            ..ok.clone()
        };
        assert_eq!(event_from_proto(no_ts, 64).unwrap_err().field, "ts");
        let bad_payload = pb::Event {
            payload: "{not json".into(),
            ..ok
        };
        assert_eq!(
            event_from_proto(bad_payload, 64).unwrap_err().field,
            "payload"
        );
    }
}
