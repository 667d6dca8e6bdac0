//! Ollama `/api/chat`: upstream requests, responses and NDJSON streams.

use router_core::Role;
use router_providers::ollama::{self, StreamDecoder};
use router_providers::{
    ChatRequest, ContentPart, FinishReason, ImageSource, Message, StreamEvent, ToolCall,
    ToolChoice, ToolDef, Usage,
};
use serde_json::json;

use crate::support::decode_at_every_split;

fn request() -> ChatRequest {
    ChatRequest {
        model: "auto".into(),
        messages: vec![
            Message::text(Role::System, "Answer in JSON."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text { text: "Describe".into() },
                    ContentPart::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: "QUJD".into(),
                        },
                    },
                    ContentPart::Image {
                        source: ImageSource::Url { url: "data:image/jpeg;base64,REVG".into() },
                    },
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![ContentPart::ToolCall(ToolCall {
                    id: "call_x".into(),
                    name: "look".into(),
                    arguments: "{\"at\":\"sky\"}".into(),
                })],
            },
            Message {
                role: Role::Tool,
                content: vec![ContentPart::ToolResult {
                    call_id: "call_x".into(),
                    content: "blue".into(),
                    is_error: false,
                }],
            },
        ],
        max_tokens: Some(64),
        temperature: Some(0.3),
        top_p: Some(0.9),
        stop: vec!["<end>".into()],
        stream: false,
        tools: vec![ToolDef {
            name: "look".into(),
            description: Some("Look".into()),
            parameters: json!({"type": "object"}),
        }],
        tool_choice: Some(ToolChoice::Auto),
        json_output: Some(Some(
            json!({"type": "object", "properties": {"x": {"enum": ["a", "b"]}}}),
        )),
        user: None,
        seed: Some(42),
    }
}

#[test]
fn builds_the_upstream_request() {
    let body = ollama::request_body(&request(), "llama3.1:8b", false).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "llama3.1:8b",
            "stream": false,
            "messages": [
                {"role": "system", "content": "Answer in JSON."},
                {"role": "user", "content": "Describe", "images": ["QUJD", "REVG"]},
                {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "look", "arguments": {"at": "sky"}}}]},
                {"role": "tool", "content": "blue", "tool_name": "look"}
            ],
            "options": {"temperature": 0.3, "top_p": 0.9, "num_predict": 64, "stop": ["<end>"], "seed": 42},
            "format": {"type": "object", "properties": {"x": {"enum": ["a", "b"]}}},
            "tools": [{"type": "function", "function": {"name": "look", "description": "Look", "parameters": {"type": "object"}}}]
        })
    );
}

#[test]
fn json_mode_and_minimal_requests() {
    let mut minimal =
        ChatRequest { messages: vec![Message::text(Role::User, "hi")], ..ChatRequest::default() };
    let body = ollama::request_body(&minimal, "m", true).unwrap();
    assert_eq!(
        body,
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
    );
    minimal.json_output = Some(None);
    assert_eq!(ollama::request_body(&minimal, "m", true).unwrap()["format"], "json");
}

#[test]
fn refuses_what_ollama_cannot_do() {
    let mut with_url = request();
    with_url.messages[1].content[1] =
        ContentPart::Image { source: ImageSource::Url { url: "https://x/cat.png".into() } };
    let error = ollama::request_body(&with_url, "m", false).unwrap_err();
    assert_eq!(error.kind(), "unsupported");
    assert!(error.to_string().contains("base64"), "{error}");

    for choice in [ToolChoice::Required, ToolChoice::Tool("look".into())] {
        let mut forced = request();
        forced.tool_choice = Some(choice);
        assert_eq!(ollama::request_body(&forced, "m", false).unwrap_err().kind(), "unsupported");
    }

    let mut none = request();
    none.tool_choice = Some(ToolChoice::None);
    let body = ollama::request_body(&none, "m", false).unwrap();
    assert!(body.get("tools").is_none(), "tool_choice none means no tools offered");
}

#[test]
fn parses_a_response_with_derived_ids() {
    let body = json!({
        "model": "llama3.1", "created_at": "2024-07-22T20:33:28.123648Z",
        "message": {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Toronto"}}},
            {"function": {"name": "get_time", "arguments": {}}}
        ]},
        "done": true, "done_reason": "stop",
        "total_duration": 885095291, "prompt_eval_count": 26, "eval_count": 290
    });
    let first = ollama::parse_response(body.to_string().as_bytes()).unwrap();
    let again = ollama::parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(first, again, "ids are derived, so reading the same answer gives the same ids");
    assert!(first.id.starts_with("ollama-"));
    assert_eq!(first.finish_reason, FinishReason::ToolCalls);
    assert_eq!(first.usage, Usage { input_tokens: 26, output_tokens: 290 });
    let calls: Vec<&ToolCall> = first.tool_calls().collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, "{\"city\":\"Toronto\"}");
    assert_ne!(calls[0].id, calls[1].id);
    assert!(calls[0].id.starts_with("call_"));

    let mut later = body.clone();
    later["created_at"] = json!("2024-07-22T20:35:00.000000Z");
    let other = ollama::parse_response(later.to_string().as_bytes()).unwrap();
    assert_ne!(other.id, first.id);
    assert_ne!(other.tool_calls().next().unwrap().id, calls[0].id);

    let text = json!({"model": "m", "created_at": "t", "message": {"role": "assistant", "content": "Hi"}, "done": true, "done_reason": "length", "prompt_eval_count": 3, "eval_count": 64});
    let parsed = ollama::parse_response(text.to_string().as_bytes()).unwrap();
    assert_eq!((&*parsed.text(), parsed.finish_reason), ("Hi", FinishReason::Length));

    let error = ollama::parse_response(br#"{"error":"model 'x' not found"}"#).unwrap_err();
    assert!(error.to_string().contains("model 'x' not found"));
    assert_eq!(ollama::parse_response(b"nope").unwrap_err().kind(), "protocol");
}

const STREAM: &str = concat!(
    "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"done\":false}\n",
    "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:01Z\",\"message\":{\"role\":\"assistant\",\"content\":\"lo 世界\"},\"done\":false}\r\n",
    "\n",
    "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:02Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},\"done\":false}\n",
    "{\"model\":\"llama3\",\"created_at\":\"2024-01-01T00:00:03Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":1,\"prompt_eval_count\":12,\"eval_count\":7}\n",
);

#[test]
fn decodes_an_ndjson_stream_split_anywhere() {
    let events =
        decode_at_every_split(STREAM.as_bytes(), StreamDecoder::feed, StreamDecoder::is_finished);
    assert_eq!(events.len(), 7, "{events:#?}");
    assert!(matches!(&events[0], StreamEvent::Start { model, .. } if model == "llama3"));
    assert_eq!(events[1], StreamEvent::TextDelta { text: "Hel".into() });
    assert_eq!(events[2], StreamEvent::TextDelta { text: "lo 世界".into() });
    assert!(
        matches!(&events[3], StreamEvent::ToolCallStart { index: 0, name, id } if name == "f" && id.starts_with("call_"))
    );
    assert_eq!(events[4], StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":1}".into() });
    assert_eq!(
        events[5],
        StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None }
    );
    assert_eq!(events[6], StreamEvent::Usage(Usage { input_tokens: 12, output_tokens: 7 }));
}

#[test]
fn a_final_line_without_newline_ends_with_the_body_and_errors_are_typed() {
    let unterminated = STREAM.trim_end();
    let mut decoder = StreamDecoder::new();
    let mut out = Vec::new();
    decoder.feed(unterminated.as_bytes(), &mut out).unwrap();
    assert!(!decoder.is_finished(), "the done line is incomplete until its newline");
    decoder.end_of_input(&mut out).unwrap();
    assert!(decoder.is_finished(), "or until the body ends");
    assert_eq!(out.len(), 7);

    let mut decoder = StreamDecoder::new();
    let error = decoder
        .feed(b"{\"error\":\"the input length exceeds the context length\"}\n", &mut Vec::new())
        .unwrap_err();
    assert_eq!(error.kind(), "context_too_long");
    let error =
        StreamDecoder::new().feed(b"{\"error\":\"out of memory\"}\n", &mut Vec::new()).unwrap_err();
    assert_eq!(error.kind(), "server_error");
}

/// What the hand-written body must equal: the tree `request_body` builds.
fn bytes_match_the_tree(request: &ChatRequest) {
    for stream in [false, true] {
        let bytes = ollama::request_bytes(request, "llama3.1:8b", stream).unwrap();
        let written: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(written, ollama::request_body(request, "llama3.1:8b", stream).unwrap());
    }
}

#[test]
fn a_conversation_in_text_is_written_as_the_tree_says() {
    let text_only = |role, parts: &[&str]| Message {
        role,
        content: parts.iter().map(|text| ContentPart::Text { text: (*text).into() }).collect(),
    };
    let mut plain = ChatRequest {
        messages: vec![
            Message::text(Role::System, "Be brief."),
            text_only(Role::User, &["first part", "", "third \"quoted\" \\ part\n\t\u{1}"]),
            text_only(Role::Assistant, &[]),
            Message::text(Role::Assistant, "café 中文 😀 </script>"),
            Message::text(Role::Tool, "a tool's words, sent as the user's"),
            Message::text(Role::User, ""),
        ],
        ..ChatRequest::default()
    };
    bytes_match_the_tree(&plain);
    plain.max_tokens = Some(64);
    plain.temperature = Some(0.3);
    plain.top_p = Some(0.9);
    plain.stop = vec!["<end>".into(), "\n\n".into()];
    plain.seed = Some(-7);
    bytes_match_the_tree(&plain);
    // Tools offered but turned off: no tools go upstream, by the tree's path.
    plain.tools = request().tools;
    plain.tool_choice = Some(ToolChoice::None);
    bytes_match_the_tree(&plain);
    // Images, tool calls, tools and a schema: the tree's path.
    bytes_match_the_tree(&request());
    let mut forced = request();
    forced.tool_choice = Some(ToolChoice::Required);
    assert!(ollama::request_bytes(&forced, "m", false).is_err());
}
