//! The JSON API behind the dashboard's pages, under `/dashboard/api/`. Every endpoint needs
//! the dashboard session (the cookie); every change also needs the `x-csrf-token` header.
//! The endpoints are documented in the README's dashboard section.

use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use router_core::Price;
use router_store::{
    Cursor, DecisionFilter, DecisionSource, DecisionView, OutcomeStatus, StatsQuery, StatsRow,
    StatusFilter, StoreError,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::Session;
use super::summary::{self, Window};
use super::{DashboardState, Failure, control, no_store};
use crate::app::epoch_ms;

pub fn router() -> Router<DashboardState> {
    Router::new()
        .route("/session", get(session))
        .route("/overview", get(overview))
        .route("/models", get(models))
        .route("/models/{name}/enabled", post(control::model_enabled))
        .route("/deployments/{id}/weight", post(control::deployment_weight))
        .route("/deployments/{id}/max_in_flight", post(control::deployment_max_in_flight))
        .route("/deployments/{id}/enabled", post(control::deployment_enabled))
        .route("/deployments/{id}/reset-circuit", post(control::reset_circuit))
        .route("/quality", get(quality))
        .route("/decisions", get(decisions))
        .route("/decisions/{id}", get(decision))
        .route("/feedback", get(feedback))
        .route("/audit", get(audit))
        .route("/judge", get(judge))
}

type Answer = Result<Response, Failure>;

/// A JSON answer that is never cached.
fn ok(value: Value) -> Answer {
    Ok(no_store(Json(value).into_response()))
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        tracing::error!(error = %e, "dashboard: store query failed");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_error",
            "The store could not be read; try again.",
        )
    }
}

#[derive(Debug, Deserialize)]
struct WindowQuery {
    window: Option<String>,
}

fn window_of(query: &WindowQuery, default: Window) -> Result<Window, Failure> {
    match query.window.as_deref() {
        None | Some("") => Ok(default),
        Some(text) => Window::parse(text).ok_or_else(|| {
            let allowed: Vec<&str> = Window::ALL.iter().map(|w| w.as_str()).collect();
            Failure::bad_request(format!("`window` must be one of {}.", allowed.join(", ")))
        }),
    }
}

async fn stats_since(state: &DashboardState, since_ms: i64) -> Result<Vec<StatsRow>, Failure> {
    Ok(state
        .gateway
        .store
        .stats(&StatsQuery { since_ms: Some(since_ms), by_complexity: false })
        .await?)
}

/// `GET /session`: who is logged in, and the CSRF token for changes.
async fn session(Extension(session): Extension<Session>) -> Answer {
    ok(json!({"username": session.username, "csrf_token": session.csrf}))
}

/// `GET /overview?window=1h`: traffic over time, totals, savings, decision sources, judge.
async fn overview(State(state): State<DashboardState>, Query(query): Query<WindowQuery>) -> Answer {
    let window = window_of(&query, Window::Hour)?;
    let now = epoch_ms();
    let (since, until) = window.range(now);
    let store = &state.gateway.store;
    let buckets = store.timeseries(since, until, window.bucket_ms()).await?;
    let whole = store.timeseries(since, until, until - since).await?;
    let rows = stats_since(&state, since).await?;
    let models = state.gateway.registry.status(Instant::now());
    let strongest = summary::strongest(&models).map(|m| {
        (m.name.as_str(), Price { input_per_mtok: m.input_price, output_per_mtok: m.output_price })
    });
    let total = whole.first();
    let requests = total.map_or(0, |t| t.requests);
    let errors = total.map_or(0, |t| t.errors);
    let minutes = ((now - since).max(1_000) as f64) / 60_000.0;
    let available =
        models.iter().filter(|m| m.availability != router_core::Availability::Unavailable).count();
    ok(json!({
        "window": window,
        "since_ms": since,
        "until_ms": until,
        "bucket_ms": window.bucket_ms(),
        "now_ms": now,
        "series": summary::points(&buckets, window.bucket_ms(), now),
        "totals": {
            "requests": requests,
            "errors": errors,
            "error_rate": (requests > 0).then(|| errors as f64 / requests as f64),
            "rpm": requests as f64 / minutes,
            "latency_p50_ms": total.and_then(|t| t.latency_p50_ms),
            "latency_p95_ms": total.and_then(|t| t.latency_p95_ms),
            "input_tokens": total.map_or(0, |t| t.input_tokens),
            "output_tokens": total.map_or(0, |t| t.output_tokens),
            "cost_usd": total.map_or(0.0, |t| t.cost_usd),
        },
        "savings": summary::savings(&rows, strongest),
        "sources": {"since_ms": since, "counts": decision_sources(store.source_counts(since, until).await?)},
        "judge": state.judge_status(),
        "models": {
            "total": models.len(),
            "enabled": models.iter().filter(|m| m.enabled).count(),
            "available": available,
        },
    }))
}

/// How the decisions in the window were made: a count for every source, zero included.
fn decision_sources(stored: std::collections::BTreeMap<String, u64>) -> Value {
    let mut counts = serde_json::Map::new();
    for source in DecisionSource::ALL {
        counts.insert(
            source.as_str().to_string(),
            json!(stored.get(source.as_str()).copied().unwrap_or(0)),
        );
    }
    Value::Object(counts)
}

/// `GET /models`: every model and deployment with health, circuit, latency, error ratio and
/// weight; each model's traffic over the last hour; the latest operator changes.
async fn models(State(state): State<DashboardState>) -> Answer {
    let rows = stats_since(&state, epoch_ms() - Window::Hour.span_ms()).await?;
    let per_model = summary::grid(&rows, |_| Some("all"));
    let audit = state.gateway.store.audit_log(20).await?;
    let models: Vec<Value> = state
        .gateway
        .registry
        .status(Instant::now())
        .into_iter()
        .map(|m| {
            let hour = per_model.iter().find(|c| c.model == m.name);
            let mut v = serde_json::to_value(&m).unwrap_or(Value::Null);
            v["last_hour"] = json!(hour);
            v
        })
        .collect();
    ok(json!({"models": models, "audit": audit}))
}

/// `GET /quality?window=24h`: requests, success rate and mean rating per model × domain
/// and per model × language, and what the policy has learned along the same axes.
async fn quality(State(state): State<DashboardState>, Query(query): Query<WindowQuery>) -> Answer {
    let window = window_of(&query, Window::Day)?;
    let since = epoch_ms() - window.span_ms();
    let rows = stats_since(&state, since).await?;
    let learned = state.gateway.knowledge().learned();
    let models: Vec<&str> = state.gateway.registry.models().iter().map(|m| m.name()).collect();
    ok(json!({
        "window": window,
        "since_ms": since,
        "models": models,
        "domains": router_core::Domain::ALL.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "languages": router_core::Language::ALL.iter().map(|l| l.code()).collect::<Vec<_>>(),
        "by_domain": summary::grid(&rows, |r| r.domain.as_deref()),
        "by_language": summary::grid(&rows, |r| r.language.as_deref()),
        "learned": {
            "by_domain": summary::beliefs(&learned, |c| c.domain.as_str()),
            "by_language": summary::beliefs(&learned, |c| c.language.code()),
            "cells": learned,
        },
    }))
}

/// The most decisions one page lists.
const MAX_PAGE: u32 = 200;

#[derive(Debug, Deserialize)]
struct DecisionsQuery {
    model: Option<String>,
    domain: Option<String>,
    language: Option<String>,
    source: Option<String>,
    /// `ok`, `error`, `cancelled` or `pending`.
    outcome: Option<String>,
    limit: Option<u32>,
    /// `<received_at_ms>:<id>` from a previous page's `next`.
    before: Option<String>,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn decision_filter(query: DecisionsQuery) -> Result<(DecisionFilter, u32), Failure> {
    let source = match non_empty(query.source) {
        None => None,
        Some(s) => Some(DecisionSource::parse(&s).ok_or_else(|| {
            Failure::bad_request(format!(
                "`source` `{s}` is not one of judge, policy, fallback, explicit."
            ))
        })?),
    };
    let status = match non_empty(query.outcome).as_deref() {
        None => None,
        Some("pending") => Some(StatusFilter::Pending),
        Some(s) => Some(StatusFilter::Finished(OutcomeStatus::parse(s).ok_or_else(|| {
            Failure::bad_request(format!(
                "`outcome` `{s}` is not one of ok, error, cancelled, pending."
            ))
        })?)),
    };
    let page_after = match non_empty(query.before) {
        None => None,
        Some(b) => {
            let parsed = b.split_once(':').and_then(|(ms, id)| {
                Some(Cursor { received_at_ms: ms.parse().ok()?, id: id.to_string() })
            });
            Some(parsed.ok_or_else(|| {
                Failure::bad_request("`before` must be the `next` value of a previous page.")
            })?)
        }
    };
    let filter = DecisionFilter {
        model: non_empty(query.model),
        domain: non_empty(query.domain),
        language: non_empty(query.language),
        source,
        status,
        page_after,
        ..DecisionFilter::default()
    };
    Ok((filter, query.limit.unwrap_or(50).clamp(1, MAX_PAGE)))
}

/// A decision as the dashboard shows it: the stored JSON of features and ranking parsed.
fn decision_json(view: &DecisionView) -> Value {
    let r = &view.request;
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
    json!({
        "id": r.id,
        "received_at_ms": r.received_at_ms,
        "api": r.api,
        "requested_model": r.requested_model,
        "profile": r.profile,
        "stream": r.stream,
        "message_count": r.message_count,
        "prompt": r.prompt,
        "language": r.language,
        "domain": r.domain,
        "complexity": r.complexity,
        "chosen_model": r.chosen_model,
        "source": r.source,
        "reason": r.reason,
        "decision_us": r.decision_us,
        "features": parse(&r.features_json),
        "ranking": parse(&r.ranking_json),
        "outcome": view.outcome,
        "feedback": view.feedback,
    })
}

/// `GET /decisions?model=&domain=&language=&source=&outcome=&limit=&before=`: the latest
/// decisions, newest first, with features, ranking, reason, outcome and feedback.
async fn decisions(
    State(state): State<DashboardState>,
    Query(query): Query<DecisionsQuery>,
) -> Answer {
    let (filter, limit) = decision_filter(query)?;
    let views = state.gateway.store.recent_decisions(&filter, limit).await?;
    // A full page may have more behind it; a short one is the end.
    let next = match views.last() {
        Some(last) if views.len() as u32 == limit => {
            Some(format!("{}:{}", last.request.received_at_ms, last.request.id))
        }
        _ => None,
    };
    ok(json!({"decisions": views.iter().map(decision_json).collect::<Vec<_>>(), "next": next}))
}

/// `GET /decisions/{id}`: one decision.
async fn decision(State(state): State<DashboardState>, Path(id): Path<String>) -> Answer {
    match state.gateway.store.decision(&id).await? {
        Some(view) => ok(decision_json(&view)),
        None => Err(Failure::not_found(format!("No decision `{id}` is stored."))),
    }
}

#[derive(Debug, Deserialize)]
struct LimitQuery {
    limit: Option<u32>,
}

/// `GET /feedback?limit=100`: ratings and comments, newest first.
async fn feedback(State(state): State<DashboardState>, Query(query): Query<LimitQuery>) -> Answer {
    let entries =
        state.gateway.store.recent_feedback(query.limit.unwrap_or(100).clamp(1, 500)).await?;
    ok(json!({"feedback": entries}))
}

/// `GET /audit?limit=50`: operator changes, newest first.
async fn audit(State(state): State<DashboardState>, Query(query): Query<LimitQuery>) -> Answer {
    let entries = state.gateway.store.audit_log(query.limit.unwrap_or(50).clamp(1, 500)).await?;
    ok(json!({"audit": entries}))
}

/// `GET /judge`: the judge's status, `null` when no judge is running.
async fn judge(State(state): State<DashboardState>) -> Answer {
    ok(json!({"judge": state.judge_status()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> DecisionsQuery {
        let get = |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        DecisionsQuery {
            model: get("model"),
            domain: get("domain"),
            language: get("language"),
            source: get("source"),
            outcome: get("outcome"),
            limit: get("limit").and_then(|l| l.parse().ok()),
            before: get("before"),
        }
    }

    #[test]
    fn decision_filters_parse() {
        let (f, limit) = decision_filter(query(&[
            ("model", "m"),
            ("domain", " "),
            ("source", "judge"),
            ("outcome", "pending"),
            ("before", "1700:abc-1"),
            ("limit", "5000"),
        ]))
        .unwrap();
        assert_eq!(f.model.as_deref(), Some("m"));
        assert_eq!(f.domain, None);
        assert_eq!(f.source, Some(DecisionSource::Judge));
        assert_eq!(f.status, Some(StatusFilter::Pending));
        assert_eq!(f.page_after, Some(Cursor { received_at_ms: 1700, id: "abc-1".into() }));
        assert_eq!(limit, MAX_PAGE);
        let (f, _) = decision_filter(query(&[("outcome", "error")])).unwrap();
        assert_eq!(f.status, Some(StatusFilter::Finished(OutcomeStatus::Error)));
        assert!(decision_filter(query(&[("source", "oracle")])).is_err());
        assert!(decision_filter(query(&[("outcome", "meh")])).is_err());
        assert!(decision_filter(query(&[("before", "nonsense")])).is_err());
    }
}
