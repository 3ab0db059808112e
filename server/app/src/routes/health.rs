//! `GET /healthz` (alive), `GET /readyz` (ready to take runs) and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
pub(crate) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: at least one issuer has usable keys, the store is connected and answers, and the
/// server is not shutting down. (A store that answers but refuses writes is reported per run,
/// 503 `audit_unavailable`: each refused run is also the probe that notices its recovery.)
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let message = if state.shutdown.is_cancelled() {
        Some("The server is shutting down.")
    } else if !state.auth.is_ready() {
        Some("No issuer has usable keys yet.")
    } else {
        match state.backends.connected() {
            None => Some("The store is not connected yet."),
            Some(connected) => match connected.store().ping().await {
                Ok(()) => None,
                Err(error) => {
                    tracing::warn!(target: "agui::store", %error, "readiness: store ping failed");
                    Some("The store does not answer.")
                }
            },
        }
    };
    match message {
        None => Json(json!({"status": "ready"})).into_response(),
        Some(message) => ApiError::NotReady { message }.into_response(),
    }
}

/// Prometheus text exposition.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics_text(),
    )
        .into_response()
}
