//! One helper per shape of database round trip (Tansu's `tx_prepare_execute`): each prepares
//! its statement through the connection's statement cache, runs it, and tags a failure with
//! the operation it served. Nothing else: no logging, no metrics, no retries.
//!
//! Failures come back as [`PgError`], which keeps the server's error so the few callers that
//! branch on it can (a refresh colliding with another one, a partition another node created
//! first); everyone else lets `?` turn it into the tier error, classified in one place
//! ([`From<PgError> for Error`](PgError)): lost or refused connections and a server shutting
//! down are [`Error::Unavailable`] (the flusher backs off and retries), everything else
//! [`Error::Storage`].

use std::pin::Pin;

use deadpool_postgres::{GenericClient, Object, Transaction};
use strata_core::{Error, Tier};
use tokio_postgres::{
    IsolationLevel, Row,
    binary_copy::BinaryCopyInWriter,
    error::SqlState,
    types::{ToSql, Type},
};

/// A failed round trip: the operation it served and what the client library said.
#[derive(Debug)]
pub(super) struct PgError {
    op: &'static str,
    source: tokio_postgres::Error,
}

/// `Result` of a round trip.
pub(super) type PgResult<T> = std::result::Result<T, PgError>;

/// Statement parameters.
pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PgError {
    /// `source`, failing `op`.
    pub(super) fn new(op: &'static str, source: tokio_postgres::Error) -> Self {
        Self { op, source }
    }

    fn tag(op: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| Self::new(op, source)
    }

    /// The server's SQLSTATE, when the server answered with an error.
    pub(super) fn code(&self) -> Option<&SqlState> {
        self.source.code()
    }

    /// The server's message with its SQLSTATE (which `Display` of a database error leaves
    /// out), or the client library's message.
    pub(super) fn describe(&self) -> String {
        match self.source.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => self.source.to_string(),
        }
    }

    fn unavailable(&self) -> bool {
        let e = &self.source;
        e.is_closed()
            || match e.code() {
                None => e.as_db_error().is_none(),
                Some(code) => {
                    code.code().starts_with("08")
                        || *code == SqlState::ADMIN_SHUTDOWN
                        || *code == SqlState::CRASH_SHUTDOWN
                        || *code == SqlState::CANNOT_CONNECT_NOW
                        || *code == SqlState::TOO_MANY_CONNECTIONS
                }
            }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        if e.unavailable() {
            Error::Unavailable {
                tier: Tier::Warm,
                op: e.op,
                message: e.source.to_string(),
            }
        } else {
            Error::storage(Tier::Warm, e.op, e.describe())
        }
    }
}

/// Runs `sql` and returns how many rows it changed.
pub(super) async fn execute(
    db: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: Params<'_>,
) -> PgResult<u64> {
    async { db.execute(&db.prepare_cached(sql).await?, params).await }
        .await
        .map_err(PgError::tag(op))
}

/// Runs `sql` and returns its rows.
pub(super) async fn query(
    db: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: Params<'_>,
) -> PgResult<Vec<Row>> {
    async { db.query(&db.prepare_cached(sql).await?, params).await }
        .await
        .map_err(PgError::tag(op))
}

/// Runs `sql`, which returns exactly one row.
pub(super) async fn query_one(
    db: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: Params<'_>,
) -> PgResult<Row> {
    async { db.query_one(&db.prepare_cached(sql).await?, params).await }
        .await
        .map_err(PgError::tag(op))
}

/// Runs `sql`, which returns at most one row.
pub(super) async fn query_opt(
    db: &impl GenericClient,
    op: &'static str,
    sql: &str,
    params: Params<'_>,
) -> PgResult<Option<Row>> {
    async { db.query_opt(&db.prepare_cached(sql).await?, params).await }
        .await
        .map_err(PgError::tag(op))
}

/// Runs `sql` without parameters over the simple protocol, unprepared: DDL whose text changes
/// per call (a partition's name) and migration files holding several statements, which would
/// only fill the statement cache.
pub(super) async fn batch(db: &impl GenericClient, op: &'static str, sql: &str) -> PgResult<()> {
    db.batch_execute(sql).await.map_err(PgError::tag(op))
}

/// Starts a read-write transaction (the server's default isolation, READ COMMITTED).
pub(super) async fn begin<'c>(
    client: &'c mut Object,
    op: &'static str,
) -> PgResult<Transaction<'c>> {
    client
        .build_transaction()
        .start()
        .await
        .map_err(PgError::tag(op))
}

/// Starts a read-only REPEATABLE READ transaction: every statement in it reads one snapshot.
pub(super) async fn begin_snapshot<'c>(
    client: &'c mut Object,
    op: &'static str,
) -> PgResult<Transaction<'c>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(PgError::tag(op))
}

/// Commits `tx`.
pub(super) async fn commit(tx: Transaction<'_>, op: &'static str) -> PgResult<()> {
    tx.commit().await.map_err(PgError::tag(op))
}

/// Rolls `tx` back (a read-only transaction done, or a write that found nothing to do).
pub(super) async fn rollback(tx: Transaction<'_>, op: &'static str) -> PgResult<()> {
    tx.rollback().await.map_err(PgError::tag(op))
}

/// A binary `COPY … FROM STDIN` in progress: rows are streamed with [`CopyIn::write`], and
/// nothing is stored until [`CopyIn::finish`] (and then the transaction's commit).
pub(super) struct CopyIn {
    op: &'static str,
    // Boxed once per COPY, so the writer (which must not move) can live in a struct.
    writer: Pin<Box<BinaryCopyInWriter>>,
}

/// Starts the `COPY` statement `sql` with column types `types`.
pub(super) async fn copy_in(
    tx: &Transaction<'_>,
    op: &'static str,
    sql: &str,
    types: &[Type],
) -> PgResult<CopyIn> {
    let sink = tx.copy_in(sql).await.map_err(PgError::tag(op))?;
    Ok(CopyIn {
        op,
        writer: Box::pin(BinaryCopyInWriter::new(sink, types)),
    })
}

impl CopyIn {
    /// Sends one row, its values in the `COPY`'s column order.
    pub(super) async fn write(&mut self, row: Params<'_>) -> PgResult<()> {
        self.writer
            .as_mut()
            .write(row)
            .await
            .map_err(PgError::tag(self.op))
    }

    /// Ends the `COPY`; returns the rows it stored.
    pub(super) async fn finish(mut self) -> PgResult<u64> {
        self.writer
            .as_mut()
            .finish()
            .await
            .map_err(PgError::tag(self.op))
    }
}
