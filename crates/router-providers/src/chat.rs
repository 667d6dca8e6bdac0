//! The neutral chat model: one request, response and stream-event shape that every wire
//! format translates into and out of. It carries what the formats share; what only one
//! format has is either mapped to its nearest equivalent or refused with a clear error by
//! the translation, never silently dropped.

use std::borrow::Cow;

use router_core::{Prompt, PromptMessage, Role};
use serde::{Deserialize, Serialize};

/// A chat request, independent of the format it arrived in.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatRequest {
    /// What the client asked for: a configured model name, an alias, `auto` or
    /// `auto:<profile>`. When sent upstream, replaced by the deployment's model id.
    pub model: String,
    /// The conversation in order; system prompts are messages with [`Role::System`].
    pub messages: Vec<Message>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub tools: Vec<ToolDef>,
    pub tool_choice: Option<ToolChoice>,
    /// Constrain the output to JSON: `Some(None)` for any JSON object, `Some(Some(schema))`
    /// for a JSON schema.
    pub json_output: Option<Option<serde_json::Value>>,
    /// The end user the request is made for (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    pub seed: Option<i64>,
}

impl ChatRequest {
    /// The view of this request that feature extraction takes; borrows, does not copy.
    pub fn prompt(&self) -> Prompt<'_> {
        let mut prompt = Prompt {
            messages: Vec::with_capacity(self.messages.len()),
            has_images: false,
            has_tools: !self.tools.is_empty(),
            wants_json: self.json_output.is_some(),
            max_output_tokens: self.max_tokens,
        };
        for message in &self.messages {
            for part in &message.content {
                match part {
                    ContentPart::Text { text } => {
                        prompt.messages.push(PromptMessage { role: message.role, text })
                    }
                    ContentPart::Image { .. } => prompt.has_images = true,
                    ContentPart::ToolResult { content, .. } => {
                        prompt.messages.push(PromptMessage { role: Role::Tool, text: content })
                    }
                    ContentPart::ToolCall(call) => prompt
                        .messages
                        .push(PromptMessage { role: Role::Assistant, text: &call.arguments }),
                }
            }
        }
        prompt
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Message { role, content: vec![ContentPart::Text { text: text.into() }] }
    }

    /// All text parts joined, for formats and places that take plain text.
    pub fn joined_text(&self) -> String {
        join_texts(&self.content, "").into_owned()
    }
}

/// A piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    /// The assistant asks for a tool call (OpenAI `tool_calls[]`, Anthropic `tool_use`).
    ToolCall(ToolCall),
    /// The result of a tool call, sent back by the client (OpenAI `role: tool`, Anthropic
    /// `tool_result`).
    ToolResult {
        call_id: String,
        content: String,
        is_error: bool,
    },
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    Url { url: String },
    Base64 { media_type: String, data: String },
}

impl ImageSource {
    /// An image given as a URL; a `data:<media type>;base64,<data>` URL becomes inline data,
    /// so that formats that take only inline images can still take it.
    pub fn from_url(url: &str) -> ImageSource {
        let inline = url
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(','))
            .and_then(|(header, data)| Some((header.strip_suffix(";base64")?, data)));
        match inline {
            Some((media_type, data)) => {
                ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() }
            }
            None => ImageSource::Url { url: url.to_owned() },
        }
    }

    /// The image as a URL, inline data as a `data:` URL.
    pub fn to_url(&self) -> String {
        match self {
            ImageSource::Url { url } => url.clone(),
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Kept stable across translation, so a tool result finds its call.
    pub id: String,
    pub name: String,
    /// The arguments as a JSON text (OpenAI's form; Anthropic's `input` object serialised).
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    pub name: String,
    pub description: Option<String>,
    /// JSON schema of the arguments.
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called (OpenAI `required`, Anthropic `any`).
    Required,
    Tool(String),
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    /// A client stop sequence matched (Anthropic reports which; OpenAI folds it into `stop`).
    StopSequence,
}

/// Token counts of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// A complete (non-streaming) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The upstream's id for the response.
    pub id: String,
    /// The upstream model that answered.
    pub model: String,
    /// Text and tool-call parts, in order.
    pub content: Vec<ContentPart>,
    pub finish_reason: FinishReason,
    /// Which stop sequence ended the answer, when the upstream says.
    pub stop_sequence: Option<String>,
    pub usage: Usage,
}

impl ChatResponse {
    /// The answer's text parts, one after another (borrowed when there is one).
    pub fn text(&self) -> Cow<'_, str> {
        join_texts(&self.content, "")
    }

    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|part| match part {
            ContentPart::ToolCall(call) => Some(call),
            _ => None,
        })
    }
}

/// What the gateway tells a client about the answer it is sending, whatever upstream wrote
/// it: the id and model name the client sees, and the creation time (Unix seconds) for
/// formats that carry one. Handed to the encoders so that they read no clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    pub id: String,
    pub model: String,
    pub created: u64,
}

/// One event of a streamed answer, in the order the upstream produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer has begun (always the first event).
    Start { id: String, model: String },
    /// More text.
    TextDelta { text: String },
    /// A tool call begins; `index` counts tool calls from zero within the answer.
    ToolCallStart { index: u32, id: String, name: String },
    /// More of the tool call's arguments (a fragment of JSON text).
    ToolCallDelta { index: u32, arguments: String },
    /// Generation ended.
    Finish { reason: FinishReason, stop_sequence: Option<String> },
    /// Token counts (may come after `Finish`; formats that report usage send it once).
    Usage(Usage),
}

/// The text parts of `parts`, `separator` between them; borrowed when there is one, as
/// there nearly always is, so reading it copies nothing.
pub(crate) fn join_texts<'a>(parts: &'a [ContentPart], separator: &str) -> Cow<'a, str> {
    let mut texts = parts.iter().filter_map(|part| match part {
        ContentPart::Text { text } => Some(text.as_str()),
        _ => None,
    });
    let Some(first) = texts.next() else { return Cow::Borrowed("") };
    let Some(second) = texts.next() else { return Cow::Borrowed(first) };
    let mut out = String::from(first);
    for text in std::iter::once(second).chain(texts) {
        out.push_str(separator);
        out.push_str(text);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answers_text_is_its_text_parts_in_order_borrowed_when_one() {
        let text = |text: &str| ContentPart::Text { text: text.into() };
        let call = ContentPart::ToolCall(ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{}".into(),
        });
        let answer = |content: Vec<ContentPart>| ChatResponse {
            id: "r".into(),
            model: "m".into(),
            content,
            finish_reason: FinishReason::Stop,
            stop_sequence: None,
            usage: Usage::default(),
        };
        assert_eq!(answer(vec![]).text(), "");
        assert_eq!(answer(vec![call.clone()]).text(), "");
        let one = answer(vec![call.clone(), text("Hello")]);
        assert!(matches!(one.text(), Cow::Borrowed("Hello")));
        let three = answer(vec![text("a"), call, text("b"), text("c")]);
        assert_eq!(three.text(), "abc");
        assert_eq!(join_texts(&three.content, "\n\n"), "a\n\nb\n\nc");
    }
}
