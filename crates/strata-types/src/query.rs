//! The aggregate query model shared by every tier.
//!
//! A tier answers an [`AggregateQuery`] with a [`PartialAggregate`]: per (bucket, group) cells
//! of count, value count, sum, min and max. Cells merge associatively, so the planner can add
//! up what each tier holds and only then [`PartialAggregate::finish`] into the requested
//! aggregation (an average is never averaged twice).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    Event,
    time::{MICROS_PER_SEC, parse_duration_micros, parse_param},
    validate::check_name,
};

/// Half-open event-time range `[from, to)` in epoch microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeRange {
    /// Inclusive start.
    pub from: i64,
    /// Exclusive end.
    pub to: i64,
}

impl TimeRange {
    /// Whether `ts` lies in the range.
    pub fn contains(&self, ts: i64) -> bool {
        self.from <= ts && ts < self.to
    }
}

/// The aggregation applied to each bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agg {
    /// Number of events.
    Count,
    /// Sum of `value`.
    Sum,
    /// Smallest `value`.
    Min,
    /// Largest `value`.
    Max,
    /// Mean of `value`.
    Avg,
}

impl std::str::FromStr for Agg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "count" => Self::Count,
            "sum" => Self::Sum,
            "min" => Self::Min,
            "max" => Self::Max,
            "avg" => Self::Avg,
            other => {
                return Err(format!("`{other}` is not one of count, sum, min, max, avg"));
            }
        })
    }
}

/// What buckets are split by besides time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum GroupBy {
    /// One group per bucket.
    #[default]
    None,
    /// One group per event key.
    Key,
    /// One group per value of the named attribute; events without it form the `null` group.
    Attr(String),
}

/// Keep only events whose attribute `name` equals `value`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrFilter {
    /// Attribute name.
    pub name: String,
    /// Required value.
    pub value: String,
}

/// A validated aggregate query. Build it with [`AggregateQuery::from_params`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AggregateQuery {
    /// Tenant whose events are read; never more than one.
    pub tenant: String,
    /// Event-time range.
    pub range: TimeRange,
    /// Bucket width in microseconds; buckets are aligned to the Unix epoch.
    pub bucket: i64,
    /// Aggregation.
    pub agg: Agg,
    /// Only this stream, if set.
    pub stream: Option<String>,
    /// Grouping.
    pub group_by: GroupBy,
    /// Attribute filter.
    pub filter: Option<AttrFilter>,
}

/// A query parameter that is missing or wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct QueryError {
    /// The parameter.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl QueryError {
    fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Smallest bucket.
pub const MIN_BUCKET: i64 = MICROS_PER_SEC;
/// Largest bucket.
pub const MAX_BUCKET: i64 = crate::time::DAY;
/// Most buckets one query may span (keeps a response bounded).
pub const MAX_BUCKETS: i64 = 100_000;

/// Raw query parameters, as both the REST and the gRPC API receive them.
#[derive(Debug, Clone, Default)]
pub struct QueryParams<'a> {
    /// `tenant`
    pub tenant: &'a str,
    /// `from`: RFC 3339 or epoch micros.
    pub from: &'a str,
    /// `to`: RFC 3339 or epoch micros.
    pub to: &'a str,
    /// `bucket`: a duration from `1s` to `1d`.
    pub bucket: &'a str,
    /// `agg`: count, sum, min, max, avg.
    pub agg: &'a str,
    /// `stream`, optional.
    pub stream: Option<&'a str>,
    /// `group_by`: `key` or `attr:NAME`, optional.
    pub group_by: Option<&'a str>,
    /// `filter`: `attr:NAME=VALUE`, optional.
    pub filter: Option<&'a str>,
}

impl AggregateQuery {
    /// Parses and validates query parameters; every error names its parameter.
    pub fn from_params(p: &QueryParams<'_>) -> Result<Self, QueryError> {
        check_name("tenant", p.tenant).map_err(|e| QueryError::new("tenant", e.reason))?;
        let from = parse_param(p.from).map_err(|r| QueryError::new("from", r))?;
        let to = parse_param(p.to).map_err(|r| QueryError::new("to", r))?;
        if to <= from {
            return Err(QueryError::new("to", "must be after `from`"));
        }
        let bucket = parse_duration_micros(p.bucket).map_err(|r| QueryError::new("bucket", r))?;
        if !(MIN_BUCKET..=MAX_BUCKET).contains(&bucket) || bucket % MICROS_PER_SEC != 0 {
            return Err(QueryError::new(
                "bucket",
                "must be a whole number of seconds from 1s to 1d",
            ));
        }
        // `from` and `to` are within MIN_TS..=MAX_TS, so this cannot overflow; the bound
        // on buckets keeps every later loop over them bounded by it.
        let span = (to - from) / bucket + 2;
        if span > MAX_BUCKETS {
            return Err(QueryError::new(
                "bucket",
                format!(
                    "the range spans {span} buckets; the limit is {MAX_BUCKETS}: use a wider bucket"
                ),
            ));
        }
        let agg = p.agg.parse().map_err(|r| QueryError::new("agg", r))?;
        let stream = match p.stream.filter(|s| !s.is_empty()) {
            Some(s) => {
                check_name("stream", s).map_err(|e| QueryError::new("stream", e.reason))?;
                Some(s.to_owned())
            }
            None => None,
        };
        let group_by = match p.group_by.filter(|s| !s.is_empty()) {
            None => GroupBy::None,
            Some("key") => GroupBy::Key,
            Some(g) => match g.strip_prefix("attr:") {
                Some(name) if !name.is_empty() => GroupBy::Attr(name.to_owned()),
                _ => {
                    return Err(QueryError::new("group_by", "must be `key` or `attr:NAME`"));
                }
            },
        };
        let filter = match p.filter.filter(|s| !s.is_empty()) {
            None => None,
            Some(f) => match f.strip_prefix("attr:").and_then(|r| r.split_once('=')) {
                Some((name, value)) if !name.is_empty() => Some(AttrFilter {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }),
                _ => return Err(QueryError::new("filter", "must be `attr:NAME=VALUE`")),
            },
        };
        Ok(Self {
            tenant: p.tenant.to_owned(),
            range: TimeRange { from, to },
            bucket,
            agg,
            stream,
            group_by,
            filter,
        })
    }

    /// Whether `e` is counted by this query (tenant, range, stream and filter).
    pub fn matches(&self, e: &Event) -> bool {
        e.tenant == self.tenant
            && self.range.contains(e.ts)
            && self.stream.as_ref().is_none_or(|s| *s == e.stream)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| e.attrs.get(&f.name) == Some(&f.value))
    }

    /// Start of the epoch-aligned bucket holding `ts`.
    pub fn bucket_start(&self, ts: i64) -> i64 {
        ts - ts.rem_euclid(self.bucket)
    }

    /// The group `e` falls in.
    pub fn group_of(&self, e: &Event) -> Option<String> {
        match &self.group_by {
            GroupBy::None => None,
            GroupBy::Key => Some(e.key.clone()),
            GroupBy::Attr(name) => e.attrs.get(name).cloned(),
        }
    }
}

/// Running aggregates of one (bucket, group).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// Events counted.
    pub count: u64,
    /// Events that carried a `value`.
    pub value_count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value (`+inf` when none).
    pub min: f64,
    /// Largest value (`-inf` when none).
    pub max: f64,
}

impl Default for Cell {
    fn default() -> Self {
        Self {
            count: 0,
            value_count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Cell {
    /// Counts one event with an optional value.
    pub fn add(&mut self, value: Option<f64>) {
        self.count += 1;
        if let Some(v) = value {
            self.value_count += 1;
            self.sum += v;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// Folds another cell of the same (bucket, group) in.
    pub fn merge(&mut self, o: &Cell) {
        self.count += o.count;
        self.value_count += o.value_count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// The final value for `agg`; `None` when the aggregation has no values to work on
    /// (SQL's NULL for SUM/MIN/MAX/AVG over no values).
    pub fn finish(&self, agg: Agg) -> Option<f64> {
        match agg {
            Agg::Count => Some(self.count as f64),
            _ if self.value_count == 0 => None,
            Agg::Sum => Some(self.sum),
            Agg::Min => Some(self.min),
            Agg::Max => Some(self.max),
            Agg::Avg => Some(self.sum / self.value_count as f64),
        }
    }
}

/// Per (bucket start, group) cells; what each tier returns and the planner merges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartialAggregate {
    /// Cells keyed by (bucket start in epoch micros, group).
    pub cells: BTreeMap<(i64, Option<String>), Cell>,
}

/// One finished bucket of an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Bucket start, epoch micros.
    pub start: i64,
    /// Group, when grouping (or `None` for events without the grouped attribute).
    pub group: Option<String>,
    /// The aggregate; `None` when no event of the bucket carried a value.
    pub value: Option<f64>,
}

impl PartialAggregate {
    /// Counts `e` if `q` matches it.
    pub fn add(&mut self, q: &AggregateQuery, e: &Event) {
        if q.matches(e) {
            self.cells
                .entry((q.bucket_start(e.ts), q.group_of(e)))
                .or_default()
                .add(e.value);
        }
    }

    /// Folds another partial of the same query in.
    pub fn merge(&mut self, other: PartialAggregate) {
        for (k, c) in other.cells {
            self.cells.entry(k).or_default().merge(&c);
        }
    }

    /// The answer: non-empty buckets ordered by start, then group.
    pub fn finish(&self, agg: Agg) -> Vec<Bucket> {
        self.cells
            .iter()
            .map(|((start, group), c)| Bucket {
                start: *start,
                group: group.clone(),
                value: c.finish(agg),
            })
            .collect()
    }

    /// Total events counted.
    pub fn total_count(&self) -> u64 {
        self.cells.values().map(|c| c.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params<'a>() -> QueryParams<'a> {
        QueryParams {
            tenant: "acme",
            from: "2026-11-20T00:00:00Z",
            to: "2026-11-21T00:00:00Z",
            bucket: "1h",
            agg: "count",
            ..Default::default()
        }
    }

    #[test]
    fn hostile_ranges_are_refused_without_overflow() {
        let max = i64::MAX.to_string();
        let min = i64::MIN.to_string();
        for (from, to, field) in [
            ("-1", max.as_str(), "to"),
            (min.as_str(), "0", "from"),
            ("0", "253402300800000000", "to"),
        ] {
            let err = AggregateQuery::from_params(&QueryParams {
                from,
                to,
                bucket: "1s",
                ..params()
            })
            .unwrap_err();
            assert_eq!(err.field, field, "{from}..{to}: {}", err.reason);
        }
        // The widest range with the widest bucket is still bounded by MAX_BUCKETS.
        let err = AggregateQuery::from_params(&QueryParams {
            from: "0001-01-01T00:00:00Z",
            to: "9999-12-31T23:59:59Z",
            bucket: "1d",
            ..params()
        })
        .unwrap_err();
        assert_eq!(err.field, "bucket");
    }

    #[test]
    fn parses_and_names_bad_params() {
        let q = AggregateQuery::from_params(&QueryParams {
            group_by: Some("attr:page"),
            filter: Some("attr:country=de"),
            ..params()
        })
        .unwrap();
        assert_eq!(q.group_by, GroupBy::Attr("page".into()));
        assert_eq!(q.filter.unwrap().value, "de");
        let bad = [
            (
                QueryParams {
                    tenant: "A",
                    ..params()
                },
                "tenant",
            ),
            (
                QueryParams {
                    from: "x",
                    ..params()
                },
                "from",
            ),
            (
                QueryParams {
                    to: "2026-11-19T00:00:00Z",
                    ..params()
                },
                "to",
            ),
            (
                QueryParams {
                    bucket: "500ms",
                    ..params()
                },
                "bucket",
            ),
            (
                QueryParams {
                    bucket: "2d",
                    ..params()
                },
                "bucket",
            ),
            (
                QueryParams {
                    bucket: "1s",
                    to: "2027-11-21T00:00:00Z",
                    ..params()
                },
                "bucket",
            ),
            (
                QueryParams {
                    agg: "median",
                    ..params()
                },
                "agg",
            ),
            (
                QueryParams {
                    group_by: Some("attr:"),
                    ..params()
                },
                "group_by",
            ),
            (
                QueryParams {
                    filter: Some("page=x"),
                    ..params()
                },
                "filter",
            ),
        ];
        for (p, field) in bad {
            assert_eq!(AggregateQuery::from_params(&p).unwrap_err().field, field);
        }
    }

    #[test]
    fn negative_timestamps_bucket_down() {
        let q = AggregateQuery::from_params(&params()).unwrap();
        assert_eq!(q.bucket_start(-1), -q.bucket);
        assert_eq!(q.bucket_start(q.bucket + 5), q.bucket);
    }

    proptest! {
        /// Splitting events into any two parts and merging the partials equals aggregating
        /// all of them at once: the property the planner's tier merge relies on.
        #[test]
        fn merge_of_split_equals_whole(
            vals in prop::collection::vec((0i64..86_400, prop::option::of(-1e6f64..1e6), 0u8..3), 0..200),
            split in 0usize..200,
        ) {
            let q = AggregateQuery::from_params(&QueryParams {
                from: "0", to: "86400000000", bucket: "1h", group_by: Some("key"), ..params()
            }).unwrap();
            let events: Vec<Event> = vals.iter().enumerate().map(|(i, (s, v, k))| Event {
                tenant: "acme".into(), stream: "s".into(), key: format!("k{k}"),
                id: i.to_string(), ts: s * MICROS_PER_SEC, value: *v,
                attrs: Default::default(), payload: None,
            }).collect();
            let mut whole = PartialAggregate::default();
            events.iter().for_each(|e| whole.add(&q, e));
            let split = split.min(events.len());
            let (mut a, mut b) = (PartialAggregate::default(), PartialAggregate::default());
            events[..split].iter().for_each(|e| a.add(&q, e));
            events[split..].iter().for_each(|e| b.add(&q, e));
            a.merge(b);
            prop_assert_eq!(whole.cells.len(), a.cells.len());
            for (k, c) in &whole.cells {
                let m = a.cells[k];
                prop_assert_eq!(c.count, m.count);
                prop_assert_eq!(c.min, m.min);
                prop_assert_eq!(c.max, m.max);
                prop_assert!((c.sum - m.sum).abs() <= 1e-6 * c.sum.abs().max(1.0));
            }
        }
    }
}
