//! The runtime's thread endpoints, always scoped to the caller (CopilotKit's own Node runtime
//! serves every thread of the process to anyone; here a thread is its owner's, as for runs):
//!
//! - `GET {base}/threads[?agentId=A&limit=N]`: `{threads: [ThreadRecord], nextCursor: null}`,
//!   newest first; with `agentId` (CopilotKit's `useThreads` always sends it), only the threads
//!   whose latest run was that agent's;
//! - `GET {base}/threads/{id}/messages`: `{messages}` rebuilt from the thread's history;
//! - `GET {base}/threads/{id}/events`: `{events}`, the replay `connect` sends;
//! - `GET {base}/threads/{id}/state`: `{state}`, the state the last runs left (`null`: none).
//!
//! The caller authenticates by its `Authorization` header (a GET has no body). Another user's
//! thread is 404 `thread_not_found`; a thread nobody ran on is empty.

use agui_protocol::{Dialect, Event};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::connect::owned_replay;
use crate::error::ApiError;
use crate::history::replay::adapt_replayed;
use crate::history::view;
use crate::routes::auth::Authenticated;
use crate::state::AppState;

/// Most threads listed at once.
const MAX_LIST: usize = 500;

/// `GET {base}/threads` query.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    /// Only the threads whose most recent run was this agent's.
    #[serde(rename = "agentId")]
    agent_id: Option<String>,
    /// Most threads to return (at most 500).
    limit: Option<usize>,
}

/// The caller's threads, most recently used first, as CopilotKit's `useThreads` reads them.
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let threads = crate::routes::threads::callers_threads(&state, &principal).await?;
    let limit = query.limit.unwrap_or(MAX_LIST).clamp(1, MAX_LIST);
    let wanted = query.agent_id.filter(|agent| !agent.is_empty());
    let records: Vec<Value> = threads
        .into_iter()
        .filter(|thread| {
            wanted
                .as_deref()
                .is_none_or(|agent| thread.agent.as_deref() == Some(agent))
        })
        .take(limit)
        .map(|thread| {
            let updated = thread.last_run_at.unwrap_or(thread.created_at);
            json!({
                "id": thread.thread_id,
                "name": thread.title,
                "agentId": thread.agent,
                "organizationId": "",
                "createdById": "",
                "archived": false,
                "createdAt": iso8601(thread.created_at),
                "updatedAt": iso8601(updated),
                "lastRunAt": thread.last_run_at.map(iso8601),
            })
        })
        .collect();
    Ok(Json(json!({ "threads": records, "nextCursor": null })))
}

/// The events of the caller's thread, as `connect` replays them to a CopilotKit client.
async fn replayed(
    state: &AppState,
    principal: &agui_auth::Principal,
    thread_id: &str,
) -> Result<Vec<Event>, ApiError> {
    let events = owned_replay(state, principal, thread_id).await?;
    Ok(events
        .into_iter()
        .filter_map(|event| adapt_replayed(Dialect::Legacy, event))
        .collect())
}

/// `{messages}`: the conversation the thread's history builds.
pub(crate) async fn messages(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(thread_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let events = replayed(&state, &principal, &thread_id).await?;
    Ok(Json(json!({ "messages": view::messages(&events) })))
}

/// `{events}`: the replay.
pub(crate) async fn events(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(thread_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let events = replayed(&state, &principal, &thread_id).await?;
    Ok(Json(json!({ "events": events })))
}

/// `{state}`: what the runs left in the shared state.
pub(crate) async fn state(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(thread_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let events = replayed(&state, &principal, &thread_id).await?;
    Ok(Json(json!({ "state": view::state(&events) })))
}

/// Milliseconds since the epoch as RFC 3339 UTC (`2026-12-02T07:31:19.034Z`).
fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_660_679_034), "2025-12-02T07:31:19.034Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
