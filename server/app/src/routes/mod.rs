//! The router: routes, middleware, and JSON answers for unknown paths and methods.
//!
//! # Layout
//!
//! - this file: the router, the request counter, CORS.
//! - [`auth`]: request authentication shared by every route (caller, verification, refusal
//!   records, the [`auth::Authenticated`] extractor).
//! - `run`: the pipeline of one run (authenticate → admit → validate → commit → stream).
//! - `chat`: `POST /chat` and `POST /agents/{id}/chat`.
//! - `copilotkit`: CopilotKit's runtime protocol under `runtime.base_path` (`/copilotkit`).
//! - `whoami`, `threads`: the caller's principal and threads.
//! - `health`: `/healthz`, `/readyz`, `/metrics`.
//! - `github_login`: `/auth/github/login` and `/auth/github/callback` ("Sign in with GitHub"),
//!   mounted only when configured.

pub(crate) mod auth;
mod chat;
mod copilotkit;
mod github_login;
mod health;
mod run;
pub(crate) mod threads;
mod whoami;

use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::state::AppState;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The complete router for `state`.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let routes = Router::new()
        .route("/chat", post(chat::chat))
        .route("/agents/{id}/chat", post(chat::agent_chat))
        .route("/whoami", get(whoami::whoami))
        .route("/threads", get(threads::threads))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(github_login::routes(&state));
    let base = &state.config.runtime.base_path;
    let routes = if base.is_empty() {
        routes
    } else {
        routes.merge(copilotkit::router(base))
    };
    let routes = routes
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state);
    let routes = match cors {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes
        // Outermost first on the way in: give every request an id, trace it, echo the id back.
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request| {
            let request_id = request.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
}

/// Counts every answered request by matched route and status.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = route_label(
        request
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let response = next.run(request).await;
    state.metrics.request(route, response.status().as_u16());
    response
}

/// A fixed label per route, so unknown paths cannot grow the metric without bound.
fn route_label(matched: Option<&str>) -> &'static str {
    match matched {
        Some("/chat") => "/chat",
        Some("/agents/{id}/chat") => "/agents/{id}/chat",
        Some("/whoami") => "/whoami",
        Some("/threads") => "/threads",
        Some("/healthz") => "/healthz",
        Some("/readyz") => "/readyz",
        Some("/metrics") => "/metrics",
        Some("/auth/github/login") => "/auth/github/login",
        Some("/auth/github/callback") => "/auth/github/callback",
        Some(path) if path.ends_with("/agent/{agent}/run") => "runtime:run",
        Some(path) if path.ends_with("/agent/{agent}/connect") => "runtime:connect",
        Some(path) if path.ends_with("/agent/{agent}/stop/{thread}") => "runtime:stop",
        Some(path) if path.ends_with("/info") => "runtime:info",
        Some(path) if path.contains("/threads") => "runtime:threads",
        Some(_) => "runtime:single",
        None => "unmatched",
    }
}

/// Browser-direct CORS (DESIGN): off unless origins are listed; an exact list, never `*`, so
/// credentials (cookies, for apps that send them with `credentials: "include"`) may be
/// allowed; preflight allows the headers a client sends; the headers a client must read are
/// exposed.
fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .allow_credentials(true)
            .expose_headers([header::WWW_AUTHENTICATE, header::RETRY_AFTER, X_REQUEST_ID])
            .max_age(Duration::from_secs(600)),
    )
}
