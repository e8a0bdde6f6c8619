//! Rows ⇄ Parquet: the archive's file format.
//!
//! Schema (one row per event):
//!
//! | column | type | notes |
//! | --- | --- | --- |
//! | `tenant`, `stream`, `key`, `id`, `node` | string | dictionary-encoded where it pays |
//! | `ts`, `ingest_ts` | timestamp(µs, UTC) | |
//! | `value` | double, nullable | |
//! | `attrs` | map<string, string> | |
//! | `payload` | string, nullable | the client's JSON, byte for byte |
//! | `seq` | uint64 | the ingesting node's sequence number |
//!
//! `attrs` is a Parquet MAP rather than a JSON string: DuckDB reads it as `MAP(VARCHAR,
//! VARCHAR)` (`attrs['page']`), Spark and Athena as `map<string,string>`, with no JSON
//! extension or parsing, and its keys and values get dictionary encoding and statistics
//! like any other string column.
//!
//! Files are zstd-compressed, sorted by `(key, ts)` (declared in the footer's sorting
//! columns), carry page-level statistics (column and offset indexes) and a bloom filter on
//! `id`.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    sync::Arc,
};

use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, MapArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
    builder::{
        Float64Builder, MapBuilder, MapFieldNames, StringBuilder, TimestampMicrosecondBuilder,
        UInt64Builder,
    },
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::{
    arrow::{
        ArrowWriter, ProjectionMask,
        arrow_reader::{
            ArrowPredicateFn, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowFilter,
        },
    },
    basic::{Compression, ZstdLevel},
    file::{
        metadata::{PageIndexPolicy, ParquetMetaData, SortingColumn},
        properties::{EnabledStatistics, WriterProperties},
        statistics::Statistics,
    },
    schema::types::ColumnPath,
};
use sha2::{Digest, Sha256};
use strata_core::{Error, Result, Tier, cold::ColdRow, warm::HotWatermark};
use strata_types::{AggregateQuery, Event, GroupBy, PartialAggregate, StoredEvent, TimeRange};

/// Positions of the columns the readers push projections and predicates down to.
pub(crate) mod col {
    pub(crate) const STREAM: usize = 1;
    pub(crate) const KEY: usize = 2;
    pub(crate) const ID: usize = 3;
    pub(crate) const TS: usize = 4;
    pub(crate) const VALUE: usize = 5;
    pub(crate) const ATTRS: usize = 6;
    pub(crate) const NODE: usize = 9;
    pub(crate) const SEQ: usize = 10;
}

/// Rows per Arrow batch when writing and reading.
const BATCH_ROWS: usize = 8192;

fn corrupt(what: impl Into<String>) -> Error {
    Error::Corrupt {
        tier: Tier::Cold,
        what: what.into(),
    }
}

fn pq(op: &'static str) -> impl Fn(parquet::errors::ParquetError) -> Error {
    move |e| Error::storage(Tier::Cold, op, e)
}

fn map_names() -> MapFieldNames {
    MapFieldNames {
        entry: "key_value".into(),
        key: "key".into(),
        value: "value".into(),
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The archive's Arrow schema.
pub(crate) fn schema() -> SchemaRef {
    let entries = Field::new(
        "key_value",
        DataType::Struct(
            vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Utf8, true),
            ]
            .into(),
        ),
        false,
    );
    Arc::new(Schema::new(vec![
        Field::new("tenant", DataType::Utf8, false),
        Field::new("stream", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
        Field::new("value", DataType::Float64, true),
        Field::new("attrs", DataType::Map(Arc::new(entries), false), false),
        Field::new("payload", DataType::Utf8, true),
        Field::new("ingest_ts", ts_type(), false),
        Field::new("node", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
    ]))
}

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

fn strings<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| corrupt(format!("column `{name}` missing or not a string")))
}

fn timestamps<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a TimestampMicrosecondArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        .ok_or_else(|| corrupt(format!("column `{name}` missing or not a timestamp")))
}

fn floats<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Float64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>())
        .ok_or_else(|| corrupt(format!("column `{name}` missing or not a double")))
}

fn maps<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a MapArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<MapArray>())
        .ok_or_else(|| corrupt(format!("column `{name}` missing or not a map")))
}

fn attrs_of(m: &MapArray, i: usize) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if m.is_null(i) {
        return Ok(out);
    }
    let entries = m.value(i);
    let keys = entries
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| corrupt("attrs keys are not strings"))?;
    let values = entries
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| corrupt("attrs values are not strings"))?;
    for j in 0..keys.len() {
        if values.is_valid(j) {
            out.insert(keys.value(j).to_owned(), values.value(j).to_owned());
        }
    }
    Ok(out)
}

/// A full batch back into rows.
pub(crate) fn from_batch(batch: &RecordBatch) -> Result<Vec<ColdRow>> {
    let tenant = strings(batch, "tenant")?;
    let stream = strings(batch, "stream")?;
    let key = strings(batch, "key")?;
    let id = strings(batch, "id")?;
    let ts = timestamps(batch, "ts")?;
    let value = floats(batch, "value")?;
    let attrs = maps(batch, "attrs")?;
    let payload = strings(batch, "payload")?;
    let ingest = timestamps(batch, "ingest_ts")?;
    let node = strings(batch, "node")?;
    let seq = batch
        .column_by_name("seq")
        .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
        .ok_or_else(|| corrupt("column `seq` missing or not uint64"))?;
    (0..batch.num_rows())
        .map(|i| {
            Ok(ColdRow {
                node: node.value(i).to_owned(),
                stored: StoredEvent {
                    event: Event {
                        tenant: tenant.value(i).to_owned(),
                        stream: stream.value(i).to_owned(),
                        key: key.value(i).to_owned(),
                        id: id.value(i).to_owned(),
                        ts: ts.value(i),
                        value: value.is_valid(i).then(|| value.value(i)),
                        attrs: attrs_of(attrs, i)?,
                        payload: payload.is_valid(i).then(|| payload.value(i).to_owned()),
                    },
                    ingest_ts: ingest.value(i),
                    seq: seq.value(i),
                },
            })
        })
        .collect()
}

fn open_builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path)
        .map_err(|e| Error::storage(Tier::Cold, "read", format!("{}: {e}", path.display())))?;
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| corrupt(format!("{}: {e}", path.display())))
}

/// Row groups whose `ts` statistics overlap `range` (all of them when a group has none).
fn row_groups_in(meta: &ParquetMetaData, range: TimeRange) -> Vec<usize> {
    (0..meta.num_row_groups())
        .filter(|&rg| {
            let stats = meta.row_group(rg).column(col::TS).statistics();
            match stats {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(min), Some(max)) => *max >= range.from && *min < range.to,
                    _ => true,
                },
                _ => true,
            }
        })
        .collect()
}

/// A predicate keeping rows whose `ts` lies in `range`; evaluated on the `ts` column alone,
/// so the other projected columns are decoded only for rows (and pages) that pass.
fn ts_filter(mask: ProjectionMask, range: TimeRange) -> RowFilter {
    let predicate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        let ts = batch
            .column(0)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError("ts is not a timestamp".into()))?;
        Ok(ts
            .iter()
            .map(|t| Some(t.is_some_and(|t| range.contains(t))))
            .collect::<BooleanArray>())
    });
    RowFilter::new(vec![Box::new(predicate)])
}

/// Folds the rows of the file at `path` that `q` counts (and `watermark` leaves to cold)
/// into `out`, reading only the columns `q` needs and only row groups whose `ts`
/// statistics overlap the range.
pub(crate) fn aggregate_file(
    path: &Path,
    q: &AggregateQuery,
    watermark: &HotWatermark,
    out: &mut PartialAggregate,
) -> Result<()> {
    let builder = open_builder(path)?;
    let row_groups = row_groups_in(builder.metadata(), q.range);
    if row_groups.is_empty() {
        return Ok(());
    }
    let mut columns = vec![col::TS, col::VALUE];
    if q.stream.is_some() {
        columns.push(col::STREAM);
    }
    match &q.group_by {
        GroupBy::Key => columns.push(col::KEY),
        GroupBy::Attr(_) => columns.push(col::ATTRS),
        GroupBy::None => {}
    }
    if q.filter.is_some() && !columns.contains(&col::ATTRS) {
        columns.push(col::ATTRS);
    }
    columns.extend([col::NODE, col::SEQ]);
    let schema_descr = builder.parquet_schema();
    let projection = ProjectionMask::roots(schema_descr, columns.iter().copied());
    let ts_mask = ProjectionMask::roots(schema_descr, [col::TS]);
    let reader = builder
        .with_row_groups(row_groups)
        .with_projection(projection)
        .with_row_filter(ts_filter(ts_mask, q.range))
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq("read"))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        let ts = timestamps(&batch, "ts")?;
        let value = floats(&batch, "value")?;
        let stream = match q.stream {
            Some(_) => Some(strings(&batch, "stream")?),
            None => None,
        };
        let key = match q.group_by {
            GroupBy::Key => Some(strings(&batch, "key")?),
            _ => None,
        };
        let attrs = if columns.contains(&col::ATTRS) {
            Some(maps(&batch, "attrs")?)
        } else {
            None
        };
        let node = strings(&batch, "node")?;
        let seq = batch
            .column_by_name("seq")
            .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
            .ok_or_else(|| corrupt("column `seq` missing or not uint64"))?;
        for i in 0..batch.num_rows() {
            if !watermark.includes(node.value(i), seq.value(i)) {
                continue;
            }
            if let (Some(s), Some(want)) = (stream, &q.stream)
                && s.value(i) != want
            {
                continue;
            }
            let row_attrs = match attrs {
                Some(m) => Some(attrs_of(m, i)?),
                None => None,
            };
            if let Some(f) = &q.filter
                && row_attrs.as_ref().and_then(|a| a.get(&f.name)) != Some(&f.value)
            {
                continue;
            }
            let group = match &q.group_by {
                GroupBy::None => None,
                GroupBy::Key => key.map(|k| k.value(i).to_owned()),
                GroupBy::Attr(name) => row_attrs.as_ref().and_then(|a| a.get(name).cloned()),
            };
            let t = ts.value(i);
            out.cells
                .entry((q.bucket_start(t), group))
                .or_default()
                .add(value.is_valid(i).then(|| value.value(i)));
        }
    }
    Ok(())
}

/// The row with `id` in the file at `path`, if any: row groups whose bloom filter rules the
/// id out are never read.
pub(crate) fn find_id(path: &Path, id: &str) -> Result<Option<ColdRow>> {
    let builder = open_builder(path)?;
    let mut candidates = Vec::new();
    for rg in 0..builder.metadata().num_row_groups() {
        match builder
            .get_row_group_column_bloom_filter(rg, col::ID)
            .map_err(|e| corrupt(format!("{}: bloom filter: {e}", path.display())))?
        {
            Some(sbbf) if !sbbf.check(&id) => {}
            _ => candidates.push(rg),
        }
    }
    if candidates.is_empty() {
        return Ok(None);
    }
    let id_mask = ProjectionMask::roots(builder.parquet_schema(), [col::ID]);
    let wanted = id.to_owned();
    let predicate = ArrowPredicateFn::new(id_mask, move |batch: RecordBatch| {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError("id is not a string".into()))?;
        Ok(ids
            .iter()
            .map(|v| Some(v == Some(wanted.as_str())))
            .collect::<BooleanArray>())
    });
    let reader = builder
        .with_row_groups(candidates)
        .with_row_filter(RowFilter::new(vec![Box::new(predicate)]))
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq("read"))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        if let Some(row) = from_batch(&batch)?.into_iter().next() {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// Reads the rows of the file in `range` batch by batch (file order), calling `each` per
/// batch; stops early when it returns `false`.
pub(crate) fn read_file(
    path: &Path,
    range: Option<TimeRange>,
    mut each: impl FnMut(Vec<ColdRow>) -> Result<bool>,
) -> Result<()> {
    let builder = open_builder(path)?;
    let builder = match range {
        Some(r) => {
            let groups = row_groups_in(builder.metadata(), r);
            let mask = ProjectionMask::roots(builder.parquet_schema(), [col::TS]);
            builder
                .with_row_groups(groups)
                .with_row_filter(ts_filter(mask, r))
        }
        None => builder,
    };
    let reader = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(pq("read"))?;
    for batch in reader {
        let batch = batch.map_err(|e| corrupt(format!("{}: {e}", path.display())))?;
        if !each(from_batch(&batch)?)? {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u64, key: &str, ts: i64) -> ColdRow {
        ColdRow {
            node: "n1".into(),
            stored: StoredEvent {
                event: Event {
                    tenant: "acme".into(),
                    stream: "click".into(),
                    key: key.into(),
                    id: format!("id-{i}"),
                    ts,
                    value: (!i.is_multiple_of(3)).then_some(i as f64 * 0.5),
                    attrs: if i.is_multiple_of(2) {
                        [("page".to_string(), format!("/p{}", i % 4))].into()
                    } else {
                        BTreeMap::new()
                    },
                    payload: (!i.is_multiple_of(5)).then(|| format!(r#"{{"i": {i},  "s":"é\n"}}"#)),
                },
                ingest_ts: ts + 7,
                seq: i,
            },
        }
    }

    #[test]
    fn rows_round_trip_sorted_and_found_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let mut rows: Vec<ColdRow> = (0..20_000)
            .map(|i| row(i, &format!("k{}", i % 7), 1_000_000 * (20_000 - i as i64)))
            .collect();
        let original = rows.clone();
        let stats = write_file(
            &path,
            &mut rows,
            WriteSettings {
                row_group_rows: 4096,
                ..WriteSettings::default()
            },
        )
        .unwrap();
        assert_eq!(stats.rows, 20_000);
        assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(stats.sha256, crate::sha256_file(&path).unwrap().0);
        assert_eq!(stats.min_ts, 1_000_000);
        let mut back = Vec::new();
        read_file(&path, None, |b| {
            back.extend(b);
            Ok(true)
        })
        .unwrap();
        let mut want = original.clone();
        sort_rows(&mut want);
        assert_eq!(
            back, want,
            "rows read back in (key, ts) order, field for field"
        );
        for i in [0u64, 1, 4097, 19_999] {
            let got = find_id(&path, &format!("id-{i}")).unwrap().unwrap();
            assert_eq!(got, original[i as usize]);
        }
        assert!(find_id(&path, "id-none").unwrap().is_none());
        let range = TimeRange {
            from: 5_000_000,
            to: 9_000_000,
        };
        let mut n = 0;
        read_file(&path, Some(range), |b| {
            assert!(b.iter().all(|r| range.contains(r.stored.event.ts)));
            n += b.len();
            Ok(true)
        })
        .unwrap();
        assert_eq!(n, 4);
    }
}
