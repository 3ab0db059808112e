//! Protobuf messages → JSON events: the inverse of [`super::to_pb`], following
//! `@ag-ui/proto@1.0.0`'s `decode` (`src/proto.ts` in the package's source map).
//!
//! Where the reference decoder rejects a message (no event arm, a `base_event.type` that
//! disagrees with the arm, a message carrying content forms its role does not use, string
//! content together with parts) so does this one. Where it passes along something our typed
//! [`Event`] cannot hold (an unknown role or outcome, outcome lists without an outcome), this
//! one reports [`ProtoError::Invalid`] instead of dropping data silently. Like the reference,
//! a content part or source with no arm set (a variant from a later protocol) is skipped.

use serde_json::{Map, Value as Json};

use super::ProtoError;
use super::encode::pb_event_type;
use super::message::{content_from_pb, message_from_pb, run_input_from_pb};
use super::pb;
use super::pb::event::Event as Arm;
use super::value::{json_from_value, map_from_struct};
use crate::events::*;

type Result<T> = std::result::Result<T, ProtoError>;

/// Converts a decoded protobuf `Event` back to the JSON event it encodes.
///
/// # Errors
///
/// [`ProtoError::Invalid`] when the message is not a valid AG-UI event or carries something
/// the typed [`Event`] cannot represent (see the module docs).
pub fn from_pb(event: pb::Event) -> Result<Event> {
    let arm = event
        .event
        .ok_or_else(|| ProtoError::invalid("Event has no event arm set"))?;
    Ok(match arm {
        Arm::RunStarted(e) => Event::RunStarted(RunStarted {
            base: base(e.base_event, EventType::RunStarted)?,
            thread_id: e.thread_id.into(),
            run_id: e.run_id.into(),
            protocol_version: e.protocol_version,
            parent_run_id: e.parent_run_id.map(Into::into),
            input: e.input.map(run_input_from_pb).transpose()?.map(Box::new),
        }),
        Arm::RunFinished(e) => Event::RunFinished(run_finished(e)?),
        Arm::RunError(e) => Event::RunError(RunError {
            base: base(e.base_event, EventType::RunError)?,
            message: e.message,
            code: e.code,
            usage: usage(e.usage),
        }),
        Arm::StepStarted(e) => Event::StepStarted(StepStarted {
            base: base(e.base_event, EventType::StepStarted)?,
            step_name: e.step_name,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::StepFinished(e) => Event::StepFinished(StepFinished {
            base: base(e.base_event, EventType::StepFinished)?,
            step_name: e.step_name,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::TextMessageStart(e) => Event::TextMessageStart(TextMessageStart {
            base: base(e.base_event, EventType::TextMessageStart)?,
            message_id: e.message_id.into(),
            role: e.role.as_deref().map(text_role).transpose()?,
            name: e.name,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::TextMessageContent(e) => Event::TextMessageContent(TextMessageContent {
            base: base(e.base_event, EventType::TextMessageContent)?,
            message_id: e.message_id.into(),
            delta: e.delta,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::TextMessageEnd(e) => Event::TextMessageEnd(TextMessageEnd {
            base: base(e.base_event, EventType::TextMessageEnd)?,
            message_id: e.message_id.into(),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::TextMessageChunk(e) => Event::TextMessageChunk(TextMessageChunk {
            base: base(e.base_event, EventType::TextMessageChunk)?,
            message_id: e.message_id.map(Into::into),
            role: e.role.as_deref().map(text_role).transpose()?,
            delta: e.delta,
            name: e.name,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ToolCallStart(e) => Event::ToolCallStart(ToolCallStart {
            base: base(e.base_event, EventType::ToolCallStart)?,
            tool_call_id: e.tool_call_id.into(),
            tool_call_name: e.tool_call_name,
            parent_message_id: e.parent_message_id.map(Into::into),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ToolCallArgs(e) => Event::ToolCallArgs(ToolCallArgs {
            base: base(e.base_event, EventType::ToolCallArgs)?,
            tool_call_id: e.tool_call_id.into(),
            delta: e.delta,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ToolCallEnd(e) => Event::ToolCallEnd(ToolCallEnd {
            base: base(e.base_event, EventType::ToolCallEnd)?,
            tool_call_id: e.tool_call_id.into(),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ToolCallChunk(e) => Event::ToolCallChunk(ToolCallChunk {
            base: base(e.base_event, EventType::ToolCallChunk)?,
            tool_call_id: e.tool_call_id.map(Into::into),
            tool_call_name: e.tool_call_name,
            parent_message_id: e.parent_message_id.map(Into::into),
            delta: e.delta,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ToolCallResult(e) => Event::ToolCallResult(ToolCallResult {
            base: base(e.base_event, EventType::ToolCallResult)?,
            message_id: e.message_id.into(),
            tool_call_id: e.tool_call_id.into(),
            content: content_from_pb(e.content, e.content_parts)?,
            role: match e.role.as_deref() {
                None => None,
                Some("tool") => Some(ToolRole::Tool),
                Some(_) => {
                    return Err(ProtoError::invalid("TOOL_CALL_RESULT.role is not \"tool\""));
                }
            },
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::StateSnapshot(e) => Event::StateSnapshot(StateSnapshot {
            base: base(e.base_event, EventType::StateSnapshot)?,
            snapshot: required_json(e.snapshot, "STATE_SNAPSHOT.snapshot")?,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::StateDelta(e) => Event::StateDelta(StateDelta {
            base: base(e.base_event, EventType::StateDelta)?,
            delta: patch(e.delta)?,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::MessagesSnapshot(e) => Event::MessagesSnapshot(MessagesSnapshot {
            base: base(e.base_event, EventType::MessagesSnapshot)?,
            messages: e
                .messages
                .into_iter()
                .map(message_from_pb)
                .collect::<Result<_>>()?,
        }),
        Arm::ActivitySnapshot(e) => Event::ActivitySnapshot(ActivitySnapshot {
            base: base(e.base_event, EventType::ActivitySnapshot)?,
            message_id: e.message_id.into(),
            activity_type: e.activity_type,
            content: map_from_struct(
                e.content
                    .ok_or_else(|| ProtoError::invalid("ACTIVITY_SNAPSHOT.content is missing"))?,
            )?,
            replace: e.replace,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ActivityDelta(e) => Event::ActivityDelta(ActivityDelta {
            base: base(e.base_event, EventType::ActivityDelta)?,
            message_id: e.message_id.into(),
            activity_type: e.activity_type,
            patch: patch(e.patch)?,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::Raw(e) => Event::Raw(Raw {
            base: base(e.base_event, EventType::Raw)?,
            event: required_json(e.event, "RAW.event")?,
            source: e.source,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::Custom(e) => Event::Custom(Custom {
            base: base(e.base_event, EventType::Custom)?,
            name: e.name,
            value: required_json(e.value, "CUSTOM.value")?,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningStart(e) => Event::ReasoningStart(ReasoningStart {
            base: base(e.base_event, EventType::ReasoningStart)?,
            message_id: e.message_id.into(),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningEnd(e) => Event::ReasoningEnd(ReasoningEnd {
            base: base(e.base_event, EventType::ReasoningEnd)?,
            message_id: e.message_id.into(),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningMessageStart(e) => Event::ReasoningMessageStart(ReasoningMessageStart {
            base: base(e.base_event, EventType::ReasoningMessageStart)?,
            message_id: e.message_id.into(),
            role: match e.role.as_str() {
                "reasoning" => ReasoningRole::Reasoning,
                _ => {
                    return Err(ProtoError::invalid(
                        "REASONING_MESSAGE_START.role is not \"reasoning\"",
                    ));
                }
            },
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningMessageContent(e) => {
            Event::ReasoningMessageContent(ReasoningMessageContent {
                base: base(e.base_event, EventType::ReasoningMessageContent)?,
                message_id: e.message_id.into(),
                delta: e.delta,
                subagent_run_id: e.subagent_run_id,
            })
        }
        Arm::ReasoningMessageEnd(e) => Event::ReasoningMessageEnd(ReasoningMessageEnd {
            base: base(e.base_event, EventType::ReasoningMessageEnd)?,
            message_id: e.message_id.into(),
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningMessageChunk(e) => Event::ReasoningMessageChunk(ReasoningMessageChunk {
            base: base(e.base_event, EventType::ReasoningMessageChunk)?,
            message_id: e.message_id.map(Into::into),
            delta: e.delta,
            subagent_run_id: e.subagent_run_id,
        }),
        Arm::ReasoningEncryptedValue(e) => {
            Event::ReasoningEncryptedValue(ReasoningEncryptedValue {
                base: base(e.base_event, EventType::ReasoningEncryptedValue)?,
                subtype: match e.subtype.as_str() {
                    "tool-call" => ReasoningEncryptedValueSubtype::ToolCall,
                    "message" => ReasoningEncryptedValueSubtype::Message,
                    _ => {
                        return Err(ProtoError::invalid(
                            "REASONING_ENCRYPTED_VALUE.subtype is not \"tool-call\" or \"message\"",
                        ));
                    }
                },
                entity_id: e.entity_id,
                encrypted_value: e.encrypted_value,
                subagent_run_id: e.subagent_run_id,
            })
        }
        Arm::SubagentStarted(e) => Event::SubagentStarted(SubagentStarted {
            base: base(e.base_event, EventType::SubagentStarted)?,
            subagent_run_id: e.subagent_run_id,
            name: e.name,
            description: e.description,
            parent_subagent_run_id: e.parent_subagent_run_id,
            parent_tool_call_id: e.parent_tool_call_id.map(Into::into),
            parent_message_id: e.parent_message_id.map(Into::into),
        }),
        Arm::SubagentFinished(e) => Event::SubagentFinished(subagent_finished(e)?),
        Arm::SubagentError(e) => Event::SubagentError(SubagentError {
            base: base(e.base_event, EventType::SubagentError)?,
            subagent_run_id: e.subagent_run_id,
            message: e.message,
            code: e.code,
        }),
    })
}

/// The base fields; the arm names the event, and a `base_event.type` that disagrees with it
/// is a malformed event, as the reference decoder treats it.
fn base(base: Option<pb::BaseEvent>, expected: EventType) -> Result<BaseEvent> {
    let base = base.ok_or_else(|| ProtoError::invalid("event has no base_event"))?;
    if base.r#type != pb_event_type(expected) as i32 {
        return Err(ProtoError::invalid(format!(
            "the {expected} arm carries base_event.type {}",
            base.r#type
        )));
    }
    Ok(BaseEvent {
        timestamp: base.timestamp,
        // `rawEvent` is never null in JSON; a null on the wire reads as absent.
        raw_event: base
            .raw_event
            .map(json_from_value)
            .transpose()?
            .filter(|v| !v.is_null())
            .map(Box::new),
        metadata: base
            .metadata
            .map(map_from_struct)
            .transpose()?
            .map(Box::new),
    })
}

fn required_json(value: Option<pb::google::protobuf::Value>, what: &'static str) -> Result<Json> {
    json_from_value(value.ok_or_else(|| ProtoError::invalid(format!("{what} is missing")))?)
}

fn optional_object(
    value: Option<pb::google::protobuf::Value>,
    what: &str,
) -> Result<Option<Map<String, Json>>> {
    match value.map(json_from_value).transpose()? {
        None => Ok(None),
        Some(Json::Object(map)) => Ok(Some(map)),
        Some(_) => Err(ProtoError::invalid(format!("{what} is not a JSON object"))),
    }
}

fn text_role(role: &str) -> Result<TextRole> {
    Ok(match role {
        "developer" => TextRole::Developer,
        "system" => TextRole::System,
        "assistant" => TextRole::Assistant,
        "user" => TextRole::User,
        _ => {
            return Err(ProtoError::invalid(format!(
                "unknown text message role {role:?}"
            )));
        }
    })
}

fn usage(usage: Vec<pb::Usage>) -> Option<Vec<TokenUsage>> {
    // The reference decoder drops an empty list: absent and empty read the same.
    let count = |n: Option<i64>| n.map(|n| u64::try_from(n).unwrap_or(0));
    (!usage.is_empty()).then(|| {
        usage
            .into_iter()
            .map(|u| TokenUsage {
                provider: u.provider,
                model: u.model,
                input_tokens: count(u.input_tokens),
                output_tokens: count(u.output_tokens),
                total_tokens: count(u.total_tokens),
                reasoning_tokens: count(u.reasoning_tokens),
                cached_input_tokens: count(u.cached_input_tokens),
                cache_write_input_tokens: count(u.cache_write_input_tokens),
            })
            .collect()
    })
}

/// Rebuilds the outcome object from the flattened `outcome` string and its lists.
fn run_finished(e: pb::RunFinishedEvent) -> Result<RunFinished> {
    let pending = !e.pending_tool_call_ids.is_empty();
    let interrupted = !e.interrupts.is_empty();
    let outcome = match e.outcome.as_str() {
        "" if !pending && !interrupted => None,
        "success" if !interrupted => Some(RunFinishedOutcome::Success {
            pending_tool_call_ids: pending.then(|| {
                e.pending_tool_call_ids
                    .into_iter()
                    .map(Into::into)
                    .collect()
            }),
        }),
        "interrupt" if !pending => Some(RunFinishedOutcome::Interrupt {
            interrupts: e
                .interrupts
                .into_iter()
                .map(interrupt)
                .collect::<Result<_>>()?,
        }),
        "cancelled" if !pending && !interrupted => Some(RunFinishedOutcome::Cancelled),
        other => {
            return Err(ProtoError::invalid(format!(
                "RUN_FINISHED outcome {other:?} with {} pending tool calls and {} interrupts \
                 is not a 1.0 outcome",
                e.pending_tool_call_ids.len(),
                e.interrupts.len()
            )));
        }
    };
    Ok(RunFinished {
        base: base(e.base_event, EventType::RunFinished)?,
        thread_id: e.thread_id.into(),
        run_id: e.run_id.into(),
        result: e.result.map(json_from_value).transpose()?,
        outcome,
        usage: usage(e.usage),
    })
}

fn interrupt(i: pb::Interrupt) -> Result<Interrupt> {
    Ok(Interrupt {
        id: i.id,
        reason: i.reason,
        message: i.message,
        tool_call_id: i.tool_call_id.map(Into::into),
        response_schema: optional_object(i.response_schema, "Interrupt.responseSchema")?,
        expires_at: i.expires_at,
        metadata: optional_object(i.metadata, "Interrupt.metadata")?,
        subagent_run_id: i.subagent_run_id,
    })
}

fn subagent_finished(e: pb::SubagentFinishedEvent) -> Result<SubagentFinished> {
    let ids = !e.interrupt_ids.is_empty();
    let outcome = match e.outcome.as_str() {
        "" if !ids => None,
        "success" if !ids => Some(SubagentFinishedOutcome::Success),
        "suspended" => Some(SubagentFinishedOutcome::Suspended {
            interrupt_ids: ids.then_some(e.interrupt_ids),
        }),
        other => {
            return Err(ProtoError::invalid(format!(
                "SUBAGENT_FINISHED outcome {other:?} is not a 1.0 outcome"
            )));
        }
    };
    Ok(SubagentFinished {
        base: base(e.base_event, EventType::SubagentFinished)?,
        subagent_run_id: e.subagent_run_id,
        result: e.result.map(json_from_value).transpose()?,
        outcome,
    })
}

fn patch(ops: Vec<pb::JsonPatchOperation>) -> Result<Vec<JsonPatchOperation>> {
    use pb::JsonPatchOperationType as T;
    ops.into_iter()
        .map(|op| {
            let value = || -> Result<Json> { required_json(op.value.clone(), "patch value") };
            let from = || {
                op.from
                    .clone()
                    .ok_or_else(|| ProtoError::invalid("move/copy patch without from"))
            };
            let path = op.path.clone();
            Ok(match T::try_from(op.op) {
                Ok(T::Add) => JsonPatchOperation::Add {
                    path,
                    value: value()?,
                },
                Ok(T::Remove) => JsonPatchOperation::Remove { path },
                Ok(T::Replace) => JsonPatchOperation::Replace {
                    path,
                    value: value()?,
                },
                Ok(T::Move) => JsonPatchOperation::Move {
                    from: from()?,
                    path,
                },
                Ok(T::Copy) => JsonPatchOperation::Copy {
                    from: from()?,
                    path,
                },
                Ok(T::Test) => JsonPatchOperation::Test {
                    path,
                    value: value()?,
                },
                Err(_) => {
                    return Err(ProtoError::invalid(format!("unknown patch op {}", op.op)));
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::to_pb;

    #[test]
    fn outcome_lists_without_their_outcome_are_rejected() {
        let finished = |outcome: &str, pending: &[&str]| {
            let mut message = to_pb(&Event::RunFinished(RunFinished::new("t", "r")));
            if let Some(Arm::RunFinished(e)) = message.event.as_mut() {
                e.outcome = outcome.into();
                e.pending_tool_call_ids = pending.iter().map(|s| (*s).to_owned()).collect();
            }
            from_pb(message)
        };
        let Event::RunFinished(ok) = finished("success", &["c1"]).unwrap() else {
            panic!("expected RUN_FINISHED")
        };
        assert_eq!(
            ok.outcome,
            Some(RunFinishedOutcome::Success {
                pending_tool_call_ids: Some(vec!["c1".into()])
            })
        );
        assert!(finished("", &[]).is_ok());
        assert!(finished("", &["c1"]).is_err());
        assert!(finished("cancelled", &["c1"]).is_err());
        assert!(finished("paused", &[]).is_err());
    }
}
