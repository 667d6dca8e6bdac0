//! How many calls a deployment may have in flight, and the wait for a free slot.
//!
//! A local model server answers a handful of requests at a time, and a provider account has
//! a concurrency its rate limits allow; sending more only makes every call slower, or turns
//! them into 429s. A deployment with `max_in_flight` set holds that many [`Slot`]s. A call
//! takes one before it starts and gives it back when its answer has been read to the end (a
//! stream: its last event, or the client leaving), so the limit counts what the upstream is
//! actually working on. Waiters are served first come, first served. An operator can
//! change the limit while the gateway runs; calls already in flight are never cut short.
//!
//! Without a limit a slot only counts: the dashboard shows every deployment's calls in
//! flight either way.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::oneshot;

/// One deployment's limit and its calls in flight. The limit can change while the gateway
/// runs (an operator's change from the dashboard).
#[derive(Debug)]
pub struct Capacity {
    shared: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    max: Option<NonZeroU32>,
    in_flight: u32,
    /// Requests waiting for a slot, oldest first. A waiter is sent `()` once a slot has
    /// been counted for it. Whenever the state changes, freed room goes to the queue first,
    /// so room and waiters never coexist (a waiter that gave up stays queued, harmlessly,
    /// until its turn comes and is skipped).
    waiting: VecDeque<oneshot::Sender<()>>,
}

impl State {
    fn has_room(&self) -> bool {
        self.max.is_none_or(|max| self.in_flight < max.get())
    }

    fn serve_waiters(&mut self) {
        while self.has_room() {
            let Some(waiter) = self.waiting.pop_front() else { break };
            self.in_flight += 1;
            if waiter.send(()).is_err() {
                // It stopped waiting.
                self.in_flight -= 1;
            }
        }
    }

    fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.serve_waiters();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state is a counter and a queue, consistent after every statement that holds the
    // lock: a panic elsewhere cannot leave it half-changed.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The right to one call in flight. Dropping it frees the slot for the next waiter.
#[derive(Debug)]
pub struct Slot {
    shared: Arc<Mutex<State>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(&self.shared).release();
    }
}

/// A place in the queue; leaving it before the slot is used gives the slot back.
struct Waiting {
    turn: oneshot::Receiver<()>,
    shared: Arc<Mutex<State>>,
    served: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.served {
            return;
        }
        self.turn.close();
        if self.turn.try_recv().is_ok() {
            // A slot was counted for this waiter after it stopped waiting.
            lock(&self.shared).release();
        }
    }
}

impl Capacity {
    /// `None` for no limit.
    pub fn new(max: Option<NonZeroU32>) -> Self {
        Capacity { shared: Arc::new(Mutex::new(State { max, ..State::default() })) }
    }

    /// The limit, if any.
    pub fn max(&self) -> Option<u32> {
        lock(&self.shared).max.map(NonZeroU32::get)
    }

    /// Changes the limit. More room goes to the waiters at once; less takes effect as calls
    /// in flight finish (none is cut short).
    pub fn set_max(&self, max: Option<NonZeroU32>) {
        let mut state = lock(&self.shared);
        state.max = max;
        state.serve_waiters();
    }

    /// Calls holding a slot now.
    pub fn in_flight(&self) -> u32 {
        lock(&self.shared).in_flight
    }

    /// True when a call could start now without waiting (there is then no queue either).
    pub fn has_room(&self) -> bool {
        lock(&self.shared).has_room()
    }

    /// A slot if one is free now.
    pub fn try_take(&self) -> Option<Slot> {
        let mut state = lock(&self.shared);
        if !state.has_room() {
            return None;
        }
        state.in_flight += 1;
        Some(self.slot())
    }

    /// Waits for a slot, behind every call that started waiting earlier. Cancel-safe:
    /// dropping the future leaves the queue.
    pub async fn take(&self) -> Slot {
        let turn = {
            let mut state = lock(&self.shared);
            if state.has_room() {
                state.in_flight += 1;
                return self.slot();
            }
            let (tx, rx) = oneshot::channel();
            state.waiting.push_back(tx);
            rx
        };
        let mut waiting = Waiting { turn, shared: Arc::clone(&self.shared), served: false };
        // The sender is only dropped unsent by `serve_waiters`, which sends first, or with
        // the whole capacity, which outlives every request.
        let _ = (&mut waiting.turn).await;
        waiting.served = true;
        self.slot()
    }

    fn slot(&self) -> Slot {
        Slot { shared: Arc::clone(&self.shared) }
    }
}

/// A stream that holds a slot until it ends or is dropped, whichever comes first.
pub struct Holding<S> {
    inner: S,
    slot: Option<Slot>,
}

impl<S> Holding<S> {
    pub fn new(inner: S, slot: Slot) -> Self {
        Holding { inner, slot: Some(slot) }
    }
}

impl<S: Stream + Unpin> Stream for Holding<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            // The upstream is done with this call; the client may still be reading.
            self.slot = None;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    fn limited(n: u32) -> Capacity {
        Capacity::new(NonZeroU32::new(n))
    }

    #[test]
    fn a_limit_hands_out_that_many_slots_and_takes_them_back() {
        let capacity = limited(2);
        let a = capacity.try_take().expect("first slot");
        let b = capacity.try_take().expect("second slot");
        assert_eq!(capacity.in_flight(), 2);
        assert!(!capacity.has_room());
        assert!(capacity.try_take().is_none());
        drop(a);
        assert!(capacity.has_room());
        assert_eq!(capacity.in_flight(), 1);
        let _c = capacity.try_take().expect("a freed slot");
        drop(b);
        assert_eq!(capacity.in_flight(), 1);
        assert_eq!(capacity.max(), Some(2));
    }

    #[test]
    fn without_a_limit_slots_only_count() {
        let capacity = Capacity::new(None);
        let slots: Vec<Slot> = (0..1000).map(|_| capacity.try_take().expect("no limit")).collect();
        assert!(capacity.has_room());
        assert_eq!(capacity.in_flight(), 1000);
        assert_eq!(capacity.max(), None);
        drop(slots);
        assert_eq!(capacity.in_flight(), 0);
    }

    #[tokio::test]
    async fn waiters_are_served_in_the_order_they_came() {
        let capacity = Arc::new(limited(1));
        let held = capacity.try_take().expect("the only slot");
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..3 {
            let (capacity, order) = (Arc::clone(&capacity), Arc::clone(&order));
            waiters.push(tokio::spawn(async move {
                let slot = capacity.take().await;
                order.lock().expect("not poisoned").push(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(slot);
            }));
            // Each waiter is queued before the next one starts.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A newcomer does not jump the queue when the slot comes back.
        drop(held);
        assert!(!capacity.has_room());
        assert!(capacity.try_take().is_none());
        for w in waiters {
            w.await.expect("waiter finished");
        }
        assert_eq!(*order.lock().expect("not poisoned"), vec![0, 1, 2]);
        assert_eq!(capacity.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_the_queue() {
        let capacity = limited(1);
        let held = capacity.try_take().expect("the only slot");
        let gave_up = tokio::time::timeout(Duration::from_millis(10), capacity.take()).await;
        assert!(gave_up.is_err());
        drop(held);
        assert!(capacity.has_room(), "the abandoned wait must not keep the slot");
    }

    #[tokio::test]
    async fn a_changed_limit_takes_effect_without_cutting_calls_short() {
        let capacity = Arc::new(limited(1));
        let first = capacity.try_take().expect("the only slot");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let capacity = Arc::clone(&capacity);
                tokio::spawn(async move { capacity.take().await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(capacity.in_flight(), 1);

        // More room goes to the queue at once.
        capacity.set_max(NonZeroU32::new(3));
        assert_eq!(capacity.in_flight(), 3);
        let mut slots = Vec::new();
        for w in waiters.into_iter().take(2) {
            slots.push(w.await.expect("served"));
        }

        // Less room: nothing is cut, and nothing new starts until the count is under it.
        capacity.set_max(NonZeroU32::new(1));
        assert_eq!(capacity.in_flight(), 3);
        assert!(capacity.try_take().is_none());
        drop(first);
        drop(slots.pop());
        assert!(capacity.try_take().is_none(), "one call is still in flight");
        drop(slots);
        // Under the new limit at last: the third waiter, still queued, got that slot.
        assert_eq!(capacity.in_flight(), 1);

        // No limit at all: every waiter goes, and slots only count.
        capacity.set_max(None);
        let all: Vec<Slot> = (0..50).map(|_| capacity.try_take().expect("no limit")).collect();
        assert_eq!(capacity.in_flight(), 51);
        drop(all);
        assert_eq!(capacity.max(), None);
    }

    #[tokio::test]
    async fn lifting_the_limit_frees_every_waiter() {
        let capacity = Arc::new(limited(1));
        let _held = capacity.try_take().expect("the only slot");
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let capacity = Arc::clone(&capacity);
                tokio::spawn(async move { drop(capacity.take().await) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        capacity.set_max(None);
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(1), w)
                .await
                .expect("a waiter was left waiting")
                .expect("finished");
        }
        assert_eq!(capacity.in_flight(), 1);
    }

    #[tokio::test]
    async fn a_waiter_served_as_it_gives_up_hands_the_slot_on() {
        let capacity = Arc::new(limited(1));
        let held = capacity.try_take().expect("the only slot");
        let mut first = Box::pin(capacity.take());
        // Queue it, then give the slot to it without letting it run.
        assert!(futures_util::poll!(&mut first).is_pending());
        let second = {
            let capacity = Arc::clone(&capacity);
            tokio::spawn(async move { capacity.take().await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(held);
        drop(first);
        let slot = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .expect("the slot went on to the next waiter")
            .expect("finished");
        assert_eq!(capacity.in_flight(), 1);
        drop(slot);
        assert_eq!(capacity.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_stream_frees_its_slot_at_its_end_or_when_dropped() {
        let capacity = limited(2);
        let slot = capacity.try_take().expect("slot");
        let mut finished = Holding::new(futures_util::stream::iter([1, 2]), slot);
        assert_eq!(finished.next().await, Some(1));
        assert_eq!(capacity.in_flight(), 1);
        assert_eq!(finished.next().await, Some(2));
        assert_eq!(finished.next().await, None);
        assert_eq!(capacity.in_flight(), 0, "freed at the end, before the stream is dropped");

        let slot = capacity.try_take().expect("slot");
        let abandoned = Holding::new(futures_util::stream::iter([1, 2]), slot);
        assert_eq!(capacity.in_flight(), 1);
        drop(abandoned);
        assert_eq!(capacity.in_flight(), 0);
    }
}
