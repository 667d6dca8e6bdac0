//! Server-Sent Events: an incremental parser (bytes in, events out, however the bytes were
//! split by the network) and the writer for the frames the gateway sends.
//!
//! The parser follows the WHATWG event-stream rules: lines end in LF, CRLF or a lone CR;
//! `data:` lines accumulate, joined by newlines; lines starting with `:` are comments
//! (keep-alives); a blank line dispatches the event; an event without data is dropped; a
//! leading byte-order mark is ignored; an unfinished event at the end of the stream is
//! discarded.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::chat::StreamEvent;
use crate::error::UpstreamError;

/// Longest line the parser buffers. An upstream that sends more without a line break is
/// broken or hostile, and holding it all would let it exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `None` for the default `message` type.
    pub event: Option<String>,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// The `id:` field, when the event had one.
    pub id: Option<String>,
}

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event-stream line longer than {MAX_LINE_BYTES} bytes")]
pub struct LineTooLong;

/// Incremental event-stream parser. Feed it chunks as they arrive; it keeps whatever is
/// unfinished (a partial line, a CR that may be followed by LF, a partial event) for the
/// next chunk.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    seen_first_line: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses `chunk`, appending every event it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), LineTooLong> {
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(after_lf) = rest.strip_prefix(b"\n") {
                rest = after_lf;
            }
        }
        while let Some(end) = memchr::memchr2(b'\n', b'\r', rest) {
            if self.line.is_empty() {
                // The whole line lies in this chunk (the usual case): read it where it is.
                if end > MAX_LINE_BYTES {
                    return Err(LineTooLong);
                }
                self.process_line(&rest[..end], out);
            } else {
                self.push_line_bytes(&rest[..end])?;
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
                self.line = line;
                self.line.clear();
            }
            let terminator = rest[end];
            rest = &rest[end + 1..];
            if terminator == b'\r' {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.push_line_bytes(rest)
    }

    /// Convenience for tests and one-shot bodies: parse a whole buffer.
    pub fn parse_all(body: &[u8]) -> Result<Vec<SseEvent>, LineTooLong> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(body, &mut out)?;
        Ok(out)
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + bytes.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn process_line(&mut self, raw: &[u8], out: &mut Vec<SseEvent>) {
        // `from_utf8` checks ASCII a word at a time; `from_utf8_lossy` walks every byte,
        // and is only needed for the rare line that is not valid UTF-8.
        let decoded = match std::str::from_utf8(raw) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(raw),
        };
        let mut line: &str = &decoded;
        if !self.seen_first_line {
            self.seen_first_line = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // An id containing NUL is ignored by the spec, so that it cannot truncate.
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
    }

    /// Takes back a dispatched event's data buffer, to collect the next event's data in
    /// without allocating, unless data is being collected already.
    pub fn recycle(&mut self, mut data: String) {
        if self.data.capacity() == 0 {
            data.clear();
            self.data = data;
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event: event.filter(|name| !name.is_empty()),
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        });
    }
}

/// One SSE wire format's events, turned into neutral ones. [`SseDecoder`] feeds it.
pub trait SseFormat: Default {
    /// Decodes one event, appending neutral events to `out`.
    fn decode(&mut self, event: &SseEvent, out: &mut Vec<StreamEvent>)
    -> Result<(), UpstreamError>;

    /// Whether the stream's terminal event has arrived.
    fn finished(&self) -> bool;
}

/// A stream decoder for an SSE wire format: an upstream's bytes in, one chunk at a time;
/// neutral events out. Complete only once the format's terminal event has arrived.
#[derive(Debug, Default)]
pub struct SseDecoder<F> {
    parser: SseParser,
    /// Reused between chunks, so decoding allocates no event list per chunk.
    scratch: Vec<SseEvent>,
    format: F,
}

impl<F: SseFormat> SseDecoder<F> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the terminal event has arrived.
    pub fn is_finished(&self) -> bool {
        self.format.finished()
    }

    /// Decodes `chunk`, appending events to `out`, until the stream has finished or an
    /// event fails to decode (a provider's error event is returned as its typed error);
    /// events decoded before that are in `out`. A line too long to be a real event is a
    /// protocol error.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), UpstreamError> {
        let mut events = std::mem::take(&mut self.scratch);
        let mut result = self
            .parser
            .feed(chunk, &mut events)
            .map_err(|error| UpstreamError::Protocol { message: error.to_string() });
        if result.is_ok() {
            for event in &events {
                if self.format.finished() {
                    break;
                }
                if let Err(error) = self.format.decode(event, out) {
                    result = Err(error);
                    break;
                }
            }
        }
        // The next event's data goes into this one's buffer: no allocation per event.
        if let Some(last) = events.pop() {
            self.parser.recycle(last.data);
        }
        events.clear();
        self.scratch = events;
        result
    }
}

/// A `data:` frame (one `data:` line per line of `data`, so multi-line data survives).
pub fn data_frame(data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    put_data(&mut out, data);
    out.put_u8(b'\n');
    out.freeze()
}

/// Room for a typical frame an encoder writes (a few words of text in their envelope), so
/// writing one does not grow the buffer: a buffer that starts empty is allocated two or
/// three times over as a frame is written into it.
pub(crate) const FRAME_BYTES: usize = 256;

/// Appends `value` as one frame of JSON, named `event` when given. JSON text holds no raw
/// line break, so the data is a single `data:` line. Written straight into `out`: the
/// encoders send a frame for every few tokens of every stream.
pub(crate) fn put_json_frame(out: &mut Vec<u8>, event: Option<&str>, value: &impl Serialize) {
    let start = out.len();
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Borrowed strings and numbers always serialise; were one not to, no half frame is sent.
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
        return;
    }
    out.extend_from_slice(b"\n\n");
}

/// A named event: `event: <name>` followed by its data.
pub fn event_frame(name: &str, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(name.len() + data.len() + 16);
    out.put_slice(b"event: ");
    out.put_slice(name.as_bytes());
    out.put_u8(b'\n');
    put_data(&mut out, data);
    out.put_u8(b'\n');
    out.freeze()
}

/// A comment frame; clients ignore it, proxies see traffic (a keep-alive).
pub fn comment_frame(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(text.len() + 4);
    for line in split_lines(text) {
        out.put_u8(b':');
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

fn put_data(out: &mut BytesMut, data: &str) {
    for line in split_lines(data) {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
}

/// Splits on every line terminator the parser recognises, so that no raw CR or LF can end up
/// inside a field and change the framing.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(end) => {
                let skip = if current[end..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&current[end + skip..]);
                Some(&current[..end])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent { event: name.map(str::to_owned), data: data.to_owned(), id: None }
    }

    /// A stream exercising every rule at once: BOM, comments, CRLF and lone CR endings,
    /// named events, multi-line data, a field without a colon, an event without data, a
    /// space-less value, multi-byte UTF-8, and an unfinished event at the end.
    const TRICKY: &str = "\u{feff}: keep-alive\r\n\
        data: first\r\n\r\n\
        event: message_start\rdata: {\"a\":1}\r\rdata: line one\ndata:line two\n\
        data\n\n\
        event: ignored-without-data\n\n\
        : another comment\n\
        retry: 100\n\
        data: 中文 ünïcödé 🚀\n\n\
        event: ping\ndata: {}\n\n\
        data: [DONE]\n\n\
        data: unfinished";

    fn tricky_expected() -> Vec<SseEvent> {
        vec![
            event(None, "first"),
            event(Some("message_start"), "{\"a\":1}"),
            event(None, "line one\nline two\n"),
            event(None, "中文 ünïcödé 🚀"),
            event(Some("ping"), "{}"),
            event(None, "[DONE]"),
        ]
    }

    #[test]
    fn parses_a_stream_with_every_rule() {
        assert_eq!(SseParser::parse_all(TRICKY.as_bytes()).unwrap(), tricky_expected());
    }

    #[test]
    fn any_single_split_point_gives_the_same_events() {
        let bytes = TRICKY.as_bytes();
        for split in 0..=bytes.len() {
            let mut parser = SseParser::new();
            let mut out = Vec::new();
            parser.feed(&bytes[..split], &mut out).unwrap();
            parser.feed(&bytes[split..], &mut out).unwrap();
            assert_eq!(out, tricky_expected(), "split at byte {split}");
        }
    }

    #[test]
    fn every_pair_of_split_points_gives_the_same_events() {
        let bytes = TRICKY.as_bytes();
        for first in 0..=bytes.len() {
            for second in first..=bytes.len() {
                let mut parser = SseParser::new();
                let mut out = Vec::new();
                for piece in [&bytes[..first], &bytes[first..second], &bytes[second..]] {
                    parser.feed(piece, &mut out).unwrap();
                }
                assert_eq!(out, tricky_expected(), "split at {first} and {second}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_events() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for byte in TRICKY.as_bytes() {
            parser.feed(std::slice::from_ref(byte), &mut out).unwrap();
        }
        assert_eq!(out, tricky_expected());
    }

    #[test]
    fn a_cr_at_a_chunk_end_followed_by_an_empty_chunk_still_pairs_with_lf() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in [&b"data: x\r"[..], b"", b"\n", b"\r\n"] {
            parser.feed(piece, &mut out).unwrap();
        }
        assert_eq!(out, vec![event(None, "x")]);
    }

    #[test]
    fn keeps_the_last_event_id() {
        let events = SseParser::parse_all(b"id: 7\ndata: a\n\ndata: b\n\n").unwrap();
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn refuses_an_endless_line() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut result = Ok(());
        for _ in 0..=MAX_LINE_BYTES / chunk.len() {
            result = parser.feed(&chunk, &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(LineTooLong));
    }

    #[test]
    fn refuses_a_line_too_long_that_arrives_whole() {
        let mut chunk = vec![b'a'; MAX_LINE_BYTES + 1];
        chunk.push(b'\n');
        assert_eq!(SseParser::new().feed(&chunk, &mut Vec::new()), Err(LineTooLong));
    }

    #[test]
    fn bytes_that_are_not_utf8_become_replacement_characters() {
        let events = SseParser::parse_all(b"data: caf\xe9 \xff!\n\n").unwrap();
        assert_eq!(events, vec![event(None, "caf\u{fffd} \u{fffd}!")]);
    }

    #[test]
    fn writer_output_parses_back() {
        let mut stream = Vec::new();
        stream.extend_from_slice(&comment_frame("keep-alive"));
        stream.extend_from_slice(&data_frame("{\"x\":1}"));
        stream.extend_from_slice(&event_frame("content_block_delta", "two\nlines\r\nand\rmore"));
        stream.extend_from_slice(&data_frame("[DONE]"));
        assert_eq!(
            SseParser::parse_all(&stream).unwrap(),
            vec![
                event(None, "{\"x\":1}"),
                event(Some("content_block_delta"), "two\nlines\nand\nmore"),
                event(None, "[DONE]"),
            ]
        );
    }

    #[test]
    fn writer_frames_are_exact() {
        assert_eq!(&data_frame("[DONE]")[..], b"data: [DONE]\n\n");
        assert_eq!(&event_frame("ping", "{}")[..], b"event: ping\ndata: {}\n\n");
        assert_eq!(&comment_frame("hi")[..], b":hi\n\n");
    }
}
