//! The guarded event sink: the only way a run puts events on the wire.
//!
//! Each event is stamped with a millisecond timestamp, checked by the [`SequenceGuard`] (the
//! server-side twin of the client's `verifyEvents`), adapted to the client's [`Dialect`], encoded
//! (SSE or protobuf) and handed to the response body through a bounded channel. A violation never
//! reaches the wire: the sink ends the run with `RUN_ERROR protocol_violation` instead and the run
//! stops. In tests a violation is a bug that shows up as that code.

use std::time::{SystemTime, UNIX_EPOCH};

use agui_protocol::{
    Dialect, DialectAdapter, Encoding, Event, OpenItems, RunError, SequenceGuard, proto, sse,
};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::RunErrorCode;

/// Why an event was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The response body is gone: the client disconnected.
    #[error("the client is gone")]
    Closed,
    /// The event broke the AG-UI sequence rules; the run was ended with `RUN_ERROR
    /// protocol_violation` instead.
    #[error("protocol violation: {0}")]
    Violation(String),
}

/// Sees every event a run puts on the wire, after the sequence guard and the client's dialect:
/// exactly what the client saw (the server keeps it as the thread's history and hands it to
/// clients following the run).
pub trait EventTap: Send + 'static {
    /// One event, in the order sent. Called before the frame is queued for the client, so it
    /// must not block.
    fn event(&mut self, event: &Event);
}

/// Feeds one run's response body.
pub struct EventSink {
    tx: mpsc::Sender<Bytes>,
    guard: SequenceGuard,
    dialect: DialectAdapter,
    encoding: Encoding,
    tap: Option<Box<dyn EventTap>>,
    /// Whether the run goes on when the client leaves (see [`EventSink::outlive_client`]).
    outlives_client: bool,
    /// The client left and the run goes on: frames are no longer queued.
    detached: bool,
    /// Size of the last frame, to size the next buffer in one allocation.
    last_frame_len: usize,
    events_sent: u64,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("dialect", &self.dialect)
            .field("encoding", &self.encoding)
            .field("tapped", &self.tap.is_some())
            .field("events_sent", &self.events_sent)
            .finish_non_exhaustive()
    }
}

impl EventSink {
    /// A sink writing frames in `encoding` for a client speaking `dialect` into `tx`.
    pub fn new(tx: mpsc::Sender<Bytes>, dialect: Dialect, encoding: Encoding) -> Self {
        Self {
            tx,
            guard: SequenceGuard::new(),
            dialect: DialectAdapter::new(dialect),
            encoding,
            tap: None,
            outlives_client: false,
            detached: false,
            last_frame_len: 128,
            events_sent: 0,
        }
    }

    /// Hands every event that reaches the wire to `tap` as well.
    #[must_use]
    pub fn with_tap(mut self, tap: Box<dyn EventTap>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Lets the run go on when the client leaves: from then on frames are dropped and the tap
    /// alone sees the events (a CopilotKit client that reloads mid-reply reconnects to the run
    /// and gets the whole reply). Without it, a gone client ends the run ([`SinkError::Closed`]).
    #[must_use]
    pub fn outlive_client(mut self) -> Self {
        self.outlives_client = true;
        self
    }

    /// The dialect of the client this sink writes for.
    pub fn dialect(&self) -> Dialect {
        self.dialect.dialect()
    }

    /// How many events reached the body channel.
    pub fn events_sent(&self) -> u64 {
        self.events_sent
    }

    /// Whether the run already has its terminal event.
    pub fn finished(&self) -> bool {
        self.guard.finished()
    }

    /// Items (messages, tool calls, steps…) opened and not yet closed.
    pub fn open_items(&self) -> OpenItems {
        self.guard.open_items()
    }

    /// Sends one event.
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone; [`SinkError::Violation`] when the event
    /// would have broken the stream (the run has then been ended with `RUN_ERROR`).
    pub fn send(&mut self, event: Event) -> impl Future<Output = Result<(), SinkError>> + '_ {
        // Checked and encoded before the future is built: only the frame's `Bytes` is held
        // across the await, so every future that sends events stays small (a run's task lives
        // as long as its stream, and an `Event` is a few hundred bytes).
        let prepared = self.prepare(event);
        async move {
            match prepared {
                Prepared::Frame(frame) => self.push(frame).await,
                Prepared::Dropped => Ok(()),
                Prepared::Violation(message) => {
                    self.fail(RunErrorCode::ProtocolViolation).await?;
                    Err(SinkError::Violation(message))
                }
            }
        }
    }

    /// Ends the run with `RUN_ERROR {code}` unless it already has a terminal event.
    /// `RUN_ERROR` implicitly closes whatever is open (AG-UI §4 rule 10).
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone.
    pub async fn fail(&mut self, code: RunErrorCode) -> Result<(), SinkError> {
        match self.prepare_failure(code) {
            Some(frame) => self.push(frame).await,
            None => Ok(()),
        }
    }

    /// Stamps, checks, adapts and encodes one event.
    fn prepare(&mut self, mut event: Event) -> Prepared {
        if event.base().timestamp.is_none() {
            event.base_mut().timestamp = Some(now_millis());
        }
        if let Err(violation) = self.guard.check(&event) {
            let message = violation.to_string();
            tracing::error!(
                event_type = event.event_type().as_str(),
                violation = %message,
                "an agent or tool emitted an invalid event; ending the run"
            );
            return Prepared::Violation(message);
        }
        match self.encode(event) {
            Some(frame) => Prepared::Frame(frame),
            None => Prepared::Dropped,
        }
    }

    /// The `RUN_ERROR {code}` frame, or `None` when the run already has its terminal event.
    fn prepare_failure(&mut self, code: RunErrorCode) -> Option<Bytes> {
        if self.guard.finished() {
            return None;
        }
        let mut error = RunError::new(code.message().to_owned());
        error.code = Some(code.as_str().to_owned());
        let mut event = Event::RunError(error);
        event.base_mut().timestamp = Some(now_millis());
        if let Err(violation) = self.guard.check(&event) {
            // Unreachable by the guard's rules (RUN_ERROR is always admitted before a terminal
            // event); log rather than loop.
            tracing::error!(%violation, "RUN_ERROR rejected by the sequence guard");
            return None;
        }
        self.encode(event)
    }

    /// The event in the client's dialect and encoding; `None` when the dialect drops it.
    fn encode(&mut self, event: Event) -> Option<Bytes> {
        let event = self.dialect.adapt(event)?;
        if let Some(tap) = &mut self.tap {
            tap.event(&event);
        }
        let mut frame = Vec::with_capacity(self.last_frame_len + 32);
        match self.encoding {
            Encoding::Sse => sse::encode_into(&event, &mut frame),
            Encoding::Proto => proto::encode_frame_into(&event, &mut frame),
        }
        self.last_frame_len = frame.len();
        Some(Bytes::from(frame))
    }

    async fn push(&mut self, frame: Bytes) -> Result<(), SinkError> {
        if self.detached {
            return Ok(());
        }
        match self.tx.send(frame).await {
            Ok(()) => {
                self.events_sent += 1;
                Ok(())
            }
            Err(_) if self.outlives_client => {
                self.detached = true;
                Ok(())
            }
            Err(_) => Err(SinkError::Closed),
        }
    }
}

/// An event made ready for the wire.
enum Prepared {
    Frame(Bytes),
    /// The client's dialect has no such event.
    Dropped,
    /// The event would break the sequence; the message says which rule.
    Violation(String),
}

/// Milliseconds since the Unix epoch: AG-UI timestamps are integers (reference §1).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
