//! This node's id, which the warm tier stores with every row the node's hot tier flushed.
//!
//! Warm deduplicates flushed rows by `(node, seq)`, so an id must never be reused with a
//! sequence that restarted: a new hot store (no `hot.redb` yet) gets a new id, and an
//! existing one keeps the id written next to it. The id is written durably before the hot
//! store is created, so a crash in between at worst leaves an unused id behind.
//!
//! An operator may name the node (`--node-id`, e.g. a StatefulSet's pod name). A named id
//! that differs from the one a data directory already holds is refused rather than adopted,
//! and `serve` also refuses an id whose rows in warm are ahead of the hot store's sequence
//! numbers (the same name reused on a new data directory), since warm would skip the new
//! store's events as already written.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
};

/// File in the data directory that holds the id.
pub const NODE_FILE: &str = "node-id";

/// Why the node id could not be settled.
#[derive(Debug, thiserror::Error)]
pub enum NodeIdError {
    /// The id file could not be read or written.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The data directory belongs to another id than the one asked for.
    #[error(
        "the data directory belongs to node `{stored}`, but --node-id (STRATA_NODE_ID) asks \
         for `{requested}`; refusing to renumber a node whose hot tier holds sequence numbers \
         of `{stored}`: start with --node-id {stored}, or give `{requested}` an empty data \
         directory"
    )]
    Mismatch {
        /// The id kept in the data directory.
        stored: String,
        /// The id asked for.
        requested: String,
    },
}

/// The id of the node whose data lives in `dir`. `hot_exists` says whether its hot store
/// was already there; if not, a fresh id (`requested`, or a random one) replaces any old
/// one. An existing hot store keeps its id: `requested` must then match it. Blocking file
/// IO.
pub fn load_or_create(
    dir: &Path,
    hot_exists: bool,
    requested: Option<&str>,
) -> Result<String, NodeIdError> {
    let path = dir.join(NODE_FILE);
    if hot_exists {
        match fs::read_to_string(&path) {
            Ok(text) if valid(text.trim()) => {
                let stored = text.trim();
                return match requested {
                    Some(r) if r != stored => Err(NodeIdError::Mismatch {
                        stored: stored.to_owned(),
                        requested: r.to_owned(),
                    }),
                    _ => Ok(stored.to_owned()),
                };
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold a node id", path.display()),
                )
                .into());
            }
            // A hot store from before node ids existed: it has flushed nothing under any id.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let id = match requested {
        Some(r) => r.to_owned(),
        None => format!("node-{:016x}", rand::random::<u64>()),
    };
    let tmp = dir.join(format!("{NODE_FILE}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(id.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()?;
    Ok(id)
}

/// Whether `id` is a usable node id: 1 to 64 ASCII letters, digits, `-` or `_` (it appears
/// in SQL rows, file names and metric labels).
pub fn valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_while_the_hot_store_exists_and_renewed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), false, None).unwrap();
        assert!(valid(&first), "{first}");
        assert_eq!(load_or_create(dir.path(), true, None).unwrap(), first);
        let renewed = load_or_create(dir.path(), false, None).unwrap();
        assert_ne!(renewed, first);
        assert_eq!(load_or_create(dir.path(), true, None).unwrap(), renewed);
    }

    #[test]
    fn missing_file_gets_an_id_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), true, None).unwrap();
        assert!(id.starts_with("node-"));
        fs::write(dir.path().join(NODE_FILE), "not an id!\n").unwrap();
        let err = load_or_create(dir.path(), true, None).unwrap_err();
        assert!(
            matches!(&err, NodeIdError::Io(e) if e.kind() == io::ErrorKind::InvalidData),
            "{err:?}"
        );
    }

    #[test]
    fn a_requested_id_names_a_new_store_and_must_match_an_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), false, Some("strata-0")).unwrap();
        assert_eq!(id, "strata-0");
        assert_eq!(
            load_or_create(dir.path(), true, Some("strata-0")).unwrap(),
            "strata-0"
        );
        // Without the flag an existing store keeps its id.
        assert_eq!(load_or_create(dir.path(), true, None).unwrap(), "strata-0");
        let err = load_or_create(dir.path(), true, Some("strata-1")).unwrap_err();
        let NodeIdError::Mismatch { stored, requested } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (stored.as_str(), requested.as_str()),
            ("strata-0", "strata-1")
        );
        assert!(err.to_string().contains("refusing to renumber"), "{err}");
        // The refused id did not overwrite the stored one.
        assert_eq!(load_or_create(dir.path(), true, None).unwrap(), "strata-0");
        // A new hot store takes the requested id even over a stale file.
        assert_eq!(
            load_or_create(dir.path(), false, Some("strata-1")).unwrap(),
            "strata-1"
        );
    }

    #[test]
    fn an_old_store_without_an_id_file_takes_the_requested_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            load_or_create(dir.path(), true, Some("pod-7")).unwrap(),
            "pod-7"
        );
        assert_eq!(load_or_create(dir.path(), true, None).unwrap(), "pod-7");
    }
}
