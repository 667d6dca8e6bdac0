//! Operator changes: deployment weights and in-flight limits, switching models and
//! deployments off and on, and closing a circuit by hand.
//!
//! Each change is written to the audit log (who, when, what: from → to) before it is made,
//! so nothing changes unrecorded; then it goes into the live registry, which the very next
//! request reads. A change to what already is (a weight set to its value) is not recorded.

use std::num::NonZeroU32;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use router_store::AuditRecord;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::session::Session;
use super::{DashboardState, Failure, no_store};
use crate::app::epoch_ms;
use crate::registry::{Deployment, Model};

/// The largest weight accepted; weights are relative, so this is only a sanity bound.
pub const MAX_WEIGHT: f64 = 1_000_000.0;

/// The largest in-flight limit accepted; more than a deployment can use, a sanity bound.
pub const MAX_IN_FLIGHT: u32 = 100_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Weight {
    weight: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InFlightLimit {
    /// `null` lifts the limit. Required, so that a misspelt body cannot lift it by accident.
    #[serde(deserialize_with = "present")]
    max_in_flight: Option<u32>,
}

/// Reads an `Option` whose key must be there, `null` or not.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Option::deserialize(d)
}

fn body<T: DeserializeOwned>(bytes: &Bytes, example: &str) -> Result<T, Failure> {
    serde_json::from_slice(bytes)
        .map_err(|e| Failure::bad_request(format!("The body is not valid ({e}); send {example}.")))
}

fn find_model<'a>(state: &'a DashboardState, name: &str) -> Result<&'a Model, Failure> {
    let registry = &state.gateway.registry;
    // Aliases resolve too, but the change is recorded under the model's own name.
    registry
        .index_of(name)
        .map(|i| registry.model(i))
        .ok_or_else(|| Failure::not_found(format!("No model `{name}` is configured.")))
}

fn find_deployment<'a>(
    state: &'a DashboardState,
    id: &str,
) -> Result<(&'a Model, &'a Deployment), Failure> {
    state
        .gateway
        .registry
        .deployment(id)
        .ok_or_else(|| Failure::not_found(format!("No deployment `{id}` is configured.")))
}

/// Writes the audit entry; the change must not be made when this fails.
async fn record(
    state: &DashboardState,
    session: &Session,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), Failure> {
    let entry = AuditRecord {
        created_at_ms: epoch_ms(),
        actor: session.username.clone(),
        action: action.to_string(),
        target: Some(target.to_string()),
        detail: Some(detail.to_string()),
    };
    match state.gateway.store.audit(&entry).await {
        Ok(_) => {
            let detail = entry.detail.as_deref().unwrap_or("");
            tracing::info!(actor = %entry.actor, action, target, detail, "operator change");
            Ok(())
        }
        Err(e) => {
            tracing::error!(error = %e, action, target, "cannot record an operator change; not making it");
            Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "The change could not be recorded in the audit log, so it was not made; try again.",
            ))
        }
    }
}

type Answer = Result<Response, Failure>;

fn done(changed: bool, now: serde_json::Value) -> Answer {
    Ok(no_store(
        axum::Json(json!({"status": "ok", "changed": changed, "now": now})).into_response(),
    ))
}

fn deployment_now(model: &Model, d: &Deployment) -> serde_json::Value {
    json!({
        "model": model.name(),
        "deployment": d.id,
        "weight": d.weight(),
        "enabled": d.is_enabled(),
        "circuit": d.circuit.state(Instant::now()),
        "model_weight": model.weight(),
        "in_flight": d.capacity.in_flight(),
        "max_in_flight": d.capacity.max(),
    })
}

/// `POST /models/{name}/enabled` with `{"enabled": false}`: takes a model out of routing
/// (and explicit requests for it fail over to its fallbacks), or back in.
pub async fn model_enabled(
    State(state): State<DashboardState>,
    Extension(session): Extension<Session>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Answer {
    let Enabled { enabled } = body(&bytes, r#"{"enabled": true|false}"#)?;
    let model = find_model(&state, &name)?;
    let was = model.is_enabled();
    if was != enabled {
        let action = if enabled { "enable_model" } else { "disable_model" };
        record(&state, &session, action, model.name(), json!({"from": was, "to": enabled})).await?;
        model.set_enabled(enabled);
    }
    done(
        was != enabled,
        json!({"model": model.name(), "enabled": model.is_enabled(), "weight": model.weight()}),
    )
}

/// `POST /deployments/{id}/weight` with `{"weight": 3}`: the deployment's share of its
/// model's traffic, and (summed over the model) the nudge the policy gives the model.
pub async fn deployment_weight(
    State(state): State<DashboardState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let Weight { weight } = body(&bytes, r#"{"weight": 2.5}"#)?;
    if !(weight.is_finite() && (0.0..=MAX_WEIGHT).contains(&weight)) {
        return Err(Failure::bad_request(format!(
            "`weight` must be a number from 0 to {MAX_WEIGHT}."
        )));
    }
    let (model, deployment) = find_deployment(&state, &id)?;
    let was = deployment.weight();
    let changed = was != weight;
    if changed {
        let detail = json!({"model": model.name(), "from": was, "to": weight});
        record(&state, &session, "set_weight", &deployment.id, detail).await?;
        deployment.set_weight(weight);
    }
    done(changed, deployment_now(model, deployment))
}

/// `POST /deployments/{id}/max_in_flight` with `{"max_in_flight": 8}`, or `null` for no
/// limit: how many calls the deployment may have at once. Calls in flight are not cut.
pub async fn deployment_max_in_flight(
    State(state): State<DashboardState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let example = r#"{"max_in_flight": 8} (or null for no limit)"#;
    let InFlightLimit { max_in_flight } = body(&bytes, example)?;
    let limit = match max_in_flight {
        None => None,
        Some(n) => match NonZeroU32::new(n).filter(|n| n.get() <= MAX_IN_FLIGHT) {
            Some(n) => Some(n),
            None => {
                return Err(Failure::bad_request(format!(
                    "`max_in_flight` must be a whole number from 1 to {MAX_IN_FLIGHT}, or null for no limit."
                )));
            }
        },
    };
    let (model, deployment) = find_deployment(&state, &id)?;
    let was = deployment.capacity.max();
    let changed = was != max_in_flight;
    if changed {
        let detail = json!({"model": model.name(), "from": was, "to": max_in_flight});
        record(&state, &session, "set_max_in_flight", &deployment.id, detail).await?;
        deployment.capacity.set_max(limit);
    }
    done(changed, deployment_now(model, deployment))
}

/// `POST /deployments/{id}/enabled` with `{"enabled": false}`.
pub async fn deployment_enabled(
    State(state): State<DashboardState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let Enabled { enabled } = body(&bytes, r#"{"enabled": true|false}"#)?;
    let (model, deployment) = find_deployment(&state, &id)?;
    let was = deployment.is_enabled();
    if was != enabled {
        let action = if enabled { "enable_deployment" } else { "disable_deployment" };
        let detail = json!({"model": model.name(), "from": was, "to": enabled});
        record(&state, &session, action, &deployment.id, detail).await?;
        deployment.set_enabled(enabled);
    }
    done(was != enabled, deployment_now(model, deployment))
}

/// `POST /deployments/{id}/reset-circuit`: closes the circuit and forgets its history, so
/// the deployment takes traffic again at once.
pub async fn reset_circuit(
    State(state): State<DashboardState>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> Answer {
    let (model, deployment) = find_deployment(&state, &id)?;
    let was = deployment.circuit.state(Instant::now());
    let detail = json!({"model": model.name(), "from": was.as_str(), "to": "closed"});
    record(&state, &session, "reset_circuit", &deployment.id, detail).await?;
    deployment.circuit.reset();
    done(true, deployment_now(model, deployment))
}
