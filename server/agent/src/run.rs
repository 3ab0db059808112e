//! The run loop and its supervisor.
//!
//! [`run_to_completion`] owns one run from `RUN_STARTED` to its single terminal event. The work
//! itself (`drive`) alternates model turns and backend tool calls; the supervisor races it
//! against the client going away, server shutdown and the maximum run duration, and catches
//! panics, so that whatever happens the client sees exactly one `RUN_FINISHED` or `RUN_ERROR`
//! (DESIGN "Streams are trustworthy"). Dropping the work future aborts the in-flight model
//! request and every running tool (they live in a `JoinSet`).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use agui_auth::Principal;
use agui_protocol::{
    AssistantMessage, Context, Event, Message, MessageId, ReasoningEnd, ReasoningMessageContent,
    ReasoningMessageEnd, ReasoningMessageStart, ReasoningStart, RunAgentInput, RunFinished,
    RunFinishedOutcome, RunStarted, StateDelta, StateSnapshot, StepFinished, TextMessageContent,
    TextMessageEnd, TextMessageStart, TokenUsage, Tool as FrontendTool, ToolCall, ToolCallArgs,
    ToolCallEnd, ToolCallId, ToolCallResult, ToolCallStart, ToolMessage, ToolResultContent,
};
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audit::{AuditEvent, AuditSink};
use crate::error::RunErrorCode;
use crate::model::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};
use crate::on_wake::OnWake;
use crate::sink::{EventSink, SinkError};
use crate::tools::{StateAccess, ToolContext, ToolError, ToolRegistry, ToolSpec, schema};

/// Limits of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    /// Model turns allowed in one run (each turn may call tools).
    pub max_turns: u32,
    /// How long one backend tool may run.
    pub tool_timeout: Duration,
    /// The maximum run duration (`RUN_ERROR run_timeout` beyond it).
    pub run_timeout: Duration,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            max_turns: 8,
            tool_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(600),
        }
    }
}

/// Everything one run needs.
pub struct RunParams {
    /// The validated input, with the token already removed from `forwardedProps`.
    pub input: RunAgentInput,
    /// The verified caller.
    pub principal: Arc<Principal>,
    /// The agent's name (for audit and logs).
    pub agent: String,
    /// The model.
    pub model: Arc<dyn ModelProvider>,
    /// The agent's backend tools.
    pub tools: ToolRegistry,
    /// Where audit records go.
    pub audit: Arc<dyn AuditSink>,
    /// Limits.
    pub settings: RunSettings,
    /// Fires when the response body is dropped (the client went away).
    pub client_gone: CancellationToken,
    /// Fires when the server shuts down.
    pub shutdown: CancellationToken,
    /// Fires when someone stops the run on purpose (CopilotKit's Stop): it ends cancelled, with
    /// a terminal event for whoever still listens.
    pub stop: CancellationToken,
}

/// How a run ended, for metrics and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// `RUN_FINISHED` was sent.
    Success,
    /// `RUN_ERROR` with this code was sent (or attempted).
    Error(RunErrorCode),
    /// The client went away; nobody was listening for a terminal event.
    Cancelled,
}

impl RunOutcome {
    /// The metric label: `success`, `error`, `cancelled`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error(_) => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why [`drive`] stopped early.
enum Stop {
    Code(RunErrorCode),
    Sink(SinkError),
    /// Stopped on purpose.
    Cancelled,
}

impl From<SinkError> for Stop {
    fn from(error: SinkError) -> Self {
        Stop::Sink(error)
    }
}

/// Runs to exactly one terminal event (or until the client is gone) and reports the outcome and
/// the number of events written.
///
/// Not an `async fn`: one moves its arguments into locals of its own future, so `params` and
/// `sink` would each take room twice for as long as the run streams (rust-lang/rust#62958); the
/// block below uses them where it captured them.
pub fn run_to_completion(
    mut params: RunParams,
    mut sink: EventSink,
) -> impl Future<Output = (RunOutcome, u64)> + Send {
    // The input's lists are moved into the shared, per-turn form the model reads (not copied):
    // a CopilotKit client resends the whole thread every run, so a copy would be held next to
    // the original for as long as the run streams.
    let mut parts = InputParts {
        messages: std::mem::take(&mut params.input.messages),
        tools: std::mem::take(&mut params.input.tools).into(),
        context: std::mem::take(&mut params.input.context).into(),
    };
    async move { supervise(&params, &mut sink, &mut parts).await }
}

/// The parts of the input a run hands the model each turn, taken out of it.
struct InputParts {
    messages: Vec<Message>,
    tools: Arc<[FrontendTool]>,
    context: Arc<[Context]>,
}

/// [`run_to_completion`]'s body, on borrowed parts.
async fn supervise(
    params: &RunParams,
    sink: &mut EventSink,
    parts: &mut InputParts,
) -> (RunOutcome, u64) {
    let work_cancel = CancellationToken::new();
    let _cancel_work_on_exit = work_cancel.clone().drop_guard();
    let deadline = tokio::time::sleep(params.settings.run_timeout);

    let result = {
        let work =
            AssertUnwindSafe(drive(params, &mut *sink, parts, work_cancel.clone())).catch_unwind();
        // Polled only when one of them woke the task, not at every wake-up of the work.
        let stops = OnWake::new(async {
            tokio::select! {
                biased;
                () = params.client_gone.cancelled() => Stop::Sink(SinkError::Closed),
                () = params.shutdown.cancelled() => Stop::Code(RunErrorCode::ServerShutdown),
                () = params.stop.cancelled() => Stop::Cancelled,
                () = deadline => Stop::Code(RunErrorCode::RunTimeout),
            }
        });
        tokio::select! {
            biased;
            stop = stops => Err(stop),
            result = work => match result {
                Ok(result) => result,
                Err(_panic) => {
                    tracing::error!("the run panicked");
                    Err(Stop::Code(RunErrorCode::InternalError))
                }
            },
        }
    };
    // The work future is dropped here: the model request and running tools are aborted.
    work_cancel.cancel();

    let outcome = match result {
        Ok(()) => RunOutcome::Success,
        Err(Stop::Sink(SinkError::Closed)) => RunOutcome::Cancelled,
        Err(Stop::Sink(SinkError::Violation(_))) => {
            RunOutcome::Error(RunErrorCode::ProtocolViolation)
        }
        Err(Stop::Code(code)) => match sink.fail(code).await {
            Ok(()) => RunOutcome::Error(code),
            Err(_) => RunOutcome::Cancelled,
        },
        Err(Stop::Cancelled) => {
            // Whoever still listens learns it was stopped; either way it ended cancelled.
            let _ = finish_cancelled(sink, &params.input).await;
            RunOutcome::Cancelled
        }
    };
    params.audit.record(AuditEvent::RunEnded {
        issuer: params.principal.issuer.clone(),
        subject: params.principal.subject.clone(),
        thread_id: params.input.thread_id.to_string(),
        run_id: params.input.run_id.to_string(),
        outcome: outcome.label(),
        code: match outcome {
            RunOutcome::Error(code) => Some(code.as_str()),
            _ => None,
        },
    });
    (outcome, sink.events_sent())
}

/// The work of one run: model turns and tool calls, ending with `RUN_FINISHED`.
async fn drive(
    params: &RunParams,
    sink: &mut EventSink,
    parts: &mut InputParts,
    cancel: CancellationToken,
) -> Result<(), Stop> {
    let input = &params.input;
    let mut started = RunStarted::new(input.thread_id.clone(), input.run_id.clone());
    started.protocol_version = Some(agui_protocol::PROTOCOL_VERSION.to_owned());
    started.parent_run_id = input.parent_run_id.clone();
    sink.send(Event::RunStarted(started)).await?;

    let offered: Arc<[Arc<ToolSpec>]> = params.tools.offered_to(&params.principal).into();
    // By reference, the lists moved or shared out of it: an argument moved into an async fn
    // takes room twice in its future.
    let mut history = Arc::new(std::mem::take(&mut parts.messages));
    let frontend_tools = parts.tools.clone();
    let context = parts.context.clone();
    let mut usage: Vec<TokenUsage> = Vec::new();
    let state = StateAccess::new(input.state.clone());
    let mut baseline_sent = false;

    for _turn in 0..params.settings.max_turns {
        let request = ModelRequest {
            messages: history.clone(),
            tools: offered.clone(),
            frontend_tools: frontend_tools.clone(),
            context: context.clone(),
            principal: params.principal.clone(),
        };
        let turn = model_turn(params, sink, request, cancel.clone()).await?;
        usage.extend(turn.usage.iter().cloned());
        if turn.calls.is_empty() {
            return finish(sink, input, None, usage).await;
        }

        Arc::make_mut(&mut history).push(turn.assistant_message());
        let (frontend, backend): (Vec<_>, Vec<_>) = turn.calls.into_iter().partition(|call| {
            frontend_tools.iter().any(|t| t.name == call.name) && !params.tools.contains(&call.name)
        });
        // The turn's last events reach the client before the tools take their time.
        sink.flush().await?;
        for (call, result) in run_backend_tools(params, backend, &cancel, &state).await? {
            let message_id = new_message_id();
            let mut event = ToolCallResult::new(
                message_id.clone(),
                call.id.clone(),
                ToolResultContent::Text(result.clone()),
            );
            event.role = Some(Default::default());
            sink.send(Event::ToolCallResult(event)).await?;
            Arc::make_mut(&mut history)
                .push(Message::Tool(ToolMessage::new(message_id, call.id, result)));
        }
        send_state_changes(sink, &state, &input.state, &mut baseline_sent).await?;
        if !frontend.is_empty() {
            // AG-UI §7 frontend tools: stream the call, do not answer it, finish with the pending ids.
            let pending = frontend.into_iter().map(|call| call.id).collect();
            return finish(sink, input, Some(pending), usage).await;
        }
    }
    Err(Stop::Code(RunErrorCode::MaxTurns))
}

/// Sends what tools changed in the shared state: a `STATE_SNAPSHOT` of the run's baseline the
/// first time (AG-UI: never a delta without a baseline the client is known to hold), then a
/// `STATE_DELTA` (RFC 6902) with the operations, in the order the tools made them.
async fn send_state_changes(
    sink: &mut EventSink,
    state: &StateAccess,
    baseline: &Value,
    baseline_sent: &mut bool,
) -> Result<(), Stop> {
    let ops = state.take_pending();
    if ops.is_empty() {
        return Ok(());
    }
    if !*baseline_sent {
        sink.send(Event::StateSnapshot(StateSnapshot::new(baseline.clone())))
            .await?;
        *baseline_sent = true;
    }
    sink.send(Event::StateDelta(StateDelta::new(ops))).await?;
    Ok(())
}

/// Closes whatever the run left open, then `RUN_FINISHED {outcome: cancelled}` (AG-UI §7
/// "Cancelled"; 0.0.x clients get `RUN_ERROR cancelled`, which their dialect maps it to).
async fn finish_cancelled(sink: &mut EventSink, input: &RunAgentInput) -> Result<(), SinkError> {
    if sink.finished() {
        return Ok(());
    }
    let open = sink.open_items();
    if !open.subagents.is_empty() {
        // A subagent's run cannot be closed from here; RUN_ERROR closes everything at once.
        return sink.fail(RunErrorCode::Cancelled).await;
    }
    for id in open.tool_calls {
        sink.send(Event::ToolCallEnd(ToolCallEnd::new(id))).await?;
    }
    for id in open.text_messages {
        sink.send(Event::TextMessageEnd(TextMessageEnd::new(id)))
            .await?;
    }
    for id in open.reasoning_messages {
        sink.send(Event::ReasoningMessageEnd(ReasoningMessageEnd::new(id)))
            .await?;
    }
    for id in open.reasoning_spans {
        sink.send(Event::ReasoningEnd(ReasoningEnd::new(id)))
            .await?;
    }
    for name in open.steps.into_iter().rev() {
        sink.send(Event::StepFinished(StepFinished::new(name)))
            .await?;
    }
    let mut finished = RunFinished::new(input.thread_id.clone(), input.run_id.clone());
    finished.outcome = Some(RunFinishedOutcome::Cancelled);
    match sink.send(Event::RunFinished(finished)).await {
        Err(SinkError::Violation(_)) => Ok(()),
        other => other,
    }
}

async fn finish(
    sink: &mut EventSink,
    input: &RunAgentInput,
    pending: Option<Vec<ToolCallId>>,
    usage: Vec<TokenUsage>,
) -> Result<(), Stop> {
    let mut finished = RunFinished::new(input.thread_id.clone(), input.run_id.clone());
    if let Some(pending) = pending {
        finished.outcome = Some(RunFinishedOutcome::Success {
            pending_tool_call_ids: Some(pending),
        });
    }
    if !usage.is_empty() {
        finished.usage = Some(usage);
    }
    sink.send(Event::RunFinished(finished)).await?;
    Ok(())
}

/// One tool call the model made this turn.
#[derive(Debug, Clone)]
struct Call {
    index: u32,
    id: ToolCallId,
    name: String,
    arguments: String,
    open: bool,
}

/// What one model turn produced.
#[derive(Debug, Default)]
struct Turn {
    assistant_id: Option<MessageId>,
    text: String,
    text_open: Option<MessageId>,
    reasoning_open: Option<MessageId>,
    calls: Vec<Call>,
    usage: Vec<TokenUsage>,
}

impl Turn {
    fn assistant_id(&mut self) -> MessageId {
        self.assistant_id.get_or_insert_with(new_message_id).clone()
    }

    fn assistant_message(&self) -> Message {
        Message::Assistant(AssistantMessage {
            id: self.assistant_id.clone().unwrap_or_else(new_message_id),
            content: (!self.text.is_empty()).then(|| self.text.clone()),
            tool_calls: Some(
                self.calls
                    .iter()
                    .map(|call| {
                        ToolCall::new(call.id.clone(), call.name.clone(), call.arguments.clone())
                    })
                    .collect(),
            ),
            ..AssistantMessage::default()
        })
    }

    async fn close_text(&mut self, sink: &mut EventSink) -> Result<(), SinkError> {
        if let Some(id) = self.text_open.take() {
            sink.feed(Event::TextMessageEnd(TextMessageEnd::new(id)))
                .await?;
        }
        Ok(())
    }

    async fn close_reasoning(&mut self, sink: &mut EventSink) -> Result<(), SinkError> {
        if let Some(id) = self.reasoning_open.take() {
            sink.feed(Event::ReasoningMessageEnd(ReasoningMessageEnd::new(
                id.clone(),
            )))
            .await?;
            sink.feed(Event::ReasoningEnd(ReasoningEnd::new(id)))
                .await?;
        }
        Ok(())
    }
}

/// Streams one model turn to the client and collects its tool calls.
///
/// The turn's events are fed to the sink and flushed whenever the model has nothing ready
/// ([`next_delta`]), so the deltas that arrived together leave together (one frame, one
/// wake-up of the connection, one write) and none waits on the model. The last ones are left
/// in the sink for the caller, which sends or flushes before it waits on anything.
async fn model_turn(
    params: &RunParams,
    sink: &mut EventSink,
    request: ModelRequest,
    cancel: CancellationToken,
) -> Result<Turn, Stop> {
    let mut stream = params
        .model
        .stream(request, cancel)
        .await
        .map_err(|error| {
            tracing::warn!(model = params.model.name(), %error, "model turn failed to start");
            Stop::Code(RunErrorCode::for_model_code(error.code()))
        })?;
    let mut turn = Turn::default();
    while let Some(delta) = next_delta(&mut stream, sink).await? {
        let delta = delta.map_err(|error| {
            tracing::warn!(model = params.model.name(), %error, "model stream failed");
            Stop::Code(RunErrorCode::for_model_code(error.code()))
        })?;
        match delta {
            ModelDelta::Text(text) => {
                turn.close_reasoning(sink).await?;
                let id = match &turn.text_open {
                    Some(id) => id.clone(),
                    None => {
                        let id = turn.assistant_id();
                        let mut start = TextMessageStart::new(id.clone());
                        start.role = Some(Default::default());
                        sink.feed(Event::TextMessageStart(start)).await?;
                        turn.text_open = Some(id.clone());
                        id
                    }
                };
                turn.text.push_str(&text);
                sink.feed(Event::TextMessageContent(TextMessageContent::new(id, text)))
                    .await?;
            }
            ModelDelta::Reasoning(text) => {
                let id = match &turn.reasoning_open {
                    Some(id) => id.clone(),
                    None => {
                        let id = new_message_id();
                        sink.feed(Event::ReasoningStart(ReasoningStart::new(id.clone())))
                            .await?;
                        sink.feed(Event::ReasoningMessageStart(ReasoningMessageStart::new(
                            id.clone(),
                        )))
                        .await?;
                        turn.reasoning_open = Some(id.clone());
                        id
                    }
                };
                sink.feed(Event::ReasoningMessageContent(
                    ReasoningMessageContent::new(id, text),
                ))
                .await?;
            }
            ModelDelta::ToolCallStart { index, id, name } => {
                turn.close_text(sink).await?;
                turn.close_reasoning(sink).await?;
                let parent = turn.assistant_id();
                let id = ToolCallId::from(
                    id.unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
                );
                let mut start = ToolCallStart::new(id.clone(), name.clone());
                start.parent_message_id = Some(parent);
                sink.feed(Event::ToolCallStart(start)).await?;
                turn.calls.push(Call {
                    index,
                    id,
                    name,
                    arguments: String::new(),
                    open: true,
                });
            }
            ModelDelta::ToolCallArgs { index, delta } => {
                let Some(call) = turn
                    .calls
                    .iter_mut()
                    .rev()
                    .find(|c| c.index == index && c.open)
                else {
                    tracing::warn!(
                        index,
                        "model sent arguments for a tool call it never started"
                    );
                    return Err(Stop::Code(RunErrorCode::ModelProtocolError));
                };
                call.arguments.push_str(&delta);
                let id = call.id.clone();
                sink.feed(Event::ToolCallArgs(ToolCallArgs::new(id, delta)))
                    .await?;
            }
            ModelDelta::Usage(usage) => turn.usage.push(*usage),
            ModelDelta::Event(event) => sink.feed(*event).await?,
        }
    }
    turn.close_text(sink).await?;
    turn.close_reasoning(sink).await?;
    for call in turn.calls.iter_mut().filter(|c| c.open) {
        call.open = false;
        sink.feed(Event::ToolCallEnd(ToolCallEnd::new(call.id.clone())))
            .await?;
    }
    // Not flushed here: the caller's next event (`RUN_FINISHED`) joins the last batch, or it
    // flushes before the tools run.
    Ok(turn)
}

/// The model's next delta. One that is ready is taken at once and the turn goes on feeding.
/// When none is ready the task yields once and looks again: the tasks that produce the stream
/// get to run (reqwest's connection task hands the response body over one network chunk at a
/// time, so a backlog of chunks in its read buffer reaches the run only across yields). Only
/// when the model still has nothing is the batch flushed, before the wait: no event waits on
/// the model.
///
/// `cooperative`: every delta taken without waiting spends a unit of tokio's budget, as a
/// socket read would, so a model that always has more ready (the scripted model, a long
/// backlog) still yields when the budget is spent; the buffer is bounded by [`FLUSH_BYTES`]
/// meanwhile.
///
/// [`FLUSH_BYTES`]: crate::sink::FLUSH_BYTES
async fn next_delta(
    stream: &mut ModelStream,
    sink: &mut EventSink,
) -> Result<Option<Result<ModelDelta, ModelError>>, SinkError> {
    if let Some(next) = ready(stream) {
        return Ok(next);
    }
    tokio::task::yield_now().await;
    sink.resumed();
    if let Some(next) = ready(stream) {
        return Ok(next);
    }
    sink.flush().await?;
    Ok(stream.next().await)
}

/// The stream's next item if it is ready now (`None`: not yet, or the task's budget is spent).
fn ready(stream: &mut ModelStream) -> Option<Option<Result<ModelDelta, ModelError>>> {
    tokio::task::coop::cooperative(stream.next()).now_or_never()
}

/// Runs the backend calls of one turn in parallel, each with a timeout, and returns each call
/// with its result text, in call order. A panicking tool ends the run (`tool_failed`).
async fn run_backend_tools(
    params: &RunParams,
    calls: Vec<Call>,
    cancel: &CancellationToken,
    state: &StateAccess,
) -> Result<Vec<(Call, String)>, Stop> {
    let mut set = JoinSet::new();
    for (position, call) in calls.iter().enumerate() {
        let decision = decide(params, call);
        let ctx = ToolContext {
            principal: params.principal.clone(),
            cancel: cancel.child_token(),
            state: state.clone(),
        };
        let timeout = params.settings.tool_timeout;
        let tool = params.tools.get(&call.name).cloned();
        let arguments = call.arguments.clone();
        set.spawn(async move {
            let result = match (decision, tool) {
                (Decision::Allowed, Some(tool)) => {
                    match parse_arguments(&arguments, &tool.spec().parameters) {
                        Err(error) => Err(error),
                        Ok(args) => match tokio::time::timeout(timeout, tool.call(ctx, args)).await
                        {
                            Ok(result) => result,
                            Err(_) => Err(ToolError::Timeout),
                        },
                    }
                }
                (Decision::Denied, _) => Err(ToolError::NotAllowed),
                (_, None) => Err(ToolError::UnknownTool),
            };
            (position, result)
        });
    }
    let mut results: Vec<Option<String>> = vec![None; calls.len()];
    while let Some(joined) = set.join_next().await {
        let (position, result) = match joined {
            Ok(pair) => pair,
            Err(error) if error.is_panic() => {
                tracing::error!("a backend tool panicked");
                return Err(Stop::Code(RunErrorCode::ToolFailed));
            }
            Err(_) => return Err(Stop::Code(RunErrorCode::InternalError)),
        };
        let call = &calls[position];
        let (text, outcome) = match result {
            Ok(value) => (value.to_string(), "ok"),
            Err(ToolError::NotAllowed) => (ToolError::NotAllowed.to_result().to_string(), "denied"),
            Err(error) => (error.to_result().to_string(), "error"),
        };
        params.audit.record(AuditEvent::ToolCall {
            issuer: params.principal.issuer.clone(),
            subject: params.principal.subject.clone(),
            thread_id: params.input.thread_id.to_string(),
            run_id: params.input.run_id.to_string(),
            tool: call.name.clone(),
            decision: if outcome == "denied" {
                "denied"
            } else {
                "allowed"
            },
            outcome,
        });
        results[position] = Some(text);
    }
    Ok(calls
        .into_iter()
        .zip(results)
        .map(|(call, text)| (call, text.unwrap_or_default()))
        .collect())
}

/// Parses a call's JSON arguments (empty text means `{}`) and validates them against the tool's
/// schema, so a tool only ever sees arguments of the shape it declared.
fn parse_arguments(text: &str, schema: &Value) -> Result<Value, ToolError> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let args: Value = serde_json::from_str(text)
        .map_err(|_| ToolError::InvalidArguments("the arguments are not JSON".into()))?;
    schema::validate(schema, &args).map_err(ToolError::InvalidArguments)?;
    Ok(args)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allowed,
    Denied,
}

/// The second gate: checked just before the tool runs, whatever the model was offered.
fn decide(params: &RunParams, call: &Call) -> Decision {
    match params.tools.get(&call.name) {
        Some(tool) if !tool.policy().allows(&params.principal) => Decision::Denied,
        _ => Decision::Allowed,
    }
}

/// A fresh message id.
pub(crate) fn new_message_id() -> MessageId {
    MessageId::from(format!("msg_{}", uuid::Uuid::new_v4().simple()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use agui_protocol::{Dialect, Encoding, UserMessage};

    struct NoAudit;
    impl AuditSink for NoAudit {
        fn record(&self, _: AuditEvent) {}
    }

    fn params() -> RunParams {
        let message = Message::User(UserMessage::new("u1", "/stream 200 16 50"));
        RunParams {
            input: RunAgentInput::new("thread_1", "run_1", vec![message]),
            principal: Arc::new(agui_auth::testing::principal(
                "https://idp.example",
                "sub-1",
            )),
            agent: "default".to_owned(),
            model: Arc::new(crate::ScriptedModel::new(Duration::ZERO)),
            tools: ToolRegistry::new(),
            audit: Arc::new(NoAudit),
            settings: RunSettings::default(),
            client_gone: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            stop: CancellationToken::new(),
        }
    }

    /// A run's task lives as long as its stream, so its future's size is memory per open stream
    /// (issue #16). A regression guard near today's figure (this is the debug build's; the
    /// release build's is printed by the same test under `--release`).
    #[test]
    fn a_runs_future_stays_small() {
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
        let params = params();
        let sizes = [
            ("RunParams", std::mem::size_of::<RunParams>()),
            ("EventSink", std::mem::size_of::<EventSink>()),
            ("drive", {
                let (tx, _rx) = tokio::sync::mpsc::channel(1);
                let mut sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
                let mut parts = InputParts {
                    messages: vec![],
                    tools: Arc::new([]),
                    context: Arc::new([]),
                };
                std::mem::size_of_val(&drive(
                    &params,
                    &mut sink,
                    &mut parts,
                    CancellationToken::new(),
                ))
            }),
            ("model_turn", {
                let (tx, _rx) = tokio::sync::mpsc::channel(1);
                let mut sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
                let request = ModelRequest {
                    messages: Arc::new(vec![]),
                    tools: Arc::new([]),
                    frontend_tools: Arc::new([]),
                    context: Arc::new([]),
                    principal: params.principal.clone(),
                };
                std::mem::size_of_val(&model_turn(
                    &params,
                    &mut sink,
                    request,
                    CancellationToken::new(),
                ))
            }),
            ("run_backend_tools", {
                let state = StateAccess::new(Value::Null);
                std::mem::size_of_val(&run_backend_tools(
                    &params,
                    vec![],
                    &CancellationToken::new(),
                    &state,
                ))
            }),
            ("run_to_completion", {
                std::mem::size_of_val(&run_to_completion(params, sink))
            }),
        ];
        println!("{sizes:?}");
        let [(_, params), (_, sink), (_, drive), _, _, (_, run)] = sizes;
        // The parts are held once: the supervisor's own state (the races, the deadline, the
        // input's lists taken out) is a few hundred bytes on top (504 in the debug build on
        // 2026-12-03); a second copy of the parameters and the sink would add over 1,000.
        assert!(
            run <= params + sink + drive + 640,
            "run_to_completion holds more than its parts: {sizes:?}"
        );
        // Today's debug-build figure (3,608 bytes; 4,592 before the parts were held once).
        assert!(run <= 3700, "run_to_completion's future grew: {sizes:?}");
    }
}
