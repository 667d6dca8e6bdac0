//! The shapes of load a scenario runs at.

use std::fmt;
use std::str::FromStr;

/// How requests are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Closed loop: this many clients, each sending its next request when the last one is
    /// answered. Measures throughput and latency under a fixed number of requests in flight.
    Concurrency(u32),
    /// Open loop: this many requests a second, whatever the answers do. Latency is counted
    /// from when a request was due, so a stalled server cannot hide its stall by slowing
    /// the client down (coordinated omission).
    Rate(u32),
}

impl Load {
    /// Connections an open-loop run keeps: enough that the rate never waits on a free
    /// connection at the latencies measured here, and no more.
    pub fn rate_connections(rate: u32) -> u32 {
        (rate / 25).clamp(8, 128)
    }
}

impl fmt::Display for Load {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Load::Concurrency(n) => write!(f, "c={n}"),
            Load::Rate(n) => write!(f, "{} RPS", thousands(u64::from(*n))),
        }
    }
}

/// `c16` is 16 concurrent clients, `r2000` is 2,000 requests a second.
impl FromStr for Load {
    type Err = String;

    fn from_str(s: &str) -> Result<Load, String> {
        let s = s.trim();
        let number = |digits: &str| {
            digits
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("`{s}`: expected a positive number after the letter"))
        };
        if let Some(n) = s.strip_prefix('c') {
            number(n).map(Load::Concurrency)
        } else if let Some(n) = s.strip_prefix('r') {
            number(n).map(Load::Rate)
        } else {
            Err(format!("`{s}` is not a load: write c<clients> (c16) or r<rate> (r2000)"))
        }
    }
}

/// `12345` → `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_parse_and_print() {
        assert_eq!("c16".parse::<Load>(), Ok(Load::Concurrency(16)));
        assert_eq!(" r2000 ".parse::<Load>(), Ok(Load::Rate(2000)));
        assert!("c0".parse::<Load>().is_err());
        assert!("x5".parse::<Load>().is_err());
        assert!("r".parse::<Load>().is_err());
        assert_eq!(Load::Concurrency(256).to_string(), "c=256");
        assert_eq!(Load::Rate(2000).to_string(), "2,000 RPS");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn open_loop_connections_scale_with_the_rate() {
        assert_eq!(Load::rate_connections(100), 8);
        assert_eq!(Load::rate_connections(2000), 80);
        assert_eq!(Load::rate_connections(100_000), 128);
    }
}
