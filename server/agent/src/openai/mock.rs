//! An in-process mock of an OpenAI-compatible chat-completions server (feature `testing`).
//!
//! It binds `127.0.0.1:0`, serves `POST /v1/chat/completions`, answers each request with the
//! next queued [`MockResponse`] (fixture chunks, an HTTP error, or silence), and records every
//! request it received: headers and body, so tests can check what was (and was not) sent. A
//! streamed body can pause at a [`MockStep::Hold`] until [`MockOpenAi::release`]; if the client
//! goes away meanwhile, the body is dropped and [`MockOpenAi::wait_body_dropped`] returns: the
//! causal proof that cancelling a run aborts the request before the next chunk is sent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use agui_agent::openai::mock::{MockOpenAi, MockResponse};
//! let mock = MockOpenAi::start().await?;
//! mock.enqueue(MockResponse::sse("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n"));
//! // point an OpenAiConfig at mock.base_url() ...
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;

/// One step of a streamed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockStep {
    /// Bytes written as one body chunk, verbatim.
    Raw(Bytes),
    /// Wait for [`MockOpenAi::release`] before the next step.
    Hold,
}

/// How the mock answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockResponse {
    /// `200 text/event-stream` with these body steps; the body ends after the last one.
    Stream(Vec<MockStep>),
    /// An error status with a body (and `Retry-After`, when given).
    Status {
        /// The HTTP status.
        status: u16,
        /// The body, sent as `application/json`.
        body: String,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Never answers, not even the response head (until the mock is dropped).
    Silent,
}

impl MockResponse {
    /// A stream replaying SSE text event by event: the text is cut after every blank line
    /// (`\n\n`), and each event is one body chunk, as providers flush them.
    pub fn sse(text: &str) -> Self {
        MockResponse::Stream(
            split_events(text)
                .into_iter()
                .map(|event| MockStep::Raw(Bytes::from(event)))
                .collect(),
        )
    }

    /// A stream replaying SSE text in chunks of `size` bytes, cutting lines, events and even
    /// UTF-8 characters anywhere, as a network may.
    ///
    /// # Panics
    /// When `size` is 0.
    pub fn sse_in_pieces(text: &str, size: usize) -> Self {
        assert!(size > 0, "piece size must be positive");
        MockResponse::Stream(
            text.as_bytes()
                .chunks(size)
                .map(|piece| MockStep::Raw(Bytes::copy_from_slice(piece)))
                .collect(),
        )
    }

    /// An error status with a JSON body in OpenAI's error shape.
    pub fn error(status: u16, message: &str) -> Self {
        MockResponse::Status {
            status,
            body: serde_json::json!({"error": {"message": message, "type": "mock_error"}})
                .to_string(),
            retry_after: None,
        }
    }
}

/// Cuts SSE text into events, keeping each event's terminating blank line with it.
fn split_events(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(end) = rest.find("\n\n") {
        out.push(rest[..end + 2].to_owned());
        rest = &rest[end + 2..];
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Every header, names lower-cased, values as text (lossy).
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body_text: String,
    /// The body as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Everything received (headers and body) as one string, for "never contains" checks.
    pub fn everything(&self) -> String {
        let mut out = String::new();
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.body_text);
        out
    }

    /// The `messages` of the request body.
    pub fn messages(&self) -> Vec<Value> {
        self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the offered tools, in order.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
            .collect()
    }
}

#[derive(Debug)]
struct Shared {
    responses: Mutex<VecDeque<MockResponse>>,
    requests: Mutex<Vec<RecordedRequest>>,
    release: Semaphore,
    chunks_sent: AtomicUsize,
    dropped_early: watch::Sender<usize>,
    shutdown: CancellationToken,
}

/// Locks a mutex, recovering the data if a panicking test poisoned it. No `.await` happens
/// while any of these locks is held.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The running mock. Dropping it stops the server and ends held or silent responses.
#[derive(Debug)]
pub struct MockOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl MockOpenAi {
    /// Starts the mock on `127.0.0.1:0`.
    ///
    /// # Errors
    /// When the loopback port cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            responses: Mutex::new(VecDeque::new()),
            requests: Mutex::new(Vec::new()),
            release: Semaphore::new(0),
            chunks_sent: AtomicUsize::new(0),
            dropped_early: watch::Sender::new(0),
            shutdown: CancellationToken::new(),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "mock OpenAI server stopped");
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The base URL to configure: `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues the answer to the next request that has none yet.
    pub fn enqueue(&self, response: MockResponse) {
        lock(&self.shared.responses).push_back(response);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Lets one [`MockStep::Hold`] proceed.
    pub fn release(&self) {
        self.shared.release.add_permits(1);
    }

    /// How many body chunks the mock has handed to the connection, over all requests.
    pub fn chunks_sent(&self) -> usize {
        self.shared.chunks_sent.load(Ordering::SeqCst)
    }

    /// Waits until a streamed body was dropped before its last step (the client went away).
    pub async fn wait_body_dropped(&self) {
        let mut rx = self.shared.dropped_early.subscribe();
        // The sender lives in `self.shared`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// How many streamed bodies were dropped before their last step.
    pub fn bodies_dropped(&self) -> usize {
        *self.shared.dropped_early.borrow()
    }
}

impl Drop for MockOpenAi {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.task.abort();
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body_text = String::from_utf8_lossy(&body).into_owned();
    lock(&shared.requests).push(RecordedRequest {
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
        body_text,
    });
    let next = lock(&shared.responses).pop_front();
    match next {
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock: no response queued",
        )
            .into_response(),
        Some(MockResponse::Status {
            status,
            body,
            retry_after,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response =
                (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Some(MockResponse::Silent) => {
            shared.shutdown.cancelled().await;
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Some(MockResponse::Stream(steps)) => {
            let stream = body_stream(shared, steps);
            (
                [(header::CONTENT_TYPE, "text/event-stream")],
                Body::from_stream(stream),
            )
                .into_response()
        }
    }
}

/// Marks a body dropped before its last step.
struct DropWatch {
    shared: Arc<Shared>,
    finished: bool,
}

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.finished {
            self.shared.dropped_early.send_modify(|n| *n += 1);
        }
    }
}

fn body_stream(
    shared: Arc<Shared>,
    steps: Vec<MockStep>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
    async_stream::stream! {
        let mut watch = DropWatch { shared: shared.clone(), finished: false };
        for step in steps {
            match step {
                MockStep::Raw(bytes) => {
                    shared.chunks_sent.fetch_add(1, Ordering::SeqCst);
                    yield Ok(bytes);
                }
                MockStep::Hold => {
                    tokio::select! {
                        permit = shared.release.acquire() => {
                            if let Ok(permit) = permit {
                                permit.forget();
                            }
                        }
                        () = shared.shutdown.cancelled() => return,
                    }
                }
            }
        }
        watch.finished = true;
    }
}
