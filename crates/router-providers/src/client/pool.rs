//! Plain-HTTP/1 connections to upstreams, kept open between calls: one thread's pool.
//!
//! It stands where hyper-util's pooled client stood, for the one thing the gateway asks of
//! it: POST to a known address and read the answer on the same thread. That client keys its
//! pool by scheme and authority in hash maps behind a shared lock (three SipHash lookups a
//! request), races a checkout against a lazily built connect, and spawns a task per request
//! to hand the connection back once it is idle again — about 10,000 instructions a request
//! in all (callgrind; BENCHMARKS.md). Here a pool belongs to one thread, an upstream's
//! address is found by comparing a few bytes, and a connection goes back when its answer
//! has been read or dropped.
//!
//! What it keeps from that client: a connect timeout, TCP keep-alive and `TCP_NODELAY`,
//! at most [`POOL_MAX_IDLE`] idle connections an address, idle ones closed after
//! [`POOL_IDLE`], and one more try on another connection when a request could not be sent
//! on a reused one (the upstream closed it while it sat idle: the race every keep-alive
//! client has to answer).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

use super::{POOL_IDLE, POOL_MAX_IDLE, TCP_KEEPALIVE, caused_by_timeout, send_error};
use crate::error::UpstreamError;

type Sender = http1::SendRequest<Full<Bytes>>;

/// One thread's connections, by upstream address.
pub(crate) struct Pool {
    connect_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// A gateway talks to a handful of plain-HTTP addresses: a list beats a map.
    hosts: Vec<Host>,
    /// Whether a task is closing connections idle for longer than [`POOL_IDLE`].
    reaping: bool,
}

struct Host {
    address: Arc<str>,
    /// Oldest first; the most recently used connection is taken first.
    idle: Vec<Idle>,
}

struct Idle {
    sender: Sender,
    since: Instant,
}

/// A connection lent to one request. Dropped once its answer has been read (or dropped), it
/// goes back to its pool; hyper closes it instead if it cannot be used again (an answer not
/// read to the end, `Connection: close`), which the pool notices before lending it again.
pub(crate) struct Lease {
    pool: Arc<Pool>,
    address: Arc<str>,
    sender: Option<Sender>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(sender) = self.sender.take() {
            self.pool.put(&self.address, sender);
        }
    }
}

impl Pool {
    pub(crate) fn new(connect_timeout: Duration) -> Pool {
        Pool { connect_timeout, state: Mutex::new(State::default()) }
    }

    /// Sends `request` (origin-form URI, `Host` set) to `address` (`host:port`) on an idle
    /// connection, or on a new one. Resolves with the response head and the connection its
    /// body arrives on.
    pub(crate) async fn send(
        self: &Arc<Self>,
        address: &Arc<str>,
        mut request: hyper::Request<Full<Bytes>>,
    ) -> Result<(hyper::Response<Incoming>, Lease), UpstreamError> {
        loop {
            let (mut sender, reused) = match self.take(address).await {
                Some(sender) => (sender, true),
                None => (self.connect(address).await?, false),
            };
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = Lease {
                        pool: self.clone(),
                        address: address.clone(),
                        sender: Some(sender),
                    };
                    return Ok((response, lease));
                }
                Err(mut error) => match error.take_message() {
                    // Nothing was written: the connection had closed while it sat idle.
                    Some(unsent) if reused => request = unsent,
                    _ => {
                        let error = error.into_error();
                        return Err(send_error(false, caused_by_timeout(&error), &error));
                    }
                },
            }
        }
    }

    /// An idle connection to `address` that can take a request, if there is one.
    async fn take(&self, address: &str) -> Option<Sender> {
        loop {
            let mut sender = {
                let mut state = self.lock();
                let host = state.hosts.iter_mut().find(|host| &*host.address == address)?;
                let idle = host.idle.pop()?;
                if idle.since.elapsed() >= POOL_IDLE {
                    // The rest are older still.
                    host.idle.clear();
                    return None;
                }
                idle.sender
            };
            if sender.is_ready() {
                return Some(sender);
            }
            // Handed back the moment its answer was read: the connection's task may not have
            // run since to make it ready again, or to find that it has closed.
            let ready = tokio::time::timeout(self.connect_timeout, sender.ready()).await;
            if matches!(ready, Ok(Ok(()))) {
                return Some(sender);
            }
        }
    }

    async fn connect(&self, address: &str) -> Result<Sender, UpstreamError> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(send_error(true, false, &error)),
                Err(elapsed) => return Err(send_error(true, true, &elapsed)),
            };
        // Both are best effort, as hyper-util's connector has them: a socket that refuses
        // them still carries requests.
        let _ = stream.set_nodelay(true);
        let _ =
            SockRef::from(&stream).set_tcp_keepalive(&TcpKeepalive::new().with_time(TCP_KEEPALIVE));
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| send_error(true, false, &error))?;
        // The connection is driven on this thread's runtime, where its requests are made.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream connection ended");
            }
        });
        Ok(sender)
    }

    /// Takes a connection back, unless it has closed or the address has enough idle ones.
    fn put(self: &Arc<Self>, address: &Arc<str>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut state = self.lock();
        let index = match state.hosts.iter().position(|host| host.address == *address) {
            Some(index) => index,
            None => {
                state.hosts.push(Host { address: address.clone(), idle: Vec::new() });
                state.hosts.len() - 1
            }
        };
        let idle = &mut state.hosts[index].idle;
        if idle.len() >= POOL_MAX_IDLE {
            // Dropping the sender of an idle connection closes it.
            return;
        }
        idle.push(Idle { sender, since: Instant::now() });
        if !state.reaping {
            // Outside a runtime (a body dropped on a thread without one) nothing can run
            // later; the connections left idle are closed by the next request that finds
            // them expired, or when the upstream closes them.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                state.reaping = true;
                runtime.spawn(reap(Arc::downgrade(self)));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a list of connections: one left half-updated by a panic is still a
        // list of connections.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn idle(&self, address: &str) -> usize {
        let state = self.lock();
        state.hosts.iter().find(|host| &*host.address == address).map_or(0, |host| host.idle.len())
    }
}

/// Closes connections idle for [`POOL_IDLE`], checking twice in that time, until the pool
/// has none left idle (the next one handed back starts it again) or is gone.
async fn reap(pool: Weak<Pool>) {
    loop {
        tokio::time::sleep(POOL_IDLE / 2).await;
        let Some(pool) = pool.upgrade() else { return };
        let mut state = pool.lock();
        for host in &mut state.hosts {
            host.idle.retain(|idle| idle.since.elapsed() < POOL_IDLE && !idle.sender.is_closed());
        }
        state.hosts.retain(|host| !host.idle.is_empty());
        if state.hosts.is_empty() {
            state.reaping = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper::body::Body as _;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// How the fake upstream answers on each connection.
    #[derive(Clone, Copy)]
    enum Serve {
        /// Every request, keeping the connection open.
        KeepAlive,
        /// One request, then it closes the connection without saying so beforehand.
        OneThenClose,
        /// The head and part of a body that never ends.
        Stalled,
    }

    /// A hand-written HTTP/1 upstream, so that what it does to a connection is exact. Counts
    /// the connections it accepts.
    async fn upstream(serve: Serve) -> (Arc<str>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: Arc<str> = listener.local_addr().unwrap().to_string().into();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    while read_request(&mut stream, &mut buffer).await {
                        match serve {
                            Serve::Stalled => {
                                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart";
                                let _ = stream.write_all(head.as_bytes()).await;
                                // Until the client goes away.
                                let _ = stream.read(&mut [0; 64]).await;
                                return;
                            }
                            Serve::KeepAlive | Serve::OneThenClose => {
                                let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                                if stream.write_all(answer.as_bytes()).await.is_err() {
                                    return;
                                }
                                if matches!(serve, Serve::OneThenClose) {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    /// Reads one request with a `content-length` body; false once the client has gone.
    async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
        loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                if buffer.len() >= end + 4 + length {
                    buffer.drain(..end + 4 + length);
                    return true;
                }
            }
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn request(address: &str) -> hyper::Request<Full<Bytes>> {
        hyper::Request::post("/v1/chat/completions")
            .header(hyper::header::HOST, address)
            .body(Full::new(Bytes::from_static(b"{\"model\":\"m\"}")))
            .unwrap()
    }

    async fn answer(pool: &Arc<Pool>, address: &Arc<str>) -> Bytes {
        let (response, lease) = pool.send(address, request(address)).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        drop(lease);
        body
    }

    #[tokio::test]
    async fn one_connection_carries_requests_one_after_another() {
        let (address, accepted) = upstream(Serve::KeepAlive).await;
        let pool = Arc::new(Pool::new(Duration::from_secs(2)));
        for _ in 0..5 {
            assert_eq!(answer(&pool, &address).await, "ok");
            assert_eq!(pool.idle(&address), 1, "the connection went back once its answer was read");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_in_flight_together_each_get_a_connection_and_all_come_back() {
        let (address, accepted) = upstream(Serve::KeepAlive).await;
        let pool = Arc::new(Pool::new(Duration::from_secs(2)));
        let answers = futures_util::future::join_all((0..4).map(|_| answer(&pool, &address))).await;
        assert!(answers.iter().all(|body| body == "ok"));
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
        assert_eq!(pool.idle(&address), 4);
        // Taken again, not opened again.
        answer(&pool, &address).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_while_idle_is_not_used_again() {
        let (address, accepted) = upstream(Serve::OneThenClose).await;
        let pool = Arc::new(Pool::new(Duration::from_secs(2)));
        // Whether the pool sees the close before lending the connection again or only when
        // the request cannot be sent on it, the caller gets its answer.
        for round in 1..=5 {
            assert_eq!(answer(&pool, &address).await, "ok", "round {round}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn a_body_dropped_before_its_end_takes_its_connection_with_it() {
        let (address, accepted) = upstream(Serve::Stalled).await;
        let pool = Arc::new(Pool::new(Duration::from_secs(2)));
        let (response, lease) = pool.send(&address, request(&address)).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "part");
        assert!(!body.is_end_stream());
        drop((body, lease));

        // The half-read connection cannot carry another request: the next one opens a new
        // connection, and the old one is not kept.
        let (response, lease) = pool.send(&address, request(&address)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        drop((response, lease));
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let address: Arc<str> = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string().into()
        };
        let pool = Arc::new(Pool::new(Duration::from_secs(2)));
        let Err(error) = pool.send(&address, request(&address)).await else {
            panic!("a request to a closed port was answered");
        };
        assert!(matches!(error, UpstreamError::Connect { .. }), "{error:?}");
        assert!(error.to_string().to_lowercase().contains("refused"), "{error}");
    }
}
