//! SHA-256 of local files, read in chunks: what the stores check uploads against and the
//! archive's read-back checks compare with manifests.
//!
//! Invariant: a file is never read into memory whole, however large it is.

use std::{io::Read, path::Path};

use sha2::{Digest, Sha256};
use strata_core::{Error, Result, Tier};

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
