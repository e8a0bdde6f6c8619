//! `archive verify`: every live file's checksum recomputed, every partition's manifest chain
//! walked, every object under the tenant accounted for.
//!
//! Invariant: verify only reads. It reports what it finds (altered, missing and extra files,
//! chain breaks, superseded files awaiting cleanup) and changes nothing, so it is safe to run
//! against a live archive at any time; files of an attempt still within `orphan_grace` are
//! not called extra, since their writer may still be running.

use std::collections::{BTreeSet, HashMap};

use strata_core::{
    Result,
    cold::{LivePartition, PartitionKey, Progress, VerifyIssue, VerifyReport},
};
use strata_types::time::now_micros;

use super::ColdStore;
use crate::manifest::{
    Manifest, ManifestFile, data_file_version, manifest_key, parse_partition_path, sha256_hex,
};

impl ColdStore {
    /// [`strata_core::cold::ColdTier::verify`].
    pub(super) async fn verify_tenant(
        &self,
        tenant: &str,
        parts: &[LivePartition],
        progress: Option<Progress<'_>>,
    ) -> Result<VerifyReport> {
        let mut report = VerifyReport {
            tenant: tenant.to_owned(),
            ..VerifyReport::default()
        };
        let (versions, unknown) = self.manifest_versions(tenant).await?;
        for key in unknown {
            report.extra.push(VerifyIssue {
                detail: "not a manifest this archive writes".into(),
                key,
            });
        }
        let pointers: HashMap<&PartitionKey, &LivePartition> =
            parts.iter().map(|l| (&l.partition, l)).collect();
        for l in parts.iter().filter(|l| l.partition.tenant == tenant) {
            if !versions.contains_key(&l.partition) {
                report.chain_breaks.push(VerifyIssue {
                    key: manifest_key(&l.partition, l.version),
                    detail: "the live version's manifest is missing".into(),
                });
            }
        }
        // Per partition: files of the live version, of any version, and the live version.
        let mut live_files: Vec<ManifestFile> = Vec::new();
        let mut listed_any: BTreeSet<String> = BTreeSet::new();
        let mut live_of: HashMap<PartitionKey, u64> = HashMap::new();
        for (p, vs) in &versions {
            report.partitions += 1;
            let Some((&highest, _)) = vs.iter().next_back() else {
                continue;
            };
            let live_version = pointers.get(p).map_or(highest, |l| l.version);
            live_of.insert(p.clone(), live_version);
            let mut previous: Option<String> = None;
            for v in 1..=highest {
                let key = manifest_key(p, v);
                if !vs.contains_key(&v) {
                    if v <= live_version {
                        report.chain_breaks.push(VerifyIssue {
                            key,
                            detail: "manifest version missing from the chain".into(),
                        });
                    }
                    previous = None;
                    continue;
                }
                report.manifests += 1;
                let bytes = match self.blobs.get(&key).await? {
                    Some(b) => b,
                    None => {
                        report.chain_breaks.push(VerifyIssue {
                            key,
                            detail: "manifest vanished while verifying".into(),
                        });
                        previous = None;
                        continue;
                    }
                };
                let sha = sha256_hex(&bytes);
                let m = match Manifest::from_bytes(&bytes, &key) {
                    Ok(m) => m,
                    Err(e) => {
                        report.chain_breaks.push(VerifyIssue {
                            key,
                            detail: format!("unreadable: {e}"),
                        });
                        previous = None;
                        continue;
                    }
                };
                if v > 1
                    && v <= live_version
                    && let Some(prev) = &previous
                    && m.previous_sha256.as_deref() != Some(prev.as_str())
                {
                    report.chain_breaks.push(VerifyIssue {
                        key: key.clone(),
                        detail: format!(
                            "previous-version hash {} does not match v{}'s SHA-256 {prev}",
                            m.previous_sha256.as_deref().unwrap_or("(none)"),
                            v - 1
                        ),
                    });
                }
                if v == 1 && m.previous_sha256.is_some() {
                    report.chain_breaks.push(VerifyIssue {
                        key: key.clone(),
                        detail: "version 1 names a previous version".into(),
                    });
                }
                if m.version != v || m.partition().ok().as_ref() != Some(p) {
                    report.chain_breaks.push(VerifyIssue {
                        key: key.clone(),
                        detail: "manifest describes another partition or version".into(),
                    });
                }
                if v == live_version {
                    if let Some(l) = pointers.get(p)
                        && l.manifest_sha256 != sha
                    {
                        report.chain_breaks.push(VerifyIssue {
                            key: key.clone(),
                            detail: format!(
                                "live manifest has SHA-256 {sha}, the warm tier recorded {}",
                                l.manifest_sha256
                            ),
                        });
                    }
                    live_files.extend(m.files.iter().cloned());
                }
                listed_any.extend(m.files.iter().map(|f| f.key.clone()));
                previous = Some(sha);
            }
        }
        let total: u64 = live_files.iter().map(|f| f.bytes).sum();
        let mut done = 0u64;
        let live_keys: BTreeSet<&str> = live_files.iter().map(|f| f.key.as_str()).collect();
        for f in &live_files {
            match self.hash_object(&f.key).await? {
                None => report.missing.push(VerifyIssue {
                    key: f.key.clone(),
                    detail: format!(
                        "listed with {} rows, {} bytes; not in the store",
                        f.rows, f.bytes
                    ),
                }),
                Some((sha, bytes)) => {
                    report.files_checked += 1;
                    report.bytes_checked += bytes;
                    if sha != f.sha256 || bytes != f.bytes {
                        report.altered.push(VerifyIssue {
                            key: f.key.clone(),
                            detail: format!(
                                "{bytes} bytes with SHA-256 {sha}; the manifest says {} bytes with {}",
                                f.bytes, f.sha256
                            ),
                        });
                    }
                }
            }
            done += f.bytes;
            if let Some(cb) = progress {
                cb(done, total);
            }
        }
        let cutoff = self.config.orphan_cutoff(now_micros());
        for meta in self.blobs.list(&format!("tenant={tenant}/")).await? {
            if live_keys.contains(meta.key.as_str()) {
                continue;
            }
            if listed_any.contains(&meta.key) {
                report.superseded.push(VerifyIssue {
                    detail:
                        "listed only by a superseded version; removed by the next maintenance pass"
                            .into(),
                    key: meta.key,
                });
                continue;
            }
            let in_progress = parse_partition_path(&meta.key).is_some_and(|(p, name)| {
                data_file_version(name).is_some_and(|v| {
                    v > live_of.get(&p).copied().unwrap_or(0) && meta.last_modified > cutoff
                })
            });
            if !in_progress {
                report.extra.push(VerifyIssue {
                    detail: format!("{} bytes listed by no manifest", meta.size),
                    key: meta.key,
                });
            }
        }
        Ok(report)
    }
}
