//! OpenAI Chat Completions, both sides.
//!
//! Client side (the gateway's `/v1/chat/completions`): [`parse_request`] validates a body
//! into the neutral [`ChatRequest`]; [`encode_response`], [`StreamEncoder`] and
//! [`error_body`] write what OpenAI's SDKs expect back.
//!
//! Upstream side (OpenAI, DeepSeek and any OpenAI-compatible server, which differ only in
//! base URL): [`request_body`] writes the request for a deployment, [`parse_response`] and
//! [`StreamDecoder`] read its answers.
//!
//! Fields that only shape sampling (`presence_penalty`, `logit_bias`, `parallel_tool_calls`,
//! ...) are accepted and not forwarded; fields whose answer the gateway could not give in the
//! shape the client expects (`n` > 1, `logprobs`, audio, the deprecated `functions`) are
//! refused with an error that says so.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use bytes::Bytes;
use router_core::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api_error::{ApiError, ApiErrorKind, RequestError};
use crate::chat::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, ResponseMeta,
    StreamEvent, ToolCall, ToolChoice, ToolDef, Usage, join_texts,
};
use crate::error::{UpstreamError, from_error_event};
use crate::json::scan::{Scan, first, read_fast, role_and_text};
use crate::json::shape::TextShape;
use crate::json::{body_capacity, f32_json, null_as_default, put_fields, put_str, text_bytes};
use crate::sse::{self, SseDecoder, SseEvent, SseFormat};
use crate::validate::{Dialect, Field, Obj, parse_body};

// ---------------------------------------------------------------------------------------
// Client side: parsing requests
// ---------------------------------------------------------------------------------------

/// A client's request, and what it asked of the stream that the neutral model does not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRequest {
    pub request: ChatRequest,
    /// `stream_options.include_usage`: the client wants a final chunk with token usage.
    pub include_usage: bool,
}

/// Parses and validates a `/v1/chat/completions` body.
pub fn parse_request(body: &[u8]) -> Result<ClientRequest, RequestError> {
    if let Some(request) = read_fast(body, plain_request) {
        return Ok(request);
    }
    let value = parse_body(body, Dialect::OpenAi)?;
    let root = Field::root(&value, Dialect::OpenAi).object()?;

    refuse_unsupported(&root)?;

    let model_field = root.require("model")?;
    let model = model_field.string()?;
    if model.trim().is_empty() {
        return Err(model_field.invalid("the model name must not be empty."));
    }

    let messages = root
        .require("messages")?
        .non_empty_array()?
        .iter()
        .map(parse_message)
        .collect::<Result<Vec<_>, _>>()?;

    let max_tokens = match root.get("max_completion_tokens") {
        Some(field) => Some(field.count(1)?),
        None => root.get("max_tokens").map(|field| field.count(1)).transpose()?,
    };
    let temperature = root.get("temperature").map(|f| f.number_in(0.0, 2.0)).transpose()?;
    let top_p = root.get("top_p").map(|f| f.number_in(0.0, 1.0)).transpose()?;
    let stop = match root.get("stop") {
        None => Vec::new(),
        Some(field) => match field.value {
            Value::String(text) => vec![text.clone()],
            Value::Array(_) => field
                .array()?
                .iter()
                .map(|item| item.string().map(str::to_owned))
                .collect::<Result<_, _>>()?,
            _ => return Err(field.wrong_type("a string or an array of strings")),
        },
    };

    let stream = root.get("stream").map(|f| f.boolean()).transpose()?.unwrap_or(false);
    let include_usage = match root.get("stream_options") {
        None => false,
        Some(field) => {
            if !stream {
                return Err(field.invalid(
                    "'stream_options' is only allowed when 'stream' is true; set \"stream\": \
                     true or remove 'stream_options'.",
                ));
            }
            let options = field.object()?;
            options.get("include_usage").map(|f| f.boolean()).transpose()?.unwrap_or(false)
        }
    };

    let tools = match root.get("tools") {
        None => Vec::new(),
        Some(field) => field.array()?.iter().map(parse_tool).collect::<Result<_, _>>()?,
    };
    let tool_choice = root.get("tool_choice").map(|f| parse_tool_choice(&f, &tools)).transpose()?;
    let json_output = root.get("response_format").map(|f| parse_response_format(&f)).transpose()?;

    let user = root.get("user").map(|f| f.string().map(str::to_owned)).transpose()?;
    let seed = root.get("seed").map(|f| f.integer()).transpose()?;

    Ok(ClientRequest {
        request: ChatRequest {
            model: model.to_owned(),
            messages,
            max_tokens,
            temperature,
            top_p,
            stop,
            stream,
            tools,
            tool_choice,
            json_output: json_output.flatten(),
            user,
            seed,
        },
        include_usage,
    })
}

/// A plain, valid request — a model, messages whose content is a string from a system,
/// developer, user or assistant, and at most `stream`, a token limit, `temperature` and
/// `top_p` — read without building a `serde_json::Value` of it first. `None` for any other
/// body (anything else, anything invalid, anything this reader does not expect), which
/// [`parse_request`]'s full path then reads, validates and explains.
fn plain_request(text: &str) -> Option<ClientRequest> {
    let mut scan = Scan::new(text);
    let (mut model, mut messages, mut stream) = (None, None, None);
    let (mut max_tokens, mut max_completion_tokens) = (None, None);
    let (mut temperature, mut top_p) = (None, None);
    scan.object(|scan, key| match key {
        "model" => first(&mut model, scan.string().filter(|model| !model.trim().is_empty())),
        "messages" => {
            let mut list = Vec::new();
            scan.array(|scan| {
                list.push(scan_plain_message(scan)?);
                Some(())
            })?;
            first(&mut messages, Some(list).filter(|list| !list.is_empty()))
        }
        "stream" => first(&mut stream, scan.boolean()),
        "max_tokens" => first(&mut max_tokens, scan.count()),
        "max_completion_tokens" => first(&mut max_completion_tokens, scan.count()),
        "temperature" => first(&mut temperature, scan.f32_within(2.0)),
        "top_p" => first(&mut top_p, scan.f32_within(1.0)),
        _ => None,
    })?;
    scan.at_end().then_some(())?;
    Some(ClientRequest {
        request: ChatRequest {
            model: model?.into_owned(),
            messages: messages?,
            max_tokens: max_completion_tokens.or(max_tokens),
            temperature,
            top_p,
            stream: stream.unwrap_or(false),
            ..ChatRequest::default()
        },
        include_usage: false,
    })
}

/// A message of a plain request: a role and its content as a string, nothing else.
fn scan_plain_message(scan: &mut Scan<'_>) -> Option<Message> {
    let (role, text) = role_and_text(scan)?;
    let text = text.into_owned();
    let (role, content) = match role.as_ref() {
        "system" | "developer" => (Role::System, vec![ContentPart::Text { text }]),
        "user" => (Role::User, vec![ContentPart::Text { text }]),
        // As the full path does, an assistant's empty text is dropped.
        "assistant" if text.is_empty() => (Role::Assistant, Vec::new()),
        "assistant" => (Role::Assistant, vec![ContentPart::Text { text }]),
        _ => return None,
    };
    Some(Message { role, content })
}

/// Parameters whose answer the gateway cannot give in the shape the client expects.
fn refuse_unsupported(root: &Obj<'_>) -> Result<(), RequestError> {
    if let Some(n) = root.get("n")
        && n.count(1)? > 1
    {
        return Err(n.unsupported(
            "this gateway returns one choice per request; set 'n' to 1 or send several requests.",
        ));
    }
    if let Some(field) = root.get("logprobs")
        && field.boolean()?
    {
        return Err(field.unsupported(
            "log probabilities are not available through this gateway; remove 'logprobs'.",
        ));
    }
    if let Some(field) = root.get("top_logprobs") {
        return Err(field.unsupported(
            "log probabilities are not available through this gateway; remove 'top_logprobs'.",
        ));
    }
    if let Some(field) = root.get("audio") {
        return Err(field.unsupported("audio output is not available through this gateway."));
    }
    if let Some(field) = root.get("modalities") {
        for item in field.array()? {
            if item.string()? != "text" {
                return Err(item.unsupported("only text output is available through this gateway."));
            }
        }
    }
    for legacy in ["functions", "function_call"] {
        if let Some(field) = root.get(legacy) {
            return Err(field.unsupported(
                "'functions' and 'function_call' are deprecated; use 'tools' and 'tool_choice'.",
            ));
        }
    }
    Ok(())
}

const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

fn parse_message(field: &Field<'_>) -> Result<Message, RequestError> {
    let message = field.object()?;
    let role = message.require("role")?.one_of(ROLES)?;
    match role {
        "system" | "developer" => {
            let content = message.require("content")?;
            Ok(Message { role: Role::System, content: text_parts(&content)? })
        }
        "user" => {
            let content = message.require("content")?;
            Ok(Message { role: Role::User, content: user_parts(&content)? })
        }
        "assistant" => {
            let mut content = match message.get("content") {
                Some(field) => text_parts(&field)?,
                None => Vec::new(),
            };
            content.retain(|part| !matches!(part, ContentPart::Text { text } if text.is_empty()));
            let calls = match message.get("tool_calls") {
                Some(field) => field.array()?,
                None => Vec::new(),
            };
            for call in &calls {
                content.push(ContentPart::ToolCall(parse_tool_call(call)?));
            }
            if message.get("content").is_none() && calls.is_empty() {
                return Err(message.missing("content"));
            }
            Ok(Message { role: Role::Assistant, content })
        }
        _ => {
            let call_id = message.require("tool_call_id")?.string()?.to_owned();
            let content = message.require("content")?;
            let text = joined(&text_parts(&content)?).into_owned();
            Ok(Message {
                role: Role::Tool,
                content: vec![ContentPart::ToolResult { call_id, content: text, is_error: false }],
            })
        }
    }
}

/// Content given as a string or as an array of typed parts. `text` parts are read here;
/// every other part type goes to `part`, which reads it, refuses it, or (`Ok(None)`) does
/// not know it — then the error lists `known`.
fn content_parts(
    field: &Field<'_>,
    known: &[&str],
    mut part: impl FnMut(&str, &Obj<'_>) -> Result<Option<ContentPart>, RequestError>,
) -> Result<Vec<ContentPart>, RequestError> {
    if let Value::String(text) = field.value {
        return Ok(vec![ContentPart::Text { text: text.clone() }]);
    }
    if !field.value.is_array() {
        return Err(field.wrong_type("a string or an array of content parts"));
    }
    let mut parts = Vec::new();
    for item in field.array()? {
        let object = item.object()?;
        let kind = object.require("type")?;
        let name = kind.string()?;
        if name == "text" {
            parts.push(ContentPart::Text { text: object.require("text")?.string()?.into() });
            continue;
        }
        match part(name, &object)? {
            Some(content) => parts.push(content),
            None => return Err(kind.invalid_value(name, known)),
        }
    }
    Ok(parts)
}

/// Content that may only be text (and, for assistants, `refusal`, kept as text).
fn text_parts(field: &Field<'_>) -> Result<Vec<ContentPart>, RequestError> {
    content_parts(field, &["text"], |kind, part| match kind {
        "refusal" => {
            Ok(Some(ContentPart::Text { text: part.require("refusal")?.string()?.into() }))
        }
        _ => Ok(None),
    })
}

/// A user's content: text and images.
fn user_parts(field: &Field<'_>) -> Result<Vec<ContentPart>, RequestError> {
    content_parts(field, &["text", "image_url"], |kind, part| match kind {
        "image_url" => {
            let image = part.require("image_url")?;
            let url_field = match image.value {
                // Some clients send the URL directly rather than `{ "url": ... }`.
                Value::String(_) => image.clone(),
                _ => image.object()?.require("url")?,
            };
            Ok(Some(ContentPart::Image { source: parse_image_url(&url_field)? }))
        }
        "input_audio" | "file" => Err(part
            .require("type")?
            .unsupported("only text and image content parts are accepted by this gateway.")),
        _ => Ok(None),
    })
}

fn parse_image_url(field: &Field<'_>) -> Result<ImageSource, RequestError> {
    let url = field.string()?;
    let source = ImageSource::from_url(url);
    match &source {
        ImageSource::Base64 { .. } => Ok(source),
        ImageSource::Url { url } if url.starts_with("https://") || url.starts_with("http://") => {
            Ok(source)
        }
        ImageSource::Url { .. } => Err(field
            .invalid("expected an http(s) URL or a data URL like 'data:image/png;base64,...'.")),
    }
}

fn parse_tool_call(field: &Field<'_>) -> Result<ToolCall, RequestError> {
    let call = field.object()?;
    if let Some(kind) = call.get("type") {
        kind.one_of(&["function"])?;
    }
    let function = call.require("function")?.object()?;
    Ok(ToolCall {
        id: call.require("id")?.string()?.to_owned(),
        name: function.require("name")?.string()?.to_owned(),
        arguments: function
            .get("arguments")
            .map(|f| f.string().map(str::to_owned))
            .transpose()?
            .unwrap_or_default(),
    })
}

fn parse_tool(field: &Field<'_>) -> Result<ToolDef, RequestError> {
    let tool = field.object()?;
    tool.require("type")?.one_of(&["function"])?;
    let function = tool.require("function")?.object()?;
    let name_field = function.require("name")?;
    let name = name_field.string()?;
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid_name {
        return Err(name_field
            .invalid("tool names must be 1 to 64 characters of letters, digits, '_' and '-'."));
    }
    let parameters = match function.get("parameters") {
        Some(field) => {
            field.object()?;
            field.value.clone()
        }
        None => json!({"type": "object", "properties": {}}),
    };
    Ok(ToolDef {
        name: name.to_owned(),
        description: function
            .get("description")
            .map(|f| f.string().map(str::to_owned))
            .transpose()?,
        parameters,
    })
}

fn parse_tool_choice(field: &Field<'_>, tools: &[ToolDef]) -> Result<ToolChoice, RequestError> {
    let choice = match field.value {
        Value::String(_) => match field.one_of(&["none", "auto", "required"])? {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            _ => ToolChoice::Required,
        },
        Value::Object(_) => {
            let object = field.object()?;
            object.require("type")?.one_of(&["function"])?;
            let name_field = object.require("function")?.object()?.require("name")?;
            let name = name_field.string()?;
            if !tools.iter().any(|tool| tool.name == name) {
                return Err(
                    name_field.invalid(&format!("no tool named '{name}' is defined in 'tools'."))
                );
            }
            ToolChoice::Tool(name.to_owned())
        }
        _ => return Err(field.wrong_type("a string or an object")),
    };
    if tools.is_empty() && choice != ToolChoice::None {
        return Err(field.invalid("'tool_choice' is only allowed when 'tools' are specified."));
    }
    Ok(choice)
}

/// `None` for plain text, `Some(None)` for any JSON object, `Some(Some(schema))`.
fn parse_response_format(field: &Field<'_>) -> Result<Option<Option<Value>>, RequestError> {
    let format = field.object()?;
    let kind = format.require("type")?.one_of(&["text", "json_object", "json_schema"])?;
    Ok(match kind {
        "text" => None,
        "json_object" => Some(None),
        _ => {
            let spec = format.require("json_schema")?.object()?;
            spec.require("name")?.string()?;
            let schema = match spec.get("schema") {
                Some(field) => {
                    field.object()?;
                    Some(field.value.clone())
                }
                None => None,
            };
            Some(schema)
        }
    })
}

/// The text parts of a message, a blank line between them; borrowed when there is one.
fn joined(parts: &[ContentPart]) -> Cow<'_, str> {
    join_texts(parts, "\n\n")
}

// ---------------------------------------------------------------------------------------
// Client side: writing responses, streams and errors
// ---------------------------------------------------------------------------------------

fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::StopSequence => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// A `chat.completion` object for a complete answer.
///
/// The envelope's keys and fixed values are written as they are, and only the strings that
/// come from elsewhere (ids, the model, the text, tool calls) go through serde_json: for each
/// key it writes, serde_json checks every byte for escapes and makes three calls into the
/// buffer, which came to more than half of what writing an ordinary answer cost. The keys
/// come in the order OpenAI sends them, as the stream's chunks do.
pub fn encode_response(response: &ChatResponse, meta: &ResponseMeta) -> Bytes {
    #[derive(Serialize)]
    struct CallJson<'a> {
        id: &'a str,
        #[serde(rename = "type")]
        kind: &'static str,
        function: FunctionJson<'a>,
    }
    #[derive(Serialize)]
    struct FunctionJson<'a> {
        name: &'a str,
        arguments: &'a str,
    }

    let text = response.text();
    let tool_calls: Vec<CallJson<'_>> = response
        .tool_calls()
        .map(|call| CallJson {
            id: &call.id,
            kind: "function",
            function: FunctionJson { name: &call.name, arguments: &call.arguments },
        })
        .collect();
    // The envelope (ids, usage, field names) takes about 300 bytes around the text.
    let capacity = text_bytes(&response.content) + meta.id.len() + meta.model.len() + 320;
    let mut out = Vec::with_capacity(capacity);
    put_head(&mut out, meta, "chat.completion");
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    // A message of tool calls alone has no content, as OpenAI writes it.
    if text.is_empty() && !tool_calls.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        put_str(&mut out, &text);
    }
    out.extend_from_slice(b",\"refusal\":null");
    if !tool_calls.is_empty() {
        out.extend_from_slice(b",\"tool_calls\":");
        put_json(&mut out, &tool_calls);
    }
    out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":\"");
    out.extend_from_slice(finish_reason_name(response.finish_reason).as_bytes());
    out.extend_from_slice(b"\"}],\"usage\":");
    put_usage(&mut out, &response.usage);
    out.push(b'}');
    Bytes::from(out)
}

/// The start of a completion or a chunk, open for the fields that follow:
/// `{"id":…,"object":"<object>","created":…,"model":…`.
fn put_head(out: &mut Vec<u8>, meta: &ResponseMeta, object: &str) {
    out.extend_from_slice(b"{\"id\":");
    put_str(out, &meta.id);
    out.extend_from_slice(b",\"object\":\"");
    out.extend_from_slice(object.as_bytes());
    out.extend_from_slice(b"\",\"created\":");
    out.extend_from_slice(itoa::Buffer::new().format(meta.created).as_bytes());
    out.extend_from_slice(b",\"model\":");
    put_str(out, &meta.model);
}

/// OpenAI's `usage` object.
fn put_usage(out: &mut Vec<u8>, usage: &Usage) {
    let mut number = itoa::Buffer::new();
    out.extend_from_slice(b"{\"prompt_tokens\":");
    out.extend_from_slice(number.format(usage.input_tokens).as_bytes());
    out.extend_from_slice(b",\"completion_tokens\":");
    out.extend_from_slice(number.format(usage.output_tokens).as_bytes());
    out.extend_from_slice(b",\"total_tokens\":");
    out.extend_from_slice(number.format(usage.total()).as_bytes());
    out.push(b'}');
}

/// The OpenAI name of an error kind.
pub fn error_type(kind: ApiErrorKind) -> &'static str {
    match kind {
        ApiErrorKind::InvalidRequest | ApiErrorKind::RequestTooLarge => "invalid_request_error",
        ApiErrorKind::Authentication => "authentication_error",
        ApiErrorKind::PermissionDenied => "permission_error",
        ApiErrorKind::NotFound => "not_found_error",
        ApiErrorKind::RateLimited => "rate_limit_error",
        ApiErrorKind::Overloaded => "overloaded_error",
        ApiErrorKind::Upstream | ApiErrorKind::Timeout | ApiErrorKind::Internal => "server_error",
    }
}

fn error_json(error: &ApiError) -> Value {
    json!({
        "error": {
            "message": error.message,
            "type": error_type(error.kind),
            "param": error.param,
            "code": error.code,
        }
    })
}

/// `{"error": {"message", "type", "param", "code"}}`; send with [`ApiError::status`].
pub fn error_body(error: &ApiError) -> Bytes {
    Bytes::from(error_json(error).to_string())
}

/// Turns neutral stream events into `chat.completion.chunk` frames.
///
/// Call [`encode`](Self::encode) for each event, then [`finish`](Self::finish) when the
/// upstream stream has ended (it writes the usage chunk, if asked for, and `[DONE]`), or
/// [`error`](Self::error) when it failed. The role chunk comes first even if the upstream
/// never sent a start event. When usage was asked for but the upstream reported none, feed
/// an estimated [`StreamEvent::Usage`] before `finish`.
#[derive(Debug)]
pub struct StreamEncoder {
    /// What every chunk of the stream opens with, written once:
    /// `{"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`. A
    /// chunk goes out for every few tokens, and these fields are most of its JSON.
    head: Vec<u8>,
    include_usage: bool,
    started: bool,
    usage: Option<Usage>,
    closed: bool,
}

impl StreamEncoder {
    pub fn new(meta: ResponseMeta, include_usage: bool) -> Self {
        let mut head = Vec::with_capacity(meta.id.len() + meta.model.len() + 96);
        put_head(&mut head, &meta, "chat.completion.chunk");
        head.extend_from_slice(b",\"choices\":[");
        StreamEncoder { head, include_usage, started: false, usage: None, closed: false }
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
        if !self.started {
            self.started = true;
            let delta = Delta { role: Some("assistant"), content: Some(""), tool_calls: None };
            self.chunk(out, delta, None);
        }
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { text } => {
                if !text.is_empty() {
                    self.text_chunk(out, text);
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let call = ToolCallDelta {
                    index: *index,
                    id: Some(id),
                    kind: Some("function"),
                    function: FunctionDelta { name: Some(name), arguments: "" },
                };
                let delta = Delta { tool_calls: Some([call]), ..Delta::default() };
                self.chunk(out, delta, None);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                let call = ToolCallDelta {
                    index: *index,
                    id: None,
                    kind: None,
                    function: FunctionDelta { name: None, arguments },
                };
                let delta = Delta { tool_calls: Some([call]), ..Delta::default() };
                self.chunk(out, delta, None);
            }
            StreamEvent::Finish { reason, .. } => {
                self.chunk(out, Delta::default(), Some(*reason));
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The usage chunk (when the client asked for it) and `data: [DONE]`.
    pub fn finish(&mut self) -> Bytes {
        if self.closed {
            return Bytes::new();
        }
        self.closed = true;
        let mut out = Vec::with_capacity(sse::FRAME_BYTES);
        if self.include_usage {
            // The last chunk: no choices, and the usage.
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            put_usage(&mut out, &self.usage.unwrap_or_default());
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(&sse::data_frame("[DONE]"));
        Bytes::from(out)
    }

    /// An error chunk that ends the stream; OpenAI's SDKs raise it as an API error.
    pub fn error(&mut self, error: &ApiError) -> Bytes {
        if self.closed {
            return Bytes::new();
        }
        self.closed = true;
        sse::data_frame(&error_json(error).to_string())
    }

    /// Writes the chunk carrying a piece of text, most of a stream's chunks: as [`chunk`]
    /// writes it, with the keys written as they are.
    ///
    /// [`chunk`]: Self::chunk
    fn text_chunk(&self, out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"content\":");
        put_str(out, text);
        out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":null}]");
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// Writes the chunk carrying `delta` (and `finish`) as one frame: the stream's head, then
    /// the one choice, whose keys come in the order [`ChunkChoice`] gives them. JSON holds no
    /// raw line break, so the frame is a single `data:` line.
    fn chunk(&self, out: &mut Vec<u8>, delta: Delta<'_>, finish: Option<FinishReason>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        let choice = ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish.map(finish_reason_name),
        };
        put_json(out, &choice);
        out.push(b']');
        // A client that asked for usage gets `"usage": null` on every chunk but the last.
        if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }
}

/// Appends `value` as JSON. What the encoder writes is borrowed strings, numbers and options
/// of them, which always serialise.
fn put_json(out: &mut Vec<u8>, value: &impl Serialize) {
    let written = serde_json::to_writer(&mut *out, value);
    debug_assert!(written.is_ok(), "a stream chunk's parts failed to serialise");
}

/// A `chat.completion.chunk`'s one choice, written straight from borrowed parts after the
/// stream's head.
#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// A chunk's `delta`: only the fields it carries are written.
#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

// ---------------------------------------------------------------------------------------
// Upstream side: requests
// ---------------------------------------------------------------------------------------

/// The request body for an OpenAI-compatible deployment serving `model_id`, as a JSON tree
/// (for defaults to be merged into it): [`request_bytes`] read back.
pub fn request_body(
    request: &ChatRequest,
    model_id: &str,
    stream: bool,
) -> Result<Value, UpstreamError> {
    serde_json::from_slice(&request_bytes(request, model_id, stream)?).map_err(unwritable)
}

/// The request body for an OpenAI-compatible deployment serving `model_id`, written
/// straight to the bytes sent on the wire.
///
/// The messages, which hold nearly all of its text, are written by hand and their strings
/// escaped eight bytes at a time ([`put_str`]); serde_json, which writes the parameters,
/// looks at every byte of a string on its own, which for a long prompt cost more than
/// everything else the gateway does with the body.
pub fn request_bytes(
    request: &ChatRequest,
    model_id: &str,
    stream: bool,
) -> Result<Vec<u8>, UpstreamError> {
    let body = UpstreamBody::new(request, model_id, stream)?;
    let mut out = Vec::with_capacity(body_capacity(request));
    out.extend_from_slice(b"{\"model\":");
    put_str(&mut out, body.model);
    out.extend_from_slice(b",\"messages\":[");
    for (index, message) in body.messages.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        message.put(&mut out);
    }
    out.push(b']');
    // The parameters: `stream` at least.
    put_fields(&mut out, &body.parameters).map_err(unwritable)?;
    Ok(out)
}

pub(crate) fn unwritable(error: serde_json::Error) -> UpstreamError {
    UpstreamError::Unsupported {
        message: format!("the request cannot be written as JSON: {error}"),
    }
}

/// A Chat Completions request for a deployment, borrowing from the neutral request.
struct UpstreamBody<'a> {
    model: &'a str,
    messages: Vec<UpstreamMessage<'a>>,
    parameters: UpstreamParameters<'a>,
}

/// Everything in the body after the messages, in the order it is written.
#[derive(Serialize)]
struct UpstreamParameters<'a> {
    stream: bool,
    /// Without it OpenAI sends no usage in streams, and cost could not be accounted.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<Value>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<UpstreamTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct UpstreamTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: UpstreamFunction<'a>,
}

#[derive(Serialize)]
struct UpstreamFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

/// One message of the body: `{"role":…,"tool_call_id":…,"content":…,"tool_calls":[…]}`,
/// the tool call id and calls only where there are any.
struct UpstreamMessage<'a> {
    role: &'static str,
    tool_call_id: Option<&'a str>,
    content: UpstreamContent<'a>,
    tool_calls: Vec<&'a ToolCall>,
}

/// A message's content: a plain string wherever the message has only text (not every
/// OpenAI-compatible server takes part arrays), parts where it has images, `null` for an
/// assistant turn that only calls tools.
enum UpstreamContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<UpstreamPart<'a>>),
    Null,
}

enum UpstreamPart<'a> {
    Text(&'a str),
    ImageUrl(String),
}

impl UpstreamMessage<'_> {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(self.role.as_bytes());
        out.push(b'"');
        if let Some(id) = self.tool_call_id {
            out.extend_from_slice(b",\"tool_call_id\":");
            put_str(out, id);
        }
        out.extend_from_slice(b",\"content\":");
        match &self.content {
            UpstreamContent::Text(text) => put_str(out, text),
            UpstreamContent::Null => out.extend_from_slice(b"null"),
            UpstreamContent::Parts(parts) => {
                out.push(b'[');
                for (index, part) in parts.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    match part {
                        UpstreamPart::Text(text) => {
                            out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
                            put_str(out, text);
                            out.push(b'}');
                        }
                        UpstreamPart::ImageUrl(url) => {
                            out.extend_from_slice(
                                b"{\"type\":\"image_url\",\"image_url\":{\"url\":",
                            );
                            put_str(out, url);
                            out.extend_from_slice(b"}}");
                        }
                    }
                }
                out.push(b']');
            }
        }
        if !self.tool_calls.is_empty() {
            out.extend_from_slice(b",\"tool_calls\":[");
            for (index, call) in self.tool_calls.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"id\":");
                put_str(out, &call.id);
                out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                put_str(out, &call.name);
                out.extend_from_slice(b",\"arguments\":");
                put_str(out, &call.arguments);
                out.extend_from_slice(b"}}");
            }
            out.push(b']');
        }
        out.push(b'}');
    }
}

impl<'a> UpstreamBody<'a> {
    fn new(
        request: &'a ChatRequest,
        model_id: &'a str,
        stream: bool,
    ) -> Result<UpstreamBody<'a>, UpstreamError> {
        let mut messages = Vec::with_capacity(request.messages.len());
        for message in &request.messages {
            push_upstream_message(message, &mut messages)?;
        }
        let tools = request
            .tools
            .iter()
            .map(|tool| UpstreamTool {
                kind: "function",
                function: UpstreamFunction {
                    name: &tool.name,
                    description: tool.description.as_deref(),
                    parameters: &tool.parameters,
                },
            })
            .collect::<Vec<_>>();
        let tool_choice =
            request.tool_choice.as_ref().filter(|_| !tools.is_empty()).map(|choice| match choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
            });
        let response_format = request.json_output.as_ref().map(|schema| match schema {
            None => json!({"type": "json_object"}),
            Some(schema) => json!({
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": schema},
            }),
        });
        let parameters = UpstreamParameters {
            stream,
            stream_options: stream.then_some(StreamOptions { include_usage: true }),
            max_tokens: request.max_tokens,
            temperature: request.temperature.map(f32_json),
            top_p: request.top_p.map(f32_json),
            stop: &request.stop,
            tools,
            tool_choice,
            response_format,
            user: request.user.as_deref(),
            seed: request.seed,
        };
        Ok(UpstreamBody { model: model_id, messages, parameters })
    }
}

fn push_upstream_message<'a>(
    message: &'a Message,
    out: &mut Vec<UpstreamMessage<'a>>,
) -> Result<(), UpstreamError> {
    let turn = |role, content| UpstreamMessage {
        role,
        tool_call_id: None,
        content,
        tool_calls: Vec::new(),
    };
    match message.role {
        Role::System => {
            if message.content.iter().any(|part| !matches!(part, ContentPart::Text { .. })) {
                return Err(UpstreamError::Unsupported {
                    message: "a system message may hold only text".into(),
                });
            }
            out.push(turn("system", UpstreamContent::Text(joined(&message.content))));
        }
        Role::User | Role::Tool => {
            // Tool results become `tool` messages, which OpenAI wants right after the
            // assistant turn that made the calls, so they go before any text of the turn.
            for part in &message.content {
                if let ContentPart::ToolResult { call_id, content, is_error } = part {
                    out.push(UpstreamMessage {
                        role: "tool",
                        tool_call_id: Some(call_id),
                        content: UpstreamContent::Text(tool_result_text(content, *is_error)),
                        tool_calls: Vec::new(),
                    });
                }
            }
            let rest = message
                .content
                .iter()
                .filter(|part| !matches!(part, ContentPart::ToolResult { .. }));
            if rest.clone().next().is_none() {
                return Ok(());
            }
            if rest.clone().any(|part| matches!(part, ContentPart::ToolCall(_))) {
                return Err(UpstreamError::Unsupported {
                    message: "a user message cannot hold a tool call".into(),
                });
            }
            let content = if rest.clone().any(|part| matches!(part, ContentPart::Image { .. })) {
                UpstreamContent::Parts(
                    rest.filter_map(|part| match part {
                        ContentPart::Text { text } => Some(UpstreamPart::Text(text)),
                        ContentPart::Image { source } => {
                            Some(UpstreamPart::ImageUrl(source.to_url()))
                        }
                        _ => None,
                    })
                    .collect(),
                )
            } else {
                UpstreamContent::Text(joined(&message.content))
            };
            out.push(turn("user", content));
        }
        Role::Assistant => {
            let mut calls = Vec::new();
            for part in &message.content {
                match part {
                    ContentPart::ToolCall(call) => calls.push(call),
                    ContentPart::Image { .. } | ContentPart::ToolResult { .. } => {
                        return Err(UpstreamError::Unsupported {
                            message: "an assistant message may hold only text and tool calls"
                                .into(),
                        });
                    }
                    ContentPart::Text { .. } => {}
                }
            }
            let text = joined(&message.content);
            let content = if text.is_empty() && !calls.is_empty() {
                UpstreamContent::Null
            } else {
                UpstreamContent::Text(text)
            };
            out.push(UpstreamMessage {
                role: "assistant",
                tool_call_id: None,
                content,
                tool_calls: calls,
            });
        }
    }
    Ok(())
}

/// OpenAI has no error flag on tool results; saying it in the text is the nearest equivalent.
fn tool_result_text(content: &str, is_error: bool) -> Cow<'_, str> {
    if is_error { Cow::Owned(format!("Error: {content}")) } else { Cow::Borrowed(content) }
}

// ---------------------------------------------------------------------------------------
// Upstream side: responses
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<WireChoice>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    arguments: String,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default, deserialize_with = "null_as_default")]
    prompt_tokens: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage { input_tokens: usage.prompt_tokens, output_tokens: usage.completion_tokens }
    }
}

fn parse_finish_reason(reason: Option<&str>, made_tool_calls: bool) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Stop,
        None if made_tool_calls => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    }
}

/// Reads an upstream `chat.completion` body.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    if let Some(response) = read_fast(body, plain_text_response) {
        return Ok(response);
    }
    parse_response_with_serde(body)
}

/// A completion with one choice, answered in text (no tool calls) — the common answer —
/// read without serde; `None` for any other body (or anything this reader does not expect),
/// which serde then reads.
fn plain_text_response(text: &str) -> Option<ChatResponse> {
    let mut scan = Scan::new(text);
    let (mut id, mut model, mut choice, mut usage) = (None, None, None, None);
    scan.object(|scan, key| match key {
        "id" => first(&mut id, scan.string_or_null()),
        "model" => first(&mut model, scan.string_or_null()),
        "choices" => {
            let mut only = None;
            scan.array(|scan| first(&mut only, scan_answer_choice(scan)))?;
            first(&mut choice, only)
        }
        "usage" => first(&mut usage, if scan.null() { Some(None) } else { scan_usage(scan) }),
        _ => scan.skip(),
    })?;
    scan.at_end().then_some(())?;
    let (text, finish_reason) = choice?;
    Some(ChatResponse {
        id: id.flatten().map(Cow::into_owned).unwrap_or_default(),
        model: model.flatten().map(Cow::into_owned).unwrap_or_default(),
        content: text
            .map(|text| ContentPart::Text { text: text.into_owned() })
            .into_iter()
            .collect(),
        finish_reason: parse_finish_reason(finish_reason.flatten().as_deref(), false),
        stop_sequence: None,
        usage: usage.flatten().unwrap_or_default(),
    })
}

/// A choice's text (its content, else its refusal, when not empty) and finish reason.
type AnswerChoice<'a> = (Option<Cow<'a, str>>, Option<Option<Cow<'a, str>>>);

fn scan_answer_choice<'a>(scan: &mut Scan<'a>) -> Option<AnswerChoice<'a>> {
    let (mut message, mut finish_reason) = (None, None);
    scan.object(|scan, key| match key {
        "message" => first(&mut message, scan_answer_message(scan)),
        "finish_reason" => first(&mut finish_reason, scan.string_or_null()),
        _ => scan.skip(),
    })?;
    Some((message?, finish_reason))
}

fn scan_answer_message<'a>(scan: &mut Scan<'a>) -> Option<Option<Cow<'a, str>>> {
    let (mut content, mut refusal, mut tool_calls) = (None, None, None);
    scan.object(|scan, key| match key {
        "content" => first(&mut content, scan.string_or_null()),
        "refusal" => first(&mut refusal, scan.string_or_null()),
        "tool_calls" => first(&mut tool_calls, scan.null().then_some(())),
        _ => scan.skip(),
    })?;
    let content = content.flatten().filter(|text| !text.is_empty());
    Some(content.or_else(|| refusal.flatten().filter(|text| !text.is_empty())))
}

/// `usage`'s token counts; a count that is missing or null is 0.
fn scan_usage(scan: &mut Scan<'_>) -> Option<Option<Usage>> {
    let (mut prompt, mut completion) = (None, None);
    let count = |scan: &mut Scan<'_>| if scan.null() { Some(0) } else { scan.u64() };
    scan.object(|scan, key| match key {
        "prompt_tokens" => first(&mut prompt, count(scan)),
        "completion_tokens" => first(&mut completion, count(scan)),
        _ => scan.skip(),
    })?;
    Some(Some(Usage { input_tokens: prompt.unwrap_or(0), output_tokens: completion.unwrap_or(0) }))
}

fn parse_response_with_serde(body: &[u8]) -> Result<ChatResponse, UpstreamError> {
    let wire: WireResponse = crate::json::from_body(body).map_err(|error| {
        UpstreamError::Protocol { message: format!("not an OpenAI chat completion: {error}") }
    })?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(UpstreamError::Protocol { message: "the completion has no choices".into() });
    };
    let mut content = Vec::new();
    if let Some(text) = choice.message.content.filter(|t| !t.is_empty()) {
        content.push(ContentPart::Text { text });
    } else if let Some(refusal) = choice.message.refusal.filter(|t| !t.is_empty()) {
        content.push(ContentPart::Text { text: refusal });
    }
    let calls = choice.message.tool_calls.unwrap_or_default();
    let made_tool_calls = !calls.is_empty();
    for call in calls {
        content.push(ContentPart::ToolCall(ToolCall {
            id: call.id,
            name: call.function.name,
            arguments: call.function.arguments,
        }));
    }
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        finish_reason: parse_finish_reason(choice.finish_reason.as_deref(), made_tool_calls),
        stop_sequence: None,
        usage: wire.usage.map(Usage::from).unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    model: String,
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
    /// Some servers report a failure mid-stream as a chunk with only an `error`.
    error: Option<WireErrorObject>,
}

/// A chunk after the first: the fields of [`WireChunk`] but its id and model, which are
/// read from the first chunk only. Left out here, serde skips them without copying them,
/// two allocations saved on every chunk of a stream.
#[derive(Deserialize)]
struct WireLaterChunk {
    #[serde(default, deserialize_with = "null_as_default")]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<WireErrorObject>,
}

impl From<WireLaterChunk> for WireChunk {
    fn from(chunk: WireLaterChunk) -> Self {
        WireChunk {
            id: String::new(),
            model: String::new(),
            choices: chunk.choices,
            usage: chunk.usage,
            error: chunk.error,
        }
    }
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default, deserialize_with = "null_as_default")]
    index: u32,
    delta: Option<WireDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireDelta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireErrorObject {
    #[serde(default, deserialize_with = "null_as_default")]
    message: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<Value>,
}

/// What a plain chunk carries. A chunk is plain when its one choice (if any) is the first,
/// with a text delta (or none) and a finish reason (or none) — no refusal or tool call — and
/// it reports no error: nearly every chunk of a stream, the first and the last included.
#[derive(Debug, PartialEq)]
struct PlainChunk<'a> {
    id: Option<Cow<'a, str>>,
    model: Option<Cow<'a, str>>,
    text: Option<Cow<'a, str>>,
    /// Where the text's string stands in the chunk, its quotes included.
    text_at: Option<Range<usize>>,
    /// Where the chunk's last member's value stands, when it is a string the reader skips
    /// (OpenAI's `obfuscation`, which changes from chunk to chunk).
    last_string_at: Option<Range<usize>>,
    finish_reason: Option<Cow<'a, str>>,
    usage: Option<Usage>,
}

/// Reads a plain chunk without serde; `None` for any other chunk (or anything this reader
/// does not expect), which serde then reads.
fn plain_chunk(data: &str) -> Option<PlainChunk<'_>> {
    let mut scan = Scan::new(data);
    let (mut id, mut model, mut choices, mut usage, mut error) = (None, None, None, None, None);
    let mut last_string_at = None;
    scan.object(|scan, key| {
        last_string_at = None;
        match key {
            "id" => first(&mut id, scan.string_or_null()),
            "model" => first(&mut model, scan.string_or_null()),
            "choices" => first(&mut choices, scan_choices(scan)),
            "usage" => first(&mut usage, if scan.null() { Some(None) } else { scan_usage(scan) }),
            "error" => first(&mut error, scan.null().then_some(())),
            _ => {
                let at = scan.skip_at()?;
                last_string_at = (data.as_bytes()[at.start] == b'"').then_some(at);
                Some(())
            }
        }
    })?;
    scan.at_end().then_some(())?;
    let (text, finish_reason) = choices.flatten().unwrap_or((None, None));
    let (text, text_at) = text.map_or((None, None), |(text, at)| (Some(text), Some(at)));
    Some(PlainChunk {
        id: id.flatten(),
        model: model.flatten(),
        text,
        text_at,
        last_string_at,
        finish_reason,
        usage: usage.flatten(),
    })
}

/// A plain chunk's choice: its text (and where it stands) and its finish reason.
type PlainChoice<'a> = (Option<(Cow<'a, str>, Range<usize>)>, Option<Cow<'a, str>>);

/// `choices` of a plain chunk: none, or the first alone.
fn scan_choices<'a>(scan: &mut Scan<'a>) -> Option<Option<PlainChoice<'a>>> {
    let mut only = None;
    scan.array(|scan| first(&mut only, scan_choice(scan)))?;
    Some(only)
}

fn scan_choice<'a>(scan: &mut Scan<'a>) -> Option<PlainChoice<'a>> {
    let (mut index, mut delta, mut finish) = (None, None, None);
    scan.object(|scan, key| match key {
        "index" => first(&mut index, if scan.null() { Some(0) } else { scan.u32() }),
        "delta" => first(&mut delta, scan_delta(scan)),
        "finish_reason" => first(&mut finish, scan.string_or_null()),
        _ => scan.skip(),
    })?;
    // Other choices are dropped; serde's path says so in one place.
    (index.unwrap_or(0) == 0).then_some((delta.flatten(), finish.flatten()))
}

fn scan_delta<'a>(scan: &mut Scan<'a>) -> Option<Option<(Cow<'a, str>, Range<usize>)>> {
    let (mut content, mut refusal, mut tool_calls) = (None, None, None);
    scan.object(|scan, key| match key {
        "content" => {
            first(&mut content, if scan.null() { Some(None) } else { scan.string_at().map(Some) })
        }
        "refusal" => first(&mut refusal, scan.null().then_some(())),
        "tool_calls" => first(&mut tool_calls, scan.null().then_some(())),
        _ => scan.skip(),
    })?;
    Some(content.flatten())
}

/// Decodes the stream: bytes in, neutral events out.
pub type StreamDecoder = SseDecoder<OpenAiEvents>;

/// Decodes an OpenAI chat-completion SSE stream into neutral events. The stream is complete
/// only once `data: [DONE]` has arrived.
#[derive(Debug, Default)]
pub struct OpenAiEvents {
    started: bool,
    finished: bool,
    made_tool_calls: bool,
    /// The upstream's tool-call index → ours (they agree with OpenAI, but a compatible
    /// server may number from anywhere).
    tool_indexes: HashMap<u32, u32>,
    /// The last chunk that carried text alone, for reading the next ones by their text.
    text_chunk: TextShape,
}

impl SseFormat for OpenAiEvents {
    fn finished(&self) -> bool {
        self.finished
    }

    fn decode(
        &mut self,
        event: &SseEvent,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finished = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        // Only a chunk read since remembers a shape, so the stream has started: all that
        // such a chunk makes is its text.
        if let Some(text) = self.text_chunk.text_of(data) {
            if !text.is_empty() {
                out.push(StreamEvent::TextDelta { text: text.into_owned() });
            }
            return Ok(());
        }
        match plain_chunk(data) {
            Some(chunk) => {
                if let (Some(at), None, None) = (&chunk.text_at, &chunk.finish_reason, &chunk.usage)
                {
                    self.text_chunk.remember(data, at.clone(), None, chunk.last_string_at.clone());
                }
                self.decode_plain(chunk, out);
                Ok(())
            }
            None => self.decode_with_serde(data, out),
        }
    }
}

impl OpenAiEvents {
    /// Turns a plain chunk into events, as [`decode_with_serde`](Self::decode_with_serde)
    /// does any chunk.
    fn decode_plain(&mut self, chunk: PlainChunk<'_>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            let (id, model) = (chunk.id.unwrap_or_default(), chunk.model.unwrap_or_default());
            out.push(StreamEvent::Start { id: id.into_owned(), model: model.into_owned() });
        }
        if let Some(text) = chunk.text.filter(|text| !text.is_empty()) {
            out.push(StreamEvent::TextDelta { text: text.into_owned() });
        }
        if let Some(reason) = chunk.finish_reason {
            out.push(StreamEvent::Finish {
                reason: parse_finish_reason(Some(&reason), self.made_tool_calls),
                stop_sequence: None,
            });
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage));
        }
    }

    /// Decodes any chunk, `data` being its JSON.
    fn decode_with_serde(
        &mut self,
        data: &str,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), UpstreamError> {
        let chunk = if self.started {
            serde_json::from_str::<WireLaterChunk>(data).map(WireChunk::from)
        } else {
            serde_json::from_str::<WireChunk>(data)
        };
        let chunk = chunk.map_err(|error| UpstreamError::Protocol {
            message: format!("not an OpenAI stream chunk: {error}"),
        })?;
        if let Some(error) = chunk.error {
            let code = error.code.as_ref().and_then(Value::as_str);
            let kind = code.filter(|c| *c == "context_length_exceeded").or(error.kind.as_deref());
            return Err(from_error_event(kind, error.message));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: chunk.id, model: chunk.model });
        }
        // Only the first choice is ever asked for (n is never above 1 upstream).
        for choice in chunk.choices.into_iter().filter(|choice| choice.index == 0) {
            let delta = choice.delta.unwrap_or_default();
            for text in [delta.content, delta.refusal].into_iter().flatten() {
                if !text.is_empty() {
                    out.push(StreamEvent::TextDelta { text });
                }
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                self.decode_tool_call(position, call, out);
            }
            if let Some(reason) = choice.finish_reason {
                out.push(StreamEvent::Finish {
                    reason: parse_finish_reason(Some(&reason), self.made_tool_calls),
                    stop_sequence: None,
                });
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.into()));
        }
        Ok(())
    }

    fn decode_tool_call(
        &mut self,
        position: usize,
        call: WireToolCallDelta,
        out: &mut Vec<StreamEvent>,
    ) {
        let upstream_index = call.index.unwrap_or(position as u32);
        let function = call.function.unwrap_or(WireFunctionDelta { name: None, arguments: None });
        let next = self.tool_indexes.len() as u32;
        let index = match self.tool_indexes.get(&upstream_index) {
            Some(index) => *index,
            None => {
                self.tool_indexes.insert(upstream_index, next);
                self.made_tool_calls = true;
                out.push(StreamEvent::ToolCallStart {
                    index: next,
                    id: call.id.unwrap_or_else(|| format!("call_{next}")),
                    name: function.name.unwrap_or_default(),
                });
                next
            }
        };
        if let Some(arguments) = function.arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallDelta { index, arguments });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::scan::check_fast_reader;
    use crate::json::shape::check_text_shape;

    /// Chunks as servers send them, which the fast path must read.
    const PLAIN_CHUNKS: &[&str] = &[
        // OpenAI's own, field for field: the first, a text delta, the last, the usage.
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795741950,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795741950,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x7"}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795741950,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795741950,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        // Escapes, a surrogate pair, raw non-ASCII, logprobs; keys sorted (router-sim).
        r#"{"choices":[{"delta":{"content":"Hi \"there\"\n caf\u00e9 \ud83d\ude00 中文"},"finish_reason":null,"index":0,"logprobs":{"content":[{"token":"x","logprob":-0.5e-1,"bytes":[120],"top_logprobs":[]}]}}],"id":null,"model":"m"}"#,
        // Whitespace everywhere JSON allows it.
        " { \"choices\" : [ { \"index\" : null , \"delta\" : { \"content\" : \"a\" , \"tool_calls\" : null } } ] }\n",
        // Azure's content-filter chunk, and a null content.
        r#"{"choices":[],"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":null},"finish_reason":"stop"}]}"#,
    ];

    /// Chunks that carry what the fast path does not read, which serde must read.
    const OTHER_CHUNKS: &[&str] = &[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"refusal":"I can't"}}]}"#,
        r#"{"choices":[{"index":1,"delta":{"content":"second choice"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a"}},{"index":0,"delta":{"content":"b"}}]}"#,
        r#"{"error":{"message":"overloaded","type":"server_error"}}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"a"}}]} trailing"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1.5}}"#,
    ];

    /// What serde's path makes of a chunk, first in the stream or not.
    fn with_serde(data: &str, started: bool) -> Result<Vec<StreamEvent>, UpstreamError> {
        let mut events = OpenAiEvents { started, ..OpenAiEvents::default() };
        let mut out = Vec::new();
        events.decode_with_serde(data, &mut out).map(|()| out)
    }

    /// The events a chunk makes as a stream's first chunk and as a later one, read by the
    /// fast path, if it takes the chunk.
    fn fast_chunk_events(data: &str) -> Option<[Vec<StreamEvent>; 2]> {
        let mut both = [Vec::new(), Vec::new()];
        for (started, out) in [false, true].into_iter().zip(&mut both) {
            let mut events = OpenAiEvents { started, ..OpenAiEvents::default() };
            events.decode_plain(plain_chunk(data)?, out);
        }
        Some(both)
    }

    fn serde_chunk_events(data: &str) -> Result<[Vec<StreamEvent>; 2], UpstreamError> {
        Ok([with_serde(data, false)?, with_serde(data, true)?])
    }

    #[test]
    fn plain_chunks_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(PLAIN_CHUNKS, OTHER_CHUNKS, fast_chunk_events, serde_chunk_events);
        let events = with_serde(PLAIN_CHUNKS[4], true).unwrap();
        assert_eq!(events, [StreamEvent::TextDelta { text: "Hi \"there\"\n café 😀 中文".into() }]);
    }

    #[test]
    fn a_chunk_that_is_the_last_but_for_its_text_is_read_as_serde_reads_it() {
        let router_sim = r#"{"choices":[{"delta":{"content":" Good"},"finish_reason":null,"index":0,"logprobs":null}],"created":1795932360,"id":"chatcmpl-sim0073ab0000000000","model":"bench-small","object":"chat.completion.chunk","system_fingerprint":"fp_sim"}"#;
        // What the decoder reads is the event's data trimmed.
        for base in [PLAIN_CHUNKS[1], PLAIN_CHUNKS[4], PLAIN_CHUNKS[5].trim(), router_sim] {
            // The decoder remembers a text chunk as it reads it.
            let mut events = OpenAiEvents::default();
            let event = SseEvent { data: base.into(), ..SseEvent::default() };
            events.decode(&event, &mut Vec::new()).unwrap();
            assert!(events.text_chunk.remembers(), "{base}");
            let at = plain_chunk(base).and_then(|chunk| chunk.text_at).unwrap();
            check_text_shape(
                &events.text_chunk,
                base,
                at,
                |out| out,
                |data| with_serde(data, true),
            );
        }
        // OpenAI's padding, which differs from chunk to chunk, may differ.
        let mut events = OpenAiEvents::default();
        let openai = PLAIN_CHUNKS[1];
        events
            .decode(&SseEvent { data: openai.into(), ..SseEvent::default() }, &mut Vec::new())
            .unwrap();
        assert!(events.text_chunk.lets_the_last_string_vary());
        let padded = [
            openai.replace(r#"" word""#, r#"" more""#).replace(r#""x7""#, r#""Qz0\u0041""#),
            openai.replace(r#""x7""#, r#""""#),
        ];
        let moved = openai
            .replace(r#","usage":null,"obfuscation":"x7""#, r#","obfuscation":"x7","usage":null"#);
        check_fast_reader(
            &padded.iter().map(String::as_str).collect::<Vec<_>>(),
            &[&moved, &openai.replace(r#""x7""#, "7"), &openai.replace(r#""x7""#, r#""a" "b""#)],
            |data| {
                events
                    .text_chunk
                    .text_of(data)
                    .map(|text| vec![StreamEvent::TextDelta { text: text.into_owned() }])
            },
            |data| with_serde(data, true),
        );
        // A finish or a usage chunk is not remembered: its shape would bring those back.
        let mut events = OpenAiEvents::default();
        for chunk in &PLAIN_CHUNKS[2..4] {
            events
                .decode(&SseEvent { data: (*chunk).into(), ..SseEvent::default() }, &mut Vec::new())
                .unwrap();
        }
        assert!(!events.text_chunk.remembers());
    }

    #[test]
    fn a_whole_stream_decodes_as_before() {
        let mut decoder = StreamDecoder::new();
        let mut out = Vec::new();
        let stream: String =
            PLAIN_CHUNKS[..4].iter().map(|chunk| format!("data: {chunk}\n\n")).collect();
        decoder.feed(format!("{stream}data: [DONE]\n\n").as_bytes(), &mut out).unwrap();
        assert!(decoder.is_finished());
        assert_eq!(
            out,
            [
                StreamEvent::Start { id: "chatcmpl-1".into(), model: "gpt-4o-mini".into() },
                StreamEvent::TextDelta { text: " word".into() },
                StreamEvent::Finish { reason: FinishReason::Length, stop_sequence: None },
                StreamEvent::Usage(Usage { input_tokens: 9, output_tokens: 3 }),
            ]
        );
    }

    /// Requests as clients send them, which the fast path must read.
    const PLAIN_REQUESTS: &[&str] = &[
        r#"{"model":"auto","messages":[{"role":"user","content":"Explain hash maps briefly."}]}"#,
        r#"{"model":"gpt-4o","messages":[{"role":"system","content":"Be terse."},{"role":"developer","content":"Use \"quotes\"\n"},{"role":"user","content":"caf\u00e9 \ud83d\ude00 中文"},{"role":"assistant","content":""},{"role":"assistant","content":"Sure."},{"role":"user","content":"again"}],"stream":true,"max_tokens":100,"temperature":0.7,"top_p":1}"#,
        r#"{"messages":[{"content":"hi","role":"user"}],"model":"m","max_completion_tokens":4294967295,"max_tokens":5,"temperature":2,"stream":false,"top_p":0.25e0}"#,
        " { \"model\" : \"m\" , \"messages\" : [ { \"role\" : \"user\" , \"content\" : \"\" } ] } ",
    ];

    /// Requests the fast path must leave to the full parser.
    const OTHER_REQUESTS: &[&str] = &[
        r#"{"model":"auto","messages":[]}"#,
        r#"{"model":"  ","messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"tool","tool_call_id":"c","content":"42"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"ann"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2.5}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":5.0}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":2}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
        r#"{"model":"m","model":"n","messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m","messages":[{"role":"robot","content":"hi"}]}"#,
    ];

    /// What the full path makes of a request, made to take it: a field the fast path never
    /// reads, which the full path ignores, is added.
    fn full_request(body: &str) -> Result<ClientRequest, RequestError> {
        let mut value = parse_body(body.as_bytes(), Dialect::OpenAi)?;
        let Some(root) = value.as_object_mut() else { return parse_request(body.as_bytes()) };
        root.insert("presence_penalty".into(), 0.into());
        parse_request(value.to_string().as_bytes())
    }

    #[test]
    fn plain_requests_are_read_without_a_value_tree_as_the_full_parser_reads_them() {
        check_fast_reader(PLAIN_REQUESTS, OTHER_REQUESTS, plain_request, full_request);
        let request = parse_request(PLAIN_REQUESTS[1].as_bytes()).unwrap().request;
        assert_eq!(request.messages.len(), 6);
        assert_eq!(request.messages[3].content, []);
        assert_eq!(request.max_tokens, Some(100));
        assert_eq!(request.temperature, Some(0.7));
        assert!(request.stream);
        let error = parse_request(OTHER_REQUESTS[5].as_bytes()).unwrap_err();
        assert!(error.message.contains("temperature"), "{}", error.message);
    }

    /// Answers as servers send them, which the fast path must read.
    const TEXT_ANSWERS: &[&str] = &[
        r#"{"id":"chatcmpl-1","object":"chat.completion","created":1795741950,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"there\"\n\u00e9 \ud83d\ude00 中文","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0}},"service_tier":"default","system_fingerprint":"fp_1"}"#,
        r#"{"choices":[{"finish_reason":"length","index":0,"message":{"content":"cut","role":"assistant","tool_calls":null}}],"id":null,"model":"m","usage":null}"#,
        r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":null}}"#,
        " { \"choices\" : [ { \"message\" : { \"content\" : \"\" } , \"finish_reason\" : null } ] } ",
    ];

    /// Answers the fast path must leave to serde.
    const OTHER_ANSWERS: &[&str] = &[
        r#"{"choices":[{"message":{"content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
        r#"{"choices":[]}"#,
        r#"{"choices":[{"message":{"content":"a"}},{"message":{"content":"b"}}]}"#,
        r#"{"choices":[{"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":1.5}}"#,
        r#"{"id":"x","id":"y","choices":[{"message":{"content":"a"}}]}"#,
    ];

    #[test]
    fn text_answers_are_read_without_serde_as_serde_reads_them() {
        check_fast_reader(TEXT_ANSWERS, OTHER_ANSWERS, plain_text_response, |body| {
            parse_response_with_serde(body.as_bytes())
        });
        let answer = parse_response(TEXT_ANSWERS[0].as_bytes()).unwrap();
        assert_eq!(answer.text(), "Hello \"there\"\né 😀 中文");
        assert_eq!(answer.usage, Usage { input_tokens: 9, output_tokens: 12 });
        let refused = parse_response(TEXT_ANSWERS[2].as_bytes()).unwrap();
        assert_eq!(refused.text(), "I can't help with that.");
        assert_eq!(refused.finish_reason, FinishReason::ContentFilter);
        let called = parse_response(OTHER_ANSWERS[0].as_bytes()).unwrap();
        assert_eq!(called.finish_reason, FinishReason::ToolCalls);
    }
}
