//! `POST /api/chat`: the simple form — `{messages, model?, profile?}` — for scripts and
//! services that want an answer and its routing without an SDK.
//!
//! Request: `messages` (`[{role, content}]`, content a string), optional `model` (a
//! configured name, an alias, `auto` or `auto:<profile>`; default `auto`), optional `profile`
//! (shorthand for `auto:<profile>`), `max_tokens`, `temperature`, `stream` (streams in the
//! OpenAI chunk format). Response: `{id, model, content, finish_reason, usage}` with the
//! routing in the `x-router-*` headers; `id` is the decision id feedback refers to.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use router_core::Role;
use router_providers::api_error::{ApiError, ApiErrorKind};
use router_providers::chat::ResponseMeta;
use router_providers::{ChatRequest, ChatResponse, Message, openai};
use router_store::Api;
use serde::Deserialize;
use serde_json::json;

use super::openai::error_response;
use super::{Dialect, read_request, serve_chat};
use crate::app::Gateway;

pub struct Simple;

impl Dialect for Simple {
    const API: Api = Api::Simple;
    type Encoder = openai::StreamEncoder;

    fn response_id(decision_id: &str) -> String {
        decision_id.to_string()
    }

    fn encode_response(response: &ChatResponse, meta: &ResponseMeta) -> Result<Bytes, ApiError> {
        let body = json!({
            "id": meta.id,
            "model": meta.model,
            "content": response.text(),
            "finish_reason": response.finish_reason,
            "usage": {
                "input_tokens": response.usage.input_tokens,
                "output_tokens": response.usage.output_tokens,
            },
        });
        Ok(Bytes::from(body.to_string()))
    }

    fn encoder(meta: ResponseMeta, include_usage: bool, _input_tokens: u64) -> Self::Encoder {
        openai::StreamEncoder::new(meta, include_usage)
    }

    fn error_response(error: &ApiError) -> Response {
        error_response(error)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimpleRequest {
    messages: Vec<SimpleMessage>,
    model: Option<String>,
    profile: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    #[serde(default)]
    stream: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimpleMessage {
    role: String,
    content: String,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ApiErrorKind::InvalidRequest, message)
}

fn parse(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let request: SimpleRequest = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "The body is not a valid request ({e}). Expected {{\"messages\": [{{\"role\": \"user\", \"content\": \"...\"}}], \"model\": \"auto\"}}."
        ))
    })?;
    if request.messages.is_empty() {
        return Err(invalid("`messages` must hold at least one message."));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (i, m) in request.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(invalid(format!(
                    "`messages[{i}].role` is `{other}`; use system, user or assistant."
                )));
            }
        };
        messages.push(Message::text(role, m.content));
    }
    if !messages.iter().any(|m| m.role == Role::User) {
        return Err(invalid("`messages` needs at least one user message."));
    }
    let model = match (request.model, request.profile) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Give `model` or `profile`, not both (`profile: \"cost\"` means `model: \"auto:cost\"`).",
            ));
        }
        (Some(model), None) => model,
        (None, Some(profile)) => format!("auto:{profile}"),
        (None, None) => "auto".to_string(),
    };
    Ok(ChatRequest {
        model,
        messages,
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        stream: request.stream,
        ..ChatRequest::default()
    })
}

pub async fn chat(State(gateway): State<Gateway>, request: Request) -> Response {
    match read_request(&gateway, request, parse).await {
        Ok((request, received)) => serve_chat::<Simple>(gateway, request, false, received).await,
        Err(e) => error_response(&e),
    }
}
