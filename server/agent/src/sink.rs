//! The guarded event sink: the only way a run puts events on the wire.
//!
//! Each event is stamped with a millisecond timestamp, checked by the [`SequenceGuard`] (the
//! server-side twin of the client's `verifyEvents`), adapted to the client's [`Dialect`], encoded
//! (SSE or protobuf) and handed to the response body through a bounded channel. A violation never
//! reaches the wire: the sink ends the run with `RUN_ERROR protocol_violation` instead and the run
//! stops. In tests a violation is a bug that shows up as that code.

use std::time::{SystemTime, UNIX_EPOCH};

use agui_protocol::{Dialect, Encoding, Event, OpenItems, RunError, SequenceGuard, proto, sse};
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

/// Feeds one run's response body.
#[derive(Debug)]
pub struct EventSink {
    tx: mpsc::Sender<Bytes>,
    guard: SequenceGuard,
    dialect: Dialect,
    encoding: Encoding,
    /// Size of the last frame, to size the next buffer in one allocation.
    last_frame_len: usize,
    events_sent: u64,
}

impl EventSink {
    /// A sink writing frames in `encoding` for a client speaking `dialect` into `tx`.
    pub fn new(tx: mpsc::Sender<Bytes>, dialect: Dialect, encoding: Encoding) -> Self {
        Self {
            tx,
            guard: SequenceGuard::new(),
            dialect,
            encoding,
            last_frame_len: 128,
            events_sent: 0,
        }
    }

    /// The dialect of the client this sink writes for.
    pub fn dialect(&self) -> Dialect {
        self.dialect
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
    pub async fn send(&mut self, mut event: Event) -> Result<(), SinkError> {
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
            self.fail(RunErrorCode::ProtocolViolation).await?;
            return Err(SinkError::Violation(message));
        }
        self.write(event).await
    }

    /// Ends the run with `RUN_ERROR {code}` unless it already has a terminal event.
    /// `RUN_ERROR` implicitly closes whatever is open (AG-UI §4 rule 10).
    ///
    /// # Errors
    /// [`SinkError::Closed`] when the client is gone.
    pub async fn fail(&mut self, code: RunErrorCode) -> Result<(), SinkError> {
        if self.guard.finished() {
            return Ok(());
        }
        let mut event = Event::RunError(RunError::new(code.message().to_owned()));
        if let Event::RunError(error) = &mut event {
            error.code = Some(code.as_str().to_owned());
        }
        event.base_mut().timestamp = Some(now_millis());
        if let Err(violation) = self.guard.check(&event) {
            // Unreachable by the guard's rules (RUN_ERROR is always admitted before a terminal
            // event); log rather than loop.
            tracing::error!(%violation, "RUN_ERROR rejected by the sequence guard");
            return Ok(());
        }
        self.write(event).await
    }

    async fn write(&mut self, event: Event) -> Result<(), SinkError> {
        let Some(event) = self.dialect.adapt(event) else {
            return Ok(());
        };
        let mut frame = Vec::with_capacity(self.last_frame_len + 32);
        match self.encoding {
            Encoding::Sse => sse::encode_into(&event, &mut frame),
            Encoding::Proto => proto::encode_frame_into(&event, &mut frame),
        }
        self.last_frame_len = frame.len();
        self.tx
            .send(Bytes::from(frame))
            .await
            .map_err(|_| SinkError::Closed)?;
        self.events_sent += 1;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch: AG-UI timestamps are integers (reference §1).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
