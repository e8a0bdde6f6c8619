//! The tiering layer's error.

use strata_types::{QueryError, decode::BatchError};

/// `Result` with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong between the APIs and the tiers. The API crate maps each variant to a
/// status in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body as a whole was refused; nothing was stored.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A query parameter is missing or wrong.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A tier failed or is full.
    #[error(transparent)]
    Tier(#[from] strata_core::Error),
}
