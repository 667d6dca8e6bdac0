//! The upstream client against small fake providers served by axum on 127.0.0.1:0: each
//! protocol streaming and not, every error mapping, connection refused, first-byte, idle and
//! total timeouts, broken streams, and cancellation when the caller drops a stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use router_core::Role;
use router_providers::upstream::{ConfigError, EventStream};
use router_providers::{
    ChatRequest, ContentPart, FinishReason, HttpClient, ImageSource, Message, Protocol,
    StreamEvent, TimeoutPhase, Timeouts, Upstream, UpstreamConfig, UpstreamError, Usage,
};
use secrecy::SecretString;
use serde_json::{Value, json};

const KEY: &str = "sk-test-secret-0123456789";

// --- fake provider plumbing ------------------------------------------------------------

/// What the fake saw: each request's headers and JSON body.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(HeaderMap, Value)>>>);

impl Seen {
    fn record(&self, headers: HeaderMap, body: &Bytes) {
        let value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.0.lock().unwrap().push((headers, value));
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    fn last(&self) -> (HeaderMap, Value) {
        self.0.lock().unwrap().last().cloned().unwrap()
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// A body that sends each piece after its delay, then ends or (with `hang`) stays open.
fn scripted(steps: Vec<(u64, String)>, hang: bool) -> Body {
    let steps: VecDeque<(u64, String)> = steps.into();
    Body::from_stream(futures_util::stream::unfold(steps, move |mut steps| async move {
        match steps.pop_front() {
            Some((delay, piece)) => {
                tokio::time::sleep(Duration::from_millis(delay)).await;
                Some((Ok::<_, Infallible>(Bytes::from(piece)), steps))
            }
            None if hang => {
                std::future::pending::<()>().await;
                None
            }
            None => None,
        }
    }))
}

fn sse_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}

fn base_url(addr: SocketAddr, protocol: Protocol) -> String {
    match protocol {
        Protocol::OpenAi => format!("http://{addr}/v1"),
        Protocol::Anthropic | Protocol::Ollama => format!("http://{addr}"),
    }
}

fn upstream_with(protocol: Protocol, base: String, timeouts: Timeouts) -> Upstream {
    let mut config = UpstreamConfig::new(protocol, base, "deployment-model");
    config.api_key = Some(SecretString::from(KEY));
    config.timeouts = timeouts;
    config.default_max_tokens = 777;
    Upstream::new(config, HttpClient::new(Duration::from_secs(2)).unwrap()).unwrap()
}

fn upstream(protocol: Protocol, addr: SocketAddr) -> Upstream {
    upstream_with(protocol, base_url(addr, protocol), quick_timeouts())
}

fn quick_timeouts() -> Timeouts {
    Timeouts {
        first_byte: Duration::from_secs(5),
        total: Duration::from_secs(10),
        idle: Duration::from_secs(5),
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::text(Role::System, "Be brief."),
            Message::text(Role::User, "Hello?"),
        ],
        ..ChatRequest::default()
    }
}

async fn collect(stream: EventStream) -> Vec<Result<StreamEvent, UpstreamError>> {
    stream.collect().await
}

fn text_of(items: &[Result<StreamEvent, UpstreamError>]) -> String {
    items
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::TextDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

// --- canned provider answers -------------------------------------------------------------

fn openai_chunks(texts: &[&str], done: bool) -> Vec<String> {
    let mut out = vec![
        "data: {\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n".to_owned(),
    ];
    for text in texts {
        out.push(format!(
            "data: {{\"id\":\"c1\",\"model\":\"gpt-x\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n"
        ));
    }
    if done {
        out.push("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n".into());
        out.push("data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n".into());
        out.push("data: [DONE]\n\n".into());
    }
    out
}

fn anthropic_events(texts: &[&str], done: bool) -> Vec<String> {
    let mut out = vec![
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":6,\"output_tokens\":1}}}\n\n".to_owned(),
        "event: ping\ndata: {\"type\":\"ping\"}\n\n".to_owned(),
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_owned(),
    ];
    for text in texts {
        out.push(format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"
        ));
    }
    if done {
        out.push(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                .into(),
        );
        out.push("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":3}}\n\n".into());
        out.push("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".into());
    }
    out
}

fn ollama_lines(texts: &[&str], done: bool) -> Vec<String> {
    let mut out: Vec<String> = texts
        .iter()
        .map(|text| {
            format!(
                "{{\"model\":\"llama3\",\"created_at\":\"2025-01-01T00:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"done\":false}}\n"
            )
        })
        .collect();
    if done {
        out.push("{\"model\":\"llama3\",\"created_at\":\"2025-01-01T00:00:01Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":7,\"eval_count\":2}\n".into());
    }
    out
}

fn stream_pieces(protocol: Protocol, texts: &[&str], done: bool) -> Vec<String> {
    match protocol {
        Protocol::OpenAi => openai_chunks(texts, done),
        Protocol::Anthropic => anthropic_events(texts, done),
        Protocol::Ollama => ollama_lines(texts, done),
    }
}

fn complete_body(protocol: Protocol) -> Value {
    match protocol {
        Protocol::OpenAi => json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
        }),
        Protocol::Anthropic => json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "text", "text": "Hi there"}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 9, "output_tokens": 2}
        }),
        Protocol::Ollama => json!({
            "model": "llama3", "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": "Hi there"}, "done": true, "done_reason": "stop",
            "prompt_eval_count": 9, "eval_count": 2
        }),
    }
}

fn path(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::OpenAi => "/v1/chat/completions",
        Protocol::Anthropic => "/v1/messages",
        Protocol::Ollama => "/api/chat",
    }
}

/// A well-behaved fake of `protocol` that records what it is sent.
fn fake_provider(protocol: Protocol, seen: Seen) -> Router {
    Router::new().route(
        path(protocol),
        post(move |headers: HeaderMap, body: Bytes| {
            let seen = seen.clone();
            async move {
                seen.record(headers, &body);
                let request: Value = serde_json::from_slice(&body).unwrap();
                if request["stream"] == true {
                    let steps = stream_pieces(protocol, &["Hi", " there"], true)
                        .into_iter()
                        .map(|piece| (5, piece))
                        .collect();
                    sse_response(scripted(steps, false))
                } else {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        complete_body(protocol).to_string(),
                    )
                        .into_response()
                }
            }
        }),
    )
}

const PROTOCOLS: [Protocol; 3] = [Protocol::OpenAi, Protocol::Anthropic, Protocol::Ollama];

// --- the happy paths -------------------------------------------------------------------------

#[tokio::test]
async fn complete_speaks_each_protocol_with_its_headers() {
    for protocol in PROTOCOLS {
        let seen = Seen::default();
        let addr = serve(fake_provider(protocol, seen.clone())).await;
        let response = upstream(protocol, addr).complete(&request()).await.unwrap();
        assert_eq!(response.text(), "Hi there", "{protocol:?}");
        assert_eq!(response.usage, Usage { input_tokens: 9, output_tokens: 2 });
        assert_eq!(response.finish_reason, FinishReason::Stop);

        let (headers, body) = seen.last();
        assert_eq!(body["model"], "deployment-model", "{protocol:?}");
        assert_eq!(body["stream"], false);
        match protocol {
            Protocol::OpenAi | Protocol::Ollama => {
                assert_eq!(headers[header::AUTHORIZATION], format!("Bearer {KEY}").as_str());
            }
            Protocol::Anthropic => {
                assert_eq!(headers["x-api-key"], KEY);
                assert_eq!(headers["anthropic-version"], "2023-06-01");
                assert!(headers.get(header::AUTHORIZATION).is_none());
                assert_eq!(body["max_tokens"], 777, "the configured default fills max_tokens");
                assert_eq!(body["system"], "Be brief.");
            }
        }
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    }
}

#[tokio::test]
async fn stream_speaks_each_protocol() {
    for protocol in PROTOCOLS {
        let seen = Seen::default();
        let addr = serve(fake_provider(protocol, seen.clone())).await;
        let items = collect(upstream(protocol, addr).stream(&request()).await.unwrap()).await;
        assert!(items.iter().all(Result::is_ok), "{protocol:?}: {items:?}");
        assert!(matches!(items[0], Ok(StreamEvent::Start { .. })), "{items:?}");
        assert_eq!(text_of(&items), "Hi there", "{protocol:?}");
        assert!(
            items
                .iter()
                .any(|i| matches!(i, Ok(StreamEvent::Finish { reason: FinishReason::Stop, .. })))
        );
        assert!(items.iter().any(|i| matches!(i, Ok(StreamEvent::Usage(_)))));

        let (headers, body) = seen.last();
        assert_eq!(body["stream"], true);
        if protocol == Protocol::OpenAi {
            assert_eq!(body["stream_options"], json!({"include_usage": true}));
        }
        if protocol != Protocol::Ollama {
            assert_eq!(headers[header::ACCEPT], "text/event-stream");
        }
    }
}

#[tokio::test]
async fn extra_body_reaches_the_upstream() {
    let seen = Seen::default();
    let addr = serve(fake_provider(Protocol::Ollama, seen.clone())).await;
    let mut config =
        UpstreamConfig::new(Protocol::Ollama, base_url(addr, Protocol::Ollama), "llama3");
    config.extra_body =
        json!({"keep_alive": "30m", "options": {"num_ctx": 8192}}).as_object().unwrap().clone();
    let upstream = Upstream::new(config, HttpClient::new(Duration::from_secs(2)).unwrap()).unwrap();
    let mut with_temperature = request();
    with_temperature.temperature = Some(0.0);
    upstream.complete(&with_temperature).await.unwrap();
    let (headers, body) = seen.last();
    assert_eq!(body["keep_alive"], "30m");
    assert_eq!(body["options"], json!({"num_ctx": 8192, "temperature": 0.0}));
    assert!(headers.get(header::AUTHORIZATION).is_none(), "no key, no header");
}

#[tokio::test]
async fn an_untranslatable_request_never_reaches_the_upstream() {
    let seen = Seen::default();
    let addr = serve(fake_provider(Protocol::Ollama, seen.clone())).await;
    let mut with_url = request();
    with_url.messages[1].content.push(ContentPart::Image {
        source: ImageSource::Url { url: "https://example.com/cat.png".into() },
    });
    let upstream = upstream(Protocol::Ollama, addr);
    assert_eq!(upstream.complete(&with_url).await.unwrap_err().kind(), "unsupported");
    assert_eq!(upstream.stream(&with_url).await.err().unwrap().kind(), "unsupported");
    assert_eq!(seen.count(), 0);
}

// --- error mapping ---------------------------------------------------------------------------

struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// A fake that answers `/{case}/...` with the canned error of that case.
async fn error_server(cases: Arc<Vec<Canned>>) -> SocketAddr {
    let handler = move |axum::extract::Path(case): axum::extract::Path<usize>| {
        let cases = cases.clone();
        async move {
            let canned = &cases[case];
            let mut response = Response::new(Body::from(canned.body.clone()));
            *response.status_mut() = StatusCode::from_u16(canned.status).unwrap();
            for (name, value) in &canned.headers {
                response.headers_mut().insert(*name, value.parse().unwrap());
            }
            response
        }
    };
    let router = Router::new()
        .route("/{case}/v1/chat/completions", post(handler.clone()))
        .route("/{case}/v1/messages", post(handler.clone()))
        .route("/{case}/api/chat", post(handler));
    serve(router).await
}

#[tokio::test]
async fn every_failure_status_maps_to_its_error_in_both_modes() {
    let openai_error = |message: &str, code: &str| {
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}).to_string()
    };
    let anthropic_error = |kind: &str, message: &str| {
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
    };
    let in_a_minute =
        httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
    let cases = vec![
        (
            Protocol::OpenAi,
            Canned {
                status: 401,
                headers: vec![],
                body: openai_error("Incorrect API key provided", "invalid_api_key"),
            },
            "auth",
            "Incorrect API key",
            None,
        ),
        (
            Protocol::Anthropic,
            Canned {
                status: 403,
                headers: vec![],
                body: anthropic_error("permission_error", "not allowed"),
            },
            "auth",
            "not allowed",
            None,
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 429,
                headers: vec![("retry-after", "7".into())],
                body: openai_error("Rate limit reached", "rate_limit_exceeded"),
            },
            "rate_limited",
            "Rate limit reached",
            Some(Duration::from_secs(7)),
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 429,
                headers: vec![("retry-after-ms", "1500".into()), ("retry-after", "2".into())],
                body: "{}".into(),
            },
            "rate_limited",
            "",
            Some(Duration::from_millis(1500)),
        ),
        (
            Protocol::Anthropic,
            Canned {
                status: 429,
                headers: vec![("retry-after", in_a_minute)],
                body: anthropic_error("rate_limit_error", "slow down"),
            },
            "rate_limited",
            "slow down",
            Some(Duration::from_secs(60)),
        ),
        (
            Protocol::Anthropic,
            Canned {
                status: 529,
                headers: vec![],
                body: anthropic_error("overloaded_error", "Overloaded"),
            },
            "overloaded",
            "Overloaded",
            None,
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 503,
                headers: vec![("retry-after", "3".into())],
                body: "Service Unavailable".into(),
            },
            "overloaded",
            "Service Unavailable",
            Some(Duration::from_secs(3)),
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 400,
                headers: vec![],
                body: openai_error(
                    "This model's maximum context length is 128000 tokens.",
                    "context_length_exceeded",
                ),
            },
            "context_too_long",
            "maximum context length",
            None,
        ),
        (
            Protocol::Anthropic,
            Canned {
                status: 400,
                headers: vec![],
                body: anthropic_error(
                    "invalid_request_error",
                    "prompt is too long: 210000 tokens > 200000 maximum",
                ),
            },
            "context_too_long",
            "prompt is too long",
            None,
        ),
        (
            Protocol::Ollama,
            Canned {
                status: 400,
                headers: vec![],
                body: json!({"error": "the input length exceeds the context length"}).to_string(),
            },
            "context_too_long",
            "exceeds the context length",
            None,
        ),
        (
            Protocol::Ollama,
            Canned {
                status: 500,
                headers: vec![],
                body: json!({"error": "input exceeds context length"}).to_string(),
            },
            "context_too_long",
            "exceeds context length",
            None,
        ),
        (
            Protocol::Ollama,
            Canned {
                status: 404,
                headers: vec![],
                body: json!({"error": "model \"llama9\" not found, try pulling it first"})
                    .to_string(),
            },
            "bad_request",
            "not found",
            None,
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 422,
                headers: vec![],
                body: json!({"detail": [{"msg": "field required"}]}).to_string(),
            },
            "bad_request",
            "field required",
            None,
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 400,
                headers: vec![],
                body: openai_error("Invalid value for 'temperature'", "invalid_value"),
            },
            "bad_request",
            "temperature",
            None,
        ),
        (
            Protocol::OpenAi,
            Canned {
                status: 500,
                headers: vec![],
                body: openai_error("The server had an error", "server_error"),
            },
            "server_error",
            "The server had an error",
            None,
        ),
        (
            Protocol::Anthropic,
            Canned { status: 502, headers: vec![], body: "<html>Bad Gateway</html>".into() },
            "server_error",
            "Bad Gateway",
            None,
        ),
    ];
    let (protocols, rest): (Vec<_>, Vec<_>) =
        cases.into_iter().map(|(p, c, k, m, r)| (p, (c, k, m, r))).unzip();
    let (canned, expectations): (Vec<_>, Vec<_>) =
        rest.into_iter().map(|(c, k, m, r)| (c, (k, m, r))).unzip();
    let addr = error_server(Arc::new(canned)).await;
    for (case, (protocol, (kind, words, retry_after))) in
        protocols.into_iter().zip(expectations).enumerate()
    {
        let base = match protocol {
            Protocol::OpenAi => format!("http://{addr}/{case}/v1"),
            _ => format!("http://{addr}/{case}"),
        };
        let upstream = upstream_with(protocol, base, quick_timeouts());
        let complete = upstream.complete(&request()).await.unwrap_err();
        let stream = upstream.stream(&request()).await.err().unwrap();
        for error in [complete, stream] {
            assert_eq!(error.kind(), kind, "case {case}: {error}");
            assert!(error.to_string().contains(words), "case {case}: {error}");
            assert!(!error.to_string().contains(KEY));
            match retry_after {
                Some(expected) => {
                    let got = error.retry_after().unwrap();
                    // An HTTP date has one-second resolution and time passes during the test.
                    assert!(
                        got <= expected && got + Duration::from_secs(3) >= expected,
                        "case {case}: {got:?}"
                    );
                }
                None => assert_eq!(error.retry_after(), None, "case {case}"),
            }
        }
    }
}

#[tokio::test]
async fn a_success_status_with_a_garbage_body_is_a_protocol_error() {
    let router = Router::new().route("/v1/chat/completions", post(|| async { "this is not json" }));
    let addr = serve(router).await;
    let error = upstream(Protocol::OpenAi, addr).complete(&request()).await.unwrap_err();
    assert_eq!(error.kind(), "protocol");
    // Streaming, the same body never produces an event or its end marker.
    let error = upstream(Protocol::OpenAi, addr).stream(&request()).await.err().unwrap();
    assert_eq!(error.kind(), "stream_broken");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for protocol in PROTOCOLS {
        let upstream = upstream(protocol, addr);
        let started = Instant::now();
        let complete = upstream.complete(&request()).await.unwrap_err();
        let stream = upstream.stream(&request()).await.err().unwrap();
        for error in [complete, stream] {
            assert_eq!(error.kind(), "connect", "{protocol:?}: {error}");
            assert!(error.is_failover() && error.is_retryable());
            assert!(!error.to_string().contains(KEY));
        }
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn a_connection_that_is_never_accepted_is_a_connect_timeout() {
    // A listener with a backlog of one that never accepts: once its queue is full, the
    // kernel drops further SYNs and a connect hangs until the client gives up.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    loop {
        let attempt =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(addr))
                .await;
        match attempt {
            Ok(Ok(stream)) if held.len() < 16 => held.push(stream),
            _ => break,
        }
    }
    let mut config =
        UpstreamConfig::new(Protocol::OpenAi, base_url(addr, Protocol::OpenAi), "model");
    config.timeouts = quick_timeouts();
    let client = HttpClient::new(Duration::from_millis(300)).unwrap();
    let upstream = Upstream::new(config, client).unwrap();
    let started = Instant::now();
    let error = upstream.complete(&request()).await.unwrap_err();
    assert_eq!(error, UpstreamError::Timeout { phase: TimeoutPhase::Connect }, "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(listener);
}

#[test]
fn a_bad_base_url_is_a_config_error() {
    let config = UpstreamConfig::new(Protocol::OpenAi, "localhost:8080", "m");
    let error =
        Upstream::new(config, HttpClient::new(Duration::from_secs(2)).unwrap()).unwrap_err();
    assert!(matches!(error, ConfigError::BaseUrl { .. }), "{error}");
}

// --- timeouts --------------------------------------------------------------------------------

#[tokio::test]
async fn no_response_head_is_a_first_byte_timeout_and_a_total_timeout_for_complete() {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let addr = serve(router).await;
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(200),
        total: Duration::from_millis(400),
        idle: Duration::from_secs(5),
    };
    let upstream = upstream_with(Protocol::OpenAi, base_url(addr, Protocol::OpenAi), timeouts);
    let started = Instant::now();
    let error = upstream.stream(&request()).await.err().unwrap();
    assert_eq!(error, UpstreamError::Timeout { phase: TimeoutPhase::FirstByte });
    assert!(started.elapsed() < Duration::from_secs(2));
    let error = upstream.complete(&request()).await.unwrap_err();
    assert_eq!(error, UpstreamError::Timeout { phase: TimeoutPhase::Total });
}

#[tokio::test]
async fn a_head_without_any_event_is_a_first_byte_timeout() {
    let router = Router::new().route(
        "/v1/messages",
        post(|| async { sse_response(scripted(vec![(0, ": keep-alive\n\n".into())], true)) }),
    );
    let addr = serve(router).await;
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(300),
        total: Duration::from_secs(10),
        idle: Duration::from_secs(5),
    };
    let upstream =
        upstream_with(Protocol::Anthropic, base_url(addr, Protocol::Anthropic), timeouts);
    let started = Instant::now();
    let error = upstream.stream(&request()).await.err().unwrap();
    assert_eq!(error, UpstreamError::Timeout { phase: TimeoutPhase::FirstByte });
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// An upstream of `protocol` that streams one piece of text and then holds the stream open
/// without sending another byte, called with 300 ms of idle timeout.
async fn goes_quiet(protocol: Protocol) -> Upstream {
    let router = Router::new().route(
        path(protocol),
        post(move || async move {
            let steps =
                stream_pieces(protocol, &["partial"], false).into_iter().map(|p| (0, p)).collect();
            sse_response(scripted(steps, true))
        }),
    );
    let addr = serve(router).await;
    let timeouts = Timeouts {
        first_byte: Duration::from_secs(5),
        total: Duration::from_secs(30),
        idle: Duration::from_millis(300),
    };
    upstream_with(protocol, base_url(addr, protocol), timeouts)
}

#[tokio::test]
async fn a_stream_that_goes_quiet_ends_with_an_idle_timeout() {
    for protocol in PROTOCOLS {
        let upstream = goes_quiet(protocol).await;
        let started = Instant::now();
        let items = collect(upstream.stream(&request()).await.unwrap()).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{protocol:?}");
        assert_eq!(text_of(&items), "partial", "{protocol:?}");
        assert_eq!(
            items.last().unwrap().as_ref().unwrap_err(),
            &UpstreamError::Timeout { phase: TimeoutPhase::Idle },
            "{protocol:?}"
        );
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }
}

#[tokio::test]
async fn polling_a_quiet_stream_often_does_not_postpone_its_idle_timeout() {
    // The relay polls the stream again and again while it gathers a batch: a read's idle
    // deadline must hold from when the read began, not move with every poll.
    let upstream = goes_quiet(Protocol::OpenAi).await;
    let mut stream = upstream.stream(&request()).await.unwrap();
    let started = Instant::now();
    let ending = loop {
        // One poll, then back to waiting a little.
        let polled = std::future::poll_fn(|cx| Poll::Ready(stream.poll_next_unpin(cx))).await;
        match polled {
            Poll::Ready(Some(Err(error))) => break error,
            Poll::Ready(Some(Ok(_))) => continue,
            Poll::Ready(None) => panic!("the stream ended without its timeout"),
            Poll::Pending => {}
        }
        assert!(started.elapsed() < Duration::from_secs(3), "the idle timeout never came");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert_eq!(ending, UpstreamError::Timeout { phase: TimeoutPhase::Idle });
}

#[tokio::test]
async fn a_stream_that_trickles_forever_ends_at_the_total_timeout() {
    let router = Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            let mut steps: Vec<(u64, String)> =
                openai_chunks(&[], false).into_iter().map(|p| (0, p)).collect();
            steps.extend(openai_chunks(&["tick"; 200], false).into_iter().skip(1).map(|p| (50, p)));
            sse_response(scripted(steps, false))
        }),
    );
    let addr = serve(router).await;
    let timeouts = Timeouts {
        first_byte: Duration::from_secs(5),
        total: Duration::from_millis(600),
        idle: Duration::from_millis(400),
    };
    let upstream = upstream_with(Protocol::OpenAi, base_url(addr, Protocol::OpenAi), timeouts);
    let items = collect(upstream.stream(&request()).await.unwrap()).await;
    assert!(text_of(&items).starts_with("ticktick"));
    assert_eq!(
        items.last().unwrap().as_ref().unwrap_err(),
        &UpstreamError::Timeout { phase: TimeoutPhase::Total }
    );
}

// --- broken streams --------------------------------------------------------------------------

#[tokio::test]
async fn a_stream_cut_before_its_end_marker_is_broken_as_its_last_item() {
    for protocol in PROTOCOLS {
        let router = Router::new().route(
            path(protocol),
            post(move || async move {
                let steps = stream_pieces(protocol, &["half", " an answer"], false)
                    .into_iter()
                    .map(|p| (2, p))
                    .collect();
                sse_response(scripted(steps, false))
            }),
        );
        let addr = serve(router).await;
        let items = collect(upstream(protocol, addr).stream(&request()).await.unwrap()).await;
        assert_eq!(text_of(&items), "half an answer", "{protocol:?}");
        let last = items.last().unwrap().as_ref().unwrap_err();
        assert_eq!(last.kind(), "stream_broken", "{protocol:?}: {last}");
        assert!(last.to_string().contains("end marker"), "{last}");
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }
}

#[tokio::test]
async fn a_provider_error_before_output_is_typed_so_dispatch_can_fail_over() {
    let router = Router::new().route(
        "/v1/messages",
        post(|| async {
            let steps = vec![
                (0, anthropic_events(&[], false)[0].clone()),
                (5, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into()),
            ];
            sse_response(scripted(steps, false))
        }),
    );
    let addr = serve(router).await;
    let error = upstream(Protocol::Anthropic, addr).stream(&request()).await.err().unwrap();
    assert_eq!(error.kind(), "overloaded", "{error}");
    assert!(error.is_failover());
}

#[tokio::test]
async fn a_provider_error_after_output_breaks_the_stream() {
    let router = Router::new().route(
        "/v1/messages",
        post(|| async {
            let mut steps: Vec<(u64, String)> = anthropic_events(&["Some text"], false).into_iter().map(|p| (0, p)).collect();
            steps.push((5, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n".into()));
            steps.push((0, anthropic_events(&[], true).pop().unwrap()));
            sse_response(scripted(steps, false))
        }),
    );
    let addr = serve(router).await;
    let items =
        collect(upstream(Protocol::Anthropic, addr).stream(&request()).await.unwrap()).await;
    assert_eq!(text_of(&items), "Some text");
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.kind(), "stream_broken");
    assert!(last.to_string().contains("Overloaded"), "{last}");
}

// --- cancellation ----------------------------------------------------------------------------

/// Counts the chunks the fake has produced, and notices when its body is dropped (which
/// hyper does when the connection closes).
#[derive(Clone, Default)]
struct Production {
    chunks: Arc<AtomicUsize>,
    dropped: Arc<tokio::sync::Notify>,
}

struct DropSignal(Arc<tokio::sync::Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_connection() {
    let production = Production::default();
    let served = production.clone();
    let router = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let production = served.clone();
            async move {
                let guard = DropSignal(production.dropped.clone());
                let endless = futures_util::stream::unfold((0u64, guard), move |(n, guard)| {
                    let chunks = production.chunks.clone();
                    async move {
                        if n > 0 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        chunks.fetch_add(1, Ordering::SeqCst);
                        let piece = if n == 0 {
                            openai_chunks(&[], false).remove(0)
                        } else {
                            openai_chunks(&["tok"], false).remove(1)
                        };
                        Some((Ok::<_, Infallible>(Bytes::from(piece)), (n + 1, guard)))
                    }
                });
                sse_response(Body::from_stream(endless))
            }
        }),
    );
    let addr = serve(router).await;
    let mut stream = upstream(Protocol::OpenAi, addr).stream(&request()).await.unwrap();
    for _ in 0..5 {
        assert!(stream.next().await.unwrap().is_ok());
    }
    drop(stream);

    tokio::time::timeout(Duration::from_secs(5), production.dropped.notified())
        .await
        .expect("the fake provider's response body was not dropped after the client went away");
    let after_drop = production.chunks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        production.chunks.load(Ordering::SeqCst),
        after_drop,
        "the upstream kept generating"
    );
}

// --- the connection pool -----------------------------------------------------------------

#[tokio::test]
async fn a_burst_leaves_no_more_idle_connections_than_the_pool_keeps() {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    // More requests at once than the pool keeps idle: each needs a connection of its own,
    // since the fake answers none until all of them have arrived.
    let burst = router_providers::POOL_MAX_IDLE + 40;
    let arrived = Arc::new(tokio::sync::Barrier::new(burst));
    let router = Router::new().route(
        path(Protocol::OpenAi),
        post(move || {
            let arrived = arrived.clone();
            async move {
                arrived.wait().await;
                let body = complete_body(Protocol::OpenAi).to_string();
                ([(header::CONTENT_TYPE, "application/json")], body).into_response()
            }
        }),
    );
    // Served by hand, to count the connections that are open.
    let open = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counted = open.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (open, service) = (counted.clone(), TowerToHyperService::new(router.clone()));
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let connection = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                let _ = connection.await;
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });

    let (upstream, request) = (upstream(Protocol::OpenAi, addr), request());
    let answers =
        futures_util::future::join_all((0..burst).map(|_| upstream.complete(&request))).await;
    assert!(answers.iter().all(Result::is_ok), "{:?}", answers.iter().find(|a| a.is_err()));
    assert_eq!(open.load(Ordering::SeqCst), burst, "each request had a connection of its own");

    let deadline = Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > router_providers::POOL_MAX_IDLE && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        open.load(Ordering::SeqCst),
        router_providers::POOL_MAX_IDLE,
        "the connections beyond the pool's idle limit are closed; the rest kept for reuse"
    );
}
