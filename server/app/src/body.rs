//! The streaming response body of a run.
//!
//! Frames arrive already encoded from the run's [`EventSink`](agui_agent::EventSink) through a
//! bounded channel. The body coalesces frames that are already waiting into one write (fewer
//! syscalls under load, no added latency: it never waits for more), sends `: keepalive` comments
//! after a configured silence on SSE (proxies cut idle streams; AG-UI allows comments, reference
//! §8), and when it is dropped (the client went away) it cancels the run.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::DropGuard;

use crate::admission::FirstEvent;

/// Coalesce at most this many bytes into one write.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// The body stream of one run.
pub(crate) struct EventBody {
    rx: mpsc::Receiver<Bytes>,
    keepalive: Option<(Duration, Pin<Box<Sleep>>)>,
    _cancel_run_on_drop: DropGuard,
    /// Times the first event (`None` once it is sent, or for streams that are not timed).
    first_event: Option<FirstEvent>,
    /// Whatever must live as long as the body (a follower's place under the server cap).
    _held: Option<Box<dyn Send + Sync>>,
}

impl EventBody {
    /// A body reading `rx`, with keepalive comments after `keepalive` of silence (SSE only: pass
    /// `None` for protobuf, whose clients drop empty frames).
    pub(crate) fn new(
        rx: mpsc::Receiver<Bytes>,
        keepalive: Option<Duration>,
        cancel_run_on_drop: DropGuard,
        first_event: Option<FirstEvent>,
    ) -> Self {
        let keepalive = keepalive
            .filter(|period| !period.is_zero())
            .map(|period| (period, Box::pin(tokio::time::sleep(period))));
        Self {
            rx,
            keepalive,
            _cancel_run_on_drop: cancel_run_on_drop,
            first_event,
            _held: None,
        }
    }
}

impl EventBody {
    /// Keeps `held` alive for as long as the body exists.
    pub(crate) fn holding(mut self, held: impl Send + Sync + 'static) -> Self {
        self._held = Some(Box::new(held));
        self
    }
}

impl Stream for EventBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(first)) => {
                let batch = coalesce(first, &mut this.rx);
                if let Some(first) = this.first_event.take() {
                    first.observe();
                }
                if let Some((period, sleep)) = &mut this.keepalive {
                    sleep.as_mut().reset(Instant::now() + *period);
                }
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if let Some((period, sleep)) = &mut this.keepalive
                    && sleep.as_mut().poll(cx).is_ready()
                {
                    sleep.as_mut().reset(Instant::now() + *period);
                    return Poll::Ready(Some(Ok(Bytes::from_static(
                        agui_protocol::sse::KEEPALIVE,
                    ))));
                }
                Poll::Pending
            }
        }
    }
}

/// A frame at least this large is written as it is (a replay's writes are already batched):
/// copying it into a batch would only cost a copy and a large allocation.
const WRITE_AS_IS_BYTES: usize = 16 * 1024;

/// Appends every frame already waiting (up to [`MAX_BATCH_BYTES`]) to `first`.
fn coalesce(first: Bytes, rx: &mut mpsc::Receiver<Bytes>) -> Bytes {
    if first.len() >= WRITE_AS_IS_BYTES {
        return first;
    }
    let Ok(second) = rx.try_recv() else {
        return first;
    };
    let both = first.len() + second.len();
    let mut batch = BytesMut::with_capacity((both * 4).min(MAX_BATCH_BYTES).max(both));
    batch.extend_from_slice(&first);
    batch.extend_from_slice(&second);
    while batch.len() < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(frame) => batch.extend_from_slice(&frame),
            Err(_) => break,
        }
    }
    batch.freeze()
}
