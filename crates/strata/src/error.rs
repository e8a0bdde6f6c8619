//! The binary's error.

use std::{path::PathBuf, time::Duration};

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a subcommand. Each variant says which step failed, so the one line logged
/// at exit is enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Logging could not be set up.
    #[error("cannot set up logging: {0}")]
    Telemetry(String),
    /// The Kafka consumer stopped with an error it cannot recover from.
    #[error("Kafka ingest failed: {0}")]
    Kafka(#[source] strata_ingest::Error),
    /// The signal handlers could not be installed.
    #[error("cannot listen for SIGTERM/SIGINT: {0}")]
    Signals(#[source] std::io::Error),
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The hot tier could not be opened.
    #[error("cannot open the hot tier at {}: {source}", path.display())]
    OpenHot {
        /// The redb file.
        path: PathBuf,
        /// What the hot tier said.
        #[source]
        source: strata_core::Error,
    },
    /// The node id could not be settled (unreadable file, or a data directory that belongs
    /// to another id than `--node-id`).
    #[error("cannot start on the data directory {}: {source}", dir.display())]
    NodeId {
        /// The data directory.
        dir: PathBuf,
        /// What went wrong.
        #[source]
        source: crate::node::NodeIdError,
    },
    /// The warm tier could not be opened, and retrying would not help (wrong credentials,
    /// missing database, pending migrations with `--warm-migrate false`, ...).
    #[error("cannot open the warm tier at {target}: {source}")]
    OpenWarm {
        /// The warm URL, password hidden.
        target: String,
        /// What the warm tier said.
        #[source]
        source: strata_core::Error,
    },
    /// Warm holds rows of this node id beyond any sequence number its hot tier issued: a new
    /// hot store runs under a reused id, and warm would skip its events as already written.
    #[error(
        "node id `{node}` is already taken: the warm tier holds its events up to sequence \
         number {warm_committed}, but this data directory's hot tier has issued only up to \
         {hot_last_seq}, so this is a new hot store under a reused id and warm would skip \
         its events as already written; start it with another --node-id (STRATA_NODE_ID)"
    )]
    NodeReused {
        /// The node id.
        node: String,
        /// Highest sequence number of `node` committed to warm.
        warm_committed: u64,
        /// Highest sequence number the hot tier has issued.
        hot_last_seq: u64,
    },
    /// `strata migrate` failed.
    #[error("cannot {action} the warm tier at {target}: {source}")]
    Migrate {
        /// `migrate` or `read the migration status of`.
        action: &'static str,
        /// The warm URL, password hidden.
        target: String,
        /// What the warm tier said.
        #[source]
        source: strata_core::Error,
    },
    /// The network APIs failed.
    #[error(transparent)]
    Api(#[from] strata_api::Error),
    /// The APIs stopped although nothing asked them to.
    #[error("the APIs stopped unexpectedly")]
    ApiStopped,
    /// The store failed while shutting down.
    #[error("the store failed while shutting down: {0}")]
    StoreShutdown(#[source] strata_tiering::Error),
    /// A task ended abnormally.
    #[error("the {task} task failed: {source}")]
    Task {
        /// Which task.
        task: &'static str,
        /// How it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// Graceful shutdown did not finish in time, or a second signal cut it short.
    #[error("shutdown did not complete ({step}): {reason}")]
    ShutdownIncomplete {
        /// The step that was still running.
        step: &'static str,
        /// Why it was cut short.
        reason: ShutdownCut,
    },
    /// The cold tier could not be opened.
    #[error("cannot open the cold tier at {target}: {source}")]
    OpenCold {
        /// The `--cold` URL.
        target: String,
        /// What the cold tier said.
        #[source]
        source: strata_core::Error,
    },
    /// `strata export` cannot run with these flags.
    #[error("export: {0}")]
    Export(String),
    /// An export or maintenance pass failed; what it had not committed stays in warm.
    #[error("export failed (nothing uncommitted left warm): {0}")]
    ExportFailed(#[source] strata_core::Error),
    /// The data directory's embedded files are held by a running server.
    #[error(
        "the data directory {} is in use by a running `strata serve`: stop `strata serve` \
         first or use the server (its exporter archives due partitions every \
         --export-interval)",
        dir.display()
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// `strata export` was pointed at a directory without a hot tier.
    #[error(
        "no hot tier at {}: `strata export` runs on the data directory of a stopped node \
         (--data-dir), so that rows its hot tier still answers stay in warm",
        path.display()
    )]
    NoHotTier {
        /// The missing redb file.
        path: PathBuf,
    },
    /// `strata replay` failed or was interrupted (the message says where to resume).
    #[error("replay: {0}")]
    Replay(String),
    /// An `archive` request failed.
    #[error("archive: {0}")]
    Archive(String),
    /// `archive verify` found the archive altered, incomplete or broken.
    #[error("archive verify: the archive of tenant `{tenant}` is not intact (issues listed above)")]
    ArchiveNotIntact {
        /// The tenant verified.
        tenant: String,
    },
    /// Output could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file (or `standard output`).
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: std::io::Error,
    },
    /// The load generator could not start.
    #[error("load: {0}")]
    LoadSetup(String),
    /// Some load requests failed.
    #[error("load: {failed} of {requests} requests failed")]
    LoadFailed {
        /// Requests that failed.
        failed: u64,
        /// Requests sent.
        requests: u64,
    },
}

/// Why a graceful shutdown was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownCut {
    /// The grace period ran out.
    GraceExpired(Duration),
    /// A second SIGTERM/SIGINT arrived.
    SecondSignal,
}

impl From<strata_warm::OpenError> for Error {
    fn from(e: strata_warm::OpenError) -> Self {
        match e {
            strata_warm::OpenError::Backend { target, source } => Self::OpenWarm { target, source },
            strata_warm::OpenError::NodeReused {
                node,
                warm_committed,
                hot_last_seq,
            } => Self::NodeReused {
                node,
                warm_committed,
                hot_last_seq,
            },
        }
    }
}

impl std::fmt::Display for ShutdownCut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::GraceExpired(d) => write!(
                f,
                "the grace period of {} ran out (--shutdown-grace)",
                humantime::format_duration(*d)
            ),
            Self::SecondSignal => f.write_str("a second signal forced the exit"),
        }
    }
}
