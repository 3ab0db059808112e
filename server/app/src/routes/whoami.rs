//! `GET /whoami`: the verified principal, as the server sees it (for apps and the runtime hop).
//! Header credentials only: a GET has no body to carry `forwardedProps`.

use axum::Json;
use axum::extract::{Request, State};

use crate::error::ApiError;
use crate::routes::chat::{Caller, authenticate, record_auth_failure};
use crate::state::AppState;

/// Returns issuer, subject, name, email, roles and scopes of the caller.
pub async fn whoami(
    State(state): State<AppState>,
    request: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let principal = authenticate_header(&state, request).await?;
    Ok(Json(principal.public_json()))
}

/// Authenticates a GET by its `Authorization` header (the only place a GET can carry a token).
pub(crate) async fn authenticate_header(
    state: &AppState,
    request: Request,
) -> Result<std::sync::Arc<agui_auth::Principal>, ApiError> {
    let (parts, _) = request.into_parts();
    let caller = Caller::of(state, &parts);
    let credential = agui_auth::credential_from_headers(&parts.headers)
        .inspect_err(|e| record_auth_failure(state, &caller, e, None))?;
    let Some((token, source)) = credential else {
        let error = agui_auth::AuthError::MissingCredentials;
        record_auth_failure(state, &caller, &error, None);
        return Err(error.into());
    };
    authenticate(state, &caller, &token, source).await
}
