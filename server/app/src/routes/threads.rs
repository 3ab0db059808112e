//! `GET /threads`: the caller's threads, most recently used first (for apps and the runtime
//! hop). Header credentials only, like `/whoami`.

use axum::Json;
use axum::extract::{Request, State};
use serde_json::json;

use crate::error::ApiError;
use crate::routes::whoami::authenticate_header;
use crate::state::AppState;
use crate::store::PrincipalKey;

/// `{"threads": [{"thread_id", "created_at", "last_run_at"?}, …]}`; times in ms since the epoch.
pub async fn threads(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = authenticate_header(&state, request).await?;
    let ready = state
        .accountability
        .ready()
        .ok_or(ApiError::StoreUnavailable)?;
    let threads = ready
        .store()
        .list_threads(&PrincipalKey::of(&principal))
        .await
        .map_err(|error| {
            tracing::error!(target: "agui::store", %error, "listing threads failed");
            ApiError::StoreUnavailable
        })?;
    Ok(Json(json!({ "threads": threads })))
}
