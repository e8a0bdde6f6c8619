//! The redb tables. Everything a commit changes is written in one transaction.

use redb::TableDefinition;

/// First seq of a group commit → the row blob ([`crate::codec`]). Keys grow with every
/// commit, so inserts append to the B-tree's right edge.
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Small counters that must survive the log rows they describe.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `(source, topic, partition)` → next offset to consume.
pub(crate) const OFFSETS: TableDefinition<(&str, &str, i32), i64> = TableDefinition::new("offsets");

/// `META` key: every seq up to this one is released.
pub(crate) const RELEASED_UPTO: &str = "released_upto";
/// `META` key: the next seq to assign, written on release because released rows no longer
/// tell it.
pub(crate) const NEXT_SEQ: &str = "next_seq";
