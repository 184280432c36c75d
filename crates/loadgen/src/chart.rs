//! The SVG chart of `make bench`: throughput, p99 latency and cost per
//! delivery of the client fanout sweep, one line per stack, on log scales.

use std::fmt::Write as _;

use crate::report::{human, points, step_name, xml, BenchReport, Point, STACKS};
use crate::scenario::{Scenario, Source};

/// Panel size and margins, in pixels.
const PANEL_W: f64 = 400.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_T: f64 = 50.0;
const MARGIN_B: f64 = 120.0;

/// One plotted line: the stack's label, its colour and its points.
type Series<'a> = (&'a str, &'a str, Vec<Point<'a>>);

/// Reads the plotted value of a point.
type Metric = fn(&Point) -> f64;

/// Throughput and p99 of the client fanout sweep, one line per stack.
pub fn chart(report: &BenchReport) -> String {
    let series: Vec<Series> = STACKS
        .iter()
        .map(|(label, colour)| {
            (
                *label,
                *colour,
                points(&report.runs, Scenario::Fanout, Source::Clients, label),
            )
        })
        .filter(|(_, _, points)| !points.is_empty())
        .collect();
    let mut keys: Vec<(usize, u64, usize)> = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(Point::key))
        .collect();
    keys.sort_unstable();
    keys.dedup();

    // Room on the right for the last panel's rotated step names.
    let width = 3.0 * (PANEL_W + MARGIN_L + 20.0) + 140.0;
    let height = PANEL_H + MARGIN_T + MARGIN_B + 40.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="20" font-size="14" text-anchor="middle">fanout from clients — {} (filled: no loss; hollow: messages lost)</text>"#,
        width / 2.0,
        xml(&report.name)
    );
    if keys.is_empty() {
        svg.push_str("</svg>\n");
        return svg;
    }
    let panels: [(&str, Metric); 3] = [
        ("deliveries per second", |p| p.step.deliveries_per_sec),
        ("p99 latency (ms)", |p| p.step.latency.p99_ms),
        ("deliveries per server CPU-second", |p| {
            p.step.deliveries_per_cpu_sec.unwrap_or(0.0)
        }),
    ];
    for (panel, (title, value)) in panels.iter().enumerate() {
        let x0 = MARGIN_L + panel as f64 * (PANEL_W + MARGIN_L + 20.0);
        draw_panel(&mut svg, (x0, MARGIN_T), title, *value, &keys, &series);
    }
    for (index, (label, colour, _)) in series.iter().enumerate() {
        let x = MARGIN_L + index as f64 * 170.0;
        let y = height - 15.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{}" width="14" height="4" fill="{colour}"/><text x="{}" y="{y}">{}</text>"#,
            y - 4.0,
            x + 20.0,
            xml(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// One panel at `(x0, y0)`: log-scale axis, the step names, and a line with
/// dots per stack (filled when the step lost nothing).
fn draw_panel(
    svg: &mut String,
    (x0, y0): (f64, f64),
    title: &str,
    value: Metric,
    keys: &[(usize, u64, usize)],
    series: &[Series],
) {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(value))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (log_lo, log_hi) = (lo.log10().floor(), hi.log10().ceil());
    let y_of = |v: f64| {
        let v = v.max(10f64.powf(log_lo)).log10();
        y0 + PANEL_H - (v - log_lo) / (log_hi - log_lo).max(1.0) * PANEL_H
    };
    let step_w = PANEL_W / keys.len() as f64;
    let x_of = |key: &(usize, u64, usize)| {
        let index = keys.iter().position(|k| k == key).unwrap_or(0);
        x0 + step_w * (index as f64 + 0.5)
    };
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="13" text-anchor="middle">{title} (log scale)</text>"#,
        x0 + PANEL_W / 2.0,
        y0 - 10.0
    );
    let _ = writeln!(
        svg,
        r##"<rect x="{x0}" y="{y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#868e96"/>"##
    );
    let mut decade = log_lo;
    while decade <= log_hi {
        let y = y_of(10f64.powf(decade));
        let _ = writeln!(
            svg,
            r##"<line x1="{x0}" x2="{}" y1="{y}" y2="{y}" stroke="#e9ecef"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            x0 + PANEL_W,
            x0 - 5.0,
            y + 4.0,
            human(10f64.powf(decade))
                .replace("0.0", "0")
                .replace("1e-3", "0.001")
        );
        decade += 1.0;
    }
    for key in keys {
        let x = x_of(key);
        let rate = if key.1 == u64::MAX {
            0.0
        } else {
            key.1 as f64 / 1000.0
        };
        let name = step_name(key.0, rate, key.2);
        let _ = writeln!(
            svg,
            r#"<text transform="translate({x},{}) rotate(40)" font-size="10">{}</text>"#,
            y0 + PANEL_H + 12.0,
            xml(&name)
        );
    }
    for (_, colour, points) in series {
        // Lines join steps of the same client count only.
        let mut path = String::new();
        let mut last_clients = None;
        for p in points {
            let (x, y) = (x_of(&p.key()), y_of(value(p)));
            let command = if last_clients == Some(p.run.clients) {
                'L'
            } else {
                'M'
            };
            let _ = write!(path, "{command}{x:.1},{y:.1} ");
            last_clients = Some(p.run.clients);
        }
        let _ = writeln!(
            svg,
            r#"<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"/>"#
        );
        for p in points {
            let (x, y) = (x_of(&p.key()), y_of(value(p)));
            let fill = if p.loss_free() { *colour } else { "white" };
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{colour}" stroke-width="2"/>"#
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chart;
    use crate::report::tests::{three_stacks, with_max_rate};

    #[test]
    fn max_rate_is_labelled_max() {
        let svg = chart(&with_max_rate());
        assert!(svg.contains("1k clients × max msg/s"), "{svg}");
    }

    #[test]
    fn one_line_per_stack_and_panel_and_lossy_points_hollow() {
        let svg = chart(&three_stacks());
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Three panels × three stacks, one line each; node's lossy point hollow.
        assert_eq!(svg.matches("<path").count(), 9);
        assert_eq!(svg.matches(r##"fill="white" stroke="#2b8a3e""##).count(), 3);
    }
}
