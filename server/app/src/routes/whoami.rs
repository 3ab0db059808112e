//! `GET /whoami`: the verified principal, as the server sees it (for apps and the runtime hop).
//! Header credentials only: a GET has no body to carry `forwardedProps`.

use axum::Json;

use crate::routes::auth::Authenticated;

/// Returns issuer, subject, name, email, roles and scopes of the caller.
pub(crate) async fn whoami(Authenticated(principal): Authenticated) -> Json<serde_json::Value> {
    Json(principal.public_json())
}
