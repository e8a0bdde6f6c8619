//! The command line: every flag, its default and its `STRATA_*` environment variable.
//!
//! `serve` flags read `STRATA_<FLAG_IN_CAPS>`; `load` flags read `STRATA_LOAD_<FLAG_IN_CAPS>`
//! so that a shell configured for a server does not also steer the load generator.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use strata_types::{Limits, UnknownFields};
use strata_warm::Layout;

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
    /// Run the server: REST and gRPC ingest and queries over the hot and warm tiers, and the
    /// flusher that moves events from hot to warm.
    Serve(Box<ServeArgs>),
    /// Apply the warm tier's schema migrations (idempotent), or print their state.
    Migrate(Box<MigrateArgs>),
    /// Generate realistic events and send them to a server; report throughput and latency.
    Load(Box<LoadArgs>),
    /// Archive closed partitions to the cold tier now (one export and one maintenance
    /// pass: compaction, cleanup, Object Lock) on a stopped node's data directory.
    Export(Box<crate::export::ExportArgs>),
    /// Inspect the cold archive through a running server: list, read, verify, legal hold.
    Archive(Box<crate::archive::ArchiveArgs>),
    /// Replay a tenant's events of a range in event-time order from a running server, to
    /// NDJSON or a Kafka topic; resumable with `--cursor`.
    Replay(Box<crate::replay::ReplayArgs>),
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
    /// The warm tier.
    #[command(flatten)]
    pub warm: WarmArgs,
    /// Apply pending warm-tier migrations at start (`false`: refuse to start on a database
    /// that needs them, and leave migrating to `strata migrate`). Concurrent replicas
    /// migrating the same database take turns under a lock, so each migration runs once.
    #[arg(
        long,
        env = "STRATA_WARM_MIGRATE",
        default_value_t = true,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        help_heading = "Warm tier"
    )]
    pub warm_migrate: bool,
    /// Moving events from hot to warm, and how long each tier keeps them.
    #[command(flatten)]
    pub flush: FlushArgs,
    /// This node's id, stamped on every row it flushes to warm (default: a random id created
    /// with the data directory and kept in `<data-dir>/node-id`). A StatefulSet sets it to
    /// the pod name. A data directory that already belongs to another id is refused, never
    /// renumbered, and so is an id whose rows in warm are ahead of this hot tier (a reused
    /// id on a new data directory).
    #[arg(long, env = "STRATA_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,
    /// What an event and a batch may be.
    #[command(flatten)]
    pub limits: LimitsArgs,
    /// The query cache and replay.
    #[command(flatten)]
    pub reads: ReadArgs,
    /// Kafka ingest.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The cold tier.
    #[command(flatten)]
    pub cold: crate::cold::ColdArgs,
    /// How often the exporter looks for partitions due for the cold tier and compacts,
    /// cleans and locks the archive.
    #[arg(
        long,
        env = "STRATA_EXPORT_INTERVAL",
        default_value = "60s",
        value_parser = parse_positive_duration,
        help_heading = "Cold tier"
    )]
    pub export_interval: Duration,
    /// Run the exporter (export, compaction, cleanup, Object Lock) on this node. With
    /// several replicas sharing one archive, run it on one of them (`false` on the others):
    /// two exporters could write the same partition's next manifest version at once. Queries,
    /// lookups and the archive API read the cold tier either way.
    #[arg(
        long,
        env = "STRATA_EXPORTER",
        default_value_t = true,
        action = ArgAction::Set,
        help_heading = "Cold tier"
    )]
    pub exporter: bool,
    /// Run the exporter only on the node with this id (e.g. the first pod of a StatefulSet,
    /// which the Helm chart sets); every other node then behaves as with `--exporter false`.
    #[arg(
        long,
        env = "STRATA_EXPORTER_NODE",
        value_parser = parse_node_id,
        help_heading = "Cold tier"
    )]
    pub exporter_node: Option<String>,
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

/// Kafka ingest: a consumer in a consumer group writing into the hot tier, with its offsets
/// committed in the same transaction as the events.
#[derive(Debug, Args)]
#[command(next_help_heading = "Kafka ingest")]
pub struct KafkaArgs {
    /// Bootstrap brokers, `host:port[,host:port...]`; unset runs no consumer.
    #[arg(long, env = "STRATA_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topics to consume, comma-separated (a name starting with `^` is a regular expression).
    /// Topics that do not exist yet are waited for.
    #[arg(
        long,
        env = "STRATA_KAFKA_TOPICS",
        value_delimiter = ',',
        default_value = "events"
    )]
    pub kafka_topics: Vec<String>,
    /// Consumer group; replicas sharing it split the partitions.
    #[arg(long, env = "STRATA_KAFKA_GROUP", default_value = "strata")]
    pub kafka_group: String,
    /// Dead-letter topic for invalid messages (created when missing); default `<group>.dlq`.
    #[arg(long, env = "STRATA_KAFKA_DLQ_TOPIC")]
    pub kafka_dlq_topic: Option<String>,
    /// Replication factor of the dead-letter topic when Strata creates it.
    #[arg(long, env = "STRATA_KAFKA_DLQ_REPLICATION", default_value_t = 1)]
    pub kafka_dlq_replication: i32,
    /// Any librdkafka property, `NAME=VALUE` (repeatable), e.g. `security.protocol=SSL`. Also
    /// read from `STRATA_KAFKA_PROPERTY_<NAME>` variables (`_` for `.`, e.g.
    /// `STRATA_KAFKA_PROPERTY_SESSION_TIMEOUT_MS=6000`).
    #[arg(long = "kafka-property", value_name = "NAME=VALUE", value_parser = strata_ingest::parse_property)]
    pub kafka_properties: Vec<(String, String)>,
    /// Most messages per batch (one durable hot-tier commit).
    #[arg(
        long,
        env = "STRATA_KAFKA_BATCH_MAX_MESSAGES",
        default_value_t = 10_000
    )]
    pub kafka_batch_max_messages: usize,
    /// Longest a batch waits for more messages after its first.
    #[arg(long, env = "STRATA_KAFKA_BATCH_MAX_WAIT", default_value = "100ms", value_parser = parse_duration)]
    pub kafka_batch_max_wait: Duration,
}

impl KafkaArgs {
    /// The consumer configuration, or `None` when no brokers are configured.
    pub fn to_config(&self) -> Option<strata_ingest::KafkaConfig> {
        let brokers = self
            .kafka_brokers
            .as_ref()
            .filter(|b| !b.trim().is_empty())?;
        let mut config = strata_ingest::KafkaConfig::new(
            brokers.clone(),
            self.kafka_topics.clone(),
            self.kafka_group.clone(),
        );
        config.dlq_topic = self.kafka_dlq_topic.clone();
        config.dlq_replication = self.kafka_dlq_replication;
        config.properties = strata_ingest::properties_from_env(std::env::vars());
        config
            .properties
            .extend(self.kafka_properties.iter().cloned());
        config.batch_max_messages = self.kafka_batch_max_messages.max(1);
        config.batch_max_wait = self.kafka_batch_max_wait;
        Some(config)
    }
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

/// Where the warm tier lives and how it is laid out; shared by `serve` and `migrate`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Warm tier")]
pub struct WarmArgs {
    /// The warm tier: `embedded` (a file `<data-dir>/warm.redb`, no server) or a PostgreSQL
    /// URL, `postgres://USER:PASSWORD@HOST:5432/DB`. The password never appears in logs or
    /// messages.
    #[arg(
        long,
        env = "STRATA_WARM",
        default_value = "embedded",
        hide_env_values = true,
        value_parser = WarmUrlParser
    )]
    pub warm: WarmUrl,
    /// Layout to create in a database that has none yet: `auto` (TimescaleDB when the server
    /// offers the extension, native partitions otherwise), `postgres` or `timescaledb`. An
    /// existing database keeps its layout.
    #[arg(long, env = "STRATA_WARM_LAYOUT", value_enum, default_value_t = LayoutArg::Auto)]
    pub warm_layout: LayoutArg,
    /// Most pooled PostgreSQL connections.
    #[arg(long, env = "STRATA_WARM_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub warm_pool_size: u32,
    /// How long to wait for a PostgreSQL connection (connecting, or a free pooled one).
    #[arg(
        long,
        env = "STRATA_WARM_CONNECT_TIMEOUT",
        default_value = "5s",
        value_parser = parse_duration
    )]
    pub warm_connect_timeout: Duration,
    /// TimescaleDB chunk interval of the events hypertable.
    #[arg(
        long,
        env = "STRATA_WARM_CHUNK_INTERVAL",
        default_value = "1d",
        value_parser = parse_duration
    )]
    pub warm_chunk_interval: Duration,
    /// TimescaleDB: compress chunks older than this.
    #[arg(
        long,
        env = "STRATA_WARM_COMPRESS_AFTER",
        default_value = "7d",
        value_parser = parse_duration
    )]
    pub warm_compress_after: Duration,
    /// Plain PostgreSQL: daily partitions created ahead of today.
    #[arg(long, env = "STRATA_WARM_PARTITIONS_AHEAD", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(0..=366))]
    pub warm_partitions_ahead: u32,
}

/// `--warm-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// TimescaleDB when available, native partitions otherwise.
    Auto,
    /// Native daily partitions and Strata-maintained rollups.
    Postgres,
    /// A TimescaleDB hypertable; fails when the extension is not available.
    Timescaledb,
}

impl From<LayoutArg> for Layout {
    fn from(a: LayoutArg) -> Self {
        match a {
            LayoutArg::Auto => Layout::Auto,
            LayoutArg::Postgres => Layout::Postgres,
            LayoutArg::Timescaledb => Layout::Timescale,
        }
    }
}

/// A warm-tier URL whose `Display` and `Debug` hide the password, so it can be logged and a
/// parsed command line printed without leaking credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct WarmUrl(String);

impl WarmUrl {
    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether this is the embedded store.
    pub fn is_embedded(&self) -> bool {
        self.0 == "embedded"
    }

    /// The URL with its password (in the user part or a `password=` parameter) replaced by
    /// `***`.
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }
}

impl std::fmt::Display for WarmUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Debug for WarmUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WarmUrl({:?})", self.redacted())
    }
}

impl std::str::FromStr for WarmUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_warm_url(s)
    }
}

/// `s` with any password replaced by `***`: the one in `user:password@`, and any
/// `password=` query parameter.
pub fn redact_url(s: &str) -> String {
    let (base, query) = match s.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (s, None),
    };
    let mut out = String::with_capacity(s.len());
    match (base.find("://"), base.rfind('@')) {
        // The last `@` ends the user part, so a password holding `@` or `/` (however
        // unwise) is still hidden whole.
        (Some(scheme_end), Some(at)) if at > scheme_end + 3 => {
            let userinfo = &base[scheme_end + 3..at];
            out.push_str(&base[..scheme_end + 3]);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&base[at..]);
        }
        _ => out.push_str(base),
    }
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

/// Parses `--warm` like `parse_warm_url`, but unlike clap's usual message for a bad value,
/// the error never repeats the value itself: it may hold a password.
#[derive(Debug, Clone, Copy)]
struct WarmUrlParser;

impl clap::builder::TypedValueParser for WarmUrlParser {
    type Value = WarmUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let name = arg.map_or_else(|| "--warm".to_owned(), ToString::to_string);
        let fail = |reason: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '{name}': {reason}\n"),
            )
            .with_cmd(cmd)
        };
        let value = value
            .to_str()
            .ok_or_else(|| fail("the URL is not valid UTF-8".into()))?;
        parse_warm_url(value).map_err(fail)
    }
}

fn parse_warm_url(s: &str) -> Result<WarmUrl, String> {
    let s = s.trim();
    if s == "embedded" || s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(WarmUrl(s.to_owned()))
    } else {
        Err(format!(
            "expected `embedded` or a URL such as `postgres://user:password@host:5432/db`, \
             got `{}`",
            redact_url(s)
        ))
    }
}

/// The flusher and the retention of each tier.
#[derive(Debug, Args)]
#[command(next_help_heading = "Flushing and retention")]
pub struct FlushArgs {
    /// Events stay in the hot tier at least this long after ingest before the flusher moves
    /// them to warm.
    #[arg(
        long,
        env = "STRATA_HOT_RETENTION",
        default_value = "15m",
        value_parser = parse_duration
    )]
    pub hot_retention: Duration,
    /// How often the flusher looks for events due for warm (a backlog drains without waiting
    /// for the next tick).
    #[arg(
        long,
        env = "STRATA_FLUSH_INTERVAL",
        default_value = "5s",
        value_parser = parse_positive_duration
    )]
    pub flush_interval: Duration,
    /// About this many events per warm batch (one transaction; whole hot commits, so
    /// sometimes more).
    #[arg(long, env = "STRATA_FLUSH_MAX_BATCH_EVENTS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub flush_max_batch_events: u32,
    /// Warm rows with an event time older than this are dropped; `off` keeps them forever.
    #[arg(
        long,
        env = "STRATA_WARM_RETENTION",
        default_value = "90d",
        value_parser = parse_retention
    )]
    pub warm_retention: Retention,
}

impl ServeArgs {
    /// Whether the node `node` runs the exporter: `--exporter`, narrowed to
    /// `--exporter-node` when that is set.
    pub fn runs_exporter(&self, node: &str) -> bool {
        self.exporter && self.exporter_node.as_deref().is_none_or(|n| n == node)
    }
}

/// The query-result cache and replay throttling.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    /// Byte budget of the query-result cache (closed buckets of aggregates); `0` turns it
    /// off.
    #[arg(
        long,
        env = "STRATA_QUERY_CACHE_SIZE",
        default_value = "256MiB",
        value_parser = parse_byte_size,
        help_heading = "Queries and replay"
    )]
    pub query_cache_size: u64,
    /// Cached answers expire this long after they were computed (unset: kept until evicted
    /// or invalidated). Set it when several replicas share warm and cold: a late event
    /// written through another replica does not invalidate this one's cache.
    #[arg(
        long,
        env = "STRATA_QUERY_CACHE_TTL",
        value_parser = parse_positive_duration,
        help_heading = "Queries and replay"
    )]
    pub query_cache_ttl: Option<Duration>,
    /// Most replays reading at once; others wait their turn.
    #[arg(long, env = "STRATA_REPLAY_MAX_CONCURRENT", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Queries and replay")]
    pub replay_max_concurrent: u32,
    /// Events per second one replay may emit (a request may ask for less); `0` removes the
    /// cap. Together with the concurrency limit this bounds the share of the machine
    /// replays take from live ingest.
    #[arg(
        long,
        env = "STRATA_REPLAY_MAX_RATE",
        default_value_t = 200_000,
        help_heading = "Queries and replay"
    )]
    pub replay_max_rate: u32,
}

impl ReadArgs {
    /// The store's cache and late-event settings (warm retention comes from the flush
    /// flags; a node without the exporter leaves late events of archived days to warm).
    pub fn store_config(
        &self,
        warm_retention: Option<Duration>,
        writes_cold: bool,
    ) -> strata_tiering::StoreConfig {
        strata_tiering::StoreConfig {
            cache_capacity_bytes: self.query_cache_size,
            cache_ttl: self.query_cache_ttl,
            warm_retention,
            late_to_cold: writes_cold,
            ..strata_tiering::StoreConfig::default()
        }
    }

    /// How replays are throttled.
    pub fn replay_config(&self) -> strata_tiering::ReplayConfig {
        strata_tiering::ReplayConfig {
            max_concurrent: self.replay_max_concurrent as usize,
            max_rate: std::num::NonZeroU32::new(self.replay_max_rate),
            ..strata_tiering::ReplayConfig::default()
        }
    }
}

/// How long a tier keeps data: a duration, or forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention(pub Option<Duration>);

fn parse_retention(s: &str) -> Result<Retention, String> {
    match s.trim() {
        "off" | "none" | "forever" => Ok(Retention(None)),
        other => match parse_duration(other)? {
            // Zero would drop every row at the first pass: far more likely a mistake than a
            // wish, and `off` says the opposite.
            d if d.is_zero() => Err("expected a duration above zero, or `off`".into()),
            d => Ok(Retention(Some(d))),
        },
    }
}

pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

pub(crate) fn parse_node_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if crate::node::valid(s) {
        Ok(s.to_owned())
    } else {
        Err("expected 1 to 64 characters of `a-z`, `A-Z`, `0-9`, `-` and `_`".into())
    }
}

/// Flags of `strata migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The warm tier to migrate.
    #[command(flatten)]
    pub warm: WarmArgs,
    /// Print the warm mode, the applied and pending migrations and whether the timescaledb
    /// extension is available, instead of applying anything.
    #[arg(long)]
    pub status: bool,
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
    /// How far behind the server's clock `ts` may be and still go into the hot tier. Older
    /// events are not rejected: they go straight to the tier that owns their time (warm
    /// rows, or a cold amendment file when their day is already archived).
    #[arg(
        long,
        env = "STRATA_MAX_LATENESS",
        default_value_t = Limits::default().max_lateness.into(),
        value_parser = parse_human_duration
    )]
    pub max_lateness: humantime::Duration,
    /// Oldest `ts` accepted at all, as an age (unset: any age; without a cold tier the
    /// warm retention caps it anyway).
    #[arg(long, env = "STRATA_MAX_AGE", value_parser = parse_duration)]
    pub max_age: Option<Duration>,
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
            max_age: self.max_age,
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

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("expected a duration such as `30s`, `15m` or `1h` ({e})"))
}

fn parse_human_duration(s: &str) -> Result<humantime::Duration, String> {
    parse_duration(s).map(Into::into)
}

pub(crate) fn parse_byte_size(s: &str) -> Result<u64, String> {
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
        assert!(s.warm.warm.is_embedded());
        assert_eq!(s.warm.warm_layout, LayoutArg::Auto);
        assert!(s.warm_migrate);
        assert_eq!(s.node_id, None);
        let warm = s.warm.to_config(&s.data_dir, s.warm_migrate);
        let lib = strata_warm::WarmConfig::new("storage");
        assert_eq!(warm.layout, lib.layout);
        assert_eq!(warm.pool_size, lib.pool_size);
        assert_eq!(warm.connect_timeout, lib.connect_timeout);
        assert_eq!(warm.chunk_interval, lib.chunk_interval);
        assert_eq!(warm.compress_after, lib.compress_after);
        assert_eq!(warm.partitions_ahead, lib.partitions_ahead);
        assert!(warm.migrate_on_open);
        let flush = s.flush.to_config();
        let lib = strata_tiering::FlusherConfig::default();
        assert_eq!(flush.hot_retention, Duration::from_secs(15 * 60));
        assert_eq!(flush.hot_retention, lib.hot_retention);
        assert_eq!(flush.flush_interval, lib.flush_interval);
        assert_eq!(flush.max_batch_events, lib.max_batch_events);
        assert_eq!(flush.warm_retention, Some(Duration::from_secs(90 * 86_400)));
    }

    #[test]
    fn the_exporter_runs_where_configured() {
        let serve = |args: &[&str]| {
            let mut all = vec!["serve"];
            all.extend_from_slice(args);
            match parse(&all).unwrap().command {
                Command::Serve(s) => s,
                _ => panic!("not serve"),
            }
        };
        assert!(serve(&[]).runs_exporter("strata-1"));
        assert!(!serve(&["--exporter", "false"]).runs_exporter("strata-0"));
        let one = serve(&["--exporter-node", "strata-0"]);
        assert!(one.runs_exporter("strata-0"));
        assert!(!one.runs_exporter("strata-1"));
        assert!(
            !serve(&["--exporter", "false", "--exporter-node", "strata-0"])
                .runs_exporter("strata-0")
        );
        let reads = serve(&[]).reads;
        assert_eq!(
            reads.store_config(None, true),
            strata_tiering::StoreConfig::default(),
            "the flags' defaults are the library's"
        );
    }

    #[test]
    fn warm_and_flush_flags_parse() {
        let cli = parse(&[
            "serve",
            "--warm",
            "postgres://strata:s3cret@db:5432/strata",
            "--warm-layout",
            "timescaledb",
            "--warm-pool-size",
            "3",
            "--warm-connect-timeout",
            "250ms",
            "--warm-chunk-interval",
            "6h",
            "--warm-compress-after",
            "2d",
            "--warm-partitions-ahead",
            "1",
            "--warm-migrate",
            "false",
            "--warm-retention",
            "off",
            "--hot-retention",
            "1s",
            "--flush-interval",
            "200ms",
            "--flush-max-batch-events",
            "500",
            "--node-id",
            "strata-0",
        ])
        .unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(
            s.warm.warm.expose(),
            "postgres://strata:s3cret@db:5432/strata"
        );
        let warm = s.warm.to_config(&s.data_dir, s.warm_migrate);
        assert_eq!(warm.layout, Layout::Timescale);
        assert_eq!(warm.pool_size, 3);
        assert_eq!(warm.connect_timeout, Duration::from_millis(250));
        assert_eq!(warm.chunk_interval, Duration::from_secs(6 * 3600));
        assert_eq!(warm.compress_after, Duration::from_secs(2 * 86_400));
        assert_eq!(warm.partitions_ahead, 1);
        assert!(!warm.migrate_on_open);
        let flush = s.flush.to_config();
        assert_eq!(flush.hot_retention, Duration::from_secs(1));
        assert_eq!(flush.flush_interval, Duration::from_millis(200));
        assert_eq!(flush.max_batch_events, 500);
        assert_eq!(flush.warm_retention, None);
        assert_eq!(s.node_id.as_deref(), Some("strata-0"));
        // A parsed command line can be printed without leaking the password.
        let debug = format!("{s:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("strata:***@db:5432"), "{debug}");

        let cli = parse(&["serve", "--warm-migrate"]).unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert!(s.warm_migrate);
    }

    #[test]
    fn bad_warm_values_are_refused_without_echoing_passwords() {
        let err = parse(&["serve", "--warm", "mysql://root:hunter2@db/x"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--warm"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(parse(&["serve", "--warm-layout", "mongo"]).is_err());
        assert!(parse(&["serve", "--warm-retention", "0s"]).is_err());
        assert!(parse(&["serve", "--flush-interval", "0s"]).is_err());
        assert!(parse(&["serve", "--flush-max-batch-events", "0"]).is_err());
        assert!(parse(&["serve", "--warm-pool-size", "0"]).is_err());
        let err = parse(&["serve", "--node-id", "pod/0"]).unwrap_err();
        assert!(err.to_string().contains("--node-id"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        for (url, want) in [
            ("embedded", "embedded"),
            ("postgres://db/strata", "postgres://db/strata"),
            ("postgres://strata@db/strata", "postgres://strata@db/strata"),
            (
                "postgres://strata:pw@db:5432/strata",
                "postgres://strata:***@db:5432/strata",
            ),
            (
                "postgresql://u:p%40ss@h1,h2/db",
                "postgresql://u:***@h1,h2/db",
            ),
            // An unencoded `@` or `/` in the password is still hidden whole.
            ("postgres://u:a@b/c@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=pw&sslmode=require",
                "postgres://h/db?user=u&password=***&sslmode=require",
            ),
            (
                "postgres://u:pw@h/db?PASSWORD=x",
                "postgres://u:***@h/db?PASSWORD=***",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn migrate_flags() {
        let cli = parse(&["migrate", "--warm", "postgres://h/db", "--status"]).unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert!(m.status);
        assert_eq!(m.warm.warm.expose(), "postgres://h/db");
        let cli = parse(&["migrate"]).unwrap();
        let Command::Migrate(m) = cli.command else {
            panic!("not migrate")
        };
        assert!(!m.status);
        assert!(m.warm.warm.is_embedded());
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
    fn kafka_flags_build_the_consumer_config() {
        let serve = |args: &[&str]| {
            let cli = parse(&[&["serve"], args].concat()).unwrap();
            let Command::Serve(s) = cli.command else {
                panic!("not serve")
            };
            s
        };
        assert!(
            serve(&[]).kafka.to_config().is_none(),
            "no brokers, no consumer"
        );
        let s = serve(&[
            "--kafka-brokers",
            "k1:9092,k2:9092",
            "--kafka-topics",
            "a,b",
            "--kafka-property",
            "session.timeout.ms=6000",
            "--kafka-property",
            "client.id=x=y",
            "--kafka-batch-max-messages",
            "0",
            "--kafka-batch-max-wait",
            "250ms",
        ]);
        let config = s.kafka.to_config().unwrap();
        assert_eq!(config.brokers, "k1:9092,k2:9092");
        assert_eq!(config.topics, ["a", "b"]);
        assert_eq!(config.group, "strata");
        assert_eq!(config.dlq_topic, None);
        assert_eq!(config.dlq_topic_name(), "strata.dlq");
        assert_eq!(config.dlq_replication, 1);
        // Flags come after the environment's properties, so they win in librdkafka.
        let tail = &config.properties[config.properties.len() - 2..];
        assert_eq!(
            tail,
            [
                ("session.timeout.ms".to_owned(), "6000".to_owned()),
                ("client.id".to_owned(), "x=y".to_owned())
            ]
        );
        assert_eq!(
            config.batch_max_messages, 1,
            "a batch holds at least one message"
        );
        assert_eq!(config.batch_max_wait, Duration::from_millis(250));

        let s = serve(&[
            "--kafka-brokers",
            "k:1",
            "--kafka-group",
            "g",
            "--kafka-dlq-topic",
            "dead",
            "--kafka-dlq-replication",
            "3",
        ]);
        let config = s.kafka.to_config().unwrap();
        assert_eq!(config.topics, ["events"]);
        assert_eq!(config.dlq_topic_name(), "dead");
        assert_eq!(config.dlq_replication, 3);
        assert!(parse(&["serve", "--kafka-property", "no-equals"]).is_err());
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
