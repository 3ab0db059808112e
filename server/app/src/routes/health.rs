//! `GET /healthz` (alive), `GET /readyz` (ready to take runs) and `GET /metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: at least one issuer has usable keys and the server is not shutting down.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let shutting_down = state.shutdown.is_cancelled();
    let issuers_ready = state.auth.is_ready();
    if issuers_ready && !shutting_down {
        return Json(json!({"status": "ready"})).into_response();
    }
    let message = if shutting_down {
        "The server is shutting down."
    } else {
        "No issuer has usable keys yet."
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": "not_ready", "message": message})),
    )
        .into_response()
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let extra = state.auth.stats().to_prometheus();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&extra),
    )
        .into_response()
}
