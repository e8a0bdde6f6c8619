//! Strata's cold tier: the archive that keeps every event forever, cheaply, in an open
//! format, and is the source of truth for audits and replays of old data.
//!
//! * Where the archive lives is a [`ColdUrl`] (`file://<dir>`, `s3://bucket/prefix` or
//!   `none`), parsed from a flag and opened with [`ColdUrl::open`]; its `Display` never
//!   shows credentials.
//! * Blob stores behind [`strata_core::cold::BlobStore`]: [`FileStore`] for `file://<dir>`
//!   (the embedded default) and [`S3Store`] for `s3://bucket/prefix` (aws-sdk-s3 with
//!   checksums, multipart uploads and Object Lock).
//! * [`ColdStore`], the Parquet archive on a blob store, implementing
//!   [`strata_core::cold::ColdTier`]: exports write zstd Parquet files sorted by `(key, ts)`
//!   with page statistics and a bloom filter on `id` under Hive-style keys
//!   (`tenant=…/stream=…/date=YYYY-MM-DD/part-…parquet`), then a hash-chained manifest per
//!   partition version under `_manifests/…`; reads push projections and time predicates down
//!   to row groups and pages; `verify` recomputes every checksum and walks every chain.
//!
//! ```no_run
//! # async fn demo() -> strata_core::Result<()> {
//! use strata_cold::{ColdConfig, ColdStore, ColdUrl, S3Options};
//! let url: ColdUrl = "file://storage/cold".parse().expect("a cold URL");
//! if let Some(blobs) = url.open(&S3Options::default()).await? {
//!     let cold = ColdStore::new(blobs, ColdConfig::default());
//! #   let _ = cold;
//! }
//! # Ok(()) }
//! ```
//!
//! DuckDB reads the archive directly:
//! `SELECT count(*) FROM read_parquet('storage/cold/**/*.parquet', hive_partitioning=true)`.
//! Which manifest version of a partition is live is recorded by the warm tier (see
//! `strata_core::cold`); a reader that ignores manifests may also see files of an export
//! that crashed before it went live, until the next export or compaction of that partition
//! removes them.

mod archive;
mod checksum;
mod codec;
mod cold_url;
mod file;
pub mod manifest;
mod s3;

pub use archive::{ColdConfig, ColdStore, LockSettings};
pub use checksum::{sha256_file, sha256_file_async};
pub use cold_url::{ColdUrl, ColdUrlError, S3Url, open_blob_store, redact_url};
pub use file::FileStore;
pub use s3::{S3Options, S3Store};
