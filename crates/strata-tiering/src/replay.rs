//! Ordered replay across the tiers: every event of a tenant's range, exactly once, in
//! `(ts, id)` order, resumable from a cursor.
//!
//! # Order and cursor
//!
//! Events come out ordered by event time, ties broken by id. An id is unique per tenant, so
//! the order is total and does not depend on which tier holds an event. The cursor after an
//! event is that `(ts, id)` pair ([`ReplayCursor`], encoded as an opaque URL-safe string);
//! a replay started with it yields exactly the events that sort after it.
//!
//! # Exactly once while data moves
//!
//! The range is read in time slices. Each slice is read from every tier by the rules the
//! aggregate planner uses ([`Store`]'s docs): the hot tier first, together with the
//! sequence number up to which it has released events to warm; then warm, restricted by
//! that watermark, between two reads of the cold pointers (so the warm rows and the cold
//! manifest versions describe one state: an exported row is in one of them, never both,
//! never neither); then cold at exactly those versions. The slice is sorted and emitted.
//!
//! `HotTier::scan` does not report the watermark it read at, so it is taken from
//! `stats().released_upto` before and after the scan: the hot store plans a scan and
//! answers `stats()` under the same index lock, and `released_upto` only grows, so when both
//! reads agree the scan saw exactly that watermark. When a release lands in between the scan
//! is repeated; after a few misses the last attempt holds the store's release gate (which
//! the flusher takes exclusively around each hot release). Should a release still slip in
//! (a flusher that was not built from this store), the later watermark is used: the events
//! released in between are then read from both hot and warm, never from neither.
//!
//! Within a slice, events are de-duplicated by `(ts, id)` after sorting. Normally that
//! removes nothing; [`REPLAY_DUPLICATES`] counts what it removed, labelled
//! `cause="release_race"` when the hot watermark moved while the slice was read (a release
//! and an export of the same rows in that window, or the case above) and
//! `cause="unexpected"` otherwise, which points at a bug and is logged as a warning.
//!
//! # Memory
//!
//! A slice holds at most [`ReplayConfig::max_slice_events`] events (counted before the
//! stream, key and attribute filters, since that is what is read). A slice that would hold
//! more is abandoned and read again at half the width; a slice that held less than a quarter
//! of the bound doubles the width of the next one, up to [`ReplayConfig::max_slice`]. An
//! empty slice quadruples the width of the next one without that bound, so a replay over a
//! huge range (year 1 to year 9999) crosses its empty spans in a few dozen reads and takes
//! time in proportion to its data, not to its range. Only
//! when more events than the bound share a single microsecond is a slice (one microsecond
//! wide) read whole. So a replay holds about `max_slice_events` events, plus one row group of
//! a cold file and one warm page while reading.
//!
//! # Share of the machine
//!
//! Replays run as ordinary tokio tasks of the request that asked for them, so they never get
//! a thread of their own; three things keep them from starving live ingest and queries:
//!
//! * at most [`ReplayConfig::max_concurrent`] replays read at once per [`ReplayLimits`],
//!   and at most [`ReplayConfig::max_concurrent_per_tenant`] of one tenant; further replays
//!   wait (first come, first served) until one ends — the response has started, its first
//!   event is just later;
//! * a replay reads only while its client reads: it runs at most a few events ahead of the
//!   client, and when the client takes no event for [`ReplayConfig::idle_timeout`] the
//!   replay ends with an `unavailable` error (resume from the last cursor) and frees its
//!   slot;
//! * each replay emits at most `max_rate` events per second (token bucket; the request may
//!   ask for less, never for more than [`ReplayConfig::max_rate`]);
//! * a replay yields to the scheduler after each slice, and each tier read is one bounded
//!   request (hot scans run on the blocking pool).
//!
//! Dropping the stream stops the work at the next await point and frees the slot, also
//! while the replay still waits for one; the `strata_replays_waiting` and
//! `strata_replays_active` gauges are taken back by guards when that happens.

use std::{
    collections::VecDeque,
    fmt,
    num::NonZeroU32,
    sync::Arc,
    time::{Duration, Instant},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::{StreamExt, stream::BoxStream};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use strata_core::{
    cold::LivePartition,
    hot::HotWatermark,
    warm::{ScanRequest, WarmTier},
};
use strata_types::{
    AttrFilter, Event, QueryError, StoredEvent, TimeRange,
    time::{duration_micros, parse_param},
    validate::check_name,
};
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result, Store};

mod limits;

use limits::Slot;
pub use limits::{ReplayConfig, ReplayLimits};

/// Events a replay runs ahead of its client. Small, so a replay whose client stops reading
/// stops reading the tiers soon, and the slot is held only while the client reads.
const AHEAD_EVENTS: usize = 32;

/// Events emitted by replays.
pub const REPLAY_EVENTS: &str = "strata_replay_events_total";
/// Time slices read by replays (`outcome` = read | split).
pub const REPLAY_SLICES: &str = "strata_replay_slices_total";
/// Events a replay read twice within a slice and dropped (`cause` = release_race |
/// unexpected); `unexpected` points at a bug.
pub const REPLAY_DUPLICATES: &str = "strata_replay_duplicates_total";
/// Replays reading now (holding one of the `max_concurrent` slots).
pub const REPLAYS_ACTIVE: &str = "strata_replays_active";
/// Replays waiting for a slot.
pub const REPLAYS_WAITING: &str = "strata_replays_waiting";

/// Registers the descriptions of the replay metrics.
pub fn describe_metrics() {
    metrics::describe_counter!(REPLAY_EVENTS, "Events emitted by replays.");
    metrics::describe_counter!(REPLAY_SLICES, "Time slices read by replays, by outcome.");
    metrics::describe_counter!(
        REPLAY_DUPLICATES,
        "Events read twice within a replay slice and dropped, by cause."
    );
    metrics::describe_gauge!(REPLAYS_ACTIVE, "Replays reading now.");
    metrics::describe_gauge!(REPLAYS_WAITING, "Replays waiting for a slot.");
}

/// Cursor format version; bump when the encoding changes.
const CURSOR_VERSION: u8 = 1;
/// Longest id a cursor may carry (ids are far shorter under any sane limit; this only bounds
/// what an untrusted cursor can make the server hold).
pub const MAX_CURSOR_ID_BYTES: usize = 4096;

/// A position in a replay: the last emitted event's `(ts, id)`. Resuming yields exactly the
/// events ordered after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayCursor {
    /// Event time of the last emitted event (epoch micros).
    pub ts: i64,
    /// Its id.
    pub id: String,
}

impl ReplayCursor {
    /// The cursor right after `event`.
    pub fn after(event: &Event) -> Self {
        Self {
            ts: event.ts,
            id: event.id.clone(),
        }
    }

    /// The opaque, URL-safe text form: base64url (no padding) of a version byte, `ts` as
    /// 8 big-endian bytes, and the id's UTF-8 bytes.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(9 + self.id.len());
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&self.ts.to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Parses [`ReplayCursor::encode`]'s output; every failure names the field `cursor`.
    pub fn decode(s: &str) -> Result<Self, QueryError> {
        let bad = |reason: &str| QueryError {
            field: "cursor".into(),
            reason: format!("is not a replay cursor: {reason}"),
        };
        if s.len() > 4 * (MAX_CURSOR_ID_BYTES + 9) / 3 + 4 {
            return Err(bad("too long"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad("not base64url text"))?;
        let (&version, rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        if version != CURSOR_VERSION {
            return Err(bad(&format!("unknown version {version}")));
        }
        if rest.len() < 9 {
            return Err(bad("truncated"));
        }
        let (ts, id) = rest.split_at(8);
        let ts = i64::from_be_bytes(ts.try_into().map_err(|_| bad("truncated"))?);
        let id = std::str::from_utf8(id).map_err(|_| bad("the id is not UTF-8"))?;
        if id.len() > MAX_CURSOR_ID_BYTES {
            return Err(bad("the id is too long"));
        }
        Ok(Self {
            ts,
            id: id.to_owned(),
        })
    }

    /// Whether `(ts, id)` sorts after this cursor.
    fn precedes(&self, ts: i64, id: &str) -> bool {
        (self.ts, self.id.as_str()) < (ts, id)
    }
}

impl fmt::Display for ReplayCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Raw replay parameters, as both the REST and the gRPC API receive them.
#[derive(Debug, Clone, Default)]
pub struct ReplayParams<'a> {
    /// `tenant`.
    pub tenant: &'a str,
    /// `from`: RFC 3339 or epoch micros (inclusive).
    pub from: &'a str,
    /// `to`: RFC 3339 or epoch micros (exclusive).
    pub to: &'a str,
    /// `stream` values; each may be a comma-separated list. Empty: every stream.
    pub streams: Vec<&'a str>,
    /// `key`: only this entity's events.
    pub key: Option<&'a str>,
    /// `filter`: `attr:NAME=VALUE`.
    pub filter: Option<&'a str>,
    /// `cursor`: resume after this position.
    pub cursor: Option<&'a str>,
    /// `max_rate`: events per second, at least 1.
    pub max_rate: Option<&'a str>,
}

/// A validated replay request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// The one tenant whose events are replayed.
    pub tenant: String,
    /// Event-time range `[from, to)`.
    pub range: TimeRange,
    /// Only these streams; empty means every stream.
    pub streams: Vec<String>,
    /// Only this key, if set.
    pub key: Option<String>,
    /// Only events whose attribute equals the value, if set.
    pub filter: Option<AttrFilter>,
    /// Resume after this position, if set.
    pub after: Option<ReplayCursor>,
    /// Events per second this replay asks for (capped by [`ReplayConfig::max_rate`]).
    pub max_rate: Option<NonZeroU32>,
}

impl ReplayRequest {
    /// Every event of `tenant` in `range`.
    pub fn new(tenant: impl Into<String>, range: TimeRange) -> Self {
        Self {
            tenant: tenant.into(),
            range,
            streams: Vec::new(),
            key: None,
            filter: None,
            after: None,
            max_rate: None,
        }
    }

    /// Parses and validates parameters; every error names its parameter.
    pub fn from_params(p: &ReplayParams<'_>) -> Result<Self, QueryError> {
        let err = |field: &str, reason: String| QueryError {
            field: field.into(),
            reason,
        };
        check_name("tenant", p.tenant).map_err(|e| err("tenant", e.reason))?;
        let from = parse_param(p.from).map_err(|r| err("from", r))?;
        let to = parse_param(p.to).map_err(|r| err("to", r))?;
        if to <= from {
            return Err(err("to", "must be after `from`".into()));
        }
        let mut streams: Vec<String> = Vec::new();
        for s in p.streams.iter().flat_map(|s| s.split(',')) {
            let s = s.trim();
            if s.is_empty() {
                continue;
            }
            check_name("stream", s).map_err(|e| err("stream", e.reason))?;
            if !streams.iter().any(|have| have == s) {
                streams.push(s.to_owned());
            }
        }
        let key = p.key.filter(|k| !k.is_empty()).map(str::to_owned);
        let filter = match p.filter.filter(|f| !f.is_empty()) {
            None => None,
            Some(f) => match f.strip_prefix("attr:").and_then(|r| r.split_once('=')) {
                Some((name, value)) if !name.is_empty() => Some(AttrFilter {
                    name: name.to_owned(),
                    value: value.to_owned(),
                }),
                _ => return Err(err("filter", "must be `attr:NAME=VALUE`".into())),
            },
        };
        let after = match p.cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(ReplayCursor::decode(c)?),
        };
        let max_rate = match p.max_rate.filter(|r| !r.is_empty()) {
            None => None,
            Some(r) => Some(r.parse::<NonZeroU32>().map_err(|_| {
                err(
                    "max_rate",
                    "must be a whole number of events per second from 1 to 4294967295".into(),
                )
            })?),
        };
        Ok(Self {
            tenant: p.tenant.to_owned(),
            range: TimeRange { from, to },
            streams,
            key,
            filter,
            after,
            max_rate,
        })
    }

    /// Whether the replay emits `e` (tenant, range, streams, key, filter and cursor).
    pub fn matches(&self, e: &Event) -> bool {
        e.tenant == self.tenant
            && self.range.contains(e.ts)
            && (self.streams.is_empty() || self.streams.contains(&e.stream))
            && self.key.as_ref().is_none_or(|k| *k == e.key)
            && self
                .filter
                .as_ref()
                .is_none_or(|f| e.attrs.get(&f.name) == Some(&f.value))
            && self.after.as_ref().is_none_or(|c| c.precedes(e.ts, &e.id))
    }

    /// The stream tiers can filter on themselves (exactly one asked for).
    fn single_stream(&self) -> Option<&str> {
        match self.streams.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Whether a cold partition can hold events of this replay within `slice`.
    fn wants_partition(&self, p: &LivePartition, slice: TimeRange) -> bool {
        let range = p.partition.range();
        p.partition.tenant == self.tenant
            && (self.streams.is_empty() || self.streams.contains(&p.partition.stream))
            && range.from < slice.to
            && slice.from < range.to
    }
}

/// One replayed event and the cursor right after it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayItem {
    /// The event as stored.
    pub event: StoredEvent,
    /// Where a replay resumes to continue after this event.
    pub cursor: ReplayCursor,
}

impl ReplayItem {
    /// The event's JSON, as `GET /v1/events/{id}` returns it: the value a replay emits and
    /// checksums (see [`ReplayChecksum`]).
    pub fn json(&self) -> String {
        self.event.to_json()
    }

    /// The NDJSON line of `GET /v1/replay` (without the newline): [`ReplayItem::json`] with a
    /// last top-level field `"cursor"`.
    pub fn line(&self) -> String {
        with_cursor(self.json(), &self.cursor)
    }
}

/// Adds the `"cursor"` field as the last member of an event's JSON object.
fn with_cursor(mut json: String, cursor: &ReplayCursor) -> String {
    if json.ends_with('}') {
        json.pop();
    }
    json.push_str(",\"cursor\":\"");
    json.push_str(&cursor.encode());
    json.push_str("\"}");
    json
}

/// Splits a `GET /v1/replay` event line into the event's JSON (byte for byte what
/// [`ReplayItem::json`] gave) and its cursor; `None` for any other line (an error line).
pub fn split_line(line: &str) -> Option<(String, ReplayCursor)> {
    const FIELD: &str = ",\"cursor\":\"";
    let line = line.trim_end_matches(['\n', '\r']);
    let at = line.rfind(FIELD)?;
    let cursor = line[at + FIELD.len()..].strip_suffix("\"}")?;
    let cursor = ReplayCursor::decode(cursor).ok()?;
    let mut json = String::with_capacity(at + 1);
    json.push_str(&line[..at]);
    json.push('}');
    Some((json, cursor))
}

/// The checksum of a replay's output: SHA-256 over each emitted event's JSON
/// ([`ReplayItem::json`]) followed by a newline, in order. The CLI's output file (one event
/// JSON per line) and the Kafka producer (one event JSON per message value) compute the same
/// value for the same events, so two outputs can be compared.
#[derive(Debug, Clone, Default)]
pub struct ReplayChecksum {
    hasher: Sha256,
    events: u64,
}

impl ReplayChecksum {
    /// An empty checksum.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one emitted event's JSON.
    pub fn update(&mut self, json: &[u8]) {
        self.hasher.update(json);
        self.hasher.update(b"\n");
        self.events += 1;
    }

    /// Events added so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The lowercase hex digest of what was added so far.
    pub fn hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }
}

/// A replay's events, in `(ts, id)` order.
pub type ReplayStream = BoxStream<'static, Result<ReplayItem>>;

impl Store {
    /// Replays `request` (see the module docs): a lazy stream of every matching event of the
    /// tenant exactly once, in `(ts, id)` order, each with the cursor to resume after it.
    /// Nothing is read before the stream is polled; dropping it stops the work. A tier error
    /// ends the stream with that error (resume from the last cursor).
    pub fn replay(&self, request: ReplayRequest, limits: &ReplayLimits) -> ReplayStream {
        let config = Arc::clone(&limits.config);
        let rate = match (request.max_rate, config.max_rate) {
            (Some(asked), Some(cap)) => Some(asked.min(cap)),
            (asked, cap) => asked.or(cap),
        };
        let start = request
            .after
            .as_ref()
            .map_or(request.range.from, |c| c.ts.max(request.range.from));
        let width = micros(config.slice);
        let idle_timeout = config.idle_timeout;
        let state = Replay {
            store: self.clone(),
            request,
            limits: limits.clone(),
            slot: None,
            limiter: rate.map(|r| RateLimiter::direct(Quota::per_second(r))),
            next_from: start,
            width,
            buffer: VecDeque::new(),
            done: false,
            config,
        };
        // Nothing runs before the first poll; then a task reads ahead of the client by at
        // most `AHEAD_EVENTS`. Fused: the API handlers poll once more after the first `None`
        // (they take the first item apart, then chain the rest).
        futures::stream::once(async move { produce(state, idle_timeout) })
            .flatten()
            .fuse()
            .boxed()
    }

    /// One slice of a replay, sorted and de-duplicated, or `None` when it holds more than
    /// `cap` events.
    async fn replay_slice(
        &self,
        request: &ReplayRequest,
        slice: TimeRange,
        cap: usize,
        page_rows: usize,
    ) -> Result<Option<Vec<StoredEvent>>> {
        let stream = request.single_stream();
        let (mut events, released) = self.replay_hot(&request.tenant, slice, stream).await?;
        let mut read = events.len();
        if read > cap {
            return Ok(None);
        }
        events.retain(|e| request.matches(&e.event));
        let watermark = HotWatermark::new(self.node(), released);
        let watermark = &watermark;
        let warm = &**self.warm();
        let budget = cap - read;
        let warm_read = move || read_warm(warm, request, slice, watermark, budget, page_rows);
        let (from_warm, parts) = match self.cold_side() {
            None => (warm_read().await?, Vec::new()),
            Some(cold) => {
                cold.consistent(Some(&request.tenant), Some(slice), warm_read)
                    .await?
            }
        };
        let Some((scanned, kept)) = from_warm else {
            return Ok(None);
        };
        read += scanned;
        events.extend(kept);
        let parts: Vec<LivePartition> = parts
            .into_iter()
            .filter(|p| request.wants_partition(p, slice))
            .collect();
        if let (Some(cold), false) = (self.cold(), parts.is_empty()) {
            let mut rows = cold.read(parts, slice, stream.map(str::to_owned));
            while let Some(row) = rows.next().await {
                let row = row?;
                read += 1;
                if read > cap {
                    return Ok(None);
                }
                if slice.contains(row.event.ts) && request.matches(&row.event) {
                    events.push(row);
                }
            }
        }
        let released_after = self.hot().stats().released_upto;
        events.sort_unstable_by(|a, b| (a.event.ts, &a.event.id).cmp(&(b.event.ts, &b.event.id)));
        let before = events.len();
        events.dedup_by(|a, b| a.event.ts == b.event.ts && a.event.id == b.event.id);
        let dropped = before - events.len();
        if dropped > 0 {
            let cause = if released_after == released {
                tracing::warn!(
                    tenant = %request.tenant,
                    from = slice.from,
                    to = slice.to,
                    dropped,
                    "replay read events twice although no release happened; this is a bug"
                );
                "unexpected"
            } else {
                "release_race"
            };
            metrics::counter!(REPLAY_DUPLICATES, "cause" => cause).increment(dropped as u64);
        }
        Ok(Some(events))
    }

    /// Hot events of a slice with the exact release watermark the scan saw (see the module
    /// docs for why comparing `released_upto` before and after is enough).
    async fn replay_hot(
        &self,
        tenant: &str,
        slice: TimeRange,
        stream: Option<&str>,
    ) -> Result<(Vec<StoredEvent>, u64)> {
        const UNGATED_ATTEMPTS: usize = 4;
        let hot = self.hot();
        for _ in 0..UNGATED_ATTEMPTS {
            let before = hot.stats().released_upto;
            let events = hot.scan(tenant, slice, stream).await?;
            let after = hot.stats().released_upto;
            if before == after {
                return Ok((events, after));
            }
        }
        // Releases keep landing: hold them off for one scan. The gate is held shared, like
        // the write path does, so ingest is not blocked.
        let _gate = self.release_gate().shared().await;
        let events = hot.scan(tenant, slice, stream).await?;
        // Later than (or equal to) what the scan saw: nothing is missed (see module docs).
        Ok((events, hot.stats().released_upto))
    }
}

/// Reads a slice's warm rows page by page: `(rows read, rows kept)`, or `None` past `cap`.
async fn read_warm(
    warm: &dyn WarmTier,
    request: &ReplayRequest,
    slice: TimeRange,
    watermark: &HotWatermark,
    cap: usize,
    page_rows: usize,
) -> strata_core::Result<Option<(usize, Vec<StoredEvent>)>> {
    let mut scan = ScanRequest {
        tenant: request.tenant.clone(),
        range: slice,
        stream: request.single_stream().map(str::to_owned),
        after: None,
        limit: page_rows.max(1),
    };
    let mut read = 0usize;
    let mut kept = Vec::new();
    loop {
        let page = warm.scan(&scan, watermark).await?;
        read += page.events.len();
        if read > cap {
            return Ok(None);
        }
        kept.extend(
            page.events
                .into_iter()
                .filter(|e| request.matches(&e.event)),
        );
        match page.next {
            Some(next) => scan.after = Some(next),
            None => return Ok(Some((read, kept))),
        }
    }
}

/// Runs `state` on its own task, handing its items to the returned stream through a
/// channel of [`AHEAD_EVENTS`]. The task ends, dropping its slot, when the stream is dropped
/// (also while it waits for a slot) or when the client takes no item for `idle_timeout`;
/// then the stream ends, after what the channel still holds, with an error, so the client
/// never takes a replay cut short for a complete one.
fn produce(
    mut state: Replay,
    idle_timeout: Duration,
) -> impl futures::Stream<Item = Result<ReplayItem>> + Send + 'static {
    let (tx, mut rx) = mpsc::channel::<Result<ReplayItem>>(AHEAD_EVENTS);
    let (idle_tx, idle_rx) = oneshot::channel::<Error>();
    tokio::spawn(async move {
        loop {
            let item = tokio::select! {
                biased;
                () = tx.closed() => return,
                item = state.next() => item,
            };
            let Some(item) = item else { return };
            let failed = item.is_err();
            match tokio::time::timeout(idle_timeout, tx.send(item)).await {
                Ok(Ok(())) if !failed => {}
                Ok(_) => return,
                Err(_) => {
                    // Free the slot before anything else.
                    drop(state);
                    tracing::info!(
                        ?idle_timeout,
                        "a replay's client took no event for the idle timeout; replay dropped"
                    );
                    let _ = idle_tx.send(idle_error(idle_timeout));
                    return;
                }
            }
        }
    });
    let items = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let idle = futures::stream::once(async move { idle_rx.await.ok().map(Err) })
        .filter_map(std::future::ready);
    items.chain(idle)
}

/// The error that ends a replay whose client stopped taking events. `Unavailable` is the
/// kind whose remedy is the right one (retry later, resuming from the last cursor).
fn idle_error(idle_timeout: Duration) -> Error {
    Error::Tier(strata_core::Error::Unavailable {
        tier: strata_core::Tier::Hot,
        op: "replay",
        message: format!(
            "the client took no event for {idle_timeout:?}; resume from the last cursor"
        ),
    })
}

/// A slice width in micros; at least one, so a replay always advances.
fn micros(d: Duration) -> i64 {
    duration_micros(d).max(1)
}

/// The state of one replay stream.
struct Replay {
    store: Store,
    request: ReplayRequest,
    config: Arc<ReplayConfig>,
    limits: ReplayLimits,
    slot: Option<Slot>,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Start of the next slice.
    next_from: i64,
    /// Width of the next slice, micros.
    width: i64,
    /// The current slice's events not emitted yet.
    buffer: VecDeque<StoredEvent>,
    done: bool,
}

impl Replay {
    async fn next(&mut self) -> Option<Result<ReplayItem>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                metrics::counter!(REPLAY_EVENTS).increment(1);
                let cursor = ReplayCursor::after(&event.event);
                return Some(Ok(ReplayItem { event, cursor }));
            }
            if self.done || self.next_from >= self.request.range.to {
                // Frees the slot as soon as the last event went out.
                self.slot = None;
                return None;
            }
            if self.slot.is_none() {
                self.slot = Some(self.limits.acquire(&self.request.tenant).await);
            }
            if let Err(e) = self.read_next_slice().await {
                self.done = true;
                self.slot = None;
                return Some(Err(e));
            }
            // Between slices, let other tasks (ingest, queries) run.
            tokio::task::yield_now().await;
        }
    }

    async fn read_next_slice(&mut self) -> Result<()> {
        let from = self.next_from;
        let end = self.request.range.to;
        let cap = self.config.max_slice_events.max(1);
        let max_width = micros(self.config.max_slice);
        loop {
            let to = from.saturating_add(self.width).min(end);
            // Saturating: a range may span the whole `i64`, whose width does not fit in one.
            let width = to.saturating_sub(from);
            // A one-microsecond slice cannot be split further: it is read whole.
            let slice_cap = if width <= 1 { usize::MAX } else { cap };
            let started = Instant::now();
            let slice = TimeRange { from, to };
            let read = self
                .store
                .replay_slice(&self.request, slice, slice_cap, self.config.warm_page_rows)
                .await?;
            match read {
                Some(events) => {
                    metrics::counter!(REPLAY_SLICES, "outcome" => "read").increment(1);
                    tracing::trace!(
                        from,
                        to,
                        events = events.len(),
                        elapsed = ?started.elapsed(),
                        "replay slice"
                    );
                    self.width = next_width(self.width, events.len(), cap, max_width);
                    self.buffer = events.into();
                    self.next_from = to;
                    return Ok(());
                }
                None => {
                    metrics::counter!(REPLAY_SLICES, "outcome" => "split").increment(1);
                    self.width = (width / 2).max(1);
                }
            }
        }
    }
}

/// The width of the slice after one of `width` micros that held `events` (of at most
/// `cap`). An empty slice quadruples the width without bound, so an empty span of any
/// length is crossed in a few dozen reads and a replay over a huge range costs time in
/// proportion to its data, not its range; a slice that found events grows (doubling while
/// it holds less than a quarter of `cap`) only up to `max_width`, which bounds how many
/// events a read that is abandoned and split reads in vain.
fn next_width(width: i64, events: usize, cap: usize, max_width: i64) -> i64 {
    if events == 0 {
        width.saturating_mul(4).max(1)
    } else if events < cap / 4 {
        width.saturating_mul(2).min(max_width).max(1)
    } else {
        width.min(max_width).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = ReplayCursor {
            ts: -5,
            id: "évt/1?&=".into(),
        };
        let text = c.encode();
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(ReplayCursor::decode(&text).unwrap(), c);
        for bad in ["", "!!!", "AQ", "AgAAAAAAAAAAYQ", &"A".repeat(10_000)] {
            let e = ReplayCursor::decode(bad).unwrap_err();
            assert_eq!(e.field, "cursor", "{bad}");
        }
        // Version 1 with an empty id is truncated.
        let empty = URL_SAFE_NO_PAD.encode([1u8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(ReplayCursor::decode(&empty).is_err());
    }

    #[test]
    fn params_name_their_field() {
        let ok = ReplayParams {
            tenant: "acme",
            from: "0",
            to: "10",
            streams: vec!["a,b", "b", "c"],
            filter: Some("attr:page=/x"),
            max_rate: Some("5"),
            ..Default::default()
        };
        let r = ReplayRequest::from_params(&ok).unwrap();
        assert_eq!(r.streams, ["a", "b", "c"]);
        assert_eq!(r.max_rate, NonZeroU32::new(5));
        for (field, p) in [
            (
                "tenant",
                ReplayParams {
                    tenant: "A",
                    ..ok.clone()
                },
            ),
            (
                "to",
                ReplayParams {
                    to: "0",
                    ..ok.clone()
                },
            ),
            (
                "from",
                ReplayParams {
                    from: "x",
                    ..ok.clone()
                },
            ),
            (
                "stream",
                ReplayParams {
                    streams: vec!["a,B"],
                    ..ok.clone()
                },
            ),
            (
                "filter",
                ReplayParams {
                    filter: Some("page=/x"),
                    ..ok.clone()
                },
            ),
            (
                "cursor",
                ReplayParams {
                    cursor: Some("zz!"),
                    ..ok.clone()
                },
            ),
            (
                "max_rate",
                ReplayParams {
                    max_rate: Some("0"),
                    ..ok.clone()
                },
            ),
        ] {
            assert_eq!(ReplayRequest::from_params(&p).unwrap_err().field, field);
        }
    }

    /// A replay that matches nothing ends, and stays ended however often it is polled
    /// (the API handlers poll once more after the first `None`).
    #[tokio::test]
    async fn an_empty_replay_stays_ended() {
        let dir = tempfile::tempdir().unwrap();
        let hot =
            strata_hot::HotStore::open(strata_hot::HotConfig::new(dir.path().join("hot.redb")))
                .unwrap();
        let warm = strata_warm::EmbeddedWarm::open(dir.path().join("warm.redb"))
            .await
            .unwrap();
        let store = Store::new(
            Arc::new(hot),
            Arc::new(warm),
            "node-unit".to_owned(),
            strata_types::Limits::default(),
        );
        let range = TimeRange {
            from: 1_000_000,
            to: 2_000_000,
        };
        let mut stream = store.replay(ReplayRequest::new("acme", range), &ReplayLimits::default());
        for _ in 0..3 {
            assert!(stream.next().await.is_none());
        }
    }

    #[test]
    fn lines_split_back_into_json_and_cursor() {
        let event = StoredEvent {
            event: Event {
                tenant: "acme".into(),
                stream: "click".into(),
                key: "k".into(),
                id: "e1".into(),
                ts: 1_700_000_000_000_001,
                value: None,
                attrs: Default::default(),
                payload: Some(r#"{"cursor":"x","s":",\"cursor\":\""}"#.into()),
            },
            ingest_ts: 1,
            seq: 2,
        };
        let item = ReplayItem {
            cursor: ReplayCursor::after(&event.event),
            event,
        };
        let line = item.line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["cursor"], item.cursor.encode());
        let (json, cursor) = split_line(&line).unwrap();
        assert_eq!(json, item.json());
        assert_eq!(cursor, item.cursor);
        assert!(split_line(r#"{"error":{"code":"internal"}}"#).is_none());
        let mut a = ReplayChecksum::new();
        a.update(json.as_bytes());
        let mut b = ReplayChecksum::new();
        b.update(item.json().as_bytes());
        assert_eq!(a.hex(), b.hex());
        assert_eq!(a.events(), 1);
    }
}
