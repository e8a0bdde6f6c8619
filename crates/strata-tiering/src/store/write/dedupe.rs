//! Finding an event's original in whichever tier holds it now, for deduplication.
//!
//! Invariant: a duplicate is found even while its original moves. Every move between tiers
//! adds to the next tier before it removes from the previous one (the flusher commits to
//! warm before it releases from hot; an export makes its version live in the same warm
//! commit that drops the rows), so looking hot → warm → cold sees a moving original in the
//! tier asked later. Callers hold the release gate (see [`crate::release_gate`]) so the hot
//! release cannot slip between "not found" and their own write.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use futures::{StreamExt, TryStreamExt};
use strata_core::cold::{LivePartition, PartitionKey};
use strata_types::{
    Event, TimeRange,
    time::{day_of, day_start},
};

use crate::{Result, store::Store};

/// Sequence numbers of the originals found, by `(tenant, id)`.
pub(super) type Found = HashMap<(String, String), u64>;
/// Live cold pointers of the partitions the events fall in.
pub(super) type Pointers = HashMap<PartitionKey, LivePartition>;

impl Store {
    /// Which of `events` any tier holds, hot first, then warm and cold (see
    /// [`Store::find_in_warm_and_cold`]), with the live cold pointers of their partitions.
    /// Call it under the release gate.
    pub(super) async fn find_anywhere(&self, events: &[Event]) -> Result<(Found, Pointers)> {
        let mut in_hot = HashMap::new();
        for e in events {
            if let Some(s) = self.hot.get(&e.tenant, &e.id).await? {
                in_hot.insert((e.tenant.clone(), e.id.clone()), s.seq);
            }
        }
        let rest: Vec<&Event> = events
            .iter()
            .filter(|e| !in_hot.contains_key(&(e.tenant.clone(), e.id.clone())))
            .collect();
        let (mut found, pointers) = self.find_in_warm_and_cold(&rest).await?;
        found.extend(in_hot);
        Ok((found, pointers))
    }

    /// Which of `events` warm holds (in any state) or the live cold version of their
    /// partition holds, by `(tenant, id)`, and the live cold pointers of their partitions.
    /// Call it under the release gate.
    ///
    /// Warm is asked first, the cold pointers after: an export moves rows out of warm and
    /// makes its version live in one warm commit, so an event warm no longer had is in the
    /// version read afterwards. Cold lookups go partition by partition (each one's Parquet
    /// bloom filters on `id`), a few at a time; they only happen for partitions already
    /// archived, i.e. retries and replays of old events.
    pub(super) async fn find_in_warm_and_cold(
        &self,
        events: &[&Event],
    ) -> Result<(Found, Pointers)> {
        let mut found = HashMap::new();
        if events.is_empty() {
            return Ok((found, HashMap::new()));
        }
        let mut by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
        for e in events {
            by_tenant.entry(&e.tenant).or_default().push(e.id.clone());
        }
        for (tenant, ids) in by_tenant {
            for (id, seq) in self.warm.existing_ids(tenant, &ids).await? {
                found.insert((tenant.to_owned(), id), seq);
            }
        }
        let Some(cold) = self.cold_side() else {
            return Ok((found, HashMap::new()));
        };
        let days: HashSet<(&str, i64)> = events
            .iter()
            .map(|e| (e.tenant.as_str(), day_of(e.ts)))
            .collect();
        let mut pointers = HashMap::new();
        for (tenant, day) in days {
            let range = TimeRange {
                from: day_start(day),
                to: day_start(day + 1),
            };
            for live in cold
                .handoff
                .cold_partitions(Some(tenant), Some(range))
                .await?
            {
                pointers.insert(live.partition.clone(), live);
            }
        }
        // Owned lookups: the futures below must not borrow from `events` (the write path's
        // future has to stay `Send` for every caller lifetime).
        let lookups: Vec<(String, String, LivePartition)> = events
            .iter()
            .filter(|e| !found.contains_key(&(e.tenant.clone(), e.id.clone())))
            .filter_map(|e| {
                pointers
                    .get(&PartitionKey::of(&e.tenant, &e.stream, e.ts))
                    .map(|live| (e.tenant.clone(), e.id.clone(), live.clone()))
            })
            .collect();
        let hits: Vec<Option<((String, String), u64)>> = futures::stream::iter(lookups)
            .map(|(tenant, id, live)| {
                let tier = Arc::clone(&cold.tier);
                async move {
                    let got = tier.get(&tenant, &id, std::slice::from_ref(&live)).await?;
                    Ok::<_, strata_core::Error>(got.map(|s| ((tenant, id), s.seq)))
                }
            })
            .buffered(4)
            .try_collect()
            .await?;
        found.extend(hits.into_iter().flatten());
        Ok((found, pointers))
    }
}
