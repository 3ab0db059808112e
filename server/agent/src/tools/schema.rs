//! Argument validation against a tool's JSON Schema, before the tool runs.
//!
//! Tools declare small object schemas; this validates the subset they use (and says so when a
//! schema uses more): `type` (object, string, integer, number, boolean, array, null, or a list of
//! them), `properties`, `required`, `additionalProperties: false`, `enum`, `items`,
//! `minimum`/`maximum`, `minLength`/`maxLength`. Unknown keywords are ignored, as JSON Schema
//! requires. Messages name the argument, never echo its value.

use serde_json::Value;

/// Checks `args` against `schema`; the error names the offending member as a JSON Pointer.
///
/// # Errors
/// A message such as `/id: expected integer`.
pub fn validate(schema: &Value, args: &Value) -> Result<(), String> {
    check(schema, args, "")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(()); // `true` or a non-object schema admits everything.
    };
    if let Some(expected) = schema.get("type") {
        let types: Vec<&str> = match expected {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            return Err(format!("{}: expected {}", pointer(at), types.join(" or ")));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return Err(format!("{}: not one of the allowed values", pointer(at)));
    }
    match value {
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            for name in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(name) {
                    return Err(format!("{}/{}: required", at, escape(name)));
                }
            }
            for (name, member) in map {
                let path = format!("{at}/{}", escape(name));
                match properties.and_then(|p| p.get(name)) {
                    Some(sub) => check(sub, member, &path)?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{path}: not allowed"));
                    }
                    None => {}
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &format!("{at}/{i}"))?;
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if schema
                .get("minLength")
                .and_then(Value::as_u64)
                .is_some_and(|min| len < min)
            {
                return Err(format!("{}: too short", pointer(at)));
            }
            if schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|max| len > max)
            {
                return Err(format!("{}: too long", pointer(at)));
            }
        }
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            if schema
                .get("minimum")
                .and_then(Value::as_f64)
                .is_some_and(|min| n < min)
            {
                return Err(format!("{}: below the minimum", pointer(at)));
            }
            if schema
                .get("maximum")
                .and_then(Value::as_f64)
                .is_some_and(|max| n > max)
            {
                return Err(format!("{}: above the maximum", pointer(at)));
            }
        }
        _ => {}
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.as_i64().is_some()
                || value.as_u64().is_some()
                || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn pointer(at: &str) -> &str {
    if at.is_empty() { "/" } else { at }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::validate;

    fn schema() -> serde_json::Value {
        json!({
            "type": "object",
            "properties": {"id": {"type": "integer", "minimum": 1}, "key": {"type": "string", "maxLength": 5}},
            "required": ["id"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_arguments_pass() {
        assert_eq!(validate(&schema(), &json!({"id": 2, "key": "abc"})), Ok(()));
    }

    #[test]
    fn each_defect_is_named_by_pointer() {
        assert_eq!(validate(&schema(), &json!({})), Err("/id: required".into()));
        assert_eq!(
            validate(&schema(), &json!({"id": "2"})),
            Err("/id: expected integer".into())
        );
        assert_eq!(
            validate(&schema(), &json!({"id": 0})),
            Err("/id: below the minimum".into())
        );
        assert_eq!(
            validate(&schema(), &json!({"id": 1, "key": "toolong"})),
            Err("/key: too long".into())
        );
        assert_eq!(
            validate(&schema(), &json!({"id": 1, "x": 1})),
            Err("/x: not allowed".into())
        );
        assert_eq!(
            validate(&schema(), &json!([1])),
            Err("/: expected object".into())
        );
    }
}
