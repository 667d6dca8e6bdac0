//! The gateway's own view of its cost: the `llm_router_overhead_seconds` histogram from its
//! Prometheus endpoint, read before and after a scenario so the difference covers exactly
//! that scenario's requests.

use std::time::Duration;

/// The overhead histogram's name.
pub const OVERHEAD: &str = "llm_router_overhead_seconds";

/// A Prometheus histogram: cumulative counts per upper bound, in ascending order of bound
/// (the last bound is +Inf).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// The buckets of histogram `name` (summed over all label sets) in an exposition text.
    pub fn parse(text: &str, name: &str) -> Histogram {
        let prefix = format!("{name}_bucket");
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix(&prefix) else { continue };
            let Some((labels, value)) = rest.rsplit_once(' ') else { continue };
            let Some(le) = label(labels, "le") else { continue };
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            let Ok(count) = value.trim().parse::<u64>() else { continue };
            if bound.is_nan() {
                continue;
            }
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, c)) => *c += count,
                None => buckets.push((bound, count)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram { buckets }
    }

    /// The observations made between `earlier` and `self`.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, count)| {
                let before = earlier.buckets.iter().find(|(b, _)| *b == bound).map_or(0, |b| b.1);
                (bound, count.saturating_sub(before))
            })
            .collect();
        Histogram { buckets }
    }

    pub fn count(&self) -> u64 {
        self.buckets.last().map_or(0, |b| b.1)
    }

    /// The upper bound of the bucket holding quantile `q`: the true value is at most this.
    /// `None` when empty or when the quantile lies past the last finite bound.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let needed = (q * total as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, count)| *count >= needed.max(1))
            .and_then(|(bound, _)| bound.is_finite().then(|| Duration::from_secs_f64(*bound)))
    }
}

/// The value of label `key` in `{a="1",le="0.5"}`.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let inner = labels.trim().strip_prefix('{')?.strip_suffix('}')?;
    inner.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

/// Fetches the histogram from a running gateway.
pub async fn fetch(client: &reqwest::Client, metrics_url: &str) -> anyhow::Result<Histogram> {
    let text = client.get(metrics_url).send().await?.error_for_status()?.text().await?;
    Ok(Histogram::parse(&text, OVERHEAD))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "\
# TYPE llm_router_overhead_seconds histogram
llm_router_overhead_seconds_bucket{le=\"0.0001\"} 5
llm_router_overhead_seconds_bucket{le=\"0.0005\"} 9
llm_router_overhead_seconds_bucket{le=\"+Inf\"} 10
llm_router_overhead_seconds_sum 0.01
llm_router_overhead_seconds_count 10
llm_router_request_duration_seconds_bucket{api=\"openai\",le=\"0.0001\"} 77
";

    const AFTER: &str = "\
llm_router_overhead_seconds_bucket{le=\"0.0001\"} 85
llm_router_overhead_seconds_bucket{le=\"0.0005\"} 108
llm_router_overhead_seconds_bucket{le=\"+Inf\"} 110
";

    #[test]
    fn parses_only_the_named_histogram() {
        let h = Histogram::parse(BEFORE, OVERHEAD);
        assert_eq!(h.buckets, vec![(0.0001, 5), (0.0005, 9), (f64::INFINITY, 10)]);
        assert_eq!(h.count(), 10);
    }

    #[test]
    fn quantiles_of_the_difference() {
        let d = Histogram::parse(AFTER, OVERHEAD).since(&Histogram::parse(BEFORE, OVERHEAD));
        assert_eq!(d.count(), 100);
        assert_eq!(d.quantile_bound(0.5), Some(Duration::from_micros(100)));
        assert_eq!(d.quantile_bound(0.8), Some(Duration::from_micros(100)));
        assert_eq!(d.quantile_bound(0.9), Some(Duration::from_micros(500)));
        // The last one percent lies beyond the last finite bound.
        assert_eq!(d.quantile_bound(0.995), None);
        assert_eq!(Histogram::default().quantile_bound(0.5), None);
    }

    #[test]
    fn labels_are_read_by_name() {
        assert_eq!(label("{api=\"openai\",le=\"0.5\"}", "le"), Some("0.5"));
        assert_eq!(label("{api=\"openai\"}", "le"), None);
        assert_eq!(label("no braces", "le"), None);
    }
}
