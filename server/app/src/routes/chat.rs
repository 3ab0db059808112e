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

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use agui_agent::{AuditSink, EventSink, RunParams, run_to_completion};
use agui_auth::{AuthError, CredentialSource, Principal};
use agui_protocol::{Dialect, Encoding, RunAgentInput};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::accountability::Ready;
use crate::body::{EventBody, StreamSlot};
use crate::error::ApiError;
use crate::limits::{LimitError, StreamPermit};
use crate::state::AppState;
use crate::store::{AuditKind, AuditRecord, PrincipalKey, ThreadAccess, now_ms};

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
    let received = std::time::Instant::now();
    let (parts, body) = request.into_parts();
    let caller = Caller::of(&state, &parts);

    // Step 2: a header credential is verified before a single body byte is read.
    let header_credential = agui_auth::credential_from_headers(&parts.headers)
        .inspect_err(|e| record_auth_failure(&state, &caller, e, None))?;
    let header_principal = match &header_credential {
        Some((token, source)) => Some(authenticate(&state, &caller, token, *source).await?),
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
            .inspect_err(|e| record_auth_failure(&state, &caller, e, None))?,
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
                record_auth_failure(&state, &caller, &error, Some(&body_token));
                return Err(error.into());
            }
            principal
        }
        (None, Some(body_token)) if state.config.auth.accept_body_token => {
            authenticate(&state, &caller, &body_token, CredentialSource::Body).await?
        }
        (None, _) => {
            let error = AuthError::MissingCredentials;
            record_auth_failure(&state, &caller, &error, None);
            return Err(error.into());
        }
    };

    // Step 5: policy and limits. Nothing runs unrecorded: without the store, no run.
    let ready = state
        .accountability
        .ready()
        .ok_or(ApiError::StoreUnavailable)?
        .clone();
    let key = PrincipalKey::of(&principal);
    let Some(agent) = state.agents.get(agent).cloned() else {
        return Err(ApiError::AgentNotFound);
    };
    if let Some(missing) = agent.missing_grant(&principal) {
        tracing::info!(agent = %agent.id, sub = %principal.subject, missing = %missing, "agent access denied");
        ready.log.record(
            AuditRecord::now(AuditKind::AccessDenied)
                .principal(&key)
                .thread(input.thread_id.to_string())
                .detail(serde_json::json!({
                    "reason": "agent_access",
                    "agent": agent.id,
                    "missing": missing,
                    "token_fingerprint": principal.token_fingerprint,
                })),
        );
        state.metrics.denied("agent_access");
        return Err(AuthError::InsufficientScope { scope: missing }.into());
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
            field: "/messages".into(),
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
    let permit = acquire_permit(&state, &ready, &principal).await?;
    claim_and_start(&state, &ready, &principal, &key, &input, &agent.id).await?;
    let inner: Arc<dyn AuditSink> = match &state.audit_override {
        Some(sink) => sink.clone(),
        None => Arc::new(ready.log.clone()),
    };
    let audit = Arc::new(CountingSink {
        state: state.clone(),
        inner,
    });
    open_stream(
        state, agent, input, principal, dialect, encoding, audit, permit, received,
    )
}

/// The principal's run-rate token and concurrent-stream slot (429 when over, 503 when the
/// limiter cannot be asked).
async fn acquire_permit(
    state: &AppState,
    ready: &Ready,
    principal: &Principal,
) -> Result<StreamPermit, ApiError> {
    match ready.limiter.acquire(principal).await {
        Ok(permit) => Ok(permit),
        Err(LimitError::Exceeded(exceeded)) => {
            tracing::info!(sub = %principal.subject, limit = exceeded.kind.code(), "run refused by a limit");
            state.metrics.limited(exceeded.kind.code());
            ready.log.record(
                AuditRecord::now(AuditKind::AccessDenied)
                    .principal(&PrincipalKey::of(principal))
                    .detail(serde_json::json!({
                        "reason": exceeded.kind.code(),
                        "retry_after_secs": exceeded.retry_after_secs,
                        "token_fingerprint": principal.token_fingerprint,
                    })),
            );
            Err(ApiError::Limited(exceeded))
        }
        Err(LimitError::Unavailable(error)) => {
            tracing::error!(target: "agui::limits", %error, "limiter unavailable; refusing the run");
            Err(ApiError::LimitsUnavailable)
        }
    }
}

/// Thread ownership and the run's start, in the store's group commit: the first principal to
/// run on a thread id owns it, and the start is committed before the 200 (after a crash it is
/// found and marked `abandoned`, never lost). Anyone else gets 404 (the thread's existence is
/// not revealed) unless they hold the admin role; both are audited. The commit is also the
/// audit log's health probe: once it succeeds again, runs are served again.
async fn claim_and_start(
    state: &AppState,
    ready: &Ready,
    principal: &Principal,
    key: &PrincipalKey,
    input: &RunAgentInput,
    agent: &str,
) -> Result<(), ApiError> {
    let (thread_id, run_id) = (input.thread_id.as_str(), input.run_id.as_str());
    let access = match ready
        .log
        .start_run(principal, thread_id, run_id, agent)
        .await
    {
        Ok(access) => access,
        Err(error) if state.config.audit.fail_closed => {
            tracing::error!(target: "agui::audit", %error, "run start not recorded; refusing the run");
            return Err(ApiError::AuditUnavailable);
        }
        Err(error) => {
            tracing::error!(target: "agui::audit", %error, "run start not recorded; serving anyway (audit.fail_closed = false)");
            ready
                .store()
                .claim_thread(key, thread_id, now_ms())
                .await
                .map_err(|error| {
                    tracing::error!(target: "agui::store", %error, "thread ownership check failed");
                    ApiError::StoreUnavailable
                })?
        }
    };
    let ThreadAccess::NotOwner { owner } = access else {
        return Ok(());
    };
    let admin = state
        .config
        .store
        .thread_admin_role
        .as_ref()
        .is_some_and(|role| principal.roles.iter().any(|r| r == role));
    if admin {
        tracing::warn!(sub = %principal.subject, %thread_id, "admin runs on another principal's thread");
        let access = AuditRecord::now(AuditKind::AdminAccess)
            .principal(key)
            .thread(thread_id)
            .detail(serde_json::json!({
                "owner_issuer": owner.issuer,
                "owner_subject": owner.subject,
                "role": state.config.store.thread_admin_role,
                "token_fingerprint": principal.token_fingerprint,
            }));
        ready
            .log
            .record_durable(vec![crate::store::WriteOp::Audit(access)])
            .await
            .map_err(|_| ApiError::AuditUnavailable)?;
        ready
            .log
            .run_started(principal, thread_id, run_id, agent)
            .await
            .map_err(|_| ApiError::AuditUnavailable)?;
        return Ok(());
    }
    tracing::info!(sub = %principal.subject, %thread_id, "run on another principal's thread refused");
    state.metrics.denied("thread_ownership");
    ready.log.record(
        AuditRecord::now(AuditKind::AccessDenied)
            .principal(key)
            .thread(thread_id)
            .detail(serde_json::json!({
                "reason": "thread_ownership",
                "owner_issuer": owner.issuer,
                "owner_subject": owner.subject,
                "token_fingerprint": principal.token_fingerprint,
            })),
    );
    Err(ApiError::ThreadNotFound)
}

/// Step 6: spawn the run and answer with its event stream.
#[allow(clippy::too_many_arguments)]
fn open_stream(
    state: AppState,
    agent: Arc<crate::agents::Agent>,
    input: RunAgentInput,
    principal: Arc<Principal>,
    dialect: Dialect,
    encoding: Encoding,
    audit: Arc<dyn AuditSink>,
    permit: StreamPermit,
    received: std::time::Instant,
) -> Result<Response, ApiError> {
    if state.metrics.stream_opened()
        > i64::try_from(state.config.limits.max_open_streams).unwrap_or(i64::MAX)
    {
        state.metrics.stream_closed();
        return Err(ApiError::ServerBusy);
    }
    let slot = StreamSlot::new(Arc::new(SlotOf(state.clone(), received)));
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
    let params = RunParams {
        input,
        principal,
        agent: agent.id.clone(),
        model: agent.model.clone(),
        tools: agent.tools.clone(),
        audit,
        settings: state.run_settings(),
        client_gone,
        shutdown: state.shutdown.clone(),
    };
    let sink = EventSink::new(tx, dialect, encoding);
    let task_state = state.clone();
    state.runs.spawn(async move {
        // The principal's stream slot is held for as long as the run streams.
        let _permit = permit;
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

/// Releases the open-stream count when the body is dropped; times the first event.
struct SlotOf(AppState, std::time::Instant);

impl crate::body::SlotRelease for SlotOf {
    fn release(&self) {
        self.0.metrics.stream_closed();
    }

    fn first_frame(&self) {
        self.0.metrics.time_to_first_event.observe(self.1.elapsed());
    }
}

/// Counts backend tool calls by tool and decision, then hands every event to the audit log.
struct CountingSink {
    state: AppState,
    inner: Arc<dyn AuditSink>,
}

impl AuditSink for CountingSink {
    fn record(&self, event: agui_agent::AuditEvent) {
        if let agui_agent::AuditEvent::ToolCall { tool, decision, .. } = &event {
            // Only configured tool names become labels: a model can name anything.
            let known = self.state.agents.values().any(|a| a.tools.contains(tool));
            let label = if known {
                tool.clone()
            } else {
                "other".to_owned()
            };
            self.state.metrics.tool_call(label, decision);
        }
        self.inner.record(event);
    }
}

/// Who is calling, as far as the connection tells before authentication.
pub(crate) struct Caller {
    /// The client address: the peer, or `X-Forwarded-For` behind a trusted proxy.
    pub addr: IpAddr,
}

impl Caller {
    pub(crate) fn of(state: &AppState, parts: &axum::http::request::Parts) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        Self {
            addr: state.accountability.client_addr(peer, &parts.headers),
        }
    }
}

/// Verifies a token and counts the outcome.
pub(crate) async fn authenticate(
    state: &AppState,
    caller: &Caller,
    token: &str,
    source: CredentialSource,
) -> Result<Arc<Principal>, ApiError> {
    match state.auth.authenticate(token, source).await {
        Ok(principal) => {
            state.metrics.authenticated(source.as_str());
            Ok(principal)
        }
        Err(error) => {
            record_auth_failure(state, caller, &error, Some(token));
            Err(error.into())
        }
    }
}

/// Logs, counts and audits (aggregated per source, reason and issuer) a refused credential:
/// the reason goes here, never to the client; the token only as its fingerprint.
pub(crate) fn record_auth_failure(
    state: &AppState,
    caller: &Caller,
    error: &AuthError,
    token: Option<&str>,
) {
    state.metrics.auth_failure(error.reason());
    let fingerprint = token.map(agui_auth::token_fingerprint);
    tracing::info!(
        reason = error.reason(),
        status = error.status().as_u16(),
        client = %caller.addr,
        token_fp = fingerprint.as_deref().unwrap_or("-"),
        "credential refused"
    );
    let claims = token.and_then(claims_of);
    let issuer = claims.as_ref().and_then(|c| configured_issuer(state, c));
    let denial = match error {
        AuthError::InsufficientScope { .. } => Some("scope"),
        AuthError::AccessDenied => Some("allowlist"),
        _ => None,
    };
    if let (Some(reason), Some(ready), Some(issuer)) =
        (denial, state.accountability.ready(), issuer.clone())
    {
        // A 403 comes after the signature was verified: the subject is the caller's own, and
        // these callers are authenticated, so each denial gets its own record.
        let subject = claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        ready.log.record(
            AuditRecord::now(AuditKind::AccessDenied)
                .principal(&PrincipalKey::new(issuer, subject))
                .detail(serde_json::json!({
                    "reason": reason,
                    "scope": match error {
                        AuthError::InsufficientScope { scope } => Some(scope.as_str()),
                        _ => None,
                    },
                    "token_fingerprint": fingerprint,
                })),
        );
        return;
    }
    state.accountability.auth_failure(
        crate::store::AuthFailureKey {
            source: caller.addr,
            reason: error.reason().to_owned(),
            issuer,
        },
        fingerprint.as_deref(),
    );
}

/// The token's payload, unverified (for audit records only; bounded like the verifier).
fn claims_of(token: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    if token.len() > 8 * 1024 {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The token's `iss` if it names a configured issuer: anything else an attacker writes there
/// is not worth storing.
fn configured_issuer(state: &AppState, claims: &serde_json::Value) -> Option<String> {
    let iss = claims.get("iss")?.as_str()?;
    state
        .config
        .auth
        .issuers
        .iter()
        .find(|i| i.issuer == iss)
        .map(|i| i.issuer.clone())
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
        // No deeper pointer means the body as a whole is wrong (e.g. not an object): the root
        // pointer `""` says so.
        agui_protocol::InputErrorKind::Shape => ApiError::InvalidInput {
            field: error.pointer.unwrap_or_default(),
            message: error.message,
        },
    })
}
