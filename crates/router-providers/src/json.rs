//! Small JSON helpers shared by the wire formats.

use serde::{Deserialize, Deserializer};
use serde_json::{Number, Value};

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
