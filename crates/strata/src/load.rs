//! `strata load`: the load generator operators and benchmarks use.
//!
//! `--concurrency` workers each keep one request in flight. They claim batch numbers from a
//! shared counter, so `--events` is met exactly and `--rate` is a global schedule: batch `n`
//! is due at `start + n * batch_size / rate`. A worker that falls behind sends at once
//! rather than skipping, so the rate is an upper bound and the report says what was
//! achieved. Ctrl-C stops claiming new batches; requests in flight finish and count.

pub mod generator;
pub mod kafka;
pub mod report;
pub mod sender;

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use clap::{Args, ValueEnum};

use crate::{Error, Result, flags::parse_duration};
use generator::Generator;
use report::{RunInfo, Summary, Tally};
use sender::Sender;

/// Flags of `strata load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Protocol to send events with.
    #[arg(long, env = "STRATA_LOAD_PROTOCOL", value_enum, default_value_t = Protocol::Rest)]
    pub protocol: Protocol,
    /// Server to send to: a base URL for REST (default `http://127.0.0.1:8080`), the gRPC
    /// endpoint for gRPC (default `http://127.0.0.1:50051`; a bare `host:port` works too).
    #[arg(long, env = "STRATA_LOAD_TARGET")]
    pub target: Option<String>,
    /// Send REST bodies as NDJSON instead of a JSON array.
    #[arg(long, env = "STRATA_LOAD_NDJSON")]
    pub ndjson: bool,
    /// Events per second over all connections; 0 sends as fast as the server answers.
    #[arg(long, env = "STRATA_LOAD_RATE", default_value_t = 0)]
    pub rate: u64,
    /// Events to send in total (default 100000 when `--duration` is not given either).
    #[arg(long, env = "STRATA_LOAD_EVENTS")]
    pub events: Option<u64>,
    /// How long to send for; with `--events` too, whichever ends first.
    #[arg(long, env = "STRATA_LOAD_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Events per request.
    #[arg(long, env = "STRATA_LOAD_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Requests in flight at once.
    #[arg(long, env = "STRATA_LOAD_CONCURRENCY", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: u32,
    /// Number of tenants events are spread over.
    #[arg(long, env = "STRATA_LOAD_TENANTS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenants: u32,
    /// Number of streams (event types) per tenant.
    #[arg(long, env = "STRATA_LOAD_STREAMS", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub streams: u32,
    /// Number of distinct keys (entities); picked with a Zipf distribution.
    #[arg(long, env = "STRATA_LOAD_KEYS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Zipf exponent for key popularity (0 = uniform; around 1 is typical of real traffic).
    #[arg(long, env = "STRATA_LOAD_ZIPF_S", default_value_t = 1.1, value_parser = parse_zipf_s)]
    pub zipf_s: f64,
    /// Random seed for event contents (default: random; the summary prints it). Ids stay
    /// unique across runs either way.
    #[arg(long, env = "STRATA_LOAD_SEED")]
    pub seed: Option<u64>,
    /// Retries of a request the server refused as overloaded (503/429, gRPC unavailable or
    /// resource exhausted), after the wait it asks for; the same ids are resent, so a retry
    /// never doubles an event.
    #[arg(long, env = "STRATA_LOAD_RETRIES", default_value_t = 3)]
    pub retries: u32,
    /// Print the summary as one JSON object on standard output.
    #[arg(long, env = "STRATA_LOAD_JSON")]
    pub json: bool,
    /// Produce the events into Kafka at these bootstrap brokers instead of sending them to a
    /// server (`--protocol` and `--target` are then ignored). Idempotent producer; each
    /// message is one event's JSON, keyed by the event's key.
    #[arg(long = "kafka", value_name = "BROKERS", env = "STRATA_LOAD_KAFKA")]
    pub kafka: Option<String>,
    /// Topic to produce into; created (through the admin API) when missing.
    #[arg(long, env = "STRATA_LOAD_KAFKA_TOPIC", default_value = "events")]
    pub kafka_topic: String,
    /// Partitions of the topic when it has to be created.
    #[arg(long, env = "STRATA_LOAD_KAFKA_PARTITIONS", default_value_t = 4)]
    pub kafka_partitions: i32,
    /// A librdkafka producer property, `NAME=VALUE` (repeatable).
    #[arg(long = "kafka-property", value_name = "NAME=VALUE", value_parser = strata_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Protocol {
    /// `POST /v1/events`.
    Rest,
    /// `strata.v1.Ingest/Write`.
    Grpc,
}

impl Protocol {
    /// The name used in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rest => "rest",
            Self::Grpc => "grpc",
        }
    }
}

fn parse_zipf_s(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a number >= 0".into()),
    }
}

/// Events sent when neither `--events` nor `--duration` is given.
pub const DEFAULT_EVENTS: u64 = 100_000;

/// Runs the load and prints the summary; fails if any request failed.
pub async fn run(args: LoadArgs) -> Result<()> {
    let target = args.target.clone().unwrap_or_else(|| {
        match args.protocol {
            Protocol::Rest => "http://127.0.0.1:8080",
            Protocol::Grpc => "http://127.0.0.1:50051",
        }
        .to_owned()
    });
    let seed = args.seed.unwrap_or_else(rand::random);
    let run_id = format!("{:08x}", rand::random::<u32>());
    let generator = Generator::new(
        args.tenants,
        args.streams,
        args.keys,
        args.zipf_s,
        seed,
        run_id.clone(),
    )
    .map_err(Error::LoadSetup)?;
    if let Some(brokers) = args.kafka.clone() {
        let events = args.events.unwrap_or(DEFAULT_EVENTS);
        return kafka::run(&args, &brokers, generator, events, seed, run_id).await;
    }
    let concurrency = args.concurrency as usize;
    let sender = Sender::connect(args.protocol, &target, args.ndjson, concurrency)
        .await
        .map_err(Error::LoadSetup)?;
    let info = RunInfo {
        protocol: args.protocol.as_str(),
        format: sender.format(),
        target: target.clone(),
        seed,
        run_id,
        tenants: generator.tenants().to_vec(),
        streams: generator.streams().to_vec(),
    };

    let events = match (args.events, args.duration) {
        (None, None) => Some(DEFAULT_EVENTS),
        (events, _) => events,
    };
    let start = Instant::now();
    let plan = Arc::new(Plan {
        start,
        total: events,
        deadline: args.duration.map(|d| start + d),
        batch: u64::from(args.batch_size),
        rate: args.rate,
        next: AtomicU64::new(0),
    });
    let stop = CancellationToken::new();
    let progress = progress_bar(events, args.duration);
    info!(
        protocol = info.protocol,
        target = %target,
        seed,
        events = ?events,
        duration = ?args.duration,
        rate = args.rate,
        concurrency,
        "sending"
    );

    let ctrl_c = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                warn!("interrupted; finishing requests in flight");
                stop.cancel();
            }
        })
    };
    let generator = Arc::new(generator);
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(worker(
                plan.clone(),
                generator.clone(),
                sender.clone(),
                args.retries,
                stop.clone(),
                progress.clone(),
            ))
        })
        .collect();
    let mut tally = Tally::new();
    for w in workers {
        match w.await {
            Ok(t) => tally.merge(t),
            Err(source) => {
                ctrl_c.abort();
                return Err(Error::Task {
                    task: "load worker",
                    source,
                });
            }
        }
    }
    ctrl_c.abort();
    let elapsed = start.elapsed();
    progress.finish_and_clear();

    let summary = Summary::new(info, tally, elapsed);
    if args.json {
        let line = serde_json::to_string(&summary)
            .map_err(|e| Error::LoadSetup(format!("cannot encode the summary: {e}")))?;
        println!("{line}");
    } else {
        print!("{}", summary.to_text());
    }
    if summary.failed_requests > 0 {
        return Err(Error::LoadFailed {
            failed: summary.failed_requests,
            requests: summary.requests,
        });
    }
    Ok(())
}

/// Which batch comes next and when it is due.
#[derive(Debug)]
struct Plan {
    start: Instant,
    total: Option<u64>,
    deadline: Option<Instant>,
    batch: u64,
    rate: u64,
    next: AtomicU64,
}

/// A claimed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    index: u64,
    size: u64,
    due: Option<Instant>,
}

impl Plan {
    /// Claims the next batch, or `None` when the run is over.
    fn claim(&self, now: Instant) -> Option<Slot> {
        if self.deadline.is_some_and(|d| now >= d) {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let first = index.checked_mul(self.batch)?;
        let size = match self.total {
            Some(total) if first >= total => return None,
            Some(total) => self.batch.min(total - first),
            None => self.batch,
        };
        let due = (self.rate > 0)
            .then(|| self.start + Duration::from_secs_f64(first as f64 / self.rate as f64));
        if let (Some(due), Some(deadline)) = (due, self.deadline)
            && due >= deadline
        {
            return None;
        }
        Some(Slot { index, size, due })
    }
}

async fn worker(
    plan: Arc<Plan>,
    generator: Arc<Generator>,
    mut sender: Sender,
    retries: u32,
    stop: CancellationToken,
    progress: ProgressBar,
) -> Tally {
    let mut tally = Tally::new();
    while let Some(slot) = plan.claim(Instant::now()) {
        if let Some(due) = slot.due {
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stop.cancelled() => break,
            }
        }
        if stop.is_cancelled() {
            break;
        }
        // The size is at most --batch-size, a u32.
        let size = usize::try_from(slot.size).unwrap_or(usize::MAX);
        let events = generator.batch(slot.index, size, strata_types::time::now_micros());
        let result = sender.send(&events, retries).await;
        tally.record(slot.size, result);
        progress.inc(slot.size);
    }
    tally
}

fn progress_bar(events: Option<u64>, duration: Option<Duration>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match events {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => {
            let bar = ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {elapsed_precise} {human_pos} events ({per_sec}) {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            if let Some(d) = duration {
                bar.set_message(format!("of {}", humantime::format_duration(d)));
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(total: Option<u64>, deadline: Option<Duration>, rate: u64) -> (Plan, Instant) {
        let start = Instant::now();
        (
            Plan {
                start,
                total,
                deadline: deadline.map(|d| start + d),
                batch: 100,
                rate,
                next: AtomicU64::new(0),
            },
            start,
        )
    }

    #[test]
    fn event_count_is_met_exactly() {
        let (p, start) = plan(Some(250), None, 0);
        let sizes: Vec<u64> = std::iter::from_fn(|| p.claim(start).map(|s| s.size)).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(p.claim(start).is_none());
    }

    #[test]
    fn rate_spaces_batches_and_deadline_ends_the_run() {
        let (p, start) = plan(None, Some(Duration::from_secs(1)), 400);
        let dues: Vec<Duration> = std::iter::from_fn(|| p.claim(start))
            .map(|s| s.due.unwrap() - start)
            .collect();
        // 100-event batches at 400 events/s: every 250 ms, and none due at or after 1 s.
        assert_eq!(dues, [0, 250, 500, 750].map(Duration::from_millis).to_vec());
        let (p, start) = plan(None, Some(Duration::from_secs(1)), 0);
        assert!(p.claim(start).is_some());
        assert!(p.claim(start + Duration::from_secs(1)).is_none());
    }
}
