//! The policy: from features and candidates to a ranked [`Decision`].
//!
//! This is the seam the gateway's `auto` routing calls. It is a plain function of its inputs
//! (plus a random draw the caller hands in), so every decision can be replayed in a test.

use crate::candidate::{Availability, Candidate};
use crate::decision::{Decision, Estimate, Exclusion, Profile, RankedCandidate, Source};
use crate::features::Features;

/// Inputs to one decision besides the query and the candidates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub profile: Profile,
    /// A uniform draw in [0, 1) from the caller's random source; the policy's only
    /// randomness.
    pub draw: f64,
    /// Largest acceptable expected cost of the call in US dollars, if the caller set one.
    pub max_cost_usd: Option<f64>,
}

impl Default for Params {
    fn default() -> Self {
        Params { profile: Profile::Balanced, draw: 0.5, max_cost_usd: None }
    }
}

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
    if needs.context_tokens > candidate.context_window {
        return Some(format!(
            "needs ~{} tokens of context, model holds {}",
            needs.context_tokens, candidate.context_window
        ));
    }
    if let Some(max) = params.max_cost_usd {
        let cost = expected_cost(features, candidate);
        if cost > max {
            return Some(format!("expected cost ${cost:.6} is over the budget ${max:.6}"));
        }
    }
    None
}

/// Expected cost of sending this query to this candidate.
pub fn expected_cost(features: &Features, candidate: &Candidate<'_>) -> f64 {
    candidate
        .price
        .cost(u64::from(features.prompt_tokens), u64::from(features.expected_output_tokens))
}

/// Weighted choice among usable candidates: the first is drawn with probability
/// proportional to its weight, the rest follow by weight. Recovering models go last.
pub fn weighted(
    features: &Features,
    candidates: &[Candidate<'_>],
    params: &Params,
) -> Result<Decision, NoCandidate> {
    let mut usable = Vec::with_capacity(candidates.len());
    let mut excluded = Vec::new();
    for c in candidates {
        match exclusion_reason(features, c, params) {
            Some(reason) => excluded.push(Exclusion { model: c.name.to_string(), reason }),
            None => usable.push(c),
        }
    }
    if usable.is_empty() {
        return Err(NoCandidate { excluded });
    }
    usable.sort_by(|a, b| {
        (a.availability != Availability::Healthy)
            .cmp(&(b.availability != Availability::Healthy))
            .then(b.weight.total_cmp(&a.weight))
    });
    let healthy = usable.iter().take_while(|c| c.availability == Availability::Healthy).count();
    let pool = if healthy > 0 { healthy } else { usable.len() };
    let total: f64 = usable[..pool].iter().map(|c| c.weight).sum();
    let mut target = params.draw.clamp(0.0, 1.0) * total;
    let mut first = pool - 1;
    for (i, c) in usable[..pool].iter().enumerate() {
        if target < c.weight {
            first = i;
            break;
        }
        target -= c.weight;
    }
    let chosen = usable.remove(first);
    usable.insert(0, chosen);
    let ranking: Vec<RankedCandidate> = usable
        .iter()
        .map(|c| RankedCandidate {
            model: c.name.to_string(),
            estimate: Estimate {
                cost_usd: expected_cost(features, c),
                ..Estimate::default()
            },
            utility: c.weight / total.max(f64::MIN_POSITIVE),
        })
        .collect();
    Ok(Decision {
        model: ranking[0].model.clone(),
        reason: format!(
            "weighted choice among {} usable model(s); {} has weight {}",
            pool, chosen.name, chosen.weight
        ),
        ranking,
        excluded,
        source: Source::Policy,
        profile: params.profile,
        features: *features,
        decision_us: 0,
    })
}

/// The decision for a request that named its model: that model first, no ranking beyond it.
pub fn explicit(features: &Features, model: &Candidate<'_>, profile: Profile) -> Decision {
    Decision {
        model: model.name.to_string(),
        ranking: vec![RankedCandidate {
            model: model.name.to_string(),
            estimate: Estimate { cost_usd: expected_cost(features, model), ..Estimate::default() },
            utility: 1.0,
        }],
        excluded: Vec::new(),
        source: Source::Explicit,
        profile,
        reason: format!("the client asked for {}", model.name),
        features: *features,
        decision_us: 0,
    }
}
