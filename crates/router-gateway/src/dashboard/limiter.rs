//! Login attempts per client address: after [`MAX_FAILURES`] failed logins within
//! [`WINDOW`], that address gets 429 until the oldest failure ages out — a correct password
//! included, so guessing cannot go on in the background.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per address within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window failures are counted over.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at most; beyond it the ones with only stale failures are dropped first.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(wait)` when `ip` has used up its failures: how long until it may try again.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut failures = self.lock();
        let Some(times) = failures.get_mut(&ip) else { return Ok(()) };
        forget_old(times, now);
        if times.len() < MAX_FAILURES {
            return Ok(());
        }
        let oldest = times.front().copied().unwrap_or(now);
        Err((oldest + WINDOW).saturating_duration_since(now).max(Duration::from_secs(1)))
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&ip) {
            failures.retain(|_, times| {
                forget_old(times, now);
                !times.is_empty()
            });
        }
        // Still full of live entries: an attacker with that many addresses is not stopped
        // by this limiter anyway; forget one to stay bounded.
        if failures.len() >= MAX_ADDRESSES
            && !failures.contains_key(&ip)
            && let Some(victim) = failures.keys().next().copied()
        {
            failures.remove(&victim);
        }
        let times = failures.entry(ip).or_default();
        forget_old(times, now);
        times.push_back(now);
    }

    /// A successful login clears the address's record.
    pub fn succeeded(&self, ip: IpAddr) {
        self.lock().remove(&ip);
    }
}

fn forget_old(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn five_failures_a_minute_then_429_until_the_oldest_ages_out() {
        let limiter = LoginLimiter::default();
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(limiter.check(ip, t0).is_ok(), "attempt {i}");
            limiter.failed(ip, t0 + Duration::from_secs(i as u64));
        }
        let wait = limiter.check(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        // Others are not affected.
        assert!(limiter.check(other, t0).is_ok());
        // Once the first failure is a minute old, one more attempt is allowed.
        assert!(limiter.check(ip, t0 + WINDOW).is_ok());
        limiter.failed(ip, t0 + WINDOW);
        assert!(limiter.check(ip, t0 + WINDOW).is_err());
    }

    #[test]
    fn success_clears_the_record() {
        let limiter = LoginLimiter::default();
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(ip, now);
        }
        limiter.succeeded(ip);
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed(ip, now);
        }
        assert!(limiter.check(ip, now).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            limiter.failed(IpAddr::V4(Ipv4Addr::from(i)), now);
        }
        assert!(limiter.lock().len() <= MAX_ADDRESSES);
    }
}
