//! Ids in a `RunAgentInput` are bounded (issue #12, defect 3): every id a client sends is
//! non-empty, at most `MAX_ID_BYTES` bytes and free of control characters, or the body is a
//! Shape error pointing at that member, whose message names the rule and never echoes the id.

use agui_protocol::*;
use serde_json::{Value, json};

/// A body with one id of every kind, each set to `id` when its name is `which`.
fn body(which: &str, id: &str) -> Value {
    let pick = |name: &str, normal: &str| {
        if name == which {
            id.to_owned()
        } else {
            normal.to_owned()
        }
    };
    json!({
        "threadId": pick("threadId", "t1"),
        "runId": pick("runId", "r1"),
        "parentRunId": pick("parentRunId", "r0"),
        "messages": [
            {"id": pick("user", "u1"), "role": "user", "content": "hi"},
            {"id": "a1", "role": "assistant", "toolCalls": [
                {"id": "c0", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": pick("toolCalls", "c1"), "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"id": "t1", "role": "tool", "toolCallId": pick("toolCallId", "c1"), "content": "ok"},
            {"id": pick("assistant", "a2"), "role": "assistant", "content": "done"}
        ]
    })
}

/// Every id kind and the pointer its member has in [`body`].
const KINDS: [(&str, &str); 7] = [
    ("threadId", "/threadId"),
    ("runId", "/runId"),
    ("parentRunId", "/parentRunId"),
    ("user", "/messages/0/id"),
    ("toolCalls", "/messages/1/toolCalls/1/id"),
    ("toolCallId", "/messages/2/toolCallId"),
    ("assistant", "/messages/3/id"),
];

fn parse(body: &Value) -> Result<RunAgentInput, InputError> {
    parse_run_input(body.to_string().as_bytes())
}

#[test]
fn ordinary_ids_and_ids_at_the_limit_are_accepted() {
    parse(&body("", "")).expect("the control body parses");
    let at_limit = "x".repeat(MAX_ID_BYTES);
    for (kind, _) in KINDS {
        let input = parse(&body(kind, &at_limit)).unwrap_or_else(|e| panic!("{kind}: {e}"));
        // The id arrives untouched.
        let json = serde_json::to_value(&input).unwrap();
        assert!(json.to_string().contains(&at_limit), "{kind}");
    }
}

#[test]
fn an_id_one_byte_over_the_limit_is_refused_at_its_pointer() {
    let over = "x".repeat(MAX_ID_BYTES + 1);
    for (kind, pointer) in KINDS {
        let err = parse(&body(kind, &over)).unwrap_err();
        assert_eq!(err.kind, InputErrorKind::Shape, "{kind}");
        assert_eq!(err.pointer.as_deref(), Some(pointer), "{kind}");
        assert_eq!(
            err.message,
            format!("invalid id: must be at most 256 bytes at {pointer}")
        );
        assert!(!err.message.contains("xxx"), "never echoes the id");
    }
}

#[test]
fn empty_ids_and_control_characters_are_refused_at_their_pointer() {
    let cases = [
        ("", "must not be empty"),
        ("a\nb", "must not contain control characters"),
        ("a\rb", "must not contain control characters"),
        ("SECRET\u{1b}[2J", "must not contain control characters"),
        ("\u{0}", "must not contain control characters"),
        ("\u{85}", "must not contain control characters"),
    ];
    for (kind, pointer) in KINDS {
        for (id, rule) in cases {
            let err = parse(&body(kind, id)).unwrap_err();
            assert_eq!(err.kind, InputErrorKind::Shape, "{kind} {id:?}");
            assert_eq!(err.pointer.as_deref(), Some(pointer), "{kind} {id:?}");
            assert_eq!(err.message, format!("invalid id: {rule} at {pointer}"));
            assert!(!err.message.contains("SECRET"));
        }
    }
}

#[test]
fn the_first_bad_id_in_document_order_is_reported() {
    let mut bad = body("runId", "");
    bad["messages"][3]["id"] = json!("");
    assert_eq!(parse(&bad).unwrap_err().pointer.as_deref(), Some("/runId"));
}

#[test]
fn a_7_mib_thread_id_is_refused() {
    // The defect as reported: a 7 MiB threadId was accepted and stored.
    let huge = "t".repeat(7 * 1024 * 1024);
    let err = parse(&body("threadId", &huge)).unwrap_err();
    assert_eq!(err.pointer.as_deref(), Some("/threadId"));
    assert!(err.message.len() < 100);
}
