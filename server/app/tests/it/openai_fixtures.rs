//! Every provider stream fixture (server/agent/tests/fixtures/openai) and provider failure,
//! through the whole server: the exact AG-UI event sequence the client receives, checked by the
//! sequence guard (`sse_events`), in both dialects (1.0 and the 0.0.x subset CopilotKit's
//! runtime speaks).

use crate::common::*;
use agui_agent::OpenAiConfig;
use agui_agent::openai::mock::{MockOpenAi, MockResponse};
use agui_server::agents::AgentConfig;
use agui_server::config::ModelKind;
use serde_json::{Value, json};

fn fixture(name: &str) -> MockResponse {
    let path = format!(
        "{}/../agent/tests/fixtures/openai/{name}.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    MockResponse::sse(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

async fn server_on(mock: &MockOpenAi) -> TestServer {
    let base_url = mock.base_url();
    start_with(
        move |c| {
            let mut openai = OpenAiConfig::new(base_url, "sk-test-key", "test-model");
            openai.max_retries = 1;
            openai.retry_base_delay_ms = 1;
            openai.first_byte_timeout_secs = 1;
            c.openai = Some(openai);
            c.agents.insert(
                "default".into(),
                AgentConfig {
                    model: Some(ModelKind::Openai),
                    tools: Some(vec![
                        "whoami".into(),
                        "get_document".into(),
                        "list_my_documents".into(),
                    ]),
                    ..AgentConfig::default()
                },
            );
        },
        |b| b,
    )
    .await
}

/// The event types with runs of one type folded to `TYPE×n`.
fn shape(events: &[Value]) -> Vec<String> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for t in types(events) {
        match out.last_mut() {
            Some((last, n)) if last == t => *n += 1,
            _ => out.push((t.to_owned(), 1)),
        }
    }
    out.into_iter()
        .map(|(t, n)| if n == 1 { t } else { format!("{t}×{n}") })
        .collect()
}

/// Runs one request in `dialect` (`Some("1.0")` or `None` for 0.0.x) after queueing `responses`.
async fn run(responses: Vec<MockResponse>, dialect: Option<&str>) -> Vec<Value> {
    let mock = MockOpenAi::start().await.unwrap();
    for response in responses {
        mock.enqueue(response);
    }
    let server = server_on(&mock).await;
    let mut body = input("hi", dialect);
    body["tools"] = json!([{
        "name": "get_weather",
        "description": "The weather in a city (answered by the app).",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}
    }]);
    let events = server.run("ada", &body).await;
    server.stop().await;
    events
}

const TEXT: [&str; 3] = [
    "TEXT_MESSAGE_START",
    "TEXT_MESSAGE_CONTENT×3",
    "TEXT_MESSAGE_END",
];

/// One case: the provider's responses, then the expected shape in both dialects (they differ
/// only in fields, checked separately below, never in the event types).
fn cases() -> Vec<(&'static str, Vec<MockResponse>, Vec<&'static str>)> {
    let text_run = |middle: &[&'static str]| {
        let mut v = vec!["RUN_STARTED"];
        v.extend_from_slice(middle);
        v.push("RUN_FINISHED");
        v
    };
    vec![
        ("plain_text", vec![fixture("plain_text")], text_run(&TEXT)),
        (
            "usage_only_final_chunk",
            vec![fixture("usage_only_final_chunk")],
            text_run(&[
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
            ]),
        ),
        (
            "azure_prompt_filter",
            vec![fixture("azure_prompt_filter")],
            text_run(&[
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
            ]),
        ),
        (
            "reasoning_content",
            vec![fixture("reasoning_content")],
            text_run(&[
                "REASONING_START",
                "REASONING_MESSAGE_START",
                "REASONING_MESSAGE_CONTENT×2",
                "REASONING_MESSAGE_END",
                "REASONING_END",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
            ]),
        ),
        (
            // A frontend tool: streamed, left pending for the app.
            "tool_call_split",
            vec![fixture("tool_call_split")],
            text_run(&["TOOL_CALL_START", "TOOL_CALL_ARGS×5", "TOOL_CALL_END"]),
        ),
        (
            // A backend tool in one chunk: executed, then the model answers.
            "tool_call_whole",
            vec![fixture("tool_call_whole"), fixture("plain_text")],
            text_run(&[
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT×3",
                "TEXT_MESSAGE_END",
            ]),
        ),
        (
            "tool_calls_then_stop",
            vec![fixture("tool_calls_then_stop"), fixture("plain_text")],
            text_run(&[
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "TEXT_MESSAGE_END",
                "TOOL_CALL_START",
                "TOOL_CALL_ARGS",
                "TOOL_CALL_END",
                "TOOL_CALL_RESULT",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT×3",
                "TEXT_MESSAGE_END",
            ]),
        ),
        (
            "429 then success",
            vec![MockResponse::error(429, "slow down"), fixture("plain_text")],
            text_run(&TEXT),
        ),
        (
            "no_done",
            vec![fixture("no_done")],
            vec![
                "RUN_STARTED",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT×2",
                "RUN_ERROR",
            ],
        ),
        (
            "garbage",
            vec![fixture("garbage")],
            vec![
                "RUN_STARTED",
                "TEXT_MESSAGE_START",
                "TEXT_MESSAGE_CONTENT",
                "RUN_ERROR",
            ],
        ),
        (
            "500 twice",
            vec![
                MockResponse::error(500, "boom"),
                MockResponse::error(500, "boom"),
            ],
            vec!["RUN_STARTED", "RUN_ERROR"],
        ),
        (
            "first byte later than the timeout",
            vec![MockResponse::Silent],
            vec!["RUN_STARTED", "RUN_ERROR"],
        ),
    ]
}

#[tokio::test]
async fn every_fixture_gives_the_exact_event_sequence_in_both_dialects() {
    let mut mismatches = Vec::new();
    for (name, responses, expected) in cases() {
        for dialect in [Some("1.0"), None] {
            let events = run(responses.clone(), dialect).await;
            let got = shape(&events);
            if got != expected {
                mismatches.push(format!(
                    "{name} ({}): expected {expected:?}, got {got:?}",
                    dialect.unwrap_or("0.0.x")
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[tokio::test]
async fn failures_carry_stable_codes_and_the_dialects_differ_only_where_the_0_0_client_needs() {
    for (responses, code) in [
        (vec![fixture("no_done")], "model_protocol_error"),
        (vec![fixture("garbage")], "model_protocol_error"),
        (
            vec![
                MockResponse::error(500, "boom"),
                MockResponse::error(500, "boom"),
            ],
            "model_unavailable",
        ),
        (
            vec![MockResponse::error(401, "bad key")],
            "model_unauthorized",
        ),
        (vec![MockResponse::Silent], "model_timeout"),
    ] {
        for dialect in [Some("1.0"), None] {
            let events = run(responses.clone(), dialect).await;
            let last = terminal(&events);
            assert_eq!(last["type"], "RUN_ERROR", "{events:?}");
            assert_eq!(last["code"], code, "{last}");
            assert!(
                !last["message"].as_str().unwrap().contains("boom")
                    && !last["message"].as_str().unwrap().contains("bad key"),
                "the provider's raw error stays in the log: {last}"
            );
        }
    }

    // A pending frontend call: 1.0 names it in the outcome; 0.0.x, whose strict success
    // outcome rejects the member, gets `{type: "success"}` only.
    let v1 = run(vec![fixture("tool_call_split")], Some("1.0")).await;
    let call_id = v1.iter().find(|e| e["type"] == "TOOL_CALL_START").unwrap()["toolCallId"].clone();
    assert_eq!(
        terminal(&v1)["outcome"]["pendingToolCallIds"],
        json!([call_id])
    );
    let v0 = run(vec![fixture("tool_call_split")], None).await;
    assert_eq!(terminal(&v0)["outcome"], json!({"type": "success"}));
    assert!(v0[0].get("protocolVersion").is_none());
    assert_eq!(v1[0]["protocolVersion"], "1.0");
}
