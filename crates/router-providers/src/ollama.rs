//! Ollama's native `/api/chat`, upstream side: [`request_body`], [`parse_response`] and the
//! NDJSON [`StreamDecoder`] (one JSON object per line; the last has `done: true` with
//! `done_reason`, `prompt_eval_count` and `eval_count`).
//!
//! Ollama takes images only inline (a base64 list per message) and has no way to force a
//! tool call, so requests that need either are refused with [`UpstreamError::Unsupported`]
//! rather than sent in a form that would be answered differently. Its answers carry no
//! response or tool-call ids; stable ones are derived from the answer itself, so that a
//! client can send tool results back and find its calls.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use router_core::Role;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, StreamEvent,
    ToolCall, ToolChoice, Usage,
};
use crate::error::{UpstreamError, from_error_event};
use crate::json::scan::{Scan, first};
use crate::json::shape::TextShape;
use crate::json::{body_capacity, f32_json, null_as_default, put_escaped, put_str};
use crate::openai::unwritable;

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
    let options = options(request);
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

/// The `/api/chat` body for `model_id`, written straight to the bytes sent on the wire.
///
/// A conversation in text alone, with no tools and no structured output — nearly every
/// request — is written by hand, its strings escaped eight bytes at a time; anything else is
/// the serialised [`request_body`]. Both write the same JSON (the tests hold them equal).
pub fn request_bytes(
    request: &ChatRequest,
    model_id: &str,
    stream: bool,
) -> Result<Vec<u8>, UpstreamError> {
    let in_text = |message: &Message| {
        message.content.iter().all(|part| matches!(part, ContentPart::Text { .. }))
    };
    if !request.tools.is_empty()
        || request.json_output.is_some()
        || !request.messages.iter().all(in_text)
    {
        let body = request_body(request, model_id, stream)?;
        return serde_json::to_vec(&body).map_err(unwritable);
    }
    let mut out = Vec::with_capacity(body_capacity(request));
    out.extend_from_slice(b"{\"model\":");
    put_str(&mut out, model_id);
    out.extend_from_slice(b",\"messages\":[");
    // A message with nothing in it is left out, as `push_message` leaves it out.
    for (index, message) in request.messages.iter().filter(|m| !m.content.is_empty()).enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(role_name(message.role).as_bytes());
        out.extend_from_slice(b"\",\"content\":\"");
        for (index, part) in message.content.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(b"\\n\\n");
            }
            if let ContentPart::Text { text } = part {
                put_escaped(&mut out, text);
            }
        }
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(if stream { b"],\"stream\":true" } else { b"],\"stream\":false" });
    let options = options(request);
    if !options.is_empty() {
        out.extend_from_slice(b",\"options\":");
        serde_json::to_writer(&mut out, &options).map_err(unwritable)?;
    }
    out.push(b'}');
    Ok(out)
}

/// The sampling parameters, which Ollama takes under `options`.
fn options(request: &ChatRequest) -> Map<String, Value> {
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
    options
}

/// Ollama has no tool role: a tool's result goes back as the user's turn.
fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User | Role::Tool => "user",
        Role::Assistant => "assistant",
    }
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
    let mut turn = json!({"role": role_name(message.role), "content": texts.join("\n\n")});
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

/// One line of an answer, as the decoders use it: borrowed from the text where the fast
/// reader read it, owned where serde did.
struct Line<'a> {
    model: Cow<'a, str>,
    created_at: Cow<'a, str>,
    content: Cow<'a, str>,
    tool_calls: Vec<WireToolCall>,
    done: bool,
    done_reason: Option<Cow<'a, str>>,
    usage: Usage,
    error: Option<String>,
}

impl From<WireChunk> for Line<'static> {
    fn from(chunk: WireChunk) -> Self {
        let usage = chunk.usage();
        let message = chunk.message.unwrap_or_default();
        Line {
            model: Cow::Owned(chunk.model),
            created_at: Cow::Owned(chunk.created_at),
            content: Cow::Owned(message.content),
            tool_calls: message.tool_calls.unwrap_or_default(),
            done: chunk.done,
            done_reason: chunk.done_reason.map(Cow::Owned),
            usage,
            error: chunk.error,
        }
    }
}

impl Line<'_> {
    fn finish_reason(&self, made_tool_calls: bool) -> FinishReason {
        match self.done_reason.as_deref() {
            Some("length") => FinishReason::Length,
            _ if made_tool_calls => FinishReason::ToolCalls,
            _ => FinishReason::Stop,
        }
    }
}

/// Reads a line: without serde when it is plain, with serde otherwise.
fn read_line(line: &[u8]) -> Result<Line<'_>, UpstreamError> {
    match std::str::from_utf8(line).ok().and_then(plain_line) {
        Some(line) => Ok(line),
        None => parse_chunk(line).map(Line::from),
    }
}

/// Reads a plain line without serde: text (or none) and the closing counts, no tool call and
/// no error — every line of an answer in text. `None` for anything else, which serde reads.
fn plain_line(text: &str) -> Option<Line<'_>> {
    plain_line_at(text).map(|(line, _)| line)
}

/// Where a plain line's strings stood, for its [`TextShape`].
#[derive(Debug, Default)]
struct Spans {
    created_at: Option<Range<usize>>,
    content: Option<Range<usize>>,
}

/// [`plain_line`], saying where its `created_at` and its text stood.
fn plain_line_at(text: &str) -> Option<(Line<'_>, Spans)> {
    let mut scan = Scan::new(text);
    let mut spans = Spans::default();
    let (mut model, mut created_at, mut content, mut done) = (None, None, None, None);
    let (mut done_reason, mut prompt_tokens, mut output_tokens, mut error) =
        (None, None, None, None);
    scan.object(|scan, key| match key {
        "model" => first(&mut model, scan.string_or_null()),
        "created_at" => first(&mut created_at, string_or_null_at(scan, &mut spans.created_at)),
        "message" => first(&mut content, scan_message(scan, &mut spans.content)),
        "done" => first(&mut done, if scan.null() { Some(false) } else { scan.boolean() }),
        "done_reason" => first(&mut done_reason, scan.string_or_null()),
        "prompt_eval_count" => first(&mut prompt_tokens, optional_count(scan)),
        "eval_count" => first(&mut output_tokens, optional_count(scan)),
        "error" => first(&mut error, scan.null().then_some(())),
        _ => scan.skip(),
    })?;
    scan.at_end().then_some(())?;
    let line = Line {
        model: model.flatten().unwrap_or_default(),
        created_at: created_at.flatten().unwrap_or_default(),
        content: content.flatten().unwrap_or_default(),
        tool_calls: Vec::new(),
        done: done.unwrap_or(false),
        done_reason: done_reason.flatten(),
        usage: Usage {
            input_tokens: prompt_tokens.flatten().unwrap_or(0),
            output_tokens: output_tokens.flatten().unwrap_or(0),
        },
        error: None,
    };
    Some((line, spans))
}

/// A plain line's `message` (or `null`): its text, or `None` where it has none; `at` is
/// where the text's string stood.
fn scan_message<'a>(
    scan: &mut Scan<'a>,
    at: &mut Option<Range<usize>>,
) -> Option<Option<Cow<'a, str>>> {
    if scan.null() {
        return Some(None);
    }
    let (mut content, mut tool_calls) = (None, None);
    scan.object(|scan, key| match key {
        "content" => first(&mut content, string_or_null_at(scan, at)),
        "tool_calls" => first(&mut tool_calls, scan.null().then_some(())),
        _ => scan.skip(),
    })?;
    Some(content.flatten())
}

/// [`Scan::string_or_null`], noting in `at` where a string stood.
fn string_or_null_at<'a>(
    scan: &mut Scan<'a>,
    at: &mut Option<Range<usize>>,
) -> Option<Option<Cow<'a, str>>> {
    if scan.null() {
        return Some(None);
    }
    let (string, span) = scan.string_at()?;
    *at = Some(span);
    Some(Some(string))
}

fn optional_count(scan: &mut Scan<'_>) -> Option<Option<u64>> {
    if scan.null() { Some(None) } else { scan.u64().map(Some) }
}

/// Reads an upstream `/api/chat` body (`stream: false`).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    response(read_line(body)?)
}

fn response(line: Line<'_>) -> Result<ChatResponse, UpstreamError> {
    if let Some(error) = line.error {
        return Err(from_error_event(None, error));
    }
    let id = response_id(&line.model, &line.created_at);
    let finish_reason = line.finish_reason(!line.tool_calls.is_empty());
    let mut content = Vec::new();
    if !line.content.is_empty() {
        content.push(ContentPart::Text { text: line.content.into_owned() });
    }
    for (index, call) in line.tool_calls.into_iter().enumerate() {
        content.push(ContentPart::ToolCall(tool_call(&id, index as u32, call)));
    }
    Ok(ChatResponse {
        id,
        model: line.model.into_owned(),
        finish_reason,
        usage: line.usage,
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
    /// The last line that carried text alone, for reading the next ones by their text.
    text_line: TextShape,
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
        while let Some(end) = memchr::memchr(b'\n', rest) {
            if self.finished {
                return Ok(());
            }
            let (line, after) = (&rest[..end], &rest[end + 1..]);
            rest = after;
            self.check_length(line)?;
            if self.line.is_empty() {
                // The whole line is in this chunk, as nearly every line is: read it in place.
                self.decode_line(line, out)?;
                continue;
            }
            self.line.extend_from_slice(line);
            let line = std::mem::take(&mut self.line);
            let result = self.decode_line(&line, out);
            self.line = line;
            self.line.clear();
            result?;
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
        self.check_length(bytes)?;
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// Refuses a line that `bytes` would make longer than [`MAX_LINE_BYTES`].
    fn check_length(&self, bytes: &[u8]) -> Result<(), UpstreamError> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(UpstreamError::Protocol {
                message: format!("NDJSON line longer than {MAX_LINE_BYTES} bytes"),
            });
        }
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
        let Ok(text) = std::str::from_utf8(line) else {
            return self.decode(parse_chunk(line).map(Line::from)?, out);
        };
        // Only a line read since remembers a shape, so the stream has started: all that such
        // a line makes is its text.
        if let Some(delta) = self.text_line.text_of(text) {
            if !delta.is_empty() {
                out.push(StreamEvent::TextDelta { text: delta.into_owned() });
            }
            return Ok(());
        }
        match plain_line_at(text) {
            Some((line, spans)) => {
                // Only a line with text that is not the last is remembered: the shape of the
                // last would bring its ending back.
                if let Some(at) = spans.content
                    && !line.content.is_empty()
                    && !line.done
                {
                    self.text_line.remember(text, at, spans.created_at, None);
                }
                self.decode(line, out)
            }
            None => self.decode(parse_chunk(line).map(Line::from)?, out),
        }
    }

    fn decode(&mut self, line: Line<'_>, out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        if let Some(error) = line.error {
            return Err(from_error_event(None, error));
        }
        let finish = line.done.then(|| line.finish_reason(self.tool_calls > 0));
        if !self.started {
            self.started = true;
            self.id = response_id(&line.model, &line.created_at);
            out.push(StreamEvent::Start { id: self.id.clone(), model: line.model.into_owned() });
        }
        if !line.content.is_empty() {
            out.push(StreamEvent::TextDelta { text: line.content.into_owned() });
        }
        // Ollama sends each tool call whole, in one line.
        for call in line.tool_calls {
            let index = self.tool_calls;
            self.tool_calls += 1;
            let call = tool_call(&self.id, index, call);
            out.push(StreamEvent::ToolCallStart { index, id: call.id, name: call.name });
            out.push(StreamEvent::ToolCallDelta { index, arguments: call.arguments });
        }
        if line.done {
            let reason = if self.tool_calls > 0 && finish == Some(FinishReason::Stop) {
                FinishReason::ToolCalls
            } else {
                finish.unwrap_or(FinishReason::Stop)
            };
            out.push(StreamEvent::Finish { reason, stop_sequence: None });
            out.push(StreamEvent::Usage(line.usage));
            self.finished = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan::check_fast_reader;
    use crate::json::shape::check_text_shape;

    /// Lines as Ollama writes them, which the fast path must read.
    const PLAIN_LINES: &[&str] = &[
        r#"{"model":"llama3.2","created_at":"2026-11-29T08:52:19.385406455Z","message":{"role":"assistant","content":"The","images":null},"done":false}"#,
        r#"{"model":"llama3.2","created_at":"2026-11-29T08:52:19.385406455Z","message":{"role":"assistant","content":" sky \"is\"\n caf\u00e9 \ud83d\ude00 中文"},"done":false}"#,
        // A thinking model's reasoning, which the gateway does not pass on.
        r#"{"model":"qwen3","created_at":"2026-11-29T08:52:20Z","message":{"role":"assistant","content":"","thinking":"Let me see"},"done":false}"#,
        // The last line, and a whole `stream: false` answer.
        r#"{"model":"llama3.2","created_at":"2026-11-29T08:52:21.499127Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":26,"prompt_eval_duration":342546000,"eval_count":282,"eval_duration":4535599000}"#,
        r#"{"model":"llama3.2","created_at":"2026-11-29T08:52:21Z","message":{"role":"assistant","content":"A whole answer."},"done_reason":"length","done":true,"prompt_eval_count":9,"eval_count":4}"#,
        // Nulls where serde takes defaults, and whitespace.
        " { \"model\" : null , \"message\" : null , \"done\" : null , \"error\" : null , \"eval_count\" : null } ",
        r#"{"message":{"content":null,"tool_calls":null},"done_reason":null,"done":false}"#,
    ];

    /// Lines that carry what the fast path does not read, which serde must read.
    const OTHER_LINES: &[&str] = &[
        r#"{"model":"llama3.2","created_at":"2026-11-29T08:52:21Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done":false}"#,
        r#"{"error":"model 'llama9' not found"}"#,
        r#"{"model":"a","model":"b","done":false}"#,
        r#"{"message":{"content":"a"},"done":false} trailing"#,
        r#"{"done":true,"eval_count":-1}"#,
        r#"{"done":true,"eval_count":2.5}"#,
    ];

    /// What a line makes as a stream's first line and as a later one after a tool call: the
    /// events, and whether the stream is then finished.
    type Decoded = [(Vec<StreamEvent>, bool); 2];

    fn decoded<'a>(
        read: impl Fn() -> Result<Line<'a>, UpstreamError>,
    ) -> Result<Decoded, UpstreamError> {
        let later = StreamDecoder {
            started: true,
            id: "ollama-0000000000000001".into(),
            tool_calls: 1,
            ..StreamDecoder::default()
        };
        let mut both = Decoded::default();
        for (mut decoder, (out, finished)) in
            [StreamDecoder::new(), later].into_iter().zip(&mut both)
        {
            decoder.decode(read()?, out)?;
            *finished = decoder.is_finished();
        }
        Ok(both)
    }

    fn with_serde(text: &str) -> Result<Line<'static>, UpstreamError> {
        parse_chunk(text.as_bytes()).map(Line::from)
    }

    #[test]
    fn plain_lines_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(
            PLAIN_LINES,
            OTHER_LINES,
            |text| {
                plain_line(text)?;
                decoded(|| plain_line(text).ok_or(UpstreamError::Protocol { message: text.into() }))
                    .ok()
            },
            |text| decoded(|| with_serde(text)),
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_whole_or_in_pieces() {
        let long = format!("{{\"message\":{{\"content\":\"{}\"}}}}\n", "a".repeat(MAX_LINE_BYTES));
        let refused = |error: UpstreamError| error.to_string().contains("longer than");
        let mut out = Vec::new();
        let whole = StreamDecoder::new().feed(long.as_bytes(), &mut out);
        assert!(whole.is_err_and(refused));
        let (first, second) = long.as_bytes().split_at(long.len() / 2);
        let mut decoder = StreamDecoder::new();
        decoder.feed(first, &mut out).unwrap();
        assert!(decoder.feed(second, &mut out).is_err_and(refused));
        assert!(out.is_empty());
        // Under the limit, a line in pieces reads as one.
        let mut decoder = StreamDecoder::new();
        let (first, second) = PLAIN_LINES[0].split_at(40);
        decoder.feed(first.as_bytes(), &mut out).unwrap();
        decoder.feed(format!("{second}\n").as_bytes(), &mut out).unwrap();
        assert!(matches!(&out[1], StreamEvent::TextDelta { text } if text == "The"));
    }

    /// The events a started decoder makes of a later line, read in full.
    fn later_line(text: &str) -> Result<Vec<StreamEvent>, UpstreamError> {
        let mut decoder =
            StreamDecoder { started: true, id: "ollama-1".into(), ..StreamDecoder::default() };
        let mut out = Vec::new();
        decoder.decode(read_line(text.as_bytes())?, &mut out)?;
        Ok(out)
    }

    #[test]
    fn a_line_that_is_the_last_but_for_its_text_and_time_is_read_as_serde_reads_it() {
        let router_sim = r#"{"model":"bench-small","created_at":"2026-11-29T08:00:00.000000000Z","message":{"role":"assistant","content":" Good"},"done":false}"#;
        for base in [PLAIN_LINES[0], PLAIN_LINES[1], router_sim] {
            // The decoder remembers a text line as it reads it.
            let mut decoder = StreamDecoder::new();
            decoder.feed(format!("{base}\n").as_bytes(), &mut Vec::new()).unwrap();
            assert!(decoder.text_line.lets_the_first_string_vary(), "{base}");
            let (_, spans) = plain_line_at(base).unwrap();
            let (text_at, time_at) = (spans.content.unwrap(), spans.created_at.unwrap());
            check_text_shape(&decoder.text_line, base, text_at, |out| out, later_line);
            // Ollama stamps every line with its own time: any other string there is read too,
            // anything but a string is not.
            let with_time =
                |time: &str| format!("{}{time}{}", &base[..time_at.start], &base[time_at.end..]);
            let times = [r#""2026-11-29T08:52:19.4Z""#, r#""""#, r#" "\u0032026" "#].map(with_time);
            let others = ["null", "1", r#""a" "b""#, r#""unterminated"#].map(with_time);
            check_fast_reader(
                &times.iter().map(String::as_str).collect::<Vec<_>>(),
                &others.iter().map(String::as_str).collect::<Vec<_>>(),
                |data| {
                    let text = decoder.text_line.text_of(data)?;
                    Some(vec![StreamEvent::TextDelta { text: text.into_owned() }])
                },
                later_line,
            );
        }
        // Neither a line without text nor the last line is remembered: the shape of the last
        // would bring its ending back.
        let mut decoder = StreamDecoder::new();
        for line in &PLAIN_LINES[2..4] {
            decoder.feed(format!("{line}\n").as_bytes(), &mut Vec::new()).unwrap();
        }
        assert!(!decoder.text_line.remembers());
        // A stream whose lines differ in time and text reads as its lines do one by one.
        let stream: String = ["The", " sky", " is"]
            .iter()
            .enumerate()
            .map(|(i, text)| {
                format!(
                    "{{\"model\":\"llama3.2\",\"created_at\":\"2026-11-29T08:52:1{i}Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"done\":false}}\n"
                )
            })
            .collect::<String>()
            + PLAIN_LINES[3]
            + "\n";
        let mut out = Vec::new();
        let mut decoder = StreamDecoder::new();
        decoder.feed(stream.as_bytes(), &mut out).unwrap();
        assert!(decoder.is_finished());
        let texts: Vec<&str> = out
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, ["The", " sky", " is"]);
        assert!(matches!(&out[0], StreamEvent::Start { model, .. } if model == "llama3.2"));
        assert!(
            matches!(out.last(), Some(StreamEvent::Usage(usage)) if usage.output_tokens == 282)
        );
    }

    #[test]
    fn plain_answers_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(
            PLAIN_LINES,
            OTHER_LINES,
            |text| response(plain_line(text)?).ok(),
            |text| with_serde(text).and_then(response),
        );
        let answer = parse_response(PLAIN_LINES[4].as_bytes()).unwrap();
        assert_eq!(answer.content, [ContentPart::Text { text: "A whole answer.".into() }]);
        assert_eq!((answer.finish_reason, answer.usage.output_tokens), (FinishReason::Length, 4));
    }
}
