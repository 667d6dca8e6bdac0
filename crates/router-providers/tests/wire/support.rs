//! Helpers shared by the wire tests.

use router_providers::sse::{SseEvent, SseParser};
use router_providers::{ResponseMeta, StreamEvent, UpstreamError};
use serde_json::Value;

pub fn meta() -> ResponseMeta {
    ResponseMeta { id: "resp-1".into(), model: "client-model".into(), created: 1_700_000_000 }
}

/// Parses SSE frames written by an encoder.
pub fn frames(bytes: &[u8]) -> Vec<SseEvent> {
    SseParser::parse_all(bytes).unwrap()
}

/// The JSON of each data frame (`[DONE]` as the string "[DONE]").
pub fn data_json(bytes: &[u8]) -> Vec<Value> {
    frames(bytes)
        .into_iter()
        .map(|event| {
            if event.data == "[DONE]" {
                Value::String(event.data)
            } else {
                serde_json::from_str(&event.data).unwrap()
            }
        })
        .collect()
}

/// Decodes a whole upstream stream, fed in pieces split at `splits`; returns the events and
/// whether the decoder saw the end marker.
pub fn decode_split<D>(
    body: &[u8],
    splits: &[usize],
    mut decoder: D,
    feed: impl Fn(&mut D, &[u8], &mut Vec<StreamEvent>) -> Result<(), UpstreamError>,
    finished: impl Fn(&D) -> bool,
) -> (Vec<StreamEvent>, Result<(), UpstreamError>, bool) {
    let mut out = Vec::new();
    let mut start = 0;
    let mut result = Ok(());
    for &split in splits.iter().chain(std::iter::once(&body.len())) {
        if result.is_err() {
            break;
        }
        result = feed(&mut decoder, &body[start..split], &mut out);
        start = split;
    }
    let done = finished(&decoder);
    (out, result, done)
}

/// Feeds `body` split at every single byte boundary and asserts the decoded events never
/// change; returns them.
pub fn decode_at_every_split<D: Default>(
    body: &[u8],
    feed: impl Fn(&mut D, &[u8], &mut Vec<StreamEvent>) -> Result<(), UpstreamError> + Copy,
    finished: impl Fn(&D) -> bool + Copy,
) -> Vec<StreamEvent> {
    let (whole, result, done) = decode_split(body, &[], D::default(), feed, finished);
    result.unwrap();
    assert!(done, "the stream's end marker was not recognised");
    for split in 0..=body.len() {
        let (events, result, done) = decode_split(body, &[split], D::default(), feed, finished);
        result.unwrap();
        assert!(done, "split at {split}");
        assert_eq!(events, whole, "split at byte {split}");
    }
    whole
}
