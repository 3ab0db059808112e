//! Run and step lifecycle events (reference §1 `RUN_*`, `STEP_*`) and their sub-types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::BaseEvent;
use crate::ids::{RunId, ThreadId, ToolCallId};
use crate::input::RunAgentInput;

/// `RUN_STARTED`: the first event of every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStarted {
    /// Echo of the input's `threadId`.
    pub thread_id: ThreadId,
    /// Echo of the input's `runId`.
    pub run_id: RunId,
    /// The producer's own protocol version (`"1.0"`), not an echo (reference §9.8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The run this one continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
    /// Echo of the run input (1.0 only; stripped for 0.0.x clients).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Box<RunAgentInput>>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl RunStarted {
    /// A `RUN_STARTED` with only the ids.
    pub fn new(thread_id: impl Into<ThreadId>, run_id: impl Into<RunId>) -> Self {
        Self {
            thread_id: thread_id.into(),
            run_id: run_id.into(),
            protocol_version: None,
            parent_run_id: None,
            input: None,
            base: BaseEvent::default(),
        }
    }
}

/// `RUN_FINISHED`: the run ended; nothing may be open (reference §4 rule 9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunFinished {
    /// Must equal `RUN_STARTED.threadId`.
    pub thread_id: ThreadId,
    /// Must equal `RUN_STARTED.runId`.
    pub run_id: RunId,
    /// The run's result (any non-null JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// How the run ended; absent means success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunFinishedOutcome>,
    /// Token usage, one entry per model/provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Vec<TokenUsage>>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl RunFinished {
    /// A `RUN_FINISHED` with only the ids (an implicit success).
    pub fn new(thread_id: impl Into<ThreadId>, run_id: impl Into<RunId>) -> Self {
        Self {
            thread_id: thread_id.into(),
            run_id: run_id.into(),
            result: None,
            outcome: None,
            usage: None,
            base: BaseEvent::default(),
        }
    }
}

/// `RUN_FINISHED.outcome`; each variant is closed (success cannot carry interrupts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum RunFinishedOutcome {
    /// The run completed. `pendingToolCallIds` lists frontend tool calls left for the client,
    /// in call order (reference §7).
    Success {
        /// Unanswered frontend tool calls.
        #[serde(skip_serializing_if = "Option::is_none")]
        pending_tool_call_ids: Option<Vec<ToolCallId>>,
    },
    /// The run stopped to ask the user something (at least one interrupt).
    Interrupt {
        /// What the user must answer.
        interrupts: Vec<Interrupt>,
    },
    /// A deliberate stop, after closing everything opened (reference §7 "Cancelled").
    Cancelled,
}

/// One question an interrupted run asks (reference §1 `Interrupt`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Interrupt {
    /// Unique within the run; answered by `ResumeEntry.interruptId`.
    pub id: String,
    /// Open reason (`tool_call`, `input_required`, `confirmation`, `<framework>:<name>`).
    pub reason: String,
    /// Text for the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The tool call awaiting approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<ToolCallId>,
    /// JSON Schema of the expected answer (an object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Map<String, Value>>,
    /// When the interrupt lapses (ISO-8601 by convention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// The subagent that raised it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
}

impl Interrupt {
    /// An interrupt with an id and a reason.
    pub fn new(id: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            reason: reason.into(),
            message: None,
            tool_call_id: None,
            response_schema: None,
            expires_at: None,
            metadata: None,
            subagent_run_id: None,
        }
    }
}

/// Token usage of one model/provider (reference §1 `TokenUsage`). Unknown counts stay absent
/// (never 0); cached and reasoning tokens are parts of the totals.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Provider name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Prompt tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Completion tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// input + output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Reasoning tokens (part of the output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Prompt tokens served from cache (part of the input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input_tokens: Option<u64>,
    /// Prompt tokens written to cache (part of the input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_input_tokens: Option<u64>,
}

/// `RUN_ERROR`: the run failed. Allowed at any time; ends everything open. Carries no
/// `threadId`/`runId` (reference §9.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    /// Safe, human-readable text.
    pub message: String,
    /// A stable machine code (open string; ours are catalogued in `proto-schemas/api/`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Token usage spent before the failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Vec<TokenUsage>>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl RunError {
    /// A `RUN_ERROR` with a message and no code.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
            usage: None,
            base: BaseEvent::default(),
        }
    }

    /// A `RUN_ERROR` with a message and a stable code.
    pub fn with_code(message: impl Into<String>, code: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            ..Self::new(message)
        }
    }
}

/// `STEP_STARTED`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepStarted {
    /// The step's name (its identity for `STEP_FINISHED`).
    pub step_name: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl StepStarted {
    /// A `STEP_STARTED` for `step_name`.
    pub fn new(step_name: impl Into<String>) -> Self {
        Self {
            step_name: step_name.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}

/// `STEP_FINISHED`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepFinished {
    /// The name given in `STEP_STARTED`.
    pub step_name: String,
    /// Attribution to a subagent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Base fields.
    #[serde(flatten)]
    pub base: BaseEvent,
}

impl StepFinished {
    /// A `STEP_FINISHED` for `step_name`.
    pub fn new(step_name: impl Into<String>) -> Self {
        Self {
            step_name: step_name.into(),
            subagent_run_id: None,
            base: BaseEvent::default(),
        }
    }
}
