//! Anthropic Messages: `POST /v1/messages`, unary and streaming (message_start,
//! content_block_start, ping, content_block_delta with text_delta / input_json_delta,
//! content_block_stop, message_delta, message_stop; `event: error` when broken), tool use,
//! and Anthropic's error bodies.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::answer::{self, Finish, Prompt, Reply, ToolChoice, ToolSpec};
use crate::exchange::{self, ApiError, ChatCall, Context, Wire};
use crate::server::Shared;
use crate::stream::{Frame, StreamPlan};

pub(crate) struct Anthropic;

impl Wire for Anthropic {
    fn parse(body: &Value, headers: &HeaderMap, shared: &Shared) -> Result<ChatCall, ApiError> {
        let invalid = |m: &str| ApiError::InvalidRequest(m.to_owned());
        if shared.require_anthropic_version && !headers.contains_key("anthropic-version") {
            return Err(invalid("anthropic-version: header is required"));
        }
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("model: Field required"))?;
        let max_tokens = body
            .get("max_tokens")
            .and_then(Value::as_u64)
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid("max_tokens: Field required"))?;
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| invalid("messages: at least one message is required"))?;
        let mut texts = Vec::with_capacity(messages.len() + 1);
        if let Some(system) = body.get("system") {
            texts.push(exchange::content_text(system));
        }
        let mut last_user = String::new();
        let mut tool_result = None;
        for (i, message) in messages.iter().enumerate() {
            let role = message.get("role").and_then(Value::as_str);
            if !matches!(role, Some("user" | "assistant")) {
                return Err(invalid(&format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                )));
            }
            let content = message.get("content").unwrap_or(&Value::Null);
            let text = exchange::content_text(content);
            let results = tool_results(content);
            if i + 1 == messages.len() && !results.is_empty() {
                tool_result = Some(results.clone());
            }
            if role == Some("user") && !text.is_empty() {
                last_user.clone_from(&text);
            }
            texts.push(text);
            texts.push(results);
        }
        let tools_json = body.get("tools").filter(|t| !t.is_null());
        let tools = tools_json
            .and_then(Value::as_array)
            .map(|tools| tools.iter().filter_map(tool_spec).collect())
            .unwrap_or_default();
        let tool_choice = match body.pointer("/tool_choice/type").and_then(Value::as_str) {
            Some("none") => ToolChoice::None,
            Some("any") => ToolChoice::Required,
            Some("tool") => match body.pointer("/tool_choice/name").and_then(Value::as_str) {
                Some(name) => ToolChoice::Named(name.to_owned()),
                None => return Err(invalid("tool_choice.tool.name: Field required")),
            },
            _ => ToolChoice::Auto,
        };
        let tools_chars = tools_json.map_or(0, |t| t.to_string().len());
        let prompt = Prompt {
            prompt_tokens: answer::prompt_tokens(
                texts.iter().map(String::as_str).filter(|t| !t.is_empty()),
                tools_chars,
            ),
            last_user,
            tool_result,
            tools,
            tool_choice,
            max_tokens: Some(u32::try_from(max_tokens).unwrap_or(u32::MAX)),
        };
        Ok(ChatCall {
            model: model.to_owned(),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: false,
            prompt,
        })
    }

    fn credential(headers: &HeaderMap) -> Option<&str> {
        headers.get("x-api-key").and_then(|v| v.to_str().ok())
    }

    fn error(error: &ApiError) -> Response {
        let (status, kind, message) = match error {
            ApiError::InvalidRequest(m) => {
                (StatusCode::BAD_REQUEST, "invalid_request_error", m.clone())
            }
            ApiError::UnknownModel(model) => {
                (StatusCode::NOT_FOUND, "not_found_error", format!("model: {model}"))
            }
            ApiError::Unauthorized { .. } => {
                (StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key".to_owned())
            }
            ApiError::ContextLength { tokens } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                format!(
                    "prompt is too long: {tokens} tokens > {} maximum",
                    exchange::CONTEXT_WINDOW
                ),
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit".to_owned(),
            ),
            ApiError::Overloaded => {
                (overloaded_status(), "overloaded_error", "Overloaded".to_owned())
            }
            ApiError::Server => {
                (StatusCode::INTERNAL_SERVER_ERROR, "api_error", "Internal server error".to_owned())
            }
        };
        let body = json!({ "type": "error", "error": { "type": kind, "message": message } });
        exchange::error_response(status, &body, error)
    }

    fn unary(reply: &Reply, cx: &Context<'_>) -> Vec<u8> {
        let (content, output_tokens) = match &reply.tool_call {
            Some(call) => {
                let preface = preface(&call.name);
                let blocks = json!([
                    { "type": "text", "text": preface },
                    { "type": "tool_use", "id": tool_id(cx.id), "name": call.name, "input": call.arguments },
                ]);
                (blocks, reply.completion_tokens + answer::estimate_tokens(&preface))
            }
            None => (json!([{ "type": "text", "text": reply.text() }]), reply.completion_tokens),
        };
        let body = json!({
            "id": message_id(cx.id),
            "type": "message",
            "role": "assistant",
            "model": cx.model,
            "content": content,
            "stop_reason": stop_reason(reply.finish),
            "stop_sequence": null,
            "usage": { "input_tokens": reply.prompt_tokens, "output_tokens": output_tokens },
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn stream(reply: &Reply, cx: &Context<'_>) -> StreamPlan {
        let mut frames = Vec::with_capacity(reply.chunk_count() + 12);
        let start = json!({
            "type": "message_start",
            "message": {
                "id": message_id(cx.id),
                "type": "message",
                "role": "assistant",
                "model": cx.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": { "input_tokens": reply.prompt_tokens, "output_tokens": 1 },
            },
        });
        frames.push(Frame::envelope(exchange::sse_event("message_start", &start)));
        let text_block = |frames: &mut Vec<Frame>, pieces: &mut dyn Iterator<Item = &str>| {
            frames.push(Frame::envelope(exchange::sse_event(
                "content_block_start",
                &json!({ "type": "content_block_start", "index": 0, "content_block": { "type": "text", "text": "" } }),
            )));
            frames.push(Frame::envelope(exchange::sse_event("ping", &json!({ "type": "ping" }))));
            for piece in pieces {
                let delta = json!({ "type": "content_block_delta", "index": 0, "delta": { "type": "text_delta", "text": piece } });
                frames.push(Frame::content(exchange::sse_event("content_block_delta", &delta)));
            }
            frames.push(Frame::envelope(exchange::sse_event(
                "content_block_stop",
                &json!({ "type": "content_block_stop", "index": 0 }),
            )));
        };
        let output_tokens = match &reply.tool_call {
            Some(call) => {
                let preface = preface(&call.name);
                let pieces = answer::split_pieces(&preface);
                text_block(&mut frames, &mut pieces.iter().map(String::as_str));
                let start = json!({
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": { "type": "tool_use", "id": tool_id(cx.id), "name": call.name, "input": {} },
                });
                frames.push(Frame::envelope(exchange::sse_event("content_block_start", &start)));
                for piece in answer::argument_pieces(&call.arguments_json) {
                    let delta = json!({
                        "type": "content_block_delta",
                        "index": 1,
                        "delta": { "type": "input_json_delta", "partial_json": piece },
                    });
                    frames.push(Frame::content(exchange::sse_event("content_block_delta", &delta)));
                }
                frames.push(Frame::envelope(exchange::sse_event(
                    "content_block_stop",
                    &json!({ "type": "content_block_stop", "index": 1 }),
                )));
                reply.completion_tokens + answer::estimate_tokens(&preface)
            }
            None => {
                text_block(&mut frames, &mut reply.pieces.iter().map(String::as_str));
                reply.completion_tokens
            }
        };
        let delta = json!({
            "type": "message_delta",
            "delta": { "stop_reason": stop_reason(reply.finish), "stop_sequence": null },
            "usage": { "output_tokens": output_tokens },
        });
        frames.push(Frame::envelope(exchange::sse_event("message_delta", &delta)));
        frames.push(Frame::envelope(exchange::sse_event(
            "message_stop",
            &json!({ "type": "message_stop" }),
        )));
        StreamPlan {
            content_type: "text/event-stream",
            frames,
            malformed: Bytes::from_static(
                b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"trunc\n\n",
            ),
            error_event: exchange::sse_event(
                "error",
                &json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } }),
            ),
        }
    }
}

/// Anthropic's own status for an overloaded API.
fn overloaded_status() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// The text Claude typically writes before a tool call.
fn preface(tool: &str) -> String {
    format!("I'll use the {tool} tool.")
}

/// The text of the `tool_result` blocks in a message's content.
fn tool_results(content: &Value) -> String {
    let Some(blocks) = content.as_array() else { return String::new() };
    let results: Vec<String> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        .map(|b| b.get("content").map(exchange::content_text).unwrap_or_default())
        .collect();
    results.join("\n")
}

fn tool_spec(tool: &Value) -> Option<ToolSpec> {
    Some(ToolSpec {
        name: tool.get("name")?.as_str()?.to_owned(),
        parameters: tool
            .get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object" })),
    })
}

fn stop_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "end_turn",
        Finish::Length => "max_tokens",
        Finish::ToolUse => "tool_use",
    }
}

fn message_id(id: u64) -> String {
    format!("msg_sim{id:016x}")
}

fn tool_id(id: u64) -> String {
    format!("toolu_sim{id:016x}")
}
