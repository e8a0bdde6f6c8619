//! Parquet files back into rows and aggregates, reading as little as the question needs:
//! only the projected columns, only row groups whose `ts` statistics overlap the range, only
//! row groups whose bloom filter may hold an id, and a `ts` predicate evaluated before the
//! other columns are decoded.
//!
//! Invariant: pruning never drops a row the question would count: a row group or page is
//! skipped only when its statistics or bloom filter rule every row out, and one without
//! statistics is read.

use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path, PathBuf},
};

use arrow_array::{
    Array, BooleanArray, Float64Array, MapArray, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt64Array,
};
use parquet::{
    arrow::{
        ProjectionMask,
        arrow_reader::{
            ArrowPredicateFn, ArrowReaderOptions, ParquetRecordBatchReader,
            ParquetRecordBatchReaderBuilder, RowFilter,
        },
    },
    file::{
        metadata::{PageIndexPolicy, ParquetMetaData},
        reader::ChunkReader,
        statistics::Statistics,
    },
};
use strata_core::{Error, Result, Tier, cold::ColdRow, hot::HotWatermark};
use strata_types::{AggregateQuery, Event, GroupBy, PartialAggregate, StoredEvent, TimeRange};

use super::{BATCH_ROWS, col, corrupt, pq};

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
    find_id_in(open_builder(path)?, &path.display().to_string(), id)
}

/// [`find_id`] over any Parquet source (`what` names it in errors): a local file, or an
/// object read with ranged GETs, where only the footer, the bloom filters and the candidate
/// row groups' `id` pages (then the matching row) are fetched.
pub(crate) fn find_id_in<R: ChunkReader + 'static>(
    builder: ParquetRecordBatchReaderBuilder<R>,
    what: &str,
    id: &str,
) -> Result<Option<ColdRow>> {
    let mut candidates = Vec::new();
    for rg in 0..builder.metadata().num_row_groups() {
        match builder
            .get_row_group_column_bloom_filter(rg, col::ID)
            .map_err(|e| corrupt(format!("{what}: bloom filter: {e}")))?
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
        let batch = batch.map_err(|e| corrupt(format!("{what}: {e}")))?;
        if let Some(row) = from_batch(&batch)?.into_iter().next() {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// The rows of a file, batch by batch in file order: what [`row_batches`] returns.
pub(crate) struct RowBatches {
    reader: ParquetRecordBatchReader,
    path: PathBuf,
}

impl Iterator for RowBatches {
    type Item = Result<Vec<ColdRow>>;

    fn next(&mut self) -> Option<Self::Item> {
        let batch = self.reader.next()?;
        Some(
            batch
                .map_err(|e| corrupt(format!("{}: {e}", self.path.display())))
                .and_then(|b| from_batch(&b)),
        )
    }
}

/// The rows of the file at `path` batch by batch (file order); with `range`, only row groups
/// whose `ts` statistics overlap it are read and only rows in it are returned.
pub(crate) fn row_batches(path: &Path, range: Option<TimeRange>) -> Result<RowBatches> {
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
    Ok(RowBatches {
        reader,
        path: path.to_path_buf(),
    })
}

/// Reads the rows of the file in `range` batch by batch (file order), calling `each` per
/// batch; stops early when it returns `false`.
pub(crate) fn read_file(
    path: &Path,
    range: Option<TimeRange>,
    mut each: impl FnMut(Vec<ColdRow>) -> Result<bool>,
) -> Result<()> {
    for rows in row_batches(path, range)? {
        if !each(rows?)? {
            break;
        }
    }
    Ok(())
}
