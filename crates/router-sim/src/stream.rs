//! Response bodies sent over time: paced stream chunks, and the injected ways a body can
//! break part-way.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

use crate::StreamBreak;
use crate::stats::Tracker;

/// One piece of a response body.
pub(crate) struct Frame {
    pub bytes: Bytes,
    /// A content chunk (a token's worth of text or tool arguments): paced by the model's
    /// per-chunk delay and counted for [`StreamBreak`]s. Envelope frames (a stream's start
    /// and end events) go out with their neighbours.
    pub content: bool,
}

impl Frame {
    pub(crate) fn content(bytes: impl Into<Bytes>) -> Self {
        Self { bytes: bytes.into(), content: true }
    }

    pub(crate) fn envelope(bytes: impl Into<Bytes>) -> Self {
        Self { bytes: bytes.into(), content: false }
    }
}

/// A whole streamed answer, with the wire format's way of breaking it.
pub(crate) struct StreamPlan {
    pub content_type: &'static str,
    pub frames: Vec<Frame>,
    /// A chunk cut off inside its JSON.
    pub malformed: Bytes,
    /// The provider's in-stream error.
    pub error_event: Bytes,
}

/// How long a disconnecting stream pauses before dropping the connection.
const FLUSH_PAUSE: Duration = Duration::from_millis(10);

/// An injected break: after this many content chunks, break this way.
pub(crate) type Break = (usize, StreamBreak);

/// Streams `plan`, one content chunk every `per_chunk`, breaking as told. The tracker
/// travels with the body, so a client that disconnects mid-stream (dropping the body) is
/// counted as cancelled.
pub(crate) fn respond(
    plan: StreamPlan,
    per_chunk: Duration,
    breaking: Option<Break>,
    tracker: Tracker,
) -> Response {
    let content_total = plan.frames.iter().filter(|f| f.content).count();
    let state = Pacer {
        frames: plan.frames.into(),
        content_sent: 0,
        content_total,
        per_chunk,
        breaking: breaking.map(|(after, how)| (after.min(content_total), how)),
        malformed: plan.malformed,
        error_event: plan.error_event,
        tracker: Some(tracker),
    };
    let body = Body::from_stream(stream::unfold(state, Pacer::next));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(plan.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Sends a complete JSON body, or breaks it the way a broken stream would: cut off with
/// the connection dropped, cut off but properly ended, or stalled half-way. An in-stream
/// error event has no equivalent in a plain JSON body, so `error_instead` is sent.
pub(crate) fn respond_unary(
    json: Vec<u8>,
    breaking: Option<Break>,
    tracker: Tracker,
    error_instead: impl FnOnce() -> Response,
) -> Response {
    let Some((_, how)) = breaking else {
        tracker.complete();
        return ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    };
    let body = Bytes::from(json);
    let half = body.slice(..body.len() / 2);
    match how {
        StreamBreak::ErrorEvent => {
            tracker.fail();
            error_instead()
        }
        StreamBreak::MalformedChunk => {
            tracker.fail();
            ([(header::CONTENT_TYPE, "application/json")], half).into_response()
        }
        StreamBreak::Disconnect | StreamBreak::Stall => {
            let rest = body.slice(body.len() / 2..);
            let plan = StreamPlan {
                content_type: "application/json",
                frames: vec![Frame::content(half), Frame::content(rest)],
                malformed: Bytes::new(),
                error_event: Bytes::new(),
            };
            respond(plan, Duration::ZERO, Some((1, how)), tracker)
        }
    }
}

struct Pacer {
    frames: VecDeque<Frame>,
    content_sent: usize,
    content_total: usize,
    per_chunk: Duration,
    breaking: Option<Break>,
    malformed: Bytes,
    error_event: Bytes,
    /// `None` once the stream has ended one way or another.
    tracker: Option<Tracker>,
}

impl Pacer {
    async fn next(mut self) -> Option<(Result<Bytes, io::Error>, Self)> {
        let tracker = self.tracker.take()?;
        let Some(frame) = self.frames.pop_front() else {
            tracker.complete();
            return None;
        };
        if let Some((after, how)) = self.breaking
            && self.content_sent == after
            && (frame.content || self.content_sent == self.content_total)
        {
            return self.break_now(how, tracker).await;
        }
        if frame.content {
            if self.content_sent > 0 && !self.per_chunk.is_zero() {
                // The tracker is back in place before sleeping, so a client leaving now
                // still counts as a cancellation.
                self.tracker = Some(tracker);
                tokio::time::sleep(self.per_chunk).await;
                self.content_sent += 1;
                return Some((Ok(frame.bytes), self));
            }
            self.content_sent += 1;
        }
        self.tracker = Some(tracker);
        Some((Ok(frame.bytes), self))
    }

    async fn break_now(
        mut self,
        how: StreamBreak,
        tracker: Tracker,
    ) -> Option<(Result<Bytes, io::Error>, Self)> {
        self.frames.clear();
        match how {
            StreamBreak::Disconnect => {
                tracker.fail();
                // Pausing first lets hyper flush what was sent so far (it flushes when the
                // body is pending); otherwise the chunks before the break could be lost with
                // the connection and the break would come at an unpredictable point.
                tokio::time::sleep(FLUSH_PAUSE).await;
                // An error from the body makes hyper drop the connection without ending the
                // chunked body: the client sees the stream cut off.
                Some((Err(io::Error::other("injected disconnect")), self))
            }
            StreamBreak::MalformedChunk => {
                tracker.fail();
                let bytes = std::mem::take(&mut self.malformed);
                Some((Ok(bytes), self))
            }
            StreamBreak::ErrorEvent => {
                tracker.fail();
                let bytes = std::mem::take(&mut self.error_event);
                Some((Ok(bytes), self))
            }
            StreamBreak::Stall => {
                let _held = tracker;
                std::future::pending::<()>().await;
                None
            }
        }
    }
}
