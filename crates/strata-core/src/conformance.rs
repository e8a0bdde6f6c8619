//! Conformance suites: the same scenarios for every backend of a seam.
//!
//! A backend crate calls the suite from one of its tests with a factory that builds a fresh
//! harness (a fresh data directory, a fresh database schema, ...). A failing assertion panics
//! with the scenario's name, so the test fails; nothing is skipped.
//!
//! [`faults`] holds the fault-injecting wrappers the layers above the seams test with; the
//! backend crates run these suites on them (and on every other wrapper they ship) too.

use strata_types::PartialAggregate;

pub mod cold;
pub mod faults;
pub mod hot;
pub mod warm;

/// A small deterministic generator so suites need no RNG dependency and failures reproduce.
#[derive(Debug, Clone)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(6364136223846793005).wrapping_add(1))
    }

    /// The next value below `n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Asserts two partials are equal (sums within rounding).
pub fn assert_same(case: &str, got: &PartialAggregate, want: &PartialAggregate) {
    assert_eq!(
        got.cells.keys().collect::<Vec<_>>(),
        want.cells.keys().collect::<Vec<_>>(),
        "{case}: buckets differ"
    );
    for (k, w) in &want.cells {
        let g = &got.cells[k];
        assert_eq!(g.count, w.count, "{case}: count of {k:?}");
        assert_eq!(g.value_count, w.value_count, "{case}: value count of {k:?}");
        assert_eq!((g.min, g.max), (w.min, w.max), "{case}: min/max of {k:?}");
        assert!(
            (g.sum - w.sum).abs() <= 1e-9 * w.sum.abs().max(1.0),
            "{case}: sum of {k:?}: {} vs {}",
            g.sum,
            w.sum
        );
    }
}
