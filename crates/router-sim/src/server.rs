//! The server: its listener and connections, the shared state handlers read, and the
//! handle tests hold.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::anthropic::Anthropic;
use crate::exchange::{self, Incoming};
use crate::openai::OpenAi;
use crate::stats::{Counters, EndpointCounters, Tracker};
use crate::{
    Behavior, Endpoint, Fault, JudgeBehavior, RecordedRequest, Schedule, SimConfig, SimError,
    SimStats, ollama, record,
};

/// Request bodies above this are refused: long-context prompts are big, but not this big.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A running simulated provider. Dropping it kills the server.
///
/// ```no_run
/// # async fn demo() -> Result<(), router_sim::SimError> {
/// use router_sim::{SimConfig, SimModel, SimServer, Style};
/// let sim = SimServer::start(SimConfig::new().model(SimModel::new("gpt-sim").style(Style::Terse))).await?;
/// let url = format!("{}/v1/chat/completions", sim.base_url());
/// # let _ = url;
/// sim.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl SimServer {
    /// Binds `config.addr` and starts serving.
    pub async fn start(config: SimConfig) -> Result<Self, SimError> {
        config.validate()?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|source| SimError::Bind { addr: config.addr, source })?;
        let addr =
            listener.local_addr().map_err(|source| SimError::Bind { addr: config.addr, source })?;
        let shared = Arc::new(Shared::new(&config, addr));
        let router = router(Arc::clone(&shared));
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(accept_loop(listener, router, cancel.clone(), tasks.clone()));
        Ok(Self { addr, shared, cancel, tasks })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The counters, per endpoint and per model.
    pub fn stats(&self) -> SimStats {
        let models = self
            .shared
            .models
            .iter()
            .map(|(name, slot)| (name.clone(), slot.counters.snapshot()))
            .collect();
        SimStats { endpoints: self.shared.endpoints.snapshot(), models }
    }

    /// Waits until `condition` holds for the stats, checking every few milliseconds, for at
    /// most `timeout`. Returns whether it held. Useful because cancellations are noticed
    /// asynchronously, a moment after the client goes away.
    pub async fn wait_for(&self, timeout: Duration, condition: impl Fn(&SimStats) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(&self.stats()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The most recent requests, oldest first (at most `record_limit` of them).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.recorder.snapshot()
    }

    /// The bodies of the recorded judge calls, oldest first.
    pub fn judge_requests(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.endpoint == Endpoint::OllamaJudge)
            .filter_map(RecordedRequest::json)
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.recorder.clear();
    }

    /// A model's current behaviour.
    pub fn behavior(&self, model: &str) -> Option<Behavior> {
        self.shared.models.get(model).map(|slot| slot.behavior().as_ref().clone())
    }

    /// Replaces a model's behaviour from the next request on; its fault schedule starts
    /// counting afresh.
    pub fn set_behavior(&self, model: &str, behavior: Behavior) -> Result<(), SimError> {
        let slot = self
            .shared
            .models
            .get(model)
            .ok_or_else(|| SimError::UnknownModel(model.to_owned()))?;
        slot.install(behavior);
        Ok(())
    }

    /// Changes part of a model's behaviour, e.g. `|b| b.fault = None` to let it recover.
    pub fn update_behavior(
        &self,
        model: &str,
        change: impl FnOnce(&mut Behavior),
    ) -> Result<(), SimError> {
        let slot = self
            .shared
            .models
            .get(model)
            .ok_or_else(|| SimError::UnknownModel(model.to_owned()))?;
        let mut behavior = slot.behavior().as_ref().clone();
        change(&mut behavior);
        slot.install(behavior);
        Ok(())
    }

    /// Sets how the judge answers from the next request on.
    pub fn set_judge(&self, behavior: JudgeBehavior) {
        *self.shared.judge.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(behavior);
    }

    /// Kills the server at once: the listener closes (new connections are refused) and
    /// every open connection is dropped mid-flight, as when a provider's host dies. The
    /// handle stays usable for [`stats`](Self::stats) and [`requests`](Self::requests).
    pub fn kill(&self) {
        self.cancel.cancel();
        self.tasks.close();
    }

    /// Kills the server and waits until the listener and all connections are gone, so the
    /// port can be bound again.
    pub async fn shutdown(self) {
        self.kill();
        self.tasks.wait().await;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::fmt::Debug for SimServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// A loopback port that is held but refuses connections, for "connection refused" tests.
/// The port stays reserved (no other server can take it) until this is dropped.
#[derive(Debug)]
pub struct RefusedPort {
    _socket: TcpSocket,
    addr: SocketAddr,
}

impl RefusedPort {
    /// Reserves a free loopback port without listening on it.
    pub fn new() -> Result<Self, SimError> {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let bind = |source| SimError::Bind { addr: any, source };
        let socket = TcpSocket::new_v4().map_err(bind)?;
        socket.bind(any).map_err(bind)?;
        let addr = socket.local_addr().map_err(bind)?;
        Ok(Self { _socket: socket, addr })
    }

    /// The address that refuses connections.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Accepts connections until cancelled, serving each on its own task; cancelling drops
/// the listener and every connection.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    cancel: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::debug!(%error, "sim: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Stream chunks are small and must leave at once, not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let cancel = cancel.clone();
        tasks.spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                () = cancel.cancelled() => {}
                // Connection errors (client resets, injected disconnects) end only this
                // connection; there is nobody to report them to.
                _ = connection => {}
            }
        });
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/models", get(list_models))
        .route("/api/chat", post(ollama_chat))
        .route("/api/tags", get(ollama_tags))
        .route("/api/version", get(ollama_version))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

fn incoming(method: Method, uri: &Uri, headers: HeaderMap, body: Bytes) -> Incoming {
    Incoming { method, path: uri.path().to_owned(), headers, body }
}

async fn openai_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = serde_json::from_slice(&body);
    exchange::serve::<OpenAi>(
        shared,
        Endpoint::OpenAiChat,
        incoming(method, &uri, headers, body),
        json,
    )
    .await
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = serde_json::from_slice(&body);
    exchange::serve::<Anthropic>(
        shared,
        Endpoint::AnthropicMessages,
        incoming(method, &uri, headers, body),
        json,
    )
    .await
}

async fn ollama_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    ollama::chat(shared, incoming(method, &uri, headers, body)).await
}

async fn ollama_tags(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = incoming(method, &uri, headers, Bytes::new());
    shared.begin(Endpoint::Listing, &request).complete();
    exchange::json_response(StatusCode::OK, &ollama::tags(&shared))
}

async fn ollama_version(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let request = incoming(method, &uri, headers, Bytes::new());
    shared.begin(Endpoint::Listing, &request).complete();
    exchange::json_response(StatusCode::OK, &json!({ "version": ollama::OLLAMA_VERSION }))
}

/// `GET /v1/models`: OpenAI's list, or Anthropic's when the client sends
/// `anthropic-version` (both APIs use this path).
async fn list_models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let anthropic = headers.contains_key("anthropic-version");
    let request = incoming(method, &uri, headers, Bytes::new());
    shared.begin(Endpoint::Listing, &request).complete();
    let names: Vec<&str> = shared.model_names().collect();
    let body = if anthropic {
        let data: Vec<Value> = names
            .iter()
            .map(|n| json!({ "type": "model", "id": n, "display_name": n, "created_at": "2025-01-01T00:00:00Z" }))
            .collect();
        json!({ "data": data, "has_more": false, "first_id": names.first(), "last_id": names.last() })
    } else {
        let data: Vec<Value> =
            names.iter().map(|n| json!({ "id": n, "object": "model", "created": 1_735_689_600, "owned_by": "router-sim" })).collect();
        json!({ "object": "list", "data": data })
    };
    exchange::json_response(StatusCode::OK, &body)
}

/// State every handler reads.
pub(crate) struct Shared {
    pub(crate) endpoints: EndpointCounters,
    pub(crate) models: HashMap<String, Arc<ModelSlot>>,
    /// Model names in configuration order, for listings.
    order: Vec<String>,
    pub(crate) judge_model: Option<String>,
    judge: RwLock<Arc<JudgeBehavior>>,
    /// Turns to answer as the judge, when it answers only so many calls at once.
    pub(crate) judge_turns: Option<tokio::sync::Semaphore>,
    pub(crate) recorder: record::Recorder,
    pub(crate) require_anthropic_version: bool,
    ids: AtomicU64,
}

impl Shared {
    fn new(config: &SimConfig, addr: SocketAddr) -> Self {
        let mut order: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
        let mut models: HashMap<String, Arc<ModelSlot>> = config
            .models
            .iter()
            .map(|m| (m.name.clone(), Arc::new(ModelSlot::new(&m.name, m.behavior.clone()))))
            .collect();
        if let Some(judge) = &config.judge {
            order.push(judge.model.clone());
            models.insert(
                judge.model.clone(),
                Arc::new(ModelSlot::new(&judge.model, Behavior::default())),
            );
        }
        Self {
            endpoints: EndpointCounters::default(),
            models,
            order,
            judge_model: config.judge.as_ref().map(|j| j.model.clone()),
            judge: RwLock::new(Arc::new(
                config.judge.as_ref().map(|j| j.behavior.clone()).unwrap_or_default(),
            )),
            judge_turns: config
                .judge
                .as_ref()
                .and_then(|j| j.parallel)
                .map(|n| tokio::sync::Semaphore::new(n.get())),
            recorder: record::Recorder::new(config.record_limit),
            require_anthropic_version: config.require_anthropic_version,
            // Ids from different servers differ in their high bits.
            ids: AtomicU64::new(u64::from(addr.port()) << 40),
        }
    }

    /// Counts and records a request; the returned tracker decides how it ends.
    pub(crate) fn begin(self: &Arc<Self>, endpoint: Endpoint, request: &Incoming) -> Tracker {
        exchange::record(self, endpoint, request);
        Tracker::new(Arc::clone(self), endpoint)
    }

    pub(crate) fn model(&self, name: &str) -> Option<Arc<ModelSlot>> {
        self.models.get(name).cloned()
    }

    pub(crate) fn model_names(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(String::as_str)
    }

    pub(crate) fn judge_behavior(&self) -> Arc<JudgeBehavior> {
        Arc::clone(&self.judge.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }
}

/// One hosted model: its behaviour, its fault draws and its counters.
pub(crate) struct ModelSlot {
    pub(crate) name: String,
    behavior: RwLock<Arc<Behavior>>,
    /// Requests drawn against the current fault schedule.
    draws: AtomicU64,
    pub(crate) counters: Counters,
}

impl ModelSlot {
    fn new(name: &str, behavior: Behavior) -> Self {
        Self {
            name: name.to_owned(),
            behavior: RwLock::new(Arc::new(behavior)),
            draws: AtomicU64::new(0),
            counters: Counters::default(),
        }
    }

    fn behavior(&self) -> Arc<Behavior> {
        Arc::clone(&self.behavior.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn install(&self, behavior: Behavior) {
        let mut current = self.behavior.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(behavior);
        self.draws.store(0, Ordering::Relaxed);
    }

    /// The behaviour for one request, and the fault it meets, if any.
    pub(crate) fn draw(&self) -> (Arc<Behavior>, Option<Fault>) {
        let behavior = self.behavior();
        let fault = behavior.fault.and_then(|plan| {
            let n = self.draws.fetch_add(1, Ordering::Relaxed);
            hits(plan.schedule, n).then_some(plan.fault)
        });
        (behavior, fault)
    }
}

/// Whether the `n`th request (from 0) under `schedule` meets the fault.
fn hits(schedule: Schedule, n: u64) -> bool {
    match schedule {
        Schedule::Always => true,
        Schedule::First(count) => n < count,
        Schedule::Rate { probability, seed } => {
            // 53 random bits as a uniform float in [0, 1).
            let unit = (splitmix64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 11) as f64
                / (1u64 << 53) as f64;
            unit < probability.get()
        }
    }
}

/// SplitMix64: a tiny, well-mixed generator, so a (seed, index) pair always gives the
/// same draw without keeping generator state behind a lock.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Probability;

    #[test]
    fn rate_schedule_is_deterministic_and_close_to_its_rate() {
        let schedule = Schedule::Rate { probability: Probability::new(0.3).unwrap(), seed: 7 };
        let a: Vec<bool> = (0..1000).map(|n| hits(schedule, n)).collect();
        let b: Vec<bool> = (0..1000).map(|n| hits(schedule, n)).collect();
        assert_eq!(a, b);
        let share = a.iter().filter(|&&h| h).count();
        assert!((240..=360).contains(&share), "{share}");
        let other = Schedule::Rate { probability: Probability::new(0.3).unwrap(), seed: 8 };
        assert_ne!(a, (0..1000).map(|n| hits(other, n)).collect::<Vec<_>>());
    }

    #[test]
    fn edge_rates_and_first_n() {
        assert!(
            (0..100).all(|n| hits(Schedule::Rate { probability: Probability::ALWAYS, seed: 1 }, n))
        );
        assert!(
            (0..100).all(|n| !hits(Schedule::Rate { probability: Probability::NEVER, seed: 1 }, n))
        );
        assert_eq!(
            (0..5).map(|n| hits(Schedule::First(2), n)).collect::<Vec<_>>(),
            [true, true, false, false, false]
        );
    }
}
