//! The live model table: every configured model, its deployments, and what can change while
//! the gateway runs (weights, enabled flags, circuit state, recent health).
//!
//! Built once from the config. Everything mutable is an atomic or sits behind the circuit's
//! own small lock, so the request path reads it without a global lock, and an operator's
//! change takes effect on the very next request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::http::HeaderValue;
use router_core::{Availability, Candidate};
use router_providers::upstream::Upstream;
use serde::Serialize;

use crate::capacity::Capacity;
use crate::circuit::{Admission, Circuit, CircuitState};
use crate::config::{Config, ModelConfig, Provider};

/// An `f64` that can be read and written concurrently.
#[derive(Debug, Default)]
pub struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub fn new(v: f64) -> Self {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }
    pub fn load(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    pub fn store(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed)
    }
}

/// Counters of one deployment's calls since start.
#[derive(Debug, Default)]
pub struct CallCounters {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    /// Exponentially weighted mean latency of successful calls, in milliseconds.
    pub latency_ms: AtomicF64,
}

impl CallCounters {
    pub fn record(&self, ok: bool, latency_ms: f64) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if ok {
            let old = self.latency_ms.load();
            // A fresh deployment takes its first measurement as is.
            let new = if old == 0.0 { latency_ms } else { 0.8 * old + 0.2 * latency_ms };
            self.latency_ms.store(new);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One place a model is served from.
#[derive(Debug)]
pub struct Deployment {
    pub id: String,
    pub provider: Provider,
    pub base_url: String,
    pub upstream_model: String,
    pub upstream: Upstream,
    pub circuit: Circuit,
    pub capacity: Capacity,
    pub counters: CallCounters,
    /// The `x-router-model` and `x-router-deployment` values of every answer it gives,
    /// made once rather than on each answer.
    pub labels: Labels,
    weight: AtomicF64,
    enabled: AtomicBool,
}

/// Response header values naming a deployment and its model. `None` for a name a header
/// cannot carry (a control character), which the answer then goes without.
#[derive(Debug, Clone)]
pub struct Labels {
    pub model: Option<HeaderValue>,
    pub deployment: Option<HeaderValue>,
}

impl Labels {
    fn new(model: &str, deployment: &str) -> Labels {
        Labels {
            model: HeaderValue::from_str(model).ok(),
            deployment: HeaderValue::from_str(deployment).ok(),
        }
    }
}

impl Deployment {
    pub fn weight(&self) -> f64 {
        self.weight.load()
    }
    pub fn set_weight(&self, w: f64) {
        self.weight.store(w)
    }
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed)
    }
    fn usable_weight(&self) -> f64 {
        if self.is_enabled() { self.weight().max(0.0) } else { 0.0 }
    }
}

/// A model and its deployments.
#[derive(Debug)]
pub struct Model {
    pub config: ModelConfig,
    pub deployments: Vec<Deployment>,
    enabled: AtomicBool,
}

impl Model {
    pub fn name(&self) -> &str {
        &self.config.name
    }
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed)
    }

    /// Total live weight of the enabled deployments.
    pub fn weight(&self) -> f64 {
        self.deployments.iter().map(Deployment::usable_weight).sum()
    }

    /// As available as the best deployment.
    pub fn availability(&self, now: Instant) -> Availability {
        if !self.is_enabled() {
            return Availability::Unavailable;
        }
        let mut best = Availability::Unavailable;
        for d in self.deployments.iter().filter(|d| d.usable_weight() > 0.0) {
            match d.circuit.state(now) {
                CircuitState::Closed => return Availability::Healthy,
                CircuitState::HalfOpen if d.circuit.would_admit(now) => {
                    best = Availability::Recovering
                }
                _ => {}
            }
        }
        best
    }

    /// The model as the policy sees it.
    pub fn candidate(&self, now: Instant) -> Candidate<'_> {
        Candidate {
            name: &self.config.name,
            weight: self.weight(),
            price: self.config.price,
            context_window: self.config.context_window,
            capabilities: self.config.capabilities,
            availability: self.availability(now),
            tags: &self.config.tags,
        }
    }

    /// Picks a deployment for the next attempt. A deployment whose cooldown is over gets its
    /// single probe first (otherwise it could never recover while its siblings are healthy);
    /// then the choice is weighted among deployments with a closed circuit. Deployments at
    /// their in-flight limit are passed over (see [`Model::full`]). `skip` holds deployments
    /// already tried for this request; `draw` is uniform in [0, 1).
    pub fn pick(&self, skip: &[usize], now: Instant, draw: f64) -> Option<(usize, Admission)> {
        let eligible = |i: usize, d: &Deployment| {
            !skip.contains(&i) && d.usable_weight() > 0.0 && d.capacity.has_room()
        };
        for (i, d) in self.deployments.iter().enumerate() {
            if eligible(i, d)
                && d.circuit.state(now) == CircuitState::HalfOpen
                && d.circuit.admit(now) == Admission::Probe
            {
                return Some((i, Admission::Probe));
            }
        }
        let closed: Vec<(usize, f64)> = self
            .deployments
            .iter()
            .enumerate()
            .filter(|&(i, d)| eligible(i, d) && d.circuit.state(now) == CircuitState::Closed)
            .map(|(i, d)| (i, d.usable_weight()))
            .collect();
        // Closed circuits admit without a state change.
        weighted_index(&closed, draw).map(|i| (i, Admission::Allowed))
    }

    /// Deployments that [`pick`](Model::pick) passed over only because they are at their
    /// in-flight limit: healthy, enabled, not yet tried, and worth waiting for.
    pub fn full<'a>(&'a self, skip: &'a [usize], now: Instant) -> impl Iterator<Item = usize> + 'a {
        self.deployments.iter().enumerate().filter_map(move |(i, d)| {
            let waitable = !skip.contains(&i)
                && d.usable_weight() > 0.0
                && !d.capacity.has_room()
                && d.circuit.state(now) == CircuitState::Closed;
            waitable.then_some(i)
        })
    }
}

/// The index drawn from `(index, weight)` pairs with probability proportional to weight.
fn weighted_index(items: &[(usize, f64)], draw: f64) -> Option<usize> {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    if items.is_empty() || total <= 0.0 {
        return None;
    }
    let mut target = draw.clamp(0.0, 1.0) * total;
    for &(i, w) in items {
        if target < w {
            return Some(i);
        }
        target -= w;
    }
    items.last().map(|&(i, _)| i)
}

/// How a client named a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// `auto` / `auto:<profile>`: the router decides.
    Auto,
    /// A configured model (by name or alias), by index.
    Model(usize),
}

/// All models, by name.
#[derive(Debug)]
pub struct Registry {
    models: Vec<Model>,
    by_name: HashMap<String, usize>,
}

impl Registry {
    /// Builds the table; `upstream` makes the client for each deployment.
    pub fn new<E>(
        config: &Config,
        mut upstream: impl FnMut(&crate::config::DeploymentConfig) -> Result<Upstream, E>,
    ) -> Result<Registry, E> {
        let mut by_name = HashMap::new();
        let mut models = Vec::with_capacity(config.models.len());
        for (i, m) in config.models.iter().enumerate() {
            by_name.insert(m.name.clone(), i);
            let mut deployments = Vec::with_capacity(m.deployments.len());
            for d in &m.deployments {
                deployments.push(Deployment {
                    id: d.id.clone(),
                    provider: d.provider,
                    base_url: d.base_url.clone(),
                    upstream_model: d.upstream_model.clone(),
                    upstream: upstream(d)?,
                    circuit: Circuit::new(config.circuit.clone()),
                    capacity: Capacity::new(d.max_in_flight),
                    counters: CallCounters::default(),
                    labels: Labels::new(&m.name, &d.id),
                    weight: AtomicF64::new(d.weight),
                    enabled: AtomicBool::new(d.enabled),
                });
            }
            models.push(Model {
                enabled: AtomicBool::new(m.enabled),
                deployments,
                config: m.clone(),
            });
        }
        for (alias, target) in &config.aliases {
            if let Some(&i) = by_name.get(target) {
                by_name.entry(alias.clone()).or_insert(i);
            }
        }
        Ok(Registry { models, by_name })
    }

    pub fn models(&self) -> &[Model] {
        &self.models
    }

    pub fn model(&self, index: usize) -> &Model {
        &self.models[index]
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Resolves what a client put in `model`. `None` for an unknown name.
    pub fn resolve(&self, requested: &str) -> Option<Resolved> {
        if crate::config::is_auto(requested) {
            return Some(Resolved::Auto);
        }
        self.index_of(requested).map(Resolved::Model)
    }

    /// Every model as the policy sees it, in config order.
    pub fn candidates(&self, now: Instant) -> Vec<Candidate<'_>> {
        self.models.iter().map(|m| m.candidate(now)).collect()
    }

    /// Finds a deployment by id.
    pub fn deployment(&self, id: &str) -> Option<(&Model, &Deployment)> {
        self.models.iter().find_map(|m| m.deployments.iter().find(|d| d.id == id).map(|d| (m, d)))
    }

    /// A snapshot for `/models`, the CLI's table and the dashboard.
    pub fn status(&self, now: Instant) -> Vec<ModelStatus> {
        self.models
            .iter()
            .map(|m| ModelStatus {
                name: m.config.name.clone(),
                enabled: m.is_enabled(),
                availability: m.availability(now),
                weight: m.weight(),
                input_price: m.config.price.input_per_mtok,
                output_price: m.config.price.output_per_mtok,
                context_window: m.config.context_window,
                tags: m.config.tags.clone(),
                fallbacks: m.config.fallbacks.clone(),
                deployments: m
                    .deployments
                    .iter()
                    .map(|d| DeploymentStatus {
                        id: d.id.clone(),
                        provider: d.provider.as_str(),
                        base_url: d.base_url.clone(),
                        upstream_model: d.upstream_model.clone(),
                        weight: d.weight(),
                        enabled: d.is_enabled(),
                        circuit: d.circuit.state(now),
                        healthy: d.is_enabled() && d.circuit.state(now) == CircuitState::Closed,
                        calls: d.counters.calls.load(Ordering::Relaxed),
                        failures: d.counters.failures.load(Ordering::Relaxed),
                        recent_error_ratio: d.circuit.recent_error_ratio(),
                        latency_ms: d.counters.latency_ms.load(),
                        circuit_opened: d.circuit.times_opened(),
                        in_flight: d.capacity.in_flight(),
                        max_in_flight: d.capacity.max(),
                    })
                    .collect(),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelStatus {
    pub name: String,
    pub enabled: bool,
    pub availability: Availability,
    pub weight: f64,
    pub input_price: f64,
    pub output_price: f64,
    pub context_window: u32,
    pub tags: Vec<String>,
    pub fallbacks: Vec<String>,
    pub deployments: Vec<DeploymentStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub id: String,
    pub provider: &'static str,
    pub base_url: String,
    pub upstream_model: String,
    pub weight: f64,
    pub enabled: bool,
    pub circuit: CircuitState,
    pub healthy: bool,
    pub calls: u64,
    pub failures: u64,
    pub recent_error_ratio: f64,
    pub latency_ms: f64,
    pub circuit_opened: u64,
    /// Calls holding a slot now (streams until their last event).
    pub in_flight: u32,
    /// The deployment's limit, `null` for none.
    pub max_in_flight: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::{Labels, weighted_index};

    #[test]
    fn labels_hold_what_a_header_can_carry() {
        let labels = Labels::new("gpt-4o", "openai#1");
        assert_eq!(labels.model.unwrap(), "gpt-4o");
        assert_eq!(labels.deployment.unwrap(), "openai#1");
        let labels = Labels::new("bad\nname", "ok");
        assert!(labels.model.is_none());
        assert_eq!(labels.deployment.unwrap(), "ok");
    }

    #[test]
    fn weighted_index_follows_weights() {
        let items = [(0, 1.0), (1, 3.0)];
        assert_eq!(weighted_index(&items, 0.0), Some(0));
        assert_eq!(weighted_index(&items, 0.24), Some(0));
        assert_eq!(weighted_index(&items, 0.26), Some(1));
        assert_eq!(weighted_index(&items, 0.999), Some(1));
        assert_eq!(weighted_index(&[], 0.5), None);
        assert_eq!(weighted_index(&[(3, 0.0)], 0.5), None);
    }
}
