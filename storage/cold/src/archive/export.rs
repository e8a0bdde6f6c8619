//! Writing a partition version: an export's new files (or a compaction's merged ones), then
//! the manifest listing them, chained to the previous version by its SHA-256.
//!
//! Invariant: the manifest goes up only after every file it adds is in the store, and a
//! pointer is handed back only after those files and the manifest read back with the SHA-256
//! and size that were written, so the warm tier never drops rows the archive cannot return.
//! A leftover version of the same number (an attempt that never went live) is replaced
//! first, and only its files the base version does not list are removed.

use std::{collections::BTreeSet, path::Path};

use bytes::Bytes;
use futures::StreamExt;
use strata_core::{
    Error, Result, Tier,
    cold::{ColdRow, LivePartition, PartitionKey, PutOptions, RowPages},
};
use strata_types::time::{format_rfc3339, now_micros};

use super::{ColdStore, objects::join};
use crate::{
    codec::{self, FileStats},
    manifest::{FORMAT, Manifest, ManifestFile, data_file_name, manifest_key, sha256_hex},
};

impl ColdStore {
    /// [`strata_core::cold::ColdTier::export`]: the rows of `pages` as new files of version
    /// `base.version + 1` (1 without a base), listed with the base's files.
    pub(super) async fn export_partition(
        &self,
        partition: &PartitionKey,
        base: Option<&LivePartition>,
        mut pages: RowPages<'_>,
    ) -> Result<Option<LivePartition>> {
        let version = base.map_or(1, |b| b.version + 1);
        let base_manifest = match base {
            Some(b) => Some(self.live_manifest(b).await?),
            None => None,
        };
        self.discard_version(partition, version, base_manifest.as_deref())
            .await?;
        let limit = self.config.rows_per_file.max(1);
        let mut new_files = Vec::new();
        let mut buffer: Vec<ColdRow> = Vec::new();
        while let Some(page) = pages.next().await {
            for row in page? {
                buffer.push(row);
                if buffer.len() >= limit {
                    let rows = std::mem::take(&mut buffer);
                    new_files.push(self.write_rows(partition, version, rows).await?);
                }
            }
        }
        if !buffer.is_empty() {
            new_files.push(self.write_rows(partition, version, buffer).await?);
        }
        if new_files.is_empty() {
            return Ok(None);
        }
        let mut files = base_manifest
            .as_ref()
            .map(|m| m.files.clone())
            .unwrap_or_default();
        files.extend(new_files.iter().cloned());
        let manifest = new_manifest(
            partition,
            version,
            base.map(|b| b.manifest_sha256.as_str()),
            "export",
            files,
        );
        let live = self.publish(partition, &manifest, &new_files).await?;
        tracing::info!(
            partition = %partition,
            version,
            files = new_files.len(),
            rows = new_files.iter().map(|f| f.rows).sum::<u64>(),
            "exported to the cold tier"
        );
        Ok(Some(live))
    }

    /// Writes `rows` (all of `p`) as one file of version `version` and uploads it.
    async fn write_rows(
        &self,
        p: &PartitionKey,
        version: u64,
        mut rows: Vec<ColdRow>,
    ) -> Result<ManifestFile> {
        let range = p.range();
        if let Some(bad) = rows.iter().find(|r| {
            let e = &r.stored.event;
            e.tenant != p.tenant || e.stream != p.stream || !range.contains(e.ts)
        }) {
            return Err(Error::Corrupt {
                tier: Tier::Cold,
                what: format!(
                    "export of {p} was handed an event of {}/{} at {}",
                    bad.stored.event.tenant,
                    bad.stored.event.stream,
                    format_rfc3339(bad.stored.event.ts)
                ),
            });
        }
        let temp = self.temp_file()?.into_temp_path();
        let path = temp.to_path_buf();
        let settings = self.config.write_settings();
        let stats =
            tokio::task::spawn_blocking(move || codec::write_file(&path, &mut rows, settings))
                .await
                .map_err(join("export"))??;
        self.upload(p, version, &temp, stats).await
    }

    /// Uploads the finished file at `path` as a new data file of version `version` of `p`.
    pub(super) async fn upload(
        &self,
        p: &PartitionKey,
        version: u64,
        path: &Path,
        stats: FileStats,
    ) -> Result<ManifestFile> {
        let key = format!("{}{}", p.data_prefix(), data_file_name(version));
        let options = PutOptions {
            sha256: Some(stats.sha256.clone()),
            retention: self.retention_for(p),
            legal_hold: false,
        };
        self.blobs.put_file(&key, path, &options).await?;
        Ok(ManifestFile {
            key,
            rows: stats.rows,
            bytes: stats.bytes,
            sha256: stats.sha256,
            min_ts: stats.min_ts,
            max_ts: stats.max_ts,
        })
    }

    /// A version of `p` numbered `version` that exists but never went live (an export or
    /// compaction that crashed before its warm commit) is replaced now: its files that
    /// `base` does not list are removed.
    pub(super) async fn discard_version(
        &self,
        p: &PartitionKey,
        version: u64,
        base: Option<&Manifest>,
    ) -> Result<()> {
        let key = manifest_key(p, version);
        let Some(bytes) = self.blobs.get(&key).await? else {
            return Ok(());
        };
        let keep: BTreeSet<&str> = base
            .map(|b| b.files.iter().map(|f| f.key.as_str()).collect())
            .unwrap_or_default();
        if let Ok(m) = Manifest::from_bytes(&bytes, &key) {
            for f in m.files.iter().filter(|f| !keep.contains(f.key.as_str())) {
                self.blobs.delete(&f.key).await?;
            }
        }
        tracing::info!(partition = %p, version, "replacing a manifest version that never went live");
        Ok(())
    }

    /// Writes `manifest`, then reads back the new files and the manifest and checks their
    /// checksums: the export's verification before warm drops anything.
    pub(super) async fn publish(
        &self,
        p: &PartitionKey,
        manifest: &Manifest,
        new_files: &[ManifestFile],
    ) -> Result<LivePartition> {
        for f in new_files {
            match self.hash_object(&f.key).await? {
                Some((sha, bytes)) if sha == f.sha256 && bytes == f.bytes => {}
                Some((sha, bytes)) => {
                    return Err(Error::Corrupt {
                        tier: Tier::Cold,
                        what: format!(
                            "`{}` read back as {bytes} bytes with SHA-256 {sha}; wrote {} bytes with {}",
                            f.key, f.bytes, f.sha256
                        ),
                    });
                }
                None => {
                    return Err(Error::Corrupt {
                        tier: Tier::Cold,
                        what: format!("`{}` is missing right after it was written", f.key),
                    });
                }
            }
        }
        let bytes = manifest.to_bytes()?;
        let sha = sha256_hex(&bytes);
        let key = manifest_key(p, manifest.version);
        let options = PutOptions {
            sha256: Some(sha.clone()),
            retention: self.retention_for(p),
            legal_hold: false,
        };
        self.blobs.put(&key, Bytes::from(bytes), &options).await?;
        let back = self.blobs.get(&key).await?.map(|b| sha256_hex(&b));
        if back.as_deref() != Some(sha.as_str()) {
            return Err(Error::Corrupt {
                tier: Tier::Cold,
                what: format!("manifest `{key}` did not read back as written"),
            });
        }
        Ok(LivePartition {
            partition: p.clone(),
            version: manifest.version,
            manifest_sha256: sha,
        })
    }
}

/// Manifest version `version` of `p`, chained to the version whose SHA-256 is `previous`.
pub(super) fn new_manifest(
    p: &PartitionKey,
    version: u64,
    previous: Option<&str>,
    reason: &str,
    files: Vec<ManifestFile>,
) -> Manifest {
    Manifest {
        format: FORMAT,
        tenant: p.tenant.clone(),
        stream: p.stream.clone(),
        date: p.date(),
        version,
        previous_sha256: previous.map(str::to_owned),
        reason: reason.to_owned(),
        created_at: format_rfc3339(now_micros()),
        files,
    }
}
