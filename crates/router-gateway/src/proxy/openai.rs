//! `POST /v1/chat/completions`: the OpenAI Chat Completions API.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::Response;
use router_providers::api_error::ApiError;
use router_providers::chat::ResponseMeta;
use router_providers::{ChatResponse, openai};
use router_store::Api;

use super::{Dialect, error_response_with, read_request, serve_chat};
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
    match read_request(&gateway, request, openai::parse_request).await {
        Ok((parsed, received)) => {
            serve_chat::<OpenAi>(gateway, parsed.request, parsed.include_usage, received).await
        }
        Err(e) => error_response(&e),
    }
}
