//! Retention: every row before the cutoff goes, in one transaction, and the cutoff is
//! recorded so that later flushes do not store rows below it.
//!
//! The cutoff row is raised first: flushes hold it shared until they commit, so retention
//! waits for running flushes and later flushes see the new cutoff. Whole days go cheaply
//! (TimescaleDB drops chunks, plain PostgreSQL drops daily partitions), the day the cutoff
//! cuts through is deleted row by row, and the export candidates of days now wholly gone are
//! forgotten; cold pointers stay, as the archive keeps those partitions. Retention runs
//! periodically, so it is also where upkeep happens that must stay off the flush path:
//! creating the upcoming days' partitions (plain PostgreSQL) and catching up continuous
//! aggregate refreshes that flushes left (TimescaleDB).

use strata_core::{Result, warm::WarmMode};
use strata_types::time::day_of;

use super::{
    PostgresWarm,
    codec::ts,
    round_trip::{begin, commit, execute, query_one},
    sql,
};

const OP: &str = "drop_before";

impl PostgresWarm {
    /// Removes every row with `ts < before`; returns the rows deleted one by one (rows of
    /// dropped chunks or partitions are not counted).
    pub(super) async fn retain_from(&self, before: i64) -> Result<u64> {
        let cutoff = ts(before);
        let mut client = self.client(OP).await?;
        let tx = begin(&mut client, OP).await?;
        query_one(&tx, OP, sql::RETENTION_STATE, &[&cutoff]).await?;
        let mut dropped_days = Vec::new();
        match self.mode {
            WarmMode::Timescale => {
                execute(&tx, OP, sql::RETENTION_DROP_CHUNKS, &[&cutoff]).await?;
                execute(&tx, OP, sql::ROLLUP_PENDING_RETENTION, &[&cutoff]).await?;
            }
            _ => {
                dropped_days = self.partitions.drop_expired(&tx, OP, before).await?;
                for rollup in &self.statements.rollups {
                    execute(&tx, OP, &rollup.retention, &[&cutoff]).await?;
                }
            }
        }
        let removed = execute(&tx, OP, sql::RETENTION_DELETE, &[&cutoff]).await?;
        execute(&tx, OP, sql::WARM_PARTITIONS_RETENTION, &[&day_of(before)]).await?;
        commit(tx, OP).await?;
        self.partitions.forget(&dropped_days);
        match self.mode {
            WarmMode::Postgres => {
                let upcoming = self.partitions.upcoming_days();
                self.partitions.ensure(&client, &upcoming).await?;
            }
            WarmMode::Timescale => {
                // A quiet tier must not read raw rows over ranges flushes left unrefreshed
                // for longer than a retention interval.
                if let Err(e) = self.refresher.now(&client).await {
                    tracing::warn!(error = %e, "warm: continuous aggregate refresh after retention failed");
                }
            }
            WarmMode::Embedded => {}
        }
        Ok(removed)
    }
}
