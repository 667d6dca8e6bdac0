//! Busy polling on the serving threads (`server.busy_poll_us`): for a set time after a
//! client connection's last read or write, a serving thread keeps checking for I/O instead
//! of going to sleep in the kernel.
//!
//! Why it pays: a thread asleep in `epoll_wait` is woken by the packet that ends its wait,
//! and on a virtual machine, or a CPU with deep idle states, the CPU it sleeps on goes idle
//! too and has to be woken first — tens to hundreds of microseconds, paid twice a request
//! (when the client's request arrives and when the upstream answers). Polling through those
//! gaps keeps the CPU awake. The price is the CPU time spent polling: up to a whole core per
//! serving thread while traffic flows, none once it stops. HAProxy offers the same trade
//! (`busy-polling`); as there, it is off unless asked for.
//!
//! How: [`Watched`] wraps each client connection and marks the thread active whenever a read
//! or a write on it completes. [`spawn_poller`] starts a task on the serving thread's own
//! runtime that, while the last activity is more recent than the window, only yields — to
//! other threads on the CPU (`sched_yield`), then to the runtime. A yielding task makes
//! Tokio's current-thread scheduler check for I/O without blocking before it runs the task
//! again, so ready sockets are seen at once. Once the window has passed with nothing done,
//! the task waits to be woken by the next activity, and the thread sleeps as usual.
//!
//! Where the cores are shared — with the upstream, a load generator, other services — polling
//! takes CPU time they could use. So when a yield hands the CPU to another thread for more
//! than a quick turn, the poller stops and stays out of the way for a while: it polls only
//! when the CPU would otherwise sit idle. And polling through a gap longer than the window
//! buys nothing, so the window adapts to the gaps the poller rests through, as a guest's
//! halt-polling governor does ([`adapt`]): at a moderate rate spread over the threads, where
//! each thread's requests come far apart, it shrinks to nothing, and the thread sleeps as
//! without polling. BENCHMARKS.md has both sides measured.

use std::cell::Cell;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// A yield to other threads that takes longer than this gave the CPU to one of them for
/// more than a quick turn (a bare `sched_yield` takes a microsecond or two). Counting every
/// short turn as contention would give up the polling at one client too, where the load
/// generator and the upstream take such turns on every request; 20 µs did, 100 µs keeps it.
const CONTENDED: Duration = Duration::from_micros(100);

/// How long the poller stays out of the way after it found the CPU wanted (10 ms cost the
/// one-client gain; 2 ms kept it and left 16 clients' throughput as without polling).
const BACK_OFF: Duration = Duration::from_millis(2);

/// Where an adapting window starts again once it has shrunk to nothing (the window never
/// exceeds the configured one).
const GROW_START: Duration = Duration::from_micros(50);

/// Below this a shrinking window is dropped to nothing: so short a poll catches little.
const SHRINK_FLOOR: Duration = Duration::from_micros(10);

/// What one serving thread's poller reads and its connections write.
struct Activity {
    last: Cell<Instant>,
    /// The configured window: the longest the poller polls after activity.
    max: Cell<Duration>,
    /// The window it polls for now, adapted to the gaps between activities (see
    /// [`adapt`]).
    window: Cell<Duration>,
    /// True while the poller waits for activity rather than polling.
    resting: Cell<bool>,
    /// Activity before this does not wake the poller (it backs off from a busy CPU).
    quiet_until: Cell<Instant>,
    wake: Arc<Notify>,
    /// Times the poller has yielded to the scheduler (what the tests watch).
    polls: Cell<u64>,
}

thread_local! {
    static ACTIVITY: Activity = Activity {
        last: Cell::new(Instant::now()),
        max: Cell::new(Duration::ZERO),
        window: Cell::new(Duration::ZERO),
        resting: Cell::new(false),
        quiet_until: Cell::new(Instant::now()),
        wake: Arc::new(Notify::new()),
        polls: Cell::new(0),
    };
}

/// Marks this thread as active now, waking its poller if it was resting and is not backing
/// off. Activity that ends a rest also adapts the window to the gap it ended.
fn mark_active() {
    ACTIVITY.with(|a| {
        let now = Instant::now();
        if a.resting.get() {
            let gap = now.saturating_duration_since(a.last.get());
            a.window.set(adapt(a.window.get(), a.max.get(), gap));
        }
        a.last.set(now);
        if a.resting.get() && now >= a.quiet_until.get() {
            a.resting.set(false);
            a.wake.notify_one();
        }
    });
}

/// The next polling window after the poller rested through a gap of `gap` between two
/// activities, as a halt-polling governor adapts its window: a gap a longer poll (up to
/// `max`) would have covered doubles the window; a gap no poll would have covered halves it,
/// down to nothing. So a thread whose next request comes soon after its last polls through
/// the wait, and one whose requests come far apart (a moderate rate spread over threads,
/// where polling only takes CPU others could use) stops polling.
fn adapt(window: Duration, max: Duration, gap: Duration) -> Duration {
    if gap > max {
        let half = window / 2;
        if half < SHRINK_FLOOR { Duration::ZERO } else { half }
    } else if gap > window {
        (window * 2).max(GROW_START).min(max)
    } else {
        window
    }
}

/// Starts the poller on the current thread's runtime: it keeps the thread polling for I/O
/// until the window has passed since the last activity on a [`Watched`] connection — at
/// most `window`, less while the gaps between activities are longer ([`adapt`]). The task
/// ends with the runtime.
///
/// Meant for a current-thread runtime that owns the thread (a serving thread): the activity
/// it watches is that thread's.
pub(crate) fn spawn_poller(window: Duration) {
    let wake = ACTIVITY.with(|a| {
        a.max.set(window);
        a.window.set(window);
        a.wake.clone()
    });
    tokio::spawn(async move {
        let mut contended = false;
        loop {
            let (idle, window) = ACTIVITY.with(|a| (a.last.get().elapsed(), a.window.get()));
            if idle < window && !contended {
                ACTIVITY.with(|a| a.polls.set(a.polls.get() + 1));
                // Any other thread waiting for this CPU gets it first. If one did, the CPU is
                // wanted, and polling is only worth the time nobody else wants: back off.
                let yielded = Instant::now();
                std::thread::yield_now();
                contended = yielded.elapsed() > CONTENDED;
                tokio::task::yield_now().await;
            } else {
                ACTIVITY.with(|a| {
                    a.resting.set(true);
                    if contended {
                        a.quiet_until.set(Instant::now() + BACK_OFF);
                    }
                });
                contended = false;
                wake.notified().await;
            }
        }
    });
}

/// A client connection whose reads and writes count as activity for the poller, when
/// `watched` is set (busy polling on); otherwise it only passes through.
pub(crate) struct Watched<T> {
    io: T,
    watched: bool,
}

impl<T> Watched<T> {
    pub(crate) fn new(io: T, watched: bool) -> Self {
        Watched { io, watched }
    }

    fn done<R>(&self, poll: Poll<R>) -> Poll<R> {
        if self.watched && poll.is_ready() {
            mark_active();
        }
        poll
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.io).poll_read(cx, buf);
        self.done(poll)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write(cx, buf);
        self.done(poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.done(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn polls() -> u64 {
        ACTIVITY.with(|a| a.polls.get())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn the_poller_polls_after_activity_then_rests_until_the_next() {
        runtime().block_on(async {
            spawn_poller(Duration::from_millis(20));
            let (client, server) = tokio::io::duplex(64);
            let (mut client, mut server) = (client, Watched::new(server, true));

            client.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            server.read_exact(&mut got).await.unwrap();
            // Sleeping lets the scheduler run the poller, which spins until the window ends.
            tokio::time::sleep(Duration::from_millis(5)).await;
            let during = polls();
            assert!(during > 0, "the poller did not poll after a read");

            tokio::time::sleep(Duration::from_millis(60)).await;
            let rested = polls();
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert_eq!(polls(), rested, "the poller kept polling after its window");

            server.write_all(b"pong").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert!(polls() > rested, "a write did not wake the poller");
        });
    }

    #[test]
    fn the_window_follows_the_gaps_it_rests_through() {
        let max = Duration::from_micros(200);
        let us = Duration::from_micros;
        // A gap longer than the whole window: no poll would have covered it.
        assert_eq!(adapt(max, max, us(1_000)), us(100));
        assert_eq!(adapt(us(100), max, us(1_000)), us(50));
        assert_eq!(adapt(us(15), max, us(1_000)), Duration::ZERO, "too short a window is dropped");
        assert_eq!(adapt(Duration::ZERO, max, us(1_000)), Duration::ZERO);
        // A gap a longer poll would have covered: the window grows, from a start if it had
        // none, never past the configured one.
        assert_eq!(adapt(Duration::ZERO, max, us(80)), GROW_START);
        assert_eq!(adapt(us(50), max, us(80)), us(100));
        assert_eq!(adapt(us(150), max, us(180)), max);
        // A gap the window already covers leaves it as it is (the poller rested for
        // another reason, such as backing off from a wanted CPU).
        assert_eq!(adapt(us(100), max, us(80)), us(100));
        // A window configured shorter than the grow start never grows past it.
        assert_eq!(adapt(Duration::ZERO, us(30), us(20)), us(30));
    }

    #[test]
    fn far_apart_activity_stops_the_polling() {
        runtime().block_on(async {
            spawn_poller(Duration::from_millis(4));
            let (mut client, server) = tokio::io::duplex(64);
            let mut server = Watched::new(server, true);
            let mut got = [0u8; 4];
            // Each gap is far longer than the window: it halves after each, 4 ms → 2 → 1 →
            // 0.5 → … → nothing.
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                client.write_all(b"ping").await.unwrap();
                server.read_exact(&mut got).await.unwrap();
            }
            assert_eq!(ACTIVITY.with(|a| a.window.get()), Duration::ZERO);
            let before = polls();
            tokio::time::sleep(Duration::from_millis(10)).await;
            client.write_all(b"ping").await.unwrap();
            server.read_exact(&mut got).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(polls(), before, "the poller polled with a window of nothing");
        });
    }

    #[test]
    fn unwatched_connections_leave_the_poller_resting() {
        runtime().block_on(async {
            spawn_poller(Duration::from_millis(10));
            tokio::time::sleep(Duration::from_millis(30)).await;
            let rested = polls();
            let (mut client, server) = tokio::io::duplex(64);
            let mut server = Watched::new(server, false);
            client.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(polls(), rested);
        });
    }
}
