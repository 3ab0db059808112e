//! Keepalive comments on a silent SSE stream, with paused time at router level (no socket): the
//! comment comes after the configured silence, not before, and never on protobuf streams.

use std::time::Duration;

use crate::common::*;
use axum::body::Body;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn next_frame(body: &mut Body) -> String {
    let frame = body.frame().await.expect("a frame").expect("no error");
    String::from_utf8(frame.into_data().expect("data").to_vec()).unwrap()
}

async fn silent_stream(accept: &str) -> (TestServer, Body) {
    let server = start_with(
        |c| {
            c.keepalive_secs = 15;
            c.limits.max_run_secs = 60;
        },
        |b| b.model(model(HangingModel)),
    )
    .await;
    let token = server.token("alice");
    // Warm the key cache so the paused clock never waits on the network.
    server.run_warmup(&token).await;
    let request = axum::http::Request::post("/chat")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", accept)
        .body(Body::from(input("hi", Some("1.0")).to_string()))
        .unwrap();
    let response = agui_server::router(server.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.headers());
    // Paused only now: before the response head the handler waits on the store's SQLite
    // threads, and a paused clock would jump over its timeouts while it idles.
    tokio::time::pause();
    (server, response.into_body())
}

#[tokio::test]
async fn a_keepalive_comment_follows_fifteen_seconds_of_silence() {
    let (_server, mut body) = silent_stream("text/event-stream").await;
    let mut seen = String::new();
    while !seen.contains("TEXT_MESSAGE_CONTENT") {
        seen.push_str(&next_frame(&mut body).await);
    }
    let silent_since = tokio::time::Instant::now();
    assert_eq!(next_frame(&mut body).await, ": keepalive\n\n");
    assert!(
        silent_since.elapsed() >= Duration::from_secs(15),
        "not before the configured silence"
    );
    let again = tokio::time::Instant::now();
    assert_eq!(next_frame(&mut body).await, ": keepalive\n\n");
    assert!(again.elapsed() >= Duration::from_secs(15));
}

#[tokio::test]
async fn protobuf_streams_get_no_keepalive() {
    let (server, mut body) = silent_stream("application/vnd.ag-ui.event+proto").await;
    // RUN_STARTED, TEXT_MESSAGE_START, TEXT_MESSAGE_CONTENT arrive (possibly coalesced), then
    // silence until the run limit: every frame must be a length-prefixed message.
    let deadline = server.state.config.run_timeout() + Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        bytes.extend_from_slice(&frame.unwrap().into_data().unwrap());
        assert!(started.elapsed() <= deadline);
    }
    let mut rest = &bytes[..];
    let mut count = 0;
    while !rest.is_empty() {
        let (_, used) =
            agui_protocol::proto::decode_frame(rest).expect("only protobuf frames, no comments");
        rest = &rest[used..];
        count += 1;
    }
    assert_eq!(
        count, 4,
        "three events, then RUN_ERROR run_timeout, and nothing else"
    );
}
