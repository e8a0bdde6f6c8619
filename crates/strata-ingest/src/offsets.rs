//! Where each partition stands: what this node stored durably, and where it now consumes.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use strata_core::hot::SourceOffset;

/// `(topic, partition)`.
pub(crate) type PartitionKey = (String, i32);

/// The consumer's view of its offsets, shared with the rebalance callbacks.
///
/// * `durable`: the next offset after the last message this node stored, per partition,
///   exactly as committed in the hot tier (loaded from it on start, advanced after each
///   durable commit). Kept for partitions this node no longer owns, so that owning one again
///   starts from the right place.
/// * `live`: the position of each partition this node currently owns: the resolved start on
///   assignment, then advanced with each durable commit. Only these are committed to Kafka
///   on revocation, so a partition this node merely used to own never drags the group's
///   committed offset backwards.
#[derive(Debug, Default)]
pub(crate) struct OffsetBook {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    durable: HashMap<PartitionKey, i64>,
    live: HashMap<PartitionKey, i64>,
}

impl OffsetBook {
    /// A book over the offsets the hot tier holds for this consumer's source.
    pub(crate) fn from_stored(offsets: &[SourceOffset]) -> Self {
        let durable = offsets
            .iter()
            .map(|o| ((o.topic.clone(), o.partition), o.next_offset))
            .collect();
        Self {
            inner: Mutex::new(Inner {
                durable,
                live: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This node's durable next offset of a partition.
    pub(crate) fn durable(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .durable
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// The position of a partition this node owns.
    pub(crate) fn live(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .live
            .get(&(topic.to_owned(), partition))
            .copied()
    }

    /// Resolves where a newly assigned partition starts (see [`start_position`]) and makes it
    /// the live position. `committed` is the group's committed offset, if it has one.
    pub(crate) fn assign(
        &self,
        topic: &str,
        partition: i32,
        committed: Option<i64>,
    ) -> Option<i64> {
        let mut inner = self.lock();
        let key = (topic.to_owned(), partition);
        let start = start_position(inner.durable.get(&key).copied(), committed);
        match start {
            Some(start) => inner.live.insert(key, start),
            None => inner.live.remove(&key),
        };
        start
    }

    /// Records offsets that are now durable in the hot tier.
    pub(crate) fn stored<'a>(&self, offsets: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let mut inner = self.lock();
        for (topic, partition, next) in offsets {
            let key = (topic.to_owned(), partition);
            let durable = inner.durable.entry(key.clone()).or_insert(next);
            *durable = (*durable).max(next);
            let live = inner.live.entry(key).or_insert(next);
            *live = (*live).max(next);
        }
    }

    /// Forgets the live position of a revoked partition, returning it for the hand-over
    /// commit.
    pub(crate) fn revoke(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lock().live.remove(&(topic.to_owned(), partition))
    }
}

/// Where a newly assigned partition starts: the later of this node's durable offset and the
/// group's committed offset (see the crate docs for why each one can be ahead of the other).
/// `None` when neither exists: then `auto.offset.reset` decides.
pub(crate) fn start_position(durable: Option<i64>, committed: Option<i64>) -> Option<i64> {
    match (durable, committed.filter(|c| *c >= 0)) {
        (Some(d), Some(c)) => Some(d.max(c)),
        (d, c) => d.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(topic: &str, partition: i32, next_offset: i64) -> SourceOffset {
        SourceOffset {
            source: "kafka:g".into(),
            topic: topic.into(),
            partition,
            next_offset,
        }
    }

    #[test]
    fn start_is_the_later_of_redb_and_kafka() {
        // Crashed after the redb commit, before the Kafka commit: redb wins.
        assert_eq!(start_position(Some(150), Some(100)), Some(150));
        // Another node consumed since: Kafka wins.
        assert_eq!(start_position(Some(100), Some(200)), Some(200));
        assert_eq!(start_position(Some(7), None), Some(7));
        assert_eq!(start_position(None, Some(7)), Some(7));
        // Negative values are librdkafka's logical offsets, never positions.
        assert_eq!(start_position(None, Some(-1001)), None);
        assert_eq!(start_position(None, None), None);
    }

    #[test]
    fn live_positions_follow_assignment_and_commits() {
        let book = OffsetBook::from_stored(&[offset("t", 0, 100), offset("t", 1, 5)]);
        assert_eq!(book.durable("t", 0), Some(100));
        assert_eq!(
            book.live("t", 0),
            None,
            "nothing is owned before an assignment"
        );

        assert_eq!(book.assign("t", 0, Some(200)), Some(200));
        assert_eq!(book.live("t", 0), Some(200));
        assert_eq!(
            book.durable("t", 0),
            Some(100),
            "redb is not rewritten by an assignment"
        );

        book.stored([("t", 0, 250), ("t", 2, 3)]);
        assert_eq!(book.durable("t", 0), Some(250));
        assert_eq!(book.live("t", 0), Some(250));
        assert_eq!(book.durable("t", 2), Some(3));

        // Stale commits never move a position backwards.
        book.stored([("t", 0, 240)]);
        assert_eq!(book.durable("t", 0), Some(250));

        assert_eq!(book.revoke("t", 0), Some(250));
        assert_eq!(book.live("t", 0), None);
        assert_eq!(
            book.revoke("t", 1),
            None,
            "t/1 was never owned: nothing to hand over"
        );
        assert_eq!(
            book.durable("t", 0),
            Some(250),
            "durable positions outlive ownership"
        );

        assert_eq!(book.assign("u", 0, None), None);
        assert_eq!(book.live("u", 0), None);
    }
}
