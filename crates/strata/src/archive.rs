//! `strata archive ls | get | verify | hold`: the operator's view of the cold archive,
//! through a running server's REST API (`--server`).
//!
//! They are clients rather than readers of the bucket so that they see exactly what the
//! server serves: the manifest versions the warm tier calls live, under the server's tenant
//! checks, with no storage credentials on the operator's machine.

mod client;
mod get;
mod hold;
mod ls;
mod verify;

use std::path::PathBuf;

use clap::{Args, Subcommand};
use strata_types::time::parse_rfc3339;

use crate::Result;

pub use client::ArchiveClient;

/// Flags of `strata archive`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Base URL of the server's REST API.
    #[arg(
        long,
        env = "STRATA_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true,
        value_parser = parse_server
    )]
    pub server: reqwest::Url,
    /// What to do.
    #[command(subcommand)]
    pub command: ArchiveCommand,
}

/// The `archive` subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// List a tenant's archived partitions (stream and day): files, rows, bytes, time
    /// bounds, legal hold.
    Ls(LsArgs),
    /// Read a tenant's archived events in a time range as NDJSON (standard output or
    /// `--output`).
    Get(GetArgs),
    /// Recompute every checksum of a tenant's archive and walk its manifest chains; exits
    /// with 1 and lists every issue when anything is altered, missing, extra or broken.
    Verify(VerifyArgs),
    /// Place or lift a legal hold on every file of one partition.
    Hold(HoldArgs),
}

/// Flags of `strata archive ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Print the server's JSON answer instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `strata archive get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// Start of the range (inclusive), RFC 3339.
    #[arg(long, value_parser = parse_time)]
    pub from: i64,
    /// End of the range (exclusive), RFC 3339.
    #[arg(long, value_parser = parse_time)]
    pub to: i64,
    /// Only this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Write the events to this file (replaced only once the read completed) instead of
    /// standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Flags of `strata archive verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
}

/// Flags of `strata archive hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The tenant.
    #[arg(long)]
    pub tenant: String,
    /// The stream.
    #[arg(long)]
    pub stream: String,
    /// The partition's UTC day, `YYYY-MM-DD`.
    #[arg(long, value_parser = parse_date)]
    pub date: String,
    /// Place the hold.
    #[arg(long, conflicts_with = "off", required_unless_present = "off")]
    pub on: bool,
    /// Lift the hold.
    #[arg(long)]
    pub off: bool,
}

fn parse_server(s: &str) -> std::result::Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s.trim())
        .map_err(|e| format!("expected a URL such as `http://127.0.0.1:8080` ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.has_host() => Ok(url),
        _ => Err("expected an http:// or https:// URL with a host".into()),
    }
}

fn parse_time(s: &str) -> std::result::Result<i64, String> {
    parse_rfc3339(s.trim())
        .map_err(|e| format!("expected an RFC 3339 time such as `2026-11-20T10:00:00Z` ({e})"))
}

fn parse_date(s: &str) -> std::result::Result<String, String> {
    let s = s.trim();
    match strata_core::cold::parse_day(s) {
        Some(_) => Ok(s.to_owned()),
        None => Err("expected a date `YYYY-MM-DD`".into()),
    }
}

/// Runs one `archive` subcommand.
pub async fn run(args: ArchiveArgs) -> Result<()> {
    let client = ArchiveClient::new(args.server)?;
    match args.command {
        ArchiveCommand::Ls(a) => ls::run(&client, &a).await,
        ArchiveCommand::Get(a) => get::run(&client, &a).await,
        ArchiveCommand::Verify(a) => verify::run(&client, &a).await,
        ArchiveCommand::Hold(a) => hold::run(&client, &a).await,
    }
}
