//! Reasoning events (reference §1 `REASONING_*`; they replace 0.0.x `THINKING_*`).
//!
//! A reasoning *span* (`REASONING_START`/`_END`) and reasoning *messages*
//! (`REASONING_MESSAGE_*`) are tracked separately by the client (reference §4 rule 7).

use serde::{Deserialize, Serialize};

use super::{BaseEvent, ReasoningRole};
use crate::ids::MessageId;

macro_rules! id_event {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[doc = $what]
            pub message_id: MessageId,
            /// Attribution to a subagent.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub subagent_run_id: Option<String>,
            /// Base fields.
            #[serde(flatten)]
            pub base: BaseEvent,
        }

        impl $name {
            /// The event for `message_id`.
            pub fn new(message_id: impl Into<MessageId>) -> Self {
                Self {
                    message_id: message_id.into(),
                    subagent_run_id: None,
                    base: BaseEvent::default(),
                }
            }
        }
    };
}

id_event!(
    /// `REASONING_START`: opens a reasoning span.
    ReasoningStart,
    "The span's id."
);
id_event!(
    /// `REASONING_END`: closes a reasoning span.
    ReasoningEnd,
    "The span's id."
);
id_event!(
    /// `REASONING_MESSAGE_END`: closes a reasoning message.
    ReasoningMessageEnd,
    "The open reasoning message."
);

/// `REASONING_MESSAGE_START`: opens a reasoning message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningMessageStart {
    /// The reasoning message's id.
    pub message_id: MessageId,
    /// Required and always `"reasoning"`.
    pub role: ReasoningRole,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ReasoningMessageStart {
    /// Opens reasoning message `message_id`.
    pub fn new(message_id: impl Into<MessageId>) -> Self {
        Self {
            message_id: message_id.into(),
            role: ReasoningRole::Reasoning,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `REASONING_MESSAGE_CONTENT`: a piece of an open reasoning message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningMessageContent {
    /// The open reasoning message.
    pub message_id: MessageId,
    /// Text to append.
    pub delta: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ReasoningMessageContent {
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

/// `REASONING_MESSAGE_CHUNK`: start, content and end folded together; the first chunk needs
/// `messageId`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningMessageChunk {
    /// The message (required on the first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<MessageId>,
    /// Text to append.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

/// What a `REASONING_ENCRYPTED_VALUE` is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasoningEncryptedValueSubtype {
    /// `"tool-call"`: `entityId` is a tool call id.
    ToolCall,
    /// `"message"`: `entityId` is a message id.
    Message,
}

/// `REASONING_ENCRYPTED_VALUE`: an opaque provider value attached to a message or tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningEncryptedValue {
    /// What `entity_id` names.
    pub subtype: ReasoningEncryptedValueSubtype,
    /// The message or tool call id.
    pub entity_id: String,
    /// The opaque value.
    pub encrypted_value: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ReasoningEncryptedValue {
    /// An encrypted value for an entity.
    pub fn new(
        subtype: ReasoningEncryptedValueSubtype,
        entity_id: impl Into<String>,
        encrypted_value: impl Into<String>,
    ) -> Self {
        Self {
            subtype,
            entity_id: entity_id.into(),
            encrypted_value: encrypted_value.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}
