//! `GET /whoami`: the verified principal, as the server sees it (for apps and the runtime hop).
//! Header credentials only: a GET has no body to carry `forwardedProps`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::routes::chat::{authenticate, record_auth_failure};
use crate::state::AppState;

/// Returns issuer, subject, name, email, roles and scopes of the caller.
pub async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let credential = agui_auth::credential_from_headers(&headers)
        .inspect_err(|e| record_auth_failure(&state, e))?;
    let Some((token, source)) = credential else {
        let error = agui_auth::AuthError::MissingCredentials;
        record_auth_failure(&state, &error);
        return Err(error.into());
    };
    let principal = authenticate(&state, &token, source).await?;
    Ok(Json(principal.public_json()))
}
