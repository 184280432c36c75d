//! What a scenario run reports: the run, each measured phase, when a phase
//! counts as overloaded, and the human-readable table `loadgen` prints.

use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, Source};
use crate::stats::LatencySummary;

/// The outcome of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub label: String,
    pub scenario: Scenario,
    pub source: Source,
    pub clients: usize,
    pub connected: u64,
    pub connect_errors: u64,
    pub connect_secs: f64,
    pub connects_per_sec: f64,
    pub publishers: usize,
    pub payload_bytes: usize,
    pub rooms: usize,
    pub rooms_per_client: usize,
    pub join_errors: u64,
    /// Gateway RSS (KiB, per pid) before connecting and once connected.
    pub gateway_rss_before_kib: Vec<u64>,
    pub gateway_rss_connected_kib: Vec<u64>,
    /// Gateway RSS growth per connection, bytes.
    pub rss_per_connection_bytes: Option<f64>,
    pub steps: Vec<StepReport>,
    /// Connections lost during the run (should be 0).
    pub disconnects: u64,
}

/// One measured phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepReport {
    pub rate_target: f64,
    pub window_secs: f64,
    pub published: u64,
    pub publish_errors: u64,
    pub publish_rate: f64,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    /// Deliveries of a message the client had already received (should be
    /// 0); not counted in `received`, so a repeat cannot hide a loss.
    #[serde(default)]
    pub duplicates: u64,
    pub stale: u64,
    pub deliveries_per_sec: f64,
    pub latency: LatencySummary,
    pub gateway_cpu_secs: Option<f64>,
    pub deliveries_per_cpu_sec: Option<f64>,
    pub redis_cpu_secs: Option<f64>,
    pub loadgen_cpu_secs: Option<f64>,
    /// Per-client received bandwidth, bytes/s of payload.
    pub per_client_bytes_per_sec: f64,
}

/// More than this share of lost messages marks a phase as overloaded.
const OVERLOAD_LOSS: f64 = 0.01;
/// A p99 above this (ms) marks a phase as overloaded.
const OVERLOAD_P99_MS: f64 = 1000.0;

impl StepReport {
    /// Whether the servers clearly could not keep up: higher rates would
    /// only pile up buffers.
    pub fn is_overloaded(&self) -> bool {
        self.lost as f64 > self.expected as f64 * OVERLOAD_LOSS
            || self.latency.p99_ms > OVERLOAD_P99_MS
    }
}

/// The human-readable table of a run.
pub fn table(report: &RunReport) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} {:?}/{:?}: {} clients ({} connected, {} errors) in {:.1}s = {:.0} conn/s; disconnects {}\n",
        report.label,
        report.scenario,
        report.source,
        report.clients,
        report.connected,
        report.connect_errors,
        report.connect_secs,
        report.connects_per_sec,
        report.disconnects,
    ));
    if let Some(per_conn) = report.rss_per_connection_bytes {
        out.push_str(&format!(
            "gateway RSS {:?} KiB -> {:?} KiB: {:.0} bytes per connection\n",
            report.gateway_rss_before_kib, report.gateway_rss_connected_kib, per_conn
        ));
    }
    if report.steps.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "{:>8} {:>9} {:>11} {:>11} {:>8} {:>12} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>12}\n",
        "rate",
        "published",
        "expected",
        "received",
        "lost",
        "deliv/s",
        "p50ms",
        "p90ms",
        "p99ms",
        "p999ms",
        "max ms",
        "gw cpu",
        "deliv/cpu-s"
    ));
    for step in &report.steps {
        out.push_str(&format!(
            "{:>8} {:>9} {:>11} {:>11} {:>8} {:>12.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8} {:>12}\n",
            step.rate_target,
            step.published,
            step.expected,
            step.received,
            step.lost,
            step.deliveries_per_sec,
            step.latency.p50_ms,
            step.latency.p90_ms,
            step.latency.p99_ms,
            step.latency.p999_ms,
            step.latency.max_ms,
            step.gateway_cpu_secs.map_or("-".into(), |c| format!("{c:.2}")),
            step.deliveries_per_cpu_sec.map_or("-".into(), |d| format!("{d:.0}")),
        ));
    }
    out
}
