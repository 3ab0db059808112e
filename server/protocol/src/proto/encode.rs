//! JSON events → protobuf messages, field for field as `@ag-ui/proto@1.0.0`'s `encode` maps them
//! (`src/proto.ts` in the package's source map; reference §3.4).
//!
//! The shape differences from JSON all come from that file: `RUN_FINISHED.outcome` and
//! `SUBAGENT_FINISHED.outcome` are flattened into a string plus the variant's list; a
//! `TOOL_CALL_RESULT` or user/tool message carries string content in `content` and a part list
//! in `content_parts`; every message role shares one flat `Message`, an activity message's
//! object content going to `activity_content`; patch ops become the `JsonPatchOperationType`
//! enum. Absent optional fields stay absent; `null` inside JSON values is `null_value`.

use serde_json::{Map, Value as Json};

use super::message::{content_to_pb, message_to_pb, run_input_to_pb};
use super::pb;
use super::pb::event::Event as Arm;
use super::value::{opt_str, struct_from_map, value_from_json};
use crate::events::*;

/// Builds the protobuf `Event` for one JSON event, exactly as `@ag-ui/proto@1.0.0` would.
pub fn to_pb(event: &Event) -> pb::Event {
    let base = Some(base_to_pb(event.event_type(), event.base()));
    let arm = match event {
        Event::RunStarted(e) => Arm::RunStarted(pb::RunStartedEvent {
            base_event: base,
            thread_id: e.thread_id.to_string(),
            run_id: e.run_id.to_string(),
            parent_run_id: opt_str(&e.parent_run_id),
            input: e.input.as_deref().map(run_input_to_pb),
            protocol_version: e.protocol_version.clone(),
        }),
        Event::RunFinished(e) => Arm::RunFinished(run_finished_to_pb(e, base)),
        Event::RunError(e) => Arm::RunError(pb::RunErrorEvent {
            base_event: base,
            code: e.code.clone(),
            message: e.message.clone(),
            usage: usage_to_pb(e.usage.as_deref()),
        }),
        Event::StepStarted(e) => Arm::StepStarted(pb::StepStartedEvent {
            base_event: base,
            step_name: e.step_name.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::StepFinished(e) => Arm::StepFinished(pb::StepFinishedEvent {
            base_event: base,
            step_name: e.step_name.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::TextMessageStart(e) => Arm::TextMessageStart(pb::TextMessageStartEvent {
            base_event: base,
            message_id: e.message_id.to_string(),
            role: e.role.map(|r| text_role(r).to_owned()),
            name: e.name.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::TextMessageContent(e) => Arm::TextMessageContent(pb::TextMessageContentEvent {
            base_event: base,
            message_id: e.message_id.to_string(),
            delta: e.delta.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::TextMessageEnd(e) => Arm::TextMessageEnd(pb::TextMessageEndEvent {
            base_event: base,
            message_id: e.message_id.to_string(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::TextMessageChunk(e) => Arm::TextMessageChunk(pb::TextMessageChunkEvent {
            base_event: base,
            message_id: opt_str(&e.message_id),
            role: e.role.map(|r| text_role(r).to_owned()),
            delta: e.delta.clone(),
            name: e.name.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ToolCallStart(e) => Arm::ToolCallStart(pb::ToolCallStartEvent {
            base_event: base,
            tool_call_id: e.tool_call_id.to_string(),
            tool_call_name: e.tool_call_name.clone(),
            parent_message_id: opt_str(&e.parent_message_id),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ToolCallArgs(e) => Arm::ToolCallArgs(pb::ToolCallArgsEvent {
            base_event: base,
            tool_call_id: e.tool_call_id.to_string(),
            delta: e.delta.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ToolCallEnd(e) => Arm::ToolCallEnd(pb::ToolCallEndEvent {
            base_event: base,
            tool_call_id: e.tool_call_id.to_string(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ToolCallChunk(e) => Arm::ToolCallChunk(pb::ToolCallChunkEvent {
            base_event: base,
            tool_call_id: opt_str(&e.tool_call_id),
            tool_call_name: e.tool_call_name.clone(),
            parent_message_id: opt_str(&e.parent_message_id),
            delta: e.delta.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ToolCallResult(e) => {
            let (content, content_parts) = content_to_pb(&e.content);
            Arm::ToolCallResult(pb::ToolCallResultEvent {
                base_event: base,
                subagent_run_id: e.subagent_run_id.clone(),
                message_id: e.message_id.to_string(),
                tool_call_id: e.tool_call_id.to_string(),
                content,
                role: e.role.map(|ToolRole::Tool| "tool".to_owned()),
                content_parts,
            })
        }
        Event::StateSnapshot(e) => Arm::StateSnapshot(pb::StateSnapshotEvent {
            base_event: base,
            snapshot: Some(value_from_json(&e.snapshot)),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::StateDelta(e) => Arm::StateDelta(pb::StateDeltaEvent {
            base_event: base,
            delta: e.delta.iter().map(patch_op_to_pb).collect(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::MessagesSnapshot(e) => Arm::MessagesSnapshot(pb::MessagesSnapshotEvent {
            base_event: base,
            messages: e.messages.iter().map(message_to_pb).collect(),
        }),
        Event::ActivitySnapshot(e) => Arm::ActivitySnapshot(pb::ActivitySnapshotEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message_id: e.message_id.to_string(),
            activity_type: e.activity_type.clone(),
            content: Some(struct_from_map(&e.content)),
            replace: e.replace,
        }),
        Event::ActivityDelta(e) => Arm::ActivityDelta(pb::ActivityDeltaEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message_id: e.message_id.to_string(),
            activity_type: e.activity_type.clone(),
            patch: e.patch.iter().map(patch_op_to_pb).collect(),
        }),
        Event::Raw(e) => Arm::Raw(pb::RawEvent {
            base_event: base,
            event: Some(value_from_json(&e.event)),
            source: e.source.clone(),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::Custom(e) => Arm::Custom(pb::CustomEvent {
            base_event: base,
            name: e.name.clone(),
            value: Some(value_from_json(&e.value)),
            subagent_run_id: e.subagent_run_id.clone(),
        }),
        Event::ReasoningStart(e) => Arm::ReasoningStart(pb::ReasoningStartEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message_id: e.message_id.to_string(),
        }),
        Event::ReasoningEnd(e) => Arm::ReasoningEnd(pb::ReasoningEndEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message_id: e.message_id.to_string(),
        }),
        Event::ReasoningMessageStart(e) => {
            Arm::ReasoningMessageStart(pb::ReasoningMessageStartEvent {
                base_event: base,
                subagent_run_id: e.subagent_run_id.clone(),
                message_id: e.message_id.to_string(),
                role: match e.role {
                    ReasoningRole::Reasoning => "reasoning".to_owned(),
                },
            })
        }
        Event::ReasoningMessageContent(e) => {
            Arm::ReasoningMessageContent(pb::ReasoningMessageContentEvent {
                base_event: base,
                subagent_run_id: e.subagent_run_id.clone(),
                message_id: e.message_id.to_string(),
                delta: e.delta.clone(),
            })
        }
        Event::ReasoningMessageEnd(e) => Arm::ReasoningMessageEnd(pb::ReasoningMessageEndEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message_id: e.message_id.to_string(),
        }),
        Event::ReasoningMessageChunk(e) => {
            Arm::ReasoningMessageChunk(pb::ReasoningMessageChunkEvent {
                base_event: base,
                subagent_run_id: e.subagent_run_id.clone(),
                message_id: opt_str(&e.message_id),
                delta: e.delta.clone(),
            })
        }
        Event::ReasoningEncryptedValue(e) => {
            Arm::ReasoningEncryptedValue(pb::ReasoningEncryptedValueEvent {
                base_event: base,
                subagent_run_id: e.subagent_run_id.clone(),
                subtype: match e.subtype {
                    ReasoningEncryptedValueSubtype::ToolCall => "tool-call",
                    ReasoningEncryptedValueSubtype::Message => "message",
                }
                .to_owned(),
                entity_id: e.entity_id.clone(),
                encrypted_value: e.encrypted_value.clone(),
            })
        }
        Event::SubagentStarted(e) => Arm::SubagentStarted(pb::SubagentStartedEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            name: e.name.clone(),
            description: e.description.clone(),
            parent_subagent_run_id: e.parent_subagent_run_id.clone(),
            parent_tool_call_id: opt_str(&e.parent_tool_call_id),
            parent_message_id: opt_str(&e.parent_message_id),
        }),
        Event::SubagentFinished(e) => Arm::SubagentFinished(subagent_finished_to_pb(e, base)),
        Event::SubagentError(e) => Arm::SubagentError(pb::SubagentErrorEvent {
            base_event: base,
            subagent_run_id: e.subagent_run_id.clone(),
            message: e.message.clone(),
            code: e.code.clone(),
        }),
    };
    pb::Event { event: Some(arm) }
}

/// `base_event`: `type` from the event, then the optional base fields (`normalizeMetadata`
/// keeps only objects, which is all [`BaseEvent::metadata`] can hold).
fn base_to_pb(event_type: EventType, base: &BaseEvent) -> pb::BaseEvent {
    pb::BaseEvent {
        r#type: pb_event_type(event_type) as i32,
        timestamp: base.timestamp,
        raw_event: base.raw_event.as_deref().map(value_from_json),
        metadata: base.metadata.as_deref().map(struct_from_map),
    }
}

/// Our event type to the protobuf enum (numbers in `events.proto`).
pub(crate) fn pb_event_type(event_type: EventType) -> pb::EventType {
    use pb::EventType as P;
    match event_type {
        EventType::RunStarted => P::RunStarted,
        EventType::RunFinished => P::RunFinished,
        EventType::RunError => P::RunError,
        EventType::StepStarted => P::StepStarted,
        EventType::StepFinished => P::StepFinished,
        EventType::TextMessageStart => P::TextMessageStart,
        EventType::TextMessageContent => P::TextMessageContent,
        EventType::TextMessageEnd => P::TextMessageEnd,
        EventType::TextMessageChunk => P::TextMessageChunk,
        EventType::ToolCallStart => P::ToolCallStart,
        EventType::ToolCallArgs => P::ToolCallArgs,
        EventType::ToolCallEnd => P::ToolCallEnd,
        EventType::ToolCallChunk => P::ToolCallChunk,
        EventType::ToolCallResult => P::ToolCallResult,
        EventType::StateSnapshot => P::StateSnapshot,
        EventType::StateDelta => P::StateDelta,
        EventType::MessagesSnapshot => P::MessagesSnapshot,
        EventType::ActivitySnapshot => P::ActivitySnapshot,
        EventType::ActivityDelta => P::ActivityDelta,
        EventType::Raw => P::Raw,
        EventType::Custom => P::Custom,
        EventType::ReasoningStart => P::ReasoningStart,
        EventType::ReasoningEnd => P::ReasoningEnd,
        EventType::ReasoningMessageStart => P::ReasoningMessageStart,
        EventType::ReasoningMessageContent => P::ReasoningMessageContent,
        EventType::ReasoningMessageEnd => P::ReasoningMessageEnd,
        EventType::ReasoningMessageChunk => P::ReasoningMessageChunk,
        EventType::ReasoningEncryptedValue => P::ReasoningEncryptedValue,
        EventType::SubagentStarted => P::SubagentStarted,
        EventType::SubagentFinished => P::SubagentFinished,
        EventType::SubagentError => P::SubagentError,
    }
}

fn text_role(role: TextRole) -> &'static str {
    match role {
        TextRole::Developer => "developer",
        TextRole::System => "system",
        TextRole::Assistant => "assistant",
        TextRole::User => "user",
    }
}

/// `RUN_FINISHED`: the outcome object is flattened (`outcome` = its `type`, `""` when absent;
/// `pendingToolCallIds` and `interrupts` lifted out of it), `usage` absent = empty list.
fn run_finished_to_pb(e: &RunFinished, base: Option<pb::BaseEvent>) -> pb::RunFinishedEvent {
    let (outcome, interrupts, pending_tool_call_ids) = match &e.outcome {
        None => ("", Vec::new(), Vec::new()),
        Some(RunFinishedOutcome::Success {
            pending_tool_call_ids,
        }) => (
            "success",
            Vec::new(),
            pending_tool_call_ids
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect(),
        ),
        Some(RunFinishedOutcome::Interrupt { interrupts }) => (
            "interrupt",
            interrupts.iter().map(interrupt_to_pb).collect(),
            Vec::new(),
        ),
        Some(RunFinishedOutcome::Cancelled) => ("cancelled", Vec::new(), Vec::new()),
    };
    pb::RunFinishedEvent {
        base_event: base,
        thread_id: e.thread_id.to_string(),
        run_id: e.run_id.to_string(),
        result: e.result.as_ref().map(value_from_json),
        outcome: outcome.to_owned(),
        interrupts,
        usage: usage_to_pb(e.usage.as_deref()),
        pending_tool_call_ids,
    }
}

/// `SUBAGENT_FINISHED`: `outcome` = its `type` (`""` when absent), `interruptIds` lifted out.
fn subagent_finished_to_pb(
    e: &SubagentFinished,
    base: Option<pb::BaseEvent>,
) -> pb::SubagentFinishedEvent {
    let (outcome, interrupt_ids) = match &e.outcome {
        None => ("", Vec::new()),
        Some(SubagentFinishedOutcome::Success) => ("success", Vec::new()),
        Some(SubagentFinishedOutcome::Suspended { interrupt_ids }) => {
            ("suspended", interrupt_ids.clone().unwrap_or_default())
        }
    };
    pb::SubagentFinishedEvent {
        base_event: base,
        subagent_run_id: e.subagent_run_id.clone(),
        result: e.result.as_ref().map(value_from_json),
        outcome: outcome.to_owned(),
        interrupt_ids,
    }
}

/// `Interrupt`: `responseSchema` and `metadata` are `google.protobuf.Value` here (not Struct).
fn interrupt_to_pb(i: &Interrupt) -> pb::Interrupt {
    pb::Interrupt {
        id: i.id.clone(),
        reason: i.reason.clone(),
        message: i.message.clone(),
        tool_call_id: opt_str(&i.tool_call_id),
        response_schema: i.response_schema.as_ref().map(object_value),
        expires_at: i.expires_at.clone(),
        metadata: i.metadata.as_ref().map(object_value),
        subagent_run_id: i.subagent_run_id.clone(),
    }
}

fn object_value(map: &Map<String, Json>) -> pb::google::protobuf::Value {
    pb::google::protobuf::Value {
        kind: Some(pb::google::protobuf::value::Kind::StructValue(
            struct_from_map(map),
        )),
    }
}

/// Token counts are `int64` on the wire; the schema caps them at 2^53 - 1, so saturating a
/// (schema-invalid) count above `i64::MAX` loses nothing a valid event can carry.
fn usage_to_pb(usage: Option<&[TokenUsage]>) -> Vec<pb::Usage> {
    let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
    usage
        .unwrap_or_default()
        .iter()
        .map(|u| pb::Usage {
            provider: u.provider.clone(),
            model: u.model.clone(),
            input_tokens: count(u.input_tokens),
            output_tokens: count(u.output_tokens),
            total_tokens: count(u.total_tokens),
            reasoning_tokens: count(u.reasoning_tokens),
            cached_input_tokens: count(u.cached_input_tokens),
            cache_write_input_tokens: count(u.cache_write_input_tokens),
        })
        .collect()
}

fn patch_op_to_pb(op: &JsonPatchOperation) -> pb::JsonPatchOperation {
    use pb::JsonPatchOperationType as T;
    let (kind, path, from, value) = match op {
        JsonPatchOperation::Add { path, value } => (T::Add, path, None, Some(value)),
        JsonPatchOperation::Remove { path } => (T::Remove, path, None, None),
        JsonPatchOperation::Replace { path, value } => (T::Replace, path, None, Some(value)),
        JsonPatchOperation::Move { from, path } => (T::Move, path, Some(from), None),
        JsonPatchOperation::Copy { from, path } => (T::Copy, path, Some(from), None),
        JsonPatchOperation::Test { path, value } => (T::Test, path, None, Some(value)),
    };
    pb::JsonPatchOperation {
        op: kind as i32,
        path: path.clone(),
        from: from.cloned(),
        value: value.map(value_from_json),
    }
}
