//! The HTTP client every upstream call goes through: keep-alive pools, a connect timeout, no
//! redirects (an API that redirects a POST is misconfigured), and deliberately no overall
//! timeout, which would cut long generations short — [`Upstream`](crate::Upstream) applies
//! its own per phase.
//!
//! Each thread that sends through an [`HttpClient`] gets connection pools of its own. A
//! pooled HTTP/1 connection is driven by a task on the runtime that opened it; when a request
//! running on one thread borrows a connection opened by another, every request and every
//! response crosses between the two threads, and a crossing may have to wake a parked one.
//! With pools per thread — and the gateway serving a runtime per thread — a request and its
//! connection stay on one thread.
//!
//! Two clients sit under it. `https` upstreams (the hosted providers) go through reqwest,
//! for its TLS set-up and the platform's certificate store. Plain `http` upstreams (Ollama,
//! vLLM and other servers on the same host or network) go straight to hyper's HTTP/1
//! connections, pooled here ([`pool`]): reqwest adds a redirect layer, a URL-to-URI
//! conversion and a parse of the URL back on every call, about 28,000 instructions a request
//! that a gateway in front of a local model pays for nothing, and hyper-util's pooled client
//! under it some 10,000 more (measured with callgrind; BENCHMARKS.md). When the environment
//! names an HTTP proxy, plain HTTP goes through reqwest too, which honours it.

use std::cell::RefCell;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::error::{TimeoutPhase, UpstreamError};

mod pool;

use pool::{Lease, Pool};

/// How long an idle pooled connection is kept.
pub const POOL_IDLE: Duration = Duration::from_secs(90);
/// How many idle connections to one upstream a thread keeps; more are closed as they come
/// back. An overload leaves thousands of connections behind it (each stream that queued
/// opened one), about 30 KB each, and without a cap they would stay for [`POOL_IDLE`]; this
/// many still covers the requests one thread has in flight at a time in steady traffic.
pub const POOL_MAX_IDLE: usize = 128;
/// TCP keep-alive probes on upstream connections, so a dead peer is noticed.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
const USER_AGENT: &str = concat!("llm-router/", env!("CARGO_PKG_VERSION"));

/// A cheap-to-clone handle on the per-thread clients sharing one configuration.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    connect_timeout: Duration,
    /// Plain-HTTP upstreams take the direct client; not when the environment names a proxy
    /// for them, which reqwest honours (with `NO_PROXY`) and the direct client would not.
    direct_http: bool,
    /// Used where no thread-local client can be had (a thread being torn down, or a client
    /// that failed to build, which the first one here proved it would not).
    first: Clients,
}

/// One thread's clients.
#[derive(Clone)]
struct Clients {
    /// For `https` upstreams and for every other caller.
    tls: reqwest::Client,
    plain: Arc<Pool>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("connect_timeout", &self.shared.connect_timeout)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// This thread's clients for each live [`HttpClient`], found by the address of its shared
    /// part; the `Weak` keeps that address from being reused while the entry exists.
    static LOCAL: RefCell<Vec<(Weak<Shared>, Clients)>> = const { RefCell::new(Vec::new()) };
}

/// Where an upstream's requests go: its URL and, for plain HTTP, the same as the address,
/// path and `Host` header the direct client takes, worked out once rather than on every
/// call.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    url: Url,
    plain: Option<Plain>,
}

#[derive(Debug, Clone)]
struct Plain {
    /// `host:port`, as the pool finds its connections and opens new ones.
    address: Arc<str>,
    /// The request target in origin form (`/v1/chat/completions`), as HTTP/1 sends it.
    path: hyper::Uri,
    host: HeaderValue,
}

impl Target {
    pub(crate) fn new(url: Url) -> Target {
        // A URL hyper would not take as a URI (none the url crate accepts, in practice)
        // still works through reqwest.
        let plain = (url.scheme() == "http")
            .then(|| {
                let uri: hyper::Uri = url.as_str().parse().ok()?;
                let authority = uri.authority()?;
                let host = HeaderValue::from_str(authority.as_str()).ok()?;
                let port = authority.port_u16().unwrap_or(80);
                let address = format!("{}:{port}", authority.host()).into();
                let path = uri.path_and_query()?.as_str().parse().ok()?;
                Some(Plain { address, path, host })
            })
            .flatten();
        Target { url, plain }
    }

    pub(crate) fn url(&self) -> &Url {
        &self.url
    }
}

impl HttpClient {
    /// Builds the first clients, so that a configuration the HTTP stack rejects fails here.
    pub fn new(connect_timeout: Duration) -> reqwest::Result<HttpClient> {
        let first = build(connect_timeout)?;
        let direct_http = !proxy_configured(|name| std::env::var_os(name));
        let shared = Shared { connect_timeout, direct_http, first };
        let client = HttpClient { shared: Arc::new(shared) };
        let _ = LOCAL.try_with(|local| {
            insert(&mut local.borrow_mut(), &client.shared, client.shared.first.clone())
        });
        Ok(client)
    }

    /// The calling thread's reqwest client, for calls other than an upstream's own (the
    /// judge, health checks), which may go anywhere.
    pub fn local(&self) -> reqwest::Client {
        self.clients().tls
    }

    /// Builds the calling thread's clients now rather than on its first request. Building
    /// one loads the platform's root certificates, several milliseconds that a server's
    /// first request on each thread would otherwise wait for.
    pub fn prepare_this_thread(&self) {
        self.clients();
    }

    /// The clients for the calling thread, built on their first use there.
    fn clients(&self) -> Clients {
        let key = Arc::as_ptr(&self.shared);
        LOCAL
            .try_with(|local| {
                let mut local = local.borrow_mut();
                if let Some((_, clients)) = local.iter().find(|(owner, _)| owner.as_ptr() == key) {
                    return clients.clone();
                }
                let clients = build(self.shared.connect_timeout)
                    .unwrap_or_else(|_| self.shared.first.clone());
                insert(&mut local, &self.shared, clients.clone());
                clients
            })
            .unwrap_or_else(|_| self.shared.first.clone())
    }

    /// POSTs `body` to `target` with `headers` (which must name the content type). Resolves
    /// with the response head; the body is read from the [`Reply`].
    pub(crate) async fn post(
        &self,
        target: &Target,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<Reply, UpstreamError> {
        let clients = self.clients();
        let plain = target.plain.as_ref().filter(|_| self.shared.direct_http);
        let Some(plain) = plain else {
            let response = clients
                .tls
                .post(target.url.clone())
                .headers(headers.clone())
                .body(body)
                .send()
                .await
                .map_err(|error| send_error(error.is_connect(), error.is_timeout(), &error))?;
            let status = response.status();
            return Ok(Reply { status, body: ReplyBody::Tls(response) });
        };
        let mut request = hyper::Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = hyper::Method::POST;
        *request.uri_mut() = plain.path.clone();
        let head = request.headers_mut();
        head.reserve(headers.len() + 2);
        head.insert(hyper::header::HOST, plain.host.clone());
        head.insert(hyper::header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        for (name, value) in headers {
            head.insert(name, value.clone());
        }
        let (response, lease) = clients.plain.send(&plain.address, request).await?;
        Ok(Reply { status: response.status(), body: ReplyBody::Plain(response, lease) })
    }
}

/// Whether the environment names a proxy for plain-HTTP requests (as reqwest reads it).
fn proxy_configured(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
        .into_iter()
        .any(|name| var(name).is_some_and(|value| !value.is_empty()))
}

/// Types a failure to get a response head: nothing usable was received.
fn send_error(
    connect: bool,
    timeout: bool,
    error: &(dyn std::error::Error + 'static),
) -> UpstreamError {
    if out_of_descriptors(error) {
        UpstreamError::NoDescriptors { message: describe(error) }
    } else if connect && timeout {
        UpstreamError::Timeout { phase: TimeoutPhase::Connect }
    } else if timeout {
        UpstreamError::Timeout { phase: TimeoutPhase::FirstByte }
    } else {
        // Refused, reset, DNS, TLS.
        UpstreamError::Connect { message: describe(error) }
    }
}

fn caused_by_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    caused_by_io(error, |e| e.kind() == std::io::ErrorKind::TimedOut)
}

/// The socket could not be created: `EMFILE` (the process's limit) or `ENFILE` (the
/// system's), 24 and 23 on Linux and the BSDs alike.
fn out_of_descriptors(error: &(dyn std::error::Error + 'static)) -> bool {
    caused_by_io(error, |e| matches!(e.raw_os_error(), Some(23 | 24)))
}

fn caused_by_io(
    error: &(dyn std::error::Error + 'static),
    is: impl Fn(&std::io::Error) -> bool,
) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if cause.downcast_ref::<std::io::Error>().is_some_and(&is) {
            return true;
        }
        source = cause.source();
    }
    false
}

/// An error with its causes, which is where the useful part ("connection refused") is.
/// Only the URL and the causes appear: neither client's errors carry headers.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// A response whose head has arrived; its body is still to be read.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    body: ReplyBody,
}

enum ReplyBody {
    Tls(reqwest::Response),
    /// With the connection it arrives on, which goes back to its pool when the body has
    /// been read or dropped.
    Plain(hyper::Response<Incoming>, Lease),
}

/// A response body as it arrives; an error is described in words.
pub(crate) type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

impl Reply {
    pub(crate) fn headers(&self) -> &HeaderMap {
        match &self.body {
            ReplyBody::Tls(response) => response.headers(),
            ReplyBody::Plain(response, _) => response.headers(),
        }
    }

    /// The whole body.
    pub(crate) async fn bytes(self) -> Result<Bytes, String> {
        match self.body {
            ReplyBody::Tls(response) => response.bytes().await.map_err(|e| describe(&e)),
            ReplyBody::Plain(response, lease) => {
                let collected = response.into_body().collect().await.map_err(|e| describe(&e))?;
                drop(lease);
                Ok(collected.to_bytes())
            }
        }
    }

    /// The body as a stream of chunks as they arrive; dropping it closes the connection.
    pub(crate) fn into_stream(self) -> ByteStream {
        match self.body {
            ReplyBody::Tls(response) => {
                Box::pin(response.bytes_stream().map_err(|error| describe(&error)))
            }
            ReplyBody::Plain(response, lease) => {
                Box::pin(PlainStream { body: response.into_body(), lease: Some(lease) })
            }
        }
    }
}

/// A plain-HTTP body as a stream of its data, holding its connection until the body ends.
struct PlainStream {
    body: Incoming,
    lease: Option<Lease>,
}

impl Stream for PlainStream {
    type Item = Result<Bytes, String>;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        loop {
            return match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    // Trailers carry nothing the gateway reads.
                    Err(_) => continue,
                },
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(describe(&error)))),
                Poll::Ready(None) => {
                    // Read to the end: the connection can take the next request now, not
                    // when the caller gets round to dropping the stream.
                    self.lease = None;
                    Poll::Ready(None)
                }
            };
        }
    }
}

/// Adds a thread's clients, dropping the entries of clients dropped since (a gateway that
/// stopped).
fn insert(local: &mut Vec<(Weak<Shared>, Clients)>, owner: &Arc<Shared>, clients: Clients) {
    local.retain(|(owner, _)| owner.strong_count() > 0);
    local.push((Arc::downgrade(owner), clients));
}

fn build(connect_timeout: Duration) -> reqwest::Result<Clients> {
    let tls = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .tcp_keepalive(TCP_KEEPALIVE)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()?;
    Ok(Clients { tls, plain: Arc::new(Pool::new(connect_timeout)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that wraps another, as the HTTP clients' errors wrap the socket's.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_gateway_out_of_sockets_is_told_apart_from_an_unreachable_upstream() {
        for errno in [23, 24] {
            let error = Wrapped(std::io::Error::from_raw_os_error(errno));
            let typed = send_error(true, false, &error);
            assert!(matches!(typed, UpstreamError::NoDescriptors { .. }), "{typed:?}");
            assert!(!typed.counts_against_deployment());
        }
        let refused = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let typed = send_error(true, false, &refused);
        assert!(matches!(typed, UpstreamError::Connect { .. }), "{typed:?}");
        assert!(typed.counts_against_deployment());
        let slow = Wrapped(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(matches!(
            send_error(true, caused_by_timeout(&slow), &slow),
            UpstreamError::Timeout { phase: TimeoutPhase::Connect }
        ));
    }

    fn entries() -> usize {
        LOCAL.with(|local| local.borrow().len())
    }

    #[test]
    fn one_client_per_thread_and_none_kept_for_dropped_handles() {
        // Each test runs on a thread of its own, so this thread's table starts empty.
        let client = HttpClient::new(Duration::from_secs(1)).unwrap();
        client.local();
        client.clone().local();
        assert_eq!(entries(), 1, "the creating thread reuses the first client");

        let other = client.clone();
        let on_other_thread = std::thread::spawn(move || {
            other.local();
            other.local();
            entries()
        })
        .join()
        .unwrap();
        assert_eq!(on_other_thread, 1, "another thread builds one client of its own");

        let prepared = client.clone();
        let after_preparing = std::thread::spawn(move || {
            prepared.prepare_this_thread();
            let once = entries();
            prepared.local();
            (once, entries())
        })
        .join()
        .unwrap();
        assert_eq!(after_preparing, (1, 1), "preparing builds the thread's client, used later");

        drop(client);
        let second = HttpClient::new(Duration::from_secs(1)).unwrap();
        second.local();
        assert_eq!(entries(), 1, "the dropped handle's client went when the next one came");
    }

    #[test]
    fn a_proxy_in_the_environment_keeps_plain_http_on_reqwest() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter().find(|(n, _)| *n == name).map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!proxy_configured(env(&[])));
        assert!(!proxy_configured(env(&[("HTTP_PROXY", ""), ("HTTPS_PROXY", "http://p:3128")])));
        assert!(proxy_configured(env(&[("http_proxy", "http://p:3128")])));
        assert!(proxy_configured(env(&[("ALL_PROXY", "socks5://p:1080")])));
    }

    #[test]
    fn plain_http_targets_take_the_direct_client_and_https_ones_reqwest() {
        let plain = Target::new(Url::parse("http://127.0.0.1:8000/v1/chat/completions").unwrap());
        assert_eq!(
            plain.plain.as_ref().map(|p| (&*p.address, p.path.to_string(), p.host.clone())),
            Some((
                "127.0.0.1:8000",
                "/v1/chat/completions".into(),
                "127.0.0.1:8000".parse().unwrap()
            ))
        );
        // Without a port, HTTP's own; a query stays on the path.
        let bare = Target::new(Url::parse("http://ollama/api/chat?x=1").unwrap());
        assert_eq!(
            bare.plain.as_ref().map(|p| (&*p.address, p.path.to_string(), p.host.clone())),
            Some(("ollama:80", "/api/chat?x=1".into(), "ollama".parse().unwrap()))
        );
        // An IPv6 literal keeps its brackets, as a socket address is written.
        let v6 = Target::new(Url::parse("http://[::1]:11434/api/chat").unwrap());
        assert_eq!(v6.plain.as_ref().map(|p| &*p.address), Some("[::1]:11434"));
        let tls = Target::new(Url::parse("https://api.openai.com/v1/chat/completions").unwrap());
        assert!(tls.plain.is_none());
    }
}
