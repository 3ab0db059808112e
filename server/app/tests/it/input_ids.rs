//! Ids are bounded over HTTP (issue #12, defect 3): for every id a client sends (`threadId`,
//! `runId`, `parentRunId`, a message id, a tool call's id, a tool message's `toolCallId`), an id
//! of `MAX_ID_BYTES` bytes streams, one byte more, an empty id or a control character gets
//! 400 `invalid_input` with the member's pointer in `field`, and nothing reaches the store.

use crate::common::*;
use agui_protocol::MAX_ID_BYTES;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A body that streams (the last message is the user's), with the id of `kind` set to `id`.
fn body(n: usize, kind: &str, id: &str) -> Value {
    let pick = |name: &str, normal: String| {
        if name == kind { id.to_owned() } else { normal }
    };
    json!({
        "threadId": pick("threadId", format!("ids_thread_{n}")),
        "runId": pick("runId", format!("ids_run_{n}")),
        "parentRunId": pick("parentRunId", format!("ids_parent_{n}")),
        "protocolVersion": "1.0",
        "messages": [
            {"id": "u0", "role": "user", "content": "earlier"},
            {"id": "a1", "role": "assistant", "toolCalls": [
                {"id": pick("toolCalls", "c1".into()), "type": "function",
                 "function": {"name": "whoami", "arguments": "{}"}}
            ]},
            {"id": "t1", "role": "tool", "toolCallId": pick("toolCallId", "c1".into()), "content": "ok"},
            {"id": pick("messageId", "u1".into()), "role": "user", "content": "hello"}
        ]
    })
}

const KINDS: [(&str, &str); 6] = [
    ("threadId", "/threadId"),
    ("runId", "/runId"),
    ("parentRunId", "/parentRunId"),
    ("messageId", "/messages/3/id"),
    ("toolCalls", "/messages/1/toolCalls/0/id"),
    ("toolCallId", "/messages/2/toolCallId"),
];

async fn threads(server: &TestServer, token: &str) -> Vec<Value> {
    let response = server
        .http
        .get(format!("{}/threads", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["threads"].as_array().unwrap().clone()
}

#[tokio::test]
async fn bad_ids_get_invalid_input_with_their_pointer_and_nothing_is_stored() {
    // A caller is admitted (and takes a run token) before its body is read, so the many
    // refused bodies below would exhaust the default burst.
    let server = start_with(|c| c.limits.runs_per_minute = 0, |b| b).await;
    let token = server.token("ids-refused");
    let over = "x".repeat(MAX_ID_BYTES + 1);
    let mut n = 0;
    for (kind, pointer) in KINDS {
        for id in ["", over.as_str(), "a\nb", "x\u{1b}[2J"] {
            n += 1;
            let response = server.post("/chat", Some(&token), &body(n, kind, id)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{kind} {id:?}");
            let error: Value = response.json().await.unwrap();
            crate::common::error_body::assert_valid_error_body(&error);
            assert_eq!(error["error"], "invalid_input", "{kind} {id:?}");
            assert_eq!(error["field"], pointer, "{kind} {id:?}");
            let message = error["message"].as_str().unwrap();
            assert!(message.starts_with("invalid id: "), "{message}");
            assert!(!message.contains("xxx") && !message.contains('\u{1b}'));
        }
    }
    assert_eq!(
        threads(&server, &token).await,
        Vec::<Value>::new(),
        "a refused run leaves no thread"
    );
    server.stop().await;
}

#[tokio::test]
async fn ids_of_exactly_the_limit_stream_positive_control() {
    let server = start().await;
    let token = server.token("ids-accepted");
    let at_limit = "y".repeat(MAX_ID_BYTES);
    for (n, (kind, _)) in KINDS.iter().enumerate() {
        let events = server
            .run_as("/chat", &token, &body(1000 + n, kind, &at_limit))
            .await;
        assert_eq!(events[0]["type"], "RUN_STARTED", "{kind}");
        assert_eq!(events.last().unwrap()["type"], "RUN_FINISHED", "{kind}");
    }
    // A normal id streams too, and its thread is stored (the control for "nothing is stored").
    let events = server.run_as("/chat", &token, &body(2000, "", "")).await;
    assert_eq!(events[0]["threadId"], "ids_thread_2000");
    let stored = threads(&server, &token).await;
    assert!(
        stored.iter().any(|t| t["thread_id"] == "ids_thread_2000"),
        "{stored:?}"
    );
    assert!(
        stored.iter().any(|t| t["thread_id"] == at_limit.as_str()),
        "the 256-byte thread id is stored whole: {stored:?}"
    );
    server.stop().await;
}
