//! Logging: `tracing` to standard error, human-readable or JSON, filtered like `RUST_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::{
    Error, Result,
    cli::{LogArgs, LogFormat},
};

/// Installs the global subscriber. `--log-level` wins over `RUST_LOG`; `info` otherwise.
pub fn init(args: &LogArgs) -> Result<()> {
    let filter = match &args.log_level {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|e| Error::Telemetry(format!("bad --log-level `{directives}`: {e}")))?,
        None => match std::env::var(EnvFilter::DEFAULT_ENV) {
            Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
                .map_err(|e| Error::Telemetry(format!("bad RUST_LOG `{directives}`: {e}")))?,
            _ => EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match args.log_format {
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // Flattened so that a line reads `{"timestamp":..,"level":..,"message":"listening",
        // "http_addr":..}`: log shippers and tests find fields without nesting rules.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| Error::Telemetry(e.to_string()))
}
