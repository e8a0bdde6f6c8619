//! The archive API over REST and gRPC against a real store: hot redb, embedded warm and a
//! local-directory Parquet archive filled by the exporter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeSet, path::PathBuf, sync::Arc, time::Duration};

use serde_json::Value;
use strata_api::{ApiConfig, Server, install_metrics_recorder};
use strata_cold::{ColdConfig, ColdStore, S3Options, open_blob_store};
use strata_core::cold::DAY_MICROS;
use strata_hot::{HotConfig, HotStore};
use strata_proto::v1::{self as pb, archive_client::ArchiveClient};
use strata_tiering::{Exporter, ExporterConfig, Store};
use strata_types::{
    Event, Limits,
    decode::DecodedBatch,
    time::{format_rfc3339, now_micros},
};
use strata_warm::WarmConfig;
use tokio_util::sync::CancellationToken;
use tonic::Code;

struct Rig {
    http: String,
    grpc: String,
    client: reqwest::Client,
    cold_dir: PathBuf,
    events: Vec<Event>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn day0() -> i64 {
    now_micros().div_euclid(DAY_MICROS) * DAY_MICROS - 3 * DAY_MICROS
}

fn events() -> Vec<Event> {
    (0..400)
        .map(|i| Event {
            tenant: if i % 3 == 0 { "other" } else { "acme" }.into(),
            stream: ["click", "view"][i % 2].into(),
            key: format!("user-{}", i % 9),
            id: format!("e-{i}"),
            ts: day0() + ((i as i64 / 2) % 2) * DAY_MICROS + i as i64 * 60_000_000,
            value: Some(i as f64),
            attrs: [("page".to_string(), format!("/p{}", i % 3))].into(),
            payload: (i % 5 == 0).then(|| format!(r#"{{"n": {i},  "s": "é"}}"#)),
        })
        .collect()
}

async fn rig(with_cold: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let hot_config = HotConfig::new(dir.path().join("hot.redb"));
    let hot = tokio::task::spawn_blocking(move || HotStore::open(hot_config))
        .await
        .unwrap()
        .unwrap();
    let warm = strata_warm::open_warm(&"embedded".parse().unwrap(), &WarmConfig::new(dir.path()))
        .await
        .unwrap();
    let cold_dir = dir.path().join("cold");
    let mut store = Store::new(Arc::new(hot), warm.clone(), "node-a", Limits::default());
    let events = events();
    if with_cold {
        let blobs = open_blob_store(
            &format!("file://{}", cold_dir.display()),
            &S3Options::default(),
        )
        .await
        .unwrap();
        let config = ColdConfig {
            orphan_grace: Duration::ZERO,
            ..ColdConfig::default()
        };
        // The same warm backend serves the store and the hand-off, as in `strata serve`.
        store = store.with_cold(Arc::new(ColdStore::new(blobs, config)), warm);
        let report = store
            .ingest(DecodedBatch {
                events: events.clone(),
                rejected: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(report.accepted, events.len());
        let exporter = Exporter::for_store(
            &store,
            ExporterConfig {
                export_after: Duration::from_secs(1),
                ..ExporterConfig::default()
            },
        )
        .unwrap();
        while exporter.export_due().await.unwrap().more_due {}
    }
    let server = Server::bind(
        ApiConfig {
            http_addr: "127.0.0.1:0".parse().unwrap(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            max_concurrent_requests: 16,
            request_timeout: Duration::from_secs(20),
        },
        store,
        install_metrics_recorder().unwrap(),
    )
    .await
    .unwrap();
    let http = format!("http://{}", server.http_addr());
    let grpc = format!("http://{}", server.grpc_addr());
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    Rig {
        http,
        grpc,
        client: reqwest::Client::new(),
        cold_dir,
        events,
        shutdown,
        _dir: dir,
    }
}

impl Rig {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.http))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn grpc(&self) -> ArchiveClient<tonic::transport::Channel> {
        ArchiveClient::connect(self.grpc.clone()).await.unwrap()
    }

    fn ids(&self, tenant: &str) -> BTreeSet<String> {
        self.events
            .iter()
            .filter(|e| e.tenant == tenant)
            .map(|e| e.id.clone())
            .collect()
    }

    /// Every Parquet file of the archive.
    fn parquet_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "parquet") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.cold_dir.join("tenant=acme"), &mut out);
        out.sort();
        out
    }
}

fn range_query() -> String {
    format!(
        "from={}&to={}",
        format_rfc3339(day0()),
        format_rfc3339(day0() + 3 * DAY_MICROS)
    )
}

fn ts(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_read_return_exactly_the_tenants_archive() {
    let rig = rig(true).await;
    let (status, body) = rig.get("/v1/archive/partitions?tenant=acme").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let parts = v["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 4, "two streams on two days: {body}");
    let rows: u64 = parts.iter().map(|p| p["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, rig.ids("acme").len() as u64);
    let dates: Vec<&str> = parts.iter().map(|p| p["date"].as_str().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");

    let (status, body) = rig
        .get(&format!("/v1/archive/events?tenant=acme&{}", range_query()))
        .await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["tenant"] == "acme" && l.get("error").is_none())
    );
    let got: BTreeSet<String> = lines
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), lines.len(), "each event once");
    assert_eq!(got, rig.ids("acme"));
    // Payloads come back byte for byte.
    let e5 = body.lines().find(|l| l.contains(r#""id":"e-5""#)).unwrap();
    assert!(e5.contains(r#"{"n": 5,  "s": "é"}"#), "{e5}");

    let (status, body) = rig
        .get(&format!(
            "/v1/archive/events?tenant=acme&stream=view&{}",
            range_query()
        ))
        .await;
    assert_eq!(status, 200);
    assert!(body.lines().all(|l| l.contains(r#""stream":"view""#)));
    assert!(body.lines().count() > 0);

    let mut grpc = rig.grpc().await;
    let mut stream = grpc
        .read(pb::ReadArchiveRequest {
            tenant: "other".into(),
            from: Some(ts(day0())),
            to: Some(ts(day0() + 3 * DAY_MICROS)),
            stream: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut ids = BTreeSet::new();
    while let Some(batch) = stream.message().await.unwrap() {
        for e in batch.events {
            assert_eq!(e.event.as_ref().unwrap().tenant, "other");
            assert!(ids.insert(e.event.unwrap().id));
        }
    }
    assert_eq!(ids, rig.ids("other"));
    let listed = grpc
        .list(pb::ListPartitionsRequest {
            tenant: "other".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let rows: u64 = listed.partitions.iter().map(|p| p.rows).sum();
    assert_eq!(rows, rig.ids("other").len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_altered_missing_and_extra_files() {
    let rig = rig(true).await;
    let verify = |progress: bool| {
        let rig = &rig;
        async move {
            let q = if progress { "&progress=true" } else { "" };
            let (status, body) = rig
                .post(&format!("/v1/archive/verify?tenant=acme{q}"))
                .await;
            assert_eq!(status, 200, "{body}");
            if progress {
                let last = body.lines().last().unwrap();
                assert!(
                    body.lines()
                        .rev()
                        .skip(1)
                        .all(|l| l.starts_with(r#"{"progress""#)),
                    "{body}"
                );
                serde_json::from_str::<Value>(last).unwrap()["report"].clone()
            } else {
                serde_json::from_str::<Value>(&body).unwrap()
            }
        }
    };
    let clean = verify(false).await;
    assert_eq!(clean["ok"], true, "{clean}");
    assert!(clean["files_checked"].as_u64().unwrap() >= 4);
    let with_progress = verify(true).await;
    assert_eq!(with_progress["ok"], true, "{with_progress}");

    let files = rig.parquet_files();
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    let extra = files[2].with_file_name("part-v1-stray.parquet");
    std::fs::copy(&files[2], &extra).unwrap();

    let report = verify(true).await;
    assert_eq!(report["ok"], false);
    let keys = |name: &str| -> Vec<String> {
        report[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap().to_owned())
            .collect()
    };
    let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        keys("altered")
            .iter()
            .any(|k| k.ends_with(&name(&files[0]))),
        "{report}"
    );
    assert!(
        keys("missing")
            .iter()
            .any(|k| k.ends_with(&name(&files[1]))),
        "{report}"
    );
    assert!(
        keys("extra")
            .iter()
            .any(|k| k.ends_with("part-v1-stray.parquet")),
        "{report}"
    );

    let mut grpc = rig.grpc().await;
    let report = grpc
        .verify(pb::VerifyArchiveRequest {
            tenant: "acme".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!report.ok);
    assert_eq!(
        (
            report.altered.len(),
            report.missing.len(),
            report.extra.len()
        ),
        (1, 1, 1),
        "{report:?}"
    );
    // The other tenant's archive is untouched.
    let other = grpc
        .verify(pb::VerifyArchiveRequest {
            tenant: "other".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(other.ok, "{other:?}");

    // Reading a damaged archive breaks off, and the client can tell: a trailing error line
    // over REST, an error status over gRPC.
    let (status, body) = rig
        .get(&format!("/v1/archive/events?tenant=acme&{}", range_query()))
        .await;
    assert_eq!(status, 200, "{body}");
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert!(last["error"]["code"].is_string(), "{last}");
    assert_eq!(
        body.lines()
            .filter(|l| l.starts_with(r#"{"error""#))
            .count(),
        1,
        "nothing after the error"
    );
    assert!(body.lines().count() < rig.ids("acme").len() + 1);
    let mut stream = grpc
        .read(pb::ReadArchiveRequest {
            tenant: "acme".into(),
            from: Some(ts(day0())),
            to: Some(ts(day0() + 3 * DAY_MICROS)),
            stream: None,
        })
        .await
        .unwrap()
        .into_inner();
    let failed = loop {
        match stream.message().await {
            Ok(Some(_)) => {}
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    assert!(
        failed.is_some(),
        "a damaged archive must not read as complete"
    );
    // The other tenant's archive still reads in full.
    let (_, body) = rig
        .get(&format!(
            "/v1/archive/events?tenant=other&{}",
            range_query()
        ))
        .await;
    assert_eq!(body.lines().count(), rig.ids("other").len(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legal_hold_and_bad_requests() {
    let rig = rig(true).await;
    let (_, body) = rig.get("/v1/archive/partitions?tenant=acme").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let p = &v["partitions"][0];
    let (stream, date) = (p["stream"].as_str().unwrap(), p["date"].as_str().unwrap());
    assert_eq!(p["legal_hold"], false);

    let (status, body) = rig
        .post(&format!(
            "/v1/archive/legal-hold?tenant=acme&stream={stream}&date={date}&on=true"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let objects = serde_json::from_str::<Value>(&body).unwrap()["objects"]
        .as_u64()
        .unwrap();
    assert!(objects >= 2, "files and manifest: {body}");
    let (_, body) = rig.get("/v1/archive/partitions?tenant=acme").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    let held = v["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["stream"] == stream && q["date"] == date)
        .unwrap();
    assert_eq!(held["legal_hold"], true);
    let mut grpc = rig.grpc().await;
    let cleared = grpc
        .set_legal_hold(pb::SetLegalHoldRequest {
            tenant: "acme".into(),
            stream: stream.into(),
            date: date.into(),
            on: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.objects, objects);

    let (status, body) = rig
        .post("/v1/archive/legal-hold?tenant=acme&stream=click&date=1999-01-01&on=true")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("partition_not_found"));

    for (path, field) in [
        ("/v1/archive/partitions", "tenant"),
        ("/v1/archive/partitions?tenant=Bad!", "tenant"),
        (
            "/v1/archive/events?tenant=acme&from=2026-01-02T00:00:00Z",
            "to",
        ),
        (
            "/v1/archive/events?tenant=acme&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "to",
        ),
        (
            "/v1/archive/events?tenant=acme&from=yesterday&to=2026-01-01T00:00:00Z",
            "from",
        ),
    ] {
        let (status, body) = rig.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["field"], field, "{path}: {body}");
    }
    let (status, body) = rig
        .post("/v1/archive/legal-hold?tenant=acme&stream=click&date=2026-13-01&on=true")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""field":"date""#), "{body}");
    let err = grpc
        .read(pb::ReadArchiveRequest {
            tenant: "acme".into(),
            from: None,
            to: Some(ts(day0())),
            stream: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("from"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_cold_tier_says_so() {
    let rig = rig(false).await;
    for (status, body) in [
        rig.get("/v1/archive/partitions?tenant=acme").await,
        rig.post("/v1/archive/verify?tenant=acme").await,
        rig.get(&format!("/v1/archive/events?tenant=acme&{}", range_query()))
            .await,
        rig.post("/v1/archive/legal-hold?tenant=acme&stream=click&date=2026-01-01&on=true")
            .await,
    ] {
        assert_eq!(status, 501, "{body}");
        assert!(body.contains("cold_tier_not_configured"), "{body}");
    }
    let err = rig
        .grpc()
        .await
        .list(pb::ListPartitionsRequest {
            tenant: "acme".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_is_in_reflection_health_and_openapi() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let rig = rig(false).await;
    let channel = tonic::transport::Channel::from_shared(rig.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "strata.v1.Archive".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status(), ServingStatus::Serving);
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "strata.v1.Archive".into(),
            )),
        }]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the descriptor of archive.proto");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    let (status, body) = rig.get("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    for path in [
        "/v1/archive/partitions",
        "/v1/archive/events",
        "/v1/archive/verify",
        "/v1/archive/legal-hold",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    for schema in ["PartitionsBody", "VerifyBody", "HoldBody"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
}

/// The chunks of a response body, as the stream `NdjsonReader` reads.
fn chunks(
    response: reqwest::Response,
) -> impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> {
    futures::stream::unfold(response, |mut r| async move {
        r.chunk().await.transpose().map(|chunk| (chunk, r))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_bodies_and_reader_decode_what_the_archive_sends() {
    use futures::StreamExt;
    use strata_api::http::{
        ErrorBody, HoldBody, NdjsonError, NdjsonReader, PartitionsBody, StoredEventJson, VerifyLine,
    };

    let rig = rig(true).await;
    let send = |post: bool, path: String| {
        let url = format!("{}{path}", rig.http);
        let request = if post {
            rig.client.post(url)
        } else {
            rig.client.get(url)
        };
        async move { request.send().await.unwrap() }
    };

    let listed: PartitionsBody = send(false, "/v1/archive/partitions?tenant=acme".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.tenant, "acme");
    let rows: u64 = listed.partitions.iter().map(|p| p.rows).sum();
    assert_eq!(rows, rig.ids("acme").len() as u64);

    let response = send(
        false,
        format!("/v1/archive/events?tenant=acme&{}", range_query()),
    )
    .await;
    let mut reader = NdjsonReader::new(chunks(response));
    let mut ids = BTreeSet::new();
    while let Some(event) = reader.next_record::<StoredEventJson>().await.unwrap() {
        assert_eq!(event.tenant, "acme");
        assert!(ids.insert(event.id));
    }
    assert_eq!(ids, rig.ids("acme"));

    let response = send(true, "/v1/archive/verify?tenant=acme&progress=true".into()).await;
    let lines: Vec<VerifyLine> = NdjsonReader::new(chunks(response))
        .records::<VerifyLine>()
        .map(Result::unwrap)
        .collect()
        .await;
    let Some(VerifyLine::Report(report)) = lines.last() else {
        panic!("the last line is the report: {lines:?}")
    };
    assert!(report.ok, "{report:?}");
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| matches!(l, VerifyLine::Progress(p) if p.done <= p.total))
    );

    let part = &listed.partitions[0];
    let hold: HoldBody = send(
        true,
        format!(
            "/v1/archive/legal-hold?tenant=acme&stream={}&date={}&on=true",
            part.stream, part.date
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(hold.objects > 0);

    let refused = send(false, "/v1/archive/partitions?tenant=Bad!".into()).await;
    assert_eq!(refused.status(), 400);
    let body: ErrorBody = refused.json().await.unwrap();
    assert_eq!(body.code, "invalid_parameter");
    assert_eq!(body.field.as_deref(), Some("tenant"));

    // A damaged archive: the reader hands out the server's error, not a short answer.
    let files = rig.parquet_files();
    std::fs::remove_file(&files[0]).unwrap();
    let response = send(
        false,
        format!("/v1/archive/events?tenant=acme&{}", range_query()),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut reader = NdjsonReader::new(chunks(response));
    let failure = loop {
        match reader.next_record::<StoredEventJson>().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("a damaged archive must not read as complete"),
            Err(e) => break e,
        }
    };
    let NdjsonError::Server(body) = failure else {
        panic!("expected the server's error line, got {failure:?}")
    };
    assert!(body.kind().is_some(), "{body:?}");
    assert!(reader.next_line().await.unwrap().is_none());
}
