//! Checks tool arguments against the tool's own `inputSchema` before they are deserialized,
//! so that every refusal names the argument and says, from the schema, what it must be.
//!
//! Only the keywords the generated schemas use at the top level are checked: unknown and
//! missing properties, `type`, `enum`, string lengths and numeric bounds (`$ref`, `anyOf` and
//! `oneOf` are followed). `pattern` is left to the app, which validates every value again and
//! names the field. Messages never echo a refused value.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The most problems one refusal lists.
const MAX_PROBLEMS: usize = 4;

/// The longest argument name echoed back.
const MAX_ECHOED_NAME_CHARS: usize = 64;

/// Why a tool's arguments were refused, in words a model can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgumentProblem(String);

impl ArgumentProblem {
    /// A problem described by `message`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The description.
    pub(crate) fn message(&self) -> &str {
        &self.0
    }
}

/// An argument name fit to echo: bounded, and stripped of anything but `[A-Za-z0-9_.-]`.
pub(crate) fn printable_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(MAX_ECHOED_NAME_CHARS)
        .collect();
    if name.is_empty() {
        name.push('?');
    }
    name
}

/// Checks `arguments` against `schema` (an object schema with `properties`).
///
/// # Errors
/// An [`ArgumentProblem`] listing up to four problems.
pub(crate) fn check(
    schema: &Map<String, Value>,
    arguments: &Map<String, Value>,
) -> Result<(), ArgumentProblem> {
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut problems = Vec::new();
    for (name, value) in arguments {
        match properties.get(name) {
            None => problems.push(format!(
                "unknown argument `{}`; {}",
                printable_name(name),
                accepted_names(properties)
            )),
            Some(property) => {
                if !accepts(schema, property, value) {
                    problems.push(format!(
                        "`{name}` must be {}",
                        expectation(schema, property)
                    ));
                }
            }
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        if !arguments.contains_key(name) {
            let expected = properties
                .get(name)
                .map(|property| expectation(schema, property))
                .unwrap_or_else(|| "given".to_owned());
            problems.push(format!("missing required argument `{name}`: {expected}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown = problems.len().min(MAX_PROBLEMS);
    let mut message = problems[..shown].join("; ");
    if problems.len() > shown {
        message.push_str(&format!("; and {} more", problems.len() - shown));
    }
    Err(ArgumentProblem(message))
}

/// Deserializes checked arguments into the tool's parameter type.
///
/// # Errors
/// An [`ArgumentProblem`] naming the argument serde refused (which [`check`] should already
/// have caught).
pub(crate) fn typed<P: DeserializeOwned>(
    arguments: Map<String, Value>,
) -> Result<P, ArgumentProblem> {
    serde_path_to_error::deserialize(Value::Object(arguments)).map_err(|error| {
        let path = error.path().to_string();
        if path == "." {
            ArgumentProblem::new("the arguments do not match the tool's input schema")
        } else {
            ArgumentProblem::new(format!(
                "`{}` does not match the tool's input schema",
                printable_name(&path)
            ))
        }
    })
}

fn accepted_names(properties: &Map<String, Value>) -> String {
    if properties.is_empty() {
        "this tool takes no arguments".to_owned()
    } else {
        let names: Vec<&str> = properties.keys().map(String::as_str).collect();
        format!("accepted: {}", names.join(", "))
    }
}

/// Follows a local `$ref` (`#/$defs/Name`) to its definition.
fn resolve<'a>(root: &'a Map<String, Value>, schema: &'a Value) -> &'a Value {
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name));
    target.unwrap_or(schema)
}

fn branches(schema: &Value) -> Option<&Vec<Value>> {
    schema
        .get("anyOf")
        .or_else(|| schema.get("oneOf"))
        .and_then(Value::as_array)
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(single)) => vec![single.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(number) => {
            number.is_i64()
                || number.is_u64()
                || number
                    .as_f64()
                    .is_some_and(|float| float.is_finite() && float.fract() == 0.0)
        }
        _ => false,
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "integer" => is_integer(value),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    }
}

fn bound(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn accepts(root: &Map<String, Value>, schema: &Value, value: &Value) -> bool {
    let schema = resolve(root, schema);
    if let Some(branches) = branches(schema) {
        return branches.iter().any(|branch| accepts(root, branch, value));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        return allowed.contains(value);
    }
    let types = types(schema);
    if !types.is_empty() && !types.iter().any(|name| has_type(value, name)) {
        return false;
    }
    if let Value::String(text) = value {
        let length = text.chars().count() as f64;
        if bound(schema, "minLength").is_some_and(|min| length < min)
            || bound(schema, "maxLength").is_some_and(|max| length > max)
        {
            return false;
        }
    }
    if let Some(number) = value.as_f64()
        && (bound(schema, "minimum").is_some_and(|min| number < min)
            || bound(schema, "maximum").is_some_and(|max| number > max))
    {
        return false;
    }
    true
}

fn integer_text(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{value:.0}")
    } else {
        value.to_string()
    }
}

/// What a value must be, in words, from its schema.
fn expectation(root: &Map<String, Value>, schema: &Value) -> String {
    let schema = resolve(root, schema);
    let mut text = if let Some(branches) = branches(schema) {
        let options: Vec<String> = branches
            .iter()
            .filter(|branch| types(resolve(root, branch)) != ["null"])
            .map(|branch| expectation(root, branch))
            .collect();
        options.join(" or ")
    } else if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = allowed
            .iter()
            .filter(|value| !value.is_null())
            .map(|value| {
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned)
            })
            .collect();
        format!("one of {}", names.join(", "))
    } else {
        describe_type(schema)
    };
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        text.push_str(" (");
        text.push_str(description.trim_end_matches('.'));
        text.push(')');
    }
    text
}

fn describe_type(schema: &Value) -> String {
    let types = types(schema);
    let (min, max) = (bound(schema, "minimum"), bound(schema, "maximum"));
    if types.contains(&"integer") || types.contains(&"number") {
        let noun = if types.contains(&"integer") {
            "an integer"
        } else {
            "a number"
        };
        return match (min, max) {
            (Some(min), Some(max)) => {
                format!("{noun} from {} to {}", integer_text(min), integer_text(max))
            }
            (Some(min), None) => format!("{noun} of at least {}", integer_text(min)),
            (None, Some(max)) => format!("{noun} of at most {}", integer_text(max)),
            (None, None) => noun.to_owned(),
        };
    }
    if types.contains(&"string") {
        let mut text = "a string".to_owned();
        match (bound(schema, "minLength"), bound(schema, "maxLength")) {
            (Some(min), Some(max)) => text.push_str(&format!(
                " of {} to {} characters",
                integer_text(min),
                integer_text(max)
            )),
            (None, Some(max)) => {
                text.push_str(&format!(" of at most {} characters", integer_text(max)));
            }
            _ => {}
        }
        if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
            text.push_str(&format!(" matching {pattern}"));
        }
        return text;
    }
    if types.contains(&"boolean") {
        return "true or false".to_owned();
    }
    "a value of the documented type".to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Map<String, Value> {
        json!({
            "type": "object",
            "properties": {
                "account_id": {"type": "string", "minLength": 1, "maxLength": 64,
                               "description": "An account."},
                "limit": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000},
                "bar": {"anyOf": [{"$ref": "#/$defs/Bar"}, {"type": "null"}]}
            },
            "required": ["account_id"],
            "additionalProperties": false,
            "$defs": {"Bar": {"type": "string", "enum": ["1min", "1h"]}}
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn valid_arguments_pass() {
        check(
            &schema(),
            &args(json!({"account_id": "acct_1", "limit": 5, "bar": "1h"})),
        )
        .unwrap();
        check(
            &schema(),
            &args(json!({"account_id": "acct_1", "limit": null})),
        )
        .unwrap();
    }

    #[test]
    fn each_problem_names_the_argument_without_echoing_the_value() {
        let problem = check(&schema(), &args(json!({"account_id": 5}))).unwrap_err();
        assert_eq!(
            problem.message(),
            "`account_id` must be a string of 1 to 64 characters (An account)"
        );
        let secret = "DU1234567".repeat(20);
        let problem = check(&schema(), &args(json!({"account_id": secret}))).unwrap_err();
        assert!(!problem.message().contains("DU1234567"));
        let problem = check(&schema(), &args(json!({}))).unwrap_err();
        assert!(
            problem
                .message()
                .starts_with("missing required argument `account_id`")
        );
        let problem =
            check(&schema(), &args(json!({"account_id": "a", "limit": 1e300}))).unwrap_err();
        assert_eq!(
            problem.message(),
            "`limit` must be an integer from 1 to 1000"
        );
        let problem =
            check(&schema(), &args(json!({"account_id": "a", "limit": 2.5}))).unwrap_err();
        assert_eq!(
            problem.message(),
            "`limit` must be an integer from 1 to 1000"
        );
        let problem = check(&schema(), &args(json!({"account_id": "a", "bar": "2h"}))).unwrap_err();
        assert_eq!(problem.message(), "`bar` must be one of 1min, 1h");
        let problem =
            check(&schema(), &args(json!({"account_id": "a", "x\u{7}y": 1}))).unwrap_err();
        assert_eq!(
            problem.message(),
            "unknown argument `xy`; accepted: account_id, bar, limit"
        );
    }

    #[test]
    fn many_problems_are_summarized() {
        let mut many = Map::new();
        for index in 0..10_000 {
            many.insert(format!("k{index}"), json!(1));
        }
        let problem = check(&schema(), &many).unwrap_err();
        assert!(
            problem.message().ends_with("and 9997 more"),
            "{}",
            problem.message()
        );
        assert!(problem.message().len() < 1000);
    }
}
