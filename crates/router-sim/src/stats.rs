//! Counters per endpoint and per model, and the guard that keeps them honest when a client
//! walks away.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The endpoints a simulated server counts separately. Judge calls arrive on `/api/chat`
/// but are counted on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`
    OpenAiChat,
    /// `POST /v1/messages`
    AnthropicMessages,
    /// `POST /api/chat`, ordinary chat
    OllamaChat,
    /// `POST /api/chat`, a structured-output judge call
    OllamaJudge,
    /// `GET /api/tags`, `GET /api/version` and `GET /v1/models`
    Listing,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 5] = [
        Endpoint::OpenAiChat,
        Endpoint::AnthropicMessages,
        Endpoint::OllamaChat,
        Endpoint::OllamaJudge,
        Endpoint::Listing,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Endpoint::OpenAiChat => "openai-chat",
            Endpoint::AnthropicMessages => "anthropic-messages",
            Endpoint::OllamaChat => "ollama-chat",
            Endpoint::OllamaJudge => "ollama-judge",
            Endpoint::Listing => "listing",
        })
    }
}

/// A snapshot of one set of counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Requests received.
    pub requests: u64,
    /// Answers sent in full (for a stream: its last chunk was produced).
    pub completed: u64,
    /// Answers abandoned before they were complete: the client disconnected (or the server
    /// was killed) while the request was waiting or streaming.
    pub cancelled: u64,
    /// Requests that met an injected fault (or a scripted judge failure).
    pub injected: u64,
    /// Requests refused for their own fault: malformed body, wrong key, unknown model,
    /// invalid judge request.
    pub rejected: u64,
    /// Requests being answered right now.
    pub in_flight: u64,
    /// The most requests ever answered at once. Added up, the highest of the parts.
    pub peak_in_flight: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, o: Counts) -> Counts {
        Counts {
            requests: self.requests + o.requests,
            completed: self.completed + o.completed,
            cancelled: self.cancelled + o.cancelled,
            injected: self.injected + o.injected,
            rejected: self.rejected + o.rejected,
            in_flight: self.in_flight + o.in_flight,
            peak_in_flight: self.peak_in_flight.max(o.peak_in_flight),
        }
    }
}

/// Counters of a server at one instant, per endpoint and per model.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SimStats {
    /// Per endpoint.
    pub endpoints: BTreeMap<Endpoint, Counts>,
    /// Per model named in a request this server hosts (unknown models are not counted here).
    pub models: BTreeMap<String, Counts>,
}

impl SimStats {
    /// One endpoint's counts.
    pub fn endpoint(&self, endpoint: Endpoint) -> Counts {
        self.endpoints.get(&endpoint).copied().unwrap_or_default()
    }

    /// One model's counts.
    pub fn model(&self, name: &str) -> Counts {
        self.models.get(name).copied().unwrap_or_default()
    }

    /// All endpoints added up.
    pub fn total(&self) -> Counts {
        self.endpoints.values().fold(Counts::default(), |a, &b| a + b)
    }
}

/// Live counters, updated lock-free on the request path.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    completed: AtomicU64,
    cancelled: AtomicU64,
    injected: AtomicU64,
    rejected: AtomicU64,
    in_flight: AtomicU64,
    peak_in_flight: AtomicU64,
}

impl Counters {
    fn enter(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            completed: self.completed.load(Ordering::Relaxed),
            cancelled: self.cancelled.load(Ordering::Relaxed),
            injected: self.injected.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            peak_in_flight: self.peak_in_flight.load(Ordering::Relaxed),
        }
    }
}

/// The per-endpoint counter table.
#[derive(Debug, Default)]
pub(crate) struct EndpointCounters([Counters; Endpoint::ALL.len()]);

impl EndpointCounters {
    pub(crate) fn get(&self, endpoint: Endpoint) -> &Counters {
        &self.0[endpoint.index()]
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<Endpoint, Counts> {
        Endpoint::ALL.iter().map(|&e| (e, self.get(e).snapshot())).collect()
    }
}

/// Tracks one request from arrival to its end. Whoever holds it last decides how the
/// request ended; if it is dropped undecided (the handler future or the body stream was
/// dropped because the client went away), the request counts as cancelled.
pub(crate) struct Tracker {
    shared: Arc<crate::server::Shared>,
    endpoint: Endpoint,
    model: Option<Arc<crate::server::ModelSlot>>,
    decided: bool,
}

impl Tracker {
    pub(crate) fn new(shared: Arc<crate::server::Shared>, endpoint: Endpoint) -> Self {
        shared.endpoints.get(endpoint).enter();
        Self { shared, endpoint, model: None, decided: false }
    }

    /// Attributes the request to a hosted model as well.
    pub(crate) fn attach(&mut self, model: Arc<crate::server::ModelSlot>) {
        model.counters.enter();
        self.model = Some(model);
    }

    fn bump(&self, pick: impl Fn(&Counters) -> &AtomicU64) {
        pick(self.shared.endpoints.get(self.endpoint)).fetch_add(1, Ordering::Relaxed);
        if let Some(model) = &self.model {
            pick(&model.counters).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A fault was injected; the request may still run on (a broken stream) until it ends.
    pub(crate) fn injected(&self) {
        self.bump(|c| &c.injected);
    }

    /// The answer was sent in full.
    pub(crate) fn complete(mut self) {
        self.bump(|c| &c.completed);
        self.decided = true;
    }

    /// The request was refused for its own fault.
    pub(crate) fn reject(mut self) {
        self.bump(|c| &c.rejected);
        self.decided = true;
    }

    /// The request ended on an injected fault (already counted by [`Tracker::injected`]).
    pub(crate) fn fail(mut self) {
        self.decided = true;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.decided {
            self.bump(|c| &c.cancelled);
        }
        self.shared.endpoints.get(self.endpoint).in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(model) = &self.model {
            model.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
