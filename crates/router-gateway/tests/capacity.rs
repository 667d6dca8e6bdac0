//! In-flight limits end to end: a deployment with `max_in_flight` never has more calls at
//! its upstream than that, a busy deployment overflows to its siblings and fallbacks, the
//! rest wait their turn, and a request that waits too long is told to come back.

mod common;

use std::time::{Duration, Instant};

use common::{TestGateway, openai_model, start};
use futures_util::StreamExt;
use futures_util::future::join_all;
use router_sim::{Latency, SimConfig, SimModel, SimServer, Style};
use serde_json::{Value, json};

async fn sim(model: SimModel) -> SimServer {
    SimServer::start(SimConfig::new().model(model)).await.unwrap()
}

/// A model that takes `ms` before it answers.
fn slow(name: &str, ms: u64) -> SimModel {
    SimModel::new(name).latency(Latency::new(Duration::from_millis(ms), 0.0))
}

fn body(model: &str, stream: bool, i: usize) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": format!("question {i}")}]})
}

async fn deployment_status(gw: &TestGateway, id: &str) -> Value {
    let status: Value =
        gw.client.get(format!("{}/models", gw.url)).send().await.unwrap().json().await.unwrap();
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["deployments"].as_array().unwrap().clone())
        .find(|d| d["id"] == id)
        .unwrap_or_else(|| panic!("no deployment {id} in {status}"))
}

#[tokio::test]
async fn a_deployment_never_has_more_calls_in_flight_than_its_limit() {
    let upstream = sim(slow("m", 100)).await;
    let gw = start(&openai_model("m", &upstream.base_url(), "max_in_flight = 2")).await;
    let started = Instant::now();
    let answers = join_all((0..8).map(|i| {
        let gw = &gw;
        async move {
            let r = gw.post("/v1/chat/completions", body("m", i % 2 == 1, i)).await;
            (r.status(), r.text().await.unwrap())
        }
    }))
    .await;
    for (status, text) in &answers {
        assert_eq!(*status, 200, "{text}");
        assert!(text.contains("[m]"), "{text}");
    }
    let counts = upstream.stats().model("m");
    assert_eq!(counts.requests, 8);
    assert_eq!(counts.peak_in_flight, 2, "the upstream saw more calls at once than allowed");
    // Four turns of two calls, each at least 100 ms: the rest waited rather than piled on.
    assert!(started.elapsed() >= Duration::from_millis(400), "{:?}", started.elapsed());

    let status = deployment_status(&gw, "m#1").await;
    assert_eq!(status["max_in_flight"], 2, "{status}");
    assert_eq!(status["in_flight"], 0, "{status}");
    let metrics = gw.client.get(format!("{}/metrics", gw.url)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains("llm_router_in_flight{model=\"m\",deployment=\"m#1\"} 0"),
        "{metrics}"
    );
    assert!(metrics.contains("llm_router_queue_wait_seconds_count"), "{metrics}");
}

#[tokio::test]
async fn a_busy_deployment_overflows_to_its_sibling() {
    let small = sim(slow("m", 300)).await;
    let big = sim(slow("m", 300)).await;
    let config = format!(
        "[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"small\"\nweight = 100\nmax_in_flight = 1\n\n[[models]]\nname = \"m\"\nprovider = \"openai-compatible\"\nbase_url = \"{}/v1\"\ndeployment = \"big\"\nweight = 1\n",
        small.base_url(),
        big.base_url()
    );
    let gw = start(&config).await;
    let deployments = join_all((0..6).map(|i| {
        let gw = &gw;
        async move {
            let r = gw.post("/v1/chat/completions", body("m", false, i)).await;
            assert_eq!(r.status(), 200);
            r.headers()["x-router-deployment"].to_str().unwrap().to_string()
        }
    }))
    .await;
    // The preferred deployment took one call; the others went to its sibling at once
    // instead of queueing behind it.
    assert_eq!(deployments.iter().filter(|d| *d == "small").count(), 1, "{deployments:?}");
    assert_eq!(small.stats().model("m").requests, 1);
    assert_eq!(big.stats().model("m").requests, 5);
}

#[tokio::test]
async fn a_busy_model_overflows_to_its_fallback() {
    let upstream =
        SimServer::start(SimConfig::new().model(slow("local", 400)).model(slow("cloud", 0)))
            .await
            .unwrap();
    let base = upstream.base_url();
    let config = format!(
        "{}{}",
        openai_model("local", &base, "max_in_flight = 1\nfallbacks = [\"cloud\"]"),
        openai_model("cloud", &base, "")
    );
    let gw = start(&config).await;
    let first = gw.chat("local", "the long one");
    let second = async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let r = gw.chat("local", "the next one").await;
        (r, started.elapsed())
    };
    let (first, (second, waited)) = tokio::join!(first, second);
    assert_eq!(first.headers()["x-router-model"], "local");
    assert_eq!(second.status(), 200);
    assert_eq!(second.headers()["x-router-model"], "cloud");
    assert!(waited < Duration::from_millis(300), "it queued instead: {waited:?}");
}

#[tokio::test]
async fn a_request_that_waits_too_long_is_told_to_come_back() {
    // A stream of many slow chunks holds the only slot for seconds.
    let upstream =
        sim(SimModel::new("m").style(Style::Verbose).latency(Latency::new(Duration::ZERO, 10.0)))
            .await;
    let config = format!(
        "[dispatch]\nqueue_timeout_ms = 200\n\n{}",
        openai_model("m", &upstream.base_url(), "max_in_flight = 1")
    );
    let gw = start(&config).await;
    let stream = gw.post("/v1/chat/completions", body("m", true, 0)).await;
    let mut stream = stream.bytes_stream();
    assert!(stream.next().await.is_some(), "the stream started");
    assert_eq!(deployment_status(&gw, "m#1").await["in_flight"], 1);

    let started = Instant::now();
    let refused = gw.chat("m", "anyone there?").await;
    let waited = started.elapsed();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(waited >= Duration::from_millis(200), "it did not wait its turn: {waited:?}");
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "deployments_at_capacity", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("`max_in_flight`") && message.contains("m"), "{message}");

    // Anthropic's clients know an overload as 529.
    let refused = gw
        .post(
            "/v1/messages",
            json!({"model": "m", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(refused.status(), 529);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error", "{error}");

    // The client leaves mid-stream: its slot comes back, and the next request is served.
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(5);
    while deployment_status(&gw, "m#1").await["in_flight"] != 0 {
        assert!(Instant::now() < deadline, "the abandoned stream kept its slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.stats().model("m").peak_in_flight, 1);
    let served = gw.post("/v1/chat/completions", body("m", true, 1)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["x-router-deployment"], "m#1");
}
