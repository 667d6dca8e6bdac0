//! Relaying a streamed answer to the client: each upstream event is encoded in the client's
//! format and handed to the connection as soon as it arrives — nothing is held back — while
//! usage and timing are collected for the outcome record.
//!
//! The relay owns the end of the request: it records the outcome when the stream finishes,
//! when it breaks (after writing a proper error event, so the client never hangs), or when
//! the client goes away (hyper drops the body, which drops the relay and, with it, the
//! upstream response — cancelling the upstream call).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use router_core::learning::Implicit;
use router_providers::api_error::ApiError;
use router_providers::upstream::EventStream;
use router_providers::usage::StreamAccumulator;
use router_providers::{FinishReason, StreamEvent, Usage, anthropic, openai};

use crate::app::Gateway;
use crate::dispatch::Attempt;
use crate::outcome::{Ending, Served, Trace};

/// What an answer's end says about its quality, if anything.
pub fn implicit_signal(has_output: bool, finish: Option<FinishReason>) -> Option<Implicit> {
    if !has_output {
        Some(Implicit::Empty)
    } else if finish == Some(FinishReason::Length) {
        Some(Implicit::Truncated)
    } else {
        None
    }
}

/// A client format's stream writer.
pub trait Encoding: Send + Unpin + 'static {
    fn encode(&mut self, event: &StreamEvent) -> Bytes;
    /// The closing frames of a stream that ended well.
    fn finish(&mut self) -> Bytes;
    /// The frames that end a stream that broke.
    fn error(&mut self, error: &ApiError) -> Bytes;
}

impl Encoding for openai::StreamEncoder {
    fn encode(&mut self, event: &StreamEvent) -> Bytes {
        openai::StreamEncoder::encode(self, event)
    }
    fn finish(&mut self) -> Bytes {
        openai::StreamEncoder::finish(self)
    }
    fn error(&mut self, error: &ApiError) -> Bytes {
        openai::StreamEncoder::error(self, error)
    }
}

impl Encoding for anthropic::StreamEncoder {
    fn encode(&mut self, event: &StreamEvent) -> Bytes {
        anthropic::StreamEncoder::encode(self, event)
    }
    fn finish(&mut self) -> Bytes {
        anthropic::StreamEncoder::finish(self)
    }
    fn error(&mut self, error: &ApiError) -> Bytes {
        anthropic::StreamEncoder::error(self, error)
    }
}

/// The body of a streamed response.
pub struct Relay<E: Encoding> {
    gateway: Gateway,
    trace: Trace,
    served: Served,
    attempts: Vec<Attempt>,
    first: Option<StreamEvent>,
    rest: EventStream,
    encoder: E,
    seen: StreamAccumulator,
    ttft: Option<Duration>,
    finished: bool,
}

impl<E: Encoding> Relay<E> {
    pub fn new(
        gateway: Gateway,
        trace: Trace,
        served: Served,
        attempts: Vec<Attempt>,
        first: StreamEvent,
        rest: EventStream,
        encoder: E,
    ) -> Self {
        Relay {
            gateway,
            trace,
            served,
            attempts,
            first: Some(first),
            rest,
            encoder,
            seen: StreamAccumulator::new(),
            ttft: None,
            finished: false,
        }
    }

    fn on_event(&mut self, event: &StreamEvent) -> Bytes {
        if self.ttft.is_none()
            && matches!(event, StreamEvent::TextDelta { .. } | StreamEvent::ToolCallStart { .. })
        {
            self.ttft = Some(self.trace.received.elapsed());
        }
        self.seen.observe(event);
        self.encoder.encode(event)
    }

    /// Usage as reported, or estimated when the upstream reported none.
    fn usage(&self) -> (Usage, bool) {
        match self.seen.usage() {
            Some(usage) => (usage, false),
            None => (
                Usage {
                    input_tokens: u64::from(self.trace.features.prompt_tokens),
                    output_tokens: (self.seen.output_bytes() as u64).div_ceil(4),
                },
                true,
            ),
        }
    }

    fn end(&mut self, ending: Ending) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.gateway.finish(
            &self.trace,
            Some(&self.served),
            &self.attempts,
            ending,
            200,
            self.ttft,
        );
    }
}

impl<E: Encoding> Stream for Relay<E> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Some(first) = this.first.take() {
            let bytes = this.on_event(&first);
            if !bytes.is_empty() {
                return Poll::Ready(Some(Ok(bytes)));
            }
        }
        loop {
            match this.rest.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(event))) => {
                    let bytes = this.on_event(&event);
                    if !bytes.is_empty() {
                        return Poll::Ready(Some(Ok(bytes)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(id = %this.trace.id, deployment = %this.served.deployment, %error, "upstream stream broke");
                    this.gateway.registry.deployment(&this.served.deployment).inspect(|(_, d)| {
                        d.counters.record(false, 0.0);
                    });
                    let bytes = this.encoder.error(&ApiError::from_upstream(&error));
                    this.end(Ending::Failed {
                        kind: error.kind().into(),
                        message: error.to_string(),
                    });
                    return Poll::Ready(Some(Ok(bytes)));
                }
                Poll::Ready(None) => {
                    let (usage, estimated) = this.usage();
                    let mut bytes = Vec::new();
                    if estimated {
                        // Formats that report usage at the end get the estimate instead.
                        bytes.extend_from_slice(&this.encoder.encode(&StreamEvent::Usage(usage)));
                    }
                    bytes.extend_from_slice(&this.encoder.finish());
                    let bytes = Bytes::from(bytes);
                    let signal = implicit_signal(this.seen.has_output(), this.seen.finish_reason());
                    this.end(Ending::Answered { usage, estimated, signal });
                    return Poll::Ready(Some(Ok(bytes)));
                }
            }
        }
    }
}

impl<E: Encoding> Drop for Relay<E> {
    fn drop(&mut self) {
        // Dropped before the end: the client went away mid-stream.
        self.end(Ending::Cancelled);
    }
}
