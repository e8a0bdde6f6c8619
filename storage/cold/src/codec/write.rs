//! Rows into Parquet files: encoding, the writer properties (zstd, statistics, bloom
//! filter, sorting columns) and the SHA-256 of the bytes as they are written.
//!
//! Invariant: a file's rows are in file order, `(key, ts, seq, node)`, and the [`FileStats`]
//! of a finished file describe exactly the bytes on disk (size and SHA-256 taken from the
//! stream that wrote them, the file fsync'd before they are returned).

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    sync::Arc,
};

use arrow_array::{
    ArrayRef, RecordBatch,
    builder::{
        Float64Builder, MapBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
    },
};
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, ZstdLevel},
    file::{
        metadata::SortingColumn,
        properties::{EnabledStatistics, WriterProperties},
    },
    schema::types::ColumnPath,
};
use sha2::{Digest, Sha256};
use strata_core::{Error, Result, Tier, cold::ColdRow};

use super::{BATCH_ROWS, col, map_names, pq, schema};

/// How files are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteSettings {
    /// zstd level.
    pub(crate) zstd_level: i32,
    /// Rows per row group.
    pub(crate) row_group_rows: usize,
}

impl Default for WriteSettings {
    fn default() -> Self {
        Self {
            zstd_level: 3,
            row_group_rows: 128 * 1024,
        }
    }
}

fn properties(settings: WriteSettings, expected_rows: u64) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(settings.zstd_level).map_err(pq("write"))?;
    let sorting = vec![
        SortingColumn {
            column_idx: col::KEY as i32,
            descending: false,
            nulls_first: false,
        },
        SortingColumn {
            column_idx: col::TS as i32,
            descending: false,
            nulls_first: false,
        },
    ];
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(settings.row_group_rows.max(1)))
        .set_sorting_columns(Some(sorting))
        .set_column_bloom_filter_enabled(ColumnPath::from("id"), true)
        .set_column_bloom_filter_fpp(ColumnPath::from("id"), 0.01)
        .set_column_bloom_filter_max_ndv(
            ColumnPath::from("id"),
            expected_rows.clamp(1, settings.row_group_rows as u64),
        )
        // Payloads are unique per event: a dictionary would only be thrown away.
        .set_column_dictionary_enabled(ColumnPath::from("payload"), false)
        .set_column_dictionary_enabled(ColumnPath::from("id"), false)
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
        .build())
}

/// The order rows take in a file.
pub(crate) fn sort_rows(rows: &mut [ColdRow]) {
    rows.sort_by(|a, b| {
        let (x, y) = (&a.stored, &b.stored);
        (&x.event.key, x.event.ts, x.seq, &a.node).cmp(&(&y.event.key, y.event.ts, y.seq, &b.node))
    });
}

/// One batch of rows as Arrow columns.
pub(crate) fn to_batch(rows: &[ColdRow]) -> Result<RecordBatch> {
    let n = rows.len();
    let mut tenant = StringBuilder::with_capacity(n, n * 8);
    let mut stream = StringBuilder::with_capacity(n, n * 8);
    let mut key = StringBuilder::with_capacity(n, n * 16);
    let mut id = StringBuilder::with_capacity(n, n * 16);
    let mut ts = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut value = Float64Builder::with_capacity(n);
    let mut attrs = MapBuilder::new(
        Some(map_names()),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let mut payload = StringBuilder::with_capacity(n, n * 64);
    let mut ingest = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut node = StringBuilder::with_capacity(n, n * 8);
    let mut seq = UInt64Builder::with_capacity(n);
    for r in rows {
        let e = &r.stored.event;
        tenant.append_value(&e.tenant);
        stream.append_value(&e.stream);
        key.append_value(&e.key);
        id.append_value(&e.id);
        ts.append_value(e.ts);
        value.append_option(e.value);
        for (k, v) in &e.attrs {
            attrs.keys().append_value(k);
            attrs.values().append_value(v);
        }
        attrs
            .append(true)
            .map_err(|e| Error::storage(Tier::Cold, "encode", e))?;
        payload.append_option(e.payload.as_deref());
        ingest.append_value(r.stored.ingest_ts);
        node.append_value(&r.node);
        seq.append_value(r.stored.seq);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(tenant.finish()),
        Arc::new(stream.finish()),
        Arc::new(key.finish()),
        Arc::new(id.finish()),
        Arc::new(ts.finish()),
        Arc::new(value.finish()),
        Arc::new(attrs.finish()),
        Arc::new(payload.finish()),
        Arc::new(ingest.finish()),
        Arc::new(node.finish()),
        Arc::new(seq.finish()),
    ];
    RecordBatch::try_new(schema(), columns).map_err(|e| Error::storage(Tier::Cold, "encode", e))
}

/// A `Write` that hashes and counts what passes through.
struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a finished file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStats {
    pub(crate) rows: u64,
    pub(crate) bytes: u64,
    pub(crate) sha256: String,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
}

/// Writes rows (already in file order) into one Parquet file, hashing as it goes.
pub(crate) struct FileWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    rows: u64,
    min_ts: i64,
    max_ts: i64,
    pending: Vec<ColdRow>,
}

impl FileWriter {
    /// A writer creating `path`, sized for about `expected_rows`.
    pub(crate) fn create(path: &Path, settings: WriteSettings, expected_rows: u64) -> Result<Self> {
        let file = File::create(path)
            .map_err(|e| Error::storage(Tier::Cold, "write", format!("{}: {e}", path.display())))?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        let writer =
            ArrowWriter::try_new(sink, schema(), Some(properties(settings, expected_rows)?))
                .map_err(pq("write"))?;
        Ok(Self {
            writer,
            rows: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            pending: Vec::with_capacity(BATCH_ROWS),
        })
    }

    /// Appends one row (rows must come in file order).
    pub(crate) fn push(&mut self, row: ColdRow) -> Result<()> {
        self.pending.push(row);
        if self.pending.len() >= BATCH_ROWS {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        for r in &self.pending {
            self.min_ts = self.min_ts.min(r.stored.event.ts);
            self.max_ts = self.max_ts.max(r.stored.event.ts);
        }
        let batch = to_batch(&self.pending)?;
        self.writer.write(&batch).map_err(pq("write"))?;
        self.rows += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes written so far plus what is buffered for the current row group: the file's
    /// size if it were closed now, roughly.
    pub(crate) fn approx_size(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
            + self.pending.len() as u64 * 64
    }

    /// Rows pushed so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows + self.pending.len() as u64
    }

    /// Closes the file (fsync'd) and returns what it holds.
    pub(crate) fn finish(mut self) -> Result<FileStats> {
        self.flush_pending()?;
        let sink = self.writer.into_inner().map_err(pq("write"))?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner
            .into_inner()
            .map_err(|e| Error::storage(Tier::Cold, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::storage(Tier::Cold, "write", e))?;
        Ok(FileStats {
            rows: self.rows,
            bytes,
            sha256: hex::encode(hasher.finalize()),
            min_ts: self.min_ts,
            max_ts: self.max_ts,
        })
    }
}

/// Sorts `rows` into file order and writes them as one file.
pub(crate) fn write_file(
    path: &Path,
    rows: &mut [ColdRow],
    settings: WriteSettings,
) -> Result<FileStats> {
    sort_rows(rows);
    let mut w = FileWriter::create(path, settings, rows.len() as u64)?;
    for r in rows.iter() {
        w.push(r.clone())?;
    }
    w.finish()
}
