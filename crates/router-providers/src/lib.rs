//! The wire: every format the gateway speaks, to clients and to upstreams.
//!
//! - [`chat`]: the neutral request, response and stream-event model that everything else
//!   translates into and out of.
//! - [`openai`], [`anthropic`], [`ollama`]: each wire format's JSON shapes, and translation
//!   between them and the neutral model — requests, responses and streams, both directions
//!   (a client's format in, any upstream's format out).
//! - [`sse`]: Server-Sent Events parsing (incremental, split at any byte) and writing.
//! - [`upstream`]: the HTTP client for one upstream deployment, with failures mapped to
//!   [`UpstreamError`]; [`HttpClient`]: the connection pools under it, one per thread.
//! - [`usage`]: token usage and its cost from configured prices.
//! - [`api_error`]: the errors the gateway sends its own clients, in any format.

pub mod anthropic;
pub mod api_error;
pub mod chat;
mod client;
pub mod error;
mod json;
pub mod ollama;
pub mod openai;
pub mod sse;
pub mod upstream;
pub mod usage;
mod validate;

pub use api_error::{ApiError, ApiErrorKind, RequestError};
pub use chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, ResponseMeta,
    StreamEvent, ToolCall, ToolChoice, ToolDef, Usage,
};
pub use client::{HttpClient, POOL_IDLE, POOL_MAX_IDLE};
pub use error::{TimeoutPhase, UpstreamError};
pub use upstream::{EventStream, Protocol, Timeouts, Upstream, UpstreamConfig};
pub use usage::StreamAccumulator;
