//! Failure injection, timing, cancellation and dying hosts, observed through real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{anthropic_body, client, openai_body, parse_sse, post, post_json};
use router_sim::{
    Behavior, Endpoint, Fault, FaultPlan, Latency, Probability, RefusedPort, SimConfig, SimModel,
    SimServer, StreamBreak, Style,
};
use serde_json::json;

async fn one_model(model: SimModel) -> SimServer {
    SimServer::start(SimConfig::new().model(model)).await.unwrap()
}

async fn statuses(sim: &SimServer, n: usize) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let response = post(sim, "/v1/chat/completions", &openai_body("m", &format!("q{i}"))).await;
        out.push(response.status().as_u16());
    }
    out
}

#[tokio::test]
async fn seeded_failure_rate_is_deterministic() {
    let plan = FaultPlan::rate(Probability::new(0.5).unwrap(), 42, Fault::ServerError);
    let sim = one_model(SimModel::new("m").fault(plan)).await;
    let first = statuses(&sim, 24).await;
    let failures = first.iter().filter(|&&s| s == 500).count();
    assert!((4..=20).contains(&failures), "{first:?}");
    assert!(first.iter().all(|&s| s == 200 || s == 500));

    // Installing the same plan again replays the same sequence.
    sim.set_behavior("m", Behavior { fault: Some(plan), ..Behavior::default() }).unwrap();
    assert_eq!(statuses(&sim, 24).await, first);

    // Another server with the same seed agrees; another seed does not.
    let twin = one_model(SimModel::new("m").fault(plan)).await;
    assert_eq!(statuses(&twin, 24).await, first);
    let other = FaultPlan::rate(Probability::new(0.5).unwrap(), 43, Fault::ServerError);
    sim.set_behavior("m", Behavior { fault: Some(other), ..Behavior::default() }).unwrap();
    assert_ne!(statuses(&sim, 24).await, first);

    let stats = sim.stats().model("m");
    assert_eq!(stats.requests, 72);
    assert_eq!(stats.injected + stats.completed, 72);
}

#[tokio::test]
async fn fail_then_recover_at_run_time() {
    let sim = one_model(SimModel::new("m")).await;
    assert_eq!(statuses(&sim, 1).await, [200]);
    sim.update_behavior("m", |b| b.fault = Some(FaultPlan::always(Fault::ServerError))).unwrap();
    let (status, body) = post_json(&sim, "/v1/chat/completions", &openai_body("m", "x")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "server_error");
    sim.update_behavior("m", |b| b.fault = None).unwrap();
    assert_eq!(statuses(&sim, 2).await, [200, 200]);

    sim.set_behavior(
        "m",
        Behavior { fault: Some(FaultPlan::first(2, Fault::Overloaded)), ..Behavior::default() },
    )
    .unwrap();
    assert_eq!(statuses(&sim, 4).await, [503, 503, 200, 200]);
    assert!(sim.set_behavior("missing", Behavior::default()).is_err());
    assert_eq!(sim.behavior("m").unwrap().fault, Some(FaultPlan::first(2, Fault::Overloaded)));
    assert_eq!(sim.stats().model("m").injected, 3);
}

#[tokio::test]
async fn error_faults_use_each_providers_shape() {
    let sim = one_model(SimModel::new("m")).await;
    let set = |fault| {
        sim.set_behavior(
            "m",
            Behavior { fault: Some(FaultPlan::always(fault)), ..Behavior::default() },
        )
        .unwrap()
    };

    set(Fault::RateLimited { retry_after: Duration::from_millis(1500) });
    let response = post(&sim, "/v1/chat/completions", &openai_body("m", "x")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(response.headers()["retry-after-ms"], "1500");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, body) = post_json(&sim, "/v1/messages", &anthropic_body("m", "x")).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["type"], "rate_limit_error");

    set(Fault::Overloaded);
    let (status, body) = post_json(&sim, "/v1/messages", &anthropic_body("m", "x")).await;
    assert_eq!(status, 529);
    assert_eq!(
        body,
        json!({ "type": "error", "error": { "type": "overloaded_error", "message": "Overloaded" } })
    );
    let (status, _) = post_json(&sim, "/v1/chat/completions", &openai_body("m", "x")).await;
    assert_eq!(status, 503);

    set(Fault::ContextLength);
    let (status, body) = post_json(&sim, "/v1/chat/completions", &openai_body("m", "x")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    let (status, body) = post_json(&sim, "/v1/messages", &anthropic_body("m", "x")).await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().starts_with("prompt is too long"));

    set(Fault::Unauthorized);
    let (status, body) = post_json(&sim, "/v1/messages", &anthropic_body("m", "x")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    let ollama =
        json!({ "model": "m", "stream": false, "messages": [{ "role": "user", "content": "x" }] });
    let (status, body) = post_json(&sim, "/api/chat", &ollama).await;
    assert_eq!(status, 401);
    assert!(body["error"].is_string());

    set(Fault::ServerError);
    let (status, body) = post_json(&sim, "/v1/messages", &anthropic_body("m", "x")).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    assert_eq!(sim.stats().total().injected, 9);
}

#[tokio::test]
async fn streams_are_incremental_and_paced() {
    let per_chunk = Duration::from_millis(40);
    let sim = one_model(
        SimModel::new("m")
            .style(Style::Balanced)
            .latency(Latency { first_byte: Duration::ZERO, per_chunk }),
    )
    .await;
    let mut body = openai_body("m", "How do hash maps work?");
    body["stream"] = json!(true);
    let started = Instant::now();
    let mut response = post(&sim, "/v1/chat/completions", &body).await;
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        arrivals.push(started.elapsed());
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let contents = parse_sse(&text)
        .iter()
        .filter(|e| e.data.contains("\"content\":\"") && !e.data.contains("\"content\":\"\""))
        .count();
    assert!(contents >= 10, "{contents}");
    let total = *arrivals.last().unwrap();
    let expected = per_chunk * u32::try_from(contents - 1).unwrap();
    assert!(total >= expected, "took {total:?}, expected at least {expected:?}");
    assert!(
        arrivals[0] < expected / 2,
        "the first chunk came at {:?}, not at the end",
        arrivals[0]
    );
    // Chunks trickle in rather than arriving in one burst.
    assert!(arrivals.len() >= contents / 2, "{} reads for {contents} chunks", arrivals.len());
}

#[tokio::test]
async fn first_byte_latency_delays_the_head() {
    let first_byte = Duration::from_millis(150);
    let sim =
        one_model(SimModel::new("m").latency(Latency { first_byte, per_chunk: Duration::ZERO }))
            .await;
    let started = Instant::now();
    let response = post(&sim, "/v1/chat/completions", &openai_body("m", "x")).await;
    assert!(started.elapsed() >= first_byte);
    assert_eq!(response.status(), 200);
    assert_eq!(Latency::new(Duration::ZERO, 50.0).per_chunk, Duration::from_millis(20));
}

#[tokio::test]
async fn client_dropping_a_stream_is_counted_as_cancelled() {
    let sim = one_model(
        SimModel::new("m")
            .style(Style::Verbose)
            .latency(Latency { first_byte: Duration::ZERO, per_chunk: Duration::from_millis(30) }),
    )
    .await;
    let mut body = anthropic_body("m", "Explain Raft");
    body["stream"] = json!(true);
    let mut response = post(&sim, "/v1/messages", &body).await;
    let mut seen = 0;
    while seen < 3 {
        let chunk = response.chunk().await.unwrap().unwrap();
        seen += chunk.windows(19).filter(|w| w == b"content_block_delta").count();
    }
    assert_eq!(sim.stats().endpoint(Endpoint::AnthropicMessages).in_flight, 1);
    drop(response);
    assert!(
        sim.wait_for(Duration::from_secs(3), |s| s.endpoint(Endpoint::AnthropicMessages).cancelled
            == 1)
            .await,
        "{:?}",
        sim.stats()
    );
    let counts = sim.stats().model("m");
    assert_eq!((counts.cancelled, counts.completed, counts.in_flight), (1, 0, 0));
}

#[tokio::test]
async fn hang_is_cancelled_when_the_client_gives_up() {
    let sim = one_model(SimModel::new("m").fault(FaultPlan::always(Fault::Hang))).await;
    let started = Instant::now();
    let result = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&openai_body("m", "x"))
        .send()
        .await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        sim.wait_for(Duration::from_secs(3), |s| s.model("m").cancelled == 1).await,
        "{:?}",
        sim.stats()
    );
    assert_eq!(sim.stats().model("m").injected, 1);
}

fn breaking(how: StreamBreak) -> SimModel {
    SimModel::new("m")
        .style(Style::Verbose)
        .fault(FaultPlan::always(Fault::BreakStream { after_chunks: 3, how }))
}

#[tokio::test]
async fn disconnect_mid_stream_cuts_the_body() {
    let sim = one_model(breaking(StreamBreak::Disconnect)).await;
    let mut body = openai_body("m", "x");
    body["stream"] = json!(true);
    let mut response = post(&sim, "/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    let error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            Ok(None) => panic!("the body ended cleanly: {text}"),
            Err(error) => break error,
        }
    };
    assert!(error.is_body() || error.is_decode() || error.is_request(), "{error:?}");
    let events = parse_sse(&text);
    assert_eq!(events.len(), 4, "role chunk plus three content chunks: {text}");
    assert!(!text.contains("[DONE]"));

    // A non-streaming answer is cut off the same way (the client may notice while reading
    // the head or the body).
    let cut = client()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&openai_body("m", "x"))
        .send()
        .await;
    match cut {
        Ok(response) => assert!(response.bytes().await.is_err()),
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }
    let stats = sim.stats().model("m");
    assert_eq!((stats.injected, stats.completed, stats.cancelled), (2, 0, 0));
}

#[tokio::test]
async fn malformed_chunk_then_clean_end() {
    let sim = one_model(breaking(StreamBreak::MalformedChunk)).await;
    let mut body = openai_body("m", "x");
    body["stream"] = json!(true);
    let text = post(&sim, "/v1/chat/completions", &body).await.text().await.unwrap();
    let events = parse_sse(&text);
    assert_eq!(events.len(), 5);
    assert!(serde_json::from_str::<serde_json::Value>(&events[4].data).is_err());
    for event in &events[..4] {
        event.json();
    }

    let ollama =
        json!({ "model": "m", "stream": false, "messages": [{ "role": "user", "content": "x" }] });
    let response = post(&sim, "/api/chat", &ollama).await;
    assert_eq!(response.status(), 200);
    assert!(response.json::<serde_json::Value>().await.is_err(), "truncated JSON");
}

#[tokio::test]
async fn anthropic_error_event_mid_stream() {
    let sim = one_model(breaking(StreamBreak::ErrorEvent)).await;
    let mut body = anthropic_body("m", "x");
    body["stream"] = json!(true);
    let events = parse_sse(&post(&sim, "/v1/messages", &body).await.text().await.unwrap());
    let last = events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("error"));
    assert_eq!(last.json()["error"]["type"], "overloaded_error");
    assert_eq!(
        events.iter().filter(|e| e.name.as_deref() == Some("content_block_delta")).count(),
        3
    );
    assert!(!events.iter().any(|e| e.name.as_deref() == Some("message_stop")));

    let ollama = json!({ "model": "m", "messages": [{ "role": "user", "content": "x" }] });
    let text = post(&sim, "/api/chat", &ollama).await.text().await.unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["error"].is_string());
}

#[tokio::test]
async fn stalled_stream_holds_until_the_client_leaves() {
    let sim = one_model(breaking(StreamBreak::Stall)).await;
    let mut body = openai_body("m", "x");
    body["stream"] = json!(true);
    let mut response = post(&sim, "/v1/chat/completions", &body).await;
    let mut text = String::new();
    let stalled = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(chunk) = response.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await;
    assert!(stalled.is_err(), "the stream ended: {text}");
    assert_eq!(parse_sse(&text).len(), 4);
    drop(response);
    assert!(sim.wait_for(Duration::from_secs(3), |s| s.model("m").cancelled == 1).await);
}

#[tokio::test]
async fn kill_drops_connections_and_refuses_new_ones_then_restarts() {
    let sim = one_model(
        SimModel::new("m")
            .style(Style::Verbose)
            .latency(Latency { first_byte: Duration::ZERO, per_chunk: Duration::from_millis(50) }),
    )
    .await;
    let addr = sim.addr();
    let mut body = openai_body("m", "x");
    body["stream"] = json!(true);
    let mut response = post(&sim, "/v1/chat/completions", &body).await;
    response.chunk().await.unwrap().unwrap();
    sim.kill();
    let cut = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match response.chunk().await {
                Ok(Some(_)) => continue,
                Ok(None) => return false,
                Err(_) => return true,
            }
        }
    })
    .await;
    assert_eq!(cut, Ok(true), "the open stream is cut off");
    let refused = client()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&openai_body("m", "x"))
        .send()
        .await;
    assert!(refused.is_err_and(|e| e.is_connect()));
    assert!(sim.wait_for(Duration::from_secs(3), |s| s.model("m").cancelled == 1).await);
    sim.shutdown().await;

    // The port can be taken again, e.g. to bring a provider back.
    let again =
        SimServer::start(SimConfig::new().addr(addr).model(SimModel::new("m"))).await.unwrap();
    assert_eq!(post(&again, "/v1/chat/completions", &openai_body("m", "x")).await.status(), 200);
}

#[tokio::test]
async fn refused_port_refuses() {
    let port = RefusedPort::new().unwrap();
    let result = client().get(format!("{}/api/version", port.base_url())).send().await;
    assert!(result.is_err_and(|e| e.is_connect()));
    assert!(
        SimServer::start(SimConfig::new().addr(port.addr())).await.is_err(),
        "the port stays reserved"
    );
}

#[tokio::test]
async fn config_is_validated() {
    let twice = SimConfig::new().model(SimModel::new("a")).model(SimModel::new("a"));
    assert!(SimServer::start(twice).await.is_err());
    assert!(Probability::new(1.5).is_err());
    assert!(Probability::new(f64::NAN).is_err());
}

/// Many concurrent requests on one runtime thread: prints the rate, asserts every answer.
#[tokio::test]
async fn serves_concurrent_load() {
    let sim = one_model(SimModel::new("m")).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", sim.base_url());
    let workers = 32;
    let total = workers * 64;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client, url) = (client.clone(), url.clone());
        tasks.spawn(async move {
            let mut ok = 0;
            for i in 0..total / workers {
                let body = openai_body("m", &format!("question {w} {i}"));
                let response = client.post(&url).json(&body).send().await.unwrap();
                ok += usize::from(response.status() == 200 && response.bytes().await.is_ok());
            }
            ok
        });
    }
    let ok: usize = tasks.join_all().await.into_iter().sum();
    let elapsed = started.elapsed();
    assert_eq!(ok, total);
    assert_eq!(sim.stats().model("m").completed, total as u64);
    println!(
        "{total} requests in {elapsed:?}: {:.0} req/s (client and server on one thread)",
        total as f64 / elapsed.as_secs_f64()
    );
}
