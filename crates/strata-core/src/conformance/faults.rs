//! Fault-injecting wrappers: stores that wrap a store, implement the same trait and fail on
//! purpose when told to (object_store's `ThrottledStore`/`LimitStore` pattern). Tests of the
//! layers above the seams (flusher, exporter, late writer, planner) use them to cut an
//! operation before or after its commit; with no fault armed they forward every call, and
//! the backend crates run the conformance suites on them to prove it.
//!
//! Every injected failure is [`Error::Unavailable`] with a message starting `injected:`, the
//! error a real outage produces, so the code under test takes its real recovery path.

use std::{
    collections::HashMap,
    ops::Range,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bytes::Bytes;
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use crate::{
    Error, Result, Tier,
    cold::{BlobStore, LivePartition, ObjectMeta, PartitionKey, PutOptions, Retention},
    handoff::{ColdCommit, ColdHandoff, ExportMarks, ExportPage, WarmStore},
    hot::{FlushBatch, HotWatermark},
    warm::{ScanCursor, ScanPage, ScanRequest, WarmMode, WarmTier, WriteOutcome},
};

/// The faults armed for one operation of a wrapper. All counters start at zero: nothing
/// fails until a test arms it.
#[derive(Debug, Default)]
pub struct Fault {
    /// Calls that fail without reaching the inner store (it is unreachable).
    before: AtomicUsize,
    /// Calls that reach the inner store, commit, and then report failure (the connection
    /// was lost after the commit, or the process died between the commit and its answer).
    after: AtomicUsize,
    /// While set: how many more calls succeed before every call fails (until [`Fault::heal`]).
    broken_after: Mutex<Option<usize>>,
    /// Sleep after the inner call returned (widens race windows).
    delay: Mutex<Duration>,
    /// Calls made, failed or not.
    calls: AtomicUsize,
}

impl Fault {
    /// The next `n` calls fail before reaching the inner store.
    pub fn fail_before(&self, n: usize) {
        self.before.store(n, Ordering::SeqCst);
    }

    /// The next `n` calls commit in the inner store and then report failure.
    pub fn fail_after(&self, n: usize) {
        self.after.store(n, Ordering::SeqCst);
    }

    /// `ok` more calls succeed, then every call fails before reaching the inner store until
    /// [`Fault::heal`].
    pub fn break_after(&self, ok: usize) {
        *lock(&self.broken_after) = Some(ok);
    }

    /// Disarms [`Fault::break_after`] and the one-shot counters.
    pub fn heal(&self) {
        *lock(&self.broken_after) = None;
        self.before.store(0, Ordering::SeqCst);
        self.after.store(0, Ordering::SeqCst);
    }

    /// Every call sleeps `delay` after the inner call returned.
    pub fn delay_after(&self, delay: Duration) {
        *lock(&self.delay) = delay;
    }

    /// Calls made so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Runs `call` with the armed faults applied.
    pub async fn run<T>(
        &self,
        tier: Tier,
        op: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let broken = {
            let mut b = lock(&self.broken_after);
            match b.as_mut() {
                Some(0) => true,
                Some(n) => {
                    *n -= 1;
                    false
                }
                None => false,
            }
        };
        if broken || take(&self.before) {
            return Err(injected(tier, op, "unreachable"));
        }
        let out = call.await?;
        let delay = *lock(&self.delay);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if take(&self.after) {
            return Err(injected(tier, op, "connection lost after the commit"));
        }
        Ok(out)
    }
}

fn take(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A test that panicked while holding the lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn injected(tier: Tier, op: &'static str, what: &str) -> Error {
    Error::Unavailable {
        tier,
        op,
        message: format!("injected: {what}"),
    }
}

/// A warm store (tier and hand-off) whose writes and cold commits fail when armed.
#[derive(Debug)]
pub struct FaultyWarm {
    inner: Arc<dyn WarmStore>,
    /// Faults of [`WarmTier::write_batch`].
    pub write_batch: Fault,
    /// Faults of [`ColdHandoff::commit_cold`].
    pub commit_cold: Fault,
}

impl FaultyWarm {
    /// Wraps `inner` with nothing armed.
    pub fn new(inner: Arc<dyn WarmStore>) -> Self {
        Self {
            inner,
            write_batch: Fault::default(),
            commit_cold: Fault::default(),
        }
    }
}

#[async_trait]
impl WarmTier for FaultyWarm {
    fn mode(&self) -> WarmMode {
        self.inner.mode()
    }
    async fn write_batch(&self, node: &str, batch: &FlushBatch) -> Result<WriteOutcome> {
        self.write_batch
            .run(
                Tier::Warm,
                "write_batch",
                self.inner.write_batch(node, batch),
            )
            .await
    }
    async fn committed_upto(&self, node: &str) -> Result<u64> {
        self.inner.committed_upto(node).await
    }
    async fn aggregate(&self, q: &AggregateQuery, wm: &HotWatermark) -> Result<PartialAggregate> {
        self.inner.aggregate(q, wm).await
    }
    async fn get(&self, tenant: &str, id: &str, wm: &HotWatermark) -> Result<Option<StoredEvent>> {
        self.inner.get(tenant, id, wm).await
    }
    async fn existing_ids(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        self.inner.existing_ids(tenant, ids).await
    }
    async fn scan(&self, request: &ScanRequest, wm: &HotWatermark) -> Result<ScanPage> {
        self.inner.scan(request, wm).await
    }
    async fn drop_before(&self, before: i64) -> Result<u64> {
        self.inner.drop_before(before).await
    }
    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }
}

#[async_trait]
impl ColdHandoff for FaultyWarm {
    async fn cold_partitions(
        &self,
        tenant: Option<&str>,
        range: Option<TimeRange>,
    ) -> Result<Vec<LivePartition>> {
        self.inner.cold_partitions(tenant, range).await
    }
    async fn export_candidates(&self, before: i64, limit: usize) -> Result<Vec<PartitionKey>> {
        self.inner.export_candidates(before, limit).await
    }
    async fn flush_marks(&self) -> Result<ExportMarks> {
        self.inner.flush_marks().await
    }
    async fn export_page(
        &self,
        p: &PartitionKey,
        marks: &ExportMarks,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<ExportPage> {
        self.inner.export_page(p, marks, after, limit).await
    }
    async fn commit_cold(&self, commit: &ColdCommit) -> Result<u64> {
        self.commit_cold
            .run(Tier::Warm, "commit_cold", self.inner.commit_cold(commit))
            .await
    }
}

/// A blob store whose puts fail when armed (a crash part way through writing an export's
/// files or its manifest, an object store that went away).
#[derive(Debug)]
pub struct FaultyBlobs {
    inner: Arc<dyn BlobStore>,
    /// Faults of [`BlobStore::put`] and [`BlobStore::put_file`].
    pub put: Fault,
}

impl FaultyBlobs {
    /// Wraps `inner` with nothing armed.
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self {
            inner,
            put: Fault::default(),
        }
    }
}

#[async_trait]
impl BlobStore for FaultyBlobs {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> Result<ObjectMeta> {
        self.put
            .run(Tier::Cold, "put", self.inner.put(key, body, options))
            .await
    }
    async fn put_file(&self, key: &str, path: &Path, options: &PutOptions) -> Result<ObjectMeta> {
        self.put
            .run(Tier::Cold, "put", self.inner.put_file(key, path, options))
            .await
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        self.inner.head(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn set_legal_hold(&self, key: &str, on: bool) -> Result<()> {
        self.inner.set_legal_hold(key, on).await
    }
    async fn set_retention(&self, key: &str, retention: &Retention) -> Result<()> {
        self.inner.set_retention(key, retention).await
    }
    async fn get_to_file(&self, key: &str, path: &Path) -> Result<bool> {
        self.inner.get_to_file(key, path).await
    }
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.inner.local_path(key)
    }
}
