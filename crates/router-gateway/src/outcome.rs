//! The end of a request: its outcome record, its metrics, and (from the routing work on)
//! what the policy learns from it.
//!
//! Every request that got a decision ends here exactly once — answered, failed, or
//! cancelled by a client that went away — so the store holds an outcome for every request.

use std::time::{Duration, Instant};

use router_core::learning::{Context, Implicit, Outcome};
use router_core::{Features, Price, Source};
use router_providers::Usage;
use router_store::{Api, OutcomeRecord, OutcomeStatus};

use crate::app::{Answered, Gateway, epoch_ms};
use crate::dispatch::Attempt;

/// What is known about a request from its routing on, carried to its end.
#[derive(Debug, Clone)]
pub struct Trace {
    pub id: String,
    pub api: Api,
    pub received: Instant,
    pub features: Features,
    pub source: Source,
    /// The query's sketch, when the memory of similar queries is on.
    pub sketch: Option<router_core::memory::CompactSketch>,
}

/// The deployment that answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub model: String,
    pub deployment: String,
    pub price: Price,
}

/// How a request ended.
#[derive(Debug, Clone)]
pub enum Ending {
    /// Answered in full. `estimated` when the upstream reported no usage and the token
    /// counts are the gateway's estimate; `signal` says something about the answer's quality
    /// when it was empty or cut off.
    Answered { usage: Usage, estimated: bool, signal: Option<Implicit> },
    /// Failed: before an answer (no deployment could serve it) or mid-stream.
    Failed { kind: String, message: String },
    /// The client went away first.
    Cancelled,
}

impl Gateway {
    /// Records the end of a request: the outcome row (through the writer) and metrics.
    #[allow(clippy::too_many_arguments)]
    pub fn finish(
        &self,
        trace: &Trace,
        served: Option<&Served>,
        attempts: &[Attempt],
        ending: Ending,
        http_status: u16,
        ttft: Option<Duration>,
    ) {
        let latency = trace.received.elapsed();
        let (status, usage, error_kind, error_message) = match &ending {
            Ending::Answered { usage, .. } => (OutcomeStatus::Ok, *usage, None, None),
            Ending::Failed { kind, message } => {
                (OutcomeStatus::Error, Usage::default(), Some(kind.clone()), Some(message.clone()))
            }
            Ending::Cancelled => (OutcomeStatus::Cancelled, Usage::default(), None, None),
        };
        let cost = served.map_or(0.0, |s| s.price.cost(usage.input_tokens, usage.output_tokens));
        let model = served.map(|s| s.model.as_str()).unwrap_or("none");
        let api = trace.api.as_str();

        self.metrics.inc(
            "llm_router_requests_total",
            &[("api", api), ("model", model), ("status", status.as_str())],
            1,
        );
        self.metrics.observe(
            "llm_router_request_duration_seconds",
            &[("api", api)],
            latency.as_secs_f64(),
        );
        if let Some(ttft) = ttft {
            self.metrics.observe(
                "llm_router_time_to_first_token_seconds",
                &[("model", model)],
                ttft.as_secs_f64(),
            );
        }
        if usage.input_tokens + usage.output_tokens > 0 {
            self.metrics.inc(
                "llm_router_tokens_total",
                &[("model", model), ("direction", "input")],
                usage.input_tokens,
            );
            self.metrics.inc(
                "llm_router_tokens_total",
                &[("model", model), ("direction", "output")],
                usage.output_tokens,
            );
            self.metrics.add_f64("llm_router_cost_usd_total", &[("model", model)], cost);
        }
        for a in attempts {
            let result = a.error_kind.unwrap_or("ok");
            self.metrics.inc(
                "llm_router_upstream_attempts_total",
                &[("model", &a.model), ("deployment", &a.deployment), ("result", result)],
                1,
            );
        }

        let record = OutcomeRecord {
            request_id: trace.id.clone(),
            finished_at_ms: epoch_ms(),
            status,
            http_status,
            model: served.map(|s| s.model.clone()),
            deployment: served.map(|s| s.deployment.clone()),
            latency_ms: latency.as_millis() as u64,
            ttft_ms: ttft.map(|t| t.as_millis() as u64),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_usd: if cost.is_finite() { cost } else { 0.0 },
            error_kind,
            error_message,
            attempts: attempts
                .iter()
                .map(|a| router_store::Attempt {
                    model: a.model.clone(),
                    deployment: a.deployment.clone(),
                    error_kind: a.error_kind.map(str::to_string),
                    duration_ms: a.duration_ms,
                })
                .collect(),
        };
        self.enqueue(record.into());
        self.learn_from_outcome(trace, served, attempts, &ending, latency);
    }

    /// Updates the learned state from how the request ended: every model that failed an
    /// attempt, and the model that answered.
    fn learn_from_outcome(
        &self,
        trace: &Trace,
        served: Option<&Served>,
        attempts: &[Attempt],
        ending: &Ending,
        latency: Duration,
    ) {
        let context = Context::of(&trace.features);
        let failed: Vec<&str> = attempts
            .iter()
            .filter(|a| {
                a.error_kind.is_some_and(|k| {
                    !matches!(k, "bad_request" | "context_too_long" | "unsupported")
                })
            })
            .map(|a| a.model.as_str())
            .collect();
        let answered = match (served, ending) {
            (Some(s), Ending::Answered { usage, signal, .. }) => {
                Some((s, usage.output_tokens, *signal))
            }
            (Some(s), Ending::Cancelled) => Some((s, 0, Some(Implicit::Abandoned))),
            _ => None,
        };
        let broke = matches!((served, ending), (Some(_), Ending::Failed { .. }));
        let latency_ms = latency.as_secs_f64() * 1000.0;
        self.learn(|knowledge| {
            for model in &failed {
                knowledge.observe(model, context, Outcome::Failure);
            }
            if broke && let Some(s) = served {
                knowledge.observe(&s.model, context, Outcome::Failure);
            }
            if let Some((s, output_tokens, signal)) = answered {
                knowledge.observe(
                    &s.model,
                    context,
                    Outcome::Success { latency_ms, output_tokens, signal },
                );
            }
        });
        if let (Some(s), Ending::Answered { .. }) = (served, ending) {
            let entry =
                Answered { model: s.model.clone(), context, sketch: trace.sketch, feedback: None };
            self.recent.lock().unwrap_or_else(|e| e.into_inner()).insert(trace.id.clone(), entry);
        }
    }
}
