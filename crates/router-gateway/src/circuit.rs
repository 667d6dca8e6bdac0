//! A circuit breaker per deployment.
//!
//! Closed, it lets every call through and watches the results. It opens after
//! `consecutive_failures` failures in a row, or when the failure ratio over the last `window`
//! calls reaches `error_ratio`; open, it refuses calls until the cooldown (or the upstream's
//! Retry-After, whichever is longer) has passed. Then exactly one call — the probe — goes
//! through (half-open): success closes the circuit, failure opens it for another cooldown.
//! A dead deployment therefore costs at most one failed call per cooldown.
//!
//! Time is handed in (`now`), so the state machine is tested without sleeping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::CircuitConfig;

/// The state as the outside sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// What a caller may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Allowed,
    /// Half-open: go ahead; this call is the probe, and its result decides the circuit.
    Probe,
    /// Open, or half-open with the probe already under way.
    Rejected,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
struct Inner {
    state: State,
    consecutive_failures: u32,
    /// Recent results, true for failure; at most `window` long.
    recent: VecDeque<bool>,
    failures_in_window: u32,
    /// How many times the circuit has opened (for the dashboard and tests).
    opened: u64,
}

/// One deployment's breaker.
#[derive(Debug)]
pub struct Circuit {
    settings: CircuitConfig,
    inner: Mutex<Inner>,
}

impl Circuit {
    pub fn new(settings: CircuitConfig) -> Self {
        Circuit {
            inner: Mutex::new(Inner {
                state: State::Closed,
                consecutive_failures: 0,
                recent: VecDeque::with_capacity(settings.window as usize),
                failures_in_window: 0,
                opened: 0,
            }),
            settings,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update of plain counters;
        // the state is still meaningful, so carry on with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state at `now`, without changing it (an open circuit past its cooldown reads as
    /// half-open: the next call will be a probe).
    pub fn state(&self, now: Instant) -> CircuitState {
        match self.lock().state {
            State::Closed => CircuitState::Closed,
            State::Open { until } if now >= until => CircuitState::HalfOpen,
            State::Open { .. } => CircuitState::Open,
            State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether a call would be admitted at `now`, without taking the probe slot.
    pub fn would_admit(&self, now: Instant) -> bool {
        match self.lock().state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probing } => !probing,
        }
    }

    /// Asks to make a call at `now`. A `Probe` admission must be followed by
    /// [`Circuit::record_success`] or [`Circuit::record_failure`] (or
    /// [`Circuit::release_probe`] when the call never happened).
    pub fn admit(&self, now: Instant) -> Admission {
        let mut inner = self.lock();
        match inner.state {
            State::Closed => Admission::Allowed,
            State::Open { until } if now >= until => {
                inner.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::Open { .. } => Admission::Rejected,
            State::HalfOpen { probing: false } => {
                inner.state = State::HalfOpen { probing: true };
                Admission::Probe
            }
            State::HalfOpen { probing: true } => Admission::Rejected,
        }
    }

    /// A probe that was admitted but never sent (the request moved elsewhere first).
    pub fn release_probe(&self) {
        let mut inner = self.lock();
        if let State::HalfOpen { probing: true } = inner.state {
            inner.state = State::HalfOpen { probing: false };
        }
    }

    pub fn record_success(&self) {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        self.push(&mut inner, false);
        if !matches!(inner.state, State::Closed) {
            // The probe came back well: start afresh.
            inner.state = State::Closed;
            inner.recent.clear();
            inner.failures_in_window = 0;
        }
    }

    /// A failed call at `now`; `retry_after` is the upstream's request to wait, if any.
    pub fn record_failure(&self, now: Instant, retry_after: Option<Duration>) {
        let mut inner = self.lock();
        inner.consecutive_failures += 1;
        self.push(&mut inner, true);
        let cooldown = self.settings.cooldown.max(retry_after.unwrap_or_default());
        let trip = match inner.state {
            State::HalfOpen { .. } => true,
            State::Open { .. } => false,
            State::Closed => {
                let window_full = inner.recent.len() >= self.settings.window as usize;
                let ratio = f64::from(inner.failures_in_window) / inner.recent.len().max(1) as f64;
                inner.consecutive_failures >= self.settings.consecutive_failures
                    || (window_full && ratio >= self.settings.error_ratio)
                    // An explicit "come back later" is honoured at once.
                    || retry_after.is_some()
            }
        };
        if trip {
            inner.state = State::Open { until: now + cooldown };
            inner.opened += 1;
        }
    }

    /// Operator action: close the circuit and forget the history.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.state = State::Closed;
        inner.consecutive_failures = 0;
        inner.recent.clear();
        inner.failures_in_window = 0;
    }

    /// How long until an open circuit lets a probe through (`None` when it is not open).
    pub fn reopens_in(&self, now: Instant) -> Option<Duration> {
        match self.lock().state {
            State::Open { until } if until > now => Some(until - now),
            _ => None,
        }
    }

    /// How many times the circuit has opened since start.
    pub fn times_opened(&self) -> u64 {
        self.lock().opened
    }

    /// Failure ratio over the recent window.
    pub fn recent_error_ratio(&self) -> f64 {
        let inner = self.lock();
        f64::from(inner.failures_in_window) / inner.recent.len().max(1) as f64
    }

    fn push(&self, inner: &mut Inner, failed: bool) {
        if inner.recent.len() >= self.settings.window as usize
            && let Some(old) = inner.recent.pop_front()
            && old
        {
            inner.failures_in_window -= 1;
        }
        inner.recent.push_back(failed);
        if failed {
            inner.failures_in_window += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CircuitConfig {
        CircuitConfig {
            consecutive_failures: 3,
            error_ratio: 0.5,
            window: 10,
            cooldown: Duration::from_secs(30),
        }
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_cooldown() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(c.admit(t0), Admission::Allowed);
            c.record_failure(t0, None);
        }
        assert_eq!(c.state(t0), CircuitState::Closed);
        c.record_failure(t0, None);
        assert_eq!(c.state(t0), CircuitState::Open);
        assert_eq!(c.admit(t0 + Duration::from_secs(29)), Admission::Rejected);

        let later = t0 + Duration::from_secs(30);
        assert_eq!(c.state(later), CircuitState::HalfOpen);
        assert_eq!(c.admit(later), Admission::Probe);
        // Only one probe at a time.
        assert_eq!(c.admit(later), Admission::Rejected);
        c.record_success();
        assert_eq!(c.state(later), CircuitState::Closed);
        assert_eq!(c.admit(later), Admission::Allowed);
        assert_eq!(c.times_opened(), 1);
    }

    #[test]
    fn failed_probe_reopens_for_another_cooldown() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        for _ in 0..3 {
            c.record_failure(t0, None);
        }
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(c.admit(t1), Admission::Probe);
        c.record_failure(t1, None);
        assert_eq!(c.state(t1 + Duration::from_secs(29)), CircuitState::Open);
        assert_eq!(c.state(t1 + Duration::from_secs(30)), CircuitState::HalfOpen);
        assert_eq!(c.times_opened(), 2);
    }

    #[test]
    fn opens_on_error_ratio_without_a_streak() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        // Alternate: never three failures in a row, but half of the window fails.
        for i in 0..10 {
            if i % 2 == 1 {
                c.record_failure(t0, None);
            } else {
                c.record_success();
            }
        }
        assert_eq!(c.state(t0), CircuitState::Open);
    }

    #[test]
    fn ratio_needs_a_full_window() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        c.record_failure(t0, None);
        c.record_success();
        assert_eq!(c.state(t0), CircuitState::Closed);
    }

    #[test]
    fn retry_after_opens_at_once_and_sets_the_cooldown() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        c.record_failure(t0, Some(Duration::from_secs(120)));
        assert_eq!(c.state(t0 + Duration::from_secs(60)), CircuitState::Open);
        assert_eq!(c.state(t0 + Duration::from_secs(120)), CircuitState::HalfOpen);
    }

    #[test]
    fn released_probe_can_be_taken_again_and_reset_closes() {
        let c = Circuit::new(settings());
        let t0 = Instant::now();
        for _ in 0..3 {
            c.record_failure(t0, None);
        }
        let t1 = t0 + Duration::from_secs(30);
        assert_eq!(c.admit(t1), Admission::Probe);
        c.release_probe();
        assert_eq!(c.admit(t1), Admission::Probe);
        c.reset();
        assert_eq!(c.state(t1), CircuitState::Closed);
        assert!(c.would_admit(t1));
    }
}
