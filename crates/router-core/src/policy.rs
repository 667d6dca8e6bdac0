//! The policy: from features, candidates and what has been learned, to a ranked
//! [`Decision`].
//!
//! This is the seam the gateway's `auto` routing calls. It is a plain function of its inputs
//! (plus a seed the caller hands in for exploration), so every decision can be replayed in
//! a test, benchmarked, and run unchanged by the offline evaluation.
//!
//! Each usable candidate gets an [`Estimate`] from the [`Knowledge`] (expected quality,
//! cost, latency in this query's context) and a utility under the objective:
//! `quality − cost_weight · cost/reference_cost − latency_weight · latency/max_latency`,
//! plus a nudge for the operator's weight and, when exploring, a draw from the quality's
//! uncertainty (Thompson-style), so that models with little evidence still get measured —
//! from their whole uncertainty while they have only a few observations, from the
//! configured share of it after.
//!
//! Cost is measured against a fixed yardstick — what the most expensive usable candidate
//! charges for a [reference request](REFERENCE_REQUEST_TOKENS) — rather than against this
//! query's own most expensive option. A long prompt therefore weighs more than a short one,
//! and the strong model is spent where it is cheap to spend. In `llm-router eval` replays
//! (mean of five splits) this raised the area under the quality–cost curve on RouterBench
//! (0.835 → 0.843, context estimates), Arena-Hard (0.778 → 0.788) and RouteLLM's data
//! (0.746 → 0.753; APGR 0.556 → 0.607).

use crate::candidate::{Availability, Candidate};
use crate::decision::{Decision, Estimate, Exclusion, Profile, RankedCandidate, Source};
use crate::features::Features;
use crate::learning::{Context, Knowledge};
use crate::memory::Recall;

/// What a decision trades off: quality always counts 1; cost counts `cost_weight` per
/// reference request's worth of the most expensive usable candidate, latency
/// `latency_weight` relative to the slowest usable candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    pub cost_weight: f64,
    pub latency_weight: f64,
}

impl Profile {
    /// The trade-off a profile stands for.
    pub fn objective(self) -> Objective {
        match self {
            Profile::Quality => Objective { cost_weight: 0.02, latency_weight: 0.01 },
            Profile::Balanced => Objective { cost_weight: 0.15, latency_weight: 0.05 },
            Profile::Cost => Objective { cost_weight: 0.6, latency_weight: 0.02 },
            Profile::Fast => Objective { cost_weight: 0.05, latency_weight: 0.6 },
        }
    }
}

/// Inputs to one decision besides the query, the candidates and the knowledge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub profile: Profile,
    /// Overrides the profile's trade-off (the evaluation sweeps it).
    pub objective: Option<Objective>,
    /// Seeds the exploration draws; the policy's only randomness.
    pub seed: u64,
    /// Scale of exploration: 0 always exploits; 1 samples quality from its full
    /// uncertainty.
    pub exploration: f64,
    /// Largest acceptable expected cost of the call in US dollars, if the caller set one.
    pub max_cost_usd: Option<f64>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            profile: Profile::Balanced,
            objective: None,
            seed: 0,
            exploration: 0.0,
            max_cost_usd: None,
        }
    }
}

/// The request the cost term is measured against: input and output tokens. The most
/// expensive usable candidate's price for it counts as cost 1.
pub const REFERENCE_REQUEST_TOKENS: (u64, u64) = (500, 250);

/// Observations of a model in a context below which it is still sampled from its whole
/// posterior when exploring, whatever the configured scale.
const THIN_OBSERVATIONS: f64 = 1.0;

/// Cells one observation adds its weight to in an estimate's `evidence` (the domain, the
/// domain × language and the leaf context).
const EVIDENCE_PER_OBSERVATION: f64 = 3.0;

/// How widely to sample a candidate's quality when exploring: the configured scale for a
/// well-measured model, rising to the full posterior for one with a few observations.
/// With a small scale alone, a model whose first few answers were unlucky was never tried
/// again: in `llm-router eval`'s online replays of RouterBench at scale 0.3, two stream
/// orders in five settled on Yi-34B and never learned that GPT-4 was better. Sampling
/// thinly measured models fully removed that (and helped on RouteLLM's data), at the price
/// of more exploratory calls, which a short stream over many models feels (Arena-Hard:
/// 203 prompts, 16 models).
fn exploration_scale(configured: f64, evidence: f64) -> f64 {
    let observations = evidence.max(0.0) / EVIDENCE_PER_OBSERVATION;
    let thin = THIN_OBSERVATIONS / (THIN_OBSERVATIONS + observations);
    configured + (1.0 - configured).max(0.0) * thin
}

/// Utility per doubling of an operator's weight above the candidates' mean weight.
const WEIGHT_NUDGE: f64 = 0.1;
/// Utility taken from a model that is only recovering (its circuits half-open).
const RECOVERING_PENALTY: f64 = 0.1;

/// No candidate can serve the request; each candidate's reason is in the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no model can serve this request: {}", describe(.excluded))]
pub struct NoCandidate {
    pub excluded: Vec<Exclusion>,
}

fn describe(excluded: &[Exclusion]) -> String {
    if excluded.is_empty() {
        return "no models are configured".to_string();
    }
    excluded.iter().map(|e| format!("{} ({})", e.model, e.reason)).collect::<Vec<_>>().join(", ")
}

/// Why a candidate cannot take this request, if it cannot.
pub fn exclusion_reason(
    features: &Features,
    candidate: &Candidate<'_>,
    estimate: &Estimate,
    params: &Params,
) -> Option<String> {
    let needs = &features.needs;
    if candidate.availability == Availability::Unavailable {
        return Some("unavailable: disabled or every deployment's circuit is open".into());
    }
    if candidate.weight <= 0.0 {
        return Some("weight is zero".into());
    }
    if needs.vision && !candidate.capabilities.vision {
        return Some("cannot take images".into());
    }
    if needs.tools && !candidate.capabilities.tools {
        return Some("cannot call tools".into());
    }
    if needs.json && !candidate.capabilities.json {
        return Some("cannot guarantee JSON output".into());
    }
    if needs.context_tokens > candidate.context_window {
        return Some(format!(
            "needs ~{} tokens of context, model holds {}",
            needs.context_tokens, candidate.context_window
        ));
    }
    if let Some(max) = params.max_cost_usd
        && estimate.cost_usd > max
    {
        return Some(format!(
            "expected cost ${:.6} is over the budget ${max:.6}",
            estimate.cost_usd
        ));
    }
    None
}

/// Expected cost of sending this query to this candidate, from its price alone.
pub fn expected_cost(features: &Features, candidate: &Candidate<'_>) -> f64 {
    candidate
        .price
        .cost(u64::from(features.prompt_tokens), u64::from(features.expected_output_tokens))
}

/// Ranks the usable candidates for this query and picks the best.
pub fn decide(
    features: &Features,
    candidates: &[Candidate<'_>],
    knowledge: &Knowledge,
    params: &Params,
) -> Result<Decision, NoCandidate> {
    decide_recalled(features, &Recall::none(), candidates, knowledge, params)
}

/// [`decide`] for a query whose neighbours in the memory of similar queries were recalled
/// ([`Knowledge::recall`]): their evidence enters every candidate's quality estimate.
pub fn decide_recalled(
    features: &Features,
    recall: &Recall,
    candidates: &[Candidate<'_>],
    knowledge: &Knowledge,
    params: &Params,
) -> Result<Decision, NoCandidate> {
    let mut usable: Vec<(&Candidate<'_>, Estimate)> = Vec::with_capacity(candidates.len());
    let mut excluded = Vec::new();
    for c in candidates {
        let estimate = knowledge.estimate_recalled(features, recall, c);
        match exclusion_reason(features, c, &estimate, params) {
            Some(reason) => excluded.push(Exclusion { model: c.name.to_string(), reason }),
            None => usable.push((c, estimate)),
        }
    }
    if usable.is_empty() {
        return Err(NoCandidate { excluded });
    }

    let objective = params.objective.unwrap_or_else(|| params.profile.objective());
    let (reference_input, reference_output) = REFERENCE_REQUEST_TOKENS;
    let reference_cost = usable
        .iter()
        .map(|(c, _)| c.price.cost(reference_input, reference_output))
        .fold(0.0, f64::max);
    let max_latency = usable.iter().map(|(_, e)| e.latency_ms).fold(0.0, f64::max);
    let mean_weight = usable.iter().map(|(c, _)| c.weight).sum::<f64>() / usable.len() as f64;
    let mut rng = SplitMix(params.seed ^ 0x9e37_79b9_7f4a_7c15);

    let mut ranking: Vec<RankedCandidate> = usable
        .iter()
        .map(|(c, e)| {
            let mut quality = e.quality;
            if params.exploration > 0.0 {
                // Thompson-style: sample quality from a normal approximation of its
                // posterior, whose spread shrinks as evidence grows.
                let spread = (e.quality * (1.0 - e.quality) / (e.evidence + 1.0)).sqrt();
                quality +=
                    exploration_scale(params.exploration, e.evidence) * spread * rng.normal();
            }
            let cost = if reference_cost > 0.0 { e.cost_usd / reference_cost } else { 0.0 };
            let slow = if max_latency > 0.0 { e.latency_ms / max_latency } else { 0.0 };
            let mut utility =
                quality - objective.cost_weight * cost - objective.latency_weight * slow;
            if mean_weight > 0.0 && c.weight > 0.0 {
                utility += WEIGHT_NUDGE * (c.weight / mean_weight).log2();
            }
            if c.availability == Availability::Recovering {
                utility -= RECOVERING_PENALTY;
            }
            RankedCandidate { model: c.name.to_string(), estimate: *e, utility }
        })
        .collect();
    ranking.sort_by(|a, b| b.utility.total_cmp(&a.utility).then_with(|| a.model.cmp(&b.model)));

    let reason = explain(features, params.profile, params.objective.is_some(), &ranking);
    Ok(Decision {
        model: ranking[0].model.clone(),
        ranking,
        excluded,
        source: Source::Policy,
        profile: params.profile,
        reason,
        features: *features,
        decision_us: 0,
    })
}

fn explain(
    features: &Features,
    profile: Profile,
    custom: bool,
    ranking: &[RankedCandidate],
) -> String {
    // Built by hand rather than with `format!`: this runs on every routed request, and
    // `{:.2}`-style float formatting costs about a thousand instructions a number.
    let context = Context::of(features);
    let best = &ranking[0];
    let mut reason = String::with_capacity(160);
    if custom {
        reason.push_str("custom trade-off");
    } else {
        reason.push_str("profile ");
        reason.push_str(profile.as_str());
    }
    reason.push_str(": ");
    reason.push_str(&best.model);
    reason.push_str(" expects quality ");
    push_fixed(&mut reason, best.estimate.quality, 2, false);
    reason.push_str(" for ");
    reason.push_str(context.domain.as_str());
    reason.push('/');
    reason.push_str(context.language.code());
    reason.push('/');
    reason.push_str(context.band.as_str());
    reason.push_str(" (evidence ");
    push_fixed(&mut reason, best.estimate.evidence, 0, false);
    reason.push_str(") at ~$");
    push_fixed(&mut reason, best.estimate.cost_usd, 6, false);
    if let Some(next) = ranking.get(1) {
        reason.push_str("; next ");
        reason.push_str(&next.model);
        reason.push_str(" at ");
        push_fixed(&mut reason, next.estimate.quality, 2, false);
        reason.push_str(" for ~$");
        push_fixed(&mut reason, next.estimate.cost_usd, 6, false);
        reason.push_str(" (utility ");
        push_fixed(&mut reason, next.utility - best.utility, 3, true);
        reason.push_str(" behind)");
    }
    reason
}

/// Appends `x` with `decimals` digits after the point, as `{:.N}` (or `{:+.N}` with
/// `plus`) would. Values a reason never holds (not finite, or beyond 2^53 once scaled) go
/// through the standard formatter.
fn push_fixed(out: &mut String, x: f64, decimals: u32, plus: bool) {
    const POWERS: [f64; 7] = [1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6];
    let scaled = POWERS.get(decimals as usize).map(|p| (x.abs() * p).round_ties_even());
    let Some(scaled) = scaled.filter(|s| x.is_finite() && *s < 9_007_199_254_740_992.0) else {
        use std::fmt::Write;
        let width = decimals as usize;
        let _ = if plus { write!(out, "{x:+.width$}") } else { write!(out, "{x:.width$}") };
        return;
    };
    if x.is_sign_negative() {
        out.push('-');
    } else if plus {
        out.push('+');
    }
    let scaled = scaled as u64;
    let unit = 10u64.pow(decimals);
    push_digits(out, scaled / unit, 1);
    if decimals > 0 {
        out.push('.');
        push_digits(out, scaled % unit, decimals as usize);
    }
}

/// Appends `n` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut String, n: u64, width: usize) {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(n);
    out.extend(std::iter::repeat_n('0', width.saturating_sub(digits.len())));
    out.push_str(digits);
}

/// The decision for a request that named its model: that model first, no ranking beyond it.
pub fn explicit(
    features: &Features,
    model: &Candidate<'_>,
    knowledge: &Knowledge,
    profile: Profile,
) -> Decision {
    Decision {
        model: model.name.to_string(),
        ranking: vec![RankedCandidate {
            model: model.name.to_string(),
            estimate: knowledge.estimate(features, model),
            utility: 0.0,
        }],
        excluded: Vec::new(),
        source: Source::Explicit,
        profile,
        reason: format!("the client asked for {}", model.name),
        features: *features,
        decision_us: 0,
    }
}

/// A small deterministic generator for exploration draws (SplitMix64).
#[derive(Debug, Clone, Copy)]
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candidate::{Capabilities, Price};
    use crate::features::{Band, Complexity, Domain, DomainGuess, Language, LanguageGuess, Needs};
    use crate::learning::{Context, Outcome};

    #[test]
    fn reasons_print_numbers_as_the_standard_formatter_does() {
        let values = [
            0.0,
            -0.0,
            0.5,
            0.004,
            0.125,
            0.8449,
            0.999,
            1.0,
            12.5,
            399.6,
            1234.0,
            3e-7,
            0.000_123_4,
            0.0042,
            -0.0004,
            -0.031,
            -1.2345,
            2.5e9,
            f64::NAN,
            f64::INFINITY,
            1e300,
        ];
        for x in values {
            for decimals in [0u32, 2, 3, 6] {
                let width = decimals as usize;
                for plus in [false, true] {
                    let mut ours = String::new();
                    push_fixed(&mut ours, x, decimals, plus);
                    let std = if plus { format!("{x:+.width$}") } else { format!("{x:.width$}") };
                    assert_eq!(ours, std, "{x} with {decimals} decimals");
                }
            }
        }
    }

    fn features(domain: Domain, language: Language) -> Features {
        Features {
            language: LanguageGuess { primary: language, secondary: None, confidence: 1.0 },
            domain: DomainGuess { domain, confidence: 1.0, runner_up: None },
            complexity: Complexity { score: 0.5, band: Band::Medium },
            prompt_tokens: 200,
            expected_output_tokens: 300,
            needs: Needs { context_tokens: 500, ..Needs::default() },
        }
    }

    fn candidate(name: &'static str, input: f64, output: f64) -> Candidate<'static> {
        Candidate {
            name,
            weight: 1.0,
            price: Price { input_per_mtok: input, output_per_mtok: output },
            context_window: 100_000,
            capabilities: Capabilities::default(),
            availability: Availability::Healthy,
            tags: &[],
        }
    }

    #[test]
    fn the_profile_decides_between_a_strong_expensive_model_and_a_cheap_one() {
        let mut k = Knowledge::default();
        let f = features(Domain::Code, Language::En);
        for _ in 0..50 {
            k.feedback("strong", Context::of(&f), 0.95, None);
            k.feedback("cheap", Context::of(&f), 0.75, None);
        }
        let candidates = [candidate("strong", 10.0, 30.0), candidate("cheap", 0.2, 0.6)];
        let pick = |profile| {
            decide(&f, &candidates, &k, &Params { profile, ..Params::default() }).unwrap().model
        };
        assert_eq!(pick(Profile::Quality), "strong");
        assert_eq!(pick(Profile::Cost), "cheap");
        // Equal quality: cost decides even for quality.
        let mut tie = Knowledge::default();
        for _ in 0..50 {
            tie.feedback("strong", Context::of(&f), 0.9, None);
            tie.feedback("cheap", Context::of(&f), 0.9, None);
        }
        let d = decide(
            &f,
            &candidates,
            &tie,
            &Params { profile: Profile::Quality, ..Params::default() },
        )
        .unwrap();
        assert_eq!(d.model, "cheap");
        assert_eq!(d.ranking.len(), 2);
        assert!(d.reason.contains("cheap"), "{}", d.reason);
    }

    #[test]
    fn fast_prefers_the_measured_faster_model() {
        let mut k = Knowledge::default();
        let f = features(Domain::Chat, Language::En);
        for _ in 0..10 {
            k.observe(
                "slow",
                Context::of(&f),
                Outcome::Success { latency_ms: 3000.0, output_tokens: 100, signal: None },
            );
            k.observe(
                "quick",
                Context::of(&f),
                Outcome::Success { latency_ms: 300.0, output_tokens: 100, signal: None },
            );
        }
        let candidates = [candidate("slow", 1.0, 1.0), candidate("quick", 1.0, 1.0)];
        let d =
            decide(&f, &candidates, &k, &Params { profile: Profile::Fast, ..Params::default() })
                .unwrap();
        assert_eq!(d.model, "quick");
    }

    #[test]
    fn incapable_unavailable_and_over_budget_candidates_are_excluded_with_reasons() {
        let k = Knowledge::default();
        let mut f = features(Domain::Chat, Language::En);
        f.needs.vision = true;
        let mut seeing = candidate("seeing", 1.0, 1.0);
        seeing.capabilities.vision = true;
        let mut down = candidate("down", 1.0, 1.0);
        down.capabilities.vision = true;
        down.availability = Availability::Unavailable;
        let mut pricey = candidate("pricey", 1000.0, 1000.0);
        pricey.capabilities.vision = true;
        let blind = candidate("blind", 1.0, 1.0);
        let params = Params { max_cost_usd: Some(0.01), ..Params::default() };
        let d = decide(&f, &[blind, down, seeing, pricey], &k, &params).unwrap();
        assert_eq!(d.model, "seeing");
        let reasons: Vec<_> =
            d.excluded.iter().map(|e| (e.model.as_str(), e.reason.as_str())).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons.iter().any(|(m, r)| *m == "blind" && r.contains("images")));
        assert!(reasons.iter().any(|(m, r)| *m == "pricey" && r.contains("budget")));
        let err = decide(&f, &[candidate("blind", 1.0, 1.0)], &k, &Params::default()).unwrap_err();
        assert!(err.to_string().contains("blind"));
    }

    #[test]
    fn exploration_is_deterministic_per_seed_and_tries_the_unmeasured() {
        let mut k = Knowledge::default();
        let f = features(Domain::Chat, Language::En);
        for _ in 0..100 {
            k.feedback("known", Context::of(&f), 0.62, None);
        }
        let candidates = [candidate("known", 1.0, 1.0), candidate("new", 1.0, 1.0)];
        let params = |seed| Params { seed, exploration: 1.0, ..Params::default() };
        let a = decide(&f, &candidates, &k, &params(7)).unwrap();
        let b = decide(&f, &candidates, &k, &params(7)).unwrap();
        assert_eq!(a, b);
        let tried = (0..200)
            .filter(|s| decide(&f, &candidates, &k, &params(*s)).unwrap().model == "new")
            .count();
        assert!(tried > 20 && tried < 180, "the unmeasured model was tried {tried} times in 200");
    }

    #[test]
    fn a_long_prompt_weighs_more_than_a_short_one() {
        let mut k = Knowledge::default();
        let mut short = features(Domain::Code, Language::En);
        short.prompt_tokens = 100;
        short.expected_output_tokens = 50;
        let mut long = short;
        long.prompt_tokens = 8_000;
        for _ in 0..50 {
            k.feedback("strong", Context::of(&short), 0.95, None);
            k.feedback("cheap", Context::of(&short), 0.8, None);
        }
        let candidates = [candidate("strong", 10.0, 30.0), candidate("cheap", 0.2, 0.6)];
        let params = Params { profile: Profile::Balanced, ..Params::default() };
        // The same two models, the same quality gap: worth paying for on a short prompt,
        // not eighty times over on a long one.
        assert_eq!(decide(&short, &candidates, &k, &params).unwrap().model, "strong");
        assert_eq!(decide(&long, &candidates, &k, &params).unwrap().model, "cheap");
    }

    #[test]
    fn thinly_measured_models_are_explored_from_their_whole_uncertainty() {
        assert_eq!(exploration_scale(0.3, 0.0), 1.0);
        assert!((exploration_scale(0.3, 3.0) - 0.65).abs() < 1e-12);
        assert!(exploration_scale(0.3, 300.0) < 0.31);
        assert_eq!(exploration_scale(1.0, 30.0), 1.0);

        let mut k = Knowledge::default();
        let f = features(Domain::Chat, Language::En);
        for _ in 0..100 {
            k.feedback("known", Context::of(&f), 0.7, None);
            k.feedback("measured-bad", Context::of(&f), 0.4, None);
        }
        // One unlucky answer is not the last word on a model, even at a low exploration.
        k.feedback("unlucky", Context::of(&f), 0.5, None);
        let candidates = [
            candidate("known", 1.0, 1.0),
            candidate("unlucky", 1.0, 1.0),
            candidate("measured-bad", 1.0, 1.0),
        ];
        let picks = |model: &str| {
            (0..1000)
                .filter(|s| {
                    let params = Params { seed: *s, exploration: 0.3, ..Params::default() };
                    decide(&f, &candidates, &k, &params).unwrap().model == model
                })
                .count()
        };
        let unlucky = picks("unlucky");
        assert!(
            unlucky > 30 && unlucky < 400,
            "the once-unlucky model was tried {unlucky} times in 1000"
        );
        assert_eq!(picks("measured-bad"), 0);
    }

    #[test]
    fn operator_weight_nudges_the_choice() {
        let k = Knowledge::default();
        let f = features(Domain::Chat, Language::En);
        let mut heavy = candidate("heavy", 1.0, 1.0);
        heavy.weight = 8.0;
        let d = decide(&f, &[candidate("plain", 1.0, 1.0), heavy], &k, &Params::default()).unwrap();
        assert_eq!(d.model, "heavy");
    }
}
