//! `GET /threads`: the caller's threads, most recently used first (for apps and the runtime
//! hop). Header credentials only, like `/whoami`.

use axum::Json;
use axum::extract::State;
use serde_json::json;

use crate::error::ApiError;
use crate::routes::auth::Authenticated;
use crate::state::AppState;
use crate::store::{PrincipalKey, ThreadSummary};

/// `{"threads": [{"thread_id", "created_at", "last_run_at"?, "title"?}, …]}`; times in ms since
/// the epoch.
pub(crate) async fn threads(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<serde_json::Value>, ApiError> {
    let threads = callers_threads(&state, &principal).await?;
    Ok(Json(json!({ "threads": threads })))
}

/// The caller's threads from the store, most recently used first (here and under the
/// runtime's `…/threads`).
pub(crate) async fn callers_threads(
    state: &AppState,
    principal: &agui_auth::Principal,
) -> Result<Vec<ThreadSummary>, ApiError> {
    let connected = state
        .backends
        .connected()
        .ok_or(ApiError::StoreUnavailable)?;
    connected
        .store()
        .list_threads(&PrincipalKey::of(principal))
        .await
        .map_err(|error| {
            tracing::error!(target: "agui::store", %error, "listing threads failed");
            ApiError::StoreUnavailable
        })
}
