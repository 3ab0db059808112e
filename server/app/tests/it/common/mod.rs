//! Shared helpers for the server's integration tests: a real server on 127.0.0.1:0 trusting a
//! `TestIdp`, an SSE reader, and test-only model providers and tools.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use agui_agent::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};
use agui_auth::testing::TestIdp;
use agui_server::config::Config;
use agui_server::state::{AppState, AppStateBuilder};
use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The audience test tokens carry and the server accepts.
pub const AUDIENCE: &str = "agui-tests";

/// A running server and the issuer it trusts.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The issuer.
    pub idp: TestIdp,
    /// The server's state (metrics, shutdown token).
    pub state: AppState,
    /// HTTP client.
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts a server with default settings.
pub async fn start() -> TestServer {
    start_with(|_| {}, |b| b).await
}

/// Starts a server after letting the test adjust the config and the state builder.
pub async fn start_with(
    configure: impl FnOnce(&mut Config),
    build: impl FnOnce(AppStateBuilder) -> AppStateBuilder,
) -> TestServer {
    start_with_idp(TestIdp::start().await, configure, build).await
}

/// [`start_with`] trusting an issuer that already runs (a restarted server, same users).
pub async fn start_with_idp(
    idp: TestIdp,
    configure: impl FnOnce(&mut Config),
    build: impl FnOnce(AppStateBuilder) -> AppStateBuilder,
) -> TestServer {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    config.auth =
        agui_auth::AuthConfig::from_env_single_issuer(&idp.issuer_url(), AUDIENCE, "").unwrap();
    configure(&mut config);
    let listener = agui_server::serve::bind(config.listen, config.backlog).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state = build(AppState::builder(config))
        .build()
        .await
        .expect("the test config is valid");
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(agui_server::run(listener, state.clone(), async move {
        let _ = rx.await;
    }));
    TestServer {
        url,
        idp,
        state,
        http: reqwest::Client::new(),
        shutdown: Some(tx),
        task: Some(task),
    }
}

impl TestServer {
    /// A valid token for `subject` (name `Test <subject>`, no roles).
    pub fn token(&self, subject: &str) -> String {
        mint(&self.idp, subject, AUDIENCE)
    }

    /// `POST /chat` with `body` and, when given, `Authorization: Bearer <token>`.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the server answers")
    }

    /// Runs `body` through `/chat` as `subject` and returns the SSE events.
    pub async fn run(&self, subject: &str, body: &Value) -> Vec<Value> {
        self.run_as("/chat", &self.token(subject), body).await
    }

    /// Runs `body` through `path` with `token` and returns the SSE events.
    pub async fn run_as(&self, path: &str, token: &str, body: &Value) -> Vec<Value> {
        let response = self.post(path, Some(token), body).await;
        assert_eq!(response.status(), 200, "body: {:?}", response.text().await);
        sse_events(&response.text().await.unwrap())
    }

    /// One authenticated request (`GET /whoami`, whatever the model) so the server has the
    /// issuer's keys cached.
    pub async fn run_warmup(&self, token: &str) {
        let response = self
            .http
            .get(format!("{}/whoami", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the server and hands back its issuer (to start another server for the same
    /// users).
    pub async fn stop_keeping_idp(mut self) -> TestIdp {
        self.shut_down().await;
        self.idp
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A good token from `idp` for `subject` (named `Test <subject>`) with audience `audience`.
pub fn mint(idp: &TestIdp, subject: &str, audience: &str) -> String {
    let mut claims = idp.claims(subject);
    claims["aud"] = json!(audience);
    claims["name"] = json!(format!("Test {subject}"));
    idp.sign("rsa-1", &claims)
}

/// A good token like [`mint`] with `roles`.
pub fn mint_with_roles(idp: &TestIdp, subject: &str, audience: &str, roles: &[&str]) -> String {
    let mut claims = idp.claims(subject);
    claims["aud"] = json!(audience);
    claims["name"] = json!(format!("Test {subject}"));
    claims["roles"] = json!(roles);
    idp.sign("rsa-1", &claims)
}

/// A `RunAgentInput` with one user message on a new thread; `protocol_version` None = a 0.0.x
/// client. (A thread belongs to the principal whose run created it, so each call gets its own.)
pub fn input(text: &str, protocol_version: Option<&str>) -> Value {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut body = json!({
        "threadId": format!("thread_{n}"),
        "runId": format!("run_{n}"),
        "messages": [{"id": "u1", "role": "user", "content": text}],
    });
    if let Some(version) = protocol_version {
        body["protocolVersion"] = json!(version);
    }
    body
}

static NEXT: AtomicUsize = AtomicUsize::new(1);

/// Parses an SSE body into its events, asserting on the way what every client relies on: the
/// framing (LF only, `data: ` lines, one-line JSON), that each event is a valid AG-UI event with
/// no `null` anywhere and survives a typed round trip unchanged, and that the sequence passes the
/// AG-UI rules (a fresh `SequenceGuard`, the twin of the client's `verifyEvents`). So no test can
/// pass on an invalid stream.
pub fn sse_events(body: &str) -> Vec<Value> {
    assert!(!body.contains('\r'), "SSE must use LF line endings only");
    assert!(
        body.is_empty() || body.ends_with("\n\n"),
        "the stream must end with a complete frame"
    );
    let events: Vec<Value> = body
        .split("\n\n")
        .filter(|frame| !frame.is_empty() && !frame.starts_with(':'))
        .map(|frame| {
            let json = frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data frame: {frame:?}"));
            assert!(!json.contains('\n'), "one event, one line: {frame:?}");
            let event: Value =
                serde_json::from_str(json).unwrap_or_else(|e| panic!("bad JSON in {json}: {e}"));
            assert!(
                !has_null(&event),
                "optional fields are omitted, never null: {json}"
            );
            event
        })
        .collect();
    let mut guard = agui_protocol::SequenceGuard::new();
    for event in &events {
        let typed: agui_protocol::Event = serde_json::from_value(event.clone())
            .unwrap_or_else(|e| panic!("not an AG-UI event: {event}: {e}"));
        assert_eq!(
            &serde_json::to_value(&typed).unwrap(),
            event,
            "nothing lost or added in a round trip"
        );
        guard
            .check(&typed)
            .unwrap_or_else(|violation| panic!("invalid stream on the wire: {violation}: {event}"));
    }
    events
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

/// The `type` of each event.
pub fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// The concatenated text deltas.
pub fn text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

/// The parsed content of the run's first `TOOL_CALL_RESULT`.
pub fn tool_result(events: &[Value]) -> Value {
    let result = events
        .iter()
        .find(|e| e["type"] == "TOOL_CALL_RESULT")
        .expect("a tool result");
    serde_json::from_str(result["content"].as_str().unwrap()).unwrap()
}

/// Asserts the stream holds exactly one terminal event, last, and returns it.
pub fn terminal(events: &[Value]) -> &Value {
    let terminals = events
        .iter()
        .filter(|e| e["type"] == "RUN_FINISHED" || e["type"] == "RUN_ERROR")
        .count();
    assert_eq!(
        terminals,
        1,
        "exactly one terminal event: {:?}",
        types(events)
    );
    let last = events.last().unwrap();
    assert!(
        last["type"] == "RUN_FINISHED" || last["type"] == "RUN_ERROR",
        "the terminal event is last"
    );
    last
}

/// A provider that yields fixed deltas, once per turn (the same list every turn).
pub struct FixedModel(pub Vec<ModelDelta>);

#[async_trait]
impl ModelProvider for FixedModel {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn stream(
        &self,
        _: ModelRequest,
        _: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        Ok(futures::stream::iter(self.0.clone().into_iter().map(Ok)).boxed())
    }
}

/// A provider that panics when asked.
pub struct PanickingModel;

#[async_trait]
impl ModelProvider for PanickingModel {
    fn name(&self) -> &str {
        "panicking"
    }
    async fn stream(
        &self,
        _: ModelRequest,
        _: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        panic!("a provider bug");
    }
}

/// A provider that yields one delta and then never another.
pub struct HangingModel;

#[async_trait]
impl ModelProvider for HangingModel {
    fn name(&self) -> &str {
        "hanging"
    }
    async fn stream(
        &self,
        _: ModelRequest,
        _: CancellationToken,
    ) -> Result<ModelStream, ModelError> {
        let first = futures::stream::iter([Ok(ModelDelta::Text("thinking…".into()))]);
        Ok(first.chain(futures::stream::pending()).boxed())
    }
}

/// Shortens a config's run limit for timeout tests.
pub fn short_run(config: &mut Config, secs: u64) {
    config.limits.max_run_secs = secs;
}

/// A generous guard against a hung test (never the assertion itself).
pub const HANG_GUARD: Duration = Duration::from_secs(30);

/// Wraps a provider in an `Arc`.
pub fn model(provider: impl ModelProvider) -> Arc<dyn ModelProvider> {
    Arc::new(provider)
}
pub mod error_body;
pub mod process;
pub mod raw;
