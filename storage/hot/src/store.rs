//! [`HotStore`]: opening, the async trait surface, and shutdown.

use std::{
    hash::BuildHasher,
    sync::{Arc, Mutex, PoisonError, atomic::Ordering},
    thread::JoinHandle,
};

use async_trait::async_trait;
use redb::Database;
use strata_core::{
    Error, Result, Tier,
    hot::{AppendOutcome, AppendRequest, FlushBatch, HotPartial, HotStats, HotTier, SourceOffset},
};
use strata_types::{AggregateQuery, StoredEvent, TimeRange};
use tokio::sync::{mpsc, oneshot};

use crate::{
    HotConfig,
    error::{shutting_down, storage},
    segment::new_cache,
    shared::{Shared, SharedParts},
    writer::{Command, Writer, rebuild},
};

/// Smallest page cache given to redb, whatever the memory budget.
const MIN_REDB_CACHE: u64 = 1024 * 1024;

/// The hot tier: a redb group-commit log plus in-memory window segments. See the crate docs.
pub struct HotStore {
    shared: Arc<Shared>,
    /// `None` only while dropping, which is what lets the writer see the queue close.
    tx: Option<mpsc::Sender<Command>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotStore")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl HotStore {
    /// Opens (or creates) the store at `config.path` and rebuilds the in-memory index from
    /// the log. Blocking: call it from `spawn_blocking` or before the runtime starts.
    pub fn open(config: HotConfig) -> Result<Self> {
        let window = strata_types::time::duration_micros(config.window);
        if window < 1 {
            return Err(Error::storage(
                Tier::Hot,
                "open",
                "the window must be at least one microsecond wide",
            ));
        }
        if let Some(parent) = config.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(storage("open"))?;
        }
        let redb_cache = (config.memory_budget / 8).max(MIN_REDB_CACHE);
        let db = Database::builder()
            .set_cache_size(usize::try_from(redb_cache).unwrap_or(usize::MAX))
            .create(&config.path)
            .map_err(storage("open"))?;
        // A fresh random seed per open; see `state::IdHash` for why that is safe.
        let seed = std::collections::hash_map::RandomState::new().hash_one(config.path.as_os_str());
        let state = rebuild(&db, seed, window)?;
        let rest = config.memory_budget - config.memory_budget / 8;
        let db = Arc::new(db);
        let shared = Arc::new(Shared::new(SharedParts {
            state,
            cache: new_cache(rest / 2),
            db: Arc::clone(&db),
            seed,
            window,
            disk_budget: config.disk_budget,
            memory_budget: config.memory_budget,
            index_budget: rest - rest / 2,
        }));
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let writer = Writer::new(Arc::clone(&shared), db, rx, config.max_commit_events);
        let handle = std::thread::Builder::new()
            .name("strata-hot-writer".into())
            .spawn(move || writer.run())
            .map_err(storage("open"))?;
        shared.record_gauges();
        Ok(Self {
            shared,
            tx: Some(tx),
            writer: Mutex::new(Some(handle)),
        })
    }

    fn sender(&self) -> Result<&mpsc::Sender<Command>> {
        if self.shared.closing() {
            return Err(shutting_down());
        }
        self.tx.as_ref().ok_or_else(shutting_down)
    }

    /// Runs a blocking read on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(storage(op))?
    }
}

#[async_trait]
impl HotTier for HotStore {
    #[tracing::instrument(skip_all, fields(events = request.events.len()))]
    async fn append(&self, request: AppendRequest) -> Result<Vec<AppendOutcome>> {
        if request.events.is_empty() && request.offsets.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.sender()?
            .send(Command::Append { request, reply })
            .await
            .map_err(|_| shutting_down())?;
        // A dropped reply means the writer stopped before answering.
        answer.await.map_err(|_| shutting_down())?
    }

    #[tracing::instrument(skip_all)]
    async fn get(&self, tenant: &str, id: &str) -> Result<Option<StoredEvent>> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.blocking("get", move |s| s.get(&tenant, &id)).await
    }

    #[tracing::instrument(skip_all, fields(tenant = %query.tenant))]
    async fn aggregate(&self, query: &AggregateQuery) -> Result<HotPartial> {
        let query = query.clone();
        self.blocking("aggregate", move |s| s.aggregate(&query))
            .await
    }

    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    async fn scan(
        &self,
        tenant: &str,
        range: TimeRange,
        stream: Option<&str>,
    ) -> Result<Vec<StoredEvent>> {
        let tenant = tenant.to_owned();
        let stream = stream.map(str::to_owned);
        self.blocking("scan", move |s| s.scan(&tenant, range, stream.as_deref()))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn source_offsets(&self, source: &str) -> Result<Vec<SourceOffset>> {
        let source = source.to_owned();
        self.blocking("source offsets", move |s| s.source_offsets(&source))
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn pending_flush(
        &self,
        max_events: usize,
        ingested_before: i64,
    ) -> Result<Option<FlushBatch>> {
        self.blocking("pending flush", move |s| {
            s.pending_flush(max_events, ingested_before)
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn release(&self, upto_seq: u64) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        // Release goes through the writer so it serialises with commits. It is allowed while
        // closing: the flusher may finish its last batch during shutdown.
        self.tx
            .as_ref()
            .ok_or_else(shutting_down)?
            .send(Command::Release {
                upto: upto_seq,
                reply,
            })
            .await
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }

    fn stats(&self) -> HotStats {
        self.shared.stats()
    }

    #[tracing::instrument(skip_all)]
    async fn shutdown(&self) -> Result<()> {
        self.shared.closing.store(true, Ordering::Release);
        if let Some(tx) = &self.tx {
            let (reply, done) = oneshot::channel();
            if tx.send(Command::Shutdown { reply }).await.is_ok() {
                // Dropped without an answer only if the writer died; joining tells.
                let _ = done.await;
            }
        }
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let joined = tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(storage("shutdown"))?;
            if joined.is_err() {
                self.shared.close_db();
                return Err(Error::storage(
                    Tier::Hot,
                    "shutdown",
                    "the writer thread panicked",
                ));
            }
        }
        self.shared.close_db();
        Ok(())
    }
}

impl Drop for HotStore {
    fn drop(&mut self) {
        // Closing the queue makes the writer finish what is queued and exit; waiting for it
        // frees the file for the next open as soon as the store is gone.
        self.tx.take();
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        self.shared.close_db();
    }
}
