//! The informational routes: what is configured, what is healthy, and the metrics.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use router_core::{Availability, Profile};
use serde_json::json;

use crate::app::{Gateway, epoch_s};
use crate::circuit::CircuitState;

/// `GET /v1/models`: the OpenAI-format list — every model, `auto` and each `auto:<profile>`.
pub async fn openai_models(State(gateway): State<Gateway>) -> Response {
    let created = gateway_created(&gateway);
    let mut data: Vec<serde_json::Value> = gateway
        .registry
        .models()
        .iter()
        .filter(|m| m.is_enabled())
        .map(|m| json!({"id": m.name(), "object": "model", "created": created, "owned_by": m.deployments.first().map_or("llm-router", |d| d.provider.as_str())}))
        .collect();
    data.push(
        json!({"id": "auto", "object": "model", "created": created, "owned_by": "llm-router"}),
    );
    for p in Profile::ALL {
        data.push(json!({"id": format!("auto:{p}"), "object": "model", "created": created, "owned_by": "llm-router"}));
    }
    Json(json!({"object": "list", "data": data})).into_response()
}

fn gateway_created(gateway: &Gateway) -> u64 {
    epoch_s().saturating_sub(gateway.started.elapsed().as_secs())
}

/// `GET /models`: models and deployments with weights, health and circuit state.
pub async fn models(State(gateway): State<Gateway>) -> Response {
    Json(json!({"models": gateway.registry.status(Instant::now())})).into_response()
}

/// `GET /health`: 200 while at least one model can take traffic, 503 otherwise.
pub async fn health(State(gateway): State<Gateway>) -> Response {
    let now = Instant::now();
    let models = gateway.registry.models();
    let available =
        models.iter().filter(|m| m.availability(now) != Availability::Unavailable).count();
    let store = gateway.writer.metrics();
    let status = if available > 0 { "ok" } else { "unavailable" };
    let code = if available > 0 { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": status,
        "models": {"available": available, "total": models.len()},
        "store": {"backend": gateway.store.backend().as_str(), "queue_depth": store.queue_depth, "written": store.written, "dropped": store.dropped},
        "uptime_s": gateway.started.elapsed().as_secs(),
    });
    (code, Json(body)).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(gateway): State<Gateway>) -> Response {
    let now = Instant::now();
    let store = gateway.writer.metrics();
    gateway.metrics.set("llm_router_store_queue_depth", &[], store.queue_depth as f64);
    gateway.metrics.set("llm_router_store_records_total", &[], store.written as f64);
    for m in gateway.registry.models() {
        for d in &m.deployments {
            let open = if d.circuit.state(now) == CircuitState::Open { 1.0 } else { 0.0 };
            let labels = [("model", m.name()), ("deployment", d.id.as_str())];
            gateway.metrics.set("llm_router_circuit_open", &labels, open);
            gateway.metrics.set("llm_router_in_flight", &labels, f64::from(d.capacity.in_flight()));
        }
    }
    if let Some(judge) = gateway.judge() {
        let status = judge.status();
        gateway.metrics.set("llm_router_judge_in_flight", &[], f64::from(status.in_flight));
        gateway.metrics.set(
            "llm_router_judge_allowed_in_flight",
            &[],
            f64::from(status.allowed_in_flight),
        );
        gateway.metrics.set("llm_router_judge_calls_total", &[], status.calls as f64);
        gateway.metrics.set("llm_router_judge_busy_total", &[], status.busy as f64);
        gateway.metrics.set("llm_router_judge_failures_total", &[], status.failures as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], gateway.metrics.render())
        .into_response()
}
