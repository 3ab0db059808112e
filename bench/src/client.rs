//! The load client: `concurrency` workers, each with one keep-alive HTTP/1.1 connection, POST
//! the same RunAgentInput with a bearer token and read every SSE stream to its end.
//!
//! It runs on the caller's tokio runtime; the suite gives it a current-thread runtime on CPU 1, so
//! the client is one core like the server (shared/reference/perf-peers.md §2: one such thread
//! saturates at ~52k short requests/s and ~1.1–1.3 M events/s). Every run is bounded by a request
//! count and a deadline, and only ever targets the address it is given (the suite: 127.0.0.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::sse::{Ending, SseReader};
use crate::stats::{ErrorKind, Recorder, Sample, Summary};

/// One load run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The server (loopback).
    pub addr: SocketAddr,
    /// Request path, e.g. `/chat`.
    pub path: String,
    /// Concurrent connections, each doing one request at a time.
    pub concurrency: usize,
    /// Total requests.
    pub requests: usize,
    /// Bearer tokens; request `i` uses `tokens[i % len]` (one token = reused, many = fresh).
    pub tokens: Arc<Vec<String>>,
    /// JSON request bodies; request `i` sends `bodies[i % len]` (see [`run_inputs`]).
    pub bodies: Arc<Vec<Bytes>>,
    /// The status every response must have: 200 for streams, 401 for the auth-fail scenario
    /// (which counts rejects, not streams).
    pub expect_status: u16,
    /// The run stops at this deadline; requests still open count as `timeout` errors.
    pub deadline: Duration,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// What the client measured.
    pub summary: Summary,
    /// Requests attempted (= the spec's count unless the deadline hit first).
    pub requested: usize,
}

/// Runs `spec` and returns the summary. Never fails: problems are counted as errors by kind.
pub async fn run(spec: LoadSpec) -> LoadResult {
    let spec = Arc::new(spec);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let stop_at = start + spec.deadline;
    let workers: Vec<_> = (0..spec.concurrency.min(spec.requests))
        .map(|_| tokio::spawn(worker(spec.clone(), next.clone(), stop_at)))
        .collect();
    let mut recorder = Recorder::new();
    for worker in workers {
        if let Ok(part) = worker.await {
            recorder.merge(part);
        }
    }
    let wall = start.elapsed();
    LoadResult {
        summary: recorder.summarize(wall),
        requested: spec.requests,
    }
}

async fn worker(spec: Arc<LoadSpec>, next: Arc<AtomicUsize>, stop_at: Instant) -> Recorder {
    let mut recorder = Recorder::new();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= spec.requests {
            break;
        }
        if Instant::now() >= stop_at {
            recorder.error(&ErrorKind::Timeout);
            continue;
        }
        let token = &spec.tokens[i % spec.tokens.len()];
        let body = spec.bodies[i % spec.bodies.len()].clone();
        match tokio::time::timeout_at(stop_at, one(&spec, token, body, &mut connection)).await {
            Ok(Ok(sample)) => recorder.ok(sample),
            Ok(Err(kind)) => {
                connection = None;
                recorder.error(&kind);
            }
            Err(_) => {
                connection = None;
                recorder.error(&ErrorKind::Timeout);
            }
        }
    }
    recorder
}

/// One request on the worker's connection (opened or reopened as needed).
async fn one(
    spec: &LoadSpec,
    token: &str,
    body: Bytes,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
) -> Result<Sample, ErrorKind> {
    let request = OneRequest {
        addr: spec.addr,
        path: &spec.path,
        token,
        expect_status: spec.expect_status,
    };
    request
        .send(body, connection, None, SseReader::new())
        .await
        .map(|(sample, _)| sample)
}

/// One request's target and expectations.
struct OneRequest<'a> {
    addr: SocketAddr,
    path: &'a str,
    token: &'a str,
    expect_status: u16,
}

impl OneRequest<'_> {
    /// Sends `body`, reads the whole stream with `reader`; `first_event` is told when the first
    /// complete event arrived. Returns the sample and the reader (for its text).
    async fn send(
        &self,
        body: Bytes,
        connection: &mut Option<SendRequest<Full<Bytes>>>,
        mut first_event: Option<oneshot::Sender<()>>,
        mut reader: SseReader,
    ) -> Result<(Sample, SseReader), ErrorKind> {
        let sender = match connection {
            Some(sender) if !sender.is_closed() => sender,
            _ => connection.insert(connect(self.addr).await?),
        };
        sender.ready().await.map_err(|_| ErrorKind::Io)?;
        let request = http::Request::post(self.path)
            .header(http::header::HOST, self.addr.to_string())
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            // @ag-ui/encoder answers `*/*` with protobuf, so every server is asked for SSE.
            .header(http::header::ACCEPT, "text/event-stream")
            .body(Full::new(body))
            .map_err(|_| ErrorKind::Io)?;
        let sent = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| ErrorKind::Io)?;
        let ttfb = sent.elapsed();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut ttfe = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ErrorKind::Io)?;
            if let Some(data) = frame.data_ref()
                && reader.feed(data) > 0
                && ttfe.is_none()
            {
                ttfe = Some(sent.elapsed());
                if let Some(tell) = first_event.take() {
                    let _ = tell.send(());
                }
            }
        }
        let total = sent.elapsed();
        if status != self.expect_status {
            return Err(ErrorKind::Status(status));
        }
        if self.expect_status == 200 {
            match reader.ending() {
                Ending::Finished => {}
                Ending::RunError => return Err(ErrorKind::RunError),
                Ending::Truncated => return Err(ErrorKind::NoRunFinished),
                Ending::PartialFrame => return Err(ErrorKind::PartialFrame),
            }
        } else {
            ttfe = None;
        }
        let sample = Sample {
            ttfb,
            ttfe,
            total,
            events: reader.events(),
            bytes: reader.bytes(),
        };
        Ok((sample, reader))
    }
}

/// The `join` scenario: `rounds` times, one run streams on a new thread through `/chat` and,
/// once its first event has arrived, `joiners` clients connect to that thread at once (each on
/// its own connection) through the runtime's `connect` and read to the end.
#[derive(Debug, Clone)]
pub struct JoinSpec {
    /// The server (loopback).
    pub addr: SocketAddr,
    /// The bearer token (the thread's owner: every client is the same user).
    pub token: String,
    /// The run's message (`/stream 100 16 20`: long enough to be joined while it streams).
    pub message: String,
    /// The whole reply's text: every joined client must end with exactly this.
    pub expected: String,
    /// Threads, one after the other.
    pub rounds: usize,
    /// Clients joining each thread's run.
    pub joiners: usize,
    /// The run stops at this deadline.
    pub deadline: Duration,
}

/// Where CopilotKit's runtime `connect` is (the default agent, `runtime.base_path` default).
pub const CONNECT_PATH: &str = "/copilotkit/agent/default/connect";

/// Runs `spec`: the summary is of the joined clients (their time to first event, their stream
/// time); a joined client whose text is not the whole reply counts as `incomplete_reply`, and a
/// run that does not end well counts as its error.
pub async fn join(spec: JoinSpec) -> LoadResult {
    let start = Instant::now();
    let stop_at = start + spec.deadline;
    let spec = Arc::new(spec);
    let mut recorder = Recorder::new();
    let batch = uuid::Uuid::new_v4().simple().to_string();
    for round in 0..spec.rounds {
        let thread = format!("join-{batch}-{round}");
        let body = thread_inputs(&spec.message, &thread, 1).remove(0);
        let (told, first) = oneshot::channel();
        let runner = {
            let spec = spec.clone();
            tokio::spawn(async move {
                let request = OneRequest {
                    addr: spec.addr,
                    path: "/chat",
                    token: &spec.token,
                    expect_status: 200,
                };
                let mut connection = None;
                tokio::time::timeout_at(
                    stop_at,
                    request.send(body, &mut connection, Some(told), SseReader::new()),
                )
                .await
                .map_err(|_| ErrorKind::Timeout)
                .and_then(|r| r.map(|_| ()))
            })
        };
        // The run is streaming once its first event is out; only then do the clients join. (If
        // it failed before that, or the deadline passed, the runner's own error says why.)
        let _ = tokio::time::timeout_at(stop_at, first).await;
        let joiners: Vec<_> = (0..spec.joiners)
            .map(|_| {
                let spec = spec.clone();
                let body = connect_input(&thread);
                tokio::spawn(async move {
                    let request = OneRequest {
                        addr: spec.addr,
                        path: CONNECT_PATH,
                        token: &spec.token,
                        expect_status: 200,
                    };
                    let mut connection = None;
                    let result = tokio::time::timeout_at(
                        stop_at,
                        request.send(body, &mut connection, None, SseReader::collecting()),
                    )
                    .await;
                    match result {
                        Err(_) => Err(ErrorKind::Timeout),
                        Ok(Err(kind)) => Err(kind),
                        Ok(Ok((sample, reader))) if reader.text() == spec.expected => Ok(sample),
                        Ok(Ok(_)) => Err(ErrorKind::IncompleteReply),
                    }
                })
            })
            .collect();
        for joiner in joiners {
            match joiner.await {
                Ok(Ok(sample)) => recorder.ok(sample),
                Ok(Err(kind)) => recorder.error(&kind),
                Err(_) => recorder.error(&ErrorKind::Io),
            }
        }
        match runner.await {
            Ok(Ok(())) => {}
            Ok(Err(kind)) => recorder.error(&kind),
            Err(_) => recorder.error(&ErrorKind::Io),
        }
    }
    LoadResult {
        summary: recorder.summarize(start.elapsed()),
        requested: spec.rounds * spec.joiners,
    }
}

/// The text of the scripted model's reply to `/stream <n> [size] [delay_ms]`: delta `i` is `size`
/// bytes (default 16) of `'a' + i % 26`.
pub fn scripted_reply(message: &str) -> Option<String> {
    let mut words = message.split_whitespace();
    if words.next()? != "/stream" {
        return None;
    }
    let n: usize = words.next()?.parse().ok()?;
    let size: usize = words.next().map_or(Some(16), |w| w.parse().ok())?;
    Some(
        (0..n)
            .map(|i| char::from(b'a' + (i % 26) as u8).to_string().repeat(size))
            .collect(),
    )
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, ErrorKind> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|_| ErrorKind::Connect)?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::Connect)?;
    tokio::spawn(async move {
        // Ends when the server closes or the sender is dropped; errors surface on the request.
        let _ = connection.await;
    });
    Ok(sender)
}

/// `count` RunAgentInput bodies with one user message (`/stream 200`, …), each with its own
/// thread and run id so no server sees a repeated run.
pub fn run_inputs(message: &str, count: usize) -> Vec<Bytes> {
    let batch = uuid::Uuid::new_v4().simple().to_string();
    (0..count.max(1))
        .map(|i| {
            let body = serde_json::json!({
                "threadId": format!("bench-{batch}-{i}"),
                "runId": format!("run-{batch}-{i}"),
                "state": {},
                "messages": [{"id": "msg-1", "role": "user", "content": message}],
                "tools": [],
                "context": [],
                "forwardedProps": {},
            });
            Bytes::from(body.to_string())
        })
        .collect()
}

/// `count` run bodies on one thread, each with its own run id: the runs that give a thread its
/// history (the `connect` scenario's 50-run thread, the `join` scenario's run).
pub fn thread_inputs(message: &str, thread: &str, count: usize) -> Vec<Bytes> {
    let batch = uuid::Uuid::new_v4().simple().to_string();
    (0..count)
        .map(|i| {
            let body = serde_json::json!({
                "threadId": thread,
                "runId": format!("run-{batch}-{i}"),
                "state": {},
                "messages": [{"id": format!("msg-{batch}-{i}"), "role": "user", "content": message}],
                "tools": [],
                "context": [],
                "forwardedProps": {},
            });
            Bytes::from(body.to_string())
        })
        .collect()
}

/// A `connect` body as CopilotKit's client sends it on a reload: a RunAgentInput for the thread
/// with a fresh run id and no messages.
pub fn connect_input(thread: &str) -> Bytes {
    let body = serde_json::json!({
        "threadId": thread,
        "runId": format!("connect-{}", uuid::Uuid::new_v4().simple()),
        "state": {},
        "messages": [],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    });
    Bytes::from(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripted_reply_is_what_the_model_streams() {
        assert_eq!(scripted_reply("/stream 3 2").as_deref(), Some("aabbcc"));
        assert_eq!(scripted_reply("/stream 2").unwrap().len(), 32);
        assert_eq!(
            scripted_reply("/stream 27 1 20").unwrap(),
            "abcdefghijklmnopqrstuvwxyza"
        );
        assert_eq!(scripted_reply("Hello"), None);
    }
}
