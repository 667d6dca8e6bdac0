//! The HTTP client every upstream call goes through: keep-alive pools, a connect timeout, no
//! redirects (an API that redirects a POST is misconfigured), and deliberately no overall
//! timeout, which would cut long generations short — [`Upstream`](crate::Upstream) applies
//! its own per phase.
//!
//! Each thread that sends through an [`HttpClient`] gets a connection pool of its own. A
//! pooled HTTP/1 connection is driven by a task on the runtime that opened it; when a request
//! running on one thread borrows a connection opened by another, every request and every
//! response crosses between the two threads, and a crossing may have to wake a parked one.
//! With a pool per thread — and the gateway serving a runtime per thread — a request and its
//! connection stay on one thread.

use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// A cheap-to-clone handle on the per-thread clients sharing one configuration.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    connect_timeout: Duration,
    /// Used where no thread-local client can be had (a thread being torn down, or a client
    /// that failed to build, which the first one here proved it would not).
    first: reqwest::Client,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("connect_timeout", &self.shared.connect_timeout)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// This thread's client for each live [`HttpClient`], found by the address of its shared
    /// part; the `Weak` keeps that address from being reused while the entry exists.
    static LOCAL: RefCell<Vec<(Weak<Shared>, reqwest::Client)>> = const { RefCell::new(Vec::new()) };
}

impl HttpClient {
    /// Builds the first client, so that a configuration the HTTP stack rejects fails here.
    pub fn new(connect_timeout: Duration) -> reqwest::Result<HttpClient> {
        let first = build(connect_timeout)?;
        let client = HttpClient { shared: Arc::new(Shared { connect_timeout, first }) };
        let _ = LOCAL.try_with(|local| {
            insert(&mut local.borrow_mut(), &client.shared, client.shared.first.clone())
        });
        Ok(client)
    }

    /// The client for the calling thread, built on its first use there.
    pub fn local(&self) -> reqwest::Client {
        let key = Arc::as_ptr(&self.shared);
        LOCAL
            .try_with(|local| {
                let mut local = local.borrow_mut();
                if let Some((_, client)) = local.iter().find(|(owner, _)| owner.as_ptr() == key) {
                    return client.clone();
                }
                let client = build(self.shared.connect_timeout)
                    .unwrap_or_else(|_| self.shared.first.clone());
                insert(&mut local, &self.shared, client.clone());
                client
            })
            .unwrap_or_else(|_| self.shared.first.clone())
    }
}

/// Adds a thread's client, dropping the entries of clients dropped since (a gateway that
/// stopped).
fn insert(
    local: &mut Vec<(Weak<Shared>, reqwest::Client)>,
    owner: &Arc<Shared>,
    client: reqwest::Client,
) {
    local.retain(|(owner, _)| owner.strong_count() > 0);
    local.push((Arc::downgrade(owner), client));
}

fn build(connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("llm-router/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

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

        drop(client);
        let second = HttpClient::new(Duration::from_secs(1)).unwrap();
        second.local();
        assert_eq!(entries(), 1, "the dropped handle's client went when the next one came");
    }
}
