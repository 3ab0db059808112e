//! State, messages and activity events (reference §1 `STATE_*`, `MESSAGES_SNAPSHOT`,
//! `ACTIVITY_*`), and RFC 6902 JSON Patch operations.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::BaseEvent;
use crate::ids::MessageId;
use crate::input::Message;

/// `STATE_SNAPSHOT`: replaces the client's state wholesale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSnapshot {
    /// The new state (any JSON).
    pub snapshot: Value,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl StateSnapshot {
    /// A snapshot of `snapshot`.
    pub fn new(snapshot: Value) -> Self {
        Self {
            snapshot,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `STATE_DELTA`: an RFC 6902 patch applied atomically to the client's state. Never send one
/// without a baseline (reference §7 "State").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDelta {
    /// The patch.
    pub delta: Vec<JsonPatchOperation>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl StateDelta {
    /// A delta of `delta`.
    pub fn new(delta: Vec<JsonPatchOperation>) -> Self {
        Self {
            delta,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `MESSAGES_SNAPSHOT`: the complete set of producer-owned messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesSnapshot {
    /// The messages.
    pub messages: Vec<Message>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl MessagesSnapshot {
    /// A snapshot of `messages`.
    pub fn new(messages: Vec<Message>) -> Self {
        Self {
            messages,
            base: BaseEvent::default(),
        }
    }
}

/// `ACTIVITY_SNAPSHOT`: the content of an activity message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivitySnapshot {
    /// The activity message.
    pub message_id: MessageId,
    /// Open activity discriminator.
    pub activity_type: String,
    /// The content (a JSON object).
    pub content: Map<String, Value>,
    /// Replace existing content (absent means true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ActivitySnapshot {
    /// A snapshot of an activity.
    pub fn new(
        message_id: impl Into<MessageId>,
        activity_type: impl Into<String>,
        content: Map<String, Value>,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            activity_type: activity_type.into(),
            content,
            replace: None,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `ACTIVITY_DELTA`: an RFC 6902 patch of an activity's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityDelta {
    /// The activity message.
    pub message_id: MessageId,
    /// Open activity discriminator.
    pub activity_type: String,
    /// The patch.
    pub patch: Vec<JsonPatchOperation>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ActivityDelta {
    /// A patch of an activity.
    pub fn new(
        message_id: impl Into<MessageId>,
        activity_type: impl Into<String>,
        patch: Vec<JsonPatchOperation>,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            activity_type: activity_type.into(),
            patch,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// One RFC 6902 operation. `path`/`from` are JSON Pointers (RFC 6901). Operations are open
/// objects on the wire: unknown members are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum JsonPatchOperation {
    /// Add `value` at `path`.
    Add {
        /// Target.
        path: String,
        /// Value to add.
        value: Value,
    },
    /// Remove `path`.
    Remove {
        /// Target.
        path: String,
    },
    /// Replace the value at `path`.
    Replace {
        /// Target.
        path: String,
        /// New value.
        value: Value,
    },
    /// Move `from` to `path`.
    Move {
        /// Source.
        from: String,
        /// Target.
        path: String,
    },
    /// Copy `from` to `path`.
    Copy {
        /// Source.
        from: String,
        /// Target.
        path: String,
    },
    /// Test that `path` holds `value`.
    Test {
        /// Target.
        path: String,
        /// Expected value.
        value: Value,
    },
}
