//! agui-server: an AG-UI 1.0 streaming server with OpenID Connect bearer auth, for CopilotKit
//! apps.
//!
//! `POST /chat` verifies the caller's token against the configured issuers' JWKS, runs the agent
//! for that verified principal and streams AG-UI events as server-sent events (or AG-UI protobuf
//! frames when asked). See the repository README for the flow and the settings.
//!
//! The caller binds the listener and hands it to [`run`], so tests can use port 0 (the
//! mini-redis `server::run` shape).
//!
//! # Layout
//!
//! - [`cli`]: the command line (`serve`, `dev`, `check-config`, `config-reference`, `audit`,
//!   `forget`, `apikey`) and what each command does.
//! - [`config`]: the typed configuration, its sources and validation.
//! - `reference`: the generated configuration reference the README embeds.
//! - [`state`]: the shared application state and its builder.
//! - `agents`: named agents (`[agents.<id>]`): model, prompt, tools, who may run them.
//! - `routes`: the router, request authentication, the run pipeline and the handlers.
//! - `admission`: the server-wide stream cap and the principal's limits, before a run starts.
//! - `body`: the streaming response body (coalescing, keepalive, cancel on drop).
//! - `upload`: reading request bodies under a deadline, a minimum rate and byte budgets.
//! - `trim`: returning free memory to the system after a burst of buffered bodies or open streams.
//! - [`error`]: HTTP errors before the stream and their JSON body.
//! - `metrics`: the Prometheus registry.
//! - [`serve`]: binding with a real backlog, serving connections (one head limit, lingering
//!   close), graceful shutdown (503 `shutting_down` during the drain).
//! - `dev`: `agui-server dev`, a self-contained local server with its own issuer.
//! - `telemetry`: log setup; the text format escapes control characters in every field.
//! - `log_writer`: log lines written to stderr in batches by one thread (one write per window).
//! - `client_addr`: the caller's address behind trusted proxies.
//! - `backends`: the store, audit log and limiter a run needs, connected (or retried) at start.
//! - `history`: every thread's events for CopilotKit's `connect`, and following live runs.
//! - [`store`]: SQLite / PostgreSQL store for threads, runs and the audit log.
//! - [`limits`]: per-principal run rate and stream caps, local or via Redis.

mod admission;
mod agents;
mod backends;
mod body;
pub mod cli;
mod client_addr;
pub mod config;
mod dev;
pub mod error;
mod history;
pub mod limits;
mod log_writer;
mod metrics;
mod reference;
mod routes;
pub mod serve;
pub mod state;
pub mod store;
mod telemetry;
mod trim;
pub mod upload;

use std::future::Future;

use tokio::net::TcpListener;

pub use cli::commands::main_with;
pub use config::Config;
pub use error::ApiError;
pub use routes::router;
pub use state::AppState;

/// Serves `state` on `listener` until `shutdown` resolves, then drains open streams (each ends
/// with `RUN_ERROR server_shutdown`) within the configured deadline.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let token = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("listening on http://{addr}");
    }
    let router = routes::router(state.clone());
    serve::serve(listener, router, state).await;
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
