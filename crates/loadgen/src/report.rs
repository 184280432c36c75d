//! Merging the run reports of a benchmark into what a reader sees: the
//! summary (every number, saved as JSON) and the markdown table for the
//! README. The SVG chart of the same report is in [`crate::chart`]; writing
//! the three files, in [`crate::output`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::scenario::{RunReport, Scenario, Source, StepReport};

/// The latency a step may have and still count towards capacity.
pub const CAPACITY_P99_MS: f64 = 50.0;

/// Stacks in display order, with their chart colours.
pub(crate) const STACKS: &[(&str, &str)] = &[
    ("rust", "#d9480f"),
    // An older build of the gateway, measured in the same run
    // (BASELINE_GATEWAY in bench/run.sh).
    ("rust-baseline", "#f59f00"),
    // The same gateways with client authentication on (bench/run.sh).
    ("rust-auth", "#ae3ec9"),
    ("node", "#2b8a3e"),
    ("socketioxide-redis", "#1c7ed6"),
    ("floor", "#495057"),
];

/// Everything a benchmark produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    pub name: String,
    pub machine: String,
    pub notes: String,
    pub summary: Summary,
    pub runs: Vec<RunReport>,
}

/// The targets, computed from the runs (None where not measured).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Step used for the cost comparison (fanout from clients).
    pub cost_step: Option<String>,
    pub cost_vs_node: Option<f64>,
    /// Step used for the comparison with the floor.
    #[serde(default)]
    pub cost_floor_step: Option<String>,
    pub cost_vs_floor_percent: Option<f64>,
    /// Highest loss-free step with p99 <= 50 ms, per stack, as offered
    /// deliveries per second.
    pub capacity: Vec<(String, f64, String)>,
    pub capacity_vs_node: Option<f64>,
    /// When no Node step qualified: Node's lightest step (offered
    /// deliveries/s, name), and rust's capacity over it, a lower bound.
    #[serde(default)]
    pub node_lightest_step: Option<(f64, String)>,
    #[serde(default)]
    pub capacity_vs_node_at_least: Option<f64>,
    pub rust_p99_ms_1k_clients_100_msgs: Option<f64>,
    /// Idle RSS per connection (bytes) and at how many connections, per stack.
    pub idle_rss_per_connection: Vec<(String, f64, u64)>,
    /// The comparisons of the targets table.
    #[serde(default)]
    pub targets: crate::targets::Targets,
}

/// One point of a sweep: a run's step with what identifies it.
#[derive(Debug, Clone)]
pub(crate) struct Point<'a> {
    pub(crate) run: &'a RunReport,
    pub(crate) step: &'a StepReport,
}

impl Point<'_> {
    /// Orders steps by clients, then rate, "as fast as possible" (rate 0) last.
    pub(crate) fn key(&self) -> (usize, u64, usize) {
        let rate = match rate_key(self.step.rate_target) {
            0 => u64::MAX,
            rate => rate,
        };
        (self.run.clients, rate, self.run.payload_bytes)
    }

    pub(crate) fn step_name(&self) -> String {
        step_name(
            self.run.clients,
            self.step.rate_target,
            self.run.payload_bytes,
        )
    }

    /// Deliveries the load asks for per second.
    pub(crate) fn offered(&self) -> f64 {
        self.step.expected as f64 / self.step.window_secs.max(1e-9)
    }

    /// Every message delivered, each once.
    pub(crate) fn loss_free(&self) -> bool {
        self.step.lost == 0 && self.step.duplicates == 0 && self.step.received > 0
    }

    pub(crate) fn within_capacity(&self) -> bool {
        self.loss_free() && self.step.latency.p99_ms <= CAPACITY_P99_MS
    }
}

fn rate_key(rate: f64) -> u64 {
    (rate * 1000.0).round() as u64
}

pub(crate) fn step_name(clients: usize, rate: f64, payload: usize) -> String {
    let rate = if rate == 0.0 {
        "max".to_owned()
    } else {
        format!("{rate}")
    };
    format!(
        "{} clients × {rate} msg/s × {} B",
        human(clients as f64),
        payload
    )
}

pub(crate) fn human(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        let k = n / 1e3;
        if (k - k.round()).abs() < 0.05 {
            format!("{k:.0}k")
        } else {
            format!("{k:.1}k")
        }
    } else {
        format!("{n:.0}")
    }
}

/// Computes the summary of `runs`.
pub fn build(name: &str, machine: &str, notes: &str, runs: Vec<RunReport>) -> BenchReport {
    let summary = summarize(&runs);
    BenchReport {
        name: name.to_owned(),
        machine: machine.to_owned(),
        notes: notes.to_owned(),
        summary,
        runs,
    }
}

pub(crate) fn points<'a>(
    runs: &'a [RunReport],
    scenario: Scenario,
    source: Source,
    label: &str,
) -> Vec<Point<'a>> {
    let mut points: Vec<Point<'a>> = runs
        .iter()
        .filter(|r| r.scenario == scenario && r.source == source && r.label == label)
        .flat_map(|run| run.steps.iter().map(move |step| Point { run, step }))
        .collect();
    points.sort_by_key(Point::key);
    points
}

fn summarize(runs: &[RunReport]) -> Summary {
    let mut summary = Summary::default();
    let fanout = |label: &str| points(runs, Scenario::Fanout, Source::Clients, label);
    let (rust, node, floor) = (fanout("rust"), fanout("node"), fanout("floor"));

    // Cost: at the heaviest load (offered deliveries per second) both
    // stacks delivered loss-free, since a stack that drops messages does less
    // work per delivery counted.
    let cost = |other: &[Point]| {
        rust.iter()
            .filter(|p| p.loss_free())
            .filter_map(|p| {
                let o = other.iter().find(|o| o.key() == p.key() && o.loss_free())?;
                let ratio = p.step.deliveries_per_cpu_sec? / o.step.deliveries_per_cpu_sec?;
                Some((p.offered(), p.step_name(), ratio))
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, step, ratio)| (step, ratio))
    };
    if let Some((step, ratio)) = cost(&node) {
        summary.cost_step = Some(step);
        summary.cost_vs_node = Some(ratio);
    }
    if let Some((step, ratio)) = cost(&floor) {
        summary.cost_floor_step = Some(step);
        summary.cost_vs_floor_percent = Some(ratio * 100.0);
    }

    for (label, _) in STACKS {
        let best = fanout(label)
            .into_iter()
            .filter(Point::within_capacity)
            .max_by(|a, b| a.offered().total_cmp(&b.offered()));
        if let Some(best) = best {
            summary
                .capacity
                .push(((*label).to_owned(), best.offered(), best.step_name()));
        }
    }
    let capacity_of = |label: &str| {
        summary
            .capacity
            .iter()
            .find(|(l, _, _)| l == label)
            .map(|(_, c, _)| *c)
    };
    summary.capacity_vs_node = capacity_of("rust")
        .zip(capacity_of("node"))
        .map(|(r, n)| r / n);
    if capacity_of("node").is_none() {
        // Node's capacity is below its lightest step: a lower bound.
        summary.node_lightest_step = node
            .iter()
            .map(|p| (p.offered(), p.step_name()))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        summary.capacity_vs_node_at_least = capacity_of("rust")
            .zip(summary.node_lightest_step.as_ref())
            .map(|(r, (n, _))| r / n);
    }
    summary.rust_p99_ms_1k_clients_100_msgs = rust
        .iter()
        .find(|p| p.run.clients == 1000 && rate_key(p.step.rate_target) == rate_key(100.0))
        .map(|p| p.step.latency.p99_ms);

    for (label, _) in STACKS {
        let idle = runs
            .iter()
            .filter(|r| r.scenario == Scenario::Idle && r.label == *label)
            .max_by_key(|r| r.connected);
        if let Some(run) = idle {
            if let Some(bytes) = run.rss_per_connection_bytes {
                summary
                    .idle_rss_per_connection
                    .push(((*label).to_owned(), bytes, run.connected));
            }
        }
    }
    summary.targets = crate::targets::compute(runs);
    summary
}

pub(crate) fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// The README table.
pub fn markdown(report: &BenchReport) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Benchmark {}\n", report.name);
    if !report.machine.is_empty() {
        let _ = writeln!(md, "Machine: {}\n", report.machine);
    }
    if !report.notes.is_empty() {
        let _ = writeln!(md, "{}\n", report.notes);
    }
    crate::targets::write(&mut md, &report.summary.targets, &report.summary);
    write_scenarios(&mut md, report);
    write_idle(&mut md, report);
    md
}

/// One table per scenario and source: every stack at every step.
fn write_scenarios(md: &mut String, report: &BenchReport) {
    let mut groups: BTreeSet<(Scenario, Source)> = BTreeSet::new();
    for run in &report.runs {
        if run.scenario != Scenario::Idle {
            groups.insert((run.scenario, run.source));
        }
    }
    for (scenario, source) in groups {
        let _ = writeln!(
            md,
            "### {} from {}\n",
            format!("{scenario:?}").to_lowercase(),
            format!("{source:?}").to_lowercase()
        );
        let _ = writeln!(
            md,
            "| load | stack | deliveries/s | p50 ms | p99 ms | max ms | lost | gateway CPU s | deliveries/CPU-s | % of floor |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        let floor = points(&report.runs, scenario, source, "floor");
        let mut all: Vec<Point> = STACKS
            .iter()
            .flat_map(|(label, _)| points(&report.runs, scenario, source, label))
            .collect();
        let order = |label: &str| {
            STACKS
                .iter()
                .position(|(l, _)| *l == label)
                .unwrap_or(usize::MAX)
        };
        all.sort_by_key(|p| (p.key(), order(&p.run.label)));
        for p in all {
            // A floor that lost messages is no reference: its cost per
            // delivery counted is not the machine's limit.
            let of_floor = floor
                .iter()
                .find(|f| f.key() == p.key() && f.loss_free())
                .and_then(|f| {
                    Some(p.step.deliveries_per_cpu_sec? / f.step.deliveries_per_cpu_sec? * 100.0)
                });
            let _ = writeln!(
                md,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
                p.step_name(),
                p.run.label,
                p.step.deliveries_per_sec,
                p.step.latency.p50_ms,
                p.step.latency.p99_ms,
                p.step.latency.max_ms,
                p.step.lost,
                opt(p.step.gateway_cpu_secs, 2),
                opt(p.step.deliveries_per_cpu_sec, 0),
                opt(of_floor, 0),
            );
        }
        md.push('\n');
    }
}

/// Connections held idle: how many, how fast, and the memory each costs.
fn write_idle(md: &mut String, report: &BenchReport) {
    let idle: Vec<&RunReport> = report
        .runs
        .iter()
        .filter(|r| r.scenario == Scenario::Idle)
        .collect();
    if !idle.is_empty() {
        let _ = writeln!(md, "### idle connections\n");
        let _ = writeln!(md, "| stack | connected | errors | connects/s | RSS before → connected (KiB, per server) | RSS per connection |");
        let _ = writeln!(md, "|---|---:|---:|---:|---|---:|");
        for run in idle {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {:.0} | {:?} → {:?} | {} |",
                run.label,
                run.connected,
                run.connect_errors,
                run.connects_per_sec,
                run.gateway_rss_before_kib,
                run.gateway_rss_connected_kib,
                run.rss_per_connection_bytes
                    .map_or("–".to_owned(), |b| format!("{:.1} KB", b / 1024.0)),
            );
        }
        md.push('\n');
    }
}

pub(crate) fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::LatencySummary;

    pub(crate) fn run(
        label: &str,
        scenario: Scenario,
        clients: usize,
        steps: &[(f64, u64, u64, f64, f64)],
    ) -> RunReport {
        RunReport {
            label: label.into(),
            scenario,
            source: Source::Clients,
            clients,
            connected: clients as u64,
            connect_errors: 0,
            connect_secs: 1.0,
            connects_per_sec: clients as f64,
            publishers: 1,
            payload_bytes: 1000,
            rooms: 0,
            rooms_per_client: 0,
            join_errors: 0,
            gateway_rss_before_kib: vec![1000],
            gateway_rss_connected_kib: vec![1000 + clients as u64 * 4],
            rss_per_connection_bytes: Some(4096.0),
            disconnects: 0,
            steps: steps
                .iter()
                .map(|&(rate, expected, received, p99, cpu)| StepReport {
                    rate_target: rate,
                    window_secs: 10.0,
                    published: 0,
                    publish_errors: 0,
                    publish_rate: rate,
                    expected,
                    received,
                    lost: expected - received,
                    duplicates: 0,
                    stale: 0,
                    deliveries_per_sec: received as f64 / 10.0,
                    latency: LatencySummary {
                        count: received,
                        p99_ms: p99,
                        ..Default::default()
                    },
                    gateway_cpu_secs: Some(cpu),
                    deliveries_per_cpu_sec: Some(received as f64 / cpu),
                    redis_cpu_secs: None,
                    loadgen_cpu_secs: None,
                    per_client_bytes_per_sec: 0.0,
                })
                .collect(),
        }
    }

    /// One stack at 100 msg/s and as fast as possible (rate 0).
    pub(crate) fn with_max_rate() -> BenchReport {
        let runs = vec![run(
            "rust",
            Scenario::Fanout,
            1000,
            &[
                (0.0, 5_000_000, 5_000_000, 90.0, 5.0),
                (100.0, 1_000_000, 1_000_000, 9.0, 5.0),
            ],
        )];
        build("test", "", "", runs)
    }

    #[test]
    fn as_fast_as_possible_sorts_last_and_is_named_max() {
        let report = with_max_rate();
        let md = markdown(&report);
        let (at_100, at_max) = (
            md.find("1k clients × 100 msg/s").expect("100 msg/s row"),
            md.find("1k clients × max msg/s").expect("max row"),
        );
        assert!(at_100 < at_max, "{md}");

        // No percentage of a floor that lost messages.
        let runs = vec![
            run(
                "rust",
                Scenario::Fanout,
                1000,
                &[(100.0, 1_000_000, 1_000_000, 9.0, 5.0)],
            ),
            run(
                "floor",
                Scenario::Fanout,
                1000,
                &[(100.0, 1_000_000, 10_000, 9.0, 5.0)],
            ),
        ];
        let md = markdown(&build("test", "", "", runs));
        let row = md
            .lines()
            .find(|l| l.contains("| rust | 100000 |"))
            .expect("rust row");
        assert!(row.ends_with("| – |"), "{row}");
    }

    #[test]
    fn cost_is_compared_at_the_heaviest_offered_load() {
        // 5k clients × 1 msg/s (5k deliveries/s) sorts after 1k × 100 msg/s
        // (100k deliveries/s) by clients, but is the lighter load.
        let runs = vec![
            run(
                "rust",
                Scenario::Fanout,
                1000,
                &[(100.0, 1_000_000, 1_000_000, 9.0, 5.0)],
            ),
            run(
                "rust",
                Scenario::Fanout,
                5000,
                &[(1.0, 50_000, 50_000, 9.0, 1.0)],
            ),
            run(
                "node",
                Scenario::Fanout,
                1000,
                &[(100.0, 1_000_000, 1_000_000, 900.0, 8.0)],
            ),
            run(
                "node",
                Scenario::Fanout,
                5000,
                &[(1.0, 50_000, 50_000, 80.0, 1.0)],
            ),
        ];
        let s = build("test", "", "", runs).summary;
        assert_eq!(s.cost_vs_node, Some(1.6));
        assert!(s
            .cost_step
            .as_deref()
            .is_some_and(|st| st.starts_with("1k clients × 100")));
        // Node met p99 <= 50 ms nowhere: rust's 100k/s over Node's lightest 5k/s.
        assert_eq!(s.capacity_vs_node, None);
        assert_eq!(s.capacity_vs_node_at_least, Some(20.0));
        let md = markdown(&build("test", "", "", vec![]));
        assert!(md.contains("not measured"), "{md}");
    }

    /// Rust, Node (lossy at 100 msg/s) and the floor in fanout, and an
    /// idle run.
    pub(crate) fn three_stacks() -> BenchReport {
        let runs = vec![
            run(
                "rust",
                Scenario::Fanout,
                1000,
                &[
                    (10.0, 100_000, 100_000, 2.0, 1.0),
                    (100.0, 1_000_000, 1_000_000, 4.0, 5.0),
                ],
            ),
            run(
                "node",
                Scenario::Fanout,
                1000,
                &[
                    (10.0, 100_000, 100_000, 8.0, 4.0),
                    (100.0, 1_000_000, 900_000, 900.0, 10.0),
                ],
            ),
            run(
                "floor",
                Scenario::Fanout,
                1000,
                &[
                    (10.0, 100_000, 100_000, 1.0, 0.5),
                    (100.0, 1_000_000, 1_000_000, 1.0, 2.5),
                ],
            ),
            run("rust", Scenario::Idle, 5000, &[]),
        ];
        build("test", "2 cores", "", runs)
    }

    #[test]
    fn summary_compares_stacks_at_common_steps() {
        let report = three_stacks();
        let s = &report.summary;
        // Node lost messages at 100 msg/s: compared at 10 msg/s (4x).
        assert_eq!(s.cost_vs_node, Some(4.0));
        assert!(s
            .cost_step
            .as_deref()
            .is_some_and(|st| st.contains("10 msg/s")));
        // The floor was loss-free at 100: 200000/s vs 400000/s per CPU-s.
        assert_eq!(s.cost_vs_floor_percent, Some(50.0));
        assert_eq!(s.capacity_vs_node, Some(10.0));
        assert_eq!(s.rust_p99_ms_1k_clients_100_msgs, Some(4.0));
        assert_eq!(
            s.idle_rss_per_connection,
            vec![("rust".to_owned(), 4096.0, 5000)]
        );

        let md = markdown(&report);
        assert!(
            md.contains("| 1k clients × 100 msg/s × 1000 B | node | 90000 |"),
            "{md}"
        );
        assert!(
            md.contains("| cost: deliveries per gateway CPU-second vs node | ≥ 1× at every loss-free step | met at 1 of 1 steps; lowest 4.00× (fanout: 1k clients × 10 msg/s × 1000 B), highest 4.00× |"),
            "{md}"
        );
    }
}
