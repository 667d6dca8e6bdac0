//! Prometheus metrics, kept in process and rendered on `GET /metrics`.
//!
//! A small registry of its own rather than a global recorder: each gateway (and each test)
//! owns one, and the hot path touches only atomics once a series exists — the lock is taken
//! for writing only the first time a label combination is seen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in nanoseconds, so it can be an integer atomic.
    sum_ns: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
}

#[derive(Debug, Default)]
struct Series {
    /// (name, labels) → value; counters are integers, gauges and fractional counters are
    /// stored as f64 bits.
    values: BTreeMap<(&'static str, Labels), (Kind, Arc<AtomicU64>)>,
    histograms: BTreeMap<(&'static str, Labels), Arc<Histogram>>,
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: RwLock<Series>,
    help: RwLock<BTreeMap<&'static str, &'static str>>,
}

impl Metrics {
    pub fn new() -> Self {
        let m = Metrics::default();
        for (name, help) in [
            ("llm_router_requests_total", "Requests answered, by API, model and outcome."),
            (
                "llm_router_upstream_attempts_total",
                "Upstream calls, by model, deployment and result.",
            ),
            ("llm_router_decisions_total", "Routing decisions, by source and model."),
            ("llm_router_tokens_total", "Tokens, by model and direction."),
            ("llm_router_cost_usd_total", "Cost in US dollars, by model."),
            ("llm_router_request_duration_seconds", "Whole request duration, by API."),
            (
                "llm_router_overhead_seconds",
                "Time the gateway spent on a request outside the upstream call.",
            ),
            (
                "llm_router_time_to_first_token_seconds",
                "Time to the first streamed token, by model.",
            ),
            ("llm_router_store_records_total", "Records written to the store."),
            ("llm_router_store_queue_depth", "Records waiting for the store writer."),
            ("llm_router_circuit_open", "1 when a deployment's circuit is open."),
        ] {
            m.describe(name, help);
        }
        m
    }

    fn describe(&self, name: &'static str, help: &'static str) {
        if let Ok(mut h) = self.help.write() {
            h.insert(name, help);
        }
    }

    fn cell(
        &self,
        kind: Kind,
        name: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Arc<AtomicU64> {
        let key: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        if let Ok(series) = self.series.read()
            && let Some((_, cell)) = series.values.get(&(name, key.clone()))
        {
            return cell.clone();
        }
        let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
        series.values.entry((name, key)).or_insert_with(|| (kind, Arc::default())).1.clone()
    }

    /// Adds `n` to an integer counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        self.cell(Kind::Counter, name, labels).fetch_add(n, Ordering::Relaxed);
    }

    /// Adds a fractional amount to a counter (cost).
    pub fn add_f64(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        let cell = self.cell(Kind::Gauge, name, labels);
        let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
            Some((f64::from_bits(bits) + v).to_bits())
        });
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.cell(Kind::Gauge, name, labels).store(v.to_bits(), Ordering::Relaxed);
    }

    /// Records one observation (in seconds) in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        let key: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        let existing =
            self.series.read().ok().and_then(|s| s.histograms.get(&(name, key.clone())).cloned());
        let h = match existing {
            Some(h) => h,
            None => {
                let mut series = self.series.write().unwrap_or_else(|e| e.into_inner());
                series.histograms.entry((name, key)).or_default().clone()
            }
        };
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_ns.fetch_add((seconds.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }

    /// The current value of a counter (for tests and the dashboard).
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        let key: Labels = labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        self.series
            .read()
            .ok()
            .and_then(|s| s.values.get(&(name, key)).map(|(_, c)| c.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        let help = self.help.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), (kind, cell)) in &series.values {
            if *name != last {
                header(
                    &mut out,
                    &help,
                    name,
                    if *kind == Kind::Counter || name.ends_with("_total") {
                        "counter"
                    } else {
                        "gauge"
                    },
                );
                last = name;
            }
            let v = cell.load(Ordering::Relaxed);
            let value = match kind {
                Kind::Counter => v.to_string(),
                Kind::Gauge => format_f64(f64::from_bits(v)),
            };
            let _ = writeln!(out, "{name}{} {value}", render_labels(labels, None));
        }
        last = "";
        for ((name, labels), h) in &series.histograms {
            if *name != last {
                header(&mut out, &help, name, "histogram");
                last = name;
            }
            for (i, bound) in BUCKETS.iter().enumerate() {
                let le = format_f64(*bound);
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    render_labels(labels, Some(&le)),
                    h.buckets[i].load(Ordering::Relaxed)
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{} {count}", render_labels(labels, Some("+Inf")));
            let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), format_f64(sum));
            let _ = writeln!(out, "{name}_count{} {count}", render_labels(labels, None));
        }
        out
    }
}

fn header(out: &mut String, help: &BTreeMap<&'static str, &'static str>, name: &str, kind: &str) {
    if let Some(h) = help.get(name) {
        let _ = writeln!(out, "# HELP {name} {h}");
    }
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    format!("{{{}}}", parts.join(","))
}

fn format_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let m = Metrics::new();
        m.inc("llm_router_requests_total", &[("api", "openai"), ("status", "ok")], 2);
        m.inc("llm_router_requests_total", &[("api", "openai"), ("status", "ok")], 1);
        m.add_f64("llm_router_cost_usd_total", &[("model", "a")], 0.25);
        m.add_f64("llm_router_cost_usd_total", &[("model", "a")], 0.5);
        m.observe("llm_router_overhead_seconds", &[], 0.0003);
        let text = m.render();
        assert!(
            text.contains("llm_router_requests_total{api=\"openai\",status=\"ok\"} 3"),
            "{text}"
        );
        assert!(text.contains("llm_router_cost_usd_total{model=\"a\"} 0.75"), "{text}");
        assert!(text.contains("llm_router_overhead_seconds_bucket{le=\"0.0005\"} 1"), "{text}");
        assert!(text.contains("llm_router_overhead_seconds_bucket{le=\"0.00025\"} 0"), "{text}");
        assert!(text.contains("llm_router_overhead_seconds_count 1"), "{text}");
        assert!(text.contains("# TYPE llm_router_overhead_seconds histogram"), "{text}");
        assert_eq!(
            m.counter("llm_router_requests_total", &[("api", "openai"), ("status", "ok")]),
            3
        );
    }
}
