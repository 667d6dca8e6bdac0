//! The wire: every format the gateway speaks, to clients and to upstreams.
//!
//! - [`chat`]: the neutral request, response and stream-event model that everything else
//!   translates into and out of.
//! - [`openai`], [`anthropic`], [`ollama`]: each wire format's JSON shapes, and translation
//!   between them and the neutral model — requests, responses and streams, both directions
//!   (a client's format in, any upstream's format out).
//! - [`sse`]: Server-Sent Events parsing (incremental, split at any byte) and writing.
//! - [`upstream`]: the HTTP client for one upstream deployment, with failures mapped to
//!   [`UpstreamError`].
//! - [`usage`]: token usage and its cost from configured prices.

pub mod chat;
pub mod error;

pub use chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, StreamEvent,
    ToolCall, ToolChoice, ToolDef, Usage,
};
pub use error::UpstreamError;
