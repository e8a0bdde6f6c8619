//! The HTTP side of the `archive` subcommands: requests and the server's error bodies
//! (NDJSON answers are read with [`crate::client::ndjson`]).

use std::time::Duration;

use crate::{Error, Result};

/// A client of one server's archive endpoints.
#[derive(Debug, Clone)]
pub struct ArchiveClient {
    http: reqwest::Client,
    base: reqwest::Url,
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
        let detail = crate::client::error_detail(&text);
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
