//! Realistic synthetic events, and their encodings for each protocol.
//!
//! Events look like product analytics traffic: a handful of tenants, a few event types,
//! keys (users) whose popularity follows a Zipf law, two or three low-cardinality attributes,
//! a value, a small JSON payload and a timestamp a moment before now. Each batch is drawn
//! from its own RNG seeded by `(seed, batch index)`, so a run's contents do not depend on how
//! the batches were spread over connections.

use std::fmt::Write as _;

use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Zipf};
use strata_proto::v1;
use strata_types::time::{MICROS_PER_SEC, format_rfc3339};

const TENANT_NAMES: [&str; 10] = [
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "wonka",
    "tyrell",
    "cyberdyne",
];
const STREAM_NAMES: [&str; 8] = [
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "purchase",
    "signup",
    "login",
    "error",
];
const REGIONS: [&str; 4] = ["eu-west", "us-east", "us-west", "ap-south"];
const DEVICES: [&str; 3] = ["web", "ios", "android"];
const PLANS: [&str; 3] = ["free", "pro", "enterprise"];
const PATHS: [&str; 6] = ["/", "/pricing", "/docs", "/cart", "/checkout", "/account"];
/// Events are stamped up to this long before the moment their batch is generated, like
/// producers that buffer briefly.
const MAX_AGE_MICROS: i64 = 2 * MICROS_PER_SEC;

/// Draws events; shared by all connections of a run.
#[derive(Debug, Clone)]
pub struct Generator {
    tenants: Vec<String>,
    streams: Vec<String>,
    keys: Zipf<f64>,
    seed: u64,
    run_id: String,
}

/// One generated event, borrowing its names from the [`Generator`].
#[derive(Debug, Clone, PartialEq)]
pub struct GenEvent<'a> {
    /// Tenant.
    pub tenant: &'a str,
    /// Stream.
    pub stream: &'a str,
    /// Key rank (1 = most popular).
    pub key: u64,
    /// Unique id.
    pub id: String,
    /// Event time, epoch microseconds.
    pub ts: i64,
    /// Measure.
    pub value: f64,
    /// Attributes, two or three.
    pub attrs: Vec<(&'static str, &'static str)>,
    /// JSON text.
    pub payload: String,
}

impl Generator {
    /// A generator over `tenants` tenants, `streams` streams and `keys` keys with Zipf
    /// exponent `zipf_s`. Ids start with `run_id`, so separate runs never collide.
    pub fn new(
        tenants: u32,
        streams: u32,
        keys: u64,
        zipf_s: f64,
        seed: u64,
        run_id: String,
    ) -> Result<Self, String> {
        let keys = Zipf::new(keys.max(1) as f64, zipf_s)
            .map_err(|e| format!("bad key distribution (--keys, --zipf-s): {e}"))?;
        Ok(Self {
            tenants: names(&TENANT_NAMES, "tenant", tenants),
            streams: names(&STREAM_NAMES, "stream", streams),
            keys,
            seed,
            run_id,
        })
    }

    /// Tenant names in use.
    pub fn tenants(&self) -> &[String] {
        &self.tenants
    }

    /// Stream names in use.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// Batch number `index` of `size` events, stamped just before `now` (epoch micros).
    pub fn batch(&self, index: u64, size: usize, now: i64) -> Vec<GenEvent<'_>> {
        let mut rng =
            SmallRng::seed_from_u64(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        (0..size)
            .map(|i| {
                let mut attrs = vec![
                    ("region", pick(&mut rng, &REGIONS)),
                    ("device", pick(&mut rng, &DEVICES)),
                ];
                if rng.random_bool(0.5) {
                    attrs.push(("plan", pick(&mut rng, &PLANS)));
                }
                let payload = format!(
                    r#"{{"session":"{:016x}","path":"{}","latency_ms":{}}}"#,
                    rng.random::<u64>(),
                    pick(&mut rng, &PATHS),
                    rng.random_range(1..2_000u32)
                );
                GenEvent {
                    tenant: &self.tenants[rng.random_range(0..self.tenants.len())],
                    stream: &self.streams[rng.random_range(0..self.streams.len())],
                    key: self.keys.sample(&mut rng) as u64,
                    id: format!("{}-{index}-{i}", self.run_id),
                    ts: now - rng.random_range(0..MAX_AGE_MICROS),
                    // Cents, like an amount or a duration: realistic and exact in decimal.
                    value: f64::from(rng.random_range(0..100_000u32)) / 100.0,
                    attrs,
                    payload,
                }
            })
            .collect()
    }
}

fn names(known: &[&str], prefix: &str, n: u32) -> Vec<String> {
    (0..n as usize)
        .map(|i| match known.get(i) {
            Some(name) => (*name).to_owned(),
            None => format!("{prefix}-{i}"),
        })
        .collect()
}

fn pick<R: Rng>(rng: &mut R, from: &[&'static str]) -> &'static str {
    from[rng.random_range(0..from.len())]
}

/// Writes one event as the public JSON shape. Every string the generator makes is plain
/// ASCII without quotes or backslashes, so no escaping is needed.
fn write_json(out: &mut String, e: &GenEvent<'_>) {
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        r#"{{"tenant":"{}","stream":"{}","key":"user-{}","id":"{}","ts":"{}","value":{},"attrs":{{"#,
        e.tenant,
        e.stream,
        e.key,
        e.id,
        format_rfc3339(e.ts),
        e.value
    );
    for (i, (k, v)) in e.attrs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#""{k}":"{v}""#);
    }
    out.push_str(r#"},"payload":"#);
    out.push_str(&e.payload);
    out.push('}');
}

/// One event as a Kafka message: its key and its JSON text.
pub fn kafka_message(e: &GenEvent<'_>) -> (String, Vec<u8>) {
    let mut out = String::with_capacity(320);
    write_json(&mut out, e);
    (format!("user-{}", e.key), out.into_bytes())
}

/// A JSON array body.
pub fn json_array(events: &[GenEvent<'_>]) -> Vec<u8> {
    let mut out = String::with_capacity(events.len() * 320 + 2);
    out.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(&mut out, e);
    }
    out.push(']');
    out.into_bytes()
}

/// An NDJSON body.
pub fn ndjson(events: &[GenEvent<'_>]) -> Vec<u8> {
    let mut out = String::with_capacity(events.len() * 320);
    for e in events {
        write_json(&mut out, e);
        out.push('\n');
    }
    out.into_bytes()
}

/// A gRPC `WriteRequest`.
pub fn proto(events: &[GenEvent<'_>]) -> v1::WriteRequest {
    v1::WriteRequest {
        events: events
            .iter()
            .map(|e| v1::Event {
                tenant: e.tenant.to_owned(),
                stream: e.stream.to_owned(),
                key: format!("user-{}", e.key),
                id: e.id.clone(),
                ts: Some(prost_types::Timestamp {
                    seconds: e.ts.div_euclid(MICROS_PER_SEC),
                    // The remainder is below 10^6, so times 1000 fits an i32.
                    nanos: (e.ts.rem_euclid(MICROS_PER_SEC) * 1000) as i32,
                }),
                value: Some(e.value),
                attrs: e
                    .attrs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                payload: e.payload.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use strata_types::{
        Limits,
        decode::{BodyFormat, decode_batch},
    };

    use super::*;

    const NOW: i64 = 1_795_000_000_000_000;

    fn generator(seed: u64) -> Generator {
        Generator::new(3, 4, 1000, 1.1, seed, "r1".into()).unwrap()
    }

    #[test]
    fn bodies_decode_without_rejections() {
        let g = generator(7);
        let events = g.batch(0, 200, NOW);
        for (body, format) in [
            (json_array(&events), BodyFormat::JsonArray),
            (ndjson(&events), BodyFormat::Ndjson),
        ] {
            let batch = decode_batch(&body, format, &Limits::default(), NOW).unwrap();
            assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
            assert_eq!(batch.events.len(), 200);
            for (got, sent) in batch.events.iter().zip(&events) {
                assert_eq!(got.id, sent.id);
                assert_eq!(got.ts, sent.ts);
                assert_eq!(got.value, Some(sent.value));
                assert_eq!(got.payload.as_deref(), Some(sent.payload.as_str()));
                assert!((2..=3).contains(&got.attrs.len()));
                assert!(sent.ts <= NOW && sent.ts > NOW - MAX_AGE_MICROS);
            }
        }
    }

    #[test]
    fn proto_carries_the_same_event() {
        let g = generator(7);
        let events = g.batch(3, 5, NOW);
        let req = proto(&events);
        assert_eq!(req.events.len(), 5);
        let (p, e) = (&req.events[0], &events[0]);
        let ts = p.ts.unwrap();
        assert_eq!(
            ts.seconds * MICROS_PER_SEC + i64::from(ts.nanos) / 1000,
            e.ts
        );
        assert_eq!(p.id, e.id);
        assert_eq!(p.attrs.len(), e.attrs.len());
    }

    #[test]
    fn ids_are_unique_and_contents_reproducible() {
        let g = generator(42);
        let mut ids = HashSet::new();
        for index in 0..20 {
            for e in g.batch(index, 100, NOW) {
                assert!(ids.insert(e.id.clone()), "duplicate id {}", e.id);
            }
        }
        assert_eq!(g.batch(5, 10, NOW), generator(42).batch(5, 10, NOW));
        assert_ne!(g.batch(5, 10, NOW), generator(43).batch(5, 10, NOW));
    }

    #[test]
    fn keys_are_skewed_and_everything_is_used() {
        let g = generator(1);
        let events = g.batch(0, 20_000, NOW);
        let mut per_key: HashMap<u64, usize> = HashMap::new();
        let mut tenants = HashSet::new();
        let mut streams = HashSet::new();
        for e in &events {
            assert!((1..=1000).contains(&e.key));
            *per_key.entry(e.key).or_default() += 1;
            tenants.insert(e.tenant);
            streams.insert(e.stream);
        }
        // Zipf(1000, 1.1): the top key takes about a sixth of the traffic, key 100 well
        // under a percent.
        let top = per_key.get(&1).copied().unwrap_or(0);
        let hundredth = per_key.get(&100).copied().unwrap_or(0);
        assert!(top > 2_000, "top key {top}");
        assert!(top > 20 * hundredth.max(1), "{top} vs {hundredth}");
        assert_eq!(tenants.len(), 3);
        assert_eq!(streams.len(), 4);
        assert_eq!(g.tenants(), ["acme", "globex", "initech"]);
    }

    #[test]
    fn names_beyond_the_list_are_numbered() {
        let g = Generator::new(12, 9, 10, 0.0, 0, "r".into()).unwrap();
        assert_eq!(g.tenants()[11], "tenant-11");
        assert_eq!(g.streams()[8], "stream-8");
        assert!(Generator::new(1, 1, 10, -1.0, 0, "r".into()).is_err());
    }
}
