//! The `strata` binary's library: the command line, `serve` (tiers + flusher + exporter +
//! APIs + graceful shutdown), `migrate` (the warm tier's schema), `export` (archive due
//! partitions on a stopped node), `archive` (the archive through a server's REST API),
//! `load` (the load generator), logging and signal handling.
//!
//! This is the only crate that names concrete backends: it opens the redb hot tier and the
//! warm tier (embedded or PostgreSQL), builds the [`strata_tiering::Store`] over them, runs
//! the [`strata_tiering::Flusher`] between them and hands the store to the REST and gRPC
//! servers.
//! `main.rs` only installs the allocator and calls [`main`].

pub mod archive;
pub mod cli;
mod client;
pub mod cold;
pub mod data_dir;
mod error;
pub mod export;
pub mod flags;
pub mod load;
pub mod migrate;
pub mod node;
pub mod replay;
pub mod serve;
pub mod shutdown;
pub mod telemetry;

use std::{process::ExitCode, time::Duration};

use clap::Parser;

pub use error::{Error, Result, ShutdownCut};

use crate::cli::{Cli, Command};

/// Parses the command line, sets up logging and runs the subcommand. Exit codes: 0 on
/// success, 1 when the command failed (logged), 2 for a bad command line (clap's message).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(&cli.log) {
        eprintln!("strata: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %Error::Runtime(e), "exiting");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command));
    // Whatever still runs (a signal watcher, an abandoned request) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exiting");
            ExitCode::FAILURE
        }
    }
}

/// Runs one subcommand to completion.
pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(args) => migrate::run(*args).await,
        Command::Load(args) => load::run(*args).await,
        Command::Export(args) => export::run(*args).await,
        Command::Archive(args) => archive::run(*args).await,
        Command::Replay(args) => replay::run(*args).await,
    }
}
