//! Property tests over everything a client controls that this crate decodes: request
//! bodies (JSON arrays and NDJSON), single events, query parameters and times. Whatever the
//! bytes, decoding never panics, a rejected event always names its field (or the event as a
//! whole, for malformed JSON), an accepted event satisfies every limit, and a stored payload
//! is one line of compact JSON.
//!
//! Inputs mix arbitrary bytes with JSON-shaped text built from the fields and hostile values
//! Strata has seen (duplicate keys, control characters, deep nesting, huge numbers, extreme
//! times), so the search reaches past the first parse error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use strata_types::{
    AggregateQuery, Limits, QueryParams,
    decode::{BodyFormat, decode_batch},
    json,
    time::{MAX_TS, MIN_TS, parse_param},
};

const NOW: i64 = 1_795_651_200_000_000;

/// A JSON-ish value: valid, nearly valid or hostile text.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"a\\nb\"".to_owned()),
        Just("\"acme\"".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("-9223372036854775808".to_owned()),
        Just("\"2026-11-26T00:00:00Z\"".to_owned()),
        Just("\"9999-12-31T23:59:59Z\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[ -~]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
        "[\\[\\]{}\",:a-z0-9 ]{0,16}",
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|kv| {
                let body: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", body.join(" , "))
            }),
        ]
    })
}

/// An event-shaped object: known fields (maybe twice, maybe missing) with hostile values.
fn event() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        Just("tenant"),
        Just("stream"),
        Just("key"),
        Just("id"),
        Just("ts"),
        Just("value"),
        Just("attrs"),
        Just("payload"),
        Just("extra"),
    ];
    prop::collection::vec((field, value()), 0..10).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

fn known_field(field: &str) -> bool {
    let base = field.split('.').next().unwrap_or_default();
    field.is_empty()
        || [
            "tenant", "stream", "key", "id", "ts", "value", "attrs", "payload", "extra",
        ]
        .contains(&base)
}

fn check_body(body: &[u8], format: BodyFormat) {
    let limits = Limits::default();
    let Ok(batch) = decode_batch(body, format, &limits, NOW) else {
        return;
    };
    for r in &batch.rejected {
        assert!(known_field(&r.field), "rejection names `{}`", r.field);
        assert!(!r.reason.is_empty());
    }
    for e in &batch.events {
        assert!(e.ts >= MIN_TS && e.ts <= MAX_TS, "ts {}", e.ts);
        assert!(e.value.is_none_or(f64::is_finite));
        for s in [&e.id, &e.key] {
            assert!(!s.chars().any(char::is_control), "control character kept");
        }
        if let Some(p) = &e.payload {
            assert!(!p.contains('\n'), "a payload spans lines: {p:?}");
            serde_json::from_str::<&serde_json::value::RawValue>(p).expect("payload is JSON");
            assert_eq!(json::compact(p, usize::MAX).as_deref(), Ok(p.as_str()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        check_body(&body, BodyFormat::JsonArray);
        check_body(&body, BodyFormat::Ndjson);
    }

    #[test]
    fn event_shaped_bodies_are_accepted_only_when_valid(events in prop::collection::vec(event(), 1..6)) {
        check_body(format!("[{}]", events.join(",")).as_bytes(), BodyFormat::JsonArray);
        check_body(events.join("\n").as_bytes(), BodyFormat::Ndjson);
    }

    #[test]
    fn one_hostile_field_is_the_one_named(
        field in prop_oneof![Just("tenant"), Just("stream"), Just("key"), Just("id"), Just("ts"),
                             Just("value"), Just("attrs"), Just("payload")],
        v in value(),
    ) {
        let mut fields = vec![
            ("tenant", "\"acme\"".to_owned()),
            ("stream", "\"click\"".to_owned()),
            ("key", "\"u1\"".to_owned()),
            ("id", "\"e1\"".to_owned()),
            ("ts", NOW.to_string()),
            ("value", "1.5".to_owned()),
            ("attrs", "{\"page\":\"/\"}".to_owned()),
            ("payload", "{\"a\": [1, 2]}".to_owned()),
        ];
        for f in &mut fields {
            if f.0 == field {
                f.1 = v.clone();
            }
        }
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        let body = format!("[{{{}}}]", body.join(","));
        let Ok(batch) = decode_batch(body.as_bytes(), BodyFormat::JsonArray, &Limits::default(), NOW) else {
            return Ok(());
        };
        check_body(body.as_bytes(), BodyFormat::JsonArray);
        if let Some(r) = batch.rejected.first() {
            // The hostile field, or (text that is not JSON at all) the event as a whole.
            prop_assert!(
                r.field == field || r.field.starts_with(&format!("{field}.")) || r.field.is_empty(),
                "{} broke `{}`, named `{}`: {}", v, field, r.field, r.reason
            );
        }
    }

    #[test]
    fn compacting_keeps_every_value(v in value()) {
        if serde_json::from_str::<serde_json::Value>(&v).is_ok() {
            match json::compact(&v, 64) {
                Ok(c) => {
                    // Same document, read back: only whitespace outside strings went.
                    let a: serde_json::Value = serde_json::from_str(&v).unwrap();
                    let b: serde_json::Value = serde_json::from_str(&c).unwrap();
                    prop_assert_eq!(a, b);
                    prop_assert!(!c.contains('\n'));
                }
                Err(json::PayloadError::DuplicateKey { .. } | json::PayloadError::TooDeep { .. }) => {}
            }
        }
    }

    #[test]
    fn query_parameters_never_panic_and_name_their_field(
        from in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[ -~]{0,30}"],
        to in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[ -~]{0,30}"],
        bucket in prop_oneof![Just("1s".to_owned()), Just("1d".to_owned()), "[0-9]{1,20}[a-z]{0,3}"],
        agg in "[a-z]{0,6}",
        group_by in proptest::option::of("[ -~]{0,12}"),
        filter in proptest::option::of("[ -~]{0,12}"),
    ) {
        let params = QueryParams {
            tenant: "acme",
            from: &from,
            to: &to,
            bucket: &bucket,
            agg: &agg,
            stream: None,
            group_by: group_by.as_deref(),
            filter: filter.as_deref(),
        };
        match AggregateQuery::from_params(&params) {
            Ok(q) => {
                prop_assert!(q.range.from >= MIN_TS && q.range.to <= MAX_TS);
                prop_assert!(q.range.from < q.range.to);
            }
            Err(e) => prop_assert!(
                ["from", "to", "bucket", "agg", "group_by", "filter"].contains(&e.field.as_str()),
                "field `{}`", e.field
            ),
        }
    }

    #[test]
    fn times_parse_within_bounds_or_fail(s in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), "[ -~]{0,40}"]) {
        if let Ok(t) = parse_param(&s) {
            prop_assert!((MIN_TS..=MAX_TS).contains(&t));
        }
    }
}
