//! `POST /chat` (the default agent) and `POST /agents/{id}/chat` (a named agent): one run each,
//! through the shared pipeline in [`super::run`].

use axum::extract::{Path, Request, State};
use axum::response::Response;

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /chat`: the default agent.
pub(crate) async fn chat(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    super::run::start(&state, "default", request, super::run::ClientGone::Cancels).await
}

/// `POST /agents/{id}/chat`: a named agent (`[agents.<id>]`).
pub(crate) async fn agent_chat(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    super::run::start(&state, &agent, request, super::run::ClientGone::Cancels).await
}
