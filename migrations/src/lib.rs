//! Strata's warm-tier schema migrations: the numbered `.sql` files in this directory,
//! embedded at build time, in the order they are applied.
//!
//! The files stay in the top-level `migrations/` directory, where operators and reviewers
//! look for schema changes; this crate only gives that directory a manifest, so every
//! `include_str!` names a file inside its own crate and building, packaging or moving the
//! warm backend never depends on a path that climbs out of a crate.
//!
//! A migration is `NNNN_name.sql` (both layouts run it) or a pair `NNNN_name.postgres.sql` /
//! `NNNN_name.timescaledb.sql` (one file per layout). A new file goes at the end of
//! [`MIGRATIONS`] with the next number; applied files are never edited, since databases
//! record only the version they applied. This crate's tests fail when a file of this
//! directory is not listed, or a listed one does not match its file name.
//!
//! `strata-warm` applies them (`strata migrate`): each in its own transaction, recorded in
//! `strata_migrations` together with the layout it was applied in.

/// One numbered schema migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: migrations are applied in increasing order, each once.
    pub version: i32,
    /// Its name, the file name between the number and the extension.
    pub name: &'static str,
    /// Its SQL.
    pub sql: Sql,
}

/// A migration's SQL: one file both layouts run, or a file per layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sql {
    /// `NNNN_name.sql`, run by both layouts.
    Shared(&'static str),
    /// `NNNN_name.postgres.sql` and `NNNN_name.timescaledb.sql`.
    PerLayout {
        /// For plain PostgreSQL (native daily partitions, Strata-maintained rollups).
        postgres: &'static str,
        /// For TimescaleDB (hypertable, continuous aggregates).
        timescaledb: &'static str,
    },
}

impl Migration {
    /// The SQL plain PostgreSQL runs.
    pub fn postgres(&self) -> &'static str {
        match self.sql {
            Sql::Shared(sql) | Sql::PerLayout { postgres: sql, .. } => sql,
        }
    }

    /// The SQL TimescaleDB runs.
    pub fn timescaledb(&self) -> &'static str {
        match self.sql {
            Sql::Shared(sql)
            | Sql::PerLayout {
                timescaledb: sql, ..
            } => sql,
        }
    }
}

/// One file's SQL, for both layouts.
macro_rules! shared {
    ($version:literal, $name:literal, $file:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: Sql::Shared(include_str!(concat!("../", $file))),
        }
    };
}

/// A file per layout.
macro_rules! per_layout {
    ($version:literal, $name:literal, $postgres:literal, $timescaledb:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: Sql::PerLayout {
                postgres: include_str!(concat!("../", $postgres)),
                timescaledb: include_str!(concat!("../", $timescaledb)),
            },
        }
    };
}

/// Every migration, in the order they are applied.
pub const MIGRATIONS: &[Migration] = &[
    shared!(1, "flush_ledger", "0001_flush_ledger.sql"),
    per_layout!(
        2,
        "events",
        "0002_events.postgres.sql",
        "0002_events.timescaledb.sql"
    ),
    per_layout!(
        3,
        "rollups",
        "0003_rollups.postgres.sql",
        "0003_rollups.timescaledb.sql"
    ),
    shared!(4, "cold_partitions", "0004_cold_partitions.sql"),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The file names a migration stands for.
    fn files(m: &Migration) -> Vec<String> {
        let stem = format!("{:04}_{}", m.version, m.name);
        match m.sql {
            Sql::Shared(_) => vec![format!("{stem}.sql")],
            Sql::PerLayout { .. } => vec![
                format!("{stem}.postgres.sql"),
                format!("{stem}.timescaledb.sql"),
            ],
        }
    }

    #[test]
    fn versions_increase_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).ok(), Some(i + 1), "{m:?}");
            assert!(!m.postgres().trim().is_empty() && !m.timescaledb().trim().is_empty());
        }
    }

    #[test]
    fn every_file_of_the_directory_is_listed_under_its_own_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
            .expect("read the migrations directory")
            .map(|e| e.expect("directory entry").file_name())
            .filter_map(|n| n.to_str().map(str::to_owned))
            .filter(|n| n.ends_with(".sql"))
            .collect();
        let listed: BTreeSet<String> = MIGRATIONS.iter().flat_map(files).collect();
        assert_eq!(on_disk, listed);
        for m in MIGRATIONS {
            let texts: Vec<String> = files(m)
                .iter()
                .map(|f| std::fs::read_to_string(dir.join(f)).expect("read a migration"))
                .collect();
            match (m.sql, texts.as_slice()) {
                (Sql::Shared(sql), [text]) => assert_eq!(sql, text, "{m:?}"),
                (
                    Sql::PerLayout {
                        postgres,
                        timescaledb,
                    },
                    [p, t],
                ) => assert_eq!((postgres, timescaledb), (p.as_str(), t.as_str()), "{m:?}"),
                _ => unreachable!("one file per shared migration, two otherwise"),
            }
        }
    }
}
