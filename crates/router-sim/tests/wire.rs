//! Each endpoint, streaming and not, against a real HTTP client: the wire shapes clients
//! and the gateway rely on.

mod common;

use common::{anthropic_body, client, openai_body, parse_sse, post, post_json, sim};
use router_sim::{Endpoint, SimConfig, SimModel, SimServer, estimate_tokens};
use serde_json::{Value, json};

#[tokio::test]
async fn openai_unary_answer_names_the_model_and_counts_tokens() {
    let sim = sim().await;
    let (status, body) =
        post_json(&sim, "/v1/chat/completions", &openai_body("fast", "What is a B-tree?")).await;
    assert_eq!(status, 200);
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(body["model"], "fast");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    let text = choice["message"]["content"].as_str().unwrap();
    assert!(text.starts_with("[fast] "), "{text}");
    assert!(text.contains("What is a B-tree"), "{text}");
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], estimate_tokens(text));
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );

    // Same prompt, same answer; a verbose model costs more.
    let (_, again) =
        post_json(&sim, "/v1/chat/completions", &openai_body("fast", "What is a B-tree?")).await;
    assert_eq!(again["choices"][0]["message"]["content"], text);
    let (_, verbose) =
        post_json(&sim, "/v1/chat/completions", &openai_body("smart", "What is a B-tree?")).await;
    assert!(
        verbose["usage"]["completion_tokens"].as_u64()
            > Some(3 * usage["completion_tokens"].as_u64().unwrap())
    );

    let stats = sim.stats();
    assert_eq!(stats.endpoint(Endpoint::OpenAiChat).requests, 3);
    assert_eq!(stats.endpoint(Endpoint::OpenAiChat).completed, 3);
    assert_eq!(stats.model("fast").completed, 2);
    assert_eq!(stats.model("smart").completed, 1);
}

#[tokio::test]
async fn openai_stream_sends_role_content_finish_usage_and_done() {
    let sim = sim().await;
    let mut body = openai_body("smart", "Explain TCP slow start");
    let (_, unary) = post_json(&sim, "/v1/chat/completions", &body).await;
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let response = post(&sim, "/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&response.text().await.unwrap());

    assert_eq!(events.last().map(|e| e.data.as_str()), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(common::Event::json).collect();
    assert!(
        chunks.iter().all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"])
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, unary["choices"][0]["message"]["content"].as_str().unwrap());
    assert!(chunks.len() > 20, "one chunk per word: {}", chunks.len());

    let (usage_chunk, rest) = chunks.split_last().unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], unary["usage"]);
    assert!(
        rest.iter().all(|c| c.get("usage") == Some(&Value::Null)),
        "other chunks carry usage: null"
    );
    assert_eq!(rest.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert!(rest[..rest.len() - 1].iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
}

#[tokio::test]
async fn openai_stream_without_include_usage_has_no_usage() {
    let sim = sim().await;
    let mut body = openai_body("fast", "hello");
    body["stream"] = json!(true);
    let text = post(&sim, "/v1/chat/completions", &body).await.text().await.unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    for event in &events[..events.len() - 1] {
        let chunk = event.json();
        assert!(chunk.get("usage").is_none());
        assert_eq!(chunk["choices"].as_array().map(Vec::len), Some(1));
    }
}

fn weather_tool() -> Value {
    json!([{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": { "type": "string" },
                    "unit": { "type": "string", "enum": ["celsius", "fahrenheit"] }
                },
                "required": ["city"]
            }
        }
    }])
}

#[tokio::test]
async fn openai_tool_call_unary_and_streamed() {
    let sim = sim().await;
    let mut body = openai_body("fast", "Use the tool to get the weather in Berlin");
    body["tools"] = weather_tool();
    let (status, unary) = post_json(&sim, "/v1/chat/completions", &body).await;
    assert_eq!(status, 200);
    let choice = &unary["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({ "city": "Berlin", "unit": "celsius" }));

    body["stream"] = json!(true);
    let text = post(&sim, "/v1/chat/completions", &body).await.text().await.unwrap();
    let events = parse_sse(&text);
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(common::Event::json).collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["function"]["name"], "get_weather");
    assert!(first["id"].as_str().is_some_and(|id| id.starts_with("call_")));
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&streamed).unwrap(), args);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    // Without a request for a tool, the model answers in text; `required` forces a call.
    let mut plain = openai_body("fast", "What is the weather in Berlin?");
    plain["tools"] = weather_tool();
    let (_, answer) = post_json(&sim, "/v1/chat/completions", &plain).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    plain["tool_choice"] = json!("required");
    let (_, forced) = post_json(&sim, "/v1/chat/completions", &plain).await;
    assert_eq!(forced["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn openai_answers_a_tool_result_with_text() {
    let sim = sim().await;
    let body = json!({
        "model": "fast",
        "tools": weather_tool(),
        "messages": [
            { "role": "user", "content": "Use the tool for Berlin" },
            { "role": "assistant", "content": null, "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": "get_weather", "arguments": "{\"city\":\"Berlin\"}" } }] },
            { "role": "tool", "tool_call_id": "call_1", "content": "21 degrees and sunny" }
        ]
    });
    let (_, answer) = post_json(&sim, "/v1/chat/completions", &body).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("21 degrees and sunny")
    );
}

#[tokio::test]
async fn openai_max_tokens_cuts_the_answer() {
    let sim = sim().await;
    let mut body = openai_body("smart", "Tell me everything about compilers");
    body["max_tokens"] = json!(8);
    let (_, answer) = post_json(&sim, "/v1/chat/completions", &body).await;
    assert_eq!(answer["choices"][0]["finish_reason"], "length");
    assert!(answer["usage"]["completion_tokens"].as_u64().unwrap() <= 8);
}

#[tokio::test]
async fn anthropic_unary_message() {
    let sim = sim().await;
    let (status, body) =
        post_json(&sim, "/v1/messages", &anthropic_body("zh", "如何学习 Rust？")).await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(body["stop_reason"], "end_turn");
    assert!(body["stop_sequence"].is_null());
    let text = body["content"][0]["text"].as_str().unwrap();
    assert_eq!(body["content"][0]["type"], "text");
    assert!(text.starts_with("[zh] 关于"), "{text}");
    assert_eq!(body["usage"]["output_tokens"], estimate_tokens(text));
    assert!(body["usage"]["input_tokens"].as_u64() > Some(0));
}

#[tokio::test]
async fn anthropic_stream_follows_the_documented_event_sequence() {
    let sim = sim().await;
    let mut body = anthropic_body("fast", "Summarise the CAP theorem");
    let (_, unary) = post_json(&sim, "/v1/messages", &body).await;
    body["stream"] = json!(true);
    let response = post(&sim, "/v1/messages", &body).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    let deltas = names.iter().filter(|n| **n == "content_block_delta").count();
    assert!(deltas > 3);
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(std::iter::repeat_n("content_block_delta", deltas));
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    for event in &events {
        assert_eq!(
            event.json()["type"],
            event.name.as_deref().unwrap(),
            "data.type matches the event name"
        );
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert_eq!(start["message"]["usage"]["input_tokens"], unary["usage"]["input_tokens"]);
    let text: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, unary["content"][0]["text"].as_str().unwrap());
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], unary["usage"]["output_tokens"]);
}

#[tokio::test]
async fn anthropic_tool_use_streams_input_json_deltas() {
    let sim = sim().await;
    let mut body = anthropic_body("fast", "Call the weather tool for Tokyo");
    body["tools"] = json!([{
        "name": "get_weather",
        "description": "Current weather",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] }
    }]);
    let (_, unary) = post_json(&sim, "/v1/messages", &body).await;
    assert_eq!(unary["stop_reason"], "tool_use");
    assert_eq!(unary["content"][0]["type"], "text");
    let tool_use = &unary["content"][1];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({ "city": "Tokyo" }));
    assert!(tool_use["id"].as_str().is_some_and(|id| id.starts_with("toolu_")));

    body["stream"] = json!(true);
    let events = parse_sse(&post(&sim, "/v1/messages", &body).await.text().await.unwrap());
    let block_start = events
        .iter()
        .map(common::Event::json)
        .find(|e| e["type"] == "content_block_start" && e["index"] == 1)
        .unwrap();
    assert_eq!(block_start["content_block"]["type"], "tool_use");
    assert_eq!(block_start["content_block"]["input"], json!({}));
    let partial: String = events
        .iter()
        .map(common::Event::json)
        .filter(|e| e["delta"]["type"] == "input_json_delta")
        .map(|e| e["delta"]["partial_json"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), json!({ "city": "Tokyo" }));
    let message_delta =
        events.iter().map(common::Event::json).find(|e| e["type"] == "message_delta").unwrap();
    assert_eq!(message_delta["delta"]["stop_reason"], "tool_use");

    // The tool result comes back as a user message with a tool_result block.
    let follow_up = json!({
        "model": "fast",
        "max_tokens": 100,
        "messages": [
            { "role": "user", "content": "Call the weather tool for Tokyo" },
            { "role": "assistant", "content": [unary["content"][1].clone()] },
            { "role": "user", "content": [{ "type": "tool_result", "tool_use_id": tool_use["id"], "content": "Tokyo: 30C" }] }
        ]
    });
    let (_, answer) = post_json(&sim, "/v1/messages", &follow_up).await;
    assert_eq!(answer["stop_reason"], "end_turn");
    assert!(answer["content"][0]["text"].as_str().unwrap().contains("Tokyo: 30C"));
}

#[tokio::test]
async fn anthropic_checks_key_version_and_max_tokens() {
    let sim = SimServer::start(SimConfig {
        require_anthropic_version: true,
        ..SimConfig::new().model(SimModel::new("claude-sim").api_key("sk-ant-secret"))
    })
    .await
    .unwrap();
    let url = format!("{}/v1/messages", sim.base_url());
    let body = anthropic_body("claude-sim", "hi");
    let send = |key: Option<&'static str>, version: bool, body: Value| {
        let mut request = client().post(&url).json(&body);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        if version {
            request = request.header("anthropic-version", "2023-06-01");
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, error) = send(Some("sk-ant-secret"), false, body.clone()).await;
    assert_eq!(status, 400);
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    let (status, error) = send(Some("wrong"), true, body.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(error["error"]["type"], "authentication_error");
    let (status, _) = send(None, true, body.clone()).await;
    assert_eq!(status, 401);
    let mut no_max = body.clone();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let (status, error) = send(Some("sk-ant-secret"), true, no_max).await;
    assert_eq!(status, 400);
    assert!(error["error"]["message"].as_str().unwrap().contains("max_tokens"));
    let (status, _) = send(Some("sk-ant-secret"), true, body).await;
    assert_eq!(status, 200);

    let stats = sim.stats().endpoint(Endpoint::AnthropicMessages);
    assert_eq!((stats.requests, stats.rejected, stats.completed), (5, 4, 1));
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 5);
    assert_eq!(recorded[4].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recorded[4].json().unwrap()["model"], "claude-sim");
}

#[tokio::test]
async fn openai_checks_the_bearer_key() {
    let sim =
        SimServer::start(SimConfig::new().model(SimModel::new("gpt-sim").api_key("sk-right")))
            .await
            .unwrap();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let body = openai_body("gpt-sim", "hi");
    let wrong = client().post(&url).bearer_auth("sk-wrong").json(&body).send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key");
    assert!(!error.to_string().contains("sk-wrong"), "the key is not echoed");
    let right = client().post(&url).bearer_auth("sk-right").json(&body).send().await.unwrap();
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn ollama_chat_streams_ndjson_by_default() {
    let sim = sim().await;
    let body = json!({ "model": "fast", "messages": [{ "role": "user", "content": "Why is the sky blue?" }] });
    let response = post(&sim, "/api/chat", &body).await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (last, parts) = lines.split_last().unwrap();
    assert!(parts.len() > 2);
    assert!(parts.iter().all(|p| p["done"] == false && p["model"] == "fast"));
    let streamed: String =
        parts.iter().map(|p| p["message"]["content"].as_str().unwrap()).collect();
    assert!(streamed.starts_with("[fast] "));
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["eval_count"], estimate_tokens(&streamed));
    assert!(last["prompt_eval_count"].as_u64() > Some(0));
    assert!(last["total_duration"].as_u64() > Some(0));
    assert!(last["created_at"].as_str().unwrap().ends_with('Z'));

    let mut unary = body.clone();
    unary["stream"] = json!(false);
    let (status, answer) = post_json(&sim, "/api/chat", &unary).await;
    assert_eq!(status, 200);
    assert_eq!(answer["message"]["content"], streamed.as_str());
    assert_eq!(answer["done"], true);
    assert_eq!(answer["eval_count"], last["eval_count"]);
    assert_eq!(sim.stats().endpoint(Endpoint::OllamaChat).completed, 2);
}

#[tokio::test]
async fn ollama_tool_call_and_num_predict() {
    let sim = sim().await;
    let body = json!({
        "model": "fast",
        "stream": false,
        "messages": [{ "role": "user", "content": "use the tool for Madrid" }],
        "tools": weather_tool(),
    });
    let (_, answer) = post_json(&sim, "/api/chat", &body).await;
    assert_eq!(answer["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(answer["message"]["tool_calls"][0]["function"]["arguments"]["city"], "Madrid");

    let limited = json!({
        "model": "smart",
        "stream": false,
        "options": { "num_predict": 5 },
        "messages": [{ "role": "user", "content": "Explain monads" }],
    });
    let (_, answer) = post_json(&sim, "/api/chat", &limited).await;
    assert_eq!(answer["done_reason"], "length");
    assert!(answer["eval_count"].as_u64() <= Some(5));
}

#[tokio::test]
async fn listings() {
    let sim = sim().await;
    let tags: Value = client()
        .get(format!("{}/api/tags", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        tags["models"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["fast", "smart", "zh", "llama3.1:8b"]);
    let first = &tags["models"][0];
    assert_eq!(first["digest"].as_str().map(str::len), Some(64));
    assert_eq!(first["details"]["format"], "gguf");
    assert!(first["size"].as_u64() > Some(0));

    let version: Value = client()
        .get(format!("{}/api/version", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(version["version"], router_sim::OLLAMA_VERSION);

    let openai: Value = client()
        .get(format!("{}/v1/models", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][1]["id"], "smart");
    let anthropic: Value = client()
        .get(format!("{}/v1/models", sim.base_url()))
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], false);
    assert_eq!(sim.stats().endpoint(Endpoint::Listing).completed, 4);
}

#[tokio::test]
async fn unknown_models_get_each_providers_404() {
    let sim = sim().await;
    let (status, openai) =
        post_json(&sim, "/v1/chat/completions", &openai_body("nope", "hi")).await;
    assert_eq!(status, 404);
    assert_eq!(openai["error"]["code"], "model_not_found");
    assert_eq!(openai["error"]["type"], "invalid_request_error");

    let (status, anthropic) = post_json(&sim, "/v1/messages", &anthropic_body("nope", "hi")).await;
    assert_eq!(status, 404);
    assert_eq!(
        anthropic,
        json!({ "type": "error", "error": { "type": "not_found_error", "message": "model: nope" } })
    );

    let body = json!({ "model": "nope", "messages": [{ "role": "user", "content": "hi" }] });
    let (status, ollama) = post_json(&sim, "/api/chat", &body).await;
    assert_eq!(status, 404);
    assert_eq!(ollama, json!({ "error": "model \"nope\" not found, try pulling it first" }));

    assert_eq!(sim.stats().total().rejected, 3);
    assert!(
        sim.stats().models.values().all(|c| c.requests == 0),
        "unknown models are not attributed"
    );
}

#[tokio::test]
async fn malformed_bodies_are_rejected_in_the_providers_shape() {
    let sim = sim().await;
    let raw = |path: &'static str| {
        let url = format!("{}{path}", sim.base_url());
        async move {
            let response = client()
                .post(url)
                .header("content-type", "application/json")
                .body("{not json")
                .send()
                .await
                .unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, openai) = raw("/v1/chat/completions").await;
    assert_eq!(status, 400);
    assert_eq!(openai["error"]["type"], "invalid_request_error");
    let (status, anthropic) = raw("/v1/messages").await;
    assert_eq!(status, 400);
    assert_eq!(anthropic["error"]["type"], "invalid_request_error");
    let (status, ollama) = raw("/api/chat").await;
    assert_eq!(status, 400);
    assert!(ollama["error"].is_string());
    let (status, _) = post_json(&sim, "/v1/chat/completions", &json!({ "model": "fast" })).await;
    assert_eq!(status, 400);
    assert_eq!(sim.stats().total().rejected, 4);
}

#[tokio::test]
async fn request_recording_keeps_the_last_n() {
    let sim = SimServer::start(SimConfig {
        record_limit: 2,
        ..SimConfig::new().model(SimModel::new("m"))
    })
    .await
    .unwrap();
    for i in 0..3 {
        post(&sim, "/v1/chat/completions", &openai_body("m", &format!("question {i}"))).await;
    }
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].json().unwrap()["messages"][0]["content"], "question 1");
    assert_eq!(recorded[1].path, "/v1/chat/completions");
    assert_eq!(recorded[1].endpoint, Endpoint::OpenAiChat);
    sim.clear_requests();
    assert!(sim.requests().is_empty());
}
