//! The check every HTTP error body in these tests goes through: `error-body.schema.json`.
//! (Included with `#[path]` by the test files that need it.)

use serde_json::Value;

/// The parsed `proto-schemas/api/error-body.schema.json`.
pub fn error_body_schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../proto-schemas/api/error-body.schema.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Checks `body` against `error-body.schema.json`: its `required`, `additionalProperties` and
/// property types (through the agent's schema validator), its `minLength`, and the two
/// `pattern`s (checked by hand: the validator has no regexes).
pub fn assert_valid_error_body(body: &Value) {
    let schema = error_body_schema();
    agui_agent::tools::schema::validate(&schema, body)
        .unwrap_or_else(|e| panic!("{body} does not match error-body.schema.json: {e}"));
    let code = body["error"].as_str().unwrap();
    assert!(
        code.starts_with(|c: char| c.is_ascii_lowercase())
            && code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "{code} is not a stable code"
    );
    assert!(
        !body["message"].as_str().unwrap().trim().is_empty(),
        "{body}: the message is empty"
    );
    if let Some(field) = body.get("field") {
        let field = field.as_str().unwrap();
        assert!(
            field.is_empty() || field.starts_with('/'),
            "{field} is not a JSON Pointer"
        );
        assert!(
            field
                .split('~')
                .skip(1)
                .all(|rest| rest.starts_with('0') || rest.starts_with('1')),
            "{field}: bad escape"
        );
    }
}
