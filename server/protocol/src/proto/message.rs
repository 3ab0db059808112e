//! Messages, content parts and the run input, both ways: JSON shapes ⇄ the flat protobuf
//! `Message`, `InputContent` and `RunAgentInput` of `types.proto`.
//!
//! Mirrors `toWireMessage` / `fromWireMessage` and `toWireRunAgentInput` /
//! `fromWireRunAgentInput` in `@ag-ui/proto@1.0.0`'s `src/proto.ts` (reference §3.4): every role
//! shares one message; string content rides in `content`, a user or tool part list in
//! `content_parts`, an activity message's object in `activity_content`. Decoding rejects a
//! message carrying a content form its role does not use, and skips (as the reference does) a
//! content part or source with no arm set, which is a variant from a later protocol.

use serde_json::{Map, Value as Json};

use super::ProtoError;
use super::pb;
use super::value::{json_from_value, map_from_struct, opt_str, struct_from_map, value_from_json};
use crate::content::{ContentPart, MediaPart, PartSource, TextPart, UserContent};
use crate::input::*;

type Result<T> = std::result::Result<T, ProtoError>;

/// String content → `content`; a part list → `content_parts` (`content` left unset).
pub(crate) fn content_to_pb(content: &UserContent) -> (Option<String>, Vec<pb::InputContent>) {
    match content {
        UserContent::Text(text) => (Some(text.clone()), Vec::new()),
        UserContent::Parts(parts) => (None, parts.iter().map(part_to_pb).collect()),
    }
}

fn part_to_pb(part: &ContentPart) -> pb::InputContent {
    use pb::input_content::Part;
    let media = |m: &MediaPart| {
        (
            Some(source_to_pb(&m.source)),
            m.metadata.as_ref().map(value_from_json),
            m.id.clone(),
        )
    };
    let part = match part {
        ContentPart::Text(t) => Part::Text(pb::TextInputPart {
            text: t.text.clone(),
            id: t.id.clone(),
            metadata: t.metadata.as_ref().map(value_from_json),
        }),
        ContentPart::Image(m) => {
            let (source, metadata, id) = media(m);
            Part::Image(pb::ImageInputPart {
                source,
                metadata,
                id,
            })
        }
        ContentPart::Audio(m) => {
            let (source, metadata, id) = media(m);
            Part::Audio(pb::AudioInputPart {
                source,
                metadata,
                id,
            })
        }
        ContentPart::Video(m) => {
            let (source, metadata, id) = media(m);
            Part::Video(pb::VideoInputPart {
                source,
                metadata,
                id,
            })
        }
        ContentPart::Document(m) => {
            let (source, metadata, id) = media(m);
            Part::Document(pb::DocumentInputPart {
                source,
                metadata,
                id,
            })
        }
    };
    pb::InputContent { part: Some(part) }
}

fn source_to_pb(source: &PartSource) -> pb::InputContentSource {
    use pb::input_content_source::Source;
    let source = match source {
        PartSource::Data { value, mime_type } => Source::Data(pb::InputContentDataSource {
            value: value.clone(),
            mime_type: mime_type.clone(),
        }),
        PartSource::Url { value, mime_type } => Source::Url(pb::InputContentUrlSource {
            value: value.clone(),
            mime_type: mime_type.clone(),
        }),
        PartSource::File {
            value,
            provider,
            mime_type,
        } => Source::File(pb::InputContentFileSource {
            value: value.clone(),
            provider: provider.clone(),
            mime_type: mime_type.clone(),
        }),
    };
    pb::InputContentSource {
        source: Some(source),
    }
}

/// One flat `Message` for every role (`toWireMessage` in `src/proto.ts`).
pub(crate) fn message_to_pb(message: &Message) -> pb::Message {
    let mut out = pb::Message {
        id: message.id().to_string(),
        role: message.role().to_owned(),
        ..pb::Message::default()
    };
    let metadata;
    match message {
        Message::Developer(m) => {
            out.content = Some(m.content.clone());
            out.name = m.name.clone();
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::System(m) => {
            out.content = Some(m.content.clone());
            out.name = m.name.clone();
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::Assistant(m) => {
            out.content = m.content.clone();
            out.tool_calls = m.tool_calls.iter().flatten().map(tool_call_to_pb).collect();
            out.name = m.name.clone();
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::User(m) => {
            (out.content, out.content_parts) = content_to_pb(&m.content);
            out.name = m.name.clone();
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::Tool(m) => {
            (out.content, out.content_parts) = content_to_pb(&m.content);
            out.tool_call_id = Some(m.tool_call_id.to_string());
            out.error = m.error.clone();
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::Activity(m) => {
            out.activity_type = Some(m.activity_type.clone());
            out.activity_content = Some(struct_from_map(&m.content));
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
        Message::Reasoning(m) => {
            out.content = Some(m.content.clone());
            out.encrypted_value = m.encrypted_value.clone();
            out.subagent_run_id = m.subagent_run_id.clone();
            metadata = &m.metadata;
        }
    }
    out.metadata = metadata.as_ref().map(struct_from_map);
    out
}

fn tool_call_to_pb(call: &ToolCall) -> pb::ToolCall {
    pb::ToolCall {
        id: call.id.to_string(),
        r#type: call.kind.clone(),
        function: Some(pb::tool_call::Function {
            name: call.function.name.clone(),
            arguments: call.function.arguments.clone(),
        }),
        metadata: call.metadata.as_ref().map(struct_from_map),
        encrypted_value: call.encrypted_value.clone(),
    }
}

/// `RUN_STARTED.input` (`toWireRunAgentInput`). Our [`RunAgentInput`] reads an absent or `null`
/// `state` as `{}` (reference §2), so the echo always carries a state, as it does over SSE;
/// only a `null` put there by code is left out, as the TypeScript schema maps `null` to absent.
pub(crate) fn run_input_to_pb(input: &RunAgentInput) -> pb::RunAgentInput {
    pb::RunAgentInput {
        thread_id: input.thread_id.to_string(),
        run_id: input.run_id.to_string(),
        parent_run_id: opt_str(&input.parent_run_id),
        state: (!input.state.is_null()).then(|| value_from_json(&input.state)),
        messages: input.messages.iter().map(message_to_pb).collect(),
        tools: input
            .tools
            .iter()
            .map(|t| pb::Tool {
                name: t.name.clone(),
                description: t.description.clone(),
                parameters: t.parameters.as_ref().map(value_from_json),
                metadata: t.metadata.as_ref().map(struct_from_map),
            })
            .collect(),
        context: input
            .context
            .iter()
            .map(|c| pb::Context {
                description: c.description.clone(),
                value: c.value.clone(),
            })
            .collect(),
        forwarded_props: input.forwarded_props.as_ref().map(value_from_json),
        resume: input
            .resume
            .iter()
            .flatten()
            .map(|r| pb::ResumeEntry {
                interrupt_id: r.interrupt_id.clone(),
                status: match r.status {
                    ResumeStatus::Resolved => "resolved",
                    ResumeStatus::Cancelled => "cancelled",
                }
                .to_owned(),
                payload: r.payload.as_ref().map(value_from_json),
                metadata: r.metadata.as_ref().map(struct_from_map),
            })
            .collect(),
        protocol_version: input.protocol_version.clone(),
    }
}

/// `content` vs `content_parts` (both set is a contradiction the reference decoder rejects).
pub(crate) fn content_from_pb(
    text: Option<String>,
    parts: Vec<pb::InputContent>,
) -> Result<UserContent> {
    match text {
        Some(_) if !parts.is_empty() => Err(ProtoError::invalid(
            "content carries both string content and content parts",
        )),
        Some(text) => Ok(UserContent::Text(text)),
        None => Ok(UserContent::Parts(
            parts
                .into_iter()
                .filter_map(|p| part_from_pb(p).transpose())
                .collect::<Result<_>>()?,
        )),
    }
}

/// One content part; `None` for a part (or source) with no arm set, which the reference
/// decoder drops with a warning: it is a variant from a later protocol.
fn part_from_pb(part: pb::InputContent) -> Result<Option<ContentPart>> {
    use pb::input_content::Part;
    let media = |source: Option<pb::InputContentSource>,
                 metadata: Option<pb::google::protobuf::Value>,
                 id: Option<String>|
     -> Result<Option<MediaPart>> {
        let source = source.ok_or_else(|| ProtoError::invalid("media part without a source"))?;
        let Some(source) = part_source_from_pb(source) else {
            return Ok(None);
        };
        Ok(Some(MediaPart {
            source,
            id,
            metadata: metadata.map(json_from_value).transpose()?,
        }))
    };
    Ok(match part.part {
        None => None,
        Some(Part::Text(t)) => Some(ContentPart::Text(TextPart {
            text: t.text,
            id: t.id,
            metadata: t.metadata.map(json_from_value).transpose()?,
        })),
        Some(Part::Image(m)) => media(m.source, m.metadata, m.id)?.map(ContentPart::Image),
        Some(Part::Audio(m)) => media(m.source, m.metadata, m.id)?.map(ContentPart::Audio),
        Some(Part::Video(m)) => media(m.source, m.metadata, m.id)?.map(ContentPart::Video),
        Some(Part::Document(m)) => media(m.source, m.metadata, m.id)?.map(ContentPart::Document),
    })
}

fn part_source_from_pb(source: pb::InputContentSource) -> Option<PartSource> {
    use pb::input_content_source::Source;
    Some(match source.source? {
        Source::Data(d) => PartSource::Data {
            value: d.value,
            mime_type: d.mime_type,
        },
        Source::Url(u) => PartSource::Url {
            value: u.value,
            mime_type: u.mime_type,
        },
        Source::File(f) => PartSource::File {
            value: f.value,
            provider: f.provider,
            mime_type: f.mime_type,
        },
    })
}

/// The flat `Message` back to its role's shape (`fromWireMessage`): each content carrier
/// belongs to certain roles, and a message carrying one its role does not use is rejected.
pub(crate) fn message_from_pb(m: pb::Message) -> Result<Message> {
    let parts_role = matches!(m.role.as_str(), "user" | "tool");
    if !parts_role && !m.content_parts.is_empty() {
        return Err(ProtoError::invalid(
            "message carries content parts for a role that has none",
        ));
    }
    if m.role != "activity" && m.activity_content.is_some() {
        return Err(ProtoError::invalid(
            "message carries activity content for a non-activity role",
        ));
    }
    let metadata = m.metadata.map(map_from_struct).transpose()?;
    let text = |content: Option<String>| {
        content.ok_or_else(|| ProtoError::invalid(format!("{} message without content", m.role)))
    };
    Ok(match m.role.as_str() {
        "developer" => Message::Developer(DeveloperMessage {
            id: m.id.into(),
            content: text(m.content)?,
            name: m.name,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        "system" => Message::System(SystemMessage {
            id: m.id.into(),
            content: text(m.content)?,
            name: m.name,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        "assistant" => Message::Assistant(AssistantMessage {
            id: m.id.into(),
            content: m.content,
            // The reference decoder drops an empty list.
            tool_calls: if m.tool_calls.is_empty() {
                None
            } else {
                Some(
                    m.tool_calls
                        .into_iter()
                        .map(tool_call_from_pb)
                        .collect::<Result<_>>()?,
                )
            },
            name: m.name,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        "user" => Message::User(UserMessage {
            id: m.id.into(),
            content: content_from_pb(m.content, m.content_parts)?,
            name: m.name,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        "tool" => Message::Tool(ToolMessage {
            id: m.id.into(),
            content: content_from_pb(m.content, m.content_parts)?,
            tool_call_id: m
                .tool_call_id
                .ok_or_else(|| ProtoError::invalid("tool message without tool_call_id"))?
                .into(),
            error: m.error,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        "activity" => {
            if m.content.is_some() {
                return Err(ProtoError::invalid(
                    "activity content cannot ride with other content forms",
                ));
            }
            Message::Activity(ActivityMessage {
                id: m.id.into(),
                activity_type: m
                    .activity_type
                    .ok_or_else(|| ProtoError::invalid("activity message without activity_type"))?,
                content: map_from_struct(m.activity_content.ok_or_else(|| {
                    ProtoError::invalid("activity message without activity_content")
                })?)?,
                subagent_run_id: m.subagent_run_id,
                metadata,
            })
        }
        "reasoning" => Message::Reasoning(ReasoningMessage {
            id: m.id.into(),
            content: text(m.content)?,
            encrypted_value: m.encrypted_value,
            subagent_run_id: m.subagent_run_id,
            metadata,
        }),
        other => {
            return Err(ProtoError::invalid(format!(
                "unknown message role {other:?}"
            )));
        }
    })
}

fn tool_call_from_pb(call: pb::ToolCall) -> Result<ToolCall> {
    let function = call
        .function
        .ok_or_else(|| ProtoError::invalid("tool call without function"))?;
    Ok(ToolCall {
        id: call.id.into(),
        kind: call.r#type,
        function: FunctionCall {
            name: function.name,
            arguments: function.arguments,
        },
        encrypted_value: call.encrypted_value,
        metadata: call.metadata.map(map_from_struct).transpose()?,
    })
}

/// `RUN_STARTED.input` (`fromWireRunAgentInput`): like the reference decoder, `resume` comes
/// back as a (possibly empty) list; an absent `state` reads as `{}` (reference §2).
pub(crate) fn run_input_from_pb(input: pb::RunAgentInput) -> Result<RunAgentInput> {
    Ok(RunAgentInput {
        thread_id: input.thread_id.into(),
        run_id: input.run_id.into(),
        messages: input
            .messages
            .into_iter()
            .map(message_from_pb)
            .collect::<Result<_>>()?,
        protocol_version: input.protocol_version,
        parent_run_id: input.parent_run_id.map(Into::into),
        state: match input.state.map(json_from_value).transpose()? {
            None | Some(Json::Null) => Json::Object(Map::new()),
            Some(state) => state,
        },
        tools: input
            .tools
            .into_iter()
            .map(|t| {
                Ok(Tool {
                    name: t.name,
                    description: t.description,
                    parameters: t.parameters.map(json_from_value).transpose()?,
                    metadata: t.metadata.map(map_from_struct).transpose()?,
                })
            })
            .collect::<Result<_>>()?,
        context: input
            .context
            .into_iter()
            .map(|c| Context {
                description: c.description,
                value: c.value,
            })
            .collect(),
        forwarded_props: input
            .forwarded_props
            .map(json_from_value)
            .transpose()?
            .filter(|v| !v.is_null()),
        resume: Some(
            input
                .resume
                .into_iter()
                .map(|r| {
                    Ok(ResumeEntry {
                        interrupt_id: r.interrupt_id,
                        status: match r.status.as_str() {
                            "resolved" => ResumeStatus::Resolved,
                            "cancelled" => ResumeStatus::Cancelled,
                            other => {
                                return Err(ProtoError::invalid(format!(
                                    "unknown resume status {other:?}"
                                )));
                            }
                        },
                        payload: r.payload.map(json_from_value).transpose()?,
                        metadata: r.metadata.map(map_from_struct).transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Event, MessagesSnapshot};
    use crate::proto::from_pb;
    use crate::proto::pb::event::Event as Arm;

    fn snapshot_of(message: pb::Message) -> pb::Event {
        pb::Event {
            event: Some(Arm::MessagesSnapshot(pb::MessagesSnapshotEvent {
                base_event: Some(pb::BaseEvent {
                    r#type: pb::EventType::MessagesSnapshot as i32,
                    ..Default::default()
                }),
                messages: vec![message],
            })),
        }
    }

    fn user(content: Option<&str>, parts: usize) -> pb::Message {
        let text = |t: &str| pb::InputContent {
            part: Some(pb::input_content::Part::Text(pb::TextInputPart {
                text: t.into(),
                ..Default::default()
            })),
        };
        pb::Message {
            id: "u1".into(),
            role: "user".into(),
            content: content.map(Into::into),
            content_parts: (0..parts).map(|i| text(&i.to_string())).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn string_content_together_with_parts_is_rejected() {
        assert!(from_pb(snapshot_of(user(Some("hi"), 0))).is_ok());
        assert!(from_pb(snapshot_of(user(None, 2))).is_ok());
        assert!(matches!(
            from_pb(snapshot_of(user(Some("hi"), 1))),
            Err(ProtoError::Invalid(_))
        ));
    }

    #[test]
    fn content_carriers_must_belong_to_the_role() {
        let mut activity = pb::Message {
            id: "a".into(),
            role: "activity".into(),
            activity_type: Some("PLAN".into()),
            activity_content: Some(pb::google::protobuf::Struct::default()),
            ..Default::default()
        };
        assert!(from_pb(snapshot_of(activity.clone())).is_ok());
        activity.role = "user".into();
        assert!(from_pb(snapshot_of(activity)).is_err());
        let mut parts = user(None, 1);
        parts.role = "system".into();
        assert!(from_pb(snapshot_of(parts)).is_err());
        let mut unknown = user(Some("hi"), 0);
        unknown.role = "narrator".into();
        assert!(from_pb(snapshot_of(unknown)).is_err());
    }

    #[test]
    fn a_part_with_no_arm_is_skipped_like_the_reference_decoder_does() {
        let mut message = user(None, 2);
        message
            .content_parts
            .insert(1, pb::InputContent { part: None });
        let Event::MessagesSnapshot(MessagesSnapshot { messages, .. }) =
            from_pb(snapshot_of(message)).unwrap()
        else {
            panic!("expected MESSAGES_SNAPSHOT")
        };
        let Message::User(user) = &messages[0] else {
            panic!("expected a user message")
        };
        assert!(matches!(&user.content, UserContent::Parts(parts) if parts.len() == 2));
    }
}
