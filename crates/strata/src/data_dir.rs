//! The data directory: the one place that opens a node's hot tier and settles its node id,
//! for `serve` (which creates what is missing) and `export` (which works on a stopped
//! node's existing directory and refuses one a running server holds).
//!
//! Opening redb reads and may repair the file after a crash, and the node id is plain file
//! IO: both are blocking, so the whole open runs off the async workers.

use std::path::{Path, PathBuf};

use strata_hot::{HotConfig, HotStore};

use crate::{
    Error, Result,
    node::{self, NodeIdError},
};

/// Name of the hot tier's redb file inside `--data-dir`.
pub const HOT_FILE: &str = "hot.redb";

/// Whether the directory may be a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `serve`: create the directory, the node id and the hot tier when missing.
    Create,
    /// `export` and other offline tools: the hot tier must exist already, and a directory a
    /// running server holds is refused with [`Error::InUse`].
    Existing,
}

/// The hot tier's file in `dir`.
pub fn hot_path(dir: &Path) -> PathBuf {
    dir.join(HOT_FILE)
}

/// Opens the hot tier of the data directory `dir` with `config` (its path must be
/// [`hot_path`]`(dir)`), settling the node id (`requested`, the stored one, or a new one).
pub async fn open_hot(
    dir: &Path,
    config: HotConfig,
    requested: Option<String>,
    mode: OpenMode,
) -> Result<(HotStore, String)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || open_blocking(&dir, config, requested.as_deref(), mode))
        .await
        .map_err(|source| Error::Task {
            task: "open hot tier",
            source,
        })?
}

fn open_blocking(
    dir: &Path,
    config: HotConfig,
    requested: Option<&str>,
    mode: OpenMode,
) -> Result<(HotStore, String)> {
    let path = config.path.clone();
    let exists = path.exists();
    match mode {
        OpenMode::Create => std::fs::create_dir_all(dir).map_err(|source| Error::DataDir {
            path: dir.to_path_buf(),
            source,
        })?,
        OpenMode::Existing if !exists => return Err(Error::NoHotTier { path }),
        OpenMode::Existing => {}
    }
    let node = node::load_or_create(dir, exists, requested).map_err(|source| match source {
        NodeIdError::Io(source) => Error::DataDir {
            path: dir.join(node::NODE_FILE),
            source,
        },
        source => Error::NodeId {
            dir: dir.to_path_buf(),
            source,
        },
    })?;
    let hot = HotStore::open(config).map_err(|source| {
        if mode == OpenMode::Existing && held_by_a_server(&source) {
            Error::InUse {
                dir: dir.to_path_buf(),
            }
        } else {
            Error::OpenHot { path, source }
        }
    })?;
    Ok((hot, node))
}

/// Whether opening an embedded file failed because another process (a running server)
/// holds it: redb's own error kind, found anywhere in the source chain.
pub(crate) fn held_by_a_server(e: &strata_core::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if matches!(
            err.downcast_ref::<redb::DatabaseError>(),
            Some(redb::DatabaseError::DatabaseAlreadyOpen)
        ) {
            return true;
        }
        current = err.source();
    }
    false
}
