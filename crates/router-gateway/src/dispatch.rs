//! Dispatch: getting one request answered by the models of a plan, in order.
//!
//! For each model of the plan, deployments are drawn by weight among those whose circuit
//! admits a call; a failure that another deployment or model could fix moves on at once.
//! When the whole plan has failed on passing errors (server errors, timeouts, rate limits)
//! and attempts remain, it gets one more pass after a backoff (or the upstream's
//! Retry-After, when that is short). Failover happens only
//! before anything has been sent to the client: a stream counts as answered once its first
//! event has arrived, and from then on it belongs to the client.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use router_providers::upstream::EventStream;
use router_providers::{ChatRequest, ChatResponse, StreamEvent, UpstreamError};
use serde::Serialize;

use crate::circuit::Admission;
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
}

/// Sends `request` to the models of `plan` (registry indices, in order of preference) until
/// one answers. `stream` selects the streaming call.
pub async fn dispatch(
    registry: &Registry,
    settings: &DispatchConfig,
    plan: &[usize],
    request: &ChatRequest,
) -> Result<Dispatched, DispatchFailure> {
    let started = Instant::now();
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut last_error: Option<UpstreamError> = None;
    let max_attempts = settings.max_attempts as usize;

    // First every model of the plan, each deployment once: failover is immediate. Then, if
    // everything failed in a passing way and attempts remain, one more pass after a backoff.
    'rounds: for round in 0..2u32 {
        if round > 0 {
            let retry = last_error.as_ref().is_some_and(UpstreamError::is_retryable);
            match backoff(settings, round - 1, last_error.as_ref()) {
                Some(wait) if retry && attempts.len() < max_attempts => {
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
                if attempts.len() >= max_attempts {
                    break 'rounds;
                }
                let Some((index, admission)) = model.pick(&tried, Instant::now(), fastrand::f64())
                else {
                    break;
                };
                let deployment = &model.deployments[index];
                let mut probe =
                    ProbeSlot { circuit: &deployment.circuit, held: admission == Admission::Probe };
                let call_started = Instant::now();
                let result = call(deployment, settings, request).await;
                // From here the result decides the circuit; the slot needs no release.
                probe.held = false;
                let elapsed = call_started.elapsed();
                let ms = elapsed.as_secs_f64() * 1000.0;
                match result {
                    Ok(answer) => {
                        deployment.circuit.record_success();
                        deployment.counters.record(true, ms);
                        attempts.push(Attempt {
                            model: model.name().to_string(),
                            deployment: deployment.id.clone(),
                            error_kind: None,
                            error: None,
                            duration_ms: elapsed.as_millis() as u64,
                        });
                        return Ok(Dispatched {
                            model: model_index,
                            deployment: index,
                            answer,
                            attempts,
                            first_byte: started.elapsed(),
                        });
                    }
                    Err(error) => {
                        if error.counts_against_deployment() {
                            deployment.circuit.record_failure(Instant::now(), error.retry_after());
                            deployment.counters.record(false, ms);
                        } else if admission == Admission::Probe {
                            // The upstream answered, so it is up; the request was the problem.
                            deployment.circuit.record_success();
                        }
                        tracing::debug!(
                            model = model.name(),
                            deployment = %deployment.id,
                            error = %error,
                            "upstream attempt failed"
                        );
                        attempts.push(Attempt {
                            model: model.name().to_string(),
                            deployment: deployment.id.clone(),
                            error_kind: Some(error.kind()),
                            error: Some(error.to_string()),
                            duration_ms: elapsed.as_millis() as u64,
                        });
                        let failover = error.is_failover();
                        last_error = Some(error);
                        if !failover {
                            break 'rounds;
                        }
                        tried.push(index);
                    }
                }
            }
        }
    }
    let error = match last_error {
        Some(e) => Failure::Upstream(e),
        None => {
            let now = Instant::now();
            let retry_after = plan
                .iter()
                .flat_map(|&i| &registry.model(i).deployments)
                .filter_map(|d| d.circuit.reopens_in(now))
                .min();
            Failure::NothingAvailable {
                models: plan
                    .iter()
                    .map(|&i| registry.model(i).name().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                retry_after,
            }
        }
    };
    Err(DispatchFailure { error, attempts })
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

/// One call to one deployment, streaming or not. A stream is only an answer once its first
/// event is in.
async fn call(
    deployment: &crate::registry::Deployment,
    settings: &DispatchConfig,
    request: &ChatRequest,
) -> Result<Answer, UpstreamError> {
    if !request.stream {
        return deployment.upstream.complete(request).await.map(Answer::Complete);
    }
    let first_byte = async {
        let mut stream = deployment.upstream.stream(request).await?;
        match stream.next().await {
            Some(Ok(first)) => Ok(Answer::Stream { first, rest: stream }),
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
