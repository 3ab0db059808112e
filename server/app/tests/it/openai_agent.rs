//! `model = "openai"` end to end: the server's agent streams from an OpenAI-compatible endpoint
//! (the in-process mock), the provider's failures become stable `RUN_ERROR` codes, and what the
//! model receives carries the user's name but never any part of the bearer token.

use crate::common::*;
use agui_agent::OpenAiConfig;
use agui_agent::openai::mock::{MockOpenAi, MockResponse};
use agui_server::agents::AgentConfig;
use agui_server::config::ModelKind;

const TEXT_STREAM: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi \"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"there\"},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

async fn server_on(mock: &MockOpenAi) -> TestServer {
    let base_url = mock.base_url();
    start_with(
        move |c| {
            let mut openai = OpenAiConfig::new(base_url, "sk-test-key", "test-model");
            openai.max_retries = 0;
            c.openai = Some(openai);
            c.agents.insert(
                "assistant".into(),
                AgentConfig {
                    model: Some(ModelKind::Openai),
                    system_prompt: Some("You help {user.name}.".into()),
                    ..AgentConfig::default()
                },
            );
        },
        |b| b,
    )
    .await
}

#[tokio::test]
async fn an_openai_agent_streams_the_models_text() {
    let mock = MockOpenAi::start().await.unwrap();
    mock.enqueue(MockResponse::sse(TEXT_STREAM));
    let server = server_on(&mock).await;
    let token = server.token("alice");
    let events = server
        .run_as(
            "/agents/assistant/chat",
            &token,
            &input("hello", Some("1.0")),
        )
        .await;
    assert_eq!(text(&events), "Hi there");
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");

    let request = &mock.requests()[0];
    assert_eq!(request.header("authorization"), Some("Bearer sk-test-key"));
    let everything = request.everything();
    assert!(everything.contains("You help Test alice."), "{everything}");
    for segment in token.split('.') {
        assert!(
            !everything.contains(segment),
            "no part of the bearer token reaches the model"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_provider_401_becomes_model_unauthorized() {
    let mock = MockOpenAi::start().await.unwrap();
    mock.enqueue(MockResponse::error(401, "bad key"));
    let server = server_on(&mock).await;
    let events = server
        .run_as(
            "/agents/assistant/chat",
            &server.token("alice"),
            &input("hello", None),
        )
        .await;
    assert_eq!(types(&events), ["RUN_STARTED", "RUN_ERROR"]);
    assert_eq!(terminal(&events)["code"], "model_unauthorized");
    assert!(
        !events[1]["message"].as_str().unwrap().contains("bad key"),
        "the provider's text stays in the log"
    );
    server.stop().await;
}

/// The browser goes away mid-answer: the server cancels the run, and the provider request is
/// closed before the model sends its next chunk (no tokens are paid for a reader who left).
#[tokio::test]
async fn a_client_disconnect_closes_the_provider_request_before_its_next_chunk() {
    use agui_agent::openai::mock::MockStep;
    let mock = MockOpenAi::start().await.unwrap();
    let chunk = |content: &str| {
        bytes::Bytes::from(format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        ))
    };
    mock.enqueue(MockResponse::Stream(vec![
        MockStep::Raw(chunk("Hello")),
        MockStep::Hold,
        MockStep::Raw(chunk(" world")),
        MockStep::Raw(bytes::Bytes::from_static(b"data: [DONE]\n\n")),
    ]));
    let server = server_on(&mock).await;
    let token = server.token("alice");
    let mut response = server
        .post(
            "/agents/assistant/chat",
            Some(&token),
            &input("hi", Some("1.0")),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut seen = String::new();
    while !seen.contains("Hello") {
        let chunk = response.chunk().await.unwrap().expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    tokio::time::timeout(HANG_GUARD, mock.wait_body_dropped())
        .await
        .expect("the provider request was closed");
    assert_eq!(
        mock.chunks_sent(),
        1,
        "closed before the next chunk was sent"
    );
    // Control: had the client stayed, the held chunk would have followed (see the agent's
    // `released_hold_streams_to_the_end`); here nothing is left to release.
    mock.release();
    assert_eq!(mock.chunks_sent(), 1);
    server.stop().await;
}
