//! `POST /v1/chat/completions`: the OpenAI Chat Completions API.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use router_providers::api_error::ApiError;
use router_providers::chat::ResponseMeta;
use router_providers::{ChatResponse, openai};
use router_store::Api;

use super::{Dialect, error_response_with, read_json, serve_chat};
use crate::app::Gateway;

/// The OpenAI wire format.
pub struct OpenAi;

impl Dialect for OpenAi {
    const API: Api = Api::OpenAi;
    type Encoder = openai::StreamEncoder;

    fn response_id(decision_id: &str) -> String {
        super::prefixed_id("chatcmpl-", decision_id)
    }

    fn encode_response(response: &ChatResponse, meta: &ResponseMeta) -> Result<Bytes, ApiError> {
        Ok(openai::encode_response(response, meta))
    }

    fn encoder(meta: ResponseMeta, include_usage: bool, _input_tokens: u64) -> Self::Encoder {
        openai::StreamEncoder::new(meta, include_usage)
    }

    fn error_response(error: &ApiError) -> Response {
        error_response(error)
    }
}

/// An error in OpenAI's shape and status.
pub fn error_response(error: &ApiError) -> Response {
    error_response_with(error.status(), openai::error_body(error), error.retry_after)
}

pub async fn chat_completions(State(gateway): State<Gateway>, request: Request) -> Response {
    let body = match read_json(&gateway, request).await {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    // The gateway's own time starts once the client has sent its body.
    let received = std::time::Instant::now();
    let parsed = match openai::parse_request(&body) {
        Ok(parsed) => parsed,
        Err(e) => return error_response(&e.into()),
    };
    // The parsed request owns its text; the raw body need not live through the upstream call.
    drop(body);
    serve_chat::<OpenAi>(gateway, parsed.request, parsed.include_usage, received).await
}
