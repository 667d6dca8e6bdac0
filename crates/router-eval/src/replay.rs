//! Replaying a dataset through the router the gateway runs: the same
//! [`FeatureExtractor`], [`Knowledge`] and [`policy::decide_recalled`], fed the way the
//! gateway feeds them.
//!
//! - **Offline**: every training prompt's known result for every model is fed in (context
//!   posterior, memory, answer length), as a deployment warm-starting from history would;
//!   then each test prompt is routed, under each profile and a sweep of cost weights,
//!   without exploration, and scored by the chosen model's known result.
//! - **Online**: one pass over a stream, starting from nothing but the priors; each prompt
//!   is routed with exploration, and only the chosen model's result is learned, as a live
//!   gateway only hears back about the model it called.

use std::time::Instant;

use router_core::learning::{Context, Knowledge, LearningConfig, Outcome};
use router_core::memory::Sketch;
use router_core::policy::{self, Objective, Params};
use router_core::{
    Availability, Candidate, Capabilities, FeatureExtractor, Features, Profile, Prompt,
    PromptMessage, Role,
};
use serde::Serialize;

use crate::baseline::{Point, Tally};
use crate::dataset::Dataset;
use crate::error::EvalError;
use crate::split::{Split, fnv1a64};

/// Where a long run is, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    pub stage: &'a str,
    pub done: usize,
    pub total: usize,
}

/// A sink for progress; `|_| {}` ignores it.
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress<'_>);

/// What the router sees of every prompt, extracted once.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub features: Vec<Features>,
    pub sketches: Vec<Sketch>,
    /// Mean microseconds per feature extraction and sketch.
    pub extract_us: f64,
}

/// The router's view of a prompt: its turns as user messages.
pub fn prompt_of(turns: &[String]) -> Prompt<'_> {
    Prompt {
        messages: turns
            .iter()
            .map(|t| PromptMessage { role: Role::User, text: t.as_str() })
            .collect(),
        ..Prompt::default()
    }
}

/// Extracts features and sketches for every prompt of the dataset.
pub fn prepare(
    dataset: &Dataset,
    extractor: &FeatureExtractor,
    progress: OnProgress<'_>,
) -> Prepared {
    let total = dataset.items.len();
    let mut features = Vec::with_capacity(total);
    let mut sketches = Vec::with_capacity(total);
    let started = Instant::now();
    for (i, item) in dataset.items.iter().enumerate() {
        let prompt = prompt_of(&item.turns);
        features.push(extractor.extract(&prompt));
        sketches.push(Sketch::of(prompt.last_user_text()));
        if i % 64 == 0 || i + 1 == total {
            progress(Progress { stage: "features", done: i + 1, total });
        }
    }
    let extract_us = started.elapsed().as_secs_f64() * 1e6 / total.max(1) as f64;
    Prepared { features, sketches, extract_us }
}

/// The dataset's models as the policy's candidates: healthy, equally weighted, priced as
/// configured, with room for any prompt (the data's models did answer every prompt).
pub fn candidates(dataset: &Dataset) -> Vec<Candidate<'_>> {
    dataset
        .models
        .iter()
        .zip(&dataset.prices)
        .map(|(name, price)| Candidate {
            name,
            weight: 1.0,
            price: *price,
            context_window: u32::MAX,
            capabilities: Capabilities::default(),
            availability: Availability::Healthy,
            tags: &[],
        })
        .collect()
}

/// Feeds one known result into the learned state as the gateway would: the outcome (which
/// teaches answer length), the quality as weighted feedback on the prompt's context, and
/// the same into the memory of similar queries.
fn learn(
    knowledge: &mut Knowledge,
    model: &str,
    features: &Features,
    sketch: &Sketch,
    quality: f64,
    weight: f64,
    output_tokens: Option<u32>,
) {
    let context = Context::of(features);
    if let Some(tokens) = output_tokens {
        // Latency is not in the data. Recording the latency assumed of an unmeasured model
        // keeps latency from separating models at all — measured or not — so the `fast`
        // profile reduces to its small cost weight.
        let latency_ms = knowledge.config.default_latency_ms;
        knowledge.observe(
            model,
            context,
            Outcome::Success { latency_ms, output_tokens: u64::from(tokens), signal: None },
        );
    }
    knowledge.feedback_weighted(model, context, quality, weight, None);
    knowledge.remember(model, sketch, quality, weight, None);
}

/// The items of the test part that every model has a result for, and all items of the
/// training part.
pub fn split_items(dataset: &Dataset, split: &Split) -> (Vec<usize>, Vec<usize>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for (i, item) in dataset.items.iter().enumerate() {
        if split.is_train(&item.id) {
            train.push(i);
        } else if dataset.is_complete(i) {
            test.push(i);
        }
    }
    (train, test)
}

/// Microseconds per routing decision (recall + policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timing {
    pub mean_us: f64,
    pub p99_us: f64,
}

/// Mean and 99th percentile of timing samples.
pub fn timing_of(mut samples: Vec<f64>) -> Timing {
    if samples.is_empty() {
        return Timing::default();
    }
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let rank = ((samples.len() as f64 * 0.99).ceil() as usize).clamp(1, samples.len());
    Timing { mean_us: mean, p99_us: samples[rank - 1] }
}

/// `points` cost weights: 0, then geometric from 0.002 to 50, then a weight so large that
/// only cost matters. Routing jumps in steps (a whole group of similar prompts changes
/// model at one weight), so the sweep is dense: 100 points by default.
pub fn sweep(points: usize) -> Vec<f64> {
    if points == 0 {
        return Vec::new();
    }
    let mut w = vec![0.0];
    let inner = points.saturating_sub(2).max(1);
    let (lo, hi) = (0.002f64, 50.0f64);
    for k in 0..inner {
        let t = if inner == 1 { 0.5 } else { k as f64 / (inner - 1) as f64 };
        w.push(lo * (hi / lo).powf(t));
    }
    w.push(1e6);
    w
}

/// An offline evaluation of one router configuration.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineRun {
    pub train_items: usize,
    pub test_items: usize,
    /// One point per profile, under the profile's own trade-off.
    pub profiles: Vec<Point>,
    /// One point per swept cost weight (latency weight 0).
    pub sweep: Vec<Point>,
    pub timing: Timing,
}

/// The learned state after the training part, and the parts.
#[derive(Debug, Clone)]
pub struct Trained {
    pub knowledge: Knowledge,
    pub train: Vec<usize>,
    /// Complete items of the test part.
    pub test: Vec<usize>,
}

/// Learns every known result of the training part, as a deployment warm-starting from
/// its history would.
pub fn train(
    dataset: &Dataset,
    prepared: &Prepared,
    learning: LearningConfig,
    split: &Split,
    progress: OnProgress<'_>,
) -> Result<Trained, EvalError> {
    if dataset.models.is_empty() {
        return Err(EvalError::NoModels);
    }
    let (train, test) = split_items(dataset, split);
    if test.is_empty() {
        return Err(EvalError::NoCompleteTestPrompts(dataset.items.len() - train.len()));
    }
    let mut knowledge = Knowledge::new(learning);
    for (n, &i) in train.iter().enumerate() {
        for (m, model) in dataset.models.iter().enumerate() {
            if let Some(g) = dataset.result(i, m) {
                learn(
                    &mut knowledge,
                    model,
                    &prepared.features[i],
                    &prepared.sketches[i],
                    g.quality,
                    1.0,
                    g.output_tokens,
                );
            }
        }
        if n % 64 == 0 || n + 1 == train.len() {
            progress(Progress { stage: "training", done: n + 1, total: train.len() });
        }
    }
    Ok(Trained { knowledge, train, test })
}

/// Routes `items` (the test part, or some of it) with the trained state under every
/// profile and cost weight. Profile points come back in the order of `profiles`.
pub fn offline(
    dataset: &Dataset,
    prepared: &Prepared,
    trained: &Trained,
    items: &[usize],
    profiles: &[Profile],
    sweep: &[f64],
    progress: OnProgress<'_>,
) -> OfflineRun {
    let (knowledge, train, test) = (&trained.knowledge, &trained.train, items);
    let candidates = candidates(dataset);
    let settings: Vec<(String, Params)> = profiles
        .iter()
        .map(|p| (format!("router {p}"), Params { profile: *p, ..Params::default() }))
        .chain(sweep.iter().map(|w| {
            let objective = Objective { cost_weight: *w, latency_weight: 0.0 };
            (
                format!("cost weight {w:.4}"),
                Params { objective: Some(objective), ..Params::default() },
            )
        }))
        .collect();
    let total = settings.len() * test.len();
    // Nothing is learned while routing, so each test prompt's recall is computed once,
    // with its first decision, and that pair is what is timed.
    let mut recalls = Vec::with_capacity(test.len());
    let mut timings = Vec::with_capacity(test.len());
    let mut points = Vec::with_capacity(settings.len());
    for (s, (label, params)) in settings.iter().enumerate() {
        let mut tally = Tally::new(dataset.models.len());
        for (t, &i) in test.iter().enumerate() {
            let started = Instant::now();
            if s == 0 {
                recalls.push(knowledge.recall(&prepared.sketches[i]));
            }
            let decision = policy::decide_recalled(
                &prepared.features[i],
                &recalls[t],
                &candidates,
                knowledge,
                params,
            );
            if s == 0 {
                timings.push(started.elapsed().as_secs_f64() * 1e6);
            }
            let Ok(decision) = decision else { continue };
            let Some(m) = dataset.model_index(&decision.model) else { continue };
            if let Some(g) = dataset.result(i, m) {
                tally.add(m, g.quality, g.cost_usd);
            }
        }
        points.push(tally.point(
            label.clone(),
            params.objective.map(|o| o.cost_weight),
            &dataset.models,
        ));
        progress(Progress { stage: "routing", done: (s + 1) * test.len(), total });
    }
    let sweep_points = points.split_off(profiles.len());
    OfflineRun {
        train_items: train.len(),
        test_items: test.len(),
        profiles: points,
        sweep: sweep_points,
        timing: timing_of(timings),
    }
}

/// One checkpoint of an online replay.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Checkpoint {
    /// Prompts routed so far.
    pub seen: usize,
    /// Mean quality and cost per call over everything so far.
    pub cumulative_quality: f64,
    pub cumulative_cost_usd: f64,
    /// The same over the prompts since the previous checkpoint.
    pub window_quality: f64,
    pub window_cost_usd: f64,
}

/// An online replay under one profile.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineRun {
    pub profile: Profile,
    pub exploration: f64,
    pub seed: u64,
    /// The whole pass.
    pub result: Point,
    /// The last tenth of the stream: what the router does once it has learned.
    pub last_tenth: Point,
    pub curve: Vec<Checkpoint>,
}

/// The order of the online stream: complete items by a seeded hash of their id.
pub fn stream(dataset: &Dataset, seed: u64) -> Vec<usize> {
    let mut items: Vec<usize> =
        (0..dataset.items.len()).filter(|&i| dataset.is_complete(i)).collect();
    items.sort_by_key(|&i| (fnv1a64(seed.wrapping_add(0x5eed), &dataset.items[i].id), i));
    items
}

/// One pass over the stream, learning only from the chosen model's result.
#[allow(clippy::too_many_arguments)]
pub fn online(
    dataset: &Dataset,
    prepared: &Prepared,
    learning: LearningConfig,
    profile: Profile,
    exploration: f64,
    seed: u64,
    checkpoints: usize,
    progress: OnProgress<'_>,
) -> Result<OnlineRun, EvalError> {
    if dataset.models.is_empty() {
        return Err(EvalError::NoModels);
    }
    let items = stream(dataset, seed);
    if items.is_empty() {
        return Err(EvalError::NoCompleteTestPrompts(dataset.items.len()));
    }
    let candidates = candidates(dataset);
    let mut knowledge = Knowledge::new(learning);
    let every = (items.len() / checkpoints.max(1)).max(1);
    let last_tenth_from = items.len() - items.len().div_ceil(10);
    let mut all = Tally::new(dataset.models.len());
    let mut window = Tally::new(dataset.models.len());
    let mut last_tenth = Tally::new(dataset.models.len());
    let mut curve = Vec::new();
    for (t, &i) in items.iter().enumerate() {
        let features = &prepared.features[i];
        let sketch = &prepared.sketches[i];
        let params = Params {
            profile,
            seed: seed ^ fnv1a64(t as u64, "online"),
            exploration,
            ..Params::default()
        };
        let recall = knowledge.recall(sketch);
        let chosen = policy::decide_recalled(features, &recall, &candidates, &knowledge, &params)
            .ok()
            .and_then(|d| dataset.model_index(&d.model));
        if let Some(m) = chosen
            && let Some(g) = dataset.result(i, m).copied()
        {
            let model = &dataset.models[m];
            knowledge.record_decision(model);
            let weight = knowledge.config.feedback_weight;
            learn(&mut knowledge, model, features, sketch, g.quality, weight, g.output_tokens);
            all.add(m, g.quality, g.cost_usd);
            window.add(m, g.quality, g.cost_usd);
            if t >= last_tenth_from {
                last_tenth.add(m, g.quality, g.cost_usd);
            }
        }
        if (t + 1) % every == 0 || t + 1 == items.len() {
            curve.push(Checkpoint {
                seen: t + 1,
                cumulative_quality: all.quality(),
                cumulative_cost_usd: all.cost(),
                window_quality: window.quality(),
                window_cost_usd: window.cost(),
            });
            window = Tally::new(dataset.models.len());
            progress(Progress { stage: "online", done: t + 1, total: items.len() });
        }
    }
    Ok(OnlineRun {
        profile,
        exploration,
        seed,
        result: all.point(format!("online {profile}"), None, &dataset.models),
        last_tenth: last_tenth.point(
            format!("online {profile}, last tenth"),
            None,
            &dataset.models,
        ),
        curve,
    })
}
