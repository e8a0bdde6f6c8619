//! [`ColdStore`]: the Parquet archive on a [`BlobStore`], implementing [`ColdTier`].

use std::{
    collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use strata_core::{
    Error, Result, Tier,
    cold::{
        BlobStore, ColdRow, ColdTier, Compaction, DAY_MICROS, LivePartition, MANIFEST_ROOT,
        PartitionInfo, PartitionKey, Progress, PutOptions, Retention, RetentionMode, RowPages,
        VerifyIssue, VerifyReport,
    },
    warm::HotWatermark,
};
use strata_types::{
    AggregateQuery, PartialAggregate, StoredEvent, TimeRange,
    time::{format_rfc3339, now_micros},
};

use crate::{
    codec::{self, FileWriter, WriteSettings},
    manifest::{
        FORMAT, Manifest, ManifestFile, data_file_name, data_file_version, manifest_key,
        parse_manifest_key, parse_partition_path, sha256_hex,
    },
};

/// Object Lock settings: new objects of partitions old enough get this retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockSettings {
    /// GOVERNANCE or COMPLIANCE.
    pub mode: RetentionMode,
    /// Retain-until is the time of locking plus this.
    pub retain_for: Duration,
    /// Partitions whose day ended at least this long ago are locked (after their last
    /// compaction); younger ones stay unlocked so compaction can still replace their files.
    pub lock_after: Duration,
}

/// How the archive writes and maintains files.
#[derive(Debug, Clone)]
pub struct ColdConfig {
    /// Most rows per file an export writes (rows are sorted in memory per file, so this
    /// bounds the exporter's memory).
    pub rows_per_file: usize,
    /// Compaction merges small files into files of about this size.
    pub target_file_size: u64,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// Files of an export or compaction that never went live are left alone this long
    /// (another replica may still be writing them) and `verify` does not call them extra.
    /// Files a compaction replaced are also kept this long after the replacing version went
    /// live, so reads that resolved the previous version can still open them.
    pub orphan_grace: Duration,
    /// Object Lock; `None` writes unlocked objects.
    pub lock: Option<LockSettings>,
    /// Where temporary files go (downloads for reads, files being written); the system's
    /// temp directory by default.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for ColdConfig {
    fn default() -> Self {
        Self {
            rows_per_file: 250_000,
            target_file_size: 128 * 1024 * 1024,
            row_group_rows: 128 * 1024,
            zstd_level: 3,
            orphan_grace: Duration::from_secs(3600),
            lock: None,
            scratch_dir: None,
        }
    }
}

fn io(op: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::storage(Tier::Cold, op, e)
}

fn join(op: &'static str) -> impl Fn(tokio::task::JoinError) -> Error {
    move |e| Error::storage(Tier::Cold, op, e)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A local file holding an object: the store's own file, or a temporary download that is
/// removed when this is dropped.
struct LocalCopy {
    path: PathBuf,
    _temp: Option<tempfile::TempPath>,
}

/// Marker object recording that a partition is under legal hold.
fn hold_marker(p: &PartitionKey) -> String {
    format!("{}legal_hold", p.manifest_prefix())
}

/// The Parquet archive. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ColdStore {
    blobs: Arc<dyn BlobStore>,
    config: Arc<ColdConfig>,
    /// Parsed manifests by (key, sha256); versions are immutable once live, so entries never
    /// go stale. Bounded by clearing when full.
    manifests: Arc<Mutex<ManifestCache>>,
}

const MANIFEST_CACHE: usize = 4096;

/// Parsed manifests by (key, sha256).
type ManifestCache = HashMap<(String, String), Arc<Manifest>>;

impl ColdStore {
    /// An archive on `blobs`.
    pub fn new(blobs: Arc<dyn BlobStore>, config: ColdConfig) -> Self {
        Self {
            blobs,
            config: Arc::new(config),
            manifests: Arc::default(),
        }
    }

    /// The blob store underneath.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// The configuration.
    pub fn config(&self) -> &ColdConfig {
        &self.config
    }

    fn settings(&self) -> WriteSettings {
        WriteSettings {
            zstd_level: self.config.zstd_level,
            row_group_rows: self.config.row_group_rows,
        }
    }

    fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        match &self.config.scratch_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(io("scratch"))?;
                tempfile::NamedTempFile::new_in(dir)
            }
            None => tempfile::NamedTempFile::new(),
        }
        .map_err(io("scratch"))
    }

    /// Retention for objects of `p` written now, if the partition is old enough to lock.
    fn retention_for(&self, p: &PartitionKey) -> Option<Retention> {
        let lock = self.config.lock?;
        let now = now_micros();
        let day_end = (p.day + 1).saturating_mul(DAY_MICROS);
        (day_end.saturating_add(micros(lock.lock_after)) <= now).then(|| Retention {
            mode: lock.mode,
            retain_until: now.saturating_add(micros(lock.retain_for)),
        })
    }

    /// Reads and parses a manifest version; with `expected` set, its SHA-256 must match.
    async fn load_manifest(
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

    async fn live_manifest(&self, live: &LivePartition) -> Result<Arc<Manifest>> {
        Ok(self
            .load_manifest(&live.partition, live.version, Some(&live.manifest_sha256))
            .await?
            .0)
    }

    /// The object as a local file (in place for a local directory, else downloaded).
    async fn local(&self, key: &str) -> Result<Option<LocalCopy>> {
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

    /// SHA-256 and size of a stored object, streamed (never the whole object in memory).
    async fn hash_object(&self, key: &str) -> Result<Option<(String, u64)>> {
        if let Some(path) = self.blobs.local_path(key) {
            if !path.is_file() {
                return Ok(None);
            }
            return Ok(Some(crate::sha256_file_async(&path).await?));
        }
        let Some(meta) = self.blobs.head(key).await? else {
            return Ok(None);
        };
        use sha2::Digest;
        const CHUNK: u64 = 8 * 1024 * 1024;
        let mut hasher = sha2::Sha256::new();
        let mut at = 0u64;
        while at < meta.size {
            let Some(chunk) = self.blobs.get_range(key, at..at + CHUNK).await? else {
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
        let settings = self.settings();
        let stats =
            tokio::task::spawn_blocking(move || codec::write_file(&path, &mut rows, settings))
                .await
                .map_err(join("export"))??;
        self.upload(p, version, &temp, stats).await
    }

    async fn upload(
        &self,
        p: &PartitionKey,
        version: u64,
        path: &Path,
        stats: codec::FileStats,
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
    async fn discard_version(
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
    async fn publish(
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

    fn new_manifest(
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

    /// Every manifest version present for each partition of `tenant`.
    async fn manifest_versions(
        &self,
        tenant: &str,
    ) -> Result<(BTreeMap<PartitionKey, BTreeMap<u64, i64>>, Vec<String>)> {
        let mut out: BTreeMap<PartitionKey, BTreeMap<u64, i64>> = BTreeMap::new();
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
                _ if meta.key.ends_with("/legal_hold") => {}
                _ => unknown.push(meta.key),
            }
        }
        Ok((out, unknown))
    }

    async fn merge_files(
        &self,
        p: &PartitionKey,
        version: u64,
        inputs: &[ManifestFile],
    ) -> Result<Vec<ManifestFile>> {
        let mut copies = Vec::with_capacity(inputs.len());
        for f in inputs {
            let copy = self.local(&f.key).await?.ok_or_else(|| Error::Corrupt {
                tier: Tier::Cold,
                what: format!("`{}` is listed by the live manifest but missing", f.key),
            })?;
            copies.push(copy);
        }
        let paths: Vec<PathBuf> = copies.iter().map(|c| c.path.clone()).collect();
        let target = self.config.target_file_size.max(1);
        let settings = self.settings();
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
}

/// Rows of one file in file order, pulled batch by batch.
struct SortedFile {
    rows: VecDeque<ColdRow>,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
}

impl SortedFile {
    fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(io("compact"))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .and_then(|b| b.with_batch_size(8192).build())
            .map_err(|e| Error::Corrupt {
                tier: Tier::Cold,
                what: format!("{}: {e}", path.display()),
            })?;
        Ok(Self {
            rows: VecDeque::new(),
            reader,
        })
    }

    fn next(&mut self) -> Result<Option<ColdRow>> {
        loop {
            if let Some(r) = self.rows.pop_front() {
                return Ok(Some(r));
            }
            match self.reader.next() {
                Some(batch) => {
                    let batch = batch.map_err(|e| Error::Corrupt {
                        tier: Tier::Cold,
                        what: e.to_string(),
                    })?;
                    self.rows.extend(codec::from_batch(&batch)?);
                }
                None => return Ok(None),
            }
        }
    }
}

/// Heap entry: the next row of input `source`, ordered so the smallest file-order key pops
/// first.
struct Head {
    row: ColdRow,
    source: usize,
}

impl Head {
    fn order(&self) -> (&str, i64, u64, &str) {
        let e = &self.row.stored;
        (&e.event.key, e.event.ts, e.seq, &self.row.node)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.order() == other.order()
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.order().cmp(&self.order())
    }
}

/// k-way merge of sorted files into new sorted files of about `target` bytes each. Memory:
/// one batch per input plus the writer's row group.
fn merge_sorted(
    inputs: &[PathBuf],
    target: u64,
    settings: WriteSettings,
    scratch: Option<&Path>,
    expected_rows: u64,
) -> Result<Vec<(tempfile::TempPath, codec::FileStats)>> {
    let mut files = inputs
        .iter()
        .map(|p| SortedFile::open(p))
        .collect::<Result<Vec<_>>>()?;
    let mut heap = BinaryHeap::new();
    for (i, f) in files.iter_mut().enumerate() {
        if let Some(row) = f.next()? {
            heap.push(Head { row, source: i });
        }
    }
    let new_temp = || -> Result<tempfile::TempPath> {
        match scratch {
            Some(d) => tempfile::NamedTempFile::new_in(d),
            None => tempfile::NamedTempFile::new(),
        }
        .map(tempfile::NamedTempFile::into_temp_path)
        .map_err(io("compact"))
    };
    let mut out = Vec::new();
    let mut current: Option<(tempfile::TempPath, FileWriter)> = None;
    let mut written = 0u64;
    while let Some(Head { row, source }) = heap.pop() {
        if let Some(next) = files[source].next()? {
            heap.push(Head { row: next, source });
        }
        if current.is_none() {
            let temp = new_temp()?;
            let writer = FileWriter::create(&temp, settings, expected_rows - written)?;
            current = Some((temp, writer));
        }
        if let Some((_, w)) = current.as_mut() {
            w.push(row)?;
            written += 1;
            if w.approx_size() >= target
                && let Some((temp, w)) = current.take()
            {
                out.push((temp, w.finish()?));
            }
        }
    }
    if let Some((temp, w)) = current.take()
        && w.rows() > 0
    {
        out.push((temp, w.finish()?));
    }
    Ok(out)
}

fn overlaps(f: &ManifestFile, range: TimeRange) -> bool {
    f.max_ts >= range.from && f.min_ts < range.to
}

fn relevant<'a>(
    parts: &'a [LivePartition],
    tenant: &'a str,
    stream: Option<&'a str>,
    range: TimeRange,
) -> impl Iterator<Item = &'a LivePartition> + 'a {
    parts.iter().filter(move |l| {
        let p = &l.partition;
        let r = p.range();
        p.tenant == tenant
            && stream.is_none_or(|s| s == p.stream)
            && r.from < range.to
            && range.from < r.to
    })
}

#[async_trait]
impl ColdTier for ColdStore {
    fn describe(&self) -> String {
        self.blobs.describe()
    }

    #[tracing::instrument(skip_all, fields(partition = %partition))]
    async fn export(
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
        let manifest = Self::new_manifest(
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

    async fn compact(&self, live: &LivePartition) -> Result<Option<Compaction>> {
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
        let next = Self::new_manifest(p, version, Some(&live.manifest_sha256), "compaction", files);
        let new_live = self.publish(p, &next, &merged).await?;
        Ok(Some(Compaction {
            live: new_live,
            obsolete: small.iter().map(|f| f.key.clone()).collect(),
            merged_files: small.len() as u64,
            written_files: merged.len() as u64,
        }))
    }

    async fn delete_objects(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            self.blobs.delete(key).await?;
        }
        Ok(())
    }

    async fn clean_partition(
        &self,
        partition: &PartitionKey,
        live: Option<&LivePartition>,
    ) -> Result<u64> {
        let live_version = live.map_or(0, |l| l.version);
        let cutoff = now_micros().saturating_sub(micros(self.config.orphan_grace));
        let (listed, live_since): (BTreeSet<String>, i64) = match live {
            Some(l) => {
                let m = self.live_manifest(l).await?;
                // Unparseable times count as "just now", which only delays deletion.
                let since = strata_types::time::parse_rfc3339(&m.created_at).unwrap_or(i64::MAX);
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
            // once the grace period passed: it may still be running). At or below: a file a
            // later version dropped (compacted away).
            // At or below the live version, a file its own version's manifest lists was
            // superseded (kept for the grace period); one it does not list is the orphan of
            // an attempt that crashed before that version went live, safe to remove now
            // (writers only ever write above the live version).
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

    async fn aggregate(
        &self,
        query: &AggregateQuery,
        parts: &[LivePartition],
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        let mut out = PartialAggregate::default();
        for live in relevant(parts, &query.tenant, query.stream.as_deref(), query.range) {
            let manifest = self.live_manifest(live).await?;
            for f in manifest.files.iter().filter(|f| overlaps(f, query.range)) {
                let copy = self.local(&f.key).await?.ok_or_else(|| Error::Corrupt {
                    tier: Tier::Cold,
                    what: format!("`{}` is listed by a live manifest but missing", f.key),
                })?;
                let (q, wm) = (query.clone(), watermark.clone());
                let partial = tokio::task::spawn_blocking(move || {
                    let mut p = PartialAggregate::default();
                    codec::aggregate_file(&copy.path, &q, &wm, &mut p).map(|()| p)
                })
                .await
                .map_err(join("aggregate"))??;
                out.merge(partial);
            }
        }
        Ok(out)
    }

    async fn get(
        &self,
        tenant: &str,
        id: &str,
        parts: &[LivePartition],
    ) -> Result<Option<StoredEvent>> {
        let everything = TimeRange {
            from: i64::MIN,
            to: i64::MAX,
        };
        for live in relevant(parts, tenant, None, everything) {
            let manifest = self.live_manifest(live).await?;
            for f in &manifest.files {
                let Some(copy) = self.local(&f.key).await? else {
                    return Err(Error::Corrupt {
                        tier: Tier::Cold,
                        what: format!("`{}` is listed by a live manifest but missing", f.key),
                    });
                };
                let id = id.to_owned();
                let found = tokio::task::spawn_blocking(move || codec::find_id(&copy.path, &id))
                    .await
                    .map_err(join("get"))??;
                if let Some(row) = found {
                    return Ok(Some(row.stored));
                }
            }
        }
        Ok(None)
    }

    fn read(
        &self,
        parts: Vec<LivePartition>,
        range: TimeRange,
        stream: Option<String>,
    ) -> BoxStream<'static, Result<StoredEvent>> {
        let mut todo: Vec<LivePartition> = parts
            .into_iter()
            .filter(|l| {
                let r = l.partition.range();
                stream.as_deref().is_none_or(|s| s == l.partition.stream)
                    && r.from < range.to
                    && range.from < r.to
            })
            .collect();
        todo.sort_by(|a, b| {
            (a.partition.day, &a.partition.stream).cmp(&(b.partition.day, &b.partition.stream))
        });
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<StoredEvent>>>(2);
        let me = self.clone();
        tokio::spawn(async move {
            for live in todo {
                let result: Result<()> = async {
                    let manifest = me.live_manifest(&live).await?;
                    for f in manifest.files.iter().filter(|f| overlaps(f, range)) {
                        let copy = me.local(&f.key).await?.ok_or_else(|| Error::Corrupt {
                            tier: Tier::Cold,
                            what: format!("`{}` is listed by a live manifest but missing", f.key),
                        })?;
                        let tx = tx.clone();
                        tokio::task::spawn_blocking(move || {
                            codec::read_file(&copy.path, Some(range), |rows| {
                                let events = rows.into_iter().map(|r| r.stored).collect();
                                Ok(tx.blocking_send(Ok(events)).is_ok())
                            })
                        })
                        .await
                        .map_err(join("read"))??;
                    }
                    Ok(())
                }
                .await;
                if let Err(e) = result {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                if tx.is_closed() {
                    return;
                }
            }
        });
        futures::stream::unfold((rx, VecDeque::new()), |(mut rx, mut buf)| async move {
            loop {
                if let Some(e) = buf.pop_front() {
                    return Some((Ok(e), (rx, buf)));
                }
                match rx.recv().await {
                    Some(Ok(batch)) => buf.extend(batch),
                    Some(Err(e)) => return Some((Err(e), (rx, buf))),
                    None => return None,
                }
            }
        })
        .boxed()
    }

    async fn partitions(
        &self,
        tenant: &str,
        parts: &[LivePartition],
    ) -> Result<Vec<PartitionInfo>> {
        let (versions, _) = self.manifest_versions(tenant).await?;
        let pointers: HashMap<&PartitionKey, &LivePartition> =
            parts.iter().map(|l| (&l.partition, l)).collect();
        let holds: BTreeSet<String> = self
            .blobs
            .list(&format!("{MANIFEST_ROOT}/tenant={tenant}/"))
            .await?
            .into_iter()
            .filter(|m| m.key.ends_with("/legal_hold"))
            .map(|m| m.key)
            .collect();
        let mut out = Vec::new();
        for (p, vs) in versions {
            let manifest = match pointers.get(&p) {
                Some(l) => self.live_manifest(l).await?,
                None => {
                    let Some((&v, _)) = vs.iter().next_back() else {
                        continue;
                    };
                    self.load_manifest(&p, v, None).await?.0
                }
            };
            out.push(PartitionInfo {
                version: manifest.version,
                files: manifest.files.len() as u64,
                rows: manifest.rows(),
                bytes: manifest.bytes(),
                min_ts: manifest.files.iter().map(|f| f.min_ts).min().unwrap_or(0),
                max_ts: manifest.files.iter().map(|f| f.max_ts).max().unwrap_or(0),
                legal_hold: holds.contains(&hold_marker(&p)),
                partition: p,
            });
        }
        Ok(out)
    }

    async fn verify(
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
        let cutoff = now_micros().saturating_sub(micros(self.config.orphan_grace));
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

    async fn set_legal_hold(&self, live: &LivePartition, on: bool) -> Result<u64> {
        let manifest = self.live_manifest(live).await?;
        let mut keys: Vec<String> = manifest.files.iter().map(|f| f.key.clone()).collect();
        keys.push(manifest_key(&live.partition, live.version));
        for key in &keys {
            self.blobs.set_legal_hold(key, on).await?;
        }
        let marker = hold_marker(&live.partition);
        if on {
            self.blobs
                .put(&marker, Bytes::new(), &PutOptions::default())
                .await?;
        } else {
            self.blobs.delete(&marker).await?;
        }
        Ok(keys.len() as u64)
    }

    async fn lock_partition(&self, live: &LivePartition) -> Result<u64> {
        let Some(lock) = self.config.lock else {
            return Ok(0);
        };
        let manifest = self.live_manifest(live).await?;
        let retention = Retention {
            mode: lock.mode,
            retain_until: now_micros().saturating_add(micros(lock.retain_for)),
        };
        let mut keys: Vec<String> = manifest.files.iter().map(|f| f.key.clone()).collect();
        keys.push(manifest_key(&live.partition, live.version));
        for key in &keys {
            self.blobs.set_retention(key, &retention).await?;
        }
        Ok(keys.len() as u64)
    }
}
