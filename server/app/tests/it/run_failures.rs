//! Whatever goes wrong after the stream opened, the client sees exactly one terminal event with a
//! stable code and never an invalid event: a provider that emits content before its message
//! starts, a panicking provider, a panicking tool, a run past its time limit (with the model or a
//! backend tool hanging), a tool past its own timeout (the model reads a `tool_timeout` result and
//! the run finishes), and a client that disconnects (proven causally: the provider observes the
//! cancellation before its next delta).

use std::sync::Arc;

use crate::common::*;
use agui_agent::{
    ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream, RunErrorCode, Tool,
    ToolContext, ToolError, ToolRegistry, ToolSpec,
};
use agui_protocol::{Event, TextMessageContent};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn content_before_start_ends_the_run_with_protocol_violation() {
    let rogue = Event::TextMessageContent(TextMessageContent::new("never-started", "boo"));
    let server = start_with(
        |_| {},
        |b| {
            b.model(model(FixedModel(vec![
                ModelDelta::Text("fine ".into()),
                ModelDelta::Event(Box::new(rogue)),
            ])))
        },
    )
    .await;
    let events = server.run("alice", &input("hi", Some("1.0"))).await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "RUN_ERROR"
        ]
    );
    assert_eq!(terminal(&events)["code"], "protocol_violation");
    assert!(
        events.iter().all(|e| e["messageId"] != "never-started"),
        "the invalid event never reached the wire"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_valid_raw_event_passes_the_guard_positive_control() {
    let custom: Event =
        serde_json::from_value(json!({"type": "CUSTOM", "name": "note", "value": {"ok": true}}))
            .unwrap();
    let server = start_with(
        |_| {},
        |b| b.model(model(FixedModel(vec![ModelDelta::Event(Box::new(custom))]))),
    )
    .await;
    let events = server.run("alice", &input("hi", Some("1.0"))).await;
    assert_eq!(types(&events), ["RUN_STARTED", "CUSTOM", "RUN_FINISHED"]);
    server.stop().await;
}

#[tokio::test]
async fn a_panicking_provider_ends_with_internal_error() {
    let server = start_with(|_| {}, |b| b.model(model(PanickingModel))).await;
    let events = server.run("alice", &input("hi", None)).await;
    assert_eq!(types(&events), ["RUN_STARTED", "RUN_ERROR"]);
    assert_eq!(terminal(&events)["code"], "internal_error");
    assert!(
        !events[1]["message"]
            .as_str()
            .unwrap()
            .contains("provider bug"),
        "no debug text to clients"
    );
    // The server survives.
    assert_eq!(
        server
            .http
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop().await;
}

struct PanickingTool;

#[async_trait]
impl Tool for PanickingTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "explode".into(),
            description: "panics".into(),
            parameters: json!({"type": "object"}),
        }
    }
    async fn call(&self, _: ToolContext, _: Value) -> Result<Value, ToolError> {
        panic!("tool bug");
    }
}

#[tokio::test]
async fn a_panicking_tool_ends_with_tool_failed_after_closing_its_call() {
    let mut tools = ToolRegistry::with_builtins();
    tools.register(Arc::new(PanickingTool));
    let server = start_with(|_| {}, |b| b.tools(tools)).await;
    let events = server
        .run("alice", &input("/tool explode {}", Some("1.0")))
        .await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "RUN_ERROR"
        ]
    );
    assert_eq!(terminal(&events)["code"], "tool_failed");
    // Positive control: a tool that works answers normally on the same server.
    let events = server
        .run("alice", &input("/tool whoami {}", Some("1.0")))
        .await;
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_tool_gets_an_error_result_the_model_can_read() {
    let server = start().await;
    let events = server
        .run("alice", &input("/tool nope {}", Some("1.0")))
        .await;
    assert_eq!(tool_result(&events)["error"], "unknown_tool");
    assert_eq!(terminal(&events)["type"], "RUN_FINISHED");
    server.stop().await;
}

#[tokio::test]
async fn a_run_past_its_limit_ends_with_run_timeout() {
    let server = start_with(|c| short_run(c, 1), |b| b.model(model(HangingModel))).await;
    let events = run_bounded(&server, "hi").await;
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "RUN_ERROR"
        ]
    );
    assert_eq!(terminal(&events)["code"], "run_timeout");
    server.stop().await;
}

/// Alice's 1.0 run of `text`, failing the test instead of hanging if it never ends.
async fn run_bounded(server: &TestServer, text: &str) -> Vec<Value> {
    tokio::time::timeout(HANG_GUARD, server.run("alice", &input(text, Some("1.0"))))
        .await
        .expect("the run ends")
}

/// A backend tool that never completes: it waits for its cancellation token, which only a
/// cancelled run fires, and reports to the test when it is stopped (cancelled, or its future
/// dropped by a timeout or an abort).
struct HangingTool {
    stopped: mpsc::UnboundedSender<&'static str>,
}

#[async_trait]
impl Tool for HangingTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "hang".into(),
            description: "never answers".into(),
            parameters: json!({"type": "object"}),
        }
    }
    async fn call(&self, ctx: ToolContext, _: Value) -> Result<Value, ToolError> {
        let _report = ToolDropped(self.stopped.clone());
        ctx.cancel.cancelled().await;
        let _ = self.stopped.send("cancelled");
        futures::future::pending().await
    }
}

struct ToolDropped(mpsc::UnboundedSender<&'static str>);

impl Drop for ToolDropped {
    fn drop(&mut self) {
        let _ = self.0.send("dropped");
    }
}

/// A server whose registry has the built-ins and [`HangingTool`], and the channel it reports on.
async fn start_with_hanging_tool(
    configure: impl FnOnce(&mut agui_server::config::Config),
) -> (TestServer, mpsc::UnboundedReceiver<&'static str>) {
    let (stopped, reports) = mpsc::unbounded_channel();
    let mut tools = ToolRegistry::with_builtins();
    tools.register(Arc::new(HangingTool { stopped }));
    (start_with(configure, |b| b.tools(tools)).await, reports)
}

#[tokio::test]
async fn a_tool_hanging_past_the_run_limit_ends_with_run_timeout() {
    // The run limit (1 s) is far below the tool's own timeout (the default 30 s), so only the
    // run limit can end this run.
    let (server, mut stopped) = start_with_hanging_tool(|c| {
        short_run(c, 1);
        assert!(c.limits.tool_timeout_secs > c.limits.max_run_secs);
    })
    .await;
    let events = run_bounded(&server, "/tool hang {}").await;
    // `sse_events` (inside `run`) already checked every event against the AG-UI rules.
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "RUN_ERROR"
        ]
    );
    let last = terminal(&events);
    assert_eq!(last["code"], "run_timeout");
    assert_eq!(last["message"], RunErrorCode::RunTimeout.message());
    assert_eq!(events[1]["toolCallName"], "hang");
    // The abandoned tool is stopped, not left running.
    let how = tokio::time::timeout(HANG_GUARD, stopped.recv())
        .await
        .expect("the tool is stopped")
        .unwrap();
    assert!(how == "cancelled" || how == "dropped", "{how}");
    let state = server.state.clone();
    server.stop().await;
    assert!(
        state
            .metrics_text()
            .contains("agui_runs_total{outcome=\"error\"} 1")
    );
}

#[tokio::test]
async fn a_tool_past_its_timeout_gets_a_tool_timeout_result_and_the_run_finishes() {
    // The tool's timeout (1 s) is far below the run limit (the default 600 s), so the per-tool
    // timeout is what stops it and the run goes on.
    let (server, mut stopped) = start_with_hanging_tool(|c| {
        c.limits.tool_timeout_secs = 1;
        assert!(c.limits.max_run_secs > c.limits.tool_timeout_secs);
    })
    .await;
    let events = run_bounded(&server, "/tool hang {}").await;
    let types = types(&events);
    assert_eq!(
        types[..6],
        [
            "RUN_STARTED",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "TOOL_CALL_RESULT",
            "TEXT_MESSAGE_START",
        ],
        "{types:?}"
    );
    assert_eq!(
        types[types.len() - 2..],
        ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    );
    assert!(
        types[6..types.len() - 2]
            .iter()
            .all(|t| *t == "TEXT_MESSAGE_CONTENT"),
        "{types:?}"
    );
    let last = terminal(&events);
    assert_eq!(last["type"], "RUN_FINISHED");
    assert!(
        last.get("outcome").is_none_or(|o| o["type"] == "success"),
        "{last}"
    );
    // What the user sees: the call's result is the stable `tool_timeout` error, and the model's
    // answer reads it back.
    // `types[4]` is the TOOL_CALL_RESULT (asserted above): it answers the call that hung.
    assert_eq!(events[4]["toolCallId"], events[1]["toolCallId"]);
    let content = tool_result(&events);
    assert_eq!(content, ToolError::Timeout.to_result());
    assert_eq!(content["error"], "tool_timeout");
    assert_eq!(
        text(&events),
        "The hang tool took too long and was stopped."
    );
    // The timeout dropped the tool's future: it did not keep running.
    let how = tokio::time::timeout(HANG_GUARD, stopped.recv())
        .await
        .expect("the tool is stopped")
        .unwrap();
    assert_eq!(how, "dropped");
    server.stop().await;
}

/// Yields one delta, then waits for either the test's go-ahead (never given) or cancellation,
/// and reports which happened.
struct ObservingModel {
    observed: mpsc::UnboundedSender<&'static str>,
    go_ahead: Arc<Notify>,
}

struct ReportOnDrop(mpsc::UnboundedSender<&'static str>);

impl Drop for ReportOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send("stream dropped");
    }
}

#[async_trait]
impl ModelProvider for ObservingModel {
    fn name(&self) -> &str {
        "observing"
    }
    async fn stream(
        &self,
        _: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let observed = self.observed.clone();
        let go_ahead = self.go_ahead.clone();
        let guard = ReportOnDrop(observed.clone());
        let first = futures::stream::iter([Ok(ModelDelta::Text("first ".into()))]);
        let next = futures::stream::once(async move {
            let _guard = guard;
            tokio::select! {
                () = cancel.cancelled() => {
                    let _ = observed.send("cancelled");
                    futures::future::pending::<()>().await;
                }
                () = go_ahead.notified() => {}
            }
            Ok(ModelDelta::Text("second".into()))
        });
        Ok(first.chain(next).boxed())
    }
}

#[tokio::test]
async fn client_disconnect_cancels_the_run_before_the_next_delta() {
    let (tx, mut observed) = mpsc::unbounded_channel();
    let go_ahead = Arc::new(Notify::new());
    let provider = ObservingModel {
        observed: tx,
        go_ahead: go_ahead.clone(),
    };
    let server = start_with(|_| {}, |b| b.model(model(provider))).await;
    let mut response = server
        .post(
            "/chat",
            Some(&server.token("alice")),
            &input("hi", Some("1.0")),
        )
        .await;
    // Read until the first delta has arrived, then hang up.
    let mut seen = String::new();
    while !seen.contains("first") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response);
    let what = tokio::time::timeout(HANG_GUARD, observed.recv())
        .await
        .expect("the provider hears of it")
        .unwrap();
    assert!(what == "stream dropped" || what == "cancelled", "{what}");
    // The provider never got to produce its second delta: it was cancelled while waiting.
    go_ahead.notify_waiters();
    let state = server.state.clone();
    server.stop().await;
    assert!(
        state
            .metrics_text()
            .contains("agui_runs_total{outcome=\"cancelled\"} 1")
    );
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_server_shutdown() {
    let server = start_with(|_| {}, |b| b.model(model(HangingModel))).await;
    let mut response = server
        .post(
            "/chat",
            Some(&server.token("alice")),
            &input("hi", Some("1.0")),
        )
        .await;
    let mut body = String::new();
    while !body.contains("TEXT_MESSAGE_CONTENT") {
        body.push_str(&String::from_utf8_lossy(
            &response.chunk().await.unwrap().unwrap(),
        ));
    }
    server.state.shutdown.cancel();
    while let Some(chunk) = tokio::time::timeout(HANG_GUARD, response.chunk())
        .await
        .expect("the stream ends")
        .unwrap()
    {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events = sse_events(&body);
    assert_eq!(terminal(&events)["code"], "server_shutdown");
    // New runs are refused while draining.
    server.stop().await;
}

#[tokio::test]
async fn a_model_that_keeps_calling_tools_ends_with_max_turns() {
    let call = vec![
        ModelDelta::ToolCallStart {
            index: 0,
            id: None,
            name: "whoami".into(),
        },
        ModelDelta::ToolCallArgs {
            index: 0,
            delta: "{}".into(),
        },
    ];
    let server = start_with(
        |c| c.limits.max_turns = 3,
        |b| b.model(model(FixedModel(call))),
    )
    .await;
    let events = server.run("alice", &input("hi", Some("1.0"))).await;
    let results = events
        .iter()
        .filter(|e| e["type"] == "TOOL_CALL_RESULT")
        .count();
    assert_eq!(results, 3, "one tool round per allowed turn");
    assert_eq!(terminal(&events)["code"], "max_turns");
    server.stop().await;
}
