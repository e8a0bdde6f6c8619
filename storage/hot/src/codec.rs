//! The on-disk shape of one log row: every event of one group commit in one blob.
//!
//! ```text
//! [0]          format version (1)
//! [1..9]       ingest_ts, i64 little-endian (the commit time, shared by every event)
//! [9..13]      event count, u32 little-endian
//! [13..E]      the events, each a postcard-encoded `EventRecord`, back to back
//! [E..]        one u32 little-endian offset per event, relative to byte 13
//! ```
//!
//! The offsets let a lookup by id decode one event, and let release and rebuild read only the
//! leading fields (tenant, id, ts) without allocating. The record type is this crate's own,
//! with its field order fixed here, so a change to `strata_types::Event` cannot silently
//! change what is on disk.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strata_types::Event;

const VERSION: u8 = 1;
const HEADER: usize = 13;

/// Why a row could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    /// The row is shorter than its header and offsets say.
    #[error("row truncated: {0}")]
    Truncated(&'static str),
    /// The row was written by an unknown format version.
    #[error("unknown row format version {0}")]
    Version(u8),
    /// An offset points outside the event area.
    #[error("event {index} has offset {offset} outside the event area")]
    Offset {
        /// The event's position in the row.
        index: usize,
        /// Its offset.
        offset: usize,
    },
    /// The event area does not end where the offsets start.
    #[error("{0} bytes left over after the last event")]
    Trailing(usize),
    /// postcard failed.
    #[error("event {index}: {source}")]
    Postcard {
        /// The event's position in the row.
        index: usize,
        /// What postcard said.
        source: postcard::Error,
    },
    /// A row grew past what u32 offsets address.
    #[error("row too large")]
    TooLarge,
}

/// The stored form of an event, borrowed for encoding.
#[derive(Serialize)]
struct EventRecordRef<'a> {
    tenant: &'a str,
    stream: &'a str,
    key: &'a str,
    id: &'a str,
    ts: i64,
    value: Option<f64>,
    attrs: &'a BTreeMap<String, String>,
    payload: Option<&'a str>,
}

/// The stored form of an event, owned for decoding. Same field order as [`EventRecordRef`].
#[derive(Deserialize)]
struct EventRecord {
    tenant: String,
    stream: String,
    key: String,
    id: String,
    ts: i64,
    value: Option<f64>,
    attrs: BTreeMap<String, String>,
    payload: Option<String>,
}

/// The leading fields of a stored event, decoded without allocating.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub(crate) struct EventHead<'a> {
    /// Tenant.
    pub(crate) tenant: &'a str,
    /// Stream (decoded only because it precedes the id).
    pub(crate) stream: &'a str,
    /// Key (decoded only because it precedes the id).
    pub(crate) key: &'a str,
    /// Client id.
    pub(crate) id: &'a str,
    /// Event time.
    pub(crate) ts: i64,
}

/// Builds one row, event by event, with cheap rollback to an earlier mark so one request of
/// a group commit can be taken out again (when it would exceed a budget).
#[derive(Debug)]
pub(crate) struct RowBuilder {
    buf: Vec<u8>,
    offsets: Vec<u32>,
}

/// A position in a [`RowBuilder`] to roll back to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    bytes: usize,
    events: usize,
}

impl RowBuilder {
    /// An empty row committed at `ingest_ts`.
    pub(crate) fn new(ingest_ts: i64) -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.push(VERSION);
        buf.extend_from_slice(&ingest_ts.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        Self {
            buf,
            offsets: Vec::new(),
        }
    }

    /// Appends one event.
    pub(crate) fn push(&mut self, e: &Event) -> Result<(), CodecError> {
        let offset = u32::try_from(self.buf.len() - HEADER).map_err(|_| CodecError::TooLarge)?;
        let record = EventRecordRef {
            tenant: &e.tenant,
            stream: &e.stream,
            key: &e.key,
            id: &e.id,
            ts: e.ts,
            value: e.value,
            attrs: &e.attrs,
            payload: e.payload.as_deref(),
        };
        let mark = self.buf.len();
        if let Err(source) = postcard::to_io(&record, &mut self.buf) {
            self.buf.truncate(mark);
            return Err(CodecError::Postcard {
                index: self.offsets.len(),
                source,
            });
        }
        self.offsets.push(offset);
        Ok(())
    }

    /// The current end, for [`RowBuilder::rollback`].
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            bytes: self.buf.len(),
            events: self.offsets.len(),
        }
    }

    /// Drops every event pushed after `mark`.
    pub(crate) fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.bytes);
        self.offsets.truncate(mark.events);
    }

    /// Events in the row.
    pub(crate) fn count(&self) -> usize {
        self.offsets.len()
    }

    /// Bytes the finished row will have.
    pub(crate) fn encoded_len(&self) -> usize {
        self.buf.len() + 4 * self.offsets.len()
    }

    /// The finished blob.
    pub(crate) fn finish(mut self) -> Result<Vec<u8>, CodecError> {
        let count = u32::try_from(self.offsets.len()).map_err(|_| CodecError::TooLarge)?;
        self.buf[9..HEADER].copy_from_slice(&count.to_le_bytes());
        self.buf.reserve_exact(4 * self.offsets.len());
        for o in &self.offsets {
            self.buf.extend_from_slice(&o.to_le_bytes());
        }
        Ok(self.buf)
    }
}

/// A parsed, not yet decoded, row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowView<'a> {
    /// Commit time of every event in the row.
    pub(crate) ingest_ts: i64,
    events: &'a [u8],
    offsets: &'a [u8],
}

impl<'a> RowView<'a> {
    /// Checks the header and splits the blob; decodes nothing yet.
    pub(crate) fn parse(blob: &'a [u8]) -> Result<Self, CodecError> {
        let header = blob.get(..HEADER).ok_or(CodecError::Truncated("header"))?;
        if header[0] != VERSION {
            return Err(CodecError::Version(header[0]));
        }
        let ingest_ts = i64::from_le_bytes(le_array(&header[1..9]));
        let count = u32::from_le_bytes(le_array(&header[9..13])) as usize;
        let offsets_len = count
            .checked_mul(4)
            .ok_or(CodecError::Truncated("offsets"))?;
        let body = &blob[HEADER..];
        let split = body
            .len()
            .checked_sub(offsets_len)
            .ok_or(CodecError::Truncated("offsets"))?;
        let (events, offsets) = body.split_at(split);
        Ok(Self {
            ingest_ts,
            events,
            offsets,
        })
    }

    /// Events in the row.
    pub(crate) fn count(&self) -> usize {
        self.offsets.len() / 4
    }

    fn event_bytes(&self, index: usize) -> Result<&'a [u8], CodecError> {
        let at = self
            .offsets
            .get(4 * index..4 * index + 4)
            .ok_or(CodecError::Truncated("offsets"))?;
        let offset = u32::from_le_bytes(le_array(at)) as usize;
        self.events
            .get(offset..)
            .filter(|rest| !rest.is_empty())
            .ok_or(CodecError::Offset { index, offset })
    }

    /// The leading fields of event `index`.
    pub(crate) fn head(&self, index: usize) -> Result<EventHead<'a>, CodecError> {
        let bytes = self.event_bytes(index)?;
        postcard::take_from_bytes::<EventHead<'a>>(bytes)
            .map(|(head, _)| head)
            .map_err(|source| CodecError::Postcard { index, source })
    }

    /// Event `index`, fully decoded.
    pub(crate) fn event(&self, index: usize) -> Result<Event, CodecError> {
        let bytes = self.event_bytes(index)?;
        postcard::take_from_bytes::<EventRecord>(bytes)
            .map(|(r, _)| into_event(r))
            .map_err(|source| CodecError::Postcard { index, source })
    }

    /// Every event, in row order. Decodes sequentially and checks that the events fill the
    /// event area exactly, so a damaged row is reported rather than half read.
    pub(crate) fn events(&self) -> Result<Vec<Event>, CodecError> {
        let mut rest = self.events;
        let mut out = Vec::with_capacity(self.count());
        for index in 0..self.count() {
            let (record, tail) = postcard::take_from_bytes::<EventRecord>(rest)
                .map_err(|source| CodecError::Postcard { index, source })?;
            out.push(into_event(record));
            rest = tail;
        }
        if rest.is_empty() {
            Ok(out)
        } else {
            Err(CodecError::Trailing(rest.len()))
        }
    }
}

fn into_event(r: EventRecord) -> Event {
    Event {
        tenant: r.tenant,
        stream: r.stream,
        key: r.key,
        id: r.id,
        ts: r.ts,
        value: r.value,
        attrs: r.attrs,
        payload: r.payload,
    }
}

/// The first N bytes of a slice whose length the caller has checked.
fn le_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> Event {
        Event {
            tenant: format!("t{}", i % 3),
            stream: "click".into(),
            key: format!("user-{i}"),
            id: format!("id-{i}"),
            ts: 1_700_000_000_000_000 + i as i64,
            value: i.is_multiple_of(2).then_some(i as f64 / 3.0),
            attrs: [("page".to_string(), format!("/p{i}"))].into(),
            payload: (!i.is_multiple_of(4)).then(|| format!(r#"{{"n": [{i}, 2.50],  "s":"é"}}"#)),
        }
    }

    #[test]
    fn round_trips_rows_heads_and_single_events() {
        let mut b = RowBuilder::new(42);
        let events: Vec<Event> = (0..50).map(ev).collect();
        for e in &events {
            b.push(e).unwrap();
        }
        let expected_len = b.encoded_len();
        let blob = b.finish().unwrap();
        assert_eq!(blob.len(), expected_len);
        let row = RowView::parse(&blob).unwrap();
        assert_eq!(row.ingest_ts, 42);
        assert_eq!(row.count(), 50);
        assert_eq!(row.events().unwrap(), events);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(row.event(i).unwrap(), *e);
            let h = row.head(i).unwrap();
            assert_eq!(
                (h.tenant, h.id, h.ts),
                (e.tenant.as_str(), e.id.as_str(), e.ts)
            );
        }
        assert!(row.event(50).is_err());
    }

    #[test]
    fn rollback_forgets_events() {
        let mut b = RowBuilder::new(1);
        b.push(&ev(1)).unwrap();
        let m = b.mark();
        b.push(&ev(2)).unwrap();
        b.push(&ev(3)).unwrap();
        b.rollback(m);
        assert_eq!(b.count(), 1);
        let blob = b.finish().unwrap();
        assert_eq!(
            RowView::parse(&blob).unwrap().events().unwrap(),
            vec![ev(1)]
        );
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let mut b = RowBuilder::new(7);
        for i in 0..5 {
            b.push(&ev(i)).unwrap();
        }
        let blob = b.finish().unwrap();
        assert!(RowView::parse(&blob[..5]).is_err());
        let mut bad = blob.clone();
        bad[0] = 9;
        assert!(matches!(RowView::parse(&bad), Err(CodecError::Version(9))));
        // Every truncation and every single-byte flip either decodes to something or fails
        // cleanly.
        for cut in 0..blob.len() {
            if let Ok(row) = RowView::parse(&blob[..cut]) {
                let _ = row.events();
                for i in 0..row.count() {
                    let _ = row.event(i);
                    let _ = row.head(i);
                }
            }
        }
        for at in 0..blob.len() {
            let mut flipped = blob.clone();
            flipped[at] ^= 0xff;
            if let Ok(row) = RowView::parse(&flipped) {
                let _ = row.events();
                for i in 0..row.count().min(10) {
                    let _ = row.event(i);
                }
            }
        }
        let mut extra = blob[..blob.len() - 20].to_vec();
        extra.extend_from_slice(&[0u8; 4]);
        extra.extend_from_slice(&blob[blob.len() - 20..]);
        assert!(matches!(
            RowView::parse(&extra).unwrap().events(),
            Err(CodecError::Trailing(4))
        ));
    }
}
