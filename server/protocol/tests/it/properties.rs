//! Property-based tests (proptest) of the parsers and encoders a client reaches first:
//! `parse_run_input` on arbitrary bytes and JSON, the SSE and protobuf encoders (round trips,
//! framing), and the sequence guard. The official-client side of the guard property runs in
//! `tests/conformance` (`guard-sequences.mjs`) on sequences from `examples/guard_sequences.rs`.

use agui_protocol::proto::{decode_frame, encode_frame, from_pb};
use agui_protocol::*;
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::strategies::{event, guard_accepted, json_value, sequence_candidate, text};

// ---------------------------------------------------------------------------------------------
// parse_run_input

/// A value near a `RunAgentInput`: every member either well formed or arbitrary JSON, messages
/// of every role with members well formed or arbitrary, and `SECRET` in the strings, so the
/// parser's deeper paths and its error messages are reached.
fn input_like() -> impl Strategy<Value = Value> {
    let maybe = |good: Value| prop_oneof![3 => Just(good), 1 => json_value()];
    let id = || {
        prop_oneof![
            4 => "[a-z0-9_]{1,8}".prop_map(Value::String),
            1 => text().prop_map(|s| Value::String(format!("SECRET{s}"))),
            1 => json_value(),
        ]
    };
    let role = prop_oneof![
        Just(json!("user")),
        Just(json!("assistant")),
        Just(json!("tool")),
        Just(json!("system")),
        Just(json!("developer")),
        Just(json!("reasoning")),
        Just(json!("activity")),
        json_value(),
    ];
    let tool_call = (
        id(),
        maybe(json!("function")),
        maybe(json!({"name": "f", "arguments": "{}"})),
    )
        .prop_map(|(id, kind, function)| json!({"id": id, "type": kind, "function": function}));
    let message = (
        id(),
        role,
        maybe(json!("SECRET content")),
        proptest::option::of(vec(tool_call, 0..3)),
        proptest::option::of(id()),
        proptest::option::of(json_value()),
    )
        .prop_map(|(id, role, content, calls, call_id, extra)| {
            let mut m = Map::new();
            m.insert("id".into(), id);
            m.insert("role".into(), role);
            m.insert("content".into(), content);
            if let Some(calls) = calls {
                m.insert("toolCalls".into(), Value::Array(calls));
            }
            if let Some(call_id) = call_id {
                m.insert("toolCallId".into(), call_id);
            }
            if let Some(extra) = extra {
                m.insert("activityType".into(), json!("a"));
                m.insert("name".into(), extra);
            }
            Value::Object(m)
        });
    (
        id(),
        id(),
        prop_oneof![3 => vec(message, 0..4).prop_map(Value::Array), 1 => json_value()],
        proptest::option::of(maybe(json!("1.0"))),
        proptest::option::of(id()),
        proptest::option::of(json_value()),
        proptest::option::of(maybe(json!([{"name": "t", "description": "d"}]))),
        proptest::option::of(maybe(json!([{"description": "d", "value": "v"}]))),
        proptest::option::of(maybe(json!([{"interruptId": "i", "status": "resolved"}]))),
    )
        .prop_map(
            |(thread, run, messages, version, parent, state, tools, context, resume)| {
                let mut m = Map::new();
                m.insert("threadId".into(), thread);
                m.insert("runId".into(), run);
                m.insert("messages".into(), messages);
                for (key, value) in [
                    ("protocolVersion", version),
                    ("parentRunId", parent),
                    ("state", state),
                    ("tools", tools),
                    ("context", context),
                    ("resume", resume),
                ] {
                    if let Some(value) = value {
                        m.insert(key.into(), value);
                    }
                }
                Value::Object(m)
            },
        )
}

/// Every Shape error points into the input: the root (`""` or none), a member that is there,
/// or, for a missing member, a place whose parent is there. Its message never echoes input.
fn assert_error_points_into(value: &Value, err: &InputError) {
    assert_eq!(err.kind, InputErrorKind::Shape, "{err:?}");
    assert!(
        !err.message.contains("SECRET"),
        "echoes input: {}",
        err.message
    );
    let Some(pointer) = err.pointer.as_deref().filter(|p| !p.is_empty()) else {
        return;
    };
    if value.pointer(pointer).is_some() {
        return;
    }
    let parent = &pointer[..pointer.rfind('/').unwrap_or(0)];
    assert!(
        err.message.starts_with("missing required member") && value.pointer(parent).is_some(),
        "{pointer} does not resolve in {value} ({})",
        err.message
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_run_input_never_panics_on_bytes(bytes in vec(any::<u8>(), 0..512)) {
        let _ = parse_run_input(&bytes);
    }

    #[test]
    fn parse_run_input_never_panics_on_json_text(text in "[\\[\\]{}\",:0-9a-zA-Z \\\\n]{0,200}") {
        let _ = parse_run_input(text.as_bytes());
    }

    #[test]
    fn every_shape_error_on_arbitrary_json_points_into_it(value in json_value()) {
        if let Err(err) = parse_run_input(value.to_string().as_bytes()) {
            assert_error_points_into(&value, &err);
        }
    }

    #[test]
    fn every_shape_error_on_near_inputs_points_into_it(value in input_like()) {
        match parse_run_input(value.to_string().as_bytes()) {
            Err(err) => assert_error_points_into(&value, &err),
            // Whatever parses obeys the id rule everywhere.
            Ok(input) => {
                prop_assert!(check_id(&input.thread_id).is_ok());
                prop_assert!(check_id(&input.run_id).is_ok());
                for message in &input.messages {
                    prop_assert!(check_id(message.id()).is_ok());
                }
            }
        }
    }

    /// The one-pass parse of a body and the parse through a `Value` (the path that finds the
    /// error's pointer) give the same input, or the same error, for every near input.
    #[test]
    fn the_fast_parse_agrees_with_the_value_parse(value in input_like()) {
        let fast = parse_run_input(value.to_string().as_bytes());
        prop_assert_eq!(fast, run_input_from_value(&value));
    }
}

// ---------------------------------------------------------------------------------------------
// Encoders

/// The payload of one SSE frame, checking the framing on the way.
fn sse_payload(frame: &[u8]) -> &str {
    let text = std::str::from_utf8(frame).expect("frames are UTF-8");
    assert!(!text.contains('\r'), "no CR anywhere: {text:?}");
    let body = text
        .strip_prefix("data: ")
        .and_then(|rest| rest.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not `data: …\\n\\n`: {text:?}"));
    assert!(
        !body.contains('\n'),
        "one line, so no \\n\\n before the end: {text:?}"
    );
    body
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sse_frames_round_trip_and_stay_one_line(event in event()) {
        let frame = sse::encode(&event);
        let back: Event = serde_json::from_str(sse_payload(&frame)).unwrap();
        prop_assert_eq!(back, event);
    }

    /// The encoder's fast path for content events writes exactly what serde writes, for every
    /// event (the others go through serde itself): ids and deltas with every character that
    /// needs escaping, with and without a subagent, a timestamp, a `rawEvent` or `metadata`.
    #[test]
    fn the_sse_fast_path_writes_what_serde_writes(event in event()) {
        let frame = sse::encode(&event);
        let serde = format!("data: {}\n\n", serde_json::to_string(&event).unwrap());
        prop_assert_eq!(std::str::from_utf8(&frame).unwrap(), serde);
    }

    /// The same, for the content events alone (a twelfth of `event()`'s), every shape of them.
    #[test]
    fn the_sse_fast_path_writes_what_serde_writes_for_every_content_event(
        kind in 0..3u8,
        id in text(),
        delta in text(),
        subagent in proptest::option::of(text()),
        timestamp in proptest::option::of(any::<i64>()),
        raw in proptest::option::weighted(0.2, json_value()),
        metadata in any::<bool>(),
    ) {
        let base = BaseEvent {
            timestamp,
            raw_event: raw.filter(|v| !v.is_null()).map(Box::new),
            metadata: metadata.then(|| Box::new(Map::from_iter([("k".into(), json!("v\n"))]))),
        };
        let event: Event = match kind {
            0 => TextMessageContent { subagent_run_id: subagent, base, ..TextMessageContent::new(id, delta) }.into(),
            1 => ToolCallArgs { subagent_run_id: subagent, base, ..ToolCallArgs::new(id, delta) }.into(),
            _ => ReasoningMessageContent { subagent_run_id: subagent, base, ..ReasoningMessageContent::new(id, delta) }.into(),
        };
        let frame = sse::encode(&event);
        let serde = format!("data: {}\n\n", serde_json::to_string(&event).unwrap());
        prop_assert_eq!(std::str::from_utf8(&frame).unwrap(), serde);
    }

    #[test]
    fn protobuf_frames_round_trip(event in event()) {
        let frame = encode_frame(&event);
        let (message, used) = decode_frame(&frame).unwrap();
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(from_pb(message).unwrap(), event);
    }

    #[test]
    fn back_to_back_frames_split_exactly(events in vec(event(), 1..6)) {
        let mut sse_stream = Vec::new();
        let mut proto_stream = Vec::new();
        for event in &events {
            sse::encode_into(event, &mut sse_stream);
            proto::encode_frame_into(event, &mut proto_stream);
        }
        // SSE: the client splits on /\n\n/ (reference §3.1).
        let text = String::from_utf8(sse_stream).unwrap();
        let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
        prop_assert_eq!(frames.len(), events.len());
        let mut rest = &proto_stream[..];
        for (frame, event) in frames.iter().zip(&events) {
            let json = frame.strip_prefix("data: ").unwrap();
            prop_assert_eq!(&serde_json::from_str::<Event>(json).unwrap(), event);
            let (message, used) = decode_frame(rest).unwrap();
            prop_assert_eq!(&from_pb(message).unwrap(), event);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The sequence guard

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_guard_never_panics(events in vec(prop_oneof![event(), sequence_candidate()], 0..60)) {
        let mut guard = SequenceGuard::new();
        for event in &events {
            let _ = guard.check(event);
        }
    }

    /// A refusal leaves the guard as it was (what the sink relies on to send a RUN_ERROR
    /// instead, and what the conformance emitter relies on to filter candidates).
    #[test]
    fn a_refused_event_changes_nothing(events in vec(sequence_candidate(), 0..80)) {
        let mut guard = SequenceGuard::new();
        for event in &events {
            let before = (guard.open_items(), guard.run_active(), guard.finished());
            if guard.check(event).is_err() {
                prop_assert_eq!((guard.open_items(), guard.run_active(), guard.finished()), before);
            }
        }
    }

    /// Filtered and closed sequences are whole runs a fresh guard accepts from start to end.
    #[test]
    fn accepted_sequences_are_closed_runs(
        candidates in vec(sequence_candidate(), 0..80),
        error_at_end in any::<bool>(),
    ) {
        let events = guard_accepted(candidates, error_at_end);
        let mut guard = SequenceGuard::new();
        for event in &events {
            prop_assert!(guard.check(event).is_ok(), "{:?}", event);
        }
        prop_assert!(events.last().is_some_and(Event::is_terminal));
        prop_assert!(guard.finished() && !guard.run_active());
        // The legacy form (what a 0.0.x client gets) drops at most late RUN_ERRORs, and still
        // ends with a terminal event.
        let mut adapter = DialectAdapter::new(Dialect::Legacy);
        let legacy: Vec<Event> = events.iter().cloned().filter_map(|e| adapter.adapt(e)).collect();
        prop_assert!(legacy.last().is_some_and(Event::is_terminal));
        let run_errors = events.iter().filter(|e| matches!(e, Event::RunError(_))).count();
        prop_assert!(events.len() - legacy.len() <= run_errors);
    }
}
