//! Objects as local files, and their checksums: what the readers, the merge and the
//! read-back checks open.
//!
//! Invariant: no object is ever held whole in memory here. A local directory's object is
//! opened in place; any other store's is downloaded into the scratch directory, and that
//! copy lives exactly as long as its [`LocalCopy`].

use std::path::{Path, PathBuf};

use sha2::Digest;
use strata_core::{Error, Result, Tier};

use super::ColdStore;

/// Bytes asked of the store at a time when hashing an object that is not a local file.
const HASH_CHUNK: u64 = 8 * 1024 * 1024;

/// The error of a failed local file operation.
pub(super) fn io(op: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::storage(Tier::Cold, op, e)
}

/// The error of a blocking task that did not finish.
pub(super) fn join(op: &'static str) -> impl Fn(tokio::task::JoinError) -> Error {
    move |e| Error::storage(Tier::Cold, op, e)
}

/// A new temporary file in `dir` (created when missing), or in the system's temp directory.
pub(super) fn scratch_file(dir: Option<&Path>) -> Result<tempfile::NamedTempFile> {
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io("scratch"))?;
            tempfile::NamedTempFile::new_in(dir)
        }
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(io("scratch"))
}

/// A local file holding an object: the store's own file, or a temporary download that is
/// removed when this is dropped.
pub(super) struct LocalCopy {
    /// Where the bytes are.
    pub(super) path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

impl ColdStore {
    /// A new temporary file in the configured scratch directory.
    pub(super) fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        scratch_file(self.config.scratch_dir.as_deref())
    }

    /// The object as a local file (in place for a local directory, else downloaded).
    pub(super) async fn local(&self, key: &str) -> Result<Option<LocalCopy>> {
        if let Some(path) = self.blobs.local_path(key) {
            return Ok(path.is_file().then_some(LocalCopy { path, _temp: None }));
        }
        let temp = self.temp_file()?.into_temp_path();
        if !self.blobs.get_to_file(key, &temp).await? {
            return Ok(None);
        }
        Ok(Some(LocalCopy {
            path: temp.to_path_buf(),
            _temp: Some(temp),
        }))
    }

    /// A file a live manifest lists, as a local file; its absence is corruption.
    pub(super) async fn listed(&self, key: &str) -> Result<LocalCopy> {
        self.local(key).await?.ok_or_else(|| Error::Corrupt {
            tier: Tier::Cold,
            what: format!("`{key}` is listed by a live manifest but missing"),
        })
    }

    /// SHA-256 and size of a stored object, streamed (never the whole object in memory).
    pub(super) async fn hash_object(&self, key: &str) -> Result<Option<(String, u64)>> {
        if let Some(path) = self.blobs.local_path(key) {
            if !path.is_file() {
                return Ok(None);
            }
            return Ok(Some(crate::sha256_file_async(&path).await?));
        }
        let Some(meta) = self.blobs.head(key).await? else {
            return Ok(None);
        };
        let mut hasher = sha2::Sha256::new();
        let mut at = 0u64;
        while at < meta.size {
            let Some(chunk) = self.blobs.get_range(key, at..at + HASH_CHUNK).await? else {
                return Ok(None);
            };
            if chunk.is_empty() {
                break;
            }
            at += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Some((hex::encode(hasher.finalize()), at)))
    }
}
