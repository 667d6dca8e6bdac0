//! The judge's HTTP side: asking a local LLM (Llama 3 through Ollama by default, or any
//! OpenAI-compatible server) which candidate should answer, within a hard time budget.
//!
//! [`Judge::decide`] takes the policy's decision and returns either the judge's (the
//! judge's model moved to the front, `source = judge`) or the policy's own, with a note in
//! its reason when the judge was asked but could not help. The judge can only ever improve
//! on the policy: it is asked per [`JudgeMode`] (in `hybrid` mode only when the policy is
//! unsure), its answers are cached, every call is bounded by the configured timeout, and
//! after a few consecutive failures it is left alone for a while so that a dead judge does
//! not cost every request its full budget. At most `max_in_flight` calls are out at once, and
//! fewer while the judge's answers show it cannot keep up ([`limit`]): a request that finds
//! them all out is decided by the policy straight away, since a question queued behind a
//! local model's few concurrent answers would only spend its budget waiting. A question
//! already out for an identical request is not asked twice: the later request waits for that
//! answer. The prompt,
//! schema and answer validation are `router_core::judge`'s; this module only moves them over
//! the wire and keeps count.

mod limit;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use router_core::judge::{self, CacheKey, InvalidAnswer, Mode, Prompt, Verdict};
use router_core::{Decision, Source};
use router_providers::HttpClient;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::{JudgeApi, JudgeConfig, JudgeMode};

/// What the judge is told about each candidate besides the policy's estimate: build it
/// from a [`router_core::Candidate`] with `JudgeCandidateInfo::from(&candidate)`.
pub use router_core::judge::CandidateInfo as JudgeCandidateInfo;

/// Consecutive failed calls after which the judge is paused.
pub const FAILURES_BEFORE_PAUSE: u32 = 3;
/// How long a failing judge is left alone before it is asked again.
pub const PAUSE: Duration = Duration::from_secs(30);
/// The answer is a small JSON object with a one-sentence reason; a cap keeps a rambling
/// model inside the budget (an answer cut short is invalid and the policy decides).
const MAX_ANSWER_TOKENS: u32 = 160;
/// Listing the judge's models is quick even when generating is not.
const MIN_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Loading a model into memory can take many seconds on a cold start.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Error text kept from a judge's error body, in characters.
const MAX_ERROR_CHARS: usize = 200;

/// Why one judge call did not produce a verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    #[error("timeout after {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    #[error("unreadable reply: {0}")]
    Reply(String),
    #[error("invalid answer: {0}")]
    Invalid(#[from] InvalidAnswer),
    #[error("paused for {} s after {failures} failures in a row (last: {last})", .remaining.as_secs().max(1))]
    Paused { remaining: Duration, failures: u32, last: String },
    #[error("busy: {0} calls already out (judge.max_in_flight)")]
    Busy(u32),
}

/// The outcome of [`Judge::probe`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The judge's server answered the listing.
    pub reachable: bool,
    /// The configured model is among those listed (`llama3` and `llama3:latest` are the
    /// same model).
    pub model_present: bool,
    /// Every model the server lists.
    pub models: Vec<String>,
    pub error: Option<String>,
}

/// The judge at a glance, for the dashboard and `/health`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeStatus {
    pub mode: Mode,
    pub api: &'static str,
    pub url: String,
    pub model: String,
    pub timeout_ms: u64,
    /// Whether the server answered the last probe or call; `None` before either.
    pub reachable: Option<bool>,
    /// Whether the last probe found the model; `None` before the first probe.
    pub model_present: Option<bool>,
    /// Decisions the judge was asked about (from the cache or over HTTP).
    pub consulted: u64,
    /// Routed decisions the mode said not to ask about (`off`, or `hybrid` and sure).
    pub skipped: u64,
    /// HTTP calls made.
    pub calls: u64,
    /// Consultations that ended with the policy deciding: timeouts, errors, invalid
    /// answers, and requests turned away while paused.
    pub failures: u64,
    pub timeouts: u64,
    /// Consultations the policy decided alone because as many calls as allowed were out
    /// (not failures: they do not pause the judge).
    pub busy: u64,
    /// Consultations that waited on the question an identical request had already asked,
    /// instead of asking it again.
    pub shared: u64,
    /// Calls out now; how many may be out at once now (fewer than the maximum while the
    /// judge's answers are timing out); the configured maximum.
    pub in_flight: u32,
    pub allowed_in_flight: u32,
    pub max_in_flight: u32,
    pub invalid_answers: u64,
    /// Verdicts that picked another model than the policy.
    pub overrides: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Hits over lookups, once there has been a lookup.
    pub cache_hit_rate: Option<f64>,
    pub cache_entries: usize,
    pub last_latency_ms: Option<f64>,
    pub mean_latency_ms: Option<f64>,
    pub last_error: Option<String>,
    /// Consultations are being skipped after repeated failures.
    pub paused: bool,
}

/// A judge client. Shared by every request; all of its state is atomics or short-held
/// locks, none held across an await.
#[derive(Debug)]
pub struct Judge {
    mode: Mode,
    api: JudgeApi,
    url: String,
    model: String,
    timeout: Duration,
    keep_alive: Value,
    api_key: Option<SecretString>,
    client: HttpClient,
    failures_before_pause: u32,
    pause: Duration,
    limit: limit::Limit,
    /// Questions out now, by cache key, for identical requests to wait on.
    asking: Mutex<HashMap<CacheKey, watch::Receiver<Option<Outcome>>>>,
    cache: Mutex<VerdictCache>,
    counts: Counts,
    health: Mutex<Health>,
}

#[derive(Debug, Default)]
struct Counts {
    consulted: AtomicU64,
    skipped: AtomicU64,
    calls: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    busy: AtomicU64,
    shared: AtomicU64,
    invalid: AtomicU64,
    overrides: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    latency_total_us: AtomicU64,
    last_latency_us: AtomicU64,
    consecutive_failures: AtomicU32,
}

#[derive(Debug, Default)]
struct Health {
    reachable: Option<bool>,
    model_present: Option<bool>,
    last_error: Option<String>,
    paused_until: Option<Instant>,
}

impl Judge {
    /// A judge per `config`, calling through `client` (the gateway's shared pool; its
    /// connect timeout applies, and each call is bounded by `config.timeout` on top).
    pub fn new(config: &JudgeConfig, client: HttpClient) -> Judge {
        Judge {
            mode: match config.mode {
                JudgeMode::Off => Mode::Off,
                JudgeMode::Hybrid => Mode::Hybrid,
                JudgeMode::Always => Mode::Always,
            },
            api: config.api,
            url: config.url.trim_end_matches('/').to_string(),
            model: config.model.clone(),
            timeout: config.timeout,
            keep_alive: keep_alive(&config.keep_alive),
            api_key: config.api_key.clone(),
            client,
            failures_before_pause: FAILURES_BEFORE_PAUSE,
            pause: PAUSE,
            limit: limit::Limit::new(config.max_in_flight, config.timeout),
            asking: Mutex::new(HashMap::new()),
            cache: Mutex::new(VerdictCache::new(config.cache_size)),
            counts: Counts::default(),
            health: Mutex::new(Health::default()),
        }
    }

    /// Changes when a failing judge is paused and for how long (tests shorten the pause).
    /// `failures` of zero never pauses.
    #[must_use]
    pub fn with_pause(mut self, failures: u32, pause: Duration) -> Judge {
        self.failures_before_pause = failures;
        self.pause = pause;
        self
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The decision to route by: the judge's if it was asked and answered validly, the
    /// policy's otherwise. `query` is the text the judge reads (the last user message);
    /// `candidates` describe the ranked models (a model without an entry is shown with its
    /// estimate only).
    pub async fn decide(
        &self,
        query: &str,
        decision: Decision,
        candidates: &[JudgeCandidateInfo<'_>],
    ) -> Decision {
        if !judge::should_consult(self.mode, &decision) {
            if matches!(decision.source, Source::Policy | Source::Fallback) {
                self.counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
            return decision;
        }
        self.counts.consulted.fetch_add(1, Ordering::Relaxed);
        let key = CacheKey::new(query, &decision);
        let cached = lock(&self.cache).get(key);
        if let Some(verdict) = cached {
            self.counts.cache_hits.fetch_add(1, Ordering::Relaxed);
            let mut decision = self.apply(decision, &verdict);
            decision.reason.push_str(" (cached)");
            return decision;
        }
        self.counts.cache_misses.fetch_add(1, Ordering::Relaxed);

        let verdict = if let Some(paused) = self.paused() {
            Err(paused)
        } else {
            match self.turn(key) {
                Turn::Wait(answer) => {
                    self.counts.shared.fetch_add(1, Ordering::Relaxed);
                    self.wait_for(answer).await.map(|verdict| (verdict, " (shared)"))
                }
                Turn::Ask(asking) => {
                    let outcome = match self.limit.try_take() {
                        Some(slot) => self.ask_judge(query, &decision, candidates, slot).await,
                        None => Err(JudgeError::Busy(self.limit.allowed())),
                    };
                    if let Ok(verdict) = &outcome {
                        lock(&self.cache).insert(key, verdict.clone());
                    }
                    asking.answer(&outcome);
                    outcome.map(|verdict| (verdict, ""))
                }
            }
        };
        match verdict {
            Ok((verdict, note)) => {
                let mut decision = self.apply(decision, &verdict);
                decision.reason.push_str(note);
                decision
            }
            Err(error) => {
                let count = match error {
                    JudgeError::Busy(_) => &self.counts.busy,
                    _ => &self.counts.failures,
                };
                count.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(judge = %self.model, %error, "judge unavailable; policy decides");
                let mut decision = decision;
                decision.reason =
                    format!("{}; judge unavailable: {error}; policy decided", decision.reason);
                decision
            }
        }
    }

    /// Whether to ask the judge about `key`, or to wait for the answer to an identical
    /// question already out.
    fn turn(&self, key: CacheKey) -> Turn<'_> {
        let mut asking = lock(&self.asking);
        if let Some(answer) = asking.get(&key) {
            return Turn::Wait(answer.clone());
        }
        let (tx, rx) = watch::channel(None);
        asking.insert(key, rx);
        Turn::Ask(Asking { judge: self, key, tx })
    }

    /// The answer to the identical question another request asked. That question ends
    /// within the budget, so this does too.
    async fn wait_for(&self, mut answer: watch::Receiver<Option<Outcome>>) -> Outcome {
        let answered = tokio::time::timeout(self.timeout, answer.wait_for(Option::is_some)).await;
        match answered {
            Ok(Ok(outcome)) => outcome.clone().unwrap_or(Err(JudgeError::Timeout(self.timeout))),
            Ok(Err(_asker_gone)) => Err(JudgeError::Request(
                "the identical request that asked went away before the answer".into(),
            )),
            Err(_elapsed) => Err(JudgeError::Timeout(self.timeout)),
        }
    }

    fn apply(&self, decision: Decision, verdict: &Verdict) -> Decision {
        if decision.model != verdict.model {
            self.counts.overrides.fetch_add(1, Ordering::Relaxed);
        }
        judge::apply(decision, verdict)
    }

    /// One call to the judge, within the budget, validated.
    async fn ask_judge(
        &self,
        query: &str,
        decision: &Decision,
        candidates: &[JudgeCandidateInfo<'_>],
        slot: limit::Slot<'_>,
    ) -> Result<Verdict, JudgeError> {
        let options = judge::options(decision);
        let prompt = judge::prompt(query, decision, candidates);
        let schema = judge::schema(&options);
        self.counts.calls.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = tokio::time::timeout(self.timeout, self.call(&prompt, schema)).await;
        let elapsed = started.elapsed();
        self.record_latency(elapsed);
        // Only the judge's pace moves the limit: an error says nothing about how many
        // questions it can take. A question that timed out behind others says the judge was
        // sent too many, which the limit answers; only one that had the judge to itself
        // counts towards pausing it as failed.
        let mut failed = true;
        let result = match answer {
            Err(_elapsed) => {
                failed = slot.timed_out();
                self.counts.timeouts.fetch_add(1, Ordering::Relaxed);
                Err(JudgeError::Timeout(self.timeout))
            }
            Ok(Err(error)) => Err(error),
            Ok(Ok(content)) => {
                slot.answered(elapsed);
                judge::parse_answer(&content, &options).map_err(|e| {
                    self.counts.invalid.fetch_add(1, Ordering::Relaxed);
                    JudgeError::Invalid(e)
                })
            }
        };
        match &result {
            Ok(_) => {
                self.counts.consecutive_failures.store(0, Ordering::Relaxed);
                lock(&self.health).reachable = Some(true);
            }
            Err(error) => self.note_failure(error, failed),
        }
        result
    }

    /// Sends the question and returns the answer's text.
    async fn call(&self, prompt: &Prompt, schema: Value) -> Result<String, JudgeError> {
        let messages = json!([
            { "role": "system", "content": prompt.system },
            { "role": "user", "content": prompt.user },
        ]);
        let (endpoint, body) = match self.api {
            JudgeApi::Ollama => (
                format!("{}/api/chat", self.url),
                json!({
                    "model": self.model,
                    "messages": messages,
                    "stream": false,
                    "format": schema,
                    "options": { "temperature": 0, "num_predict": MAX_ANSWER_TOKENS },
                    "keep_alive": self.keep_alive,
                }),
            ),
            JudgeApi::Openai => (
                format!("{}/chat/completions", self.url),
                json!({
                    "model": self.model,
                    "messages": messages,
                    "stream": false,
                    "temperature": 0,
                    "max_tokens": MAX_ANSWER_TOKENS,
                    "response_format": {
                        "type": "json_schema",
                        "json_schema": { "name": "route", "schema": schema, "strict": true },
                    },
                }),
            ),
        };
        let response =
            self.authorized(self.client.local().post(&endpoint)).json(&body).send().await;
        let bytes = self.read(response, &endpoint).await?;
        match self.api {
            JudgeApi::Ollama => {
                let reply: OllamaReply =
                    serde_json::from_slice(&bytes).map_err(|e| JudgeError::Reply(e.to_string()))?;
                Ok(reply.message.content)
            }
            JudgeApi::Openai => {
                let reply: OpenAiReply =
                    serde_json::from_slice(&bytes).map_err(|e| JudgeError::Reply(e.to_string()))?;
                let message = reply
                    .choices
                    .into_iter()
                    .next()
                    .ok_or_else(|| JudgeError::Reply("no choices".into()))?
                    .message;
                match (message.content, message.refusal) {
                    (Some(content), _) => Ok(content),
                    (None, Some(refusal)) => {
                        Err(JudgeError::Reply(format!("refused: {}", clip(&refusal))))
                    }
                    (None, None) => Err(JudgeError::Reply("the message has no content".into())),
                }
            }
        }
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.api, &self.api_key) {
            (JudgeApi::Openai, Some(key)) => request.bearer_auth(key.expose_secret()),
            _ => request,
        }
    }

    /// The body of a successful response; an error status becomes [`JudgeError::Status`]
    /// with the server's own message.
    async fn read(
        &self,
        response: reqwest::Result<reqwest::Response>,
        endpoint: &str,
    ) -> Result<bytes::Bytes, JudgeError> {
        let response = response.map_err(|e| transport_error(&e, endpoint))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport_error(&e, endpoint))?;
        lock(&self.health).reachable = Some(true);
        if !status.is_success() {
            return Err(JudgeError::Status {
                status: status.as_u16(),
                message: error_message(&bytes),
            });
        }
        Ok(bytes)
    }

    fn record_latency(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.counts.last_latency_us.store(us, Ordering::Relaxed);
        self.counts.latency_total_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Records a call that produced no verdict; `toward_pause` when it says the judge is
    /// failing rather than overloaded.
    fn note_failure(&self, error: &JudgeError, toward_pause: bool) {
        let mut health = lock(&self.health);
        health.last_error = Some(error.to_string());
        if !toward_pause {
            return;
        }
        let failures = self.counts.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if matches!(error, JudgeError::Connect(_)) {
            health.reachable = Some(false);
        }
        if self.failures_before_pause > 0 && failures >= self.failures_before_pause {
            self.counts.consecutive_failures.store(0, Ordering::Relaxed);
            health.paused_until = Some(Instant::now() + self.pause);
            tracing::warn!(
                judge = %self.model,
                %error,
                pause_s = self.pause.as_secs_f64(),
                "the judge failed {failures} times in a row; the policy decides alone for a while"
            );
        }
    }

    /// Why the judge is not being asked right now, if it is paused.
    fn paused(&self) -> Option<JudgeError> {
        let mut health = lock(&self.health);
        let until = health.paused_until?;
        let now = Instant::now();
        if now >= until {
            health.paused_until = None;
            return None;
        }
        let last = health.last_error.clone().unwrap_or_default();
        Some(JudgeError::Paused {
            remaining: until - now,
            failures: self.failures_before_pause,
            last,
        })
    }

    /// Asks the judge's server which models it has (`GET /api/tags`, or `GET /models` for
    /// an OpenAI-compatible server) and records whether it is reachable and the model is
    /// there. The gateway runs either way; this only informs the operator. A probe that
    /// finds the model ends a pause.
    pub async fn probe(&self) -> ProbeReport {
        let endpoint = match self.api {
            JudgeApi::Ollama => format!("{}/api/tags", self.url),
            JudgeApi::Openai => format!("{}/models", self.url),
        };
        let request = self.authorized(self.client.local().get(&endpoint)).send();
        let listed = match tokio::time::timeout(self.timeout.max(MIN_PROBE_TIMEOUT), request).await
        {
            Err(_) => Err(JudgeError::Timeout(self.timeout.max(MIN_PROBE_TIMEOUT))),
            Ok(response) => match self.read(response, &endpoint).await {
                Ok(bytes) => self.listed_models(&bytes),
                Err(error) => Err(error),
            },
        };
        let report = match listed {
            Ok(models) => ProbeReport {
                reachable: true,
                model_present: models.iter().any(|m| same_model(m, &self.model)),
                models,
                error: None,
            },
            Err(error) => ProbeReport {
                reachable: !matches!(error, JudgeError::Connect(_) | JudgeError::Timeout(_)),
                model_present: false,
                models: Vec::new(),
                error: Some(error.to_string()),
            },
        };
        let mut health = lock(&self.health);
        health.reachable = Some(report.reachable);
        health.model_present = Some(report.model_present);
        if let Some(error) = &report.error {
            health.last_error = Some(error.clone());
        }
        if report.model_present {
            health.paused_until = None;
            self.counts.consecutive_failures.store(0, Ordering::Relaxed);
        }
        drop(health);
        match (&report.error, report.model_present) {
            (None, true) => {
                tracing::info!(judge = %self.model, url = %self.url, "judge model present")
            }
            (None, false) => tracing::warn!(
                judge = %self.model,
                url = %self.url,
                available = %report.models.join(", "),
                "the judge's server does not have the model; the policy will decide alone"
            ),
            (Some(error), _) => tracing::warn!(
                judge = %self.model,
                url = %self.url,
                %error,
                "the judge is not reachable; the policy will decide alone"
            ),
        }
        report
    }

    fn listed_models(&self, bytes: &[u8]) -> Result<Vec<String>, JudgeError> {
        let unreadable = |e: serde_json::Error| JudgeError::Reply(e.to_string());
        Ok(match self.api {
            JudgeApi::Ollama => {
                let tags: OllamaTags = serde_json::from_slice(bytes).map_err(unreadable)?;
                tags.models.into_iter().map(|m| m.name.or(m.model).unwrap_or_default()).collect()
            }
            JudgeApi::Openai => {
                let list: OpenAiModels = serde_json::from_slice(bytes).map_err(unreadable)?;
                list.data.into_iter().map(|m| m.id).collect()
            }
        })
    }

    /// Loads the model into the judge's memory ahead of the first question (Ollama's
    /// documented preload: a chat with no messages), so that the first routed request does
    /// not pay for a cold start it cannot afford. A no-op for OpenAI-compatible servers,
    /// which have no such call.
    pub async fn warm_up(&self) -> Result<(), JudgeError> {
        if self.api != JudgeApi::Ollama {
            return Ok(());
        }
        let endpoint = format!("{}/api/chat", self.url);
        let body = json!({ "model": self.model, "messages": [], "keep_alive": self.keep_alive });
        let request = self.client.local().post(&endpoint).json(&body).send();
        let response = tokio::time::timeout(WARM_UP_TIMEOUT, request)
            .await
            .map_err(|_| JudgeError::Timeout(WARM_UP_TIMEOUT))?;
        let read = tokio::time::timeout(WARM_UP_TIMEOUT, self.read(response, &endpoint))
            .await
            .map_err(|_| JudgeError::Timeout(WARM_UP_TIMEOUT))?;
        read.map(drop)
    }

    /// Counters and health, for the dashboard.
    pub fn status(&self) -> JudgeStatus {
        let c = &self.counts;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (hits, misses, calls) = (load(&c.cache_hits), load(&c.cache_misses), load(&c.calls));
        let cache_entries = lock(&self.cache).len();
        let health = lock(&self.health);
        let ms = |us: u64| us as f64 / 1000.0;
        JudgeStatus {
            mode: self.mode,
            api: match self.api {
                JudgeApi::Ollama => "ollama",
                JudgeApi::Openai => "openai",
            },
            url: self.url.clone(),
            model: self.model.clone(),
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            reachable: health.reachable,
            model_present: health.model_present,
            consulted: load(&c.consulted),
            skipped: load(&c.skipped),
            calls,
            failures: load(&c.failures),
            timeouts: load(&c.timeouts),
            busy: load(&c.busy),
            shared: load(&c.shared),
            in_flight: self.limit.in_flight(),
            allowed_in_flight: self.limit.allowed(),
            max_in_flight: self.limit.max(),
            invalid_answers: load(&c.invalid),
            overrides: load(&c.overrides),
            cache_hits: hits,
            cache_misses: misses,
            cache_hit_rate: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
            cache_entries,
            last_latency_ms: (calls > 0).then(|| ms(load(&c.last_latency_us))),
            mean_latency_ms: (calls > 0).then(|| ms(load(&c.latency_total_us)) / calls as f64),
            last_error: health.last_error.clone(),
            paused: health.paused_until.is_some_and(|until| Instant::now() < until),
        }
    }
}

/// What one question to the judge came to.
type Outcome = Result<Verdict, JudgeError>;

enum Turn<'a> {
    /// An identical question is out: wait for its answer.
    Wait(watch::Receiver<Option<Outcome>>),
    /// Ask, and let identical requests wait on this.
    Ask(Asking<'a>),
}

/// A question out, known to identical requests until it is answered or abandoned.
struct Asking<'a> {
    judge: &'a Judge,
    key: CacheKey,
    tx: watch::Sender<Option<Outcome>>,
}

impl Asking<'_> {
    fn answer(self, outcome: &Outcome) {
        self.tx.send_replace(Some(outcome.clone()));
    }
}

impl Drop for Asking<'_> {
    /// Answered or not (the request went away), the question is no longer out; waiters on an
    /// abandoned one see the sender gone.
    fn drop(&mut self) {
        lock(&self.judge.asking).remove(&self.key);
    }
}

/// Ollama reads a string `keep_alive` as a Go duration ("30m") and a number as seconds; a
/// config value such as "-1" or "300" means the number.
fn keep_alive(value: &str) -> Value {
    let value = value.trim();
    match value.parse::<i64>() {
        Ok(seconds) => Value::from(seconds),
        Err(_) => Value::from(value),
    }
}

/// Whether two Ollama model names are the same model: a name without a tag is `:latest`.
fn same_model(listed: &str, configured: &str) -> bool {
    fn base(name: &str) -> &str {
        name.strip_suffix(":latest").unwrap_or(name)
    }
    base(listed.trim()).eq_ignore_ascii_case(base(configured.trim()))
}

fn transport_error(error: &reqwest::Error, endpoint: &str) -> JudgeError {
    if error.is_connect() {
        return JudgeError::Connect(endpoint.to_string());
    }
    // The innermost cause is the informative part ("connection reset by peer").
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    JudgeError::Request(clip(&cause.to_string()))
}

/// The message of an error body: Ollama's `{"error": "..."}`, OpenAI's
/// `{"error": {"message": "..."}}`, or the text itself.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let error = v.get("error")?;
        error.as_str().or_else(|| error.get("message")?.as_str()).map(str::to_string)
    });
    match message {
        Some(message) => clip(&message),
        None => clip(&String::from_utf8_lossy(body)),
    }
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// Locks a mutex whose data stays consistent even if a holder panicked (every critical
/// section here is a few field writes).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Deserialize)]
struct OllamaReply {
    message: OllamaMessage,
}

#[derive(Deserialize)]
struct OllamaMessage {
    content: String,
}

#[derive(Deserialize)]
struct OllamaTags {
    models: Vec<OllamaTag>,
}

#[derive(Deserialize)]
struct OllamaTag {
    name: Option<String>,
    model: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiReply {
    choices: Vec<OpenAiChoice>,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: OpenAiMessage,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    content: Option<String>,
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiModels {
    data: Vec<OpenAiModel>,
}

#[derive(Deserialize)]
struct OpenAiModel {
    id: String,
}

/// Verdicts by question, least recently used evicted first. A capacity of zero caches
/// nothing.
#[derive(Debug)]
struct VerdictCache {
    capacity: usize,
    /// Increases on every use; an entry's tick says when it was last used.
    tick: u64,
    entries: HashMap<CacheKey, (Verdict, u64)>,
    /// Entries by last use, oldest first.
    by_use: BTreeMap<u64, CacheKey>,
}

impl VerdictCache {
    fn new(capacity: usize) -> Self {
        VerdictCache { capacity, tick: 0, entries: HashMap::new(), by_use: BTreeMap::new() }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn get(&mut self, key: CacheKey) -> Option<Verdict> {
        let (verdict, used) = self.entries.get_mut(&key)?;
        self.by_use.remove(used);
        self.tick += 1;
        *used = self.tick;
        self.by_use.insert(self.tick, key);
        Some(verdict.clone())
    }

    fn insert(&mut self, key: CacheKey, verdict: Verdict) {
        if self.capacity == 0 {
            return;
        }
        match self.entries.get(&key) {
            Some((_, used)) => {
                self.by_use.remove(used);
            }
            None if self.entries.len() >= self.capacity => {
                if let Some((_, oldest)) = self.by_use.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
            None => {}
        }
        self.tick += 1;
        self.entries.insert(key, (verdict, self.tick));
        self.by_use.insert(self.tick, key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::Domain;

    fn verdict(model: &str) -> Verdict {
        Verdict { model: model.into(), domain: Domain::Code, reason: "r".into() }
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used() {
        let mut cache = VerdictCache::new(2);
        cache.insert(CacheKey(1), verdict("a"));
        cache.insert(CacheKey(2), verdict("b"));
        assert_eq!(cache.get(CacheKey(1)).map(|v| v.model), Some("a".into()));
        cache.insert(CacheKey(3), verdict("c"));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(CacheKey(2)).is_none(), "2 was used least recently");
        assert!(cache.get(CacheKey(1)).is_some());
        assert!(cache.get(CacheKey(3)).is_some());
        // Replacing an entry does not evict another.
        cache.insert(CacheKey(3), verdict("d"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(CacheKey(3)).map(|v| v.model), Some("d".into()));
        assert_eq!(cache.by_use.len(), cache.entries.len());

        let mut none = VerdictCache::new(0);
        none.insert(CacheKey(1), verdict("a"));
        assert!(none.get(CacheKey(1)).is_none());
    }

    #[test]
    fn the_cache_stays_bounded_under_many_keys() {
        let mut cache = VerdictCache::new(100);
        for i in 0..10_000u64 {
            cache.insert(CacheKey(i), verdict("m"));
            if i % 3 == 0 {
                cache.get(CacheKey(i / 2));
            }
        }
        assert_eq!(cache.len(), 100);
        assert_eq!(cache.by_use.len(), 100);
        assert!(cache.get(CacheKey(9_999)).is_some());
    }

    #[test]
    fn model_names_match_with_or_without_the_latest_tag() {
        assert!(same_model("llama3:latest", "llama3"));
        assert!(same_model("llama3", "llama3:latest"));
        assert!(same_model("llama3", "llama3"));
        assert!(!same_model("llama3:70b", "llama3"));
        assert!(!same_model("llama3.1:latest", "llama3"));
    }

    #[test]
    fn keep_alive_numbers_are_sent_as_numbers() {
        assert_eq!(keep_alive("30m"), json!("30m"));
        assert_eq!(keep_alive("-1"), json!(-1));
        assert_eq!(keep_alive(" 300 "), json!(300));
    }

    #[test]
    fn error_bodies_yield_the_servers_message() {
        assert_eq!(error_message(br#"{"error":"model not found"}"#), "model not found");
        assert_eq!(error_message(br#"{"error":{"message":"bad key","type":"auth"}}"#), "bad key");
        assert_eq!(error_message(b"  upstream exploded "), "upstream exploded");
        assert!(error_message("x".repeat(1000).as_bytes()).chars().count() <= MAX_ERROR_CHARS + 1);
    }
}
