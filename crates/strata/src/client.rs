//! What every CLI command that talks to a server shares: reading the server's error body
//! and its NDJSON answers. The body types and the line reader are the API crate's
//! ([`strata_api::http`]), the same ones the server writes with, so a field the server adds or
//! renames cannot drift from what the CLI reads.

use bytes::Bytes;
use futures::Stream;
use strata_api::{ErrorBody, NdjsonError, NdjsonReader};

/// Longest NDJSON line accepted; bounds memory against a misbehaving server. Events are far
/// smaller (their payload limit is configurable, but not beyond this).
pub(crate) const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// A response body as the chunks [`NdjsonReader`] reads.
pub(crate) type Chunks = std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The NDJSON lines of `response`, at most [`MAX_LINE_BYTES`] each; an in-stream
/// `{"error": {...}}` line ends the reading with [`NdjsonError::Server`].
pub(crate) fn ndjson(response: reqwest::Response) -> NdjsonReader<Chunks> {
    let chunks: Chunks = Box::pin(futures::stream::unfold(response, |mut r| async move {
        r.chunk().await.transpose().map(|chunk| (chunk, r))
    }));
    NdjsonReader::new(chunks).with_max_line_bytes(MAX_LINE_BYTES)
}

/// The detail of a failed response's body for people: the server's error body when it is
/// one, else the start of the text.
pub(crate) fn error_detail(text: &str) -> String {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => body.to_string(),
        Err(_) if text.trim().is_empty() => "no details".to_owned(),
        Err(_) => text.trim().chars().take(500).collect(),
    }
}

/// A reading failure as one sentence: a server error line, a broken connection, a line too
/// long or not JSON.
pub(crate) fn describe(e: &NdjsonError) -> String {
    match e {
        NdjsonError::Server(body) => format!("the server stopped with an error: {body}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn reader(body: &'static str) -> NdjsonReader<impl Stream<Item = std::io::Result<Bytes>>> {
        // Split mid-line, as the network does.
        let (a, b) = body.split_at(body.len() / 2);
        NdjsonReader::new(futures::stream::iter([
            Ok(Bytes::from_static(a.as_bytes())),
            Ok(Bytes::from_static(b.as_bytes())),
        ]))
    }

    #[tokio::test]
    async fn error_lines_are_recognised_and_events_are_not() {
        let mut lines = reader(concat!(
            r#"{"tenant":"a","id":"error"}"#,
            "\n",
            r#"{"tenant":"a","payload":{"error":{"code":"x","message":"y"}}}"#,
            "\n",
            r#"{"error":{"code":"cold_unavailable","message":"S3 is down"}}"#,
            "\n",
        ));
        assert!(lines.next_line().await.unwrap().is_some());
        assert!(lines.next_line().await.unwrap().is_some());
        let text = describe(&lines.next_line().await.unwrap_err());
        assert!(
            text.contains("S3 is down") && text.contains("cold_unavailable"),
            "{text}"
        );
    }

    #[test]
    fn error_bodies_name_the_field() {
        assert_eq!(
            error_detail(r#"{"code":"invalid_argument","message":"bad date","field":"date"}"#),
            "bad date (invalid_argument, field `date`)"
        );
        assert_eq!(error_detail("  "), "no details");
        assert_eq!(error_detail("plain text"), "plain text");
    }
}
