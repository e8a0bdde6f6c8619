//! Sending one batch over REST or gRPC, with retries of overload answers.

use std::time::{Duration, Instant};

use serde::Deserialize;
use strata_proto::v1::{self, ingest_client::IngestClient};
use tonic::transport::Channel;

use super::generator::{self, GenEvent};

/// Longest wait a server's `Retry-After` is honoured for; beyond it the load run would
/// mostly measure sleeping.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// Wait before a retry when the server suggested none.
const DEFAULT_RETRY_WAIT: Duration = Duration::from_millis(200);
/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the server, cloned per worker.
#[derive(Debug, Clone)]
pub enum Sender {
    /// `POST {base}/v1/events`.
    Rest {
        /// HTTP client (pooled; clones share the pool).
        client: reqwest::Client,
        /// Full URL of the events endpoint.
        url: String,
        /// NDJSON instead of a JSON array.
        ndjson: bool,
    },
    /// `strata.v1.Ingest/Write`.
    Grpc {
        /// Client over one HTTP/2 channel (clones multiplex on it).
        client: IngestClient<Channel>,
    },
}

/// What one batch achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchResult {
    /// Events the server accepted (including duplicates).
    pub accepted: u64,
    /// Of `accepted`, those already stored.
    pub duplicates: u64,
    /// Events the server rejected, with the first reason.
    pub rejected: u64,
    /// The first rejection's reason, if any.
    pub first_rejection: Option<String>,
    /// Latency of every attempt that got an answer, microseconds.
    pub latencies_us: Vec<u64>,
    /// Attempts after the first.
    pub retries: u64,
    /// Why the request failed for good, if it did.
    pub error: Option<String>,
}

/// One attempt's outcome.
enum Attempt {
    Done {
        accepted: u64,
        duplicates: u64,
        rejected: u64,
        first_rejection: Option<String>,
    },
    Overloaded {
        wait: Option<Duration>,
        reason: String,
    },
    Failed(String),
}

#[derive(Deserialize)]
struct RestAnswer {
    accepted: u64,
    #[serde(default)]
    duplicates: u64,
    #[serde(default)]
    rejected: Vec<RestRejection>,
}

#[derive(Deserialize)]
struct RestRejection {
    #[serde(default)]
    field: String,
    #[serde(default)]
    reason: String,
}

impl Sender {
    /// A sender for `target` (see `--target`).
    pub async fn connect(
        protocol: crate::load::Protocol,
        target: &str,
        ndjson: bool,
        concurrency: usize,
    ) -> Result<Self, String> {
        let base = if target.contains("://") {
            target.trim_end_matches('/').to_owned()
        } else {
            format!("http://{}", target.trim_end_matches('/'))
        };
        match protocol {
            crate::load::Protocol::Rest => {
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(concurrency)
                    .timeout(REQUEST_TIMEOUT)
                    .tcp_nodelay(true)
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                Ok(Self::Rest {
                    client,
                    url: format!("{base}/v1/events"),
                    ndjson,
                })
            }
            crate::load::Protocol::Grpc => {
                let channel = Channel::from_shared(base.clone())
                    .map_err(|e| format!("bad gRPC target `{base}`: {e}"))?
                    .timeout(REQUEST_TIMEOUT)
                    .tcp_nodelay(true)
                    .connect()
                    .await
                    .map_err(|e| format!("cannot connect to {base}: {e}"))?;
                let client = IngestClient::new(channel)
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(usize::MAX);
                Ok(Self::Grpc { client })
            }
        }
    }

    /// The body format's name, for the summary.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Rest { ndjson: true, .. } => "ndjson",
            Self::Rest { ndjson: false, .. } => "json",
            Self::Grpc { .. } => "protobuf",
        }
    }

    /// Sends a batch, retrying overload answers up to `retries` times with the same events.
    pub async fn send(&mut self, events: &[GenEvent<'_>], retries: u32) -> BatchResult {
        let payload = match self {
            Self::Rest { ndjson: true, .. } => Body::Http(generator::ndjson(events).into()),
            Self::Rest { ndjson: false, .. } => Body::Http(generator::json_array(events).into()),
            Self::Grpc { .. } => Body::Grpc(generator::proto(events)),
        };
        let mut result = BatchResult::default();
        let mut attempt = 0;
        loop {
            let started = Instant::now();
            let outcome = self.attempt(&payload).await;
            let elapsed = started.elapsed();
            match outcome {
                Attempt::Done {
                    accepted,
                    duplicates,
                    rejected,
                    first_rejection,
                } => {
                    result.latencies_us.push(micros(elapsed));
                    result.accepted = accepted;
                    result.duplicates = duplicates;
                    result.rejected = rejected;
                    result.first_rejection = first_rejection;
                    return result;
                }
                Attempt::Overloaded { wait, reason } if attempt < retries => {
                    result.latencies_us.push(micros(elapsed));
                    result.retries += 1;
                    let backoff = DEFAULT_RETRY_WAIT * 2u32.saturating_pow(attempt);
                    tokio::time::sleep(wait.unwrap_or(backoff).min(MAX_RETRY_WAIT)).await;
                    tracing::debug!(%reason, attempt, "retrying an overloaded request");
                    attempt += 1;
                }
                Attempt::Overloaded { reason, .. } => {
                    result.latencies_us.push(micros(elapsed));
                    result.error = Some(format!("{reason} (after {attempt} retries)"));
                    return result;
                }
                Attempt::Failed(reason) => {
                    result.error = Some(reason);
                    return result;
                }
            }
        }
    }

    async fn attempt(&mut self, payload: &Body) -> Attempt {
        match (self, payload) {
            (
                Self::Rest {
                    client,
                    url,
                    ndjson,
                },
                Body::Http(body),
            ) => {
                let content_type = if *ndjson {
                    "application/x-ndjson"
                } else {
                    "application/json"
                };
                let response = match client
                    .post(url.as_str())
                    .header("content-type", content_type)
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(e) => return Attempt::Failed(format!("POST {url}: {e}")),
                };
                let status = response.status();
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let text = match response.text().await {
                    Ok(t) => t,
                    Err(e) => return Attempt::Failed(format!("reading the answer: {e}")),
                };
                if status.as_u16() == 503 || status.as_u16() == 429 {
                    return Attempt::Overloaded {
                        wait,
                        reason: format!("HTTP {status}: {}", clip(&text)),
                    };
                }
                if !status.is_success() {
                    return Attempt::Failed(format!("HTTP {status}: {}", clip(&text)));
                }
                match serde_json::from_str::<RestAnswer>(&text) {
                    Ok(a) => Attempt::Done {
                        accepted: a.accepted,
                        duplicates: a.duplicates,
                        rejected: a.rejected.len() as u64,
                        first_rejection: a
                            .rejected
                            .first()
                            .map(|r| format!("{}: {}", r.field, r.reason)),
                    },
                    Err(e) => Attempt::Failed(format!("unexpected answer ({e}): {}", clip(&text))),
                }
            }
            (Self::Grpc { client }, Body::Grpc(request)) => {
                match client.write(request.clone()).await {
                    Ok(response) => {
                        let r = response.into_inner();
                        Attempt::Done {
                            accepted: r.accepted,
                            duplicates: r.duplicates,
                            rejected: r.rejected.len() as u64,
                            first_rejection: r
                                .rejected
                                .first()
                                .map(|r| format!("{}: {}", r.field, r.reason)),
                        }
                    }
                    Err(status) => {
                        let reason = format!("{:?}: {}", status.code(), clip(status.message()));
                        match status.code() {
                            tonic::Code::Unavailable | tonic::Code::ResourceExhausted => {
                                let wait = status
                                    .metadata()
                                    .get("retry-after")
                                    .and_then(|v| v.to_str().ok())
                                    .and_then(|v| v.trim().parse::<u64>().ok())
                                    .map(Duration::from_secs);
                                Attempt::Overloaded { wait, reason }
                            }
                            _ => Attempt::Failed(reason),
                        }
                    }
                }
            }
            // A sender only ever builds the payload for its own protocol.
            _ => Attempt::Failed("payload does not match the protocol".into()),
        }
    }
}

/// An encoded batch, kept for retries (`Bytes` clones share the buffer).
enum Body {
    Http(bytes::Bytes),
    Grpc(v1::WriteRequest),
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The first 300 characters of a server message, enough to read and not flood the terminal.
fn clip(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
