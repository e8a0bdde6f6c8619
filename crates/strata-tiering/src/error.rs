//! The tiering layer's error.

use strata_core::cold::PartitionKey;
use strata_types::{QueryError, Rejection, decode::BatchError};

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong between the APIs and the tiers. The variants are the kinds callers
/// branch on; the API crate maps each one to a status in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body as a whole was refused; nothing was stored.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Every event of the batch failed validation; nothing was stored. (A batch with some
    /// valid events is not an error: its report lists the rejected ones.)
    #[error("every event of the batch was rejected ({} events); nothing was stored", .0.len())]
    Rejected(Vec<Rejection>),
    /// A query parameter is missing or wrong.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// An archive call on a node started without a cold tier: a configuration fact, not an
    /// outage.
    #[error("this node has no cold tier")]
    NoColdTier,
    /// The archive has no live version of this partition.
    #[error("partition {0} is not in the archive")]
    PartitionNotFound(PartitionKey),
    /// An aggregate answer would hold more cells (buckets × groups) than
    /// [`crate::StoreConfig::max_answer_cells`]; nothing is wrong with the data, the query
    /// asks for too much at once (a narrower range, a wider bucket or less grouping fits).
    #[error(
        "the answer would hold more than {limit} buckets (buckets × groups); narrow the range, widen the bucket or group by less"
    )]
    TooManyCells {
        /// The configured limit.
        limit: usize,
    },
    /// A tier failed or is full.
    #[error(transparent)]
    Tier(#[from] strata_core::Error),
}
