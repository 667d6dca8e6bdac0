//! The judge against a fake Ollama (the simulator's, which holds every call to Ollama's
//! documented structured-output shape) and a fake OpenAI-compatible server: verdicts,
//! fallbacks within the budget, caching, hybrid consultation, probing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use router_core::features::Prompt;
use router_core::judge::Mode;
use router_core::policy::{self, Params};
use router_core::{
    Availability, Band, Candidate, Capabilities, Complexity, Decision, Domain, DomainGuess,
    Estimate, FeatureExtractor, Features, Knowledge, Language, LanguageGuess, Needs, Price,
    Profile, RankedCandidate, Source,
};
use router_gateway::config::{JudgeApi, JudgeConfig, JudgeMode};
use router_gateway::judge::{Judge, JudgeCandidateInfo};
use router_sim::{
    Endpoint, JudgeBehavior, JudgeConfig as SimJudge, JudgeReply, RefusedPort, SimConfig, SimServer,
};
use serde_json::{Value, json};

const QUERY: &str = "Prove that the square root of 2 is irrational.";

async fn sim(judge_model: &str) -> SimServer {
    SimServer::start(SimConfig::new().judge(SimJudge::new(judge_model))).await.unwrap()
}

fn http() -> router_providers::HttpClient {
    router_providers::HttpClient::new(Duration::from_secs(2)).unwrap()
}

fn config(url: String, mode: JudgeMode, timeout_ms: u64) -> JudgeConfig {
    JudgeConfig {
        mode,
        api: JudgeApi::Ollama,
        url,
        model: "llama3".into(),
        timeout: Duration::from_millis(timeout_ms),
        keep_alive: "30m".into(),
        cache_size: 100,
        max_in_flight: JudgeConfig::DEFAULT_MAX_IN_FLIGHT,
        api_key: None,
    }
}

fn judge(config: &JudgeConfig) -> Judge {
    Judge::new(config, http())
}

fn features(domain_confidence: f32) -> Features {
    Features {
        language: LanguageGuess { primary: Language::En, secondary: None, confidence: 0.95 },
        domain: DomainGuess {
            domain: Domain::Math,
            confidence: domain_confidence,
            runner_up: None,
        },
        complexity: Complexity { score: 0.6, band: Band::Medium },
        prompt_tokens: 20,
        expected_output_tokens: 400,
        needs: Needs { context_tokens: 4_000, ..Needs::default() },
    }
}

fn ranked(model: &str, utility: f64, evidence: f64) -> RankedCandidate {
    RankedCandidate {
        model: model.into(),
        estimate: Estimate { quality: utility, cost_usd: 0.001, latency_ms: 900.0, evidence },
        utility,
    }
}

/// A decision the policy is sure of: a clear winner with plenty of evidence.
fn certain() -> Decision {
    decision(vec![
        ranked("strong", 0.9, 60.0),
        ranked("cheap", 0.6, 60.0),
        ranked("mid", 0.5, 60.0),
    ])
}

/// A decision the policy is unsure of: the top two are 0.01 apart.
fn close() -> Decision {
    decision(vec![
        ranked("strong", 0.80, 60.0),
        ranked("cheap", 0.79, 60.0),
        ranked("mid", 0.5, 60.0),
    ])
}

fn decision(ranking: Vec<RankedCandidate>) -> Decision {
    Decision {
        model: ranking[0].model.clone(),
        ranking,
        excluded: Vec::new(),
        source: Source::Policy,
        profile: Profile::Balanced,
        reason: "profile balanced: strong expects quality 0.90".into(),
        features: features(0.9),
        decision_us: 0,
    }
}

fn models(decision: &Decision) -> Vec<&str> {
    decision.ranking.iter().map(|r| r.model.as_str()).collect()
}

fn fixed(model: &str, domain: &str) -> JudgeBehavior {
    JudgeBehavior::reply(JudgeReply::Fixed(
        json!({ "model": model, "domain": domain, "reason": "Proofs need the stronger reasoner." }),
    ))
}

#[tokio::test]
async fn the_judge_picks_a_model_and_the_decision_says_so() {
    let sim = sim("llama3").await;
    sim.set_judge(fixed("mid", "math"));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!(d.model, "mid");
    assert_eq!(d.source, Source::Judge);
    assert_eq!(models(&d), vec!["mid", "strong", "cheap"], "failover keeps the policy's order");
    assert!(d.reason.contains("judge chose mid over the policy's strong"), "{}", d.reason);
    assert!(d.reason.contains("Proofs need the stronger reasoner."), "{}", d.reason);

    let status = judge.status();
    assert_eq!((status.consulted, status.calls, status.failures, status.overrides), (1, 1, 0, 1));
    assert_eq!(status.reachable, Some(true));
    assert!(status.last_latency_ms.is_some_and(|ms| ms > 0.0 && ms < 2_000.0));
    assert_eq!(sim.stats().endpoint(Endpoint::OllamaJudge).completed, 1);
}

#[tokio::test]
async fn a_schema_conforming_answer_from_the_sim_is_accepted() {
    let sim = sim("llama3").await;
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    // The sim answers the first value of every enum: the policy's own pick.
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("strong", Source::Judge));
    assert!(d.reason.starts_with("judge agreed on strong"), "{}", d.reason);
    assert_eq!(judge.status().overrides, 0);
}

#[tokio::test]
async fn the_request_has_ollamas_structured_output_shape() {
    let sim = sim("llama3").await;
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    let tags = vec!["math".to_string(), "reasoning".to_string()];
    let infos = [JudgeCandidateInfo {
        name: "strong",
        description: Some("The flagship reasoner."),
        tags: &tags,
        price: Price { input_per_mtok: 3.0, output_per_mtok: 15.0 },
    }];
    judge.decide(&format!("   {QUERY}\n\n"), certain(), &infos).await;

    assert_eq!(sim.stats().endpoint(Endpoint::OllamaJudge).rejected, 0);
    let calls = sim.judge_requests();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call["model"], "llama3");
    assert_eq!(call["stream"], false);
    assert_eq!(call["options"]["temperature"], 0);
    assert!(call["options"]["num_predict"].as_u64().is_some_and(|n| (32..=512).contains(&n)));
    assert_eq!(call["keep_alive"], "30m");
    let format = &call["format"];
    assert_eq!(format["type"], "object");
    assert_eq!(format["properties"]["model"]["enum"], json!(["strong", "cheap", "mid"]));
    let domains = format["properties"]["domain"]["enum"].as_array().unwrap();
    assert_eq!(domains.len(), 8);
    assert!(domains.contains(&json!("math")));
    assert_eq!(format["required"], json!(["domain", "model", "reason"]));

    let messages = call["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["role"], "system");
    assert_eq!(messages[1]["role"], "user");
    let user = messages[1]["content"].as_str().unwrap();
    assert!(user.contains(&format!("<<<\n{QUERY}\n>>>")), "the query is trimmed: {user}");
    assert!(user.contains("1. strong: The flagship reasoner."), "{user}");
    assert!(user.contains("strengths: math, reasoning"), "{user}");
    assert!(user.contains("3. mid"), "{user}");
    assert!(user.contains("domain: math"), "{user}");
}

#[tokio::test]
async fn invalid_answers_leave_the_decision_to_the_policy() {
    let sim = sim("llama3").await;
    let judge =
        judge(&config(sim.base_url(), JudgeMode::Always, 2_000)).with_pause(0, Duration::ZERO);
    let cases = [
        (JudgeBehavior::reply(JudgeReply::NotJson), "not JSON"),
        (JudgeBehavior::reply(JudgeReply::ViolatesSchema), "__not_one_of_the_options__"),
        (fixed("gpt-9", "math"), "`gpt-9`, which is not one of the candidates"),
        (fixed("cheap", "astrology"), "domain `astrology`"),
        (
            JudgeBehavior::reply(JudgeReply::Fixed(
                json!({ "model": "cheap", "domain": "math", "reason": "r", "confidence": 0.9 }),
            )),
            "`confidence`",
        ),
    ];
    let count = cases.len() as u64;
    for (i, (behavior, cause)) in cases.into_iter().enumerate() {
        sim.set_judge(behavior);
        // A new query each time, so no answer comes from the cache.
        let d = judge.decide(&format!("{QUERY} ({i})"), certain(), &[]).await;
        assert_eq!((d.model.as_str(), d.source), ("strong", Source::Policy), "{}", d.reason);
        assert_eq!(models(&d), vec!["strong", "cheap", "mid"]);
        assert!(d.reason.starts_with("profile balanced: strong"), "{}", d.reason);
        assert!(d.reason.contains("; judge unavailable: invalid answer: "), "{}", d.reason);
        assert!(d.reason.contains(cause), "{cause:?} in {}", d.reason);
        assert!(d.reason.ends_with("; policy decided"), "{}", d.reason);
    }
    let status = judge.status();
    assert_eq!((status.calls, status.failures, status.invalid_answers), (count, count, count));
    assert_eq!(status.cache_entries, 0, "invalid answers are not cached");
    assert!(status.last_error.is_some_and(|e| e.contains("invalid answer")));
}

#[tokio::test]
async fn an_http_error_leaves_the_decision_to_the_policy() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::HttpError(503)));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("strong", Source::Policy));
    assert!(
        d.reason.contains("judge unavailable: HTTP 503: judge failed with status 503"),
        "{}",
        d.reason
    );
    assert_eq!(judge.status().failures, 1);

    // The model missing on the server is an error the same way (Ollama's 404).
    let missing = Judge::new(
        &JudgeConfig { model: "llama9".into(), ..config(sim.base_url(), JudgeMode::Always, 2_000) },
        http(),
    );
    let d = missing.decide(QUERY, certain(), &[]).await;
    assert_eq!(d.source, Source::Policy);
    assert!(d.reason.contains("HTTP 404"), "{}", d.reason);
    assert!(d.reason.contains("not found"), "{}", d.reason);
}

#[tokio::test]
async fn a_hanging_judge_falls_back_within_the_budget() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let budget = Duration::from_millis(300);
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 300));
    let started = Instant::now();
    let d = judge.decide(QUERY, certain(), &[]).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= budget, "{elapsed:?}");
    assert!(elapsed < budget + Duration::from_millis(300), "fallback took {elapsed:?}");
    assert_eq!((d.model.as_str(), d.source), ("strong", Source::Policy));
    assert!(
        d.reason.contains("judge unavailable: timeout after 300 ms; policy decided"),
        "{}",
        d.reason
    );
    let status = judge.status();
    assert_eq!((status.timeouts, status.failures), (1, 1));
    assert!(status.mean_latency_ms.is_some_and(|ms| ms >= 300.0));
    // The abandoned call is cancelled on the judge's side too.
    assert!(
        sim.wait_for(Duration::from_secs(2), |s| s.endpoint(Endpoint::OllamaJudge).cancelled == 1)
            .await
    );
}

#[tokio::test]
async fn a_slow_answer_counts_only_if_it_is_inside_the_budget() {
    let sim = sim("llama3").await;
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 400));

    sim.set_judge(fixed("cheap", "math").delayed(Duration::from_millis(100)));
    let d = judge.decide("first question", certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge), "{}", d.reason);

    sim.set_judge(fixed("cheap", "math").delayed(Duration::from_millis(900)));
    let started = Instant::now();
    let d = judge.decide("second question", certain(), &[]).await;
    assert!(started.elapsed() < Duration::from_millis(700), "{:?}", started.elapsed());
    assert_eq!((d.model.as_str(), d.source), ("strong", Source::Policy));
    assert!(d.reason.contains("timeout after 400 ms"), "{}", d.reason);
}

#[tokio::test]
async fn a_cached_answer_skips_the_judge() {
    let sim = sim("llama3").await;
    sim.set_judge(fixed("cheap", "math"));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));

    let first = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!(first.model, "cheap");
    assert_eq!(sim.judge_requests().len(), 1);

    // The same question up to case and spacing, even as the judge changes its mind.
    sim.set_judge(fixed("mid", "math"));
    let again = judge.decide(&format!("  {}  ", QUERY.to_uppercase()), certain(), &[]).await;
    assert_eq!((again.model.as_str(), again.source), ("cheap", Source::Judge));
    assert!(again.reason.ends_with("(cached)"), "{}", again.reason);
    assert_eq!(sim.judge_requests().len(), 1, "the judge was not asked again");

    // Another question, or the same one with other candidates, is asked.
    let other = judge.decide("What is 2 + 2?", certain(), &[]).await;
    assert_eq!(other.model, "mid");
    let mut fewer = certain();
    fewer.ranking.pop();
    sim.set_judge(fixed("cheap", "math"));
    let d = judge.decide(QUERY, fewer, &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge));
    assert!(!d.reason.ends_with("(cached)"));
    assert_eq!(sim.judge_requests().len(), 3);

    let status = judge.status();
    assert_eq!((status.cache_hits, status.cache_misses, status.calls), (1, 3, 3));
    assert_eq!(status.cache_hit_rate, Some(0.25));
    assert_eq!(status.cache_entries, 3);
}

#[tokio::test]
async fn the_cache_is_bounded() {
    let sim = sim("llama3").await;
    let judge =
        judge(&JudgeConfig { cache_size: 2, ..config(sim.base_url(), JudgeMode::Always, 2_000) });
    for q in ["one", "two", "three", "one"] {
        judge.decide(q, certain(), &[]).await;
    }
    // "one" was evicted by "three", so it was asked twice.
    assert_eq!(sim.judge_requests().len(), 4);
    assert_eq!(judge.status().cache_entries, 2);
    judge.decide("three", certain(), &[]).await;
    assert_eq!(sim.judge_requests().len(), 4, "a recent entry is still there");
}

#[tokio::test]
async fn hybrid_asks_only_when_the_policy_is_unsure() {
    let sim = sim("llama3").await;
    sim.set_judge(fixed("cheap", "math"));
    let judge = judge(&config(sim.base_url(), JudgeMode::Hybrid, 2_000));
    assert_eq!(judge.mode(), Mode::Hybrid);

    let sure = certain();
    let d = judge.decide(QUERY, sure.clone(), &[]).await;
    assert_eq!(d, sure, "a sure decision is returned untouched");
    assert!(sim.judge_requests().is_empty());

    let d = judge.decide(QUERY, close(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge));
    assert_eq!(sim.judge_requests().len(), 1);

    let mut thin = certain();
    thin.ranking[0].estimate.evidence = 2.0;
    let d = judge.decide("another question", thin, &[]).await;
    assert_eq!(d.source, Source::Judge);

    let mut vague = certain();
    vague.features.domain.confidence = 0.3;
    let d = judge.decide("a third question", vague, &[]).await;
    assert_eq!(d.source, Source::Judge);
    assert_eq!(sim.judge_requests().len(), 3);

    let status = judge.status();
    assert_eq!((status.skipped, status.consulted), (1, 3));
    let shown = serde_json::to_value(&status).unwrap();
    assert_eq!(shown["mode"], "hybrid");
    assert_eq!(shown["api"], "ollama");
    assert_eq!(shown["cache_hit_rate"], 0.0);
    assert_eq!(shown["model_present"], Value::Null, "not probed yet");
}

#[tokio::test]
async fn off_and_explicit_decisions_never_reach_the_judge() {
    let sim = sim("llama3").await;
    let off = judge(&config(sim.base_url(), JudgeMode::Off, 2_000));
    assert_eq!(off.decide(QUERY, close(), &[]).await, close());
    let always = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    let mut explicit = close();
    explicit.source = Source::Explicit;
    assert_eq!(always.decide(QUERY, explicit.clone(), &[]).await, explicit);
    let single = decision(vec![ranked("only", 0.5, 0.0)]);
    assert_eq!(always.decide(QUERY, single.clone(), &[]).await, single);
    assert!(sim.judge_requests().is_empty());
    assert_eq!(off.status().skipped, 1);
}

#[tokio::test]
async fn probe_reports_whether_the_model_is_there() {
    let sim = sim("llama3:latest").await;
    let present = judge(&config(sim.base_url(), JudgeMode::Hybrid, 2_000));
    assert_eq!((present.status().reachable, present.status().model_present), (None, None));
    let report = present.probe().await;
    assert!(report.reachable && report.model_present, "{report:?}");
    assert_eq!(report.models, vec!["llama3:latest"]);
    assert_eq!(report.error, None);
    let status = present.status();
    assert_eq!((status.reachable, status.model_present), (Some(true), Some(true)));

    let absent = Judge::new(
        &JudgeConfig {
            model: "mistral".into(),
            ..config(sim.base_url(), JudgeMode::Hybrid, 2_000)
        },
        http(),
    );
    let report = absent.probe().await;
    assert!(report.reachable && !report.model_present, "{report:?}");
    assert_eq!(absent.status().model_present, Some(false));
    assert_eq!(sim.stats().endpoint(Endpoint::Listing).requests, 2);
}

#[tokio::test]
async fn an_unreachable_judge_is_reported_and_the_policy_decides() {
    let refused = RefusedPort::new().unwrap();
    let judge = judge(&config(refused.base_url(), JudgeMode::Always, 1_000));
    let report = judge.probe().await;
    assert!(!report.reachable && !report.model_present, "{report:?}");
    assert!(report.error.as_deref().is_some_and(|e| e.contains("cannot connect")), "{report:?}");
    assert_eq!(judge.status().reachable, Some(false));

    let started = Instant::now();
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert!(started.elapsed() < Duration::from_millis(1_000));
    assert_eq!(d.source, Source::Policy);
    assert!(d.reason.contains("judge unavailable: cannot connect to"), "{}", d.reason);
}

#[tokio::test]
async fn a_failing_judge_is_paused_then_asked_again() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::HttpError(500)));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000))
        .with_pause(2, Duration::from_millis(300));
    judge.decide("q1", certain(), &[]).await;
    judge.decide("q2", certain(), &[]).await;
    assert!(judge.status().paused);
    let d = judge.decide("q3", certain(), &[]).await;
    assert_eq!(sim.judge_requests().len(), 2, "a paused judge is not called");
    assert_eq!(d.source, Source::Policy);
    assert!(d.reason.contains("judge unavailable: paused for"), "{}", d.reason);
    assert!(d.reason.contains("HTTP 500"), "the last error is named: {}", d.reason);
    assert_eq!(judge.status().failures, 3);

    sim.set_judge(fixed("cheap", "math"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    let d = judge.decide("q4", certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge));
    assert!(!judge.status().paused);
}

#[tokio::test]
async fn calls_past_max_in_flight_are_decided_by_the_policy_at_once() {
    let sim = sim("llama3").await;
    // Slow enough that the two questions are still out while four more are decided.
    sim.set_judge(fixed("cheap", "math").delayed(Duration::from_millis(1_500)));
    let limit = std::num::NonZeroU32::new(2).unwrap();
    let judge = Arc::new(judge(&JudgeConfig {
        max_in_flight: limit,
        ..config(sim.base_url(), JudgeMode::Always, 5_000)
    }));

    // Two questions take the two places...
    let asked: Vec<_> = (0..2)
        .map(|i| {
            let judge = Arc::clone(&judge);
            tokio::spawn(
                async move { judge.decide(&format!("question {i}"), certain(), &[]).await },
            )
        })
        .collect();
    assert!(
        sim.wait_for(Duration::from_secs(2), |s| s.endpoint(Endpoint::OllamaJudge).in_flight == 2)
            .await
    );
    assert_eq!(judge.status().in_flight, 2);

    // ...and four more, while those are out, do not wait for them.
    for i in 2..6 {
        let d = judge.decide(&format!("question {i}"), certain(), &[]).await;
        assert_eq!((d.model.as_str(), d.source), ("strong", Source::Policy), "{}", d.reason);
        assert!(
            d.reason.contains("judge unavailable: busy: 2 calls already out (judge.max_in_flight)"),
            "{}",
            d.reason
        );
    }
    let status = judge.status();
    assert_eq!(
        (status.in_flight, status.busy, status.failures, status.paused),
        (2, 4, 0, false),
        "being busy is not failing: {status:?}"
    );

    for call in asked {
        let d = call.await.unwrap();
        assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge), "{}", d.reason);
    }
    let status = judge.status();
    assert_eq!((status.in_flight, status.max_in_flight, status.calls), (0, 2, 2));
    assert_eq!(sim.stats().endpoint(Endpoint::OllamaJudge).peak_in_flight, 2);

    // With its places back, the judge is asked again.
    let d = judge.decide("question 6", certain(), &[]).await;
    assert_eq!(d.source, Source::Judge, "{}", d.reason);
}

#[tokio::test]
async fn a_judge_that_cannot_keep_up_is_sent_fewer_questions_until_it_can() {
    // A judge that answers one question at a time, 400 ms each, against a budget of 1.5 s:
    // the fourth question of four sent at once would be answered after 1.6 s.
    let sim = SimServer::start(
        SimConfig::new().judge(
            SimJudge::new("llama3")
                .behavior(fixed("cheap", "math").delayed(Duration::from_millis(400)))
                .parallel(std::num::NonZeroUsize::MIN),
        ),
    )
    .await
    .unwrap();
    let judge = Arc::new(judge(&JudgeConfig {
        max_in_flight: std::num::NonZeroU32::new(4).unwrap(),
        ..config(sim.base_url(), JudgeMode::Always, 1_500)
    }));
    let burst: Vec<_> = (0..4)
        .map(|i| {
            let judge = Arc::clone(&judge);
            tokio::spawn(async move { judge.decide(&format!("burst {i}"), certain(), &[]).await })
        })
        .collect();
    let mut sources = Vec::new();
    for call in burst {
        sources.push(call.await.unwrap().source);
    }
    assert!(sources.contains(&Source::Judge), "the first answers came in time: {sources:?}");
    // The fourth at least timed out (the third too, on a slow machine), and each timeout
    // halved the allowance.
    let status = judge.status();
    assert!((1..=2).contains(&status.timeouts), "{status:?}");
    assert_eq!(status.allowed_in_flight, 4 >> status.timeouts, "{status:?}");
    assert_eq!(status.max_in_flight, 4);
    assert!(!status.paused, "a judge sent too much is not a failing judge: {status:?}");

    // Questions one at a time come back quickly (400 ms, within half the budget): each
    // window of them raises the allowance by one, back to the maximum.
    for i in 0..6 {
        let d = judge.decide(&format!("alone {i}"), certain(), &[]).await;
        assert_eq!(d.source, Source::Judge, "{}", d.reason);
    }
    assert_eq!(judge.status().allowed_in_flight, 4);
}

#[tokio::test]
async fn a_judge_that_times_out_on_questions_of_its_own_is_paused() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 150))
        .with_pause(3, Duration::from_secs(30));
    for i in 0..3 {
        let d = judge.decide(&format!("alone {i}"), certain(), &[]).await;
        assert!(d.reason.contains("timeout after 150 ms"), "{}", d.reason);
    }
    let status = judge.status();
    assert!(status.paused, "{status:?}");
    assert_eq!((status.timeouts, status.allowed_in_flight), (3, 1));
}

#[tokio::test]
async fn identical_questions_at_once_are_asked_once() {
    let sim = sim("llama3").await;
    sim.set_judge(fixed("cheap", "math").delayed(Duration::from_millis(1_000)));
    let judge = Arc::new(judge(&config(sim.base_url(), JudgeMode::Always, 3_000)));
    let asked: Vec<_> = (0..5)
        .map(|_| {
            let judge = Arc::clone(&judge);
            tokio::spawn(async move { judge.decide(QUERY, certain(), &[]).await })
        })
        .collect();
    let mut shared = 0;
    for call in asked {
        let d = call.await.unwrap();
        assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge), "{}", d.reason);
        shared += usize::from(d.reason.ends_with(" (shared)"));
    }
    assert_eq!(shared, 4);
    assert_eq!(sim.judge_requests().len(), 1, "one question for five identical requests");
    let status = judge.status();
    assert_eq!((status.calls, status.shared, status.cache_misses), (1, 4, 5));
    assert_eq!((status.busy, status.failures), (0, 0));

    // Answered, the question is no longer out: the next identical request hits the cache.
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert!(d.reason.ends_with("(cached)"), "{}", d.reason);
}

#[tokio::test]
async fn waiting_on_a_question_whose_asker_went_away_leaves_it_to_the_policy() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let judge = Arc::new(judge(&config(sim.base_url(), JudgeMode::Always, 5_000)));
    let asker = {
        let judge = Arc::clone(&judge);
        tokio::spawn(async move { judge.decide(QUERY, certain(), &[]).await })
    };
    assert!(
        sim.wait_for(Duration::from_secs(2), |s| s.endpoint(Endpoint::OllamaJudge).in_flight == 1)
            .await
    );
    let waiter = {
        let judge = Arc::clone(&judge);
        tokio::spawn(async move { judge.decide(QUERY, certain(), &[]).await })
    };
    while judge.status().shared == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    asker.abort();
    let d = waiter.await.unwrap();
    assert_eq!(d.source, Source::Policy);
    assert!(d.reason.contains("went away before the answer"), "{}", d.reason);

    // The abandoned question is not out any more: the same question is asked afresh.
    sim.set_judge(fixed("cheap", "math"));
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge), "{}", d.reason);
    assert_eq!(judge.status().in_flight, 0);
}

#[tokio::test]
async fn a_request_that_goes_away_gives_its_place_with_the_judge_back() {
    let sim = sim("llama3").await;
    sim.set_judge(JudgeBehavior::reply(JudgeReply::Hang));
    let judge = judge(&JudgeConfig {
        max_in_flight: std::num::NonZeroU32::MIN,
        ..config(sim.base_url(), JudgeMode::Always, 5_000)
    });
    let gone = tokio::time::timeout(
        Duration::from_millis(200),
        judge.decide("a client that hangs up", certain(), &[]),
    )
    .await;
    assert!(gone.is_err(), "the call was still out when the client left");
    assert_eq!(judge.status().in_flight, 0);

    sim.set_judge(fixed("cheap", "math"));
    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("cheap", Source::Judge), "{}", d.reason);
    assert_eq!(judge.status().busy, 0);
}

#[tokio::test]
async fn warm_up_preloads_the_model() {
    let sim = sim("llama3").await;
    let judge = judge(&config(sim.base_url(), JudgeMode::Hybrid, 2_000));
    judge.warm_up().await.unwrap();
    let preload = sim.requests().pop().and_then(|r| r.json()).unwrap();
    assert_eq!(preload, json!({ "model": "llama3", "messages": [], "keep_alive": "30m" }));
    assert_eq!(sim.stats().endpoint(Endpoint::OllamaJudge).completed, 1);

    let missing = Judge::new(
        &JudgeConfig { model: "llama9".into(), ..config(sim.base_url(), JudgeMode::Hybrid, 2_000) },
        http(),
    );
    assert!(missing.warm_up().await.unwrap_err().to_string().contains("404"));
}

#[tokio::test]
async fn the_policys_own_decision_goes_through_the_judge() {
    let sim = sim("llama3").await;
    sim.set_judge(fixed("coder", "code"));
    let judge = judge(&config(sim.base_url(), JudgeMode::Always, 2_000));
    let features = FeatureExtractor::new().extract(&Prompt::user("写一个 Rust 函数，反转链表"));
    let tags = [vec!["code".to_string()], vec!["chinese".to_string(), "cheap".to_string()]];
    let candidate = |name, tags, price| Candidate {
        name,
        weight: 1.0,
        price: Price { input_per_mtok: price, output_per_mtok: price * 4.0 },
        context_window: 128_000,
        capabilities: Capabilities::default(),
        availability: Availability::Healthy,
        tags,
    };
    let candidates = [candidate("coder", &tags[0][..], 3.0), candidate("zh", &tags[1][..], 0.2)];
    let decision =
        policy::decide(&features, &candidates, &Knowledge::default(), &Params::default()).unwrap();
    let infos: Vec<JudgeCandidateInfo> = candidates.iter().map(JudgeCandidateInfo::from).collect();
    let d = judge.decide("写一个 Rust 函数，反转链表", decision, &infos).await;
    assert_eq!((d.model.as_str(), d.source), ("coder", Source::Judge));
    assert_eq!(d.ranking.len(), 2);
    let call = &sim.judge_requests()[0];
    let user = call["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("写一个 Rust 函数，反转链表"), "{user}");
    assert!(user.contains("strengths: chinese, cheap"), "{user}");
    assert!(user.contains("language: zh"), "{user}");
}

/// What the fake OpenAI-compatible judge saw: each request's headers and body.
type Seen = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A minimal OpenAI-compatible judge (llama.cpp, vLLM and LM Studio speak this): it
/// insists on a strict `json_schema` response format and answers with the last model of
/// the schema's enum.
async fn openai_judge() -> (String, Seen) {
    async fn completions(
        State(seen): State<Seen>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        seen.lock().unwrap().push((headers, body.clone()));
        let format = &body["response_format"];
        let schema = &format["json_schema"]["schema"];
        let shaped = format["type"] == "json_schema"
            && format["json_schema"]["strict"] == true
            && format["json_schema"]["name"].is_string()
            && schema["additionalProperties"] == false
            && body["temperature"] == 0
            && body["messages"].as_array().is_some_and(|m| m.len() == 2);
        let last = schema["properties"]["model"]["enum"].as_array().and_then(|e| e.last());
        let (true, Some(model)) = (shaped, last) else {
            let error = json!({ "error": { "message": "bad judge request", "type": "invalid_request_error" } });
            return (StatusCode::BAD_REQUEST, Json(error));
        };
        let content =
            json!({ "model": model, "domain": "code", "reason": "last is best" }).to_string();
        (
            StatusCode::OK,
            Json(json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body["model"],
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": content },
                    "finish_reason": "stop",
                }],
                "usage": { "prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120 },
            })),
        )
    }
    async fn models() -> Json<Value> {
        Json(
            json!({ "object": "list", "data": [{ "id": "llama-3-8b-instruct", "object": "model" }] }),
        )
    }
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(completions))
        .route("/v1/models", get(models))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/v1"), seen)
}

#[tokio::test]
async fn an_openai_compatible_judge_gets_a_strict_json_schema() {
    let (url, seen) = openai_judge().await;
    let config = JudgeConfig {
        api: JudgeApi::Openai,
        model: "llama-3-8b-instruct".into(),
        api_key: Some("sk-local".to_string().into()),
        ..config(url, JudgeMode::Always, 2_000)
    };
    let judge = judge(&config);
    let report = judge.probe().await;
    assert!(report.reachable && report.model_present, "{report:?}");

    let d = judge.decide(QUERY, certain(), &[]).await;
    assert_eq!((d.model.as_str(), d.source), ("mid", Source::Judge), "{}", d.reason);
    assert!(d.reason.contains("last is best"));

    let seen = seen.lock().unwrap();
    let (headers, body) = seen.last().unwrap();
    assert_eq!(headers["authorization"], "Bearer sk-local");
    assert_eq!(body["model"], "llama-3-8b-instruct");
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["model"]["enum"],
        json!(["strong", "cheap", "mid"])
    );
    assert!(body.get("format").is_none() && body.get("keep_alive").is_none());
}
