//! What the exporter's maintenance pass runs on the archive: compaction (small files of the
//! live version merged into a new version) and the removal of what crashed attempts and
//! finished compactions left behind.
//!
//! Invariants: nothing the live version lists is ever deleted; files a compaction replaced
//! stay until the replacing version has been live for `orphan_grace` (reads that resolved the
//! previous version may still be opening them); files of versions above the live one stay
//! for `orphan_grace` after they were written (their writer may still be running); and a
//! partition that may be under Object Lock is never compacted and none of its data files
//! are removed.

use std::{collections::BTreeSet, path::PathBuf};

use strata_core::{
    Error, Result, Tier,
    cold::{Compaction, LivePartition, PartitionKey},
};
use strata_types::time::{now_micros, parse_rfc3339};

use super::{
    ColdStore,
    export::new_manifest,
    merge::merge_sorted,
    objects::{LocalCopy, join},
};
use crate::manifest::{ManifestFile, data_file_version, parse_manifest_key, parse_partition_path};

impl ColdStore {
    /// [`strata_core::cold::ColdTier::compact`]: the live version's files below half the
    /// target size merged into files of the target size, as the next version.
    pub(super) async fn compact_partition(
        &self,
        live: &LivePartition,
    ) -> Result<Option<Compaction>> {
        let p = &live.partition;
        if self.config.lock.is_some() && self.retention_for(p).is_some() {
            // Old enough to be locked: its objects may not be deletable any more.
            return Ok(None);
        }
        let manifest = self.live_manifest(live).await?;
        let small_limit = self.config.target_file_size / 2;
        let (small, keep): (Vec<ManifestFile>, Vec<ManifestFile>) = manifest
            .files
            .iter()
            .cloned()
            .partition(|f| f.bytes < small_limit);
        if small.len() < 2 {
            return Ok(None);
        }
        let version = live.version + 1;
        self.discard_version(p, version, Some(&manifest)).await?;
        let merged = self.merge_files(p, version, &small).await?;
        let merged_rows: u64 = merged.iter().map(|f| f.rows).sum();
        let small_rows: u64 = small.iter().map(|f| f.rows).sum();
        if merged_rows != small_rows {
            return Err(Error::Corrupt {
                tier: Tier::Cold,
                what: format!("compaction of {p} merged {small_rows} rows into {merged_rows}"),
            });
        }
        let mut files = keep;
        files.extend(merged.iter().cloned());
        let next = new_manifest(p, version, Some(&live.manifest_sha256), "compaction", files);
        let new_live = self.publish(p, &next, &merged).await?;
        Ok(Some(Compaction {
            live: new_live,
            obsolete: small.iter().map(|f| f.key.clone()).collect(),
            merged_files: small.len() as u64,
            written_files: merged.len() as u64,
        }))
    }

    /// Merges `inputs` (files of the live version) into new files of version `version` and
    /// uploads them.
    async fn merge_files(
        &self,
        p: &PartitionKey,
        version: u64,
        inputs: &[ManifestFile],
    ) -> Result<Vec<ManifestFile>> {
        let mut copies: Vec<LocalCopy> = Vec::with_capacity(inputs.len());
        for f in inputs {
            copies.push(self.listed(&f.key).await?);
        }
        let paths: Vec<PathBuf> = copies.iter().map(|c| c.path.clone()).collect();
        let target = self.config.target_file_size.max(1);
        let settings = self.config.write_settings();
        let scratch = self.config.scratch_dir.clone();
        let expected: u64 = inputs.iter().map(|f| f.rows).sum();
        let outputs = tokio::task::spawn_blocking(move || {
            merge_sorted(&paths, target, settings, scratch.as_deref(), expected)
        })
        .await
        .map_err(join("compact"))??;
        let mut files = Vec::with_capacity(outputs.len());
        for (temp, stats) in outputs {
            files.push(self.upload(p, version, &temp, stats).await?);
        }
        drop(copies);
        Ok(files)
    }

    /// [`strata_core::cold::ColdTier::delete_objects`].
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.blobs.delete(key).await?;
        }
        Ok(())
    }

    /// [`strata_core::cold::ColdTier::clean_partition`]: removes the leftovers of `partition`
    /// the module invariants allow to go now; returns the objects removed.
    pub(super) async fn clean(
        &self,
        partition: &PartitionKey,
        live: Option<&LivePartition>,
    ) -> Result<u64> {
        let live_version = live.map_or(0, |l| l.version);
        let cutoff = self.config.orphan_cutoff(now_micros());
        let (listed, live_since): (BTreeSet<String>, i64) = match live {
            Some(l) => {
                let m = self.live_manifest(l).await?;
                // Unparseable times count as "just now", which only delays deletion.
                let since = parse_rfc3339(&m.created_at).unwrap_or(i64::MAX);
                (m.files.iter().map(|f| f.key.clone()).collect(), since)
            }
            None => (BTreeSet::new(), i64::MIN),
        };
        // Files older versions listed and the live one dropped stay until the live version
        // has been live for the grace period: a read that resolved an older version may
        // still be opening them.
        let superseded_removable = live_since <= cutoff;
        let mut removed = 0;
        for meta in self.blobs.list(&partition.data_prefix()).await? {
            if listed.contains(&meta.key) {
                continue;
            }
            let Some((_, name)) = parse_partition_path(&meta.key) else {
                continue;
            };
            let Some(v) = data_file_version(name) else {
                // Not written by Strata: leave it for `verify` to report.
                continue;
            };
            // Above the live version: an export or compaction that never went live (only
            // once the grace period passed: it may still be running). At or below the live
            // version, a file its own version's manifest lists was superseded (kept for the
            // grace period); one it does not list is the orphan of an attempt that crashed
            // before that version went live, safe to remove now (writers only ever write
            // above the live version).
            let superseded = v <= live_version
                && !superseded_removable
                && match self.load_manifest(partition, v, None).await {
                    Ok((m, _)) => m.files.iter().any(|f| f.key == meta.key),
                    Err(_) => true,
                };
            if (v > live_version && meta.last_modified > cutoff)
                || superseded
                || self.retention_for(partition).is_some()
            {
                continue;
            }
            self.blobs.delete(&meta.key).await?;
            removed += 1;
        }
        for meta in self.blobs.list(&partition.manifest_prefix()).await? {
            if let Some((p, v)) = parse_manifest_key(&meta.key)
                && p == *partition
                && v > live_version
                && meta.last_modified <= cutoff
            {
                self.blobs.delete(&meta.key).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
