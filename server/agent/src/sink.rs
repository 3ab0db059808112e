//! The guarded event sink: the only way a run puts events on the wire.
//!
//! Each event is stamped with a millisecond timestamp (its frame's: see [`EventSink::feed`]),
//! checked by the [`SequenceGuard`] (the server-side twin of the client's `verifyEvents`),
//! adapted to the client's [`Dialect`], encoded (SSE or protobuf) and handed to the response body
//! through a bounded channel. A violation never reaches the wire: the sink ends the run with
//! `RUN_ERROR protocol_violation` instead and the run stops. In tests a violation is a bug that
//! shows up as that code.
//!
//! Events can be batched: [`EventSink::feed`] encodes an event into the sink's buffer and
//! [`EventSink::flush`] hands the buffer to the body as one frame (one channel send, one wake-up
//! of the connection task, usually one write). The run loop feeds what the model has ready and
//! flushes before it waits on the model, so batching never holds an event back while nothing
//! else is coming; [`EventSink::send`] is `feed` then `flush`. A buffer that reaches
//! [`FLUSH_BYTES`] is flushed at once, so backpressure from a slow client still reaches the run
//! and a batch stays small.

use std::time::{SystemTime, UNIX_EPOCH};

use agui_protocol::{
    Dialect, DialectAdapter, Encoding, Event, OpenItems, RunError, SequenceGuard, proto, sse,
};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::RunErrorCode;

/// A buffer of fed events is flushed as soon as it holds this many bytes: about 35 text deltas
/// of 16 bytes, one write, while the frames waiting in the body's channel stay bounded (a
/// channel of `n` frames holds at most `n × (FLUSH_BYTES + one frame)`).
pub const FLUSH_BYTES: usize = 4 * 1024;

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
    /// One event, in the order sent. Called when the event is fed, before its frame is queued
    /// for the client, so it must not block.
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
    /// The client left and the run goes on: frames are no longer encoded or queued.
    detached: bool,
    /// Frames fed and not yet flushed, in order: the next frame the body gets.
    pending: Vec<u8>,
    /// Events in `pending`.
    pending_events: u64,
    /// Size of the last flushed buffer, to size the next one in one allocation (a single
    /// frame when the model is slow, a whole batch when it is fast).
    last_flush_len: usize,
    events_sent: u64,
    /// The timestamp of the frame being buffered, read when its first event is staged. A
    /// frame's events are staged in one go (the caller flushes before it waits on anything),
    /// so they share one clock read: one per frame instead of one per event, which was ~3 % of
    /// a fast stream's CPU (a `clock_gettime` and a conversion each). Cleared by every flush
    /// and whenever the run's task yields ([`EventSink::resumed`]).
    frame_ms: Option<i64>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("dialect", &self.dialect)
            .field("encoding", &self.encoding)
            .field("tapped", &self.tap.is_some())
            .field("pending_events", &self.pending_events)
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
            pending: Vec::new(),
            pending_events: 0,
            last_flush_len: 128,
            events_sent: 0,
            frame_ms: None,
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

    /// Sends one event, with whatever was fed before it, as one frame.
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone; [`SinkError::Violation`] when the event
    /// would have broken the stream (the run has then been ended with `RUN_ERROR`).
    pub fn send(&mut self, event: Event) -> impl Future<Output = Result<(), SinkError>> + '_ {
        // Checked and encoded before the future is built: no `Event` is held across the await,
        // so every future that sends events stays small (a run's task lives as long as its
        // stream, and an `Event` is a few hundred bytes).
        let staged = self.stage(event);
        async move {
            self.settle(staged).await?;
            self.flush().await
        }
    }

    /// Checks, encodes and buffers one event without sending it: the next [`flush`] (or
    /// [`send`], or [`fail`]) sends it with the others, in order. An event without a timestamp
    /// gets the frame's: the time its first event was staged. Flushes at once when the
    /// buffer reaches [`FLUSH_BYTES`]. The caller must flush before it waits on anything that
    /// may take time, or the client waits for events that are ready.
    ///
    /// [`flush`]: EventSink::flush
    /// [`send`]: EventSink::send
    /// [`fail`]: EventSink::fail
    ///
    /// # Errors
    /// As [`EventSink::send`].
    pub fn feed(&mut self, event: Event) -> impl Future<Output = Result<(), SinkError>> + '_ {
        let staged = self.stage(event);
        async move {
            self.settle(staged).await?;
            if self.pending.len() >= FLUSH_BYTES {
                self.flush().await?;
            }
            Ok(())
        }
    }

    /// Hands the buffered frames to the body as one frame (nothing when nothing is buffered).
    /// Cancel-safe: the buffer leaves the sink only once the channel has room for it, so a
    /// run stopped while a slow client holds it back still sends it before its terminal event.
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone.
    pub async fn flush(&mut self) -> Result<(), SinkError> {
        self.frame_ms = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        match self.tx.reserve().await {
            Ok(permit) => {
                self.last_flush_len = self.pending.len();
                permit.send(Bytes::from(std::mem::take(&mut self.pending)));
                self.events_sent += std::mem::take(&mut self.pending_events);
                Ok(())
            }
            Err(_) if self.outlives_client => {
                self.detached = true;
                self.pending = Vec::new();
                self.pending_events = 0;
                Ok(())
            }
            Err(_) => Err(SinkError::Closed),
        }
    }

    /// The run's task gave up its thread (other tasks may have run for a while): events staged
    /// from now on read the clock again, even into the frame being buffered.
    pub(crate) fn resumed(&mut self) {
        self.frame_ms = None;
    }

    /// Ends the run with `RUN_ERROR {code}` unless it already has a terminal event; whatever
    /// was fed goes out first, in the same frame. `RUN_ERROR` implicitly closes whatever is
    /// open (AG-UI §4 rule 10).
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone.
    pub async fn fail(&mut self, code: RunErrorCode) -> Result<(), SinkError> {
        self.stage_failure(code);
        self.flush().await
    }

    /// Stamps, checks, adapts and buffers one event.
    fn stage(&mut self, mut event: Event) -> Staged {
        if event.base().timestamp.is_none() {
            let now = *self.frame_ms.get_or_insert_with(now_millis);
            event.base_mut().timestamp = Some(now);
        }
        if let Err(violation) = self.guard.check(&event) {
            let message = violation.to_string();
            tracing::error!(
                event_type = event.event_type().as_str(),
                violation = %message,
                "an agent or tool emitted an invalid event; ending the run"
            );
            return Staged::Violation(message);
        }
        self.encode(event);
        Staged::Buffered
    }

    /// What a staged event leaves to do: nothing, or end the run for its violation.
    async fn settle(&mut self, staged: Staged) -> Result<(), SinkError> {
        match staged {
            Staged::Buffered => Ok(()),
            Staged::Violation(message) => {
                self.fail(RunErrorCode::ProtocolViolation).await?;
                Err(SinkError::Violation(message))
            }
        }
    }

    /// Buffers the `RUN_ERROR {code}` frame, unless the run already has its terminal event.
    fn stage_failure(&mut self, code: RunErrorCode) {
        if self.guard.finished() {
            return;
        }
        let mut error = RunError::new(code.message().to_owned());
        error.code = Some(code.as_str().to_owned());
        let mut event = Event::RunError(error);
        event.base_mut().timestamp = Some(now_millis());
        if let Err(violation) = self.guard.check(&event) {
            // Unreachable by the guard's rules (RUN_ERROR is always admitted before a terminal
            // event); log rather than loop.
            tracing::error!(%violation, "RUN_ERROR rejected by the sequence guard");
            return;
        }
        self.encode(event);
    }

    /// Adapts the event to the client's dialect (which may drop it), shows it to the tap and
    /// appends its frame to the buffer.
    fn encode(&mut self, event: Event) {
        let Some(event) = self.dialect.adapt(event) else {
            return;
        };
        if let Some(tap) = &mut self.tap {
            tap.event(&event);
        }
        if self.detached {
            return;
        }
        if self.pending.is_empty() {
            self.pending.reserve(self.last_flush_len + 64);
        }
        match self.encoding {
            Encoding::Sse => sse::encode_into(&event, &mut self.pending),
            Encoding::Proto => proto::encode_frame_into(&event, &mut self.pending),
        }
        self.pending_events += 1;
    }
}

/// An event checked and buffered, or refused.
enum Staged {
    /// In the buffer (or dropped by the client's dialect).
    Buffered,
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
