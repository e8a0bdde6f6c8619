//! Turning redb, codec and channel failures into [`strata_core::Error`].

use strata_core::{BoxError, Error, Tier};

use crate::codec::CodecError;

/// Wraps a backend error as a hot-tier `Storage` error of operation `op`.
pub(crate) fn storage<E: Into<BoxError>>(op: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::storage(Tier::Hot, op, e)
}

/// A log row that cannot be read back.
pub(crate) fn corrupt(row: u64, what: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        tier: Tier::Hot,
        what: format!("log row {row}: {what}"),
    }
}

/// Shorthand for [`corrupt`] over codec errors.
pub(crate) fn corrupt_row(row: u64) -> impl FnOnce(CodecError) -> Error {
    move |e| corrupt(row, e)
}

/// The store no longer takes work.
pub(crate) fn shutting_down() -> Error {
    Error::ShuttingDown { tier: Tier::Hot }
}
