//! Translation across formats, case by case: a client's format in, another upstream's
//! format out, and the answer back in the client's format. Tool-call ids must survive every
//! hop, so that a client's tool result finds its call whichever upstream made it.

use router_providers::sse::SseParser;
use router_providers::{
    ChatResponse, ContentPart, FinishReason, StreamEvent, ToolCall, Usage, anthropic, ollama,
    openai,
};
use serde_json::{Value, json};

use crate::support::{data_json, frames, meta};

fn openai_client(body: Value) -> router_providers::ChatRequest {
    openai::parse_request(body.to_string().as_bytes()).unwrap().request
}

fn anthropic_client(body: Value) -> router_providers::ChatRequest {
    anthropic::parse_request(body.to_string().as_bytes()).unwrap()
}

/// An OpenAI client's conversation with a tool round trip, sent to an Anthropic upstream.
#[test]
fn openai_client_to_anthropic_upstream() {
    let request = openai_client(json!({
        "model": "auto",
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "developer", "content": "Prefer tools."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome? See map."},
                {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
                {"type": "image_url", "image_url": {"url": "https://maps.example/eu.png"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_paris", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_rome", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_paris", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_rome", "content": "24C"}
        ],
        "max_tokens": 200,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "auto",
        "user": "alice"
    }));
    let body = anthropic::request_body(&request, "claude-3-5-haiku", 1024, false).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-3-5-haiku",
            "max_tokens": 200,
            "stream": false,
            "system": "You are helpful.\n\nPrefer tools.",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Weather in Paris and Rome? See map."},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
                    {"type": "image", "source": {"type": "url", "url": "https://maps.example/eu.png"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_paris", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_rome", "name": "weather", "input": {"city": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_paris", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_rome", "content": "24C"}
                ]}
            ],
            "stop_sequences": ["END"],
            "metadata": {"user_id": "alice"},
            "tools": [{"name": "weather", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto"}
        })
    );
}

/// An Anthropic client (Claude Code and friends) sent to an OpenAI-compatible upstream.
#[test]
fn anthropic_client_to_openai_upstream() {
    let request = anthropic_client(json!({
        "model": "auto",
        "max_tokens": 512,
        "system": [{"type": "text", "text": "Terse."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
                {"type": "text", "text": "What is it?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me zoom."},
                {"type": "tool_use", "id": "toolu_01Z", "name": "zoom", "input": {"factor": 2}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Z", "content": "zoomed", "is_error": false},
                {"type": "text", "text": "Now?"}
            ]}
        ],
        "tools": [{"name": "zoom", "description": "Zoom in", "input_schema": {"type": "object", "properties": {"factor": {"type": "number"}}}}],
        "tool_choice": {"type": "any"},
        "temperature": 0.2,
        "stop_sequences": ["STOP"]
    }));
    let body = openai::request_body(&request, "deepseek-chat", true).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "deepseek-chat",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "Terse."},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                    {"type": "text", "text": "What is it?"}
                ]},
                {"role": "assistant", "content": "Let me zoom.", "tool_calls": [
                    {"id": "toolu_01Z", "type": "function", "function": {"name": "zoom", "arguments": "{\"factor\":2}"}}
                ]},
                {"role": "tool", "tool_call_id": "toolu_01Z", "content": "zoomed"},
                {"role": "user", "content": "Now?"}
            ],
            "max_tokens": 512,
            "temperature": 0.2,
            "stop": ["STOP"],
            "tools": [{"type": "function", "function": {"name": "zoom", "description": "Zoom in", "parameters": {"type": "object", "properties": {"factor": {"type": "number"}}}}}],
            "tool_choice": "required"
        })
    );
}

/// A client request in a format, sent upstream in the same format, comes out as it went in
/// (apart from the model id and what the gateway adds).
#[test]
fn same_format_round_trips_are_faithful() {
    let openai_body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":[1,2]}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "R"},
            {"role": "assistant", "content": "A"}
        ],
        "max_tokens": 10, "temperature": 0.7, "top_p": 0.3, "stop": ["x", "y"], "stream": false,
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_object"}, "user": "u", "seed": 5
    });
    let upstream =
        openai::request_body(&openai_client(openai_body.clone()), "gpt-4o", false).unwrap();
    assert_eq!(upstream, openai_body);

    let anthropic_body = json!({
        "model": "claude", "max_tokens": 300, "stream": true, "system": "S",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Q"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "T"}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"k": "v"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "R", "is_error": true}, {"type": "text", "text": "more"}]}
        ],
        "temperature": 0.5, "top_p": 0.25, "stop_sequences": ["Z"], "metadata": {"user_id": "u"},
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "f"}
    });
    let upstream =
        anthropic::request_body(&anthropic_client(anthropic_body.clone()), "claude", 4096, true)
            .unwrap();
    assert_eq!(upstream, anthropic_body);
}

/// The full tool loop across formats: an Anthropic client, an OpenAI upstream. The id the
/// upstream gave its call is the id the client sees, and the id it sends back is the id the
/// upstream receives.
#[test]
fn tool_call_ids_survive_a_round_trip_through_another_format() {
    let upstream_answer = json!({
        "id": "chatcmpl-9", "model": "gpt-4o", "choices": [{"index": 0, "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_Xy12", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"rust\"}"}}]},
            "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 40, "completion_tokens": 9}
    });
    let response = openai::parse_response(upstream_answer.to_string().as_bytes()).unwrap();
    let to_client: Value =
        serde_json::from_slice(&anthropic::encode_response(&response, &meta()).unwrap()).unwrap();
    assert_eq!(
        to_client["content"][0],
        json!({"type": "tool_use", "id": "call_Xy12", "name": "lookup", "input": {"q": "rust"}})
    );
    assert_eq!(to_client["stop_reason"], "tool_use");
    assert_eq!(to_client["usage"], json!({"input_tokens": 40, "output_tokens": 9}));

    // The client replies with the call it received and its result.
    let next = anthropic_client(json!({
        "model": "auto", "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "search rust"},
            {"role": "assistant", "content": to_client["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_Xy12", "content": "a language"}]}
        ],
        "tools": [{"name": "lookup", "input_schema": {"type": "object"}}]
    }));
    let upstream = openai::request_body(&next, "gpt-4o", false).unwrap();
    assert_eq!(upstream["messages"][1]["tool_calls"][0]["id"], "call_Xy12");
    assert_eq!(
        upstream["messages"][1]["tool_calls"][0]["function"]["arguments"],
        "{\"q\":\"rust\"}"
    );
    assert_eq!(
        upstream["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_Xy12", "content": "a language"})
    );

    // And the other way: an Anthropic upstream's toolu_ id reaches an OpenAI client intact.
    let anthropic_answer = json!({
        "id": "msg_1", "model": "claude", "content": [{"type": "tool_use", "id": "toolu_01Q", "name": "lookup", "input": {"q": "go"}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}
    });
    let response = anthropic::parse_response(anthropic_answer.to_string().as_bytes()).unwrap();
    let to_client: Value =
        serde_json::from_slice(&openai::encode_response(&response, &meta())).unwrap();
    let call = &to_client["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01Q");
    let echoed = openai_client(json!({
        "model": "auto",
        "messages": [
            {"role": "user", "content": "go?"},
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_01Q", "content": "a language"}
        ]
    }));
    let upstream = anthropic::request_body(&echoed, "claude", 1024, false).unwrap();
    assert_eq!(upstream["messages"][1]["content"][0]["id"], "toolu_01Q");
    assert_eq!(upstream["messages"][2]["content"][0]["tool_use_id"], "toolu_01Q");
}

/// Ollama gives no tool-call ids; the derived ones work for a client's next turn, which goes
/// back to Ollama by tool name.
#[test]
fn ollama_tool_calls_get_ids_that_route_results_back() {
    let answer = json!({"model": "llama3.1", "created_at": "2025-01-01T00:00:00.5Z",
        "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "lookup", "arguments": {"q": "x"}}}]},
        "done": true, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 6});
    let response = ollama::parse_response(answer.to_string().as_bytes()).unwrap();
    let to_client: Value =
        serde_json::from_slice(&openai::encode_response(&response, &meta())).unwrap();
    let call = to_client["choices"][0]["message"]["tool_calls"][0].clone();
    let id = call["id"].as_str().unwrap().to_owned();
    assert_eq!(to_client["choices"][0]["finish_reason"], "tool_calls");
    let next = openai_client(json!({"model": "auto", "messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": id, "content": "found"}
    ]}));
    let upstream = ollama::request_body(&next, "llama3.1", false).unwrap();
    assert_eq!(
        upstream["messages"][2],
        json!({"role": "tool", "content": "found", "tool_name": "lookup"})
    );
}

#[test]
fn finish_reasons_cross_formats() {
    // (Anthropic stop_reason, OpenAI finish_reason) for the same neutral reason.
    let cases = [
        (FinishReason::Stop, "end_turn", "stop"),
        (FinishReason::Length, "max_tokens", "length"),
        (FinishReason::ToolCalls, "tool_use", "tool_calls"),
        (FinishReason::StopSequence, "stop_sequence", "stop"),
        (FinishReason::ContentFilter, "refusal", "content_filter"),
    ];
    for (reason, anthropic_name, openai_name) in cases {
        let from_anthropic = json!({"id": "m", "model": "c", "content": [{"type": "text", "text": "x"}], "stop_reason": anthropic_name, "usage": {}});
        let neutral = anthropic::parse_response(from_anthropic.to_string().as_bytes()).unwrap();
        assert_eq!(neutral.finish_reason, reason);
        let to_openai: Value =
            serde_json::from_slice(&openai::encode_response(&neutral, &meta())).unwrap();
        assert_eq!(to_openai["choices"][0]["finish_reason"], openai_name, "{anthropic_name}");

        let back = ChatResponse { finish_reason: reason, ..neutral };
        let to_anthropic: Value =
            serde_json::from_slice(&anthropic::encode_response(&back, &meta()).unwrap()).unwrap();
        assert_eq!(to_anthropic["stop_reason"], anthropic_name);
    }
}

#[test]
fn text_and_usage_cross_formats() {
    let from_openai = json!({"id": "c", "model": "m", "choices": [{"message": {"content": "Bonjour 👋"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 7, "completion_tokens": 3}});
    let neutral = openai::parse_response(from_openai.to_string().as_bytes()).unwrap();
    assert_eq!(neutral.usage, Usage { input_tokens: 7, output_tokens: 3 });
    let to_anthropic: Value =
        serde_json::from_slice(&anthropic::encode_response(&neutral, &meta()).unwrap()).unwrap();
    assert_eq!(to_anthropic["content"], json!([{"type": "text", "text": "Bonjour 👋"}]));
    assert_eq!(to_anthropic["usage"], json!({"input_tokens": 7, "output_tokens": 3}));
    assert_eq!(to_anthropic["stop_reason"], "end_turn");
}

#[test]
fn what_cannot_be_translated_is_refused() {
    let with_url_image =
        openai_client(json!({"model": "auto", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
        ]}]}));
    assert_eq!(
        ollama::request_body(&with_url_image, "llava", false).unwrap_err().kind(),
        "unsupported"
    );
    // The same image inline goes through.
    let inline = openai_client(json!({"model": "auto", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}
    ]}]}));
    let body = ollama::request_body(&inline, "llava", false).unwrap();
    assert_eq!(body["messages"][0]["images"], json!(["/9j/4AAQ"]));

    let forced = anthropic_client(json!({"model": "auto", "max_tokens": 9,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "t", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"}}));
    assert_eq!(ollama::request_body(&forced, "llama3", false).unwrap_err().kind(), "unsupported");

    // Anthropic rejects whitespace stop sequences; dropping one would change the answer.
    let newline_stop = openai_client(
        json!({"model": "auto", "stop": ["\n"], "messages": [{"role": "user", "content": "x"}]}),
    );
    let error = anthropic::request_body(&newline_stop, "claude", 1024, false).unwrap_err();
    assert_eq!(error.kind(), "unsupported");
    assert!(openai::request_body(&newline_stop, "gpt", false).is_ok());

    let n_two = openai::parse_request(
        br#"{"model":"auto","n":2,"messages":[{"role":"user","content":"x"}]}"#,
    );
    assert!(n_two.unwrap_err().message.contains("one choice"));
}

fn encode_openai(events: &[StreamEvent], include_usage: bool) -> Vec<u8> {
    let mut encoder = openai::StreamEncoder::new(meta(), include_usage);
    let mut out = Vec::new();
    for event in events {
        out.extend_from_slice(&encoder.encode(event));
    }
    out.extend_from_slice(&encoder.finish());
    out
}

fn encode_anthropic(events: &[StreamEvent]) -> Vec<u8> {
    let mut encoder = anthropic::StreamEncoder::new(meta(), 0);
    let mut out = Vec::new();
    for event in events {
        out.extend_from_slice(&encoder.encode(event));
    }
    out.extend_from_slice(&encoder.finish());
    out
}

/// An Anthropic upstream stream, re-encoded for an OpenAI client and decoded again by the
/// OpenAI decoder, gives the same neutral events (ids, text, arguments, reason, usage).
#[test]
fn anthropic_stream_to_openai_client_and_back() {
    let upstream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":30,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_A\",\"name\":\"f\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"2}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let mut decoder = anthropic::StreamDecoder::new();
    let mut neutral = Vec::new();
    decoder.feed(upstream.as_bytes(), &mut neutral).unwrap();
    assert!(decoder.is_finished());

    let client_bytes = encode_openai(&neutral, true);
    let chunks = data_json(&client_bytes);
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    assert_eq!(chunks[2]["choices"][0]["delta"]["tool_calls"][0]["id"], "toolu_A");

    // What the OpenAI client received decodes to the same events (but for the start's id
    // and model, which are the gateway's).
    let mut again = openai::StreamDecoder::new();
    let mut round_trip = Vec::new();
    again.feed(&client_bytes, &mut round_trip).unwrap();
    assert!(again.is_finished());
    assert_eq!(
        round_trip[0],
        StreamEvent::Start { id: "resp-1".into(), model: "client-model".into() }
    );
    assert_eq!(round_trip[1..], neutral[1..]);
    assert_eq!(
        neutral.last(),
        Some(&StreamEvent::Usage(Usage { input_tokens: 30, output_tokens: 12 }))
    );
}

/// An OpenAI upstream stream (with parallel tool calls), re-encoded for an Anthropic
/// client, decodes back to the same events with the Anthropic decoder.
#[test]
fn openai_stream_to_anthropic_client_and_back() {
    let upstream = concat!(
        "data: {\"id\":\"c\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Two calls.\"}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"p\\\":\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":5}}\n\n",
        "data: [DONE]\n\n",
    );
    let mut decoder = openai::StreamDecoder::new();
    let mut neutral = Vec::new();
    decoder.feed(upstream.as_bytes(), &mut neutral).unwrap();

    let client_bytes = encode_anthropic(&neutral);
    let events = frames(&client_bytes);
    let tool_starts: Vec<Value> = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("content_block_start"))
        .map(|e| serde_json::from_str::<Value>(&e.data).unwrap()["content_block"].clone())
        .collect();
    assert_eq!(tool_starts[1]["id"], "call_1");
    assert_eq!(tool_starts[2]["id"], "call_2");

    let mut again = anthropic::StreamDecoder::new();
    let mut round_trip = Vec::new();
    again.feed(&client_bytes, &mut round_trip).unwrap();
    assert!(again.is_finished());
    assert_eq!(round_trip[1..], neutral[1..]);
}

/// Ollama's NDJSON stream becomes a well-formed SSE stream for either client.
#[test]
fn ollama_stream_to_both_clients() {
    let upstream = concat!(
        "{\"model\":\"llama3\",\"created_at\":\"t0\",\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n",
        "{\"model\":\"llama3\",\"created_at\":\"t1\",\"message\":{\"role\":\"assistant\",\"content\":\"!\"},\"done\":true,\"done_reason\":\"length\",\"prompt_eval_count\":4,\"eval_count\":2}\n",
    );
    let mut decoder = ollama::StreamDecoder::new();
    let mut neutral = Vec::new();
    decoder.feed(upstream.as_bytes(), &mut neutral).unwrap();
    assert!(decoder.is_finished());

    let chunks = data_json(&encode_openai(&neutral, true));
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hi!");
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "length"));
    assert!(chunks.iter().any(|c| c["usage"]["completion_tokens"] == 2));

    let events = SseParser::parse_all(&encode_anthropic(&neutral)).unwrap();
    let delta: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(delta["usage"]["output_tokens"], 2);
}

#[test]
fn anthropic_client_tool_use_inputs_survive_as_json_text() {
    let request = anthropic_client(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_n", "name": "f", "input": {"nested": {"list": [1, "two", null]}, "ü": true}}]}
    ]}));
    let ContentPart::ToolCall(ToolCall { arguments, .. }) = &request.messages[1].content[0] else {
        panic!("expected a tool call");
    };
    let parsed: Value = serde_json::from_str(arguments).unwrap();
    assert_eq!(parsed, json!({"nested": {"list": [1, "two", null]}, "ü": true}));
}
