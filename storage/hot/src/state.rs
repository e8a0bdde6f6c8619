//! The in-memory index over the log: which rows exist, which ids they hold, and which rows
//! hold events of each (tenant, window). Rebuilt from the log on open; changed only by the
//! writer thread.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{BuildHasherDefault, Hash, Hasher},
    sync::Arc,
};

/// Estimated bytes of one `(tenant, id)` entry in the id index: a 24-byte slot plus its
/// control byte, at hashbrown's 7/8 maximum load, with room for the table doubling.
/// Budgets err on the high side.
const ID_ENTRY_BYTES: u64 = 48;
/// Estimated bytes of one row's metadata in the row map.
const ROW_BYTES: u64 = 128;
/// Estimated bytes of one (row, tenant, window) reference: in the row's metadata and in the
/// window index.
const SEGMENT_REF_BYTES: u64 = 64;
/// redb's per-entry overhead counted against the disk budget on top of the blob.
pub(crate) const ROW_DISK_OVERHEAD: u64 = 32;

/// The 128-bit xxh3 hash of `tenant \0 id`, seeded with a per-process random seed.
///
/// The dedupe index keeps only this hash, not the strings, to stay small. Two different
/// `(tenant, id)` pairs colliding would make the second one a false duplicate; with 128 bits
/// the chance that any two of n = 10^9 keys collide is about n²/2^129 ≈ 10^-21, far below
/// the disk's own undetected error rate. The seed is random per open (the index is rebuilt
/// from the log on open, so it never needs to be stable), which keeps a client from crafting
/// colliding ids. Lookups by id still compare the stored tenant and id exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdHash(u64, u64);

impl Hash for IdHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a uniform hash: fold it into one word for the pass-through hasher.
        state.write_u64(self.0 ^ self.1.rotate_left(29));
    }
}

/// Passes an [`IdHash`] through instead of hashing it again.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A map keyed by [`IdHash`].
pub(crate) type IdMap<V> = HashMap<IdHash, V, BuildHasherDefault<PassThrough>>;

/// Hashes `tenant \0 id` (a tenant never contains `\0`, so the pair is unambiguous).
pub(crate) fn id_hash(seed: u64, tenant: &str, id: &str, scratch: &mut Vec<u8>) -> IdHash {
    scratch.clear();
    scratch.extend_from_slice(tenant.as_bytes());
    scratch.push(0);
    scratch.extend_from_slice(id.as_bytes());
    let h = xxhash_rust::xxh3::xxh3_128_with_seed(scratch, seed);
    IdHash((h >> 64) as u64, h as u64)
}

/// Start of the window of width `window` holding `ts`.
pub(crate) fn window_of(ts: i64, window: i64) -> i64 {
    ts - ts.rem_euclid(window)
}

/// Estimated index bytes of a row.
pub(crate) fn row_index_cost(events: u64, segments: u64) -> u64 {
    events * ID_ENTRY_BYTES + ROW_BYTES + segments * SEGMENT_REF_BYTES
}

/// What the index keeps about one log row.
#[derive(Debug)]
pub(crate) struct RowMeta {
    /// Events in the row; their seqs are `key .. key + count`.
    pub(crate) count: u32,
    /// Commit time.
    pub(crate) ingest_ts: i64,
    /// Bytes of the blob.
    pub(crate) bytes: u64,
    /// The (tenant, window) pairs the row has events of.
    pub(crate) segments: Box<[(Arc<str>, i64)]>,
}

impl RowMeta {
    /// Seq of the row's last event.
    pub(crate) fn last_seq(&self, key: u64) -> u64 {
        key + u64::from(self.count) - 1
    }
}

/// The index. Readers take it shared, briefly; the writer takes it exclusively after each
/// durable commit and during release.
#[derive(Debug)]
pub(crate) struct State {
    /// `(tenant, id)` hash → seq, for every event in a row of `rows`.
    pub(crate) ids: IdMap<u64>,
    /// Log rows by first seq.
    pub(crate) rows: BTreeMap<u64, RowMeta>,
    /// Tenant → window start → keys of the rows holding events of that tenant and window,
    /// ascending.
    pub(crate) windows: HashMap<Arc<str>, BTreeMap<i64, Vec<u64>>>,
    /// The seq the next stored event gets.
    pub(crate) next_seq: u64,
    /// Every seq up to this one is released.
    pub(crate) released_upto: u64,
    /// Events in `rows` (including released ones of a partly released first row).
    pub(crate) row_events: u64,
    /// Blob bytes of `rows`, plus redb's per-entry overhead.
    pub(crate) disk_bytes: u64,
    /// Estimated bytes of this index.
    pub(crate) index_bytes: u64,
    /// Latest commit time seen, so commit times never go backwards.
    pub(crate) last_ingest_ts: i64,
}

impl State {
    /// An empty index starting at `next_seq`.
    pub(crate) fn new(next_seq: u64, released_upto: u64) -> Self {
        Self {
            ids: IdMap::default(),
            rows: BTreeMap::new(),
            windows: HashMap::new(),
            next_seq,
            released_upto,
            row_events: 0,
            disk_bytes: 0,
            index_bytes: 0,
            last_ingest_ts: 0,
        }
    }

    /// Highest seq assigned so far.
    pub(crate) fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Events not yet released.
    pub(crate) fn unreleased_events(&self) -> u64 {
        let partly = match self.rows.first_key_value() {
            Some((key, _)) if *key <= self.released_upto => self.released_upto + 1 - key,
            _ => 0,
        };
        self.row_events - partly
    }

    /// The shared tenant name, creating its window map on first sight.
    fn intern(&mut self, tenant: &str) -> Arc<str> {
        if let Some((t, _)) = self.windows.get_key_value(tenant) {
            return Arc::clone(t);
        }
        let t: Arc<str> = Arc::from(tenant);
        self.windows.insert(Arc::clone(&t), BTreeMap::new());
        t
    }

    /// Records a durable row: its metadata, its events' ids (`ids[i]` is the event with seq
    /// `key + i`) and the (tenant, window) pairs it holds.
    pub(crate) fn add_row(
        &mut self,
        key: u64,
        ingest_ts: i64,
        bytes: u64,
        ids: &[IdHash],
        groups: &[(&str, i64)],
    ) {
        let count = ids.len() as u32;
        let mut segments = Vec::with_capacity(groups.len());
        for &(tenant, window) in groups {
            let t = self.intern(tenant);
            self.windows
                .entry(Arc::clone(&t))
                .or_default()
                .entry(window)
                .or_default()
                .push(key);
            segments.push((t, window));
        }
        for (i, h) in ids.iter().enumerate() {
            self.ids.insert(*h, key + i as u64);
        }
        self.rows.insert(
            key,
            RowMeta {
                count,
                ingest_ts,
                bytes,
                segments: segments.into_boxed_slice(),
            },
        );
        self.row_events += u64::from(count);
        self.disk_bytes += bytes + ROW_DISK_OVERHEAD;
        self.index_bytes += row_index_cost(u64::from(count), groups.len() as u64);
        self.next_seq = self.next_seq.max(key + u64::from(count));
        self.last_ingest_ts = self.last_ingest_ts.max(ingest_ts);
    }

    /// Keys of the rows whose every event has `seq <= upto`, oldest first.
    pub(crate) fn rows_released_by(&self, upto: u64) -> Vec<u64> {
        self.rows
            .range(..=upto)
            .filter(|(key, meta)| meta.last_seq(**key) <= upto)
            .map(|(key, _)| *key)
            .collect()
    }

    /// Advances the watermark, forgets the given rows and their ids (`(hash, seq)` pairs, as
    /// read from the rows), and returns the removed rows' metadata.
    pub(crate) fn release(
        &mut self,
        upto: u64,
        rows: &[u64],
        ids: &[(IdHash, u64)],
    ) -> Vec<(u64, RowMeta)> {
        self.released_upto = self.released_upto.max(upto);
        let mut removed = Vec::with_capacity(rows.len());
        for key in rows {
            let Some(meta) = self.rows.remove(key) else {
                continue;
            };
            for (tenant, window) in meta.segments.iter() {
                if let Some(windows) = self.windows.get_mut(tenant) {
                    if let Some(list) = windows.get_mut(window) {
                        list.retain(|k| k != key);
                        if list.is_empty() {
                            windows.remove(window);
                        }
                    }
                    if windows.is_empty() {
                        self.windows.remove(tenant);
                    }
                }
            }
            self.row_events -= u64::from(meta.count);
            self.disk_bytes = self
                .disk_bytes
                .saturating_sub(meta.bytes + ROW_DISK_OVERHEAD);
            self.index_bytes = self.index_bytes.saturating_sub(row_index_cost(
                u64::from(meta.count),
                meta.segments.len() as u64,
            ));
            removed.push((*key, meta));
        }
        for (h, seq) in ids {
            // Only drop the entry if it still points at the released event.
            if self.ids.get(h) == Some(seq) {
                self.ids.remove(h);
            }
        }
        removed
    }

    /// The row holding `seq`, if it is still in the index.
    pub(crate) fn row_of(&self, seq: u64) -> Option<(u64, &RowMeta)> {
        self.rows
            .range(..=seq)
            .next_back()
            .filter(|(key, meta)| seq <= meta.last_seq(**key))
            .map(|(key, meta)| (*key, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_added_and_released_whole() {
        let mut scratch = Vec::new();
        let mut s = State::new(1, 0);
        let ids: Vec<IdHash> = (0..3)
            .map(|i| id_hash(7, "acme", &format!("e{i}"), &mut scratch))
            .collect();
        s.add_row(1, 10, 100, &ids, &[("acme", 0), ("beta", 60)]);
        let more = [id_hash(7, "acme", "x", &mut scratch)];
        s.add_row(4, 11, 50, &more, &[("acme", 0)]);
        assert_eq!(s.next_seq, 5);
        assert_eq!(s.unreleased_events(), 4);
        assert_eq!(s.row_of(3).map(|(k, _)| k), Some(1));
        assert_eq!(s.row_of(4).map(|(k, _)| k), Some(4));
        assert!(s.row_of(5).is_none());
        assert_eq!(s.windows["acme"][&0], vec![1, 4]);

        // A partial release keeps the row but no longer counts its released events.
        assert!(s.rows_released_by(2).is_empty());
        s.release(2, &[], &[]);
        assert_eq!(s.unreleased_events(), 2);

        let rows = s.rows_released_by(3);
        assert_eq!(rows, vec![1]);
        let pairs: Vec<(IdHash, u64)> = ids.iter().copied().zip(1..).collect();
        let removed = s.release(3, &rows, &pairs);
        assert_eq!(removed.len(), 1);
        assert_eq!(s.unreleased_events(), 1);
        assert_eq!(s.ids.len(), 1);
        assert_eq!(s.windows["acme"][&0], vec![4]);
        assert!(!s.windows.contains_key("beta"));
        assert_eq!(s.disk_bytes, 50 + ROW_DISK_OVERHEAD);
        assert_eq!(s.index_bytes, row_index_cost(1, 1));
    }

    #[test]
    fn id_hash_separates_tenant_from_id() {
        let mut scratch = Vec::new();
        let a = id_hash(1, "ab", "c", &mut scratch);
        let b = id_hash(1, "a", "bc", &mut scratch);
        assert_ne!(a, b);
        assert_eq!(a, id_hash(1, "ab", "c", &mut scratch));
        assert_ne!(a, id_hash(2, "ab", "c", &mut scratch));
    }

    #[test]
    fn windows_align_down_also_before_the_epoch() {
        assert_eq!(window_of(125, 60), 120);
        assert_eq!(window_of(-1, 60), -60);
        assert_eq!(window_of(0, 60), 0);
    }
}
