//! The command line: `serve`, `dev`, `check-config`, `config-reference`, `audit`, `forget`,
//! `apikey`. The arguments are here; what each command does is in [`commands`] (`apikey` and the
//! `AGUI_GITHUB_*` overrides have their own modules, [`apikey`] and [`github_env`]).
//!
//! Flags and environment variables override the TOML file (`--config`); each flag has its
//! variable, e.g. `--listen` / `AGUI_LISTEN`. Several issuers are TOML-only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub mod apikey;
pub mod commands;
pub mod github_env;
mod reload;

use crate::config::{Config, ConfigError, LogFormat, ModelKind};

/// agui-server: an AG-UI 1.0 streaming server with OpenID Connect bearer auth, for CopilotKit apps.
#[derive(Debug, Parser)]
#[command(name = "agui-server", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve /chat with the configured issuers (fails closed without one).
    Serve(ServeCommand),
    /// A self-contained local server: an in-process issuer on loopback, the scripted model, and a
    /// ready-to-paste curl command with a freshly minted token. Loopback only; not for production.
    Dev(DevArgs),
    /// Validate a configuration and print the effective one, secrets masked.
    CheckConfig(ServeArgs),
    /// Print the configuration reference (Markdown) that the README embeds.
    ConfigReference,
    /// Print audit records as JSON lines, oldest first, filtered by subject, thread, kind and time.
    Audit(AuditArgs),
    /// Delete one subject's threads, runs and audit records (itself recorded in the audit log).
    Forget(ForgetArgs),
    /// API keys for services and scripts: `apikey new --subject reports-bot --roles reports`.
    Apikey(apikey::ApikeyCommand),
}

/// `serve`: the settings, and how a launcher may stop it.
#[derive(Debug, Clone, Args)]
pub struct ServeCommand {
    /// The settings.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Shut down (as on SIGTERM) when standard input reaches end-of-file: a launcher that keeps
    /// the pipe open can die in any way, even SIGKILL, without leaving the server behind.
    #[arg(long)]
    pub exit_on_stdin_close: bool,
}

/// Settings for `audit`.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// The store and its settings (as for `serve`).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Only records of this subject (`sub`).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only records of this issuer.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Only records of this thread.
    #[arg(long)]
    pub thread: Option<String>,
    /// Only these kinds (repeat or comma separate): auth_failure, access_denied, admin_access,
    /// run_started, run_ended, tool_call, forget.
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// From this time: epoch milliseconds or an age such as 30m, 24h, 7d.
    #[arg(long)]
    pub since: Option<String>,
    /// Until this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// At most this many records.
    #[arg(long)]
    pub limit: Option<i64>,
}

/// Settings for `forget`.
#[derive(Debug, Clone, Args)]
pub struct ForgetArgs {
    /// The store and its settings (as for `serve`).
    #[command(flatten)]
    pub serve: ServeArgs,
    /// The subject (`sub`) whose data is deleted.
    #[arg(long)]
    pub subject: String,
    /// Only that subject at this issuer (default: at every issuer).
    #[arg(long)]
    pub issuer: Option<String>,
}

/// Settings for `serve` and `check-config`.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "AGUI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Settings that override the file.
    #[command(flatten)]
    pub overrides: Overrides,
}

/// Flags (and their environment variables) that override the TOML file.
#[derive(Debug, Clone, Default, Args)]
pub struct Overrides {
    /// Address to listen on.
    #[arg(long, env = "AGUI_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TCP listen backlog.
    #[arg(long, env = "AGUI_BACKLOG")]
    pub backlog: Option<u32>,
    /// Seconds shutdown waits for open streams.
    #[arg(long, env = "AGUI_SHUTDOWN_DEADLINE_SECS")]
    pub shutdown_deadline_secs: Option<u64>,
    /// Seconds idle kept-alive connections stay open after the shutdown signal.
    #[arg(long, env = "AGUI_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds of silence before an SSE keepalive comment (0 = never).
    #[arg(long, env = "AGUI_KEEPALIVE_SECS")]
    pub keepalive_secs: Option<u64>,
    /// Browser origins allowed by CORS, comma separated (exact match; never `*`).
    #[arg(long, env = "AGUI_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Option<Vec<String>>,
    /// Log format.
    #[arg(long, env = "AGUI_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter (`RUST_LOG` syntax).
    #[arg(long, env = "AGUI_LOG")]
    pub log: Option<String>,
    /// The model.
    #[arg(long, env = "AGUI_MODEL", value_enum)]
    pub model: Option<ModelKind>,
    /// Milliseconds between the scripted model's text deltas.
    #[arg(long, env = "AGUI_SCRIPTED_DELAY_MS")]
    pub scripted_delay_ms: Option<u64>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "AGUI_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest body read before authentication, in bytes.
    #[arg(long, env = "AGUI_PRE_AUTH_BODY_BYTES")]
    pub pre_auth_body_bytes: Option<usize>,
    /// Seconds a client gets to send a request body.
    #[arg(long, env = "AGUI_BODY_READ_TIMEOUT_SECS")]
    pub body_read_timeout_secs: Option<u64>,
    /// Slowest average body rate after the grace period, bytes/s (0 = none).
    #[arg(long, env = "AGUI_MIN_BODY_BYTES_PER_SEC")]
    pub min_body_bytes_per_sec: Option<u64>,
    /// Seconds before the minimum body rate applies.
    #[arg(long, env = "AGUI_BODY_RATE_GRACE_SECS")]
    pub body_rate_grace_secs: Option<u64>,
    /// Bytes buffered at once from not-yet-authenticated bodies, server-wide.
    #[arg(long, env = "AGUI_PRE_AUTH_BUFFER_BYTES")]
    pub pre_auth_buffer_bytes: Option<usize>,
    /// Bytes buffered at once from all request bodies, server-wide.
    #[arg(long, env = "AGUI_MAX_BUFFERED_BODY_BYTES")]
    pub max_buffered_body_bytes: Option<usize>,
    /// Maximum run duration, in seconds.
    #[arg(long, env = "AGUI_MAX_RUN_SECS")]
    pub max_run_secs: Option<u64>,
    /// Maximum open streams on this server.
    #[arg(long, env = "AGUI_MAX_OPEN_STREAMS")]
    pub max_open_streams: Option<usize>,
    /// New runs per minute per principal (0 = no rate limit).
    #[arg(long, env = "AGUI_RUNS_PER_MINUTE")]
    pub runs_per_minute: Option<u32>,
    /// Runs one principal may start back to back.
    #[arg(long = "run-burst", env = "AGUI_RUN_BURST")]
    pub burst: Option<u32>,
    /// Streams one principal may have open at once (0 = no cap).
    #[arg(long = "max-streams-per-user", env = "AGUI_MAX_STREAMS_PER_USER")]
    pub max_concurrent_streams: Option<u32>,
    /// Redis URL for cluster-wide per-principal limits.
    #[arg(long, env = "AGUI_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Seconds a stream slot's Redis lease lives without renewal.
    #[arg(long, env = "AGUI_REDIS_LEASE_SECS")]
    pub redis_lease_secs: Option<u64>,
    /// Store URL: sqlite://path or postgres://… (serve default: ./data/agui.db).
    #[arg(long, env = "AGUI_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A role that may run on any principal's thread (audited).
    #[arg(long, env = "AGUI_THREAD_ADMIN_ROLE")]
    pub thread_admin_role: Option<String>,
    /// Refuse runs with 503 while audit writes fail.
    #[arg(long, env = "AGUI_AUDIT_FAIL_CLOSED")]
    pub audit_fail_closed: Option<bool>,
    /// Mirror audit records as JSON lines: `stdout` or a file path.
    #[arg(long, env = "AGUI_AUDIT_MIRROR")]
    pub audit_mirror: Option<String>,
    /// Delete audit records older than this many days (0 = keep).
    #[arg(long, env = "AGUI_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Proxies (IPs/CIDRs, comma separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "AGUI_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// The one issuer (URL exactly as in the tokens' `iss`). Several issuers: TOML only.
    #[arg(long, env = "AGUI_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// Accepted audiences for `--oidc-issuer`, comma separated.
    #[arg(long, env = "AGUI_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Scopes every token of `--oidc-issuer` must carry, space or comma separated.
    #[arg(long, env = "AGUI_OIDC_REQUIRED_SCOPES")]
    pub oidc_required_scopes: Option<String>,
    /// Accept the token from `forwardedProps.authorization` when no header is sent.
    #[arg(long, env = "AGUI_ACCEPT_BODY_TOKEN")]
    pub accept_body_token: Option<bool>,
    /// Clock leeway for exp/nbf/iat, in seconds.
    #[arg(long, env = "AGUI_LEEWAY_SECS")]
    pub leeway_secs: Option<u64>,
    /// PEM bundle of extra CA certificates for issuers with a private CA.
    #[arg(long, env = "AGUI_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// `[auth.github]` settings.
    #[command(flatten)]
    pub github: github_env::GitHubOverrides,
}

/// Settings for `dev`.
#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    /// Address to listen on (loopback only).
    #[arg(long, env = "AGUI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Subject of the demo user whose token is printed.
    #[arg(long, default_value = "demo-user")]
    pub user: String,
    /// Display name of the demo user.
    #[arg(long, default_value = "Demo User")]
    pub name: String,
    /// Email of the demo user.
    #[arg(long, default_value = "demo@example.com")]
    pub email: String,
    /// Roles of the demo user, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "viewer")]
    pub roles: Vec<String>,
    /// Milliseconds between the scripted model's text deltas.
    #[arg(long, env = "AGUI_SCRIPTED_DELAY_MS", default_value_t = 20)]
    pub scripted_delay_ms: u64,
}

impl ServeArgs {
    /// Loads the file (if any) and applies the overrides.
    ///
    /// # Errors
    /// A file that cannot be read or parsed.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.overrides.apply(&mut config)?;
        if config.store.database_url.is_none() {
            config.store.database_url = Some(crate::store::DEFAULT_SQLITE_URL.to_owned());
        }
        let wants_openai = config.model.kind == ModelKind::Openai
            || config
                .agents
                .values()
                .any(|a| a.model == Some(ModelKind::Openai));
        if wants_openai && config.openai.is_none() {
            // The one place the provider's environment is read: at start-up, never in a handler.
            let openai = agui_agent::OpenAiConfig::from_env_like(|name| std::env::var(name).ok())
                .map_err(|error| ConfigError::Invalid {
                setting: "openai",
                message: error.to_string(),
            })?;
            config.openai = Some(openai);
        }
        Ok(config)
    }
}

impl Overrides {
    /// Applies every set override to `config`.
    ///
    /// # Errors
    /// An override that makes no sense on its own (an audience without an issuer).
    pub fn apply(&self, config: &mut Config) -> Result<(), ConfigError> {
        let o = self.clone();
        set(&mut config.listen, o.listen);
        set(&mut config.backlog, o.backlog);
        set(&mut config.shutdown_deadline_secs, o.shutdown_deadline_secs);
        set(&mut config.shutdown_grace_secs, o.shutdown_grace_secs);
        set(&mut config.keepalive_secs, o.keepalive_secs);
        set(
            &mut config.cors_origins,
            o.cors_origins.map(|v| {
                v.into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        );
        set(&mut config.log_format, o.log_format);
        set(&mut config.log, o.log);
        set(&mut config.model.kind, o.model);
        set(&mut config.model.scripted_delay_ms, o.scripted_delay_ms);
        set(&mut config.limits.max_body_bytes, o.max_body_bytes);
        set(
            &mut config.limits.pre_auth_body_bytes,
            o.pre_auth_body_bytes,
        );
        set(
            &mut config.limits.body_read_timeout_secs,
            o.body_read_timeout_secs,
        );
        set(
            &mut config.limits.min_body_bytes_per_sec,
            o.min_body_bytes_per_sec,
        );
        set(
            &mut config.limits.body_rate_grace_secs,
            o.body_rate_grace_secs,
        );
        set(
            &mut config.limits.pre_auth_buffer_bytes,
            o.pre_auth_buffer_bytes,
        );
        set(
            &mut config.limits.max_buffered_body_bytes,
            o.max_buffered_body_bytes,
        );
        set(&mut config.limits.max_run_secs, o.max_run_secs);
        set(&mut config.limits.max_open_streams, o.max_open_streams);
        set(&mut config.limits.runs_per_minute, o.runs_per_minute);
        set(&mut config.limits.burst, o.burst);
        set(
            &mut config.limits.max_concurrent_streams,
            o.max_concurrent_streams,
        );
        set(&mut config.limits.redis_url, o.redis_url.map(Some));
        set(&mut config.limits.redis_lease_secs, o.redis_lease_secs);
        set(&mut config.store.database_url, o.database_url.map(Some));
        set(
            &mut config.store.thread_admin_role,
            o.thread_admin_role.map(Some),
        );
        set(&mut config.audit.fail_closed, o.audit_fail_closed);
        set(&mut config.audit.mirror, o.audit_mirror.map(Some));
        set(&mut config.audit.retention_days, o.audit_retention_days);
        set(
            &mut config.trusted_proxies,
            o.trusted_proxies.map(|v| {
                v.into_iter()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            }),
        );
        set(&mut config.auth.accept_body_token, o.accept_body_token);
        set(&mut config.auth.leeway_secs, o.leeway_secs);
        set(&mut config.auth.ca_file, o.ca_file.map(Some));
        match (o.oidc_issuer, o.oidc_audience) {
            (Some(issuer), audience) => {
                let single = agui_auth::AuthConfig::from_env_single_issuer(
                    &issuer,
                    audience.as_deref().unwrap_or_default(),
                    o.oidc_required_scopes.as_deref().unwrap_or_default(),
                )
                .map_err(|error| ConfigError::Auth(error.to_string()))?;
                // The env issuer replaces any file issuers: one source of truth per run.
                config.auth.issuers = single.issuers;
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    setting: "AGUI_OIDC_AUDIENCE",
                    message: "is set but AGUI_OIDC_ISSUER is not".into(),
                });
            }
            (None, None) => {}
        }
        self.github.apply(config)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}
