//! OpenAI chat completions: `POST /v1/chat/completions`, unary and SSE streaming (with the
//! `stream_options.include_usage` usage chunk and `data: [DONE]`), tool calls, and OpenAI's
//! error bodies.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::answer::{self, Finish, Prompt, Reply, ToolChoice, ToolSpec};
use crate::exchange::{self, ApiError, ChatCall, Context, Wire};
use crate::server::Shared;
use crate::stream::{Frame, StreamPlan};

pub(crate) struct OpenAi;

impl Wire for OpenAi {
    fn parse(body: &Value, _headers: &HeaderMap, _shared: &Shared) -> Result<ChatCall, ApiError> {
        let invalid = |m: &str| ApiError::InvalidRequest(m.to_owned());
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("you must provide a model parameter"))?;
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| invalid("Missing required parameter: 'messages'."))?;
        let mut texts = Vec::with_capacity(messages.len());
        let mut last_user = String::new();
        for message in messages {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("Missing required parameter: 'messages[].role'."))?;
            let text = message.get("content").map(exchange::content_text).unwrap_or_default();
            if role == "user" {
                last_user.clone_from(&text);
            }
            texts.push(text);
        }
        let tool_result = messages
            .last()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("tool"))
            .and_then(|_| texts.last().cloned());
        let tools_json = body.get("tools").filter(|t| !t.is_null());
        let tools = tools_json
            .and_then(Value::as_array)
            .map(|tools| tools.iter().filter_map(tool_spec).collect())
            .unwrap_or_default();
        let tool_choice = match body.get("tool_choice") {
            Some(Value::String(s)) if s == "none" => ToolChoice::None,
            Some(Value::String(s)) if s == "required" => ToolChoice::Required,
            Some(choice @ Value::Object(_)) => {
                match choice.pointer("/function/name").and_then(Value::as_str) {
                    Some(name) => ToolChoice::Named(name.to_owned()),
                    None => ToolChoice::Required,
                }
            }
            _ => ToolChoice::Auto,
        };
        let max_tokens = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_u64))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let tools_chars = tools_json.map_or(0, |t| t.to_string().len());
        let prompt = Prompt {
            prompt_tokens: answer::prompt_tokens(texts.iter().map(String::as_str), tools_chars),
            last_user,
            tool_result,
            tools,
            tool_choice,
            max_tokens,
        };
        Ok(ChatCall {
            model: model.to_owned(),
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
            include_usage: body
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            prompt,
        })
    }

    fn credential(headers: &HeaderMap) -> Option<&str> {
        exchange::bearer(headers)
    }

    fn error(error: &ApiError) -> Response {
        let (status, message, kind, code, param) = match error {
            ApiError::InvalidRequest(m) => {
                (StatusCode::BAD_REQUEST, m.clone(), "invalid_request_error", None, None)
            }
            ApiError::UnknownModel(model) => (
                StatusCode::NOT_FOUND,
                format!("The model `{model}` does not exist or you do not have access to it."),
                "invalid_request_error",
                Some("model_not_found"),
                None,
            ),
            ApiError::Unauthorized { key_sent: false } => (
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                    .to_owned(),
                "invalid_request_error",
                None,
                None,
            ),
            ApiError::Unauthorized { key_sent: true } => (
                StatusCode::UNAUTHORIZED,
                "Incorrect API key provided. You can find your API key in your account settings."
                    .to_owned(),
                "invalid_request_error",
                Some("invalid_api_key"),
                None,
            ),
            ApiError::ContextLength { tokens } => (
                StatusCode::BAD_REQUEST,
                format!(
                    "This model's maximum context length is {} tokens. However, your messages \
                     resulted in {tokens} tokens. Please reduce the length of the messages.",
                    exchange::CONTEXT_WINDOW
                ),
                "invalid_request_error",
                Some("context_length_exceeded"),
                Some("messages"),
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests. Please try again later.".to_owned(),
                "requests",
                Some("rate_limit_exceeded"),
                None,
            ),
            ApiError::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "The server is overloaded or not ready yet.".to_owned(),
                "server_error",
                None,
                None,
            ),
            ApiError::Server => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The server had an error while processing your request. Sorry about that!"
                    .to_owned(),
                "server_error",
                None,
                None,
            ),
        };
        let body =
            json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
        exchange::error_response(status, &body, error)
    }

    fn unary(reply: &Reply, cx: &Context<'_>) -> Vec<u8> {
        let message = match &reply.tool_call {
            Some(call) => json!({
                "role": "assistant",
                "content": null,
                "refusal": null,
                "tool_calls": [{
                    "id": call_id(cx.id),
                    "type": "function",
                    "function": { "name": call.name, "arguments": call.arguments_json },
                }],
            }),
            None => json!({ "role": "assistant", "content": reply.text(), "refusal": null }),
        };
        let body = json!({
            "id": completion_id(cx.id),
            "object": "chat.completion",
            "created": cx.created,
            "model": cx.model,
            "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": finish(reply.finish) }],
            "usage": usage(reply),
            "system_fingerprint": "fp_sim",
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn stream(reply: &Reply, cx: &Context<'_>) -> StreamPlan {
        let id = completion_id(cx.id);
        let chunk = |delta: Value, finish_reason: Option<&str>| {
            let mut chunk = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": cx.created,
                "model": cx.model,
                "system_fingerprint": "fp_sim",
                "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
            });
            if cx.include_usage {
                chunk["usage"] = Value::Null;
            }
            exchange::sse_data(&chunk)
        };
        let mut frames = Vec::with_capacity(reply.chunk_count() + 4);
        match &reply.tool_call {
            Some(call) => {
                let opening = json!({
                    "role": "assistant",
                    "content": null,
                    "tool_calls": [{
                        "index": 0,
                        "id": call_id(cx.id),
                        "type": "function",
                        "function": { "name": call.name, "arguments": "" },
                    }],
                });
                frames.push(Frame::envelope(chunk(opening, None)));
                for piece in answer::argument_pieces(&call.arguments_json) {
                    let delta = json!({ "tool_calls": [{ "index": 0, "function": { "arguments": piece } }] });
                    frames.push(Frame::content(chunk(delta, None)));
                }
            }
            None => {
                frames.push(Frame::envelope(chunk(
                    json!({ "role": "assistant", "content": "", "refusal": null }),
                    None,
                )));
                for piece in &reply.pieces {
                    frames.push(Frame::content(chunk(json!({ "content": piece }), None)));
                }
            }
        }
        frames.push(Frame::envelope(chunk(json!({}), Some(finish(reply.finish)))));
        if cx.include_usage {
            let last = json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": cx.created,
                "model": cx.model,
                "system_fingerprint": "fp_sim",
                "choices": [],
                "usage": usage(reply),
            });
            frames.push(Frame::envelope(exchange::sse_data(&last)));
        }
        frames.push(Frame::envelope(Bytes::from_static(b"data: [DONE]\n\n")));
        StreamPlan {
            content_type: "text/event-stream",
            frames,
            malformed: Bytes::from(format!(
                "data: {{\"id\":\"{id}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"trunc\n\n"
            )),
            error_event: exchange::sse_data(&json!({
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": null,
                    "code": null,
                }
            })),
        }
    }
}

fn tool_spec(tool: &Value) -> Option<ToolSpec> {
    let function = tool.get("function")?;
    Some(ToolSpec {
        name: function.get("name")?.as_str()?.to_owned(),
        parameters: function
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object" })),
    })
}

fn usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    })
}

fn finish(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::ToolUse => "tool_calls",
    }
}

fn completion_id(id: u64) -> String {
    format!("chatcmpl-sim{id:016x}")
}

fn call_id(id: u64) -> String {
    format!("call_sim{id:016x}")
}
