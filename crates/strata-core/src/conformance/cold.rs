//! The blob store conformance suite. Run it from a backend's tests:
//!
//! ```text
//! strata_core::conformance::cold::run_all(|| MyHarness::new()).await;
//! ```
//!
//! The same scenarios run against the local directory store and a real S3-compatible
//! server, so the archive code above [`BlobStore`] can rely on one behaviour.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::Lcg;
use crate::cold::{BlobStore, PutOptions, Retention, RetentionMode};

/// Opens fresh, empty stores.
#[async_trait]
pub trait BlobHarness: Send + Sync {
    /// A new empty store. With `object_lock`, the store supports Object Lock (an S3 bucket
    /// created with Object Lock enabled).
    async fn open(&self, object_lock: bool) -> Arc<dyn BlobStore>;

    /// Bodies at least this large take the backend's large-object path (S3 multipart); the
    /// suite writes one of twice this size.
    fn large_object_size(&self) -> usize {
        6 * 1024 * 1024
    }
}

/// Runs every scenario, each on a fresh harness from `new_harness`.
pub async fn run_all<H: BlobHarness>(new_harness: impl Fn() -> H) {
    put_get_head_list(&new_harness()).await;
    ranges_and_overwrites(&new_harness()).await;
    checksums_are_enforced(&new_harness()).await;
    deletes(&new_harness()).await;
    invalid_keys_are_refused(&new_harness()).await;
    large_objects_and_files(&new_harness()).await;
    concurrent_puts(&new_harness()).await;
    object_lock_compliance_refuses_delete(&new_harness()).await;
    legal_hold_blocks_delete_until_cleared(&new_harness()).await;
}

/// Deterministic bytes, so a failure reproduces.
fn body(seed: u64, len: usize) -> Bytes {
    let mut rng = Lcg::new(seed);
    (0..len)
        .map(|_| rng.below(256) as u8)
        .collect::<Vec<_>>()
        .into()
}

fn opts() -> PutOptions {
    PutOptions::default()
}

/// Objects read back byte for byte; `head` and `list` agree with what was written; a prefix
/// lists exactly its objects in key order.
pub async fn put_get_head_list(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    let keys = [
        "tenant=acme/stream=click/date=2026-11-20/part-b.parquet",
        "tenant=acme/stream=click/date=2026-11-20/part-a.parquet",
        "tenant=acme/stream=view/date=2026-11-21/part-a.parquet",
        "tenant=acmex/stream=click/date=2026-11-20/part-a.parquet",
        "_manifests/tenant=acme/stream=click/date=2026-11-20/v1.json",
    ];
    for (i, key) in keys.iter().enumerate() {
        let b = body(i as u64, 100 + i * 37);
        let meta = store.put(key, b.clone(), &opts()).await.expect("put");
        assert_eq!(meta.key, *key, "put_get: meta key");
        assert_eq!(meta.size, b.len() as u64, "put_get: meta size");
        assert_eq!(
            store.get(key).await.expect("get").as_ref(),
            Some(&b),
            "put_get: {key} reads back"
        );
        let head = store.head(key).await.expect("head").expect("head finds it");
        assert_eq!(head.size, b.len() as u64, "put_get: head size");
        assert!(head.last_modified > 0, "put_get: last_modified set");
    }
    assert!(store.get("tenant=acme/none").await.expect("get").is_none());
    assert!(
        store
            .head("tenant=acme/none")
            .await
            .expect("head")
            .is_none()
    );
    let listed: Vec<String> = store
        .list("tenant=acme/")
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key)
        .collect();
    assert_eq!(
        listed,
        vec![
            "tenant=acme/stream=click/date=2026-11-20/part-a.parquet".to_string(),
            "tenant=acme/stream=click/date=2026-11-20/part-b.parquet".into(),
            "tenant=acme/stream=view/date=2026-11-21/part-a.parquet".into(),
        ],
        "list: a prefix lists exactly its objects, in key order"
    );
    let all = store.list("").await.expect("list all");
    assert_eq!(all.len(), keys.len(), "list: empty prefix lists everything");
    assert!(
        store.list("tenant=nobody/").await.expect("list").is_empty(),
        "list: unknown prefix is empty"
    );
    let sizes: Vec<u64> = store
        .list("tenant=acme/stream=click/")
        .await
        .expect("list")
        .iter()
        .map(|m| m.size)
        .collect();
    assert_eq!(sizes, vec![137, 100], "list: sizes");
}

/// Ranged reads slice exactly (clamped at the end); an overwrite replaces the whole object.
pub async fn ranges_and_overwrites(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    let key = "a/b/object.bin";
    let b = body(7, 10_000);
    store.put(key, b.clone(), &opts()).await.expect("put");
    for (from, to) in [
        (0u64, 1u64),
        (0, 10_000),
        (123, 4567),
        (9_990, 10_000),
        (9_990, 20_000),
    ] {
        let got = store
            .get_range(key, from..to)
            .await
            .expect("get_range")
            .expect("object exists");
        let end = (to as usize).min(b.len());
        assert_eq!(got, b.slice(from as usize..end), "ranges: {from}..{to}");
    }
    assert!(
        store
            .get_range("a/b/none", 0..10)
            .await
            .expect("get_range")
            .is_none(),
        "ranges: missing object"
    );
    let shorter = body(8, 10);
    store.put(key, shorter.clone(), &opts()).await.expect("put");
    assert_eq!(
        store.get(key).await.expect("get"),
        Some(shorter),
        "overwrite: whole object replaced"
    );
    assert_eq!(
        store.head(key).await.expect("head").map(|m| m.size),
        Some(10)
    );
}

/// A put naming the body's SHA-256 succeeds; one naming another checksum stores nothing.
pub async fn checksums_are_enforced(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    let b = Bytes::from_static(b"hello, archive");
    // Any other checksum; core has no SHA-256 implementation, so the right one is a constant.
    let wrong = "c0a8ac6a0fd6ea9a4ebe4e1ff0f4b0f5c5c37e1a56d6fbe1f0deea8c07a2c5a4";
    let real = sha256_hex_of_hello_archive();
    assert_ne!(wrong, real, "the suite's wrong checksum must be wrong");
    let with = |sha: &str| PutOptions {
        sha256: Some(sha.to_owned()),
        ..PutOptions::default()
    };
    store
        .put("sums/ok", b.clone(), &with(real))
        .await
        .expect("put with the right checksum");
    assert_eq!(store.get("sums/ok").await.expect("get"), Some(b.clone()));
    let refused = store.put("sums/bad", b.clone(), &with(wrong)).await;
    assert!(refused.is_err(), "checksums: a wrong checksum is refused");
    assert!(
        store.get("sums/bad").await.expect("get").is_none(),
        "checksums: nothing stored after a refused put"
    );
    // A refused overwrite keeps the old object.
    let refused = store
        .put("sums/ok", Bytes::from_static(b"other"), &with(wrong))
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.get("sums/ok").await.expect("get"),
        Some(b),
        "checksums: a refused overwrite keeps the old object"
    );
}

/// SHA-256 of `hello, archive`, lowercase hex.
fn sha256_hex_of_hello_archive() -> &'static str {
    "f49fb7f0f8159e16fbaa7c2b678923a097a8056057e972dbd270c7149c2af98f"
}

/// Deletes remove objects; deleting a missing key succeeds.
pub async fn deletes(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    store.put("d/one", body(1, 10), &opts()).await.expect("put");
    store.put("d/two", body(2, 10), &opts()).await.expect("put");
    store.delete("d/one").await.expect("delete");
    assert!(
        store.get("d/one").await.expect("get").is_none(),
        "delete: gone"
    );
    assert!(store.head("d/one").await.expect("head").is_none());
    assert_eq!(store.list("d/").await.expect("list").len(), 1);
    store
        .delete("d/one")
        .await
        .expect("deleting a missing key succeeds");
    store
        .delete("d/never")
        .await
        .expect("deleting a missing key succeeds");
    assert!(store.get("d/two").await.expect("get").is_some());
}

/// Keys that could escape the store's root or are ambiguous are refused.
pub async fn invalid_keys_are_refused(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    for key in ["", "/abs", "a/../b", "a//b", "../up", "dir/"] {
        assert!(
            store.put(key, body(3, 4), &opts()).await.is_err(),
            "invalid key {key:?} is refused"
        );
    }
    assert!(
        store.list("").await.expect("list").is_empty(),
        "invalid keys stored nothing"
    );
}

/// Objects past the large-object threshold (S3 multipart) and file uploads/downloads read
/// back byte for byte.
pub async fn large_objects_and_files(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    let len = h.large_object_size() * 2 + 12_345;
    let b = body(9, len);
    store
        .put("big/one", b.clone(), &opts())
        .await
        .expect("put large");
    let got = store.get("big/one").await.expect("get").expect("exists");
    assert!(got == b, "large: reads back byte for byte");
    let mid = len as u64 / 2;
    assert_eq!(
        store
            .get_range("big/one", mid..mid + 1000)
            .await
            .expect("range")
            .expect("exists"),
        b.slice(mid as usize..mid as usize + 1000)
    );
    let dir = tempdir();
    let src = dir.join("src.bin");
    tokio::fs::write(&src, &b).await.expect("write temp file");
    let meta = store
        .put_file("big/from-file", &src, &opts())
        .await
        .expect("put_file");
    assert_eq!(meta.size, len as u64, "put_file: size");
    let dst = dir.join("dst.bin");
    assert!(
        store
            .get_to_file("big/from-file", &dst)
            .await
            .expect("get_to_file")
    );
    let back = tokio::fs::read(&dst).await.expect("read back");
    assert!(back == b, "files: round trip byte for byte");
    assert!(
        !store
            .get_to_file("big/none", &dir.join("none.bin"))
            .await
            .expect("get_to_file of a missing key")
    );
    let _ = tokio::fs::remove_dir_all(&dir).await;
}

fn tempdir() -> std::path::PathBuf {
    let mut rng = Lcg::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    let dir = std::env::temp_dir().join(format!(
        "strata-blob-suite-{}-{}",
        std::process::id(),
        rng.below(u64::MAX)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// Puts to different keys from many tasks all land.
pub async fn concurrent_puts(h: &dyn BlobHarness) {
    let store = h.open(false).await;
    let mut tasks = Vec::new();
    for i in 0..16u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let key = format!("c/{i:02}");
            store.put(&key, body(i, 1000 + i as usize), &opts()).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("put");
    }
    let listed = store.list("c/").await.expect("list");
    assert_eq!(listed.len(), 16, "concurrent: every put landed");
    for (i, m) in listed.iter().enumerate() {
        assert_eq!(m.size, 1000 + i as u64);
    }
}

fn far_future() -> i64 {
    strata_types::time::now_micros() + 24 * 3600 * 1_000_000
}

/// Object Lock COMPLIANCE retention refuses a (versioned) delete; the object stays readable.
/// GOVERNANCE retention refuses it too (Strata never sends a bypass).
pub async fn object_lock_compliance_refuses_delete(h: &dyn BlobHarness) {
    let store = h.open(true).await;
    for (key, mode) in [
        ("lock/compliance", RetentionMode::Compliance),
        ("lock/governance", RetentionMode::Governance),
    ] {
        let b = body(11, 500);
        let options = PutOptions {
            retention: Some(Retention {
                mode,
                retain_until: far_future(),
            }),
            ..PutOptions::default()
        };
        store
            .put(key, b.clone(), &options)
            .await
            .expect("put locked");
        assert!(
            store.delete(key).await.is_err(),
            "object lock: {mode:?} refuses the delete"
        );
        assert_eq!(
            store.get(key).await.expect("get"),
            Some(b),
            "object lock: {mode:?} object still readable"
        );
    }
    // Retention applied after the write holds as well.
    store
        .put("lock/later", body(12, 50), &opts())
        .await
        .expect("put");
    store
        .set_retention(
            "lock/later",
            &Retention {
                mode: RetentionMode::Compliance,
                retain_until: far_future(),
            },
        )
        .await
        .expect("set_retention");
    assert!(
        store.delete("lock/later").await.is_err(),
        "object lock: retention set later refuses the delete"
    );
    assert!(store.get("lock/later").await.expect("get").is_some());
    // Objects without retention in the same store delete normally.
    store
        .put("lock/free", body(13, 50), &opts())
        .await
        .expect("put");
    store.delete("lock/free").await.expect("unlocked delete");
    assert!(store.get("lock/free").await.expect("get").is_none());
}

/// A legal hold refuses deletes until it is cleared.
pub async fn legal_hold_blocks_delete_until_cleared(h: &dyn BlobHarness) {
    let store = h.open(true).await;
    let held = PutOptions {
        legal_hold: true,
        ..PutOptions::default()
    };
    store
        .put("hold/at-put", body(14, 64), &held)
        .await
        .expect("put with hold");
    store
        .put("hold/later", body(15, 64), &opts())
        .await
        .expect("put");
    store
        .set_legal_hold("hold/later", true)
        .await
        .expect("set hold");
    for key in ["hold/at-put", "hold/later"] {
        assert!(
            store.delete(key).await.is_err(),
            "legal hold: {key} refuses the delete"
        );
        assert!(store.get(key).await.expect("get").is_some());
        store.set_legal_hold(key, false).await.expect("clear hold");
        store
            .delete(key)
            .await
            .expect("delete after the hold is cleared");
        assert!(
            store.get(key).await.expect("get").is_none(),
            "legal hold: {key} deleted once cleared"
        );
    }
}
