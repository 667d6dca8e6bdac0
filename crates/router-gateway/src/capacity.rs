//! How many calls a deployment may have in flight, and the wait for a free slot.
//!
//! A local model server answers a handful of requests at a time, and a provider account has
//! a concurrency its rate limits allow; sending more only makes every call slower, or turns
//! them into 429s. A deployment with `max_in_flight` set holds that many [`Slot`]s. A call
//! takes one before it starts and gives it back when its answer has been read to the end (a
//! stream: its last event, or the client leaving), so the limit counts what the upstream is
//! actually working on. Waiters are served first come, first served.
//!
//! Without a limit a slot only counts: the dashboard shows every deployment's calls in
//! flight either way.

use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One deployment's limit and count of calls in flight.
#[derive(Debug)]
pub struct Capacity {
    limit: Option<Limit>,
    in_flight: Arc<AtomicU32>,
}

#[derive(Debug)]
struct Limit {
    max: NonZeroU32,
    slots: Arc<Semaphore>,
}

/// The right to one call in flight. Dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    in_flight: Arc<AtomicU32>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Capacity {
    /// `None` for no limit.
    pub fn new(max: Option<NonZeroU32>) -> Self {
        Capacity {
            limit: max
                .map(|max| Limit { max, slots: Arc::new(Semaphore::new(max.get() as usize)) }),
            in_flight: Arc::default(),
        }
    }

    /// The configured limit, if any.
    pub fn max(&self) -> Option<u32> {
        self.limit.as_ref().map(|l| l.max.get())
    }

    /// Calls holding a slot now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// True when a call could start now without waiting. Released slots go to waiters
    /// before anyone else, so a deployment with a queue never looks as if it had room.
    pub fn has_room(&self) -> bool {
        self.limit.as_ref().is_none_or(|l| l.slots.available_permits() > 0)
    }

    /// A slot if one is free now.
    pub fn try_take(&self) -> Option<Slot> {
        let permit = match &self.limit {
            Some(l) => Some(Arc::clone(&l.slots).try_acquire_owned().ok()?),
            None => None,
        };
        Some(self.slot(permit))
    }

    /// Waits for a slot, behind every call that started waiting earlier. Cancel-safe:
    /// dropping the future leaves the queue.
    pub async fn take(&self) -> Slot {
        let permit = match &self.limit {
            // The semaphore is never closed, so acquiring only ever waits.
            Some(l) => Arc::clone(&l.slots).acquire_owned().await.ok(),
            None => None,
        };
        self.slot(permit)
    }

    fn slot(&self, permit: Option<OwnedSemaphorePermit>) -> Slot {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Slot { _permit: permit, in_flight: Arc::clone(&self.in_flight) }
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
