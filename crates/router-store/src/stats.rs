//! Aggregates for the stats API and the dashboard's charts.
//!
//! Percentiles have no portable SQL (PostgreSQL's `percentile_cont` has no SQLite
//! counterpart), so the rows are streamed and folded here: counts and sums on the way, and
//! the latencies kept per group to be sorted at the end. That is one pass over the rows and
//! eight bytes of memory per successful request in range.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::any::AnyRow;

use crate::error::StoreError;
use crate::record::OutcomeStatus;
use crate::sql::{
    Conditions, Statement, from_db, get_i64, get_opt_f64, get_opt_string, get_opt_u64, get_string,
};
use crate::store::Store;

/// The most buckets one [`Store::timeseries`] call may ask for.
pub const MAX_BUCKETS: i64 = 10_000;

/// What [`Store::stats`] aggregates over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// Only requests received at or after this time.
    pub since_ms: Option<i64>,
    /// Split each model × domain × language group further by complexity band.
    pub by_complexity: bool,
}

/// Performance of one model in one context (domain × language, and optionally complexity).
///
/// A request counts for the model that answered it or, when none did, for the model that was
/// chosen. Latency percentiles are over successful requests only, by the nearest-rank method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    pub model: String,
    pub domain: Option<String>,
    pub language: Option<String>,
    /// Set only when the query asked to group by complexity.
    pub complexity: Option<String>,
    /// Every stored request, finished or not.
    pub requests: u64,
    pub successes: u64,
    pub errors: u64,
    pub cancelled: u64,
    /// Requests with feedback, and their mean score.
    pub feedback: u64,
    pub mean_score: Option<f64>,
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub ttft_p50_ms: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

impl StatsRow {
    /// Successes over requests that succeeded or failed; cancelled and unfinished requests
    /// say nothing about the model.
    pub fn success_rate(&self) -> Option<f64> {
        let judged = self.successes + self.errors;
        (judged > 0).then(|| self.successes as f64 / judged as f64)
    }
}

/// Traffic in one time bucket, for charts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeBucket {
    /// The bucket covers `[start_ms, start_ms + bucket_ms)`.
    pub start_ms: i64,
    pub requests: u64,
    pub errors: u64,
    /// Over the bucket's successful requests.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

type GroupKey = (String, Option<String>, Option<String>, Option<String>);

/// Running totals for one group or bucket.
#[derive(Debug, Default)]
struct Totals {
    requests: u64,
    successes: u64,
    errors: u64,
    cancelled: u64,
    feedback: u64,
    score_sum: f64,
    latencies: Vec<u64>,
    ttfts: Vec<u64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

impl Totals {
    /// Adds one request (joined with its outcome, if any) read from `row`.
    fn add(&mut self, row: &AnyRow) -> Result<(), StoreError> {
        self.requests += 1;
        let status = get_opt_string(row, "status")?;
        let status = match status {
            Some(word) => Some(
                OutcomeStatus::parse(&word)
                    .ok_or(StoreError::Corrupt { column: "status", value: word })?,
            ),
            None => None,
        };
        match status {
            Some(OutcomeStatus::Ok) => {
                self.successes += 1;
                if let Some(latency) = get_opt_u64(row, "latency_ms")? {
                    self.latencies.push(latency);
                }
                if let Some(ttft) = get_opt_u64(row, "ttft_ms")? {
                    self.ttfts.push(ttft);
                }
            }
            Some(OutcomeStatus::Error) => self.errors += 1,
            Some(OutcomeStatus::Cancelled) => self.cancelled += 1,
            None => {}
        }
        self.input_tokens += get_opt_u64(row, "input_tokens")?.unwrap_or(0);
        self.output_tokens += get_opt_u64(row, "output_tokens")?.unwrap_or(0);
        self.cost_usd += get_opt_f64(row, "cost_usd")?.unwrap_or(0.0);
        Ok(())
    }

    fn add_score(&mut self, row: &AnyRow) -> Result<(), StoreError> {
        if let Some(score) = get_opt_f64(row, "score")? {
            self.feedback += 1;
            self.score_sum += score;
        }
        Ok(())
    }
}

/// The nearest-rank percentile (`p` in (0, 1]) of sorted values: the smallest value with at
/// least a fraction `p` of the values at or below it.
pub(crate) fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Store {
    /// Performance per model × domain × language (× complexity band), sorted by those keys.
    pub async fn stats(&self, query: &StatsQuery) -> Result<Vec<StatsRow>, StoreError> {
        let mut statement = Statement::new(
            "SELECT COALESCE(r.model, r.chosen_model) AS model, r.domain, r.language, \
             r.complexity, r.status, r.latency_ms, r.ttft_ms, r.input_tokens, r.output_tokens, \
             r.cost_usd, f.score \
             FROM requests r \
             LEFT JOIN feedback f ON f.decision_id = r.id",
        );
        let mut conditions = Conditions::default();
        // A row that holds only an outcome (stored before its request) is not a decision.
        conditions.add("r.received_at IS NOT NULL".to_owned());
        if let Some(since) = query.since_ms {
            conditions.add(format!("r.received_at >= {}", statement.int(since)));
        }
        conditions.write_to(&mut statement);

        let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
        let mut rows = statement.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let complexity = match query.by_complexity {
                true => get_opt_string(&row, "complexity")?,
                false => None,
            };
            let key = (
                get_string(&row, "model")?,
                get_opt_string(&row, "domain")?,
                get_opt_string(&row, "language")?,
                complexity,
            );
            let totals = groups.entry(key).or_default();
            totals.add(&row)?;
            totals.add_score(&row)?;
        }

        Ok(groups
            .into_iter()
            .map(|((model, domain, language, complexity), mut totals)| {
                totals.latencies.sort_unstable();
                totals.ttfts.sort_unstable();
                StatsRow {
                    model,
                    domain,
                    language,
                    complexity,
                    requests: totals.requests,
                    successes: totals.successes,
                    errors: totals.errors,
                    cancelled: totals.cancelled,
                    feedback: totals.feedback,
                    mean_score: (totals.feedback > 0)
                        .then(|| totals.score_sum / totals.feedback as f64),
                    latency_p50_ms: percentile(&totals.latencies, 0.50),
                    latency_p95_ms: percentile(&totals.latencies, 0.95),
                    ttft_p50_ms: percentile(&totals.ttfts, 0.50),
                    input_tokens: totals.input_tokens,
                    output_tokens: totals.output_tokens,
                    cost_usd: totals.cost_usd,
                }
            })
            .collect())
    }

    /// How many decisions each source made (`judge`, `policy`, `fallback`, `explicit`)
    /// among the requests received in `[since_ms, until_ms)`.
    pub async fn source_counts(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut statement =
            Statement::new("SELECT source, CAST(COUNT(*) AS BIGINT) AS n FROM requests");
        let mut conditions = Conditions::default();
        conditions.add(format!("received_at >= {}", statement.int(since_ms)));
        conditions.add(format!("received_at < {}", statement.int(until_ms)));
        conditions.write_to(&mut statement);
        statement.push(" GROUP BY source");
        let mut counts = BTreeMap::new();
        let mut rows = statement.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            counts.insert(get_string(&row, "source")?, from_db(get_i64(&row, "n")?, "n")?);
        }
        Ok(counts)
    }

    /// Traffic over `[since_ms, until_ms)` in buckets of `bucket_ms`, by the time requests
    /// were received. Every bucket is returned, empty ones included, oldest first; bucket
    /// `i` starts at `since_ms + i * bucket_ms`.
    pub async fn timeseries(
        &self,
        since_ms: i64,
        until_ms: i64,
        bucket_ms: i64,
    ) -> Result<Vec<TimeBucket>, StoreError> {
        if bucket_ms <= 0 || until_ms <= since_ms {
            return Err(StoreError::InvalidArgument(format!(
                "timeseries needs a positive bucket and since < until \
                 (got bucket {bucket_ms} ms over [{since_ms}, {until_ms}))"
            )));
        }
        let span = i128::from(until_ms) - i128::from(since_ms);
        let bucket = i128::from(bucket_ms);
        let count = (span + bucket - 1) / bucket;
        if count > i128::from(MAX_BUCKETS) {
            return Err(StoreError::InvalidArgument(format!(
                "timeseries would need {count} buckets; at most {MAX_BUCKETS} are allowed"
            )));
        }
        // `count` is at most MAX_BUCKETS, so these conversions cannot fail.
        let count = usize::try_from(count).unwrap_or_default();

        let mut statement = Statement::new(
            "SELECT r.received_at, r.status, r.latency_ms, r.ttft_ms, r.input_tokens, \
             r.output_tokens, r.cost_usd \
             FROM requests r",
        );
        let mut conditions = Conditions::default();
        conditions.add(format!("r.received_at >= {}", statement.int(since_ms)));
        conditions.add(format!("r.received_at < {}", statement.int(until_ms)));
        conditions.write_to(&mut statement);

        let mut buckets: Vec<Totals> = (0..count).map(|_| Totals::default()).collect();
        let mut rows = statement.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let received_at = get_i64(&row, "received_at")?;
            // In i128: the distance between two i64 times need not fit an i64.
            let offset = i128::from(received_at) - i128::from(since_ms);
            let index = usize::try_from(offset / i128::from(bucket_ms)).ok();
            if let Some(totals) = index.and_then(|index| buckets.get_mut(index)) {
                totals.add(&row)?;
            }
        }

        Ok(buckets
            .into_iter()
            .enumerate()
            .map(|(index, mut totals)| {
                totals.latencies.sort_unstable();
                TimeBucket {
                    // Every bucket starts before `until_ms`, so this fits an i64.
                    start_ms: i64::try_from(
                        i128::from(since_ms) + index as i128 * i128::from(bucket_ms),
                    )
                    .unwrap_or(i64::MAX),
                    requests: totals.requests,
                    errors: totals.errors,
                    latency_p50_ms: percentile(&totals.latencies, 0.50),
                    latency_p95_ms: percentile(&totals.latencies, 0.95),
                    input_tokens: totals.input_tokens,
                    output_tokens: totals.output_tokens,
                    cost_usd: totals.cost_usd,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[7], 0.5), Some(7));
        assert_eq!(percentile(&[7], 0.95), Some(7));
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 0.50), Some(50));
        assert_eq!(percentile(&values, 0.95), Some(95));
        assert_eq!(percentile(&values, 1.0), Some(100));
        assert_eq!(percentile(&[10, 20, 30, 40], 0.5), Some(20));
        assert_eq!(percentile(&[10, 20, 30, 40], 0.95), Some(40));
        assert_eq!(percentile(&[10, 20, 30], 0.5), Some(20));
    }
}
