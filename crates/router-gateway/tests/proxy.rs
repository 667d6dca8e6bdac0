//! The proxy end to end: real HTTP from a client, through the gateway, to simulated
//! upstreams in each provider format; streaming, balancing, failover, circuit breaking,
//! cancellation, bad input and recording.

mod common;

use std::time::{Duration, Instant};

use common::{openai_model, start, start_with_env, start_with_grace};
use futures_util::StreamExt;
use router_sim::{
    Endpoint, Fault, FaultPlan, Latency, RefusedPort, SimConfig, SimModel, SimServer, Style,
};
use serde_json::{Value, json};

async fn sim(models: Vec<SimModel>) -> SimServer {
    let mut config = SimConfig::new();
    for m in models {
        config = config.model(m);
    }
    SimServer::start(config).await.unwrap()
}

/// Reads an SSE body to the end; returns the `data:` payloads.
async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_string).collect()
}

fn streamed_text(data: &[String]) -> String {
    data.iter()
        .filter(|d| d.as_str() != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn each_provider_format_answers_streaming_and_not() {
    let upstream = sim(vec![
        SimModel::new("oa").style(Style::Terse),
        SimModel::new("an").style(Style::Terse).api_key("k-anthropic"),
        SimModel::new("ol").style(Style::Terse),
    ])
    .await;
    let base = upstream.base_url();
    let config = format!(
        "{}\n[[models]]\nname = \"an\"\nprovider = \"anthropic\"\nbase_url = \"{base}\"\napi_key_env = \"AN_KEY\"\n\n[[models]]\nname = \"ol\"\nprovider = \"ollama\"\nbase_url = \"{base}\"\n",
        openai_model("oa", &base, "")
    );
    let env = [("AN_KEY".to_string(), "k-anthropic".to_string())].into();
    let gw = start_with_env(&config, env).await;

    for model in ["oa", "an", "ol"] {
        let response = gw.chat(model, "What is the capital of France?").await;
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(response.headers()["x-router-model"], model);
        assert!(response.headers().contains_key("x-router-decision-id"));
        assert!(response.headers().contains_key("x-router-deployment"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        let content = body["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(content.starts_with(&format!("[{model}]")), "{model}: {content}");
        assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0, "{body}");

        let response = gw
            .post(
                "/v1/chat/completions",
                json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                       "messages": [{"role": "user", "content": "What is the capital of France?"}]}),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let data = sse_data(response).await;
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{model}: {data:?}");
        assert!(streamed_text(&data).starts_with(&format!("[{model}]")), "{model}: {data:?}");
        let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
        assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    }
    // The Anthropic-format upstream got the key the way Anthropic wants it.
    let anthropic = upstream.requests().into_iter().find(|r| r.path == "/v1/messages").unwrap();
    assert_eq!(anthropic.header("x-api-key"), Some("k-anthropic"));
    assert!(anthropic.header("anthropic-version").is_some());
}

#[tokio::test]
async fn a_gateway_that_busy_polls_answers_streams_and_records_as_usual() {
    let upstream = sim(vec![SimModel::new("oa").style(Style::Terse)]).await;
    let config = openai_model("oa", &upstream.base_url(), "");
    let mut gw = common::start_with_server("busy_poll_us = 500", &config, Default::default()).await;
    for round in 0..3 {
        let response = gw.chat("auto", "What is the capital of France?").await;
        assert_eq!(response.status(), 200, "round {round}");
        let body: Value = response.json().await.unwrap();
        assert!(body["choices"][0]["message"]["content"].as_str().unwrap().starts_with("[oa]"));
        let response = gw
            .post(
                "/v1/chat/completions",
                json!({"model": "oa", "stream": true,
                       "messages": [{"role": "user", "content": "And of Italy?"}]}),
            )
            .await;
        let data = sse_data(response).await;
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
        // Idle past the polling window between rounds: the threads must wake again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store = gw.stop_and_open_store().await;
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (6, 6), "{counts:?}");
}

#[tokio::test]
async fn weights_split_traffic_between_deployments() {
    let a = sim(vec![SimModel::new("m")]).await;
    let b = sim(vec![SimModel::new("m")]).await;
    let config = format!(
        "[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"a\"\nweight = 3\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"b\"\nweight = 1\n",
        a.base_url(),
        b.base_url()
    );
    let gw = start(&config).await;
    let n = 400;
    let mut on_a = 0;
    for i in 0..n {
        let r = gw.chat("m", &format!("hello {i}")).await;
        assert_eq!(r.status(), 200);
        if r.headers()["x-router-deployment"] == "a" {
            on_a += 1;
        }
    }
    let share = f64::from(on_a) / f64::from(n);
    // Expected 0.75; a binomial with n = 400 has σ ≈ 0.022, so ±0.07 is over 3σ.
    assert!((share - 0.75).abs() < 0.07, "share on the weight-3 deployment: {share}");
    assert_eq!(
        a.stats().endpoint(Endpoint::OpenAiChat).requests
            + b.stats().endpoint(Endpoint::OpenAiChat).requests,
        n as u64
    );
}

/// A model with a failing deployment and a healthy one: clients see no error.
async fn failover_case(bad: &str, extra_config: &str) {
    let good = sim(vec![SimModel::new("m")]).await;
    let config = format!(
        "[dispatch]\nretry_backoff_ms = 1\nfirst_byte_timeout_ms = 300\ntotal_timeout_ms = 2000\n{extra_config}\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{bad}/v1\"\ndeployment = \"bad\"\nweight = 100\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"good\"\nweight = 1\n",
        good.base_url()
    );
    let gw = start(&config).await;
    for stream in [false, true] {
        for i in 0..6 {
            let r = gw
                .post("/v1/chat/completions", json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": format!("q{i}")}]}))
                .await;
            assert_eq!(r.status(), 200, "request {i} (stream {stream}) failed");
            assert_eq!(r.headers()["x-router-deployment"], "good");
            let text = r.text().await.unwrap();
            assert!(text.contains("[m]"), "{text}");
        }
    }
}

#[tokio::test]
async fn failover_on_server_error() {
    let bad = sim(vec![SimModel::new("m").fault(FaultPlan::always(Fault::ServerError))]).await;
    failover_case(&bad.base_url(), "").await;
}

#[tokio::test]
async fn failover_on_rate_limit() {
    let bad =
        sim(vec![SimModel::new("m").fault(FaultPlan::always(Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        }))])
        .await;
    failover_case(&bad.base_url(), "").await;
}

#[tokio::test]
async fn failover_on_timeout() {
    let bad = sim(vec![SimModel::new("m").fault(FaultPlan::always(Fault::Hang))]).await;
    failover_case(&bad.base_url(), "").await;
}

#[tokio::test]
async fn failover_on_refused_connection() {
    let refused = RefusedPort::new().unwrap();
    failover_case(&refused.base_url(), "").await;
}

#[tokio::test]
async fn failover_to_the_fallback_model() {
    let upstream = sim(vec![
        SimModel::new("down").fault(FaultPlan::always(Fault::ServerError)),
        SimModel::new("backup"),
    ])
    .await;
    let base = upstream.base_url();
    let config = format!(
        "[dispatch]\nretry_backoff_ms = 1\n\n{}{}",
        openai_model("down", &base, "fallbacks = [\"backup\"]"),
        openai_model("backup", &base, "")
    );
    let gw = start(&config).await;
    let r = gw.chat("down", "hello").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-router-model"], "backup");
}

#[tokio::test]
async fn circuit_opens_and_recovers() {
    let upstream = sim(vec![SimModel::new("m").fault(FaultPlan::always(Fault::ServerError))]).await;
    let backup = sim(vec![SimModel::new("m")]).await;
    let config = format!(
        "[dispatch]\nretry_backoff_ms = 1\nmax_attempts = 2\n\n[circuit]\nconsecutive_failures = 3\ncooldown_ms = 400\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"flaky\"\nweight = 100\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"steady\"\nweight = 1\n",
        upstream.base_url(),
        backup.base_url()
    );
    let gw = start(&config).await;
    for _ in 0..20 {
        assert_eq!(gw.chat("m", "hi").await.status(), 200);
    }
    // Three failures opened the circuit; the other 17 requests did not touch the deployment.
    let flaky_calls = upstream.stats().endpoint(Endpoint::OpenAiChat).requests;
    assert_eq!(
        flaky_calls, 3,
        "a dead deployment costs at most one failure per cooldown after opening"
    );
    let status: Value =
        gw.client.get(format!("{}/models", gw.url)).send().await.unwrap().json().await.unwrap();
    let flaky = &status["models"][0]["deployments"][0];
    assert_eq!(flaky["circuit"], "open", "{status}");

    // It recovers: after the cooldown one probe goes through and, succeeding, closes it.
    upstream.set_behavior("m", router_sim::Behavior::default()).unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..5 {
        assert_eq!(gw.chat("m", "hi").await.status(), 200);
    }
    let status: Value =
        gw.client.get(format!("{}/models", gw.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(status["models"][0]["deployments"][0]["circuit"], "closed", "{status}");
    assert!(upstream.stats().endpoint(Endpoint::OpenAiChat).requests > flaky_calls);
}

#[tokio::test]
async fn streaming_is_not_buffered() {
    // 20 chunks, 100 ms apart: the whole answer takes about two seconds.
    let upstream = sim(vec![
        SimModel::new("slow").style(Style::Verbose).latency(Latency::new(Duration::ZERO, 10.0)),
    ])
    .await;
    let gw = start(&openai_model("slow", &upstream.base_url(), "")).await;
    let started = Instant::now();
    let response = gw
        .post("/v1/chat/completions", json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "Tell me a long story about the sea"}]}))
        .await;
    let mut body = response.bytes_stream();
    let mut first_content = None;
    let mut chunks = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        chunks += 1;
        if first_content.is_none()
            && String::from_utf8_lossy(&chunk).contains("\"content\":\"[slow]")
        {
            first_content = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let first = first_content.expect("a content chunk arrived");
    assert!(chunks > 5, "the body came in {chunks} pieces");
    assert!(total > Duration::from_millis(800), "the upstream was slower than that: {total:?}");
    assert!(first < total / 2, "first content at {first:?} of {total:?}: the stream was held back");
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_call() {
    let upstream = sim(vec![
        SimModel::new("slow").style(Style::Verbose).latency(Latency::new(Duration::ZERO, 5.0)),
    ])
    .await;
    let gw = start(&openai_model("slow", &upstream.base_url(), "")).await;
    let response = gw
        .post("/v1/chat/completions", json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "Write a very long essay"}]}))
        .await;
    let mut body = response.bytes_stream();
    let _ = body.next().await;
    drop(body);
    let cancelled = upstream
        .wait_for(Duration::from_secs(5), |s| s.endpoint(Endpoint::OpenAiChat).cancelled >= 1)
        .await;
    assert!(
        cancelled,
        "the upstream kept generating after the client left: {:?}",
        upstream.stats()
    );
}

#[tokio::test]
async fn a_stream_that_breaks_ends_with_an_error_event() {
    let upstream = sim(vec![SimModel::new("m").style(Style::Verbose).fault(FaultPlan::always(
        Fault::BreakStream { after_chunks: 3, how: router_sim::StreamBreak::Disconnect },
    ))])
    .await;
    let gw = start(&openai_model("m", &upstream.base_url(), "")).await;
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        gw.post("/v1/chat/completions", json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "a long answer please"}]})),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let data = tokio::time::timeout(Duration::from_secs(10), sse_data(response))
        .await
        .expect("the stream ended");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert!(last["error"]["message"].as_str().is_some(), "{data:?}");
}

#[tokio::test]
async fn bad_input_gets_clear_4xx_errors() {
    let upstream = sim(vec![SimModel::new("m")]).await;
    let gw = start(&openai_model("m", &upstream.base_url(), "")).await;
    let url = format!("{}/v1/chat/completions", gw.url);
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
            let status = r.status().as_u16();
            let connection =
                r.headers().get("connection").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body, connection)
        }
    };
    let cases: Vec<(&str, Vec<u8>, &str, u16, &str)> = vec![
        ("malformed JSON", b"{\"model\": \"m\", ".to_vec(), "application/json", 400, ""),
        ("missing messages", br#"{"model": "m"}"#.to_vec(), "application/json", 400, "messages"),
        ("empty messages", br#"{"model": "m", "messages": []}"#.to_vec(), "application/json", 400, "messages"),
        ("messages of the wrong type", br#"{"model": "m", "messages": "hi"}"#.to_vec(), "application/json", 400, "messages"),
        ("unknown model", br#"{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(), "application/json", 404, "model"),
        ("bad profile", br#"{"model": "auto:nonsense", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(), "application/json", 400, "model"),
        ("stream of the wrong type", br#"{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(), "application/json", 400, "stream"),
        ("stream_options without stream", br#"{"model": "m", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(), "application/json", 400, "stream"),
        ("wrong content type", br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#.to_vec(), "text/plain", 400, "Content-Type"),
        ("body over the limit", vec![b' '; 11 * 1024 * 1024], "application/json", 413, "limit"),
    ];
    for (name, body, content_type, status, mentions) in cases {
        let (got, body, connection) = send(body, content_type).await;
        assert_eq!(got, status, "{name}: {body}");
        // An unread body ends the connection, and the client is told so.
        assert_eq!(connection.as_deref() == Some("close"), status == 413, "{name}: {connection:?}");
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no error message in {body}"));
        assert!(
            message.contains(mentions)
                || body["error"]["param"].as_str().is_some_and(|p| p.contains(mentions)),
            "{name}: `{message}` should mention `{mentions}`"
        );
    }
    // The simple API too.
    let r = gw.post("/api/chat", json!({"messages": []})).await;
    assert_eq!(r.status(), 400);
    let r = gw.post("/api/chat", json!({"messages": [{"role": "robot", "content": "x"}]})).await;
    assert_eq!(r.status(), 400);
    // Nothing reached the upstream.
    assert_eq!(upstream.stats().endpoint(Endpoint::OpenAiChat).requests, 0);
}

/// The listener hands a `POST` to either chat path straight to its handler and everything
/// else to the router (`proxy::Front`): both must answer as the router alone would.
#[tokio::test]
async fn the_chat_paths_answer_as_the_router_does() {
    let upstream = sim(vec![SimModel::new("m")]).await;
    let gw = start(&openai_model("m", &upstream.base_url(), "")).await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    // A query string does not change the path.
    let r = gw.post("/v1/chat/completions?trace=1", chat.clone()).await;
    assert_eq!(r.status(), 200);
    let length: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
    assert_eq!(length, r.bytes().await.unwrap().len());
    let messages =
        json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.post("/v1/messages", messages).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("content-length"));
    // Another method on a chat path: the router's 405, with what is allowed.
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let r = gw.client.get(format!("{}{path}", gw.url)).send().await.unwrap();
        assert_eq!(r.status(), 405, "GET {path}");
        assert_eq!(r.headers()["allow"], "POST", "GET {path}");
    }
    // A path that only starts like one: the router's JSON 404.
    let r = gw.post("/v1/chat/completions/", chat).await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("/v1/chat/completions/"), "{body}");
    assert_eq!(upstream.stats().endpoint(Endpoint::OpenAiChat).requests, 2);
}

#[tokio::test]
async fn auto_and_the_simple_api_route_among_healthy_models() {
    let upstream = sim(vec![SimModel::new("a"), SimModel::new("b")]).await;
    let base = upstream.base_url();
    let gw = start(&format!(
        "{}{}",
        openai_model("a", &base, ""),
        openai_model("b", &base, "weight = 0")
    ))
    .await;
    for _ in 0..10 {
        let r =
            gw.post("/api/chat", json!({"messages": [{"role": "user", "content": "hi"}]})).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-router-model"], "a", "a zero weight takes no auto traffic");
        let body: Value = r.json().await.unwrap();
        assert!(body["content"].as_str().unwrap().starts_with("[a]"));
    }
    let models: Value =
        gw.client.get(format!("{}/v1/models", gw.url)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> =
        models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"a") && ids.contains(&"auto") && ids.contains(&"auto:cost"), "{ids:?}");
    let health = gw.client.get(format!("{}/health", gw.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics =
        gw.client.get(format!("{}/metrics", gw.url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("llm_router_requests_total{api=\"simple\",model=\"a\",status=\"ok\"} 10"),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_decisions_and_outcomes_land_in_sqlite() {
    let upstream =
        sim(vec![SimModel::new("m").fault(FaultPlan::first(1, Fault::ServerError))]).await;
    let mut gw = start(&format!(
        "[dispatch]\nretry_backoff_ms = 1\n\n{}",
        openai_model("m", &upstream.base_url(), "")
    ))
    .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = gw.chat("m", &format!("question {i}")).await;
        assert_eq!(r.status(), 200);
        ids.push(r.headers()["x-router-decision-id"].to_str().unwrap().to_string());
    }
    let store = gw.stop_and_open_store().await;
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.requests, 5, "{counts:?}");
    assert_eq!(counts.outcomes, 5, "{counts:?}");
    let first = store.decision(&ids[0]).await.unwrap().unwrap();
    assert_eq!(first.request.chosen_model, "m");
    let outcome = first.outcome.unwrap();
    assert_eq!(outcome.status, router_store::OutcomeStatus::Ok);
    // The first call failed and was retried: the attempt chain shows both.
    assert_eq!(outcome.attempts.len(), 2, "{:?}", outcome.attempts);
    assert_eq!(outcome.attempts[0].error_kind.as_deref(), Some("server_error"));
    assert!(outcome.cost_usd > 0.0);
    // Prompts are stored as a hash by default: the SHA-256 of the text `store_prompts =
    // "full"` would keep, taken by the store's writer.
    let expected: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(b"user: question 0").iter().map(|byte| format!("{byte:02x}")).collect()
    };
    assert_eq!(first.request.prompt, router_store::StoredPrompt::Hash(expected));
}

#[tokio::test]
async fn shutdown_under_load_loses_no_record() {
    let upstream =
        sim(vec![SimModel::new("m").latency(Latency::new(Duration::from_millis(20), 200.0))]).await;
    let mut gw = start(&openai_model("m", &upstream.base_url(), "")).await;
    let client = gw.client.clone();
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut answered = 0u64;
            for i in 0..1000 {
                let stream = i % 2 == 0;
                let r = client
                    .post(&url)
                    .json(&json!({"model": "m", "stream": stream, "messages": [{"role": "user", "content": format!("w{worker} q{i}")}]}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        if r.text().await.is_ok() {
                            answered += 1;
                        }
                    }
                    _ => break,
                }
            }
            answered
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let store = gw.stop_and_open_store().await;
    let mut answered = 0;
    for t in tasks {
        answered += t.await.unwrap();
    }
    let counts = store.counts().await.unwrap();
    assert!(answered > 20, "the load did run: {answered}");
    assert!(
        counts.outcomes >= answered,
        "{answered} answered, {} outcomes recorded",
        counts.outcomes
    );
    assert_eq!(
        counts.requests, counts.outcomes,
        "every recorded request has its outcome: {counts:?}"
    );
}

#[tokio::test]
async fn a_stream_still_running_after_the_grace_period_is_cut_and_recorded() {
    // 40 chunks, 200 ms apart: eight seconds, far past a 300 ms grace period.
    let upstream = sim(vec![
        SimModel::new("slow").style(Style::Verbose).latency(Latency::new(Duration::ZERO, 5.0)),
    ])
    .await;
    let mut gw =
        start_with_grace(&openai_model("slow", &upstream.base_url(), ""), Default::default(), 300)
            .await;
    let response = gw
        .post("/v1/chat/completions", json!({"model": "slow", "stream": true, "messages": [{"role": "user", "content": "a very long story"}]}))
        .await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let _ = body.next().await;
    let started = Instant::now();
    let report = gw.running.take().unwrap().shutdown().await;
    assert!(report.forced, "the stream outlived the grace period");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(report.writer.dropped, 0);
    // The client sees the stream end, not hang.
    let rest = tokio::time::timeout(Duration::from_secs(5), async {
        while body.next().await.is_some() {}
    })
    .await;
    assert!(rest.is_ok(), "the cut stream ended for the client");
    let store = router_store::Store::connect(&gw.db_url).await.unwrap();
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.requests, counts.outcomes), (1, 1), "{counts:?}");
    let decisions = store.recent_decisions(&Default::default(), 10).await.unwrap();
    assert_eq!(
        decisions[0].outcome.as_ref().unwrap().status,
        router_store::OutcomeStatus::Cancelled
    );
}

#[tokio::test]
async fn a_resting_deployment_tells_clients_when_to_come_back() {
    let upstream =
        sim(vec![SimModel::new("m").fault(FaultPlan::always(Fault::RateLimited {
            retry_after: Duration::from_secs(30),
        }))])
        .await;
    let gw = start(&openai_model("m", &upstream.base_url(), "")).await;
    let first = gw.chat("m", "hi").await;
    assert_eq!(first.status(), 429, "the upstream's rate limit is passed on");
    // The deployment now rests for the upstream's 30 s: the next request is refused at once,
    // with a Retry-After the SDKs honour.
    let second = gw.chat("m", "hi again").await;
    assert_eq!(second.status(), 503);
    let after: u64 = second.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((25..=30).contains(&after), "retry-after {after}");
    assert_eq!(upstream.stats().endpoint(Endpoint::OpenAiChat).requests, 1);
}
