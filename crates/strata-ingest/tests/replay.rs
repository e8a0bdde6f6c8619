//! Replaying a store into a Kafka topic: the topic holds exactly the replayed events in
//! order (value, key, headers), the summary's checksum equals one computed over what is read
//! back, and a source failure surfaces with the acknowledged prefix and its cursor.
//!
//! Runs against librdkafka's in-process mock cluster always, and against a real broker with
//! `--features server-tests` and `STRATA_TEST_KAFKA_BROKERS` (set by `scripts/test`, which
//! starts tansu); under that feature a missing broker is a failure, never a skip.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use common::{header, read_topic, unique};
use futures::StreamExt;
use rdkafka::{Message, mocking::MockCluster};
use strata_hot::{HotConfig, HotStore};
use strata_ingest::{ProducerConfig, ReplayRecord, replay_to_kafka};
use strata_tiering::{
    Flusher, FlusherConfig, ReplayChecksum, ReplayItem, ReplayLimits, ReplayRequest, Store,
};
use strata_types::{Event, TimeRange, decode::DecodedBatch, time::now_micros};

use strata_types::time::HOUR;

/// A store over real embedded hot and warm tiers holding `n` events of two tenants, half
/// of them flushed to warm.
async fn store(dir: &std::path::Path, n: usize) -> Store {
    let config = HotConfig::new(dir.join("hot.redb"));
    let hot = tokio::task::spawn_blocking(move || HotStore::open(config))
        .await
        .unwrap()
        .unwrap();
    let warm = strata_warm::open_warm(
        &strata_warm::WarmUrl::embedded(),
        &strata_warm::WarmConfig::new(dir),
    )
    .await
    .unwrap();
    let store = Store::new(Arc::new(hot), warm, "node-test", Default::default());
    let base = now_micros() - HOUR;
    let events: Vec<Event> = (0..n)
        .map(|i| Event {
            tenant: if i % 5 == 0 { "other" } else { "acme" }.into(),
            stream: ["click", "view"][i % 2].into(),
            key: format!("user-{}", i % 7),
            id: format!("evt-{:04}", (i * 31) % n),
            ts: base + (i as i64 / 2) * 1_000_000,
            value: Some(i as f64),
            attrs: [("page".to_string(), "/".to_string())].into(),
            payload: Some(format!(r#"{{"i": {i}, "s": "é\n"}}"#)),
        })
        .collect();
    let half = n / 2;
    for part in [&events[..half], &events[half..]] {
        store
            .ingest(DecodedBatch {
                events: part.to_vec(),
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        if part.len() == half {
            let flusher = Flusher::for_store(
                &store,
                FlusherConfig {
                    hot_retention: Duration::ZERO,
                    ..FlusherConfig::default()
                },
            );
            flusher.flush_due().await.unwrap();
        }
    }
    store
}

fn request() -> ReplayRequest {
    ReplayRequest::new(
        "acme",
        TimeRange {
            from: now_micros() - 2 * HOUR,
            to: now_micros() + HOUR,
        },
    )
}

async fn scenario(brokers: &str, create_topic: impl AsyncFn(&str)) {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path(), 400).await;
    let items: Vec<ReplayItem> = store
        .replay(request(), &ReplayLimits::default())
        .map(|r| r.unwrap())
        .collect()
        .await;
    assert!(items.len() > 250);

    // Straight from the store's replay stream into the topic.
    let topic = unique("replay");
    create_topic(&topic).await;
    let config = ProducerConfig::new(brokers);
    let acknowledged = AtomicU64::new(0);
    let records = store
        .replay(request(), &ReplayLimits::default())
        .map(|r| r.map(|item| ReplayRecord::from_item(&item)));
    let summary = replay_to_kafka(&config, &topic, records, &|s| {
        acknowledged.store(s.events, Ordering::SeqCst);
    })
    .await
    .unwrap();
    assert_eq!(summary.events, items.len() as u64);
    assert_eq!(acknowledged.load(Ordering::SeqCst), summary.events);
    assert_eq!(summary.first_ts, Some(items[0].event.event.ts));
    assert_eq!(summary.last_ts, items.last().map(|i| i.event.event.ts));
    assert_eq!(
        summary.cursor,
        items.last().map(|i| i.cursor.encode()),
        "the cursor after the last event"
    );
    let mut want = ReplayChecksum::new();
    items.iter().for_each(|i| want.update(i.json().as_bytes()));
    assert_eq!(summary.checksum, want.hex());

    // Read back from the start of the (single) partition: same events, same order.
    let back = read_topic(brokers, &topic, items.len(), Duration::from_secs(60)).await;
    assert_eq!(back.len(), items.len(), "every event exactly once");
    let mut got = ReplayChecksum::new();
    for (m, item) in back.iter().zip(&items) {
        let e = &item.event.event;
        let value = std::str::from_utf8(m.payload().unwrap()).unwrap();
        assert_eq!(value, item.json());
        got.update(value.as_bytes());
        assert_eq!(m.key(), Some(e.key.as_bytes()));
        assert_eq!(header(m, "tenant").as_deref(), Some("acme"));
        assert_eq!(header(m, "stream").as_deref(), Some(e.stream.as_str()));
        assert_eq!(header(m, "id").as_deref(), Some(e.id.as_str()));
    }
    assert_eq!(
        got.hex(),
        summary.checksum,
        "checksum of what was read back"
    );

    // A source that fails part way: the error names the acknowledged prefix and where to
    // resume; resuming from it completes the set.
    let topic = unique("replay-cut");
    create_topic(&topic).await;
    let cut = 100;
    let failing = futures::stream::iter(items.iter().enumerate().map(|(i, item)| {
        if i == cut {
            Err("the server went away")
        } else {
            Ok(ReplayRecord::from_item(item))
        }
    }));
    let failed = replay_to_kafka(&config, &topic, failing, &|_| {})
        .await
        .unwrap_err();
    assert!(failed.reason.contains("the server went away"), "{failed}");
    assert_eq!(failed.delivered.events, cut as u64);
    let cursor = failed.delivered.cursor.clone().unwrap();
    assert_eq!(cursor, items[cut - 1].cursor.encode());
    let resumed = ReplayRequest {
        after: Some(strata_tiering::ReplayCursor::decode(&cursor).unwrap()),
        ..request()
    };
    let records = store
        .replay(resumed, &ReplayLimits::default())
        .map(|r| r.map(|item| ReplayRecord::from_item(&item)));
    let rest = replay_to_kafka(&config, &topic, records, &|_| {})
        .await
        .unwrap();
    assert_eq!(failed.delivered.events + rest.events, items.len() as u64);
    let back = read_topic(brokers, &topic, items.len(), Duration::from_secs(60)).await;
    let ids: Vec<String> = back.iter().map(|m| header(m, "id").unwrap()).collect();
    let want: Vec<String> = items.iter().map(|i| i.event.event.id.clone()).collect();
    assert_eq!(ids, want);
}

#[test]
fn replay_lines_become_records() {
    let item = ReplayItem {
        event: strata_types::StoredEvent {
            event: Event {
                tenant: "acme".into(),
                stream: "click".into(),
                key: "user-1".into(),
                id: "e1".into(),
                ts: 1_700_000_000_000_001,
                value: None,
                attrs: Default::default(),
                payload: Some(r#"{"a":  1}"#.into()),
            },
            ingest_ts: 1_700_000_000_000_002,
            seq: 7,
        },
        cursor: strata_tiering::ReplayCursor {
            ts: 1_700_000_000_000_001,
            id: "e1".into(),
        },
    };
    let record = ReplayRecord::from_line(&item.line()).unwrap();
    assert_eq!(record, ReplayRecord::from_item(&item));
    assert!(ReplayRecord::from_line(r#"{"error":{"code":"internal"}}"#).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_the_mock_cluster() {
    let mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext> =
        MockCluster::new(1).expect("mock cluster");
    let brokers = mock.bootstrap_servers();
    scenario(&brokers, async |topic: &str| {
        mock.create_topic(topic, 1, 1).expect("create mock topic");
    })
    .await;
}

#[cfg(feature = "server-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_a_real_broker() {
    let brokers = std::env::var("STRATA_TEST_KAFKA_BROKERS").unwrap_or_default();
    assert!(
        !brokers.trim().is_empty(),
        "STRATA_TEST_KAFKA_BROKERS is not set: start a Kafka-protocol broker (scripts/test \
         starts tansu) and set it to its host:port"
    );
    let config = ProducerConfig::new(&brokers);
    scenario(&brokers, async |topic: &str| {
        let created = strata_ingest::ensure_topic(&config, topic, 1, 1)
            .await
            .expect("create topic");
        assert!(created, "{topic} is new");
    })
    .await;
}
