//! The local directory blob store (`file://<dir>`), the embedded default.
//!
//! A put writes a temporary file under `<root>/.strata-tmp/`, fsyncs it, renames it over the
//! key and fsyncs the key's directory, so a crash never leaves a partial file under a real
//! key. Object Lock is emulated with a small sidecar per locked object under
//! `<root>/.strata-locks/`: deletes (and overwrites) of an object under retention or legal
//! hold are refused, which is what the S3 backend's server does, so both pass one suite.
//! Directories whose names start with `.strata-` are never listed.

use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom, Write},
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_core::{
    Error, Result, Tier,
    cold::{BlobStore, ObjectMeta, PutOptions, Retention, RetentionMode, check_key},
};
use strata_types::time::{duration_micros, now_micros};

use crate::manifest::sha256_hex;

const TMP_DIR: &str = ".strata-tmp";
const LOCK_DIR: &str = ".strata-locks";
const INTERNAL_PREFIX: &str = ".strata-";

/// Object Lock state of one object, as the sidecar records it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LockState {
    mode: Option<String>,
    retain_until: Option<i64>,
    legal_hold: bool,
}

impl LockState {
    fn blocks_delete(&self, now: i64) -> Option<String> {
        if self.legal_hold {
            return Some("it is under legal hold".into());
        }
        match (self.retain_until, &self.mode) {
            (Some(until), Some(mode)) if until > now => Some(format!(
                "it is under {mode} retention until {}",
                strata_types::time::format_rfc3339(until)
            )),
            _ => None,
        }
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl Fn(std::io::Error) -> Error + 'a {
    move |e| Error::storage(Tier::Cold, op, format!("{}: {e}", path.display()))
}

/// A blob store in a local directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: Arc<PathBuf>,
}

impl FileStore {
    /// A store rooted at `root` (created if missing).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(root.join(TMP_DIR)).map_err(io_err("open", &root))?;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        if key.starts_with(INTERNAL_PREFIX) {
            return Err(Error::storage(
                Tier::Cold,
                "key",
                format!("`{key}`: keys starting with `{INTERNAL_PREFIX}` are reserved"),
            ));
        }
        Ok(self.root.join(key))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.root.join(LOCK_DIR).join(format!("{key}.json"))
    }

    fn lock_state(&self, key: &str) -> Result<LockState> {
        let path = self.lock_path(key);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                tier: Tier::Cold,
                what: format!("lock sidecar {}: {e}", path.display()),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(LockState::default()),
            Err(e) => Err(io_err("lock state", &path)(e)),
        }
    }

    fn write_lock_state(&self, key: &str, state: &LockState) -> Result<()> {
        let path = self.lock_path(key);
        let body = serde_json::to_vec(state).map_err(|e| Error::storage(Tier::Cold, "lock", e))?;
        self.write_atomic(&path, |f| f.write_all(&body))
    }

    /// Writes through `fill` into a temp file, fsyncs it, renames it to `dest` and fsyncs
    /// the directory, so `dest` is either the old file or the whole new one.
    fn write_atomic(
        &self,
        dest: &Path,
        fill: impl FnOnce(&mut File) -> std::io::Result<()>,
    ) -> Result<()> {
        let dir = dest.parent().unwrap_or(&self.root);
        fs::create_dir_all(dir).map_err(io_err("put", dir))?;
        let tmp_dir = self.root.join(TMP_DIR);
        fs::create_dir_all(&tmp_dir).map_err(io_err("put", &tmp_dir))?;
        let tmp = tmp_dir.join(format!("{}.tmp", uuid::Uuid::new_v4()));
        let result = (|| {
            let mut f = File::create(&tmp).map_err(io_err("put", &tmp))?;
            fill(&mut f).map_err(io_err("put", &tmp))?;
            f.sync_all().map_err(io_err("put", &tmp))?;
            drop(f);
            fs::rename(&tmp, dest).map_err(io_err("put", dest))?;
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err("put", dir))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn refuse_if_locked(&self, key: &str, op: &'static str) -> Result<()> {
        if let Some(why) = self.lock_state(key)?.blocks_delete(now_micros()) {
            return Err(Error::storage(
                Tier::Cold,
                op,
                format!("object `{key}` cannot be removed or replaced: {why}"),
            ));
        }
        Ok(())
    }

    fn meta(key: &str, md: &fs::Metadata) -> ObjectMeta {
        let last_modified = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, duration_micros);
        ObjectMeta {
            key: key.to_owned(),
            size: md.len(),
            last_modified,
        }
    }

    fn put_sync(&self, key: &str, source: Source<'_>, options: &PutOptions) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        self.refuse_if_locked(key, "put")?;
        if let Some(want) = &options.sha256 {
            let got = match &source {
                Source::Bytes(b) => sha256_hex(b),
                Source::File(p) => crate::sha256_file(p)?.0,
            };
            if !got.eq_ignore_ascii_case(want) {
                return Err(Error::storage(
                    Tier::Cold,
                    "put",
                    format!("checksum mismatch for `{key}`: expected {want}, got {got}"),
                ));
            }
        }
        self.write_atomic(&path, |f| match &source {
            Source::Bytes(b) => f.write_all(b),
            Source::File(p) => {
                let mut src = File::open(p)?;
                std::io::copy(&mut src, f).map(|_| ())
            }
        })?;
        if options.retention.is_some() || options.legal_hold {
            self.write_lock_state(
                key,
                &LockState {
                    mode: options.retention.map(|r| r.mode.as_str().to_owned()),
                    retain_until: options.retention.map(|r| r.retain_until),
                    legal_hold: options.legal_hold,
                },
            )?;
        }
        let md = fs::metadata(&path).map_err(io_err("put", &path))?;
        Ok(Self::meta(key, &md))
    }

    fn list_sync(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        // Walk only the directory the prefix pins down.
        let base = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !base.is_empty() && check_key(base).is_err() {
            return Ok(Vec::new());
        }
        let start = if base.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(base)
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, base.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("list", &dir))?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if rel.is_empty() && name.starts_with(INTERNAL_PREFIX) {
                    continue;
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let ft = entry.file_type().map_err(io_err("list", &dir))?;
                if ft.is_dir() {
                    if key.starts_with(prefix) || prefix.starts_with(&format!("{key}/")) {
                        stack.push((entry.path(), key));
                    }
                } else if ft.is_file() && key.starts_with(prefix) {
                    let md = entry.metadata().map_err(io_err("list", &dir))?;
                    out.push(Self::meta(&key, &md));
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete_sync(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        self.refuse_if_locked(key, "delete")?;
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("delete", &path)(e)),
        }
        let _ = fs::remove_file(self.lock_path(key));
        // Empty partition directories are removed so listings stay small; a concurrent put
        // into the same directory recreates it (create_dir_all before its rename).
        let mut dir = path.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == *self.root || fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        if let Some(parent) = path.parent().filter(|p| p.exists()) {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io_err("delete", parent))?;
        }
        Ok(())
    }

    fn update_lock(&self, key: &str, f: impl FnOnce(&mut LockState)) -> Result<()> {
        let path = self.path(key)?;
        if !path.is_file() {
            return Err(Error::storage(
                Tier::Cold,
                "object lock",
                format!("no object `{key}`"),
            ));
        }
        let mut state = self.lock_state(key)?;
        f(&mut state);
        self.write_lock_state(key, &state)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&FileStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me))
            .await
            .map_err(|e| Error::storage(Tier::Cold, op, e))?
    }
}

enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

#[async_trait]
impl BlobStore for FileStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn put(&self, key: &str, body: Bytes, options: &PutOptions) -> Result<ObjectMeta> {
        let (key, options) = (key.to_owned(), options.clone());
        self.blocking("put", move |s| {
            s.put_sync(&key, Source::Bytes(&body), &options)
        })
        .await
    }

    async fn put_file(&self, key: &str, path: &Path, options: &PutOptions) -> Result<ObjectMeta> {
        let (key, path, options) = (key.to_owned(), path.to_path_buf(), options.clone());
        self.blocking("put_file", move |s| {
            s.put_sync(&key, Source::File(&path), &options)
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let key = key.to_owned();
        self.blocking("get", move |s| {
            let path = s.path(&key)?;
            match fs::read(&path) {
                Ok(b) => Ok(Some(Bytes::from(b))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("get", &path)(e)),
            }
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        let key = key.to_owned();
        self.blocking("get_range", move |s| {
            let path = s.path(&key)?;
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("get_range", &path)(e)),
            };
            let len = f.metadata().map_err(io_err("get_range", &path))?.len();
            let (from, to) = (range.start.min(len), range.end.min(len));
            let mut buf = vec![0u8; to.saturating_sub(from) as usize];
            f.seek(SeekFrom::Start(from))
                .and_then(|_| f.read_exact(&mut buf))
                .map_err(io_err("get_range", &path))?;
            Ok(Some(Bytes::from(buf)))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>> {
        let key = key.to_owned();
        self.blocking("head", move |s| {
            let path = s.path(&key)?;
            match fs::metadata(&path) {
                Ok(md) if md.is_file() => Ok(Some(FileStore::meta(&key, &md))),
                Ok(_) => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io_err("head", &path)(e)),
            }
        })
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let prefix = prefix.to_owned();
        self.blocking("list", move |s| s.list_sync(&prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let key = key.to_owned();
        self.blocking("delete", move |s| s.delete_sync(&key)).await
    }

    async fn set_legal_hold(&self, key: &str, on: bool) -> Result<()> {
        let key = key.to_owned();
        self.blocking("set_legal_hold", move |s| {
            s.update_lock(&key, |st| st.legal_hold = on)
        })
        .await
    }

    async fn set_retention(&self, key: &str, retention: &Retention) -> Result<()> {
        let (key, r) = (key.to_owned(), *retention);
        self.blocking("set_retention", move |s| {
            let now = now_micros();
            let current = s.lock_state(&key)?;
            // Like S3: COMPLIANCE retention can only be extended, never shortened or
            // weakened.
            if let (Some(until), Some(mode)) = (current.retain_until, &current.mode)
                && until > now
                && mode == RetentionMode::Compliance.as_str()
                && (r.retain_until < until || r.mode != RetentionMode::Compliance)
            {
                return Err(Error::storage(
                    Tier::Cold,
                    "set_retention",
                    format!("`{key}` is under COMPLIANCE retention that cannot be shortened"),
                ));
            }
            s.update_lock(&key, |st| {
                st.mode = Some(r.mode.as_str().to_owned());
                st.retain_until = Some(r.retain_until);
            })
        })
        .await
    }

    async fn get_to_file(&self, key: &str, path: &Path) -> Result<bool> {
        let (key, dest) = (key.to_owned(), path.to_path_buf());
        self.blocking("get_to_file", move |s| {
            let src = s.path(&key)?;
            match fs::copy(&src, &dest) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !src.exists() => Ok(false),
                Err(e) => Err(io_err("get_to_file", &src)(e)),
            }
        })
        .await
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }
}
