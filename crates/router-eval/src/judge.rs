//! The judge against the policy: on the same prompts, which one routes better, and how
//! long the judge takes. The judge itself (an HTTP call to Ollama) lives at the edge; this
//! module only drives it through [`Judge`] and scores what it chose.

use std::time::Instant;

use router_core::policy::{self, Params};
use router_core::{Candidate, Decision, Knowledge, Profile, Source};
use serde::Serialize;

use crate::baseline::{Point, Tally};
use crate::dataset::Dataset;
use crate::replay::{OnProgress, Prepared, Progress, Timing, candidates, timing_of};

/// A judge to evaluate: given the query and the policy's decision, the decision to route
/// by — the judge's (`source` = [`Source::Judge`]) or, when it could not answer, the
/// policy's unchanged, as the gateway falls back.
pub trait Judge {
    fn decide(&mut self, query: &str, decision: Decision, candidates: &[Candidate<'_>])
    -> Decision;
}

/// The judge and the policy on the same prompts.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeReport {
    pub profile: Profile,
    pub prompts: usize,
    /// Prompts the judge answered validly (the rest fell back to the policy).
    pub answered: usize,
    /// The routing the gateway would do with the judge always consulted (fallbacks
    /// included).
    pub with_judge: Point,
    /// The policy alone on the same prompts.
    pub policy: Point,
    /// Share of prompts where both chose the same model.
    pub agreement: f64,
    /// Wall time of a judge consultation, in microseconds.
    pub judge_time: Timing,
    /// Wall time of the policy's decision on the same prompts, in microseconds.
    pub policy_time: Timing,
}

/// Routes `items` with the policy and with the judge, under `profile`.
pub fn compare(
    dataset: &Dataset,
    prepared: &Prepared,
    knowledge: &Knowledge,
    items: &[usize],
    profile: Profile,
    judge: &mut dyn Judge,
    progress: OnProgress<'_>,
) -> JudgeReport {
    let candidates = candidates(dataset);
    let params = Params { profile, ..Params::default() };
    let width = dataset.models.len();
    let (mut with_judge, mut alone) = (Tally::new(width), Tally::new(width));
    let (mut judge_us, mut policy_us) = (Vec::new(), Vec::new());
    let (mut answered, mut agreed, mut prompts) = (0usize, 0usize, 0usize);
    for (n, &i) in items.iter().enumerate() {
        let started = Instant::now();
        let recall = knowledge.recall(&prepared.sketches[i]);
        let Ok(decision) = policy::decide_recalled(
            &prepared.features[i],
            &recall,
            &candidates,
            knowledge,
            &params,
        ) else {
            continue;
        };
        policy_us.push(started.elapsed().as_secs_f64() * 1e6);
        let query = dataset.items[i].turns.last().map_or("", String::as_str);
        let policy_model = decision.model.clone();
        let started = Instant::now();
        let judged = judge.decide(query, decision, &candidates);
        judge_us.push(started.elapsed().as_secs_f64() * 1e6);
        prompts += 1;
        if judged.source == Source::Judge {
            answered += 1;
        }
        if judged.model == policy_model {
            agreed += 1;
        }
        for (tally, model) in [(&mut with_judge, &judged.model), (&mut alone, &policy_model)] {
            if let Some(m) = dataset.model_index(model)
                && let Some(g) = dataset.result(i, m)
            {
                tally.add(m, g.quality, g.cost_usd);
            }
        }
        progress(Progress { stage: "judge", done: n + 1, total: items.len() });
    }
    JudgeReport {
        profile,
        prompts,
        answered,
        with_judge: with_judge.point(format!("judge ({profile})"), None, &dataset.models),
        policy: alone.point(format!("policy ({profile})"), None, &dataset.models),
        agreement: if prompts == 0 { 0.0 } else { agreed as f64 / prompts as f64 },
        judge_time: timing_of(judge_us),
        policy_time: timing_of(policy_us),
    }
}
