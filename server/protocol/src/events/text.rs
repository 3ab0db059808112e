//! Text message events (reference §1 `TEXT_MESSAGE_*`).

use serde::{Deserialize, Serialize};

use super::{BaseEvent, TextRole};
use crate::ids::MessageId;

/// `TEXT_MESSAGE_START`: opens a text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageStart {
    /// The message id (kept identical in later `MESSAGES_SNAPSHOT`s).
    pub message_id: MessageId,
    /// The author role; absent means `assistant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<TextRole>,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl TextMessageStart {
    /// An assistant message start. The role is written out (`"role":"assistant"`), as
    /// `@ag-ui/encoder` examples do, so every client version reads it the same way.
    pub fn new(message_id: impl Into<MessageId>) -> Self {
        Self {
            message_id: message_id.into(),
            role: Some(TextRole::Assistant),
            name: None,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TEXT_MESSAGE_CONTENT`: a piece of an open text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageContent {
    /// The open message.
    pub message_id: MessageId,
    /// The text to append (may be empty in 1.0).
    pub delta: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl TextMessageContent {
    /// A delta for `message_id`.
    pub fn new(message_id: impl Into<MessageId>, delta: impl Into<String>) -> Self {
        Self {
            message_id: message_id.into(),
            delta: delta.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TEXT_MESSAGE_END`: closes a text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageEnd {
    /// The open message.
    pub message_id: MessageId,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl TextMessageEnd {
    /// Ends `message_id`.
    pub fn new(message_id: impl Into<MessageId>) -> Self {
        Self {
            message_id: message_id.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TEXT_MESSAGE_CHUNK`: start, content and end folded together; the client expands it
/// (reference §4 "Chunk expansion"). The first chunk of a message needs `messageId`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessageChunk {
    /// The message (required on the first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// The author role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<TextRole>,
    /// The text to append.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}
