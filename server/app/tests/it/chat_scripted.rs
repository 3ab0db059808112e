//! Every scripted scenario over a real socket, in both dialects: the exact event sequence, one
//! terminal event, and the wire details clients depend on.

use crate::common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn greeting_names_the_verified_user_and_echoes_the_message() {
    let server = start().await;
    let body = input("hello there", Some("1.0"));
    let events = server.run("alice", &body).await;
    assert_eq!(
        types(&events)[..2],
        ["RUN_STARTED", "TEXT_MESSAGE_START"],
        "{events:?}"
    );
    assert_eq!(
        types(&events)[types(&events).len() - 2..],
        ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    );
    assert!(
        types(&events)[2..types(&events).len() - 2]
            .iter()
            .all(|t| *t == "TEXT_MESSAGE_CONTENT")
    );
    assert_eq!(
        text(&events),
        "Hello, Test alice! You said: \"hello there\""
    );
    let started = &events[0];
    assert_eq!(started["threadId"], body["threadId"]);
    assert_eq!(started["protocolVersion"], "1.0");
    assert!(
        started["timestamp"].is_i64(),
        "timestamps are integer milliseconds"
    );
    let finished = terminal(&events);
    assert_eq!(finished["threadId"], started["threadId"]);
    assert_eq!(finished["runId"], started["runId"]);
    assert!(
        finished.get("outcome").is_none(),
        "a plain reply needs no outcome"
    );
    server.stop().await;
}

#[tokio::test]
async fn legacy_clients_get_no_protocol_version_on_run_started() {
    let server = start().await;
    let events = server.run("alice", &input("hello", None)).await;
    assert_eq!(events[0]["type"], "RUN_STARTED");
    assert!(
        events[0].get("protocolVersion").is_none(),
        "{:?}",
        events[0]
    );
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    server.stop().await;
}

#[tokio::test]
async fn stream_command_produces_n_deltas_of_the_given_size() {
    let server = start().await;
    let events = server
        .run("alice", &input("/stream 3 4", Some("1.0")))
        .await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "RUN_FINISHED"
        ]
    );
    let deltas: Vec<&str> = events.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(deltas, ["aaaa", "bbbb", "cccc"]);
    let events = server.run("alice", &input("/stream 27", None)).await;
    let deltas: Vec<&str> = events.iter().filter_map(|e| e["delta"].as_str()).collect();
    assert_eq!(deltas.len(), 27);
    assert_eq!(deltas[0], "a".repeat(16));
    assert_eq!(deltas[26], "a".repeat(16), "letters wrap after z");
    server.stop().await;
}

const BACKEND_TOOL_SEQUENCE: [&str; 5] = [
    "RUN_STARTED",
    "TOOL_CALL_START",
    "TOOL_CALL_ARGS",
    "TOOL_CALL_END",
    "TOOL_CALL_RESULT",
];

#[tokio::test]
async fn who_am_i_calls_the_whoami_tool_with_the_verified_identity() {
    let server = start().await;
    for (message, version) in [("Who am I?", Some("1.0")), ("/tool whoami {}", None)] {
        let events = server.run("alice", &input(message, version)).await;
        assert_eq!(
            types(&events)[..5],
            BACKEND_TOOL_SEQUENCE,
            "{message}: {:?}",
            types(&events)
        );
        assert_eq!(types(&events)[5], "TEXT_MESSAGE_START");
        assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
        let start = &events[1];
        assert_eq!(start["toolCallName"], "whoami");
        assert!(start["parentMessageId"].is_string());
        let result = &events[4];
        assert_eq!(result["toolCallId"], start["toolCallId"]);
        let content: Value =
            serde_json::from_str(result["content"].as_str().expect("string content")).unwrap();
        assert_eq!(content["subject"], "alice");
        assert_eq!(content["issuer"], server.idp.issuer_url());
        // A sentence about the result, not the result's JSON (the card shows the data).
        let said = text(&events);
        assert!(
            said.starts_with("Here is who you are: ") && !said.contains('{'),
            "{said}"
        );
        assert!(!text(&events).contains("eyJ"), "no token in the reply");
    }
    server.stop().await;
}

fn accent_tool() -> Value {
    json!({
        "name": "change_accent_color",
        "description": "Change the page accent colour",
        "parameters": {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    })
}

#[tokio::test]
async fn frontend_tool_is_streamed_unanswered_with_pending_ids_in_1_0() {
    let server = start().await;
    let mut body = input("Change the accent colour to teal", Some("1.0"));
    body["tools"] = json!([accent_tool()]);
    let events = server.run("alice", &body).await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "RUN_FINISHED"
        ]
    );
    let call_id = events[1]["toolCallId"].clone();
    assert_eq!(events[1]["toolCallName"], "change_accent_color");
    assert_eq!(events[2]["delta"], r#"{"color":"teal"}"#);
    assert_eq!(
        events[4]["outcome"],
        json!({"type": "success", "pendingToolCallIds": [call_id]})
    );
    server.stop().await;
}

#[tokio::test]
async fn frontend_tool_in_the_legacy_dialect_has_no_pending_ids() {
    let server = start().await;
    let mut body = input("change the accent colour to teal", None);
    body["tools"] = json!([accent_tool()]);
    let events = server.run("alice", &body).await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "RUN_FINISHED"
        ]
    );
    assert!(
        events[4]
            .get("outcome")
            .and_then(|o| o.get("pendingToolCallIds"))
            .is_none(),
        "{:?}",
        events[4]
    );
    server.stop().await;
}

#[tokio::test]
async fn the_run_after_a_frontend_tool_result_answers_it() {
    let server = start().await;
    let body = json!({
        "threadId": "thread_1", "runId": "run_2", "protocolVersion": "1.0",
        "tools": [accent_tool()],
        "messages": [
            {"id": "u1", "role": "user", "content": "change the accent colour to teal"},
            {"id": "a1", "role": "assistant", "toolCalls": [
                {"id": "call_1", "type": "function", "function": {"name": "change_accent_color", "arguments": "{\"color\":\"teal\"}"}}
            ]},
            {"id": "t1", "role": "tool", "toolCallId": "call_1", "content": "accent set to teal"}
        ]
    });
    let events = server.run("alice", &body).await;
    assert_eq!(types(&events)[..2], ["RUN_STARTED", "TEXT_MESSAGE_START"]);
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    assert_eq!(
        text(&events),
        "The change_accent_color tool says: accent set to teal."
    );
    server.stop().await;
}

#[tokio::test]
async fn fail_command_ends_with_one_model_error() {
    let server = start().await;
    for version in [Some("1.0"), None] {
        let events = server.run("alice", &input("/fail", version)).await;
        assert_eq!(types(&events), ["RUN_STARTED", "RUN_ERROR"]);
        assert_eq!(events[1]["code"], "model_error");
        assert!(
            events[1].get("threadId").is_none(),
            "RUN_ERROR defines no threadId"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn sse_response_has_the_streaming_headers() {
    let server = start().await;
    let response = server
        .post("/chat", Some(&server.token("alice")), &input("hi", None))
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(headers.contains_key("x-request-id"));
    server.stop().await;
}

#[tokio::test]
async fn request_id_is_propagated_when_the_client_sends_one() {
    let server = start().await;
    let response = server
        .http
        .get(format!("{}/healthz", server.url))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-42");
    server.stop().await;
}

#[tokio::test]
async fn protobuf_is_chosen_only_when_accept_names_it() {
    let server = start().await;
    let token = server.token("alice");
    let proto = server
        .http
        .post(format!("{}/chat", server.url))
        .bearer_auth(&token)
        .header("accept", "application/vnd.ag-ui.event+proto")
        .json(&input("/stream 2", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        proto.headers()["content-type"],
        "application/vnd.ag-ui.event+proto"
    );
    let bytes = proto.bytes().await.unwrap();
    let mut frames = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (event, used) = agui_protocol::proto::decode_frame(rest).expect("a whole frame");
        frames.push(event);
        rest = &rest[used..];
    }
    assert_eq!(
        frames.len(),
        6,
        "RUN_STARTED, START, 2 × CONTENT, END, RUN_FINISHED"
    );

    // Positive control for the rule: a wildcard gets SSE.
    let sse = server
        .http
        .post(format!("{}/chat", server.url))
        .bearer_auth(&token)
        .header("accept", "*/*")
        .json(&input("/stream 2", Some("1.0")))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.headers()["content-type"], "text/event-stream");
    server.stop().await;
}
