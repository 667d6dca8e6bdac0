//! The HTTP client for one upstream deployment: it writes the request in the deployment's
//! format, sends it, and reads the answer back into the neutral model, with every failure
//! typed as an [`UpstreamError`] that dispatch can act on.
//!
//! Timeouts are by phase. A complete (non-streaming) call has one deadline, `total`, since
//! the response head only comes when the whole answer is ready. A stream must produce its
//! head and first event within `first_byte`, may then go quiet for at most `idle` between
//! chunks, and must end within `total`. The connect timeout belongs to the shared client
//! ([`HttpClient`]).
//!
//! [`Upstream::stream`] resolves once the first output (text, a tool call, or the end) has
//! arrived, so that a failure before anything reached the client is an `Err` that can still
//! fail over. After that, a failure is the stream's last item: `Timeout { phase: Idle }` or
//! `Total` for a stalled stream, `StreamBroken` for one that ended without its end marker or
//! reported an error. Dropping the stream drops the HTTP response, which closes the
//! connection and so cancels the generation upstream.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::{Stream, StreamExt};
use reqwest::Url;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::time::{Instant, timeout_at};

use crate::client::{ByteStream, HttpClient, Reply, Target};

use crate::chat::{ChatRequest, ChatResponse, StreamEvent};
use crate::error::{TimeoutPhase, UpstreamError, says_context_too_long};
use crate::{anthropic, ollama, openai};

/// The neutral events of a streamed answer; a failure, if any, is the last item.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, UpstreamError>> + Send>>;

/// Error bodies are read for their message only; a hostile upstream must not make the
/// gateway buffer megabytes to produce an error.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// Provider messages are kept short in errors (they end up in logs and records).
const ERROR_MESSAGE_LIMIT: usize = 1000;
/// How long an error body may take to arrive once its status is known.
const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// The wire format a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI Chat Completions: OpenAI, DeepSeek and every OpenAI-compatible server
    /// (`base_url` includes the version, e.g. `https://api.openai.com/v1`).
    OpenAi,
    /// Anthropic Messages (`base_url` without the version, e.g. `https://api.anthropic.com`).
    Anthropic,
    /// Ollama's native `/api/chat` (`base_url` e.g. `http://127.0.0.1:11434`).
    Ollama,
}

impl Protocol {
    fn path(self) -> &'static str {
        match self {
            Protocol::OpenAi => "chat/completions",
            Protocol::Anthropic => "v1/messages",
            Protocol::Ollama => "api/chat",
        }
    }

    fn end_marker(self) -> &'static str {
        match self {
            Protocol::OpenAi => "data: [DONE]",
            Protocol::Anthropic => "message_stop",
            Protocol::Ollama => "done: true",
        }
    }
}

/// How long each phase of a call may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Until a stream's response head and first event.
    pub first_byte: Duration,
    /// The whole call, streaming or not.
    pub total: Duration,
    /// The longest gap between two chunks of a stream.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            first_byte: Duration::from_secs(60),
            total: Duration::from_secs(600),
            idle: Duration::from_secs(60),
        }
    }
}

/// Everything that describes one deployment.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub protocol: Protocol,
    pub base_url: String,
    /// The model id the deployment knows the model by (sent as `model`).
    pub model_id: String,
    pub api_key: Option<SecretString>,
    pub timeouts: Timeouts,
    /// `max_tokens` for Anthropic when the client set none (Anthropic requires it).
    pub default_max_tokens: u32,
    /// Fields merged into every request body where the request sets none, objects merged
    /// key by key (e.g. Ollama's `keep_alive` or `options.num_ctx`).
    pub extra_body: Map<String, Value>,
}

impl UpstreamConfig {
    pub fn new(
        protocol: Protocol,
        base_url: impl Into<String>,
        model_id: impl Into<String>,
    ) -> Self {
        UpstreamConfig {
            protocol,
            base_url: base_url.into(),
            model_id: model_id.into(),
            api_key: None,
            timeouts: Timeouts::default(),
            default_max_tokens: 4096,
            extra_body: Map::new(),
        }
    }
}

/// A deployment's configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid upstream base URL {url:?}: {reason}")]
    BaseUrl { url: String, reason: String },
    /// The key itself is never shown.
    #[error("the upstream API key contains characters that cannot be sent in an HTTP header")]
    ApiKey,
}

/// A client for one deployment. Cheap to clone (the HTTP client is shared).
#[derive(Clone)]
pub struct Upstream {
    protocol: Protocol,
    endpoint: Target,
    model_id: String,
    /// The headers of a complete call and of a streamed one, built once: the content type,
    /// the protocol's own, and the credential (marked sensitive, so never printed).
    headers: HeaderMap,
    stream_headers: HeaderMap,
    timeouts: Timeouts,
    default_max_tokens: u32,
    extra_body: Map<String, Value>,
    client: HttpClient,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint.url().as_str())
            .field("model_id", &self.model_id)
            .field("api_key", &has_credential(&self.headers).then_some("[REDACTED]"))
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(config: UpstreamConfig, client: HttpClient) -> Result<Self, ConfigError> {
        let bad_url = |reason: &str| ConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(config.base_url.trim_end_matches('/'))
            .map_err(|error| bad_url(&error.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad_url("the scheme must be http or https"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad_url("a base URL takes no query or fragment"));
        }
        let endpoint = Url::parse(&format!(
            "{}/{}",
            base.as_str().trim_end_matches('/'),
            config.protocol.path()
        ))
        .map_err(|error| bad_url(&error.to_string()))?;

        let auth = match &config.api_key {
            None => None,
            Some(key) => {
                let key = key.expose_secret();
                let (name, value) = match config.protocol {
                    Protocol::Anthropic => (HeaderName::from_static("x-api-key"), key.to_owned()),
                    Protocol::OpenAi | Protocol::Ollama => {
                        (header::AUTHORIZATION, format!("Bearer {key}"))
                    }
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| ConfigError::ApiKey)?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some((name, value)) = auth {
            headers.insert(name, value);
        }
        if config.protocol == Protocol::Anthropic {
            headers.insert("anthropic-version", HeaderValue::from_static(anthropic::VERSION));
        }
        let mut stream_headers = headers.clone();
        if config.protocol != Protocol::Ollama {
            stream_headers.insert(header::ACCEPT, HeaderValue::from_static("text/event-stream"));
        }
        Ok(Upstream {
            protocol: config.protocol,
            endpoint: Target::new(endpoint),
            model_id: config.model_id,
            headers,
            stream_headers,
            timeouts: config.timeouts,
            default_max_tokens: config.default_max_tokens,
            extra_body: config.extra_body,
            client,
        })
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The URL requests are posted to.
    pub fn endpoint(&self) -> &Url {
        self.endpoint.url()
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The body this deployment would be sent for `request`; `Unsupported` when the request
    /// cannot be expressed in the deployment's format.
    pub fn request_body(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<Value, UpstreamError> {
        let mut body = match self.protocol {
            Protocol::OpenAi => openai::request_body(request, &self.model_id, stream)?,
            Protocol::Anthropic => {
                anthropic::request_body(request, &self.model_id, self.default_max_tokens, stream)?
            }
            Protocol::Ollama => ollama::request_body(request, &self.model_id, stream)?,
        };
        if let Value::Object(object) = &mut body {
            merge_defaults(object, &self.extra_body);
        }
        Ok(body)
    }

    /// Asks for a complete answer.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, UpstreamError> {
        let body = self.request_bytes(request, false)?;
        let deadline = after(Instant::now(), self.timeouts.total);
        let total = || UpstreamError::Timeout { phase: TimeoutPhase::Total };
        let response =
            timeout_at(deadline, self.send(body, false)).await.map_err(|_| total())??;
        if !response.status.is_success() {
            return Err(failure(response, deadline).await);
        }
        let bytes = timeout_at(deadline, response.bytes()).await.map_err(|_| total())?.map_err(
            |error| UpstreamError::Connect {
                message: format!("the connection broke while reading the response: {error}"),
            },
        )?;
        match self.protocol {
            Protocol::OpenAi => openai::parse_response(&bytes),
            Protocol::Anthropic => anthropic::parse_response(&bytes),
            Protocol::Ollama => ollama::parse_response(&bytes),
        }
    }

    /// Asks for a streamed answer. Resolves once the upstream has answered with a success
    /// status and its first output has arrived; the events follow in the stream (the
    /// first ones already buffered).
    pub async fn stream(&self, request: &ChatRequest) -> Result<EventStream, UpstreamError> {
        let body = self.request_bytes(request, true)?;
        let start = Instant::now();
        let total_deadline = after(start, self.timeouts.total);
        let first_deadline = after(start, self.timeouts.first_byte).min(total_deadline);
        let first_phase = phase_of(first_deadline, total_deadline, TimeoutPhase::FirstByte);

        let response = timeout_at(first_deadline, self.send(body, true))
            .await
            .map_err(|_| UpstreamError::Timeout { phase: first_phase })??;
        if !response.status.is_success() {
            let deadline = after(Instant::now(), ERROR_BODY_TIMEOUT).min(total_deadline);
            return Err(failure(response, deadline).await);
        }

        let mut reader = EventReader {
            protocol: self.protocol,
            body: Some(response.into_stream()),
            decoder: Decoder::new(self.protocol),
            pending: VecDeque::new(),
            decoded: Vec::new(),
            failure: None,
            done: false,
            idle: self.timeouts.idle,
            total_deadline,
            first_deadline: Some(first_deadline),
            delivered: false,
            reading: None,
            timer: Box::pin(tokio::time::sleep_until(first_deadline)),
        };
        let mut head = Vec::new();
        while let Some(item) = reader.next().await {
            let event = item?;
            let is_output = !matches!(event, StreamEvent::Start { .. });
            head.push(event);
            if is_output {
                break;
            }
        }
        reader.delivered = true;
        for event in head.into_iter().rev() {
            reader.pending.push_front(event);
        }
        Ok(Box::pin(reader))
    }

    async fn send(&self, body: Vec<u8>, stream: bool) -> Result<Reply, UpstreamError> {
        let headers = if stream { &self.stream_headers } else { &self.headers };
        self.client.post(&self.endpoint, headers, body).await
    }

    /// The body sent for `request`, as bytes. The OpenAI and Anthropic formats are written
    /// without building a JSON tree first unless defaults must be merged.
    fn request_bytes(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, UpstreamError> {
        if self.extra_body.is_empty() {
            match self.protocol {
                Protocol::OpenAi => return openai::request_bytes(request, &self.model_id, stream),
                Protocol::Anthropic => {
                    let max_tokens = self.default_max_tokens;
                    return anthropic::request_bytes(request, &self.model_id, max_tokens, stream);
                }
                Protocol::Ollama => return ollama::request_bytes(request, &self.model_id, stream),
            }
        }
        let body = self.request_body(request, stream)?;
        serde_json::to_vec(&body).map_err(openai::unwritable)
    }
}

/// Whether the headers carry a credential (to say so, and no more, when debugging).
fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key("x-api-key")
}

/// `start + duration`, saturating: a configured timeout of "practically forever" must not
/// overflow the clock.
fn after(start: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(duration.min(CENTURY)).unwrap_or(start)
}

/// The timeout phase to report for a deadline that is the earlier of a phase's own and the
/// total deadline.
fn phase_of(deadline: Instant, total_deadline: Instant, phase: TimeoutPhase) -> TimeoutPhase {
    if deadline >= total_deadline { TimeoutPhase::Total } else { phase }
}

/// Inserts what `defaults` has and `body` lacks, merging objects key by key.
fn merge_defaults(body: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, default) in defaults {
        match (body.get_mut(key), default) {
            (None, _) => {
                body.insert(key.clone(), default.clone());
            }
            (Some(Value::Object(existing)), Value::Object(nested)) => {
                merge_defaults(existing, nested)
            }
            (Some(_), _) => {}
        }
    }
}

async fn failure(response: Reply, deadline: Instant) -> UpstreamError {
    let status = response.status.as_u16();
    let headers = response.headers().clone();
    let mut body = Vec::new();
    let mut chunks = response.into_stream();
    while body.len() < ERROR_BODY_LIMIT {
        match timeout_at(deadline, chunks.next()).await {
            Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(ERROR_BODY_LIMIT);
    classify(status, &headers, &body, SystemTime::now())
}

/// Types a non-success response by its status, with the provider's own message; `now` is
/// what an HTTP-date `Retry-After` is measured from.
pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> UpstreamError {
    let (message, code) = provider_message(status, body);
    let retry_after = retry_after(headers, now);
    match status {
        401 | 403 => UpstreamError::Auth { status, message },
        429 => UpstreamError::RateLimited { retry_after, message },
        503 | 529 => UpstreamError::Overloaded { retry_after, message },
        // Ollama reports an over-long prompt as a 500, so the words are checked everywhere.
        _ if says_context_too_long(code.as_deref(), &message) => {
            UpstreamError::ContextTooLong { message }
        }
        300..=399 => UpstreamError::Protocol {
            message: format!("unexpected redirect ({status}): {message}"),
        },
        // 408 and 425 ask for the same request again later.
        408 | 425 => UpstreamError::Server { status, message },
        400..=499 => UpstreamError::BadRequest { status, message },
        _ => UpstreamError::Server { status, message },
    }
}

/// The provider's own error message and code from an error body in any known shape:
/// OpenAI `{"error": {"message", "type", "code"}}`, Anthropic `{"type": "error", "error":
/// {"type", "message"}}`, Ollama `{"error": "..."}`, vLLM-style `{"message": ...}`,
/// FastAPI `{"detail": ...}`; otherwise the body's text.
fn provider_message(status: u16, body: &[u8]) -> (String, Option<String>) {
    let text_of = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
    let (message, code) = match serde_json::from_slice::<Value>(body) {
        Ok(value) => match value.get("error") {
            Some(Value::Object(error)) => (
                text_of(error.get("message")),
                text_of(error.get("code")).or_else(|| text_of(error.get("type"))),
            ),
            Some(Value::String(error)) => (Some(error.clone()), None),
            _ => (
                text_of(value.get("message")).or_else(|| text_of(value.get("detail"))),
                text_of(value.get("code")),
            ),
        },
        Err(_) => (None, None),
    };
    let message = message
        .or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_else(|| {
            reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no message")
                .to_owned()
        });
    (truncate(message, ERROR_MESSAGE_LIMIT), code)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// How long the upstream asked to wait: `retry-after-ms` (OpenAI), else `Retry-After` as
/// seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = |value: f64| Duration::try_from_secs_f64(value).ok();
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return seconds(ms / 1000.0);
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return seconds(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

enum Decoder {
    OpenAi(openai::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Ollama(ollama::StreamDecoder),
}

impl Decoder {
    fn new(protocol: Protocol) -> Self {
        match protocol {
            Protocol::OpenAi => Decoder::OpenAi(openai::StreamDecoder::new()),
            Protocol::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            Protocol::Ollama => Decoder::Ollama(ollama::StreamDecoder::new()),
        }
    }

    fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        match self {
            Decoder::OpenAi(decoder) => decoder.feed(chunk, out),
            Decoder::Anthropic(decoder) => decoder.feed(chunk, out),
            Decoder::Ollama(decoder) => decoder.feed(chunk, out),
        }
    }

    /// Lets a decoder act on what it has buffered once the body ends. Only NDJSON has a
    /// complete unit without a terminator; an unfinished SSE event is discarded by the spec.
    fn end_of_input(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        match self {
            Decoder::Ollama(decoder) => decoder.end_of_input(out),
            Decoder::OpenAi(_) | Decoder::Anthropic(_) => Ok(()),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Decoder::OpenAi(decoder) => decoder.is_finished(),
            Decoder::Anthropic(decoder) => decoder.is_finished(),
            Decoder::Ollama(decoder) => decoder.is_finished(),
        }
    }
}

/// Reads a streamed response into neutral events, enforcing the stream's deadlines.
struct EventReader {
    protocol: Protocol,
    /// `None` once the stream has ended or failed; dropping it closes the connection.
    body: Option<ByteStream>,
    decoder: Decoder,
    pending: VecDeque<StreamEvent>,
    /// What the decoder makes of a read, reused from read to read.
    decoded: Vec<StreamEvent>,
    failure: Option<UpstreamError>,
    done: bool,
    idle: Duration,
    total_deadline: Instant,
    /// Until the first event has been decoded.
    first_deadline: Option<Instant>,
    /// Output has been handed on: a failure can no longer be retried, only reported as a
    /// broken stream.
    delivered: bool,
    /// The read in progress: its deadline, and the phase a timeout then is.
    reading: Option<(Instant, TimeoutPhase)>,
    /// That deadline's timer: one, moved as the deadline moves, rather than a new one
    /// registered for every chunk of every stream.
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl EventReader {
    async fn next(&mut self) -> Option<Result<StreamEvent, UpstreamError>> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<StreamEvent, UpstreamError>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            if let Some(error) = self.failure.take() {
                self.done = true;
                return Poll::Ready(Some(Err(self.as_delivered(error))));
            }
            if self.done {
                return Poll::Ready(None);
            }
            if self.decoder.is_finished() {
                self.done = true;
                self.body = None;
                return Poll::Ready(None);
            }
            let Some(body) = self.body.as_mut() else {
                self.done = true;
                return Poll::Ready(None);
            };
            // A read's deadline is set when it starts and holds until it ends, however often
            // the stream is polled meanwhile.
            let (deadline, phase) =
                *self.reading.get_or_insert_with(|| match self.first_deadline {
                    Some(first) => {
                        (first, phase_of(first, self.total_deadline, TimeoutPhase::FirstByte))
                    }
                    None => {
                        let idle = after(Instant::now(), self.idle).min(self.total_deadline);
                        (idle, phase_of(idle, self.total_deadline, TimeoutPhase::Idle))
                    }
                });
            // As `timeout_at` does: the read first, then the deadline.
            let read = match body.poll_next_unpin(cx) {
                Poll::Ready(read) => {
                    self.reading = None;
                    Ok(read)
                }
                Poll::Pending => {
                    if self.timer.deadline() != deadline {
                        self.timer.as_mut().reset(deadline);
                    }
                    match self.timer.as_mut().poll(cx) {
                        Poll::Ready(()) => Err(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            };
            match read {
                Err(()) => self.fail(UpstreamError::Timeout { phase }),
                Ok(None) => {
                    let mut events = std::mem::take(&mut self.decoded);
                    let result = self.decoder.end_of_input(&mut events);
                    self.pending.extend(events.drain(..));
                    self.decoded = events;
                    match result {
                        Err(error) => self.fail(error),
                        Ok(()) if self.decoder.is_finished() => {
                            self.body = None;
                        }
                        Ok(()) => self.fail(UpstreamError::StreamBroken {
                            message: format!(
                                "the upstream closed the stream before its end marker ({})",
                                self.protocol.end_marker()
                            ),
                        }),
                    }
                }
                Ok(Some(Err(error))) => self.fail(UpstreamError::StreamBroken {
                    message: format!("reading the stream failed: {error}"),
                }),
                Ok(Some(Ok(chunk))) => {
                    let mut events = std::mem::take(&mut self.decoded);
                    let result = self.decoder.feed(&chunk, &mut events);
                    if !events.is_empty() {
                        self.first_deadline = None;
                    }
                    self.pending.extend(events.drain(..));
                    self.decoded = events;
                    if let Err(error) = result {
                        self.fail(error);
                    }
                }
            }
        }
    }

    fn fail(&mut self, error: UpstreamError) {
        self.failure = Some(error);
        self.body = None;
    }

    /// Once output has reached the client, a provider's error is no longer something to
    /// fail over on but the reason the stream broke; timeouts keep their phase.
    fn as_delivered(&self, error: UpstreamError) -> UpstreamError {
        match error {
            UpstreamError::Timeout { .. } | UpstreamError::StreamBroken { .. } => error,
            other if self.delivered => UpstreamError::StreamBroken { message: other.to_string() },
            other => other,
        }
    }
}

impl Stream for EventReader {
    type Item = Result<StreamEvent, UpstreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_event(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_every_form() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let cases: [(Headers<'_>, Option<Duration>); 7] = [
            (&[("retry-after", "7")], Some(Duration::from_secs(7))),
            (&[("retry-after", "1.5")], Some(Duration::from_millis(1500))),
            (&[("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT")], Some(Duration::from_secs(30))),
            (&[("retry-after", "Sun, 06 Nov 1994 08:49:00 GMT")], Some(Duration::ZERO)),
            (&[("retry-after-ms", "250"), ("retry-after", "9")], Some(Duration::from_millis(250))),
            (&[("retry-after", "soon")], None),
            (&[("retry-after", "1e300")], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(retry_after(&headers(pairs), now), expected, "{pairs:?}");
        }
    }

    #[test]
    fn statuses_map_to_typed_errors_with_the_providers_message() {
        let now = SystemTime::now();
        let openai_long = json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error", "code": "context_length_exceeded"}});
        let anthropic_long = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long: 250000 tokens > 200000 maximum"}});
        let ollama_long = json!({"error": "the input length exceeds the context length"});
        let overloaded = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let cases = [
            (401, json!({"error": {"message": "Incorrect API key"}}), "auth", "Incorrect API key"),
            (403, json!({"error": "forbidden"}), "auth", "forbidden"),
            (
                429,
                json!({"error": {"message": "Rate limit reached"}}),
                "rate_limited",
                "Rate limit reached",
            ),
            (529, overloaded.clone(), "overloaded", "Overloaded"),
            (503, json!({"message": "try later"}), "overloaded", "try later"),
            (400, openai_long, "context_too_long", "maximum context length"),
            (400, anthropic_long, "context_too_long", "prompt is too long"),
            (500, ollama_long.clone(), "context_too_long", "exceeds the context length"),
            (400, ollama_long, "context_too_long", "exceeds the context length"),
            (404, json!({"error": {"message": "model 'x' not found"}}), "bad_request", "not found"),
            (422, json!({"detail": "messages: field required"}), "bad_request", "field required"),
            (500, json!({"error": {"message": "boom"}}), "server_error", "boom"),
            (502, json!("<html>bad gateway</html>"), "server_error", "bad gateway"),
            (301, json!({}), "protocol", "redirect"),
        ];
        for (status, body, kind, text) in cases {
            let error = classify(status, &HeaderMap::new(), body.to_string().as_bytes(), now);
            assert_eq!(error.kind(), kind, "{status} {body}");
            assert!(error.to_string().contains(text), "{status}: {error}");
        }
    }

    #[test]
    fn plain_text_and_empty_error_bodies_still_say_something() {
        let now = SystemTime::now();
        let error = classify(500, &HeaderMap::new(), b"upstream exploded\n", now);
        assert_eq!(
            error,
            UpstreamError::Server { status: 500, message: "upstream exploded".into() }
        );
        let error = classify(502, &HeaderMap::new(), b"", now);
        assert_eq!(error, UpstreamError::Server { status: 502, message: "Bad Gateway".into() });
        let long = "é".repeat(5000);
        let error = classify(500, &HeaderMap::new(), long.as_bytes(), now);
        assert!(error.to_string().len() < 1100);
    }

    #[test]
    fn rate_limit_and_overload_carry_retry_after() {
        let now = SystemTime::now();
        let error = classify(429, &headers(&[("retry-after", "3")]), b"{}", now);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
        let error = classify(529, &headers(&[("retry-after", "2")]), b"{}", now);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn extra_body_fills_gaps_without_overriding() {
        let mut body =
            json!({"model": "m", "options": {"temperature": 0.2}}).as_object().unwrap().clone();
        let extra = json!({"keep_alive": "30m", "model": "other", "options": {"num_ctx": 8192, "temperature": 1.0}});
        merge_defaults(&mut body, extra.as_object().unwrap());
        assert_eq!(
            Value::Object(body),
            json!({"model": "m", "keep_alive": "30m", "options": {"temperature": 0.2, "num_ctx": 8192}})
        );
    }

    #[test]
    fn endpoints_follow_each_providers_convention() {
        let client = HttpClient::new(Duration::from_secs(1)).unwrap();
        let cases = [
            (
                Protocol::OpenAi,
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                Protocol::OpenAi,
                "https://api.deepseek.com",
                "https://api.deepseek.com/chat/completions",
            ),
            (
                Protocol::Anthropic,
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1/messages",
            ),
            (Protocol::Ollama, "http://127.0.0.1:11434", "http://127.0.0.1:11434/api/chat"),
        ];
        for (protocol, base, endpoint) in cases {
            let upstream =
                Upstream::new(UpstreamConfig::new(protocol, base, "m"), client.clone()).unwrap();
            assert_eq!(upstream.endpoint().as_str(), endpoint);
        }
        for bad in ["ftp://x", "not a url", "http://x/?a=1"] {
            let config = UpstreamConfig::new(Protocol::OpenAi, bad, "m");
            assert!(matches!(
                Upstream::new(config, client.clone()),
                Err(ConfigError::BaseUrl { .. })
            ));
        }
    }

    #[test]
    fn the_key_never_shows_in_debug_output_or_config_errors() {
        let client = HttpClient::new(Duration::from_secs(1)).unwrap();
        let mut config = UpstreamConfig::new(Protocol::OpenAi, "https://api.openai.com/v1", "gpt");
        config.api_key = Some(SecretString::from("sk-very-secret-123"));
        assert!(!format!("{config:?}").contains("sk-very-secret-123"));
        let upstream = Upstream::new(config.clone(), client.clone()).unwrap();
        let debug = format!("{upstream:?}");
        assert!(!debug.contains("sk-very-secret-123"), "{debug}");
        assert!(debug.contains("REDACTED"));

        config.api_key = Some(SecretString::from("sk-bad\nkey"));
        let error = Upstream::new(config, client).unwrap_err();
        assert!(!error.to_string().contains("sk-bad"));
    }
}
