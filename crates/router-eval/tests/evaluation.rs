//! The evaluation end to end on a fixture built to have learnable structure: code prompts
//! a small coder answers as well as the large model, Chinese prompts a small Chinese model
//! does, chat a tiny model does — and the large model is 20–60 times the price.

use std::path::Path;

use router_core::{Candidate, Decision, FeatureExtractor, Profile, Source};
use router_eval::baseline;
use router_eval::judge::Judge;
use router_eval::replay::{self, Progress};
use router_eval::report::{Estimator, EvalOptions, baselines};
use router_eval::{Dataset, LoadOptions, PriceTable, Split, evaluate, load};

fn learnable() -> Dataset {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/learnable");
    let prices = PriceTable::from_csv(&dir.join("prices.csv")).unwrap();
    let options = LoadOptions { prices: Some(prices), ..LoadOptions::default() };
    load(&dir.join("prompts.jsonl"), &dir.join("scores.csv"), &options).unwrap()
}

fn options() -> EvalOptions {
    EvalOptions {
        split: Split { train_fraction: 0.5, seed: 0 },
        checkpoints: 6,
        ..EvalOptions::default()
    }
}

#[test]
fn offline_routing_beats_every_single_model_and_the_random_mixes() {
    let dataset = learnable();
    let report =
        evaluate(&dataset, &FeatureExtractor::new(), &options(), None, &mut |_| {}).unwrap();
    let base = report.test_baselines.as_ref().unwrap();
    assert!(report.test_prompts >= 20, "{}", report.test_prompts);
    assert_eq!(base.best, "strong-large");
    assert_eq!(base.cheapest, "tiny-chat");
    for run in &report.runs {
        let o = run.offline.as_ref().unwrap();
        let name = run.estimator.as_str();
        // The curve as a whole: above the random mixes and the single models' hull.
        let aiq = o.aiq.unwrap();
        assert!(aiq > base.aiq_mix.unwrap() + 0.05, "{name}: AIQ {aiq} vs mix {:?}", base.aiq_mix);
        assert!(
            aiq > base.aiq_singles.unwrap(),
            "{name}: AIQ {aiq} vs singles {:?}",
            base.aiq_singles
        );
        let hull = o.hull.unwrap();
        assert!(hull.at_or_above > 0.9, "{name}: {hull:?}");
        // At a quarter of the large model's cost, nearly its quality: the specialists do it.
        let budget = o.budget.as_ref().unwrap();
        assert!(budget.curve_quality_share.unwrap() > 0.95, "{name}: {budget:?}");
        // The cost profile sends each kind of prompt to its specialist: nearly the large
        // model's quality at a fraction of its cost.
        let cost = o.run.profiles.iter().find(|p| p.label == "router cost").unwrap();
        let strong = base.singles.iter().find(|p| p.label == "strong-large").unwrap();
        assert!(cost.cost_usd < strong.cost_usd * 0.25, "{name}: {cost:?}");
        assert!(cost.quality > strong.quality - 0.05, "{name}: {cost:?} vs {strong:?}");
        assert!(
            cost.share.iter().filter(|(_, s)| *s > 0.15).count() >= 3,
            "{name}: {:?}",
            cost.share
        );
        // The quality profile is at least as good as the large model alone.
        let quality = o.run.profiles.iter().find(|p| p.label == "router quality").unwrap();
        assert!(quality.quality >= strong.quality, "{name}: {quality:?}");
    }
    // Per subset, the router is reported against the subset's best single model.
    let o = report.runs[0].offline.as_ref().unwrap();
    assert!(o.subsets.iter().any(|r| r.subset == "zh" && r.profile == Profile::Balanced));
}

#[test]
fn a_router_that_learned_nothing_does_not_beat_the_mixes() {
    // The same evaluation with no training part: every estimate is the prior, so the
    // sweep can only pick by price — the check above is not one any router passes.
    let dataset = learnable();
    let split = Split { train_fraction: 0.0, seed: 0 };
    let report = evaluate(
        &dataset,
        &FeatureExtractor::new(),
        &EvalOptions { split, online: false, ..options() },
        None,
        &mut |_| {},
    )
    .unwrap();
    let base = report.test_baselines.as_ref().unwrap();
    let o = report.runs[0].offline.as_ref().unwrap();
    assert!(
        o.aiq.unwrap() <= base.aiq_singles.unwrap() + 1e-9,
        "{:?} vs {:?}",
        o.aiq,
        base.aiq_singles
    );
}

#[test]
fn online_learning_beats_every_single_model_it_could_afford() {
    let dataset = learnable();
    let options = EvalOptions {
        offline: false,
        estimators: vec![Estimator::ContextsAndMemory],
        profiles: vec![Profile::Cost],
        ..options()
    };
    let report = evaluate(&dataset, &FeatureExtractor::new(), &options, None, &mut |_| {}).unwrap();
    assert!(report.test_baselines.is_none());
    let online = &report.runs[0].online[0];
    assert_eq!(online.run.curve.last().unwrap().seen, 60);
    assert!(online.run.curve.len() >= 6);
    // Shares of traffic add up, and the stream's best single model is named.
    let total: f64 = online.run.result.share.iter().map(|(_, s)| s).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert_eq!(online.best_single.label, "strong-large");
    // Learning only from what it chose, it still finds the specialists: better than any
    // single model at its cost or less, at a fraction of the large model's cost.
    let result = &online.run.result;
    let stream = report.stream_baselines.as_ref().unwrap();
    let affordable = stream.singles.iter().filter(|p| p.cost_usd <= result.cost_usd);
    let best_affordable = affordable.map(|p| p.quality).fold(0.0, f64::max);
    assert!(result.quality > best_affordable + 0.05, "{result:?} vs {best_affordable}");
    assert!(online.cost_share < 0.5, "{online:?}");
}

#[test]
fn the_report_serialises_and_plots() {
    let dataset = learnable();
    let report =
        evaluate(&dataset, &FeatureExtractor::new(), &options(), None, &mut |_| {}).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["dataset"]["models"].as_array().unwrap().len(), 4);
    assert!(json["runs"][1]["offline"]["aiq"].as_f64().is_some());
    assert!(json["split"].as_str().unwrap().contains("fnv1a64"));
    let svg = router_eval::plot::svg(&report).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for model in
        ["strong-large", "code-small", "zh-small", "tiny-chat", "oracle", "contexts+memory"]
    {
        assert!(svg.contains(model), "{model} missing from the plot");
    }
}

#[test]
fn progress_is_reported_for_every_stage() {
    let dataset = learnable();
    let mut stages: Vec<String> = Vec::new();
    let mut last_done = 0;
    evaluate(&dataset, &FeatureExtractor::new(), &options(), None, &mut |p: Progress<'_>| {
        if stages.last().map(String::as_str) != Some(p.stage) {
            stages.push(p.stage.to_string());
        }
        assert!(p.done <= p.total);
        last_done = p.done;
    })
    .unwrap();
    for stage in ["features", "training", "routing", "online"] {
        assert!(stages.iter().any(|s| s == stage), "{stage} not in {stages:?}");
    }
    assert!(last_done > 0);
}

/// A judge that always names the cheapest candidate, or fails every other call.
struct CheapestJudge {
    calls: usize,
    flaky: bool,
}

impl Judge for CheapestJudge {
    fn decide(
        &mut self,
        _query: &str,
        mut decision: Decision,
        candidates: &[Candidate<'_>],
    ) -> Decision {
        self.calls += 1;
        if self.flaky && self.calls.is_multiple_of(2) {
            return decision;
        }
        let cheapest = candidates
            .iter()
            .min_by(|a, b| a.price.output_per_mtok.total_cmp(&b.price.output_per_mtok))
            .unwrap();
        decision.model = cheapest.name.to_string();
        decision.source = Source::Judge;
        decision
    }
}

#[test]
fn the_judge_is_scored_against_the_policy_on_the_same_prompts() {
    let dataset = learnable();
    let mut judge = CheapestJudge { calls: 0, flaky: true };
    let options = EvalOptions { judge_prompts: 10, online: false, ..options() };
    let report =
        evaluate(&dataset, &FeatureExtractor::new(), &options, Some(&mut judge), &mut |_| {})
            .unwrap();
    let j = report.judge.unwrap();
    assert_eq!(j.prompts, 10);
    assert_eq!(judge.calls, 10);
    assert_eq!(j.answered, 5, "every other call failed and fell back to the policy");
    // Always the tiny model where the judge answered: cheaper and worse than the policy.
    assert!(j.with_judge.cost_usd < j.policy.cost_usd);
    assert!(j.with_judge.quality < j.policy.quality);
    assert!(j.agreement < 1.0);
    assert!(j.judge_time.mean_us >= 0.0 && j.policy_time.p99_us > 0.0);
}

#[test]
fn baselines_match_hand_computed_values() {
    // Two prompts, two models: "big" right on both at 10 each, "small" right on the first
    // only at 1 each.
    let item = |id: &str| router_eval::Item {
        id: id.into(),
        turns: vec!["q".into()],
        language: None,
        subset: None,
    };
    let g =
        |q: f64, c: f64| Some(router_eval::Graded { quality: q, cost_usd: c, output_tokens: None });
    let d = Dataset::new(
        "hand",
        vec!["big".into(), "small".into()],
        Vec::new(),
        vec![item("a"), item("b")],
        vec![vec![g(1.0, 10.0), g(1.0, 1.0)], vec![g(1.0, 10.0), g(0.0, 1.0)]],
    );
    let singles = baseline::singles(&d, &[0, 1]);
    assert_eq!((singles[0].quality, singles[0].cost_usd), (1.0, 10.0));
    assert_eq!((singles[1].quality, singles[1].cost_usd), (0.5, 1.0));
    // The oracle takes "small" where it is right and "big" elsewhere: quality 1 at 5.5.
    let oracle = baseline::oracle(&d, &[0, 1]);
    assert_eq!((oracle.quality, oracle.cost_usd), (1.0, 5.5));
    assert_eq!(oracle.share, vec![("big".to_string(), 0.5), ("small".to_string(), 0.5)]);
    let mixes = baseline::mixes(&singles[0], &singles[1], 4);
    assert_eq!((mixes[1].quality, mixes[1].cost_usd), (0.625, 3.25));
    let base = baselines(&d, &[0, 1]).unwrap();
    assert_eq!(base.cost_range, (1.0, 10.0));
    // The hull is the straight line from (1, 0.5) to (10, 1): mean height 0.75.
    assert!((base.aiq_singles.unwrap() - 0.75).abs() < 1e-12);
    assert!((base.apgr_singles.unwrap() - 0.5).abs() < 1e-12);
    // The oracle reaches the top at 5.5: below it counts 0 — 4.5 × 1 over a range of 9.
    assert!((base.aiq_oracle.unwrap() - 0.5).abs() < 1e-12);
}

#[test]
fn the_split_is_by_hash_and_the_test_part_has_only_complete_prompts() {
    let dataset = learnable();
    let split = Split { train_fraction: 0.5, seed: 3 };
    let (train, test) = replay::split_items(&dataset, &split);
    assert_eq!(train.len() + test.len(), 60);
    assert!(train.iter().all(|&i| split.is_train(&dataset.items[i].id)));
    assert!(test.iter().all(|&i| !split.is_train(&dataset.items[i].id)));
    let (train_again, _) = replay::split_items(&dataset, &split);
    assert_eq!(train, train_again);
}
