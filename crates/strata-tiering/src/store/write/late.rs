//! Routing events older than `max_lateness` to the tier that owns their time (the writes
//! themselves are [`crate::late`]'s).
//!
//! Invariant: a late event is stored once, in the tier a reader looks for it. Its original,
//! if any, is looked for everywhere (hot → warm → cold) while this node's late writer holds
//! the event's partition, so two requests carrying the same late event cannot both find it
//! absent (requests for other partitions are not held up). A
//! partition with a live cold version gets a cold amendment (readers take that partition
//! from cold); a time warm retention dropped goes to cold as well, or is rejected when this
//! node writes no cold tier; everything else goes to warm under the late writer's ledger.

use std::collections::{BTreeMap, BTreeSet};

use strata_core::{cold::PartitionKey, hot::AppendOutcome};
use strata_types::{
    Event,
    time::{SEC, day_of, now_micros},
    validate::FieldError,
};

use super::{Slot, short_answer};
use crate::{Result, metrics_names as m, store::Store};

impl Store {
    /// Writes events older than `max_lateness` to the tier owning their time; see
    /// [`crate::late`]. One slot per event, in order.
    pub(super) async fn append_late(&self, events: Vec<Event>) -> Result<Vec<Slot>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let partitions: BTreeSet<PartitionKey> = events
            .iter()
            .map(|e| PartitionKey::of(&e.tenant, &e.stream, e.ts))
            .collect();
        let mut writer = self.late.lock(&partitions).await;
        let (found, pointers) = {
            let _gate = self.gate.shared().await;
            self.find_anywhere(&events).await?
        };
        let now = now_micros();
        let floor = self.late.warm_floor(now);
        // A node that does not write the archive leaves even archived days to warm: the
        // exporting node amends them from there (see `StoreConfig::late_to_cold`).
        let cold = self.cold_side().filter(|_| self.config.late_to_cold);
        let mut slots: Vec<Option<Slot>> = vec![None; events.len()];
        let (mut to_warm, mut to_warm_at) = (Vec::new(), Vec::new());
        let mut to_cold: BTreeMap<PartitionKey, (Vec<usize>, Vec<Event>)> = BTreeMap::new();
        for (i, e) in events.into_iter().enumerate() {
            if let Some(&seq) = found.get(&(e.tenant.clone(), e.id.clone())) {
                metrics::counter!(m::LATE_EVENTS, "outcome" => "duplicate").increment(1);
                slots[i] = Some(Ok(AppendOutcome::Duplicate { seq }));
                continue;
            }
            let partition = PartitionKey::of(&e.tenant, &e.stream, e.ts);
            let dropped = floor.is_some_and(|f| e.ts < f);
            if cold.is_some() && (dropped || pointers.contains_key(&partition)) {
                let group = to_cold.entry(partition).or_default();
                group.0.push(i);
                group.1.push(e);
            } else if dropped {
                metrics::counter!(m::LATE_EVENTS, "outcome" => "rejected").increment(1);
                slots[i] = Some(Err(FieldError::new(
                    "ts",
                    format!(
                        "is {} s behind the server clock; the warm tier keeps {} s (warm_retention) and this node writes no cold tier",
                        now.saturating_sub(e.ts) / SEC,
                        self.config.warm_retention.map_or(0, |r| r.as_secs()),
                    ),
                )));
            } else {
                to_warm_at.push(i);
                to_warm.push(e);
            }
        }
        if !to_warm.is_empty() {
            let days: Vec<(String, i64)> = to_warm
                .iter()
                .map(|e| (e.tenant.clone(), day_of(e.ts)))
                .collect();
            let seqs = writer.write_warm(&*self.warm, to_warm, now).await?;
            self.bump_days(days);
            metrics::counter!(m::LATE_EVENTS, "tier" => "warm").increment(seqs.len() as u64);
            for (i, seq) in to_warm_at.into_iter().zip(seqs) {
                slots[i] = Some(Ok(AppendOutcome::Stored { seq }));
            }
        }
        if let Some(cold) = cold {
            for (partition, (at, events)) in to_cold {
                let _writing = self.cold_locks.lock(&partition).await;
                let seqs = writer
                    .write_cold(
                        &*self.warm,
                        cold,
                        &partition,
                        events,
                        now,
                        self.config.late_amend_attempts,
                    )
                    .await?;
                self.bump_days([(partition.tenant.clone(), partition.day)]);
                metrics::counter!(m::LATE_EVENTS, "tier" => "cold").increment(seqs.len() as u64);
                for (i, seq) in at.into_iter().zip(seqs) {
                    slots[i] = Some(Ok(AppendOutcome::Stored { seq }));
                }
            }
        }
        drop(writer);
        slots
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(short_answer)
    }
}
