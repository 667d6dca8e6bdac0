//! Simulated LLM providers served over real HTTP on loopback, for the demo, the gateway's
//! tests, SDK conformance tests and load benchmarks.
//!
//! One [`SimServer`] hosts any number of [`SimModel`]s and speaks three wire formats, each
//! in the real provider's documented shape:
//!
//! | endpoint | format |
//! | --- | --- |
//! | `POST /v1/chat/completions` | OpenAI chat completions: JSON, or SSE chunks ending in `data: [DONE]`, with the usage chunk when `stream_options.include_usage` is set; tool calls |
//! | `POST /v1/messages` | Anthropic Messages: JSON, or the event stream `message_start`, `content_block_start`, `ping`, `content_block_delta` (`text_delta` / `input_json_delta`), `content_block_stop`, `message_delta`, `message_stop`; tool use |
//! | `POST /api/chat` | Ollama chat: NDJSON streaming by default, one JSON object with `stream: false`; tool calls; and the fake judge |
//! | `GET /api/tags`, `GET /api/version` | Ollama listings |
//! | `GET /v1/models` | OpenAI's model list, or Anthropic's when `anthropic-version` is sent |
//!
//! A request's `model` picks the model; an unknown one gets the provider's own 404.
//!
//! # Answers
//!
//! Answers are deterministic: `[model-name] ` followed by text derived from the last user
//! message in the model's [`Style`], so a test can tell which model answered. Token usage
//! is estimated the same way everywhere ([`estimate_tokens`]: a token per CJK character,
//! one per four other characters), so verbose models cost more than terse ones. When the
//! request offers tools and the last user message asks for one ("use the tool", "call …",
//! "调用", "工具") or the tool choice demands it, the model calls the first (or the named)
//! tool with arguments made up from its JSON schema; when the last message is a tool
//! result, the answer quotes it.
//!
//! # Behaviour
//!
//! Each model's [`Behavior`] (style, [`Latency`], [`FaultPlan`], required API key) can be
//! replaced while the server runs ([`SimServer::set_behavior`]). Faults hit requests on a
//! deterministic [`Schedule`]: always, the first *n*, or a seeded rate. They include error
//! responses in each provider's error JSON (500, 429 with `retry-after`, 503/529
//! overloaded, 401, 400 context length), hanging, and streams that break part-way
//! ([`StreamBreak`]). Streams are truly incremental: each chunk is flushed as produced, one
//! [`Latency::per_chunk`] apart.
//!
//! # The fake judge
//!
//! A call to `/api/chat` that names the [`JudgeConfig`] model or carries `format` is a
//! judge call. It is held to Ollama's structured-output shape, strictly: `model`, a
//! non-empty `messages` list of `{role, content}` (roles system/user/assistant/tool,
//! string content), `format` a JSON schema object, `"stream": false` (Ollama streams when
//! it is absent), `options.temperature` a number, and `keep_alive`, if present, a number
//! or a Go duration string. Anything else gets 400 with Ollama's `{"error": "..."}` and is
//! counted as rejected. An empty `messages` list without `format` is a model preload and
//! gets `done_reason: "load"`, as Ollama documents. A valid call is answered per
//! [`JudgeBehavior`]: by default `message.content` is a JSON string conforming to the
//! schema (the first value of each enum); tests can script a fixed answer, prose, a
//! schema violation, a delay, an HTTP error or a hang ([`SimServer::set_judge`]).
//!
//! # Observing
//!
//! [`SimServer::stats`] counts requests, completions, cancellations (the client went away
//! mid-answer: the handler future or the body stream was dropped), injected faults and
//! rejections, per [`Endpoint`] and per model. [`SimServer::requests`] keeps the last
//! requests with headers and body.
//!
//! # Failing hosts
//!
//! [`SimServer::kill`] stops listening and drops every open connection at once;
//! [`RefusedPort`] holds a port that refuses connections.

#![warn(missing_docs)]

mod answer;
mod anthropic;
mod config;
mod exchange;
mod ollama;
mod openai;
mod record;
mod schema;
mod server;
mod stats;
mod stream;

pub use answer::estimate_tokens;
pub use config::{
    Behavior, Fault, FaultPlan, JudgeBehavior, JudgeConfig, JudgeReply, Latency, Probability,
    Schedule, SimConfig, SimModel, StreamBreak, Style,
};
pub use ollama::OLLAMA_VERSION;
pub use record::RecordedRequest;
pub use server::{RefusedPort, SimServer};
pub use stats::{Counts, Endpoint, SimStats};

/// Why a simulated server could not be started or changed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration contradicts itself.
    #[error("invalid simulator configuration: {0}")]
    InvalidConfig(String),
    /// No model of that name is hosted.
    #[error("no simulated model named {0:?}")]
    UnknownModel(String),
}
