//! How an aggregate query is split between the result cache and the tiers.
//!
//! The time axis is cut into *chunks*: epoch-aligned spans of a whole number of buckets, about
//! an hour long (one bucket when buckets are longer). A chunk that ends at or before the
//! closed horizon (now − `max_lateness`) can only change through a late event, and late
//! events bump the cache version of the days they land in, so such a chunk's
//! [`PartialAggregate`] can be cached and reused by every later query of the same shape,
//! whatever its exact `from` and `to`: a dashboard sliding its window reuses all chunks but
//! the newest.
//!
//! Whatever the cache does not cover is computed live through the tiers: the head before the
//! first whole chunk, the chunks the cache misses (one contiguous span, so one tier read),
//! and the tail from the last whole closed chunk to `to` (the open part). Adjacent pieces
//! are read as one range.
//!
//! # Bounded work per query
//!
//! Planning walks the cached chunks one by one and the cache's versions day by day, on the
//! request's async worker. Both walks are bounded whatever range is asked for: only the most
//! recent [`MAX_CACHED_CHUNKS`] closed chunks, and no more than [`MAX_CACHED_DAYS`] days, are
//! looked up in the cache ([`ChunkSpan::recent`]); anything older goes to the live read, whose
//! cost follows the data the tiers hold, not the days asked for. The open part never
//! reaches the cache (it ends at the closed horizon, before now), so a range running far
//! into the future costs nothing here either. The answer itself is bounded by
//! [`crate::StoreConfig::max_answer_cells`].

use strata_types::{
    PartialAggregate, TimeRange,
    time::{DAY, HOUR},
};

/// Aim for chunks of about this length (micros): long enough that a query touches few cache
/// entries, short enough that a sliding window reuses almost all of them.
const CHUNK_TARGET: i64 = HOUR;

/// Most chunks of one query looked up in (and stored to) the cache: a bit over two years of
/// hourly chunks.
pub(crate) const MAX_CACHED_CHUNKS: i64 = 20_000;
/// Most UTC days the cached chunks of one query may span (each costs two version lookups).
pub(crate) const MAX_CACHED_DAYS: i64 = 3_660;

/// Chunk width for `bucket` (both in micros): the smallest multiple of `bucket` that is at
/// least [`CHUNK_TARGET`], or `bucket` itself when it is longer.
pub(crate) fn chunk_width(bucket: i64) -> i64 {
    let bucket = bucket.max(1);
    let k = (CHUNK_TARGET + bucket - 1) / bucket;
    bucket.saturating_mul(k.max(1))
}

/// The whole chunks `[start, end)` (a multiple of `width` apart) that a query may take from
/// the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkSpan {
    /// First chunk's start.
    pub(crate) start: i64,
    /// Last chunk's end.
    pub(crate) end: i64,
    /// Chunk width.
    pub(crate) width: i64,
}

impl ChunkSpan {
    /// The newest part of the span that a query may take from the cache: at most
    /// [`MAX_CACHED_CHUNKS`] chunks spanning at most [`MAX_CACHED_DAYS`] days; `None` when
    /// a single chunk spans more (such buckets are always read live). What is cut off is
    /// read live like the head of the range.
    pub(crate) fn recent(self) -> Option<Self> {
        let chunks = (self.end - self.start) / self.width;
        // Chunks of `width` touching at most MAX_CACHED_DAYS days (a chunk may straddle one
        // more day than its length covers).
        let by_days = (MAX_CACHED_DAYS - 1).saturating_mul(DAY) / self.width;
        let keep = chunks.min(MAX_CACHED_CHUNKS).min(by_days);
        (keep > 0).then(|| Self {
            start: self.end - keep * self.width,
            ..self
        })
    }

    /// Chunk starts, in order.
    pub(crate) fn starts(&self) -> impl Iterator<Item = i64> + '_ {
        let n = (self.end - self.start) / self.width;
        (0..n).map(move |i| self.start + i * self.width)
    }
}

/// The closed whole chunks inside `range` for buckets of `bucket` micros, when the closed
/// horizon is `horizon` (every bucket ending at or before it is closed); `None` when there
/// is none (or the arithmetic would leave `i64`).
pub(crate) fn chunk_span(range: TimeRange, bucket: i64, horizon: i64) -> Option<ChunkSpan> {
    if bucket <= 0 || range.from >= range.to {
        return None;
    }
    let width = chunk_width(bucket);
    let start = ceil_to(range.from, width)?;
    let end = floor_to(range.to.min(horizon), width)?;
    (start < end).then_some(ChunkSpan { start, end, width })
}

/// The ranges to read live: the part of `range` before `span`, the missed chunks `missing`
/// (a contiguous run of `span`), and the part after `span`, with adjacent ones joined.
pub(crate) fn live_ranges(
    range: TimeRange,
    span: ChunkSpan,
    missing: Option<(i64, i64)>,
) -> Vec<TimeRange> {
    let mut pieces = Vec::with_capacity(3);
    if range.from < span.start {
        pieces.push(TimeRange {
            from: range.from,
            to: span.start,
        });
    }
    if let Some((from, to)) = missing {
        pieces.push(TimeRange { from, to });
    }
    if span.end < range.to {
        pieces.push(TimeRange {
            from: span.end,
            to: range.to,
        });
    }
    let mut out: Vec<TimeRange> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match out.last_mut() {
            Some(last) if last.to == p.from => last.to = p.to,
            _ => out.push(p),
        }
    }
    out
}

/// The cells of `partial` whose bucket starts in `[start, start + width)`.
pub(crate) fn cells_of_chunk(
    partial: &PartialAggregate,
    start: i64,
    width: i64,
) -> PartialAggregate {
    let end = start.saturating_add(width);
    PartialAggregate {
        cells: partial
            .cells
            .range((start, None)..(end, None))
            .map(|(k, c)| (k.clone(), *c))
            .collect(),
    }
}

fn ceil_to(t: i64, width: i64) -> Option<i64> {
    let floor = floor_to(t, width)?;
    if floor == t {
        Some(t)
    } else {
        floor.checked_add(width)
    }
}

fn floor_to(t: i64, width: i64) -> Option<i64> {
    t.div_euclid(width).checked_mul(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strata_types::{
        AggregateQuery, Event, QueryParams,
        time::{SEC, day_of},
    };

    #[test]
    fn widths_are_whole_buckets() {
        assert_eq!(chunk_width(SEC), HOUR);
        assert_eq!(chunk_width(60 * SEC), HOUR);
        assert_eq!(chunk_width(7 * SEC), 3_605 * SEC);
        assert_eq!(chunk_width(5 * HOUR), 5 * HOUR);
        assert_eq!(chunk_width(DAY), DAY);
    }

    #[test]
    fn the_cached_span_is_bounded_and_newest() {
        let day_chunks = ChunkSpan {
            start: -100_000 * DAY,
            end: 10 * DAY,
            width: DAY,
        };
        let kept = day_chunks.recent().unwrap();
        assert_eq!(kept.end, 10 * DAY);
        assert_eq!((kept.end - kept.start) / DAY, MAX_CACHED_DAYS - 1);
        let hours = ChunkSpan {
            start: 0,
            end: 100_000 * HOUR,
            width: HOUR,
        };
        let kept = hours.recent().unwrap();
        assert_eq!((kept.end - kept.start) / HOUR, MAX_CACHED_CHUNKS);
        let weeks = ChunkSpan {
            start: 0,
            end: 10_000 * 7 * DAY,
            width: 7 * DAY,
        };
        let kept = weeks.recent().unwrap();
        assert!(day_of(kept.end - 1) - day_of(kept.start) < MAX_CACHED_DAYS);
        assert_eq!(kept.start % (7 * DAY), 0);
        let small = ChunkSpan {
            start: 0,
            end: 3 * HOUR,
            width: HOUR,
        };
        assert_eq!(small.recent(), Some(small));
        let huge = ChunkSpan {
            start: 0,
            end: 20_000 * DAY,
            width: 20_000 * DAY,
        };
        assert_eq!(huge.recent(), None, "a chunk of more days is never cached");
    }

    #[test]
    fn extreme_ranges_do_not_overflow() {
        let r = TimeRange {
            from: i64::MIN,
            to: i64::MAX,
        };
        // Flooring i64::MIN to a chunk would leave i64: no span, everything live.
        assert_eq!(chunk_span(r, DAY, i64::MAX), None);
        let r = TimeRange {
            from: i64::MAX - 5,
            to: i64::MAX,
        };
        assert_eq!(chunk_span(r, SEC, i64::MAX), None);
    }

    proptest! {
        /// The cached chunks and the live ranges together cover the query range exactly
        /// once, chunks are closed and bucket-aligned, and live ranges never touch.
        #[test]
        fn chunks_and_live_ranges_partition_the_range(
            from in -400_000i64..400_000,
            len in 1i64..300_000,
            bucket_s in prop::sample::select(vec![1i64, 7, 60, 900, 3_600, 5 * 3_600, 86_400]),
            horizon in -400_000i64..800_000,
            miss in prop::option::of((0i64..50, 0i64..50)),
        ) {
            let range = TimeRange { from: from * SEC, to: (from + len) * SEC };
            let bucket = bucket_s * SEC;
            let horizon = horizon * SEC;
            let Some(span) = chunk_span(range, bucket, horizon) else {
                return Ok(());
            };
            prop_assert!(span.end <= horizon && span.start >= range.from && span.end <= range.to);
            prop_assert_eq!(span.start % bucket, 0);
            prop_assert_eq!(span.width % bucket, 0);
            let missing = miss.map(|(a, b)| {
                let n = (span.end - span.start) / span.width;
                let (a, b) = (a % n, b % n);
                let (a, b) = (a.min(b), a.max(b));
                (span.start + a * span.width, span.start + (b + 1) * span.width)
            });
            let live = live_ranges(range, span, missing);
            for w in live.windows(2) {
                prop_assert!(w[0].to < w[1].from, "joined when adjacent: {live:?}");
            }
            // Count how often each covered second-slot is covered.
            let mut pieces: Vec<(i64, i64)> = live.iter().map(|r| (r.from, r.to)).collect();
            for s in span.starts() {
                let in_missing = missing.is_some_and(|(a, b)| a <= s && s < b);
                if !in_missing {
                    pieces.push((s, s + span.width));
                }
            }
            pieces.sort_unstable();
            prop_assert_eq!(pieces.first().map(|p| p.0), Some(range.from));
            prop_assert_eq!(pieces.last().map(|p| p.1), Some(range.to));
            for w in pieces.windows(2) {
                prop_assert_eq!(w[0].1, w[1].0, "no gap, no overlap: {:?}", pieces);
            }
        }

        /// Splitting a partial into chunks and merging them back gives the partial.
        #[test]
        fn chunk_cells_merge_back(
            ts in prop::collection::vec((0i64..20_000, 0u8..3), 0..100),
            bucket_s in prop::sample::select(vec![1i64, 60, 7, 86_400]),
        ) {
            let bucket = format!("{bucket_s}s");
            let q = AggregateQuery::from_params(&QueryParams {
                tenant: "acme", from: "0", to: &(20_000 * SEC).to_string(), bucket: &bucket,
                agg: "count", group_by: Some("key"), ..Default::default()
            }).unwrap();
            let mut whole = PartialAggregate::default();
            for (i, (t, k)) in ts.iter().enumerate() {
                whole.add(&q, &Event {
                    tenant: "acme".into(), stream: "s".into(), key: format!("k{k}"),
                    id: i.to_string(), ts: t * SEC, value: None,
                    attrs: Default::default(), payload: None,
                });
            }
            let width = chunk_width(q.bucket);
            let mut merged = PartialAggregate::default();
            let mut start = 0;
            while start < 20_000 * SEC {
                merged.merge(cells_of_chunk(&whole, start, width));
                start += width;
            }
            prop_assert_eq!(merged, whole);
        }
    }
}
