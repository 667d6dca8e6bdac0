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
//! when the CPU would otherwise sit idle. BENCHMARKS.md has both sides measured.

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

/// What one serving thread's poller reads and its connections write.
struct Activity {
    last: Cell<Instant>,
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
        resting: Cell::new(false),
        quiet_until: Cell::new(Instant::now()),
        wake: Arc::new(Notify::new()),
        polls: Cell::new(0),
    };
}

/// Marks this thread as active now, waking its poller if it was resting and is not backing
/// off.
fn mark_active() {
    ACTIVITY.with(|a| {
        let now = Instant::now();
        a.last.set(now);
        if a.resting.get() && now >= a.quiet_until.get() {
            a.resting.set(false);
            a.wake.notify_one();
        }
    });
}

/// Starts the poller on the current thread's runtime: it keeps the thread polling for I/O
/// until `window` has passed since the last activity on a [`Watched`] connection. The task
/// ends with the runtime.
///
/// Meant for a current-thread runtime that owns the thread (a serving thread): the activity
/// it watches is that thread's.
pub(crate) fn spawn_poller(window: Duration) {
    let wake = ACTIVITY.with(|a| a.wake.clone());
    tokio::spawn(async move {
        let mut contended = false;
        loop {
            let idle = ACTIVITY.with(|a| a.last.get().elapsed());
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
