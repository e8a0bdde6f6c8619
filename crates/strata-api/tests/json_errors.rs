//! Every REST error is the documented JSON error body (`code`, `message`, `field`) with
//! `Content-Type: application/json`: malformed query strings and paths on every route,
//! unknown routes and wrong methods included, never axum's plain-text rejections.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use serde_json::Value;

/// Sends `method path` and returns the status and the JSON body, failing unless the answer
/// is `application/json`.
async fn json_answer(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let resp = server
        .client
        .request(method, format!("{}{path}", server.http))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{path}: content type {content_type:?}, body {text}"
    );
    let body =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, body)
}

fn assert_error(path: &str, status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{path}: {body}");
    assert_eq!(body["code"], want_code, "{path}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{path}: {body}"
    );
}

#[tokio::test]
async fn malformed_query_strings_answer_json_on_every_route() {
    let server = TestServer::start().await;
    use reqwest::Method;
    for (method, path) in [
        // A repeated single-valued parameter cannot be deserialised.
        (Method::GET, "/v1/events/e1?tenant=a&tenant=b"),
        (Method::GET, "/v1/query/aggregate?tenant=a&tenant=b"),
        (Method::GET, "/v1/archive/partitions?tenant=a&tenant=b"),
        // `progress` is a boolean.
        (Method::GET, "/v1/archive/partitions?tenant=a&progress=null"),
        (Method::GET, "/v1/archive/events?tenant=a&tenant=b"),
        (Method::POST, "/v1/archive/verify?tenant=a&progress=null"),
        (
            Method::POST,
            "/v1/archive/legal-hold?tenant=a&stream=s&date=2026-11-20&on=maybe",
        ),
    ] {
        let (status, body) = json_answer(&server, method, path).await;
        assert_error(path, status, &body, 400, "invalid_query_string");
    }
    // Replay reads its raw query string itself; its errors are JSON too.
    let path = "/v1/replay?tenant=a&tenant=b&from=x";
    let (status, body) = json_answer(&server, Method::GET, path).await;
    assert_eq!(status, 400, "{path}: {body}");
    // Routes without parameters ignore the query string.
    let (status, _) = json_answer(&server, Method::GET, "/v1/cache/stats?%zz=&&=").await;
    assert_eq!(status, 200);
    let (status, _) = json_answer(&server, Method::GET, "/healthz?progress=null").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test]
async fn bad_paths_unknown_routes_and_methods_answer_json() {
    let server = TestServer::start().await;
    use reqwest::Method;
    let path = "/v1/events/%FF%FE?tenant=a";
    let (status, body) = json_answer(&server, Method::GET, path).await;
    assert_error(path, status, &body, 400, "invalid_parameter");

    let path = "/v1/nothing-here";
    let (status, body) = json_answer(&server, Method::GET, path).await;
    assert_error(path, status, &body, 404, "route_not_found");

    for (method, path) in [
        (Method::DELETE, "/v1/events"),
        (Method::POST, "/v1/query/aggregate"),
        (Method::PUT, "/healthz"),
    ] {
        let (status, body) = json_answer(&server, method, path).await;
        assert_error(path, status, &body, 405, "method_not_allowed");
    }

    // No content type, and a body over the limit.
    let resp = server
        .client
        .post(format!("{}/v1/events", server.http))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");
    server.stop().await;
}
