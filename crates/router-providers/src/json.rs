//! Small JSON helpers shared by the wire formats.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use crate::chat::{ChatRequest, ContentPart};

pub(crate) mod scan;
pub(crate) mod shape;

/// Reads `body` as JSON. Valid UTF-8 (nearly every body) is checked once, in one fast
/// pass, and then parsed as text: `serde_json::from_slice` checks every string it meets
/// again, one call per string, which cost more than the whole pass on an ordinary chat body.
/// A body that is not UTF-8 goes to `from_slice`, for the same error (with line and column)
/// it has always given.
pub(crate) fn from_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// Room for a request's body written for an upstream: its text, about 40 bytes a message
/// around it, and the parameters.
pub(crate) fn body_capacity(request: &ChatRequest) -> usize {
    request.messages.iter().map(|m| text_bytes(&m.content) + 40).sum::<usize>()
        + request.tools.len() * 256
        + 256
}

/// Appends the fields of `value`, a struct that serialises to a JSON object with at least
/// one field, to the object open in `out` after at least one field of its own, and closes
/// that object: the opening brace serde writes, turned into a comma, joins the two.
pub(crate) fn put_fields(out: &mut Vec<u8>, value: &impl Serialize) -> serde_json::Result<()> {
    let joint = out.len();
    serde_json::to_writer(&mut *out, value)?;
    debug_assert!(out.get(joint) == Some(&b'{') && out.get(joint + 1) != Some(&b'}'));
    out[joint] = b',';
    Ok(())
}

/// The bytes of text in `parts` (texts, tool calls' names and arguments): most of what
/// writing them as JSON takes.
pub(crate) fn text_bytes(parts: &[ContentPart]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            ContentPart::Text { text } => text.len(),
            ContentPart::ToolCall(call) => call.id.len() + call.name.len() + call.arguments.len(),
            _ => 0,
        })
        .sum()
}

/// Appends `text` as a JSON string, quotes included, escaped exactly as serde_json escapes
/// it: `"` and `\\`, and the control characters below U+0020 (`\n`, `\t` and the like by
/// name, the rest as `\u00XX`); everything else, non-ASCII included, goes through as it is.
///
/// serde_json looks each byte up in a table before copying it, about five instructions a
/// byte, which made escaping the largest single cost of writing an answer. Text rarely needs
/// an escape, so this looks at eight bytes at a time and copies whole runs between escapes.
pub(crate) fn put_str(out: &mut Vec<u8>, text: &str) {
    out.reserve(text.len() + 2);
    out.push(b'"');
    put_escaped(out, text);
    out.push(b'"');
}

/// Appends `text` escaped as in a JSON string, without the quotes: for a string written
/// in pieces.
pub(crate) fn put_escaped(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut run_start = 0;
    let mut at = 0;
    while let Some(found) = next_escape(bytes, at) {
        out.extend_from_slice(&bytes[run_start..found]);
        put_escape(out, bytes[found]);
        at = found + 1;
        run_start = at;
    }
    out.extend_from_slice(&bytes[run_start..]);
}

/// Where the first byte at or after `from` that a JSON string must escape is.
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // Marks, in each byte's top bit, the bytes of `word` below `limit` (at most 0x80). A
    // byte above a marked one may be marked falsely, by the borrow, but never one below:
    // the lowest mark is always a true one, and only the lowest is used.
    fn below(word: u64, limit: u8) -> u64 {
        word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
    }
    let mut at = from;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(chunk);
        let word = u64::from_le_bytes(eight);
        let marks = below(word, 0x20)
            | below(word ^ (ONES * u64::from(b'"')), 1)
            | below(word ^ (ONES * u64::from(b'\\')), 1);
        if marks != 0 {
            return Some(at + marks.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    bytes[at.min(bytes.len())..]
        .iter()
        .position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
        .map(|offset| at + offset)
}

fn put_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let named = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            let code = [
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ];
            out.extend_from_slice(&code);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', named]);
}

/// An `f32` parameter as the JSON number a person would write: `0.3`, not the
/// `0.30000001192092896` that widening it to `f64` gives.
pub(crate) fn f32_json(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Reads `null` as the default, for fields that OpenAI-compatible servers variously omit or
/// send as `null` (`choices`, `id`, ...).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f32_parameters_keep_their_written_form() {
        assert_eq!(f32_json(0.3).to_string(), "0.3");
        assert_eq!(f32_json(1.0).to_string(), "1.0");
        assert_eq!(f32_json(0.7).to_string(), "0.7");
        assert_eq!(f32_json(f32::NAN), Value::Null);
    }

    #[test]
    fn bodies_parse_alike_whether_utf8_or_not() {
        let value: Value = from_body("{\"a\":\"caf\u{e9} \\u00e9\"}".as_bytes()).unwrap();
        assert_eq!(value["a"], "caf\u{e9} \u{e9}");
        // Not UTF-8: the same error `from_slice` gives, with where it is.
        let bad = b"{\"a\":\"\xff\"}";
        let error = from_body::<Value>(bad).unwrap_err().to_string();
        assert_eq!(error, serde_json::from_slice::<Value>(bad).unwrap_err().to_string());
        assert!(error.contains("line 1 column"), "{error}");
        let error = from_body::<Value>(b"{\"a\":").unwrap_err().to_string();
        assert!(error.contains("EOF"), "{error}");
    }

    /// What serde_json writes for `text`, which `put_str` must match byte for byte.
    fn serde_str(text: &str) -> Vec<u8> {
        serde_json::to_vec(text).unwrap()
    }

    fn fast_str(text: &str) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        put_str(&mut out, text);
        out.split_off(6)
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every character below U+0080 alone, and at every offset of a 17-byte run (the
        // eight-byte words and the tail alike).
        for code in 0u8..0x80 {
            let one = char::from(code).to_string();
            assert_eq!(fast_str(&one), serde_str(&one), "U+{code:04X}");
            for offset in 0..17 {
                let mut text = "abcdefghijklmnopq".to_string();
                text.replace_range(offset..=offset, &one);
                assert_eq!(fast_str(&text), serde_str(&text), "U+{code:04X} at {offset}");
            }
        }
        for text in [
            "",
            "plain words, nothing to escape, long enough for several words",
            "caf\u{e9} \u{4f60}\u{597d} \u{1f600} \u{7f}\u{80}\u{ff}",
            "\"\"\"\"\"\"\"\"\"\\\\\\",
            "line one\nline two\r\n\ttabbed \u{1}\u{1f} end",
            "a byte below 0x20 then a quote a word later:\u{0}1234567\"",
            // Bytes whose borrow would mark their neighbours falsely.
            "\u{0}\u{0}!\u{1f}\u{20}\u{21}\"#\u{5b}\\\u{5d}",
        ] {
            assert_eq!(fast_str(text), serde_str(text), "{text:?}");
        }
        // A pseudo-random mix of the bytes that matter and those around them.
        let alphabet: Vec<char> =
            "\u{0}\u{1f} !\"#[\\]a\u{7f}\u{80}\u{e9}\u{4f60}\n\t".chars().collect();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2_000 {
            let mut text = String::new();
            for _ in 0..(state % 40) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            assert_eq!(fast_str(&text), serde_str(&text), "{text:?}");
            state = state.wrapping_add(1);
        }
    }

    #[test]
    fn null_reads_as_default() {
        #[derive(Deserialize)]
        struct Wire {
            #[serde(default, deserialize_with = "null_as_default")]
            items: Vec<u8>,
        }
        let wire: Wire = serde_json::from_str(r#"{"items": null}"#).unwrap();
        assert!(wire.items.is_empty());
        let wire: Wire = serde_json::from_str("{}").unwrap();
        assert!(wire.items.is_empty());
        let wire: Wire = serde_json::from_str(r#"{"items": [1]}"#).unwrap();
        assert_eq!(wire.items, [1]);
    }
}
