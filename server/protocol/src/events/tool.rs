//! Tool call events (reference §1 `TOOL_CALL_*`).

use serde::{Deserialize, Serialize};

use super::{BaseEvent, ToolRole};
use crate::content::ToolResultContent;
use crate::ids::{MessageId, ToolCallId};

/// `TOOL_CALL_START`: opens a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallStart {
    /// The call's id.
    pub tool_call_id: ToolCallId,
    /// The tool called.
    pub tool_call_name: String,
    /// The assistant message this call belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ToolCallStart {
    /// Starts a call of `tool_call_name`.
    pub fn new(tool_call_id: impl Into<ToolCallId>, tool_call_name: impl Into<String>) -> Self {
        Self {
            tool_call_id: tool_call_id.into(),
            tool_call_name: tool_call_name.into(),
            parent_message_id: None,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TOOL_CALL_ARGS`: a fragment of the arguments' JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallArgs {
    /// The open call.
    pub tool_call_id: ToolCallId,
    /// Text to append to the arguments (may be empty).
    pub delta: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ToolCallArgs {
    /// An arguments fragment for `tool_call_id`.
    pub fn new(tool_call_id: impl Into<ToolCallId>, delta: impl Into<String>) -> Self {
        Self {
            tool_call_id: tool_call_id.into(),
            delta: delta.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TOOL_CALL_END`: the arguments are complete (not necessarily valid JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallEnd {
    /// The open call.
    pub tool_call_id: ToolCallId,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ToolCallEnd {
    /// Ends `tool_call_id`.
    pub fn new(tool_call_id: impl Into<ToolCallId>) -> Self {
        Self {
            tool_call_id: tool_call_id.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `TOOL_CALL_CHUNK`: start, args and end folded together; the first chunk of a call needs
/// `toolCallId` and `toolCallName` (reference §4 "Chunk expansion").
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallChunk {
    /// The call (required on the first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<ToolCallId>,
    /// The tool (required on the first chunk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_name: Option<String>,
    /// The assistant message this call belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// Text to append to the arguments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

/// `TOOL_CALL_RESULT`: a backend tool's result; mints the tool message `messageId`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallResult {
    /// The tool message this result creates.
    pub message_id: MessageId,
    /// The call answered.
    pub tool_call_id: ToolCallId,
    /// The result: a string, or content parts (1.0 only; the 0.0.x dialect flattens them).
    pub content: ToolResultContent,
    /// Always `tool` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<ToolRole>,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl ToolCallResult {
    /// A result for `tool_call_id`, minting message `message_id`.
    pub fn new(
        message_id: impl Into<MessageId>,
        tool_call_id: impl Into<ToolCallId>,
        content: impl Into<ToolResultContent>,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            role: None,
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}
