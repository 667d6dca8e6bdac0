//! What a simulated server hosts and how each of its models behaves.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::time::Duration;

use serde_json::Value;

use crate::SimError;

/// Everything [`SimServer::start`](crate::SimServer::start) needs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen. The default, `127.0.0.1:0`, picks a free loopback port.
    pub addr: SocketAddr,
    /// The models this server answers for; a request's `model` field picks one.
    pub models: Vec<SimModel>,
    /// The fake Ollama judge, if this server should act as one (see [`JudgeConfig`]).
    pub judge: Option<JudgeConfig>,
    /// How many recent requests [`SimServer::requests`](crate::SimServer::requests) keeps.
    /// Zero turns recording off, which a load benchmark may want.
    pub record_limit: usize,
    /// Reject `/v1/messages` requests that lack an `anthropic-version` header, as the real
    /// Anthropic API does.
    pub require_anthropic_version: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            models: Vec::new(),
            judge: None,
            record_limit: 256,
            require_anthropic_version: false,
        }
    }
}

impl SimConfig {
    /// An empty configuration listening on a free loopback port.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model.
    #[must_use]
    pub fn model(mut self, model: SimModel) -> Self {
        self.models.push(model);
        self
    }

    /// Makes the server a fake Ollama judge too.
    #[must_use]
    pub fn judge(mut self, judge: JudgeConfig) -> Self {
        self.judge = Some(judge);
        self
    }

    /// Listens on `addr` instead of a free loopback port (e.g. to come back on the port of
    /// a server that was killed).
    #[must_use]
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        let mut names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        if let Some(judge) = &self.judge {
            names.push(&judge.model);
        }
        if let Some(empty) = names.iter().find(|n| n.is_empty()) {
            return Err(SimError::InvalidConfig(format!("model name {empty:?} is empty")));
        }
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(SimError::InvalidConfig(format!(
                "model {:?} is configured twice",
                pair[0]
            )));
        }
        Ok(())
    }
}

/// One simulated model.
#[derive(Debug, Clone)]
pub struct SimModel {
    /// The name clients put in the request's `model` field; also the `[name]` prefix of
    /// every answer, so a test can see which model answered.
    pub name: String,
    /// How it behaves; replaceable at run time with
    /// [`SimServer::set_behavior`](crate::SimServer::set_behavior).
    pub behavior: Behavior,
}

impl SimModel {
    /// A well-behaved, instant model with the [`Style::Balanced`] style.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), behavior: Behavior::default() }
    }

    /// Sets the whole behaviour.
    #[must_use]
    pub fn behavior(mut self, behavior: Behavior) -> Self {
        self.behavior = behavior;
        self
    }

    /// Sets the answer style.
    #[must_use]
    pub fn style(mut self, style: Style) -> Self {
        self.behavior.style = style;
        self
    }

    /// Sets the timing.
    #[must_use]
    pub fn latency(mut self, latency: Latency) -> Self {
        self.behavior.latency = latency;
        self
    }

    /// Injects a fault on the requests its schedule picks.
    #[must_use]
    pub fn fault(mut self, plan: FaultPlan) -> Self {
        self.behavior.fault = Some(plan);
        self
    }

    /// Requires this API key (`Authorization: Bearer` for OpenAI and Ollama, `x-api-key` for
    /// Anthropic).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.behavior.api_key = Some(key.into());
        self
    }
}

/// How a model answers: style, timing, faults, credentials.
#[derive(Debug, Clone, Default)]
pub struct Behavior {
    /// The shape of its answers.
    pub style: Style,
    /// How long it takes.
    pub latency: Latency,
    /// A fault to inject, and on which requests.
    pub fault: Option<FaultPlan>,
    /// The API key it demands; `None` accepts any request.
    pub api_key: Option<String>,
}

/// The shape of a model's answers. Every answer starts with `[model-name] ` and is a pure
/// function of the prompt, so tests can predict it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// One short sentence.
    Terse,
    /// Two sentences.
    #[default]
    Balanced,
    /// A paragraph of several sentences: many more output tokens, so it costs more.
    Verbose,
    /// Answers in Chinese first, with a short English gloss.
    ChineseFirst,
    /// Repeats the last user message back.
    Echo,
}

/// How long a model takes to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Before the response head is sent: the fixed part of the latency, and the time to the
    /// first byte.
    pub first_byte: Duration,
    /// Between two streamed content chunks (one chunk per word or CJK character). A
    /// non-streaming answer waits as long in total, since a real model generates the whole
    /// answer before replying.
    pub per_chunk: Duration,
}

impl Latency {
    /// Answers immediately.
    pub const INSTANT: Self = Self { first_byte: Duration::ZERO, per_chunk: Duration::ZERO };

    /// Generates `chunks_per_second` chunks a second after `first_byte`.
    pub fn new(first_byte: Duration, chunks_per_second: f64) -> Self {
        let per_chunk = if chunks_per_second.is_finite() && chunks_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / chunks_per_second)
        } else {
            Duration::ZERO
        };
        Self { first_byte, per_chunk }
    }
}

/// A fault and the requests it hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    /// What goes wrong.
    pub fault: Fault,
    /// On which requests.
    pub schedule: Schedule,
}

impl FaultPlan {
    /// `fault` on every request.
    pub fn always(fault: Fault) -> Self {
        Self { fault, schedule: Schedule::Always }
    }

    /// `fault` on the first `n` requests after the plan is installed, then recovery.
    pub fn first(n: u64, fault: Fault) -> Self {
        Self { fault, schedule: Schedule::First(n) }
    }

    /// `fault` on a seeded pseudo-random share of requests.
    pub fn rate(probability: Probability, seed: u64, fault: Fault) -> Self {
        Self { fault, schedule: Schedule::Rate { probability, seed } }
    }
}

/// Which requests a [`FaultPlan`] hits. Counting starts again whenever a behaviour is
/// installed, so the same sequence of requests meets the same faults in every run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Every request.
    Always,
    /// The first `n` requests.
    First(u64),
    /// Each request with this probability, drawn from a generator seeded with `seed`.
    Rate {
        /// The chance that a request is hit.
        probability: Probability,
        /// The seed of the deterministic draw.
        seed: u64,
    },
}

/// A probability in `0.0..=1.0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Probability(f64);

impl Probability {
    /// Never.
    pub const NEVER: Self = Self(0.0);
    /// Always.
    pub const ALWAYS: Self = Self(1.0);

    /// `p` if it lies in `0.0..=1.0`.
    pub fn new(p: f64) -> Result<Self, SimError> {
        if (0.0..=1.0).contains(&p) {
            Ok(Self(p))
        } else {
            Err(SimError::InvalidConfig(format!("probability {p} is outside 0..=1")))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// Something going wrong, rendered in the wire format of the endpoint that was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 with the provider's server-error body.
    ServerError,
    /// HTTP 429 with a `retry-after` header (whole seconds, rounded up) and, for OpenAI
    /// clients, `retry-after-ms`.
    RateLimited {
        /// The wait the client is asked for.
        retry_after: Duration,
    },
    /// The provider is overloaded: HTTP 529 `overloaded_error` on the Anthropic endpoint,
    /// HTTP 503 elsewhere.
    Overloaded,
    /// HTTP 401, as if the API key were wrong.
    Unauthorized,
    /// HTTP 400 saying the prompt exceeds the context window.
    ContextLength,
    /// Accept the request and never answer (until the client gives up).
    Hang,
    /// Answer normally, then go wrong after `after_chunks` content chunks. A non-streaming
    /// request is broken the same way at the byte level.
    BreakStream {
        /// Content chunks sent before the break.
        after_chunks: usize,
        /// How the stream breaks.
        how: StreamBreak,
    },
}

/// How a stream goes wrong part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamBreak {
    /// Close the connection abruptly, without ending the HTTP body.
    Disconnect,
    /// Send one malformed (truncated JSON) chunk, then end the body normally.
    MalformedChunk,
    /// Send the provider's in-stream error (Anthropic `event: error`, an OpenAI `error`
    /// object, an Ollama `{"error": ...}` line), then end the body normally.
    ErrorEvent,
    /// Stop sending, keeping the connection open, until the client gives up.
    Stall,
}

/// The fake Ollama judge: a model name and a script.
///
/// A request to `/api/chat` takes the judge path when it names the judge model or carries
/// `format`. On that path the request is held to Ollama's documented shape for a
/// structured-output call (see the crate docs) and answered per [`JudgeBehavior`].
#[derive(Debug, Clone)]
pub struct JudgeConfig {
    /// The judge's model name, listed by `/api/tags`.
    pub model: String,
    /// How it answers.
    pub behavior: JudgeBehavior,
    /// Calls answered at once, at most; later ones wait their turn, as Ollama queues what
    /// exceeds `OLLAMA_NUM_PARALLEL`. `None` answers every call at once.
    pub parallel: Option<NonZeroUsize>,
}

impl JudgeConfig {
    /// A judge named `model` that answers from the schema.
    pub fn new(model: impl Into<String>) -> Self {
        Self { model: model.into(), behavior: JudgeBehavior::default(), parallel: None }
    }

    /// Answers `n` calls at a time and queues the rest.
    #[must_use]
    pub fn parallel(mut self, n: NonZeroUsize) -> Self {
        self.parallel = Some(n);
        self
    }

    /// Answers as `behavior` says.
    #[must_use]
    pub fn behavior(mut self, behavior: JudgeBehavior) -> Self {
        self.behavior = behavior;
        self
    }
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self::new("llama3.1:8b")
    }
}

/// How the judge answers a valid request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JudgeBehavior {
    /// What it answers.
    pub reply: JudgeReply,
    /// How long it thinks first.
    pub delay: Duration,
}

impl JudgeBehavior {
    /// Answers `reply` at once.
    pub fn reply(reply: JudgeReply) -> Self {
        Self { reply, delay: Duration::ZERO }
    }

    /// Answers after `delay`.
    #[must_use]
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// The judge's answer to a valid request.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum JudgeReply {
    /// An object conforming to the request's `format` schema: the first value of every
    /// enum, plausible strings and numbers elsewhere.
    #[default]
    FromSchema,
    /// Exactly this object (serialised into `message.content`).
    Fixed(Value),
    /// Prose instead of JSON.
    NotJson,
    /// Valid JSON that breaks the schema (an enum value outside the enum, or a required
    /// property missing).
    ViolatesSchema,
    /// An HTTP error with this status and Ollama's `{"error": ...}` body.
    HttpError(u16),
    /// Never answer.
    Hang,
}
