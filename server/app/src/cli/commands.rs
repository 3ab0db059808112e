//! The bodies of the CLI's commands: what each subcommand does once its arguments are parsed.

use std::process::ExitCode;

use crate::cli::{self, Command};
use crate::config;
use crate::state::AppState;
use crate::{dev, reference, serve, store, telemetry};

/// Runs one command of the CLI; what `main` calls.
pub async fn main_with(cli: cli::Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve_command(args).await,
        Command::CheckConfig(args) => check_config(&args),
        Command::Dev(args) => dev::run(args).await,
        Command::ConfigReference => {
            print!("{}", reference::markdown());
            ExitCode::SUCCESS
        }
        Command::Audit(args) => audit_command(args).await,
        Command::Forget(args) => forget_command(args).await,
        Command::Apikey(args) => cli::apikey::run(&args),
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
                        "history_chunks": counts.history_chunks,
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
    tokio::spawn(crate::cli::reload::api_keys_on_sighup(
        args.clone(),
        state.auth.clone(),
        state.shutdown.clone(),
    ));
    if command.exit_on_stdin_close {
        let stop = async {
            tokio::select! {
                () = crate::shutdown_signal() => {}
                () = stdin_closed() => tracing::info!("standard input closed; shutting down"),
            }
        };
        crate::run(listener, state, stop).await;
    } else {
        crate::run(listener, state, crate::shutdown_signal()).await;
    }
    ExitCode::SUCCESS
}

/// Resolves when standard input reaches end-of-file (or cannot be read): the launcher holding
/// the other end of the pipe is gone, however it ended. The read runs on a thread of its own,
/// not tokio's blocking pool, whose shutdown would wait for it (the GitHub stand-in, which
/// watches its stdin the same way, calls this too).
pub async fn stdin_closed() {
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
            print!("{}", cli::apikey::describe(&config));
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
