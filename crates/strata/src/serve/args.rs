//! The flags of `strata serve`, grouped as `--help` shows them: listeners, hot tier budgets,
//! flushing and retention, queries and replay, Kafka ingest, plus the shared warm, cold and
//! limits blocks from [`crate::flags`].

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{ArgAction, Args};
use strata_api::{ApiConfig, ConnectionLimits};
use strata_hot::HotConfig;
use strata_tiering::FlusherConfig;

use crate::flags::{
    LimitsArgs, Retention, WarmArgs, parse_byte_size, parse_byte_size_usize, parse_duration,
    parse_node_id, parse_positive_duration, parse_retention,
};

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
    /// Connections, streams and request bodies.
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

/// What clients may hold open: connections, slow or idle requests and streams, and request
/// bodies in memory.
#[derive(Debug, Args)]
#[command(next_help_heading = "API")]
pub struct ConnectionArgs {
    /// Open connections per listener (REST and gRPC each); beyond it new connections wait in
    /// the kernel's backlog until one closes. Keep both listeners' sum under the process's
    /// open-file limit.
    #[arg(long, env = "STRATA_MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Longest a client may take to send a REST request's headers; the connection is closed
    /// past it. Also how long an HTTP/1 keep-alive connection may wait for its next request.
    #[arg(
        long,
        env = "STRATA_HTTP_HEADER_READ_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub http_header_read_timeout: Duration,
    /// A REST connection with no request in flight for this long is closed gracefully.
    #[arg(
        long,
        env = "STRATA_HTTP_IDLE_TIMEOUT",
        default_value = "2m",
        value_parser = parse_positive_duration
    )]
    pub http_idle_timeout: Duration,
    /// Requests at once on one HTTP/2 connection (REST and gRPC).
    #[arg(long, env = "STRATA_HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub http2_max_concurrent_streams: u32,
    /// How often HTTP/2 connections (REST and gRPC) are pinged to detect dead peers.
    #[arg(
        long,
        env = "STRATA_HTTP2_KEEPALIVE_INTERVAL",
        default_value = "30s",
        value_parser = parse_positive_duration
    )]
    pub http2_keepalive_interval: Duration,
    /// How long an HTTP/2 ping may go unanswered before the connection is closed.
    #[arg(
        long,
        env = "STRATA_HTTP2_KEEPALIVE_TIMEOUT",
        default_value = "10s",
        value_parser = parse_positive_duration
    )]
    pub http2_keepalive_timeout: Duration,
    /// TCP keep-alive idle time on accepted sockets (`0s`: off).
    #[arg(
        long,
        env = "STRATA_TCP_KEEPALIVE",
        default_value = "60s",
        value_parser = parse_duration
    )]
    pub tcp_keepalive: Duration,
    /// Longest wait for the next message of a client-streaming RPC (`Ingest.WriteStream`);
    /// past it the call ends with DEADLINE_EXCEEDED and frees its request slot.
    #[arg(
        long,
        env = "STRATA_STREAM_IDLE_TIMEOUT",
        default_value = "30s",
        value_parser = parse_positive_duration
    )]
    pub stream_idle_timeout: Duration,
    /// Request body bytes held in memory at once over both protocols (e.g. `256MiB`); a body
    /// beyond it is refused (REST 503 with Retry-After, gRPC RESOURCE_EXHAUSTED).
    #[arg(
        long,
        env = "STRATA_MAX_INFLIGHT_BODY_BYTES",
        default_value = "256MiB",
        value_parser = parse_byte_size_usize
    )]
    pub max_inflight_body_bytes: usize,
}

impl ConnectionArgs {
    /// The connection limits these flags describe.
    pub fn to_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            header_read_timeout: self.http_header_read_timeout,
            idle_timeout: self.http_idle_timeout,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            http2_keepalive_interval: self.http2_keepalive_interval,
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            tcp_keepalive: Some(self.tcp_keepalive).filter(|d| !d.is_zero()),
            stream_idle_timeout: self.stream_idle_timeout,
            max_inflight_body_bytes: self.max_inflight_body_bytes,
        }
    }
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
    /// Most cells (buckets × groups) one aggregate answer may hold; a query past it is
    /// refused with `422 too_many_buckets` naming the limit, before it can fill memory.
    #[arg(
        long,
        env = "STRATA_QUERY_MAX_CELLS",
        default_value_t = strata_tiering::StoreConfig::default().max_answer_cells,
        value_parser = parse_max_cells,
        help_heading = "Queries and replay"
    )]
    pub query_max_cells: usize,
    /// Most replays reading at once; others wait their turn.
    #[arg(long, env = "STRATA_REPLAY_MAX_CONCURRENT", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Queries and replay")]
    pub replay_max_concurrent: u32,
    /// Most replays of one tenant reading at once (within --replay-max-concurrent), so one
    /// tenant cannot hold every slot; more of that tenant wait their turn.
    #[arg(long, env = "STRATA_REPLAY_MAX_CONCURRENT_PER_TENANT", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Queries and replay")]
    pub replay_max_concurrent_per_tenant: u32,
    /// A replay whose client takes no event for this long ends and frees its slot (the
    /// client resumes from its last cursor).
    #[arg(
        long,
        env = "STRATA_REPLAY_IDLE_TIMEOUT",
        default_value = "30s",
        value_parser = parse_positive_duration,
        help_heading = "Queries and replay"
    )]
    pub replay_idle_timeout: Duration,
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
            max_answer_cells: self.query_max_cells,
            ..strata_tiering::StoreConfig::default()
        }
    }

    /// How replays are throttled.
    pub fn replay_config(&self) -> strata_tiering::ReplayConfig {
        strata_tiering::ReplayConfig {
            max_concurrent: self.replay_max_concurrent as usize,
            max_rate: std::num::NonZeroU32::new(self.replay_max_rate),
            max_concurrent_per_tenant: self.replay_max_concurrent_per_tenant as usize,
            idle_timeout: self.replay_idle_timeout,
            ..strata_tiering::ReplayConfig::default()
        }
    }
}

impl ApiArgs {
    /// The API configuration these flags describe.
    pub fn to_config(&self) -> ApiConfig {
        ApiConfig {
            http_addr: self.http_addr,
            grpc_addr: self.grpc_addr,
            max_concurrent_requests: self.max_concurrent_requests as usize,
            request_timeout: self.request_timeout,
        }
    }
}

impl HotArgs {
    /// The hot tier configuration these flags describe, for the redb file at `path`.
    pub fn to_config(&self, path: PathBuf) -> HotConfig {
        HotConfig {
            memory_budget: self.hot_memory,
            disk_budget: self.hot_disk,
            ..HotConfig::new(path)
        }
    }
}

impl FlushArgs {
    /// The flusher configuration these flags describe (the node id is the store's).
    pub fn to_config(&self) -> FlusherConfig {
        FlusherConfig {
            hot_retention: self.hot_retention,
            flush_interval: self.flush_interval,
            max_batch_events: self.flush_max_batch_events as usize,
            warm_retention: self.warm_retention.0,
            ..FlusherConfig::default()
        }
    }
}

/// `--query-max-cells`: a whole number above zero.
fn parse_max_cells(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above zero".into()),
    }
}
