//! Anthropic Messages, both sides.
//!
//! Client side (the gateway's `/v1/messages`): [`parse_request`] validates a body into the
//! neutral [`ChatRequest`]; [`encode_response`], [`StreamEncoder`] (the exact event sequence
//! `message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`) and [`error_body`] write what
//! Anthropic's SDKs expect back.
//!
//! Upstream side: [`request_body`] writes the request for a deployment (system prompt
//! hoisted, tool results as `tool_result` blocks, same-role turns merged so that roles
//! alternate), [`parse_response`] and [`StreamDecoder`] read its answers. Requests carry
//! `x-api-key` and `anthropic-version: 2023-06-01` (see [`VERSION`]).
//!
//! Sampling-only fields with no neutral counterpart (`top_k`, `thinking`, `service_tier`,
//! `cache_control`) are accepted and not forwarded; thinking blocks in the history are
//! dropped, since no other provider can read them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use router_core::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::api_error::{ApiError, ApiErrorKind, RequestError};
use crate::chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, ResponseMeta,
    StreamEvent, ToolCall, ToolChoice, ToolDef, Usage,
};
use crate::error::{UpstreamError, from_error_event};
use crate::json::scan::{Scan, first, read_fast, role_and_text};
use crate::json::shape::TextShape;
use crate::json::{
    body_capacity, f32_json, null_as_default, put_escaped, put_fields, put_str, text_bytes,
};
use crate::openai::unwritable;
use crate::sse::{self, SseDecoder, SseEvent, SseFormat};
use crate::validate::{Dialect, Field, parse_body};

/// The `anthropic-version` header value every request carries.
pub const VERSION: &str = "2023-06-01";

// ---------------------------------------------------------------------------------------
// Client side: parsing requests
// ---------------------------------------------------------------------------------------

/// Parses and validates a `/v1/messages` body.
pub fn parse_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    if let Some(request) = read_fast(body, plain_request) {
        return Ok(request);
    }
    let value = parse_body(body, Dialect::Anthropic)?;
    let root = Field::root(&value, Dialect::Anthropic).object()?;

    let model_field = root.require("model")?;
    let model = model_field.string()?;
    if model.trim().is_empty() {
        return Err(model_field.invalid("String should have at least 1 character"));
    }
    let max_tokens = root.require("max_tokens")?.count(1)?;

    let mut messages = Vec::new();
    if let Some(system) = root.get("system") {
        messages.push(Message { role: Role::System, content: system_parts(&system)? });
    }
    for field in root.require("messages")?.non_empty_array()? {
        messages.push(parse_message(&field)?);
    }

    let temperature = root.get("temperature").map(|f| f.number_in(0.0, 1.0)).transpose()?;
    let top_p = root.get("top_p").map(|f| f.number_in(0.0, 1.0)).transpose()?;
    if let Some(top_k) = root.get("top_k") {
        top_k.count(0)?;
    }
    let stop = match root.get("stop_sequences") {
        Some(field) => field
            .array()?
            .iter()
            .map(|item| item.string().map(str::to_owned))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let stream = root.get("stream").map(|f| f.boolean()).transpose()?.unwrap_or(false);
    let user = match root.get("metadata") {
        Some(field) => {
            field.object()?.get("user_id").map(|f| f.string().map(str::to_owned)).transpose()?
        }
        None => None,
    };
    let tools = match root.get("tools") {
        Some(field) => field.array()?.iter().map(parse_tool).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let tool_choice = root.get("tool_choice").map(|f| parse_tool_choice(&f, &tools)).transpose()?;

    Ok(ChatRequest {
        model: model.to_owned(),
        messages,
        max_tokens: Some(max_tokens),
        temperature,
        top_p,
        stop,
        stream,
        tools,
        tool_choice,
        json_output: None,
        user,
        seed: None,
    })
}

/// A plain, valid request — a model, `max_tokens`, messages whose content is a string, and
/// at most a system prompt as a string, `stream`, `temperature` and `top_p` — read without
/// building a `serde_json::Value` of it first. `None` for any other body (anything else,
/// anything invalid, anything this reader does not expect), which [`parse_request`]'s full
/// path then reads, validates and explains.
fn plain_request(text: &str) -> Option<ChatRequest> {
    let mut scan = Scan::new(text);
    let (mut model, mut max_tokens, mut system, mut messages) = (None, None, None, None);
    let (mut stream, mut temperature, mut top_p) = (None, None, None);
    scan.object(|scan, key| match key {
        "model" => first(&mut model, scan.string().filter(|model| !model.trim().is_empty())),
        "max_tokens" => first(&mut max_tokens, scan.count()),
        "system" => first(&mut system, scan.string()),
        "messages" => {
            let mut list = Vec::new();
            scan.array(|scan| {
                list.push(scan_plain_message(scan)?);
                Some(())
            })?;
            first(&mut messages, Some(list).filter(|list| !list.is_empty()))
        }
        "stream" => first(&mut stream, scan.boolean()),
        "temperature" => first(&mut temperature, scan.f32_within(1.0)),
        "top_p" => first(&mut top_p, scan.f32_within(1.0)),
        _ => None,
    })?;
    scan.at_end().then_some(())?;
    let system = system.map(|text| Message::text(Role::System, text));
    Some(ChatRequest {
        model: model?.into_owned(),
        messages: system.into_iter().chain(messages?).collect(),
        max_tokens: Some(max_tokens?),
        temperature,
        top_p,
        stream: stream.unwrap_or(false),
        ..ChatRequest::default()
    })
}

/// A message of a plain request: a user's or an assistant's string, nothing else.
fn scan_plain_message(scan: &mut Scan<'_>) -> Option<Message> {
    let (role, text) = role_and_text(scan)?;
    let role = match role.as_ref() {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        _ => return None,
    };
    Some(Message::text(role, text))
}

fn system_parts(field: &Field<'_>) -> Result<Vec<ContentPart>, RequestError> {
    if let Value::String(text) = field.value {
        return Ok(vec![ContentPart::Text { text: text.clone() }]);
    }
    if !field.value.is_array() {
        return Err(field.wrong_type("a valid string or a list of text blocks"));
    }
    let mut parts = Vec::new();
    for item in field.array()? {
        let block = item.object()?;
        block.require("type")?.one_of(&["text"])?;
        parts.push(ContentPart::Text { text: block.require("text")?.string()?.to_owned() });
    }
    Ok(parts)
}

fn parse_message(field: &Field<'_>) -> Result<Message, RequestError> {
    let message = field.object()?;
    let role = match message.require("role")?.one_of(&["user", "assistant"])? {
        "user" => Role::User,
        _ => Role::Assistant,
    };
    let content_field = message.require("content")?;
    let content = match content_field.value {
        Value::String(text) => vec![ContentPart::Text { text: text.clone() }],
        Value::Array(_) => {
            let mut parts = Vec::new();
            for block in content_field.array()? {
                if let Some(part) = parse_block(&block, role)? {
                    parts.push(part);
                }
            }
            parts
        }
        _ => return Err(content_field.wrong_type("a valid string or a list of content blocks")),
    };
    Ok(Message { role, content })
}

fn parse_block(field: &Field<'_>, role: Role) -> Result<Option<ContentPart>, RequestError> {
    let block = field.object()?;
    let kind_field = block.require("type")?;
    let kind = kind_field.string()?;
    let part = match (kind, role) {
        ("text", _) => ContentPart::Text { text: block.require("text")?.string()?.to_owned() },
        ("image", Role::User) => {
            ContentPart::Image { source: parse_image(&block.require("source")?)? }
        }
        ("tool_use", Role::Assistant) => {
            let input = block.require("input")?;
            input.object()?;
            ContentPart::ToolCall(ToolCall {
                id: block.require("id")?.string()?.to_owned(),
                name: block.require("name")?.string()?.to_owned(),
                arguments: input.value.to_string(),
            })
        }
        ("tool_result", Role::User) => {
            let content = match block.get("content") {
                None => String::new(),
                Some(field) => tool_result_text(&field)?,
            };
            ContentPart::ToolResult {
                call_id: block.require("tool_use_id")?.string()?.to_owned(),
                content,
                is_error: block.get("is_error").map(|f| f.boolean()).transpose()?.unwrap_or(false),
            }
        }
        ("thinking" | "redacted_thinking", Role::Assistant) => return Ok(None),
        ("image" | "tool_result", Role::Assistant)
        | ("tool_use" | "thinking" | "redacted_thinking", _) => {
            let owner = if role == Role::User { "user" } else { "assistant" };
            return Err(
                kind_field.invalid(&format!("'{kind}' blocks are not allowed in {owner} messages"))
            );
        }
        (
            "document"
            | "search_result"
            | "server_tool_use"
            | "web_search_tool_result"
            | "container_upload",
            _,
        ) => {
            return Err(kind_field.unsupported(&format!(
                "'{kind}' blocks are not supported by this gateway; send text, image, tool_use \
                 and tool_result blocks"
            )));
        }
        (other, _) => {
            return Err(
                kind_field.invalid_value(other, &["text", "image", "tool_use", "tool_result"])
            );
        }
    };
    Ok(Some(part))
}

fn parse_image(field: &Field<'_>) -> Result<ImageSource, RequestError> {
    let source = field.object()?;
    match source.require("type")?.one_of(&["base64", "url"])? {
        "base64" => Ok(ImageSource::Base64 {
            media_type: source
                .require("media_type")?
                .one_of(&["image/jpeg", "image/png", "image/gif", "image/webp"])?
                .to_owned(),
            data: source.require("data")?.string()?.to_owned(),
        }),
        _ => Ok(ImageSource::Url { url: source.require("url")?.string()?.to_owned() }),
    }
}

/// A tool result's content: a string or a list of text blocks (the neutral model carries
/// tool results as text, so an image inside one cannot be carried and is refused).
fn tool_result_text(field: &Field<'_>) -> Result<String, RequestError> {
    if let Value::String(text) = field.value {
        return Ok(text.clone());
    }
    let mut texts = Vec::new();
    for item in field.array()? {
        let block = item.object()?;
        let kind = block.require("type")?;
        match kind.string()? {
            "text" => texts.push(block.require("text")?.string()?.to_owned()),
            "image" => {
                return Err(kind.unsupported(
                    "images inside tool results are not supported by this gateway; put the \
                     image in a separate image block of the user message",
                ));
            }
            other => return Err(kind.invalid_value(other, &["text"])),
        }
    }
    Ok(texts.join("\n\n"))
}

fn parse_tool(field: &Field<'_>) -> Result<ToolDef, RequestError> {
    let tool = field.object()?;
    if let Some(kind) = tool.get("type") {
        let kind_name = kind.string()?;
        if kind_name != "custom" {
            return Err(kind.unsupported(&format!(
                "server tools such as '{kind_name}' are not supported by this gateway; define \
                 client tools with name, description and input_schema"
            )));
        }
    }
    let schema = tool.require("input_schema")?;
    schema.object()?;
    Ok(ToolDef {
        name: tool.require("name")?.string()?.to_owned(),
        description: tool.get("description").map(|f| f.string().map(str::to_owned)).transpose()?,
        parameters: schema.value.clone(),
    })
}

fn parse_tool_choice(field: &Field<'_>, tools: &[ToolDef]) -> Result<ToolChoice, RequestError> {
    let choice = field.object()?;
    Ok(match choice.require("type")?.one_of(&["auto", "any", "tool", "none"])? {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        _ => {
            let name_field = choice.require("name")?;
            let name = name_field.string()?;
            if !tools.iter().any(|tool| tool.name == name) {
                return Err(
                    name_field.invalid(&format!("no tool named '{name}' is defined in tools"))
                );
            }
            ToolChoice::Tool(name.to_owned())
        }
    })
}

// ---------------------------------------------------------------------------------------
// Client side: writing responses, streams and errors
// ---------------------------------------------------------------------------------------

fn stop_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A tool call's arguments as the JSON object Anthropic's `input` must be.
fn arguments_object(call: &ToolCall) -> Option<Value> {
    if call.arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    serde_json::from_str::<Value>(&call.arguments).ok().filter(Value::is_object)
}

/// A `message` object for a complete answer. Fails only when the upstream produced tool-call
/// arguments that are not a JSON object, which an Anthropic client could not read.
///
/// Written as OpenAI's completion is ([`openai::encode_response`]): the keys and fixed values
/// as they are, in the order Anthropic's documentation gives them, and the strings from
/// elsewhere escaped straight into the body, rather than built into a `Value` tree (a copy of
/// every string and a map for every object) and written from that.
///
/// [`openai::encode_response`]: crate::openai::encode_response
pub fn encode_response(
    response: &ChatResponse,
    meta: &ResponseMeta,
) -> Result<Bytes, UpstreamError> {
    // The envelope (type, role, stop reason, usage) takes about 200 bytes around the text.
    let capacity = text_bytes(&response.content) + meta.id.len() + meta.model.len() + 256;
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"{\"id\":");
    put_str(&mut out, &meta.id);
    out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    put_str(&mut out, &meta.model);
    out.extend_from_slice(b",\"content\":[");
    let mut blocks = 0;
    for part in &response.content {
        match part {
            // Anthropic never sends empty text blocks, and its SDKs may trip on one.
            ContentPart::Text { text } if text.is_empty() => continue,
            ContentPart::Text { text } => {
                put_separator(&mut out, &mut blocks);
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                put_str(&mut out, text);
            }
            ContentPart::ToolCall(call) => {
                let input = arguments_object(call).ok_or_else(|| UpstreamError::Protocol {
                    message: format!(
                        "the model's call of tool '{}' has arguments that are not a JSON object",
                        call.name
                    ),
                })?;
                put_separator(&mut out, &mut blocks);
                out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                put_str(&mut out, &call.id);
                out.extend_from_slice(b",\"name\":");
                put_str(&mut out, &call.name);
                out.extend_from_slice(b",\"input\":");
                serde_json::to_writer(&mut out, &input).map_err(|error| {
                    UpstreamError::Protocol {
                        message: format!("the model's call of tool '{}': {error}", call.name),
                    }
                })?;
            }
            ContentPart::Image { .. } | ContentPart::ToolResult { .. } => continue,
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"stop_reason\":\"");
    out.extend_from_slice(stop_reason_name(response.finish_reason).as_bytes());
    out.extend_from_slice(b"\",\"stop_sequence\":");
    match &response.stop_sequence {
        Some(sequence) => put_str(&mut out, sequence),
        None => out.extend_from_slice(b"null"),
    }
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b",\"usage\":{\"input_tokens\":");
    out.extend_from_slice(number.format(response.usage.input_tokens).as_bytes());
    out.extend_from_slice(b",\"output_tokens\":");
    out.extend_from_slice(number.format(response.usage.output_tokens).as_bytes());
    out.extend_from_slice(b"}}");
    Ok(Bytes::from(out))
}

/// A comma before every element of a list but the first.
fn put_separator(out: &mut Vec<u8>, written: &mut usize) {
    if *written > 0 {
        out.push(b',');
    }
    *written += 1;
}

/// The Anthropic name of an error kind.
pub fn error_type(kind: ApiErrorKind) -> &'static str {
    match kind {
        ApiErrorKind::InvalidRequest => "invalid_request_error",
        ApiErrorKind::Authentication => "authentication_error",
        ApiErrorKind::PermissionDenied => "permission_error",
        ApiErrorKind::NotFound => "not_found_error",
        ApiErrorKind::RequestTooLarge => "request_too_large",
        ApiErrorKind::RateLimited => "rate_limit_error",
        ApiErrorKind::Overloaded => "overloaded_error",
        ApiErrorKind::Timeout => "timeout_error",
        ApiErrorKind::Upstream | ApiErrorKind::Internal => "api_error",
    }
}

fn error_json(error: &ApiError) -> Value {
    json!({"type": "error", "error": {"type": error_type(error.kind), "message": error.message}})
}

/// `{"type": "error", "error": {"type", "message"}}`; send with [`ApiError::anthropic_status`].
pub fn error_body(error: &ApiError) -> Bytes {
    Bytes::from(error_json(error).to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(u32),
    Tool(u32),
}

/// Turns neutral stream events into Anthropic's event sequence.
///
/// Call [`encode`](Self::encode) for each event, then [`finish`](Self::finish) when the
/// upstream stream has ended (it closes the open block and writes `message_delta` with the
/// stop reason and usage, then `message_stop`; usage often arrives after the finish event,
/// which is why the delta waits for the end), or [`error`](Self::error) when it failed.
#[derive(Debug)]
pub struct StreamEncoder {
    meta: ResponseMeta,
    input_tokens: u64,
    started: bool,
    open: Option<OpenBlock>,
    next_block: u32,
    /// Neutral tool-call index → content block index.
    tool_blocks: HashMap<u32, u32>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Option<Usage>,
    closed: bool,
}

impl StreamEncoder {
    /// `input_tokens` is what `message_start` reports before the upstream's count is known
    /// (an estimate, or 0); the final `message_delta` carries the real one.
    pub fn new(meta: ResponseMeta, input_tokens: u64) -> Self {
        StreamEncoder {
            meta,
            input_tokens,
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: HashMap::new(),
            finish: None,
            usage: None,
            closed: false,
        }
    }

    /// The frames for one event (possibly none).
    pub fn encode(&mut self, event: &StreamEvent) -> Bytes {
        let mut out = Vec::with_capacity(sse::FRAME_BYTES);
        self.encode_into(event, &mut out);
        Bytes::from(out)
    }

    /// Appends the frames for one event (possibly none) to `out`.
    pub fn encode_into(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.start(out);
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { text } => {
                if text.is_empty() {
                    return;
                }
                let block = match self.open {
                    Some(OpenBlock::Text(block)) => block,
                    _ => {
                        let block = self.open_block(out, ContentBlock::Text { text: "" });
                        self.open = Some(OpenBlock::Text(block));
                        block
                    }
                };
                text_delta(out, block, text);
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let start = ContentBlock::ToolUse { id, name, input: EmptyObject {} };
                let block = self.open_block(out, start);
                self.open = Some(OpenBlock::Tool(block));
                self.tool_blocks.insert(*index, block);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                // Deltas are addressed by block index, so a late delta for an earlier call
                // still lands in the right block.
                if let Some(block) = self.tool_blocks.get(index) {
                    block_delta(
                        out,
                        *block,
                        BlockDelta::InputJsonDelta { partial_json: arguments },
                    );
                }
            }
            StreamEvent::Finish { reason, stop_sequence } => {
                self.finish = Some((*reason, stop_sequence.clone()));
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// `content_block_stop` for the open block, `message_delta`, `message_stop`.
    pub fn finish(&mut self) -> Bytes {
        if self.closed {
            return Bytes::new();
        }
        let mut out = Vec::with_capacity(sse::FRAME_BYTES);
        self.start(&mut out);
        self.close_block(&mut out);
        self.closed = true;
        let made_tool_calls = !self.tool_blocks.is_empty();
        let (reason, stop_sequence) = self.finish.clone().unwrap_or(if made_tool_calls {
            (FinishReason::ToolCalls, None)
        } else {
            (FinishReason::Stop, None)
        });
        let usage =
            self.usage.unwrap_or(Usage { input_tokens: self.input_tokens, output_tokens: 0 });
        let delta = MessageDeltaEvent {
            kind: "message_delta",
            delta: StopDelta {
                stop_reason: stop_reason_name(reason),
                stop_sequence: stop_sequence.as_deref(),
            },
            usage: UsageJson::of(&usage),
        };
        sse::put_json_frame(&mut out, Some("message_delta"), &delta);
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        Bytes::from(out)
    }

    /// An `error` event that ends the stream.
    pub fn error(&mut self, error: &ApiError) -> Bytes {
        if self.closed {
            return Bytes::new();
        }
        self.closed = true;
        sse::event_frame("error", &error_json(error).to_string())
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = MessageStartEvent {
            kind: "message_start",
            message: MessageStart {
                id: &self.meta.id,
                kind: "message",
                role: "assistant",
                content: [],
                model: &self.meta.model,
                stop_reason: None,
                stop_sequence: None,
                usage: UsageJson { input_tokens: self.input_tokens, output_tokens: 0 },
            },
        };
        sse::put_json_frame(out, Some("message_start"), &start);
        out.extend_from_slice(b"event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }

    fn open_block(&mut self, out: &mut Vec<u8>, content_block: ContentBlock<'_>) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        let start = BlockStartEvent { kind: "content_block_start", index, content_block };
        sse::put_json_frame(out, Some("content_block_start"), &start);
        index
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(OpenBlock::Text(index) | OpenBlock::Tool(index)) = self.open.take() {
            let stop = BlockStopEvent { kind: "content_block_stop", index };
            sse::put_json_frame(out, Some("content_block_stop"), &stop);
        }
    }
}

// The stream's other events, written from borrowed parts like the deltas below, with their
// keys in the order Anthropic's documentation gives them.

#[derive(Serialize)]
struct MessageStartEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: MessageStart<'a>,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: [(); 0],
    model: &'a str,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'a str>,
    usage: UsageJson,
}

/// What a `content_block_start` opens.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: EmptyObject },
}

/// `{}`: a tool call's input before its first delta.
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
struct BlockStartEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: ContentBlock<'a>,
}

#[derive(Serialize)]
struct BlockStopEvent {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

#[derive(Serialize)]
struct MessageDeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta<'a>,
    usage: UsageJson,
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
}

/// Token usage as Anthropic names it.
#[derive(Serialize)]
struct UsageJson {
    input_tokens: u64,
    output_tokens: u64,
}

impl UsageJson {
    fn of(usage: &Usage) -> UsageJson {
        UsageJson { input_tokens: usage.input_tokens, output_tokens: usage.output_tokens }
    }
}

/// What a `content_block_delta` adds to its block.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta<'a> {
    InputJsonDelta { partial_json: &'a str },
}

/// A `content_block_delta` event, written from borrowed parts: one goes out for every few
/// tokens of a stream, and a `Value` tree for each cost several allocations.
#[derive(Serialize)]
struct BlockDeltaEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: BlockDelta<'a>,
}

/// The `content_block_delta` that adds `text` to text block `index`, most of a stream's
/// events: written as [`block_delta`] would write it, with the keys as they are.
fn text_delta(out: &mut Vec<u8>, index: u32, text: &str) {
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
    out.extend_from_slice(b",\"delta\":{\"type\":\"text_delta\",\"text\":");
    put_str(out, text);
    out.extend_from_slice(b"}}\n\n");
}

fn block_delta(out: &mut Vec<u8>, index: u32, delta: BlockDelta<'_>) {
    let event = BlockDeltaEvent { kind: "content_block_delta", index, delta };
    sse::put_json_frame(out, Some("content_block_delta"), &event);
}

// ---------------------------------------------------------------------------------------
// Upstream side: requests
// ---------------------------------------------------------------------------------------

/// The request body for an Anthropic deployment serving `model_id`, as a JSON tree (for
/// defaults to be merged into it): [`request_bytes`] read back.
pub fn request_body(
    request: &ChatRequest,
    model_id: &str,
    default_max_tokens: u32,
    stream: bool,
) -> Result<Value, UpstreamError> {
    let bytes = request_bytes(request, model_id, default_max_tokens, stream)?;
    serde_json::from_slice(&bytes).map_err(unwritable)
}

/// The request body for an Anthropic deployment serving `model_id`, written straight to the
/// bytes sent on the wire. `default_max_tokens` fills the `max_tokens` Anthropic requires
/// when the client set none.
///
/// The system prompt and the turns, nearly all of its text, are written by hand, their
/// strings escaped eight bytes at a time, as OpenAI's body is
/// ([`openai::request_bytes`](crate::openai::request_bytes)); the parameters go through
/// serde.
pub fn request_bytes(
    request: &ChatRequest,
    model_id: &str,
    default_max_tokens: u32,
    stream: bool,
) -> Result<Vec<u8>, UpstreamError> {
    let body = UpstreamBody::new(request, model_id, default_max_tokens, stream)?;
    let mut out = Vec::with_capacity(body_capacity(request));
    out.extend_from_slice(b"{\"model\":");
    put_str(&mut out, body.model);
    out.extend_from_slice(b",\"max_tokens\":");
    out.extend_from_slice(itoa::Buffer::new().format(body.max_tokens).as_bytes());
    if !body.system.is_empty() {
        // Every system text, a blank line between them.
        out.extend_from_slice(b",\"system\":\"");
        for (index, text) in body.system.iter().enumerate() {
            if index > 0 {
                out.extend_from_slice(b"\\n\\n");
            }
            put_escaped(&mut out, text);
        }
        out.push(b'"');
    }
    out.extend_from_slice(b",\"messages\":[");
    for (index, (role, blocks)) in body.turns.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let role = if *role == Role::User { "user" } else { "assistant" };
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(role.as_bytes());
        out.extend_from_slice(b"\",\"content\":[");
        for (index, block) in blocks.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            block.put(&mut out)?;
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    // The parameters: `stream` at least.
    put_fields(&mut out, &body.parameters).map_err(unwritable)?;
    Ok(out)
}

/// A Messages request for a deployment, borrowing from the neutral request.
struct UpstreamBody<'a> {
    model: &'a str,
    max_tokens: u32,
    /// The system prompt's texts, each kept whole.
    system: Vec<Cow<'a, str>>,
    /// Alternating user and assistant turns, each with its blocks.
    turns: Vec<(Role, Vec<UpstreamBlock<'a>>)>,
    parameters: UpstreamParameters<'a>,
}

/// Everything in the body after the turns, in the order it is written.
#[derive(Serialize)]
struct UpstreamParameters<'a> {
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<UpstreamMetadata<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<UpstreamTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
struct UpstreamMetadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct UpstreamTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
}

/// One content block of an upstream turn.
enum UpstreamBlock<'a> {
    Text(&'a str),
    Image(&'a ImageSource),
    /// A tool call, its arguments read as the JSON object Anthropic wants.
    ToolUse {
        call: &'a ToolCall,
        input: Value,
    },
    ToolResult {
        call_id: &'a str,
        content: &'a str,
        is_error: bool,
    },
}

impl UpstreamBlock<'_> {
    fn put(&self, out: &mut Vec<u8>) -> Result<(), UpstreamError> {
        match self {
            UpstreamBlock::Text(text) => {
                out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                put_str(out, text);
            }
            UpstreamBlock::Image(ImageSource::Base64 { media_type, data }) => {
                out.extend_from_slice(
                    b"{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":",
                );
                put_str(out, media_type);
                out.extend_from_slice(b",\"data\":");
                put_str(out, data);
                out.push(b'}');
            }
            UpstreamBlock::Image(ImageSource::Url { url }) => {
                out.extend_from_slice(b"{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
                put_str(out, url);
                out.push(b'}');
            }
            UpstreamBlock::ToolUse { call, input } => {
                out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
                put_str(out, &call.id);
                out.extend_from_slice(b",\"name\":");
                put_str(out, &call.name);
                out.extend_from_slice(b",\"input\":");
                serde_json::to_writer(&mut *out, input).map_err(unwritable)?;
            }
            UpstreamBlock::ToolResult { call_id, content, is_error } => {
                out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
                put_str(out, call_id);
                out.extend_from_slice(b",\"content\":");
                put_str(out, content);
                if *is_error {
                    out.extend_from_slice(b",\"is_error\":true");
                }
            }
        }
        out.push(b'}');
        Ok(())
    }
}

impl<'a> UpstreamBody<'a> {
    fn new(
        request: &'a ChatRequest,
        model_id: &'a str,
        default_max_tokens: u32,
        stream: bool,
    ) -> Result<UpstreamBody<'a>, UpstreamError> {
        let leading_system = request.messages.iter().take_while(|m| m.role == Role::System).count();
        // Every text block of every leading system message, each kept whole: run together,
        // "Be brief." and "Answer in English." would become one sentence the client never
        // wrote.
        let mut system: Vec<Cow<'a, str>> = Vec::new();
        for message in &request.messages[..leading_system] {
            for part in &message.content {
                match part {
                    ContentPart::Text { text } if text.is_empty() => {}
                    ContentPart::Text { text } => system.push(Cow::Borrowed(text)),
                    _ => {
                        return Err(UpstreamError::Unsupported {
                            message: "a system message may hold only text".into(),
                        });
                    }
                }
            }
        }

        // Anthropic has no structured-output switch; asking in the system prompt is the
        // nearest equivalent.
        match &request.json_output {
            None => {}
            Some(None) => {
                system.push(Cow::Borrowed("Respond with a single JSON object and nothing else."))
            }
            Some(Some(schema)) => system.push(Cow::Owned(format!(
                "Respond with a single JSON object that conforms to this JSON schema, and \
                 nothing else:\n{schema}"
            ))),
        }

        let mut turns: Vec<(Role, Vec<UpstreamBlock<'a>>)> = Vec::new();
        for message in &request.messages[leading_system..] {
            let (role, blocks) = upstream_blocks(message)?;
            if blocks.is_empty() {
                continue;
            }
            match turns.last_mut() {
                // Anthropic wants user and assistant turns to alternate.
                Some((last, merged)) if *last == role => merged.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        if turns.is_empty() {
            return Err(UpstreamError::Unsupported {
                message: "Anthropic needs at least one user or assistant message".into(),
            });
        }
        for (role, blocks) in &mut turns {
            if *role == Role::User {
                // Tool results must lead the turn that answers the tool calls.
                blocks.sort_by_key(|block| !matches!(block, UpstreamBlock::ToolResult { .. }));
            }
        }

        if request.stop.iter().any(|stop| stop.trim().is_empty()) {
            // Anthropic rejects them, and dropping one would let the answer run past where
            // the client wanted it cut.
            return Err(UpstreamError::Unsupported {
                message: "Anthropic does not accept empty or whitespace-only stop sequences".into(),
            });
        }
        let tools: Vec<UpstreamTool<'a>> = request
            .tools
            .iter()
            .map(|tool| UpstreamTool {
                name: &tool.name,
                description: tool.description.as_deref(),
                input_schema: &tool.parameters,
            })
            .collect();
        let tool_choice =
            request.tool_choice.as_ref().filter(|_| !tools.is_empty()).map(|choice| match choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
            });
        let parameters = UpstreamParameters {
            stream,
            // OpenAI's range is 0..2, Anthropic's 0..1; the top of one is the top of the
            // other.
            temperature: request.temperature.map(|t| f32_json(t.min(1.0))),
            top_p: request.top_p.map(f32_json),
            stop_sequences: &request.stop,
            metadata: request.user.as_deref().map(|user_id| UpstreamMetadata { user_id }),
            tools,
            tool_choice,
        };
        Ok(UpstreamBody {
            model: model_id,
            max_tokens: request.max_tokens.unwrap_or(default_max_tokens),
            system,
            turns,
            parameters,
        })
    }
}

/// One neutral message as an Anthropic turn. A system message after the conversation has
/// begun becomes user text, its nearest equivalent in a format with one system prompt.
fn upstream_blocks(message: &Message) -> Result<(Role, Vec<UpstreamBlock<'_>>), UpstreamError> {
    let role = if message.role == Role::Assistant { Role::Assistant } else { Role::User };
    let mut blocks = Vec::with_capacity(message.content.len());
    for part in &message.content {
        let block = match part {
            ContentPart::Text { text } if text.is_empty() => continue,
            ContentPart::Text { text } => UpstreamBlock::Text(text),
            ContentPart::Image { source } if role == Role::User => UpstreamBlock::Image(source),
            ContentPart::ToolCall(call) if role == Role::Assistant => {
                let input = arguments_object(call).ok_or_else(|| UpstreamError::Unsupported {
                    message: format!(
                        "the arguments of tool call '{}' are not a JSON object, which Anthropic \
                         requires",
                        call.id
                    ),
                })?;
                UpstreamBlock::ToolUse { call, input }
            }
            ContentPart::ToolResult { call_id, content, is_error } if role == Role::User => {
                UpstreamBlock::ToolResult { call_id, content, is_error: *is_error }
            }
            other => {
                return Err(UpstreamError::Unsupported {
                    message: format!(
                        "a {:?} message cannot hold {}",
                        message.role,
                        part_name(other)
                    ),
                });
            }
        };
        blocks.push(block);
    }
    Ok((role, blocks))
}

fn part_name(part: &ContentPart) -> &'static str {
    match part {
        ContentPart::Text { .. } => "text",
        ContentPart::Image { .. } => "an image",
        ContentPart::ToolCall(_) => "a tool call",
        ContentPart::ToolResult { .. } => "a tool result",
    }
}

// ---------------------------------------------------------------------------------------
// Upstream side: responses
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        #[serde(default, deserialize_with = "null_as_default")]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default, deserialize_with = "null_as_default")]
        input: Value,
    },
    /// Thinking and server-tool blocks: nothing a client of another format could read.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Cached prompt tokens are still prompt tokens; counting them keeps the input total
    /// comparable with other providers (their lower price is not modelled).
    fn input(&self) -> Option<u64> {
        let parts =
            [self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens];
        parts.iter().any(Option::is_some).then(|| parts.iter().flatten().sum())
    }
}

fn parse_stop_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("stop_sequence") => FinishReason::StopSequence,
        Some("refusal") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// Reads an upstream `message` body.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    if let Some(response) = read_fast(body, plain_text_message) {
        return Ok(response);
    }
    parse_response_with_serde(body)
}

/// A message whose content is text blocks only — the common answer — read without serde;
/// `None` for any other body (tool use, thinking, anything this reader does not expect),
/// which serde then reads.
fn plain_text_message(text: &str) -> Option<ChatResponse> {
    let mut scan = Scan::new(text);
    let (mut id, mut model, mut content, mut stop_reason, mut stop_sequence, mut usage) =
        (None, None, None, None, None, None);
    scan.object(|scan, key| match key {
        "id" => first(&mut id, scan.string_or_null()),
        "model" => first(&mut model, scan.string_or_null()),
        "content" => {
            let mut blocks = Vec::new();
            scan.array(|scan| {
                blocks.push(ContentPart::Text { text: scan_text_block(scan)?.into_owned() });
                Some(())
            })?;
            first(&mut content, Some(blocks))
        }
        "stop_reason" => first(&mut stop_reason, scan.string_or_null()),
        "stop_sequence" => first(&mut stop_sequence, scan.string_or_null()),
        "usage" => first(&mut usage, if scan.null() { Some(None) } else { scan_usage(scan) }),
        _ => scan.skip(),
    })?;
    scan.at_end().then_some(())?;
    let usage = usage.flatten().unwrap_or_default();
    Some(ChatResponse {
        id: id.flatten().map(Cow::into_owned).unwrap_or_default(),
        model: model.flatten().map(Cow::into_owned).unwrap_or_default(),
        content: content.unwrap_or_default(),
        finish_reason: parse_stop_reason(stop_reason.flatten().as_deref()),
        stop_sequence: stop_sequence.flatten().map(Cow::into_owned),
        usage: Usage {
            input_tokens: usage.input().unwrap_or(0),
            output_tokens: usage.output_tokens.unwrap_or(0),
        },
    })
}

/// A `text` block's text (a missing or null text is empty, as serde reads it).
fn scan_text_block<'a>(scan: &mut Scan<'a>) -> Option<Cow<'a, str>> {
    let (mut kind, mut text) = (None, None);
    scan.object(|scan, key| match key {
        "type" => first(&mut kind, scan.string()),
        "text" => first(&mut text, scan.string_or_null()),
        _ => scan.skip(),
    })?;
    (kind? == "text").then_some(())?;
    Some(text.flatten().unwrap_or_default())
}

/// `usage`'s token counts, each `None` when missing or null.
fn scan_usage(scan: &mut Scan<'_>) -> Option<Option<WireUsage>> {
    let mut usage = WireUsage::default();
    let (mut input, mut output, mut created, mut read) = (None, None, None, None);
    let count = |scan: &mut Scan<'_>| if scan.null() { Some(None) } else { scan.u64().map(Some) };
    scan.object(|scan, key| match key {
        "input_tokens" => first(&mut input, count(scan)),
        "output_tokens" => first(&mut output, count(scan)),
        "cache_creation_input_tokens" => first(&mut created, count(scan)),
        "cache_read_input_tokens" => first(&mut read, count(scan)),
        _ => scan.skip(),
    })?;
    usage.input_tokens = input.flatten();
    usage.output_tokens = output.flatten();
    usage.cache_creation_input_tokens = created.flatten();
    usage.cache_read_input_tokens = read.flatten();
    Some(Some(usage))
}

fn parse_response_with_serde(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let wire: WireMessage = crate::json::from_body(body).map_err(|error| {
        UpstreamError::Protocol { message: format!("not an Anthropic message: {error}") }
    })?;
    let content = wire
        .content
        .into_iter()
        .filter_map(|block| match block {
            WireBlock::Text { text } => Some(ContentPart::Text { text }),
            WireBlock::ToolUse { id, name, input } => {
                Some(ContentPart::ToolCall(ToolCall { id, name, arguments: input.to_string() }))
            }
            WireBlock::Other => None,
        })
        .collect();
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        finish_reason: parse_stop_reason(wire.stop_reason.as_deref()),
        stop_sequence: wire.stop_sequence,
        usage: Usage {
            input_tokens: wire.usage.input().unwrap_or(0),
            output_tokens: wire.usage.output_tokens.unwrap_or(0),
        },
    })
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: WireDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default, deserialize_with = "null_as_default")]
        usage: WireUsage,
    },
    MessageStop {},
    Ping {},
    Error {
        error: WireError,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Deserialize)]
struct WireStartMessage {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    stop_reason: Option<String>,
    stop_sequence: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
}

/// An event of an Anthropic stream, read without serde — which buffers a whole internally
/// tagged event before it reads its tag. Every event of a stream answered in text has one of
/// these shapes; tool use, thinking, errors and anything unexpected are left to serde.
enum PlainEvent<'a> {
    /// `message_start`.
    Start { id: Option<Cow<'a, str>>, model: Option<Cow<'a, str>>, usage: Option<WireUsage> },
    /// A `content_block_delta` with a `text_delta` (and where its text's string stands), or
    /// the opening text of a text block.
    Text(Cow<'a, str>, Option<Range<usize>>),
    /// `message_delta`: how the answer ended, and the usage so far.
    End {
        stop_reason: Option<Cow<'a, str>>,
        stop_sequence: Option<Cow<'a, str>>,
        usage: Option<WireUsage>,
    },
    /// `message_stop`.
    Stop,
    /// `ping`, `content_block_stop`.
    Nothing,
}

/// Reads a plain event; `None` for any other event (or anything this reader does not
/// expect), which serde then reads.
fn plain_event(data: &str) -> Option<PlainEvent<'_>> {
    let mut scan = Scan::new(data);
    let (mut kind, mut index, mut delta, mut message, mut block, mut usage) =
        (None, None, None, None, None, None);
    scan.object(|scan, key| match key {
        "type" => first(&mut kind, scan.string()),
        "index" => first(&mut index, scan.u32()),
        "delta" => first(&mut delta, scan_event_delta(scan)),
        "message" => first(&mut message, scan_start_message(scan)),
        "content_block" => first(&mut block, scan_text_block(scan)),
        "usage" => first(&mut usage, if scan.null() { Some(None) } else { scan_usage(scan) }),
        _ => scan.skip(),
    })?;
    scan.at_end().then_some(())?;
    // serde requires a block event's index, though a text block does not need it.
    Some(match kind?.as_ref() {
        "content_block_delta" => {
            let delta = delta.filter(|_| index.is_some())?;
            (delta.kind? == "text_delta").then_some(())?;
            let (text, at) = delta.text?;
            PlainEvent::Text(text, Some(at))
        }
        "content_block_start" => PlainEvent::Text(block.filter(|_| index.is_some())?, None),
        "message_start" => {
            let (id, model, usage) = message?;
            PlainEvent::Start { id, model, usage }
        }
        "message_delta" => {
            let delta = delta?;
            PlainEvent::End {
                stop_reason: delta.stop_reason,
                stop_sequence: delta.stop_sequence,
                usage: usage.flatten(),
            }
        }
        "message_stop" => PlainEvent::Stop,
        "ping" | "content_block_stop" => PlainEvent::Nothing,
        _ => return None,
    })
}

/// The `delta` of a `content_block_delta` (its type and text) or of a `message_delta` (how
/// the answer stopped): read as one, since the event's type may come after it.
struct EventDelta<'a> {
    kind: Option<Cow<'a, str>>,
    text: Option<(Cow<'a, str>, Range<usize>)>,
    stop_reason: Option<Cow<'a, str>>,
    stop_sequence: Option<Cow<'a, str>>,
}

fn scan_event_delta<'a>(scan: &mut Scan<'a>) -> Option<EventDelta<'a>> {
    let (mut kind, mut text, mut stop_reason, mut stop_sequence) = (None, None, None, None);
    scan.object(|scan, key| match key {
        "type" => first(&mut kind, scan.string()),
        "text" => first(&mut text, scan.string_at()),
        "stop_reason" => first(&mut stop_reason, scan.string_or_null()),
        "stop_sequence" => first(&mut stop_sequence, scan.string_or_null()),
        _ => scan.skip(),
    })?;
    Some(EventDelta {
        kind,
        text,
        stop_reason: stop_reason.flatten(),
        stop_sequence: stop_sequence.flatten(),
    })
}

/// A `message_start`'s message: its id, model and usage.
type StartMessage<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>, Option<WireUsage>);

fn scan_start_message<'a>(scan: &mut Scan<'a>) -> Option<StartMessage<'a>> {
    let (mut id, mut model, mut usage) = (None, None, None);
    scan.object(|scan, key| match key {
        "id" => first(&mut id, scan.string_or_null()),
        "model" => first(&mut model, scan.string_or_null()),
        "usage" => first(&mut usage, if scan.null() { Some(None) } else { scan_usage(scan) }),
        _ => scan.skip(),
    })?;
    Some((id.flatten(), model.flatten(), usage.flatten()))
}

/// Decodes the stream: bytes in, neutral events out.
pub type StreamDecoder = SseDecoder<AnthropicEvents>;

/// Decodes an Anthropic Messages event stream into neutral events. The stream is complete
/// only once `message_stop` has arrived.
#[derive(Debug, Default)]
pub struct AnthropicEvents {
    finished: bool,
    input_tokens: u64,
    /// Content block index → neutral tool-call index, for tool_use blocks.
    tool_blocks: HashMap<u32, u32>,
    /// The last text delta, for reading the next ones by their text.
    text_delta: TextShape,
}

impl SseFormat for AnthropicEvents {
    fn finished(&self) -> bool {
        self.finished
    }

    fn decode(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        // A text delta makes its text and nothing else, whatever came before it.
        if let Some(text) = self.text_delta.text_of(&event.data) {
            if !text.is_empty() {
                out.push(StreamEvent::TextDelta { text: text.into_owned() });
            }
            return Ok(());
        }
        match plain_event(&event.data) {
            Some(plain) => {
                if let PlainEvent::Text(_, Some(at)) = &plain {
                    self.text_delta.remember(&event.data, at.clone(), None, None);
                }
                self.decode_plain(plain, out);
                Ok(())
            }
            None => self.decode_with_serde(&event.data, out),
        }
    }
}

impl AnthropicEvents {
    /// Turns a plain event into neutral ones, as [`decode_with_serde`](Self::decode_with_serde)
    /// does any event.
    fn decode_plain(&mut self, event: PlainEvent<'_>, out: &mut Vec<StreamEvent>) {
        match event {
            PlainEvent::Start { id, model, usage } => {
                self.input_tokens = usage.and_then(|usage| usage.input()).unwrap_or(0);
                out.push(StreamEvent::Start {
                    id: id.unwrap_or_default().into_owned(),
                    model: model.unwrap_or_default().into_owned(),
                });
            }
            PlainEvent::Text(text, _) => {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta { text: text.into_owned() });
                }
            }
            PlainEvent::End { stop_reason, stop_sequence, usage } => {
                let usage = usage.unwrap_or_default();
                out.push(StreamEvent::Finish {
                    reason: parse_stop_reason(stop_reason.as_deref()),
                    stop_sequence: stop_sequence.map(Cow::into_owned),
                });
                out.push(StreamEvent::Usage(Usage {
                    input_tokens: usage.input().unwrap_or(self.input_tokens),
                    output_tokens: usage.output_tokens.unwrap_or(0),
                }));
            }
            PlainEvent::Stop => self.finished = true,
            PlainEvent::Nothing => {}
        }
    }

    /// Decodes any event, `data` being its JSON.
    fn decode_with_serde(
        &mut self,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let wire: WireEvent = serde_json::from_str(data).map_err(|error| {
            UpstreamError::Protocol { message: format!("not an Anthropic stream event: {error}") }
        })?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.input_tokens = message.usage.input().unwrap_or(0);
                out.push(StreamEvent::Start { id: message.id, model: message.model });
            }
            WireEvent::ContentBlockStart { index, content_block } => match content_block {
                WireBlock::Text { text } => {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta { text });
                    }
                }
                WireBlock::ToolUse { id, name, input } => {
                    let tool_index = self.tool_blocks.len() as u32;
                    self.tool_blocks.insert(index, tool_index);
                    out.push(StreamEvent::ToolCallStart { index: tool_index, id, name });
                    // The start block carries `{}`; arguments follow as deltas.
                    if input.as_object().is_some_and(|object| !object.is_empty()) {
                        out.push(StreamEvent::ToolCallDelta {
                            index: tool_index,
                            arguments: input.to_string(),
                        });
                    }
                }
                WireBlock::Other => {}
            },
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                WireDelta::TextDelta { text } => {
                    if !text.is_empty() {
                        out.push(StreamEvent::TextDelta { text });
                    }
                }
                WireDelta::InputJsonDelta { partial_json } => {
                    if let Some(tool_index) = self.tool_blocks.get(&index)
                        && !partial_json.is_empty()
                    {
                        out.push(StreamEvent::ToolCallDelta {
                            index: *tool_index,
                            arguments: partial_json,
                        });
                    }
                }
                WireDelta::Other => {}
            },
            WireEvent::MessageDelta { delta, usage } => {
                out.push(StreamEvent::Finish {
                    reason: parse_stop_reason(delta.stop_reason.as_deref()),
                    stop_sequence: delta.stop_sequence,
                });
                out.push(StreamEvent::Usage(Usage {
                    input_tokens: usage.input().unwrap_or(self.input_tokens),
                    output_tokens: usage.output_tokens.unwrap_or(0),
                }));
            }
            WireEvent::MessageStop {} => self.finished = true,
            WireEvent::Error { error } => {
                return Err(from_error_event(error.kind.as_deref(), error.message));
            }
            WireEvent::ContentBlockStop {} | WireEvent::Ping {} | WireEvent::Unknown => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan::check_fast_reader;
    use crate::json::shape::check_text_shape;

    /// Messages as Anthropic sends them, which the fast path must read.
    const TEXT_MESSAGES: &[&str] = &[
        r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello \"there\"\n caf\u00e9 \ud83d\ude00 中文"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":30,"output_tokens":6,"service_tier":"standard"}}"#,
        r#"{"content":[{"text":"a","type":"text","citations":null},{"type":"text"},{"type":"text","text":"b"}],"stop_reason":"stop_sequence","stop_sequence":"END","usage":{"output_tokens":2},"id":null}"#,
        r#"{"content":[],"stop_reason":"max_tokens","usage":null}"#,
        " { \"content\" : [ { \"type\" : \"text\" , \"text\" : \"x\" } ] , \"usage\" : { \"input_tokens\" : null } } ",
    ];

    /// Messages the fast path must leave to serde.
    const OTHER_MESSAGES: &[&str] = &[
        r#"{"content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use"}"#,
        r#"{"content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"a"}]}"#,
        r#"{"content":[{"type":"text","text":"a","type":"text"}]}"#,
        r#"{"content":[{"type":"text","text":"a"}],"usage":{"input_tokens":-1}}"#,
        r#"{"content":{"type":"text","text":"a"}}"#,
    ];

    #[test]
    fn text_messages_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(TEXT_MESSAGES, OTHER_MESSAGES, plain_text_message, |body| {
            parse_response_with_serde(body.as_bytes())
        });
        let answer = parse_response(TEXT_MESSAGES[0].as_bytes()).unwrap();
        assert_eq!(answer.text(), "Hello \"there\"\n café 😀 中文");
        assert_eq!(answer.usage, Usage { input_tokens: 42, output_tokens: 6 });
        let stopped = parse_response(TEXT_MESSAGES[1].as_bytes()).unwrap();
        assert_eq!(stopped.content.len(), 3);
        assert_eq!(stopped.stop_sequence.as_deref(), Some("END"));
        let called = parse_response(OTHER_MESSAGES[0].as_bytes()).unwrap();
        assert_eq!(called.finish_reason, FinishReason::ToolCalls);
    }

    /// Requests as Anthropic's SDKs send them, which the fast path must read.
    const PLAIN_REQUESTS: &[&str] = &[
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello"}]}"#,
        r#"{"messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 中文 \"q\"\n"},{"role":"assistant","content":""},{"role":"user","content":"again"}],"system":"Be terse.","model":"auto","max_tokens":1,"stream":true,"temperature":1,"top_p":0.5}"#,
        " { \"model\" : \"m\" , \"max_tokens\" : 4294967295 , \"messages\" : [ { \"role\" : \"assistant\" , \"content\" : \"x\" } ] } ",
    ];

    /// Requests the fast path must leave to the full parser.
    const OTHER_REQUESTS: &[&str] = &[
        r#"{"model":"m","messages":[{"role":"user","content":"no max_tokens"}]}"#,
        r#"{"model":"m","max_tokens":0,"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        r#"{"model":"m","max_tokens":5,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"hi"}]}"#,
        r#"{"model":"m","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"}}"#,
        r#"{"model":"","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
    ];

    /// What the full path makes of a request, made to take it: a field the fast path never
    /// reads, which the full path checks and drops, is added.
    fn full_request(body: &str) -> Result<ChatRequest, RequestError> {
        let mut value = parse_body(body.as_bytes(), Dialect::Anthropic)?;
        let Some(root) = value.as_object_mut() else { return parse_request(body.as_bytes()) };
        root.insert("top_k".into(), 0.into());
        parse_request(value.to_string().as_bytes())
    }

    #[test]
    fn plain_requests_are_read_without_a_value_tree_as_the_full_parser_reads_them() {
        check_fast_reader(PLAIN_REQUESTS, OTHER_REQUESTS, plain_request, full_request);
        let request = parse_request(PLAIN_REQUESTS[1].as_bytes()).unwrap();
        assert_eq!(request.messages.len(), 4);
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.max_tokens, Some(1));
        let error = parse_request(OTHER_REQUESTS[0].as_bytes()).unwrap_err();
        assert!(error.message.contains("max_tokens"), "{}", error.message);
    }

    /// Events as Anthropic sends them in a stream answered in text, which the fast path
    /// must read.
    const PLAIN_EVENTS: &[&str] = &[
        r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type": "ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" word"}}"#,
        r#"{"delta":{"text":"Hi \"there\"\n caf\u00e9 \ud83d\ude00 中文","type":"text_delta"},"index":2,"type":"content_block_delta"}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        r#"{"usage":{"input_tokens":30,"output_tokens":2},"delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"type":"message_delta"}"#,
        r#"{"type":"message_stop"}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":"opening"}}"#,
        " { \"type\" : \"content_block_delta\" , \"index\" : 0 , \"delta\" : { \"type\" : \"text_delta\" , \"text\" : \"\" } } ",
    ];

    /// Events the fast path must leave to serde.
    const OTHER_EVENTS: &[&str] = &[
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hm"}}"#,
        r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"no index"}}"#,
        r#"{"type":"content_block_start","content_block":{"type":"text","text":"no index"}}"#,
        r#"{"type":"message_start"}"#,
        r#"{"type":"message_delta","usage":{"output_tokens":1}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        r#"{"type":"something_new","data":1}"#,
        r#"{"type":"content_block_delta","type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#,
    ];

    /// The decoder's state after an event: what it made, whether the stream is over, and the
    /// prompt's size it carries to the end.
    type Decoded = (Vec<StreamEvent>, bool, u64);

    /// A decoder part-way through a stream: the prompt's size already known.
    fn decoder() -> AnthropicEvents {
        AnthropicEvents { input_tokens: 7, ..AnthropicEvents::default() }
    }

    fn with_serde(data: &str) -> Result<Decoded, UpstreamError> {
        let (mut events, mut out) = (decoder(), Vec::new());
        events.decode_with_serde(data, &mut out)?;
        Ok((out, events.finished, events.input_tokens))
    }

    fn without_serde(data: &str) -> Option<Decoded> {
        let (mut events, mut out) = (decoder(), Vec::new());
        events.decode_plain(plain_event(data)?, &mut out);
        Some((out, events.finished, events.input_tokens))
    }

    #[test]
    fn plain_events_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(PLAIN_EVENTS, OTHER_EVENTS, without_serde, with_serde);
        let (events, ..) = with_serde(PLAIN_EVENTS[4]).unwrap();
        assert_eq!(events, [StreamEvent::TextDelta { text: "Hi \"there\"\n café 😀 中文".into() }]);
        assert_eq!(with_serde(PLAIN_EVENTS[0]).unwrap().2, 35);
        assert!(with_serde(PLAIN_EVENTS[8]).unwrap().1);
    }

    #[test]
    fn a_text_delta_like_the_last_but_for_its_text_is_read_as_serde_reads_it() {
        for base in [PLAIN_EVENTS[3], PLAIN_EVENTS[4], PLAIN_EVENTS[10]] {
            let mut events = decoder();
            let event = SseEvent { data: base.into(), ..SseEvent::default() };
            events.decode(&event, &mut Vec::new()).unwrap();
            assert!(events.text_delta.remembers(), "{base}");
            let Some(PlainEvent::Text(_, Some(at))) = plain_event(base) else {
                panic!("not a text delta: {base}");
            };
            check_text_shape(&events.text_delta, base, at, |out| (out, false, 7), with_serde);
        }
        // The opening text of a block is not remembered: it is not a delta.
        let mut events = decoder();
        let event = SseEvent { data: PLAIN_EVENTS[9].into(), ..SseEvent::default() };
        events.decode(&event, &mut Vec::new()).unwrap();
        assert!(!events.text_delta.remembers());
    }
}
