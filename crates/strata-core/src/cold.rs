//! The cold tier seams: [`BlobStore`], the object store the archive lives in, and
//! [`ColdTier`], the Parquet archive on top of it that the exporter, the planner and the
//! archive API talk to.
//!
//! Contract of a [`BlobStore`] (checked by [`crate::conformance::cold`]):
//!
//! * Keys are `/`-separated relative paths (`tenant=acme/stream=click/date=2026-11-20/…`);
//!   no leading `/`, no `.`/`..` segments, no empty segments.
//! * [`BlobStore::put`] is atomic: a reader sees the old object, or the whole new one, never a
//!   part; a crash mid-put leaves nothing under the key. With [`PutOptions::sha256`] set the
//!   store checks the bytes against it and stores nothing on a mismatch.
//! * [`BlobStore::list`] returns every object under a prefix, in key order.
//! * An object under retention (until its retain-until time) or legal hold cannot be
//!   deleted: [`BlobStore::delete`] fails and the object stays readable.
//!
//! Contract of a [`ColdTier`]: partitions are `(tenant, stream, UTC day)`. Every change to a
//! partition writes new immutable files and then a new manifest version that lists the live
//! files with their checksums and the SHA-256 of the previous version (a hash chain). Which
//! version is live is not decided by the archive but by the warm tier's pointer
//! ([`LivePartition`]), recorded in the same warm transaction that drops the exported rows:
//! reads take the pointers the warm tier answered and look at exactly those versions, so a
//! version written by an export that crashed before its warm commit is never read.

use std::{fmt, ops::Range, path::Path};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use crate::{Error, Result, Tier, hot::HotWatermark};

/// Microseconds in a UTC day (the archive's partition length).
pub const DAY_MICROS: i64 = strata_types::time::DAY;

/// Object Lock retention mode (S3 semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionMode {
    /// Users with a special permission may shorten or remove the retention.
    Governance,
    /// Nobody can delete the object version before its retain-until time.
    Compliance,
}

impl RetentionMode {
    /// The S3 name (`GOVERNANCE`, `COMPLIANCE`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }
}

impl std::str::FromStr for RetentionMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "GOVERNANCE" => Ok(Self::Governance),
            "COMPLIANCE" => Ok(Self::Compliance),
            other => Err(format!(
                "`{other}` is not an Object Lock mode: use GOVERNANCE or COMPLIANCE"
            )),
        }
    }
}

/// Retention applied to an object when it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retention {
    /// The mode.
    pub mode: RetentionMode,
    /// Until when (epoch micros) the object cannot be deleted.
    pub retain_until: i64,
}

/// How an object is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// SHA-256 of the body (lowercase hex); the store verifies it and stores nothing on a
    /// mismatch. S3 sends it as the upload checksum, so the server checks it too.
    pub sha256: Option<String>,
    /// Object Lock retention, if any.
    pub retention: Option<Retention>,
    /// Place a legal hold on the object.
    pub legal_hold: bool,
}

/// What a store knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last write, epoch micros.
    pub last_modified: i64,
}

/// An object store holding the archive. Backends are picked by URL (`file://<dir>`,
/// `s3://bucket/prefix`). See the module docs for the contract.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug + 'static {
    /// Where this store points, without secrets (for logs and reports).
    fn describe(&self) -> String;

    /// Writes `body` under `key` atomically.
    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> Result<ObjectMeta>;

    /// The whole object, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Bytes `range` of the object (clamped to its end), or `None` when there is no object.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>>;

    /// The object's metadata, or `None`.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>>;

    /// Removes the object (its current version on a versioned bucket, so Object Lock
    /// applies). Deleting a missing key succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Sets or clears the legal hold on an existing object.
    async fn set_legal_hold(&self, key: &str, on: bool) -> Result<()>;

    /// Applies (or extends) Object Lock retention on an existing object.
    async fn set_retention(&self, key: &str, retention: &Retention) -> Result<()>;

    /// Writes the file at `path` under `key`. The default reads it into memory; backends
    /// override it to stream (S3 multipart upload).
    async fn put_file(&self, key: &str, path: &Path, options: &PutOptions) -> Result<ObjectMeta> {
        let body = tokio::fs::read(path)
            .await
            .map_err(|e| Error::storage(Tier::Cold, "put_file", e))?;
        self.put(key, Bytes::from(body), options).await
    }

    /// Copies the object to the local file `path`; `false` when there is no object. The
    /// default buffers it; backends override it to stream.
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<bool> {
        let Some(body) = self.get(key).await? else {
            return Ok(false);
        };
        tokio::fs::write(path, &body)
            .await
            .map_err(|e| Error::storage(Tier::Cold, "get_to_file", e))?;
        Ok(true)
    }

    /// A local file holding the object, when the store is a local directory (readers then
    /// open it in place instead of copying it).
    fn local_path(&self, _key: &str) -> Option<std::path::PathBuf> {
        None
    }
}

/// Checks a blob key: relative, `/`-separated, no empty, `.` or `..` segments, no
/// backslashes or control characters.
pub fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains('\\')
        || key.chars().any(char::is_control)
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        return Err(Error::storage(
            Tier::Cold,
            "key",
            format!("invalid object key `{}`", key.escape_debug()),
        ));
    }
    Ok(())
}

/// One archive partition: a tenant's stream on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    /// Tenant.
    pub tenant: String,
    /// Stream.
    pub stream: String,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
}

impl PartitionKey {
    /// The partition holding an event of `tenant`/`stream` at `ts`.
    pub fn of(tenant: &str, stream: &str, ts: i64) -> Self {
        Self {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            day: ts.div_euclid(DAY_MICROS),
        }
    }

    /// The day as `YYYY-MM-DD`.
    pub fn date(&self) -> String {
        format_day(self.day)
    }

    /// The event-time range the partition covers.
    pub fn range(&self) -> TimeRange {
        TimeRange {
            from: self.day * DAY_MICROS,
            to: (self.day + 1) * DAY_MICROS,
        }
    }

    /// `tenant=T/stream=S/date=YYYY-MM-DD/`: where the partition's Parquet files live.
    pub fn data_prefix(&self) -> String {
        format!(
            "tenant={}/stream={}/date={}/",
            self.tenant,
            self.stream,
            self.date()
        )
    }

    /// `_manifests/tenant=T/stream=S/date=YYYY-MM-DD/`: where its manifest versions live.
    pub fn manifest_prefix(&self) -> String {
        format!("{MANIFEST_ROOT}/{}", self.data_prefix())
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.tenant, self.stream, self.date())
    }
}

/// Top-level folder of the manifests; a leading `_` keeps Hive-style readers (DuckDB, Spark)
/// from taking it for data.
pub const MANIFEST_ROOT: &str = "_manifests";

/// `YYYY-MM-DD` of a day number.
pub fn format_day(day: i64) -> String {
    let s = strata_types::time::format_rfc3339(day.saturating_mul(DAY_MICROS));
    s.get(..10).unwrap_or(&s).to_owned()
}

/// The day number of `YYYY-MM-DD`.
pub fn parse_day(date: &str) -> Option<i64> {
    let micros = strata_types::time::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    (micros.rem_euclid(DAY_MICROS) == 0).then(|| micros.div_euclid(DAY_MICROS))
}

/// The warm tier's pointer to a partition's live manifest version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LivePartition {
    /// The partition.
    pub partition: PartitionKey,
    /// The live manifest version (1, 2, ...).
    pub version: u64,
    /// SHA-256 (hex) of that manifest's bytes, so a reader detects a swapped manifest.
    pub manifest_sha256: String,
}

/// An exported row: the stored event and the node whose hot tier ingested it.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdRow {
    /// The ingesting node.
    pub node: String,
    /// The event.
    pub stored: StoredEvent,
}

/// Pages of rows handed to [`ColdTier::export`].
pub type RowPages<'a> = BoxStream<'a, Result<Vec<ColdRow>>>;

/// What a partition holds, as `archive ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: PartitionKey,
    /// The manifest version described.
    pub version: u64,
    /// Parquet files.
    pub files: u64,
    /// Rows in them.
    pub rows: u64,
    /// Bytes of them.
    pub bytes: u64,
    /// Smallest event time (epoch micros).
    pub min_ts: i64,
    /// Largest event time (epoch micros).
    pub max_ts: i64,
    /// Whether the partition's files carry a legal hold.
    pub legal_hold: bool,
}

/// A problem `archive verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyIssue {
    /// The object concerned.
    pub key: String,
    /// What is wrong, for people.
    pub detail: String,
}

/// What `archive verify` found for a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Tenant verified.
    pub tenant: String,
    /// Partitions checked.
    pub partitions: u64,
    /// Manifest versions whose chain was checked.
    pub manifests: u64,
    /// Files whose checksum was recomputed.
    pub files_checked: u64,
    /// Bytes read to recompute checksums.
    pub bytes_checked: u64,
    /// Live files whose content no longer matches the manifest's SHA-256 (or size).
    pub altered: Vec<VerifyIssue>,
    /// Live files the manifest lists that are not in the store.
    pub missing: Vec<VerifyIssue>,
    /// Data files under the tenant that no manifest version lists and that are older than
    /// the grace period (files of an export still in progress are younger).
    pub extra: Vec<VerifyIssue>,
    /// Manifest versions that are missing, unreadable, or whose previous-version hash does
    /// not match (the history was rewritten), or a live pointer that does not match.
    pub chain_breaks: Vec<VerifyIssue>,
    /// Files listed only by superseded versions and not yet deleted (left by a compaction
    /// interrupted after its commit; the next compaction pass removes them). Not an error.
    pub superseded: Vec<VerifyIssue>,
}

impl VerifyReport {
    /// Whether nothing was altered, missing, extra or broken.
    pub fn is_ok(&self) -> bool {
        self.altered.is_empty()
            && self.missing.is_empty()
            && self.extra.is_empty()
            && self.chain_breaks.is_empty()
    }
}

/// Progress callback for long archive operations: `(done, total)` in bytes.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A compaction written to the archive but not live yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compaction {
    /// The new manifest version, to be made live through the warm pointer.
    pub live: LivePartition,
    /// Files the new version no longer lists. [`ColdTier::clean_partition`] removes them
    /// once the new version has been live for the grace period (reads that resolved the
    /// previous version may still open them until then).
    pub obsolete: Vec<String>,
    /// Files merged.
    pub merged_files: u64,
    /// Files written.
    pub written_files: u64,
}

/// The Parquet archive. See the module docs for the contract.
#[async_trait]
pub trait ColdTier: Send + Sync + fmt::Debug + 'static {
    /// Where the archive lives (for logs).
    fn describe(&self) -> String;

    /// Writes the rows of `pages` (all of `partition`, any order) as new Parquet files and
    /// then manifest version `base.version + 1` (1 without a base) listing the base's files
    /// plus the new ones; reads everything back and checks the checksums before returning
    /// the pointer to make live. A leftover version of that number from an export that never
    /// went live is replaced, and its files removed. Returns `None` when `pages` held no row.
    async fn export(
        &self,
        partition: &PartitionKey,
        base: Option<&LivePartition>,
        pages: RowPages<'_>,
    ) -> Result<Option<LivePartition>>;

    /// Merges the small files of the live version into files of the target size and writes
    /// the next manifest version; `None` when nothing is worth merging or the partition may
    /// be under Object Lock.
    async fn compact(&self, live: &LivePartition) -> Result<Option<Compaction>>;

    /// Deletes objects no live version lists any more (after a compaction went live).
    async fn delete_objects(&self, keys: &[String]) -> Result<()>;

    /// Removes what exports and compactions that never went live left under `partition`:
    /// files of versions above the live one (or all versions, without a live one) older
    /// than the grace period, and superseded files of older versions once the live version
    /// is older than the grace period. Returns objects removed.
    async fn clean_partition(
        &self,
        partition: &PartitionKey,
        live: Option<&LivePartition>,
    ) -> Result<u64>;

    /// Partial aggregate of `query` over the given live partitions (those outside the
    /// query's tenant, stream or range are skipped), restricted by `watermark` like a warm
    /// read: rows of the watermark's node above its `released_upto` are left to hot. (The
    /// exporter never archives unreleased rows, but a query that read hot before a release
    /// and cold after the export of the released rows would otherwise count them twice.)
    async fn aggregate(
        &self,
        query: &AggregateQuery,
        parts: &[LivePartition],
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate>;

    /// The event with this tenant and id among `parts`.
    async fn get(
        &self,
        tenant: &str,
        id: &str,
        parts: &[LivePartition],
    ) -> Result<Option<StoredEvent>>;

    /// Events of `parts` in `range` (optionally one stream): partition by partition in
    /// (day, stream) order, and within a partition file by file, each in the files' `(key,
    /// ts)` order. Memory stays at about one row group, however large the partition; callers
    /// that need global event-time order sort per day or use replay. Dropping the stream
    /// stops the reading.
    fn read(
        &self,
        parts: Vec<LivePartition>,
        range: TimeRange,
        stream: Option<String>,
    ) -> BoxStream<'static, Result<StoredEvent>>;

    /// What each partition holds, per its live version (or, for partitions not in `parts`,
    /// its highest version). `parts` empty: every partition of the tenant at its highest
    /// version.
    async fn partitions(&self, tenant: &str, parts: &[LivePartition])
    -> Result<Vec<PartitionInfo>>;

    /// Recomputes every checksum of `tenant`'s archive and walks each manifest chain. The
    /// live version of a partition is the one in `parts`, else its highest version.
    async fn verify(
        &self,
        tenant: &str,
        parts: &[LivePartition],
        progress: Option<Progress<'_>>,
    ) -> Result<VerifyReport>;

    /// Sets or clears the legal hold on every file and manifest of the partition's live
    /// version; returns the objects changed.
    async fn set_legal_hold(&self, live: &LivePartition, on: bool) -> Result<u64>;

    /// Applies the configured Object Lock retention to every file and manifest of the
    /// partition's live version (a no-op returning 0 without retention configured). Runs
    /// after compaction, so maintenance never has to delete a locked object.
    async fn lock_partition(&self, live: &LivePartition) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_days() {
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a\\b", "a\nb"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        check_key("tenant=a/stream=b/date=2026-11-20/part-1.parquet").unwrap();
        let p = PartitionKey::of("acme", "click", 1_795_651_200_000_000 + 5);
        assert_eq!(p.date(), "2026-11-26");
        assert_eq!(parse_day("2026-11-26"), Some(p.day));
        assert_eq!(parse_day("2026-13-20"), None);
        assert_eq!(p.data_prefix(), "tenant=acme/stream=click/date=2026-11-26/");
        assert_eq!(
            p.manifest_prefix(),
            "_manifests/tenant=acme/stream=click/date=2026-11-26/"
        );
        assert!(p.range().contains(1_795_651_200_000_000));
        assert_eq!(
            PartitionKey::of("a", "b", -1).date(),
            "1969-12-31",
            "negative times floor to the previous day"
        );
        assert_eq!("compliance".parse(), Ok(RetentionMode::Compliance));
    }
}
