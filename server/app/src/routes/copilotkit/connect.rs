//! `connect` (replay a thread, then follow its live run) and `stop` (end a thread's run, on
//! whichever replica runs it). Both are for the thread's owner only: anyone else gets 404
//! `thread_not_found`, as a run would, and the refusal is audited.

use std::time::{Duration, Instant};

use agui_auth::Principal;
use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admission;
use crate::agents::MissingGrant;
use crate::body::EventBody;
use crate::error::ApiError;
use crate::history::replay::{self, ReplaySink};
use crate::routes::auth::{self, Authenticated, Caller};
use crate::routes::run::{self, RunRequest};
use crate::state::AppState;
use crate::store::{AuditKind, AuditRecord, Notice, PrincipalKey, Store, now_ms};

/// Frames buffered between the replay task and the response body.
const CHANNEL_FRAMES: usize = 64;

/// The largest stop body (`{}` or `{"runId": …}`).
const MAX_STOP_BODY: usize = 4096;

/// What the caller may do with a thread it names.
enum ThreadRight {
    /// Nobody has run on it yet.
    New,
    /// The caller's own (or an admin's, audited).
    Owner,
}

/// The thread belongs to `principal` (or does not exist yet); anyone else's is 404 and an
/// `access_denied` record, unless the caller holds the thread-admin role (audited).
async fn thread_right(
    state: &AppState,
    store: &dyn Store,
    log: &crate::store::AuditLog,
    principal: &Principal,
    thread_id: &str,
    action: &str,
) -> Result<ThreadRight, ApiError> {
    let owner = store.thread_owner(thread_id).await.map_err(|error| {
        tracing::error!(target: "agui::store", %error, "thread owner lookup failed");
        ApiError::StoreUnavailable
    })?;
    judge(state, log, principal, thread_id, action, owner.as_ref())
}

/// Whether `principal` holds the thread-admin role (may read any thread, audited).
fn is_thread_admin(state: &AppState, principal: &Principal) -> bool {
    let admin_role = state.config.store.thread_admin_role.as_ref();
    admin_role.is_some_and(|role| principal.has_role(role))
}

/// [`thread_right`] once the owner is known.
fn judge(
    state: &AppState,
    log: &crate::store::AuditLog,
    principal: &Principal,
    thread_id: &str,
    action: &str,
    owner: Option<&PrincipalKey>,
) -> Result<ThreadRight, ApiError> {
    let key = PrincipalKey::of(principal);
    let Some(owner) = owner else {
        return Ok(ThreadRight::New);
    };
    if *owner == key {
        return Ok(ThreadRight::Owner);
    }
    let fields = json!({
        "owner_issuer": owner.issuer,
        "owner_subject": owner.subject,
        "action": action,
    });
    if is_thread_admin(state, principal) {
        let mut detail = fields;
        detail["role"] = json!(state.config.store.thread_admin_role);
        detail["token_fingerprint"] = json!(principal.token_fingerprint);
        log.record(
            AuditRecord::now(AuditKind::AdminAccess)
                .principal(&key)
                .thread(thread_id)
                .detail(detail),
        );
        return Ok(ThreadRight::Owner);
    }
    tracing::info!(sub = %principal.subject, %thread_id, action, "another principal's thread refused");
    state.metrics.denied("thread_ownership");
    log.record(
        AuditRecord::denial(
            &key,
            "thread_ownership",
            Some(&principal.token_fingerprint),
            fields,
        )
        .thread(thread_id),
    );
    Err(ApiError::ThreadNotFound)
}

/// Reads the thread for `principal` in one store statement and judges its right to it (as
/// [`thread_right`]): the replay when it may read it (empty for a new thread).
async fn read_thread(
    state: &AppState,
    connected: &crate::backends::Connected,
    principal: &Principal,
    thread_id: &str,
    action: &str,
) -> Result<(ThreadRight, replay::Loaded), ApiError> {
    let key = PrincipalKey::of(principal);
    let loaded = replay::read(
        connected.store().as_ref(),
        &state.history,
        thread_id,
        &key,
        is_thread_admin(state, principal),
    )
    .await
    .map_err(|error| {
        tracing::error!(target: "agui::store", %error, "thread history unreadable");
        ApiError::StoreUnavailable
    })?;
    let right = judge(
        state,
        &connected.log,
        principal,
        thread_id,
        action,
        loaded.owner.as_ref(),
    )?;
    Ok((right, loaded))
}

/// A thread id taken from a path: bounded like every id a client sends (400 `invalid_input`).
pub(crate) fn check_thread_id(thread_id: &str) -> Result<(), ApiError> {
    agui_protocol::check_id(thread_id).map_err(|rule| ApiError::InvalidInput {
        field: "/threadId".into(),
        message: format!("The thread id {rule}."),
    })
}

/// The agent exists and the principal may use it (as for a run: 404, then 403).
fn check_agent(state: &AppState, agent_id: &str, principal: &Principal) -> Result<(), ApiError> {
    let agent = state.agents.get(agent_id).ok_or(ApiError::AgentNotFound)?;
    match agent.missing_grant(principal) {
        None => Ok(()),
        Some(MissingGrant::Scope(scope)) => {
            Err(agui_auth::AuthError::InsufficientScope { scope }.into())
        }
        Some(MissingGrant::Role(_)) => Err(agui_auth::AuthError::AccessDenied.into()),
    }
}

/// The events of the caller's own thread (empty for a thread nobody ran on): for the thread
/// endpoints.
pub(crate) async fn owned_replay(
    state: &AppState,
    principal: &Principal,
    thread_id: &str,
) -> Result<Vec<agui_protocol::Event>, ApiError> {
    check_thread_id(thread_id)?;
    let connected = state
        .backends
        .connected()
        .ok_or(ApiError::StoreUnavailable)?;
    match read_thread(state, connected, principal, thread_id, "read").await? {
        (ThreadRight::New, _) => Ok(Vec::new()),
        (ThreadRight::Owner, loaded) => Ok(loaded
            .into_replay(thread_id, instance_timeout(state))
            .stored
            .into_events()),
    }
}

fn instance_timeout(state: &AppState) -> Duration {
    Duration::from_secs(state.config.store.instance_timeout_secs)
}

/// `POST {base}/agent/{id}/connect`: the caller's thread replayed (compacted, every run ending
/// with its terminal event), then, if a run of it is streaming here or on another replica,
/// that run's events until it ends; then the stream closes (a CopilotKit chat waits for it
/// before it sends). A thread nobody has run on replays nothing: 200 and an empty stream.
pub(crate) async fn connect(
    State(state): State<AppState>,
    Path(agent_id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let (parts, body) = request.into_parts();
    let caller = Caller::of(&state, &parts);
    let header = auth::verify_header(&state, &caller, &parts.headers).await?;
    run::require_json(&parts.headers)?;
    let request = RunRequest::read(&state, &caller, &parts.headers, body, header).await?;
    let connected = state
        .backends
        .connected()
        .ok_or(ApiError::StoreUnavailable)?
        .clone();
    check_agent(&state, &agent_id, &request.principal)?;
    let thread_id = request.input.thread_id.to_string();
    let store = connected.store().clone();
    let (right, loaded) = read_thread(
        &state,
        &connected,
        &request.principal,
        &thread_id,
        "connect",
    )
    .await?;
    let permit = admission::open_stream(&state.stream_cap)?;
    let encoding = run::response_encoding(&parts.headers);
    let replay = match right {
        ThreadRight::New => replay::Replay::default(),
        ThreadRight::Owner => loaded.into_replay(&thread_id, instance_timeout(&state)),
    };
    tracing::info!(
        %thread_id, sub = %request.principal.subject, events = replay.stored.len(),
        following = replay.follow.len(), "connect"
    );
    state
        .metrics
        .time_to_first_event
        .observe(received.elapsed());

    let (tx, rx) = mpsc::channel(CHANNEL_FRAMES);
    let gone = CancellationToken::new();
    let body = EventBody::new(
        rx,
        run::keepalive(&state, encoding),
        gone.clone().drop_guard(),
        None,
    )
    .holding(permit);
    let mut sink = ReplaySink::new(tx, request.dialect, encoding);
    let timeout = instance_timeout(&state);
    let shutdown = state.shutdown.clone();
    state.runs.spawn(async move {
        let send_all = async {
            sink.send_stored(replay.stored).await?;
            for follow in replay.follow {
                replay::follow(follow, store.as_ref(), timeout, &mut sink).await?;
            }
            Ok::<(), replay::Gone>(())
        };
        tokio::select! {
            _ = send_all => {}
            () = gone.cancelled() => {}
            () = shutdown.cancelled() => {}
        }
    });
    Ok(run::event_stream_response(body, encoding))
}

/// `POST {base}/agent/{id}/stop/{threadId}` with `{}` (or no body: the thread's run) or
/// `{"runId": …}` (that run only). Answers as CopilotKit's runtime does:
/// `{"stopped": true, "interrupt": …}` or `{"stopped": false, "message": …}`. The run ends with
/// its terminal event (its client's stream closes) and is recorded `cancelled`. A stop carries
/// no body credential, so it authenticates by its `Authorization` header.
pub(crate) async fn stop(
    State(state): State<AppState>,
    Path((agent_id, thread_id)): Path<(String, String)>,
    Authenticated(principal): Authenticated,
    request: Request,
) -> Result<Response, ApiError> {
    let rules = crate::upload::Rules::of(&state.config.limits, MAX_STOP_BODY);
    let bytes = crate::upload::read(
        &state.body_budgets,
        request.into_body(),
        rules,
        crate::upload::Caller::Authenticated,
    )
    .await?;
    check_thread_id(&thread_id)?;
    let run_id = stop_scope(&bytes)?;
    check_agent(&state, &agent_id, &principal)?;
    let connected = state
        .backends
        .connected()
        .ok_or(ApiError::StoreUnavailable)?
        .clone();
    let store = connected.store().clone();
    let right = thread_right(
        &state,
        store.as_ref(),
        &connected.log,
        &principal,
        &thread_id,
        "stop",
    )
    .await?;
    let not_running = || match &run_id {
        Some(run_id) => {
            format!("Run '{run_id}' is not the active run for thread '{thread_id}'.")
        }
        None => format!("No active run for thread '{thread_id}'."),
    };
    if matches!(right, ThreadRight::New) {
        return Ok(Json(json!({ "stopped": false, "message": not_running() })).into_response());
    }
    let mut stopped = state.history.stop_here(&thread_id, run_id.as_deref());
    if !stopped {
        // On another replica? Its open run, on a live instance, gets the notice.
        let open = store.open_runs(&thread_id).await.map_err(|error| {
            tracing::error!(target: "agui::store", %error, "open runs unreadable");
            ApiError::StoreUnavailable
        })?;
        let timeout = i64::try_from(instance_timeout(&state).as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        let running = open.iter().any(|o| {
            run_id.as_deref().is_none_or(|id| id == o.run_id)
                && o.heartbeat_at.is_some_and(|beat| now - beat < timeout)
                && o.instance != store.instance_id()
        });
        if running {
            store
                .publish(&Notice::Stop {
                    thread_id: thread_id.clone(),
                    run_id: run_id.clone(),
                })
                .await
                .map_err(|error| {
                    tracing::error!(target: "agui::store", %error, "stop notice not sent");
                    ApiError::StoreUnavailable
                })?;
            stopped = true;
        }
    }
    tracing::info!(%thread_id, sub = %principal.subject, stopped, "stop");
    Ok(if stopped {
        Json(json!({
            "stopped": true,
            "interrupt": { "type": "RUN_ERROR", "message": "Run stopped by user", "code": "STOPPED" },
        }))
        .into_response()
    } else {
        Json(json!({ "stopped": false, "message": not_running() })).into_response()
    })
}

/// The stop body: empty, `{}`, or `{"runId": "<non-empty string>"}`; anything else is 400.
fn stop_scope(bytes: &[u8]) -> Result<Option<String>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let invalid = |field: &str, message: &str| ApiError::InvalidInput {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ApiError::InvalidJson)?;
    let Value::Object(object) = value else {
        return Err(invalid("", "A stop body is {} or {\"runId\": \"…\"}."));
    };
    if let Some(other) = object.keys().find(|k| *k != "runId") {
        return Err(invalid(
            &format!("/{other}"),
            "A stop body has no other member than runId.",
        ));
    }
    match object.get("runId") {
        None => Ok(None),
        Some(Value::String(id)) if !id.trim().is_empty() && agui_protocol::check_id(id).is_ok() => {
            Ok(Some(id.clone()))
        }
        Some(_) => Err(invalid(
            "/runId",
            "runId must be a non-empty string of at most 256 bytes without control characters.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_body_is_empty_an_empty_object_or_one_run_id() {
        assert_eq!(stop_scope(b"").unwrap(), None);
        assert_eq!(stop_scope(b"  ").unwrap(), None);
        assert_eq!(stop_scope(b"{}").unwrap(), None);
        assert_eq!(
            stop_scope(br#"{"runId":"r1"}"#).unwrap().as_deref(),
            Some("r1")
        );
        for bad in [
            &br#"{"runid":"r1"}"#[..],
            br#"{"runId":""}"#,
            br#"{"runId":1}"#,
            b"[]",
            b"null",
            b"{",
        ] {
            assert!(stop_scope(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
