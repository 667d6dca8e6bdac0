//! The request path every chat endpoint shares: record, parse, find the model, check the
//! key, inject faults, wait, answer. Each wire format plugs in through [`Wire`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use crate::answer::{self, Prompt, Reply};
use crate::server::Shared;
use crate::stats::Tracker;
use crate::stream::{self, StreamPlan};
use crate::{Endpoint, Fault, RecordedRequest};

/// An HTTP request as the handlers hand it over.
pub(crate) struct Incoming {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A chat request in neutral form.
pub(crate) struct ChatCall {
    pub model: String,
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    pub prompt: Prompt,
}

/// What an answer's rendering needs besides the reply itself.
pub(crate) struct Context<'a> {
    pub model: &'a str,
    /// Unique per server: feeds response, message and tool-call ids.
    pub id: u64,
    /// Unix seconds.
    pub created: u64,
    pub include_usage: bool,
    /// The simulated generation time, for formats that report durations.
    pub generation: Duration,
}

/// Errors a provider answers with, rendered by each wire format in its own shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// 400: the request is malformed.
    InvalidRequest(String),
    /// 404: no such model.
    UnknownModel(String),
    /// 401: no key, or the wrong one.
    Unauthorized { key_sent: bool },
    /// 400: the prompt does not fit the context window.
    ContextLength { tokens: u32 },
    /// 429.
    RateLimited { retry_after: Duration },
    /// 503, or 529 for Anthropic.
    Overloaded,
    /// 500.
    Server,
}

impl ApiError {
    /// The error an injected fault produces, or `None` for faults that are not an error
    /// response (hanging, breaking a stream).
    fn from_fault(fault: Fault, prompt_tokens: u32) -> Option<Self> {
        Some(match fault {
            Fault::ServerError => Self::Server,
            Fault::RateLimited { retry_after } => Self::RateLimited { retry_after },
            Fault::Overloaded => Self::Overloaded,
            Fault::Unauthorized => Self::Unauthorized { key_sent: true },
            Fault::ContextLength => {
                Self::ContextLength { tokens: prompt_tokens.max(CONTEXT_WINDOW + 1) }
            }
            Fault::Hang | Fault::BreakStream { .. } => return None,
        })
    }

    pub(crate) fn invalid_json(error: &serde_json::Error) -> Self {
        Self::InvalidRequest(format!("the request body is not valid JSON: {error}"))
    }
}

/// The context window the context-length fault claims to have exceeded.
pub(crate) const CONTEXT_WINDOW: u32 = 128_000;

/// One provider's wire format.
pub(crate) trait Wire {
    /// Reads the request (already parsed as JSON) into neutral form.
    fn parse(body: &Value, headers: &HeaderMap, shared: &Shared) -> Result<ChatCall, ApiError>;
    /// The API key the request carries, in this provider's header.
    fn credential(headers: &HeaderMap) -> Option<&str>;
    /// The provider's error response.
    fn error(error: &ApiError) -> Response;
    /// A complete, non-streaming answer.
    fn unary(reply: &Reply, cx: &Context<'_>) -> Vec<u8>;
    /// A streamed answer.
    fn stream(reply: &Reply, cx: &Context<'_>) -> StreamPlan;
}

/// Serves one chat request in wire format `W`.
pub(crate) async fn serve<W: Wire>(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    request: Incoming,
    body: Result<Value, serde_json::Error>,
) -> Response {
    let mut tracker = shared.begin(endpoint, &request);
    let call = match body
        .map_err(|e| ApiError::invalid_json(&e))
        .and_then(|v| W::parse(&v, &request.headers, &shared))
    {
        Ok(call) => call,
        Err(error) => {
            tracker.reject();
            return W::error(&error);
        }
    };
    let Some(slot) = shared.model(&call.model) else {
        tracker.reject();
        return W::error(&ApiError::UnknownModel(call.model));
    };
    tracker.attach(Arc::clone(&slot));
    let (behavior, fault) = slot.draw();
    if let Some(expected) = &behavior.api_key {
        let sent = W::credential(&request.headers);
        if sent != Some(expected.as_str()) {
            tracker.reject();
            return W::error(&ApiError::Unauthorized { key_sent: sent.is_some() });
        }
    }
    if let Some(fault) = fault {
        tracker.injected();
        if let Some(error) = ApiError::from_fault(fault, call.prompt.prompt_tokens) {
            tracker.fail();
            return W::error(&error);
        }
        if fault == Fault::Hang {
            return hang(tracker).await;
        }
    }
    let breaking = match fault {
        Some(Fault::BreakStream { after_chunks, how }) => Some((after_chunks, how)),
        _ => None,
    };

    let reply = answer::reply(&slot.name, behavior.style, &call.prompt);
    let latency = behavior.latency;
    let generation = latency.per_chunk
        * u32::try_from(reply.chunk_count().saturating_sub(1)).unwrap_or(u32::MAX);
    let cx = Context {
        model: &slot.name,
        id: shared.next_id(),
        created: unix_seconds(),
        include_usage: call.include_usage,
        generation: latency.first_byte + generation,
    };
    // The tracker is alive across every wait, so a client that gives up is counted.
    sleep(latency.first_byte).await;
    if call.stream {
        stream::respond(W::stream(&reply, &cx), latency.per_chunk, breaking, tracker)
    } else {
        sleep(generation).await;
        stream::respond_unary(W::unary(&reply, &cx), breaking, tracker, || {
            W::error(&ApiError::Server)
        })
    }
}

/// Never answers; the tracker counts the cancellation when the client gives up.
pub(crate) async fn hang(tracker: Tracker) -> Response {
    let _held = tracker;
    std::future::pending().await
}

async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

/// A JSON error response, with `retry-after` (and OpenAI's `retry-after-ms`) on a 429.
pub(crate) fn error_response(
    status: StatusCode,
    body: &impl Serialize,
    error: &ApiError,
) -> Response {
    let mut response = json_response(status, body);
    if let ApiError::RateLimited { retry_after } = error {
        let headers = response.headers_mut();
        let seconds = retry_after.as_millis().div_ceil(1000).max(1);
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(u64::try_from(seconds).unwrap_or(u64::MAX)),
        );
        let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
        headers.insert("retry-after-ms", HeaderValue::from(millis));
    }
    response
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        // Serialising a `Value` or plain struct cannot fail; answer something sane anyway.
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `data: {json}\n\n`
pub(crate) fn sse_data(body: &impl Serialize) -> Bytes {
    let mut out = b"data: ".to_vec();
    write_json(&mut out, body);
    out.extend_from_slice(b"\n\n");
    out.into()
}

/// `event: {name}\ndata: {json}\n\n`
pub(crate) fn sse_event(name: &str, body: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    write_json(&mut out, body);
    out.extend_from_slice(b"\n\n");
    out.into()
}

/// `{json}\n`
pub(crate) fn ndjson(body: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, body);
    out.push(b'\n');
    out.into()
}

fn write_json(out: &mut Vec<u8>, body: &impl Serialize) {
    // Writing a `Value` or plain struct into a Vec cannot fail.
    let _ = serde_json::to_writer(out, body);
}

/// The text of a message `content`: a string, or the `text` of an array of parts.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str).is_none_or(|t| t == "text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

/// A bearer token from `Authorization`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Now as RFC 3339 UTC with nanoseconds, as Ollama writes `created_at`.
pub(crate) fn rfc3339_now() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    rfc3339(now)
}

pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since_epoch.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// Records a request, if recording is on.
pub(crate) fn record(shared: &Shared, endpoint: Endpoint, request: &Incoming) {
    if shared.recorder.enabled() {
        shared.recorder.push(RecordedRequest {
            endpoint,
            method: request.method.clone(),
            path: request.path.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00.000000000Z");
        let t = Duration::new(1_709_251_200 + 3661, 5);
        assert_eq!(rfc3339(t), "2024-03-01T01:01:01.000000005Z");
        assert_eq!(rfc3339(Duration::from_secs(951_782_400)), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn content_text_reads_strings_and_parts() {
        assert_eq!(content_text(&serde_json::json!("hi")), "hi");
        let parts = serde_json::json!([{"type":"text","text":"a"},{"type":"image_url"},{"type":"text","text":"b"}]);
        assert_eq!(content_text(&parts), "a\nb");
    }
}
