//! Prometheus metrics, kept in process and rendered on `GET /metrics`.
//!
//! A small registry of its own rather than a global recorder: each gateway (and each test)
//! owns one. Every request touches several series, so the hot path allocates nothing: a
//! series is found under a read lock by comparing its labels in place, and its atomics change
//! under that same lock. The write lock is taken only the first time a label combination is
//! seen.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram buckets, in seconds: fine below a millisecond,
/// where the gateway's own overhead lives, coarse above, where upstream calls do.
const BUCKETS: [f64; 20] = [
    0.00005, 0.0001, 0.00015, 0.0002, 0.00025, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0025,
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0,
];

type Labels = Vec<(&'static str, String)>;

#[derive(Debug, Default)]
struct Histogram {
    /// Observations per bucket, not cumulative (one increment per observation); the
    /// cumulative counts Prometheus wants are summed when rendering. The last slot counts
    /// observations above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    /// Sum in nanoseconds, so it can be an integer atomic.
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, seconds: f64) {
        // NaN lands in the overflow slot, as it compares below nothing.
        let slot = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add((seconds.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Counter,
    Gauge,
}

/// One label set of one metric and its value.
#[derive(Debug)]
struct Entry<T> {
    labels: Labels,
    value: T,
}

/// Series by metric name; the few label sets of a name are searched in order.
type Table<T> = HashMap<&'static str, Vec<Entry<T>>, BuildHasherDefault<NameHasher>>;

/// A metric's name hashed by its length and its last eight bytes. The names are the
/// gateway's own constants, not input an attacker chooses, so the table needs no protection
/// against collisions; they all start `llm_router_` and differ towards their end, and the map
/// compares whole names anyway. std's SipHash cost more than the rest of a lookup, and a
/// byte-by-byte hash over the whole name more than half of it, eight lookups a request.
#[derive(Debug, Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut tail = [0u8; 8];
        let n = bytes.len().min(8);
        tail[..n].copy_from_slice(&bytes[bytes.len() - n..]);
        let word = u64::from_le_bytes(tail) ^ (bytes.len() as u64).rotate_left(56);
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Debug, Default)]
struct Series {
    /// Counters are integers; gauges and fractional counters are stored as f64 bits.
    values: Table<(Kind, AtomicU64)>,
    histograms: Table<Histogram>,
}

fn same_labels(stored: &Labels, given: &[(&'static str, &str)]) -> bool {
    stored.len() == given.len() && stored.iter().zip(given).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
}

fn find<'t, T>(table: &'t Table<T>, name: &str, labels: &[(&'static str, &str)]) -> Option<&'t T> {
    table.get(name)?.iter().find(|e| same_labels(&e.labels, labels)).map(|e| &e.value)
}

/// What a series holds, and which of the registry's tables holds it.
trait Value: Sized {
    fn table(series: &Series) -> &Table<Self>;
    fn table_mut(series: &mut Series) -> &mut Table<Self>;
}

impl Value for (Kind, AtomicU64) {
    fn table(series: &Series) -> &Table<Self> {
        &series.values
    }
    fn table_mut(series: &mut Series) -> &mut Table<Self> {
        &mut series.values
    }
}

impl Value for Histogram {
    fn table(series: &Series) -> &Table<Self> {
        &series.histograms
    }
    fn table_mut(series: &mut Series) -> &mut Table<Self> {
        &mut series.histograms
    }
}

/// Applies `update` to the series `name{labels}`, creating it with `init` the first time.
fn update<T: Value, R>(
    lock: &RwLock<Series>,
    name: &'static str,
    labels: &[(&'static str, &str)],
    init: impl FnOnce() -> T,
    update: impl FnOnce(&T) -> R,
) -> R {
    // The series hold only atomics and label strings; a panic elsewhere while the lock was
    // held cannot leave them half-updated in a way that matters.
    {
        let series = lock.read().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = find(T::table(&series), name, labels) {
            return update(value);
        }
    }
    let mut series = lock.write().unwrap_or_else(|e| e.into_inner());
    let entries = T::table_mut(&mut series).entry(name).or_default();
    // Another request may have created it between the two locks.
    let at = match entries.iter().position(|e| same_labels(&e.labels, labels)) {
        Some(at) => at,
        None => {
            entries.push(Entry { labels: owned(labels), value: init() });
            entries.len() - 1
        }
    };
    update(&entries[at].value)
}

/// The gateway's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    series: RwLock<Series>,
    help: RwLock<HashMap<&'static str, &'static str>>,
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
            ("llm_router_in_flight", "Calls a deployment is answering now, streams included."),
            (
                "llm_router_queue_wait_seconds",
                "Time requests waited for a deployment at its in-flight limit.",
            ),
            ("llm_router_judge_in_flight", "Questions out to the judge now."),
            (
                "llm_router_judge_allowed_in_flight",
                "Questions the judge may be sent at once now: judge.max_in_flight, halved while its answers time out.",
            ),
            ("llm_router_judge_calls_total", "Questions sent to the judge."),
            (
                "llm_router_judge_busy_total",
                "Consultations the policy decided alone because judge.max_in_flight questions were out.",
            ),
            (
                "llm_router_judge_failures_total",
                "Consultations that got no verdict: timeouts, errors, invalid answers, a paused judge.",
            ),
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Series> {
        self.series.read().unwrap_or_else(|e| e.into_inner())
    }

    fn cell(
        &self,
        kind: Kind,
        name: &'static str,
        labels: &[(&'static str, &str)],
        change: impl FnOnce(&AtomicU64),
    ) {
        let init = || (kind, AtomicU64::new(0));
        update(&self.series, name, labels, init, |cell: &(Kind, AtomicU64)| change(&cell.1));
    }

    /// Adds `n` to an integer counter.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)], n: u64) {
        self.cell(Kind::Counter, name, labels, |cell| {
            cell.fetch_add(n, Ordering::Relaxed);
        });
    }

    /// Adds a fractional amount to a counter (cost).
    pub fn add_f64(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.cell(Kind::Gauge, name, labels, |cell| {
            let _ = cell.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
        });
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, labels: &[(&'static str, &str)], v: f64) {
        self.cell(Kind::Gauge, name, labels, |cell| cell.store(v.to_bits(), Ordering::Relaxed));
    }

    /// Records one observation (in seconds) in a histogram.
    pub fn observe(&self, name: &'static str, labels: &[(&'static str, &str)], seconds: f64) {
        update(&self.series, name, labels, Histogram::default, |h: &Histogram| h.observe(seconds));
    }

    /// The current value of a counter (for tests and the dashboard).
    pub fn counter(&self, name: &'static str, labels: &[(&'static str, &str)]) -> u64 {
        find(&self.read().values, name, labels).map_or(0, |c| c.1.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition of everything, sorted by name and labels.
    pub fn render(&self) -> String {
        let series = self.read();
        let help = self.help.read().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, entries) in sorted(&series.values) {
            let kind = entries.first().map_or(Kind::Counter, |e| e.value.0);
            let type_name =
                if kind == Kind::Counter || name.ends_with("_total") { "counter" } else { "gauge" };
            header(&mut out, &help, name, type_name);
            for entry in entries {
                let (kind, cell) = &entry.value;
                let v = cell.load(Ordering::Relaxed);
                let value = match kind {
                    Kind::Counter => v.to_string(),
                    Kind::Gauge => format_f64(f64::from_bits(v)),
                };
                let _ = writeln!(out, "{name}{} {value}", render_labels(&entry.labels, None));
            }
        }
        for (name, entries) in sorted(&series.histograms) {
            header(&mut out, &help, name, "histogram");
            for entry in entries {
                let (labels, h) = (&entry.labels, &entry.value);
                let mut cumulative = 0;
                for (i, bound) in BUCKETS.iter().enumerate() {
                    cumulative += h.buckets[i].load(Ordering::Relaxed);
                    let le = format_f64(*bound);
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {cumulative}",
                        render_labels(labels, Some(&le))
                    );
                }
                // Read after the buckets: an observation racing the render may show in the
                // count but not yet in a bucket, never the other way round.
                let count = h.count.load(Ordering::Relaxed).max(cumulative);
                let _ =
                    writeln!(out, "{name}_bucket{} {count}", render_labels(labels, Some("+Inf")));
                let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
                let _ =
                    writeln!(out, "{name}_sum{} {}", render_labels(labels, None), format_f64(sum));
                let _ = writeln!(out, "{name}_count{} {count}", render_labels(labels, None));
            }
        }
        out
    }
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// A table's metrics by name, each with its label sets in order.
fn sorted<T>(table: &Table<T>) -> Vec<(&'static str, Vec<&Entry<T>>)> {
    let mut names: Vec<(&'static str, Vec<&Entry<T>>)> = table
        .iter()
        .map(|(name, entries)| {
            let mut entries: Vec<&Entry<T>> = entries.iter().collect();
            entries.sort_by(|a, b| a.labels.cmp(&b.labels));
            (*name, entries)
        })
        .collect();
    names.sort_by_key(|(name, _)| *name);
    names
}

fn header(out: &mut String, help: &HashMap<&'static str, &'static str>, name: &str, kind: &str) {
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
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn every_metric_name_hashes_apart() {
        let m = Metrics::new();
        let names: Vec<&str> = m.help.read().unwrap().keys().copied().collect();
        assert!(names.len() > 10);
        let hasher = BuildHasherDefault::<NameHasher>::default();
        let mut hashes: Vec<u64> = names.iter().map(|name| hasher.hash_one(name)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), names.len(), "two of {names:?} share a hash");
    }

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

    #[test]
    fn histogram_buckets_are_cumulative_and_series_sorted() {
        let m = Metrics::new();
        for seconds in [0.00004, 0.0003, 0.0003, 2.0, 500.0] {
            m.observe("llm_router_request_duration_seconds", &[("api", "openai")], seconds);
        }
        m.observe("llm_router_request_duration_seconds", &[("api", "anthropic")], 0.01);
        m.inc("llm_router_requests_total", &[("api", "openai")], 1);
        m.inc("llm_router_requests_total", &[("api", "anthropic")], 1);
        let text = m.render();
        let line = |le: &str| {
            format!("llm_router_request_duration_seconds_bucket{{api=\"openai\",le=\"{le}\"}}")
        };
        assert!(text.contains(&format!("{} 1\n", line("0.00005"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", line("0.00025"))), "{text}");
        assert!(text.contains(&format!("{} 3\n", line("0.0003"))), "{text}");
        assert!(text.contains(&format!("{} 4\n", line("5"))), "{text}");
        assert!(text.contains(&format!("{} 4\n", line("120"))), "{text}");
        assert!(text.contains(&format!("{} 5\n", line("+Inf"))), "{text}");
        assert!(
            text.contains("llm_router_request_duration_seconds_count{api=\"openai\"} 5"),
            "{text}"
        );
        // Label sets in order, one TYPE line per name.
        let anthropic = text.find("llm_router_requests_total{api=\"anthropic\"}").unwrap();
        let openai = text.find("llm_router_requests_total{api=\"openai\"}").unwrap();
        assert!(anthropic < openai, "{text}");
        assert_eq!(text.matches("# TYPE llm_router_requests_total counter").count(), 1);
        assert_eq!(m.counter("llm_router_requests_total", &[("api", "nobody")]), 0);
    }
}
