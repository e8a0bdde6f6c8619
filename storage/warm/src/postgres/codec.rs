//! How Strata's values map to PostgreSQL's columns and back: event times (epoch micros) as
//! `timestamptz`, sequence numbers (`u64`) as `int8`, rows of `events` as [`StoredEvent`]s and
//! aggregate columns as [`Cell`]s.
//!
//! Times are clamped into the span both chrono and PostgreSQL represent, so a query bound of
//! `i64::MIN`/`i64::MAX` (an open range) never fails to convert. A value the schema's
//! constraints should have kept out (a negative sequence number or count, attributes that are
//! not a string map) is [`Error::Corrupt`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use strata_core::{Error, Result, Tier};
use strata_types::{Cell, Event, StoredEvent};
use tokio_postgres::{Row, types::Json};

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z: the span both chrono and
/// PostgreSQL represent, to which query bounds are clamped.
pub(super) const MIN_TS: i64 = -62_135_596_800_000_000;
pub(super) const MAX_TS: i64 = 253_402_300_799_999_999;

/// Epoch micros as a `timestamptz`, clamped into [`MIN_TS`, `MAX_TS`].
pub(super) fn ts(micros: i64) -> DateTime<Utc> {
    // Clamped into the representable span, so the conversion cannot fail.
    DateTime::from_timestamp_micros(micros.clamp(MIN_TS, MAX_TS)).unwrap_or_default()
}

/// A `timestamptz` as epoch micros.
pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A sequence number as the `int8` the tables store.
pub(super) fn seq_i64(seq: u64) -> Result<i64> {
    i64_of(seq, "write_batch", "seq")
}

/// A `u64` for an `int8` column; `what` names it in the error.
pub(super) fn i64_of(v: u64, op: &'static str, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::storage(Tier::Warm, op, format!("{what} above i64::MAX")))
}

/// A stored sequence number.
pub(super) fn seq_u64(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("negative seq {seq} in warm events"),
    })
}

/// Column `at` of `row`, or [`Error::Corrupt`] when it does not have the expected type.
pub(super) fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
    row: &'r Row,
    at: usize,
) -> Result<T> {
    row.try_get(at).map_err(|e| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("warm column {at}: {e}"),
    })
}

/// A row of `stream, key, id, ts, value, attrs, payload, ingest_ts, seq` (the column order of
/// `get.sql`, `scan.sql` and `export_page.sql`) of `tenant`.
pub(super) fn stored_from(row: &Row, tenant: &str) -> Result<StoredEvent> {
    let attrs: Json<BTreeMap<String, String>> = row.try_get(5).map_err(|e| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("warm attrs are not a string map: {e}"),
    })?;
    let t: DateTime<Utc> = row.get(3);
    let it: DateTime<Utc> = row.get(7);
    Ok(StoredEvent {
        event: Event {
            tenant: tenant.to_owned(),
            stream: row.get(0),
            key: row.get(1),
            id: row.get(2),
            ts: micros(t),
            value: row.get(4),
            attrs: attrs.0,
            payload: row.get(6),
        },
        ingest_ts: micros(it),
        seq: seq_u64(row.get(8))?,
    })
}

/// A cell from columns `count, value count, sum, min, max` starting at `at`.
pub(super) fn cell_from(row: &Row, at: usize) -> Result<Cell> {
    let count: i64 = row.get(at);
    let value_count: i64 = row.get(at + 1);
    let corrupt = |what: &str| Error::Corrupt {
        tier: Tier::Warm,
        what: format!("negative {what} in a warm aggregate"),
    };
    Ok(Cell {
        count: u64::try_from(count).map_err(|_| corrupt("count"))?,
        value_count: u64::try_from(value_count).map_err(|_| corrupt("value count"))?,
        sum: row.get::<_, Option<f64>>(at + 2).unwrap_or(0.0),
        min: row.get::<_, Option<f64>>(at + 3).unwrap_or(f64::INFINITY),
        max: row
            .get::<_, Option<f64>>(at + 4)
            .unwrap_or(f64::NEG_INFINITY),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_clamp_and_sequence_numbers_check_their_range() {
        assert_eq!(micros(ts(i64::MIN)), MIN_TS);
        assert_eq!(micros(ts(i64::MAX)), MAX_TS);
        assert_eq!(micros(ts(1_795_651_200_000_001)), 1_795_651_200_000_001);
        assert_eq!(seq_i64(7).unwrap(), 7);
        assert!(seq_i64(u64::MAX).is_err());
        assert!(matches!(seq_u64(-1), Err(Error::Corrupt { .. })));
    }
}
