//! `RunAgentInput` parsing: the bodies real clients send, defaults, unknown members, and
//! errors that point at the offending member without echoing input.

use agui_protocol::*;
use serde_json::json;

fn shape_error(body: serde_json::Value) -> InputError {
    let err = parse_run_input(body.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.kind, InputErrorKind::Shape, "{err:?}");
    err
}

#[test]
fn http_agent_1_0_body_parses() {
    // Reference §2 [verified]: exactly what HttpAgent 1.0.0 sends.
    let body = br#"{"threadId":"0b6c1a57-1f0e-4e57-9f39-3c5b9a0f1a11","runId":"5f0f6a0e-6d3b-4c1e-8f71-0d5f3f0b2d22","protocolVersion":"1.0","state":{},"messages":[{"id":"u1","role":"user","content":"hi"}],"tools":[],"context":[],"forwardedProps":{}}"#;
    let input = parse_run_input(body).unwrap();
    assert_eq!(input.thread_id, "0b6c1a57-1f0e-4e57-9f39-3c5b9a0f1a11");
    assert_eq!(input.protocol_version.as_deref(), Some("1.0"));
    assert_eq!(
        input.messages,
        vec![Message::User(UserMessage::new("u1", "hi"))]
    );
    assert_eq!(input.state, json!({}));
    assert_eq!(input.forwarded_props, Some(json!({})));
    assert_eq!(
        Dialect::negotiate(input.protocol_version.as_deref()),
        Ok(Dialect::V1)
    );
}

#[test]
fn legacy_0_0_x_body_parses_with_defaults() {
    // 0.0.x clients send no protocolVersion; older ones may omit tools/context/state.
    let body = br#"{"threadId":"t","runId":"r","messages":[{"id":"u1","role":"user","content":"hi"}],"forwardedProps":{"authorization":"Bearer x"}}"#;
    let input = parse_run_input(body).unwrap();
    assert_eq!(input.protocol_version, None);
    assert!(input.tools.is_empty());
    assert!(input.context.is_empty());
    assert_eq!(input.state, json!({}));
    assert_eq!(input.resume, None);
    assert_eq!(
        Dialect::negotiate(input.protocol_version.as_deref()),
        Ok(Dialect::Legacy)
    );
}

#[test]
fn null_state_becomes_an_empty_object_and_null_props_absent() {
    let input = parse_run_input(
        br#"{"threadId":"t","runId":"r","messages":[],"state":null,"forwardedProps":null}"#,
    )
    .unwrap();
    assert_eq!(input.state, json!({}));
    assert_eq!(input.forwarded_props, None);
    // A real state is kept as is, whatever its JSON type.
    let input =
        parse_run_input(br#"{"threadId":"t","runId":"r","messages":[],"state":[1,2]}"#).unwrap();
    assert_eq!(input.state, json!([1, 2]));
}

#[test]
fn unknown_members_are_ignored_everywhere() {
    let input = parse_run_input(
        json!({
            "threadId": "t", "runId": "r", "somethingNew": {"x": 1},
            "messages": [
                {"id": "u1", "role": "user", "content": "hi", "mood": "happy"},
                {"id": "a1", "role": "assistant", "toolCalls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}", "extra": 1}, "x": 2}
                ]},
                {"id": "t1", "role": "tool", "toolCallId": "c1", "content": [{"type": "text", "text": "ok", "more": true}]}
            ],
            "tools": [{"name": "f", "description": "d", "parameters": {}, "vendor": 1}],
            "context": [{"description": "d", "value": "v", "extra": 0}],
            "resume": [{"interruptId": "i1", "status": "cancelled", "why": "no"}]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(input.messages.len(), 3);
    assert_eq!(input.resume.unwrap()[0].status, ResumeStatus::Cancelled);
}

#[test]
fn every_message_role_and_content_shape_parses() {
    let input = parse_run_input(
        json!({
            "threadId": "t", "runId": "r",
            "messages": [
                {"id": "d", "role": "developer", "content": "x"},
                {"id": "s", "role": "system", "content": "x"},
                {"id": "a", "role": "assistant"},
                {"id": "u", "role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image", "source": {"type": "data", "value": "AAAA", "mimeType": "image/png"}},
                    {"type": "document", "source": {"type": "file", "value": "f1", "provider": "openai"}}
                ]},
                {"id": "t", "role": "tool", "toolCallId": "c", "content": "r", "error": "failed"},
                {"id": "act", "role": "activity", "activityType": "plan", "content": {}},
                {"id": "re", "role": "reasoning", "content": "hm"}
            ]
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let roles: Vec<&str> = input.messages.iter().map(Message::role).collect();
    assert_eq!(
        roles,
        [
            "developer",
            "system",
            "assistant",
            "user",
            "tool",
            "activity",
            "reasoning"
        ]
    );
    assert_eq!(input.messages[4].id(), &MessageId::from("t"));
}

#[test]
fn input_round_trips() {
    let body = json!({
        "threadId": "t", "runId": "r", "protocolVersion": "1.0", "parentRunId": "p",
        "messages": [{"id": "u", "role": "user", "content": "hi"}],
        "state": {"a": 1},
        "tools": [{"name": "f", "description": "d"}],
        "context": [{"description": "d", "value": "v"}],
        "forwardedProps": {"k": 1},
        "resume": [{"interruptId": "i", "status": "resolved", "payload": 1}]
    });
    let input = parse_run_input(body.to_string().as_bytes()).unwrap();
    assert_eq!(serde_json::to_value(&input).unwrap(), body);
}

#[test]
fn bad_json_is_a_syntax_error_without_echo() {
    let err = parse_run_input(br#"{"threadId": "SECRET-TOKEN" "#).unwrap_err();
    assert_eq!(err.kind, InputErrorKind::Syntax);
    assert_eq!(err.pointer, None);
    assert!(!err.message.contains("SECRET"), "{}", err.message);
    let err = parse_run_input(b"not json").unwrap_err();
    assert_eq!(err.kind, InputErrorKind::Syntax);
    assert!(err.message.contains("line 1"), "{}", err.message);
}

#[test]
fn a_non_object_body_is_a_shape_error() {
    for body in [json!([]), json!("x"), json!(1), json!(null)] {
        let err = shape_error(body);
        assert_eq!(err.pointer, None);
    }
}

#[test]
fn missing_thread_id_points_at_it() {
    let err = shape_error(json!({"runId": "r", "messages": []}));
    assert_eq!(err.pointer.as_deref(), Some("/threadId"));
    assert_eq!(err.message, "missing required member at /threadId");
    let err = shape_error(json!({"threadId": "t", "runId": "r"}));
    assert_eq!(err.pointer.as_deref(), Some("/messages"));
}

#[test]
fn wrong_member_types_point_at_the_member() {
    let err = shape_error(json!({"threadId": 42, "runId": "r", "messages": []}));
    assert_eq!(err.pointer.as_deref(), Some("/threadId"));
    assert!(
        err.message.starts_with("invalid value: expected"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("42"), "{}", err.message);

    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [], "tools": [{"name": 1, "description": "d"}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/tools/0/name"));

    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [], "context": [{"description": "d"}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/context/0/value"));

    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [], "resume": [{"interruptId": "i", "status": "maybe-SECRET"}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/resume/0/status"));
    assert!(!err.message.contains("SECRET"), "{}", err.message);
}

#[test]
fn bad_roles_point_at_the_role() {
    let err = shape_error(json!({"threadId": "t", "runId": "r", "messages": [
        {"id": "u", "role": "user", "content": "ok"},
        {"id": "x", "role": "wizard-SECRET", "content": "hi"}
    ]}));
    assert_eq!(err.pointer.as_deref(), Some("/messages/1/role"));
    assert!(!err.message.contains("SECRET"), "{}", err.message);
    assert!(err.message.contains("developer"), "{}", err.message);

    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [{"id": "x", "content": "hi"}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/role"));
    assert_eq!(err.message, "missing required member at /messages/0/role");

    let err =
        shape_error(json!({"threadId": "t", "runId": "r", "messages": [{"id": "x", "role": 7}]}));
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/role"));

    let err = shape_error(json!({"threadId": "t", "runId": "r", "messages": ["hello"]}));
    assert_eq!(err.pointer.as_deref(), Some("/messages/0"));
}

#[test]
fn errors_inside_messages_point_at_the_member() {
    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [{"id": "u", "role": "user"}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/content"));
    assert_eq!(
        err.message,
        "missing required member at /messages/0/content"
    );

    let err = shape_error(
        json!({"threadId": "t", "runId": "r", "messages": [{"id": "u", "role": "user", "content": 5}]}),
    );
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/content"));

    let err = shape_error(json!({"threadId": "t", "runId": "r", "messages": [
        {"id": "a", "role": "assistant", "toolCalls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}
    ]}));
    assert_eq!(
        err.pointer.as_deref(),
        Some("/messages/0/toolCalls/0/function/arguments")
    );

    let err = shape_error(json!({"threadId": "t", "runId": "r", "messages": [
        {"id": "t", "role": "tool", "content": "x"}
    ]}));
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/toolCallId"));

    let err = shape_error(json!({"threadId": "t", "runId": "r", "messages": [
        {"id": 1, "role": "developer", "content": "x"}
    ]}));
    assert_eq!(err.pointer.as_deref(), Some("/messages/0/id"));
}

#[test]
fn run_input_from_value_validates_a_parsed_body() {
    let mut body = json!({"threadId": "t", "runId": "r", "messages": [], "forwardedProps": {"authorization": "Bearer x"}});
    // The server takes the token out first, then validates.
    body["forwardedProps"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let input = run_input_from_value(&body).unwrap();
    assert_eq!(input.forwarded_props, Some(json!({})));
}

#[test]
fn a_repeated_member_reads_as_its_last_value_and_an_array_body_is_refused() {
    // The one-pass parse refuses both; the fallback decides, as it always did.
    let body = br#"{"threadId":"first","threadId":"last","runId":"r","messages":[]}"#;
    assert_eq!(parse_run_input(body).unwrap().thread_id, "last");
    // Positionally, these would fill a RunAgentInput; a body must be an object.
    let err = parse_run_input(br#"["t","r",[]]"#).unwrap_err();
    assert_eq!(err.kind, InputErrorKind::Shape);
    assert_eq!(err.message, "the body must be a JSON object");
    // Positive control: the same members as an object parse.
    assert_eq!(
        parse_run_input(br#" {"threadId":"t","runId":"r","messages":[]}"#)
            .unwrap()
            .run_id,
        "r"
    );
}
