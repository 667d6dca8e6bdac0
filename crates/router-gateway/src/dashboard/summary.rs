//! The arithmetic behind the dashboard's numbers, apart from any I/O: time windows and
//! their buckets, traffic per bucket, the cost saved against the strongest model, and the
//! model × domain / model × language quality grids.

use std::collections::BTreeMap;

use router_core::Price;
use router_core::learning::LearnedCell;
use router_store::{StatsRow, TimeBucket};
use serde::Serialize;

use crate::registry::ModelStatus;

/// The time ranges the dashboard shows, each with a bucket size that gives 30–90 points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Window {
    #[serde(rename = "15m")]
    Minutes15,
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "6h")]
    Hours6,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

const MINUTE: i64 = 60_000;

impl Window {
    pub const ALL: [Window; 6] =
        [Window::Minutes15, Window::Hour, Window::Hours6, Window::Day, Window::Week, Window::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minutes15 => "15m",
            Window::Hour => "1h",
            Window::Hours6 => "6h",
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    pub fn parse(text: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == text.trim())
    }

    pub fn span_ms(self) -> i64 {
        match self {
            Window::Minutes15 => 15 * MINUTE,
            Window::Hour => 60 * MINUTE,
            Window::Hours6 => 6 * 60 * MINUTE,
            Window::Day => 24 * 60 * MINUTE,
            Window::Week => 7 * 24 * 60 * MINUTE,
            Window::Month => 30 * 24 * 60 * MINUTE,
        }
    }

    pub fn bucket_ms(self) -> i64 {
        match self {
            Window::Minutes15 => 30_000,
            Window::Hour => MINUTE,
            Window::Hours6 => 5 * MINUTE,
            Window::Day => 20 * MINUTE,
            Window::Week => 2 * 60 * MINUTE,
            Window::Month => 12 * 60 * MINUTE,
        }
    }

    /// `[since, until)` ending with the bucket that holds `now`, aligned to bucket
    /// boundaries so that a refresh extends the chart instead of reshuffling it.
    pub fn range(self, now_ms: i64) -> (i64, i64) {
        let bucket = self.bucket_ms();
        let until = (now_ms.div_euclid(bucket) + 1) * bucket;
        (until - self.span_ms(), until)
    }
}

/// One point of the overview's charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub start_ms: i64,
    pub requests: u64,
    pub errors: u64,
    /// Requests per minute over the part of the bucket that has passed.
    pub rpm: f64,
    /// Errors over requests, when there were requests.
    pub error_rate: Option<f64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// Chart points from the store's buckets.
pub fn points(buckets: &[TimeBucket], bucket_ms: i64, now_ms: i64) -> Vec<Point> {
    buckets
        .iter()
        .map(|b| {
            // The current bucket is still filling: rate it over the time that has passed.
            let elapsed = (now_ms - b.start_ms).clamp(1_000, bucket_ms.max(1_000));
            Point {
                start_ms: b.start_ms,
                requests: b.requests,
                errors: b.errors,
                rpm: b.requests as f64 * MINUTE as f64 / elapsed as f64,
                error_rate: (b.requests > 0).then(|| b.errors as f64 / b.requests as f64),
                latency_p50_ms: b.latency_p50_ms,
                latency_p95_ms: b.latency_p95_ms,
                input_tokens: b.input_tokens,
                output_tokens: b.output_tokens,
                cost_usd: b.cost_usd,
            }
        })
        .collect()
}

/// The model every request could have been sent to instead: the enabled model with the
/// highest output price (input price breaks ties), since output tokens dominate the bill of
/// a strong model.
pub fn strongest(models: &[ModelStatus]) -> Option<&ModelStatus> {
    models.iter().filter(|m| m.enabled).max_by(|a, b| {
        (a.output_price, a.input_price)
            .partial_cmp(&(b.output_price, b.input_price))
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// What was spent against what sending everything to the strongest model would have cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Savings {
    pub strongest_model: Option<String>,
    pub actual_usd: f64,
    /// The same tokens at the strongest model's prices.
    pub strongest_usd: f64,
    pub saved_usd: f64,
    /// Saved over what the strongest model would have cost.
    pub saved_ratio: Option<f64>,
}

/// Σ over answered requests of (the tokens at the strongest model's prices − the actual
/// cost). Prices are linear in tokens, so summing tokens per group first gives the same sum.
/// Requests that were not answered carry no tokens and cost nothing either way.
pub fn savings(rows: &[StatsRow], strongest: Option<(&str, Price)>) -> Savings {
    let actual: f64 = rows.iter().map(|r| r.cost_usd).sum();
    let Some((name, price)) = strongest else {
        return Savings {
            strongest_model: None,
            actual_usd: actual,
            strongest_usd: actual,
            saved_usd: 0.0,
            saved_ratio: None,
        };
    };
    let at_strongest: f64 = rows.iter().map(|r| price.cost(r.input_tokens, r.output_tokens)).sum();
    Savings {
        strongest_model: Some(name.to_string()),
        actual_usd: actual,
        strongest_usd: at_strongest,
        saved_usd: at_strongest - actual,
        saved_ratio: (at_strongest > 0.0).then(|| (at_strongest - actual) / at_strongest),
    }
}

/// One cell of a quality grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub model: String,
    /// A domain or a language code; `none` when the request had none recorded.
    pub key: String,
    pub requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub success_rate: Option<f64>,
    pub feedback: u64,
    /// Mean feedback score in [0, 1].
    pub mean_score: Option<f64>,
    /// The same on the 1–5 star scale.
    pub mean_rating: Option<f64>,
    pub latency_p50_ms_max: Option<u64>,
    pub cost_usd: f64,
}

#[derive(Default)]
struct Sum {
    requests: u64,
    successes: u64,
    errors: u64,
    feedback: u64,
    score_sum: f64,
    latency_p50_max: Option<u64>,
    cost_usd: f64,
}

/// Folds model × domain × language rows into model × `key` cells, `key` picking the domain
/// or the language. Mean scores are weighted by how much feedback each row has.
pub fn grid(rows: &[StatsRow], key: impl Fn(&StatsRow) -> Option<&str>) -> Vec<Cell> {
    let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for r in rows {
        let k = key(r).unwrap_or("none").to_string();
        let s = sums.entry((r.model.clone(), k)).or_default();
        s.requests += r.requests;
        s.successes += r.successes;
        s.errors += r.errors;
        s.feedback += r.feedback;
        s.score_sum += r.mean_score.unwrap_or(0.0) * r.feedback as f64;
        s.latency_p50_max = s.latency_p50_max.max(r.latency_p50_ms);
        s.cost_usd += r.cost_usd;
    }
    sums.into_iter()
        .map(|((model, key), s)| {
            let judged = s.successes + s.errors;
            let mean_score = (s.feedback > 0).then(|| s.score_sum / s.feedback as f64);
            Cell {
                model,
                key,
                requests: s.requests,
                successes: s.successes,
                errors: s.errors,
                success_rate: (judged > 0).then(|| s.successes as f64 / judged as f64),
                feedback: s.feedback,
                mean_score,
                mean_rating: mean_score.map(|m| 1.0 + 4.0 * m),
                latency_p50_ms_max: s.latency_p50_max,
                cost_usd: s.cost_usd,
            }
        })
        .collect()
}

/// What the policy believes of one model in one domain (or language), over all languages
/// (or domains): quality weighted by evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Belief {
    pub model: String,
    pub key: String,
    pub quality: f64,
    pub evidence: f64,
}

/// Folds the policy's model × domain × language cells along one axis.
pub fn beliefs(cells: &[LearnedCell], key: impl Fn(&LearnedCell) -> &'static str) -> Vec<Belief> {
    let mut sums: BTreeMap<(String, &'static str), (f64, f64)> = BTreeMap::new();
    for c in cells {
        let s = sums.entry((c.model.clone(), key(c))).or_default();
        s.0 += c.quality * c.evidence;
        s.1 += c.evidence;
    }
    sums.into_iter()
        .filter(|(_, (_, evidence))| *evidence > 0.0)
        .map(|((model, key), (weighted, evidence))| Belief {
            model,
            key: key.to_string(),
            quality: weighted / evidence,
            evidence,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use router_core::{Availability, Domain, Language};

    use super::*;

    fn row(model: &str, domain: &str, language: &str) -> StatsRow {
        StatsRow {
            model: model.into(),
            domain: Some(domain.into()),
            language: Some(language.into()),
            complexity: None,
            requests: 0,
            successes: 0,
            errors: 0,
            cancelled: 0,
            feedback: 0,
            mean_score: None,
            latency_p50_ms: None,
            latency_p95_ms: None,
            ttft_p50_ms: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        }
    }

    fn status(name: &str, enabled: bool, input: f64, output: f64) -> ModelStatus {
        ModelStatus {
            name: name.into(),
            enabled,
            availability: Availability::Healthy,
            weight: 1.0,
            input_price: input,
            output_price: output,
            context_window: 8192,
            tags: vec![],
            fallbacks: vec![],
            deployments: vec![],
        }
    }

    #[test]
    fn windows_align_to_buckets() {
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Some(w));
            assert_eq!(w.span_ms() % w.bucket_ms(), 0, "{w:?}");
            let n = w.span_ms() / w.bucket_ms();
            assert!((30..=90).contains(&n), "{w:?}: {n} points");
            let now = 1_700_000_123_456;
            let (since, until) = w.range(now);
            assert!(since < now && now < until);
            assert_eq!(until % w.bucket_ms(), 0);
            assert_eq!(until - since, w.span_ms());
        }
        assert_eq!(Window::parse("2h"), None);
    }

    #[test]
    fn points_rate_the_current_bucket_over_elapsed_time() {
        let bucket = |start_ms, requests, errors| TimeBucket {
            start_ms,
            requests,
            errors,
            latency_p50_ms: None,
            latency_p95_ms: None,
            input_tokens: 0,
            output_tokens: 0,
            cost_usd: 0.0,
        };
        let p = points(
            &[bucket(0, 30, 3), bucket(60_000, 10, 0), bucket(120_000, 0, 0)],
            60_000,
            90_000,
        );
        assert_eq!(p[0].rpm, 30.0);
        assert_eq!(p[0].error_rate, Some(0.1));
        // Half of the second bucket has passed: 10 requests in 30 s is 20 a minute.
        assert_eq!(p[1].rpm, 20.0);
        assert_eq!(p[2].error_rate, None);
    }

    #[test]
    fn strongest_is_the_enabled_model_with_the_highest_output_price() {
        let models = [
            status("cheap", true, 0.1, 0.4),
            status("pro", true, 3.0, 15.0),
            status("off", false, 30.0, 60.0),
        ];
        assert_eq!(strongest(&models).map(|m| m.name.as_str()), Some("pro"));
        let tie = [status("a", true, 1.0, 10.0), status("b", true, 2.0, 10.0)];
        assert_eq!(strongest(&tie).map(|m| m.name.as_str()), Some("b"));
        assert!(strongest(&[status("off", false, 1.0, 1.0)]).is_none());
    }

    #[test]
    fn savings_price_the_same_tokens_at_the_strongest_model() {
        let mut cheap = row("cheap", "code", "en");
        cheap.input_tokens = 1_000_000;
        cheap.output_tokens = 500_000;
        cheap.cost_usd = 0.1 + 0.2;
        let mut pro = row("pro", "chat", "zh");
        pro.input_tokens = 200_000;
        pro.output_tokens = 100_000;
        pro.cost_usd = 0.6 + 1.5;
        let price = Price { input_per_mtok: 3.0, output_per_mtok: 15.0 };
        let s = savings(&[cheap, pro], Some(("pro", price)));
        assert!((s.actual_usd - 2.4).abs() < 1e-9);
        // cheap's tokens at pro's prices: 3 + 7.5; pro's own: 2.1.
        assert!((s.strongest_usd - 12.6).abs() < 1e-9, "{s:?}");
        assert!((s.saved_usd - 10.2).abs() < 1e-9, "{s:?}");
        assert!((s.saved_ratio.unwrap() - 10.2 / 12.6).abs() < 1e-9);
        let none = savings(&[], None);
        assert_eq!(none.saved_usd, 0.0);
        assert_eq!(none.saved_ratio, None);
    }

    #[test]
    fn grids_sum_counts_and_weight_scores_by_feedback() {
        let mut a = row("m", "code", "en");
        a.requests = 10;
        a.successes = 8;
        a.errors = 2;
        a.feedback = 1;
        a.mean_score = Some(1.0);
        let mut b = row("m", "code", "zh");
        b.requests = 5;
        b.successes = 5;
        b.feedback = 3;
        b.mean_score = Some(0.5);
        let mut c = row("m", "chat", "en");
        c.requests = 1;
        let by_domain = grid(&[a.clone(), b.clone(), c.clone()], |r| r.domain.as_deref());
        assert_eq!(by_domain.len(), 2);
        let code = by_domain.iter().find(|x| x.key == "code").unwrap();
        assert_eq!((code.requests, code.successes, code.errors, code.feedback), (15, 13, 2, 4));
        assert_eq!(code.success_rate, Some(13.0 / 15.0));
        assert_eq!(code.mean_score, Some((1.0 + 1.5) / 4.0));
        assert_eq!(code.mean_rating, Some(1.0 + 4.0 * 0.625));
        let chat = by_domain.iter().find(|x| x.key == "chat").unwrap();
        assert_eq!(chat.success_rate, None);
        assert_eq!(chat.mean_rating, None);
        let by_language = grid(&[a, b, c], |r| r.language.as_deref());
        let en = by_language.iter().find(|x| x.key == "en").unwrap();
        assert_eq!(en.requests, 11);
    }

    #[test]
    fn beliefs_weight_quality_by_evidence() {
        let cell = |domain, language, quality, evidence| LearnedCell {
            model: "m".into(),
            domain,
            language,
            quality,
            evidence,
        };
        let cells = [
            cell(Domain::Code, Language::En, 0.9, 3.0),
            cell(Domain::Code, Language::Zh, 0.5, 1.0),
            cell(Domain::Chat, Language::En, 0.7, 2.0),
        ];
        let by_domain = beliefs(&cells, |c| c.domain.as_str());
        let code = by_domain.iter().find(|b| b.key == "code").unwrap();
        assert!((code.quality - 0.8).abs() < 1e-9);
        assert_eq!(code.evidence, 4.0);
        let by_language = beliefs(&cells, |c| c.language.code());
        let en = by_language.iter().find(|b| b.key == "en").unwrap();
        assert!((en.quality - (0.9 * 3.0 + 0.7 * 2.0) / 5.0).abs() < 1e-9);
    }
}
