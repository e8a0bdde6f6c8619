//! The k-way merge compaction writes with: sorted files in, sorted files of about a target
//! size out. Blocking; runs on the blocking pool.
//!
//! Invariant: every input row comes out exactly once, in file order (`(key, ts, seq, node)`,
//! the order files are written in), and memory stays at one batch per input plus the
//! writer's row group, however large the inputs.

use std::{
    cmp::Ordering,
    collections::{BinaryHeap, VecDeque},
    path::{Path, PathBuf},
};

use strata_core::{Result, cold::ColdRow};

use super::objects::scratch_file;
use crate::codec::{self, FileStats, FileWriter, RowBatches, WriteSettings};

/// Rows of one file in file order, pulled batch by batch.
struct SortedFile {
    rows: VecDeque<ColdRow>,
    batches: RowBatches,
}

impl SortedFile {
    fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            rows: VecDeque::new(),
            batches: codec::row_batches(path, None)?,
        })
    }

    fn next(&mut self) -> Result<Option<ColdRow>> {
        loop {
            if let Some(r) = self.rows.pop_front() {
                return Ok(Some(r));
            }
            match self.batches.next() {
                Some(batch) => self.rows.extend(batch?),
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
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

/// k-way merge of the sorted files `inputs` (holding `expected_rows` rows together) into new
/// sorted temporary files of about `target` bytes each, in `scratch`.
pub(super) fn merge_sorted(
    inputs: &[PathBuf],
    target: u64,
    settings: WriteSettings,
    scratch: Option<&Path>,
    expected_rows: u64,
) -> Result<Vec<(tempfile::TempPath, FileStats)>> {
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
    let mut out = Vec::new();
    let mut current: Option<(tempfile::TempPath, FileWriter)> = None;
    let mut written = 0u64;
    while let Some(Head { row, source }) = heap.pop() {
        if let Some(next) = files[source].next()? {
            heap.push(Head { row: next, source });
        }
        if current.is_none() {
            let temp = scratch_file(scratch)?.into_temp_path();
            let writer =
                FileWriter::create(&temp, settings, expected_rows.saturating_sub(written))?;
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
