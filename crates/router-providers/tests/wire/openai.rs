//! OpenAI Chat Completions: client requests, responses, streams, errors; upstream requests,
//! responses and streams.

use router_core::Role;
use router_providers::openai::{self, StreamDecoder, StreamEncoder};
use router_providers::{
    ApiError, ApiErrorKind, ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource,
    Message, StreamEvent, ToolCall, ToolChoice, ToolDef, Usage,
};
use serde_json::{Value, json};

use crate::support::{data_json, decode_at_every_split, meta};

fn parse(body: &Value) -> Result<openai::ClientRequest, router_providers::RequestError> {
    openai::parse_request(body.to_string().as_bytes())
}

fn minimal() -> Value {
    json!({"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[test]
fn parses_a_full_request() {
    let body = json!({
        "model": "auto:cheap",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"a\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "assistant", "content": "A cat.", "name": "bot"}
        ],
        "max_completion_tokens": 300,
        "max_tokens": 5,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {
            "name": "lookup", "description": "Look up", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}
        }}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "user": "u-42",
        "seed": 7,
        "n": 1,
        "presence_penalty": 0.1,
        "parallel_tool_calls": false
    });
    let parsed = parse(&body).unwrap();
    assert!(parsed.include_usage);
    let expected = ChatRequest {
        model: "auto:cheap".into(),
        messages: vec![
            Message::text(Role::System, "Be brief."),
            Message::text(Role::System, "Use metric units."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text { text: "What is in these?".into() },
                    ContentPart::Image {
                        source: ImageSource::Url { url: "https://example.com/a.png".into() },
                    },
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "iVBORw0KGgo=".into(),
                        },
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![ContentPart::ToolCall(ToolCall {
                    id: "call_1".into(),
                    name: "lookup".into(),
                    arguments: "{\"q\":\"a\"}".into(),
                })],
            },
            Message {
                role: Role::Tool,
                content: vec![ContentPart::ToolResult {
                    call_id: "call_1".into(),
                    content: "a cat".into(),
                    is_error: false,
                }],
            },
            Message::text(Role::Assistant, "A cat."),
        ],
        max_tokens: Some(300),
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["END".into()],
        stream: true,
        tools: vec![ToolDef {
            name: "lookup".into(),
            description: Some("Look up".into()),
            parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        }],
        tool_choice: Some(ToolChoice::Tool("lookup".into())),
        json_output: Some(Some(json!({"type": "object"}))),
        user: Some("u-42".into()),
        seed: Some(7),
    };
    assert_eq!(parsed.request, expected);
}

#[test]
fn defaults_of_a_minimal_request() {
    let parsed = parse(&minimal()).unwrap();
    assert!(!parsed.include_usage);
    let request = parsed.request;
    assert!(!request.stream);
    assert_eq!(request.max_tokens, None);
    assert_eq!(request.json_output, None);
    assert!(request.stop.is_empty() && request.tools.is_empty());
    let json_object = parse(&with(minimal(), "response_format", json!({"type": "json_object"})));
    assert_eq!(json_object.unwrap().request.json_output, Some(None));
    let text = parse(&with(minimal(), "response_format", json!({"type": "text"})));
    assert_eq!(text.unwrap().request.json_output, None);
}

/// Each invalid body: the param named, the code, and words the message must contain.
#[test]
fn validation_errors_name_the_field_and_say_what_to_fix() {
    let user =
        |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let cases: Vec<(Value, Option<&str>, &str, &str)> = vec![
        (json!([1, 2]), None, "invalid_type", "expected an object"),
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            Some("model"),
            "missing_required_parameter",
            "Missing required parameter: 'model'",
        ),
        (
            json!({"model": " ", "messages": [{"role": "user", "content": "x"}]}),
            Some("model"),
            "invalid_value",
            "must not be empty",
        ),
        (
            json!({"model": 5, "messages": []}),
            Some("model"),
            "invalid_type",
            "expected a string, but got an integer",
        ),
        (json!({"model": "m"}), Some("messages"), "missing_required_parameter", "'messages'"),
        (
            json!({"model": "m", "messages": []}),
            Some("messages"),
            "empty_array",
            "minimum length 1",
        ),
        (
            json!({"model": "m", "messages": "hi"}),
            Some("messages"),
            "invalid_type",
            "expected an array",
        ),
        (
            json!({"model": "m", "messages": [{"role": "bot", "content": "x"}]}),
            Some("messages[0].role"),
            "invalid_value",
            "'system', 'developer', 'user', 'assistant', and 'tool'",
        ),
        (
            json!({"model": "m", "messages": [{"content": "x"}]}),
            Some("messages[0].role"),
            "missing_required_parameter",
            "messages[0].role",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user"}]}),
            Some("messages[0].content"),
            "missing_required_parameter",
            "messages[0].content",
        ),
        (
            user(json!(42)),
            Some("messages[0].content"),
            "invalid_type",
            "a string or an array of content parts",
        ),
        (
            user(json!([{"type": "video"}])),
            Some("messages[0].content[0].type"),
            "invalid_value",
            "'text' and 'image_url'",
        ),
        (
            user(json!([{"type": "input_audio", "input_audio": {}}])),
            Some("messages[0].content[0].type"),
            "unsupported_parameter",
            "only text and image",
        ),
        (
            user(json!([{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}])),
            Some("messages[0].content[0].image_url.url"),
            "invalid_value",
            "data URL",
        ),
        (
            user(json!([{"type": "text"}])),
            Some("messages[0].content[0].text"),
            "missing_required_parameter",
            "text",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant"}]}),
            Some("messages[0].content"),
            "missing_required_parameter",
            "content",
        ),
        (
            json!({"model": "m", "messages": [{"role": "tool", "content": "r"}]}),
            Some("messages[0].tool_call_id"),
            "missing_required_parameter",
            "tool_call_id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {}}]}]}),
            Some("messages[0].tool_calls[0].function.name"),
            "missing_required_parameter",
            "name",
        ),
        (
            with(minimal(), "stream", json!("yes")),
            Some("stream"),
            "invalid_type",
            "expected a boolean",
        ),
        (
            with(minimal(), "stream_options", json!({"include_usage": true})),
            Some("stream_options"),
            "invalid_value",
            "only allowed when 'stream' is true",
        ),
        (
            with(
                with(minimal(), "stream", json!(true)),
                "stream_options",
                json!({"include_usage": "yes"}),
            ),
            Some("stream_options.include_usage"),
            "invalid_type",
            "boolean",
        ),
        (with(minimal(), "n", json!(3)), Some("n"), "unsupported_parameter", "set 'n' to 1"),
        (with(minimal(), "n", json!(0)), Some("n"), "integer_below_min_value", ">= 1"),
        (
            with(minimal(), "temperature", json!(2.5)),
            Some("temperature"),
            "value_above_max_value",
            "<= 2",
        ),
        (
            with(minimal(), "temperature", json!(-0.1)),
            Some("temperature"),
            "decimal_below_min_value",
            ">= 0",
        ),
        (with(minimal(), "top_p", json!("high")), Some("top_p"), "invalid_type", "a number"),
        (
            with(minimal(), "max_tokens", json!(0)),
            Some("max_tokens"),
            "integer_below_min_value",
            ">= 1",
        ),
        (
            with(minimal(), "max_tokens", json!(10.5)),
            Some("max_tokens"),
            "invalid_type",
            "an integer, but got a decimal",
        ),
        (
            with(minimal(), "max_completion_tokens", json!(-3)),
            Some("max_completion_tokens"),
            "integer_below_min_value",
            ">= 1",
        ),
        (
            with(minimal(), "stop", json!(5)),
            Some("stop"),
            "invalid_type",
            "a string or an array of strings",
        ),
        (with(minimal(), "stop", json!(["a", 1])), Some("stop[1]"), "invalid_type", "a string"),
        (
            with(minimal(), "tools", json!([{"type": "function", "function": {}}])),
            Some("tools[0].function.name"),
            "missing_required_parameter",
            "name",
        ),
        (
            with(minimal(), "tools", json!([{"type": "retrieval"}])),
            Some("tools[0].type"),
            "invalid_value",
            "'function'",
        ),
        (
            with(
                minimal(),
                "tools",
                json!([{"type": "function", "function": {"name": "my tool"}}]),
            ),
            Some("tools[0].function.name"),
            "invalid_value",
            "letters, digits",
        ),
        (
            with(minimal(), "tool_choice", json!("sometimes")),
            Some("tool_choice"),
            "invalid_value",
            "'none', 'auto', and 'required'",
        ),
        (
            with(minimal(), "tool_choice", json!("auto")),
            Some("tool_choice"),
            "invalid_value",
            "only allowed when 'tools' are specified",
        ),
        (
            with(
                with(minimal(), "tools", json!([{"type": "function", "function": {"name": "a"}}])),
                "tool_choice",
                json!({"type": "function", "function": {"name": "b"}}),
            ),
            Some("tool_choice.function.name"),
            "invalid_value",
            "no tool named 'b'",
        ),
        (
            with(minimal(), "response_format", json!({"type": "xml"})),
            Some("response_format.type"),
            "invalid_value",
            "'json_schema'",
        ),
        (
            with(
                minimal(),
                "response_format",
                json!({"type": "json_schema", "json_schema": {"schema": {}}}),
            ),
            Some("response_format.json_schema.name"),
            "missing_required_parameter",
            "name",
        ),
        (
            with(minimal(), "logprobs", json!(true)),
            Some("logprobs"),
            "unsupported_parameter",
            "remove 'logprobs'",
        ),
        (
            with(minimal(), "functions", json!([])),
            Some("functions"),
            "unsupported_parameter",
            "use 'tools'",
        ),
        (
            with(minimal(), "modalities", json!(["text", "audio"])),
            Some("modalities[1]"),
            "unsupported_parameter",
            "only text output",
        ),
        (with(minimal(), "user", json!(1)), Some("user"), "invalid_type", "a string"),
    ];
    for (body, param, code, words) in cases {
        let error = parse(&body).expect_err(&body.to_string());
        assert_eq!(error.param.as_deref(), param, "{body}: {}", error.message);
        assert_eq!(error.code.as_deref(), Some(code), "{body}: {}", error.message);
        assert!(error.message.contains(words), "{body}: {:?} lacks {words:?}", error.message);
    }
}

#[test]
fn malformed_json_is_explained() {
    for body in [&b"{\"model\": \"m\", "[..], b"", b"not json"] {
        let error = openai::parse_request(body).unwrap_err();
        assert_eq!(error.code.as_deref(), Some("invalid_json"));
        assert!(error.message.contains("could not parse the JSON body"), "{}", error.message);
        assert_eq!(error.param, None);
    }
}

#[test]
fn accepted_but_harmless_fields() {
    let body = with(with(minimal(), "logprobs", json!(false)), "modalities", json!(["text"]));
    let body = with(with(body, "logit_bias", json!({"50256": -100})), "store", json!(true));
    assert!(parse(&body).is_ok());
    // null is the same as absent.
    assert!(parse(&with(minimal(), "temperature", Value::Null)).is_ok());
}

fn sample_response() -> ChatResponse {
    ChatResponse {
        id: "upstream-id".into(),
        model: "upstream-model".into(),
        content: vec![
            ContentPart::Text { text: "Let me check.".into() },
            ContentPart::ToolCall(ToolCall {
                id: "toolu_01".into(),
                name: "weather".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            }),
        ],
        finish_reason: FinishReason::ToolCalls,
        stop_sequence: None,
        usage: Usage { input_tokens: 12, output_tokens: 30 },
    }
}

#[test]
fn encodes_a_response() {
    let body: Value =
        serde_json::from_slice(&openai::encode_response(&sample_response(), &meta())).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "resp-1",
            "object": "chat.completion",
            "created": 1_700_000_000u64,
            "model": "client-model",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check.",
                    "refusal": null,
                    "tool_calls": [{"id": "toolu_01", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
        })
    );
    let tools_only =
        ChatResponse { content: sample_response().content[1..].to_vec(), ..sample_response() };
    let body: Value =
        serde_json::from_slice(&openai::encode_response(&tools_only, &meta())).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
}

#[test]
fn a_plain_answer_is_written_byte_for_byte_in_openais_key_order() {
    let answer = ChatResponse {
        content: vec![ContentPart::Text { text: "Say \"hi\"\n\tthen \u{e9}\u{1}".into() }],
        finish_reason: FinishReason::Length,
        ..sample_response()
    };
    let body = openai::encode_response(&answer, &meta());
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "{\"id\":\"resp-1\",\"object\":\"chat.completion\",\"created\":1700000000,\
         \"model\":\"client-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\
         \"content\":\"Say \\\"hi\\\"\\n\\tthen \u{e9}\\u0001\",\"refusal\":null},\"logprobs\":null,\
         \"finish_reason\":\"length\"}],\
         \"usage\":{\"prompt_tokens\":12,\"completion_tokens\":30,\"total_tokens\":42}}"
    );
}

#[test]
fn encodes_error_bodies() {
    let mut error = ApiError::new(ApiErrorKind::InvalidRequest, "Invalid value: 'bot'.");
    error.param = Some("messages[0].role".into());
    error.code = Some("invalid_value".into());
    let body: Value = serde_json::from_slice(&openai::error_body(&error)).unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "Invalid value: 'bot'.", "type": "invalid_request_error", "param": "messages[0].role", "code": "invalid_value"}})
    );
    let body: Value = serde_json::from_slice(&openai::error_body(&ApiError::new(
        ApiErrorKind::RateLimited,
        "slow",
    )))
    .unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["param"], Value::Null);
}

fn stream_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start { id: "up".into(), model: "up-model".into() },
        StreamEvent::TextDelta { text: "Hi".into() },
        StreamEvent::TextDelta { text: String::new() },
        StreamEvent::ToolCallStart { index: 0, id: "call_9".into(), name: "f".into() },
        StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":".into() },
        StreamEvent::ToolCallDelta { index: 0, arguments: "1}".into() },
        StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
        StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4 }),
    ]
}

fn encode_all(encoder: &mut StreamEncoder, events: &[StreamEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        out.extend_from_slice(&encoder.encode(event));
    }
    out.extend_from_slice(&encoder.finish());
    out
}

#[test]
fn stream_encoder_writes_chunks_in_order_with_usage_when_asked() {
    let mut encoder = StreamEncoder::new(meta(), true);
    let chunks = data_json(&encode_all(&mut encoder, &stream_events()));
    let deltas: Vec<Value> = chunks
        .iter()
        .map(|c| c.get("choices").map(|ch| ch[0]["delta"].clone()).unwrap_or(Value::Null))
        .collect();
    assert_eq!(chunks.len(), 8, "{chunks:#?}");
    assert_eq!(deltas[0], json!({"role": "assistant", "content": ""}));
    assert_eq!(deltas[1], json!({"content": "Hi"}));
    assert_eq!(
        deltas[2],
        json!({"tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}]})
    );
    assert_eq!(
        deltas[3],
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]})
    );
    assert_eq!(deltas[4], json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}));
    assert_eq!(deltas[5], json!({}));
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    for chunk in &chunks[..6] {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], "resp-1");
        assert_eq!(chunk["model"], "client-model");
        assert_eq!(chunk["created"], 1_700_000_000u64);
        // With include_usage every chunk carries `usage`, null until the last.
        assert!(chunk.as_object().unwrap().contains_key("usage"));
        assert_eq!(chunk["usage"], Value::Null);
    }
    for chunk in &chunks[..5] {
        assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
    }
    assert_eq!(chunks[6]["choices"], json!([]));
    assert_eq!(
        chunks[6]["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    assert_eq!(chunks[7], Value::String("[DONE]".into()));
}

#[test]
fn a_chunk_is_one_data_line_whatever_its_text_holds() {
    let mut encoder = StreamEncoder::new(meta(), false);
    encoder.encode(&StreamEvent::Start { id: "up".into(), model: "up-model".into() });
    let text = "two\nlines,\r\na \"quote\", a tab\t and \u{2028} too";
    let frame = encoder.encode(&StreamEvent::TextDelta { text: text.into() });
    let frame = std::str::from_utf8(&frame).unwrap();
    assert!(frame.starts_with("data: {") && frame.ends_with("}\n\n"), "{frame:?}");
    assert_eq!(frame.matches('\n').count(), 2, "{frame:?}");
    assert!(!frame.contains('\r'), "{frame:?}");
    assert_eq!(data_json(frame.as_bytes())[0]["choices"][0]["delta"]["content"], text);
}

#[test]
fn stream_encoder_without_usage_sends_none() {
    let mut encoder = StreamEncoder::new(meta(), false);
    let text = String::from_utf8(encode_all(&mut encoder, &stream_events())).unwrap();
    assert!(!text.contains("usage"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn stream_encoder_starts_with_the_role_even_without_a_start_event_and_stops_after_an_error() {
    let mut encoder = StreamEncoder::new(meta(), false);
    let first = data_json(&encoder.encode(&StreamEvent::TextDelta { text: "x".into() }));
    assert_eq!(first[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(first[1]["choices"][0]["delta"]["content"], "x");
    let error =
        data_json(&encoder.error(&ApiError::new(ApiErrorKind::Upstream, "upstream stream broke")));
    assert_eq!(
        error,
        vec![
            json!({"error": {"message": "upstream stream broke", "type": "server_error", "param": null, "code": null}})
        ]
    );
    assert!(encoder.encode(&StreamEvent::TextDelta { text: "late".into() }).is_empty());
    assert!(encoder.finish().is_empty());
}

// --- upstream side ---------------------------------------------------------------------

fn neutral_request() -> ChatRequest {
    ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::text(Role::System, "Be brief."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text { text: "Look:".into() },
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/jpeg".into(),
                            data: "AAAA".into(),
                        },
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    ContentPart::Text { text: "Checking.".into() },
                    ContentPart::ToolCall(ToolCall {
                        id: "toolu_1".into(),
                        name: "see".into(),
                        arguments: "{}".into(),
                    }),
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::ToolResult {
                        call_id: "toolu_1".into(),
                        content: "failed".into(),
                        is_error: true,
                    },
                    ContentPart::Text { text: "Try again".into() },
                    ContentPart::Text { text: "please".into() },
                ],
            },
        ],
        max_tokens: Some(100),
        temperature: Some(1.5),
        top_p: None,
        stop: vec!["###".into()],
        stream: false,
        tools: vec![ToolDef {
            name: "see".into(),
            description: None,
            parameters: json!({"type": "object"}),
        }],
        tool_choice: Some(ToolChoice::Required),
        json_output: Some(None),
        user: Some("u".into()),
        seed: Some(1),
    }
}

#[test]
fn builds_the_upstream_request() {
    let body = openai::request_body(&neutral_request(), "gpt-4o-mini", true).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o-mini",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "see", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: failed"},
                {"role": "user", "content": "Try again\n\nplease"}
            ],
            "max_tokens": 100,
            "temperature": 1.5,
            "stop": ["###"],
            "tools": [{"type": "function", "function": {"name": "see", "parameters": {"type": "object"}}}],
            "tool_choice": "required",
            "response_format": {"type": "json_object"},
            "user": "u",
            "seed": 1
        })
    );
    let plain = openai::request_body(&neutral_request(), "m", false).unwrap();
    assert_eq!(plain["stream"], false);
    assert!(plain.get("stream_options").is_none());
}

#[test]
fn the_upstream_request_is_written_exactly() {
    // The messages are written by hand and the parameters by serde: one object, the keys in
    // the order OpenAI documents them, every string escaped.
    let mut request = neutral_request();
    request.messages.push(Message {
        role: Role::Assistant,
        content: vec![ContentPart::ToolCall(ToolCall {
            id: "c\"2".into(),
            name: "see".into(),
            arguments: "{\"q\":\"a\\b\"}".into(),
        })],
    });
    let body = openai::request_bytes(&request, "gpt-\"x\"", false).unwrap();
    let expected = concat!(
        r#"{"model":"gpt-\"x\"","messages":["#,
        r#"{"role":"system","content":"Be brief."},"#,
        r#"{"role":"user","content":[{"type":"text","text":"Look:"},"#,
        r#"{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,AAAA"}}]},"#,
        r#"{"role":"assistant","content":"Checking.","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"see","arguments":"{}"}}]},"#,
        r#"{"role":"tool","tool_call_id":"toolu_1","content":"Error: failed"},"#,
        r#"{"role":"user","content":"Try again\n\nplease"},"#,
        r#"{"role":"assistant","content":null,"tool_calls":[{"id":"c\"2","type":"function","function":{"name":"see","arguments":"{\"q\":\"a\\b\"}"}}]}],"#,
        r####""stream":false,"max_tokens":100,"temperature":1.5,"stop":["###"],"####,
        r#""tools":[{"type":"function","function":{"name":"see","parameters":{"type":"object"}}}],"#,
        r#""tool_choice":"required","response_format":{"type":"json_object"},"user":"u","seed":1}"#,
    );
    assert_eq!(std::str::from_utf8(&body).unwrap(), expected);
}

#[test]
fn json_schema_output_and_named_tool_choice_upstream() {
    let mut request = neutral_request();
    request.json_output = Some(Some(json!({"type": "object", "required": ["a"]})));
    request.tool_choice = Some(ToolChoice::Tool("see".into()));
    let body = openai::request_body(&request, "m", false).unwrap();
    assert_eq!(
        body["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object", "required": ["a"]}}})
    );
    assert_eq!(body["tool_choice"], json!({"type": "function", "function": {"name": "see"}}));
}

#[test]
fn parses_an_upstream_response() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini-2024",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{\"x\":1}"}},
            {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
        ]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    });
    let response = openai::parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(
        response,
        ChatResponse {
            id: "chatcmpl-1".into(),
            model: "gpt-4o-mini-2024".into(),
            content: vec![
                ContentPart::ToolCall(ToolCall {
                    id: "call_a".into(),
                    name: "f".into(),
                    arguments: "{\"x\":1}".into()
                }),
                ContentPart::ToolCall(ToolCall {
                    id: "call_b".into(),
                    name: "g".into(),
                    arguments: "{}".into()
                }),
            ],
            finish_reason: FinishReason::ToolCalls,
            stop_sequence: None,
            usage: Usage { input_tokens: 10, output_tokens: 5 },
        }
    );
}

#[test]
fn finish_reasons_and_refusals_from_upstream() {
    let cases = [
        ("stop", FinishReason::Stop),
        ("length", FinishReason::Length),
        ("tool_calls", FinishReason::ToolCalls),
        ("content_filter", FinishReason::ContentFilter),
        ("insufficient_system_resource", FinishReason::Stop),
    ];
    for (wire, reason) in cases {
        let body = json!({"id": "x", "model": "m", "choices": [{"message": {"content": "t"}, "finish_reason": wire}]});
        assert_eq!(
            openai::parse_response(body.to_string().as_bytes()).unwrap().finish_reason,
            reason,
            "{wire}"
        );
    }
    let refusal = json!({"choices": [{"message": {"content": null, "refusal": "I can't."}, "finish_reason": "stop"}]});
    assert_eq!(openai::parse_response(refusal.to_string().as_bytes()).unwrap().text(), "I can't.");
}

#[test]
fn invalid_upstream_bodies_are_protocol_errors() {
    for body in [&b"<html>"[..], b"{\"choices\": []}", b"{\"choices\": \"x\"}"] {
        let error = openai::parse_response(body).unwrap_err();
        assert_eq!(error.kind(), "protocol", "{}", String::from_utf8_lossy(body));
    }
}

const UPSTREAM_STREAM: &str = concat!(
    ": OPENROUTER PROCESSING\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé \"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n",
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"你好\"},\"finish_reason\":null}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_A\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\"\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_B\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21}}\n\n",
    "data: [DONE]\n\n",
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
            StreamEvent::Start { id: "c1".into(), model: "gpt-x".into() },
            StreamEvent::TextDelta { text: "Hé ".into() },
            StreamEvent::TextDelta { text: "你好".into() },
            StreamEvent::ToolCallStart { index: 0, id: "call_A".into(), name: "f".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\"".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: ":1}".into() },
            StreamEvent::ToolCallStart { index: 1, id: "call_B".into(), name: "g".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
            StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
            StreamEvent::Usage(Usage { input_tokens: 9, output_tokens: 12 }),
        ]
    );
}

#[test]
fn a_stream_without_done_is_not_finished() {
    let cut = UPSTREAM_STREAM.replace("data: [DONE]\n\n", "");
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    decoder.feed(cut.as_bytes(), &mut out).unwrap();
    assert!(!decoder.is_finished());
    assert_eq!(out.len(), 10);
}

#[test]
fn an_error_inside_the_stream_is_typed() {
    let body = concat!(
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\",\"code\":null}}\n\n",
    );
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    let error = decoder.feed(body.as_bytes(), &mut out).unwrap_err();
    assert_eq!(error.kind(), "server_error");
    assert!(error.to_string().contains("The server had an error"));
    assert_eq!(out.len(), 2, "events before the error are kept");
    let long = "data: {\"error\":{\"message\":\"too long\",\"type\":\"invalid_request_error\",\"code\":\"context_length_exceeded\"}}\n\n";
    let error = StreamDecoder::new().feed(long.as_bytes(), &mut Vec::new()).unwrap_err();
    assert_eq!(error.kind(), "context_too_long");
    let garbage = StreamDecoder::new().feed(b"data: {not json}\n\n", &mut Vec::new()).unwrap_err();
    assert_eq!(garbage.kind(), "protocol");
}

#[test]
fn stream_frames_are_exact() {
    // The envelope is written once a stream and reused: its strings are escaped like any
    // other, and the keys come in the order OpenAI's own chunks have them.
    let meta = router_providers::chat::ResponseMeta {
        id: "chatcmpl-\"1\"".into(),
        model: "m\\x".into(),
        created: 7,
    };
    let mut encoder = StreamEncoder::new(meta, true);
    let events = [
        StreamEvent::TextDelta { text: "Hi".into() },
        StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None },
        StreamEvent::Usage(Usage { input_tokens: 3, output_tokens: 4 }),
    ];
    let text = String::from_utf8(encode_all(&mut encoder, &events)).unwrap();
    let head = r#"data: {"id":"chatcmpl-\"1\"","object":"chat.completion.chunk","created":7,"model":"m\\x","choices":["#;
    let expected = [
        format!(
            r#"{head}{{"index":0,"delta":{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        ),
        format!(
            r#"{head}{{"index":0,"delta":{{"content":"Hi"}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        ),
        format!(
            r#"{head}{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"stop"}}],"usage":null}}"#
        ),
        format!(
            r#"{head}],"usage":{{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}}}"#
        ),
        "data: [DONE]".to_owned(),
    ];
    assert_eq!(text, expected.map(|frame| frame + "\n\n").concat());
}
