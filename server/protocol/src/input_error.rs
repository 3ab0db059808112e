//! Turning serde errors on `RunAgentInput` into safe [`InputError`]s with JSON Pointers.
//!
//! serde's messages echo input (`invalid type: string "…", expected …`, `unknown variant `…``),
//! and the client must not get its own input back in an error (it may hold a token or
//! personal data). So the message is rebuilt from the parts that come from *our* types only:
//! the member path, the missing field's name, and serde's "expected …" text.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::input::{
    ActivityMessage, AssistantMessage, DeveloperMessage, InputError, InputErrorKind,
    ReasoningMessage, SystemMessage, ToolMessage, UserMessage,
};

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
