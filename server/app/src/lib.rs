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
//! - [`cli`]: the command line (`serve`, `dev`, `check-config`, `config-reference`).
//! - [`config`]: the typed configuration, its sources and validation.
//! - [`reference`]: the generated configuration reference the README embeds.
//! - [`state`]: the shared application state and its builder.
//! - [`agents`]: named agents (`[agents.<id>]`): model, prompt, tools, who may run them.
//! - [`routes`]: the router, middleware and handlers (`/chat`, `/whoami`, health, metrics).
//! - [`body`]: the streaming response body (coalescing, keepalive, cancel on drop).
//! - [`error`]: HTTP errors before the stream and their JSON body.
//! - [`metrics`]: the Prometheus registry.
//! - [`serve`]: binding with a real backlog, serving connections, graceful shutdown.
//! - [`dev`]: `agui-server dev`, a self-contained local server with its own issuer.
//! - [`telemetry`]: log setup; the text format escapes control characters in every field.
//! - [`accountability`]: the store as `/chat` uses it: thread ownership, run records, the audit log.
//! - [`store`]: SQLite / PostgreSQL store for threads, runs and the audit log.
//! - [`limits`]: per-principal run rate and stream caps, local or via Redis (checked by `/chat`
//!   before a run starts).

pub mod accountability;
pub mod agents;
pub mod body;
pub mod cli;
pub mod config;
pub mod dev;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod reference;
pub mod routes;
pub mod serve;
pub mod state;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::process::ExitCode;

use tokio::net::TcpListener;

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

/// Runs one command of the CLI; what `main` calls.
pub async fn main_with(cli: cli::Cli) -> ExitCode {
    match cli.command {
        cli::Command::Serve(args) => serve_command(args).await,
        cli::Command::CheckConfig(args) => check_config(&args),
        cli::Command::Dev(args) => dev::run(args).await,
        cli::Command::ConfigReference => {
            print!("{}", reference::markdown());
            ExitCode::SUCCESS
        }
        cli::Command::Audit(args) => audit_command(args).await,
        cli::Command::Forget(args) => forget_command(args).await,
    }
}

/// Opens the configured store for the `audit` and `forget` commands (no server, no issuer).
async fn open_store(args: &cli::ServeArgs) -> Result<std::sync::Arc<dyn store::Store>, ExitCode> {
    let config = args.load().map_err(|error| config_failure(&error))?;
    let url = config
        .store
        .database_url
        .unwrap_or_else(|| store::DEFAULT_SQLITE_URL.to_owned());
    store::connect(&url).await.map_err(|error| {
        eprintln!("agui-server: cannot open the store: {error}");
        ExitCode::from(1)
    })
}

async fn audit_command(args: cli::AuditArgs) -> ExitCode {
    let filter = match audit_filter(&args) {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!("agui-server audit: {error}");
            return ExitCode::from(2);
        }
    };
    let store = match open_store(&args.serve).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let mut out = std::io::stdout().lock();
    match store::cli::audit(store.as_ref(), &filter, &mut out).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("agui-server audit: {error}");
            ExitCode::from(1)
        }
    }
}

fn audit_filter(args: &cli::AuditArgs) -> Result<store::AuditFilter, store::cli::CliError> {
    Ok(store::AuditFilter {
        subject: args.subject.clone(),
        issuer: args.issuer.clone(),
        thread_id: args.thread.clone(),
        kinds: args
            .kind
            .iter()
            .map(|k| store::cli::parse_kind(k))
            .collect::<Result<_, _>>()?,
        since: args
            .since
            .as_deref()
            .map(store::cli::parse_time)
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(store::cli::parse_time)
            .transpose()?,
        limit: args.limit,
    })
}

async fn forget_command(args: cli::ForgetArgs) -> ExitCode {
    let store = match open_store(&args.serve).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    match store::cli::forget(store.as_ref(), args.issuer.as_deref(), &args.subject).await {
        Ok(counts) => {
            println!(
                "{}",
                serde_json::json!({
                    "forgotten": {
                        "threads": counts.threads,
                        "runs": counts.runs,
                        "audit_records": counts.audit_records,
                    }
                })
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("agui-server forget: {error}");
            ExitCode::from(1)
        }
    }
}

async fn serve_command(command: cli::ServeCommand) -> ExitCode {
    let args = command.serve;
    let config = match args
        .load()
        .and_then(|config| config.validate().map(|()| config))
    {
        Ok(config) => config,
        Err(error) => return config_failure(&error),
    };
    let _log_guard = telemetry::init(config.log_format, &config.log);
    let listener = match serve::bind(config.listen, config.backlog) {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("agui-server: cannot listen on {}: {error}", config.listen);
            return ExitCode::from(1);
        }
    };
    let state = match AppState::builder(config).build().await {
        Ok(state) => state,
        Err(error) => return config_failure(&error),
    };
    if command.exit_on_stdin_close {
        let stop = async {
            tokio::select! {
                () = shutdown_signal() => {}
                () = stdin_closed() => tracing::info!("standard input closed; shutting down"),
            }
        };
        run(listener, state, stop).await;
    } else {
        run(listener, state, shutdown_signal()).await;
    }
    ExitCode::SUCCESS
}

/// Resolves when standard input reaches end-of-file (or cannot be read): the launcher holding
/// the other end of the pipe is gone, however it ended.
async fn stdin_closed() {
    let (closed, wait) = tokio::sync::oneshot::channel::<()>();
    let watcher = std::thread::Builder::new()
        .name("agui-stdin-watch".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            while matches!(std::io::Read::read(&mut stdin, &mut buf), Ok(n) if n > 0) {}
            let _ = closed.send(());
        });
    match watcher {
        Ok(_) => {
            let _ = wait.await;
        }
        // Without a watcher nothing can tell; never shut down for that.
        Err(_) => std::future::pending::<()>().await,
    }
}

fn check_config(args: &cli::ServeArgs) -> ExitCode {
    match args
        .load()
        .and_then(|config| config.validate().map(|()| config))
    {
        Ok(config) => {
            println!("# configuration is valid; effective settings (secrets masked):");
            print!("{}", config.to_masked_toml());
            ExitCode::SUCCESS
        }
        Err(error) => config_failure(&error),
    }
}

fn config_failure(error: &config::ConfigError) -> ExitCode {
    eprintln!("agui-server: configuration error: {error}");
    eprintln!(
        "agui-server: see `agui-server check-config --help` and the README's configuration reference."
    );
    ExitCode::from(2)
}
