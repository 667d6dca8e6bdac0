//! A whole evaluation: what to run ([`EvalOptions`]), running it ([`evaluate`]), and what
//! comes out ([`Report`], serialisable as the JSON report).

use router_core::memory::MemoryConfig;
use router_core::{FeatureExtractor, LearningConfig, Profile};
use serde::Serialize;

use crate::baseline::{self, Point};
use crate::dataset::Dataset;
use crate::error::EvalError;
use crate::judge::{self, Judge, JudgeReport};
use crate::metrics::{self, Curve, HullCheck, XY};
use crate::replay::{self, OfflineRun, OnProgress, OnlineRun, Prepared};
use crate::split::Split;

/// Which learned estimates the router uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// Per (domain, language, band) context posteriors with back-off (memory off).
    Contexts,
    /// The contexts blended with the memory of similar queries.
    ContextsAndMemory,
}

impl Estimator {
    pub fn as_str(self) -> &'static str {
        match self {
            Estimator::Contexts => "contexts",
            Estimator::ContextsAndMemory => "contexts+memory",
        }
    }

    /// The learning configuration this estimator stands for.
    pub fn learning(self, base: LearningConfig, memory: MemoryConfig) -> LearningConfig {
        match self {
            Estimator::Contexts => LearningConfig { memory: None, ..base },
            Estimator::ContextsAndMemory => LearningConfig { memory: Some(memory), ..base },
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub split: Split,
    pub offline: bool,
    pub online: bool,
    pub estimators: Vec<Estimator>,
    pub profiles: Vec<Profile>,
    /// Cost weights swept offline.
    pub sweep: Vec<f64>,
    /// Exploration in online mode (the gateway's `routing.exploration`).
    pub exploration: f64,
    pub seed: u64,
    /// The budget question: quality at no more than this share of the reference's cost.
    pub budget_share: f64,
    /// The reference model of the budget question; the best single model if `None`.
    pub reference: Option<String>,
    pub learning: LearningConfig,
    pub memory: MemoryConfig,
    /// Checkpoints of the online learning curve.
    pub checkpoints: usize,
    /// Test prompts the judge is asked about at most (it is slow).
    pub judge_prompts: usize,
    /// The profile the judge is compared under.
    pub judge_profile: Profile,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            split: Split::default(),
            offline: true,
            online: true,
            estimators: vec![Estimator::Contexts, Estimator::ContextsAndMemory],
            profiles: Profile::ALL.to_vec(),
            sweep: replay::sweep(100),
            exploration: 0.3,
            seed: 0,
            budget_share: 0.25,
            reference: None,
            learning: LearningConfig::default(),
            memory: MemoryConfig::default(),
            checkpoints: 20,
            judge_prompts: 100,
            judge_profile: Profile::Balanced,
        }
    }
}

/// The dataset as evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    pub name: String,
    pub models: Vec<ModelInfo>,
    pub prompts: usize,
    /// Prompts with a result for every model.
    pub complete: usize,
    pub notes: Vec<String>,
    pub equal_costs: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// USD per million tokens, as the router's candidate is priced.
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// The baselines on one set of prompts, and their curves' numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub prompts: usize,
    pub singles: Vec<Point>,
    pub oracle: Point,
    /// Random mixes of `best` and `cheapest`.
    pub mixes: Vec<Point>,
    pub best: String,
    pub cheapest: String,
    /// The cost range AIQ is taken over: the cheapest to the most expensive single model.
    pub cost_range: (f64, f64),
    /// The single models' non-decreasing convex hull.
    pub singles_hull: Curve,
    pub aiq_singles: Option<f64>,
    pub aiq_mix: Option<f64>,
    pub aiq_oracle: Option<f64>,
    pub apgr_singles: Option<f64>,
}

/// The budget question: quality at no more than a share of the reference's cost.
#[derive(Debug, Clone, Serialize)]
pub struct Budget {
    pub reference: String,
    pub reference_quality: f64,
    pub reference_cost_usd: f64,
    pub share: f64,
    pub cost_limit_usd: f64,
    /// On the router's curve (mixing two operating points at random where needed).
    pub curve_quality: Option<f64>,
    pub curve_quality_share: Option<f64>,
    /// The same on the single models' hull and on the random mix of the best and the
    /// cheapest model: what the router is to beat at this budget.
    pub singles_hull_quality_share: Option<f64>,
    pub mix_quality_share: Option<f64>,
    /// The best single operating point (one cost weight) within the limit.
    pub best_point: Option<Point>,
    pub best_point_quality_share: Option<f64>,
    pub best_point_cost_share: Option<f64>,
}

/// An offline evaluation with its curve and numbers.
#[derive(Debug, Clone, Serialize)]
pub struct OfflineSummary {
    pub run: OfflineRun,
    pub curve: Curve,
    pub aiq: Option<f64>,
    pub apgr: Option<f64>,
    /// RouteLLM's CPT(50%) and CPT(80%): cost, as a share of the best model's, to recover
    /// that share of the cheapest-to-best quality gap.
    pub cpt50: Option<f64>,
    pub cpt80: Option<f64>,
    /// Against the single models' hull over the whole cost range.
    pub hull: Option<HullCheck>,
    pub budget: Option<Budget>,
    /// Per subset, under each profile: the router and the best single model there.
    pub subsets: Vec<SubsetRow>,
}

/// The router and the single models on one labelled subset.
#[derive(Debug, Clone, Serialize)]
pub struct SubsetRow {
    pub subset: String,
    pub prompts: usize,
    pub profile: Profile,
    pub router: Point,
    /// The single model with the best quality on this subset.
    pub best_single: Point,
    /// The single model with the best quality at no more than the router's cost here.
    pub best_single_within_cost: Option<Point>,
}

/// An online replay with the best single model in hindsight on the same stream.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineSummary {
    pub run: OnlineRun,
    /// Best single model on the stream, in hindsight.
    pub best_single: Point,
    /// `best_single.quality − router quality` (positive: the router is below).
    pub quality_gap: f64,
    /// Router cost over the best single model's cost.
    pub cost_share: f64,
}

/// Everything about one estimator.
#[derive(Debug, Clone, Serialize)]
pub struct EstimatorRun {
    pub estimator: Estimator,
    pub offline: Option<OfflineSummary>,
    pub online: Vec<OnlineSummary>,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dataset: DatasetInfo,
    pub split: String,
    /// The seed of the split (and of the online stream).
    pub seed: u64,
    pub train_prompts: usize,
    pub test_prompts: usize,
    /// Baselines on the test part (what offline routing is compared with).
    pub test_baselines: Option<Baselines>,
    /// Baselines on the online stream (every complete prompt).
    pub stream_baselines: Option<Baselines>,
    pub runs: Vec<EstimatorRun>,
    /// The judge against the policy, if a judge was given.
    pub judge: Option<JudgeReport>,
    /// Why the judge was not evaluated, if it was not.
    pub judge_skipped: Option<String>,
    /// Mean microseconds to extract one prompt's features and sketch.
    pub extract_us: f64,
}

/// Computes the baselines on `items` (complete prompts).
pub fn baselines(dataset: &Dataset, items: &[usize]) -> Option<Baselines> {
    let singles = baseline::singles(dataset, items);
    let (best, cheapest) = baseline::best_and_cheapest(&singles)?;
    let (best, cheapest) = (best.clone(), cheapest.clone());
    let oracle = baseline::oracle(dataset, items);
    let mixes = baseline::mixes(&best, &cheapest, 10);
    let lo = cheapest.cost_usd;
    let hi = singles.iter().map(|p| p.cost_usd).fold(lo, f64::max);
    let xy: Vec<XY> = singles.iter().map(Point::xy).collect();
    let singles_hull = Curve::of(&xy);
    let mix_curve = Curve::of(&[cheapest.xy(), best.xy()]);
    let oracle_curve = Curve::of(&[oracle.xy()]);
    Some(Baselines {
        prompts: items.len(),
        aiq_singles: singles_hull.mean_over(lo, hi),
        aiq_mix: mix_curve.mean_over(lo, hi),
        aiq_oracle: oracle_curve.mean_over(lo, hi),
        apgr_singles: metrics::apgr(&singles_hull, cheapest.xy(), best.xy()),
        best: best.label.clone(),
        cheapest: cheapest.label.clone(),
        cost_range: (lo, hi),
        singles_hull,
        singles,
        oracle,
        mixes,
    })
}

fn summarise(
    dataset: &Dataset,
    run: OfflineRun,
    base: &Baselines,
    options: &EvalOptions,
    per_item: Vec<SubsetRow>,
) -> OfflineSummary {
    let points: Vec<XY> = run.sweep.iter().chain(&run.profiles).map(Point::xy).collect();
    let curve = Curve::of(&points);
    let (lo, hi) = base.cost_range;
    let find = |name: &str| base.singles.iter().find(|p| p.label == name);
    let best = find(&base.best);
    let cheapest = find(&base.cheapest);
    let (apgr, cpt50, cpt80) = match (best, cheapest) {
        (Some(b), Some(c)) => (
            metrics::apgr(&curve, c.xy(), b.xy()),
            metrics::cost_to_recover(&curve, c.xy(), b.xy(), 0.5),
            metrics::cost_to_recover(&curve, c.xy(), b.xy(), 0.8),
        ),
        _ => (None, None, None),
    };
    let reference = options.reference.as_deref().and_then(find).or(best);
    let budget = reference.filter(|_| !dataset.equal_costs).map(|r| {
        let limit = r.cost_usd * options.budget_share;
        let curve_quality = curve.at(limit);
        let best_point = run
            .sweep
            .iter()
            .chain(&run.profiles)
            .filter(|p| p.cost_usd <= limit)
            .max_by(|a, b| a.quality.total_cmp(&b.quality))
            .cloned();
        let share = |q: f64| if r.quality > 0.0 { Some(q / r.quality) } else { None };
        let mix = match (best, cheapest) {
            (Some(b), Some(c)) => Curve::of(&[c.xy(), b.xy()]).at(limit),
            _ => None,
        };
        Budget {
            reference: r.label.clone(),
            reference_quality: r.quality,
            reference_cost_usd: r.cost_usd,
            share: options.budget_share,
            cost_limit_usd: limit,
            curve_quality,
            curve_quality_share: curve_quality.and_then(share),
            singles_hull_quality_share: base.singles_hull.at(limit).and_then(share),
            mix_quality_share: mix.and_then(share),
            best_point_quality_share: best_point.as_ref().and_then(|p| share(p.quality)),
            best_point_cost_share: best_point
                .as_ref()
                .map(|p| p.cost_usd / r.cost_usd.max(f64::MIN_POSITIVE)),
            best_point,
        }
    });
    OfflineSummary {
        aiq: curve.mean_over(lo, hi),
        hull: if dataset.equal_costs {
            None
        } else {
            metrics::hull_check(&curve, &base.singles_hull, lo, hi)
        },
        curve,
        apgr,
        cpt50,
        cpt80,
        budget,
        run,
        subsets: per_item,
    }
}

/// Per subset and profile: the router's point against the subset's single models.
fn subset_rows(
    dataset: &Dataset,
    prepared: &Prepared,
    trained: &replay::Trained,
    profiles: &[Profile],
) -> Vec<SubsetRow> {
    let mut names: Vec<&str> =
        trained.test.iter().filter_map(|&i| dataset.items[i].subset.as_deref()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() < 2 {
        return Vec::new();
    }
    let mut rows = Vec::new();
    for name in names {
        let items: Vec<usize> = trained
            .test
            .iter()
            .copied()
            .filter(|&i| dataset.items[i].subset.as_deref() == Some(name))
            .collect();
        let singles = baseline::singles(dataset, &items);
        let Some((best, _)) = baseline::best_and_cheapest(&singles) else { continue };
        let run = replay::offline(dataset, prepared, trained, &items, profiles, &[], &mut |_| {});
        // The profile points come back in the order of `profiles`.
        for (point, &profile) in run.profiles.into_iter().zip(profiles) {
            let within = singles
                .iter()
                .filter(|s| s.cost_usd <= point.cost_usd * (1.0 + 1e-9))
                .max_by(|a, b| a.quality.total_cmp(&b.quality))
                .cloned();
            rows.push(SubsetRow {
                subset: name.to_string(),
                prompts: items.len(),
                profile,
                router: point,
                best_single: best.clone(),
                best_single_within_cost: within,
            });
        }
    }
    rows
}

/// Runs the evaluation. `judge`, if given, is compared with the policy on the first
/// test prompts (after offline training of the first estimator).
pub fn evaluate(
    dataset: &Dataset,
    extractor: &FeatureExtractor,
    options: &EvalOptions,
    mut judge: Option<&mut dyn Judge>,
    progress: OnProgress<'_>,
) -> Result<Report, EvalError> {
    if dataset.models.is_empty() {
        return Err(EvalError::NoModels);
    }
    if let Some(r) = &options.reference
        && dataset.model_index(r).is_none()
    {
        return Err(EvalError::UnknownModel(r.clone(), dataset.models.join(", ")));
    }
    let prepared = replay::prepare(dataset, extractor, progress);
    let (train_items, test_items) = replay::split_items(dataset, &options.split);
    let test_baselines = if options.offline { baselines(dataset, &test_items) } else { None };
    let stream = replay::stream(dataset, options.seed);
    let stream_baselines = if options.online { baselines(dataset, &stream) } else { None };

    let mut runs = Vec::new();
    let mut judge_report = None;
    let mut judge_skipped = None;
    for (e, estimator) in options.estimators.iter().enumerate() {
        let learning = estimator.learning(options.learning, options.memory);
        let mut offline = None;
        if options.offline
            && let Some(base) = &test_baselines
        {
            let trained = replay::train(dataset, &prepared, learning, &options.split, progress)?;
            let run = replay::offline(
                dataset,
                &prepared,
                &trained,
                &trained.test,
                &options.profiles,
                &options.sweep,
                progress,
            );
            let subsets = subset_rows(dataset, &prepared, &trained, &options.profiles);
            offline = Some(summarise(dataset, run, base, options, subsets));
            if e == 0
                && let Some(judge) = judge.as_deref_mut()
            {
                let items: Vec<usize> =
                    trained.test.iter().copied().take(options.judge_prompts).collect();
                judge_report = Some(judge::compare(
                    dataset,
                    &prepared,
                    &trained.knowledge,
                    &items,
                    options.judge_profile,
                    judge,
                    progress,
                ));
            }
        }
        let mut online = Vec::new();
        if options.online
            && let Some(base) = &stream_baselines
            && let Some(best) = base.singles.iter().find(|p| p.label == base.best)
        {
            for profile in &options.profiles {
                let run = replay::online(
                    dataset,
                    &prepared,
                    learning,
                    *profile,
                    options.exploration,
                    options.seed,
                    options.checkpoints,
                    progress,
                )?;
                online.push(OnlineSummary {
                    quality_gap: best.quality - run.result.quality,
                    cost_share: if best.cost_usd > 0.0 {
                        run.result.cost_usd / best.cost_usd
                    } else {
                        1.0
                    },
                    best_single: best.clone(),
                    run,
                });
            }
        }
        runs.push(EstimatorRun { estimator: *estimator, offline, online });
    }
    if judge.is_some() && judge_report.is_none() {
        judge_skipped = Some("the judge is compared in offline mode only".into());
    }
    Ok(Report {
        dataset: DatasetInfo {
            name: dataset.name.clone(),
            models: dataset
                .models
                .iter()
                .zip(&dataset.prices)
                .map(|(name, p)| ModelInfo {
                    name: name.clone(),
                    input_per_mtok: p.input_per_mtok,
                    output_per_mtok: p.output_per_mtok,
                })
                .collect(),
            prompts: dataset.items.len(),
            complete: (0..dataset.items.len()).filter(|&i| dataset.is_complete(i)).count(),
            notes: dataset.notes.clone(),
            equal_costs: dataset.equal_costs,
        },
        split: options.split.describe(),
        seed: options.split.seed,
        train_prompts: train_items.len(),
        test_prompts: test_items.len(),
        test_baselines,
        stream_baselines,
        runs,
        judge: judge_report,
        judge_skipped,
        extract_us: prepared.extract_us,
    })
}
