//! The last few requests a server received, kept for tests to assert on.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use serde_json::Value;

use crate::Endpoint;

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The endpoint that took it.
    pub endpoint: Endpoint,
    /// The HTTP method.
    pub method: Method,
    /// The request path.
    pub path: String,
    /// All request headers, credentials included: a test may want to check them.
    pub headers: HeaderMap,
    /// The raw body (shared, not copied).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A bounded ring of recent requests.
#[derive(Debug)]
pub(crate) struct Recorder {
    limit: usize,
    ring: Mutex<VecDeque<RecordedRequest>>,
}

impl Recorder {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, ring: Mutex::new(VecDeque::with_capacity(limit.min(1024))) }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.limit > 0
    }

    pub(crate) fn push(&self, request: RecordedRequest) {
        if !self.enabled() {
            return;
        }
        // A poisoned lock only means another request panicked mid-push; the ring is still
        // a valid VecDeque, so keep recording.
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == self.limit {
            ring.pop_front();
        }
        ring.push_back(request);
    }

    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    pub(crate) fn clear(&self) {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
