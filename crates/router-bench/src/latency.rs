//! Latency percentiles, and the differences between two sets of them (the overhead of a hop).

use std::fmt;
use std::time::Duration;

/// The percentiles a results table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percentiles {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
}

impl Percentiles {
    /// Nearest-rank percentiles of `samples` (sorted in place); `None` when there are none.
    pub fn of(samples: &mut [Duration]) -> Option<Percentiles> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        Some(Percentiles {
            p50: nearest_rank(samples, 0.50),
            p90: nearest_rank(samples, 0.90),
            p99: nearest_rank(samples, 0.99),
        })
    }

    /// What `self` adds over `floor`, percentile by percentile.
    pub fn over(&self, floor: &Percentiles) -> Overhead {
        Overhead {
            p50: signed_micros(self.p50, floor.p50),
            p90: signed_micros(self.p90, floor.p90),
            p99: signed_micros(self.p99, floor.p99),
        }
    }
}

/// The sample at quantile `q` of a sorted, non-empty slice: the smallest value with at
/// least `q` of the samples at or below it.
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn signed_micros(a: Duration, b: Duration) -> i64 {
    a.as_micros() as i64 - b.as_micros() as i64
}

/// Percentile differences in microseconds. Negative values happen: two runs of the same
/// thing differ by noise, and a hop can even smooth a tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Overhead {
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
}

/// A latency in milliseconds, as tables show it.
pub struct Ms(pub Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1000.0;
        if ms < 10.0 { write!(f, "{ms:.3}") } else { write!(f, "{ms:.1}") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<Duration> = (1..=100).rev().map(us).collect();
        let p = Percentiles::of(&mut samples).unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (us(50), us(90), us(99)));

        let mut one = vec![us(7)];
        let p = Percentiles::of(&mut one).unwrap();
        assert_eq!((p.p50, p.p99), (us(7), us(7)));

        assert_eq!(Percentiles::of(&mut []), None);
    }

    #[test]
    fn overhead_is_the_difference_and_may_be_negative() {
        let floor = Percentiles { p50: us(100), p90: us(200), p99: us(400) };
        let hop = Percentiles { p50: us(150), p90: us(180), p99: us(900) };
        assert_eq!(hop.over(&floor), Overhead { p50: 50, p90: -20, p99: 500 });
    }

    #[test]
    fn milliseconds_keep_sub_millisecond_detail() {
        assert_eq!(Ms(us(412)).to_string(), "0.412");
        assert_eq!(Ms(Duration::from_millis(25)).to_string(), "25.0");
    }
}
