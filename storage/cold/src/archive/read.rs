//! Reads: aggregates, id lookups, range reads and partition listings, answered from the
//! versions the caller's live pointers name.
//!
//! Invariant: only files a live version lists are opened, each version checked against its
//! pointer's SHA-256 first; a listed file that is missing is an error, never a silently short
//! answer. Parquet decoding runs on the blocking pool, and a range read holds about one
//! batch per partition in flight, however large the partition.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use futures::{StreamExt, stream::BoxStream};
use strata_core::{
    Result,
    cold::{LivePartition, MANIFEST_ROOT, PartitionInfo, PartitionKey},
    hot::HotWatermark,
};
use strata_types::{AggregateQuery, PartialAggregate, StoredEvent, TimeRange};

use super::{
    ColdStore,
    lock::{hold_marker, is_hold_marker},
    objects::join,
};
use crate::{codec, manifest::ManifestFile};

/// Whether `f` may hold rows in `range`, per its time bounds.
fn file_overlaps(f: &ManifestFile, range: TimeRange) -> bool {
    f.max_ts >= range.from && f.min_ts < range.to
}

/// Whether the partition `l` points at is of `stream` (any when `None`) and its day
/// overlaps `range`.
fn partition_overlaps(l: &LivePartition, stream: Option<&str>, range: TimeRange) -> bool {
    let p = &l.partition;
    let r = p.range();
    stream.is_none_or(|s| s == p.stream) && r.from < range.to && range.from < r.to
}

/// The pointers among `parts` of `tenant` that [`partition_overlaps`] keeps.
fn relevant<'a>(
    parts: &'a [LivePartition],
    tenant: &'a str,
    stream: Option<&'a str>,
    range: TimeRange,
) -> impl Iterator<Item = &'a LivePartition> + 'a {
    parts
        .iter()
        .filter(move |l| l.partition.tenant == tenant && partition_overlaps(l, stream, range))
}

impl ColdStore {
    /// [`strata_core::cold::ColdTier::aggregate`].
    pub(super) async fn aggregate_parts(
        &self,
        query: &AggregateQuery,
        parts: &[LivePartition],
        watermark: &HotWatermark,
    ) -> Result<PartialAggregate> {
        let mut out = PartialAggregate::default();
        for live in relevant(parts, &query.tenant, query.stream.as_deref(), query.range) {
            let manifest = self.live_manifest(live).await?;
            for f in manifest
                .files
                .iter()
                .filter(|f| file_overlaps(f, query.range))
            {
                let copy = self.listed(&f.key).await?;
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

    /// [`strata_core::cold::ColdTier::get`].
    pub(super) async fn get_by_id(
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
                let found = self.find_id_in_file(&f.key, f.bytes, id).await?;
                if let Some(row) = found {
                    return Ok(Some(row.stored));
                }
            }
        }
        Ok(None)
    }

    /// The row with `id` in the archive file `key` of `size` bytes. A local directory's file
    /// is opened in place; a remote one is read with ranged GETs (footer, bloom filter, the
    /// candidate pages), never downloaded whole.
    async fn find_id_in_file(
        &self,
        key: &str,
        size: u64,
        id: &str,
    ) -> Result<Option<strata_core::cold::ColdRow>> {
        let id = id.to_owned();
        if self.blobs.local_path(key).is_some() {
            let copy = self.listed(key).await?;
            return tokio::task::spawn_blocking(move || codec::find_id(&copy.path, &id))
                .await
                .map_err(join("get"))?;
        }
        let object = super::ranged::RangedObject::new(
            Arc::clone(&self.blobs),
            key,
            size,
            tokio::runtime::Handle::current(),
        );
        let footers = self.footers.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || {
            let meta = object.metadata(&footers)?;
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::new_with_metadata(
                    object, meta,
                );
            codec::find_id_in(builder, &key, &id)
        })
        .await
        .map_err(join("get"))?
    }

    /// [`strata_core::cold::ColdTier::read`]: a task reads the files partition by partition
    /// in (day, stream) order into a channel of two batches; dropping the stream stops it.
    pub(super) fn read_range(
        &self,
        parts: Vec<LivePartition>,
        range: TimeRange,
        stream: Option<String>,
    ) -> BoxStream<'static, Result<StoredEvent>> {
        let mut todo: Vec<LivePartition> = parts
            .into_iter()
            .filter(|l| partition_overlaps(l, stream.as_deref(), range))
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
                    for f in manifest.files.iter().filter(|f| file_overlaps(f, range)) {
                        let copy = me.listed(&f.key).await?;
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

    /// [`strata_core::cold::ColdTier::partitions`].
    pub(super) async fn partition_infos(
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
            .filter(|m| is_hold_marker(&m.key))
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
}
