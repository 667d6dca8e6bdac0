//! How many questions the judge is sent at once: at most `judge.max_in_flight`, and fewer
//! while its answers show that it cannot keep up.
//!
//! A local model answers a few questions at a time and queues the rest. A question queued
//! too deep outlives its budget, and the request it belongs to has waited for nothing; the
//! right number in flight is what the judge answers within the budget, which depends on its
//! hardware, its model and its server's parallelism. So the allowance paces itself the way
//! TCP paces a connection: a question that outlives its budget halves it; a window of answers
//! (as many as the allowance) that all came back within half the budget raises it by one, up
//! to the configured maximum. An answer slower than that holds it where it is: the judge is
//! queueing already, and one more question would only wait longer.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Debug)]
pub(super) struct Limit {
    max: u32,
    /// The allowance now, in `1..=max`.
    allowed: AtomicU32,
    in_flight: AtomicU32,
    /// Quick answers since the allowance last changed or an answer was slow.
    quick: AtomicU32,
    /// An answer within this is quick.
    quick_within: Duration,
}

impl Limit {
    /// A limit of `max` questions at once, starting at `max`, for a judge whose answers are
    /// worth waiting `budget` for.
    pub(super) fn new(max: NonZeroU32, budget: Duration) -> Limit {
        Limit {
            max: max.get(),
            allowed: AtomicU32::new(max.get()),
            in_flight: AtomicU32::new(0),
            quick: AtomicU32::new(0),
            quick_within: budget / 2,
        }
    }

    /// A place for one question, if fewer than the allowance are out.
    pub(super) fn try_take(&self) -> Option<Slot<'_>> {
        let allowed = self.allowed.load(Ordering::Acquire);
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < allowed).then_some(n + 1))
            .ok()
            .map(|before| Slot { limit: self, alone: before == 0 })
    }

    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub(super) fn allowed(&self) -> u32 {
        self.allowed.load(Ordering::Relaxed)
    }

    pub(super) fn max(&self) -> u32 {
        self.max
    }

    fn answered(&self, latency: Duration) {
        if latency > self.quick_within {
            self.quick.store(0, Ordering::Relaxed);
            return;
        }
        let quick = self.quick.fetch_add(1, Ordering::AcqRel) + 1;
        let allowed = self.allowed.load(Ordering::Acquire);
        if quick >= allowed && allowed < self.max {
            // Of answers racing here, one raises the allowance; the rest find it raised.
            if self
                .allowed
                .compare_exchange(allowed, allowed + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.quick.store(0, Ordering::Release);
            }
        }
    }

    fn timed_out(&self) {
        self.quick.store(0, Ordering::Relaxed);
        let _ = self
            .allowed
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| Some((n / 2).max(1)));
    }
}

/// One question out; its place is given back when it is dropped, whether or not it was told
/// how the question went.
#[derive(Debug)]
pub(super) struct Slot<'a> {
    limit: &'a Limit,
    /// No other question was out when this one was sent.
    alone: bool,
}

impl Slot<'_> {
    /// The judge answered (validly or not) after `latency`.
    pub(super) fn answered(self, latency: Duration) {
        self.limit.answered(latency);
    }

    /// The question outlived its budget. Returns whether it had the judge to itself — then
    /// the judge is too slow or not answering, not merely sent too much.
    pub(super) fn timed_out(self) -> bool {
        self.limit.timed_out();
        self.alone
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.limit.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Duration = Duration::from_millis(1_000);
    const QUICK: Duration = Duration::from_millis(200);
    const SLOW: Duration = Duration::from_millis(800);

    fn limit(max: u32) -> Limit {
        Limit::new(NonZeroU32::new(max).unwrap(), BUDGET)
    }

    #[test]
    fn places_are_taken_up_to_the_allowance_and_given_back() {
        let limit = limit(2);
        let a = limit.try_take().unwrap();
        let b = limit.try_take().unwrap();
        assert!(limit.try_take().is_none());
        assert_eq!(limit.in_flight(), 2);
        drop(a);
        let c = limit.try_take().unwrap();
        b.answered(QUICK);
        assert!(!c.timed_out(), "it was sent while another was out");
        assert_eq!(limit.in_flight(), 0);
        assert!(limit.try_take().unwrap().timed_out(), "alone");
    }

    #[test]
    fn a_timeout_halves_the_allowance_down_to_one() {
        let limit = limit(8);
        for expected in [4, 2, 1, 1] {
            limit.try_take().unwrap().timed_out();
            assert_eq!(limit.allowed(), expected);
        }
        let one = limit.try_take().unwrap();
        assert!(limit.try_take().is_none(), "one question at a time now");
        drop(one);
    }

    #[test]
    fn a_window_of_quick_answers_raises_it_by_one_up_to_the_maximum() {
        let limit = limit(4);
        limit.try_take().unwrap().timed_out();
        assert_eq!(limit.allowed(), 2);
        limit.try_take().unwrap().answered(QUICK);
        assert_eq!(limit.allowed(), 2, "one quick answer is not a window of two");
        limit.try_take().unwrap().answered(QUICK);
        assert_eq!(limit.allowed(), 3);
        for _ in 0..3 {
            limit.try_take().unwrap().answered(QUICK);
        }
        assert_eq!(limit.allowed(), 4);
        for _ in 0..10 {
            limit.try_take().unwrap().answered(QUICK);
        }
        assert_eq!(limit.allowed(), 4, "never past the maximum");
    }

    #[test]
    fn a_slow_answer_holds_the_allowance() {
        let limit = limit(4);
        limit.try_take().unwrap().timed_out();
        limit.try_take().unwrap().answered(QUICK);
        limit.try_take().unwrap().answered(SLOW);
        limit.try_take().unwrap().answered(QUICK);
        assert_eq!(limit.allowed(), 2, "the slow answer restarted the window");
        limit.try_take().unwrap().answered(QUICK);
        assert_eq!(limit.allowed(), 3);
    }

    #[test]
    fn a_place_dropped_untold_changes_nothing_but_the_count() {
        let limit = limit(3);
        drop(limit.try_take().unwrap());
        assert_eq!((limit.allowed(), limit.in_flight()), (3, 0));
    }
}
