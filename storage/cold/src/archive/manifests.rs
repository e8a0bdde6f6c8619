//! Manifests as the archive reads them: one version loaded (checked and cached), every
//! version of a tenant's partitions listed.
//!
//! Invariant: a manifest is used only when its bytes hash to the SHA-256 the caller expects
//! (a live pointer's) and it describes the partition and version its key names. The cache is
//! keyed by (key, SHA-256), so an entry can never go stale: a version is immutable once live,
//! and rewritten bytes have another hash.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use strata_core::{
    Error, Result, Tier,
    cold::{LivePartition, MANIFEST_ROOT, PartitionKey},
};

use super::{ColdStore, lock::is_hold_marker};
use crate::manifest::{Manifest, manifest_key, parse_manifest_key, sha256_hex};

/// Most parsed manifests kept; the cache is cleared when it is full.
const MANIFEST_CACHE: usize = 4096;

/// Parsed manifests by (key, sha256).
pub(super) type ManifestCache = HashMap<(String, String), Arc<Manifest>>;

/// Per partition, every manifest version present with its last-modified time.
pub(super) type Versions = BTreeMap<PartitionKey, BTreeMap<u64, i64>>;

impl ColdStore {
    /// Reads and parses a manifest version; with `expected` set, its SHA-256 must match.
    pub(super) async fn load_manifest(
        &self,
        p: &PartitionKey,
        version: u64,
        expected: Option<&str>,
    ) -> Result<(Arc<Manifest>, String)> {
        let key = manifest_key(p, version);
        if let Some(sha) = expected
            && let Ok(cache) = self.manifests.lock()
            && let Some(m) = cache.get(&(key.clone(), sha.to_owned()))
        {
            return Ok((Arc::clone(m), sha.to_owned()));
        }
        let bytes = self.blobs.get(&key).await?.ok_or_else(|| Error::Corrupt {
            tier: Tier::Cold,
            what: format!("manifest `{key}` is missing"),
        })?;
        let sha = sha256_hex(&bytes);
        if let Some(want) = expected
            && want != sha
        {
            return Err(Error::Corrupt {
                tier: Tier::Cold,
                what: format!("manifest `{key}` has SHA-256 {sha}, the live pointer says {want}"),
            });
        }
        let m = Arc::new(Manifest::from_bytes(&bytes, &key)?);
        if m.version != version || m.partition()? != *p {
            return Err(Error::Corrupt {
                tier: Tier::Cold,
                what: format!("manifest `{key}` describes another partition or version"),
            });
        }
        if let Ok(mut cache) = self.manifests.lock() {
            if cache.len() >= MANIFEST_CACHE {
                cache.clear();
            }
            cache.insert((key, sha.clone()), Arc::clone(&m));
        }
        Ok((m, sha))
    }

    /// The manifest a live pointer names, checked against the pointer's SHA-256.
    pub(super) async fn live_manifest(&self, live: &LivePartition) -> Result<Arc<Manifest>> {
        Ok(self
            .load_manifest(&live.partition, live.version, Some(&live.manifest_sha256))
            .await?
            .0)
    }

    /// Every manifest version present for each partition of `tenant`, and the keys under
    /// the tenant's manifests that are neither manifests nor legal-hold markers.
    pub(super) async fn manifest_versions(&self, tenant: &str) -> Result<(Versions, Vec<String>)> {
        let mut out = Versions::new();
        let mut unknown = Vec::new();
        for meta in self
            .blobs
            .list(&format!("{MANIFEST_ROOT}/tenant={tenant}/"))
            .await?
        {
            match parse_manifest_key(&meta.key) {
                Some((p, v)) if p.tenant == tenant => {
                    out.entry(p).or_default().insert(v, meta.last_modified);
                }
                _ if is_hold_marker(&meta.key) => {}
                _ => unknown.push(meta.key),
            }
        }
        Ok((out, unknown))
    }
}
