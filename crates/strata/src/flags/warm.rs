//! `--warm` and the warm tier's layout flags, shared by `serve`, `migrate` and `export`.

use std::{path::Path, time::Duration};

use clap::{Args, ValueEnum};
use strata_warm::{Layout, WarmConfig, WarmUrl};

use crate::flags::{SecretUrlParser, parse_duration};

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
        value_parser = SecretUrlParser::<WarmUrl>::new()
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

impl WarmArgs {
    /// The warm configuration these flags describe, for the data directory `data_dir`.
    pub fn to_config(&self, data_dir: &Path, migrate_on_open: bool) -> WarmConfig {
        WarmConfig {
            layout: self.warm_layout.into(),
            migrate_on_open,
            pool_size: self.warm_pool_size as usize,
            connect_timeout: self.warm_connect_timeout,
            chunk_interval: self.warm_chunk_interval,
            compress_after: self.warm_compress_after,
            partitions_ahead: self.warm_partitions_ahead,
            ..WarmConfig::new(data_dir)
        }
    }
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
