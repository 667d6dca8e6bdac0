//! The fake Ollama judge: request validation, schema-conforming answers and scripted
//! failures.

mod common;

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use common::{judge_body, post_json, sim};
use router_sim::{Endpoint, JudgeBehavior, JudgeConfig, JudgeReply, SimConfig, SimServer};
use serde_json::{Value, json};

/// A change that makes a valid judge call invalid.
type Mutation = Box<dyn Fn(&mut Value)>;

fn content(answer: &Value) -> String {
    answer["message"]["content"].as_str().expect("content is a string").to_owned()
}

#[tokio::test]
async fn valid_judge_call_gets_a_schema_conforming_answer() {
    let sim = sim().await;
    let (status, answer) = post_json(&sim, "/api/chat", &judge_body()).await;
    assert_eq!(status, 200);
    assert_eq!(answer["model"], "llama3.1:8b");
    assert_eq!(answer["done"], true);
    assert_eq!(answer["done_reason"], "stop");
    assert_eq!(answer["message"]["role"], "assistant");
    assert!(answer["prompt_eval_count"].as_u64() > Some(0));
    assert!(answer["eval_count"].as_u64() > Some(0));
    for field in ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"] {
        assert!(answer[field].is_u64(), "{field}");
    }
    let decision: Value = serde_json::from_str(&content(&answer)).expect("content is JSON");
    assert_eq!(decision["model"], "smart", "first enum value");
    assert_eq!(decision["domain"], "code");
    let confidence = decision["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence));
    assert!(decision["reason"].is_string());

    let recorded = sim.judge_requests();
    assert_eq!(recorded, vec![judge_body()]);
    let counts = sim.stats().endpoint(Endpoint::OllamaJudge);
    assert_eq!((counts.requests, counts.completed, counts.rejected), (1, 1, 0));
    assert_eq!(sim.stats().endpoint(Endpoint::OllamaChat).requests, 0);
    assert_eq!(sim.stats().model("llama3.1:8b").completed, 1);
}

#[tokio::test]
async fn invalid_judge_calls_get_400_in_ollamas_shape() {
    let sim = sim().await;
    let cases: Vec<(&str, Mutation)> = vec![
        ("stream", Box::new(|b| b["stream"] = json!(true))),
        ("stream", Box::new(|b| drop(b.as_object_mut().unwrap().remove("stream")))),
        ("format", Box::new(|b| drop(b.as_object_mut().unwrap().remove("format")))),
        ("format", Box::new(|b| b["format"] = json!("json"))),
        ("temperature", Box::new(|b| drop(b.as_object_mut().unwrap().remove("options")))),
        ("keep_alive", Box::new(|b| b["keep_alive"] = json!("forever"))),
        ("model", Box::new(|b| drop(b.as_object_mut().unwrap().remove("model")))),
        ("messages", Box::new(|b| b["messages"] = json!("hello"))),
    ];
    let count = cases.len() as u64;
    for (word, mutate) in cases {
        let mut body = judge_body();
        mutate(&mut body);
        let (status, error) = post_json(&sim, "/api/chat", &body).await;
        assert_eq!(status, 400, "{body}");
        let message = error["error"].as_str().expect("{\"error\": \"...\"}");
        assert!(message.contains(word), "{message:?} should mention {word}");
        assert_eq!(error.as_object().map(|o| o.len()), Some(1));
    }
    let counts = sim.stats().endpoint(Endpoint::OllamaJudge);
    assert_eq!((counts.requests, counts.rejected, counts.completed), (count, count, 0));
    assert_eq!(sim.judge_requests().len() as u64, count, "invalid calls are recorded too");

    // A format call to a model nobody hosts is a 404, as Ollama answers.
    let mut unknown = judge_body();
    unknown["model"] = json!("llama9");
    let (status, error) = post_json(&sim, "/api/chat", &unknown).await;
    assert_eq!(status, 404);
    assert!(error["error"].as_str().unwrap().contains("not found"));
}

#[tokio::test]
async fn empty_messages_without_format_is_a_preload() {
    let sim = sim().await;
    let (status, answer) =
        post_json(&sim, "/api/chat", &json!({ "model": "llama3.1:8b", "messages": [] })).await;
    assert_eq!(status, 200);
    assert_eq!(answer["done_reason"], "load");
    assert_eq!(answer["message"]["content"], "");
}

#[tokio::test]
async fn scripted_answers() {
    let sim = sim().await;

    sim.set_judge(JudgeBehavior::reply(JudgeReply::Fixed(
        json!({ "model": "fast", "domain": "math", "confidence": 0.3 }),
    )));
    let (_, answer) = post_json(&sim, "/api/chat", &judge_body()).await;
    let fixed: Value = serde_json::from_str(&content(&answer)).unwrap();
    assert_eq!(fixed, json!({ "model": "fast", "domain": "math", "confidence": 0.3 }));

    sim.set_judge(JudgeBehavior::reply(JudgeReply::NotJson));
    let (status, answer) = post_json(&sim, "/api/chat", &judge_body()).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&content(&answer)).is_err());

    sim.set_judge(JudgeBehavior::reply(JudgeReply::ViolatesSchema));
    let (_, answer) = post_json(&sim, "/api/chat", &judge_body()).await;
    let broken: Value = serde_json::from_str(&content(&answer)).expect("still JSON");
    let model_ok = ["smart", "fast"].iter().any(|m| broken["model"] == *m);
    let domain_ok = ["code", "math", "general"].iter().any(|d| broken["domain"] == *d);
    assert!(!(model_ok && domain_ok), "an enum is violated: {broken}");

    sim.set_judge(JudgeBehavior::reply(JudgeReply::HttpError(503)));
    let (status, error) = post_json(&sim, "/api/chat", &judge_body()).await;
    assert_eq!(status, 503);
    assert!(error["error"].is_string());

    sim.set_judge(JudgeBehavior::default().delayed(Duration::from_millis(150)));
    let started = Instant::now();
    let (status, _) = post_json(&sim, "/api/chat", &judge_body()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let counts = sim.stats().endpoint(Endpoint::OllamaJudge);
    assert_eq!((counts.requests, counts.injected, counts.completed), (5, 3, 4));
}

#[tokio::test]
async fn hanging_judge_is_cancelled_by_the_callers_budget() {
    let sim = sim().await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let budget = reqwest::Client::builder().timeout(Duration::from_millis(150)).build().unwrap();
    let result =
        budget.post(format!("{}/api/chat", sim.base_url())).json(&judge_body()).send().await;
    assert!(result.is_err_and(|e| e.is_timeout()));
    assert!(
        sim.wait_for(Duration::from_secs(3), |s| s.endpoint(Endpoint::OllamaJudge).cancelled == 1)
            .await
    );

    // Back to answering.
    sim.set_judge(JudgeBehavior::default());
    let (status, _) = post_json(&sim, "/api/chat", &judge_body()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_judge_with_limited_parallelism_queues_the_calls_past_it() {
    let think = Duration::from_millis(150);
    let sim = SimServer::start(
        SimConfig::new().judge(
            JudgeConfig::new("llama3.1:8b")
                .behavior(JudgeBehavior::default().delayed(think))
                .parallel(NonZeroUsize::MIN),
        ),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let body = judge_body();
    let calls = (0..3).map(|_| post_json(&sim, "/api/chat", &body));
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(|(status, _)| *status == 200));
    // One at a time: the last waited for the two before it.
    assert!(started.elapsed() >= think * 3, "{:?}", started.elapsed());
    let counts = sim.stats().endpoint(Endpoint::OllamaJudge);
    assert_eq!((counts.completed, counts.peak_in_flight), (3, 3), "queued calls are in flight");
}
