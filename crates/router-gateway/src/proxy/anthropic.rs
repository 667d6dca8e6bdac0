//! `POST /v1/messages` and `POST /v1/messages/count_tokens`: Anthropic's Messages API.
//!
//! Anthropic clients — the `anthropic` SDKs, Claude Code, anything that takes an Anthropic
//! base URL — are routed like every other client. The body is parsed into the neutral
//! request, so any upstream can answer it (an OpenAI-compatible model, DeepSeek, a local
//! Ollama model, or Claude itself), and the answer comes back in Anthropic's shape: a
//! `message` object, or the event stream `message_start`, `ping`, `content_block_*`,
//! `message_delta`, `message_stop`. Errors are `{"type": "error", "error": {...}}` with
//! Anthropic's status codes (529 for overload), before the stream as a status, during it as
//! an `error` event.
//!
//! `model` may be a configured model, an alias (so a client hard-wired to a Claude model id
//! is still served), `auto` or `auto:<profile>`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use router_core::{Profile, PromptMessage, Role};
use router_providers::api_error::{ApiError, ApiErrorKind, RequestError};
use router_providers::chat::ResponseMeta;
use router_providers::{ChatRequest, ChatResponse, anthropic};
use router_store::Api;
use serde_json::{Value, json};

use super::{DECISION_HEADER, Dialect, error_response_with, read_request, serve_chat};
use crate::app::Gateway;

/// The Anthropic Messages wire format.
pub struct Anthropic;

impl Dialect for Anthropic {
    const API: Api = Api::Anthropic;
    type Encoder = anthropic::StreamEncoder;

    fn response_id(decision_id: &str) -> String {
        super::prefixed_id("msg_", decision_id)
    }

    fn encode_response(response: &ChatResponse, meta: &ResponseMeta) -> Result<Bytes, ApiError> {
        // Fails only on tool arguments that are not a JSON object, which is the upstream's
        // fault: an Anthropic client cannot be handed them.
        anthropic::encode_response(response, meta).map_err(|e| ApiError::from_upstream(&e))
    }

    fn encoder(meta: ResponseMeta, _include_usage: bool, input_tokens: u64) -> Self::Encoder {
        // Anthropic streams always report usage, so there is nothing to opt into.
        anthropic::StreamEncoder::new(meta, input_tokens)
    }

    fn error_response(error: &ApiError) -> Response {
        error_response(error)
    }
}

/// An error in Anthropic's shape and status.
pub fn error_response(error: &ApiError) -> Response {
    error_response_with(error.anthropic_status(), anthropic::error_body(error), error.retry_after)
}

/// `POST /v1/messages`.
pub async fn messages(State(gateway): State<Gateway>, request: Request) -> Response {
    match read_request(&gateway, request, anthropic::parse_request).await {
        Ok((request, received)) => {
            with_request_id(serve_chat::<Anthropic>(gateway, request, true, received).await)
        }
        Err(e) => error_response(&e),
    }
}

/// Anthropic's SDKs surface the `request-id` header on every answer and error (as
/// `_request_id`), which is where a client's logs will look for the id to quote; it is the
/// decision id that feedback refers to, in Anthropic's `req_` form.
fn with_request_id(mut response: Response) -> Response {
    let id = response
        .headers()
        .get(DECISION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|id| format!("req_{}", id.replace('-', "")));
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}` from the router's own estimate,
/// the same one routing budgets with. No upstream is called, so the count is the same
/// whichever model would answer; it is an estimate for every provider but is stable.
pub async fn count_tokens(State(gateway): State<Gateway>, request: Request) -> Response {
    let request = match read_request(&gateway, request, parse_count_request).await {
        Ok((request, _)) => request,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = check_model(&gateway, &request.model) {
        return error_response(&e);
    }
    Json(json!({"input_tokens": input_tokens(&gateway, &request)})).into_response()
}

/// A count_tokens body is a `/v1/messages` body without `max_tokens`, validated the same way.
fn parse_count_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let mut value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        // Let the Messages parser word the complaint, as it does for `/v1/messages`.
        Err(_) => return anthropic::parse_request(body),
    };
    if let Value::Object(map) = &mut value
        && map.get("max_tokens").is_none_or(Value::is_null)
    {
        map.insert("max_tokens".into(), json!(1));
    }
    let body = serde_json::to_vec(&value)
        .map_err(|e| RequestError::new(format!("The request body could not be read: {e}")))?;
    anthropic::parse_request(&body)
}

/// What `/v1/messages` would answer about the model: 404 for a name that is neither a model,
/// an alias nor `auto`, 400 for an unknown profile.
fn check_model(gateway: &Gateway, model: &str) -> Result<(), ApiError> {
    let model = model.trim();
    if gateway.registry.resolve(model).is_none() {
        let names: Vec<&str> = gateway.registry.models().iter().map(|m| m.name()).collect();
        let mut e = ApiError::new(
            ApiErrorKind::NotFound,
            format!(
                "model: The model `{model}` does not exist. Use one of the configured models ({}), or `auto` to let the router choose.",
                names.join(", ")
            ),
        );
        e.param = Some("model".into());
        e.code = Some("model_not_found".into());
        return Err(e);
    }
    if let Some(profile) = model.strip_prefix("auto:")
        && let Err(error) = profile.parse::<Profile>()
    {
        let mut e = ApiError::new(ApiErrorKind::InvalidRequest, format!("model: {error}"));
        e.param = Some("model".into());
        return Err(e);
    }
    Ok(())
}

/// The prompt's estimated tokens, tool definitions included: they are sent to the model
/// with every request and take up its context like any message.
fn input_tokens(gateway: &Gateway, request: &ChatRequest) -> u32 {
    let definitions: Vec<String> = request
        .tools
        .iter()
        .map(|tool| {
            json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters})
                .to_string()
        })
        .collect();
    let mut prompt = request.prompt();
    prompt
        .messages
        .extend(definitions.iter().map(|text| PromptMessage { role: Role::System, text }));
    gateway.extractor.extract(&prompt).prompt_tokens
}
