//! The gateway's shared state and the routing step every API shares: resolve the model the
//! client asked for, extract the query's features, decide, and plan the failover order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use router_core::learning::{Context, Knowledge, LearningConfig, Prior};
use router_core::memory::{CompactSketch, MemoryConfig, Sketch};
use router_core::policy::{self, Params};
use router_core::{Decision, FeatureExtractor, Features, Profile};
use router_providers::ChatRequest;
use router_providers::HttpClient;
use router_providers::api_error::{ApiError, ApiErrorKind};
use router_providers::upstream::{Protocol, Timeouts, Upstream, UpstreamConfig};
use router_store::{Api, CapturedPrompt, RequestContext, RoutedRequest, Store, Writer};

use crate::config::{Config, DeploymentConfig, JudgeMode, Provider, StorePrompts};
use crate::judge::{Judge, JudgeCandidateInfo};
use crate::metrics::Metrics;
use crate::registry::{Registry, Resolved};

/// Why the gateway could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("deployment `{id}`: {source}")]
    Deployment {
        id: String,
        #[source]
        source: router_providers::upstream::ConfigError,
    },
    #[error("model `{model}`: {message}")]
    Prior { model: String, message: String },
}

/// Answered requests the gateway remembers, so feedback on them is learned from at once
/// (before the store's writer has flushed them) and a second rating replaces the first.
#[derive(Debug, Default)]
pub struct RecentAnswers {
    order: VecDeque<String>,
    /// Keyed by the gateway's own decision ids, looked up by the ids clients send back: a
    /// seeded hash, at a fraction of SipHash's cost on every request.
    entries: HashMap<String, Answered, foldhash::fast::RandomState>,
}

/// What feedback on an answer needs to be learned from.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    pub model: String,
    pub context: Context,
    /// The query's sketch, so feedback also teaches the memory of similar queries.
    pub sketch: Option<CompactSketch>,
    /// The score of the feedback already given, if any.
    pub feedback: Option<f64>,
}

impl RecentAnswers {
    /// Enough for feedback given within minutes of the answer at thousands of requests a
    /// second; older decisions are read back from the store (their sketch is not, so only
    /// the memory of similar queries misses them). Each entry is ~300 bytes.
    const CAPACITY: usize = 10_000;

    pub fn insert(&mut self, id: String, answered: Answered) {
        if self.entries.len() >= Self::CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.entries.insert(id, answered);
    }

    pub fn get(&self, id: &str) -> Option<&Answered> {
        self.entries.get(id)
    }

    pub fn set_feedback(&mut self, id: &str, score: f64) {
        if let Some(entry) = self.entries.get_mut(id) {
            entry.feedback = Some(score);
        }
    }
}

/// Everything the request path shares. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

pub struct Inner {
    pub config: Config,
    pub registry: Registry,
    pub extractor: FeatureExtractor,
    pub metrics: Metrics,
    pub store: Store,
    pub writer: Writer,
    pub started: Instant,
    /// The HTTP client every upstream and the judge share (its pools are per thread).
    http: HttpClient,
    knowledge: RwLock<Knowledge>,
    /// What this replica learned since it last shared it with the replicas on the same store.
    unshared: Mutex<Knowledge>,
    /// This process's name among the replicas sharing a store.
    replica: String,
    /// Other replicas' deltas already folded in (by state name).
    folded: Mutex<std::collections::HashSet<String>>,
    pub recent: Mutex<RecentAnswers>,
    /// The local LLM judge, when `[judge] mode` is not `off`.
    judge: Option<Arc<Judge>>,
    /// The runtime the gateway was built on, which outlives the serving threads' own: work
    /// that must finish after a request's thread has stopped goes there.
    background: Option<tokio::runtime::Handle>,
}

impl std::ops::Deref for Gateway {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// A request after routing: what to try, in which order, and what to record about it.
#[derive(Debug)]
pub struct Routed {
    /// The decision id, also the request's id in the store and the response id's suffix.
    pub id: String,
    /// Shared with the request's record, which the store's writer serialises.
    pub decision: Arc<Decision>,
    /// Registry indices of the models to try, in order.
    pub plan: Vec<usize>,
    /// When the request arrived.
    pub received: Instant,
    pub received_ms: i64,
    /// The query's sketch for the memory of similar queries (when it is on).
    pub sketch: Option<CompactSketch>,
}

impl Gateway {
    /// Builds the gateway around an open store and its writer.
    pub fn new(config: Config, store: Store, writer: Writer) -> Result<Gateway, BuildError> {
        let client = HttpClient::new(config.dispatch.connect_timeout)?;
        let timeouts = Timeouts {
            first_byte: config.dispatch.first_byte_timeout,
            total: config.dispatch.total_timeout,
            idle: config.dispatch.idle_timeout,
        };
        let registry = Registry::new(&config, |d| {
            Upstream::new(upstream_config(d, timeouts), client.clone())
                .map_err(|source| BuildError::Deployment { id: d.id.clone(), source })
        })?;
        let knowledge = fresh_knowledge(&config)?;
        let unshared = Mutex::new(Knowledge::new(knowledge.config));
        let knowledge = RwLock::new(knowledge);
        let judge = (config.judge.mode != JudgeMode::Off)
            .then(|| Arc::new(Judge::new(&config.judge, client.clone())));
        Ok(Gateway {
            inner: Arc::new(Inner {
                config,
                registry,
                extractor: FeatureExtractor::new(),
                metrics: Metrics::new(),
                store,
                writer,
                started: Instant::now(),
                http: client,
                knowledge,
                unshared,
                replica: uuid::Uuid::now_v7().simple().to_string(),
                folded: Mutex::default(),
                recent: Mutex::new(RecentAnswers::default()),
                judge,
                background: tokio::runtime::Handle::try_current().ok(),
            }),
        })
    }

    /// Readies the calling thread to serve: builds its HTTP clients, so that its first
    /// request does not wait for them.
    pub fn prepare_thread(&self) {
        self.http.prepare_this_thread();
    }

    /// The judge, when one is configured.
    pub fn judge(&self) -> Option<&Arc<Judge>> {
        self.judge.as_ref()
    }

    /// Checks in the background whether the judge's server and model are there, and loads
    /// the model so the first real question does not pay for it. The gateway runs fine
    /// without a judge: failures are only reported.
    pub fn spawn_judge_probe(&self) {
        let Some(judge) = self.judge.clone() else { return };
        tokio::spawn(async move {
            let report = judge.probe().await;
            if report.model_present {
                tracing::info!(model = %judge.status().model, "judge model present; loading it");
                if let Err(e) = judge.warm_up().await {
                    tracing::warn!(error = %e, "judge warm-up failed; the policy decides until it answers");
                }
            } else if report.reachable {
                tracing::warn!(model = %judge.status().model, "the judge's server answers but does not have the model; `ollama pull` it. The policy decides meanwhile");
            } else {
                tracing::warn!(error = ?report.error, "the judge is not reachable; the policy decides until it is");
            }
        });
    }

    /// What the router has learned (read access; decisions take this).
    pub fn knowledge(&self) -> RwLockReadGuard<'_, Knowledge> {
        // A panic while the lock was held cannot leave the state half-written in a way that
        // matters more than losing routing altogether; keep going with it.
        self.knowledge.read().unwrap_or_else(|e| e.into_inner())
    }

    fn knowledge_mut(&self) -> RwLockWriteGuard<'_, Knowledge> {
        self.knowledge.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies one piece of learning (an outcome, a feedback) to the learned state, and
    /// keeps it to share with the other replicas on the same store.
    pub fn learn(&self, update: impl Fn(&mut Knowledge)) {
        update(&mut self.knowledge_mut());
        update(&mut self.unshared.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Shares what this replica learned since the last call, and folds in what the other
    /// replicas on the same store shared: each publishes deltas under
    /// `knowledge/delta/<replica>/<time>`, read once by every other replica, removed by their
    /// author after a while.
    pub async fn sync_replicas(&self) -> Result<(), router_store::StoreError> {
        let delta = {
            let mut unshared = self.unshared.lock().unwrap_or_else(|e| e.into_inner());
            if unshared.is_empty() {
                None
            } else {
                let config = unshared.config;
                Some(std::mem::replace(&mut *unshared, Knowledge::new(config)))
            }
        };
        let now = epoch_ms();
        if let Some(delta) = delta {
            let json = serde_json::to_string(&delta)
                .map_err(|e| router_store::StoreError::InvalidArgument(e.to_string()))?;
            let name = format!("{DELTA_PREFIX}{}/{now:016}", self.replica);
            self.store.put_state(&name, &json).await?;
            self.folded.lock().unwrap_or_else(|e| e.into_inner()).insert(name);
        }
        let mine = format!("{DELTA_PREFIX}{}/", self.replica);
        for entry in self.store.list_state(DELTA_PREFIX).await? {
            if entry.name.starts_with(&mine) {
                // Our own deltas: every other replica has had ample time to read them.
                if now - entry.updated_at_ms > DELTA_LIFETIME_MS {
                    self.store.delete_state(&entry.name).await?;
                    self.folded.lock().unwrap_or_else(|e| e.into_inner()).remove(&entry.name);
                }
                continue;
            }
            if !self.folded.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.name.clone()) {
                continue;
            }
            match serde_json::from_str::<Knowledge>(&entry.value) {
                Ok(delta) => self.knowledge_mut().merge_delta(&delta),
                Err(e) => {
                    tracing::warn!(delta = %entry.name, error = %e, "another replica's delta is unreadable; skipped")
                }
            }
        }
        Ok(())
    }

    /// Marks the deltas already in the store as folded: the saved state this process started
    /// from holds what they taught.
    pub async fn skip_existing_deltas(&self) -> Result<(), router_store::StoreError> {
        let existing = self.store.list_state(DELTA_PREFIX).await?;
        self.folded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(existing.into_iter().map(|e| e.name));
        Ok(())
    }

    /// Replaces the learned state with one loaded from the store; the config's current
    /// priors and settings win over the saved ones.
    pub fn restore_knowledge(&self, saved: Knowledge) -> Result<(), BuildError> {
        *self.knowledge_mut() = knowledge_for(&self.config, Some(saved))?;
        Ok(())
    }

    /// Saves the learned state to the store.
    pub async fn save_knowledge(&self) -> Result<(), router_store::StoreError> {
        // Copied out under the lock and serialised after it: with a full memory of similar
        // queries, serialising takes several times as long as copying, and every request's
        // decision and outcome wait for the lock meanwhile.
        let snapshot = self.knowledge().clone();
        let json = match serde_json::to_string(&snapshot) {
            Ok(json) => json,
            Err(e) => return Err(router_store::StoreError::InvalidArgument(e.to_string())),
        };
        self.store.put_state(KNOWLEDGE_STATE, &json).await
    }

    /// Resolves the client's `model`, extracts features and decides — asking the judge when
    /// one is configured and the mode says so (within its time budget).
    ///
    /// `received` is when the gateway had the request's body in hand: the request's latency
    /// and the gateway's overhead count from there.
    pub async fn route(
        &self,
        request: &ChatRequest,
        received: Instant,
    ) -> Result<Routed, ApiError> {
        let requested = request.model.trim();
        // An alias may stand for routing itself (`"claude-3-5-haiku-latest" = "auto:cost"`).
        let requested = match self.config.aliases.get(requested) {
            Some(target) if crate::config::is_auto(target) => target.as_str(),
            _ => requested,
        };
        let resolved = self.registry.resolve(requested).ok_or_else(|| {
            let mut e = ApiError::new(
                ApiErrorKind::NotFound,
                format!(
                    "The model `{requested}` does not exist. Use one of the configured models ({}), or `auto` to let the router choose.",
                    self.registry.models().iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
                ),
            );
            e.param = Some("model".into());
            e.code = Some("model_not_found".into());
            e
        })?;
        let prompt = request.prompt();
        let features = self.extractor.extract(&prompt);
        let sketch =
            self.config.routing.memory_capacity.map(|_| Sketch::of(prompt.last_user_text()));
        let now = Instant::now();
        let (decision, plan) = match resolved {
            Resolved::Auto => {
                let profile = profile_of(requested, self.config.routing.default_profile)?;
                let decision = self.decide(&features, sketch.as_ref(), profile, now)?;
                let decision = match &self.judge {
                    Some(judge) => {
                        let infos: Vec<JudgeCandidateInfo<'_>> = self
                            .registry
                            .models()
                            .iter()
                            .map(|m| JudgeCandidateInfo::from(&m.candidate(now)))
                            .collect();
                        judge.decide(request.prompt().last_user_text(), decision, &infos).await
                    }
                    None => decision,
                };
                let plan = self.plan(&decision);
                (decision, plan)
            }
            Resolved::Model(index) => {
                let model = self.registry.model(index);
                let decision = policy::explicit(
                    &features,
                    &model.candidate(now),
                    &self.knowledge(),
                    self.config.routing.default_profile,
                );
                let mut plan = vec![index];
                for name in &model.config.fallbacks {
                    if let Some(i) = self.registry.index_of(name)
                        && !plan.contains(&i)
                    {
                        plan.push(i);
                    }
                }
                (decision, plan)
            }
        };
        let mut decision = decision;
        decision.decision_us = received.elapsed().as_micros() as u64;
        Ok(Routed {
            id: uuid::Uuid::now_v7().to_string(),
            decision: Arc::new(decision),
            plan,
            received,
            received_ms: epoch_ms(),
            sketch: sketch.map(|s| s.compact()),
        })
    }

    fn decide(
        &self,
        features: &Features,
        sketch: Option<&Sketch>,
        profile: Profile,
        now: Instant,
    ) -> Result<Decision, ApiError> {
        let candidates = self.registry.candidates(now);
        let params = Params {
            profile,
            objective: None,
            seed: fastrand::u64(..),
            exploration: self.config.routing.exploration,
            max_cost_usd: self.config.routing.max_cost_usd,
        };
        let decision = {
            let knowledge = self.knowledge();
            let recall = sketch.map(|s| knowledge.recall(s)).unwrap_or_default();
            policy::decide_recalled(features, &recall, &candidates, &knowledge, &params)
        }
        .map_err(|e| {
            let mut error = ApiError::new(ApiErrorKind::Overloaded, e.to_string());
            error.code = Some("no_model_available".into());
            error
        })?;
        Ok(decision)
    }

    /// The failover order of a routed decision: its ranking.
    fn plan(&self, decision: &Decision) -> Vec<usize> {
        decision.ranking.iter().filter_map(|r| self.registry.index_of(&r.model)).collect()
    }

    /// Queues the record of a routed request for the store.
    pub fn record_request(&self, routed: &Routed, request: &ChatRequest, api: Api) {
        let context = RequestContext {
            id: routed.id.clone(),
            received_at_ms: routed.received_ms,
            api,
            requested_model: request.model.clone(),
            stream: request.stream,
            prompt: self.captured_prompt(request),
            message_count: request.messages.len() as u32,
        };
        // The row (the features and the ranking as JSON) is built by the writer, off this
        // thread, which goes on to call the upstream.
        self.enqueue(RoutedRequest { context, decision: Arc::clone(&routed.decision) }.into());
    }

    /// Hands a record to the writer without waiting: if the queue is full, a task waits for
    /// room, so the request never blocks on the store and no accepted record is lost.
    pub fn enqueue(&self, record: router_store::Record) {
        match self.writer.try_send(record) {
            Ok(()) => {}
            Err(router_store::TrySendError::Full(record)) => {
                let writer = self.writer.clone();
                let wait = async move {
                    if let Err(e) = writer.send(record).await {
                        tracing::error!(record = %e.0.summary(), "store writer closed; record lost");
                    }
                };
                match &self.background {
                    Some(runtime) => drop(runtime.spawn(wait)),
                    None => drop(tokio::spawn(wait)),
                }
            }
            Err(router_store::TrySendError::Closed(record)) => {
                tracing::error!(record = %record.summary(), "store writer closed; record lost");
            }
        }
    }

    /// The prompt for the store; a digest is taken by the writer, off this thread.
    fn captured_prompt(&self, request: &ChatRequest) -> CapturedPrompt {
        match self.config.privacy.store_prompts {
            StorePrompts::None => CapturedPrompt::None,
            StorePrompts::Hash => CapturedPrompt::DigestOf(prompt_text(request)),
            StorePrompts::Full => CapturedPrompt::Full(prompt_text(request)),
        }
    }
}

/// The name the learned state is saved under in the store.
pub const KNOWLEDGE_STATE: &str = "knowledge";

/// Where replicas publish what they learned for each other.
const DELTA_PREFIX: &str = "knowledge/delta/";
/// How long a published delta stays for the other replicas to read.
const DELTA_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// The learned state to route with: what was saved (if anything), under the config's
/// current priors and settings.
pub fn knowledge_for(config: &Config, saved: Option<Knowledge>) -> Result<Knowledge, BuildError> {
    let fresh = fresh_knowledge(config)?;
    let Some(mut saved) = saved else { return Ok(fresh) };
    saved.config = fresh.config;
    for m in &config.models {
        if let Some(prior) = fresh.prior(&m.name) {
            saved.set_prior(&m.name, prior.clone());
        }
    }
    Ok(saved)
}

/// Empty learned state with the config's priors.
fn fresh_knowledge(config: &Config) -> Result<Knowledge, BuildError> {
    let memory = config
        .routing
        .memory_capacity
        .map(|capacity| MemoryConfig { capacity, ..MemoryConfig::default() });
    let mut knowledge = Knowledge::new(LearningConfig { memory, ..LearningConfig::default() });
    for m in &config.models {
        let prior = Prior::from_config(
            m.priors.iter().map(|(k, v)| (k.as_str(), *v)),
            m.tags.iter().map(String::as_str),
        )
        .map_err(|message| BuildError::Prior { model: m.name.clone(), message })?;
        knowledge.set_prior(&m.name, prior);
    }
    Ok(knowledge)
}

/// `auto` → the default profile; `auto:<profile>` → that profile.
fn profile_of(requested: &str, default: Profile) -> Result<Profile, ApiError> {
    match requested.strip_prefix("auto:") {
        None => Ok(default),
        Some(name) => name.parse().map_err(|e: router_core::decision::UnknownProfile| {
            let mut error = ApiError::new(ApiErrorKind::InvalidRequest, e.to_string());
            error.param = Some("model".into());
            error
        }),
    }
}

/// The text of a request as stored under `store_prompts = "full"` (and hashed under
/// `"hash"`): one `role: text` line per text part.
fn prompt_text(request: &ChatRequest) -> String {
    let prompt = request.prompt();
    let length = prompt.messages.iter().map(|m| m.text.len() + 12).sum();
    let mut out = String::with_capacity(length);
    for (i, m) in prompt.messages.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(match m.role {
            router_core::Role::System => "system: ",
            router_core::Role::User => "user: ",
            router_core::Role::Assistant => "assistant: ",
            router_core::Role::Tool => "tool: ",
        });
        out.push_str(m.text);
    }
    out
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Seconds since the Unix epoch (OpenAI's `created`).
pub fn epoch_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn upstream_config(d: &DeploymentConfig, timeouts: Timeouts) -> UpstreamConfig {
    let protocol = match d.provider {
        Provider::Openai | Provider::Deepseek | Provider::OpenaiCompatible => Protocol::OpenAi,
        Provider::Anthropic => Protocol::Anthropic,
        Provider::Ollama => Protocol::Ollama,
    };
    let mut config = UpstreamConfig::new(protocol, d.base_url.clone(), d.upstream_model.clone());
    config.api_key = d.api_key.clone();
    config.timeouts = timeouts;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_is_stored_one_line_a_text_part() {
        use router_providers::chat::{ContentPart, Message};
        let text = |t: &str| ContentPart::Text { text: t.into() };
        let request = ChatRequest {
            model: "auto".into(),
            messages: vec![
                Message { role: router_core::Role::System, content: vec![text("Be brief.")] },
                Message { role: router_core::Role::User, content: vec![text("abc"), text("def")] },
            ],
            ..ChatRequest::default()
        };
        let stored = prompt_text(&request);
        assert_eq!(stored, "system: Be brief.\nuser: abc\nuser: def");
    }

    #[test]
    fn profiles_parse_from_auto_names() {
        assert_eq!(profile_of("auto", Profile::Cost).unwrap(), Profile::Cost);
        assert_eq!(profile_of("auto:quality", Profile::Cost).unwrap(), Profile::Quality);
        assert!(profile_of("auto:nonsense", Profile::Cost).is_err());
    }
}
