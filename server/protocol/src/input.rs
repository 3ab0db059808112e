//! `RunAgentInput`, the request body of a run, and the messages it carries.
//!
//! Reference §2 ([npm-core] `src/generated/types.ts`, `docs/spec/1.1/basic/run-input.mdx`).
//! Input rules followed here:
//! - unknown members are ignored (never `deny_unknown_fields`): "unknown input members → strip
//!   with warning and run";
//! - absent `tools`/`context` mean `[]`; absent or `null` `state` means `{}`;
//! - a malformed *known* field is rejected before `RUN_STARTED` with an HTTP error, which is
//!   what [`parse_run_input`] reports (with the JSON Pointer of the offending member);
//! - every id (`threadId`, `runId`, `parentRunId`, message ids, tool-call ids) obeys
//!   [`crate::ids::check_id`]: 1 to [`crate::ids::MAX_ID_BYTES`] bytes, no control character.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::content::UserContent;
use crate::ids::{MessageId, RunId, ThreadId, ToolCallId};

/// The body of `POST /chat`: everything a run needs, sent whole on every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunAgentInput {
    /// The thread this run belongs to.
    pub thread_id: ThreadId,
    /// The id of this run, chosen by the client.
    pub run_id: RunId,
    /// The complete message history (no side channel).
    pub messages: Vec<Message>,
    /// The consumer's protocol version (`"1.0"`); absent from 0.0.x clients, which is how the
    /// dialect is chosen (see [`crate::dialect`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The run this one continues, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
    /// The client's state; absent or `null` becomes `{}` (reference §2: "absent => {}; TS schema
    /// maps null -> absent").
    #[serde(default = "empty_object", deserialize_with = "null_as_empty_object")]
    pub state: Value,
    /// Tools the client offers (frontend tools); absent means none.
    #[serde(default)]
    pub tools: Vec<Tool>,
    /// Context entries the agent should show the model; absent means none.
    #[serde(default)]
    pub context: Vec<Context>,
    /// Opaque properties forwarded by the client (CopilotKit `properties`); `null` reads as
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forwarded_props: Option<Value>,
    /// Answers to the interrupts of the previous run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume: Option<Vec<ResumeEntry>>,
}

impl RunAgentInput {
    /// An input with the given ids and history, an empty state and no tools, context or props.
    pub fn new(
        thread_id: impl Into<ThreadId>,
        run_id: impl Into<RunId>,
        messages: Vec<Message>,
    ) -> Self {
        Self {
            thread_id: thread_id.into(),
            run_id: run_id.into(),
            messages,
            protocol_version: None,
            parent_run_id: None,
            state: empty_object(),
            tools: Vec::new(),
            context: Vec::new(),
            forwarded_props: None,
            resume: None,
        }
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn null_as_empty_object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
    let value = Value::deserialize(deserializer)?;
    Ok(if value.is_null() {
        empty_object()
    } else {
        value
    })
}

/// A tool the client offers (reference §2 `Tool`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The tool's name, as the model will call it.
    pub name: String,
    /// What the tool does. Required by the schema; tolerated as absent (read as `""`) because
    /// a missing description is harmless and 0.0.x clients are loose about it.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments (opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A context entry the agent SHOULD inject into the model's context (reference §2 `Context`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    /// What the value is.
    pub description: String,
    /// The value.
    pub value: String,
}

/// The answer to one interrupt of the previous run (reference §2 `ResumeEntry`, §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumeEntry {
    /// The `Interrupt.id` this answers.
    pub interrupt_id: String,
    /// Whether the interrupt was resolved or cancelled.
    pub status: ResumeStatus,
    /// The answer (any non-null JSON).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `ResumeEntry.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResumeStatus {
    /// The user answered.
    Resolved,
    /// The user declined.
    Cancelled,
}

/// One message of the history, discriminated by `role` (reference §2 "Message").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// Developer instructions (dropped from client input by default, DESIGN "Identity").
    Developer(DeveloperMessage),
    /// System instructions (dropped from client input by default).
    System(SystemMessage),
    /// A model turn: text and/or tool calls.
    Assistant(AssistantMessage),
    /// A user turn.
    User(UserMessage),
    /// The result of a tool call.
    Tool(ToolMessage),
    /// A UI activity (clients strip these before sending).
    Activity(ActivityMessage),
    /// Model reasoning.
    Reasoning(ReasoningMessage),
}

impl Message {
    /// The message id.
    pub fn id(&self) -> &MessageId {
        match self {
            Message::Developer(m) => &m.id,
            Message::System(m) => &m.id,
            Message::Assistant(m) => &m.id,
            Message::User(m) => &m.id,
            Message::Tool(m) => &m.id,
            Message::Activity(m) => &m.id,
            Message::Reasoning(m) => &m.id,
        }
    }

    /// The wire value of `role`.
    pub fn role(&self) -> &'static str {
        match self {
            Message::Developer(_) => "developer",
            Message::System(_) => "system",
            Message::Assistant(_) => "assistant",
            Message::User(_) => "user",
            Message::Tool(_) => "tool",
            Message::Activity(_) => "activity",
            Message::Reasoning(_) => "reasoning",
        }
    }
}

/// `role: "developer"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeveloperMessage {
    /// Message id.
    pub id: MessageId,
    /// The instructions.
    pub content: String,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `role: "system"` (same fields as [`DeveloperMessage`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemMessage {
    /// Message id.
    pub id: MessageId,
    /// The instructions.
    pub content: String,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `role: "assistant"`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantMessage {
    /// Message id.
    pub id: MessageId,
    /// The text, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls the model made in this turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `role: "user"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserMessage {
    /// Message id.
    pub id: MessageId,
    /// A string or content parts.
    pub content: UserContent,
    /// Optional author name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl UserMessage {
    /// A user message with the given id and content.
    pub fn new(id: impl Into<MessageId>, content: impl Into<UserContent>) -> Self {
        Self {
            id: id.into(),
            content: content.into(),
            name: None,
            encrypted_value: None,
            subagent_run_id: None,
            metadata: None,
        }
    }
}

/// `role: "tool"`: the result of one tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolMessage {
    /// Message id.
    pub id: MessageId,
    /// The result: a string or content parts.
    pub content: UserContent,
    /// The call this answers.
    pub tool_call_id: ToolCallId,
    /// Failure text, alongside `content`, when the tool failed or was declined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl ToolMessage {
    /// A tool message answering `tool_call_id`.
    pub fn new(
        id: impl Into<MessageId>,
        tool_call_id: impl Into<ToolCallId>,
        content: impl Into<UserContent>,
    ) -> Self {
        Self {
            id: id.into(),
            content: content.into(),
            tool_call_id: tool_call_id.into(),
            error: None,
            encrypted_value: None,
            subagent_run_id: None,
            metadata: None,
        }
    }
}

/// `role: "activity"`: a structured UI activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityMessage {
    /// Message id.
    pub id: MessageId,
    /// Open activity discriminator.
    pub activity_type: String,
    /// The activity's content (a JSON object).
    pub content: Map<String, Value>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `role: "reasoning"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReasoningMessage {
    /// Message id.
    pub id: MessageId,
    /// The reasoning text.
    pub content: String,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// The subagent that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent_run_id: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A tool call inside an assistant message (reference §2 `ToolCall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    /// Tool call id.
    pub id: ToolCallId,
    /// Always `"function"`; tolerated as absent on input.
    #[serde(rename = "type", default = "function_kind")]
    pub kind: String,
    /// The function called.
    pub function: FunctionCall,
    /// Provider-encrypted payload, passed through.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encrypted_value: Option<String>,
    /// Free-form metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl ToolCall {
    /// A `function` tool call.
    pub fn new(
        id: impl Into<ToolCallId>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: function_kind(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
            encrypted_value: None,
            metadata: None,
        }
    }
}

fn function_kind() -> String {
    "function".to_owned()
}

/// The function part of a [`ToolCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON *text* (not parsed; need not be valid JSON).
    pub arguments: String,
}
