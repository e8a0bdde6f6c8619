//! The command line: every flag, its default and its `STRATA_*` environment variable.
//!
//! `serve` flags read `STRATA_<FLAG_IN_CAPS>`; `load` flags read `STRATA_LOAD_<FLAG_IN_CAPS>`
//! so that a shell configured for a server does not also steer the load generator.

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Run the server: REST, gRPC and Kafka ingest; queries, lookups, replays and archive
    /// reads over the hot, warm and cold tiers; the flusher (hot → warm) and the exporter
    /// (warm → cold).
    Serve(Box<crate::serve::ServeArgs>),
    /// Apply the warm tier's schema migrations (idempotent), or print their state.
    Migrate(Box<crate::migrate::MigrateArgs>),
    /// Generate realistic events and send them to a server; report throughput and latency.
    Load(Box<crate::load::LoadArgs>),
    /// Archive closed partitions to the cold tier now (one export and one maintenance
    /// pass: compaction, cleanup, Object Lock) on a stopped node's data directory.
    Export(Box<crate::export::ExportArgs>),
    /// Inspect the cold archive through a running server: list, read, verify, legal hold.
    Archive(Box<crate::archive::ArchiveArgs>),
    /// Replay a tenant's events of a range in event-time order from a running server, to
    /// NDJSON or a Kafka topic; resumable with `--cursor`.
    Replay(Box<crate::replay::ReplayArgs>),
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

#[cfg(test)]
mod tests {
    use std::{path::PathBuf, time::Duration};

    use clap::CommandFactory;
    use strata_types::{Limits, UnknownFields};
    use strata_warm::Layout;

    use super::*;
    use crate::{flags::LayoutArg, load::Protocol};

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
        assert_eq!(
            serve(&[]).reads.replay_config(),
            strata_tiering::ReplayConfig::default(),
            "the replay flags' defaults are the library's"
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
        // The parser and redactor are strata-warm's (its tests hold the full list of forms);
        // here: what a `--warm` flag parses to shows no password, in Display or Debug.
        let cli = parse(&["serve", "--warm", "postgres://strata:pw@db:5432/strata"]).unwrap();
        let Command::Serve(s) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(
            s.warm.warm.to_string(),
            "postgres://strata:***@db:5432/strata"
        );
        assert!(
            !format!("{s:?}").contains("pw@"),
            "Debug of the flags leaks it"
        );
        let err = parse(&["serve", "--warm", "mysql://u:secret@h/db"]).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
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
