//! Anthropic Messages: client requests, responses, the streaming event sequence, errors;
//! upstream requests, responses and streams.

use router_core::Role;
use router_providers::anthropic::{self, StreamDecoder, StreamEncoder};
use router_providers::sse::SseEvent;
use router_providers::{
    ApiError, ApiErrorKind, ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource,
    Message, StreamEvent, ToolCall, ToolChoice, ToolDef, Usage,
};
use serde_json::{Value, json};

use crate::support::{decode_at_every_split, frames, meta};

fn parse(body: &Value) -> Result<ChatRequest, router_providers::RequestError> {
    anthropic::parse_request(body.to_string().as_bytes())
}

fn minimal() -> Value {
    json!({"model": "auto", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[test]
fn parses_a_full_request() {
    let body = json!({
        "model": "claude-sonnet",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather and picture?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/x.jpg"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "18C"}, {"type": "text", "text": "sunny"}]},
                {"type": "tool_result", "tool_use_id": "toolu_01B", "content": "boom", "is_error": true},
                {"type": "text", "text": "And tomorrow?"}
            ]}
        ],
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
        "stream": true,
        "metadata": {"user_id": "user-7"},
        "tools": [{"name": "get_weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    });
    let expected = ChatRequest {
        model: "claude-sonnet".into(),
        messages: vec![
            Message::text(Role::System, "You are terse."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text { text: "Weather and picture?".into() },
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBOR".into(),
                        },
                    },
                    ContentPart::Image {
                        source: ImageSource::Url { url: "https://example.com/x.jpg".into() },
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::Text { text: "Checking.".into() },
                    ContentPart::ToolCall(ToolCall {
                        id: "toolu_01A".into(),
                        name: "get_weather".into(),
                        arguments: "{\"city\":\"Paris\"}".into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::ToolResult {
                        call_id: "toolu_01A".into(),
                        content: "18C\n\nsunny".into(),
                        is_error: false,
                    },
                    ContentPart::ToolResult {
                        call_id: "toolu_01B".into(),
                        content: "boom".into(),
                        is_error: true,
                    },
                    ContentPart::Text { text: "And tomorrow?".into() },
                ],
            },
        ],
        max_tokens: Some(1024),
        temperature: Some(0.3),
        top_p: Some(0.8),
        stop: vec!["\n\nHuman:".into()],
        stream: true,
        tools: vec![ToolDef {
            name: "get_weather".into(),
            description: Some("Weather by city".into()),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        tool_choice: Some(ToolChoice::Tool("get_weather".into())),
        json_output: None,
        user: Some("user-7".into()),
        seed: None,
    };
    assert_eq!(parse(&body).unwrap(), expected);
}

#[test]
fn system_as_a_string_and_tool_choices() {
    let request = parse(&with(minimal(), "system", json!("Be nice."))).unwrap();
    assert_eq!(request.messages[0], Message::text(Role::System, "Be nice."));
    let tools = json!([{"name": "t", "input_schema": {"type": "object"}}]);
    for (choice, expected) in [
        (json!({"type": "auto"}), ToolChoice::Auto),
        (json!({"type": "any"}), ToolChoice::Required),
        (json!({"type": "none"}), ToolChoice::None),
        (json!({"type": "tool", "name": "t"}), ToolChoice::Tool("t".into())),
    ] {
        let body = with(with(minimal(), "tools", tools.clone()), "tool_choice", choice);
        assert_eq!(parse(&body).unwrap().tool_choice, Some(expected));
    }
}

#[test]
fn validation_errors_name_the_field_in_anthropic_style() {
    let user = |content: Value| json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]});
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            Some("max_tokens"),
            "max_tokens: Field required",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            Some("model"),
            "model: Field required",
        ),
        (json!({"model": "m", "max_tokens": 5}), Some("messages"), "messages: Field required"),
        (
            json!({"model": "m", "max_tokens": 5, "messages": []}),
            Some("messages"),
            "messages: List should have at least 1 item",
        ),
        (
            json!({"model": "m", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}),
            Some("max_tokens"),
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (
            json!({"model": "m", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]}),
            Some("max_tokens"),
            "max_tokens: Input should be an integer",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}),
            Some("messages.0.role"),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            user(json!(7)),
            Some("messages.0.content"),
            "messages.0.content: Input should be a valid string or a list of content blocks",
        ),
        (
            user(json!([{"type": "video"}])),
            Some("messages.0.content.0.type"),
            "'text', 'image', 'tool_use', or 'tool_result'",
        ),
        (
            user(json!([{"type": "tool_use", "id": "x", "name": "n", "input": {}}])),
            Some("messages.0.content.0.type"),
            "not allowed in user messages",
        ),
        (
            user(json!([{"type": "document", "source": {}}])),
            Some("messages.0.content.0.type"),
            "not supported by this gateway",
        ),
        (
            user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "x"}}]),
            ),
            Some("messages.0.content.0.source.media_type"),
            "'image/png'",
        ),
        (
            user(json!([{"type": "tool_result", "content": "x"}])),
            Some("messages.0.content.0.tool_use_id"),
            "Field required",
        ),
        (
            user(
                json!([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image", "source": {}}]}]),
            ),
            Some("messages.0.content.0.content.0.type"),
            "images inside tool results",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "x", "name": "n", "input": "text"}]}]}),
            Some("messages.0.content.0.input"),
            "Input should be an object",
        ),
        (
            with(minimal(), "temperature", json!(1.5)),
            Some("temperature"),
            "temperature: Input should be less than or equal to 1",
        ),
        (
            with(minimal(), "stop_sequences", json!("stop")),
            Some("stop_sequences"),
            "Input should be an array",
        ),
        (
            with(minimal(), "system", json!(3)),
            Some("system"),
            "system: Input should be a valid string or a list of text blocks",
        ),
        (
            with(minimal(), "metadata", json!({"user_id": 3})),
            Some("metadata.user_id"),
            "Input should be a string",
        ),
        (
            with(minimal(), "tools", json!([{"name": "t"}])),
            Some("tools.0.input_schema"),
            "tools.0.input_schema: Field required",
        ),
        (
            with(
                minimal(),
                "tools",
                json!([{"type": "web_search_20250305", "name": "web_search"}]),
            ),
            Some("tools.0.type"),
            "server tools",
        ),
        (
            with(minimal(), "tool_choice", json!({"type": "sometimes"})),
            Some("tool_choice.type"),
            "'auto', 'any', 'tool', or 'none'",
        ),
        (
            with(
                with(minimal(), "tools", json!([{"name": "t", "input_schema": {}}])),
                "tool_choice",
                json!({"type": "tool", "name": "u"}),
            ),
            Some("tool_choice.name"),
            "no tool named 'u'",
        ),
        (with(minimal(), "stream", json!(1)), Some("stream"), "Input should be a boolean"),
    ];
    for (body, param, words) in cases {
        let error = parse(&body).expect_err(&body.to_string());
        assert_eq!(error.param.as_deref(), param, "{body}: {}", error.message);
        assert!(error.message.contains(words), "{body}: {:?} lacks {words:?}", error.message);
        if let Some(param) = param {
            assert!(error.message.starts_with(param), "{}", error.message);
        }
    }
    let error = anthropic::parse_request(b"{oops").unwrap_err();
    assert!(error.message.contains("not valid JSON"), "{}", error.message);
}

fn response() -> ChatResponse {
    ChatResponse {
        id: "up".into(),
        model: "up-model".into(),
        content: vec![
            ContentPart::Text { text: "On it.".into() },
            ContentPart::ToolCall(ToolCall {
                id: "call_77".into(),
                name: "f".into(),
                arguments: "{\"k\":[1,2]}".into(),
            }),
            ContentPart::ToolCall(ToolCall {
                id: "call_78".into(),
                name: "g".into(),
                arguments: String::new(),
            }),
        ],
        finish_reason: FinishReason::ToolCalls,
        stop_sequence: None,
        usage: Usage { input_tokens: 20, output_tokens: 8 },
    }
}

#[test]
fn encodes_a_response() {
    let body: Value =
        serde_json::from_slice(&anthropic::encode_response(&response(), &meta()).unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "resp-1",
            "type": "message",
            "role": "assistant",
            "model": "client-model",
            "content": [
                {"type": "text", "text": "On it."},
                {"type": "tool_use", "id": "call_77", "name": "f", "input": {"k": [1, 2]}},
                {"type": "tool_use", "id": "call_78", "name": "g", "input": {}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 20, "output_tokens": 8}
        })
    );
}

#[test]
fn a_response_is_written_exactly() {
    // The body is written by hand: its strings are escaped like any other JSON string, empty
    // text blocks are left out, and the keys come in the order of Anthropic's documentation.
    let meta = router_providers::chat::ResponseMeta {
        id: "msg_\"1\"".into(),
        model: "m\\x".into(),
        created: 7,
    };
    let answer = ChatResponse {
        id: "up".into(),
        model: "up-model".into(),
        content: vec![
            ContentPart::Text { text: String::new() },
            ContentPart::Text { text: "line one\n\"two\"\t\u{1}".into() },
            ContentPart::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{\"k\": [1, 2]}".into(),
            }),
        ],
        finish_reason: FinishReason::StopSequence,
        stop_sequence: Some("\n\nHuman:".into()),
        usage: Usage { input_tokens: 20, output_tokens: 8 },
    };
    let body = anthropic::encode_response(&answer, &meta).unwrap();
    let expected = concat!(
        r#"{"id":"msg_\"1\"","type":"message","role":"assistant","model":"m\\x","content":["#,
        r#"{"type":"text","text":"line one\n\"two\"\t\u0001"},"#,
        r#"{"type":"tool_use","id":"call_1","name":"f","input":{"k":[1,2]}}],"#,
        r#""stop_reason":"stop_sequence","stop_sequence":"\n\nHuman:","#,
        r#""usage":{"input_tokens":20,"output_tokens":8}}"#,
    );
    assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
}

#[test]
fn a_response_with_unreadable_tool_arguments_is_refused_not_mangled() {
    let mut bad = response();
    bad.content[1] = ContentPart::ToolCall(ToolCall {
        id: "c".into(),
        name: "f".into(),
        arguments: "{\"k\":".into(),
    });
    let error = anthropic::encode_response(&bad, &meta()).unwrap_err();
    assert_eq!(error.kind(), "protocol");
    assert!(error.to_string().contains("'f'"));
}

#[test]
fn encodes_error_bodies() {
    let body: Value = serde_json::from_slice(&anthropic::error_body(&ApiError::new(
        ApiErrorKind::Overloaded,
        "Overloaded",
    )))
    .unwrap();
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let api = ApiError::new(ApiErrorKind::Overloaded, "x");
    assert_eq!(api.anthropic_status(), 529);
    for (kind, name) in [
        (ApiErrorKind::InvalidRequest, "invalid_request_error"),
        (ApiErrorKind::Authentication, "authentication_error"),
        (ApiErrorKind::PermissionDenied, "permission_error"),
        (ApiErrorKind::NotFound, "not_found_error"),
        (ApiErrorKind::RequestTooLarge, "request_too_large"),
        (ApiErrorKind::RateLimited, "rate_limit_error"),
        (ApiErrorKind::Upstream, "api_error"),
        (ApiErrorKind::Timeout, "timeout_error"),
    ] {
        assert_eq!(anthropic::error_type(kind), name);
    }
}

fn names(events: &[SseEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_deref().unwrap_or("")).collect()
}

fn data(event: &SseEvent) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

#[test]
fn stream_encoder_writes_the_exact_event_sequence() {
    let events = [
        StreamEvent::Start { id: "up".into(), model: "up".into() },
        StreamEvent::TextDelta { text: "Let me ".into() },
        StreamEvent::TextDelta { text: "look.".into() },
        StreamEvent::ToolCallStart { index: 0, id: "call_1".into(), name: "f".into() },
        StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":".into() },
        StreamEvent::ToolCallDelta { index: 0, arguments: "1}".into() },
        StreamEvent::ToolCallStart { index: 1, id: "call_2".into(), name: "g".into() },
        StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
        StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
        StreamEvent::Usage(Usage { input_tokens: 11, output_tokens: 22 }),
    ];
    let mut encoder = StreamEncoder::new(meta(), 9);
    let mut bytes = Vec::new();
    for event in &events {
        bytes.extend_from_slice(&encoder.encode(event));
    }
    bytes.extend_from_slice(&encoder.finish());
    let sse = frames(&bytes);
    assert_eq!(
        names(&sse),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    // The event name always matches the payload's type.
    for event in &sse {
        assert_eq!(data(event)["type"], event.event.clone().unwrap());
    }
    assert_eq!(
        data(&sse[0]),
        json!({"type": "message_start", "message": {
            "id": "resp-1", "type": "message", "role": "assistant", "model": "client-model", "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 9, "output_tokens": 0}
        }})
    );
    assert_eq!(
        data(&sse[2]),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        data(&sse[3]),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}})
    );
    assert_eq!(data(&sse[5]), json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        data(&sse[6]),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "call_1", "name": "f", "input": {}}})
    );
    assert_eq!(
        data(&sse[7]),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}})
    );
    assert_eq!(data(&sse[10])["index"], 2);
    assert_eq!(data(&sse[11])["index"], 2);
    assert_eq!(
        data(&sse[13]),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"input_tokens": 11, "output_tokens": 22}})
    );
    assert_eq!(data(&sse[14]), json!({"type": "message_stop"}));
}

#[test]
fn stream_encoder_reports_stop_sequences_and_errors() {
    let mut encoder = StreamEncoder::new(meta(), 0);
    let mut bytes = encoder.encode(&StreamEvent::TextDelta { text: "x".into() }).to_vec();
    bytes.extend_from_slice(&encoder.encode(&StreamEvent::Finish {
        reason: FinishReason::StopSequence,
        stop_sequence: Some("###".into()),
    }));
    bytes.extend_from_slice(&encoder.finish());
    let sse = frames(&bytes);
    let delta = data(&sse[sse.len() - 2]);
    assert_eq!(delta["delta"], json!({"stop_reason": "stop_sequence", "stop_sequence": "###"}));

    let mut encoder = StreamEncoder::new(meta(), 0);
    let mut bytes = encoder.encode(&StreamEvent::TextDelta { text: "partial".into() }).to_vec();
    bytes.extend_from_slice(&encoder.error(&ApiError::new(ApiErrorKind::Overloaded, "Overloaded")));
    assert!(encoder.finish().is_empty(), "nothing follows an error");
    let sse = frames(&bytes);
    let last = sse.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert_eq!(
        data(last),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
}

#[test]
fn an_empty_stream_still_is_a_valid_message() {
    let mut encoder = StreamEncoder::new(meta(), 0);
    let sse = frames(&encoder.finish());
    assert_eq!(names(&sse), ["message_start", "ping", "message_delta", "message_stop"]);
    assert_eq!(data(&sse[2])["delta"]["stop_reason"], "end_turn");
}

// --- upstream side ---------------------------------------------------------------------

#[test]
fn the_upstream_request_is_written_exactly() {
    // The system prompt and the turns are written by hand, the parameters by serde: one
    // object, every string escaped, the system texts a blank line apart.
    let request = ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::text(Role::System, "Say \"hi\"."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text { text: "Look:\n".into() },
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "AAAA".into(),
                        },
                    },
                ],
            },
        ],
        max_tokens: Some(5),
        temperature: Some(0.3),
        json_output: Some(None),
        ..ChatRequest::default()
    };
    let body = anthropic::request_bytes(&request, "claude-\"x\"", 4096, false).unwrap();
    let expected = concat!(
        r#"{"model":"claude-\"x\"","max_tokens":5,"#,
        r#""system":"Say \"hi\".\n\nRespond with a single JSON object and nothing else.","#,
        r#""messages":[{"role":"user","content":[{"type":"text","text":"Look:\n"},"#,
        r#"{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}],"#,
        r#""stream":false,"temperature":0.3}"#,
    );
    assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
}

#[test]
fn builds_the_upstream_request() {
    let request = ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::text(Role::System, "Rule one."),
            Message::text(Role::System, "Rule two."),
            Message::text(Role::User, "Hi"),
            Message::text(Role::User, "Anyone?"),
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::Text { text: String::new() },
                    ContentPart::ToolCall(ToolCall {
                        id: "call_1".into(),
                        name: "f".into(),
                        arguments: "{\"x\":1}".into(),
                    }),
                    ContentPart::ToolCall(ToolCall {
                        id: "call_2".into(),
                        name: "f".into(),
                        arguments: String::new(),
                    }),
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![ContentPart::ToolResult {
                    call_id: "call_1".into(),
                    content: "one".into(),
                    is_error: false,
                }],
            },
            Message {
                role: Role::Tool,
                content: vec![ContentPart::ToolResult {
                    call_id: "call_2".into(),
                    content: "two".into(),
                    is_error: true,
                }],
            },
            Message::text(Role::System, "Late rule."),
            Message {
                role: Role::User,
                content: vec![ContentPart::Image {
                    source: ImageSource::Url { url: "https://x/y.png".into() },
                }],
            },
        ],
        max_tokens: None,
        temperature: Some(1.7),
        top_p: Some(0.5),
        stop: vec!["END".into()],
        stream: false,
        tools: vec![ToolDef {
            name: "f".into(),
            description: Some("F".into()),
            parameters: json!({"type": "object"}),
        }],
        tool_choice: Some(ToolChoice::Required),
        json_output: None,
        user: Some("u1".into()),
        seed: Some(3),
    };
    let body = anthropic::request_body(&request, "claude-haiku", 2048, true).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-haiku",
            "max_tokens": 2048,
            "stream": true,
            "system": "Rule one.\n\nRule two.",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "Anyone?"}]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "f", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "two", "is_error": true},
                    {"type": "text", "text": "Late rule."},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
                ]}
            ],
            "temperature": 1.0,
            "top_p": 0.5,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u1"},
            "tools": [{"name": "f", "description": "F", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"}
        })
    );
}

#[test]
fn upstream_request_edge_cases() {
    let mut request = ChatRequest {
        model: "m".into(),
        messages: vec![Message::text(Role::User, "q")],
        max_tokens: Some(50),
        json_output: Some(Some(json!({"type": "object"}))),
        ..ChatRequest::default()
    };
    let body = anthropic::request_body(&request, "c", 4096, false).unwrap();
    assert_eq!(body["max_tokens"], 50);
    assert!(body["system"].as_str().unwrap().contains("{\"type\":\"object\"}"), "{body}");

    request.stop = vec![" ".into()];
    let error = anthropic::request_body(&request, "c", 4096, false).unwrap_err();
    assert!(error.to_string().contains("whitespace"), "{error}");
    request.stop.clear();

    request.messages = vec![Message::text(Role::System, "only a system prompt")];
    let error = anthropic::request_body(&request, "c", 4096, false).unwrap_err();
    assert_eq!(error.kind(), "unsupported");

    request.messages = vec![Message {
        role: Role::Assistant,
        content: vec![ContentPart::ToolCall(ToolCall {
            id: "c1".into(),
            name: "f".into(),
            arguments: "[1]".into(),
        })],
    }];
    let error = anthropic::request_body(&request, "c", 4096, false).unwrap_err();
    assert_eq!(error.kind(), "unsupported");
    assert!(error.to_string().contains("c1"));
}

/// A system prompt in several text blocks (Anthropic's list form, OpenAI's content parts)
/// reaches Anthropic with the blocks apart, as it reaches the other formats.
#[test]
fn system_blocks_stay_apart_upstream() {
    let request = parse(&json!({
        "model": "m", "max_tokens": 10,
        "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}],
        "messages": [{"role": "user", "content": "q"}],
    }))
    .unwrap();
    let body = anthropic::request_body(&request, "c", 4096, false).unwrap();
    assert_eq!(body["system"], "You are terse.\n\nAnswer in English.");

    let two_messages = ChatRequest {
        messages: vec![
            Message::text(Role::System, "One."),
            Message::text(Role::System, ""),
            Message::text(Role::System, "Two."),
            Message::text(Role::User, "q"),
        ],
        ..request
    };
    let body = anthropic::request_body(&two_messages, "c", 4096, false).unwrap();
    assert_eq!(body["system"], "One.\n\nTwo.");
}

#[test]
fn parses_an_upstream_response() {
    let body = json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "...", "signature": "s"},
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"q": "x"}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 100, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 10, "output_tokens": 7}
    });
    let response = anthropic::parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        response,
        ChatResponse {
            id: "msg_01".into(),
            model: "claude-x".into(),
            content: vec![
                ContentPart::Text { text: "Sure.".into() },
                ContentPart::ToolCall(ToolCall {
                    id: "toolu_9".into(),
                    name: "f".into(),
                    arguments: "{\"q\":\"x\"}".into()
                }),
            ],
            finish_reason: FinishReason::ToolCalls,
            stop_sequence: None,
            usage: Usage { input_tokens: 160, output_tokens: 7 },
        }
    );
    for (wire, reason) in [
        ("end_turn", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("stop_sequence", FinishReason::StopSequence),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Stop),
    ] {
        let body = json!({"id": "m", "model": "c", "content": [], "stop_reason": wire, "stop_sequence": "S", "usage": {}});
        let parsed = anthropic::parse_response(body.to_string().as_bytes()).unwrap();
        assert_eq!(parsed.finish_reason, reason, "{wire}");
        assert_eq!(parsed.stop_sequence.as_deref(), Some("S"));
    }
    assert_eq!(anthropic::parse_response(b"[]").unwrap_err().kind(), "protocol");
}

const UPSTREAM_STREAM: &str = concat!(
    "event: message_start\n",
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-x\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
    "event: ping\ndata: {\"type\": \"ping\"}\n\n",
    "event: content_block_start\r\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\r\n\r\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hm\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Héllo \"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"世界\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_X\",\"name\":\"get\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"c\\\": 1}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn decodes_an_upstream_stream_split_anywhere() {
    let events = decode_at_every_split(
        UPSTREAM_STREAM.as_bytes(),
        StreamDecoder::feed,
        StreamDecoder::is_finished,
    );
    assert_eq!(
        events,
        vec![
            StreamEvent::Start { id: "msg_1".into(), model: "claude-x".into() },
            StreamEvent::TextDelta { text: "Héllo ".into() },
            StreamEvent::TextDelta { text: "世界".into() },
            StreamEvent::ToolCallStart { index: 0, id: "toolu_X".into(), name: "get".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"c\": 1}".into() },
            StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
            StreamEvent::Usage(Usage { input_tokens: 25, output_tokens: 15 }),
        ]
    );
}

#[test]
fn an_error_event_is_typed_and_ends_decoding() {
    let body = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    let error = decoder.feed(body.as_bytes(), &mut out).unwrap_err();
    assert_eq!(error.kind(), "overloaded");
    assert!(!decoder.is_finished());
    assert_eq!(out.len(), 1);
}
