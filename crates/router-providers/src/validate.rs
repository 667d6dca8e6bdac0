//! Walking a client's JSON body field by field, so that every rejection names the field at
//! fault and is worded the way the API the client speaks words it.

use serde_json::{Map, Value};

use crate::api_error::RequestError;

/// Whose wording and path notation errors use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `messages[0].role`; "Missing required parameter: 'model'."
    OpenAi,
    /// `messages.0.role`; "max_tokens: Field required".
    Anthropic,
}

/// A value in the body and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub value: &'a Value,
    path: String,
    dialect: Dialect,
}

/// An object in the body and where it sits.
#[derive(Debug, Clone)]
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    dialect: Dialect,
}

/// Parses a request body as JSON, with the error a client of `dialect` expects when it is not.
pub(crate) fn parse_body(body: &[u8], dialect: Dialect) -> Result<Value, RequestError> {
    crate::json::from_body(body).map_err(|error| {
        let message = match dialect {
            Dialect::OpenAi => format!(
                "We could not parse the JSON body of your request ({error}). The body must be \
                 a JSON object; check quoting, commas and brackets."
            ),
            Dialect::Anthropic => {
                format!("The request body is not valid JSON: {error}. Send a JSON object.")
            }
        };
        RequestError { message, param: None, code: Some("invalid_json".into()) }
    })
}

impl<'a> Field<'a> {
    pub fn root(value: &'a Value, dialect: Dialect) -> Self {
        Field { value, path: String::new(), dialect }
    }

    pub fn object(&self) -> Result<Obj<'a>, RequestError> {
        match self.value {
            Value::Object(map) => Ok(Obj { map, path: self.path.clone(), dialect: self.dialect }),
            _ => Err(self.wrong_type("an object")),
        }
    }

    pub fn string(&self) -> Result<&'a str, RequestError> {
        self.value.as_str().ok_or_else(|| self.wrong_type("a string"))
    }

    pub fn boolean(&self) -> Result<bool, RequestError> {
        self.value.as_bool().ok_or_else(|| self.wrong_type("a boolean"))
    }

    pub fn integer(&self) -> Result<i64, RequestError> {
        self.value.as_i64().ok_or_else(|| self.wrong_type("an integer"))
    }

    /// A whole number no smaller than `min` that fits a `u32`.
    pub fn count(&self, min: u32) -> Result<u32, RequestError> {
        let number = match self.value {
            Value::Number(n) => n.as_i64().ok_or_else(|| self.wrong_type("an integer"))?,
            _ => return Err(self.wrong_type("an integer")),
        };
        if number < i64::from(min) {
            return Err(self.below_min(&number.to_string(), &min.to_string(), "integer"));
        }
        u32::try_from(number).map_err(|_| self.above_max(&number.to_string(), "4294967295"))
    }

    /// A number within `[min, max]`.
    pub fn number_in(&self, min: f64, max: f64) -> Result<f32, RequestError> {
        let number = self.value.as_f64().ok_or_else(|| self.wrong_type("a number"))?;
        if number < min {
            return Err(self.below_min(&number.to_string(), &min.to_string(), "decimal"));
        }
        if number > max {
            return Err(self.above_max(&number.to_string(), &max.to_string()));
        }
        Ok(number as f32)
    }

    pub fn array(&self) -> Result<Vec<Field<'a>>, RequestError> {
        let items = self.value.as_array().ok_or_else(|| self.wrong_type("an array"))?;
        Ok(items.iter().enumerate().map(|(i, value)| self.index(i, value)).collect())
    }

    pub fn non_empty_array(&self) -> Result<Vec<Field<'a>>, RequestError> {
        let items = self.array()?;
        if items.is_empty() {
            let message = match self.dialect {
                Dialect::OpenAi => format!(
                    "Invalid '{}': empty array. Expected an array with minimum length 1, but got \
                     an empty array instead.",
                    self.path
                ),
                Dialect::Anthropic => {
                    format!("{}: List should have at least 1 item, not 0", self.path)
                }
            };
            return Err(self.error(message, "empty_array"));
        }
        Ok(items)
    }

    /// A string that must be one of `allowed`.
    pub fn one_of(&self, allowed: &[&str]) -> Result<&'a str, RequestError> {
        let text = self.string()?;
        if allowed.contains(&text) {
            return Ok(text);
        }
        Err(self.invalid_value(text, allowed))
    }

    pub fn invalid_value(&self, got: &str, allowed: &[&str]) -> RequestError {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        let message = match self.dialect {
            Dialect::OpenAi => format!(
                "Invalid value for '{}': '{got}'. Supported values are: {}.",
                self.path,
                english_list(&quoted, "and")
            ),
            Dialect::Anthropic => {
                format!("{}: Input should be {}", self.path, english_list(&quoted, "or"))
            }
        };
        self.error(message, "invalid_value")
    }

    pub fn wrong_type(&self, expected: &str) -> RequestError {
        let got = kind_name(self.value);
        let message = match self.dialect {
            Dialect::OpenAi if self.path.is_empty() => {
                format!("Invalid request body: expected {expected}, but got {got} instead.")
            }
            Dialect::OpenAi => format!(
                "Invalid type for '{}': expected {expected}, but got {got} instead.",
                self.path
            ),
            Dialect::Anthropic if self.path.is_empty() => {
                format!("Request body should be {expected}, not {got}")
            }
            Dialect::Anthropic => format!("{}: Input should be {expected}, not {got}", self.path),
        };
        self.error(message, "invalid_type")
    }

    /// An error about this field with a message that does not already name it.
    pub fn invalid(&self, what: &str) -> RequestError {
        let message = match self.dialect {
            Dialect::OpenAi => format!("Invalid '{}': {what}", self.path),
            Dialect::Anthropic => format!("{}: {what}", self.path),
        };
        self.error(message, "invalid_value")
    }

    /// A field the client may send but the gateway cannot honour.
    pub fn unsupported(&self, what: &str) -> RequestError {
        let message = match self.dialect {
            Dialect::OpenAi => format!("Unsupported parameter '{}': {what}", self.path),
            Dialect::Anthropic => format!("{}: {what}", self.path),
        };
        self.error(message, "unsupported_parameter")
    }

    pub fn error(&self, message: String, code: &str) -> RequestError {
        let param = (!self.path.is_empty()).then(|| self.path.clone());
        RequestError { message, param, code: Some(code.to_owned()) }
    }

    fn index(&self, i: usize, value: &'a Value) -> Field<'a> {
        // Paths are built for every field a request has, and used only in errors: plain
        // appends cost a tenth of `format!`.
        let mut path = String::with_capacity(self.path.len() + 4);
        path.push_str(&self.path);
        path.push(match self.dialect {
            Dialect::OpenAi => '[',
            Dialect::Anthropic => '.',
        });
        path.push_str(itoa::Buffer::new().format(i));
        if self.dialect == Dialect::OpenAi {
            path.push(']');
        }
        Field { value, path, dialect: self.dialect }
    }

    fn below_min(&self, got: &str, min: &str, number_kind: &str) -> RequestError {
        let message = match self.dialect {
            Dialect::OpenAi => format!(
                "Invalid '{}': {number_kind} below minimum value. Expected a value >= {min}, \
                 but got {got} instead.",
                self.path
            ),
            Dialect::Anthropic => {
                format!("{}: Input should be greater than or equal to {min}", self.path)
            }
        };
        self.error(message, &format!("{number_kind}_below_min_value"))
    }

    fn above_max(&self, got: &str, max: &str) -> RequestError {
        let message = match self.dialect {
            Dialect::OpenAi => format!(
                "Invalid '{}': value above maximum. Expected a value <= {max}, but got {got} \
                 instead.",
                self.path
            ),
            Dialect::Anthropic => {
                format!("{}: Input should be less than or equal to {max}", self.path)
            }
        };
        self.error(message, "value_above_max_value")
    }
}

impl<'a> Obj<'a> {
    /// The field, or `None` when absent or `null` (both APIs treat an explicit null as unset).
    pub fn get(&self, key: &str) -> Option<Field<'a>> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(Field { value, path: self.child_path(key), dialect: self.dialect }),
        }
    }

    pub fn require(&self, key: &str) -> Result<Field<'a>, RequestError> {
        self.get(key).ok_or_else(|| self.missing(key))
    }

    pub fn missing(&self, key: &str) -> RequestError {
        let path = self.child_path(key);
        let message = match self.dialect {
            Dialect::OpenAi => format!("Missing required parameter: '{path}'."),
            Dialect::Anthropic => format!("{path}: Field required"),
        };
        RequestError { message, param: Some(path), code: Some("missing_required_parameter".into()) }
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            return key.to_owned();
        }
        let mut path = String::with_capacity(self.path.len() + 1 + key.len());
        path.push_str(&self.path);
        path.push('.');
        path.push_str(key);
        path
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `'a'`, `'a' or 'b'`, `'a', 'b', or 'c'`.
fn english_list(items: &[String], conjunction: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [first, second] => format!("{first} {conjunction} {second}"),
        [init @ .., last] => format!("{}, {conjunction} {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_follow_each_dialect() {
        let body = json!({"messages": [{"role": 3}]});
        for (dialect, path) in
            [(Dialect::OpenAi, "messages[0].role"), (Dialect::Anthropic, "messages.0.role")]
        {
            let root = Field::root(&body, dialect).object().unwrap();
            let messages = root.require("messages").unwrap().array().unwrap();
            let error =
                messages[0].object().unwrap().require("role").unwrap().string().unwrap_err();
            assert_eq!(error.param.as_deref(), Some(path));
            assert!(error.message.contains(path), "{}", error.message);
            assert!(error.message.contains("integer"), "{}", error.message);
        }
    }

    #[test]
    fn lists_read_as_english() {
        let names = |xs: &[&str]| xs.iter().map(|x| format!("'{x}'")).collect::<Vec<_>>();
        assert_eq!(english_list(&names(&["a"]), "or"), "'a'");
        assert_eq!(english_list(&names(&["a", "b"]), "or"), "'a' or 'b'");
        assert_eq!(english_list(&names(&["a", "b", "c"]), "and"), "'a', 'b', and 'c'");
    }

    #[test]
    fn null_counts_as_absent() {
        let body = json!({"stop": null});
        let root = Field::root(&body, Dialect::OpenAi).object().unwrap();
        assert!(root.get("stop").is_none());
        assert_eq!(
            root.require("stop").unwrap_err().code.as_deref(),
            Some("missing_required_parameter")
        );
    }

    #[test]
    fn counts_and_ranges_are_checked() {
        let body = json!({"a": 0, "b": 2.5, "c": 1.5, "d": "x"});
        let root = Field::root(&body, Dialect::OpenAi).object().unwrap();
        assert!(root.require("a").unwrap().count(1).unwrap_err().message.contains(">= 1"));
        assert!(
            root.require("b").unwrap().number_in(0.0, 2.0).unwrap_err().message.contains("<= 2")
        );
        assert_eq!(root.require("c").unwrap().number_in(0.0, 2.0).unwrap(), 1.5);
        assert!(root.require("d").unwrap().count(1).is_err());
    }
}
