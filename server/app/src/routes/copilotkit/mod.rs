//! CopilotKit's runtime protocol, served natively under `runtime.base_path` (`/copilotkit`), so a
//! React app's `runtimeUrl` points straight at agui-server: no Node process in between.
//!
//! What the 1.74 client (`@copilotkit/core` `ProxiedCopilotRuntimeAgent`) calls, with the shapes
//! and status codes of `@copilotkit/runtime` 1.75's handlers:
//!
//! | route | what |
//! |---|---|
//! | `GET {base}/info` | the agents this caller may run, and the capability flags the client reads |
//! | `POST {base}/agent/{id}/run` | `/agents/{id}/chat`'s pipeline; the run outlives its client |
//! | `POST {base}/agent/{id}/connect` | the caller's thread replayed, then its live run followed |
//! | `POST {base}/agent/{id}/stop/{threadId}` | stops the thread's run, on whichever replica |
//! | `GET {base}/threads`, `…/threads/{id}/messages\|events\|state` | the caller's threads |
//! | `POST {base}` | the single-route transport: `{method, params, body}` for all of the above |
//!
//! Anything else under the base is 404 with our JSON error. Authentication is the same as
//! `/chat`'s (a header, or `forwardedProps.authorization` in run and connect bodies).
//!
//! # Layout
//!
//! - this file: the router, `info`, the single-route envelope.
//! - `connect`: `connect` and `stop`.
//! - `threads`: the thread endpoints.

mod connect;
mod threads;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use crate::error::ApiError;
use crate::routes::auth::{self, Caller};
use crate::routes::run::{self, ClientGone};
use crate::state::AppState;

/// Longest `params` value of a single-route envelope (an agent or thread id).
const MAX_PARAM_BYTES: usize = 256;

/// The runtime's routes under `base`.
pub(crate) fn router(base: &str) -> Router<AppState> {
    let inner = Router::new()
        .route("/info", get(info))
        .route("/agent/{agent}/run", post(run))
        .route("/agent/{agent}/connect", post(connect::connect))
        .route("/agent/{agent}/stop/{thread}", post(connect::stop))
        .route("/threads", get(threads::list))
        .route("/threads/{thread}/messages", get(threads::messages))
        .route("/threads/{thread}/events", get(threads::events))
        .route("/threads/{thread}/state", get(threads::state))
        .fallback(|| async { ApiError::NotFound });
    Router::new()
        .route(base, post(single_route))
        .nest(base, inner)
}

/// `GET {base}/info`: the runtime info CopilotKit's client reads. It is fetched before any
/// token exists in the app (`properties` travel only in run bodies), so without credentials it
/// lists the agents that need no role or scope; with a valid credential, those the caller may
/// run. An invalid credential is refused (401), never silently treated as none.
async fn info(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    let (parts, _) = request.into_parts();
    let caller = Caller::of(&state, &parts);
    let principal = auth::verify_header(&state, &caller, &parts.headers)
        .await?
        .map(|found| found.principal);
    let mut agents = Map::new();
    for (id, agent) in &state.agents {
        let allowed = match &principal {
            Some(principal) => agent.missing_grant(principal).is_none(),
            None => agent.required_roles.is_empty() && agent.required_scopes.is_empty(),
        };
        if allowed {
            agents.insert(
                id.clone(),
                json!({ "name": id, "description": agent.description, "className": "agui-server" }),
            );
        }
    }
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "agents": agents,
        "audioFileTranscriptionEnabled": false,
        "mode": "sse",
        "threadEndpoints": {
            "list": true,
            "inspect": true,
            "mutations": false,
            "realtimeMetadata": false,
        },
        // Suggestions are the app's (static) or the client's own runs: we serve no /suggest.
        "suggestions": false,
        "a2uiEnabled": false,
        "openGenerativeUIEnabled": false,
        "telemetryDisabled": true,
    }))
    .into_response())
}

/// `POST {base}/agent/{id}/run`: one run, through `/chat`'s pipeline. Unlike `/chat`, the run
/// goes on when the browser leaves (a reload connects again and follows it to its end); a stop
/// ends it.
async fn run(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    run::start(&state, &agent, request, ClientGone::Continues).await
}

/// The single-route envelope (`@copilotkit/runtime` `single-route-helpers`).
#[derive(Debug, Deserialize)]
struct Envelope {
    method: String,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
}

/// `POST {base}` with `{method, params, body}`: the same handlers as the routes, one method
/// each. The envelope is read under the same limits as a run body (a header credential lifts
/// the pre-authentication cap once it is verified).
async fn single_route(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let caller = Caller::of(&state, &parts);
    let header = auth::verify_header(&state, &caller, &parts.headers).await?;
    run::require_json(&parts.headers)?;
    let bytes = run::read_body(&state, body, &parts.headers, header.is_some()).await?;
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|_| ApiError::InvalidInput {
            field: String::new(),
            message: "A single-route request is {\"method\", \"params\", \"body\"}.".into(),
        })?;
    let param = |name: &'static str| -> Result<String, ApiError> {
        envelope
            .params
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.trim().is_empty() && v.len() <= MAX_PARAM_BYTES)
            .map(str::to_owned)
            .ok_or_else(|| ApiError::InvalidInput {
                field: format!("/params/{name}"),
                message: format!(
                    "`params.{name}` must be a non-empty string of at most {MAX_PARAM_BYTES} bytes."
                ),
            })
    };
    let base = state.config.runtime.base_path.clone();
    let (method, path, inner) = match envelope.method.as_str() {
        "info" => (Method::GET, format!("{base}/info"), None),
        "agent/run" | "agent/connect" => {
            let agent = param("agentId")?;
            let what = envelope.method.trim_start_matches("agent/");
            let body = envelope.body.ok_or_else(|| ApiError::InvalidInput {
                field: "/body".into(),
                message: "This method needs a RunAgentInput `body`.".into(),
            })?;
            (
                Method::POST,
                format!("{base}/agent/{}/{what}", encode(&agent)),
                Some(body),
            )
        }
        "agent/stop" => {
            let (agent, thread) = (param("agentId")?, param("threadId")?);
            let body = envelope.body.unwrap_or_else(|| json!({}));
            (
                Method::POST,
                format!("{base}/agent/{}/stop/{}", encode(&agent), encode(&thread)),
                Some(body),
            )
        }
        _ => return Err(ApiError::NotFound),
    };
    forward(&state, parts, method, &path, inner).await
}

/// Runs the request the envelope stands for through the router (same handlers, same checks).
async fn forward(
    state: &AppState,
    parts: axum::http::request::Parts,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<Response, ApiError> {
    let uri: Uri = path.parse().map_err(|_| ApiError::NotFound)?;
    let mut headers: HeaderMap = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    let body = match body {
        Some(body) => Body::from(body.to_string()),
        None => Body::empty(),
    };
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .body(body)
        .map_err(|_| ApiError::NotFound)?;
    *request.headers_mut() = headers;
    // The connection's peer, for the caller's address.
    if let Some(peer) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        request.extensions_mut().insert(*peer);
    }
    let router = router(&state.config.runtime.base_path).with_state(state.clone());
    Ok(router.oneshot(request).await.into_response())
}

/// Percent-encodes an id for one path segment (the router decodes it again).
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
