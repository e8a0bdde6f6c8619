//! The one thread that writes: group commits of appends, and releases.
//!
//! Appends queue up in a bounded channel. The writer takes the first, drains whatever else is
//! already queued (up to `max_commit_events`), deduplicates and encodes them into one log
//! row, and commits that row with the batch's source offsets in one durable transaction: every
//! request of the batch shares one fsync. Only after the commit does it update the index and
//! answer. Being the only writer makes deduplication and seq assignment race-free without
//! any locking beyond the index's.

use std::{
    collections::HashSet,
    sync::Arc,
    time::{Duration, Instant},
};

use redb::{Database, Durability, ReadableTable};
use strata_core::{
    Error, Result, Tier,
    hot::{AppendOutcome, AppendRequest, SourceOffset},
};
use strata_types::{Event, StoredEvent, time::now_micros};
use tokio::sync::{mpsc, oneshot};

use crate::{
    codec::{RowBuilder, RowView},
    error::{corrupt_row, shutting_down, storage},
    metrics as m,
    segment::{SegmentKey, build_segments},
    shared::Shared,
    state::{IdHash, IdMap, ROW_DISK_OVERHEAD, id_hash, row_index_cost, window_of},
    tables::{LOG, META, NEXT_SEQ, OFFSETS, RELEASED_UPTO},
};

/// How long a client refused for a full budget should wait: about one flush interval.
const FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Work for the writer.
#[derive(Debug)]
pub(crate) enum Command {
    /// Append events (and commit offsets).
    Append {
        request: AppendRequest,
        reply: Reply,
    },
    /// Release every seq up to `upto`.
    Release {
        upto: u64,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Finish what is queued before this, then stop.
    Shutdown { reply: oneshot::Sender<()> },
}

/// Where an append's answer goes.
type Reply = oneshot::Sender<Result<Vec<AppendOutcome>>>;

/// One request of a group commit.
struct Pending {
    request: AppendRequest,
    reply: Reply,
}

/// The writer thread's state.
pub(crate) struct Writer {
    shared: Arc<Shared>,
    db: Arc<Database>,
    rx: mpsc::Receiver<Command>,
    max_commit_events: usize,
    scratch: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        db: Arc<Database>,
        rx: mpsc::Receiver<Command>,
        max_commit_events: usize,
    ) -> Self {
        Self {
            shared,
            db,
            rx,
            max_commit_events: max_commit_events.max(1),
            scratch: Vec::with_capacity(256),
        }
    }

    /// Serves commands until shutdown or until every sender is gone.
    pub(crate) fn run(mut self) {
        let mut deferred: Option<Command> = None;
        let shutdown_reply = loop {
            let command = match deferred.take() {
                Some(c) => c,
                None => match self.rx.blocking_recv() {
                    Some(c) => c,
                    None => break None,
                },
            };
            match command {
                Command::Append { request, reply } => {
                    let mut events = request.events.len();
                    let mut batch = vec![Pending { request, reply }];
                    while events < self.max_commit_events {
                        match self.rx.try_recv() {
                            Ok(Command::Append { request, reply }) => {
                                if events + request.events.len() > self.max_commit_events {
                                    deferred = Some(Command::Append { request, reply });
                                    break;
                                }
                                events += request.events.len();
                                batch.push(Pending { request, reply });
                            }
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit(batch);
                }
                Command::Release { upto, reply } => {
                    let _ = reply.send(self.release(upto));
                }
                Command::Shutdown { reply } => break Some(reply),
            }
        };
        // Whatever arrived after the shutdown request is refused, not dropped silently.
        self.rx.close();
        for command in deferred
            .into_iter()
            .chain(std::iter::from_fn(|| self.rx.try_recv().ok()))
        {
            refuse(command);
        }
        let Self { db, shared, .. } = self;
        drop(db);
        drop(shared);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// One group commit.
    fn commit(&mut self, batch: Vec<Pending>) {
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let state = shared.state();
        let ingest_ts = now_micros().max(state.last_ingest_ts);
        let first_seq = state.next_seq;
        let mut next_seq = first_seq;
        let mut row = RowBuilder::new(ingest_ts);
        let mut stored: Vec<Event> = Vec::new();
        let mut hashes: Vec<IdHash> = Vec::new();
        let mut in_batch: IdMap<u64> = IdMap::default();
        // (tenant hash, window) pairs of the row, only to estimate the index cost.
        let mut groups: HashSet<(u64, i64)> = HashSet::new();
        let mut offsets: Vec<SourceOffset> = Vec::new();
        let mut answers = Vec::with_capacity(batch.len());

        for Pending { request, reply } in batch {
            let mark = row.mark();
            let seq_mark = next_seq;
            let stored_mark = stored.len();
            let mut new_groups = Vec::new();
            let mut outcomes = Vec::with_capacity(request.events.len());
            let mut failure = None;
            for event in request.events {
                let h = id_hash(shared.seed, &event.tenant, &event.id, &mut self.scratch);
                if let Some(seq) = state.ids.get(&h).or_else(|| in_batch.get(&h)) {
                    outcomes.push(AppendOutcome::Duplicate { seq: *seq });
                    continue;
                }
                if let Err(e) = row.push(&event) {
                    failure = Some(Error::storage(Tier::Hot, "encode", e));
                    break;
                }
                let group = (
                    xxhash_rust::xxh3::xxh3_64(event.tenant.as_bytes()),
                    window_of(event.ts, shared.window),
                );
                if groups.insert(group) {
                    new_groups.push(group);
                }
                in_batch.insert(h, next_seq);
                hashes.push(h);
                outcomes.push(AppendOutcome::Stored { seq: next_seq });
                next_seq += 1;
                stored.push(event);
            }
            let failure = failure.or_else(|| {
                if row.count() == 0 {
                    return None;
                }
                let disk = state.disk_bytes + row.encoded_len() as u64 + ROW_DISK_OVERHEAD;
                let index =
                    state.index_bytes + row_index_cost(row.count() as u64, groups.len() as u64);
                if disk > shared.disk_budget {
                    Some(full("disk", disk, shared.disk_budget))
                } else if index > shared.index_budget {
                    Some(full("memory", index, shared.index_budget))
                } else {
                    None
                }
            });
            match failure {
                Some(e) => {
                    // Take this request out again; earlier requests of the batch stand.
                    row.rollback(mark);
                    for h in hashes.drain(stored_mark..) {
                        in_batch.remove(&h);
                    }
                    stored.truncate(stored_mark);
                    next_seq = seq_mark;
                    for g in new_groups {
                        groups.remove(&g);
                    }
                    answers.push((reply, Err(e)));
                }
                None => {
                    offsets.extend(request.offsets);
                    answers.push((reply, Ok(outcomes)));
                }
            }
        }
        drop(state);

        if stored.is_empty() && offsets.is_empty() {
            // Nothing to write: all duplicates of durable events, or refused.
            answer(answers);
            return;
        }
        let written = self.write(first_seq, row, stored.is_empty(), &offsets);
        let blob_len = match written {
            Ok(len) => len,
            Err(e) => {
                let message = e.to_string();
                tracing::error!(error = %message, "hot tier group commit failed");
                for (_, result) in &mut answers {
                    if result.is_ok() {
                        *result = Err(Error::storage(Tier::Hot, "commit", message.clone()));
                    }
                }
                answer(answers);
                return;
            }
        };
        if !stored.is_empty() {
            let mut seen = HashSet::new();
            let row_groups: Vec<(&str, i64)> = stored
                .iter()
                .map(|e| (e.tenant.as_str(), window_of(e.ts, shared.window)))
                .filter(|g| seen.insert(*g))
                .collect();
            shared
                .state_mut()
                .add_row(first_seq, ingest_ts, blob_len, &hashes, &row_groups);
        }
        answer(answers);

        ::metrics::histogram!(m::COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        ::metrics::histogram!(m::COMMIT_EVENTS).record(stored.len() as f64);
        if !stored.is_empty() {
            // After answering: the cache only saves later reads a decode, so it must not
            // delay the acknowledgement.
            let events = stored
                .into_iter()
                .zip(first_seq..)
                .map(|(event, seq)| StoredEvent {
                    event,
                    ingest_ts,
                    seq,
                })
                .collect();
            for (key, segment) in build_segments(first_seq, events, shared.window) {
                shared.cache.insert(key, segment);
            }
        }
        shared.record_gauges();
    }

    /// Writes the row (unless `empty`) and the offsets in one durable transaction; returns
    /// the row's length.
    fn write(
        &mut self,
        first_seq: u64,
        row: RowBuilder,
        empty: bool,
        offsets: &[SourceOffset],
    ) -> Result<u64> {
        let mut txn = self.db.begin_write().map_err(storage("begin commit"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(storage("begin commit"))?;
        let mut len = 0;
        {
            if !empty {
                let blob = row.finish().map_err(storage("encode"))?;
                len = blob.len() as u64;
                let mut log = txn.open_table(LOG).map_err(storage("open log"))?;
                log.insert(first_seq, blob.as_slice())
                    .map_err(storage("write log"))?;
            }
            if !offsets.is_empty() {
                let mut table = txn.open_table(OFFSETS).map_err(storage("open offsets"))?;
                for o in offsets {
                    table
                        .insert(
                            (o.source.as_str(), o.topic.as_str(), o.partition),
                            o.next_offset,
                        )
                        .map_err(storage("write offsets"))?;
                }
            }
        }
        txn.commit().map_err(storage("commit"))?;
        Ok(len)
    }

    /// Releases every seq up to `upto`: drops whole rows from the log and the index and
    /// advances the watermark durably.
    fn release(&mut self, upto: u64) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let (upto, rows, keep_from, next_seq) = {
            let s = shared.state();
            let last = s.last_seq();
            if upto > last {
                tracing::warn!(upto, last, "release beyond the last seq; clamped");
            }
            let upto = upto.min(last);
            if upto <= s.released_upto {
                return Ok(());
            }
            let rows = s.rows_released_by(upto);
            // Released rows are a prefix of the row map (rows cover consecutive seqs).
            let keep_from = s.rows.keys().nth(rows.len()).copied().unwrap_or(s.next_seq);
            (upto, rows, keep_from, s.next_seq)
        };
        let mut txn = self.db.begin_write().map_err(storage("begin release"))?;
        txn.set_durability(Durability::Immediate)
            .map_err(storage("begin release"))?;
        let mut ids = Vec::new();
        {
            let mut log = txn.open_table(LOG).map_err(storage("open log"))?;
            for &key in &rows {
                let Some(blob) = log.remove(key).map_err(storage("release log"))? else {
                    continue;
                };
                let view = RowView::parse(blob.value()).map_err(corrupt_row(key))?;
                for (i, seq) in (0..view.count()).zip(key..) {
                    let head = view.head(i).map_err(corrupt_row(key))?;
                    ids.push((
                        id_hash(shared.seed, head.tenant, head.id, &mut self.scratch),
                        seq,
                    ));
                }
            }
            // Anything older than the oldest kept row can only be left over from an earlier
            // release whose commit failed after the index had already dropped it.
            let leftovers: Vec<u64> = log
                .range(..keep_from)
                .map_err(storage("release log"))?
                .map(|item| item.map(|(k, _)| k.value()))
                .collect::<std::result::Result<_, _>>()
                .map_err(storage("release log"))?;
            for key in leftovers {
                log.remove(key).map_err(storage("release log"))?;
            }
            let mut meta = txn.open_table(META).map_err(storage("open meta"))?;
            meta.insert(RELEASED_UPTO, upto)
                .map_err(storage("write meta"))?;
            meta.insert(NEXT_SEQ, next_seq)
                .map_err(storage("write meta"))?;
        }
        // The index lets go first, the durable delete follows: a reader that saw these rows
        // in the index began its read transaction before this commit, so it can still read
        // them. The flusher only releases what warm already holds durably, so if the commit
        // below fails, nothing is lost: the rows come back on the next open and are flushed
        // again (warm deduplicates).
        let removed = shared.state_mut().release(upto, &rows, &ids);
        for (row, meta) in &removed {
            for (tenant, window) in meta.segments.iter() {
                shared.cache.invalidate(&SegmentKey {
                    row: *row,
                    tenant: Arc::clone(tenant),
                    window: *window,
                });
            }
        }
        txn.commit().map_err(storage("commit release"))?;
        shared.record_gauges();
        Ok(())
    }
}

fn full(reason: &'static str, would_be: u64, budget: u64) -> Error {
    ::metrics::counter!(m::FULL_REJECTIONS, "reason" => reason).increment(1);
    Error::Full {
        tier: Tier::Hot,
        reason: format!("{reason} budget: {would_be} bytes would exceed {budget}"),
        retry_after: FULL_RETRY_AFTER,
    }
}

fn answer(answers: Vec<(Reply, Result<Vec<AppendOutcome>>)>) {
    for (reply, result) in answers {
        // The caller may have gone away (request cancelled); what was committed stays.
        let _ = reply.send(result);
    }
}

fn refuse(command: Command) {
    match command {
        Command::Append { reply, .. } => {
            let _ = reply.send(Err(shutting_down()));
        }
        Command::Release { reply, .. } => {
            let _ = reply.send(Err(shutting_down()));
        }
        Command::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}

/// Reads every row on open and rebuilds the index; deletes rows a completed release should
/// have removed. Returns the index.
pub(crate) fn rebuild(db: &Database, seed: u64, window: i64) -> Result<crate::state::State> {
    let txn = db.begin_write().map_err(storage("open"))?;
    let state = {
        let meta = txn.open_table(META).map_err(storage("open meta"))?;
        let read_meta = |key: &str| -> Result<Option<u64>> {
            Ok(meta
                .get(key)
                .map_err(storage("read meta"))?
                .map(|g| g.value()))
        };
        let released = read_meta(RELEASED_UPTO)?.unwrap_or(0);
        let next_seq = read_meta(NEXT_SEQ)?.unwrap_or(1).max(released + 1);
        drop(meta);
        txn.open_table(OFFSETS).map_err(storage("open offsets"))?;
        let mut log = txn.open_table(LOG).map_err(storage("open log"))?;
        let mut state = crate::state::State::new(next_seq, released);
        let mut stale = Vec::new();
        let mut scratch = Vec::new();
        for item in log.iter().map_err(storage("read log"))? {
            let (k, v) = item.map_err(storage("read log"))?;
            let key = k.value();
            let blob = v.value();
            let view = RowView::parse(blob).map_err(corrupt_row(key))?;
            let count = view.count() as u64;
            if count == 0 || key + count - 1 <= released {
                stale.push(key);
                continue;
            }
            let mut hashes = Vec::with_capacity(view.count());
            let mut groups: HashSet<(&str, i64)> = HashSet::new();
            let mut ordered = Vec::new();
            for i in 0..view.count() {
                let head = view.head(i).map_err(corrupt_row(key))?;
                hashes.push(id_hash(seed, head.tenant, head.id, &mut scratch));
                let g = (head.tenant, window_of(head.ts, window));
                if groups.insert(g) {
                    ordered.push(g);
                }
            }
            state.add_row(key, view.ingest_ts, blob.len() as u64, &hashes, &ordered);
        }
        for key in stale {
            log.remove(key).map_err(storage("open"))?;
        }
        state
    };
    txn.commit().map_err(storage("open"))?;
    Ok(state)
}
