//! AG-UI 1.0 protocol for agui-server: types, encoders, dialects and the sequence guard.
//!
//! This crate knows nothing of HTTP, async or auth (DESIGN.md "Crates"): it turns
//! [`Event`]s into bytes, request bodies into a validated [`RunAgentInput`], and decides what a
//! client can read. Facts come from `shared/reference/agui-1.0.md` (cited as "reference §N").
//!
//! # Layout
//!
//! - [`events`]: the 31 events ([`Event`], [`EventType`], [`BaseEvent`]) and their sub-types
//!   (outcomes, interrupts, token usage, JSON Patch operations).
//! - [`input`]: [`RunAgentInput`], [`Message`] and friends (the types).
//! - `parse`: [`parse_run_input`] / [`run_input_from_value`], which validate a body (ids
//!   included) and point at the offending member.
//! - [`content`]: content parts shared by messages and tool results.
//! - [`ids`]: the id newtypes ([`ThreadId`], [`RunId`], [`MessageId`], [`ToolCallId`]) and
//!   the bound on ids a client sends ([`check_id`], [`MAX_ID_BYTES`]).
//! - [`sse`]: `data: <json>\n\n` framing and the keep-alive comment.
//! - [`accept`]: `Accept` negotiation between SSE and protobuf.
//! - [`dialect`]: AG-UI 1.0 vs the 0.0.x clients CopilotKit ships; the one place that decides
//!   ([`Dialect`], and [`DialectAdapter`] for a whole stream).
//! - [`guard`]: [`SequenceGuard`], the server-side twin of the client's `verifyEvents`.
//!
//! A typical sink: `guard.check(&event)?`, then `adapter.adapt(event)` (a [`DialectAdapter`]),
//! then [`sse::encode_into`] (or the protobuf encoder).

pub mod accept;
pub mod content;
pub mod dialect;
pub mod events;
pub mod guard;
pub mod ids;
pub mod input;
mod parse;
pub mod proto;
pub mod sse;

pub use accept::{Encoding, PROTO_MEDIA_TYPE};
pub use content::{ContentPart, MediaPart, PartSource, TextPart, ToolResultContent, UserContent};
pub use dialect::{Dialect, DialectAdapter, PROTOCOL_VERSION, UnsupportedProtocolVersion};
pub use events::{
    ActivityDelta, ActivitySnapshot, BaseEvent, Custom, Event, EventType, Interrupt,
    JsonPatchOperation, MessagesSnapshot, Raw, ReasoningEncryptedValue,
    ReasoningEncryptedValueSubtype, ReasoningEnd, ReasoningMessageChunk, ReasoningMessageContent,
    ReasoningMessageEnd, ReasoningMessageStart, ReasoningRole, ReasoningStart, RunError,
    RunFinished, RunFinishedOutcome, RunStarted, StateDelta, StateSnapshot, StepFinished,
    StepStarted, SubagentError, SubagentFinished, SubagentFinishedOutcome, SubagentStarted,
    TextMessageChunk, TextMessageContent, TextMessageEnd, TextMessageStart, TextRole, TokenUsage,
    ToolCallArgs, ToolCallChunk, ToolCallEnd, ToolCallResult, ToolCallStart, ToolRole,
};
pub use guard::{OpenItems, SequenceGuard, Violation};
pub use ids::{IdError, MAX_ID_BYTES, MessageId, RunId, ThreadId, ToolCallId, check_id};
pub use input::{
    ActivityMessage, AssistantMessage, Context, DeveloperMessage, FunctionCall, Message,
    ReasoningMessage, ResumeEntry, ResumeStatus, RunAgentInput, SystemMessage, Tool, ToolCall,
    ToolMessage, UserMessage,
};
pub use parse::{InputError, InputErrorKind, parse_run_input, run_input_from_value};
