//! Configuration: one typed [`Config`], loaded once at start-up from a TOML file, then environment
//! variables, then command-line flags (each later source wins), and validated before anything
//! listens. A bad config stops the server with a clear message; it never falls back to no auth.
//!
//! The README's configuration reference is generated from these types (`agui-server
//! config-reference`) and a test keeps the two in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agui_auth::AuthConfig;

use serde::{Deserialize, Serialize};

mod toml_error;
pub use toml_error::Position;

/// Which model answers runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The offline, deterministic scripted model (the default).
    Scripted,
    /// Any OpenAI-compatible chat-completions endpoint (arrives with the agent issue).
    Openai,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The model settings (`[model]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `scripted` or `openai`.
    pub kind: ModelKind,
    /// Pause between the scripted model's text deltas, in milliseconds.
    pub scripted_delay_ms: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            kind: ModelKind::Scripted,
            scripted_delay_ms: 0,
        }
    }
}

/// Server-wide limits (`[limits]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body after authentication. CopilotKit resends the whole thread on
    /// every run, so this is generous.
    pub max_body_bytes: usize,
    /// Largest body read before the caller is authenticated (only when the token travels in the
    /// body, `forwardedProps.authorization`).
    pub pre_auth_body_bytes: usize,
    /// Largest request head (request line + headers).
    pub max_header_bytes: usize,
    /// How long a client may take to send its request head.
    pub header_read_timeout_secs: u64,
    /// How long a client may take to send a request body, from the first read to the last byte;
    /// beyond it 408 `body_timeout` and the connection is closed (before and after
    /// authentication).
    pub body_read_timeout_secs: u64,
    /// The slowest average a body may arrive at once `body_rate_grace_secs` have passed
    /// (bytes per second since the read began); slower gets 408 `body_timeout`. 0 = no rate.
    pub min_body_bytes_per_sec: u64,
    /// Seconds a body may take before `min_body_bytes_per_sec` applies.
    pub body_rate_grace_secs: u64,
    /// Bytes the server buffers at once from bodies whose caller is not yet authenticated (the
    /// credential travels in the body); beyond it 503 `server_busy`, before reading more.
    pub pre_auth_buffer_bytes: usize,
    /// Bytes the server buffers at once from all request bodies (authenticated or not); beyond
    /// it 503 `server_busy`, before reading more.
    pub max_buffered_body_bytes: usize,
    /// Maximum run duration; beyond it the run ends with `RUN_ERROR run_timeout`.
    pub max_run_secs: u64,
    /// Maximum streams open at once on this server; beyond it new runs get 503.
    pub max_open_streams: usize,
    /// Maximum messages in one `RunAgentInput`.
    pub max_messages: usize,
    /// How long one backend tool may run.
    pub tool_timeout_secs: u64,
    /// Model turns (each possibly calling tools) allowed in one run.
    pub max_turns: u32,
    /// New runs per minute per principal (token-bucket refill); 0 = no rate limit.
    pub runs_per_minute: u32,
    /// Runs one principal may start back to back (the bucket size); 0 = `runs_per_minute`.
    pub burst: u32,
    /// Streams one principal may have open at once; 0 = no cap.
    pub max_concurrent_streams: u32,
    /// Per-role overrides of the three per-principal limits (`[limits.roles.<role>]`).
    pub roles: BTreeMap<String, crate::limits::RoleLimits>,
    /// Redis for cluster-wide per-principal limits; absent = per replica.
    pub redis_url: Option<String>,
    /// Lifetime of a stream slot's lease in Redis, renewed while the stream lives: how long a
    /// killed replica's slots stay taken.
    pub redis_lease_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            pre_auth_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            min_body_bytes_per_sec: 1024,
            body_rate_grace_secs: 5,
            pre_auth_buffer_bytes: 64 * 1024 * 1024,
            max_buffered_body_bytes: 256 * 1024 * 1024,
            max_run_secs: 600,
            max_open_streams: 20_000,
            max_messages: 10_000,
            tool_timeout_secs: 30,
            max_turns: 8,
            runs_per_minute: 60,
            burst: 20,
            max_concurrent_streams: 8,
            roles: BTreeMap::new(),
            redis_url: None,
            redis_lease_secs: 30,
        }
    }
}

impl LimitsConfig {
    /// The per-principal limits as the limiter takes them.
    pub fn policy(&self) -> crate::limits::LimitsPolicy {
        crate::limits::LimitsPolicy {
            runs_per_minute: self.runs_per_minute,
            burst: self.burst,
            max_concurrent_streams: self.max_concurrent_streams,
            roles: self.roles.clone(),
        }
    }
}

/// Thread ownership and runs (`[store]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://path` or `postgres://…`. Absent: `serve` uses `./data/agui.db`, `dev` and the
    /// library an in-memory database.
    pub database_url: Option<String>,
    /// A role that may run on any principal's thread (every such access is audited).
    pub thread_admin_role: Option<String>,
    /// How often this process writes its heartbeat (and looks for runs of dead replicas).
    pub heartbeat_secs: u64,
    /// A replica without a heartbeat for this long is dead: its open runs are marked
    /// `abandoned`, and clients following them get `RUN_ERROR abandoned`.
    pub instance_timeout_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            database_url: None,
            thread_admin_role: None,
            heartbeat_secs: 10,
            instance_timeout_secs: 60,
        }
    }
}

/// Thread history (`[history]`): every run's events, kept per thread so a CopilotKit client's
/// `connect` can replay the conversation and follow a live run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Keep the events of every run (off: `connect` replays nothing, runs store nothing).
    pub enabled: bool,
    /// How often a streaming run's new events are written (one write for every run with new
    /// events per window, in the group commit): a process killed mid-run loses at most this
    /// much of its stream.
    pub flush_ms: u64,
    /// Runs kept per thread; beyond it the oldest runs leave the replay (with a log line).
    pub max_runs_per_thread: u32,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_ms: 250,
            max_runs_per_thread: 200,
        }
    }
}

/// CopilotKit's runtime protocol, served natively (`[runtime]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where the runtime's routes live: the app's `runtimeUrl` is this server's origin plus
    /// this path (empty: not served).
    pub base_path: String,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            base_path: "/copilotkit".into(),
        }
    }
}

/// The audit log (`[audit]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Refuse new runs with 503 `audit_unavailable` while audit writes fail.
    pub fail_closed: bool,
    /// Mirror every committed record as a JSON line: `stdout` or a file path.
    pub mirror: Option<String>,
    /// Delete audit records older than this many days (0 = keep them).
    pub retention_days: u32,
    /// Authentication failures are counted per source, reason and issuer over this window and
    /// written as one record each.
    pub auth_failure_window_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            fail_closed: true,
            mirror: None,
            retention_days: 0,
            auth_failure_window_secs: 60,
        }
    }
}

/// One `[agents.<id>]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The model kind; default: the server's `model.kind`.
    pub model: Option<ModelKind>,
    /// What the agent does, in a sentence (CopilotKit's `/info` shows it to the app).
    pub description: Option<String>,
    /// System prompt; may use `{user.name}`, `{user.email}`, `{user.roles}`. Never contains a token.
    pub system_prompt: Option<String>,
    /// The backend tools this agent exposes (names); default: every built-in tool.
    pub tools: Option<Vec<String>>,
    /// Roles a principal must all have to run this agent.
    pub required_roles: Vec<String>,
    /// Scopes a principal must all have to run this agent.
    pub required_scopes: Vec<String>,
    /// Pass client `system`/`developer` messages to the model (off: they are dropped; some
    /// CopilotKit features send them).
    pub allow_client_system_messages: bool,
}

/// The complete configuration of `agui-server serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// TCP listen backlog. `TcpListener::bind` gives 128, which drops connections in bursts.
    pub backlog: u32,
    /// How long shutdown waits for open streams to end after telling them to stop.
    pub shutdown_deadline_secs: u64,
    /// How long, from the shutdown signal, idle kept-alive connections stay open so a request
    /// already on its way gets 503 `shutting_down` rather than a closed connection (at most the
    /// deadline).
    pub shutdown_grace_secs: u64,
    /// Seconds of silence after which an SSE stream gets a `: keepalive` comment (0 = never).
    pub keepalive_secs: u64,
    /// Origins allowed to call the server from a browser directly (exact match; empty = CORS off).
    pub cors_origins: Vec<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Log filter, in `RUST_LOG` syntax.
    pub log: String,
    /// Model settings.
    pub model: ModelConfig,
    /// Limits.
    pub limits: LimitsConfig,
    /// Token verification: issuers, leeway, token sources.
    pub auth: AuthConfig,
    /// Proxies (IPs or CIDRs) whose `X-Forwarded-For` is believed for the client address.
    pub trusted_proxies: Vec<String>,
    /// Thread ownership and runs.
    pub store: StoreConfig,
    /// The audit log.
    pub audit: AuditConfig,
    /// Thread history.
    pub history: HistoryConfig,
    /// CopilotKit's runtime protocol.
    pub runtime: RuntimeConfig,
    /// Named agents (`[agents.<id>]`); `default` serves `POST /chat`.
    pub agents: BTreeMap<String, AgentConfig>,
    /// The OpenAI-compatible provider (`[openai]`), used by agents whose model is `openai`. When
    /// absent, it is read from `OPENAI_API_KEY` / `AGUI_OPENAI_API_KEY_FILE`, `OPENAI_BASE_URL`
    /// and `AGUI_OPENAI_MODEL` at start-up.
    pub openai: Option<agui_agent::OpenAiConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backlog: 4096,
            shutdown_deadline_secs: 10,
            shutdown_grace_secs: 2,
            keepalive_secs: 15,
            cors_origins: Vec::new(),
            log_format: LogFormat::Text,
            log: "info".into(),
            model: ModelConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            trusted_proxies: Vec::new(),
            store: StoreConfig::default(),
            audit: AuditConfig::default(),
            history: HistoryConfig::default(),
            runtime: RuntimeConfig::default(),
            agents: BTreeMap::new(),
            openai: None,
        }
    }
}

/// A configuration problem, reported before anything listens.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for these settings. Says where and what kind of
    /// problem, never the file's text: neither the offending line nor a value (it may be a
    /// secret; `toml_error`).
    #[error(
        "invalid config file {path}{}: {message}",
        at.map(|at| format!(" at {at}")).unwrap_or_default()
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in it, when toml knows.
        at: Option<Position>,
        /// What is wrong.
        message: String,
    },
    /// A setting has a value that cannot work.
    #[error("invalid setting `{setting}`: {message}")]
    Invalid {
        /// The setting's TOML key.
        setting: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The auth configuration is unusable (fail closed).
    #[error("auth: {0}")]
    Auth(String),
}

impl Config {
    /// Reads a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|error| {
            let (at, message) = toml_error::describe(&text, &error);
            ConfigError::Parse {
                path: path.to_owned(),
                at,
                message,
            }
        })
    }

    /// Checks the settings that are not already guaranteed by their types.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |setting, message: &str| {
            Err(ConfigError::Invalid {
                setting,
                message: message.to_owned(),
            })
        };
        if self.backlog == 0 {
            return invalid("backlog", "must be at least 1");
        }
        if self.limits.max_body_bytes == 0 {
            return invalid("limits.max_body_bytes", "must be at least 1");
        }
        if self.limits.body_read_timeout_secs == 0 {
            return invalid("limits.body_read_timeout_secs", "must be at least 1");
        }
        if self.limits.max_buffered_body_bytes < self.limits.max_body_bytes {
            return invalid(
                "limits.max_buffered_body_bytes",
                "must be at least limits.max_body_bytes (one body must fit)",
            );
        }
        let pre_auth_body = self
            .limits
            .pre_auth_body_bytes
            .min(self.limits.max_body_bytes);
        if self.limits.pre_auth_buffer_bytes < pre_auth_body {
            return invalid(
                "limits.pre_auth_buffer_bytes",
                "must be at least limits.pre_auth_body_bytes (one body must fit)",
            );
        }
        if self.limits.max_run_secs == 0 {
            return invalid("limits.max_run_secs", "must be at least 1");
        }
        if self.limits.tool_timeout_secs == 0 {
            // 0 would time every tool out at once, not switch the timeout off.
            return invalid("limits.tool_timeout_secs", "must be at least 1");
        }
        if self.limits.max_open_streams == 0 {
            return invalid("limits.max_open_streams", "must be at least 1");
        }
        if self.limits.max_turns == 0 {
            return invalid("limits.max_turns", "must be at least 1");
        }
        if let Err(message) = crate::client_addr::parse_trusted_proxies(&self.trusted_proxies) {
            return invalid("trusted_proxies", &message);
        }
        if let Some(url) = &self.store.database_url
            && !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
        {
            return invalid(
                "store.database_url",
                "use sqlite://<path> (or sqlite::memory:) or postgres://user@host/db",
            );
        }
        if let Some(url) = &self.limits.redis_url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return invalid("limits.redis_url", "use redis://host:port or rediss://…");
        }
        if self.limits.redis_lease_secs < 3 {
            return invalid("limits.redis_lease_secs", "must be at least 3");
        }
        if self.store.heartbeat_secs == 0 {
            return invalid("store.heartbeat_secs", "must be at least 1");
        }
        if self.store.instance_timeout_secs < 2 * self.store.heartbeat_secs {
            return invalid(
                "store.instance_timeout_secs",
                "must be at least twice store.heartbeat_secs (one missed heartbeat is not death)",
            );
        }
        if self.history.flush_ms == 0 {
            return invalid("history.flush_ms", "must be at least 1");
        }
        if self.history.max_runs_per_thread == 0 {
            return invalid("history.max_runs_per_thread", "must be at least 1");
        }
        let base = &self.runtime.base_path;
        if !base.is_empty()
            && (!base.starts_with('/')
                || base.ends_with('/')
                || !base[1..].split('/').all(|segment| {
                    !segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
                }))
        {
            return invalid(
                "runtime.base_path",
                "use a path such as /copilotkit (segments of letters, digits, -._~; no trailing /), or empty to turn the runtime routes off",
            );
        }
        let reserved = [
            "/chat", "/agents", "/whoami", "/threads", "/healthz", "/readyz", "/metrics",
        ];
        if let Some(route) = reserved
            .iter()
            .find(|route| base == *route || base.starts_with(&format!("{route}/")))
        {
            return invalid(
                "runtime.base_path",
                &format!("{base} would shadow the server's own {route}"),
            );
        }
        if self.audit.auth_failure_window_secs == 0 {
            return invalid("audit.auth_failure_window_secs", "must be at least 1");
        }
        for origin in &self.cors_origins {
            if origin == "*" {
                return invalid(
                    "cors_origins",
                    "`*` is not allowed: list exact origins such as https://app.example.com",
                );
            }
            if http::HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                return invalid(
                    "cors_origins",
                    &format!("`{origin}` is not an origin (scheme://host[:port])"),
                );
            }
        }
        for (id, agent) in &self.agents {
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return invalid(
                    "agents",
                    &format!("agent id `{id}`: use 1-64 letters, digits, `-` or `_`"),
                );
            }
            // Named in a `WWW-Authenticate` challenge when missing, so each must be a scope
            // token a client could ask its issuer for.
            if let Some(scope) = agent
                .required_scopes
                .iter()
                .find(|s| !agui_auth::is_scope_token(s))
            {
                return invalid(
                    "agents.<id>.required_scopes",
                    &format!("agent `{id}`: {scope:?} is not a valid scope token (RFC 6749 §3.3)"),
                );
            }
            let uses_openai = agent.model.unwrap_or(self.model.kind) == ModelKind::Openai;
            if uses_openai && self.openai.is_none() {
                return invalid(
                    "openai",
                    &format!(
                        "agent `{id}` uses the openai model: set OPENAI_API_KEY (or [openai])"
                    ),
                );
            }
        }
        if self.model.kind == ModelKind::Openai && self.openai.is_none() {
            return invalid(
                "openai",
                "the openai model needs OPENAI_API_KEY (or an [openai] table)",
            );
        }
        if let Some(openai) = &self.openai {
            openai.validate().map_err(|error| ConfigError::Invalid {
                setting: "openai",
                message: error.to_string(),
            })?;
        }
        self.auth
            .validate()
            .map_err(|error| ConfigError::Auth(error.to_string()))
    }

    /// Maximum run duration.
    pub fn run_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.max_run_secs)
    }

    /// The effective configuration as TOML, with secrets masked, for `check-config`.
    pub fn to_masked_toml(&self) -> String {
        let mut masked = self.clone();
        masked.store.database_url = masked.store.database_url.as_deref().map(mask_password);
        masked.limits.redis_url = masked.limits.redis_url.as_deref().map(mask_password);
        toml::to_string_pretty(&masked)
            .unwrap_or_else(|error| format!("# cannot render config: {error}\n"))
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`; other URLs unchanged.
fn mask_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented defaults (README config reference, DESIGN "Interfaces").
    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::default();
        assert_eq!(config.backlog, 4096, "TcpListener::bind's 128 drops bursts");
        assert_eq!(config.keepalive_secs, 15);
        assert_eq!(config.shutdown_deadline_secs, 10);
        assert_eq!(config.limits.max_body_bytes, 8 * 1024 * 1024);
        assert_eq!(config.limits.pre_auth_body_bytes, 1024 * 1024);
        assert_eq!(config.limits.max_run_secs, 600);
        assert_eq!(config.run_timeout(), Duration::from_secs(600));
        assert_eq!(config.limits.tool_timeout_secs, 30);
        assert_eq!(config.limits.max_turns, 8);
        assert_eq!(config.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
    }

    /// Every count or duration that cannot be 0 is refused at 0, naming the setting; the
    /// defaults (the control) validate.
    #[test]
    fn limits_out_of_range_are_refused_by_name() {
        type Zero = fn(&mut Config);
        let valid = || -> Config {
            toml::from_str(
                "[[auth.issuers]]\nissuer = \"https://idp.example.com\"\naudiences = [\"agui\"]\n",
            )
            .expect("a minimal config")
        };
        assert!(valid().validate().is_ok(), "{:?}", valid().validate());
        let cases: [(&str, Zero); 9] = [
            ("backlog", |c| c.backlog = 0),
            ("limits.body_read_timeout_secs", |c| {
                c.limits.body_read_timeout_secs = 0
            }),
            // A budget that cannot hold one body of the largest accepted size.
            ("limits.max_buffered_body_bytes", |c| {
                c.limits.max_buffered_body_bytes = c.limits.max_body_bytes - 1
            }),
            ("limits.pre_auth_buffer_bytes", |c| {
                c.limits.pre_auth_buffer_bytes = c.limits.pre_auth_body_bytes - 1
            }),
            ("limits.max_body_bytes", |c| c.limits.max_body_bytes = 0),
            ("limits.max_run_secs", |c| c.limits.max_run_secs = 0),
            ("limits.tool_timeout_secs", |c| {
                c.limits.tool_timeout_secs = 0
            }),
            ("limits.max_open_streams", |c| c.limits.max_open_streams = 0),
            ("limits.max_turns", |c| c.limits.max_turns = 0),
        ];
        for (name, zero) in cases {
            let mut config = valid();
            zero(&mut config);
            match config.validate() {
                Err(ConfigError::Invalid { setting, .. }) => assert_eq!(setting, name),
                other => panic!("{name} out of range was not refused: {other:?}"),
            }
        }
    }

    /// Every table the TOML reaches refuses unknown keys by name, down to the per-role limits
    /// and the auth tables embedded from agui-auth; the correct key (the control) takes effect.
    #[test]
    fn unknown_keys_are_refused_in_every_table() {
        let cases = [
            ("[limits.roles.admin]\nburts = 3\n", "burts", "burst"),
            (
                "[[auth.issuers]]\nrequierd_scopes = []\n",
                "requierd_scopes",
                "required_scopes",
            ),
            (
                "[[auth.issuers]]\n[auth.issuers.deny]\nsubject = []\n",
                "subject",
                "subjects",
            ),
            ("[openai]\nbase_ur = \"x\"\n", "base_ur", "base_url"),
            (
                "[agents.a]\nsystem_promt = \"x\"\n",
                "system_promt",
                "system_prompt",
            ),
        ];
        for (text, key, expected) in cases {
            let message = toml::from_str::<Config>(text).expect_err(text).to_string();
            assert!(
                message.contains(&format!("unknown field `{key}`")),
                "{message}"
            );
            assert!(message.contains(&format!("`{expected}`")), "{message}");
        }
        let config: Config = toml::from_str("[limits.roles.admin]\nburst = 3\n").unwrap();
        assert_eq!(config.limits.roles["admin"].burst, Some(3));
    }

    /// A config file that sets nothing gets exactly the defaults.
    #[test]
    fn an_empty_file_means_the_defaults() {
        let parsed: Config = toml::from_str("").unwrap();
        assert_eq!(parsed, Config::default());
        // Positive control: a file that sets a value is not ignored.
        let parsed: Config = toml::from_str("backlog = 128").unwrap();
        assert_eq!(parsed.backlog, 128);
        assert_ne!(parsed, Config::default());
    }
}
