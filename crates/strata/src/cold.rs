//! The cold tier as `serve` and `export` open it from their flags: where the archive lives
//! (`--cold`), how S3 is reached, how large compacted files get, and Object Lock.
//!
//! The default archive is a directory inside `--data-dir` (`file://<data-dir>/cold`), so a
//! plain `strata serve` keeps every tier under one directory; `none` turns the cold tier off
//! (warm then keeps rows for `--warm-retention` and nothing is exported).

use std::{path::Path, sync::Arc, time::Duration};

use clap::{ArgAction, Args, ValueEnum};
use strata_cold::{ColdConfig, ColdStore, ColdUrl, LockSettings, S3Options};
use strata_core::cold::RetentionMode;
use tracing::info;

use crate::{
    Error, Result,
    flags::{SecretUrlParser, parse_byte_size, parse_duration, parse_positive_duration},
};

/// `--object-lock-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LockModeArg {
    /// Users with the special permission may shorten or remove the retention.
    Governance,
    /// Nobody can delete an object version before its retain-until time.
    Compliance,
}

impl From<LockModeArg> for RetentionMode {
    fn from(m: LockModeArg) -> Self {
        match m {
            LockModeArg::Governance => Self::Governance,
            LockModeArg::Compliance => Self::Compliance,
        }
    }
}

/// Where the cold tier lives and how it is written; shared by `serve` and `export`.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Cold tier")]
pub struct ColdArgs {
    /// The cold archive: `file://<dir>` (a local directory; relative paths allowed),
    /// `s3://bucket/prefix`, or `none` (no cold tier: nothing is exported and warm keeps rows
    /// for --warm-retention). Default: `file://<data-dir>/cold`.
    #[arg(long, env = "STRATA_COLD", value_parser = SecretUrlParser::<ColdUrl>::new(), value_name = "URL")]
    pub cold: Option<ColdUrl>,
    /// S3 endpoint URL, for S3-compatible servers (MinIO, moto, ...); unset uses
    /// `AWS_ENDPOINT_URL` or AWS itself. Credentials and region come from the standard AWS
    /// environment.
    #[arg(long, env = "STRATA_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Address buckets as `endpoint/bucket` rather than `bucket.endpoint` (most
    /// S3-compatible servers need it).
    #[arg(
        long,
        env = "STRATA_S3_FORCE_PATH_STYLE",
        default_value_t = false,
        action = ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub s3_force_path_style: bool,
    /// A partition is archived once its UTC day ended this long ago.
    #[arg(
        long,
        env = "STRATA_EXPORT_AFTER",
        default_value = "1d",
        value_parser = parse_duration
    )]
    pub export_after: Duration,
    /// Compaction merges a partition's small files into files of about this size (e.g.
    /// `128MiB`).
    #[arg(
        long,
        env = "STRATA_COMPACTION_TARGET_SIZE",
        default_value = "128MiB",
        value_parser = parse_positive_byte_size
    )]
    pub compaction_target_size: u64,
    /// Object Lock mode of archived objects (`GOVERNANCE` or `COMPLIANCE`); unset writes
    /// unlocked objects. An S3 bucket needs Object Lock enabled. Needs
    /// --object-lock-retention.
    #[arg(
        long,
        env = "STRATA_OBJECT_LOCK_MODE",
        value_enum,
        ignore_case = true,
        requires = "object_lock_retention"
    )]
    pub object_lock_mode: Option<LockModeArg>,
    /// How long a locked object is retained, counted from when it is locked. Needs
    /// --object-lock-mode.
    #[arg(
        long,
        env = "STRATA_OBJECT_LOCK_RETENTION",
        value_parser = parse_positive_duration,
        requires = "object_lock_mode"
    )]
    pub object_lock_retention: Option<Duration>,
    /// Partitions are locked only once their day ended this long ago, when compaction no
    /// longer needs to replace their files.
    #[arg(
        long,
        env = "STRATA_OBJECT_LOCK_AFTER",
        default_value = "7d",
        value_parser = parse_duration
    )]
    pub object_lock_after: Duration,
}

fn parse_positive_byte_size(s: &str) -> std::result::Result<u64, String> {
    match parse_byte_size(s)? {
        0 => Err("expected a size above zero".into()),
        n => Ok(n),
    }
}

impl ColdArgs {
    /// The archive `--cold` names, with the default resolved against `data_dir`.
    pub fn url(&self, data_dir: &Path) -> ColdUrl {
        self.cold
            .clone()
            .unwrap_or_else(|| ColdUrl::in_data_dir(data_dir))
    }

    /// The S3 options these flags describe.
    pub fn s3_options(&self) -> S3Options {
        S3Options {
            endpoint: self.s3_endpoint.clone().filter(|e| !e.trim().is_empty()),
            force_path_style: self.s3_force_path_style,
            ..S3Options::default()
        }
    }

    /// The archive configuration these flags describe.
    pub fn to_config(&self) -> ColdConfig {
        let lock = match (self.object_lock_mode, self.object_lock_retention) {
            (Some(mode), Some(retain_for)) => Some(LockSettings {
                mode: mode.into(),
                retain_for,
                lock_after: self.object_lock_after,
            }),
            _ => None,
        };
        ColdConfig {
            target_file_size: self.compaction_target_size,
            lock,
            ..ColdConfig::default()
        }
    }

    /// Opens the cold tier; `None` with `--cold none`. Nothing is written: a `file://`
    /// directory is created when missing, an S3 bucket must exist.
    pub async fn open(&self, data_dir: &Path) -> Result<Option<Arc<ColdStore>>> {
        let url = self.url(data_dir);
        if url.is_disabled() {
            info!("no cold tier (--cold none): nothing is exported");
            return Ok(None);
        }
        info!(cold = %url, "opening the cold tier");
        let blobs = url
            .open(&self.s3_options())
            .await
            .map_err(|source| Error::OpenCold {
                target: url.to_string(),
                source,
            })?;
        Ok(blobs.map(|blobs| Arc::new(ColdStore::new(blobs, self.to_config()))))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn serve(args: &[&str]) -> Result<crate::serve::ServeArgs, clap::Error> {
        let cli = Cli::try_parse_from(["strata", "serve"].iter().chain(args))?;
        match cli.command {
            Command::Serve(s) => Ok(*s),
            _ => panic!("not serve"),
        }
    }

    #[test]
    fn defaults_put_the_archive_in_the_data_directory() {
        let s = serve(&[]).unwrap();
        assert_eq!(s.cold.url(&s.data_dir).to_string(), "file://storage/cold");
        assert_eq!(s.cold.export_after, Duration::from_secs(86_400));
        assert_eq!(s.export_interval, Duration::from_secs(60));
        assert!(!s.cold.s3_force_path_style);
        let config = s.cold.to_config();
        let lib = ColdConfig::default();
        assert_eq!(config.target_file_size, lib.target_file_size);
        assert_eq!(config.lock, None);
        let s3 = s.cold.s3_options();
        assert_eq!(s3.endpoint, None);
        let s = serve(&["--data-dir", "node-a"]).unwrap();
        assert_eq!(s.cold.url(&s.data_dir).to_string(), "file://node-a/cold");
    }

    #[test]
    fn s3_and_lock_flags_build_the_archive_config() {
        let s = serve(&[
            "--cold",
            "s3://bucket/prefix",
            "--s3-endpoint",
            "http://127.0.0.1:9000",
            "--s3-force-path-style",
            "--export-after",
            "2h",
            "--export-interval",
            "5s",
            "--compaction-target-size",
            "64MiB",
            "--object-lock-mode",
            "compliance",
            "--object-lock-retention",
            "30d",
            "--object-lock-after",
            "3d",
        ])
        .unwrap();
        assert_eq!(s.cold.url(&s.data_dir).to_string(), "s3://bucket/prefix");
        assert_eq!(s.cold.export_after, Duration::from_secs(7200));
        assert_eq!(s.export_interval, Duration::from_secs(5));
        let s3 = s.cold.s3_options();
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.force_path_style);
        let config = s.cold.to_config();
        assert_eq!(config.target_file_size, 64 * 1024 * 1024);
        assert_eq!(
            config.lock,
            Some(LockSettings {
                mode: RetentionMode::Compliance,
                retain_for: Duration::from_secs(30 * 86_400),
                lock_after: Duration::from_secs(3 * 86_400),
            })
        );
        let s = serve(&["--cold", "none"]).unwrap();
        assert!(s.cold.url(&s.data_dir).is_disabled());
    }

    #[test]
    fn bad_cold_flags_are_refused() {
        for (args, flag) in [
            (&["--cold", "ftp://x"][..], "--cold"),
            (&["--cold", "s3://"][..], "--cold"),
            (&["--cold", "file://"][..], "--cold"),
            (
                &["--object-lock-mode", "GOVERNANCE"][..],
                "--object-lock-retention",
            ),
            (&["--object-lock-retention", "1d"][..], "--object-lock-mode"),
            (
                &["--compaction-target-size", "0"][..],
                "--compaction-target-size",
            ),
            (
                &["--compaction-target-size", "big"][..],
                "--compaction-target-size",
            ),
            (&["--export-interval", "0s"][..], "--export-interval"),
            (&["--export-after", "later"][..], "--export-after"),
        ] {
            let err = serve(args).unwrap_err().to_string();
            assert!(err.contains(flag), "{args:?} must name {flag}: {err}");
        }
    }
}
