//! What the router has learned of each model, and how it learns.
//!
//! For every model the router keeps posteriors in a hierarchy of contexts — the model as a
//! whole, per domain, per language, per (domain, language), and per (domain, language,
//! complexity band) — so that a thin context borrows strength from the coarser ones above
//! it: each level's estimate is its own evidence shrunk toward its parent's estimate
//! (`(Σw·r + k·parent) / (Σw + k)`). Quality is learned from explicit feedback (ratings
//! and scores) and from the few implicit signals that say something about an answer
//! (empty, truncated, abandoned); reliability from every outcome; latency and answer length
//! from every success. Config priors (per domain, per language, strengths) seed it all.
//!
//! Evidence is capped per cell, so the state keeps moving: a model that starts failing, or
//! gets better, shows it within a bounded number of requests.
//!
//! With [`LearningConfig::memory`] set, quality is also learned per neighbourhood of similar
//! past queries (see [`memory`](crate::memory)): [`Knowledge::remember`] feeds it, and
//! [`Knowledge::estimate_recalled`] blends what the query's neighbours say with the context
//! posterior, in proportion to the evidence behind each.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::candidate::Candidate;
use crate::decision::Estimate;
use crate::evidence::Evidence;
use crate::features::{Band, Domain, Features, Language};
use crate::memory::{Memory, MemoryConfig, Recall, Sketch};

const DOMAINS: usize = Domain::ALL.len();
const LANGUAGES: usize = Language::ALL.len();
const BANDS: usize = Band::ALL.len();

/// Evidence layout: [model] [domain × 8] [language × 13] [domain×language × 104]
/// [domain×language×band × 312].
const DOMAIN_BASE: usize = 1;
const LANGUAGE_BASE: usize = DOMAIN_BASE + DOMAINS;
const PAIR_BASE: usize = LANGUAGE_BASE + LANGUAGES;
const LEAF_BASE: usize = PAIR_BASE + DOMAINS * LANGUAGES;
const CELLS: usize = LEAF_BASE + DOMAINS * LANGUAGES * BANDS;

/// The context a request is learned under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Context {
    pub domain: Domain,
    pub language: Language,
    pub band: Band,
}

impl Context {
    pub fn of(features: &Features) -> Context {
        Context {
            domain: features.domain.domain,
            language: features.language.primary,
            band: features.complexity.band,
        }
    }

    fn domain_cell(self) -> usize {
        DOMAIN_BASE + self.domain as usize
    }
    fn language_cell(self) -> usize {
        LANGUAGE_BASE + language_index(self.language)
    }
    fn pair_cell(self) -> usize {
        PAIR_BASE + self.domain as usize * LANGUAGES + language_index(self.language)
    }
    fn leaf_cell(self) -> usize {
        LEAF_BASE
            + (self.domain as usize * LANGUAGES + language_index(self.language)) * BANDS
            + self.band as usize
    }

    /// Every cell an observation in this context updates.
    fn cells(self) -> [usize; 5] {
        [0, self.domain_cell(), self.language_cell(), self.pair_cell(), self.leaf_cell()]
    }
}

fn language_index(language: Language) -> usize {
    Language::ALL.iter().position(|l| *l == language).unwrap_or(LANGUAGES - 1)
}

/// Tunables of learning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LearningConfig {
    /// Pseudo-observations a parent estimate (or a prior) counts for in its child: how much
    /// evidence a context needs before it outweighs the coarser view.
    pub backoff_strength: f64,
    /// Pseudo-observations behind a configured prior.
    pub prior_strength: f64,
    /// Weight of one explicit feedback (a rating or a score).
    pub feedback_weight: f64,
    /// Weight of one implicit quality signal (an empty, truncated or abandoned answer).
    pub implicit_weight: f64,
    /// Evidence kept per cell at most; older evidence fades proportionally beyond it.
    pub max_evidence: f64,
    /// Quality assumed of a model with no prior and no data.
    pub default_quality: f64,
    /// Success rate assumed of a model with no data, and its pseudo-observations.
    pub default_reliability: f64,
    pub reliability_strength: f64,
    /// Latency assumed of a model not yet measured, in milliseconds.
    pub default_latency_ms: f64,
    /// Outcomes kept for the reliability estimate at most (a sliding memory).
    pub max_outcomes: f64,
    /// The memory of similar past queries; `None` turns it off (estimates then come from
    /// the contexts alone).
    #[serde(default)]
    pub memory: Option<MemoryConfig>,
}

impl Default for LearningConfig {
    fn default() -> Self {
        LearningConfig {
            backoff_strength: 4.0,
            prior_strength: 3.0,
            feedback_weight: 1.0,
            implicit_weight: 0.3,
            max_evidence: 400.0,
            default_quality: 0.6,
            default_reliability: 0.98,
            reliability_strength: 10.0,
            default_latency_ms: 2_000.0,
            max_outcomes: 30.0,
            memory: None,
        }
    }
}

/// Prior knowledge of a model from the config: quality per domain and per language in
/// [0, 1], and free-form strengths.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prior {
    /// Overall quality, if configured (`priors.overall`).
    pub overall: Option<f64>,
    pub domains: Vec<(Domain, f64)>,
    pub languages: Vec<(Language, f64)>,
}

impl Prior {
    /// Reads config priors (`code = 0.9`, `"lang:zh" = 0.8`, `overall = 0.7`) and strength
    /// tags (`code`, `math`, `chinese`, `writing`, ...): a tag that names a domain or a
    /// language lifts that prior a little above the model's overall prior.
    pub fn from_config<'a>(
        entries: impl IntoIterator<Item = (&'a str, f64)>,
        tags: impl IntoIterator<Item = &'a str>,
    ) -> Result<Prior, String> {
        let mut prior = Prior::default();
        for (key, value) in entries {
            let value = value.clamp(0.0, 1.0);
            if key == "overall" {
                prior.overall = Some(value);
            } else if let Some(code) = key.strip_prefix("lang:") {
                let language = Language::from_code(code)
                    .ok_or_else(|| format!("unknown language `{code}` in `{key}`"))?;
                prior.languages.push((language, value));
            } else {
                let domain = Domain::parse(key).ok_or_else(|| {
                    format!(
                        "`{key}` is not a domain ({}), `lang:<code>` or `overall`",
                        Domain::ALL.map(Domain::as_str).join(", ")
                    )
                })?;
                prior.domains.push((domain, value));
            }
        }
        let base = prior.overall.unwrap_or(LearningConfig::default().default_quality);
        let lifted = (base + 0.15).min(0.95);
        for tag in tags {
            let tag = tag.trim().to_ascii_lowercase();
            if let Some(domain) = Domain::parse(&tag).or_else(|| tag_domain(&tag))
                && !prior.domains.iter().any(|(d, _)| *d == domain)
            {
                prior.domains.push((domain, lifted));
            }
            if let Some(language) = tag_language(&tag)
                && !prior.languages.iter().any(|(l, _)| *l == language)
            {
                prior.languages.push((language, lifted));
            }
        }
        Ok(prior)
    }

    fn domain(&self, d: Domain) -> Option<f64> {
        self.domains.iter().find(|(x, _)| *x == d).map(|(_, v)| *v)
    }

    fn language(&self, l: Language) -> Option<f64> {
        self.languages.iter().find(|(x, _)| *x == l).map(|(_, v)| *v)
    }
}

fn tag_domain(tag: &str) -> Option<Domain> {
    Some(match tag {
        "coding" | "programming" => Domain::Code,
        "maths" | "mathematics" => Domain::Math,
        "creative" | "creative-writing" | "roleplay" => Domain::Writing,
        "translate" => Domain::Translation,
        "summarization" | "summarisation" | "extraction" => Domain::TextProcessing,
        "qa" | "facts" => Domain::Knowledge,
        "conversation" => Domain::Chat,
        _ => return None,
    })
}

fn tag_language(tag: &str) -> Option<Language> {
    Some(match tag {
        "chinese" | "zh" | "中文" => Language::Zh,
        "english" | "en" => Language::En,
        "japanese" | "ja" => Language::Ja,
        "korean" | "ko" => Language::Ko,
        "french" | "fr" => Language::Fr,
        "german" | "de" => Language::De,
        "spanish" | "es" => Language::Es,
        "italian" | "it" => Language::It,
        "portuguese" | "pt" => Language::Pt,
        "dutch" | "nl" => Language::Nl,
        "russian" | "ru" => Language::Ru,
        _ => return None,
    })
}

/// Running means of what a model's successful answers took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
struct Usage {
    n: f64,
    latency_ms: f64,
    output_tokens: f64,
}

impl Usage {
    fn add(&mut self, latency_ms: f64, output_tokens: f64) {
        // A running mean over the first 20 answers, then an exponential one, so that the
        // estimate follows a model that gets slower.
        self.n += 1.0;
        let rate = 1.0 / self.n.min(20.0);
        self.latency_ms += rate * (latency_ms - self.latency_ms);
        self.output_tokens += rate * (output_tokens - self.output_tokens);
    }
}

/// Everything learned of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    #[serde(with = "cells_serde")]
    quality: Vec<Evidence>,
    /// Successes and failures, decayed beyond `max_outcomes`.
    ok: f64,
    failed: f64,
    usage: Usage,
    usage_by_domain: [Usage; DOMAINS],
    /// Requests decided for this model, all time.
    pub decisions: u64,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            quality: vec![Evidence::default(); CELLS],
            ok: 0.0,
            failed: 0.0,
            usage: Usage::default(),
            usage_by_domain: [Usage::default(); DOMAINS],
            decisions: 0,
        }
    }
}

/// Cells are stored sparsely: most of the 438 are empty.
mod cells_serde {
    use super::{CELLS, Evidence};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(cells: &[Evidence], s: S) -> Result<S::Ok, S::Error> {
        let sparse: Vec<(usize, f64, f64)> = cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.w > 0.0)
            .map(|(i, c)| (i, c.w, c.s))
            .collect();
        sparse.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Evidence>, D::Error> {
        let sparse = Vec::<(usize, f64, f64)>::deserialize(d)?;
        let mut cells = vec![Evidence::default(); CELLS];
        for (i, w, s) in sparse {
            if i < CELLS && w.is_finite() && s.is_finite() && w > 0.0 {
                cells[i] = Evidence { w, s: s.clamp(0.0, w) };
            }
        }
        Ok(cells)
    }
}

/// How a routed request ended, as learning sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Answered. `signal` is an implicit judgement of the answer, if there is one.
    Success { latency_ms: f64, output_tokens: u64, signal: Option<Implicit> },
    /// The model could not answer (after its deployments' retries).
    Failure,
}

/// Implicit evidence about an answer's quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implicit {
    /// Nothing came back.
    Empty,
    /// Cut off at the output limit.
    Truncated,
    /// The client went away mid-answer.
    Abandoned,
}

impl Implicit {
    fn reward(self) -> f64 {
        match self {
            Implicit::Empty => 0.0,
            Implicit::Truncated => 0.4,
            Implicit::Abandoned => 0.3,
        }
    }
}

/// A map keyed by model name. The names are the operator's (the configuration, the stored
/// learned state), never a client's, so the map needs no defence against chosen collisions;
/// FNV-1a hashes a name of a dozen bytes in a fraction of SipHash's time, and every decision
/// looks up each candidate's state and prior.
type ByModel<V> = HashMap<String, V, BuildHasherDefault<NameHasher>>;

/// FNV-1a, 64 bits.
#[derive(Debug, Clone, Copy)]
struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The learned state of all models, with their priors. Serialisable, so it survives
/// restarts through the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Knowledge {
    pub config: LearningConfig,
    models: ByModel<ModelState>,
    #[serde(default)]
    priors: ByModel<Prior>,
    /// Filled only while [`LearningConfig::memory`] is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<Memory>,
}

/// A summary of one learned cell, for the stats API and the dashboard.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LearnedCell {
    pub model: String,
    pub domain: Domain,
    pub language: Language,
    pub quality: f64,
    pub evidence: f64,
}

impl Knowledge {
    pub fn new(config: LearningConfig) -> Self {
        Knowledge { config, models: ByModel::default(), priors: ByModel::default(), memory: None }
    }

    /// Sets a model's prior (replacing any earlier one).
    pub fn set_prior(&mut self, model: &str, prior: Prior) {
        self.priors.insert(model.to_string(), prior);
    }

    pub fn prior(&self, model: &str) -> Option<&Prior> {
        self.priors.get(model)
    }

    /// Learned state of a model, if any.
    pub fn model(&self, name: &str) -> Option<&ModelState> {
        self.models.get(name)
    }

    fn state(&mut self, model: &str) -> &mut ModelState {
        // Looked up before inserting: `entry` would need an owned key, an allocation on
        // every decision and outcome for a model that is almost always already known.
        if !self.models.contains_key(model) {
            self.models.insert(model.to_owned(), ModelState::default());
        }
        self.models.get_mut(model).expect("inserted just above")
    }

    /// Counts a decision for a model (the dashboard shows what the policy chose).
    pub fn record_decision(&mut self, model: &str) {
        self.state(model).decisions += 1;
    }

    /// Learns from how a request sent to `model` ended.
    pub fn observe(&mut self, model: &str, context: Context, outcome: Outcome) {
        let config = self.config;
        let state = self.state(model);
        match outcome {
            Outcome::Success { latency_ms, output_tokens, signal } => {
                state.ok += 1.0;
                if latency_ms.is_finite() && latency_ms >= 0.0 {
                    state.usage.add(latency_ms, output_tokens as f64);
                    state.usage_by_domain[context.domain as usize]
                        .add(latency_ms, output_tokens as f64);
                }
                if let Some(signal) = signal {
                    for cell in context.cells() {
                        state.quality[cell].add(
                            config.implicit_weight,
                            signal.reward(),
                            config.max_evidence,
                        );
                    }
                }
            }
            Outcome::Failure => state.failed += 1.0,
        }
        let total = state.ok + state.failed;
        if total > config.max_outcomes {
            let keep = config.max_outcomes / total;
            state.ok *= keep;
            state.failed *= keep;
        }
    }

    /// Learns from feedback on an answer of `model`: `score` in [0, 1]. When the feedback
    /// replaces earlier feedback on the same answer, `replaces` is the earlier score, whose
    /// evidence is taken back so the answer does not count twice.
    pub fn feedback(&mut self, model: &str, context: Context, score: f64, replaces: Option<f64>) {
        self.feedback_weighted(model, context, score, self.config.feedback_weight, replaces);
    }

    /// [`Knowledge::feedback`] with an explicit weight (evaluation replays use weight 1 for
    /// every known result).
    pub fn feedback_weighted(
        &mut self,
        model: &str,
        context: Context,
        score: f64,
        weight: f64,
        replaces: Option<f64>,
    ) {
        if !score.is_finite() {
            return;
        }
        let score = score.clamp(0.0, 1.0);
        let cap = self.config.max_evidence;
        let state = self.state(model);
        for cell in context.cells() {
            if let Some(old) = replaces.filter(|o| o.is_finite()) {
                state.quality[cell].add(-weight, old.clamp(0.0, 1.0), cap);
            }
            state.quality[cell].add(weight, score, cap);
        }
    }

    /// Learns, in the memory of similar queries, that `model` scored `score` in [0, 1] on
    /// the query with this sketch; `replaces` takes back an earlier score for the same
    /// answer. Does nothing while the memory is off. The contexts are fed separately (by
    /// [`Knowledge::feedback`] and friends), so callers do both.
    pub fn remember(
        &mut self,
        model: &str,
        sketch: &Sketch,
        score: f64,
        weight: f64,
        replaces: Option<f64>,
    ) {
        let Some(memory_config) = self.config.memory else { return };
        self.memory.get_or_insert_with(Memory::new).remember(
            &memory_config,
            model,
            sketch,
            score,
            weight,
            replaces,
        );
    }

    /// What the memory says about every model for the query with this sketch; empty while
    /// the memory is off or has nothing near. Computed once per request and passed to
    /// [`Knowledge::estimate_recalled`] for each candidate.
    pub fn recall(&self, sketch: &Sketch) -> Recall {
        match (&self.config.memory, &self.memory) {
            (Some(config), Some(memory)) => memory.recall(config, sketch),
            _ => Recall::none(),
        }
    }

    /// The memory of similar queries, if it is on and has learned anything.
    pub fn memory(&self) -> Option<&Memory> {
        self.memory.as_ref()
    }

    /// The expected quality, cost and latency of sending this query to this candidate,
    /// from the contexts alone.
    pub fn estimate(&self, features: &Features, candidate: &Candidate<'_>) -> Estimate {
        self.estimate_recalled(features, &Recall::none(), candidate)
    }

    /// [`Knowledge::estimate`], with what the query's neighbours in the memory say blended
    /// into the quality: `(e·q_memory + k·q_context) / (e + k)` for memory evidence `e` and
    /// strength `k`, so a thin neighbourhood nudges and a well-measured one decides.
    pub fn estimate_recalled(
        &self,
        features: &Features,
        recall: &Recall,
        candidate: &Candidate<'_>,
    ) -> Estimate {
        let config = &self.config;
        let context = Context::of(features);
        // A model with no state yet reads as empty; one shared empty state, so an estimate
        // allocates nothing.
        static EMPTY: LazyLock<ModelState> = LazyLock::new(ModelState::default);
        let state = self.models.get(candidate.name).unwrap_or(&EMPTY);
        let prior = self.priors.get(candidate.name);
        let k = config.backoff_strength;
        let cells = &state.quality;

        let base = prior.and_then(|p| p.overall).unwrap_or(config.default_quality);
        let q_model = cells[0].shrunk(base, config.prior_strength);
        let (domain_prior, domain_k) = match prior.and_then(|p| p.domain(context.domain)) {
            Some(p) => (p, config.prior_strength),
            None => (q_model, k),
        };
        let q_domain = cells[context.domain_cell()].shrunk(domain_prior, domain_k);
        let (language_prior, language_k) = match prior.and_then(|p| p.language(context.language)) {
            Some(p) => (p, config.prior_strength),
            None => (q_model, k),
        };
        let q_language = cells[context.language_cell()].shrunk(language_prior, language_k);
        // A model's way with a language shifts all its domains alike.
        let pair_prior = (q_domain + (q_language - q_model)).clamp(0.0, 1.0);
        let q_pair = cells[context.pair_cell()].shrunk(pair_prior, k);
        let q_leaf = cells[context.leaf_cell()].shrunk(q_pair, k);
        let (quality, memory_evidence) = match (config.memory, recall.model(candidate.name)) {
            (Some(memory), Some(recalled)) => {
                let strength = memory.strength.max(0.0);
                let q = (recalled.evidence * recalled.quality + strength * q_leaf)
                    / (recalled.evidence + strength);
                (q, recalled.evidence)
            }
            _ => (q_leaf, 0.0),
        };

        let outcomes = state.ok + state.failed;
        let reliability = (state.ok + config.reliability_strength * config.default_reliability)
            / (outcomes + config.reliability_strength);

        let usage = &state.usage_by_domain[context.domain as usize];
        let (latency_ms, output_tokens) = if usage.n >= 3.0 {
            (usage.latency_ms, usage.output_tokens)
        } else if state.usage.n >= 1.0 {
            (state.usage.latency_ms, state.usage.output_tokens)
        } else {
            (config.default_latency_ms, f64::from(features.expected_output_tokens))
        };
        let output_tokens = if output_tokens.is_finite() && output_tokens > 0.0 {
            output_tokens
        } else {
            f64::from(features.expected_output_tokens)
        };
        let cost_usd =
            candidate.price.cost(u64::from(features.prompt_tokens), output_tokens.round() as u64);
        Estimate {
            quality: (quality * reliability).clamp(0.0, 1.0),
            cost_usd,
            latency_ms,
            evidence: cells[context.domain_cell()].w
                + cells[context.pair_cell()].w
                + cells[context.leaf_cell()].w
                + memory_evidence,
        }
    }

    /// What has been learned per model × domain × language (cells with evidence).
    pub fn learned(&self) -> Vec<LearnedCell> {
        let mut out = Vec::new();
        for (model, state) in &self.models {
            for domain in Domain::ALL {
                for language in Language::ALL {
                    let context = Context { domain, language, band: Band::Low };
                    let cell = state.quality[context.pair_cell()];
                    if cell.w > 0.0 {
                        out.push(LearnedCell {
                            model: model.clone(),
                            domain,
                            language,
                            quality: cell.s / cell.w,
                            evidence: cell.w,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (&a.model, a.domain, a.language.code()).cmp(&(&b.model, b.domain, b.language.code()))
        });
        out
    }

    /// Adds performance measured elsewhere (an import: a team's logs, an evaluation):
    /// `weight` observations of quality `quality` for `model` at the level the dimensions
    /// name — the model as a whole, a domain, a language, or a domain × language. Unlike
    /// feedback, it does not spill into the coarser levels: an import states each level it
    /// knows.
    pub fn seed(
        &mut self,
        model: &str,
        domain: Option<Domain>,
        language: Option<Language>,
        quality: f64,
        weight: f64,
    ) {
        if !quality.is_finite() || !weight.is_finite() || weight <= 0.0 {
            return;
        }
        let cap = self.config.max_evidence;
        let band = Band::Medium;
        let cell = match (domain, language) {
            (None, None) => 0,
            (Some(domain), None) => {
                Context { domain, language: Language::Unknown, band }.domain_cell()
            }
            (None, Some(language)) => {
                Context { domain: Domain::Chat, language, band }.language_cell()
            }
            (Some(domain), Some(language)) => Context { domain, language, band }.pair_cell(),
        };
        self.state(model).quality[cell].add(weight, quality.clamp(0.0, 1.0), cap);
    }

    /// Folds another replica's learned state into this one: evidence is added cell by cell.
    /// Used when several gateways share a database; each publishes what it learned since its
    /// last publication as a delta.
    pub fn merge_delta(&mut self, delta: &Knowledge) {
        let cap = self.config.max_evidence;
        let max = self.config.max_outcomes;
        for (name, other) in &delta.models {
            let state = self.state(name);
            for (mine, theirs) in state.quality.iter_mut().zip(&other.quality) {
                if theirs.w > 0.0 {
                    mine.add(theirs.w, theirs.s / theirs.w, cap);
                }
            }
            state.ok += other.ok;
            state.failed += other.failed;
            state.decisions += other.decisions;
            let outcomes = state.ok + state.failed;
            if outcomes > max {
                state.ok *= max / outcomes;
                state.failed *= max / outcomes;
            }
        }
    }

    /// Nothing has been learned (no model has any state).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_hash_as_fnv_1a() {
        // Published FNV-1a 64 test vectors.
        for (text, expected) in [("", 0xcbf2_9ce4_8422_2325), ("a", 0xaf63_dc4c_8601_ec8c)] {
            let mut hasher = NameHasher::default();
            hasher.write(text.as_bytes());
            assert_eq!(hasher.finish(), expected, "{text:?}");
        }
    }
    use crate::candidate::{Availability, Capabilities, Price};
    use crate::features::{Complexity, DomainGuess, LanguageGuess, Needs};

    pub(crate) fn features(domain: Domain, language: Language) -> Features {
        Features {
            language: LanguageGuess { primary: language, secondary: None, confidence: 1.0 },
            domain: DomainGuess { domain, confidence: 1.0, runner_up: None },
            complexity: Complexity { score: 0.5, band: Band::Medium },
            prompt_tokens: 100,
            expected_output_tokens: 200,
            needs: Needs { context_tokens: 300, ..Needs::default() },
        }
    }

    fn candidate(name: &str) -> Candidate<'_> {
        Candidate {
            name,
            weight: 1.0,
            price: Price { input_per_mtok: 1.0, output_per_mtok: 2.0 },
            context_window: 8192,
            capabilities: Capabilities::default(),
            availability: Availability::Healthy,
            tags: &[],
        }
    }

    #[test]
    fn feedback_moves_the_estimate_of_its_context_most() {
        let mut k = Knowledge::default();
        let code = features(Domain::Code, Language::En);
        let chat = features(Domain::Chat, Language::En);
        let before = k.estimate(&code, &candidate("m")).quality;
        for _ in 0..30 {
            k.feedback("m", Context::of(&code), 1.0, None);
        }
        let after_code = k.estimate(&code, &candidate("m")).quality;
        let after_chat = k.estimate(&chat, &candidate("m")).quality;
        assert!(after_code > 0.9, "{after_code}");
        assert!(
            after_code > after_chat && after_chat > before,
            "{after_code} {after_chat} {before}"
        );
    }

    #[test]
    fn replaced_feedback_does_not_count_twice() {
        let mut a = Knowledge::default();
        let mut b = Knowledge::default();
        let f = features(Domain::Math, Language::Zh);
        a.feedback("m", Context::of(&f), 0.0, None);
        a.feedback("m", Context::of(&f), 1.0, Some(0.0));
        b.feedback("m", Context::of(&f), 1.0, None);
        let qa = a.estimate(&f, &candidate("m")).quality;
        let qb = b.estimate(&f, &candidate("m")).quality;
        assert!((qa - qb).abs() < 1e-9, "{qa} vs {qb}");
    }

    #[test]
    fn failures_lower_the_estimate_and_recovery_restores_it() {
        let mut k = Knowledge::default();
        let f = features(Domain::Chat, Language::En);
        let healthy = k.estimate(&f, &candidate("m")).quality;
        for _ in 0..40 {
            k.observe("m", Context::of(&f), Outcome::Failure);
        }
        let failing = k.estimate(&f, &candidate("m")).quality;
        assert!(failing < healthy * 0.3, "{failing} vs {healthy}");
        for _ in 0..80 {
            k.observe(
                "m",
                Context::of(&f),
                Outcome::Success { latency_ms: 100.0, output_tokens: 50, signal: None },
            );
        }
        let recovered = k.estimate(&f, &candidate("m")).quality;
        assert!(recovered > healthy * 0.85, "{recovered} vs {healthy}");
    }

    #[test]
    fn priors_and_strength_tags_seed_the_estimate() {
        let mut k = Knowledge::default();
        let tags = ["chinese".to_string()];
        let prior = Prior::from_config([("code", 0.9)], tags.iter().map(String::as_str)).unwrap();
        k.set_prior("m", prior);
        let code = k.estimate(&features(Domain::Code, Language::En), &candidate("m")).quality;
        let chat = k.estimate(&features(Domain::Chat, Language::En), &candidate("m")).quality;
        let zh = k.estimate(&features(Domain::Chat, Language::Zh), &candidate("m")).quality;
        assert!(code > chat, "{code} {chat}");
        assert!(zh > chat, "{zh} {chat}");
        assert!(Prior::from_config([("cooking", 0.5)], []).is_err());
    }

    #[test]
    fn latency_and_output_length_are_learned() {
        let mut k = Knowledge::default();
        let f = features(Domain::Code, Language::En);
        for _ in 0..5 {
            k.observe(
                "m",
                Context::of(&f),
                Outcome::Success { latency_ms: 800.0, output_tokens: 1000, signal: None },
            );
        }
        let e = k.estimate(&f, &candidate("m"));
        assert!((e.latency_ms - 800.0).abs() < 1e-6);
        // 100 input tokens at $1/M and 1000 output tokens at $2/M.
        assert!((e.cost_usd - 0.0021).abs() < 1e-9, "{}", e.cost_usd);
    }

    #[test]
    fn a_replicas_delta_folds_in_once() {
        let f = features(Domain::Code, Language::En);
        let mut mine = Knowledge::default();
        let mut theirs = Knowledge::default();
        assert!(theirs.is_empty());
        for _ in 0..30 {
            theirs.feedback("m", Context::of(&f), 1.0, None);
            theirs.observe("m", Context::of(&f), Outcome::Failure);
        }
        let before = mine.estimate(&f, &candidate("m")).quality;
        mine.merge_delta(&theirs);
        let state = mine.model("m").unwrap();
        assert!(state.ok + state.failed <= mine.config.max_outcomes + 1e-9);
        let after = mine.estimate(&f, &candidate("m"));
        assert!(after.evidence > 50.0, "{after:?}");
        assert!(after.quality < before, "thirty failures weigh on reliability: {after:?}");
    }

    #[test]
    fn seeding_sets_exactly_the_named_level() {
        let mut k = Knowledge::default();
        k.seed("m", Some(Domain::Code), Some(Language::Zh), 0.95, 50.0);
        let zh_code = k.estimate(&features(Domain::Code, Language::Zh), &candidate("m")).quality;
        let en_code = k.estimate(&features(Domain::Code, Language::En), &candidate("m")).quality;
        assert!(zh_code > 0.85 && en_code < 0.65, "{zh_code} {en_code}");
        k.seed("m", None, None, 0.1, 1.0);
        k.seed("m", None, None, f64::NAN, 1.0);
        assert!(k.estimate(&features(Domain::Chat, Language::En), &candidate("m")).quality < 0.6);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut k = Knowledge::default();
        let f = features(Domain::Writing, Language::Zh);
        k.feedback("m", Context::of(&f), 0.8, None);
        k.observe(
            "m",
            Context::of(&f),
            Outcome::Success { latency_ms: 120.0, output_tokens: 40, signal: None },
        );
        let json = serde_json::to_string(&k).unwrap();
        let back: Knowledge = serde_json::from_str(&json).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.estimate(&f, &candidate("m")), k.estimate(&f, &candidate("m")));
    }

    #[test]
    fn the_memory_tells_apart_queries_that_share_a_context() {
        use crate::memory::{MemoryConfig, Sketch};
        let f = features(Domain::Reasoning, Language::En);
        let riddle = |i: usize| {
            format!(
                "Riddle {i}: what walks on four legs at dawn and {i} legs at dusk? Reply with one word."
            )
        };
        let blank = |i: usize| {
            format!(
                "Fill the blank with option A or B. Sentence {i}: the trophy did not fit in the case because _ was too big."
            )
        };
        let train = |memory: Option<MemoryConfig>| {
            let mut k = Knowledge::new(LearningConfig { memory, ..LearningConfig::default() });
            for i in 0..40 {
                for (text, score) in [(riddle(i), 1.0), (blank(i), 0.0)] {
                    k.feedback("m", Context::of(&f), score, None);
                    k.remember("m", &Sketch::of(&text), score, 1.0, None);
                }
            }
            k
        };
        let estimate = |k: &Knowledge, text: &str| {
            k.estimate_recalled(&f, &k.recall(&Sketch::of(text)), &candidate("m")).quality
        };
        // Contexts alone see one kind of query and learn the average.
        let contexts = train(None);
        assert!(contexts.memory().is_none());
        let (r, b) = (estimate(&contexts, &riddle(99)), estimate(&contexts, &blank(99)));
        assert!((r - b).abs() < 1e-9 && (r - 0.5).abs() < 0.1, "{r} {b}");
        // The memory tells the two templates apart.
        let memory = train(Some(MemoryConfig::default()));
        let (r, b) = (estimate(&memory, &riddle(99)), estimate(&memory, &blank(99)));
        assert!(r > 0.85 && b < 0.15, "{r} {b}");
        // The plain estimate stays the contexts' view, and the state round-trips.
        assert!((memory.estimate(&f, &candidate("m")).quality - 0.5).abs() < 0.1);
        let back: Knowledge =
            serde_json::from_str(&serde_json::to_string(&memory).unwrap()).unwrap();
        assert_eq!(back, memory);
    }

    #[test]
    fn evidence_is_capped_so_change_shows() {
        let mut k =
            Knowledge::new(LearningConfig { max_evidence: 50.0, ..LearningConfig::default() });
        let f = features(Domain::Code, Language::En);
        for _ in 0..1000 {
            k.feedback("m", Context::of(&f), 1.0, None);
        }
        for _ in 0..60 {
            k.feedback("m", Context::of(&f), 0.0, None);
        }
        let q = k.estimate(&f, &candidate("m")).quality;
        assert!(q < 0.5, "recent bad feedback must show: {q}");
    }
}
