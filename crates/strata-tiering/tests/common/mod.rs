//! The one rig the tiering suites build their stores from: a real embedded hot tier, the
//! embedded warm store behind [`FaultyWarm`], and optionally a local-directory archive
//! behind [`FaultyBlobs`], with the store's flusher and exporter. Nothing is armed unless a
//! test arms it, so the same rig serves the happy paths and the failure injections.

// Each test crate uses a different part of the rig.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use strata_cold::{ColdConfig, ColdStore, FileStore};
use strata_core::conformance::faults::{FaultyBlobs, FaultyWarm};
use strata_hot::{HotConfig, HotStore};
use strata_tiering::{
    Exporter, ExporterConfig, Flusher, FlusherConfig, IngestReport, Store, StoreConfig,
};
use strata_types::{
    Bucket, Event, Limits,
    decode::{BodyFormat, DecodedBatch},
    time::{day_of, day_start, now_micros},
};
use strata_warm::EmbeddedWarm;

/// The node id of rigs that do not care about it.
pub const NODE: &str = "node-test";

/// A store over real tiers in a temporary directory, and handles on each tier.
pub struct Rig {
    /// Kept alive for the tiers' files.
    _dir: tempfile::TempDir,
    /// The store under test.
    pub store: Store,
    /// The warm tier (and hand-off) the store, its flusher and its exporter use; arm its
    /// `write_batch` and `commit_cold` faults to cut flushes and cold commits.
    pub warm: Arc<FaultyWarm>,
    /// The embedded warm store behind `warm`, for assertions that bypass the store.
    pub embedded: Arc<EmbeddedWarm>,
    flusher: Option<Flusher>,
    archive: Option<Archive>,
}

/// The cold side of a rig.
pub struct Archive {
    /// Where the local-directory archive keeps its objects.
    pub dir: PathBuf,
    /// The blob store under the archive; arm its `put` faults to cut file and manifest
    /// uploads.
    pub blobs: Arc<FaultyBlobs>,
    /// The archive.
    pub cold: Arc<ColdStore>,
    /// The store's exporter.
    pub exporter: Exporter,
}

impl Rig {
    /// A rig for node `node`: no cold tier, no flusher, default limits and store config.
    pub fn builder(node: &str) -> RigBuilder {
        RigBuilder {
            node: node.to_owned(),
            limits: Limits::default(),
            store_config: None,
            cold: None,
            flusher: None,
            exporter: exporter_config(97),
        }
    }

    /// The store's flusher (the rig was built with [`RigBuilder::flusher`]).
    pub fn flusher(&self) -> &Flusher {
        self.flusher
            .as_ref()
            .expect("the rig was built without a flusher")
    }

    /// The cold side (the rig was built with [`RigBuilder::cold`]).
    pub fn archive(&self) -> &Archive {
        self.archive
            .as_ref()
            .expect("the rig was built without a cold tier")
    }

    /// The store's exporter.
    pub fn exporter(&self) -> &Exporter {
        &self.archive().exporter
    }

    /// Runs export passes until nothing is due; returns the rows moved.
    pub async fn export_all(&self) -> u64 {
        let mut rows = 0;
        for _ in 0..100 {
            let r = self.exporter().export_due().await.unwrap();
            rows += r.rows;
            if !r.more_due {
                return rows;
            }
        }
        panic!("export did not finish")
    }
}

/// How to build a [`Rig`].
pub struct RigBuilder {
    node: String,
    limits: Limits,
    store_config: Option<StoreConfig>,
    cold: Option<ColdConfig>,
    flusher: Option<FlusherConfig>,
    exporter: ExporterConfig,
}

impl RigBuilder {
    /// Validate with `limits`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Build the store [`Store::with_config`].
    pub fn store_config(mut self, config: StoreConfig) -> Self {
        self.store_config = Some(config);
        self
    }

    /// Add a local-directory archive with `config` (and the store's exporter).
    pub fn cold(mut self, config: ColdConfig) -> Self {
        self.cold = Some(config);
        self
    }

    /// Build the store's flusher with `config`. Without one nothing leaves hot and the
    /// write path never asks warm for duplicates, which some tests rely on.
    pub fn flusher(mut self, config: FlusherConfig) -> Self {
        self.flusher = Some(config);
        self
    }

    /// Build the exporter with `config` instead of [`exporter_config`]`(97)`.
    pub fn exporter(mut self, config: ExporterConfig) -> Self {
        self.exporter = config;
        self
    }

    /// Opens the tiers in a new temporary directory and builds the store, then its
    /// flusher and exporter (they take the store's cache, gate and locks).
    pub async fn build(self) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let hot_config = HotConfig::new(dir.path().join("hot.redb"));
        let hot = tokio::task::spawn_blocking(move || HotStore::open(hot_config))
            .await
            .unwrap()
            .unwrap();
        let embedded = Arc::new(
            EmbeddedWarm::open(dir.path().join("warm.redb"))
                .await
                .unwrap(),
        );
        let warm = Arc::new(FaultyWarm::new(embedded.clone()));
        let mut store = Store::new(Arc::new(hot), warm.clone(), self.node, self.limits);
        if let Some(config) = self.store_config {
            store = store.with_config(config);
        }
        let cold = self.cold.map(|config| {
            let cold_dir = dir.path().join("cold");
            let blobs = Arc::new(FaultyBlobs::new(Arc::new(
                FileStore::open(&cold_dir).unwrap(),
            )));
            let cold = Arc::new(ColdStore::new(blobs.clone(), config));
            (cold_dir, blobs, cold)
        });
        if let Some((_, _, cold)) = &cold {
            // The same warm backend serves the store and the hand-off, as in `strata serve`.
            store = store.with_cold(cold.clone(), warm.clone());
        }
        let flusher = self.flusher.map(|c| Flusher::for_store(&store, c));
        let archive = cold.map(|(dir, blobs, cold)| Archive {
            dir,
            blobs,
            cold,
            exporter: Exporter::for_store(&store, self.exporter)
                .expect("the store has a cold tier"),
        });
        Rig {
            _dir: dir,
            store,
            warm,
            embedded,
            flusher,
            archive,
        }
    }
}

/// A flusher that moves everything at once: no hot retention, no warm retention,
/// `batch` events per batch and passes long enough to drain any test's backlog.
pub fn moving_flusher(batch: usize) -> FlusherConfig {
    FlusherConfig {
        hot_retention: Duration::ZERO,
        max_batch_events: batch,
        max_batches_per_pass: 1000,
        warm_retention: None,
        ..FlusherConfig::default()
    }
}

/// An exporter of every partition whose day ended over a day ago, reading `page_rows` rows
/// per warm page (small pages exercise paging).
pub fn exporter_config(page_rows: usize) -> ExporterConfig {
    ExporterConfig {
        export_after: Duration::from_secs(86_400),
        page_rows,
        ..ExporterConfig::default()
    }
}

/// A store without a cold tier whose warm tier keeps ten days.
pub async fn warm_only(node: &str) -> Rig {
    Rig::builder(node)
        .store_config(StoreConfig {
            warm_retention: Some(Duration::from_secs(10 * 86_400)),
            ..StoreConfig::default()
        })
        .build()
        .await
}

/// A `click` of `user-1` in tenant `acme`, with no attributes or payload.
pub fn click(id: &str, ts: i64, value: f64) -> Event {
    Event {
        tenant: "acme".into(),
        stream: "click".into(),
        key: "user-1".into(),
        id: id.into(),
        ts,
        value: Some(value),
        attrs: Default::default(),
        payload: None,
    }
}

/// An archive with small row groups (many per file) and no grace before leftovers go.
pub fn test_cold_config() -> ColdConfig {
    ColdConfig {
        orphan_grace: Duration::ZERO,
        row_group_rows: 64,
        ..ColdConfig::default()
    }
}

/// The start of today (UTC), epoch micros.
pub fn today() -> i64 {
    day_start(day_of(now_micros()))
}

/// Ingests `events` as one batch; asserts every one was accepted.
pub async fn ingest(store: &Store, events: &[Event]) -> IngestReport {
    let report = store
        .ingest(DecodedBatch {
            events: events.to_vec(),
            rejected: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(report.accepted, events.len(), "{report:?}");
    report
}

/// Ingests `body`, a JSON array of events, as a producer's request would reach the store.
pub async fn ingest_json(store: &Store, body: &str) -> Result<IngestReport, strata_tiering::Error> {
    store
        .ingest_body(body.as_bytes(), BodyFormat::JsonArray)
        .await
}

/// Asserts two aggregate answers are the same buckets, values equal up to float rounding.
pub fn assert_buckets(got: &[Bucket], want: &[Bucket], what: &str) {
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: bucket count\n{got:?}\n{want:?}"
    );
    for (g, w) in got.iter().zip(want) {
        assert_eq!((g.start, &g.group), (w.start, &w.group), "{what}");
        match (g.value, w.value) {
            (Some(a), Some(b)) => assert!(
                (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                "{what} at {}: {a} vs {b}",
                g.start
            ),
            (a, b) => assert_eq!(a, b, "{what} at {}", g.start),
        }
    }
}
