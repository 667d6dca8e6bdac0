//! The outcome of routing one request, with everything needed to explain it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::features::Features;

/// What the caller wants the router to optimise for (`auto:<profile>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// The best expected answer, cost a distant second.
    Quality,
    /// Quality per dollar, with latency as a tie-breaker.
    #[default]
    Balanced,
    /// The cheapest model that is expected to answer well enough.
    Cost,
    /// The lowest expected latency among models expected to answer well enough.
    Fast,
}

impl Profile {
    pub const ALL: [Profile; 4] =
        [Profile::Quality, Profile::Balanced, Profile::Cost, Profile::Fast];

    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Quality => "quality",
            Profile::Balanced => "balanced",
            Profile::Cost => "cost",
            Profile::Fast => "fast",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A profile name that is not one of `quality`, `balanced`, `cost`, `fast` (or their aliases).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown routing profile `{0}` (expected quality, balanced, cost or fast)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "quality" | "best" => Ok(Profile::Quality),
            "balanced" | "default" | "" => Ok(Profile::Balanced),
            "cost" | "cheap" => Ok(Profile::Cost),
            "fast" | "latency" => Ok(Profile::Fast),
            _ => Err(UnknownProfile(s.to_string())),
        }
    }
}

/// Who made the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The local LLM judge picked the model.
    Judge,
    /// The learned policy picked the model.
    Policy,
    /// Nothing better was possible: the policy had no usable estimate, or the chosen model
    /// failed and the request moved down the ranking.
    Fallback,
    /// The client named a model.
    Explicit,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Judge => "judge",
            Source::Policy => "policy",
            Source::Fallback => "fallback",
            Source::Explicit => "explicit",
        }
    }
}

/// The policy's expectation of one model on this request.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Estimate {
    /// Expected quality of the answer in [0, 1].
    pub quality: f64,
    /// Expected cost of the call in US dollars.
    pub cost_usd: f64,
    /// Expected latency of the whole call in milliseconds.
    pub latency_ms: f64,
    /// How much evidence stands behind the estimate (observations, after back-off).
    pub evidence: f64,
}

/// One candidate in the ranking, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub model: String,
    pub estimate: Estimate,
    /// The profile's score of the estimate; the ranking is by this, highest first.
    pub utility: f64,
}

/// A model that could not be considered, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    pub model: String,
    pub reason: String,
}

/// A routing decision: the model to try first, the order to fail over in, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The model to try first; always `ranking[0].model`.
    pub model: String,
    /// Every usable candidate, best first. Failover walks down this list.
    pub ranking: Vec<RankedCandidate>,
    /// Candidates that were left out (disabled, open circuit, incapable, over budget).
    pub excluded: Vec<Exclusion>,
    pub source: Source,
    pub profile: Profile,
    /// One human-readable sentence on why `model` was chosen.
    pub reason: String,
    pub features: Features,
    /// Time the decision took, in microseconds; filled in by the caller, which owns the clock.
    pub decision_us: u64,
}
