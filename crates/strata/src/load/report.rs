//! Counting what a load run achieved, and printing it.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::sender::BatchResult;

/// Most distinct error messages kept for the summary.
const MAX_ERRORS: usize = 5;

/// Counters and latencies of one worker, merged at the end.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Events in requests sent (each event once, however often it was retried).
    pub sent: u64,
    /// Events accepted (including duplicates).
    pub accepted: u64,
    /// Of `accepted`, already stored.
    pub duplicates: u64,
    /// Events rejected by validation.
    pub rejected: u64,
    /// Events in requests that failed for good.
    pub failed: u64,
    /// Requests (batches) sent.
    pub requests: u64,
    /// Requests that failed for good.
    pub failed_requests: u64,
    /// Retries of overloaded requests.
    pub retries: u64,
    /// Per-attempt latency, microseconds.
    pub latency_us: Histogram<u64>,
    /// First distinct errors and rejection reasons.
    pub errors: Vec<String>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self {
            sent: 0,
            accepted: 0,
            duplicates: 0,
            rejected: 0,
            failed: 0,
            requests: 0,
            failed_requests: 0,
            retries: 0,
            // One microsecond to an hour at three significant digits: a few tens of KiB.
            // Constant, valid bounds: this cannot fail.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("constant histogram bounds are valid"),
            errors: Vec::new(),
        }
    }

    /// Counts one batch of `size` events.
    pub fn record(&mut self, size: u64, result: BatchResult) {
        self.sent += size;
        self.requests += 1;
        self.retries += result.retries;
        for us in result.latencies_us {
            self.latency_us.saturating_record(us.max(1));
        }
        match result.error {
            Some(error) => {
                self.failed += size;
                self.failed_requests += 1;
                self.note(error);
            }
            None => {
                self.accepted += result.accepted;
                self.duplicates += result.duplicates;
                self.rejected += result.rejected;
                if let Some(reason) = result.first_rejection {
                    self.note(format!("rejected: {reason}"));
                }
            }
        }
    }

    /// Folds another worker's tally in.
    pub fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.requests += other.requests;
        self.failed_requests += other.failed_requests;
        self.retries += other.retries;
        // Same bounds on both sides, so adding cannot fail; saturate rather than panic.
        if self.latency_us.add(&other.latency_us).is_err() {
            for v in other.latency_us.iter_recorded() {
                self.latency_us
                    .saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for e in other.errors {
            self.note(e);
        }
    }

    fn note(&mut self, message: String) {
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Self::new()
    }
}

/// Per-request latency in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

/// The end-of-run summary; `--json` prints it as one object.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `rest` or `grpc`.
    pub protocol: &'static str,
    /// `json`, `ndjson` or `protobuf`.
    pub format: &'static str,
    /// Where events went.
    pub target: String,
    /// Seed of the event contents.
    pub seed: u64,
    /// Prefix of every id of this run.
    pub run_id: String,
    /// Tenants used.
    pub tenants: Vec<String>,
    /// Streams used.
    pub streams: Vec<String>,
    /// Events sent.
    pub sent: u64,
    /// Events accepted (stored now or before).
    pub accepted: u64,
    /// Of `accepted`, already stored before.
    pub duplicates: u64,
    /// Events rejected with a reason.
    pub rejected: u64,
    /// Events whose request failed.
    pub failed: u64,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed.
    pub failed_requests: u64,
    /// Retries after overload answers.
    pub retries: u64,
    /// Wall time of the run, seconds.
    pub elapsed_s: f64,
    /// Accepted events per second.
    pub events_per_s: f64,
    /// Per-request latency.
    pub latency_ms: Latency,
    /// The first distinct errors and rejection reasons.
    pub errors: Vec<String>,
}

/// What identifies a run, for the summary.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `rest` or `grpc`.
    pub protocol: &'static str,
    /// Body format.
    pub format: &'static str,
    /// Target.
    pub target: String,
    /// Seed.
    pub seed: u64,
    /// Id prefix.
    pub run_id: String,
    /// Tenants.
    pub tenants: Vec<String>,
    /// Streams.
    pub streams: Vec<String>,
}

impl Summary {
    /// The summary of a run that took `elapsed`.
    pub fn new(info: RunInfo, tally: Tally, elapsed: Duration) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &tally.latency_us;
        let latency_ms = if h.is_empty() {
            Latency {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                max: 0.0,
                mean: 0.0,
            }
        } else {
            Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }
        };
        let secs = elapsed.as_secs_f64();
        Self {
            protocol: info.protocol,
            format: info.format,
            target: info.target,
            seed: info.seed,
            run_id: info.run_id,
            tenants: info.tenants,
            streams: info.streams,
            sent: tally.sent,
            accepted: tally.accepted,
            duplicates: tally.duplicates,
            rejected: tally.rejected,
            failed: tally.failed,
            requests: tally.requests,
            failed_requests: tally.failed_requests,
            retries: tally.retries,
            elapsed_s: secs,
            events_per_s: if secs > 0.0 {
                tally.accepted as f64 / secs
            } else {
                0.0
            },
            latency_ms,
            errors: tally.errors,
        }
    }

    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let l = &self.latency_ms;
        let mut out = format!(
            "strata load: {} ({}) to {}, seed {}, ids {}-*\n\
             events      sent {}  accepted {}  duplicates {}  rejected {}  failed {}\n\
             requests    {}  failed {}  retries {}\n\
             elapsed     {:.3} s\n\
             throughput  {:.0} events/s\n\
             latency     p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms  (per request)\n",
            self.protocol,
            self.format,
            self.target,
            self.seed,
            self.run_id,
            self.sent,
            self.accepted,
            self.duplicates,
            self.rejected,
            self.failed,
            self.requests,
            self.failed_requests,
            self.retries,
            self.elapsed_s,
            self.events_per_s,
            l.p50,
            l.p90,
            l.p99,
            l.max,
        );
        for e in &self.errors {
            out.push_str("error       ");
            out.push_str(e);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(accepted: u64, latency_us: u64) -> BatchResult {
        BatchResult {
            accepted,
            latencies_us: vec![latency_us],
            ..BatchResult::default()
        }
    }

    #[test]
    fn tallies_merge_and_summarise() {
        let mut a = Tally::new();
        for i in 1..=100 {
            a.record(10, ok(10, i * 1000));
        }
        let mut b = Tally::new();
        b.record(
            10,
            BatchResult {
                error: Some("HTTP 500".into()),
                ..BatchResult::default()
            },
        );
        b.record(
            10,
            BatchResult {
                accepted: 9,
                rejected: 1,
                first_rejection: Some("ts: too late".into()),
                latencies_us: vec![500, 700],
                retries: 1,
                ..BatchResult::default()
            },
        );
        a.merge(b);
        assert_eq!(a.sent, 1020);
        assert_eq!(a.accepted, 1009);
        assert_eq!(a.rejected, 1);
        assert_eq!(a.failed, 10);
        assert_eq!(a.requests, 102);
        assert_eq!(a.failed_requests, 1);
        assert_eq!(a.retries, 1);
        assert_eq!(a.errors, ["HTTP 500", "rejected: ts: too late"]);

        let info = RunInfo {
            protocol: "rest",
            format: "json",
            target: "http://x".into(),
            seed: 1,
            run_id: "r".into(),
            tenants: vec!["acme".into()],
            streams: vec!["click".into()],
        };
        let s = Summary::new(info, a, Duration::from_secs(2));
        assert!((s.events_per_s - 504.5).abs() < 1e-9);
        assert!((s.latency_ms.p50 - 49.0).abs() < 1.0, "{:?}", s.latency_ms);
        assert!((s.latency_ms.max - 100.0).abs() < 0.1, "{:?}", s.latency_ms);
        let json: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(json["accepted"], 1009);
        assert_eq!(json["tenants"][0], "acme");
        assert!(s.to_text().contains("failed 1"));
    }
}
