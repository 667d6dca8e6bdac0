//! Ollama's native `/api/chat`, upstream side: [`request_body`], [`parse_response`] and the
//! NDJSON [`StreamDecoder`] (one JSON object per line; the last has `done: true` with
//! `done_reason`, `prompt_eval_count` and `eval_count`).
//!
//! Ollama takes images only inline (a base64 list per message) and has no way to force a
//! tool call, so requests that need either are refused with [`UpstreamError::Unsupported`]
//! rather than sent in a form that would be answered differently. Its answers carry no
//! response or tool-call ids; stable ones are derived from the answer itself, so that a
//! client can send tool results back and find its calls.

use std::collections::HashMap;

use router_core::Role;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, StreamEvent,
    ToolCall, ToolChoice, Usage,
};
use crate::error::{UpstreamError, from_error_event};
use crate::json::{f32_json, null_as_default};

/// Longest NDJSON line buffered (see [`crate::sse::MAX_LINE_BYTES`] for why there is one).
const MAX_LINE_BYTES: usize = crate::sse::MAX_LINE_BYTES;

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The `/api/chat` body for `model_id`.
pub fn request_body(
    request: &ChatRequest,
    model_id: &str,
    stream: bool,
) -> Result<Value, UpstreamError> {
    let tools_offered = !request.tools.is_empty() && request.tool_choice != Some(ToolChoice::None);
    match &request.tool_choice {
        Some(ToolChoice::Required | ToolChoice::Tool(_)) if !request.tools.is_empty() => {
            return Err(UpstreamError::Unsupported {
                message: "Ollama cannot be made to call a tool (tool_choice required or a named \
                          tool)"
                    .into(),
            });
        }
        _ => {}
    }

    // Ollama's tool messages name the tool, not the call; the call's name is found in the
    // assistant turn that made it.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        for part in &message.content {
            if let ContentPart::ToolCall(call) = part {
                call_names.insert(&call.id, &call.name);
            }
        }
        push_message(message, &call_names, &mut messages)?;
    }

    let mut body = json!({"model": model_id, "messages": messages, "stream": stream});
    let mut options = Map::new();
    if let Some(temperature) = request.temperature {
        options.insert("temperature".into(), f32_json(temperature));
    }
    if let Some(top_p) = request.top_p {
        options.insert("top_p".into(), f32_json(top_p));
    }
    if let Some(max_tokens) = request.max_tokens {
        options.insert("num_predict".into(), json!(max_tokens));
    }
    if !request.stop.is_empty() {
        options.insert("stop".into(), json!(request.stop));
    }
    if let Some(seed) = request.seed {
        options.insert("seed".into(), json!(seed));
    }
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    match &request.json_output {
        None => {}
        Some(None) => body["format"] = json!("json"),
        Some(Some(schema)) => body["format"] = schema.clone(),
    }
    if tools_offered {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut function = json!({"name": tool.name, "parameters": tool.parameters});
                if let Some(description) = &tool.description {
                    function["description"] = json!(description);
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        body["tools"] = Value::Array(tools);
    }
    Ok(body)
}

fn push_message(
    message: &Message,
    call_names: &HashMap<&str, &str>,
    out: &mut Vec<Value>,
) -> Result<(), UpstreamError> {
    let mut texts = Vec::new();
    let mut images = Vec::new();
    let mut calls = Vec::new();
    for part in &message.content {
        match part {
            ContentPart::Text { text } => texts.push(text.as_str()),
            ContentPart::Image { source } => match source {
                ImageSource::Base64 { data, .. } => images.push(data.clone()),
                ImageSource::Url { url } => match ImageSource::from_url(url) {
                    ImageSource::Base64 { data, .. } => images.push(data),
                    ImageSource::Url { .. } => {
                        return Err(UpstreamError::Unsupported {
                            message: "Ollama takes images only as inline base64 data, not by URL"
                                .into(),
                        });
                    }
                },
            },
            ContentPart::ToolCall(call) => {
                let arguments = if call.arguments.trim().is_empty() {
                    Value::Object(Map::new())
                } else {
                    serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .ok_or_else(|| UpstreamError::Unsupported {
                            message: format!(
                                "the arguments of tool call '{}' are not a JSON object, which \
                                 Ollama requires",
                                call.id
                            ),
                        })?
                };
                calls.push(json!({"function": {"name": call.name, "arguments": arguments}}));
            }
            ContentPart::ToolResult { call_id, content, is_error } => {
                let mut result = json!({
                    "role": "tool",
                    "content": if *is_error { format!("Error: {content}") } else { content.clone() },
                });
                if let Some(name) = call_names.get(call_id.as_str()) {
                    result["tool_name"] = json!(name);
                }
                out.push(result);
            }
        }
    }
    if texts.is_empty() && images.is_empty() && calls.is_empty() {
        return Ok(());
    }
    let role = match message.role {
        Role::System => "system",
        Role::User | Role::Tool => "user",
        Role::Assistant => "assistant",
    };
    let mut turn = json!({"role": role, "content": texts.join("\n\n")});
    if !images.is_empty() {
        turn["images"] = json!(images);
    }
    if !calls.is_empty() {
        turn["tool_calls"] = Value::Array(calls);
    }
    out.push(turn);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    created_at: String,
    message: Option<WireMessage>,
    #[serde(default, deserialize_with = "null_as_default")]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireMessage {
    #[serde(default, deserialize_with = "null_as_default")]
    content: String,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    arguments: Value,
}

impl WireChunk {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_eval_count.unwrap_or(0),
            output_tokens: self.eval_count.unwrap_or(0),
        }
    }

    fn finish_reason(&self, made_tool_calls: bool) -> FinishReason {
        match self.done_reason.as_deref() {
            Some("length") => FinishReason::Length,
            _ if made_tool_calls => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        }
    }
}

/// FNV-1a: ids derived from an answer must be the same every time it is read and differ
/// between answers; no randomness or clock is needed for that.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

fn response_id(model: &str, created_at: &str) -> String {
    format!("ollama-{:016x}", fnv1a(&[model, created_at]))
}

fn tool_call(response_id: &str, index: u32, call: WireToolCall) -> ToolCall {
    let arguments = match call.function.arguments {
        Value::Null => "{}".to_owned(),
        // Some models' templates hand back the arguments as a JSON string already.
        Value::String(text) => text,
        other => other.to_string(),
    };
    let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| {
        let hash = fnv1a(&[response_id, &index.to_string(), &call.function.name, &arguments]);
        format!("call_{hash:016x}")
    });
    ToolCall { id, name: call.function.name, arguments }
}

fn parse_chunk(line: &[u8]) -> Result<WireChunk, UpstreamError> {
    crate::json::from_body(line).map_err(|error| UpstreamError::Protocol {
        message: format!("not an Ollama chat response: {error}"),
    })
}

/// Reads an upstream `/api/chat` body (`stream: false`).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let mut chunk = parse_chunk(body)?;
    if let Some(error) = chunk.error.take() {
        return Err(from_error_event(None, error));
    }
    let id = response_id(&chunk.model, &chunk.created_at);
    let message = chunk.message.take().unwrap_or_default();
    let mut content = Vec::new();
    if !message.content.is_empty() {
        content.push(ContentPart::Text { text: message.content });
    }
    let calls = message.tool_calls.unwrap_or_default();
    let made_tool_calls = !calls.is_empty();
    for (index, call) in calls.into_iter().enumerate() {
        content.push(ContentPart::ToolCall(tool_call(&id, index as u32, call)));
    }
    Ok(ChatResponse {
        id,
        model: chunk.model.clone(),
        finish_reason: chunk.finish_reason(made_tool_calls),
        usage: chunk.usage(),
        content,
        stop_sequence: None,
    })
}

/// Decodes Ollama's NDJSON stream into neutral events. The stream is complete only once the
/// `done: true` line has arrived.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    line: Vec<u8>,
    started: bool,
    finished: bool,
    id: String,
    tool_calls: u32,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the `done: true` line has arrived.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Decodes `chunk`, appending events to `out`. A line with `error` is returned as the
    /// error; events decoded before it are in `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            if self.finished {
                return Ok(());
            }
            self.push(&rest[..end])?;
            let line = std::mem::take(&mut self.line);
            let result = self.decode_line(&line, out);
            self.line = line;
            self.line.clear();
            result?;
            rest = &rest[end + 1..];
        }
        if self.finished { Ok(()) } else { self.push(rest) }
    }

    /// The body has ended: a last line without its newline is still a line.
    pub fn end_of_input(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if self.finished || self.line.is_empty() {
            return Ok(());
        }
        let line = std::mem::take(&mut self.line);
        self.decode_line(&line, out)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), UpstreamError> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(UpstreamError::Protocol {
                message: format!("NDJSON line longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn decode_line(
        &mut self,
        line: &[u8],
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        let mut chunk = parse_chunk(line)?;
        if let Some(error) = chunk.error.take() {
            return Err(from_error_event(None, error));
        }
        if !self.started {
            self.started = true;
            self.id = response_id(&chunk.model, &chunk.created_at);
            out.push(StreamEvent::Start { id: self.id.clone(), model: chunk.model.clone() });
        }
        let usage = chunk.usage();
        let done = chunk.done;
        let finish = done.then(|| chunk.finish_reason(self.tool_calls > 0));
        let message = chunk.message.take().unwrap_or_default();
        if !message.content.is_empty() {
            out.push(StreamEvent::TextDelta { text: message.content });
        }
        // Ollama sends each tool call whole, in one line.
        for call in message.tool_calls.unwrap_or_default() {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let call = tool_call(&self.id, index, call);
            out.push(StreamEvent::ToolCallStart { index, id: call.id, name: call.name });
            out.push(StreamEvent::ToolCallDelta { index, arguments: call.arguments });
        }
        if done {
            let reason = if self.tool_calls > 0 && finish == Some(FinishReason::Stop) {
                FinishReason::ToolCalls
            } else {
                finish.unwrap_or(FinishReason::Stop)
            };
            out.push(StreamEvent::Finish { reason, stop_sequence: None });
            out.push(StreamEvent::Usage(usage));
            self.finished = true;
        }
        Ok(())
    }
}
