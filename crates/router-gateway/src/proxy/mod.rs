//! The proxy API: the OpenAI- and Anthropic-compatible endpoints, the simple `/api/chat`,
//! and the informational routes (`/health`, `/models`, `/v1/models`, `/metrics`).
//!
//! Every chat endpoint runs the same path — read and parse the body, route, record the
//! decision, dispatch, answer or relay the stream, record the outcome — through
//! [`serve_chat`], parameterised by the client's wire format ([`Dialect`]).

mod anthropic;
mod front;
mod info;
mod openai;
mod simple;

pub use front::Front;
pub use openai::error_response;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use router_providers::api_error::{ApiError, ApiErrorKind};
use router_providers::chat::ResponseMeta;
use router_providers::{ChatRequest, ChatResponse};
use router_store::Api;
use secrecy::ExposeSecret;

use crate::app::{Gateway, epoch_s};
use crate::dispatch::{self, Answer, Failure};
use crate::outcome::{Ending, Served, Trace};
use crate::relay::{Encoding, Relay};

pub const DECISION_HEADER: &str = "x-router-decision-id";
pub const MODEL_HEADER: &str = "x-router-model";
pub const DEPLOYMENT_HEADER: &str = "x-router-deployment";
pub const OVERHEAD_HEADER: &str = "x-router-overhead-us";

// The same names checked once, at compile time: `from_static` in a function body checks its
// argument on every call, and these go on every response. (Cloning one copies a pointer.)
static DECISION_NAME: HeaderName = HeaderName::from_static(DECISION_HEADER);
static MODEL_NAME: HeaderName = HeaderName::from_static(MODEL_HEADER);
static DEPLOYMENT_NAME: HeaderName = HeaderName::from_static(DEPLOYMENT_HEADER);
static OVERHEAD_NAME: HeaderName = HeaderName::from_static(OVERHEAD_HEADER);

/// The proxy API's routes.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(info::openai_models))
        .route("/api/chat", post(simple::chat))
        .route("/health", get(info::health))
        .route("/models", get(info::models))
        .route("/metrics", get(info::metrics))
        .fallback(not_found)
        .with_state(gateway.clone())
        .merge(crate::routing_api(gateway))
}

async fn not_found(request: Request) -> Response {
    let error = ApiError::new(
        ApiErrorKind::NotFound,
        format!("There is no route {} {}.", request.method(), request.uri().path()),
    );
    // Anthropic's SDKs send `anthropic-version` with every request; answer them in their shape.
    if request.headers().contains_key("anthropic-version") {
        anthropic::error_response(&error)
    } else {
        openai::error_response(&error)
    }
}

/// A client wire format.
pub trait Dialect {
    const API: Api;
    type Encoder: Encoding;
    /// The response id shown to the client for a decision id.
    fn response_id(decision_id: &str) -> String;
    fn encode_response(response: &ChatResponse, meta: &ResponseMeta) -> Result<Bytes, ApiError>;
    fn encoder(meta: ResponseMeta, include_usage: bool, input_tokens: u64) -> Self::Encoder;
    fn error_response(error: &ApiError) -> Response;
}

/// Builds an error response in a format: its status, body, and Retry-After when known.
pub fn error_response_with(status: u16, body: Bytes, retry_after: Option<Duration>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(after) = retry_after
        && let Ok(v) = HeaderValue::from_str(&after.as_secs().max(1).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    // A body over the limit is left unread, so the connection cannot carry another request:
    // saying so keeps the client from sending its next one onto a connection being closed.
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads a JSON request body (as [`read_json`]) and parses it. Returns the parsed request
/// and when its body had arrived, where the gateway's own time starts. The raw body goes out
/// of scope here: what `parse` returns owns its text, and the body need not stay in memory
/// through the upstream call.
pub async fn read_request<T, E: Into<ApiError>>(
    gateway: &Gateway,
    request: Request,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<(T, Instant), ApiError> {
    let body = read_json(gateway, request).await?;
    let received = Instant::now();
    let parsed = parse(&body).map_err(Into::into)?;
    Ok((parsed, received))
}

/// Reads a JSON request body: checks the content type, the client's key and the size limit.
pub async fn read_json(gateway: &Gateway, request: Request) -> Result<Bytes, ApiError> {
    authorize(gateway, request.headers())?;
    if let Some(ct) = request.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.starts_with("application/json") && !ct.contains("+json") {
            let mut e = ApiError::new(
                ApiErrorKind::InvalidRequest,
                format!(
                    "Unsupported Content-Type `{ct}`: send the body as JSON with `Content-Type: application/json`."
                ),
            );
            e.code = Some("unsupported_media_type".into());
            return Err(e);
        }
    }
    let limit = gateway.config.server.max_body_bytes;
    axum::body::to_bytes(request.into_body(), limit).await.map_err(|e| {
        // The only failure besides the limit is a client that broke the connection mid-body,
        // which never sees the answer anyway.
        let too_big = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_big {
            let mut error = ApiError::new(
                ApiErrorKind::RequestTooLarge,
                format!("The request body is over the limit of {} bytes.", limit),
            );
            error.code = Some("request_too_large".into());
            error
        } else {
            ApiError::new(
                ApiErrorKind::InvalidRequest,
                format!("Could not read the request body: {e}"),
            )
        }
    })
}

/// Checks the client's key when the gateway requires one.
pub fn authorize(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let keys = &gateway.config.server.client_keys;
    if keys.is_empty() {
        return Ok(());
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .map(str::trim);
    match presented {
        Some(key)
            if keys
                .iter()
                .any(|k| constant_time_eq(k.expose_secret().as_bytes(), key.as_bytes())) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(
            ApiErrorKind::Authentication,
            "The API key is not valid for this gateway.",
        )),
        None => Err(ApiError::new(
            ApiErrorKind::Authentication,
            "This gateway requires an API key: send `Authorization: Bearer <key>` or `x-api-key: <key>`.",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Records a request that ended before dispatch finished because the client went away
/// (its handler future was dropped).
struct CancelGuard<'a> {
    gateway: &'a Gateway,
    trace: &'a Trace,
    armed: bool,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gateway.finish(self.trace, None, &[], Ending::Cancelled, 499, None);
        }
    }
}

/// A client-facing id: `prefix` and the decision id without its dashes.
fn prefixed_id(prefix: &str, decision_id: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + decision_id.len());
    id.push_str(prefix);
    // A piece at a time: pushing the characters one by one cost more than the rest of it.
    for piece in decision_id.split('-') {
        id.push_str(piece);
    }
    id
}

/// A complete answer's response, its header map sized up front for the content type and the
/// four `x-router-*` headers added on the way out: grown one insert at a time, it was
/// reallocated and rehashed on every answer.
fn json_answer(body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.reserve(ANSWER_HEADERS);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The content type and the `x-router-*` headers.
const ANSWER_HEADERS: usize = 5;

fn insert_header(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Routes, dispatches and answers one chat request in the format `D`.
pub async fn serve_chat<D: Dialect>(
    gateway: Gateway,
    request: ChatRequest,
    include_usage: bool,
    received: Instant,
) -> Response {
    let routed = match gateway.route(&request, received).await {
        Ok(r) => r,
        Err(e) => return D::error_response(&e),
    };
    gateway.record_request(&routed, &request, D::API);
    gateway.metrics.inc(
        "llm_router_decisions_total",
        &[("source", routed.decision.source.as_str()), ("model", &routed.decision.model)],
        1,
    );
    let trace = Trace {
        id: routed.id.clone(),
        api: D::API,
        received: routed.received,
        features: routed.decision.features,
        source: routed.decision.source,
        sketch: routed.sketch,
    };
    let before_dispatch = routed.received.elapsed();
    let result = {
        let mut guard = CancelGuard { gateway: &gateway, trace: &trace, armed: true };
        let result =
            dispatch::dispatch(&gateway.registry, &gateway.config.dispatch, &routed.plan, &request)
                .await;
        guard.armed = false;
        result
    };
    let dispatch_done = Instant::now();

    let dispatched = match result {
        Ok(d) => d,
        Err(failure) => {
            let error = match &failure.error {
                Failure::Upstream(e) => ApiError::from_upstream(e),
                Failure::NothingAvailable { retry_after, .. } => {
                    // Clients (and the SDKs' own retry logic) learn when to come back.
                    let mut e = ApiError::new(ApiErrorKind::Overloaded, failure.error.to_string());
                    e.code = Some("no_deployment_available".into());
                    e.retry_after = *retry_after;
                    e
                }
                Failure::AtCapacity { .. } => {
                    let mut e = ApiError::new(ApiErrorKind::Overloaded, failure.error.to_string());
                    e.code = Some("deployments_at_capacity".into());
                    // Slots free as answers finish; a second is a fair guess.
                    e.retry_after = Some(Duration::from_secs(1));
                    e
                }
            };
            let kind = match &failure.error {
                Failure::Upstream(e) => e.kind(),
                Failure::NothingAvailable { .. } => "nothing_available",
                Failure::AtCapacity { .. } => "at_capacity",
            };
            let ending = Ending::Failed { kind: kind.into(), message: failure.error.to_string() };
            let mut response = D::error_response(&error);
            gateway.finish(
                &trace,
                None,
                &failure.attempts,
                ending,
                response.status().as_u16(),
                None,
            );
            insert_header(response.headers_mut(), DECISION_NAME.clone(), &routed.id);
            return response;
        }
    };

    if !dispatched.queued.is_zero() {
        gateway.metrics.observe(
            "llm_router_queue_wait_seconds",
            &[],
            dispatched.queued.as_secs_f64(),
        );
    }
    let model = gateway.registry.model(dispatched.model);
    let deployment = &model.deployments[dispatched.deployment];
    let labels = deployment.labels.clone();
    let served = Served {
        model: model.name().to_string(),
        deployment: deployment.id.clone(),
        price: model.config.price,
    };
    let meta = ResponseMeta {
        id: D::response_id(&routed.id),
        model: served.model.clone(),
        created: epoch_s(),
    };

    let mut response = match dispatched.answer {
        Answer::Complete(answer) => {
            let (usage, estimated) = if answer.usage.input_tokens + answer.usage.output_tokens == 0
            {
                let estimate = router_providers::Usage {
                    input_tokens: u64::from(trace.features.prompt_tokens),
                    output_tokens: (answer.text().len() as u64).div_ceil(4),
                };
                (estimate, true)
            } else {
                (answer.usage, false)
            };
            let mut answer = answer;
            answer.usage = usage;
            match D::encode_response(&answer, &meta) {
                Ok(body) => {
                    gateway.finish(
                        &trace,
                        Some(&served),
                        &dispatched.attempts,
                        Ending::Answered {
                            usage,
                            estimated,
                            signal: crate::relay::implicit_signal(
                                !answer.content.is_empty() && !answer.text().is_empty()
                                    || answer.tool_calls().next().is_some(),
                                Some(answer.finish_reason),
                            ),
                        },
                        200,
                        None,
                    );
                    json_answer(body)
                }
                Err(error) => {
                    let ending = Ending::Failed {
                        kind: "translation".into(),
                        message: error.message.clone(),
                    };
                    let response = D::error_response(&error);
                    gateway.finish(
                        &trace,
                        Some(&served),
                        &dispatched.attempts,
                        ending,
                        response.status().as_u16(),
                        None,
                    );
                    response
                }
            }
        }
        Answer::Stream { first, rest } => {
            let encoder = D::encoder(meta, include_usage, u64::from(trace.features.prompt_tokens));
            let relay = Relay::new(
                gateway.clone(),
                trace,
                served.clone(),
                dispatched.attempts,
                first,
                rest,
                encoder,
            );
            let mut response = Response::new(Body::from_stream(relay));
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
            response
        }
    };
    let overhead = before_dispatch + dispatch_done.elapsed();
    gateway.metrics.observe("llm_router_overhead_seconds", &[], overhead.as_secs_f64());
    let h = response.headers_mut();
    insert_header(h, DECISION_NAME.clone(), &routed.id);
    if let Some(model) = labels.model {
        h.insert(MODEL_NAME.clone(), model);
    }
    if let Some(deployment) = labels.deployment {
        h.insert(DEPLOYMENT_NAME.clone(), deployment);
    }
    let micros = u64::try_from(overhead.as_micros()).unwrap_or(u64::MAX);
    h.insert(OVERHEAD_NAME.clone(), HeaderValue::from(micros));
    response
}

#[cfg(test)]
mod tests {
    use super::prefixed_id;

    #[test]
    fn client_ids_are_the_decision_id_without_its_dashes() {
        assert_eq!(
            prefixed_id("chatcmpl-", "01a222b0-5d90-71e6-a74e-1a573b9bb97c"),
            "chatcmpl-01a222b05d9071e6a74e1a573b9bb97c"
        );
        assert_eq!(prefixed_id("msg_", "a--b-"), "msg_ab");
        assert_eq!(prefixed_id("msg_", ""), "msg_");
    }
}
