//! The routing API: ask for a decision without calling a model (`analyze`), tell the router
//! how an answer was (`feedback`), and see what it has measured (`stats`).
//!
//! [`routing_api`] returns these routes as an axum [`Router`], so another service can mount
//! them (and the proxy's `auto` routing, through the same [`Gateway`]) in its own app.

use std::time::Instant;

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use router_core::Role;
use router_core::learning::Context;
use router_providers::api_error::{ApiError, ApiErrorKind};
use router_providers::{ChatRequest, Message};
use router_store::{FeedbackRecord, Rating, Score, StatsQuery};
use serde::Deserialize;
use serde_json::json;

use crate::app::{Answered, Gateway, epoch_ms};
use crate::cpu_time;
use crate::proxy::{read_json, read_request};

/// The routing API's routes (`/api/routing/*`), bound to a gateway.
pub fn routing_api(gateway: Gateway) -> Router {
    Router::new()
        .route("/api/routing/analyze", post(analyze))
        .route("/api/routing/feedback", post(feedback))
        .route("/api/routing/stats", get(stats))
        .with_state(gateway)
}

fn error(error: &ApiError) -> Response {
    crate::proxy::error_response(error)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ApiErrorKind::InvalidRequest, message)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyzeRequest {
    query: Option<String>,
    messages: Option<Vec<AnalyzeMessage>>,
    /// `quality`, `balanced`, `cost` or `fast` (default: the configured one).
    profile: Option<String>,
    /// A model name, to see the decision for an explicit request instead.
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalyzeMessage {
    role: String,
    content: String,
}

fn analyze_request(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let request: AnalyzeRequest = serde_json::from_slice(body).map_err(|e| {
        invalid(format!("The body is not a valid analyze request ({e}). Send {{\"query\": \"...\"}} or {{\"messages\": [...]}}."))
    })?;
    let messages = match (request.query, request.messages) {
        (Some(query), None) => {
            if query.trim().is_empty() {
                return Err(invalid("`query` must not be empty."));
            }
            vec![Message::text(Role::User, query)]
        }
        (None, Some(messages)) => {
            if messages.is_empty() {
                return Err(invalid("`messages` must hold at least one message."));
            }
            let mut out = Vec::with_capacity(messages.len());
            for (i, m) in messages.into_iter().enumerate() {
                let role = match m.role.as_str() {
                    "system" => Role::System,
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "tool" => Role::Tool,
                    other => {
                        return Err(invalid(format!(
                            "`messages[{i}].role` is `{other}`; use system, user, assistant or tool."
                        )));
                    }
                };
                out.push(Message::text(role, m.content));
            }
            out
        }
        (Some(_), Some(_)) => return Err(invalid("Give `query` or `messages`, not both.")),
        (None, None) => return Err(invalid("Give the text to analyze as `query` or `messages`.")),
    };
    let model = match (request.model, request.profile) {
        (Some(_), Some(_)) => return Err(invalid("Give `model` or `profile`, not both.")),
        (Some(model), None) => model,
        (None, Some(profile)) => format!("auto:{profile}"),
        (None, None) => "auto".to_string(),
    };
    Ok(ChatRequest { model, messages, ..ChatRequest::default() })
}

/// `POST /api/routing/analyze`: features, ranked candidates with estimates, decision,
/// reason, source and decision time — no upstream call, nothing recorded.
async fn analyze(State(gateway): State<Gateway>, request: Request) -> Response {
    let request = match read_request(&gateway, request, analyze_request).await {
        Ok((request, _)) => request,
        Err(e) => return error(&e),
    };
    // Timed from here, once the body is parsed: `decision_us` is the decision alone, and
    // `decision_cpu_us` the serving thread's CPU time over it (without the time it spent
    // switched out; with other requests' turns if it waited for the judge).
    let cpu_before = cpu_time::thread_cpu_time();
    match gateway.route(&request, Instant::now()).await {
        Ok(routed) => axum::Json(json!({
            "decision_id": routed.id,
            "model": routed.decision.model,
            "source": routed.decision.source,
            "profile": routed.decision.profile,
            "reason": routed.decision.reason,
            "decision_us": routed.decision.decision_us,
            "decision_cpu_us": cpu_before
                .zip(cpu_time::thread_cpu_time())
                .map(|(before, after)| after.saturating_sub(before).as_micros() as u64),
            "features": routed.decision.features,
            "ranking": routed.decision.ranking,
            "excluded": routed.decision.excluded,
            "failover_plan": routed.plan.iter().map(|&i| gateway.registry.model(i).name()).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(&e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackRequest {
    decision_id: String,
    rating: Option<serde_json::Number>,
    score: Option<f64>,
    comment: Option<String>,
}

/// The longest comment kept.
const MAX_COMMENT: usize = 4_000;

/// A validated feedback: the score in [0, 1] and the rating it came from, if any.
fn validate_feedback(request: &FeedbackRequest) -> Result<(Score, Option<Rating>), ApiError> {
    match (&request.rating, request.score) {
        (Some(_), Some(_)) => Err(invalid("Give `rating` (1–5) or `score` (0–1), not both.")),
        (None, None) => Err(invalid("Give a `rating` from 1 to 5 or a `score` from 0 to 1.")),
        (Some(rating), None) => {
            let stars =
                rating.as_u64().filter(|r| (1..=5).contains(r)).and_then(|r| Rating::new(r as u8));
            match stars {
                Some(r) => Ok((Score::from_rating(r), Some(r))),
                None => Err(invalid(format!(
                    "`rating` must be a whole number from 1 to 5, not {rating}."
                ))),
            }
        }
        (None, Some(score)) => match Score::new(score) {
            Some(s) if score.is_finite() => Ok((s, None)),
            _ => Err(invalid(format!("`score` must be a number from 0 to 1, not {score}."))),
        },
    }
}

/// Finds what a decision's feedback should teach: the model that answered and the context.
async fn answered(gateway: &Gateway, id: &str) -> Result<Option<Answered>, ApiError> {
    if let Some(entry) = gateway.recent.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
        return Ok(Some(entry.clone()));
    }
    let view = gateway.store.decision(id).await.map_err(|e| {
        tracing::error!(error = %e, "reading a decision for feedback");
        ApiError::new(ApiErrorKind::Internal, "The store could not be read; try again.")
    })?;
    let Some(view) = view else { return Ok(None) };
    let features: Option<router_core::Features> =
        serde_json::from_str(&view.request.features_json).ok();
    let model = view
        .outcome
        .as_ref()
        .and_then(|o| o.model.clone())
        .unwrap_or(view.request.chosen_model.clone());
    // The prompt is not kept (or only hashed), so feedback on an older decision teaches the
    // contexts but not the memory of similar queries.
    Ok(features.map(|f| Answered {
        model,
        context: Context::of(&f),
        sketch: None,
        feedback: view.feedback.map(|f| f.score.get()),
    }))
}

/// `POST /api/routing/feedback`: `{decision_id, rating | score, comment?}`. Stored, learned
/// from; a second feedback on the same decision replaces the first.
async fn feedback(State(gateway): State<Gateway>, request: Request) -> Response {
    let body = match read_json(&gateway, request).await {
        Ok(body) => body,
        Err(e) => return error(&e),
    };
    let request: FeedbackRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(&invalid(format!(
                "The body is not valid feedback ({e}). Send {{\"decision_id\": \"...\", \"rating\": 1..5}} or {{\"decision_id\": \"...\", \"score\": 0..1}}."
            )));
        }
    };
    let (score, rating) = match validate_feedback(&request) {
        Ok(v) => v,
        Err(e) => return error(&e),
    };
    if request.comment.as_ref().is_some_and(|c| c.chars().count() > MAX_COMMENT) {
        return error(&invalid(format!("`comment` is over {MAX_COMMENT} characters.")));
    }
    let id = request.decision_id.trim();
    let answered = match answered(&gateway, id).await {
        Ok(Some(a)) => a,
        Ok(None) => {
            let mut e = ApiError::new(
                ApiErrorKind::NotFound,
                format!(
                    "No decision `{id}` is known. Use the id from the `x-router-decision-id` header of a response."
                ),
            );
            e.param = Some("decision_id".into());
            return error(&e);
        }
        Err(e) => return error(&e),
    };
    let record = FeedbackRecord {
        decision_id: id.to_string(),
        created_at_ms: epoch_ms(),
        score,
        rating,
        comment: request.comment.clone(),
    };
    if let Err(e) = gateway.store.upsert_feedback(&record).await {
        tracing::error!(error = %e, "storing feedback");
        return error(&ApiError::new(
            ApiErrorKind::Internal,
            "The feedback could not be stored; try again.",
        ));
    }
    let score_value = score.get();
    gateway.learn(|knowledge| {
        knowledge.feedback(&answered.model, answered.context, score_value, answered.feedback);
        // The memory of similar queries learns it too, when the query's sketch is known.
        if let Some(sketch) = &answered.sketch {
            let weight = knowledge.config.feedback_weight;
            knowledge.remember(
                &answered.model,
                &sketch.expand(),
                score_value,
                weight,
                answered.feedback,
            );
        }
    });
    gateway.recent.lock().unwrap_or_else(|e| e.into_inner()).set_feedback(id, score.get());
    gateway.metrics.inc("llm_router_feedback_total", &[("model", &answered.model)], 1);
    axum::Json(json!({
        "status": "ok",
        "decision_id": id,
        "model": answered.model,
        "score": score.get(),
        "replaced": answered.feedback.is_some(),
    }))
    .into_response()
}

#[derive(Debug, Deserialize)]
struct StatsParams {
    /// `1h`, `24h`, `7d`, `30d`… or `all` (default).
    window: Option<String>,
    since_ms: Option<i64>,
    #[serde(default)]
    by_complexity: bool,
}

/// Parses a window such as `90m`, `24h`, `7d` into milliseconds.
pub fn parse_window(window: &str) -> Option<i64> {
    let w = window.trim();
    if w == "all" {
        return Some(0);
    }
    let (number, unit) = w.split_at(w.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    let ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms)
}

/// `GET /api/routing/stats`: per model × domain × language — requests, success rate, mean
/// rating, latency p50/p95, cost — over a window, and what the policy has learned.
async fn stats(State(gateway): State<Gateway>, Query(params): Query<StatsParams>) -> Response {
    let since_ms = match (params.since_ms, params.window.as_deref()) {
        (Some(since), _) => Some(since),
        (None, None) | (None, Some("all")) => None,
        (None, Some(window)) => match parse_window(window) {
            Some(ms) => Some(epoch_ms() - ms),
            None => {
                return error(&invalid(format!(
                    "`window` `{window}` is not like `90m`, `24h`, `7d` or `all`."
                )));
            }
        },
    };
    let started = Instant::now();
    match gateway.store.stats(&StatsQuery { since_ms, by_complexity: params.by_complexity }).await {
        Ok(rows) => {
            let rows: Vec<_> = rows
                .into_iter()
                .map(|r| {
                    let rate = r.success_rate();
                    let mut v = serde_json::to_value(&r).unwrap_or_default();
                    v["success_rate"] = json!(rate);
                    v
                })
                .collect();
            axum::Json(json!({
                "since_ms": since_ms,
                "rows": rows,
                "learned": gateway.knowledge().learned(),
                "query_ms": started.elapsed().as_millis() as u64,
            }))
            .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "stats query");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({"error": {"message": "The stats could not be read from the store."}}),
                ),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_window;

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("90m"), Some(90 * 60_000));
        assert_eq!(parse_window("24h"), Some(86_400_000));
        assert_eq!(parse_window("7d"), Some(7 * 86_400_000));
        assert_eq!(parse_window("all"), Some(0));
        assert_eq!(parse_window("soon"), None);
        assert_eq!(parse_window("5y"), None);
    }
}
