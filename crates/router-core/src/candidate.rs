//! What the policy may choose from: one entry per configured model (not per deployment),
//! with what the gateway knows of it right now.

use serde::{Deserialize, Serialize};

/// Price of a model in US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// Cost in US dollars of a call with the given token counts.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        (input_tokens as f64 * self.input_per_mtok + output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }
}

/// What a model can take besides plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub streaming: bool,
    pub tools: bool,
    pub vision: bool,
    pub json: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self { streaming: true, tools: false, vision: false, json: true }
    }
}

/// Whether a model can take traffic, as the gateway's health checks and circuit breakers
/// see it. A model is as available as its best deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// At least one deployment has a closed circuit.
    Healthy,
    /// No closed circuit, but a deployment is due for a half-open probe: usable, last resort.
    Recovering,
    /// Every deployment's circuit is open, or the operator disabled the model.
    Unavailable,
}

/// One model the request could be sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    /// The configured model name (the key learned statistics are kept under).
    pub name: &'a str,
    /// Operator weight; the sum over the model's enabled deployments. Zero takes no `auto`
    /// traffic.
    pub weight: f64,
    pub price: Price,
    pub context_window: u32,
    pub capabilities: Capabilities,
    pub availability: Availability,
    /// Free-form strengths and tags from the config (`code`, `chinese`, `cheap`, ...).
    pub tags: &'a [String],
}
