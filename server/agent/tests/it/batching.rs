//! The run loop batches a model turn's ready events (issue #16, the agent row): what the model
//! has ready leaves as few frames, byte for byte the frames it would have been one by one, in
//! order, with the tap seeing every event; nothing ready is held back while the model stalls;
//! a slow client still holds the run back; a model error mid-batch still ends the stream after
//! the events before it. Driven through the public `run_to_completion` with a test model, the
//! frames read straight from the body channel.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agui_agent::sink::FLUSH_BYTES;
use agui_agent::{
    AuditEvent, AuditSink, EventSink, EventTap, ModelDelta, ModelError, ModelProvider,
    ModelRequest, ModelStream, RunOutcome, RunParams, RunSettings, ToolRegistry, run_to_completion,
};
use agui_auth::{CredentialSource, Principal, token_fingerprint};
use agui_protocol::{Dialect, Encoding, Event, Message, RunAgentInput, UserMessage, proto, sse};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Generous, and only ever reached when a test is broken: with paused time the clock jumps to
/// it as soon as every task is waiting, so it fires exactly when an awaited event is never
/// coming (the cause), not after a wall-clock wait.
const GUARD: Duration = Duration::from_secs(30);

/// A model whose one turn is a stream built by the test.
struct TestModel(Mutex<Option<ModelStream>>);

impl TestModel {
    fn provider(stream: ModelStream) -> Arc<dyn ModelProvider> {
        Arc::new(Self(Mutex::new(Some(stream))))
    }
}

#[async_trait]
impl ModelProvider for TestModel {
    fn name(&self) -> &str {
        "test"
    }

    async fn stream(
        &self,
        _request: ModelRequest,
        _cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        // A std Mutex: held for a take, never across an await.
        let stream = self.0.lock().unwrap().take();
        Ok(stream.expect("one turn"))
    }
}

/// Audit records are not what these tests look at.
struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _event: AuditEvent) {}
}

/// Records every event the tap sees, as JSON.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

impl EventTap for Recorder {
    fn event(&mut self, event: &Event) {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::to_value(event).unwrap());
    }
}

fn principal() -> Arc<Principal> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("batching-user"));
    Arc::new(Principal {
        issuer: "https://idp.example.test".into(),
        subject: "batching-user".into(),
        name: None,
        email: None,
        email_verified: None,
        roles: Vec::new(),
        scopes: Vec::new(),
        claims,
        credential_source: CredentialSource::Header,
        verifier: agui_auth::Verifier::Jwt,
        token_fingerprint: token_fingerprint("not-a-token"),
        expires_at: 4_102_444_800,
    })
}

fn params(model: Arc<dyn ModelProvider>) -> RunParams {
    let mut input = RunAgentInput::new(
        "thread-batching",
        "run-batching",
        vec![Message::User(UserMessage::new("u1", "hello"))],
    );
    input.protocol_version = Some("1.0".into());
    RunParams {
        input,
        principal: principal(),
        agent: "default".into(),
        model,
        tools: ToolRegistry::new(),
        audit: Arc::new(NoAudit),
        settings: RunSettings::default(),
        client_gone: CancellationToken::new(),
        shutdown: CancellationToken::new(),
        stop: CancellationToken::new(),
    }
}

/// `n` text deltas of 16 bytes, `a`… like the benchmark's.
fn deltas(n: usize) -> Vec<Result<ModelDelta, ModelError>> {
    (0..n)
        .map(|i| {
            let letter = char::from(b'a' + (i % 26) as u8);
            Ok(ModelDelta::Text(letter.to_string().repeat(16)))
        })
        .collect()
}

/// The events in a body, frame by frame, each checked to be exactly the frame that event
/// encodes to alone: batching changes where writes start, never a byte.
fn decode(body: &[u8], encoding: Encoding) -> Vec<Value> {
    let mut events = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (event, used): (Event, usize) = match encoding {
            Encoding::Sse => {
                let end = rest
                    .windows(2)
                    .position(|w| w == b"\n\n")
                    .expect("a whole SSE frame")
                    + 2;
                let json = rest[..end - 2]
                    .strip_prefix(b"data: ")
                    .expect("a data line");
                (serde_json::from_slice(json).expect("an AG-UI event"), end)
            }
            Encoding::Proto => {
                let (message, used) = proto::decode_frame(rest).expect("a whole frame");
                (proto::from_pb(message).expect("an AG-UI event"), used)
            }
        };
        let mut alone = Vec::new();
        match encoding {
            Encoding::Sse => sse::encode_into(&event, &mut alone),
            Encoding::Proto => proto::encode_frame_into(&event, &mut alone),
        }
        assert_eq!(alone, rest[..used], "the frame of one event, unchanged");
        events.push(serde_json::to_value(&event).unwrap());
        rest = &rest[used..];
    }
    events
}

/// Reads frames until the run drops its sink.
async fn frames(rx: &mut mpsc::Receiver<Bytes>) -> Vec<Bytes> {
    let mut frames = Vec::new();
    while let Some(frame) = rx.recv().await {
        frames.push(frame);
    }
    frames
}

/// The rest of the body: every frame until the run drops its sender (within [`GUARD`]).
async fn rest(rx: &mut mpsc::Receiver<Bytes>) -> Vec<u8> {
    tokio::time::timeout(GUARD, frames(rx))
        .await
        .unwrap()
        .concat()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// A turn of 200 deltas the model has ready at once (the benchmark's mock, the scripted
/// model): far fewer frames than events, each at most one flush's worth plus the event that
/// crossed it, together byte for byte the frames of the events one by one, in the model's
/// order; the tap saw exactly those events in that order. In both encodings.
#[tokio::test(start_paused = true)]
async fn ready_deltas_leave_as_few_frames_with_the_same_events_in_order() {
    for encoding in [Encoding::Sse, Encoding::Proto] {
        let (tx, mut rx) = mpsc::channel(64);
        let tap = Recorder::default();
        let sink = EventSink::new(tx, Dialect::V1, encoding).with_tap(Box::new(tap.clone()));
        let model = TestModel::provider(futures::stream::iter(deltas(200)).boxed());
        let run = tokio::spawn(run_to_completion(params(model), sink));
        let frames = tokio::time::timeout(GUARD, frames(&mut rx)).await.unwrap();
        let (outcome, sent) = run.await.unwrap();
        assert_eq!(outcome, RunOutcome::Success);

        let body: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let events = decode(&body, encoding);
        let mut want = vec!["RUN_STARTED", "TEXT_MESSAGE_START"];
        want.extend(["TEXT_MESSAGE_CONTENT"; 200]);
        want.extend(["TEXT_MESSAGE_END", "RUN_FINISHED"]);
        assert_eq!(types(&events), want, "{encoding:?}");
        let text: String = events.iter().filter_map(|e| e["delta"].as_str()).collect();
        let expected: String = deltas(200)
            .into_iter()
            .map(|d| match d {
                Ok(ModelDelta::Text(t)) => t,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            text, expected,
            "{encoding:?}: the deltas in the model's order"
        );
        assert_eq!(sent, events.len() as u64);
        assert_eq!(
            *tap.0.lock().unwrap(),
            events,
            "{encoding:?}: the tap saw them all"
        );

        // 204 events: one frame each before batching.
        assert!(
            frames.len() * 10 < events.len(),
            "{encoding:?}: {} frames for {} events",
            frames.len(),
            events.len()
        );
        let largest_event = 256;
        for frame in &frames {
            assert!(frame.len() < FLUSH_BYTES + largest_event, "{}", frame.len());
        }
    }
}

/// The model answers three deltas, then stalls: those three (and the run's start) reach the
/// client while it stalls; the rest follows when the model goes on, and the stream ends.
#[tokio::test(start_paused = true)]
async fn a_stalled_model_does_not_hold_back_the_events_before_it() {
    let (release, released) = oneshot::channel::<()>();
    let later = futures::stream::once(async move {
        let _ = released.await;
        Ok(ModelDelta::Text("after the stall".into()))
    });
    let stream = futures::stream::iter(deltas(3)).chain(later).boxed();
    let (tx, mut rx) = mpsc::channel(64);
    let sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
    let run = tokio::spawn(run_to_completion(params(TestModel::provider(stream)), sink));

    let mut body = Vec::new();
    let mut events = Vec::new();
    while events.len() < 5 {
        let frame = tokio::time::timeout(GUARD, rx.recv())
            .await
            .expect("the events before the stall are flushed while the model stalls")
            .expect("the stream is open");
        body.extend_from_slice(&frame);
        events = decode(&body, Encoding::Sse);
    }
    assert_eq!(
        types(&events),
        [
            "RUN_STARTED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT"
        ]
    );
    assert!(!run.is_finished(), "the model is still stalled");
    release.send(()).unwrap();
    body.extend(rest(&mut rx).await);
    let events = decode(&body, Encoding::Sse);
    assert_eq!(events[5]["delta"], "after the stall");
    assert_eq!(types(&events)[6..], ["TEXT_MESSAGE_END", "RUN_FINISHED"]);
    assert_eq!(run.await.unwrap().0, RunOutcome::Success);
}

/// A client that does not read holds its run back: with a one-frame channel the run waits
/// after one batch, having queued no more than a batch; reading lets it finish with every
/// event. (Batching must not turn backpressure into unbounded buffering.)
#[tokio::test(start_paused = true)]
async fn a_slow_client_still_holds_back_a_fast_model() {
    let (tx, mut rx) = mpsc::channel(1);
    let sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
    let model = TestModel::provider(futures::stream::iter(deltas(2000)).boxed());
    let mut run = tokio::spawn(run_to_completion(params(model), sink));
    // Nothing reads: the run cannot finish (the clock jumps to the guard once it waits).
    assert!(
        tokio::time::timeout(GUARD, &mut run).await.is_err(),
        "the run finished without its client reading"
    );
    let first = rx.recv().await.unwrap();
    assert!(first.len() < FLUSH_BYTES + 256, "{}", first.len());
    let mut body = first.to_vec();
    body.extend(rest(&mut rx).await);
    let events = decode(&body, Encoding::Sse);
    assert_eq!(events.len(), 2004);
    assert_eq!(run.await.unwrap(), (RunOutcome::Success, 2004));
}

/// A model that fails right after a batch of ready deltas: the client gets those deltas, then
/// `RUN_ERROR` with the model's code, in that order (the batch is not lost with the turn).
#[tokio::test(start_paused = true)]
async fn a_model_error_after_ready_deltas_ends_the_stream_after_them() {
    let mut items = deltas(5);
    items.push(Err(ModelError::Unavailable("upstream went away".into())));
    let (tx, mut rx) = mpsc::channel(64);
    let sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
    let model = TestModel::provider(futures::stream::iter(items).boxed());
    let run = tokio::spawn(run_to_completion(params(model), sink));
    let body = rest(&mut rx).await;
    let events = decode(&body, Encoding::Sse);
    let mut want = vec!["RUN_STARTED", "TEXT_MESSAGE_START"];
    want.extend(["TEXT_MESSAGE_CONTENT"; 5]);
    want.push("RUN_ERROR");
    assert_eq!(types(&events), want);
    assert_eq!(events[7]["code"], "model_unavailable");
    assert!(matches!(run.await.unwrap().0, RunOutcome::Error(_)));
}

/// One clock read per frame: the events fed into one frame carry its first event's timestamp;
/// after a flush the next frame is stamped anew; a timestamp the event already has is kept.
#[tokio::test]
async fn a_frames_events_share_one_timestamp_and_the_next_frame_reads_the_clock_again() {
    use agui_protocol::{RunStarted, TextMessageContent, TextMessageStart};
    let (tx, mut rx) = mpsc::channel(8);
    let mut sink = EventSink::new(tx, Dialect::V1, Encoding::Sse);
    sink.feed(RunStarted::new("t", "r").into()).await.unwrap();
    sink.feed(TextMessageStart::new("m").into()).await.unwrap();
    sink.flush().await.unwrap();
    // Real time (SystemTime is what stamps): past the millisecond the first frame read.
    std::thread::sleep(Duration::from_millis(3));
    let mut stamped = TextMessageContent::new("m", "kept");
    stamped.base.timestamp = Some(42);
    sink.feed(TextMessageContent::new("m", "a").into())
        .await
        .unwrap();
    sink.send(stamped.into()).await.unwrap();
    drop(sink);
    let events = decode(&rest(&mut rx).await, Encoding::Sse);
    let at: Vec<i64> = events
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    assert_eq!(at[0], at[1], "one frame, one timestamp");
    assert!(at[2] > at[1], "the next frame read the clock again: {at:?}");
    assert_eq!(at[3], 42, "an event's own timestamp is kept");
}
