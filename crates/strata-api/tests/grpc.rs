//! The gRPC API end to end: a server on a free port over a real hot tier, driven with the
//! generated tonic clients.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{HOUR, MIN, TestServer, base_ts, rfc};
use prost_types::{Duration, Timestamp};
use strata_proto::v1::{self as pb, ingest_client::IngestClient, query_client::QueryClient};
use tonic::{Code, transport::Channel};

fn ts(micros: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

fn event(tenant: &str, id: &str, at: i64) -> pb::Event {
    pb::Event {
        tenant: tenant.into(),
        stream: "click".into(),
        key: "user-1".into(),
        id: id.into(),
        ts: ts(at),
        value: None,
        attrs: Default::default(),
        payload: String::new(),
    }
}

async fn clients(server: &TestServer) -> (IngestClient<Channel>, QueryClient<Channel>) {
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    (
        IngestClient::new(channel.clone()),
        QueryClient::new(channel),
    )
}

fn aggregate_request(tenant: &str, from: i64, to: i64, agg: pb::Agg) -> pb::AggregateRequest {
    pb::AggregateRequest {
        tenant: tenant.into(),
        from: ts(from),
        to: ts(to),
        bucket: Some(Duration {
            seconds: 600,
            nanos: 0,
        }),
        agg: agg as i32,
        stream: None,
        group_by: String::new(),
        filter: String::new(),
    }
}

async fn count(query: &mut QueryClient<Channel>, tenant: &str) -> f64 {
    let t = base_ts();
    let answer = query
        .aggregate(aggregate_request(
            tenant,
            t - HOUR,
            t + 2 * HOUR,
            pb::Agg::Count,
        ))
        .await
        .unwrap()
        .into_inner();
    answer.buckets.iter().filter_map(|b| b.value).sum()
}

/// The status's field metadata, when set.
fn field(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get("strata-error-field")
        .map(|v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_get_event_and_aggregate() {
    let server = TestServer::start().await;
    let (mut ingest, mut query) = clients(&server).await;
    let t = base_ts();
    let mut first = event("acme", "g-1", t + 90 * 1_000_000 + 123_456);
    first.value = Some(2.5);
    first.attrs.insert("page".into(), "/home".into());
    first.payload = r#"{"z": 1,  "a": [true]}"#.into();
    let mut second = event("acme", "g-2", t + 11 * MIN);
    second.key = "user-2".into();
    second.value = Some(4.0);
    let answer = ingest
        .write(pb::WriteRequest {
            events: vec![first.clone(), second],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 2);
    assert_eq!(answer.duplicates, 0);
    assert!(answer.rejected.is_empty());

    let stored = query
        .get_event(pb::GetEventRequest {
            tenant: "acme".into(),
            id: "g-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .event
        .unwrap();
    // Stored as sent, with the payload compacted (whitespace outside strings removed).
    let mut want = first.clone();
    want.payload = strata_types::json::compact(&first.payload, 64).unwrap();
    assert_eq!(
        stored.event.as_ref(),
        Some(&want),
        "stored as sent, payload compact"
    );
    assert!(stored.ingest_ts.is_some());

    // Written over gRPC, read over REST: the same store and the same JSON.
    let (status, json) = server.get_json("/v1/events/g-1?tenant=acme").await;
    assert_eq!(status, 200);
    assert_eq!(json["ts"], rfc(t + 90 * 1_000_000 + 123_456));
    assert_eq!(json["payload"], serde_json::json!({"z": 1, "a": [true]}));

    let mut request = aggregate_request("acme", t, t + HOUR, pb::Agg::Sum);
    request.group_by = "key".into();
    let answer = query.aggregate(request).await.unwrap().into_inner();
    assert_eq!(answer.tiers, vec!["hot".to_string()]);
    assert!(!answer.cache.is_empty());
    let got: Vec<(Option<Timestamp>, Option<String>, Option<f64>)> = answer
        .buckets
        .into_iter()
        .map(|b| (b.start, b.group, b.value))
        .collect();
    assert_eq!(
        got,
        vec![
            (ts(t), Some("user-1".into()), Some(2.5)),
            (ts(t + 10 * MIN), Some("user-2".into()), Some(4.0)),
        ]
    );

    let mut request = aggregate_request("acme", t, t + HOUR, pb::Agg::Count);
    request.filter = "attr:page=/home".into();
    request.stream = Some("click".into());
    let answer = query.aggregate(request).await.unwrap().into_inner();
    assert_eq!(answer.buckets.len(), 1);
    assert_eq!(answer.buckets[0].value, Some(1.0));
    assert_eq!(answer.buckets[0].group, None);

    // Idempotent: writing the same event again is a duplicate.
    let again = ingest
        .write(pb::WriteRequest {
            events: vec![first],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.accepted, again.duplicates), (1, 1));
    assert_eq!(count(&mut query, "acme").await, 2.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_stream_answers_one_summary() {
    let server = TestServer::start().await;
    let (mut ingest, mut query) = clients(&server).await;
    let t = base_ts();
    let mut bad = event("acme", "s-bad", t);
    bad.payload = "{not json".into();
    let messages = vec![
        pb::WriteRequest {
            events: vec![event("acme", "s-1", t), event("acme", "s-2", t + MIN)],
        },
        pb::WriteRequest { events: vec![] },
        pb::WriteRequest {
            events: vec![event("acme", "s-3", t + 2 * MIN), bad],
        },
        pb::WriteRequest {
            events: vec![event("acme", "s-1", t)],
        },
    ];
    let answer = ingest
        .write_stream(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.accepted, 4);
    assert_eq!(answer.duplicates, 1);
    assert_eq!(answer.rejections_omitted, 0);
    assert_eq!(answer.rejected.len(), 1);
    // Index across the stream: two events, then an empty message, then the second event of
    // the third message.
    assert_eq!(answer.rejected[0].index, 3);
    assert_eq!(answer.rejected[0].field, "payload");
    assert_eq!(count(&mut query, "acme").await, 3.0);

    // A stream without events is refused.
    let status = ingest
        .write_stream(tokio_stream::iter(vec![pb::WriteRequest {
            events: vec![],
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let (mut ingest, mut query) = clients(&server).await;
    let t = base_ts();

    let status = ingest
        .write(pb::WriteRequest { events: vec![] })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.metadata().get("strata-error-code").unwrap(),
        "empty_batch"
    );

    let mut no_ts = event("bad", "b-1", t);
    no_ts.ts = None;
    let mut bad_payload = event("bad", "b-2", t);
    bad_payload.payload = "[1,".into();
    let mut future = event("bad", "b-3", t);
    future.ts = ts(common::HOUR * 2 + strata_types::time::now_micros());
    let mut bad_nanos = event("bad", "b-4", t);
    bad_nanos.ts = Some(Timestamp {
        seconds: t / 1_000_000,
        nanos: 2_000_000_000,
    });
    let mut long_key = event("bad", "b-5", t);
    long_key.key = "k".repeat(300);
    let bad_tenant = event("Bad", "b-6", t);
    let mut infinite = event("bad", "b-7", t);
    infinite.value = Some(f64::INFINITY);
    for (bad, want) in [
        (no_ts, "ts"),
        (bad_payload, "payload"),
        (future, "ts"),
        (bad_nanos, "ts"),
        (long_key, "key"),
        (bad_tenant, "tenant"),
        (infinite, "value"),
    ] {
        let status = ingest
            .write(pb::WriteRequest { events: vec![bad] })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{want}: {status:?}");
        assert_eq!(field(&status), Some(want), "{status:?}");
        assert!(
            status.message().contains(&format!("{want}: ")),
            "{status:?}"
        );
    }
    assert_eq!(count(&mut query, "bad").await, 0.0);

    // Aggregate parameters.
    let base = aggregate_request("bad", t, t + HOUR, pb::Agg::Count);
    let cases: Vec<(pb::AggregateRequest, &str)> = vec![
        (
            pb::AggregateRequest {
                tenant: String::new(),
                ..base.clone()
            },
            "tenant",
        ),
        (
            pb::AggregateRequest {
                from: None,
                ..base.clone()
            },
            "from",
        ),
        (
            pb::AggregateRequest {
                to: ts(t - HOUR),
                ..base.clone()
            },
            "to",
        ),
        (
            pb::AggregateRequest {
                bucket: Some(Duration {
                    seconds: 0,
                    nanos: 500_000_000,
                }),
                ..base.clone()
            },
            "bucket",
        ),
        (
            pb::AggregateRequest {
                bucket: Some(Duration {
                    seconds: 2 * 86_400,
                    nanos: 0,
                }),
                ..base.clone()
            },
            "bucket",
        ),
        (
            pb::AggregateRequest {
                agg: pb::Agg::Unspecified as i32,
                ..base.clone()
            },
            "agg",
        ),
        (
            pb::AggregateRequest {
                group_by: "attr:".into(),
                ..base.clone()
            },
            "group_by",
        ),
        (
            pb::AggregateRequest {
                filter: "page".into(),
                ..base.clone()
            },
            "filter",
        ),
        (
            pb::AggregateRequest {
                stream: Some("UPPER".into()),
                ..base.clone()
            },
            "stream",
        ),
    ];
    for (request, want) in cases {
        let status = query.aggregate(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{want}: {status:?}");
        assert_eq!(field(&status), Some(want), "{status:?}");
        assert!(status.message().starts_with(want), "{status:?}");
    }

    // Lookups: unknown ids and other tenants' events are NOT_FOUND; bad tenants invalid.
    ingest
        .write(pb::WriteRequest {
            events: vec![event("acme", "mine", t)],
        })
        .await
        .unwrap();
    for (tenant, id, code) in [
        ("acme", "missing", Code::NotFound),
        ("rival", "mine", Code::NotFound),
        ("", "mine", Code::InvalidArgument),
        ("acme", "", Code::InvalidArgument),
    ] {
        let status = query
            .get_event(pb::GetEventRequest {
                tenant: tenant.into(),
                id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{tenant}/{id}: {status:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_max_body_bytes_are_refused() {
    let limits = strata_types::Limits {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    };
    let server = TestServer::start_with(limits, |_| {}).await;
    let (mut ingest, mut query) = clients(&server).await;
    let t = base_ts();
    let events = (0..200)
        .map(|i| {
            let mut e = event("acme", &format!("big-{i}"), t);
            e.payload = format!(r#""{}""#, "x".repeat(1024));
            e
        })
        .collect();
    let status = ingest.write(pb::WriteRequest { events }).await.unwrap_err();
    assert_ne!(status.code(), Code::Ok);
    assert_eq!(count(&mut query, "acme").await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serves_until_shutdown() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    let server = TestServer::start().await;
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "strata.v1.Ingest", "strata.v1.Query"] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }

    let mut watch = health
        .watch(HealthCheckRequest {
            service: "strata.v1.Ingest".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    server.cancel();
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), watch.message())
        .await
        .expect("a status change after shutdown")
        .unwrap()
        .unwrap();
    assert_eq!(next.status(), ServingStatus::NotServing);
    drop(watch);
    drop(health);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_in_both_versions() {
    let server = TestServer::start().await;
    let channel = Channel::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();

    {
        use tonic_reflection::pb::v1::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel.clone());
        let requests = vec![
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            },
            ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::FileContainingSymbol(
                    "strata.v1.Query".into(),
                )),
            },
        ];
        let mut answers = client
            .server_reflection_info(tokio_stream::iter(requests))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        for want in [
            "strata.v1.Ingest",
            "strata.v1.Query",
            "grpc.health.v1.Health",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
        let Some(MessageResponse::FileDescriptorResponse(files)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("expected file descriptors");
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut client = ServerReflectionClient::new(channel);
        let mut answers = client
            .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            }]))
            .await
            .unwrap()
            .into_inner();
        let Some(MessageResponse::ListServicesResponse(list)) =
            answers.message().await.unwrap().unwrap().message_response
        else {
            panic!("expected a service list");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.iter().any(|n| n == "strata.v1.Ingest"), "{names:?}");
        assert!(names.iter().any(|n| n == "strata.v1.Query"), "{names:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_are_counted_in_metrics() {
    let server = TestServer::start().await;
    let (_, mut query) = clients(&server).await;
    let _ = query
        .get_event(pb::GetEventRequest {
            tenant: "acme".into(),
            id: "absent".into(),
        })
        .await
        .unwrap_err();
    let (status, _, text) = server.get_raw("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.lines()
            .any(|l| l.starts_with("strata_grpc_requests_total")
                && l.contains(r#"method="GetEvent""#)
                && l.contains(r#"code="NOT_FOUND""#)),
        "{text}"
    );
    server.stop().await;
}
