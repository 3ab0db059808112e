//! The 31 AG-UI 1.0 events.
//!
//! Reference §1 ([npm-core] `src/generated/types.ts`, schema `https://ag-ui.com/spec/1.0/schema.json`).
//! One serde enum tagged by `type` (`SCREAMING_SNAKE_CASE`); payload structs use camelCase and
//! flatten the [`BaseEvent`] fields in last. Serialized field order is: `type`, the payload's
//! fields in declaration order, then `timestamp`, `rawEvent`, `metadata`; e.g.
//! `{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant","timestamp":1700000000000}`.
//!
//! Every optional field is omitted when absent, never written as `null`: the 1.0 client rejects
//! `null` in optional fields (reference §4 "Enforcement", §9.4).
//!
//! Payload structs live in submodules by family and are re-exported here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

mod lifecycle;
mod other;
mod reasoning;
mod state;
mod subagent;
mod text;
mod tool;

pub use lifecycle::*;
pub use other::*;
pub use reasoning::*;
pub use state::*;
pub use subagent::*;
pub use text::*;
pub use tool::*;

/// The fields every event may carry besides `type` (reference §1 "Base fields").
///
/// Flattened into every payload struct, after the payload's own fields. The two rare fields are
/// boxed: every event is moved several times between the model and the wire (a stream, the run
/// loop, the guard, the dialect, the encoder), and inline they tripled the size of a text delta
/// (`BaseEvent` 160 bytes instead of 32; see the size test in `tests/it/events.rs`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseEvent {
    /// Milliseconds since the Unix epoch; an integer ("Deliberately not a float").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The upstream event this one was derived from (any JSON except null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_event: Option<Box<Value>>,
    /// Free-form metadata; the key `ag-ui` is reserved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Box<Map<String, Value>>>,
}

impl BaseEvent {
    /// A base with only a timestamp.
    pub fn at(timestamp_ms: i64) -> Self {
        Self {
            timestamp: Some(timestamp_ms),
            ..Self::default()
        }
    }
}

/// `role` of a text message (`TEXT_MESSAGE_START`/`_CHUNK`); absent means `assistant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextRole {
    /// `"developer"`
    Developer,
    /// `"system"`
    System,
    /// `"assistant"`, the default.
    #[default]
    Assistant,
    /// `"user"`
    User,
}

/// `role` of a `TOOL_CALL_RESULT`: only `"tool"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolRole {
    /// `"tool"`
    #[default]
    Tool,
}

/// `role` of a `REASONING_MESSAGE_START`: required and always `"reasoning"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningRole {
    /// `"reasoning"`
    #[default]
    Reasoning,
}

macro_rules! define_events {
    ($( $(#[$doc:meta])* $variant:ident = $wire:literal, )*) => {
        /// One AG-UI event, tagged by `type` on the wire.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum Event {
            $( $(#[$doc])* $variant($variant), )*
        }

        /// The `type` of an event, without its payload.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum EventType {
            $( $(#[$doc])* $variant, )*
        }

        impl EventType {
            /// All 31 event types, in the order of the [`Event`] enum.
            pub const ALL: [EventType; 31] = [ $( EventType::$variant, )* ];

            /// The wire name, e.g. `"RUN_STARTED"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( EventType::$variant => $wire, )*
                }
            }

            /// The type with this wire name, if it is one of the 31.
            pub fn from_wire(name: &str) -> Option<EventType> {
                match name {
                    $( $wire => Some(EventType::$variant), )*
                    _ => None,
                }
            }
        }

        impl Event {
            /// This event's type.
            pub fn event_type(&self) -> EventType {
                match self {
                    $( Event::$variant(_) => EventType::$variant, )*
                }
            }

            /// The base fields (timestamp, rawEvent, metadata).
            pub fn base(&self) -> &BaseEvent {
                match self {
                    $( Event::$variant(e) => &e.base, )*
                }
            }

            /// The base fields, mutably (e.g. to stamp a timestamp).
            pub fn base_mut(&mut self) -> &mut BaseEvent {
                match self {
                    $( Event::$variant(e) => &mut e.base, )*
                }
            }
        }

        $(
            impl From<$variant> for Event {
                fn from(event: $variant) -> Self {
                    Event::$variant(event)
                }
            }
        )*
    };
}

define_events! {
    /// `RUN_STARTED`: the first event of a run.
    RunStarted = "RUN_STARTED",
    /// `RUN_FINISHED`: the run ended (success, interrupt or cancelled).
    RunFinished = "RUN_FINISHED",
    /// `RUN_ERROR`: the run failed; ends everything open.
    RunError = "RUN_ERROR",
    /// `STEP_STARTED`
    StepStarted = "STEP_STARTED",
    /// `STEP_FINISHED`
    StepFinished = "STEP_FINISHED",
    /// `TEXT_MESSAGE_START`
    TextMessageStart = "TEXT_MESSAGE_START",
    /// `TEXT_MESSAGE_CONTENT`
    TextMessageContent = "TEXT_MESSAGE_CONTENT",
    /// `TEXT_MESSAGE_END`
    TextMessageEnd = "TEXT_MESSAGE_END",
    /// `TEXT_MESSAGE_CHUNK`: start/content/end in one, expanded by the client.
    TextMessageChunk = "TEXT_MESSAGE_CHUNK",
    /// `TOOL_CALL_START`
    ToolCallStart = "TOOL_CALL_START",
    /// `TOOL_CALL_ARGS`
    ToolCallArgs = "TOOL_CALL_ARGS",
    /// `TOOL_CALL_END`
    ToolCallEnd = "TOOL_CALL_END",
    /// `TOOL_CALL_CHUNK`: start/args/end in one, expanded by the client.
    ToolCallChunk = "TOOL_CALL_CHUNK",
    /// `TOOL_CALL_RESULT`: a backend tool's result, minting a tool message.
    ToolCallResult = "TOOL_CALL_RESULT",
    /// `STATE_SNAPSHOT`: replaces the client's state.
    StateSnapshot = "STATE_SNAPSHOT",
    /// `STATE_DELTA`: an RFC 6902 patch of the client's state.
    StateDelta = "STATE_DELTA",
    /// `MESSAGES_SNAPSHOT`: the producer-owned messages, whole.
    MessagesSnapshot = "MESSAGES_SNAPSHOT",
    /// `ACTIVITY_SNAPSHOT`
    ActivitySnapshot = "ACTIVITY_SNAPSHOT",
    /// `ACTIVITY_DELTA`
    ActivityDelta = "ACTIVITY_DELTA",
    /// `RAW`: an upstream event passed through.
    Raw = "RAW",
    /// `CUSTOM`: an application-defined event.
    Custom = "CUSTOM",
    /// `REASONING_START`: opens a reasoning span.
    ReasoningStart = "REASONING_START",
    /// `REASONING_END`: closes a reasoning span.
    ReasoningEnd = "REASONING_END",
    /// `REASONING_MESSAGE_START`
    ReasoningMessageStart = "REASONING_MESSAGE_START",
    /// `REASONING_MESSAGE_CONTENT`
    ReasoningMessageContent = "REASONING_MESSAGE_CONTENT",
    /// `REASONING_MESSAGE_END`
    ReasoningMessageEnd = "REASONING_MESSAGE_END",
    /// `REASONING_MESSAGE_CHUNK`
    ReasoningMessageChunk = "REASONING_MESSAGE_CHUNK",
    /// `REASONING_ENCRYPTED_VALUE`
    ReasoningEncryptedValue = "REASONING_ENCRYPTED_VALUE",
    /// `SUBAGENT_STARTED`
    SubagentStarted = "SUBAGENT_STARTED",
    /// `SUBAGENT_FINISHED`
    SubagentFinished = "SUBAGENT_FINISHED",
    /// `SUBAGENT_ERROR`
    SubagentError = "SUBAGENT_ERROR",
}

impl Event {
    /// The `subagentRunId` this event is attributed to, if any (the optional attribution of
    /// most events, the required field of `SUBAGENT_*`).
    pub fn subagent_run_id(&self) -> Option<&str> {
        match self {
            Event::RunStarted(_)
            | Event::RunFinished(_)
            | Event::RunError(_)
            | Event::MessagesSnapshot(_) => None,
            Event::StepStarted(e) => e.subagent_run_id.as_deref(),
            Event::StepFinished(e) => e.subagent_run_id.as_deref(),
            Event::TextMessageStart(e) => e.subagent_run_id.as_deref(),
            Event::TextMessageContent(e) => e.subagent_run_id.as_deref(),
            Event::TextMessageEnd(e) => e.subagent_run_id.as_deref(),
            Event::TextMessageChunk(e) => e.subagent_run_id.as_deref(),
            Event::ToolCallStart(e) => e.subagent_run_id.as_deref(),
            Event::ToolCallArgs(e) => e.subagent_run_id.as_deref(),
            Event::ToolCallEnd(e) => e.subagent_run_id.as_deref(),
            Event::ToolCallChunk(e) => e.subagent_run_id.as_deref(),
            Event::ToolCallResult(e) => e.subagent_run_id.as_deref(),
            Event::StateSnapshot(e) => e.subagent_run_id.as_deref(),
            Event::StateDelta(e) => e.subagent_run_id.as_deref(),
            Event::ActivitySnapshot(e) => e.subagent_run_id.as_deref(),
            Event::ActivityDelta(e) => e.subagent_run_id.as_deref(),
            Event::Raw(e) => e.subagent_run_id.as_deref(),
            Event::Custom(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningStart(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningEnd(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningMessageStart(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningMessageContent(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningMessageEnd(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningMessageChunk(e) => e.subagent_run_id.as_deref(),
            Event::ReasoningEncryptedValue(e) => e.subagent_run_id.as_deref(),
            Event::SubagentStarted(e) => Some(&e.subagent_run_id),
            Event::SubagentFinished(e) => Some(&e.subagent_run_id),
            Event::SubagentError(e) => Some(&e.subagent_run_id),
        }
    }

    /// Sets the timestamp (milliseconds since the Unix epoch) and returns the event.
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.base_mut().timestamp = Some(timestamp_ms);
        self
    }

    /// True for `RUN_FINISHED` and `RUN_ERROR`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::RunFinished(_) | Event::RunError(_))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_names_match_serde_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for ty in EventType::ALL {
            let json = serde_json::to_value(ty).unwrap();
            assert_eq!(json, Value::String(ty.as_str().to_owned()));
            assert_eq!(EventType::from_wire(ty.as_str()), Some(ty));
            assert!(seen.insert(ty.as_str()), "duplicate {ty}");
        }
        assert_eq!(seen.len(), 31);
        assert_eq!(EventType::from_wire("THINKING_START"), None);
    }

    #[test]
    fn text_message_start_serializes_in_declaration_order_with_base_last() {
        let event: Event = TextMessageStart::new("m1").into();
        let event = event.with_timestamp(1_700_000_000_000);
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"TEXT_MESSAGE_START","messageId":"m1","role":"assistant","timestamp":1700000000000}"#
        );
        assert_eq!(event.event_type(), EventType::TextMessageStart);
        assert_eq!(event.base().timestamp, Some(1_700_000_000_000));
    }

    #[test]
    fn float_timestamps_are_rejected() {
        let json = r#"{"type":"TEXT_MESSAGE_END","messageId":"m1","timestamp":1.5}"#;
        assert!(serde_json::from_str::<Event>(json).is_err());
        let json = r#"{"type":"TEXT_MESSAGE_END","messageId":"m1","timestamp":15}"#;
        assert!(serde_json::from_str::<Event>(json).is_ok());
    }

    #[test]
    fn unknown_type_is_rejected_and_unknown_members_ignored() {
        assert!(serde_json::from_str::<Event>(r#"{"type":"FOO_BAR"}"#).is_err());
        let e: Event =
            serde_json::from_str(r#"{"type":"TEXT_MESSAGE_END","messageId":"m1","extra":1}"#)
                .unwrap();
        assert_eq!(e, Event::TextMessageEnd(TextMessageEnd::new("m1")));
    }
}
