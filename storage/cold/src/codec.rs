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
//! | `payload` | string, nullable | the client's JSON as stored (compact), byte for byte |
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
//!
//! Invariant: one schema ([`schema`]) for both directions, so every row written reads back
//! field for field (checked below). `write` encodes and hashes files; `read` decodes them
//! with projections and predicates pushed down to row groups and pages.

mod read;
mod write;

use std::sync::Arc;

use arrow_array::builder::MapFieldNames;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
pub(crate) use read::{RowBatches, aggregate_file, find_id, find_id_in, read_file, row_batches};
use strata_core::{Error, Tier};
pub(crate) use write::{FileStats, FileWriter, WriteSettings, write_file};

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
#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_core::cold::ColdRow;
    use strata_types::{Event, StoredEvent, TimeRange};

    use super::{write::sort_rows, *};

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
