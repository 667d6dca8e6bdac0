//! Dispatch: getting one request answered by the models of a plan, in order.
//!
//! For each model of the plan, deployments are drawn by weight among those whose circuit
//! admits a call; a failure that another deployment or model could fix moves on at once.
//! When the whole plan has failed on passing errors (server errors, timeouts, rate limits)
//! and attempts remain, it gets one more pass after a backoff (or the upstream's
//! Retry-After, when that is short). Failover happens only
//! before anything has been sent to the client: a stream counts as answered once its first
//! event has arrived, and from then on it belongs to the client.
//!
//! Every call holds one of its deployment's [slots](crate::capacity) while the upstream
//! works on it. A deployment at its limit is skipped like a resting one; a request that
//! found nothing else waits in line for it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use router_providers::upstream::EventStream;
use router_providers::{ChatRequest, ChatResponse, StreamEvent, UpstreamError};
use serde::Serialize;

use crate::capacity::{Holding, Slot};
use crate::circuit::{Admission, CircuitState};
use crate::config::DispatchConfig;
use crate::registry::Registry;

/// One try at one deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub model: String,
    pub deployment: String,
    /// `None` for the attempt that answered.
    pub error_kind: Option<&'static str>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What the answering deployment returned.
pub enum Answer {
    Complete(ChatResponse),
    /// A stream whose first event has arrived.
    Stream {
        first: StreamEvent,
        rest: EventStream,
    },
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Complete(r) => f.debug_tuple("Complete").field(r).finish(),
            Answer::Stream { first, .. } => f.debug_struct("Stream").field("first", first).finish(),
        }
    }
}

/// A request that got its answer.
#[derive(Debug)]
pub struct Dispatched {
    pub model: usize,
    pub deployment: usize,
    pub answer: Answer,
    /// Every attempt, the answering one last.
    pub attempts: Vec<Attempt>,
    /// Time from the start of dispatch to the upstream's answer (non-streaming) or first
    /// event (streaming).
    pub first_byte: Duration,
    /// Part of that spent waiting for a deployment at its in-flight limit.
    pub queued: Duration,
}

/// A request no deployment could answer.
#[derive(Debug)]
pub struct DispatchFailure {
    /// The error to report: the last upstream error, or why nothing was tried.
    pub error: Failure,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("no deployment of {models} is available (disabled, or resting after failures)")]
    NothingAvailable {
        models: String,
        /// When the first resting deployment takes calls again, if any will.
        retry_after: Option<std::time::Duration>,
    },
    #[error(
        "every deployment of {models} is at its `max_in_flight` limit, and none freed a slot within {} ms (`dispatch.queue_timeout_ms`)",
        waited.as_millis()
    )]
    AtCapacity { models: String, waited: Duration },
}

/// Sends `request` to the models of `plan` (registry indices, in order of preference) until
/// one answers. `stream` selects the streaming call.
///
/// A deployment at its in-flight limit is passed over like one that is resting, so a busy
/// model overflows to the next of the plan. Only when nothing else answered does the
/// request wait, up to `queue_timeout` from its start, for the first of those deployments
/// to free a slot.
pub async fn dispatch(
    registry: &Registry,
    settings: &DispatchConfig,
    plan: &[usize],
    request: &ChatRequest,
) -> Result<Dispatched, DispatchFailure> {
    let mut run = Run {
        settings,
        request,
        started: Instant::now(),
        queued: Duration::ZERO,
        attempts: Vec::new(),
        last_error: None,
    };
    let max_attempts = settings.max_attempts as usize;
    // Deployments passed over for being at their limit, as (model, deployment).
    let mut full: Vec<(usize, usize)> = Vec::new();
    // An error no other deployment could fix (a bad request, say) ends the dispatch.
    let mut settled = false;

    // First every model of the plan, each deployment once: failover is immediate. Then, if
    // everything failed in a passing way and attempts remain, one more pass after a backoff.
    'rounds: for round in 0..2u32 {
        if round > 0 {
            let last = run.last_error.as_ref();
            let retry = last.is_some_and(UpstreamError::is_retryable);
            match backoff(settings, round - 1, last) {
                Some(wait) if retry && run.attempts.len() < max_attempts => {
                    tokio::time::sleep(wait).await
                }
                _ => break,
            }
        }
        for &model_index in plan {
            let model = registry.model(model_index);
            if !model.is_enabled() {
                continue;
            }
            let mut tried: Vec<usize> = Vec::new();
            loop {
                if run.attempts.len() >= max_attempts {
                    break 'rounds;
                }
                let now = Instant::now();
                let Some((index, admission)) = model.pick(&tried, now, fastrand::f64()) else {
                    for i in model.full(&tried, now) {
                        remember(&mut full, (model_index, i));
                    }
                    break;
                };
                let deployment = &model.deployments[index];
                let probe =
                    ProbeSlot { circuit: &deployment.circuit, held: admission == Admission::Probe };
                let Some(slot) = deployment.capacity.try_take() else {
                    // Another request took the last slot since the pick.
                    remember(&mut full, (model_index, index));
                    tried.push(index);
                    continue;
                };
                match run.attempt(registry, (model_index, index), probe, slot).await {
                    Ok(dispatched) => return Ok(dispatched),
                    Err(Settled::Yes) => {
                        settled = true;
                        break 'rounds;
                    }
                    Err(Settled::No) => tried.push(index),
                }
            }
        }
    }

    // Nothing answered, and some deployments were only busy: wait for the first of them.
    while !settled && !full.is_empty() && run.attempts.len() < max_attempts {
        let deadline = run.started + settings.queue_timeout;
        let wait_started = Instant::now();
        let freed = wait_for_slot(registry, &full, deadline).await;
        run.queued += wait_started.elapsed();
        let Some((position, slot)) = freed else {
            let error = Failure::AtCapacity {
                models: model_names(registry, full.iter().map(|&(m, _)| m)),
                waited: run.started.elapsed(),
            };
            return Err(DispatchFailure { error, attempts: run.attempts });
        };
        // A deployment that fails now is not waited for again.
        let (model_index, index) = full.remove(position);
        let circuit = &registry.model(model_index).deployments[index].circuit;
        if circuit.state(Instant::now()) != CircuitState::Closed {
            // It started failing for other requests while this one waited.
            continue;
        }
        let probe = ProbeSlot { circuit, held: false };
        match run.attempt(registry, (model_index, index), probe, slot).await {
            Ok(dispatched) => return Ok(dispatched),
            Err(Settled::Yes) => settled = true,
            Err(Settled::No) => {}
        }
    }

    let error = match run.last_error {
        Some(e) => Failure::Upstream(e),
        None => {
            let now = Instant::now();
            let retry_after = plan
                .iter()
                .flat_map(|&i| &registry.model(i).deployments)
                .filter_map(|d| d.circuit.reopens_in(now))
                .min();
            Failure::NothingAvailable {
                models: model_names(registry, plan.iter().copied()),
                retry_after,
            }
        }
    };
    Err(DispatchFailure { error, attempts: run.attempts })
}

/// Whether a failed attempt ends the dispatch.
enum Settled {
    /// Another deployment could not do better (the request itself was refused).
    Yes,
    No,
}

/// The state of one dispatch across its attempts.
struct Run<'a> {
    settings: &'a DispatchConfig,
    request: &'a ChatRequest,
    started: Instant,
    /// Time spent waiting for a slot.
    queued: Duration,
    attempts: Vec<Attempt>,
    last_error: Option<UpstreamError>,
}

impl Run<'_> {
    /// One call to one deployment, holding `slot`, with its result written to the
    /// deployment's circuit and counters and to the attempts.
    async fn attempt(
        &mut self,
        registry: &Registry,
        (model_index, index): (usize, usize),
        mut probe: ProbeSlot<'_>,
        slot: Slot,
    ) -> Result<Dispatched, Settled> {
        let model = registry.model(model_index);
        let deployment = &model.deployments[index];
        let call_started = Instant::now();
        let result = call(deployment, self.settings, self.request, slot).await;
        // From here the result decides the circuit; the slot needs no release.
        let was_probe = std::mem::replace(&mut probe.held, false);
        let elapsed = call_started.elapsed();
        let ms = elapsed.as_secs_f64() * 1000.0;
        let mut attempt = Attempt {
            model: model.name().to_string(),
            deployment: deployment.id.clone(),
            error_kind: None,
            error: None,
            duration_ms: elapsed.as_millis() as u64,
        };
        match result {
            Ok(answer) => {
                deployment.circuit.record_success();
                deployment.counters.record(true, ms);
                self.attempts.push(attempt);
                Ok(Dispatched {
                    model: model_index,
                    deployment: index,
                    answer,
                    attempts: std::mem::take(&mut self.attempts),
                    first_byte: self.started.elapsed(),
                    queued: self.queued,
                })
            }
            Err(error) => {
                if error.counts_against_deployment() {
                    deployment.circuit.record_failure(Instant::now(), error.retry_after());
                    deployment.counters.record(false, ms);
                } else if was_probe {
                    // The upstream answered, so it is up; the request was the problem.
                    deployment.circuit.record_success();
                }
                tracing::debug!(
                    model = model.name(),
                    deployment = %deployment.id,
                    error = %error,
                    "upstream attempt failed"
                );
                attempt.error_kind = Some(error.kind());
                attempt.error = Some(error.to_string());
                self.attempts.push(attempt);
                let settled = if error.is_failover() { Settled::No } else { Settled::Yes };
                self.last_error = Some(error);
                Err(settled)
            }
        }
    }
}

fn remember(full: &mut Vec<(usize, usize)>, deployment: (usize, usize)) {
    if !full.contains(&deployment) {
        full.push(deployment);
    }
}

/// The names of `models`, each once, in order.
fn model_names(registry: &Registry, models: impl Iterator<Item = usize>) -> String {
    let mut names: Vec<&str> = Vec::new();
    for m in models {
        let name = registry.model(m).name();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

/// The first slot to come free on any of `full`, with its position there; `None` once
/// `deadline` has passed.
async fn wait_for_slot(
    registry: &Registry,
    full: &[(usize, usize)],
    deadline: Instant,
) -> Option<(usize, Slot)> {
    let waits = full.iter().enumerate().map(|(position, &(m, d))| {
        let capacity = &registry.model(m).deployments[d].capacity;
        Box::pin(async move { (position, capacity.take().await) })
    });
    // The waits that lose are dropped, which takes them out of their queues.
    let first = futures_util::future::select_all(waits);
    let ((position, slot), _, _) = tokio::time::timeout_at(deadline.into(), first).await.ok()?;
    Some((position, slot))
}

/// A half-open circuit's probe slot, released if the request is abandoned (the client went
/// away) before the probe's result is known — otherwise the circuit would wait for a
/// result that never comes and refuse the deployment for good.
struct ProbeSlot<'a> {
    circuit: &'a crate::circuit::Circuit,
    held: bool,
}

impl Drop for ProbeSlot<'_> {
    fn drop(&mut self) {
        if self.held {
            self.circuit.release_probe();
        }
    }
}

/// How long to wait before the next round on the same model, or `None` to move on.
fn backoff(
    settings: &DispatchConfig,
    round: u32,
    error: Option<&UpstreamError>,
) -> Option<Duration> {
    if let Some(after) = error.and_then(UpstreamError::retry_after) {
        return (after <= settings.max_retry_wait).then_some(after);
    }
    let base = settings.retry_backoff.saturating_mul(1 << round.min(6));
    // Full jitter keeps a crowd of retries from arriving together.
    let jittered = base.mul_f64(0.5 + fastrand::f64() * 0.5);
    Some(jittered.min(settings.max_retry_wait))
}

/// One call to one deployment, streaming or not, holding `slot` until the answer has been
/// read (a stream: until its last event). A stream is only an answer once its first event is
/// in.
async fn call(
    deployment: &crate::registry::Deployment,
    settings: &DispatchConfig,
    request: &ChatRequest,
    slot: Slot,
) -> Result<Answer, UpstreamError> {
    if !request.stream {
        let answer = deployment.upstream.complete(request).await.map(Answer::Complete);
        drop(slot);
        return answer;
    }
    let first_byte = async {
        let mut stream = deployment.upstream.stream(request).await?;
        match stream.next().await {
            Some(Ok(first)) => {
                let rest: EventStream = Box::pin(Holding::new(stream, slot));
                Ok(Answer::Stream { first, rest })
            }
            Some(Err(e)) => Err(e),
            None => Err(UpstreamError::StreamBroken {
                message: "the upstream closed the stream before sending anything".into(),
            }),
        }
    };
    match tokio::time::timeout(settings.first_byte_timeout, first_byte).await {
        Ok(result) => result,
        Err(_) => {
            Err(UpstreamError::Timeout { phase: router_providers::error::TimeoutPhase::FirstByte })
        }
    }
}
