//! One run, from request to stream: the pipeline every route that starts a run goes through
//! (`/chat`, `/agents/{id}/chat`, and the CopilotKit runtime's `run`).
//!
//! ```text
//! authenticate  credential (header before any body byte; or the body's), agent and its grants
//!   → admit     server-wide stream permit, the principal's run rate and stream slot (checks only)
//!   → validate  RunAgentInput against the agent and the limits
//!   → commit    the thread claim and the run's start, durably (the one write)
//!   → stream    200 and the run's events; the body owns the permits
//! ```
//!
//! Everything that can refuse has refused before the commit, so a refusal leaves no row, no
//! open run and no half-written audit; once `200 text/event-stream` is sent, failures can only
//! be reported in-stream as `RUN_ERROR` (AG-UI reference §9.1). A caller who sends a header
//! credential is admitted before its body is read, so its own limits also bound how much it can
//! upload at once; a body credential is capped at `limits.pre_auth_body_bytes`.

use std::sync::Arc;
use std::time::Instant;

use agui_agent::{AuditEvent, AuditSink, EventSink, RunParams, run_to_completion};
use agui_auth::{AuthError, CredentialSource, Principal};
use agui_protocol::{Dialect, Encoding, RunAgentInput};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admission::{Admitted, admit};
use crate::agents::{Agent, MissingGrant};
use crate::backends::Connected;
use crate::body::EventBody;
use crate::error::ApiError;
use crate::history::{Ending, LiveRun};
use crate::routes::auth::{self, Caller, HeaderPrincipal};
use crate::state::AppState;
use crate::store::audit_log::ops_for_event;
use crate::store::{AuditKind, AuditRecord, PrincipalKey, ThreadAccess, WriteOp, now_ms};
use crate::upload::{self, Buffered};

/// Frames buffered between a run and its response body. Small: a slow client applies
/// backpressure to its own run instead of growing memory. A frame is one event or a batch of
/// up to [`FLUSH_BYTES`](agui_agent::sink::FLUSH_BYTES) (plus the event that crossed it), so
/// at most ~68 KiB wait here: one of the body's coalesced writes (64 KiB), enough to keep a
/// fast client's socket busy.
const CHANNEL_FRAMES: usize = 16;

/// What happens to a run when its client goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientGone {
    /// The run is cancelled (AG-UI `/chat`: nobody is listening for the rest).
    Cancels,
    /// The run goes on to its end and its history is kept (CopilotKit's runtime protocol: a
    /// client that reloads connects again and follows the run; only a stop ends it early).
    Continues,
}

/// Runs `agent_id` for the request: the whole pipeline above.
pub(crate) async fn start(
    state: &AppState,
    agent_id: &str,
    request: Request,
    client_gone: ClientGone,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let (parts, body) = request.into_parts();
    let caller = Caller::of(state, &parts);

    // The verification and the body read are boxed: their futures are the largest of the
    // pipeline, and inline they would size the whole request's future, which lives on through
    // the group commit of the start (a burst of streams waits there together). Boxed, each is
    // freed when its stage is done.
    let header = Box::pin(auth::verify_header(state, &caller, &parts.headers)).await?;
    require_json(&parts.headers)?;
    let early = match &header {
        Some(found) => Some(authorize(state, agent_id, &found.principal, received).await?),
        None => None,
    };
    let request = Box::pin(RunRequest::read(
        state,
        &caller,
        &parts.headers,
        body,
        header,
    ))
    .await?;
    let encoding = response_encoding(&parts.headers);
    // Nothing past here reads the head. Its header values are slices of the buffer hyper read
    // the request into, so holding them through the group commit would hold that buffer
    // (8 KiB) as well, next to the one hyper reads the next bytes into: in a burst of
    // streams, one more for every start waiting for the commit.
    drop(parts);
    let admission = match early {
        Some(admission) => admission,
        None => authorize(state, agent_id, &request.principal, received).await?,
    };
    let mut run = validate(state, request, admission, encoding)?;
    // By reference: the run is held once, here, while the commit waits (a moved one would be
    // held again in the commit's future).
    commit(state, &mut run).await?;
    Ok(stream(state, run, client_gone))
}

/// Stage 1: the verified caller and its input. The credential has been taken out of
/// `forwardedProps`: nothing downstream (the model, tools, logs) ever sees it.
pub(crate) struct RunRequest {
    pub(crate) principal: Arc<Principal>,
    pub(crate) input: RunAgentInput,
    pub(crate) dialect: Dialect,
}

impl RunRequest {
    /// Reads the body (within [`read_body`]'s limits) and [`RunRequest::parse`]s it.
    pub(crate) async fn read(
        state: &AppState,
        caller: &Caller,
        headers: &HeaderMap,
        body: Body,
        header: Option<HeaderPrincipal>,
    ) -> Result<Self, ApiError> {
        let bytes = read_body(state, body, headers, header.is_some()).await?;
        Self::parse(state, caller, &bytes, header).await
    }

    /// Parses the body and settles who is calling: the header's principal (a body copy of the
    /// credential must be the same token), or the body credential's when there is no header.
    async fn parse(
        state: &AppState,
        caller: &Caller,
        bytes: &[u8],
        header: Option<HeaderPrincipal>,
    ) -> Result<Self, ApiError> {
        let mut input = parse_input(bytes)?;
        let dialect = Dialect::negotiate(input.protocol_version.as_deref())
            .map_err(|_| ApiError::UnsupportedProtocolVersion)?;
        // Taken out whether used or not.
        let body_token = match input.forwarded_props.as_mut() {
            Some(props) => agui_auth::take_body_credential(props)
                .inspect_err(|e| auth::record_failure(state, caller, e, None))?,
            None => None,
        };
        let principal = match (header, body_token) {
            (Some(header), None) => header.principal,
            (Some(header), Some(body_token)) => {
                if body_token != header.token {
                    let error = agui_auth::conflicting_credentials();
                    auth::record_failure(state, caller, &error, Some(&body_token));
                    return Err(error.into());
                }
                header.principal
            }
            (None, Some(body_token)) if state.config.auth.accept_body_token => {
                auth::verify(state, caller, &body_token, CredentialSource::Body).await?
            }
            (None, _) => return Err(auth::missing(state, caller)),
        };
        Ok(Self {
            principal,
            input,
            dialect,
        })
    }
}

/// Stage 2: the caller may run this agent, and holds its place (see [`admit`]).
struct Admission {
    agent: Arc<Agent>,
    connected: Connected,
    admitted: Admitted,
}

/// The agent exists and `principal` may run it (403 and an audit record when not), and the
/// caller is admitted. Nothing runs unrecorded: without the store, no run.
async fn authorize(
    state: &AppState,
    agent_id: &str,
    principal: &Arc<Principal>,
    received: Instant,
) -> Result<Admission, ApiError> {
    let connected = state
        .backends
        .connected()
        .ok_or(ApiError::StoreUnavailable)?
        .clone();
    let agent = state
        .agents
        .get(agent_id)
        .cloned()
        .ok_or(ApiError::AgentNotFound)?;
    if let Some(missing) = agent.missing_grant(principal) {
        tracing::info!(agent = %agent.id, sub = %principal.subject, %missing, "agent access denied");
        connected.log.record(AuditRecord::denial(
            &PrincipalKey::of(principal),
            "agent_access",
            Some(&principal.token_fingerprint),
            json!({ "agent": agent.id, "missing": missing.to_string() }),
        ));
        state.metrics.denied("agent_access");
        return Err(match missing {
            // A scope the token could be issued with: RFC 6750's insufficient_scope.
            MissingGrant::Scope(scope) => AuthError::InsufficientScope { scope }.into(),
            // A role is not a scope the client could ask for: plain access_denied.
            MissingGrant::Role(_) => AuthError::AccessDenied.into(),
        });
    }
    let admitted = admit(
        &state.stream_cap,
        &state.metrics,
        &connected,
        principal,
        received,
    )
    .await?;
    Ok(Admission {
        agent,
        connected,
        admitted,
    })
}

/// Stage 3: a run that may start.
struct Authorized {
    principal: Arc<Principal>,
    input: RunAgentInput,
    dialect: Dialect,
    encoding: Encoding,
    admission: Admission,
    /// The commit created the thread (its first run cannot put it over the history cap).
    new_thread: bool,
}

/// The input against the agent and the limits: no frontend tool may shadow a backend tool, and
/// the history is bounded.
fn validate(
    state: &AppState,
    request: RunRequest,
    admission: Admission,
    encoding: Encoding,
) -> Result<Authorized, ApiError> {
    let RunRequest {
        principal,
        input,
        dialect,
    } = request;
    if let Some(index) = input
        .tools
        .iter()
        .position(|t| admission.agent.tools.contains(&t.name))
    {
        return Err(ApiError::ToolNameConflict {
            field: format!("/tools/{index}/name"),
        });
    }
    let max_messages = state.config.limits.max_messages;
    if input.messages.len() > max_messages {
        return Err(ApiError::InvalidInput {
            field: "/messages".into(),
            message: format!("at most {max_messages} messages are accepted in one run"),
        });
    }
    Ok(Authorized {
        principal,
        input,
        dialect,
        encoding,
        admission,
        new_thread: false,
    })
}

/// Stage 4: the thread claim and the run's start, committed in the audit log's group commit
/// before the 200: the first principal to run on a thread id owns it, and the start survives a
/// crash (found and marked `abandoned` at the next start-up). Anyone else gets 404 (the
/// thread's existence is not revealed) unless they hold the admin role; both are audited. The
/// commit is also the audit log's health probe: once it succeeds again, runs are served again.
async fn commit(state: &AppState, run: &mut Authorized) -> Result<(), ApiError> {
    let log = &run.admission.connected.log;
    let (principal, agent) = (&run.principal, &run.admission.agent.id);
    let (thread_id, run_id) = (run.input.thread_id.as_str(), run.input.run_id.as_str());
    let key = PrincipalKey::of(principal);
    let title = first_user_text(&run.input).and_then(crate::store::title_of);
    let access = match log
        .start_run(principal, thread_id, run_id, agent, title)
        .await
    {
        Ok(access) => access,
        Err(error) if state.config.audit.fail_closed => {
            tracing::error!(target: "agui::audit", %error, "run start not recorded; refusing the run");
            return Err(ApiError::AuditUnavailable);
        }
        Err(error) => {
            tracing::error!(target: "agui::audit", %error, "run start not recorded; serving anyway (audit.fail_closed = false)");
            log.store()
                .claim_thread(&key, thread_id, now_ms())
                .await
                .map_err(|error| {
                    tracing::error!(target: "agui::store", %error, "thread ownership check failed");
                    ApiError::StoreUnavailable
                })?
        }
    };
    let owner = match access {
        ThreadAccess::Owner { created } => {
            run.new_thread = created;
            return Ok(());
        }
        ThreadAccess::NotOwner { owner } => owner,
    };
    let admin_role = state.config.store.thread_admin_role.as_ref();
    let owner_fields = json!({ "owner_issuer": owner.issuer, "owner_subject": owner.subject });
    if admin_role.is_some_and(|role| principal.has_role(role)) {
        tracing::warn!(sub = %principal.subject, %thread_id, "admin runs on another principal's thread");
        let mut detail = owner_fields;
        detail["role"] = json!(admin_role);
        detail["token_fingerprint"] = json!(principal.token_fingerprint);
        let access = AuditRecord::now(AuditKind::AdminAccess)
            .principal(&key)
            .thread(thread_id)
            .detail(detail);
        log.record_durable(vec![WriteOp::Audit(access)])
            .await
            .map_err(|_| ApiError::AuditUnavailable)?;
        log.run_started(principal, thread_id, run_id, agent)
            .await
            .map_err(|_| ApiError::AuditUnavailable)?;
        return Ok(());
    }
    tracing::info!(sub = %principal.subject, %thread_id, "run on another principal's thread refused");
    state.metrics.denied("thread_ownership");
    log.record(
        AuditRecord::denial(
            &key,
            "thread_ownership",
            Some(&principal.token_fingerprint),
            owner_fields,
        )
        .thread(thread_id),
    );
    Err(ApiError::ThreadNotFound)
}

/// The text of the input's first user message: the thread's title if this run creates it.
fn first_user_text(input: &RunAgentInput) -> Option<&str> {
    input.messages.iter().find_map(|message| match message {
        agui_protocol::Message::User(user) => match &user.content {
            agui_protocol::UserContent::Text(text) => Some(text.as_str()),
            agui_protocol::UserContent::Parts(parts) => parts.iter().find_map(|part| match part {
                agui_protocol::ContentPart::Text(text) => Some(text.text.as_str()),
                _ => None,
            }),
        },
        _ => None,
    })
}

/// Stage 5: spawn the run and answer with its event stream.
fn stream(state: &AppState, run: Authorized, client_gone: ClientGone) -> Response {
    let Authorized {
        principal,
        input,
        dialect,
        encoding,
        admission,
        new_thread,
    } = run;
    let Admission {
        agent,
        connected,
        mut admitted,
    } = admission;
    let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
    let body_gone = CancellationToken::new();
    let body = EventBody::new(
        rx,
        keepalive(state, encoding),
        body_gone.clone().drop_guard(),
        admitted.first_event.take(),
    );

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
    let mut sink = EventSink::new(tx, dialect, encoding);
    let mut stop = CancellationToken::new();
    let live = match state.history.start(&input, now_ms()) {
        Some((run, tap)) => {
            sink = sink.with_tap(Box::new(tap));
            stop = run.stop.clone();
            Some(run)
        }
        None => None,
    };
    let run_cancelled_by_client = match client_gone {
        ClientGone::Cancels => body_gone,
        ClientGone::Continues => {
            sink = sink.outlive_client();
            CancellationToken::new()
        }
    };
    let params = RunParams {
        input,
        principal,
        agent: agent.id.clone(),
        model: agent.model.clone(),
        tools: agent.tools.clone(),
        audit: Arc::new(ToolMetricsAudit {
            state: state.clone(),
            log: connected.log.clone(),
            history: live.clone().map(|live| HistoryEnd {
                live,
                trim: !new_thread,
            }),
        }),
        settings: state.run_settings(),
        client_gone: run_cancelled_by_client,
        shutdown: state.shutdown.clone(),
        stop,
    };
    let task_state = state.clone();
    let run_id = params.input.run_id.clone();
    // Boxed: a future that moves its captures into a future it awaits keeps room for both, so
    // an unboxed run would hold `params` and `sink` twice for as long as it streams.
    let run = Box::pin(run_to_completion(params, sink));
    state.runs.spawn(async move {
        // The run's place under the limits is held for as long as it runs, and no longer: its
        // history's end is queued (by the audit sink below), not waited for.
        let _admitted = admitted;
        let (outcome, events) = run.await;
        tracing::info!(%run_id, outcome = outcome.label(), events, "run ended");
        task_state.metrics.run_finished(outcome.label(), events);
        if let Some(live) = live.filter(|live| !live.has_end()) {
            // The run loop records every run's end, which ends its history (in the audit sink
            // below) before the stream closes; this is only a net under that rule.
            tracing::error!(target: "agui::history", %run_id, "a run ended without its end recorded");
            let ending = match outcome {
                agui_agent::RunOutcome::Error(code) => Ending::Error(code.as_str()),
                _ => Ending::Cancelled,
            };
            task_state
                .history
                .finish(&live, &connected.log, ending, Vec::new(), !new_thread);
        }
    });
    event_stream_response(body, encoding)
}

/// The encoding the request's `Accept` fields ask for: all of them, as one comma-joined list
/// (RFC 9110 §5.3), not only the first. Every streaming route chooses through this.
pub(crate) fn response_encoding(headers: &HeaderMap) -> Encoding {
    agui_protocol::accept::negotiate(
        headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok()),
    )
}

/// Keepalive comments for SSE (proxies cut idle streams); none for protobuf, whose clients
/// drop empty frames.
pub(crate) fn keepalive(state: &AppState, encoding: Encoding) -> Option<std::time::Duration> {
    match encoding {
        Encoding::Sse => Some(std::time::Duration::from_secs(state.config.keepalive_secs)),
        Encoding::Proto => None,
    }
}

/// `200` with an event stream in `encoding`.
pub(crate) fn event_stream_response(body: EventBody, encoding: Encoding) -> Response {
    let content_type = match encoding {
        Encoding::Sse => HeaderValue::from_static("text/event-stream"),
        Encoding::Proto => HeaderValue::from_static(agui_protocol::accept::PROTO_MEDIA_TYPE),
    };
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The run loop's audit sink: counts backend tool calls by tool and decision, then hands every
/// event to the audit log. With history, the run's end ends its history instead: its `runs`
/// row and audit record are queued in one transaction with the run's last chunk (and the
/// thread's trim), when the run loop records it, just before the run's stream closes. Nothing
/// waits for that write.
struct ToolMetricsAudit {
    state: AppState,
    log: crate::store::AuditLog,
    history: Option<HistoryEnd>,
}

/// The run's history, to end with the run.
struct HistoryEnd {
    live: Arc<LiveRun>,
    /// Trim the thread to its cap (a thread this run created has one run: nothing to trim).
    trim: bool,
}

impl AuditSink for ToolMetricsAudit {
    fn record(&self, event: AuditEvent) {
        if let (AuditEvent::RunEnded { code, .. }, Some(end)) = (&event, &self.history) {
            let ending = match *code {
                Some(code) => Ending::Error(code),
                None => Ending::Cancelled,
            };
            let ops = ops_for_event(event, now_ms());
            self.state
                .history
                .finish(&end.live, &self.log, ending, ops, end.trim);
            return;
        }
        if let AuditEvent::ToolCall { tool, decision, .. } = &event {
            // Only configured tool names become labels: a model can name anything.
            let known = self.state.agents.values().any(|a| a.tools.contains(tool));
            let label = if known {
                tool.clone()
            } else {
                "other".to_owned()
            };
            self.state.metrics.tool_call(label, decision);
        }
        AuditSink::record(&self.log, event);
    }
}

pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

/// Reads a request body: up to `limits.max_body_bytes` from an authenticated caller, up to
/// `limits.pre_auth_body_bytes` from one whose credential travels inside the body; within the
/// body deadline and rate, its bytes reserved in the server-wide budgets as they arrive (see
/// [`crate::upload`]). The reservation lasts as long as the returned body.
pub(crate) async fn read_body(
    state: &AppState,
    body: Body,
    headers: &HeaderMap,
    authenticated: bool,
) -> Result<Buffered, ApiError> {
    let limits = &state.config.limits;
    let limit = if authenticated {
        limits.max_body_bytes
    } else {
        limits.pre_auth_body_bytes.min(limits.max_body_bytes)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let caller = if authenticated {
        upload::Caller::Authenticated
    } else {
        upload::Caller::NotYetAuthenticated
    };
    upload::read(
        &state.body_budgets,
        body,
        upload::Rules::of(limits, limit),
        caller,
    )
    .await
}

fn parse_input(bytes: &[u8]) -> Result<RunAgentInput, ApiError> {
    agui_protocol::parse_run_input(bytes).map_err(|error| match error.kind {
        agui_protocol::InputErrorKind::Syntax => ApiError::InvalidJson,
        // No deeper pointer means the body as a whole is wrong (e.g. not an object): the root
        // pointer `""` says so.
        agui_protocol::InputErrorKind::Shape => ApiError::InvalidInput {
            field: error.pointer.unwrap_or_default(),
            message: error.message,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agui_auth::testing::TestIdp;

    /// The handler's future is allocated for each request until its response head, through the
    /// group commit of its start: with a thousand streams starting at once, a thousand of them
    /// are alive together (issue #16). Prints the stages' sizes; guards today's figure and that
    /// the largest stages stay out of it.
    #[tokio::test]
    async fn a_run_requests_future_stays_small() {
        let idp = TestIdp::start().await;
        let config = crate::config::Config {
            auth: agui_auth::AuthConfig::from_env_single_issuer(
                &idp.issuer_url(),
                "agui-tests",
                "",
            )
            .unwrap(),
            ..crate::config::Config::default()
        };
        let state = AppState::builder(config).build().await.unwrap();
        let request = || Request::post("/chat").body(Body::empty()).unwrap();
        let (parts, _) = request().into_parts();
        let caller = Caller::of(&state, &parts);
        let principal = Arc::new(agui_auth::testing::principal(
            "https://idp.example",
            "sub-1",
        ));
        let sizes = [
            (
                "verify_header",
                std::mem::size_of_val(&auth::verify_header(&state, &caller, &parts.headers)),
            ),
            (
                "authorize",
                std::mem::size_of_val(&authorize(&state, "default", &principal, Instant::now())),
            ),
            (
                "RunRequest::read",
                std::mem::size_of_val(&RunRequest::read(
                    &state,
                    &caller,
                    &parts.headers,
                    Body::empty(),
                    None,
                )),
            ),
            (
                "start",
                std::mem::size_of_val(&start(&state, "default", request(), ClientGone::Cancels)),
            ),
        ];
        println!("{sizes:?}");
        let [(_, verify), _, (_, read), (_, start)] = sizes;
        // The verification and the body read are boxed, not part of the request's own future.
        assert!(
            start < verify.max(read),
            "a stage is inline again: {sizes:?}"
        );
        // Today's debug-build figure: 2,280 bytes (4,576 with the stages inline and the run
        // moved into the commit).
        assert!(start <= 2400, "the request's future grew: {sizes:?}");
        drop(idp);
    }
}
