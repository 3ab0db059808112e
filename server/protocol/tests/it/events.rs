//! Every event type round-trips with all optional fields set and with none set; no `null`
//! ever appears on the wire; a few events match the reference's exact JSON.

use agui_protocol::*;
use serde_json::{Map, Value, json};

fn base() -> BaseEvent {
    let mut metadata = Map::new();
    metadata.insert("trace".into(), json!("abc"));
    BaseEvent {
        timestamp: Some(1_700_000_000_000),
        raw_event: Some(Box::new(json!({"upstream": true}))),
        metadata: Some(Box::new(metadata)),
    }
}

fn sub() -> Option<String> {
    Some("sub-1".into())
}

fn usage() -> Option<Vec<TokenUsage>> {
    Some(vec![TokenUsage {
        provider: Some("openai".into()),
        model: Some("gpt".into()),
        input_tokens: Some(10),
        output_tokens: Some(5),
        total_tokens: Some(15),
        reasoning_tokens: Some(2),
        cached_input_tokens: Some(3),
        cache_write_input_tokens: Some(1),
    }])
}

fn object(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn full_messages() -> Vec<Message> {
    let meta = Some(object(&[("k", json!(1))]));
    vec![
        Message::Developer(DeveloperMessage {
            id: "d".into(),
            content: "dev".into(),
            name: Some("n".into()),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta.clone(),
        }),
        Message::System(SystemMessage {
            id: "s".into(),
            content: "sys".into(),
            name: Some("n".into()),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta.clone(),
        }),
        Message::Assistant(AssistantMessage {
            id: "a".into(),
            content: Some("hello".into()),
            tool_calls: Some(vec![ToolCall {
                encrypted_value: Some("e".into()),
                metadata: meta.clone(),
                ..ToolCall::new("c1", "search", r#"{"q":"x"}"#)
            }]),
            name: Some("bot".into()),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta.clone(),
        }),
        Message::User(UserMessage {
            id: "u".into(),
            content: UserContent::Parts(vec![
                ContentPart::Text(TextPart {
                    text: "look".into(),
                    id: Some("p1".into()),
                    metadata: Some(json!({"x": 1})),
                }),
                ContentPart::Image(MediaPart {
                    source: PartSource::Data {
                        value: "AAAA".into(),
                        mime_type: "image/png".into(),
                    },
                    id: Some("p2".into()),
                    metadata: Some(json!("m")),
                }),
                ContentPart::Audio(MediaPart::new(PartSource::Url {
                    value: "https://x/a.mp3".into(),
                    mime_type: Some("audio/mpeg".into()),
                })),
                ContentPart::Video(MediaPart::new(PartSource::File {
                    value: "file-1".into(),
                    provider: Some("openai".into()),
                    mime_type: Some("video/mp4".into()),
                })),
                ContentPart::Document(MediaPart::new(PartSource::Url {
                    value: "https://x/d.pdf".into(),
                    mime_type: None,
                })),
            ]),
            name: Some("ann".into()),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta.clone(),
        }),
        Message::Tool(ToolMessage {
            error: Some("declined".into()),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta.clone(),
            ..ToolMessage::new("t", "c1", "result")
        }),
        Message::Activity(ActivityMessage {
            id: "act".into(),
            activity_type: "plan".into(),
            content: object(&[("steps", json!([1, 2]))]),
            subagent_run_id: sub(),
            metadata: meta.clone(),
        }),
        Message::Reasoning(ReasoningMessage {
            id: "r".into(),
            content: "thinking".into(),
            encrypted_value: Some("e".into()),
            subagent_run_id: sub(),
            metadata: meta,
        }),
    ]
}

fn full_input() -> RunAgentInput {
    RunAgentInput {
        protocol_version: Some("1.0".into()),
        parent_run_id: Some("r0".into()),
        state: json!({"count": 1}),
        tools: vec![Tool {
            name: "search".into(),
            description: "Searches".into(),
            parameters: Some(json!({"type": "object"})),
            metadata: Some(object(&[("k", json!(true))])),
        }],
        context: vec![Context {
            description: "tz".into(),
            value: "UTC".into(),
        }],
        forwarded_props: Some(json!({"a": 1})),
        resume: Some(vec![ResumeEntry {
            interrupt_id: "i1".into(),
            status: ResumeStatus::Resolved,
            payload: Some(json!({"ok": true})),
            metadata: Some(object(&[("k", json!(2))])),
        }]),
        ..RunAgentInput::new("t", "r", full_messages())
    }
}

fn patch() -> Vec<JsonPatchOperation> {
    vec![
        JsonPatchOperation::Add {
            path: "/a".into(),
            value: json!(1),
        },
        JsonPatchOperation::Remove { path: "/b".into() },
        JsonPatchOperation::Replace {
            path: "/c".into(),
            value: json!("x"),
        },
        JsonPatchOperation::Move {
            from: "/d".into(),
            path: "/e".into(),
        },
        JsonPatchOperation::Copy {
            from: "/e".into(),
            path: "/f".into(),
        },
        JsonPatchOperation::Test {
            path: "/a".into(),
            value: json!(1),
        },
    ]
}

/// One event of each of the 31 types, every optional field set.
fn full_corpus() -> Vec<Event> {
    let interrupt = Interrupt {
        message: Some("Approve?".into()),
        tool_call_id: Some("c1".into()),
        response_schema: Some(object(&[("type", json!("object"))])),
        expires_at: Some("2030-01-01T00:00:00Z".into()),
        metadata: Some(object(&[("k", json!(1))])),
        subagent_run_id: sub(),
        ..Interrupt::new("i1", "confirmation")
    };
    vec![
        RunStarted {
            protocol_version: Some("1.0".into()),
            parent_run_id: Some("r0".into()),
            input: Some(Box::new(full_input())),
            base: base(),
            ..RunStarted::new("t", "r")
        }
        .into(),
        RunFinished {
            result: Some(json!({"answer": 42})),
            outcome: Some(RunFinishedOutcome::Success {
                pending_tool_call_ids: Some(vec!["c1".into(), "c2".into()]),
            }),
            usage: usage(),
            base: base(),
            ..RunFinished::new("t", "r")
        }
        .into(),
        RunError {
            code: Some("model_error".into()),
            usage: usage(),
            base: base(),
            ..RunError::new("The model failed.")
        }
        .into(),
        StepStarted {
            subagent_run_id: sub(),
            base: base(),
            ..StepStarted::new("plan")
        }
        .into(),
        StepFinished {
            subagent_run_id: sub(),
            base: base(),
            ..StepFinished::new("plan")
        }
        .into(),
        TextMessageStart {
            role: Some(TextRole::Developer),
            name: Some("n".into()),
            subagent_run_id: sub(),
            base: base(),
            ..TextMessageStart::new("m")
        }
        .into(),
        TextMessageContent {
            subagent_run_id: sub(),
            base: base(),
            ..TextMessageContent::new("m", "Hi")
        }
        .into(),
        TextMessageEnd {
            subagent_run_id: sub(),
            base: base(),
            ..TextMessageEnd::new("m")
        }
        .into(),
        TextMessageChunk {
            message_id: Some("m".into()),
            role: Some(TextRole::User),
            delta: Some("d".into()),
            name: Some("n".into()),
            subagent_run_id: sub(),
            base: base(),
        }
        .into(),
        ToolCallStart {
            parent_message_id: Some("m".into()),
            subagent_run_id: sub(),
            base: base(),
            ..ToolCallStart::new("c1", "search")
        }
        .into(),
        ToolCallArgs {
            subagent_run_id: sub(),
            base: base(),
            ..ToolCallArgs::new("c1", r#"{"q":"#)
        }
        .into(),
        ToolCallEnd {
            subagent_run_id: sub(),
            base: base(),
            ..ToolCallEnd::new("c1")
        }
        .into(),
        ToolCallChunk {
            tool_call_id: Some("c1".into()),
            tool_call_name: Some("search".into()),
            parent_message_id: Some("m".into()),
            delta: Some("{}".into()),
            subagent_run_id: sub(),
            base: base(),
        }
        .into(),
        ToolCallResult {
            role: Some(ToolRole::Tool),
            subagent_run_id: sub(),
            base: base(),
            ..ToolCallResult::new(
                "tm",
                "c1",
                vec![
                    ContentPart::text("found"),
                    ContentPart::Image(MediaPart::new(PartSource::Url {
                        value: "https://x".into(),
                        mime_type: None,
                    })),
                ],
            )
        }
        .into(),
        StateSnapshot {
            subagent_run_id: sub(),
            base: base(),
            ..StateSnapshot::new(json!({"count": 2, "list": [1, 2]}))
        }
        .into(),
        StateDelta {
            subagent_run_id: sub(),
            base: base(),
            ..StateDelta::new(patch())
        }
        .into(),
        MessagesSnapshot {
            base: base(),
            ..MessagesSnapshot::new(full_messages())
        }
        .into(),
        ActivitySnapshot {
            replace: Some(false),
            subagent_run_id: sub(),
            base: base(),
            ..ActivitySnapshot::new("act", "plan", object(&[("steps", json!([]))]))
        }
        .into(),
        ActivityDelta {
            subagent_run_id: sub(),
            base: base(),
            ..ActivityDelta::new("act", "plan", patch())
        }
        .into(),
        Raw {
            source: Some("openai".into()),
            subagent_run_id: sub(),
            base: base(),
            ..Raw::new(json!({"id": "chatcmpl-1"}))
        }
        .into(),
        Custom {
            subagent_run_id: sub(),
            base: base(),
            ..Custom::new("PredictState", json!([{"state_key": "k"}]))
        }
        .into(),
        ReasoningStart {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningStart::new("rs")
        }
        .into(),
        ReasoningEnd {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningEnd::new("rs")
        }
        .into(),
        ReasoningMessageStart {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningMessageStart::new("rm")
        }
        .into(),
        ReasoningMessageContent {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningMessageContent::new("rm", "hmm")
        }
        .into(),
        ReasoningMessageEnd {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningMessageEnd::new("rm")
        }
        .into(),
        ReasoningMessageChunk {
            message_id: Some("rm".into()),
            delta: Some("d".into()),
            subagent_run_id: sub(),
            base: base(),
        }
        .into(),
        ReasoningEncryptedValue {
            subagent_run_id: sub(),
            base: base(),
            ..ReasoningEncryptedValue::new(ReasoningEncryptedValueSubtype::ToolCall, "c1", "opaque")
        }
        .into(),
        SubagentStarted {
            description: Some("helps".into()),
            parent_subagent_run_id: Some("sub-0".into()),
            parent_tool_call_id: Some("c1".into()),
            parent_message_id: Some("m".into()),
            base: base(),
            ..SubagentStarted::new("sub-1", "helper")
        }
        .into(),
        SubagentFinished {
            result: Some(json!("done")),
            outcome: Some(SubagentFinishedOutcome::Suspended {
                interrupt_ids: Some(vec!["i1".into()]),
            }),
            base: base(),
            ..SubagentFinished::new("sub-1")
        }
        .into(),
        SubagentError {
            code: Some("tool_failed".into()),
            base: base(),
            ..SubagentError::new("sub-1", "It failed.")
        }
        .into(),
        // Extra shapes of the sub-types, beyond one per event type.
        RunFinished {
            outcome: Some(RunFinishedOutcome::Interrupt {
                interrupts: vec![interrupt],
            }),
            ..RunFinished::new("t", "r")
        }
        .into(),
        RunFinished {
            outcome: Some(RunFinishedOutcome::Cancelled),
            ..RunFinished::new("t", "r")
        }
        .into(),
        SubagentFinished {
            outcome: Some(SubagentFinishedOutcome::Success),
            ..SubagentFinished::new("sub-1")
        }
        .into(),
    ]
}

/// One event of each of the 31 types, only the required fields set.
fn minimal_corpus() -> Vec<Event> {
    vec![
        RunStarted::new("t", "r").into(),
        RunFinished::new("t", "r").into(),
        RunError::new("m").into(),
        StepStarted::new("s").into(),
        StepFinished::new("s").into(),
        TextMessageStart {
            role: None,
            ..TextMessageStart::new("m")
        }
        .into(),
        TextMessageContent::new("m", "").into(),
        TextMessageEnd::new("m").into(),
        TextMessageChunk::default().into(),
        ToolCallStart::new("c", "n").into(),
        ToolCallArgs::new("c", "").into(),
        ToolCallEnd::new("c").into(),
        ToolCallChunk::default().into(),
        ToolCallResult::new("tm", "c", "").into(),
        StateSnapshot::new(Value::Null).into(),
        StateDelta::new(vec![]).into(),
        MessagesSnapshot::new(vec![]).into(),
        ActivitySnapshot::new("a", "k", Map::new()).into(),
        ActivityDelta::new("a", "k", vec![]).into(),
        Raw::new(json!(1)).into(),
        Custom::new("n", json!(false)).into(),
        ReasoningStart::new("r").into(),
        ReasoningEnd::new("r").into(),
        ReasoningMessageStart::new("r").into(),
        ReasoningMessageContent::new("r", "").into(),
        ReasoningMessageEnd::new("r").into(),
        ReasoningMessageChunk::default().into(),
        ReasoningEncryptedValue::new(ReasoningEncryptedValueSubtype::Message, "m", "v").into(),
        SubagentStarted::new("s", "n").into(),
        SubagentFinished::new("s").into(),
        SubagentError::new("s", "m").into(),
    ]
}

fn covers_all_types(corpus: &[Event]) {
    for ty in EventType::ALL {
        assert!(
            corpus.iter().any(|e| e.event_type() == ty),
            "corpus lacks {ty}"
        );
    }
}

#[test]
fn every_event_round_trips_with_all_optional_fields() {
    let corpus = full_corpus();
    covers_all_types(&corpus);
    for event in corpus {
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, event, "{json}");
        assert_eq!(
            serde_json::to_value(&event).unwrap()["type"],
            event.event_type().as_str()
        );
    }
}

#[test]
fn every_event_round_trips_with_no_optional_fields() {
    let corpus = minimal_corpus();
    assert_eq!(corpus.len(), 31);
    covers_all_types(&corpus);
    for event in corpus {
        let json = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert_eq!(back, event, "{json}");
        // Only `type` and the required members are written.
        assert!(
            !json.contains("timestamp") && !json.contains("metadata"),
            "{json}"
        );
        // subagentRunId is required only on SUBAGENT_*; elsewhere it is optional.
        let is_subagent = event.event_type().as_str().starts_with("SUBAGENT_");
        assert_eq!(json.contains("subagentRunId"), is_subagent, "{json}");
    }
}

fn assert_no_null(value: &Value, path: &str) {
    match value {
        Value::Null => panic!("null at {path}"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_null(item, &format!("{path}/{i}"));
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                assert_no_null(item, &format!("{path}/{key}"));
            }
        }
        _ => {}
    }
}

#[test]
fn no_null_is_ever_serialized() {
    // The minimal corpus's STATE_SNAPSHOT carries a null snapshot on purpose (a legal
    // value); everything else must be null-free.
    for event in full_corpus().iter().chain(minimal_corpus().iter()) {
        if let Event::StateSnapshot(s) = event
            && s.snapshot.is_null()
        {
            continue;
        }
        for dialect in [Dialect::V1, Dialect::Legacy] {
            let adapted = dialect.adapt(event.clone()).unwrap();
            let value = serde_json::to_value(&adapted).unwrap();
            assert_no_null(&value, &format!("{}", event.event_type()));
        }
    }
}

#[test]
fn fields_serialize_in_declaration_order_with_base_last() {
    let event: Event = ToolCallStart {
        parent_message_id: Some("m1".into()),
        subagent_run_id: Some("s".into()),
        base: BaseEvent::at(5),
        ..ToolCallStart::new("c1", "search")
    }
    .into();
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"type":"TOOL_CALL_START","toolCallId":"c1","toolCallName":"search","parentMessageId":"m1","subagentRunId":"s","timestamp":5}"#
    );
    let event: Event = RunFinished {
        outcome: Some(RunFinishedOutcome::Success {
            pending_tool_call_ids: Some(vec!["c1".into()]),
        }),
        ..RunFinished::new("t", "r")
    }
    .into();
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"type":"RUN_FINISHED","threadId":"t","runId":"r","outcome":{"type":"success","pendingToolCallIds":["c1"]}}"#
    );
    let event: Event = RunError::with_code("Stopped.", "server_shutdown").into();
    assert_eq!(
        serde_json::to_string(&event).unwrap(),
        r#"{"type":"RUN_ERROR","message":"Stopped.","code":"server_shutdown"}"#
    );
}

#[test]
fn reference_sse_example_is_reproduced_byte_for_byte() {
    // Reference §3.2 [verified]: what @ag-ui/encoder writes.
    let event = Event::from(TextMessageStart::new("m1")).with_timestamp(1_700_000_000_000);
    assert_eq!(
        &sse::encode(&event)[..],
        b"data: {\"type\":\"TEXT_MESSAGE_START\",\"messageId\":\"m1\",\"role\":\"assistant\",\"timestamp\":1700000000000}\n\n"
    );
}

#[test]
fn sub_types_have_their_exact_wire_shapes() {
    let ops = serde_json::to_value(patch()).unwrap();
    assert_eq!(
        ops,
        json!([
            {"op": "add", "path": "/a", "value": 1},
            {"op": "remove", "path": "/b"},
            {"op": "replace", "path": "/c", "value": "x"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "copy", "from": "/e", "path": "/f"},
            {"op": "test", "path": "/a", "value": 1}
        ])
    );
    assert_eq!(
        serde_json::to_value(RunFinishedOutcome::Cancelled).unwrap(),
        json!({"type": "cancelled"})
    );
    assert_eq!(
        serde_json::to_value(ReasoningEncryptedValueSubtype::ToolCall).unwrap(),
        json!("tool-call")
    );
    assert_eq!(
        serde_json::to_value(SubagentFinishedOutcome::Suspended {
            interrupt_ids: None
        })
        .unwrap(),
        json!({"type": "suspended"})
    );
    assert_eq!(
        serde_json::to_value(usage().unwrap()).unwrap(),
        json!([{"provider": "openai", "model": "gpt", "inputTokens": 10, "outputTokens": 5,
                "totalTokens": 15, "reasoningTokens": 2, "cachedInputTokens": 3,
                "cacheWriteInputTokens": 1}])
    );
}

#[test]
fn closed_outcomes_reject_foreign_members_only_by_shape() {
    // Unknown members are ignored on read (no deny_unknown_fields), but a wrong type for a
    // known one fails.
    let ok: RunFinishedOutcome =
        serde_json::from_value(json!({"type": "success", "extra": 1})).unwrap();
    assert_eq!(
        ok,
        RunFinishedOutcome::Success {
            pending_tool_call_ids: None
        }
    );
    assert!(serde_json::from_value::<RunFinishedOutcome>(json!({"type": "interrupt"})).is_err());
    assert!(serde_json::from_value::<RunFinishedOutcome>(json!({"type": "done"})).is_err());
    assert!(serde_json::from_value::<TokenUsage>(json!({"inputTokens": -1})).is_err());
}

/// Every event is moved by value several times between the model and the wire, so its size is
/// paid per event (a `memmove` each): the rare base fields stay boxed and no variant grows the
/// enum past today's largest, `RUN_FINISHED` (a 200-delta run at 50 concurrent: 336 -> 208 bytes
/// cut ~5 % of its CPU).
#[test]
fn events_stay_small_enough_to_move() {
    use std::mem::size_of;
    assert_eq!(size_of::<BaseEvent>(), 32);
    assert!(
        size_of::<Event>() <= 208,
        "Event is {} bytes",
        size_of::<Event>()
    );
    // The events of a streamed reply are half that.
    assert!(size_of::<TextMessageContent>() <= 104);
    assert!(size_of::<ToolCallArgs>() <= 104);
}
