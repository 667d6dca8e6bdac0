//! Routing end to end: the policy learns from feedback and outcomes, keeps what it learned
//! across a restart, and the routing API validates what it is given.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::{TestGateway, start};
use router_gateway::Config;
use router_sim::{Fault, FaultPlan, SimConfig, SimModel, SimServer, Style};
use serde_json::{Value, json};

const CODE: [&str; 4] = [
    "Write a Python function that merges two sorted lists",
    "Fix this Rust compile error: borrowed value does not live long enough",
    "Implement a binary search in JavaScript",
    "Write a SQL query that returns the top 5 customers by revenue",
];
const ZH_WRITING: [&str; 4] = [
    "写一首关于秋天的诗",
    "帮我写一篇关于家乡的散文，要有画面感",
    "以“雨夜”为题写一个短篇故事",
    "请为我的咖啡店写一段温暖的广告文案",
];

fn config(base: &str) -> String {
    // Circuits are made lenient so that what moves traffic here is learning alone.
    format!(
        "[circuit]\nconsecutive_failures = 1000\nerror_ratio = 1.0\n\n[dispatch]\nretry_backoff_ms = 1\nmax_attempts = 2\n\n\
         [[models]]\nname = \"coder\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}/v1\"\ninput_price = 1.0\noutput_price = 2.0\nfallbacks = [\"writer\"]\n\n\
         [[models]]\nname = \"writer\"\nprovider = \"openai-compatible\"\nbase_url = \"{base}/v1\"\ninput_price = 1.0\noutput_price = 2.0\nfallbacks = [\"coder\"]\n"
    )
}

async fn ask(gw: &TestGateway, text: &str) -> (String, String) {
    let r = gw.chat("auto", text).await;
    assert_eq!(r.status(), 200);
    let model = r.headers()["x-router-model"].to_str().unwrap().to_string();
    let id = r.headers()["x-router-decision-id"].to_str().unwrap().to_string();
    (model, id)
}

async fn rate(gw: &TestGateway, id: &str, score: f64) {
    let r = gw.post("/api/routing/feedback", json!({"decision_id": id, "score": score})).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn decide(gw: &TestGateway, text: &str) -> Value {
    let r = gw.post("/api/routing/analyze", json!({"query": text})).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn feedback_teaches_code_to_one_model_and_chinese_writing_to_the_other() {
    let upstream = SimServer::start(
        SimConfig::new()
            .model(SimModel::new("coder").style(Style::Terse))
            .model(SimModel::new("writer").style(Style::ChineseFirst)),
    )
    .await
    .unwrap();
    let mut gw = start(&config(&upstream.base_url())).await;

    // 240 requests with feedback: the right model gets 0.9, the wrong one 0.2.
    let rounds = 120;
    let mut right_late = 0;
    let mut late = 0;
    for i in 0..rounds {
        for (prompts, best) in [(&CODE, "coder"), (&ZH_WRITING, "writer")] {
            let (model, id) = ask(&gw, prompts[i % prompts.len()]).await;
            rate(&gw, &id, if model == best { 0.9 } else { 0.2 }).await;
            if i >= rounds - 40 {
                late += 1;
                right_late += usize::from(model == best);
            }
        }
    }
    let share = right_late as f64 / late as f64;
    assert!(
        share >= 0.9,
        "after {} requests only {share:.2} of the last {late} went to the right model",
        rounds * 2
    );

    // What the policy learned is visible, and the decision explains itself.
    let d = decide(&gw, CODE[0]).await;
    assert_eq!(d["model"], "coder", "{d}");
    assert_eq!(d["source"], "policy");
    assert!(d["ranking"][0]["estimate"]["evidence"].as_f64().unwrap() > 10.0, "{d}");
    assert!(d["reason"].as_str().unwrap().contains("coder"));
    let stats: Value = gw
        .client
        .get(format!("{}/api/routing/stats", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!stats["learned"].as_array().unwrap().is_empty(), "{stats}");

    // A restart keeps what was learned.
    let store = gw.stop_and_open_store().await;
    assert!(store.get_state("knowledge").await.unwrap().is_some());
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[dashboard]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"{}\"\n\n[routing]\nexploration = 0\n\n{}",
        gw.db_url,
        config(&upstream.base_url())
    );
    let config =
        Config::parse(&text, Path::new("t.toml"), &HashMap::<String, String>::new()).unwrap();
    let running = router_gateway::start(config, std::future::pending()).await.unwrap();
    let again = TestGateway {
        url: running.proxy_url(),
        running: Some(running),
        dir: tempfile::tempdir().unwrap(),
        db_url: gw.db_url.clone(),
        client: gw.client.clone(),
    };
    let d = decide(&again, ZH_WRITING[1]).await;
    assert_eq!(d["model"], "writer", "{d}");
    assert!(d["ranking"][0]["estimate"]["evidence"].as_f64().unwrap() > 10.0, "{d}");
}

#[tokio::test]
async fn a_model_that_starts_failing_loses_its_traffic() {
    let upstream = SimServer::start(
        SimConfig::new().model(SimModel::new("coder")).model(SimModel::new("writer")),
    )
    .await
    .unwrap();
    let gw = start(&config(&upstream.base_url())).await;
    for i in 0..60 {
        let (model, id) = ask(&gw, CODE[i % CODE.len()]).await;
        rate(&gw, &id, if model == "coder" { 0.9 } else { 0.5 }).await;
    }
    assert_eq!(decide(&gw, CODE[0]).await["model"], "coder");

    upstream
        .set_behavior(
            "coder",
            router_sim::Behavior {
                fault: Some(FaultPlan::always(Fault::ServerError)),
                ..Default::default()
            },
        )
        .unwrap();
    let mut answered_by_writer = 0;
    for i in 0..40 {
        let (model, _) = ask(&gw, CODE[i % CODE.len()]).await;
        answered_by_writer += usize::from(model == "writer");
    }
    assert_eq!(answered_by_writer, 40, "failover kept every request answered");
    let d = decide(&gw, CODE[1]).await;
    assert_eq!(d["model"], "writer", "the failing model should have lost the traffic: {d}");
}

#[tokio::test]
async fn feedback_is_validated_and_replaces_earlier_feedback() {
    let upstream = SimServer::start(
        SimConfig::new().model(SimModel::new("coder")).model(SimModel::new("writer")),
    )
    .await
    .unwrap();
    let mut gw = start(&config(&upstream.base_url())).await;
    let (_, id) = ask(&gw, "hello there").await;

    let r =
        gw.post("/api/routing/feedback", json!({"decision_id": "0000-nope", "rating": 5})).await;
    assert_eq!(r.status(), 404);
    for bad in [
        json!({"decision_id": id, "rating": 6}),
        json!({"decision_id": id, "rating": 0}),
        json!({"decision_id": id, "score": 1.5}),
        json!({"decision_id": id}),
        json!({"decision_id": id, "rating": 2.5}),
        json!({"decision_id": id, "rating": 3, "score": 0.5}),
    ] {
        let r = gw.post("/api/routing/feedback", bad.clone()).await;
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().len() > 10);
    }
    let r: Value = gw
        .post("/api/routing/feedback", json!({"decision_id": id, "rating": 2, "comment": "meh"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["replaced"], false);
    let r: Value = gw
        .post("/api/routing/feedback", json!({"decision_id": id, "rating": 5}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["replaced"], true);
    assert_eq!(r["score"], 1.0);

    let store = gw.stop_and_open_store().await;
    let view = store.decision(&id).await.unwrap().unwrap();
    assert_eq!(view.feedback.unwrap().rating.unwrap().get(), 5);
    assert_eq!(store.counts().await.unwrap().feedback, 1);
}

#[tokio::test]
async fn analyze_validates_its_input_and_calls_no_model() {
    let upstream = SimServer::start(
        SimConfig::new().model(SimModel::new("coder")).model(SimModel::new("writer")),
    )
    .await
    .unwrap();
    let gw = start(&config(&upstream.base_url())).await;
    let d = gw.post("/api/routing/analyze", json!({"messages": [{"role": "user", "content": "用 Python 写一个快速排序"}], "profile": "cost"})).await;
    assert_eq!(d.status(), 200);
    let d: Value = d.json().await.unwrap();
    assert_eq!(d["profile"], "cost");
    assert_eq!(d["features"]["language"]["primary"], "zh", "{d}");
    assert_eq!(d["ranking"].as_array().unwrap().len(), 2);
    // The decision's work, without the time its thread may have spent switched out, is at
    // most its wall time, give or take the few steps between the two clocks' readings (and a
    // virtual machine's host may stall the thread in those): a thread's whole CPU time, or a
    // figure in the wrong unit, would be far larger.
    let wall = d["decision_us"].as_u64().unwrap();
    let cpu = d["decision_cpu_us"].as_u64().expect("a thread CPU clock on this platform");
    assert!(cpu <= wall + 1_000, "CPU {cpu} µs against wall {wall} µs: {d}");
    for bad in [
        json!({}),
        json!({"query": ""}),
        json!({"query": "x", "messages": []}),
        json!({"query": "x", "profile": "nonsense"}),
    ] {
        assert_eq!(gw.post("/api/routing/analyze", bad.clone()).await.status(), 400, "{bad}");
    }
    assert_eq!(upstream.stats().total().requests, 0);
}

#[tokio::test]
async fn the_judge_decides_auto_requests_and_the_policy_takes_over_when_it_fails() {
    use router_sim::{JudgeBehavior, JudgeConfig, JudgeReply};
    let upstream = SimServer::start(
        SimConfig::new().model(SimModel::new("coder")).model(SimModel::new("writer")).judge(
            JudgeConfig::new("llama3").behavior(JudgeBehavior::reply(JudgeReply::Fixed(
                json!({"model": "writer", "domain": "code", "reason": "writer explains code well"}),
            ))),
        ),
    )
    .await
    .unwrap();
    let base = upstream.base_url();
    let gw = start(&format!(
        "[judge]\nmode = \"always\"\nurl = \"{base}\"\nmodel = \"llama3\"\ntimeout_ms = 400\n\n{}",
        config(&base)
    ))
    .await;
    // The judge overrides the policy, and the answer comes from its choice.
    let d = decide(&gw, CODE[2]).await;
    assert_eq!(d["source"], "judge", "{d}");
    assert_eq!(d["model"], "writer");
    assert!(d["reason"].as_str().unwrap().contains("writer explains code well"), "{d}");
    let (model, _) = ask(&gw, CODE[3]).await;
    assert_eq!(model, "writer");
    let judged = upstream.judge_requests().len();
    assert!(judged >= 2, "the judge was asked: {judged}");
    // The same query again is answered from the judge cache.
    let _ = decide(&gw, CODE[2]).await;
    assert_eq!(upstream.judge_requests().len(), judged, "a cache hit must not call the judge");

    // A judge that hangs: the policy decides within the budget.
    upstream.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let started = std::time::Instant::now();
    let d = decide(&gw, "a question the judge has not seen before").await;
    assert!(
        started.elapsed() < std::time::Duration::from_millis(400 + 600),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(d["source"], "policy", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("judge"), "{d}");

    // Operators see the judge in the metrics.
    let metrics =
        gw.client.get(format!("{}/metrics", gw.url)).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
    };
    // Two questions answered and one given up on; the cache hit and the start-up warm-up
    // are not questions.
    assert_eq!(value("llm_router_judge_calls_total"), 3.0);
    assert_eq!(value("llm_router_judge_failures_total"), 1.0);
    assert_eq!(value("llm_router_judge_busy_total"), 0.0);
    assert_eq!(value("llm_router_judge_in_flight"), 0.0, "the hanging call was given up");
}

/// A gateway on an existing store (to run replicas side by side, or to restart).
async fn start_on(db_url: &str, body: &str) -> TestGateway {
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[dashboard]\nenabled = false\n\n[store]\nurl = \"{db_url}\"\nflush_ms = 5\n\n{body}"
    );
    let config =
        Config::parse(&text, Path::new("t.toml"), &HashMap::<String, String>::new()).unwrap();
    let running = router_gateway::start(config, std::future::pending()).await.unwrap();
    TestGateway {
        url: running.proxy_url(),
        running: Some(running),
        dir: tempfile::tempdir().unwrap(),
        db_url: db_url.to_string(),
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn replicas_sharing_a_store_learn_from_each_other() {
    let upstream = SimServer::start(
        SimConfig::new().model(SimModel::new("coder")).model(SimModel::new("writer")),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db_url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let body = format!(
        "[routing]\nsync_interval_ms = 100\nexploration = 0\n\n{}",
        config(&upstream.base_url())
    );
    let a = start_on(&db_url, &body).await;
    let b = start_on(&db_url, &body).await;
    let evidence = |d: &Value, model: &str| {
        d["ranking"].as_array().unwrap().iter().find(|r| r["model"] == model).unwrap()["estimate"]["evidence"].as_f64().unwrap()
    };
    assert_eq!(evidence(&decide(&b, CODE[0]).await, "coder"), 0.0);
    // Only replica A hears the feedback.
    for i in 0..20 {
        let (model, id) = ask(&a, CODE[i % CODE.len()]).await;
        rate(&a, &id, if model == "coder" { 0.95 } else { 0.3 }).await;
    }
    // Within a few sync intervals replica B knows it too.
    let mut learned = 0.0;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        learned = evidence(&decide(&b, CODE[0]).await, "coder");
        if learned > 5.0 {
            break;
        }
    }
    assert!(learned > 5.0, "replica B never heard what A learned: evidence {learned}");
}
