//! Decoded, query-ready window segments and the byte-bounded moka cache that holds them.
//!
//! A segment is the events of one tenant and one event-time window from one log row, sorted
//! by `(ts, seq)`. Rows never change once committed and row keys (first seqs) are never
//! reused, so a segment never goes stale: at worst it outlives its row's release until the
//! cache evicts it, and the index no longer points at it.

use std::{collections::HashMap, sync::Arc};

use strata_types::StoredEvent;

use crate::state::window_of;

/// Identifies one segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SegmentKey {
    /// The log row (its first seq).
    pub(crate) row: u64,
    /// The tenant.
    pub(crate) tenant: Arc<str>,
    /// Window start, epoch micros.
    pub(crate) window: i64,
}

/// Events of one (row, tenant, window), sorted by `(ts, seq)`.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The events.
    pub(crate) events: Box<[StoredEvent]>,
    /// Approximate bytes, for the cache's weigher.
    weight: u32,
}

impl Segment {
    fn new(mut events: Vec<StoredEvent>) -> Self {
        // Mostly already in time order (events arrive roughly in order), which the stable
        // sort handles in close to linear time.
        events.sort_by_key(|e| (e.event.ts, e.seq));
        let overhead =
            std::mem::size_of::<StoredEvent>() - std::mem::size_of::<strata_types::Event>();
        let bytes: usize = 96
            + events
                .iter()
                .map(|e| e.event.approx_size() + overhead)
                .sum::<usize>();
        Self {
            events: events.into_boxed_slice(),
            weight: u32::try_from(bytes).unwrap_or(u32::MAX),
        }
    }

    /// The events with `range.from <= ts < range.to`, found by binary search.
    pub(crate) fn in_range(&self, from: i64, to: i64) -> &[StoredEvent] {
        let lo = self.events.partition_point(|e| e.event.ts < from);
        let hi = self.events.partition_point(|e| e.event.ts < to);
        &self.events[lo..hi.max(lo)]
    }
}

/// The segment cache, bounded by approximate bytes.
pub(crate) type SegmentCache = moka::sync::Cache<SegmentKey, Arc<Segment>>;

/// A cache holding at most about `max_bytes` of segments.
pub(crate) fn new_cache(max_bytes: u64) -> SegmentCache {
    moka::sync::Cache::builder()
        .name("strata-hot-segments")
        .max_capacity(max_bytes)
        .weigher(|_key: &SegmentKey, segment: &Arc<Segment>| segment.weight)
        .build()
}

/// Splits one row's events (in seq order) into its segments.
pub(crate) fn build_segments(
    row: u64,
    events: Vec<StoredEvent>,
    window: i64,
) -> Vec<(SegmentKey, Arc<Segment>)> {
    let mut group_of: HashMap<(&str, i64), usize> = HashMap::new();
    let mut keys: Vec<(Arc<str>, i64)> = Vec::new();
    let mut index = Vec::with_capacity(events.len());
    for e in &events {
        let k = (e.event.tenant.as_str(), window_of(e.event.ts, window));
        let g = *group_of.entry(k).or_insert_with(|| {
            keys.push((Arc::from(k.0), k.1));
            keys.len() - 1
        });
        index.push(g);
    }
    drop(group_of);
    let mut groups: Vec<Vec<StoredEvent>> = vec![Vec::new(); keys.len()];
    for (e, g) in events.into_iter().zip(index) {
        groups[g].push(e);
    }
    keys.into_iter()
        .zip(groups)
        .map(|((tenant, window), events)| {
            (
                SegmentKey {
                    row,
                    tenant,
                    window,
                },
                Arc::new(Segment::new(events)),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use strata_types::Event;

    use super::*;

    fn stored(tenant: &str, ts: i64, seq: u64) -> StoredEvent {
        StoredEvent {
            event: Event {
                tenant: tenant.into(),
                stream: "s".into(),
                key: "k".into(),
                id: format!("{seq}"),
                ts,
                value: None,
                attrs: Default::default(),
                payload: None,
            },
            ingest_ts: 1,
            seq,
        }
    }

    #[test]
    fn groups_by_tenant_and_window_and_sorts_by_time() {
        let events = vec![
            stored("a", 130, 10),
            stored("b", 5, 11),
            stored("a", 70, 12),
            stored("a", 125, 13),
            stored("a", 125, 14),
        ];
        let mut segs = build_segments(10, events, 60);
        segs.sort_by(|x, y| (&x.0.tenant, x.0.window).cmp(&(&y.0.tenant, y.0.window)));
        let shape: Vec<(&str, i64, Vec<u64>)> = segs
            .iter()
            .map(|(k, s)| {
                (
                    &*k.tenant,
                    k.window,
                    s.events.iter().map(|e| e.seq).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("a", 60, vec![12]),
                ("a", 120, vec![13, 14, 10]),
                ("b", 0, vec![11]),
            ]
        );
        let (_, s) = &segs[1];
        assert_eq!(s.in_range(126, 200).len(), 1);
        assert_eq!(s.in_range(0, 125).len(), 0);
        assert_eq!(s.in_range(125, 126).len(), 2);
        assert!(s.weight > 0);
    }
}
