//! The run's shared state as tools see it.
//!
//! The baseline is `RunAgentInput.state`. Tools read the current value and change it with JSON
//! Patch operations (RFC 6902), applied to the server's copy at once so later tools see them.
//! The run loop takes the pending operations after each round of tool calls and sends them as a
//! `STATE_DELTA`, after a `STATE_SNAPSHOT` of the baseline the first time (AG-UI: never a delta
//! without a baseline). The principal and secrets never enter state: tools write only what the
//! user asked for.

use std::sync::{Arc, Mutex, PoisonError};

use agui_protocol::JsonPatchOperation;
use serde_json::Value;

/// Shared, patchable state of one run. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct StateAccess(Arc<Mutex<Inner>>);

#[derive(Debug, Default)]
struct Inner {
    current: Value,
    pending: Vec<JsonPatchOperation>,
}

impl StateAccess {
    /// State starting from `baseline`.
    pub fn new(baseline: Value) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            current: baseline,
            pending: Vec::new(),
        })))
    }

    /// The current state (a copy).
    pub fn current(&self) -> Value {
        self.lock().current.clone()
    }

    /// Sets `value` at the top-level object member `key` of the object at `/<parent>` (creating
    /// the parent object if missing), as the minimal `add` operations.
    pub fn set_member(&self, parent: &str, key: &str, value: Value) {
        let mut inner = self.lock();
        if !inner.current.is_object() {
            inner.current = Value::Object(serde_json::Map::new());
            let op = JsonPatchOperation::Replace {
                path: String::new(),
                value: inner.current.clone(),
            };
            inner.pending.push(op);
        }
        let parent_path = format!("/{}", escape(parent));
        let parent_exists = inner.current.get(parent).is_some_and(Value::is_object);
        if parent_exists {
            let path = format!("{parent_path}/{}", escape(key));
            if let Some(object) = inner.current.get_mut(parent).and_then(Value::as_object_mut) {
                object.insert(key.to_owned(), value.clone());
            }
            inner.pending.push(JsonPatchOperation::Add { path, value });
        } else {
            let object = serde_json::json!({ key: value });
            if let Some(root) = inner.current.as_object_mut() {
                root.insert(parent.to_owned(), object.clone());
            }
            inner.pending.push(JsonPatchOperation::Add {
                path: parent_path,
                value: object,
            });
        }
    }

    /// Takes the operations made since the last call.
    pub fn take_pending(&self) -> Vec<JsonPatchOperation> {
        std::mem::take(&mut self.lock().pending)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held only for in-memory edits, never across an .await.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn first_member_creates_the_parent_then_adds_to_it() {
        let state = StateAccess::new(json!({"theme": "light"}));
        state.set_member("preferences", "language", json!("fr"));
        state.set_member("preferences", "a/b", json!(1));
        assert_eq!(
            state.current(),
            json!({"theme": "light", "preferences": {"language": "fr", "a/b": 1}})
        );
        assert_eq!(
            state.take_pending(),
            vec![
                JsonPatchOperation::Add {
                    path: "/preferences".into(),
                    value: json!({"language": "fr"})
                },
                JsonPatchOperation::Add {
                    path: "/preferences/a~1b".into(),
                    value: json!(1)
                },
            ]
        );
        assert!(state.take_pending().is_empty());
    }

    #[test]
    fn a_non_object_baseline_is_replaced_by_an_object() {
        let state = StateAccess::new(json!(null));
        state.set_member("preferences", "x", json!(true));
        assert_eq!(state.current(), json!({"preferences": {"x": true}}));
        assert_eq!(state.take_pending().len(), 2);
    }
}
