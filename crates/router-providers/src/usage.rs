//! Token usage and what it costs, and collecting a streamed answer as it passes through, so
//! that the gateway can record the outcome of a stream it forwarded without buffering it.

use std::collections::HashMap;

use router_core::Price;

use crate::chat::{ChatResponse, ContentPart, FinishReason, StreamEvent, ToolCall, Usage};

/// Cost in US dollars of `usage` at `price`.
pub fn cost(usage: &Usage, price: &Price) -> f64 {
    price.cost(usage.input_tokens, usage.output_tokens)
}

/// Watches a stream's events and keeps what the outcome record needs: the usage the upstream
/// reported (the last report wins: providers report cumulative counts), the finish reason,
/// whether any output came, and the whole answer for [`into_response`](Self::into_response).
#[derive(Debug, Default, Clone)]
pub struct StreamAccumulator {
    id: String,
    model: String,
    content: Vec<ContentPart>,
    /// Tool-call index → position in `content`.
    tool_positions: HashMap<u32, usize>,
    finish: Option<(FinishReason, Option<String>)>,
    usage: Option<Usage>,
    output_bytes: usize,
}

impl StreamAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
            }
            StreamEvent::TextDelta { text } => {
                self.output_bytes += text.len();
                match self.content.last_mut() {
                    Some(ContentPart::Text { text: last }) => last.push_str(text),
                    _ => self.content.push(ContentPart::Text { text: text.clone() }),
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.output_bytes += name.len();
                self.tool_positions.insert(*index, self.content.len());
                self.content.push(ContentPart::ToolCall(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                }));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.output_bytes += arguments.len();
                let position = self.tool_positions.get(index).copied();
                if let Some(ContentPart::ToolCall(call)) =
                    position.and_then(|p| self.content.get_mut(p))
                {
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::Finish { reason, stop_sequence } => {
                self.finish = Some((*reason, stop_sequence.clone()));
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
        }
    }

    /// The usage the upstream reported, if it did.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish.as_ref().map(|(reason, _)| *reason)
    }

    /// Whether any text or tool call has come (the client has seen output).
    pub fn has_output(&self) -> bool {
        self.output_bytes > 0 || !self.tool_positions.is_empty()
    }

    /// Bytes of text and tool-call arguments so far, for estimating output tokens when the
    /// upstream reports no usage.
    pub fn output_bytes(&self) -> usize {
        self.output_bytes
    }

    /// The answer as if it had been requested without streaming. A stream that never said
    /// why it stopped is taken to have stopped normally (or for its tool calls).
    pub fn into_response(self) -> ChatResponse {
        let (finish_reason, stop_sequence) = self.finish.unwrap_or_else(|| {
            let reason = if self.tool_positions.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            };
            (reason, None)
        });
        ChatResponse {
            id: self.id,
            model: self.model,
            content: self.content,
            finish_reason,
            stop_sequence,
            usage: self.usage.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_uses_the_price_per_million_tokens() {
        let price = Price { input_per_mtok: 3.0, output_per_mtok: 15.0 };
        let usage = Usage { input_tokens: 1_000, output_tokens: 2_000 };
        assert!((cost(&usage, &price) - 0.033).abs() < 1e-12);
        assert_eq!(cost(&Usage::default(), &price), 0.0);
    }

    #[test]
    fn accumulates_text_tool_calls_finish_and_the_last_usage() {
        let events = [
            StreamEvent::Start { id: "r1".into(), model: "m".into() },
            StreamEvent::TextDelta { text: "Hel".into() },
            StreamEvent::TextDelta { text: "lo".into() },
            StreamEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "f".into() },
            StreamEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "g".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"x\":".into() },
            StreamEvent::ToolCallDelta { index: 1, arguments: "{}".into() },
            StreamEvent::ToolCallDelta { index: 0, arguments: "1}".into() },
            StreamEvent::Usage(Usage { input_tokens: 5, output_tokens: 1 }),
            StreamEvent::Finish { reason: FinishReason::ToolCalls, stop_sequence: None },
            StreamEvent::Usage(Usage { input_tokens: 5, output_tokens: 9 }),
        ];
        let mut acc = StreamAccumulator::new();
        assert!(!acc.has_output());
        for event in &events {
            acc.observe(event);
        }
        assert!(acc.has_output());
        assert_eq!(acc.usage(), Some(Usage { input_tokens: 5, output_tokens: 9 }));
        assert_eq!(acc.finish_reason(), Some(FinishReason::ToolCalls));
        let response = acc.into_response();
        assert_eq!(response.id, "r1");
        assert_eq!(response.text(), "Hello");
        let calls: Vec<_> = response.tool_calls().cloned().collect();
        assert_eq!(
            calls[0],
            ToolCall { id: "call_a".into(), name: "f".into(), arguments: "{\"x\":1}".into() }
        );
        assert_eq!(calls[1].arguments, "{}");
    }

    #[test]
    fn a_stream_without_finish_is_read_as_stopped() {
        let mut acc = StreamAccumulator::new();
        acc.observe(&StreamEvent::TextDelta { text: "x".into() });
        assert_eq!(acc.output_bytes(), 1);
        assert_eq!(acc.into_response().finish_reason, FinishReason::Stop);
    }
}
