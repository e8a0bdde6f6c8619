//! `strata migrate [--status]`: apply the warm tier's schema migrations, or print their
//! state.
//!
//! Migrating is idempotent (applied versions are recorded in the database) and safe to run
//! from several places at once (migrations run under a database lock), so it fits a
//! deployment job or an init container as well as an operator's shell. `serve` migrates at
//! start by default (`--warm-migrate`); this command is for setups that keep schema changes
//! a separate, deliberate step. The report goes to standard output; failures are logged and
//! end with a non-zero exit.

use std::path::Path;

use clap::Args;

use crate::{Error, Result, flags::WarmArgs};

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

/// Runs `strata migrate`.
pub async fn run(args: MigrateArgs) -> Result<()> {
    let url = &args.warm.warm;
    // The embedded store needs no migrations and opens nothing here, so no data directory
    // is involved.
    let config = args.warm.to_config(Path::new("."), false);
    if args.status {
        let status = strata_warm::status(url, &config)
            .await
            .map_err(|source| Error::Migrate {
                action: "read the migration status of",
                target: url.redacted(),
                source,
            })?;
        print!("{status}");
    } else {
        tracing::info!(warm = %url, "applying warm tier migrations");
        let report = strata_warm::migrate(url, &config)
            .await
            .map_err(|source| Error::Migrate {
                action: "migrate",
                target: url.redacted(),
                source,
            })?;
        print!("{report}");
    }
    Ok(())
}
