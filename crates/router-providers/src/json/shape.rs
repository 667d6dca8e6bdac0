//! The shape of a stream's text events, remembered so that the next ones can be read by
//! their text alone.
//!
//! A server writes every event of a stream that carries text the same way, byte for byte,
//! but for the text: the same id, model, creation time and fingerprint, the same keys in the
//! same order. So once an event carrying text and nothing else has been read in full, a
//! later event with exactly the same bytes around one JSON string is that event with
//! another text, and the string is all there is left to read.

use std::borrow::Cow;
use std::ops::Range;

use super::scan::Scan;

/// The bytes around the text of the last event that carried text and nothing else.
///
/// One string before the text may differ (Ollama stamps every line with its own
/// `created_at`), and so may a last member whose value is a string the reader skips (OpenAI
/// pads every chunk with an `obfuscation` string of its own).
#[derive(Debug, Default)]
pub(crate) struct TextShape {
    /// The bytes before the text, or before the string that may differ ahead of it; empty
    /// until an event is remembered (an event starts with `{`).
    lead: Vec<u8>,
    /// Whether a string that may differ follows `lead`, and then `before`.
    first_string: bool,
    /// The bytes between that string and the text.
    before: Vec<u8>,
    /// The bytes after the text, up to the last member's string if it may differ.
    between: Vec<u8>,
    /// Whether a string follows `between` (the last member's, which may differ), and then
    /// `after`.
    last_string: bool,
    after: Vec<u8>,
}

impl TextShape {
    /// Remembers `data`, an event that carries text and nothing else: its text's string is
    /// at `text_at`; a string before it that may differ from event to event, if any, at
    /// `first_string_at`; and the string value of its last member, if one the reader skips,
    /// at `last_string_at`.
    pub(crate) fn remember(
        &mut self,
        data: &str,
        text_at: Range<usize>,
        first_string_at: Option<Range<usize>>,
        last_string_at: Option<Range<usize>>,
    ) {
        let bytes = data.as_bytes();
        let (lead, before) = match first_string_at.filter(|at| at.end <= text_at.start) {
            Some(at) => (..at.start, at.end..text_at.start),
            None => (..text_at.start, text_at.start..text_at.start),
        };
        let (between, after) = match last_string_at.filter(|at| at.start >= text_at.end) {
            Some(at) => (text_at.end..at.start, at.end..bytes.len()),
            None => (text_at.end..bytes.len(), bytes.len()..bytes.len()),
        };
        self.first_string = before.start > lead.end;
        self.last_string = after.start > between.end;
        self.lead.clear();
        self.lead.extend_from_slice(&bytes[lead]);
        // What follows a string's closing quote is read after any whitespace.
        self.before.clear();
        self.before.extend_from_slice(bytes[before].trim_ascii_start());
        self.between.clear();
        self.between.extend_from_slice(bytes[between].trim_ascii_start());
        self.after.clear();
        self.after.extend_from_slice(&bytes[after]);
    }

    /// The text of `data`, if it is the remembered event with another string for its text.
    pub(crate) fn text_of<'a>(&self, data: &'a str) -> Option<Cow<'a, str>> {
        let bytes = data.as_bytes();
        let end = bytes.len().checked_sub(self.after.len())?;
        if self.lead.is_empty()
            || end < self.lead.len()
            || !bytes.starts_with(&self.lead)
            || !bytes.ends_with(&self.after)
        {
            return None;
        }
        let mut scan = Scan::new(data.get(self.lead.len()..end)?);
        if self.first_string {
            scan.string()?;
            scan.exactly(&self.before)?;
        }
        let text = scan.string()?;
        scan.exactly(&self.between)?;
        if self.last_string {
            scan.string()?;
        }
        scan.at_end().then_some(text)
    }
}

#[cfg(test)]
impl TextShape {
    /// Whether an event has been remembered.
    pub(crate) fn remembers(&self) -> bool {
        !self.lead.is_empty()
    }

    /// Whether the remembered event's first string may differ.
    pub(crate) fn lets_the_first_string_vary(&self) -> bool {
        self.first_string
    }

    /// Whether the remembered event's last string may differ.
    pub(crate) fn lets_the_last_string_vary(&self) -> bool {
        self.last_string
    }
}

/// Checks the reading by shape against the full reader: `base`, a remembered event whose
/// text's string stands at `at`, with other texts must be taken and read as `full` reads
/// it; with something else where the text was must not be; and nothing one edit away from
/// either may be read differently. `made` turns the events a text makes into what `full`
/// returns.
#[cfg(test)]
pub(crate) fn check_text_shape<T: PartialEq + std::fmt::Debug, E: std::fmt::Debug>(
    shape: &TextShape,
    base: &str,
    at: Range<usize>,
    made: impl Fn(Vec<crate::chat::StreamEvent>) -> T,
    full: impl Fn(&str) -> Result<T, E>,
) {
    use crate::chat::StreamEvent;
    let with = |text: &str| format!("{}{text}{}", &base[..at.start], &base[at.end..]);
    let same_shape = [
        "\"other words\"",
        "\"\"",
        r#"" \"quoted\"\n caf\u00e9 \ud83d\ude00 中文 ""#,
        " \"spaced\" ",
    ]
    .map(with);
    let other = ["null", "1", "\"a\" \"b\"", "\"a\",\"text\":\"b\"", "\"unterminated"].map(with);
    super::scan::check_fast_reader(
        &same_shape.iter().map(String::as_str).collect::<Vec<_>>(),
        &other.iter().map(String::as_str).collect::<Vec<_>>(),
        |data| {
            let text = shape.text_of(data)?;
            let events = if text.is_empty() {
                vec![]
            } else {
                vec![StreamEvent::TextDelta { text: text.into_owned() }]
            };
            Some(made(events))
        },
        full,
    );
}
