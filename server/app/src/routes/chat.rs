//! `POST /chat` and `POST /agents/{id}/chat`: authenticate, validate, then stream one run.
//!
//! Everything that can be refused is refused here, before the response head, with a JSON error
//! (and, for auth, an RFC 6750 challenge): once `200 text/event-stream` is sent, failures can only
//! be reported in-stream as `RUN_ERROR` (AG-UI reference §9.1).
//!
//! The order follows DESIGN flow steps 2–6: header credential (authenticated before the body is
//! read), content type, body (capped before authentication when the token travels inside it),
//! JSON, `RunAgentInput`, dialect, body credential (always removed from `forwardedProps`), then
//! server limits, then the stream.

use std::sync::Arc;

use agui_agent::{EventSink, RunParams, run_to_completion};
use agui_auth::{AuthError, CredentialSource, Principal};
use agui_protocol::{Dialect, Encoding, RunAgentInput};
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::body::{EventBody, StreamSlot};
use crate::error::ApiError;
use crate::state::AppState;

/// Frames buffered between a run and its response body. Small: a slow client applies
/// backpressure to its own run instead of growing memory.
const CHANNEL_FRAMES: usize = 64;

/// `POST /chat`: the default agent.
pub async fn chat(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    start_run(state, "default", request).await
}

/// `POST /agents/{id}/chat`: a named agent (`[agents.<id>]`).
pub async fn agent_chat(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    start_run(state, &agent, request).await
}

async fn start_run(state: AppState, agent: &str, request: Request) -> Result<Response, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let (parts, body) = request.into_parts();

    // Step 2: a header credential is verified before a single body byte is read.
    let header_credential = agui_auth::credential_from_headers(&parts.headers)
        .inspect_err(|e| record_auth_failure(&state, e))?;
    let header_principal = match &header_credential {
        Some((token, source)) => Some(authenticate(&state, token, *source).await?),
        None => None,
    };

    require_json(&parts.headers)?;
    let limit = if header_principal.is_some() {
        state.config.limits.max_body_bytes
    } else {
        state
            .config
            .limits
            .pre_auth_body_bytes
            .min(state.config.limits.max_body_bytes)
    };
    let bytes = read_body(body, &parts.headers, limit).await?;
    let mut input = parse_input(&bytes)?;
    drop(bytes);

    let dialect = Dialect::negotiate(input.protocol_version.as_deref())
        .map_err(|_| ApiError::UnsupportedProtocolVersion)?;

    // The body credential is always taken out of forwardedProps, used or not: nothing downstream
    // (the model, tools, logs) may see it.
    let body_token = match input.forwarded_props.as_mut() {
        Some(props) => agui_auth::take_body_credential(props)
            .inspect_err(|e| record_auth_failure(&state, e))?,
        None => None,
    };
    let principal = match (header_principal, body_token) {
        (Some(principal), None) => principal,
        (Some(principal), Some(body_token)) => {
            let (header_token, _) = header_credential
                .as_ref()
                .expect("a header principal has a header credential");
            if body_token != *header_token {
                let error = agui_auth::conflicting_credentials();
                record_auth_failure(&state, &error);
                return Err(error.into());
            }
            principal
        }
        (None, Some(body_token)) if state.config.auth.accept_body_token => {
            authenticate(&state, &body_token, CredentialSource::Body).await?
        }
        (None, _) => {
            let error = AuthError::MissingCredentials;
            record_auth_failure(&state, &error);
            return Err(error.into());
        }
    };

    // Step 5: policy and limits.
    let Some(agent) = state.agents.get(agent).cloned() else {
        return Err(ApiError::AgentNotFound);
    };
    if let Some(missing) = agent.missing_grant(&principal) {
        tracing::info!(agent = %agent.id, sub = %principal.subject, missing = %missing, "agent access denied");
        let error = AuthError::InsufficientScope { scope: missing };
        record_auth_failure(&state, &error);
        return Err(error.into());
    }
    if let Some((index, _)) = input
        .tools
        .iter()
        .enumerate()
        .find(|(_, t)| agent.tools.contains(&t.name))
    {
        return Err(ApiError::ToolNameConflict {
            field: format!("/tools/{index}/name"),
        });
    }
    if input.messages.len() > state.config.limits.max_messages {
        return Err(ApiError::InvalidInput {
            field: Some("/messages".into()),
            message: format!(
                "at most {} messages are accepted in one run",
                state.config.limits.max_messages
            ),
        });
    }
    let encoding = agui_protocol::accept::negotiate(
        parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    open_stream(state, agent, input, principal, dialect, encoding)
}

/// Step 6: spawn the run and answer with its event stream.
fn open_stream(
    state: AppState,
    agent: crate::agents::Agent,
    input: RunAgentInput,
    principal: Arc<Principal>,
    dialect: Dialect,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    if state.metrics.stream_opened()
        > i64::try_from(state.config.limits.max_open_streams).unwrap_or(i64::MAX)
    {
        state.metrics.stream_closed();
        return Err(ApiError::ServerBusy);
    }
    let slot = StreamSlot::new(Arc::new(SlotOf(state.clone())));
    let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
    let client_gone = CancellationToken::new();
    let keepalive = match encoding {
        Encoding::Sse => Some(std::time::Duration::from_secs(state.config.keepalive_secs)),
        Encoding::Proto => None,
    };
    let body = EventBody::new(rx, keepalive, client_gone.clone().drop_guard(), slot);

    tracing::info!(
        thread_id = %input.thread_id,
        run_id = %input.run_id,
        sub = %principal.subject,
        token_fp = %principal.token_fingerprint,
        credential_source = principal.credential_source.as_str(),
        agent = %agent.id,
        ?dialect,
        "run started"
    );
    state.audit.record(agui_agent::AuditEvent::RunStarted {
        issuer: principal.issuer.clone(),
        subject: principal.subject.clone(),
        thread_id: input.thread_id.to_string(),
        run_id: input.run_id.to_string(),
        agent: agent.id.clone(),
        credential_source: principal.credential_source.as_str(),
    });
    let params = RunParams {
        input,
        principal,
        agent: agent.id.clone(),
        model: agent.model.clone(),
        tools: agent.tools.clone(),
        audit: state.audit.clone(),
        settings: state.run_settings(),
        client_gone,
        shutdown: state.shutdown.clone(),
    };
    let sink = EventSink::new(tx, dialect, encoding);
    let task_state = state.clone();
    state.runs.spawn(async move {
        let run_id = params.input.run_id.clone();
        let (outcome, events) = run_to_completion(params, sink).await;
        tracing::info!(%run_id, outcome = outcome.label(), events, "run ended");
        task_state.metrics.run_finished(outcome.label(), events);
    });

    let content_type = match encoding {
        Encoding::Sse => HeaderValue::from_static("text/event-stream"),
        Encoding::Proto => HeaderValue::from_static(agui_protocol::accept::PROTO_MEDIA_TYPE),
    };
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// Releases the open-stream count when the body is dropped.
struct SlotOf(AppState);

impl crate::body::SlotRelease for SlotOf {
    fn release(&self) {
        self.0.metrics.stream_closed();
    }
}

/// Verifies a token and counts the outcome.
pub(crate) async fn authenticate(
    state: &AppState,
    token: &str,
    source: CredentialSource,
) -> Result<Arc<Principal>, ApiError> {
    match state.auth.authenticate(token, source).await {
        Ok(principal) => {
            state.metrics.authenticated(source.as_str());
            Ok(Arc::new(principal))
        }
        Err(error) => {
            record_auth_failure(state, &error);
            Err(error.into())
        }
    }
}

/// Logs and counts a refused credential: the reason goes here, never to the client.
pub(crate) fn record_auth_failure(state: &AppState, error: &AuthError) {
    state.metrics.auth_failure(error.reason());
    tracing::info!(
        reason = error.reason(),
        status = error.status().as_u16(),
        "credential refused"
    );
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| {
            let essence = essence.trim();
            essence.eq_ignore_ascii_case("application/json")
                || (essence.len() > 5
                    && essence[..essence.len() - 5].contains('/')
                    && essence.to_ascii_lowercase().ends_with("+json"))
        })
        .unwrap_or(false);
    if is_json {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over_limit =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if over_limit {
            ApiError::PayloadTooLarge
        } else {
            // A broken or aborted upload: nobody will read the answer, but say what happened.
            tracing::debug!(%error, "request body not read");
            ApiError::BodyUnreadable
        }
    })
}

fn parse_input(bytes: &[u8]) -> Result<RunAgentInput, ApiError> {
    agui_protocol::parse_run_input(bytes).map_err(|error| match error.kind {
        agui_protocol::InputErrorKind::Syntax => ApiError::InvalidJson,
        agui_protocol::InputErrorKind::Shape => ApiError::InvalidInput {
            field: error.pointer,
            message: error.message,
        },
    })
}
