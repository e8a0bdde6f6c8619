//! The REST calls the tests make, as a client would: every answer is read once, by
//! [`send`], and classified by the call that made it.

use std::{collections::BTreeMap, time::Duration};

use futures::{StreamExt, stream};
use reqwest::StatusCode;
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, value::RawValue};

use super::events::{TestEvent, json_body};

/// An HTTP client for tests.
pub(crate) fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(30))
}

/// An HTTP client whose requests give up after `timeout` (short for clients of a server that
/// is killed under them).
pub(crate) fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// An answer read to its end.
#[derive(Debug)]
pub(crate) struct HttpAnswer {
    pub(crate) status: StatusCode,
    /// The `Retry-After` header, trimmed, when there was one.
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

impl HttpAnswer {
    /// `HTTP <status>: <body>`, to report an answer that was not the expected one.
    pub(crate) fn failure(&self) -> String {
        format!("HTTP {}: {}", self.status, self.body)
    }

    /// The body as JSON of `T` when the status is 200; a description otherwise.
    pub(crate) fn ok_json<T: DeserializeOwned>(&self) -> Result<T, String> {
        if self.status != StatusCode::OK {
            return Err(self.failure());
        }
        serde_json::from_str(&self.body).map_err(|e| format!("bad answer {}: {e}", self.body))
    }

    /// `Retry-After` as whole seconds, when present and well-formed.
    pub(crate) fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.as_deref()?.parse().ok()
    }

    /// The `code` of a JSON error body (`{"code": ..., "message": ...}`).
    pub(crate) fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_str(&self.body).ok()?;
        Some(body.get("code")?.as_str()?.to_owned())
    }
}

/// Sends `request` and reads the whole answer; `Err` only when there was none (connection
/// refused or reset, client timeout).
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<HttpAnswer, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let body = response.text().await.map_err(|e| e.to_string())?;
    Ok(HttpAnswer {
        status,
        retry_after,
        body,
    })
}

/// The answer to `POST /v1/events`.
#[derive(Debug, Deserialize)]
pub(crate) struct WriteAnswer {
    pub(crate) accepted: u64,
    #[serde(default)]
    pub(crate) rejected: Vec<Value>,
}

/// `POST /v1/events` with `events` as a JSON array.
async fn post(
    client: &reqwest::Client,
    base: &str,
    events: &[TestEvent],
) -> Result<HttpAnswer, String> {
    send(
        client
            .post(format!("{base}/v1/events"))
            .header("content-type", "application/json")
            .body(json_body(events)),
    )
    .await
}

/// Posts `events`; `Ok` only for a 200 answer (the acknowledgement).
pub(crate) async fn post_events(
    client: &reqwest::Client,
    base: &str,
    events: &[TestEvent],
) -> Result<WriteAnswer, String> {
    post(client, base, events).await?.ok_json()
}

/// What `POST /v1/events` answered.
#[derive(Debug)]
pub(crate) enum PostOutcome {
    /// 200: acknowledged.
    Acked(WriteAnswer),
    /// 503 with the `Retry-After` the server asked for.
    Busy(Duration),
    /// Anything else (including a connection error), with a description.
    Failed(String),
}

/// Posts `events` once and classifies the answer; a 503 must say when to retry.
pub(crate) async fn try_post_events(
    client: &reqwest::Client,
    base: &str,
    events: &[TestEvent],
) -> PostOutcome {
    let answer = match post(client, base, events).await {
        Ok(answer) => answer,
        Err(e) => return PostOutcome::Failed(e),
    };
    match answer.status.as_u16() {
        200 => match answer.ok_json() {
            Ok(written) => PostOutcome::Acked(written),
            Err(e) => PostOutcome::Failed(e),
        },
        503 => {
            let secs = answer
                .retry_after_secs()
                .unwrap_or_else(|| panic!("503 without Retry-After: {}", answer.body));
            PostOutcome::Busy(Duration::from_secs(secs))
        }
        _ => PostOutcome::Failed(answer.failure()),
    }
}

/// A stored event as `GET /v1/events/{id}` returns it, with the payload kept as raw text.
#[derive(Debug, Deserialize)]
pub(crate) struct StoredView {
    pub(crate) tenant: String,
    pub(crate) stream: String,
    pub(crate) key: String,
    pub(crate) id: String,
    pub(crate) ts: String,
    pub(crate) value: Option<f64>,
    #[serde(default)]
    pub(crate) attrs: BTreeMap<String, String>,
    pub(crate) payload: Option<Box<RawValue>>,
}

/// `GET /v1/events/{id}?tenant=T` as sent, whatever it answers.
pub(crate) async fn lookup(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    id: &str,
) -> Result<HttpAnswer, String> {
    send(
        client
            .get(format!("{base}/v1/events/{id}"))
            .query(&[("tenant", tenant)]),
    )
    .await
}

/// `GET /v1/events/{id}?tenant=T`: `Ok(None)` on 404.
pub(crate) async fn get_event(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    id: &str,
) -> Result<Option<StoredView>, String> {
    let answer = lookup(client, base, tenant, id).await?;
    match answer.status.as_u16() {
        200 => answer.ok_json().map(Some),
        404 => Ok(None),
        _ => Err(answer.failure()),
    }
}

/// Checks that the stored event has exactly the fields that were sent.
pub(crate) fn assert_same(sent: &TestEvent, got: &StoredView) {
    assert_eq!(got.tenant, sent.tenant, "tenant of {}", sent.id);
    assert_eq!(got.stream, sent.stream, "stream of {}", sent.id);
    assert_eq!(got.key, sent.key, "key of {}", sent.id);
    assert_eq!(got.id, sent.id);
    assert_eq!(got.ts, sent.ts, "ts of {}", sent.id);
    assert_eq!(got.value, Some(sent.value), "value of {}", sent.id);
    assert_eq!(got.attrs, sent.attrs, "attrs of {}", sent.id);
    // Stored compact: whitespace outside strings goes, key order, strings and numbers stay
    // exactly as sent (a server that re-serialised the payload would fail this).
    let want = strata_types::json::compact(&sent.payload, usize::MAX).expect("valid payload");
    assert_eq!(
        got.payload.as_ref().map(|p| p.get()),
        Some(want.as_str()),
        "payload of {} must come back as sent, compacted",
        sent.id
    );
}

/// Checks that every one of `events` reads back by id with the fields it was sent with
/// (eight lookups at a time).
pub(crate) async fn assert_all_readable(base: &str, events: &[&TestEvent]) {
    let http = client();
    let lost: Vec<String> = stream::iter(events.iter().copied())
        .map(|event| {
            let http = http.clone();
            async move {
                match get_event(&http, base, &event.tenant, &event.id).await {
                    Ok(Some(got)) => {
                        assert_same(event, &got);
                        None
                    }
                    Ok(None) => Some(event.id.clone()),
                    Err(e) => panic!("GET {}: {e}", event.id),
                }
            }
        })
        .buffer_unordered(8)
        .filter_map(|lost| async move { lost })
        .collect()
        .await;
    assert!(
        lost.is_empty(),
        "{} of {} events not readable, e.g. {:?}",
        lost.len(),
        events.len(),
        &lost[..lost.len().min(10)]
    );
}

/// Posts `events` in requests of `chunk` events; each must be acknowledged in full.
pub(crate) async fn post_all(base: &str, events: &[TestEvent], chunk: usize) {
    let http = client();
    for chunk in events.chunks(chunk) {
        let answer = post_events(&http, base, chunk)
            .await
            .unwrap_or_else(|e| panic!("post: {e}"));
        assert_eq!(answer.accepted, chunk.len() as u64, "{:?}", answer.rejected);
    }
}

/// One bucket of an aggregate answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BucketView {
    pub(crate) start: String,
    pub(crate) group: Option<String>,
    pub(crate) value: Option<f64>,
}

/// An aggregate answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AggregateView {
    pub(crate) buckets: Vec<BucketView>,
    pub(crate) tiers: Vec<String>,
}

/// `GET /v1/query/aggregate`; `Err((status, body))` unless 200 (status 0: no answer).
pub(crate) async fn aggregate(
    client: &reqwest::Client,
    base: &str,
    params: &[(&str, &str)],
) -> Result<AggregateView, (u16, String)> {
    let answer = send(
        client
            .get(format!("{base}/v1/query/aggregate"))
            .query(params),
    )
    .await
    .map_err(|e| (0, e))?;
    if answer.status != StatusCode::OK {
        return Err((answer.status.as_u16(), answer.body));
    }
    answer.ok_json().map_err(|e| (answer.status.as_u16(), e))
}

/// The parameters of an hourly count of `tenant`'s events over `[from, to)`.
pub(crate) fn count_params<'a>(
    tenant: &'a str,
    from: &'a str,
    to: &'a str,
) -> [(&'a str, &'a str); 5] {
    [
        ("tenant", tenant),
        ("from", from),
        ("to", to),
        ("bucket", "1h"),
        ("agg", "count"),
    ]
}

/// Events of `tenant` counted by `/v1/query/aggregate` over `[from, to)`.
pub(crate) async fn count(
    client: &reqwest::Client,
    base: &str,
    tenant: &str,
    from: &str,
    to: &str,
) -> Result<u64, String> {
    let answer = aggregate(client, base, &count_params(tenant, from, to))
        .await
        .map_err(|(status, body)| format!("HTTP {status}: {body}"))?;
    answer
        .buckets
        .iter()
        .map(|b| {
            b.value
                .map(|c| c as u64)
                .ok_or_else(|| format!("bucket without a count: {b:?}"))
        })
        .sum()
}

/// The sum of every series of the metric `name` on `/metrics` (0 when absent).
pub(crate) async fn metric(client: &reqwest::Client, base: &str, name: &str) -> f64 {
    let answer = send(client.get(format!("{base}/metrics")))
        .await
        .unwrap_or_else(|e| panic!("GET /metrics: {e}"));
    answer
        .body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let series_name = series.split('{').next()?;
            (series_name == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
