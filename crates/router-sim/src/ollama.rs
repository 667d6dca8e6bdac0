//! Ollama's native API: `POST /api/chat` (NDJSON streaming by default, `stream: false` for
//! one JSON object), `GET /api/tags`, `GET /api/version`, and the fake judge that answers
//! structured-output calls (`format` set to a JSON schema).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::answer::{self, Finish, Prompt, Reply, ToolSpec};
use crate::exchange::{self, ApiError, ChatCall, Context, Incoming, Wire};
use crate::server::Shared;
use crate::stream::{Frame, StreamPlan};
use crate::{Endpoint, JudgeReply, schema};

/// The Ollama version `/api/version` reports (structured outputs need 0.5 or later).
pub const OLLAMA_VERSION: &str = "0.12.6";

pub(crate) struct Ollama;

/// `POST /api/chat`: the judge path for structured-output calls, ordinary chat otherwise.
pub(crate) async fn chat(shared: Arc<Shared>, request: Incoming) -> Response {
    let body: Result<Value, _> = serde_json::from_slice(&request.body);
    let Ok(value) = &body else {
        return exchange::serve::<Ollama>(shared, Endpoint::OllamaChat, request, body).await;
    };
    let model = value.get("model").and_then(Value::as_str);
    let is_judge = value.get("format").is_some()
        || (model.is_some() && model == shared.judge_model.as_deref());
    if is_judge {
        return judge(shared, request, value).await;
    }
    if value.get("messages").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        return preload(&shared, Endpoint::OllamaChat, &request, model);
    }
    exchange::serve::<Ollama>(shared, Endpoint::OllamaChat, request, body).await
}

impl Wire for Ollama {
    fn parse(body: &Value, _headers: &HeaderMap, _shared: &Shared) -> Result<ChatCall, ApiError> {
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| ApiError::InvalidRequest("model is required".to_owned()))?;
        let messages = check_messages(body).map_err(ApiError::InvalidRequest)?;
        let texts: Vec<&str> = messages.iter().map(|(_, content)| *content).collect();
        let last_user =
            messages.iter().rev().find(|(role, _)| *role == "user").map(|(_, c)| (*c).to_owned());
        let tool_result =
            messages.last().filter(|(role, _)| *role == "tool").map(|(_, c)| (*c).to_owned());
        let tools_json = body.get("tools").filter(|t| !t.is_null());
        let tools = tools_json
            .and_then(Value::as_array)
            .map(|tools| tools.iter().filter_map(tool_spec).collect())
            .unwrap_or_default();
        let max_tokens = body
            .pointer("/options/num_predict")
            .and_then(Value::as_i64)
            .filter(|&n| n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        let tools_chars = tools_json.map_or(0, |t| t.to_string().len());
        Ok(ChatCall {
            model: model.to_owned(),
            // Ollama streams unless told not to.
            stream: body.get("stream").and_then(Value::as_bool).unwrap_or(true),
            include_usage: false,
            prompt: Prompt {
                prompt_tokens: answer::prompt_tokens(texts, tools_chars),
                last_user: last_user.unwrap_or_default(),
                tool_result,
                tools,
                tool_choice: answer::ToolChoice::Auto,
                max_tokens,
            },
        })
    }

    fn credential(headers: &HeaderMap) -> Option<&str> {
        exchange::bearer(headers)
    }

    fn error(error: &ApiError) -> Response {
        let (status, message) = match error {
            ApiError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::UnknownModel(model) => (StatusCode::NOT_FOUND, not_found(model)),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized".to_owned()),
            ApiError::ContextLength { tokens } => (
                StatusCode::BAD_REQUEST,
                format!(
                    "the input length ({tokens} tokens) exceeds the context length ({})",
                    exchange::CONTEXT_WINDOW
                ),
            ),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, BUSY.to_owned()),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, BUSY.to_owned()),
            ApiError::Server => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "llama runner process has terminated: exit status 2".to_owned(),
            ),
        };
        exchange::error_response(status, &json!({ "error": message }), error)
    }

    fn unary(reply: &Reply, cx: &Context<'_>) -> Vec<u8> {
        let mut body = final_object(reply, cx, &exchange::rfc3339_now());
        body["message"] = message(reply, &reply.text());
        serde_json::to_vec(&body).unwrap_or_default()
    }

    fn stream(reply: &Reply, cx: &Context<'_>) -> StreamPlan {
        let created_at = exchange::rfc3339_now();
        let chunk = |message: Value| {
            exchange::ndjson(
                &json!({ "model": cx.model, "created_at": created_at, "message": message, "done": false }),
            )
        };
        let mut frames = Vec::with_capacity(reply.pieces.len() + 2);
        if reply.tool_call.is_some() {
            // Ollama sends a tool call whole, in one chunk.
            frames.push(Frame::content(chunk(message(reply, ""))));
        } else {
            for piece in &reply.pieces {
                frames
                    .push(Frame::content(chunk(json!({ "role": "assistant", "content": piece }))));
            }
        }
        frames.push(Frame::envelope(exchange::ndjson(&final_object(reply, cx, &created_at))));
        StreamPlan {
            content_type: "application/x-ndjson",
            frames,
            malformed: Bytes::from(format!(
                "{{\"model\":\"{}\",\"created_at\":\"{created_at}\",\"message\":{{\"role\":\"assistant\",\"content\":\"trunc\n",
                cx.model
            )),
            error_event: exchange::ndjson(
                &json!({ "error": "an error was encountered while running the model" }),
            ),
        }
    }
}

const BUSY: &str = "server busy, please try again.  maximum pending requests exceeded";

fn not_found(model: &str) -> String {
    format!("model \"{model}\" not found, try pulling it first")
}

/// The assistant message of a reply, with its tool call if any.
fn message(reply: &Reply, text: &str) -> Value {
    match &reply.tool_call {
        Some(call) => json!({
            "role": "assistant",
            "content": text,
            "tool_calls": [{ "function": { "name": call.name, "arguments": call.arguments } }],
        }),
        None => json!({ "role": "assistant", "content": text }),
    }
}

/// The closing object: empty message, `done`, `done_reason`, durations (ns) and counts.
fn final_object(reply: &Reply, cx: &Context<'_>, created_at: &str) -> Value {
    let done_reason = if reply.finish == Finish::Length { "length" } else { "stop" };
    timings(
        json!({
            "model": cx.model,
            "created_at": created_at,
            "message": { "role": "assistant", "content": "" },
            "done_reason": done_reason,
            "done": true,
        }),
        cx.generation,
        reply.prompt_tokens,
        reply.completion_tokens,
    )
}

/// Adds Ollama's timing fields. The durations are the simulated ones, with a small floor
/// per token so they look like a real run.
fn timings(mut object: Value, generation: Duration, prompt_tokens: u32, eval_tokens: u32) -> Value {
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let prompt_eval = u64::from(prompt_tokens) * 200_000;
    let eval = nanos(generation).max(u64::from(eval_tokens) * 1_000_000);
    let load = 1_000_000;
    if let Value::Object(map) = &mut object {
        map.insert("total_duration".into(), json!(load + prompt_eval + eval));
        map.insert("load_duration".into(), json!(load));
        map.insert("prompt_eval_count".into(), json!(prompt_tokens));
        map.insert("prompt_eval_duration".into(), json!(prompt_eval));
        map.insert("eval_count".into(), json!(eval_tokens));
        map.insert("eval_duration".into(), json!(eval));
    }
    object
}

/// The answer to an empty `messages` list: Ollama loads the model and says so.
fn preload(
    shared: &Arc<Shared>,
    endpoint: Endpoint,
    request: &Incoming,
    model: Option<&str>,
) -> Response {
    let mut tracker = shared.begin(endpoint, request);
    let Some(model) = model.filter(|m| !m.is_empty()) else {
        tracker.reject();
        return Ollama::error(&ApiError::InvalidRequest("model is required".to_owned()));
    };
    let Some(slot) = shared.model(model) else {
        tracker.reject();
        return Ollama::error(&ApiError::UnknownModel(model.to_owned()));
    };
    tracker.attach(slot);
    tracker.complete();
    let body = json!({
        "model": model,
        "created_at": exchange::rfc3339_now(),
        "message": { "role": "assistant", "content": "" },
        "done_reason": "load",
        "done": true,
    });
    exchange::json_response(StatusCode::OK, &body)
}

/// The messages as (role, content) pairs, if they have Ollama's shape.
fn check_messages(body: &Value) -> Result<Vec<(&str, &str)>, String> {
    let messages =
        body.get("messages").and_then(Value::as_array).ok_or("messages must be an array")?;
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or(format!("messages[{i}]: role is required"))?;
            if !matches!(role, "system" | "user" | "assistant" | "tool") {
                return Err(format!("messages[{i}]: invalid role {role:?}"));
            }
            // An assistant turn that only carries tool calls may omit its content.
            let content = match m.get("content") {
                Some(Value::String(s)) => s.as_str(),
                None | Some(Value::Null) if m.get("tool_calls").is_some() => "",
                _ => return Err(format!("messages[{i}]: content must be a string")),
            };
            Ok((role, content))
        })
        .collect()
}

fn tool_spec(tool: &Value) -> Option<ToolSpec> {
    let function = tool.get("function")?;
    Some(ToolSpec {
        name: function.get("name")?.as_str()?.to_owned(),
        parameters: function
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({ "type": "object" })),
    })
}

/// A judge request that passed validation.
struct JudgeCall<'a> {
    model: &'a str,
    schema: &'a Value,
    last_user: &'a str,
    prompt_tokens: u32,
}

/// The fake judge: validates the call against Ollama's structured-output shape and answers
/// per the configured [`JudgeBehavior`](crate::JudgeBehavior).
async fn judge(shared: Arc<Shared>, request: Incoming, body: &Value) -> Response {
    let call = match check_judge(body) {
        Ok(call) => call,
        Err(JudgeInvalid::Preload(model)) => {
            return preload(&shared, Endpoint::OllamaJudge, &request, Some(model));
        }
        Err(JudgeInvalid::Shape(message)) => {
            shared.begin(Endpoint::OllamaJudge, &request).reject();
            return Ollama::error(&ApiError::InvalidRequest(message));
        }
    };
    let mut tracker = shared.begin(Endpoint::OllamaJudge, &request);
    let Some(slot) = shared.model(call.model) else {
        tracker.reject();
        return Ollama::error(&ApiError::UnknownModel(call.model.to_owned()));
    };
    tracker.attach(slot);
    // Waiting for a turn is part of the call's latency, as in Ollama's queue; a client that
    // gives up leaves the queue.
    let _turn = match &shared.judge_turns {
        // The semaphore is never closed.
        Some(turns) => turns.acquire().await.ok(),
        None => None,
    };
    let behavior = shared.judge_behavior();
    if !behavior.delay.is_zero() {
        tokio::time::sleep(behavior.delay).await;
    }
    let answer = match &behavior.reply {
        JudgeReply::Hang => {
            tracker.injected();
            return exchange::hang(tracker).await;
        }
        JudgeReply::HttpError(code) => {
            tracker.injected();
            tracker.fail();
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return exchange::json_response(
                status,
                &json!({ "error": format!("judge failed with status {code}") }),
            );
        }
        JudgeReply::FromSchema => schema::sample(call.schema, call.last_user).to_string(),
        JudgeReply::Fixed(value) => value.to_string(),
        JudgeReply::NotJson => {
            tracker.injected();
            "I think the first option fits best, because it is the strongest.".to_owned()
        }
        JudgeReply::ViolatesSchema => {
            tracker.injected();
            schema::violate(call.schema, call.last_user).to_string()
        }
    };
    let eval_tokens = answer::estimate_tokens(&answer);
    let reply = json!({
        "model": call.model,
        "created_at": exchange::rfc3339_now(),
        "message": { "role": "assistant", "content": answer },
        "done_reason": "stop",
        "done": true,
    });
    let reply = timings(reply, behavior.delay, call.prompt_tokens, eval_tokens);
    tracker.complete();
    exchange::json_response(StatusCode::OK, &reply)
}

enum JudgeInvalid<'a> {
    /// An empty `messages` list without `format`: a model preload, which Ollama answers.
    Preload(&'a str),
    Shape(String),
}

/// Holds a judge call to the shape Ollama documents for structured outputs, strictly, so
/// that a gateway sending anything else finds out in its tests.
fn check_judge(body: &Value) -> Result<JudgeCall<'_>, JudgeInvalid<'_>> {
    let shape = |m: &str| JudgeInvalid::Shape(m.to_owned());
    let Some(object) = body.as_object() else {
        return Err(shape("the request body must be a JSON object"));
    };
    let model = object
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| shape("model is required"))?;
    let messages = check_messages(body).map_err(JudgeInvalid::Shape)?;
    let format = object.get("format");
    if messages.is_empty() {
        return match format {
            None => Err(JudgeInvalid::Preload(model)),
            Some(_) => Err(shape("a judge request needs at least one message")),
        };
    }
    let schema = match format {
        Some(schema @ Value::Object(map))
            if map.contains_key("type") || map.contains_key("properties") =>
        {
            schema
        }
        Some(_) => return Err(shape("format must be a JSON schema object")),
        None => return Err(shape("a judge request must set format to a JSON schema object")),
    };
    if object.get("stream") != Some(&Value::Bool(false)) {
        return Err(shape(
            "a judge request must set \"stream\": false (Ollama streams by default)",
        ));
    }
    let options = match object.get("options") {
        Some(Value::Object(options)) => options,
        Some(_) => return Err(shape("options must be an object")),
        None => &Map::new(),
    };
    if !options.get("temperature").is_some_and(Value::is_number) {
        return Err(shape("a judge request must set options.temperature to a number"));
    }
    match object.get("keep_alive") {
        None | Some(Value::Number(_)) => {}
        Some(Value::String(s)) if is_go_duration(s) => {}
        Some(other) => {
            return Err(JudgeInvalid::Shape(format!("keep_alive: invalid duration {other}")));
        }
    }
    let last_user = messages.iter().rev().find(|(role, _)| *role == "user").map_or("", |(_, c)| c);
    let prompt_tokens =
        answer::prompt_tokens(messages.iter().map(|(_, c)| *c), schema.to_string().len());
    Ok(JudgeCall { model, schema, last_user, prompt_tokens })
}

/// Whether `s` parses as a Go `time.Duration` ("30m", "1h30m", "-1s", "1.5h", "0"), the
/// form Ollama reads `keep_alive` strings in.
fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(*u))
            .max_by_key(|u| u.len());
        match unit {
            Some(unit) => rest = &rest[unit.len()..],
            None => return false,
        }
    }
    true
}

/// `GET /api/tags`: every hosted model, in Ollama's listing shape.
pub(crate) fn tags(shared: &Shared) -> Value {
    let models: Vec<Value> = shared
        .model_names()
        .map(|name| {
            let h = answer::fnv1a(name);
            json!({
                "name": name,
                "model": name,
                "modified_at": exchange::rfc3339(Duration::from_secs(1_735_689_600 + h % 10_000_000)),
                "size": 4_000_000_000u64 + h % 1_000_000_000,
                "digest": format!("{h:016x}{:016x}{:016x}{:016x}", h.rotate_left(16), h.rotate_left(32), h.rotate_left(48)),
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llama",
                    "families": ["llama"],
                    "parameter_size": "8.0B",
                    "quantization_level": "Q4_K_M",
                },
            })
        })
        .collect();
    json!({ "models": models })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for ok in ["30m", "1h30m", "-1s", "1.5h", "0", "300ms", "5m0s", "-1h"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "-1", "30", "m", "1x", "1..5h", "abc"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    fn judge_body() -> Value {
        json!({
            "model": "llama3.1:8b",
            "messages": [{ "role": "system", "content": "route" }, { "role": "user", "content": "hi" }],
            "stream": false,
            "format": { "type": "object", "properties": { "model": { "enum": ["a", "b"] } } },
            "options": { "temperature": 0 },
            "keep_alive": "30m",
        })
    }

    fn rejection(body: &Value) -> Option<String> {
        match check_judge(body) {
            Ok(_) => None,
            Err(JudgeInvalid::Preload(_)) => Some("preload".to_owned()),
            Err(JudgeInvalid::Shape(m)) => Some(m),
        }
    }

    #[test]
    fn judge_shape_checks() {
        assert_eq!(rejection(&judge_body()), None);
        let mutate = |f: &dyn Fn(&mut Value)| {
            let mut b = judge_body();
            f(&mut b);
            rejection(&b)
        };
        assert!(mutate(&|b| b["stream"] = json!(true)).is_some_and(|m| m.contains("stream")));
        assert!(mutate(&|b| drop(b.as_object_mut().map(|o| o.remove("stream")))).is_some());
        assert!(
            mutate(&|b| drop(b.as_object_mut().map(|o| o.remove("format"))))
                .is_some_and(|m| m.contains("format"))
        );
        assert!(mutate(&|b| b["format"] = json!("json")).is_some_and(|m| m.contains("schema")));
        assert!(mutate(&|b| b["options"] = json!({})).is_some_and(|m| m.contains("temperature")));
        assert!(
            mutate(&|b| b["keep_alive"] = json!("soon")).is_some_and(|m| m.contains("keep_alive"))
        );
        assert!(mutate(&|b| b["keep_alive"] = json!(-1)).is_none());
        assert!(
            mutate(&|b| b["messages"] = json!([{ "role": "robot", "content": "x" }])).is_some()
        );
        assert!(mutate(&|b| b["messages"] = json!([{ "role": "user", "content": 3 }])).is_some());
        assert_eq!(
            mutate(&|b| {
                b["messages"] = json!([]);
                b.as_object_mut().map(|o| o.remove("format"));
            }),
            Some("preload".to_owned())
        );
    }
}
