//! How a warm aggregate is split between rollups and raw rows, shared by every backend so
//! they take the same shortcuts under the same conditions.
//!
//! Rollups hold count, value count, sum, min and max per `(tenant, stream, bucket)` for
//! one-minute and one-hour buckets. They answer a query only when
//!
//! * the query neither groups nor filters by key or attribute (a rollup row has neither),
//! * the query's bucket is a multiple of the rollup width (so a rollup bucket never straddles
//!   two answer buckets), and
//! * no row of the watermark's node above `released_upto` is in warm (a rollup cannot filter
//!   by sequence number); the backend checks this in the same snapshot it reads from.
//!
//! The range is then cut into raw edges and rolled-up middles: hours where whole hours fit,
//! minutes where whole minutes fit, raw rows for the rest. Everything below the retention
//! cutoff is read raw (and finds nothing), since rollup buckets there may still count rows
//! retention removed.

use std::collections::BTreeMap;

use strata_types::{
    AggregateQuery, Cell, GroupBy, StoredEvent, TimeRange,
    time::{HOUR, MINUTE, day_of, day_start},
};

/// Rollup widths, widest first.
pub(crate) const WIDTHS: [i64; 2] = [HOUR, MINUTE];

/// Where one segment of a query's range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// The rows themselves.
    Raw,
    /// The rollup of this width (micros).
    Rollup(i64),
}

/// A piece of the query's range and where to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) source: Source,
    pub(crate) range: TimeRange,
}

/// The range actually read: rows below the retention cutoff are gone (or about to be), so a
/// query never counts them even while a retention pass is still deleting.
pub(crate) fn clip(range: TimeRange, retention_cutoff: i64) -> Option<TimeRange> {
    let from = range.from.max(retention_cutoff);
    (from < range.to).then_some(TimeRange { from, to: range.to })
}

/// Whether rollups could answer `q` at all (before the watermark check).
pub(crate) fn rollup_shaped(q: &AggregateQuery) -> bool {
    q.group_by == GroupBy::None && q.filter.is_none() && WIDTHS.iter().any(|w| q.bucket % w == 0)
}

/// Splits the (already clipped) `range` of `q` into segments. With `use_rollups` false, or
/// for a query rollups cannot answer, the whole range is one raw segment.
pub(crate) fn plan(q: &AggregateQuery, range: TimeRange, use_rollups: bool) -> Vec<Segment> {
    let widths: Vec<i64> = if use_rollups && rollup_shaped(q) {
        WIDTHS
            .iter()
            .copied()
            .filter(|w| q.bucket % w == 0)
            .collect()
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    split(range, &widths, &mut out);
    out
}

/// Like [`plan`], but the parts of `range` that overlap any of `raw_only` (ranges whose
/// rollups may be stale) are read raw while the rest may still use rollups. Adjacent raw
/// segments are merged, so each raw stretch costs one read.
pub(crate) fn plan_around(
    q: &AggregateQuery,
    range: TimeRange,
    use_rollups: bool,
    raw_only: &[TimeRange],
) -> Vec<Segment> {
    let mut islands: Vec<TimeRange> = raw_only
        .iter()
        .filter_map(|r| {
            let from = r.from.max(range.from);
            let to = r.to.min(range.to);
            (from < to).then_some(TimeRange { from, to })
        })
        .collect();
    islands.sort_by_key(|r| r.from);
    let mut pieces = Vec::new();
    let mut at = range.from;
    for island in islands {
        if island.from > at {
            pieces.extend(plan(
                q,
                TimeRange {
                    from: at,
                    to: island.from,
                },
                use_rollups,
            ));
        }
        let from = island.from.max(at);
        if from < island.to {
            pieces.push(Segment {
                source: Source::Raw,
                range: TimeRange {
                    from,
                    to: island.to,
                },
            });
        }
        at = at.max(island.to);
    }
    pieces.extend(plan(
        q,
        TimeRange {
            from: at,
            to: range.to,
        },
        use_rollups,
    ));
    let mut out: Vec<Segment> = Vec::with_capacity(pieces.len());
    for seg in pieces {
        match out.last_mut() {
            Some(last)
                if last.source == Source::Raw
                    && seg.source == Source::Raw
                    && last.range.to == seg.range.from =>
            {
                last.range.to = seg.range.to;
            }
            _ => out.push(seg),
        }
    }
    out
}

fn split(range: TimeRange, widths: &[i64], out: &mut Vec<Segment>) {
    if range.from >= range.to {
        return;
    }
    let Some((&w, rest)) = widths.split_first() else {
        out.push(Segment {
            source: Source::Raw,
            range,
        });
        return;
    };
    let a = ceil_to(range.from, w);
    let b = floor_to(range.to, w);
    if a >= b {
        split(range, rest, out);
        return;
    }
    split(
        TimeRange {
            from: range.from,
            to: a,
        },
        rest,
        out,
    );
    out.push(Segment {
        source: Source::Rollup(w),
        range: TimeRange { from: a, to: b },
    });
    split(
        TimeRange {
            from: b,
            to: range.to,
        },
        rest,
        out,
    );
}

/// Largest multiple of `w` at or below `t` (epoch-aligned, also for negative `t`).
pub(crate) fn floor_to(t: i64, w: i64) -> i64 {
    t - t.rem_euclid(w)
}

/// Smallest multiple of `w` at or above `t`.
pub(crate) fn ceil_to(t: i64, w: i64) -> i64 {
    let f = floor_to(t, w);
    if f == t { t } else { f.saturating_add(w) }
}

/// Rollup cells a batch adds: per `(tenant, stream, bucket start)` at width `w`.
pub(crate) fn rollup_deltas<'a>(
    rows: impl IntoIterator<Item = &'a StoredEvent>,
    w: i64,
) -> BTreeMap<(String, String, i64), Cell> {
    let mut out: BTreeMap<(String, String, i64), Cell> = BTreeMap::new();
    for r in rows {
        let e = &r.event;
        out.entry((e.tenant.clone(), e.stream.clone(), floor_to(e.ts, w)))
            .or_default()
            .add(e.value);
    }
    out
}

/// The first and the last-plus-one microsecond of UTC day `day`: the rows of one partition.
pub(crate) fn day_range(day: i64) -> (i64, i64) {
    (day_start(day), day_start(day.saturating_add(1)))
}

/// The first and the last day a partition listing over `range` covers: every day the
/// half-open range touches, or every day when there is none.
pub(crate) fn days_touched(range: Option<TimeRange>) -> (i64, i64) {
    match range {
        Some(r) => (day_of(r.from), day_of(r.to.saturating_sub(1))),
        None => (i64::MIN, i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use strata_types::{QueryParams, time::SEC};

    use super::*;

    fn q(bucket: &str, group_by: Option<&str>) -> AggregateQuery {
        AggregateQuery::from_params(&QueryParams {
            tenant: "acme",
            from: "0",
            to: "86400000000",
            bucket,
            agg: "count",
            group_by,
            ..Default::default()
        })
        .unwrap()
    }

    fn covered(segments: &[Segment]) -> Vec<(i64, i64)> {
        segments
            .iter()
            .map(|s| (s.range.from, s.range.to))
            .collect()
    }

    #[test]
    fn splits_into_raw_edges_and_rolled_middles() {
        let range = TimeRange {
            from: 5 * SEC,
            to: 2 * HOUR + 3 * MINUTE + 7,
        };
        let segments = plan(&q("1h", None), range, true);
        let sources: Vec<Source> = segments.iter().map(|s| s.source).collect();
        assert_eq!(
            sources,
            vec![
                Source::Raw,
                Source::Rollup(MINUTE),
                Source::Rollup(HOUR),
                Source::Rollup(MINUTE),
                Source::Raw
            ]
        );
        // Contiguous and covering exactly the range.
        let c = covered(&segments);
        assert_eq!(c.first().unwrap().0, range.from);
        assert_eq!(c.last().unwrap().1, range.to);
        assert!(c.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(c[2], (HOUR, 2 * HOUR));
    }

    #[test]
    fn no_rollups_when_they_cannot_answer() {
        let range = TimeRange {
            from: 0,
            to: 3 * HOUR,
        };
        for (bucket, group) in [("1h", Some("key")), ("90s", None), ("15s", None)] {
            let s = plan(&q(bucket, group), range, true);
            assert_eq!(s.len(), 1, "{bucket} {group:?}");
            assert_eq!(s[0].source, Source::Raw);
        }
        // A 15-minute bucket uses minutes only.
        let s = plan(&q("15m", None), range, true);
        assert_eq!(
            s,
            vec![Segment {
                source: Source::Rollup(MINUTE),
                range
            }]
        );
        assert_eq!(plan(&q("1h", None), range, false)[0].source, Source::Raw);
    }

    #[test]
    fn stale_ranges_are_read_raw_and_the_rest_rolled_up() {
        let range = TimeRange {
            from: 0,
            to: 3 * HOUR,
        };
        // One stale minute inside the second hour, one overlapping the range's end, one
        // outside it, given out of order.
        let stale = [
            TimeRange {
                from: 3 * HOUR - MINUTE,
                to: 3 * HOUR + 5 * MINUTE,
            },
            TimeRange {
                from: HOUR + 7 * MINUTE,
                to: HOUR + 8 * MINUTE,
            },
            TimeRange {
                from: 5 * HOUR,
                to: 6 * HOUR,
            },
        ];
        let segments = plan_around(&q("1h", None), range, true, &stale);
        let got: Vec<(Source, i64, i64)> = segments
            .iter()
            .map(|s| (s.source, s.range.from, s.range.to))
            .collect();
        assert_eq!(
            got,
            vec![
                (Source::Rollup(HOUR), 0, HOUR),
                (Source::Rollup(MINUTE), HOUR, HOUR + 7 * MINUTE),
                (Source::Raw, HOUR + 7 * MINUTE, HOUR + 8 * MINUTE),
                (Source::Rollup(MINUTE), HOUR + 8 * MINUTE, 3 * HOUR - MINUTE),
                (Source::Raw, 3 * HOUR - MINUTE, 3 * HOUR),
            ]
        );
        // Raw neighbours merge: an unaligned edge next to a stale minute is one read.
        let range = TimeRange {
            from: 5,
            to: 2 * HOUR,
        };
        let stale = [TimeRange {
            from: MINUTE,
            to: 2 * MINUTE,
        }];
        let segments = plan_around(&q("1m", None), range, true, &stale);
        assert_eq!(segments[0].source, Source::Raw);
        assert_eq!(
            segments[0].range,
            TimeRange {
                from: 5,
                to: 2 * MINUTE
            }
        );
        assert!(segments[1..].iter().all(|s| s.source != Source::Raw));
        let c = covered(&segments);
        assert!(c.windows(2).all(|w| w[0].1 == w[1].0));
        assert_eq!(c.last().unwrap().1, range.to);
        // Without rollups, or with nothing stale, it is plan().
        assert_eq!(
            plan_around(&q("1h", None), range, false, &stale),
            plan(&q("1h", None), range, false)
        );
        assert_eq!(
            plan_around(&q("1h", None), range, true, &[]),
            plan(&q("1h", None), range, true)
        );
    }

    #[test]
    fn rounding_and_clipping() {
        assert_eq!(floor_to(-1, MINUTE), -MINUTE);
        assert_eq!(ceil_to(-1, MINUTE), 0);
        assert_eq!(ceil_to(MINUTE, MINUTE), MINUTE);
        let r = TimeRange { from: 0, to: 10 };
        assert_eq!(clip(r, 4), Some(TimeRange { from: 4, to: 10 }));
        assert_eq!(clip(r, 10), None);
        assert_eq!(clip(r, -5), Some(r));
    }

    #[test]
    fn days_of_partitions() {
        use strata_types::time::DAY;
        assert_eq!(day_range(1), (DAY, 2 * DAY));
        assert_eq!(day_range(-1), (-DAY, 0));
        let r = TimeRange {
            from: DAY - 1,
            to: 2 * DAY,
        };
        assert_eq!(days_touched(Some(r)), (0, 1), "`to` is exclusive");
        assert_eq!(days_touched(None), (i64::MIN, i64::MAX));
    }
}
