//! `strata replay`: a tenant's events of a range in event-time order, read from a running
//! server's `GET /v1/replay`, written as NDJSON (standard output or `--output`) or produced
//! to a Kafka topic.
//!
//! Each output line (or Kafka record value) is the event's JSON exactly as `GET
//! /v1/events/{id}` returns it; the server's per-line `cursor` is kept aside. At the end a
//! summary goes to standard error: events, first and last event time, the checksum (SHA-256
//! over every emitted event JSON followed by a newline, the same definition for a file and
//! for Kafka, so two outputs can be compared) and the cursor after the last event. When the
//! run is interrupted (Ctrl-C, SIGTERM, a server or broker error, a broken connection) the
//! output holds exactly the events up to the printed cursor; `--cursor` resumes there, and
//! the exit status is 1.

use std::{io::IsTerminal, num::NonZeroU32, path::PathBuf, time::Duration};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use strata_api::NdjsonReader;
use strata_ingest::{ProducerConfig, ReplayRecord, ReplaySummary, parse_property};
use strata_tiering::ReplayChecksum;
use strata_types::time::{format_rfc3339, parse_param};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Flags of `strata replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Base URL of the server's REST API.
    #[arg(
        long,
        env = "STRATA_SERVER",
        default_value = "http://127.0.0.1:8080",
        value_parser = parse_server
    )]
    pub server: reqwest::Url,
    /// The tenant whose events are replayed.
    #[arg(long)]
    pub tenant: String,
    /// Start of the range (inclusive): RFC 3339 or epoch microseconds.
    #[arg(long, value_parser = parse_time)]
    pub from: String,
    /// End of the range (exclusive): RFC 3339 or epoch microseconds.
    #[arg(long, value_parser = parse_time)]
    pub to: String,
    /// Only these streams (repeat the flag or give a comma-separated list).
    #[arg(long = "stream", value_delimiter = ',')]
    pub streams: Vec<String>,
    /// Only events of this key.
    #[arg(long)]
    pub key: Option<String>,
    /// `attr:NAME=VALUE`: only events whose attribute NAME equals VALUE.
    #[arg(long)]
    pub filter: Option<String>,
    /// Resume after this position (printed by an earlier, interrupted run).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Most events per second (the server caps it at its own maximum).
    #[arg(long)]
    pub max_rate: Option<NonZeroU32>,
    /// Write the events to this file (created or truncated) instead of standard output.
    #[arg(long, short, conflicts_with = "kafka_brokers")]
    pub output: Option<PathBuf>,
    /// Produce the events to Kafka at these brokers (`host:port,...`) instead.
    #[arg(long, requires = "kafka_topic")]
    pub kafka_brokers: Option<String>,
    /// The topic to produce to (with `--kafka-brokers`).
    #[arg(long, requires = "kafka_brokers")]
    pub kafka_topic: Option<String>,
    /// A librdkafka producer property `name=value` (repeatable).
    #[arg(long = "kafka-property", value_parser = parse_property, requires = "kafka_brokers")]
    pub kafka_properties: Vec<(String, String)>,
}

fn parse_server(s: &str) -> std::result::Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s.trim())
        .map_err(|e| format!("expected a URL such as `http://127.0.0.1:8080` ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".into()),
    }
}

fn parse_time(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    parse_param(s).map_err(|e| {
        format!(
            "expected an RFC 3339 time such as `2026-11-20T10:00:00Z` or epoch microseconds ({e})"
        )
    })?;
    Ok(s.to_owned())
}

/// Reads `GET /v1/replay`'s body: one record per line. A connection that breaks, a body
/// that ends mid-line, an error line or a line that is not an event end the reading.
struct Lines(NdjsonReader<crate::client::Chunks>);

impl Lines {
    /// The next record, `None` at the end of a complete body.
    async fn next(&mut self) -> std::result::Result<Option<ReplayRecord>, String> {
        match self.0.next_line().await {
            Ok(Some(line)) => parse_line(&line).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(crate::client::describe(&e)),
        }
    }
}

/// An event line as the record it is emitted as (its JSON, key, headers, cursor); the
/// error line the server ends a broken-off body with becomes the error.
fn parse_line(line: &[u8]) -> std::result::Result<ReplayRecord, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the server sent a line that is not UTF-8")?;
    ReplayRecord::from_line(text)
}

/// What was emitted so far.
#[derive(Debug, Default)]
struct Done {
    checksum: ReplayChecksum,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    cursor: Option<String>,
}

/// Runs `strata replay`.
pub async fn run(args: ReplayArgs) -> Result<()> {
    let response = request(&args).await?;
    let mut lines = Lines(crate::client::ndjson(response));
    let progress = progress_bar();
    let signals = crate::shutdown::Signals::listen().map_err(Error::Signals)?;
    let interrupted = signals.graceful;
    let outcome = match (&args.kafka_brokers, &args.kafka_topic) {
        (Some(brokers), Some(topic)) => {
            to_kafka(&args, brokers, topic, &mut lines, &progress, interrupted).await
        }
        _ => to_output(&args, &mut lines, &progress, interrupted).await,
    };
    progress.finish_and_clear();
    let (events, checksum, first_ts, last_ts, cursor, failure) = outcome?;
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_rfc3339);
    eprintln!(
        "events: {events}\nfirst ts: {}\nlast ts: {}\nchecksum: sha256:{checksum}\ncursor: {}",
        time(first_ts),
        time(last_ts),
        cursor.as_deref().unwrap_or("-"),
    );
    match failure {
        None => Ok(()),
        Some(reason) => {
            let resume = match cursor {
                Some(c) => format!("; resume with --cursor {c}"),
                None => "; nothing was emitted, run it again to resume".to_owned(),
            };
            eprintln!("interrupted: {reason}{resume}");
            Err(Error::Replay(format!("interrupted: {reason}{resume}")))
        }
    }
}

/// `(events, checksum, first ts, last ts, cursor, why it stopped early)`.
type Outcome = (
    u64,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

async fn request(args: &ReplayArgs) -> Result<reqwest::Response> {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| Error::Replay(format!("cannot build the HTTP client: {e}")))?;
    let mut url = args
        .server
        .join("v1/replay")
        .map_err(|e| Error::Replay(format!("bad server URL {}: {e}", args.server)))?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("tenant", &args.tenant)
            .append_pair("from", &args.from)
            .append_pair("to", &args.to);
        for s in &args.streams {
            q.append_pair("stream", s);
        }
        let optional = [
            ("key", args.key.clone()),
            ("filter", args.filter.clone()),
            ("cursor", args.cursor.clone()),
            ("max_rate", args.max_rate.map(|r| r.to_string())),
        ];
        for (name, value) in optional {
            if let Some(v) = value {
                q.append_pair(name, &v);
            }
        }
    }
    let response =
        http.get(url).send().await.map_err(|e| {
            Error::Replay(format!("cannot reach the server at {}: {e}", args.server))
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let detail = crate::client::error_detail(&text);
    Err(Error::Replay(format!(
        "the server answered {status}: {detail}"
    )))
}

fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {pos} events ({per_sec}) {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn to_output(
    args: &ReplayArgs,
    lines: &mut Lines,
    progress: &ProgressBar,
    interrupted: CancellationToken,
) -> Result<Outcome> {
    let (sink, path): (Box<dyn AsyncWrite + Unpin + Send>, PathBuf) = match &args.output {
        Some(path) => {
            let file = tokio::fs::File::create(path)
                .await
                .map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?;
            (Box::new(file), path.clone())
        }
        None => (
            Box::new(tokio::io::stdout()),
            PathBuf::from("standard output"),
        ),
    };
    let mut out = BufWriter::new(sink);
    let write_err = |source| Error::Output {
        path: path.clone(),
        source,
    };
    let mut done = Done {
        cursor: args.cursor.clone(),
        ..Done::default()
    };
    let mut interrupted = std::pin::pin!(interrupted.cancelled_owned());
    let failure = loop {
        let next = tokio::select! {
            () = &mut interrupted => break Some("a signal asked to stop".to_owned()),
            next = lines.next() => next,
        };
        match next {
            Ok(None) => break None,
            Err(reason) => break Some(reason),
            Ok(Some(record)) => {
                out.write_all(record.value.as_bytes())
                    .await
                    .map_err(write_err)?;
                out.write_all(b"\n").await.map_err(write_err)?;
                done.checksum.update(record.value.as_bytes());
                done.first_ts.get_or_insert(record.ts);
                done.last_ts = Some(record.ts);
                done.cursor = Some(record.cursor);
                progress.inc(1);
            }
        }
    };
    // Everything counted is written before the cursor is printed.
    out.flush().await.map_err(write_err)?;
    if let Some(path) = &args.output {
        out.into_inner()
            .shutdown()
            .await
            .map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
    }
    Ok((
        done.checksum.events(),
        done.checksum.hex(),
        done.first_ts,
        done.last_ts,
        done.cursor,
        failure,
    ))
}

async fn to_kafka(
    args: &ReplayArgs,
    brokers: &str,
    topic: &str,
    lines: &mut Lines,
    progress: &ProgressBar,
    interrupted: CancellationToken,
) -> Result<Outcome> {
    let config = ProducerConfig {
        brokers: brokers.to_owned(),
        properties: args.kafka_properties.clone(),
    };
    let interrupted = Box::pin(interrupted.cancelled_owned());
    // The source ends with an error on a signal, so the producer settles what it sent and
    // reports the acknowledged prefix.
    let records = futures::stream::unfold(
        (lines, interrupted, false),
        |(lines, mut interrupted, over)| async move {
            if over {
                return None;
            }
            let next = tokio::select! {
                () = &mut interrupted => Err("a signal asked to stop".to_owned()),
                next = lines.next() => next,
            };
            match next {
                Ok(None) => None,
                Ok(Some(record)) => Some((Ok(record), (lines, interrupted, false))),
                Err(e) => Some((Err(e), (lines, interrupted, true))),
            }
        },
    );
    let on_ack = |s: &ReplaySummary| progress.set_position(s.events);
    let result = strata_ingest::replay_to_kafka(&config, topic, records, &on_ack).await;
    let (s, failure) = match result {
        Ok(s) => (s, None),
        Err(f) => (f.delivered, Some(f.reason)),
    };
    // Nothing acknowledged: resume where this run started.
    let cursor = s.cursor.or_else(|| args.cursor.clone());
    Ok((s.events, s.checksum, s.first_ts, s.last_ts, cursor, failure))
}

#[cfg(test)]
mod tests {
    use strata_tiering::replay::split_line;

    use super::*;

    #[test]
    fn lines_round_trip_through_the_record_parser() {
        let cursor = strata_tiering::ReplayCursor {
            ts: 5,
            id: "e".into(),
        }
        .encode();
        let json = r#"{"tenant":"acme","stream":"s","key":"k","id":"e","ts":"1970-01-01T00:00:00.000005Z","ingest_ts":"1970-01-01T00:00:00.000006Z","seq":1}"#;
        let line = format!("{},\"cursor\":\"{cursor}\"}}", &json[..json.len() - 1]);
        assert_eq!(split_line(&line).unwrap().0, json);
        let record = parse_line(line.as_bytes()).unwrap();
        assert_eq!(
            (record.value.as_str(), record.cursor.as_str(), record.ts),
            (json, cursor.as_str(), 5)
        );
        assert!(parse_line(b"not json").is_err());
    }
}
