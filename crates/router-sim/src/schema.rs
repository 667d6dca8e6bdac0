//! Values made up to fit a JSON schema (for tool arguments and judge answers), and values
//! made to break one (for judge tests).
//!
//! This covers the schema subset structured-output and tool schemas use in practice:
//! `type` (one or several), `properties`, `required`, `items`, `minItems`, `enum`, `const`,
//! `anyOf`/`oneOf`/`allOf`, local `$ref`s into `$defs`/`definitions`, numeric bounds and
//! string lengths.

use serde_json::{Map, Value, json};

/// Deeper schemas than this are answered with `null`: real ones are shallow, and a
/// self-referencing `$ref` must not recurse forever.
const MAX_DEPTH: usize = 16;

/// A value conforming to `schema`: the first value of every enum, plausible strings and
/// numbers elsewhere. `hint` (the user's question) feeds free-text fields.
pub(crate) fn sample(schema: &Value, hint: &str) -> Value {
    Sampler { root: schema, hint }.value(schema, None, 0)
}

/// A value that is valid JSON but violates `schema`, derived from the conforming sample.
pub(crate) fn violate(schema: &Value, hint: &str) -> Value {
    let good = sample(schema, hint);
    let Value::Object(mut object) = good else {
        // A scalar or array root: an object is the wrong type for it.
        return json!({ "unexpected": true });
    };
    let sampler = Sampler { root: schema, hint };
    let node = sampler.resolve(schema, 0);
    let properties = node.get("properties").and_then(Value::as_object);
    if let Some(properties) = properties {
        // An enum value outside the enum is what a judge model most plausibly gets wrong.
        for (name, property) in properties {
            if sampler.resolve(property, 0).get("enum").is_some() {
                object.insert(name.clone(), Value::from("__not_one_of_the_options__"));
                return Value::Object(object);
            }
        }
    }
    if let Some(first) = node.get("required").and_then(Value::as_array).and_then(|r| r.first())
        && let Some(name) = first.as_str()
    {
        object.remove(name);
        return Value::Object(object);
    }
    // Nothing to break inside: break the root type.
    Value::Array(vec![Value::Object(object)])
}

struct Sampler<'a> {
    root: &'a Value,
    hint: &'a str,
}

impl<'a> Sampler<'a> {
    /// Follows local `$ref`s and picks the first variant of a combinator.
    fn resolve(&self, mut node: &'a Value, depth: usize) -> &'a Value {
        for _ in depth..MAX_DEPTH {
            if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
                match reference.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                    Some(target) => node = target,
                    None => return node,
                }
                continue;
            }
            let variant = ["anyOf", "oneOf", "allOf"].iter().find_map(|k| {
                node.get(*k)?.as_array()?.iter().find(|v| v.get("type") != Some(&json!("null")))
            });
            match variant {
                Some(v) if node.get("type").is_none() && node.get("properties").is_none() => {
                    node = v
                }
                _ => return node,
            }
        }
        node
    }

    fn value(&self, node: &Value, name: Option<&str>, depth: usize) -> Value {
        if depth >= MAX_DEPTH {
            return Value::Null;
        }
        let node = self.resolve(node, depth);
        if let Some(constant) = node.get("const") {
            return constant.clone();
        }
        if let Some(first) = node.get("enum").and_then(Value::as_array).and_then(|e| e.first()) {
            return first.clone();
        }
        match type_of(node) {
            "object" => self.object(node, depth),
            "array" => {
                let count = node.get("minItems").and_then(Value::as_u64).unwrap_or(1);
                let count = match node.get("maxItems").and_then(Value::as_u64) {
                    Some(max) => count.min(max),
                    None => count,
                };
                match node.get("items") {
                    Some(items) => {
                        (0..count.min(8)).map(|_| self.value(items, name, depth + 1)).collect()
                    }
                    None => Value::Array(Vec::new()),
                }
            }
            "integer" => Value::from(integer(node)),
            "number" => number(node, name),
            "boolean" => Value::Bool(true),
            "null" => Value::Null,
            _ => Value::String(self.string(node, name)),
        }
    }

    fn object(&self, node: &Value, depth: usize) -> Value {
        let mut object = Map::new();
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (key, property) in properties {
                object.insert(key.clone(), self.value(property, Some(key), depth + 1));
            }
        }
        Value::Object(object)
    }

    fn string(&self, node: &Value, name: Option<&str>) -> String {
        let name = name.unwrap_or("").to_ascii_lowercase();
        let mut text = match node.get("format").and_then(Value::as_str) {
            Some("date-time") => "2025-01-01T00:00:00Z".to_owned(),
            Some("date") => "2025-01-01".to_owned(),
            Some("email") => "user@example.com".to_owned(),
            Some("uri") | Some("url") => "https://example.com/".to_owned(),
            _ if ["reason", "explanation", "rationale", "why"].iter().any(|k| name.contains(k)) => {
                "It fits the request best.".to_owned()
            }
            _ if ["city", "location", "place"].iter().any(|k| name.contains(k)) => {
                self.place().unwrap_or("Paris").to_owned()
            }
            _ if name.contains("lang") => "en".to_owned(),
            _ if ["query", "question", "prompt", "text", "input"]
                .iter()
                .any(|k| name.contains(k)) =>
            {
                self.hint.trim().to_owned()
            }
            _ => "example".to_owned(),
        };
        if let Some(max) = node.get("maxLength").and_then(Value::as_u64)
            && let Some((end, _)) =
                text.char_indices().nth(usize::try_from(max).unwrap_or(usize::MAX))
        {
            text.truncate(end);
        }
        if let Some(min) = node.get("minLength").and_then(Value::as_u64) {
            let missing = usize::try_from(min).unwrap_or(0).saturating_sub(text.chars().count());
            text.extend(std::iter::repeat_n('x', missing));
        }
        text
    }

    /// A capitalised word after the first, as the place a question is about.
    fn place(&self) -> Option<&'a str> {
        self.hint
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .skip(1)
            .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
            .last()
    }
}

fn type_of(node: &Value) -> &str {
    match node.get("type") {
        Some(Value::String(t)) => t,
        Some(Value::Array(types)) => {
            types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("null")
        }
        _ if node.get("properties").is_some() => "object",
        _ if node.get("items").is_some() => "array",
        _ => "string",
    }
}

fn integer(node: &Value) -> i64 {
    let min = node
        .get("minimum")
        .and_then(Value::as_i64)
        .or_else(|| node.get("exclusiveMinimum").and_then(Value::as_i64).map(|m| m + 1));
    let max = node
        .get("maximum")
        .and_then(Value::as_i64)
        .or_else(|| node.get("exclusiveMaximum").and_then(Value::as_i64).map(|m| m - 1));
    match (min, max) {
        (Some(min), _) => min,
        (None, Some(max)) => max.min(1),
        (None, None) => 1,
    }
}

fn number(node: &Value, name: Option<&str>) -> Value {
    let min = node.get("minimum").and_then(Value::as_f64);
    let max = node.get("maximum").and_then(Value::as_f64);
    let name = name.unwrap_or("").to_ascii_lowercase();
    let confident = ["confidence", "score", "probability"].iter().any(|k| name.contains(k));
    let value = match (min, max) {
        (Some(min), Some(max)) if confident => min + (max - min) * 0.9,
        (Some(min), Some(max)) => (min + max) / 2.0,
        (Some(min), None) => min,
        (None, Some(max)) => max.min(0.5),
        (None, None) if confident => 0.9,
        (None, None) => 0.5,
    };
    json!(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "model": { "type": "string", "enum": ["gpt-4o", "claude", "llama"] },
                "domain": { "$ref": "#/$defs/Domain" },
                "confidence": { "type": "number", "minimum": 0, "maximum": 1 },
                "reason": { "type": "string", "maxLength": 10 },
                "tags": { "type": "array", "items": { "type": "string" }, "minItems": 2 },
                "turns": { "type": ["integer", "null"], "minimum": 3 }
            },
            "required": ["model", "domain", "confidence"],
            "$defs": { "Domain": { "type": "string", "enum": ["code", "math"] } }
        })
    }

    #[test]
    fn sample_picks_first_enum_values_and_respects_bounds() {
        let v = sample(&judge_schema(), "Which model?");
        assert_eq!(v["model"], "gpt-4o");
        assert_eq!(v["domain"], "code");
        let confidence = v["confidence"].as_f64().unwrap_or(-1.0);
        assert!((0.0..=1.0).contains(&confidence));
        assert_eq!(v["reason"].as_str().map(|s| s.chars().count()), Some(10));
        assert_eq!(v["tags"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["turns"], 3);
    }

    #[test]
    fn violation_puts_a_value_outside_the_enum() {
        let v = violate(&judge_schema(), "q");
        let model_ok = ["gpt-4o", "claude", "llama"].iter().any(|m| v["model"] == *m);
        let domain_ok = ["code", "math"].iter().any(|d| v["domain"] == *d);
        assert!(!(model_ok && domain_ok), "{v}");
        assert!(v.get("confidence").is_some());
    }

    #[test]
    fn violation_drops_a_required_property_when_there_is_no_enum() {
        let schema =
            json!({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]});
        assert_eq!(sample(&schema, ""), json!({"a": 1}));
        assert_eq!(violate(&schema, ""), json!({}));
    }

    #[test]
    fn tool_arguments_use_the_question() {
        let schema = json!({"type":"object","properties":{"city":{"type":"string"},"unit":{"enum":["c","f"]}}});
        assert_eq!(
            sample(&schema, "What is the weather in Berlin today?"),
            json!({"city":"Berlin","unit":"c"})
        );
    }

    #[test]
    fn self_reference_terminates() {
        assert!(sample(&json!({"$ref": "#"}), "").is_string());
        let nested = json!({"type": "object", "properties": {"child": {"$ref": "#"}}});
        let mut v = &sample(&nested, "");
        let mut depth = 0;
        while let Some(child) = v.get("child") {
            v = child;
            depth += 1;
        }
        assert!(v.is_null());
        assert!(depth <= MAX_DEPTH);
    }
}
