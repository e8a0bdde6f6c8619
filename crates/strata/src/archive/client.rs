//! The HTTP side of the `archive` subcommands: requests, the server's error bodies, and
//! NDJSON answers read line by line.

use std::time::Duration;

use serde::Deserialize;

use crate::{Error, Result};

/// Longest NDJSON line accepted; bounds memory against a misbehaving server. Events are far
/// smaller (their payload limit is configurable, but not beyond this).
const MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// A client of one server's archive endpoints.
#[derive(Debug, Clone)]
pub struct ArchiveClient {
    http: reqwest::Client,
    base: reqwest::Url,
}

/// The server's error body.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    field: Option<String>,
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}", self.message, self.code)?;
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        f.write_str(")")
    }
}

impl ArchiveClient {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: reqwest::Url) -> Result<Self> {
        // No overall timeout: reading or verifying a large archive legitimately takes long;
        // a dead connection is still noticed by the connect timeout and TCP.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Archive(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, base })
    }

    /// The server's base URL.
    pub fn base(&self) -> &reqwest::Url {
        &self.base
    }

    fn url(&self, path: &str, params: &[(&str, &str)]) -> Result<reqwest::Url> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| Error::Archive(format!("bad server URL {}: {e}", self.base)))?;
        url.query_pairs_mut().extend_pairs(params);
        Ok(url)
    }

    /// Sends a GET (`post` false) or POST and returns the response when it succeeded; any
    /// other status becomes an error carrying the server's message.
    pub(crate) async fn send(
        &self,
        post: bool,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<reqwest::Response> {
        let url = self.url(path, params)?;
        let request = if post {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        let response = request.send().await.map_err(|e| {
            Error::Archive(format!("cannot reach the server at {}: {e}", self.base))
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let detail = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => body.to_string(),
            Err(_) if text.trim().is_empty() => "no details".to_owned(),
            Err(_) => text.trim().chars().take(500).collect(),
        };
        Err(Error::Archive(format!(
            "the server answered {status}: {detail}"
        )))
    }

    /// A request whose answer is one JSON document.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(
        &self,
        post: bool,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<T> {
        let response = self.send(post, path, params).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::Archive(format!("reading the answer to {path}: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Archive(format!("unexpected answer to {path}: {e}")))
    }
}

/// A streamed NDJSON answer, read one line at a time.
pub(crate) struct NdjsonLines {
    response: reqwest::Response,
    buf: Vec<u8>,
    /// Bytes of `buf` already returned as lines.
    start: usize,
    done: bool,
}

/// A line of a streamed answer that reports a server error instead of data.
#[derive(Debug, Deserialize)]
struct ErrorLine {
    error: ErrorLineBody,
}

#[derive(Debug, Deserialize)]
struct ErrorLineBody {
    code: String,
    message: String,
}

impl NdjsonLines {
    /// Lines of `response`.
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buf: Vec::new(),
            start: 0,
            done: false,
        }
    }

    /// The next non-empty line (without its newline), `None` at the end of the answer.
    pub(crate) async fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf[self.start..].iter().position(|&b| b == b'\n') {
                let line = self.buf[self.start..self.start + pos].to_vec();
                self.start += pos + 1;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(line));
            }
            if self.done {
                let rest = self.buf[self.start..].to_vec();
                self.start = self.buf.len();
                return Ok((!rest.iter().all(u8::is_ascii_whitespace)).then_some(rest));
            }
            // Compact before reading more, so the buffer holds at most one partial line
            // plus one chunk.
            self.buf.drain(..self.start);
            self.start = 0;
            if self.buf.len() > MAX_LINE_BYTES {
                return Err(Error::Archive(format!(
                    "the server sent a line longer than {MAX_LINE_BYTES} bytes"
                )));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                Ok(None) => self.done = true,
                Err(e) => {
                    return Err(Error::Archive(format!("the answer was cut short: {e}")));
                }
            }
        }
    }
}

/// The server error a line reports, if it is an error line (`{"error":{...}}`).
pub(crate) fn error_line(line: &[u8]) -> Option<Error> {
    // Only lines that mention the key are parsed; an event never has a top-level `error`
    // key, so one that mentions it in its payload fails to parse as an error line.
    if !line.windows(7).any(|w| w == b"\"error\"") {
        return None;
    }
    let parsed: ErrorLine = serde_json::from_slice(line).ok()?;
    Some(Error::Archive(format!(
        "the server stopped with an error: {} ({})",
        parsed.error.message, parsed.error.code
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines_are_recognised() {
        let e = error_line(br#"{"error":{"code":"cold_unavailable","message":"S3 is down"}}"#)
            .expect("an error line");
        let text = e.to_string();
        assert!(
            text.contains("S3 is down") && text.contains("cold_unavailable"),
            "{text}"
        );
        assert!(error_line(br#"{"tenant":"a","id":"error"}"#).is_none());
        assert!(error_line(br#"{"error": "not an object"}"#).is_none());
        assert!(
            error_line(br#"{"tenant":"a","payload":{"error":{"code":"x","message":"y"}}}"#)
                .is_none()
        );
    }

    #[test]
    fn error_bodies_name_the_field() {
        let body: ErrorBody = serde_json::from_str(
            r#"{"code":"invalid_argument","message":"bad date","field":"date"}"#,
        )
        .unwrap();
        assert_eq!(
            body.to_string(),
            "bad date (invalid_argument, field `date`)"
        );
    }
}
