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
    let sender = match connection {
        Some(sender) if !sender.is_closed() => sender,
        _ => connection.insert(connect(spec.addr).await?),
    };
    sender.ready().await.map_err(|_| ErrorKind::Io)?;
    let request = http::Request::post(spec.path.as_str())
        .header(http::header::HOST, spec.addr.to_string())
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
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
    let mut reader = SseReader::new();
    let mut ttfe = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ErrorKind::Io)?;
        if let Some(data) = frame.data_ref()
            && reader.feed(data) > 0
            && ttfe.is_none()
        {
            ttfe = Some(sent.elapsed());
        }
    }
    let total = sent.elapsed();
    if status != spec.expect_status {
        return Err(ErrorKind::Status(status));
    }
    if spec.expect_status == 200 {
        match reader.ending() {
            Ending::Finished => {}
            Ending::RunError => return Err(ErrorKind::RunError),
            Ending::Truncated => return Err(ErrorKind::NoRunFinished),
            Ending::PartialFrame => return Err(ErrorKind::PartialFrame),
        }
    } else {
        ttfe = None;
    }
    Ok(Sample {
        ttfb,
        ttfe,
        total,
        events: reader.events(),
        bytes: reader.bytes(),
    })
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
