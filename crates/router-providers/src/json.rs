//! Small JSON helpers shared by the wire formats.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Number, Value};

use crate::chat::ContentPart;

/// Writes `value` as JSON into a buffer that starts with room for `capacity` bytes. A body
/// sized up front is written in one go; `serde_json::to_vec` starts at 128 bytes and grows,
/// copying what it has written each time, three or four times for an ordinary chat body.
pub(crate) fn to_vec_sized<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

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

    #[test]
    fn a_sized_buffer_holds_the_same_json() {
        let parts = vec![
            ContentPart::Text { text: "line one\nand \"two\"".repeat(40) },
            ContentPart::ToolCall(crate::chat::ToolCall {
                id: "call_1".into(),
                name: "lookup".into(),
                arguments: r#"{"q":"rust"}"#.into(),
            }),
        ];
        assert_eq!(text_bytes(&parts), 18 * 40 + 6 + 6 + 12);
        let value = serde_json::json!({ "parts": format!("{parts:?}"), "n": [1, 2.5, null] });
        let plain = serde_json::to_vec(&value).unwrap();
        for capacity in [0, 16, plain.len(), 10 * plain.len()] {
            let sized = to_vec_sized(&value, capacity).unwrap();
            assert_eq!(sized, plain, "capacity {capacity}");
            assert!(sized.capacity() >= capacity);
        }
    }
}
