//! Parquet files read in place on a remote object store, with ranged GETs.
//!
//! An id lookup needs a file's footer, the bloom filter of `id` and, only when the filter
//! says the id may be there, the pages of the candidate row groups. Downloading whole files
//! for that made one 404 on S3 cost a full GET of every file of the tenant's partitions, so
//! lookups (and the late-event dedupe built on them) read through [`RangedObject`] instead:
//! each read the Parquet reader asks for is one ranged GET. Footers are parsed once and kept
//! in a small cache keyed by object key; archive files are immutable (a new version writes
//! new keys), so a cached footer never goes stale.
//!
//! The Parquet reader is synchronous and runs on a blocking thread; each ranged GET is
//! driven from there on the runtime's handle, never on an async worker.

use std::{io::Read, sync::Arc};

use bytes::Bytes;
use parquet::{
    arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions},
    errors::ParquetError,
    file::{
        metadata::PageIndexPolicy,
        reader::{ChunkReader, Length},
    },
};
use strata_core::{Error, Result, Tier, cold::BlobStore};
use tokio::runtime::Handle;

/// Bytes of parsed footers kept at once. A footer (with its page index) of an archive file
/// is a few KiB to a few MiB in memory; weighing entries by their in-memory size keeps the
/// cache within this bound whatever the files look like.
const FOOTER_BYTES: u64 = 64 * 1024 * 1024;

/// Reads larger than this are split, so one `Read` of a whole column chunk does not hold a
/// single huge response in memory next to the decoded pages.
const READ_WINDOW: u64 = 8 * 1024 * 1024;

/// Parsed footers by object key.
pub(crate) type FooterCache = moka::sync::Cache<String, ArrowReaderMetadata>;

/// A new, empty footer cache.
pub(crate) fn footer_cache() -> FooterCache {
    moka::sync::Cache::builder()
        .max_capacity(FOOTER_BYTES)
        .weigher(|_key: &String, meta: &ArrowReaderMetadata| {
            u32::try_from(meta.metadata().memory_size()).unwrap_or(u32::MAX)
        })
        .build()
}

/// One immutable object of `size` bytes, read with ranged GETs.
#[derive(Clone)]
pub(crate) struct RangedObject {
    blobs: Arc<dyn BlobStore>,
    key: Arc<str>,
    size: u64,
    handle: Handle,
}

impl RangedObject {
    /// The object `key` of `size` bytes (the size the manifest lists); `handle` drives the
    /// GETs, so this must be used from a blocking thread of that runtime.
    pub(crate) fn new(blobs: Arc<dyn BlobStore>, key: &str, size: u64, handle: Handle) -> Self {
        Self {
            blobs,
            key: key.into(),
            size,
            handle,
        }
    }

    /// The object's footer: from `cache`, else read (footer, then page index) and cached.
    pub(crate) fn metadata(&self, cache: &FooterCache) -> Result<ArrowReaderMetadata> {
        if let Some(meta) = cache.get(self.key.as_ref()) {
            return Ok(meta);
        }
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(self, options).map_err(|e| Error::Corrupt {
            tier: Tier::Cold,
            what: format!("{}: footer: {e}", self.key),
        })?;
        cache.insert(self.key.to_string(), meta.clone());
        Ok(meta)
    }

    fn fetch(&self, start: u64, len: u64) -> std::result::Result<Bytes, ParquetError> {
        let end = start.saturating_add(len).min(self.size);
        let blobs = Arc::clone(&self.blobs);
        let key = Arc::clone(&self.key);
        let got = self
            .handle
            .block_on(async move { blobs.get_range(&key, start..end).await })
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        let bytes = got.ok_or_else(|| {
            ParquetError::General(format!("`{}` is listed but missing", self.key))
        })?;
        if (bytes.len() as u64) < end - start {
            return Err(ParquetError::EOF(format!(
                "`{}`: asked for bytes {start}..{end}, got {}",
                self.key,
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

impl Length for RangedObject {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for RangedObject {
    type T = RangedRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(RangedRead {
            object: self.clone(),
            at: start,
            buf: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.fetch(start, length as u64)
    }
}

/// A `Read` from a position to the end of the object, fetching a window at a time.
pub(crate) struct RangedRead {
    object: RangedObject,
    at: u64,
    buf: Bytes,
}

impl Read for RangedRead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buf.is_empty() {
            if self.at >= self.object.size || out.is_empty() {
                return Ok(0);
            }
            let want = (out.len() as u64).clamp(64 * 1024, READ_WINDOW);
            self.buf = self
                .object
                .fetch(self.at, want)
                .map_err(std::io::Error::other)?;
            self.at += self.buf.len() as u64;
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}
