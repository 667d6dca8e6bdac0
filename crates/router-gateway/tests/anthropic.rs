//! The Anthropic Messages API end to end: real HTTP from a client speaking Anthropic's
//! format, through the gateway, to simulated upstreams of every format (OpenAI-compatible,
//! Anthropic, Ollama), and the OpenAI format served by Claude. Each case of the translation
//! table — roles and system prompt, content blocks, images, tool calls and results with their
//! ids, stop reasons, usage, sampling fields — is checked on what reaches the upstream and on
//! what comes back, streamed and not, along with errors, broken upstream streams, auth,
//! aliases and token counting.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::TestGateway;
use futures_util::StreamExt;
use router_sim::{
    Endpoint, Fault, FaultPlan, Latency, RecordedRequest, SimConfig, SimModel, SimServer,
    StreamBreak, Style,
};
use serde_json::{Value, json};

/// The three upstream formats, by the name of the gateway model that speaks each.
const UPSTREAMS: [&str; 3] = ["oa", "an", "ol"];

const ANTHROPIC_KEY: &str = "sk-ant-upstream";

/// A sim hosting `models` and a gateway with one model per name, its provider chosen by the
/// name's prefix (`oa` OpenAI-compatible, `an` Anthropic, `ol` Ollama), tool- and
/// vision-capable, plus Claude model ids aliased to `an` and `ol` when they are there. `extra` is appended to the
/// config.
async fn setup(models: Vec<SimModel>, extra: &str) -> (SimServer, TestGateway) {
    setup_with_server(models, extra, "", HashMap::new()).await
}

/// [`setup`] with lines for the `[server]` table (client keys) and the environment they read.
async fn setup_with_server(
    models: Vec<SimModel>,
    extra: &str,
    server: &str,
    mut env: HashMap<String, String>,
) -> (SimServer, TestGateway) {
    let mut sim = SimConfig::new();
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let mut config = String::from("[aliases]\n");
    for (alias, target) in [("claude-3-5-sonnet-latest", "an"), ("claude-3-5-haiku-latest", "ol")] {
        if names.iter().any(|n| n == target) {
            config.push_str(&format!("\"{alias}\" = \"{target}\"\n"));
        }
    }
    config.push('\n');
    for model in models {
        let model = if model.name.starts_with("an") { model.api_key(ANTHROPIC_KEY) } else { model };
        sim = sim.model(model);
    }
    let upstream = SimServer::start(sim).await.unwrap();
    let base = upstream.base_url();
    for name in &names {
        let (provider, base_url, key) = match &name[..2] {
            "oa" => ("openai-compatible", format!("{base}/v1"), ""),
            "an" => ("anthropic", base.clone(), "api_key_env = \"AN_KEY\"\n"),
            _ => ("ollama", base.clone(), ""),
        };
        config.push_str(&format!(
            "[[models]]\nname = \"{name}\"\nprovider = \"{provider}\"\nbase_url = \"{base_url}\"\n{key}input_price = 1.0\noutput_price = 2.0\ncapabilities = {{ tools = true, vision = true }}\n\n"
        ));
    }
    config.push_str(extra);
    env.insert("AN_KEY".into(), ANTHROPIC_KEY.into());
    (
        upstream,
        common::start_with_server(&format!("shutdown_grace_ms = 5000\n{server}"), &config, env)
            .await,
    )
}

fn terse(name: &str) -> SimModel {
    SimModel::new(name).style(Style::Terse)
}

fn all_upstreams() -> Vec<SimModel> {
    UPSTREAMS.iter().map(|n| terse(n)).collect()
}

async fn messages(gw: &TestGateway, body: Value) -> reqwest::Response {
    gw.client
        .post(format!("{}/v1/messages", gw.url))
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A minimal valid body for `model`.
fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": text}]})
}

/// One server-sent event: its `event:` name and its `data:` as JSON.
#[derive(Debug, Clone)]
struct Event {
    name: String,
    data: Value,
}

async fn events(response: reqwest::Response) -> Vec<Event> {
    let text = tokio::time::timeout(Duration::from_secs(15), response.text())
        .await
        .expect("the stream ended")
        .unwrap();
    parse_events(&text)
}

fn parse_events(text: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
        let mut name = String::new();
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                name = v.to_owned();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {frame}"));
        out.push(Event { name, data });
    }
    out
}

fn names(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.name.as_str()).collect()
}

fn streamed_text(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.data["delta"]["type"] == "text_delta")
        .map(|e| e.data["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// The last request the upstream received for `model`.
fn last_request(upstream: &SimServer, model: &str) -> RecordedRequest {
    upstream
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.json().is_some_and(|b| b["model"] == model))
        .unwrap_or_else(|| panic!("{model} received no request"))
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "The current weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    })
}

#[tokio::test]
async fn every_upstream_answers_in_anthropic_format() {
    let (_upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        let response = messages(&gw, ask(model, "What is the capital of France?")).await;
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["x-router-model"], model);
        let decision = response.headers()["x-router-decision-id"].to_str().unwrap().to_owned();
        let request_id = response.headers()["request-id"].to_str().unwrap();
        assert_eq!(request_id, format!("req_{}", decision.replace('-', "")));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "message", "{body}");
        assert_eq!(body["role"], "assistant");
        assert_eq!(body["model"], model);
        assert_eq!(body["id"], format!("msg_{}", decision.replace('-', "")));
        assert_eq!(body["content"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["content"][0]["type"], "text");
        let text = body["content"][0]["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("[{model}]")), "{model}: {text}");
        assert!(text.contains("capital of France"), "{text}");
        assert_eq!(body["stop_reason"], "end_turn");
        assert_eq!(body["stop_sequence"], Value::Null);
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0, "{body}");
        assert!(body["usage"]["output_tokens"].as_u64().unwrap() > 0, "{body}");
    }
}

#[tokio::test]
async fn every_upstream_streams_the_exact_event_sequence() {
    let (_upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        let prompt = "Explain how tides work";
        let whole: Value = messages(&gw, ask(model, prompt)).await.json().await.unwrap();

        let mut body = ask(model, prompt);
        body["stream"] = json!(true);
        let response = messages(&gw, body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.headers().contains_key("request-id"));
        let events = events(response).await;
        let names = names(&events);
        let deltas = names.iter().filter(|n| **n == "content_block_delta").count();
        assert!(deltas > 1, "{model}: the text came in {deltas} deltas: {names:?}");
        let mut expected = vec!["message_start", "ping", "content_block_start"];
        expected.extend(std::iter::repeat_n("content_block_delta", deltas));
        expected.extend(["content_block_stop", "message_delta", "message_stop"]);
        assert_eq!(names, expected, "{model}");
        for event in &events {
            assert_eq!(event.data["type"], event.name.as_str(), "{model}: {event:?}");
        }

        let start = &events[0].data["message"];
        assert!(start["id"].as_str().unwrap().starts_with("msg_"), "{start}");
        assert_eq!(start["model"], model);
        assert_eq!(start["role"], "assistant");
        assert_eq!(start["content"], json!([]));
        assert_eq!(start["stop_reason"], Value::Null);
        assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0, "{start}");
        assert_eq!(events[2].data["content_block"], json!({"type": "text", "text": ""}));
        assert!(
            events.iter().filter(|e| e.data.get("index").is_some()).all(|e| e.data["index"] == 0)
        );

        let delta = &events[events.len() - 2].data;
        assert_eq!(delta["delta"]["stop_reason"], "end_turn", "{delta}");
        assert_eq!(delta["delta"]["stop_sequence"], Value::Null);
        assert!(delta["usage"]["output_tokens"].as_u64().unwrap() > 0, "{delta}");
        assert_eq!(
            streamed_text(&events),
            whole["content"][0]["text"].as_str().unwrap(),
            "{model}"
        );
    }
}

/// The assistant's tool call and the final answer to its result, for one upstream.
async fn tool_round_trip(gw: &TestGateway, upstream: &SimServer, model: &str, stream: bool) {
    let question = json!({"role": "user", "content": "Use the tool to get the weather in Paris"});
    let body = json!({"model": model, "max_tokens": 300, "stream": stream, "tools": [weather_tool()],
                      "messages": [question]});
    let response = messages(gw, body).await;
    assert_eq!(response.status(), 200, "{model}");
    let (content, stop_reason) = if stream {
        let events = events(response).await;
        assert_eq!(names(&events).last(), Some(&"message_stop"), "{model}: {events:?}");
        // Rebuild the content blocks from the stream, as an SDK does.
        let mut blocks: Vec<Value> = Vec::new();
        let mut partial: HashMap<u64, String> = HashMap::new();
        for event in &events {
            match event.name.as_str() {
                "content_block_start" => {
                    assert_eq!(event.data["index"].as_u64().unwrap() as usize, blocks.len());
                    blocks.push(event.data["content_block"].clone());
                }
                "content_block_delta" => {
                    let index = event.data["index"].as_u64().unwrap();
                    let delta = &event.data["delta"];
                    match delta["type"].as_str().unwrap() {
                        "text_delta" => {
                            let block = &mut blocks[index as usize]["text"];
                            *block = json!(format!(
                                "{}{}",
                                block.as_str().unwrap(),
                                delta["text"].as_str().unwrap()
                            ));
                        }
                        "input_json_delta" => partial
                            .entry(index)
                            .or_default()
                            .push_str(delta["partial_json"].as_str().unwrap()),
                        other => panic!("unexpected delta {other}"),
                    }
                }
                _ => {}
            }
        }
        for (index, json) in partial {
            assert_eq!(
                blocks[index as usize]["input"],
                json!({}),
                "tool_use starts with an empty input"
            );
            blocks[index as usize]["input"] = serde_json::from_str(&json).unwrap();
        }
        let stop = events[events.len() - 2].data["delta"]["stop_reason"].clone();
        (blocks, stop)
    } else {
        let body: Value = response.json().await.unwrap();
        (body["content"].as_array().unwrap().clone(), body["stop_reason"].clone())
    };
    assert_eq!(stop_reason, "tool_use", "{model}: {content:?}");
    let call = content
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("{model}: {content:?}"));
    let id = call["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    assert_eq!(call["name"], "get_weather");
    assert!(call["input"]["city"].is_string(), "{call}");
    assert!(content.iter().all(|b| b["type"] != "text" || !b["text"].as_str().unwrap().is_empty()));

    // The client runs the tool and sends the result back under the call's id.
    let body = json!({"model": model, "max_tokens": 300, "stream": stream, "tools": [weather_tool()],
    "messages": [
        question,
        {"role": "assistant", "content": content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "18 degrees and sunny"}]},
    ]});
    let response = messages(gw, body).await;
    assert_eq!(response.status(), 200);
    let text = if stream {
        let events = events(response).await;
        assert_eq!(events[events.len() - 2].data["delta"]["stop_reason"], "end_turn");
        streamed_text(&events)
    } else {
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["stop_reason"], "end_turn");
        body["content"][0]["text"].as_str().unwrap().to_owned()
    };
    assert!(text.contains("18 degrees and sunny"), "{model}: {text}");

    // The upstream saw the call and its result tied together, in its own format.
    let sent = last_request(upstream, model).json().unwrap();
    let messages = &sent["messages"];
    match model {
        "oa" => {
            let call = &messages[1]["tool_calls"][0];
            assert_eq!(call["id"], id.as_str(), "{sent}");
            assert_eq!(call["function"]["name"], "get_weather");
            let arguments: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert!(arguments["city"].is_string());
            assert_eq!(
                messages[2],
                json!({"role": "tool", "tool_call_id": id, "content": "18 degrees and sunny"})
            );
            assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
        }
        "an" => {
            let blocks = messages[1]["content"].as_array().unwrap();
            let call = blocks.iter().find(|b| b["type"] == "tool_use").unwrap();
            assert_eq!(call["id"], id.as_str(), "{sent}");
            assert_eq!(messages[2]["content"][0]["type"], "tool_result");
            assert_eq!(messages[2]["content"][0]["tool_use_id"], id.as_str());
            assert_eq!(sent["tools"][0]["input_schema"], weather_tool()["input_schema"]);
        }
        _ => {
            assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], "get_weather", "{sent}");
            assert_eq!(
                messages[2],
                json!({"role": "tool", "content": "18 degrees and sunny", "tool_name": "get_weather"})
            );
        }
    }
}

#[tokio::test]
async fn tool_use_round_trips_through_every_upstream() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        for stream in [false, true] {
            tool_round_trip(&gw, &upstream, model, stream).await;
        }
    }
}

#[tokio::test]
async fn request_fields_reach_every_upstream_translated() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        let body = json!({
            "model": model,
            "max_tokens": 200,
            "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}],
            "messages": [
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": [{"type": "text", "text": "Hi, how can I help?"}]},
                {"role": "user", "content": [{"type": "text", "text": "Name a prime"}, {"type": "text", "text": "above ten"}]},
            ],
            "stop_sequences": ["\n\nHuman:"],
            "temperature": 0.3,
            "top_p": 0.9,
            "top_k": 40,
            "metadata": {"user_id": "user-42"},
        });
        let response = messages(&gw, body).await;
        assert_eq!(response.status(), 200, "{model}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["content"][0]["text"].as_str().unwrap().contains("Name a prime"),
            "{answer}"
        );

        let sent = last_request(&upstream, model).json().unwrap();
        let m = &sent["messages"];
        match model {
            "oa" => {
                assert_eq!(
                    m[0],
                    json!({"role": "system", "content": "You are terse.\n\nAnswer in English."}),
                    "{sent}"
                );
                assert_eq!(m[1]["role"], "user");
                assert_eq!(m[2]["role"], "assistant");
                assert_eq!(m[2]["content"], "Hi, how can I help?");
                assert_eq!(m[3]["role"], "user");
                assert_eq!(sent["max_tokens"], 200);
                assert_eq!(sent["stop"], json!(["\n\nHuman:"]));
                assert_eq!(sent["temperature"], 0.3);
                assert_eq!(sent["top_p"], 0.9);
                assert_eq!(sent["user"], "user-42");
                assert!(sent.get("top_k").is_none(), "{sent}");
            }
            "an" => {
                let request = last_request(&upstream, model);
                assert_eq!(request.header("x-api-key"), Some(ANTHROPIC_KEY));
                assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(sent["system"], "You are terse.\n\nAnswer in English.", "{sent}");
                assert_eq!(m.as_array().unwrap().len(), 3);
                assert_eq!(m[0]["role"], "user");
                assert_eq!(m[1]["role"], "assistant");
                assert_eq!(m[2]["content"][1], json!({"type": "text", "text": "above ten"}));
                assert_eq!(sent["max_tokens"], 200);
                assert_eq!(sent["stop_sequences"], json!(["\n\nHuman:"]));
                assert_eq!(sent["temperature"], 0.3);
                assert_eq!(sent["top_p"], 0.9);
                assert_eq!(sent["metadata"], json!({"user_id": "user-42"}));
            }
            _ => {
                assert_eq!(m[0]["role"], "system", "{sent}");
                assert!(m[0]["content"].as_str().unwrap().contains("You are terse."));
                assert_eq!(m[2], json!({"role": "assistant", "content": "Hi, how can I help?"}));
                assert_eq!(sent["options"]["num_predict"], 200);
                assert_eq!(sent["options"]["temperature"], 0.3);
                assert_eq!(sent["options"]["top_p"], 0.9);
                assert_eq!(sent["options"]["stop"], json!(["\n\nHuman:"]));
            }
        }
    }
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_with_stop_reason_max_tokens() {
    let models = UPSTREAMS.iter().map(|n| SimModel::new(*n).style(Style::Verbose)).collect();
    let (_upstream, gw) = setup(models, "").await;
    for model in UPSTREAMS {
        let mut body = ask(model, "Tell me everything about the history of Rome");
        body["max_tokens"] = json!(8);
        let answer: Value = messages(&gw, body.clone()).await.json().await.unwrap();
        assert_eq!(answer["stop_reason"], "max_tokens", "{model}: {answer}");
        assert!(answer["usage"]["output_tokens"].as_u64().unwrap() <= 8, "{answer}");
        body["stream"] = json!(true);
        let events = events(messages(&gw, body).await).await;
        assert_eq!(events[events.len() - 2].data["delta"]["stop_reason"], "max_tokens", "{model}");
    }
}

#[tokio::test]
async fn images_go_where_the_upstream_takes_them() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    let pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let image = |source: Value| json!([{"type": "image", "source": source}, {"type": "text", "text": "What is in this picture?"}]);
    let inline = json!({"type": "base64", "media_type": "image/png", "data": pixel});
    let remote = json!({"type": "url", "url": "https://example.com/cat.png"});

    for model in UPSTREAMS {
        let body = json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": image(inline.clone())}]});
        let response = messages(&gw, body).await;
        assert_eq!(response.status(), 200, "{model}");
        let sent = last_request(&upstream, model).json().unwrap();
        let user = &sent["messages"][0];
        match model {
            "oa" => assert_eq!(
                user["content"][0]["image_url"]["url"],
                format!("data:image/png;base64,{pixel}"),
                "{sent}"
            ),
            "an" => {
                assert_eq!(user["content"][0], json!({"type": "image", "source": inline}), "{sent}")
            }
            _ => assert_eq!(user["images"], json!([pixel]), "{sent}"),
        }
    }

    // A URL: OpenAI and Anthropic take it; Ollama takes only inline data, so the request is
    // refused with a clear 400 instead of being sent without its image.
    for model in ["oa", "an"] {
        let body = json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": image(remote.clone())}]});
        assert_eq!(messages(&gw, body).await.status(), 200, "{model}");
    }
    let before = upstream.stats().endpoint(Endpoint::OllamaChat).requests;
    let body = json!({"model": "ol", "max_tokens": 100, "messages": [{"role": "user", "content": image(remote)}]});
    let response = messages(&gw, body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("image"), "{error}");
    assert_eq!(
        upstream.stats().endpoint(Endpoint::OllamaChat).requests,
        before,
        "nothing was sent"
    );
}

#[tokio::test]
async fn what_cannot_be_translated_is_refused_with_a_clear_400() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    let cases = [
        // Ollama cannot be made to call a tool.
        (
            "ol",
            json!({"model": "ol", "max_tokens": 50, "tools": [weather_tool()], "tool_choice": {"type": "any"},
                       "messages": [{"role": "user", "content": "weather?"}]}),
            "tool",
        ),
        // Blocks no other format carries.
        (
            "an",
            json!({"model": "an", "max_tokens": 50, "messages": [{"role": "user", "content": [
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]}),
            "document",
        ),
        // Server tools run on Anthropic's side only.
        (
            "oa",
            json!({"model": "oa", "max_tokens": 50, "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                       "messages": [{"role": "user", "content": "news?"}]}),
            "web_search",
        ),
        // An image inside a tool result.
        (
            "oa",
            json!({"model": "oa", "max_tokens": 50, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}]}),
            "image",
        ),
    ];
    for (model, body, mentions) in cases {
        let response = messages(&gw, body).await;
        assert_eq!(response.status(), 400, "{model} {mentions}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(mentions), "{error}");
    }
    let stats = upstream.stats();
    for endpoint in [Endpoint::OpenAiChat, Endpoint::AnthropicMessages, Endpoint::OllamaChat] {
        assert_eq!(stats.endpoint(endpoint).requests, 0, "{endpoint:?} was called");
    }
}

#[tokio::test]
async fn bad_requests_get_anthropic_errors_with_matching_statuses() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    let url = format!("{}/v1/messages", gw.url);
    let send = |body: Vec<u8>, content_type: &'static str| {
        let client = gw.client.clone();
        let url = url.clone();
        async move {
            let r = client
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let ok_messages = r#""messages": [{"role": "user", "content": "hi"}]"#;
    let cases = vec![
        ("malformed JSON", b"{\"model\": ".to_vec(), "application/json", 400, "invalid_request_error", "JSON"),
        ("missing max_tokens", format!(r#"{{"model": "oa", {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "max_tokens"),
        ("max_tokens zero", format!(r#"{{"model": "oa", "max_tokens": 0, {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "max_tokens"),
        ("missing model", format!(r#"{{"max_tokens": 5, {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "model"),
        ("empty messages", br#"{"model": "oa", "max_tokens": 5, "messages": []}"#.to_vec(), "application/json", 400, "invalid_request_error", "messages"),
        ("system role in messages", br#"{"model": "oa", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}"#.to_vec(), "application/json", 400, "invalid_request_error", "messages.0.role"),
        ("temperature out of range", format!(r#"{{"model": "oa", "max_tokens": 5, "temperature": 1.5, {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "temperature"),
        ("tool_choice naming no tool", format!(r#"{{"model": "oa", "max_tokens": 5, "tools": [], "tool_choice": {{"type": "tool", "name": "nope"}}, {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "nope"),
        ("unknown model", format!(r#"{{"model": "claude-opus-9", "max_tokens": 5, {ok_messages}}}"#).into_bytes(), "application/json", 404, "not_found_error", "claude-opus-9"),
        ("unknown profile", format!(r#"{{"model": "auto:nonsense", "max_tokens": 5, {ok_messages}}}"#).into_bytes(), "application/json", 400, "invalid_request_error", "nonsense"),
        ("wrong content type", format!(r#"{{"model": "oa", "max_tokens": 5, {ok_messages}}}"#).into_bytes(), "text/plain", 400, "invalid_request_error", "Content-Type"),
        ("body over the limit", vec![b' '; 11 * 1024 * 1024], "application/json", 413, "request_too_large", "limit"),
    ];
    for (name, body, content_type, status, kind, mentions) in cases {
        let (got, body) = send(body, content_type).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["type"], "error", "{name}: {body}");
        assert_eq!(body["error"]["type"], kind, "{name}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{name}: `{message}` should mention `{mentions}`");
    }

    // An unknown route answers an Anthropic client in its own shape.
    let response = gw
        .client
        .post(format!("{}/v1/complete", gw.url))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
    assert_eq!(upstream.stats().endpoint(Endpoint::OpenAiChat).requests, 0);
}

#[tokio::test]
async fn upstream_failures_map_to_anthropic_statuses() {
    let retry = Duration::from_secs(7);
    let failing = vec![
        ("an500", Fault::ServerError, 502, "api_error"),
        ("oa429", Fault::RateLimited { retry_after: retry }, 429, "rate_limit_error"),
        ("an529", Fault::Overloaded, 529, "overloaded_error"),
        ("ol503", Fault::Overloaded, 529, "overloaded_error"),
        ("oa401", Fault::Unauthorized, 502, "api_error"),
        ("an400", Fault::ContextLength, 400, "invalid_request_error"),
    ];
    // A model for each call, streamed or not: a failure may open the circuit (a 429 asks for
    // seven seconds' rest), and a second call would then meet the gateway's own overload.
    let mut models = Vec::new();
    for (name, fault, ..) in &failing {
        for suffix in ["", "-stream"] {
            models.push(terse(&format!("{name}{suffix}")).fault(FaultPlan::always(*fault)));
        }
    }
    // One attempt: no retries, so each failure is reported as it happened.
    let (_upstream, gw) = setup(models, "[dispatch]\nmax_attempts = 1\n").await;
    for (name, _, status, kind) in failing {
        for stream in [false, true] {
            let model = if stream { format!("{name}-stream") } else { name.to_owned() };
            let model = model.as_str();
            let mut body = ask(model, "hello");
            body["stream"] = json!(stream);
            let response = messages(&gw, body).await;
            assert_eq!(response.status(), status, "{model} stream={stream}");
            // Failures before the first byte are plain errors, not streams.
            assert_eq!(response.headers()["content-type"], "application/json");
            assert!(response.headers().contains_key("request-id"), "{model}");
            if status == 429 {
                assert_eq!(response.headers()["retry-after"], "7");
            }
            let error: Value = response.json().await.unwrap();
            assert_eq!(error["type"], "error");
            assert_eq!(error["error"]["type"], kind, "{model}: {error}");
            let message = error["error"]["message"].as_str().unwrap();
            assert!(!message.contains(ANTHROPIC_KEY), "{message}");
        }
    }
}

#[tokio::test]
async fn broken_upstream_streams_end_with_an_error_event() {
    let breaks = [
        ("disconnect", StreamBreak::Disconnect),
        ("malformed", StreamBreak::MalformedChunk),
        ("error", StreamBreak::ErrorEvent),
        ("stall", StreamBreak::Stall),
    ];
    let mut models = Vec::new();
    for prefix in UPSTREAMS {
        for (label, how) in breaks {
            let fault = Fault::BreakStream { after_chunks: 3, how };
            models.push(
                SimModel::new(format!("{prefix}-{label}"))
                    .style(Style::Verbose)
                    .fault(FaultPlan::always(fault)),
            );
        }
    }
    let (_upstream, gw) =
        setup(models, "[dispatch]\nmax_attempts = 1\nidle_timeout_ms = 500\n").await;
    for prefix in UPSTREAMS {
        for (label, _) in breaks {
            let model = format!("{prefix}-{label}");
            let mut body = ask(&model, "Write a long answer please");
            body["stream"] = json!(true);
            let response = messages(&gw, body).await;
            assert_eq!(response.status(), 200, "{model}");
            let events = events(response).await;
            let names = names(&events);
            assert_eq!(&names[..3], ["message_start", "ping", "content_block_start"], "{model}");
            assert!(names.contains(&"content_block_delta"), "{model}: {names:?}");
            assert!(
                !names.contains(&"message_stop"),
                "{model}: a broken stream must not look complete"
            );
            let last = events.last().unwrap();
            assert_eq!(last.name, "error", "{model}: {names:?}");
            assert_eq!(last.data["type"], "error");
            let kind = last.data["error"]["type"].as_str().unwrap();
            let expected = if label == "stall" { "timeout_error" } else { "api_error" };
            assert_eq!(kind, expected, "{model}: {last:?}");
            let message = last.data["error"]["message"].as_str().unwrap();
            if (prefix, label) == ("an", "error") {
                // Anthropic's own in-stream error is passed on in the message.
                assert!(message.contains("Overloaded"), "{message}");
            }
            assert!(!message.is_empty());
        }
    }
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_call() {
    let slow = SimModel::new("an").style(Style::Verbose).latency(Latency::new(Duration::ZERO, 5.0));
    let (upstream, gw) = setup(vec![slow], "").await;
    let mut body = ask("an", "Write a very long essay");
    body["stream"] = json!(true);
    let mut stream = messages(&gw, body).await.bytes_stream();
    let _ = stream.next().await;
    drop(stream);
    let cancelled = upstream
        .wait_for(Duration::from_secs(5), |s| {
            s.endpoint(Endpoint::AnthropicMessages).cancelled >= 1
        })
        .await;
    assert!(cancelled, "the upstream kept generating: {:?}", upstream.stats());
}

#[tokio::test]
async fn client_keys_are_accepted_as_x_api_key_or_bearer() {
    let env = [("CLIENT_KEYS".to_string(), "key-one,key-two".to_string())].into();
    let (upstream, gw) =
        setup_with_server(all_upstreams(), "", "client_keys_env = \"CLIENT_KEYS\"\n", env).await;
    let url = format!("{}/v1/messages", gw.url);
    let body = ask("an", "hello");
    let cases = [
        ("no key", None, 401),
        ("wrong x-api-key", Some(("x-api-key", "key-three")), 401),
        ("wrong bearer", Some(("authorization", "Bearer key-three")), 401),
        ("x-api-key", Some(("x-api-key", "key-one")), 200),
        ("bearer", Some(("authorization", "Bearer key-two")), 200),
        ("the upstream's key is not a client key", Some(("x-api-key", ANTHROPIC_KEY)), 401),
    ];
    for (name, header, status) in cases {
        let mut request =
            gw.client.post(&url).header("anthropic-version", "2023-06-01").json(&body);
        if let Some((header, value)) = header {
            request = request.header(header, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{name}");
        let body: Value = response.json().await.unwrap();
        if status == 401 {
            assert_eq!(body["error"]["type"], "authentication_error", "{name}: {body}");
        } else {
            assert_eq!(body["type"], "message", "{name}: {body}");
        }
    }
    // count_tokens is behind the same door.
    let response = gw
        .client
        .post(format!("{url}/count_tokens"))
        .json(&json!({"model": "an", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    // The key the gateway sends upstream is its own, never the client's.
    let sent = last_request(&upstream, "an");
    assert_eq!(sent.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(upstream.stats().endpoint(Endpoint::AnthropicMessages).requests, 2);
}

#[tokio::test]
async fn aliases_and_auto_route_anthropic_clients() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    // A client hard-wired to Claude model ids is served by whatever the config maps them to.
    for (alias, model) in [("claude-3-5-sonnet-latest", "an"), ("claude-3-5-haiku-latest", "ol")] {
        let response = messages(&gw, ask(alias, "hello there")).await;
        assert_eq!(response.status(), 200, "{alias}");
        assert_eq!(response.headers()["x-router-model"], model);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model"], model, "the answer names the model that wrote it");
        assert!(body["content"][0]["text"].as_str().unwrap().starts_with(&format!("[{model}]")));
    }
    assert_eq!(last_request(&upstream, "ol").json().unwrap()["model"], "ol");
    for requested in ["auto", "auto:cost", "auto:quality"] {
        for stream in [false, true] {
            let mut body = ask(requested, "What is two plus two?");
            body["stream"] = json!(stream);
            let response = messages(&gw, body).await;
            assert_eq!(response.status(), 200, "{requested}");
            let chosen = response.headers()["x-router-model"].to_str().unwrap().to_owned();
            assert!(UPSTREAMS.contains(&chosen.as_str()), "{chosen}");
            let model = if stream {
                events(response).await[0].data["message"]["model"].clone()
            } else {
                response.json::<Value>().await.unwrap()["model"].clone()
            };
            assert_eq!(model, chosen.as_str());
        }
    }
}

/// What Claude Code and the beta SDK send: `?beta=true`, `anthropic-beta`, prompt caching
/// marks, extended thinking and signed thinking blocks in the history. What only Claude can
/// use is accepted and left out of other formats' requests.
#[tokio::test]
async fn claude_code_style_requests_are_served_by_any_upstream() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        let mut tool = weather_tool();
        tool["cache_control"] = json!({"type": "ephemeral"});
        let body = json!({
            "model": model,
            "max_tokens": 2048,
            "stream": true,
            "system": [
                {"type": "text", "text": "You are a coding agent."},
                {"type": "text", "text": "Be careful.", "cache_control": {"type": "ephemeral"}},
            ],
            "tools": [tool],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "metadata": {"user_id": "session-1"},
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "Fix the bug", "cache_control": {"type": "ephemeral"}}]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me look.", "signature": "c2lnbmF0dXJl"},
                    {"type": "text", "text": "Which file?"},
                ]},
                {"role": "user", "content": "src/main.rs, please"},
            ],
        });
        let response = gw
            .client
            .post(format!("{}/v1/messages?beta=true", gw.url))
            .header("anthropic-version", "2023-06-01")
            .header(
                "anthropic-beta",
                "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14",
            )
            .header("x-api-key", "anything")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{model}");
        let events = events(response).await;
        assert_eq!(names(&events).last(), Some(&"message_stop"), "{model}");
        assert!(streamed_text(&events).contains("src/main.rs"), "{model}");

        let sent = last_request(&upstream, model);
        let text = String::from_utf8_lossy(&sent.body);
        for noise in ["cache_control", "thinking", "Let me look.", "signature", "budget_tokens"] {
            assert!(!text.contains(noise), "{model}: `{noise}` reached the upstream: {text}");
        }
        if model == "an" {
            assert_eq!(sent.header("anthropic-beta"), None, "beta flags are the client's");
        }
    }
}

#[tokio::test]
async fn count_tokens_estimates_without_calling_an_upstream() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    let count = |body: Value| {
        let client = gw.client.clone();
        let url = format!("{}/v1/messages/count_tokens", gw.url);
        async move {
            let response = client
                .post(url)
                .header("anthropic-version", "2023-06-01")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let short = json!({"model": "an", "messages": [{"role": "user", "content": "Hello"}]});
    let (status, body) = count(short.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let base = body["input_tokens"].as_u64().unwrap();
    assert!(base > 0);
    // The same body counts the same, whatever model would answer it.
    for model in ["oa", "ol", "auto", "claude-3-5-sonnet-latest"] {
        let mut body = short.clone();
        body["model"] = json!(model);
        assert_eq!(count(body).await.1["input_tokens"], base, "{model}");
    }

    let mut longer = short.clone();
    longer["messages"][0]["content"] = json!("Hello. ".repeat(50));
    let with_system = json!({"model": "an", "system": "You are a helpful assistant who answers briefly.", "messages": short["messages"]});
    let with_tools =
        json!({"model": "an", "tools": [weather_tool()], "messages": short["messages"]});
    let with_max_tokens = json!({"model": "an", "max_tokens": 100, "messages": short["messages"]});
    let longer = count(longer).await.1["input_tokens"].as_u64().unwrap();
    let system = count(with_system).await.1["input_tokens"].as_u64().unwrap();
    let tools = count(with_tools).await.1["input_tokens"].as_u64().unwrap();
    assert!(longer > base + 50, "{longer} vs {base}");
    assert!(system > base, "{system} vs {base}");
    assert!(tools > base + 10, "tool definitions count: {tools} vs {base}");
    assert_eq!(count(with_max_tokens).await.1["input_tokens"], base);

    let errors = [
        (json!({"model": "an"}), 400, "invalid_request_error", "messages"),
        (json!({"model": "an", "messages": []}), 400, "invalid_request_error", "messages"),
        (json!({"messages": short["messages"]}), 400, "invalid_request_error", "model"),
        (
            json!({"model": "an", "messages": [{"role": "robot", "content": "x"}]}),
            400,
            "invalid_request_error",
            "role",
        ),
        (
            json!({"model": "gpt-17", "messages": short["messages"]}),
            404,
            "not_found_error",
            "gpt-17",
        ),
        (
            json!({"model": "auto:nonsense", "messages": short["messages"]}),
            400,
            "invalid_request_error",
            "nonsense",
        ),
    ];
    for (body, status, kind, mentions) in errors {
        let (got, error) = count(body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        assert_eq!(error["error"]["type"], kind, "{error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(mentions), "{error}");
    }
    let stats = upstream.stats();
    for endpoint in [Endpoint::OpenAiChat, Endpoint::AnthropicMessages, Endpoint::OllamaChat] {
        assert_eq!(stats.endpoint(endpoint).requests, 0, "{endpoint:?} was called");
    }
}

/// The other direction: an OpenAI client served by Claude, tool calls and all.
#[tokio::test]
async fn openai_clients_are_served_by_an_anthropic_upstream() {
    let (upstream, gw) = setup(all_upstreams(), "").await;
    let tool = json!({"type": "function", "function": {"name": "get_weather", "description": "Weather.",
        "parameters": weather_tool()["input_schema"]}});
    let question = json!({"role": "user", "content": "Use the tool to get the weather in Oslo"});
    for stream in [false, true] {
        let body = json!({"model": "an", "stream": stream, "tools": [tool], "messages": [
            {"role": "system", "content": "Be brief."}, question]});
        let response = gw.post("/v1/chat/completions", body).await;
        assert_eq!(response.status(), 200);
        let (call, finish) = if stream {
            let text = response.text().await.unwrap();
            let chunks: Vec<Value> = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter(|d| *d != "[DONE]")
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
            let mut id = String::new();
            let mut name = String::new();
            let mut arguments = String::new();
            let mut finish = Value::Null;
            for chunk in &chunks {
                let choice = &chunk["choices"][0];
                if let Some(calls) = choice["delta"]["tool_calls"].as_array() {
                    for call in calls {
                        assert_eq!(call["index"], 0);
                        if let Some(v) = call["id"].as_str() {
                            id = v.to_owned();
                        }
                        if let Some(v) = call["function"]["name"].as_str() {
                            name = v.to_owned();
                        }
                        if let Some(v) = call["function"]["arguments"].as_str() {
                            arguments.push_str(v);
                        }
                    }
                }
                if !choice["finish_reason"].is_null() {
                    finish = choice["finish_reason"].clone();
                }
            }
            let call = json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}});
            (call, finish)
        } else {
            let body: Value = response.json().await.unwrap();
            (
                body["choices"][0]["message"]["tool_calls"][0].clone(),
                body["choices"][0]["finish_reason"].clone(),
            )
        };
        assert_eq!(finish, "tool_calls");
        let id = call["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("toolu_"), "Claude's id is kept: {id}");
        assert_eq!(call["function"]["name"], "get_weather");
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert!(arguments["city"].is_string());

        let body = json!({"model": "an", "stream": false, "tools": [tool], "messages": [
            {"role": "system", "content": "Be brief."}, question,
            {"role": "assistant", "content": null, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": id, "content": "-3 degrees, snow"}]});
        let response = gw.post("/v1/chat/completions", body).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .contains("-3 degrees, snow"),
            "{answer}"
        );
        assert_eq!(answer["choices"][0]["finish_reason"], "stop");

        let sent = last_request(&upstream, "an").json().unwrap();
        assert_eq!(sent["system"], "Be brief.", "{sent}");
        assert_eq!(
            sent["messages"][1]["content"][0],
            json!({"type": "tool_use", "id": id, "name": "get_weather", "input": arguments})
        );
        assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], id.as_str());
        assert_eq!(sent["messages"][2]["content"][0]["content"], "-3 degrees, snow");
        assert_eq!(sent["tools"][0]["name"], "get_weather");
        assert!(sent["max_tokens"].as_u64().unwrap() > 0, "Anthropic requires max_tokens: {sent}");
    }
}

#[tokio::test]
async fn anthropic_requests_are_counted_under_their_own_api() {
    let (_upstream, gw) = setup(all_upstreams(), "").await;
    for model in UPSTREAMS {
        assert_eq!(messages(&gw, ask(model, "hi")).await.status(), 200);
    }
    let mut body = ask("an", "hi");
    body["stream"] = json!(true);
    events(messages(&gw, body).await).await;
    let metrics =
        gw.client.get(format!("{}/metrics", gw.url)).send().await.unwrap().text().await.unwrap();
    for (model, n) in [("oa", 1), ("an", 2), ("ol", 1)] {
        let line = format!(
            "llm_router_requests_total{{api=\"anthropic\",model=\"{model}\",status=\"ok\"}} {n}"
        );
        assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");
    }
}
