//! Subagent events (reference §1 `SUBAGENT_*`, §4 rule 11).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::BaseEvent;
use crate::ids::{MessageId, ToolCallId};

/// `SUBAGENT_STARTED`: a subagent run begins inside this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentStarted {
    /// The subagent run's id (unique, never reused).
    pub subagent_run_id: String,
    /// The subagent's name.
    pub name: String,
    /// What it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The enclosing subagent, which must be active.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_subagent_run_id: Option<String>,
    /// The tool call that spawned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_tool_call_id: Option<ToolCallId>,
    /// The message that spawned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_message_id: Option<MessageId>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl SubagentStarted {
    /// Starts subagent run `subagent_run_id` named `name`.
    pub fn new(subagent_run_id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            subagent_run_id: subagent_run_id.into(),
            name: name.into(),
            description: None,
            parent_subagent_run_id: None,
            parent_tool_call_id: None,
            parent_message_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `SUBAGENT_FINISHED.outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum SubagentFinishedOutcome {
    /// The subagent completed.
    Success,
    /// The subagent is waiting on interrupts.
    Suspended {
        /// The interrupts it waits on.
        #[serde(skip_serializing_if = "Option::is_none")]
        interrupt_ids: Option<Vec<String>>,
    },
}

/// `SUBAGENT_FINISHED`: an active subagent ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentFinished {
    /// The active subagent run.
    pub subagent_run_id: String,
    /// Its result (any non-null JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// How it ended; absent means success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<SubagentFinishedOutcome>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl SubagentFinished {
    /// Finishes `subagent_run_id`.
    pub fn new(subagent_run_id: impl Into<String>) -> Self {
        Self {
            subagent_run_id: subagent_run_id.into(),
            result: None,
            outcome: None,
            base: BaseEvent::default(),
        }
    }
}

/// `SUBAGENT_ERROR`: an active subagent failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubagentError {
    /// The active subagent run.
    pub subagent_run_id: String,
    /// Safe, human-readable text.
    pub message: String,
    /// A machine code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl SubagentError {
    /// An error of `subagent_run_id`.
    pub fn new(subagent_run_id: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            subagent_run_id: subagent_run_id.into(),
            message: message.into(),
            code: None,
            base: BaseEvent::default(),
        }
    }
}
