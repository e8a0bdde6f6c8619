//! Partition manifests: which files make up a partition version, with their checksums, and
//! the SHA-256 of the previous version, so a partition's history is a hash chain.
//!
//! A manifest version is written once under
//! `_manifests/tenant=T/stream=S/date=YYYY-MM-DD/v<N>.json` and never changed after it went
//! live; rewriting any version breaks the chain at the next one, which `verify` reports.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_core::{
    Error, Result, Tier,
    cold::{MANIFEST_ROOT, PartitionKey, parse_day},
};

/// The manifest format written by this version.
pub const FORMAT: u32 = 1;

/// One file of a partition version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Object key, relative to the archive root.
    pub key: String,
    /// Rows in the file.
    pub rows: u64,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Smallest event time, epoch micros.
    pub min_ts: i64,
    /// Largest event time, epoch micros.
    pub max_ts: i64,
}

/// One version of a partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format.
    pub format: u32,
    /// Tenant.
    pub tenant: String,
    /// Stream.
    pub stream: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Version number, from 1.
    pub version: u64,
    /// SHA-256 of the previous version's bytes (`None` for version 1).
    pub previous_sha256: Option<String>,
    /// Why this version was written (`export`, `compaction`).
    pub reason: String,
    /// When it was written, RFC 3339.
    pub created_at: String,
    /// The files that make up this version.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Rows in all files.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.rows).sum()
    }

    /// Bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }

    /// The partition it describes.
    pub fn partition(&self) -> Result<PartitionKey> {
        let day = parse_day(&self.date).ok_or_else(|| Error::Corrupt {
            tier: Tier::Cold,
            what: format!("manifest with a bad date `{}`", self.date),
        })?;
        Ok(PartitionKey {
            tenant: self.tenant.clone(),
            stream: self.stream.clone(),
            day,
        })
    }

    /// Serialised bytes (what is stored and hashed).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::storage(Tier::Cold, "manifest", e))
    }

    /// Parses stored bytes.
    pub fn from_bytes(bytes: &[u8], key: &str) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
            tier: Tier::Cold,
            what: format!("manifest `{key}`: {e}"),
        })
    }
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The key of version `version` of `partition`'s manifest.
pub fn manifest_key(partition: &PartitionKey, version: u64) -> String {
    format!("{}v{version}.json", partition.manifest_prefix())
}

/// Parses a manifest key back into its partition and version.
pub fn parse_manifest_key(key: &str) -> Option<(PartitionKey, u64)> {
    let rest = key.strip_prefix(MANIFEST_ROOT)?.strip_prefix('/')?;
    let (partition, file) = parse_partition_path(rest)?;
    let version = file
        .strip_prefix('v')?
        .strip_suffix(".json")?
        .parse()
        .ok()?;
    Some((partition, version))
}

/// Parses `tenant=T/stream=S/date=D/<file>` into the partition and the file name.
pub fn parse_partition_path(key: &str) -> Option<(PartitionKey, &str)> {
    let mut parts = key.splitn(4, '/');
    let tenant = parts.next()?.strip_prefix("tenant=")?;
    let stream = parts.next()?.strip_prefix("stream=")?;
    let date = parts.next()?.strip_prefix("date=")?;
    let file = parts.next()?;
    if file.contains('/') {
        return None;
    }
    Some((
        PartitionKey {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            day: parse_day(date)?,
        },
        file,
    ))
}

/// The name of a data file written for `version`: `part-v<N>-<uuid>.parquet`.
pub fn data_file_name(version: u64) -> String {
    format!("part-v{version}-{}.parquet", uuid::Uuid::new_v4().simple())
}

/// The version a data file was written for, if it is named like Strata names them.
pub fn data_file_version(name: &str) -> Option<u64> {
    let rest = name.strip_prefix("part-v")?.strip_suffix(".parquet")?;
    let (version, id) = rest.split_once('-')?;
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let p = PartitionKey::of("acme", "click", 1_795_651_200_000_000);
        let key = manifest_key(&p, 12);
        assert_eq!(
            key,
            "_manifests/tenant=acme/stream=click/date=2026-11-26/v12.json"
        );
        assert_eq!(parse_manifest_key(&key), Some((p.clone(), 12)));
        assert_eq!(parse_manifest_key("_manifests/tenant=acme/x.json"), None);
        let name = data_file_name(3);
        assert_eq!(data_file_version(&name), Some(3));
        assert_eq!(data_file_version("part-v3-evil.parquet"), None);
        let data = format!("{}{name}", p.data_prefix());
        assert_eq!(parse_partition_path(&data), Some((p, name.as_str())));
    }
}
