//! Relaying a streamed answer to the client: each upstream event is encoded in the client's
//! format and handed to the connection as soon as it arrives — nothing waits for more input —
//! while usage and timing are collected for the outcome record.
//!
//! Events that arrive together leave together. The upstream connection's task hands the
//! relay one event at a time even when a single read brought many, and the server writes
//! whatever the relay has each time the relay has nothing more: without care that is one
//! write system call per event (30 for a short burst). So once the first token has gone out,
//! the relay gathers events while more are ready, giving the connection's task a couple of
//! turns of the scheduler to deliver them (never waiting on the network), and writes them as
//! one chunk as soon as none comes. Those turns are only given in a burst — an event that
//! came less than [`BURST_GAP`] after the one before: a model that paces its tokens sends
//! them further apart, and each then goes out as it comes, without the two idle passes
//! through the server's connection that a turn costs.
//!
//! The relay owns the end of the request: it records the outcome when the stream finishes,
//! when it breaks (after writing a proper error event, so the client never hangs), or when
//! the client goes away (hyper drops the body, which drops the relay and, with it, the
//! upstream response — cancelling the upstream call).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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
    /// Appends the frames for one event to `out`.
    fn encode_into(&mut self, event: &StreamEvent, out: &mut Vec<u8>);
    /// The closing frames of a stream that ended well.
    fn finish(&mut self) -> Bytes;
    /// The frames that end a stream that broke.
    fn error(&mut self, error: &ApiError) -> Bytes;
}

impl Encoding for openai::StreamEncoder {
    fn encode_into(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        openai::StreamEncoder::encode_into(self, event, out)
    }
    fn finish(&mut self) -> Bytes {
        openai::StreamEncoder::finish(self)
    }
    fn error(&mut self, error: &ApiError) -> Bytes {
        openai::StreamEncoder::error(self, error)
    }
}

impl Encoding for anthropic::StreamEncoder {
    fn encode_into(&mut self, event: &StreamEvent, out: &mut Vec<u8>) {
        anthropic::StreamEncoder::encode_into(self, event, out)
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
    /// Encoded events not yet handed to the connection.
    batch: Vec<u8>,
    /// Scheduler turns given up, with events gathered, since the last event arrived.
    turns: u8,
    /// When the last event arrived, and whether it came in a burst.
    last_event: Option<Instant>,
    in_burst: bool,
    /// [`BURST_GAP`], but for tests that need their events to count as a burst, or not,
    /// however slowly they run.
    burst_gap: Duration,
}

/// A gathered batch is written once it reaches this size, whatever else is ready.
const MAX_BATCH: usize = 16 * 1024;
/// Room a batch starts with: a few events' frames, so that gathering them does not grow it
/// two or three times over.
const BATCH_BYTES: usize = 1024;
/// Events closer together than this are a burst, worth gathering into one write. A model
/// streams a token every few milliseconds at the fastest; an upstream that has its whole
/// answer (or a cache, or a batching proxy) sends many within microseconds.
const BURST_GAP: Duration = Duration::from_micros(500);
/// Turns to give the upstream connection's task before writing what was gathered. Measured:
/// the HTTP client passes on an event it has already read within two turns; with one, a
/// 30-event burst still went out in 29 writes, with two in one.
const TURNS: u8 = 2;

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
            batch: Vec::new(),
            turns: 0,
            last_event: None,
            in_burst: false,
            burst_gap: BURST_GAP,
        }
    }

    /// Adds an event's frames to the batch; true when the batch should go out now: it holds
    /// the first token (time to first token is what the client waits on) or is full.
    fn gather(&mut self, event: &StreamEvent) -> bool {
        let now = Instant::now();
        self.in_burst =
            self.last_event.is_some_and(|last| now.duration_since(last) < self.burst_gap);
        self.last_event = Some(now);
        let before = self.ttft.is_some();
        if self.batch.capacity() == 0 {
            // A batch leaves as the body's next chunk, taking its buffer along.
            self.batch.reserve(BATCH_BYTES);
        }
        self.on_event(event);
        (!before && self.ttft.is_some()) || self.batch.len() >= MAX_BATCH
    }

    fn take_batch(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.batch))
    }

    /// Notes an event and appends its frames to the batch.
    fn on_event(&mut self, event: &StreamEvent) {
        if self.ttft.is_none()
            && matches!(event, StreamEvent::TextDelta { .. } | StreamEvent::ToolCallStart { .. })
        {
            self.ttft = Some(self.trace.received.elapsed());
        }
        self.seen.observe(event);
        self.encoder.encode_into(event, &mut self.batch);
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
        if let Some(first) = this.first.take()
            && this.gather(&first)
        {
            return Poll::Ready(Some(Ok(this.take_batch())));
        }
        loop {
            match this.rest.as_mut().poll_next(cx) {
                Poll::Pending => {
                    if this.batch.is_empty() {
                        this.turns = 0;
                        return Poll::Pending;
                    }
                    if this.turns < TURNS && this.in_burst {
                        // More events may already be read and waiting in the connection's
                        // task, which runs before this one is polled again.
                        this.turns += 1;
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    // Nothing arrived during those turns: what there is goes out now.
                    this.turns = 0;
                    return Poll::Ready(Some(Ok(this.take_batch())));
                }
                Poll::Ready(Some(Ok(event))) => {
                    this.turns = 0;
                    if this.gather(&event) {
                        return Poll::Ready(Some(Ok(this.take_batch())));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    tracing::warn!(id = %this.trace.id, deployment = %this.served.deployment, %error, "upstream stream broke");
                    this.gateway.registry.deployment(&this.served.deployment).inspect(|(_, d)| {
                        d.counters.record(false, 0.0);
                    });
                    let bytes = this.encoder.error(&ApiError::from_upstream(&error));
                    this.batch.extend_from_slice(&bytes);
                    this.end(Ending::Failed {
                        kind: error.kind().into(),
                        message: error.to_string(),
                    });
                    return Poll::Ready(Some(Ok(this.take_batch())));
                }
                Poll::Ready(None) => {
                    let (usage, estimated) = this.usage();
                    if estimated {
                        // Formats that report usage at the end get the estimate instead.
                        this.encoder.encode_into(&StreamEvent::Usage(usage), &mut this.batch);
                    }
                    let bytes = this.encoder.finish();
                    this.batch.extend_from_slice(&bytes);
                    let signal = implicit_signal(this.seen.has_output(), this.seen.finish_reason());
                    this.end(Ending::Answered { usage, estimated, signal });
                    return Poll::Ready(Some(Ok(this.take_batch())));
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

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::Wake;
    use std::time::Instant;

    use router_providers::chat::ResponseMeta;
    use router_providers::{ChatRequest, Message, UpstreamError};
    use router_store::{Api, Store, WriterOptions, spawn_writer};

    use super::*;
    use crate::config::Config;

    const CONFIG: &str = r#"
[dashboard]
enabled = false

[store]
url = "sqlite::memory:"

[[models]]
name = "small"
provider = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
input_price = 0.15
output_price = 0.6
"#;

    /// Hands out one event per turn, the way a connection task does: after each event the
    /// next poll is `Pending` (with a wake-up, as the task has more), until `quiet` is
    /// reached, from which point it stays `Pending` with no wake-up: waiting for the network.
    struct Upstream {
        events: VecDeque<StreamEvent>,
        ready: bool,
        quiet: bool,
    }

    impl Stream for Upstream {
        type Item = Result<StreamEvent, UpstreamError>;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            if !self.ready {
                if self.events.is_empty() && self.quiet {
                    return Poll::Pending;
                }
                self.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = false;
            Poll::Ready(self.events.pop_front().map(Ok))
        }
    }

    #[derive(Default)]
    struct Woken(AtomicBool);
    impl Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    async fn relay(events: Vec<StreamEvent>, quiet: bool) -> Relay<openai::StreamEncoder> {
        let config =
            Config::parse(CONFIG, Path::new("test.toml"), &HashMap::<String, String>::new())
                .expect("valid config");
        let store = Store::connect(&config.store.url).await.expect("store");
        store.migrate().await.expect("schema");
        let (writer, _task) = spawn_writer(store.clone(), WriterOptions::default());
        let gateway = Gateway::new(config, store, writer).expect("gateway");
        let request = ChatRequest {
            model: "small".into(),
            messages: vec![Message::text(router_core::Role::User, "Say hello.")],
            ..ChatRequest::default()
        };
        let routed = gateway.route(&request, Instant::now()).await.expect("routed");
        let trace = Trace {
            id: routed.id.clone(),
            api: Api::OpenAi,
            received: routed.received,
            features: routed.decision.features,
            source: routed.decision.source,
            sketch: routed.sketch,
        };
        let served = Served {
            model: "small".into(),
            deployment: "small#1".into(),
            price: router_core::Price::default(),
        };
        let meta = ResponseMeta { id: "chatcmpl-1".into(), model: "small".into(), created: 1 };
        let upstream = Upstream { events: events.into(), ready: true, quiet };
        let mut relay = Relay::new(
            gateway,
            trace,
            served,
            Vec::new(),
            StreamEvent::Start { id: "up-1".into(), model: "small".into() },
            Box::pin(upstream),
            openai::StreamEncoder::new(meta, false),
        );
        // The upstream here hands over its events back to back: a burst, however slowly
        // the test runs.
        relay.burst_gap = Duration::from_secs(3600);
        relay
    }

    /// Polls until the relay ends or waits with no wake-up to come; returns what it wrote.
    fn drain(relay: &mut Relay<openai::StreamEncoder>) -> Vec<String> {
        let woken = Arc::new(Woken::default());
        let waker = std::task::Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        let mut chunks = Vec::new();
        loop {
            woken.0.store(false, Ordering::SeqCst);
            match Pin::new(&mut *relay).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    chunks.push(String::from_utf8_lossy(&bytes).into_owned())
                }
                Poll::Ready(None) => return chunks,
                Poll::Pending if woken.0.load(Ordering::SeqCst) => {}
                Poll::Pending => return chunks,
            }
        }
    }

    fn words(n: usize) -> Vec<StreamEvent> {
        (0..n).map(|i| StreamEvent::TextDelta { text: format!("w{i} ") }).collect()
    }

    #[tokio::test]
    async fn events_that_arrive_together_leave_together_after_the_first_token() {
        let mut events = words(20);
        events.push(StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None });
        let mut relay = relay(events, false).await;
        let chunks = drain(&mut relay);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert!(chunks[0].contains("\"role\":\"assistant\"") && chunks[0].contains("w0 "));
        assert!(!chunks[0].contains("w1 "), "the first token goes out on its own");
        let rest = &chunks[1];
        let positions: Vec<usize> =
            (1..20).map(|i| rest.find(&format!("w{i} ")).expect("every word")).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "in order");
        assert!(rest.ends_with("data: [DONE]\n\n"));
    }

    #[tokio::test]
    async fn events_far_apart_go_out_one_by_one_as_they_come() {
        let mut events = words(20);
        events.push(StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None });
        let mut relay = relay(events, false).await;
        // As if every event came long after the one before, as a paced model's tokens do.
        relay.burst_gap = Duration::ZERO;
        let chunks = drain(&mut relay);
        // The first token with the opening, each other word alone, the finish, `[DONE]`.
        assert_eq!(chunks.len(), 22, "{chunks:#?}");
        for (i, chunk) in chunks[..20].iter().enumerate() {
            assert!(chunk.contains(&format!("w{i} ")), "{chunk}");
            assert!(!chunk.contains(&format!("w{} ", i + 1)), "{chunk}");
        }
        assert!(chunks[20].contains("\"finish_reason\":\"stop\""));
        assert_eq!(chunks[21], "data: [DONE]\n\n");
    }

    #[tokio::test]
    async fn what_was_gathered_goes_out_when_the_upstream_goes_quiet() {
        let mut relay = relay(words(3), true).await;
        let chunks = drain(&mut relay);
        assert_eq!(chunks.len(), 2, "{chunks:#?}");
        assert!(chunks[0].contains("w0 "));
        assert!(chunks[1].contains("w1 ") && chunks[1].contains("w2 "));
        assert!(!relay.finished, "the stream is still open, waiting for the upstream");
    }
}
