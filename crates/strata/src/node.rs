//! This node's id, which the warm tier stores with every row the node's hot tier flushed.
//!
//! Warm deduplicates flushed rows by `(node, seq)`, so an id must never be reused with a
//! sequence that restarted: a new hot store (no `hot.redb` yet) always gets a new id, and an
//! existing one keeps the id written next to it. The id is written durably before the hot
//! store is created, so a crash in between at worst leaves an unused id behind.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
};

/// File in the data directory that holds the id.
pub const NODE_FILE: &str = "node-id";

/// The id of the node whose data lives in `dir`. `hot_exists` says whether its hot store
/// was already there; if not, a fresh id replaces any old one. Blocking file IO.
pub fn load_or_create(dir: &Path, hot_exists: bool) -> io::Result<String> {
    let path = dir.join(NODE_FILE);
    if hot_exists {
        match fs::read_to_string(&path) {
            Ok(text) if valid(text.trim()) => return Ok(text.trim().to_owned()),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold a node id", path.display()),
                ));
            }
            // A hot store from before node ids existed: it has flushed nothing under any id.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let id = format!("node-{:016x}", rand::random::<u64>());
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

fn valid(id: &str) -> bool {
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
        let first = load_or_create(dir.path(), false).unwrap();
        assert!(valid(&first), "{first}");
        assert_eq!(load_or_create(dir.path(), true).unwrap(), first);
        let renewed = load_or_create(dir.path(), false).unwrap();
        assert_ne!(renewed, first);
        assert_eq!(load_or_create(dir.path(), true).unwrap(), renewed);
    }

    #[test]
    fn missing_file_gets_an_id_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), true).unwrap();
        assert!(id.starts_with("node-"));
        fs::write(dir.path().join(NODE_FILE), "not an id!\n").unwrap();
        let err = load_or_create(dir.path(), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
