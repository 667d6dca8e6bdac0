//! The quality–cost plot as a standalone SVG: single models as labelled points with their
//! hull, the best/cheapest mix, the oracle, and each estimator's curve with its profiles.

use std::fmt::Write;

use crate::baseline::Point;
use crate::metrics::Curve;
use crate::report::Report;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 600.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 230.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

/// Colours of the estimators' curves, in order.
const CURVE_COLOURS: [&str; 3] = ["#d62728", "#1f77b4", "#2ca02c"];

/// Maps data to the plot area: cost on a log axis when it spans more than a factor of 20.
struct Axes {
    x_lo: f64,
    x_hi: f64,
    y_lo: f64,
    y_hi: f64,
    log: bool,
}

impl Axes {
    fn tx(&self, cost: f64) -> f64 {
        let (c, lo, hi) = if self.log {
            (cost.max(self.x_lo).ln(), self.x_lo.ln(), self.x_hi.ln())
        } else {
            (cost, self.x_lo, self.x_hi)
        };
        LEFT + (c - lo) / (hi - lo).max(f64::MIN_POSITIVE) * (WIDTH - LEFT - RIGHT)
    }

    fn ty(&self, quality: f64) -> f64 {
        HEIGHT
            - BOTTOM
            - (quality - self.y_lo) / (self.y_hi - self.y_lo).max(f64::MIN_POSITIVE)
                * (HEIGHT - TOP - BOTTOM)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Cost per 1,000 calls, the unit the axes and tables use.
fn per_k(usd: f64) -> f64 {
    usd * 1000.0
}

fn polyline(out: &mut String, axes: &Axes, curve: &Curve, x_end: f64, style: &str) {
    let mut pts: Vec<(f64, f64)> =
        curve.vertices.iter().map(|v| (axes.tx(per_k(v.cost)), axes.ty(v.quality))).collect();
    if let Some(last) = curve.vertices.last() {
        // The curve stays flat beyond its last vertex.
        pts.push((axes.tx(x_end), axes.ty(last.quality)));
    }
    let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(out, r#"<polyline points="{}" fill="none" {style}/>"#, d.join(" "));
}

/// Renders the offline quality–cost plot of a report; `None` when it has no offline part.
pub fn svg(report: &Report) -> Option<String> {
    let base = report.test_baselines.as_ref()?;
    let runs: Vec<(&str, &Curve, &[Point], &[Point])> = report
        .runs
        .iter()
        .filter_map(|r| {
            r.offline.as_ref().map(|o| {
                (r.estimator.as_str(), &o.curve, o.run.sweep.as_slice(), o.run.profiles.as_slice())
            })
        })
        .collect();

    let mut all: Vec<&Point> = base.singles.iter().chain(std::iter::once(&base.oracle)).collect();
    for (_, _, sweep, profiles) in &runs {
        all.extend(sweep.iter().chain(profiles.iter()));
    }
    let costs: Vec<f64> =
        all.iter().map(|p| per_k(p.cost_usd)).filter(|c| *c > 0.0 && c.is_finite()).collect();
    let x_lo = costs.iter().copied().fold(f64::INFINITY, f64::min);
    let x_hi = costs.iter().copied().fold(0.0, f64::max);
    if !x_lo.is_finite() || x_hi <= 0.0 {
        return None;
    }
    let log = x_hi / x_lo > 20.0;
    let (x_lo, x_hi) = if log {
        (x_lo / 1.3, x_hi * 1.3)
    } else {
        let pad = ((x_hi - x_lo) * 0.05).max(x_hi * 0.01);
        ((x_lo - pad).max(0.0), x_hi + pad)
    };
    let q_lo = all.iter().map(|p| p.quality).fold(1.0, f64::min);
    let q_hi = all.iter().map(|p| p.quality).fold(0.0, f64::max);
    let y_lo = ((q_lo - 0.05) * 20.0).floor() / 20.0;
    let y_hi = (((q_hi + 0.02) * 20.0).ceil() / 20.0).min(1.0).max(y_lo + 0.05);
    let axes = Axes { x_lo, x_hi, y_lo: y_lo.max(0.0), y_hi, log };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="24" font-size="15" font-weight="bold">{} — quality against cost ({} test prompts)</text>"#,
        escape(&report.dataset.name),
        base.prompts
    );
    let _ =
        writeln!(out, r##"<text x="{LEFT}" y="40" fill="#555">{}</text>"##, escape(&report.split));

    // Grid and axes.
    let plot_right = WIDTH - RIGHT;
    let plot_bottom = HEIGHT - BOTTOM;
    let step = if axes.y_hi - axes.y_lo > 0.6 { 0.1 } else { 0.05 };
    let ticks = ((axes.y_hi - axes.y_lo) / step).round() as usize;
    for k in 0..=ticks {
        let q = axes.y_lo + step * k as f64;
        let y = axes.ty(q);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{plot_right}" y2="{y:.1}" stroke="#eee"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{q:.2}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for tick in x_ticks(&axes) {
        let x = axes.tx(tick);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{plot_bottom}" stroke="#eee"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            plot_bottom + 16.0,
            fmt_cost(tick)
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#333"/>"##,
        plot_right - LEFT,
        plot_bottom - TOP
    );
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">cost per 1,000 calls, USD{}</text>"#,
        (LEFT + plot_right) / 2.0,
        HEIGHT - 18.0,
        if log { " (log scale)" } else { "" }
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle">mean quality</text>"#,
        (TOP + plot_bottom) / 2.0
    );

    // Baselines: hull of the single models, the mix line, the points, the oracle.
    polyline(
        &mut out,
        &axes,
        &base.singles_hull,
        x_hi,
        r##"stroke="#888" stroke-width="1.5" stroke-dasharray="6 4""##,
    );
    if let (Some(first), Some(last)) = (base.mixes.first(), base.mixes.last()) {
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#bbb" stroke-dasharray="2 3"/>"##,
            axes.tx(per_k(first.cost_usd)),
            axes.ty(first.quality),
            axes.tx(per_k(last.cost_usd)),
            axes.ty(last.quality)
        );
    }
    for p in &base.singles {
        let (x, y) = (axes.tx(per_k(p.cost_usd)), axes.ty(p.quality));
        let _ = writeln!(out, r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#555"/>"##);
        let short = p.label.rsplit('/').next().unwrap_or(&p.label);
        // A label that would run into the legend goes to the left of its point.
        let (lx, anchor) = if x + 6.0 + 6.0 * short.len() as f64 > plot_right {
            (x - 6.0, "end")
        } else {
            (x + 6.0, "start")
        };
        let _ = writeln!(
            out,
            r##"<text x="{lx:.1}" y="{:.1}" fill="#444" font-size="10" text-anchor="{anchor}">{}</text>"##,
            y + 3.0,
            escape(short)
        );
    }
    let (ox, oy) = (axes.tx(per_k(base.oracle.cost_usd)), axes.ty(base.oracle.quality));
    let _ = writeln!(
        out,
        r##"<path d="M{ox:.1},{:.1} L{:.1},{oy:.1} L{ox:.1},{:.1} L{:.1},{oy:.1} Z" fill="#9467bd"/>"##,
        oy - 6.0,
        ox + 6.0,
        oy + 6.0,
        ox - 6.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" fill="#9467bd">oracle</text>"##,
        ox + 8.0,
        oy + 4.0
    );

    // Routers.
    for (n, (_, curve, sweep, profiles)) in runs.iter().enumerate() {
        let colour = CURVE_COLOURS[n % CURVE_COLOURS.len()];
        polyline(&mut out, &axes, curve, x_hi, &format!(r#"stroke="{colour}" stroke-width="2""#));
        for p in sweep.iter() {
            let _ = writeln!(
                out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2" fill="{colour}" opacity="0.6"/>"#,
                axes.tx(per_k(p.cost_usd)),
                axes.ty(p.quality)
            );
        }
        for p in profiles.iter() {
            let (x, y) = (axes.tx(per_k(p.cost_usd)), axes.ty(p.quality));
            let _ = writeln!(
                out,
                r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{colour}"/>"#,
                x - 3.5,
                y - 3.5
            );
            let label = p.label.strip_prefix("router ").unwrap_or(&p.label);
            // Estimators take turns above and below their points, so that labels of
            // profiles landing on the same spot stay readable.
            let dy = if n % 2 == 0 { -5.0 } else { 13.0 };
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" fill="{colour}" font-size="10">{}</text>"#,
                x + 6.0,
                y + dy,
                escape(label)
            );
        }
    }

    // Legend.
    let lx = plot_right + 15.0;
    let mut legend: Vec<(Mark, String)> = runs
        .iter()
        .enumerate()
        .map(|(n, (name, ..))| {
            (Mark::Line(CURVE_COLOURS[n % CURVE_COLOURS.len()], "", 2.0), format!("router: {name}"))
        })
        .collect();
    legend.push((Mark::Line("#888", "6 4", 1.5), "single models' hull".into()));
    legend.push((Mark::Line("#bbb", "2 3", 1.0), "random mix best/cheapest".into()));
    legend.push((Mark::Dot, "single model".into()));
    legend.push((Mark::Square, "profile".into()));
    for (k, (mark, text)) in legend.iter().enumerate() {
        let y = TOP + 10.0 + 20.0 * k as f64;
        let _ = writeln!(out, "{}", mark.svg(lx, y));
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 28.0,
            y + 4.0,
            escape(text)
        );
    }
    let _ = writeln!(out, "</svg>");
    Some(out)
}

/// A legend entry's mark, drawn 22 px wide from `x`, centred on `y`.
enum Mark {
    /// A line: colour, dash pattern (empty for solid), width.
    Line(&'static str, &'static str, f64),
    Dot,
    Square,
}

impl Mark {
    fn svg(&self, x: f64, y: f64) -> String {
        match self {
            Mark::Line(colour, dash, width) => format!(
                r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="{width}" stroke-dasharray="{dash}"/>"#,
                x + 22.0
            ),
            Mark::Dot => {
                format!(r##"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="#555"/>"##, x + 11.0)
            }
            Mark::Square => format!(
                r##"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="#333"/>"##,
                x + 7.5,
                y - 3.5
            ),
        }
    }
}

fn fmt_cost(c: f64) -> String {
    if c >= 10.0 {
        format!("{c:.0}")
    } else if c >= 1.0 {
        format!("{c:.1}")
    } else if c >= 0.1 {
        format!("{c:.2}")
    } else {
        format!("{c:.3}")
    }
}

/// Tick positions: 1-2-5 steps on a log axis, about eight even steps on a linear one.
fn x_ticks(axes: &Axes) -> Vec<f64> {
    let mut ticks = Vec::new();
    if axes.log {
        let mut decade = 10f64.powf(axes.x_lo.log10().floor());
        while decade <= axes.x_hi {
            for m in [1.0, 2.0, 5.0] {
                let t = decade * m;
                if t >= axes.x_lo && t <= axes.x_hi {
                    ticks.push(t);
                }
            }
            decade *= 10.0;
        }
    } else {
        let raw = (axes.x_hi - axes.x_lo) / 8.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(raw);
        let mut t = (axes.x_lo / step).ceil() * step;
        while t <= axes.x_hi && ticks.len() < 50 {
            ticks.push(t);
            t += step;
        }
    }
    ticks
}
