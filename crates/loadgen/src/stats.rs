//! Counters and latency histograms shared by every connection task.
//!
//! Tens of thousands of tasks record deliveries concurrently, so counters are
//! relaxed atomics and latencies go to one of [`HISTOGRAM_SHARDS`] mutexed
//! HDR histograms chosen by connection index: uncontended in practice, and
//! merged once per measured phase.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::payload::Stamp;
use crate::receipts::Receipts;

/// Histogram shards; a power of two comfortably above the worker count.
pub const HISTOGRAM_SHARDS: usize = 32;
/// Highest latency tracked (a minute); larger values are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;

/// Everything measured during a run.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    /// The load step being measured; deliveries stamped with another phase
    /// are counted as stale.
    phase: AtomicU64,
    pub connected: AtomicU64,
    pub connect_errors: AtomicU64,
    pub disconnects: AtomicU64,
    pub joined: AtomicU64,
    pub join_errors: AtomicU64,
    pub published: AtomicU64,
    pub publish_errors: AtomicU64,
    pub expected: AtomicU64,
    pub received: AtomicU64,
    /// Deliveries of a message the connection had already received.
    pub duplicates: AtomicU64,
    pub stale: AtomicU64,
    pub unstamped: AtomicU64,
    last_delivery_us: AtomicU64,
    histograms: Vec<Mutex<Histogram<u64>>>,
}

impl Stats {
    pub fn new() -> Self {
        let histograms = (0..HISTOGRAM_SHARDS)
            .map(|_| Mutex::new(new_histogram()))
            .collect();
        Self {
            start: Instant::now(),
            phase: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            join_errors: AtomicU64::new(0),
            published: AtomicU64::new(0),
            publish_errors: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            unstamped: AtomicU64::new(0),
            last_delivery_us: AtomicU64::new(0),
            histograms,
        }
    }

    /// Microseconds since the run started: the clock of every stamp.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// The instant `us` microseconds after the run started.
    pub fn instant_at(&self, us: u64) -> Instant {
        self.start + Duration::from_micros(us)
    }

    pub fn phase(&self) -> u64 {
        self.phase.load(Relaxed)
    }

    /// Starts measuring a new load step: per-phase counters and histograms
    /// are reset.
    pub fn begin_phase(&self, phase: u64) {
        self.phase.store(phase, Relaxed);
        for counter in [
            &self.published,
            &self.publish_errors,
            &self.expected,
            &self.received,
            &self.duplicates,
            &self.stale,
            &self.unstamped,
            &self.last_delivery_us,
        ] {
            counter.store(0, Relaxed);
        }
        for shard in &self.histograms {
            if let Ok(mut histogram) = shard.lock() {
                histogram.reset();
            }
        }
    }

    /// Records a delivery seen by connection `conn_index`, whose earlier
    /// receipts are `receipts`.
    pub fn record_delivery(
        &self,
        conn_index: usize,
        receipts: &mut Receipts,
        stamp: Option<Stamp>,
    ) {
        let Some(stamp) = stamp else {
            self.unstamped.fetch_add(1, Relaxed);
            return;
        };
        if stamp.phase != self.phase() {
            self.stale.fetch_add(1, Relaxed);
            return;
        }
        if !receipts.first_time(stamp.phase, stamp.source, stamp.seq) {
            self.duplicates.fetch_add(1, Relaxed);
            return;
        }
        let now = self.now_us();
        self.received.fetch_add(1, Relaxed);
        self.last_delivery_us.fetch_max(now, Relaxed);
        let latency = now.saturating_sub(stamp.sent_us).clamp(1, MAX_LATENCY_US);
        if let Some(shard) = self.histograms.get(conn_index % HISTOGRAM_SHARDS) {
            if let Ok(mut histogram) = shard.lock() {
                histogram.saturating_record(latency);
            }
        }
    }

    /// When the last counted delivery of this phase arrived (µs since start).
    pub fn last_delivery_us(&self) -> u64 {
        self.last_delivery_us.load(Relaxed)
    }

    /// The merged latency distribution of this phase.
    pub fn latency(&self) -> LatencySummary {
        let mut merged = new_histogram();
        for shard in &self.histograms {
            if let Ok(histogram) = shard.lock() {
                // Same bounds everywhere: adding cannot fail.
                let _ = merged.add(&*histogram);
            }
        }
        LatencySummary::from_histogram(&merged)
    }
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

fn new_histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram accepts: this cannot fail at run time.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid constant histogram bounds")
}

/// Publish-to-delivery latency percentiles, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    fn from_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
            mean_ms: histogram.mean() / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_of_the_current_phase_only_are_counted_once() {
        let stats = Stats::new();
        stats.begin_phase(2);
        let now = stats.now_us();
        let stamp = |phase, source, seq| {
            Some(Stamp {
                phase,
                sent_us: now,
                source,
                seq,
            })
        };
        let mut first = Receipts::default();
        let mut second = Receipts::default();
        stats.record_delivery(0, &mut first, stamp(2, 9, 0));
        stats.record_delivery(5, &mut second, stamp(2, 9, 0));
        stats.record_delivery(0, &mut first, stamp(2, 9, 0));
        stats.record_delivery(1, &mut second, stamp(1, 9, 1));
        stats.record_delivery(1, &mut second, None);
        assert_eq!(stats.received.load(Relaxed), 2);
        assert_eq!(stats.duplicates.load(Relaxed), 1);
        assert_eq!(stats.stale.load(Relaxed), 1);
        assert_eq!(stats.unstamped.load(Relaxed), 1);
        assert_eq!(stats.latency().count, 2);
        stats.begin_phase(3);
        assert_eq!(stats.received.load(Relaxed), 0);
        assert_eq!(stats.duplicates.load(Relaxed), 0);
        assert_eq!(stats.latency().count, 0);
    }

    #[test]
    fn percentiles_come_from_recorded_latencies() {
        let stats = Stats::new();
        stats.begin_phase(1);
        // Stamps in the past by a known amount: 1..=100 ms.
        std::thread::sleep(Duration::from_millis(120));
        let now = stats.now_us();
        let mut receipts = Receipts::default();
        for i in 1..=100u64 {
            stats.record_delivery(
                0,
                &mut receipts,
                Some(Stamp {
                    phase: 1,
                    sent_us: now - i * 1000,
                    source: 0,
                    seq: i,
                }),
            );
        }
        let latency = stats.latency();
        assert_eq!(latency.count, 100);
        assert!(
            latency.p50_ms >= 50.0 && latency.p50_ms < 60.0,
            "{latency:?}"
        );
        assert!(
            latency.p99_ms >= 99.0 && latency.p99_ms < 110.0,
            "{latency:?}"
        );
        assert!(latency.max_ms >= 100.0, "{latency:?}");
    }
}
