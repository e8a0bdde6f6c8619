//! Plain PostgreSQL's daily partitions of `events` (`events_pYYYYMMDD`): created ahead of the
//! data, before the flush that needs them, and dropped whole by retention.
//!
//! Creating a partition locks the parent table, so it never happens inside a flush's
//! transaction: [`Partitions::ensure`] runs in a short transaction of its own before the
//! flush, and retention creates the upcoming days' partitions ahead of time, keeping DDL off
//! the flush path. Which days exist is cached per process; a flush that fails forgets the
//! cache, since retention elsewhere may have dropped a partition it believed in.

use std::{collections::HashSet, sync::Mutex};

use chrono::{NaiveDate, Utc};
use deadpool_postgres::{GenericClient, Object};
use strata_core::Result;
use tokio_postgres::error::SqlState;

use super::{
    codec::ts,
    round_trip::{batch, query},
    sql,
};

/// The partitions known to exist, and how many days ahead of today to create.
#[derive(Debug)]
pub(super) struct Partitions {
    /// Days (as `YYYYMMDD`) whose partition is known to exist.
    known: Mutex<HashSet<u32>>,
    ahead: u32,
}

/// A day as the `YYYYMMDD` number the cache holds.
fn day_key(d: NaiveDate) -> u32 {
    d.format("%Y%m%d").to_string().parse().unwrap_or(0)
}

/// The partition of `day`.
fn name_of(day: NaiveDate) -> String {
    format!("events_p{}", day.format("%Y%m%d"))
}

/// The day a partition's name stands for, if it is one of ours.
fn day_of_name(name: &str) -> Option<NaiveDate> {
    name.strip_prefix("events_p")
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
}

/// The UTC day holding `micros`.
pub(super) fn day_of(micros: i64) -> NaiveDate {
    ts(micros).date_naive()
}

impl Partitions {
    /// None known yet; `ahead` days after today are created ahead.
    pub(super) fn new(ahead: u32) -> Self {
        Self {
            known: Mutex::new(HashSet::new()),
            ahead,
        }
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashSet<u32>> {
        // A poisoned cache only means a panic elsewhere; the set itself is still valid.
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every partition believed to exist, so the next flush checks again.
    pub(super) fn forget_all(&self) {
        self.known().clear();
    }

    /// Today and the `ahead` days after it.
    pub(super) fn upcoming_days(&self) -> Vec<NaiveDate> {
        let today = Utc::now().date_naive();
        (0..=self.ahead)
            .filter_map(|i| today.checked_add_days(chrono::Days::new(u64::from(i))))
            .collect()
    }

    /// Creates the partitions of `days` that do not exist yet, each in its own short
    /// transaction (see the module docs).
    pub(super) async fn ensure(&self, client: &Object, days: &[NaiveDate]) -> Result<()> {
        const OP: &str = "create partition";
        let missing: Vec<NaiveDate> = {
            let known = self.known();
            days.iter()
                .copied()
                .filter(|d| !known.contains(&day_key(*d)))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let existing: HashSet<String> = query(client, OP, sql::LIST_PARTITIONS, &[])
            .await?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        for day in missing {
            let name = name_of(day);
            if !existing.contains(&name) {
                let next = day.succ_opt().unwrap_or(day);
                let ddl = sql::CREATE_PARTITION
                    .replace("{name}", &name)
                    .replace("{from}", &format!("{} 00:00:00+00", day.format("%Y-%m-%d")))
                    .replace("{to}", &format!("{} 00:00:00+00", next.format("%Y-%m-%d")));
                if let Err(e) = batch(client, OP, &ddl).await {
                    // Another node may have created it between our listing and now.
                    let raced = matches!(
                        e.code(),
                        Some(c) if *c == SqlState::DUPLICATE_TABLE || *c == SqlState::UNIQUE_VIOLATION
                    );
                    if !raced {
                        return Err(e.into());
                    }
                }
                tracing::debug!(partition = %name, "warm partition created");
            }
            self.known().insert(day_key(day));
        }
        Ok(())
    }

    /// Drops, in retention's transaction `tx`, every partition whose day ends at or before
    /// `before` (epoch micros). Call [`Partitions::forget`] with the answer once `tx`
    /// committed.
    pub(super) async fn drop_expired(
        &self,
        tx: &impl GenericClient,
        op: &'static str,
        before: i64,
    ) -> Result<Vec<NaiveDate>> {
        let mut dropped = Vec::new();
        for row in query(tx, op, sql::LIST_PARTITIONS, &[]).await? {
            let name: String = row.get(0);
            let Some(day) = day_of_name(&name) else {
                continue;
            };
            let end = day
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp_micros());
            if end.is_some_and(|end| end <= before) {
                // The name was read from the catalog and matched events_pYYYYMMDD.
                batch(tx, op, &sql::DROP_PARTITION.replace("{name}", &name)).await?;
                dropped.push(day);
            }
        }
        Ok(dropped)
    }

    /// Forgets partitions retention dropped.
    pub(super) fn forget(&self, days: &[NaiveDate]) {
        let mut known = self.known();
        for d in days {
            known.remove(&day_key(*d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_days_round_trip() {
        // 2026-11-26T00:00:00Z.
        let midnight = 1_795_651_200_000_000;
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        assert_eq!(name_of(day), "events_p20261126");
        assert_eq!(day_of_name("events_p20261126"), Some(day));
        assert_eq!(day_of_name("events_1m"), None);
        assert_eq!(day_key(day), 20_261_126);
        assert_eq!(day_of(midnight), day);
        assert_eq!(day_of(midnight - 1), day.pred_opt().unwrap());
    }
}
