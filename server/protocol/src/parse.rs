//! Parsing a `RunAgentInput`: [`parse_run_input`] / [`run_input_from_value`], the id rule on
//! every id it carries, and serde errors turned into safe [`InputError`]s with JSON Pointers.
//!
//! serde's messages echo input (`invalid type: string "…", expected …`, `unknown variant `…``),
//! and the client must not get its own input back in an error (it may hold a token or
//! personal data). So the message is rebuilt from the parts that come from *our* types only:
//! the member path, the missing field's name, and serde's "expected …" text.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ids::check_id;
use crate::input::{
    ActivityMessage, AssistantMessage, DeveloperMessage, Message, ReasoningMessage, RunAgentInput,
    SystemMessage, ToolMessage, UserMessage,
};

/// Whether an [`InputError`] is bad JSON or JSON of the wrong shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorKind {
    /// The body is not JSON.
    Syntax,
    /// The body is JSON but not a valid `RunAgentInput`.
    Shape,
}

/// Why a request body is not a valid `RunAgentInput`; safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    /// Syntax or shape.
    pub kind: InputErrorKind,
    /// JSON Pointer (RFC 6901) of the offending member, e.g. `/messages/0/role`; `None` for
    /// syntax errors and when the whole body is at fault.
    pub pointer: Option<String>,
    /// Safe text: names members and expected types, never echoes input values.
    pub message: String,
}

/// Parses and validates a request body.
///
/// A valid body is parsed once, straight into [`RunAgentInput`]. Only when that fails is it
/// parsed again the slow way, to a `serde_json::Value` first, so that bad JSON
/// ([`InputErrorKind::Syntax`]) is told apart from a valid document of the wrong shape
/// ([`InputErrorKind::Shape`]) and the error carries the offending member's pointer. Both ways
/// accept the same bodies (the fast one also refuses a repeated member name, which the slow
/// one then reads as its last value, as before) and a valid body gives the same input.
///
/// # Errors
///
/// An [`InputError`] with the JSON Pointer of the first offending member.
pub fn parse_run_input(body: &[u8]) -> Result<RunAgentInput, InputError> {
    // Only an object: serde's derived structs would also take a JSON array, positionally,
    // which the slow path refuses.
    if body.trim_ascii_start().first() == Some(&b'{')
        && let Ok(input) = serde_json::from_slice::<RunAgentInput>(body)
    {
        check_ids(&input)?;
        return Ok(input);
    }
    parse_slowly(body)
}

/// [`parse_run_input`] through a `serde_json::Value`, for the precise error.
fn parse_slowly(body: &[u8]) -> Result<RunAgentInput, InputError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| InputError {
        kind: InputErrorKind::Syntax,
        pointer: None,
        message: syntax_message(&e),
    })?;
    run_input_from_value(&value)
}

/// Validates an already parsed body (e.g. after the server took the token out of
/// `forwardedProps`).
///
/// # Errors
///
/// An [`InputError`] of kind [`InputErrorKind::Shape`] with the offending member's pointer.
pub fn run_input_from_value(value: &Value) -> Result<RunAgentInput, InputError> {
    if !value.is_object() {
        return Err(InputError {
            kind: InputErrorKind::Shape,
            pointer: None,
            message: "the body must be a JSON object".to_owned(),
        });
    }
    let input: RunAgentInput = deserialize_with_pointer(value).map_err(|mut err| {
        // Messages are an internally tagged enum, so the path stops at `/messages/N`.
        // Re-read that message as its concrete type to point at the member inside it.
        if let Some(index) = message_index(err.pointer.as_deref())
            && let Some(deeper) = refine_message_error(value, index)
        {
            err = deeper;
        }
        err
    })?;
    check_ids(&input)?;
    Ok(input)
}

/// Applies the id rule ([`check_id`]) to every id of the input, in document order, before the
/// input goes anywhere (store, logs, model). The error names the rule and the member's
/// pointer, never the id (it may be megabytes, or carry escape sequences).
fn check_ids(input: &RunAgentInput) -> Result<(), InputError> {
    let check = |id: &str, pointer: &dyn Fn() -> String| {
        check_id(id).map_err(|rule| {
            let pointer = pointer();
            InputError {
                kind: InputErrorKind::Shape,
                message: format!("invalid id: {rule} at {pointer}"),
                pointer: Some(pointer),
            }
        })
    };
    check(&input.thread_id, &|| "/threadId".to_owned())?;
    check(&input.run_id, &|| "/runId".to_owned())?;
    if let Some(parent) = &input.parent_run_id {
        check(parent, &|| "/parentRunId".to_owned())?;
    }
    for (index, message) in input.messages.iter().enumerate() {
        check(message.id(), &|| format!("/messages/{index}/id"))?;
        match message {
            Message::Assistant(assistant) => {
                for (call, tool_call) in assistant.tool_calls.iter().flatten().enumerate() {
                    check(&tool_call.id, &|| {
                        format!("/messages/{index}/toolCalls/{call}/id")
                    })?;
                }
            }
            Message::Tool(tool) => {
                check(&tool.tool_call_id, &|| {
                    format!("/messages/{index}/toolCallId")
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn syntax_message(err: &serde_json::Error) -> String {
    // Line and column are positions, not input, so they are safe to show.
    match err.classify() {
        serde_json::error::Category::Eof => {
            "the body is not valid JSON: unexpected end of input".to_owned()
        }
        _ => format!(
            "the body is not valid JSON (line {}, column {})",
            err.line(),
            err.column()
        ),
    }
}

/// The `role` values a message may have, in the order of the schema.
const ROLES: &str = "one of developer, system, assistant, user, tool, activity, reasoning";

/// Deserializes `T` from `value`, reporting the first error with its JSON Pointer.
pub(crate) fn deserialize_with_pointer<T: DeserializeOwned>(
    value: &Value,
) -> Result<T, InputError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let pointer = path_to_pointer(err.path());
        shape_error(pointer, &err.inner().to_string())
    })
}

/// Builds a shape error from a pointer and serde's raw message.
fn shape_error(mut pointer: String, raw: &str) -> InputError {
    let message = if let Some(field) = missing_field(raw) {
        // serde reports a missing field at the *containing* object; point at the member itself.
        push_token(&mut pointer, field);
        "missing required member".to_owned()
    } else if let Some(expected) = raw.rfind(", expected ").map(|at| &raw[at + 2..]) {
        // "invalid type: <echo>, expected a string" → keep only the part our types wrote.
        format!("invalid value: {expected}")
    } else if raw.starts_with("data did not match any variant of untagged enum") {
        "invalid value: expected a string or an array of content parts".to_owned()
    } else {
        "invalid value".to_owned()
    };
    let message = if pointer.is_empty() {
        message
    } else {
        format!("{message} at {pointer}")
    };
    InputError {
        kind: InputErrorKind::Shape,
        pointer: Some(pointer),
        message,
    }
}

/// The field name in serde's `missing field `name`` message.
fn missing_field(raw: &str) -> Option<&str> {
    raw.strip_prefix("missing field `")?.strip_suffix('`')
}

/// Converts serde_path_to_error's path to an RFC 6901 JSON Pointer (`""` for the root).
fn path_to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } => push_token(&mut pointer, key),
            // Enum variants and unknown segments are not members of the JSON document.
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// Appends one reference token, escaped per RFC 6901 §3 (`~` → `~0`, `/` → `~1`).
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for c in token.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `Some(n)` when `pointer` is inside `/messages/n`.
///
/// Messages are an internally tagged enum: serde buffers each one before choosing the
/// variant, so serde_path_to_error's path stops at `/messages/n` (plus, for a missing field,
/// the field name appended by [`shape_error`], e.g. `/messages/0/arguments` for a field that
/// really lives at `/messages/0/toolCalls/0/function/arguments`). Any such pointer is worth
/// refining.
pub(crate) fn message_index(pointer: Option<&str>) -> Option<usize> {
    let rest = pointer?.strip_prefix("/messages/")?;
    rest.split('/').next()?.parse().ok()
}

/// Re-reads `messages[index]` as the concrete type its `role` names, to find the member at
/// fault inside it. `None` when that yields nothing more precise.
pub(crate) fn refine_message_error(body: &Value, index: usize) -> Option<InputError> {
    let message = body.get("messages")?.get(index)?;
    let base = format!("/messages/{index}");
    let Some(object) = message.as_object() else {
        return Some(InputError {
            kind: InputErrorKind::Shape,
            message: format!("invalid value: expected a message object at {base}"),
            pointer: Some(base),
        });
    };
    let role = match object.get("role") {
        None => return Some(shape_error(base, "missing field `role`")),
        Some(Value::String(role)) => role.as_str(),
        Some(_) => {
            let pointer = format!("{base}/role");
            return Some(InputError {
                kind: InputErrorKind::Shape,
                message: format!("invalid value: expected {ROLES} at {pointer}"),
                pointer: Some(pointer),
            });
        }
    };
    let inner = match role {
        "developer" => deserialize_with_pointer::<DeveloperMessage>(message).err(),
        "system" => deserialize_with_pointer::<SystemMessage>(message).err(),
        "assistant" => deserialize_with_pointer::<AssistantMessage>(message).err(),
        "user" => deserialize_with_pointer::<UserMessage>(message).err(),
        "tool" => deserialize_with_pointer::<ToolMessage>(message).err(),
        "activity" => deserialize_with_pointer::<ActivityMessage>(message).err(),
        "reasoning" => deserialize_with_pointer::<ReasoningMessage>(message).err(),
        _ => {
            let pointer = format!("{base}/role");
            return Some(InputError {
                kind: InputErrorKind::Shape,
                message: format!("invalid value: expected {ROLES} at {pointer}"),
                pointer: Some(pointer),
            });
        }
    }?;
    let inner_pointer = inner.pointer.unwrap_or_default();
    let pointer = format!("{base}{inner_pointer}");
    // Re-anchor the message on the full pointer.
    let text = inner
        .message
        .strip_suffix(&format!(" at {inner_pointer}"))
        .unwrap_or(&inner.message)
        .to_owned();
    Some(InputError {
        kind: InputErrorKind::Shape,
        message: format!("{text} at {pointer}"),
        pointer: Some(pointer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_tokens_are_escaped() {
        let mut p = String::new();
        push_token(&mut p, "a/b~c");
        assert_eq!(p, "/a~1b~0c");
    }

    #[test]
    fn messages_never_echo_input_values() {
        let err = shape_error(
            "/x".into(),
            r#"invalid type: string "SECRET, expected", expected a boolean"#,
        );
        assert_eq!(err.message, "invalid value: expected a boolean at /x");
        assert!(!err.message.contains("SECRET"));
        let err = shape_error("/y".into(), "unknown variant `SECRET`");
        assert_eq!(err.message, "invalid value at /y");
    }

    #[test]
    fn missing_field_points_at_the_member() {
        let err = shape_error(String::new(), "missing field `threadId`");
        assert_eq!(err.pointer.as_deref(), Some("/threadId"));
        assert_eq!(err.message, "missing required member at /threadId");
    }

    #[test]
    fn message_index_finds_the_message() {
        assert_eq!(message_index(Some("/messages/3")), Some(3));
        assert_eq!(message_index(Some("/messages/3/content")), Some(3));
        assert_eq!(message_index(Some("/messages/x")), None);
        assert_eq!(message_index(Some("/tools/3")), None);
        assert_eq!(message_index(None), None);
    }
}
