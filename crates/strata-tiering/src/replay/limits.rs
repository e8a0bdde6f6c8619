//! How replays share the machine: the node-wide and per-tenant slots a replay holds while it
//! reads, and the gauges of replays waiting and reading.
//!
//! Every count a replay adds is taken back by a guard's `Drop`, so a replay that is dropped
//! while it waits (the client went away) or while it reads leaves the gauges where they were.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{REPLAYS_ACTIVE, REPLAYS_WAITING};

/// How replays share the machine (see the module docs of [`crate::replay`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Replays reading at once; more wait for a slot.
    pub max_concurrent: usize,
    /// Replays of one tenant reading at once (out of `max_concurrent`), so one tenant cannot
    /// hold every slot; more of that tenant wait.
    pub max_concurrent_per_tenant: usize,
    /// A replay whose client takes no event for this long ends and frees its slot.
    pub idle_timeout: Duration,
    /// Most events per second one replay emits (a request may ask for less). `None`: no limit.
    pub max_rate: Option<NonZeroU32>,
    /// Width of a replay's first slice.
    pub slice: Duration,
    /// Widest slice that holds events (sparse ranges grow slices up to this; empty slices
    /// grow beyond it, so empty spans are crossed in a few reads).
    pub max_slice: Duration,
    /// Most events a slice holds in memory (see the module docs).
    pub max_slice_events: usize,
    /// Rows per warm page.
    pub warm_page_rows: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            max_concurrent: 4,
            max_concurrent_per_tenant: 2,
            idle_timeout: Duration::from_secs(30),
            max_rate: NonZeroU32::new(200_000),
            slice: Duration::from_secs(3_600),
            max_slice: Duration::from_secs(86_400),
            max_slice_events: 50_000,
            warm_page_rows: 5_000,
        }
    }
}

/// Per-tenant slots, present only while a replay of the tenant waits or reads.
type TenantSlots = Arc<Mutex<HashMap<String, Arc<Semaphore>>>>;

/// A [`ReplayConfig`] and the slots it allows; clones share the slots. Build one per server
/// and pass it to every [`crate::Store::replay`].
#[derive(Debug, Clone)]
pub struct ReplayLimits {
    pub(super) config: Arc<ReplayConfig>,
    slots: Arc<Semaphore>,
    tenants: TenantSlots,
    counts: Arc<Counts>,
}

/// Replays waiting and reading under one [`ReplayLimits`].
#[derive(Debug, Default)]
struct Counts {
    waiting: AtomicUsize,
    active: AtomicUsize,
}

impl ReplayLimits {
    /// Limits with `config` and `config.max_concurrent` free slots.
    pub fn new(config: ReplayConfig) -> Self {
        let slots = config.max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            config: Arc::new(config),
            slots: Arc::new(Semaphore::new(slots)),
            tenants: TenantSlots::default(),
            counts: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReplayConfig {
        &self.config
    }

    /// Replays waiting for a slot now (what `strata_replays_waiting` adds up over all
    /// limits of the process).
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::Relaxed)
    }

    /// Replays holding a slot now (what `strata_replays_active` adds up).
    pub fn active(&self) -> usize {
        self.counts.active.load(Ordering::Relaxed)
    }

    /// Waits (first come, first served) for a slot of `tenant` and then a node-wide one.
    /// Dropping the future while it waits takes the replay off the waiting gauge.
    pub(super) async fn acquire(&self, tenant: &str) -> Slot {
        let waiting = Waiting::new(&self.counts);
        let tenant_ref = self.tenant_ref(tenant);
        // The semaphores are never closed; a closed one would only mean "no limit".
        let tenant_permit = match &tenant_ref.semaphore {
            Some(s) => Arc::clone(s).acquire_owned().await.ok(),
            None => None,
        };
        let permit = Arc::clone(&self.slots).acquire_owned().await.ok();
        drop(waiting);
        self.counts.active.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(REPLAYS_ACTIVE).increment(1.0);
        Slot {
            permit,
            tenant_permit,
            _tenant: tenant_ref,
            counts: Arc::clone(&self.counts),
        }
    }

    fn tenant_ref(&self, tenant: &str) -> TenantRef {
        let per_tenant = self
            .config
            .max_concurrent_per_tenant
            .clamp(1, Semaphore::MAX_PERMITS);
        let semaphore = Arc::clone(
            self.tenants
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(per_tenant))),
        );
        TenantRef {
            semaphore: Some(semaphore),
            tenant: tenant.to_owned(),
            tenants: Arc::clone(&self.tenants),
        }
    }
}

impl Default for ReplayLimits {
    fn default() -> Self {
        Self::new(ReplayConfig::default())
    }
}

/// One replay on the waiting gauge, for as long as it lives.
struct Waiting {
    counts: Arc<Counts>,
}

impl Waiting {
    fn new(counts: &Arc<Counts>) -> Self {
        counts.waiting.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(REPLAYS_WAITING).increment(1.0);
        Self {
            counts: Arc::clone(counts),
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.counts.waiting.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(REPLAYS_WAITING).decrement(1.0);
    }
}

/// A use of a tenant's semaphore; the last one removes it from the map, so the map holds
/// only tenants with replays waiting or reading.
struct TenantRef {
    semaphore: Option<Arc<Semaphore>>,
    tenant: String,
    tenants: TenantSlots,
}

impl Drop for TenantRef {
    fn drop(&mut self) {
        self.semaphore = None;
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        // Every other use (a waiter, a permit) holds a clone taken under this lock.
        if tenants
            .get(&self.tenant)
            .is_some_and(|s| Arc::strong_count(s) == 1)
        {
            tenants.remove(&self.tenant);
        }
    }
}

/// A held replay slot (node-wide and per tenant); frees both and updates the gauge when
/// dropped.
pub(super) struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    tenant_permit: Option<OwnedSemaphorePermit>,
    /// Dropped after the permits (fields drop after `Drop::drop`), so it sees the last use.
    _tenant: TenantRef,
    counts: Arc<Counts>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.permit = None;
        self.tenant_permit = None;
        self.counts.active.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!(REPLAYS_ACTIVE).decrement(1.0);
    }
}
