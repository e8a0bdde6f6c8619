//! The command line: every flag, its default and its `STRATA_*` environment variable.
//!
//! `serve` flags read `STRATA_<FLAG_IN_CAPS>`; `load` flags read `STRATA_LOAD_<FLAG_IN_CAPS>`
//! so that a shell configured for a server does not also steer the load generator.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};
use strata_types::{Limits, UnknownFields};

/// Strata: a tiered event store.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: REST and gRPC ingest and queries over the hot tier.
    Serve(Box<ServeArgs>),
    /// Generate realistic events and send them to a server; report throughput and latency.
    Load(Box<LoadArgs>),
}

/// Flags of `strata serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory for all local data; the hot tier lives in `<data-dir>/hot.redb`. Created if
    /// missing.
    #[arg(long, env = "STRATA_DATA_DIR", default_value = "storage")]
    pub data_dir: PathBuf,
    /// Network listeners.
    #[command(flatten)]
    pub api: ApiArgs,
    /// Hot tier budgets.
    #[command(flatten)]
    pub hot: HotArgs,
    /// What an event and a batch may be.
    #[command(flatten)]
    pub limits: LimitsArgs,
    /// How long a graceful shutdown (SIGTERM/SIGINT) may take: in-flight requests finish and
    /// the hot tier completes its commits within it; a second signal cuts it short.
    #[arg(
        long,
        env = "STRATA_SHUTDOWN_GRACE",
        default_value = "30s",
        value_parser = parse_duration,
        help_heading = "Shutdown"
    )]
    pub shutdown_grace: Duration,
}

/// The REST and gRPC listeners.
#[derive(Debug, Args)]
#[command(next_help_heading = "API")]
pub struct ApiArgs {
    /// REST listen address (port 0 picks a free port; the `listening` log line says which).
    #[arg(long, env = "STRATA_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// gRPC listen address (port 0 picks a free port).
    #[arg(long, env = "STRATA_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,
    /// Requests served at once over both protocols; beyond it requests are refused at once
    /// (REST 503, gRPC RESOURCE_EXHAUSTED) rather than queued.
    #[arg(long, env = "STRATA_MAX_CONCURRENT_REQUESTS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_requests: u32,
    /// Longest a request may take before it is answered with a timeout.
    #[arg(
        long,
        env = "STRATA_REQUEST_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration
    )]
    pub request_timeout: Duration,
}

/// Hot tier budgets.
#[derive(Debug, Args)]
#[command(next_help_heading = "Hot tier")]
pub struct HotArgs {
    /// Memory the hot tier may use for its index and cached window segments (e.g. `512MiB`).
    #[arg(
        long,
        env = "STRATA_HOT_MEMORY",
        default_value = "512MiB",
        value_parser = parse_byte_size
    )]
    pub hot_memory: u64,
    /// Disk the hot tier's unreleased log may use; beyond it ingest answers 503 (e.g. `10GiB`).
    #[arg(
        long,
        env = "STRATA_HOT_DISK",
        default_value = "10GiB",
        value_parser = parse_byte_size
    )]
    pub hot_disk: u64,
}

/// Limits on events and batches; each maps to the [`Limits`] field of the same name.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsArgs {
    /// Longest `key`, bytes.
    #[arg(long, env = "STRATA_MAX_KEY_BYTES", default_value_t = Limits::default().max_key_bytes)]
    pub max_key_bytes: usize,
    /// Longest `id`, bytes.
    #[arg(long, env = "STRATA_MAX_ID_BYTES", default_value_t = Limits::default().max_id_bytes)]
    pub max_id_bytes: usize,
    /// Most entries in `attrs`.
    #[arg(long, env = "STRATA_MAX_ATTRS", default_value_t = Limits::default().max_attrs)]
    pub max_attrs: usize,
    /// Longest attribute name, bytes.
    #[arg(
        long,
        env = "STRATA_MAX_ATTR_KEY_BYTES",
        default_value_t = Limits::default().max_attr_key_bytes
    )]
    pub max_attr_key_bytes: usize,
    /// Longest attribute value, bytes.
    #[arg(
        long,
        env = "STRATA_MAX_ATTR_VALUE_BYTES",
        default_value_t = Limits::default().max_attr_value_bytes
    )]
    pub max_attr_value_bytes: usize,
    /// Largest `payload` as JSON text (e.g. `64KiB`).
    #[arg(
        long,
        env = "STRATA_MAX_PAYLOAD_BYTES",
        default_value_t = Limits::default().max_payload_bytes,
        value_parser = parse_byte_size_usize
    )]
    pub max_payload_bytes: usize,
    /// How far ahead of the server's clock `ts` may be.
    #[arg(
        long,
        env = "STRATA_MAX_FUTURE_SKEW",
        default_value_t = Limits::default().max_future_skew.into(),
        value_parser = parse_human_duration
    )]
    pub max_future_skew: humantime::Duration,
    /// How far behind the server's clock `ts` may be.
    #[arg(
        long,
        env = "STRATA_MAX_LATENESS",
        default_value_t = Limits::default().max_lateness.into(),
        value_parser = parse_human_duration
    )]
    pub max_lateness: humantime::Duration,
    /// Most events in one batch (request or stream message).
    #[arg(
        long,
        env = "STRATA_MAX_BATCH_EVENTS",
        default_value_t = Limits::default().max_batch_events
    )]
    pub max_batch_events: usize,
    /// Largest request body (e.g. `16MiB`).
    #[arg(
        long,
        env = "STRATA_MAX_BODY_BYTES",
        default_value_t = Limits::default().max_body_bytes,
        value_parser = parse_byte_size_usize
    )]
    pub max_body_bytes: usize,
    /// What to do with event fields Strata does not define.
    #[arg(
        long,
        env = "STRATA_UNKNOWN_FIELDS",
        value_enum,
        default_value_t = UnknownFieldsArg::Reject
    )]
    pub unknown_fields: UnknownFieldsArg,
}

impl LimitsArgs {
    /// The validation limits these flags describe.
    pub fn to_limits(&self) -> Limits {
        Limits {
            max_key_bytes: self.max_key_bytes,
            max_id_bytes: self.max_id_bytes,
            max_attrs: self.max_attrs,
            max_attr_key_bytes: self.max_attr_key_bytes,
            max_attr_value_bytes: self.max_attr_value_bytes,
            max_payload_bytes: self.max_payload_bytes,
            max_future_skew: self.max_future_skew.into(),
            max_lateness: self.max_lateness.into(),
            max_batch_events: self.max_batch_events,
            max_body_bytes: self.max_body_bytes,
            unknown_fields: self.unknown_fields.into(),
        }
    }
}

/// `--unknown-fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnknownFieldsArg {
    /// Reject the event, naming the field.
    Reject,
    /// Ignore fields Strata does not define.
    Ignore,
}

impl From<UnknownFieldsArg> for UnknownFields {
    fn from(a: UnknownFieldsArg) -> Self {
        match a {
            UnknownFieldsArg::Reject => UnknownFields::Reject,
            UnknownFieldsArg::Ignore => UnknownFields::Ignore,
        }
    }
}

/// Logging, shared by every subcommand. Logs go to standard error so that standard output
/// stays clean for results (`strata load --json`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log line format.
    #[arg(
        long,
        env = "STRATA_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Pretty,
        global = true
    )]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `strata=debug,tower_http=warn`; when unset, `RUST_LOG` is
    /// used, and `info` when that is unset too.
    #[arg(long, env = "STRATA_LOG_LEVEL", global = true)]
    pub log_level: Option<String>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, fields at the top level.
    Json,
}

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

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration such as `30s`, `15m` or `1h` ({e})"))
}

fn parse_human_duration(s: &str) -> Result<humantime::Duration, String> {
    parse_duration(s).map(Into::into)
}

fn parse_byte_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| {
            format!("expected a byte size such as `65536`, `64KiB`, `512MiB` or `10GiB` ({e})")
        })
}

fn parse_byte_size_usize(s: &str) -> Result<usize, String> {
    let n = parse_byte_size(s)?;
    usize::try_from(n).map_err(|_| format!("{n} bytes is more than this machine can address"))
}

fn parse_zipf_s(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err("expected a number >= 0".into()),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("strata").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_match_the_library_defaults() {
        let cli = parse(&["serve"]).unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(s.limits.to_limits(), Limits::default());
        assert_eq!(s.data_dir, PathBuf::from("storage"));
        assert_eq!(s.api.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.api.grpc_addr, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(s.hot.hot_memory, 512 * 1024 * 1024);
        assert_eq!(s.hot.hot_disk, 10 * 1024 * 1024 * 1024);
        assert_eq!(s.shutdown_grace, Duration::from_secs(30));
        assert_eq!(cli.log.log_format, LogFormat::Pretty);
    }

    #[test]
    fn serve_flags_parse_human_values() {
        let cli = parse(&[
            "serve",
            "--hot-memory",
            "64MiB",
            "--max-payload-bytes",
            "1KiB",
            "--max-lateness",
            "2h",
            "--unknown-fields",
            "ignore",
            "--log-format",
            "json",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(s.hot.hot_memory, 64 * 1024 * 1024);
        let limits = s.limits.to_limits();
        assert_eq!(limits.max_payload_bytes, 1024);
        assert_eq!(limits.max_lateness, Duration::from_secs(7200));
        assert_eq!(limits.unknown_fields, UnknownFields::Ignore);
        assert_eq!(cli.log.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["serve", "--hot-memory", "lots"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--hot-memory"), "{msg}");
        assert!(msg.contains("byte size"), "{msg}");
        let err = parse(&["serve", "--request-timeout", "soon"]).unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
        assert!(parse(&["load", "--concurrency", "0"]).is_err());
        assert!(parse(&["load", "--zipf-s", "-1"]).is_err());
    }

    #[test]
    fn load_defaults() {
        let cli = parse(&["load"]).unwrap();
        let Command::Load(l) = cli.command else {
            panic!("not load")
        };
        assert_eq!(l.protocol, Protocol::Rest);
        assert_eq!(l.batch_size, 1000);
        assert!(l.events.is_none() && l.duration.is_none());
    }
}
