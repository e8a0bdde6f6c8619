//! The error every tier backend returns.

use std::time::Duration;

/// Boxed source error from a backend's client library.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which tier an error comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// redb + moka on the node.
    Hot,
    /// PostgreSQL/TimescaleDB or the embedded warm store.
    Warm,
    /// Parquet on object storage.
    Cold,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Hot => "hot",
            Tier::Warm => "warm",
            Tier::Cold => "cold",
        })
    }
}

/// A tier operation that failed. Variants are the kinds callers branch on (a lost
/// compare-and-set is [`Error::Conflict`], an absent object [`Error::NotFound`], an outage
/// [`Error::Unavailable`]); each says which tier and which operation, so the API layer maps
/// them to statuses in one place and operators can read logs without guessing. Nobody
/// branches on a message or an `op` string: those are for people.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tier is at a budget; the caller should retry after `retry_after`. Nothing of the
    /// request was stored.
    #[error("{tier} tier is full ({reason}); retry after {retry_after:?}")]
    Full {
        /// The tier.
        tier: Tier,
        /// Which budget is exhausted.
        reason: String,
        /// Suggested wait.
        retry_after: Duration,
    },
    /// The tier cannot be reached now (server down, connection refused).
    #[error("{tier} tier is unavailable during {op}: {message}")]
    Unavailable {
        /// The tier.
        tier: Tier,
        /// The operation.
        op: &'static str,
        /// What the client library said.
        message: String,
    },
    /// The backend failed.
    #[error("{tier} tier failed during {op}: {source}")]
    Storage {
        /// The tier.
        tier: Tier,
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Stored data could not be decoded.
    #[error("{tier} tier found corrupt data: {what}")]
    Corrupt {
        /// The tier.
        tier: Tier,
        /// What was corrupt and where.
        what: String,
    },
    /// A compare-and-set lost: another writer changed the state first (another exporter or
    /// compactor committed a manifest version). Nothing was changed; re-read and retry.
    #[error("{tier} tier refused {op}: {message}")]
    Conflict {
        /// The tier.
        tier: Tier,
        /// The operation.
        op: &'static str,
        /// What was expected and what was found.
        message: String,
    },
    /// The backend cannot do this operation at all (retrying will not help).
    #[error("{tier} tier does not support {op}")]
    Unsupported {
        /// The tier.
        tier: Tier,
        /// The operation.
        op: &'static str,
    },
    /// The object the operation names does not exist.
    #[error("{tier} tier has no {what}")]
    NotFound {
        /// The tier.
        tier: Tier,
        /// What is missing, for people (e.g. `partition acme/click/2026-11-20`).
        what: String,
    },
    /// The tier is shutting down and takes no new work.
    #[error("{tier} tier is shutting down")]
    ShuttingDown {
        /// The tier.
        tier: Tier,
    },
}

impl Error {
    /// The tier the error comes from.
    pub fn tier(&self) -> Tier {
        match self {
            Self::Full { tier, .. }
            | Self::Unavailable { tier, .. }
            | Self::Storage { tier, .. }
            | Self::Corrupt { tier, .. }
            | Self::Conflict { tier, .. }
            | Self::Unsupported { tier, .. }
            | Self::NotFound { tier, .. }
            | Self::ShuttingDown { tier } => *tier,
        }
    }

    /// Wraps a backend error with its tier and operation.
    pub fn storage(tier: Tier, op: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Storage {
            tier,
            op,
            source: source.into(),
        }
    }
}
