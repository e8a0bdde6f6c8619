//! Strata's cold tier: the archive that keeps every event forever, cheaply, in an open
//! format, and is the source of truth for audits and replays of old data.
//!
//! * Blob stores behind [`strata_core::cold::BlobStore`], picked by URL with
//!   [`open_blob_store`]: `file://<dir>` ([`FileStore`], the embedded default) and
//!   `s3://bucket/prefix` ([`S3Store`], aws-sdk-s3 with checksums, multipart uploads and
//!   Object Lock).
//! * [`ColdStore`], the Parquet archive on a blob store, implementing
//!   [`strata_core::cold::ColdTier`]: exports write zstd Parquet files sorted by `(key, ts)`
//!   with page statistics and a bloom filter on `id` under Hive-style keys
//!   (`tenant=…/stream=…/date=YYYY-MM-DD/part-…parquet`), then a hash-chained manifest per
//!   partition version under `_manifests/…`; reads push projections and time predicates down
//!   to row groups and pages; `verify` recomputes every checksum and walks every chain.
//!
//! ```no_run
//! # async fn demo() -> strata_core::Result<()> {
//! use std::sync::Arc;
//! let blobs = strata_cold::open_blob_store("file://storage/cold", &Default::default()).await?;
//! let cold = strata_cold::ColdStore::new(blobs, strata_cold::ColdConfig::default());
//! # let _ = cold; Ok(()) }
//! ```
//!
//! DuckDB reads the archive directly:
//! `SELECT count(*) FROM read_parquet('storage/cold/**/*.parquet', hive_partitioning=true)`.
//! Which manifest version of a partition is live is recorded by the warm tier (see
//! `strata_core::cold`); a reader that ignores manifests may also see files of an export
//! that crashed before it went live, until the next export or compaction of that partition
//! removes them.

mod archive;
mod codec;
mod file;
pub mod manifest;
mod s3;

use std::{io::Read, path::Path, sync::Arc};

pub use archive::{ColdConfig, ColdStore, LockSettings};
pub use file::FileStore;
pub use s3::{S3Options, S3Store};
use sha2::{Digest, Sha256};
use strata_core::{Error, Result, Tier, cold::BlobStore};

/// Opens the blob store `url` names: `file://<dir>` (relative paths allowed) or
/// `s3://bucket[/prefix]`.
pub async fn open_blob_store(url: &str, s3: &S3Options) -> Result<Arc<dyn BlobStore>> {
    if let Some(dir) = url.strip_prefix("file://") {
        if dir.is_empty() {
            return Err(Error::storage(
                Tier::Cold,
                "open",
                "`file://` needs a directory, e.g. file://storage/cold",
            ));
        }
        let dir = dir.to_owned();
        let store = tokio::task::spawn_blocking(move || FileStore::open(dir))
            .await
            .map_err(|e| Error::storage(Tier::Cold, "open", e))??;
        tracing::info!(root = %store.root().display(), "cold tier: local directory");
        return Ok(Arc::new(store));
    }
    if url.starts_with("s3://") {
        let store = S3Store::open(url, s3.clone()).await?;
        tracing::info!(bucket = store.bucket(), "cold tier: S3");
        return Ok(Arc::new(store));
    }
    Err(Error::storage(
        Tier::Cold,
        "open",
        format!("unknown cold tier `{url}`: expected file://<dir> or s3://bucket/prefix"),
    ))
}

/// SHA-256 (lowercase hex) and size of a file, read in chunks.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let err = |e: std::io::Error| {
        Error::storage(Tier::Cold, "checksum", format!("{}: {e}", path.display()))
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// [`sha256_file`] on the blocking pool.
pub async fn sha256_file_async(path: &Path) -> Result<(String, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path))
        .await
        .map_err(|e| Error::storage(Tier::Cold, "checksum", e))?
}
