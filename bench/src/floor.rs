//! The floor: a do-nothing SSE server that answers every `POST /chat` with pre-encoded frames
//! (no auth, no JSON parsing, no agent), so the client's ceiling is known before any real server
//! is measured (shared/reference/perf-peers.md §2 "Calibrate the client first").
//!
//! It reads `/stream <n> [size] [delay_ms]` out of the body with a byte scan and streams the same
//! event shapes as agui-server's scripted model. In truncating mode it leaves out `RUN_FINISHED`,
//! which the client must count as an error.

use std::collections::HashMap;
use std::future::Future as _;
use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use tokio::net::TcpListener;
use tokio::time::Sleep;

use crate::httpd;

/// What `/stream <n> [size] [delay_ms]` asks for (the scripted model's defaults: 1, 16, 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamPlan {
    /// Text deltas.
    pub count: usize,
    /// Bytes per delta.
    pub size: usize,
    /// Pause before each delta, milliseconds.
    pub delay_ms: u64,
}

impl StreamPlan {
    /// Finds `/stream …` in a request body (or a message) and parses it, with the scripted
    /// model's defaults and caps.
    pub fn find(body: &[u8]) -> StreamPlan {
        let text = String::from_utf8_lossy(body);
        let mut numbers = text
            .find("/stream")
            .map(|at| &text[at + "/stream".len()..])
            .unwrap_or("")
            .split(|c: char| c.is_whitespace() || c == '"')
            .filter(|s| !s.is_empty())
            .map_while(|s| s.parse::<u64>().ok());
        let count = numbers.next().unwrap_or(1).min(1_000_000) as usize;
        let size = numbers.next().unwrap_or(16).clamp(1, 65_536) as usize;
        let delay_ms = numbers.next().unwrap_or(0).min(60_000);
        StreamPlan {
            count,
            size,
            delay_ms,
        }
    }
}

/// The frames of one scripted reply, `data: <json>\n\n` each, in the AG-UI 1.0 shapes the peers
/// and agui-server send.
pub fn frames(count: usize, size: usize, truncate: bool) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(count + 4);
    let mut push = |json: String| frames.push(Bytes::from(format!("data: {json}\n\n")));
    push(r#"{"type":"RUN_STARTED","threadId":"floor-thread","runId":"floor-run","protocolVersion":"1.0"}"#.into());
    push(r#"{"type":"TEXT_MESSAGE_START","messageId":"floor-msg","role":"assistant"}"#.into());
    for i in 0..count {
        let letter = char::from(b'a' + (i % 26) as u8);
        let delta: String = std::iter::repeat_n(letter, size).collect();
        push(format!(
            r#"{{"type":"TEXT_MESSAGE_CONTENT","messageId":"floor-msg","delta":"{delta}"}}"#
        ));
    }
    push(r#"{"type":"TEXT_MESSAGE_END","messageId":"floor-msg"}"#.into());
    if !truncate {
        push(r#"{"type":"RUN_FINISHED","threadId":"floor-thread","runId":"floor-run"}"#.into());
    }
    frames
}

type Cache = Arc<Mutex<HashMap<(usize, usize), Arc<Vec<Bytes>>>>>;

/// Serves the floor on `listener` until the process ends.
pub async fn serve(listener: TcpListener, truncate: bool) {
    let cache: Cache = Arc::default();
    httpd::serve(listener, move |request| {
        let cache = cache.clone();
        async move {
            let body = match request.into_body().collect().await {
                Ok(body) => body.to_bytes(),
                Err(_) => Bytes::new(),
            };
            let plan = StreamPlan::find(&body);
            // A std Mutex: held only for a map lookup, never across an await.
            let frames = cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .entry((plan.count, plan.size))
                .or_insert_with(|| Arc::new(frames(plan.count, plan.size, truncate)))
                .clone();
            http::Response::builder()
                .header(http::header::CONTENT_TYPE, "text/event-stream")
                .header(http::header::CACHE_CONTROL, "no-cache")
                .body(FramesBody::new(frames, plan.delay_ms))
                .unwrap_or_else(|_| http::Response::new(FramesBody::new(Arc::default(), 0)))
        }
    })
    .await;
}

/// A body that yields pre-encoded frames, pausing before each text delta when asked. Frames that
/// are ready together are coalesced by hyper's write buffer.
pub struct FramesBody {
    frames: Arc<Vec<Bytes>>,
    next: usize,
    delay: Duration,
    /// The frames preceded by `delay`.
    delayed: Range<usize>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl FramesBody {
    /// A scripted reply over `frames` with `delay_ms` before each text delta: every frame but
    /// RUN_STARTED, TEXT_MESSAGE_START, TEXT_MESSAGE_END and RUN_FINISHED (when present).
    pub fn new(frames: Arc<Vec<Bytes>>, delay_ms: u64) -> Self {
        let finished = frames
            .last()
            .is_some_and(|f| f.starts_with(b"data: {\"type\":\"RUN_FINISHED"));
        let end = frames.len().saturating_sub(if finished { 2 } else { 1 });
        Self::with_delay_range(frames, delay_ms, 2..end)
    }

    /// A body over `frames` with `delay_ms` before each frame whose index is in `delayed`.
    pub fn with_delay_range(frames: Arc<Vec<Bytes>>, delay_ms: u64, delayed: Range<usize>) -> Self {
        Self {
            frames,
            next: 0,
            delay: Duration::from_millis(delay_ms),
            delayed,
            sleep: None,
        }
    }
}

impl Body for FramesBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let index = self.next;
        if index >= self.frames.len() {
            return Poll::Ready(None);
        }
        if !self.delay.is_zero() && self.delayed.contains(&index) {
            let delay = self.delay;
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(delay)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.sleep = None;
        }
        self.next += 1;
        Poll::Ready(Some(Ok(Frame::data(self.frames[index].clone()))))
    }

    fn is_end_stream(&self) -> bool {
        self.next >= self.frames.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::{Ending, SseReader};

    #[test]
    fn plan_is_read_from_a_json_body() {
        let body = br#"{"messages":[{"role":"user","content":"/stream 200 8 50"}]}"#;
        assert_eq!(
            StreamPlan::find(body),
            StreamPlan {
                count: 200,
                size: 8,
                delay_ms: 50
            }
        );
        let body = br#"{"messages":[{"role":"user","content":"/stream 5"}]}"#;
        assert_eq!(
            StreamPlan::find(body),
            StreamPlan {
                count: 5,
                size: 16,
                delay_ms: 0
            }
        );
        assert_eq!(StreamPlan::find(b"{}").count, 1);
    }

    #[test]
    fn frames_have_the_scripted_shape_and_bytes() {
        let frames = frames(3, 4, false);
        assert_eq!(frames.len(), 7);
        assert_eq!(
            &frames[3][..],
            &b"data: {\"type\":\"TEXT_MESSAGE_CONTENT\",\"messageId\":\"floor-msg\",\"delta\":\"bbbb\"}\n\n"[..]
        );
        let mut reader = SseReader::new();
        for frame in &frames {
            reader.feed(frame);
        }
        assert_eq!(reader.events(), 7);
        assert_eq!(reader.ending(), Ending::Finished);
    }

    #[test]
    fn truncating_mode_leaves_out_run_finished() {
        let frames = frames(3, 4, true);
        let mut reader = SseReader::new();
        for frame in &frames {
            reader.feed(frame);
        }
        assert_eq!(reader.events(), 6);
        assert_eq!(reader.ending(), Ending::Truncated);
    }

    #[tokio::test(start_paused = true)]
    async fn the_body_pauses_only_before_deltas() {
        let frames = Arc::new(frames(2, 1, false));
        let mut body = FramesBody::new(frames, 50);
        let start = tokio::time::Instant::now();
        let mut at = Vec::new();
        while let Some(frame) = body.frame().await {
            frame.unwrap();
            at.push(start.elapsed().as_millis());
        }
        // RUN_STARTED, TEXT_MESSAGE_START at once; each delta 50 ms later; the end at once.
        assert_eq!(at, vec![0, 0, 50, 100, 100, 100]);
    }
}
