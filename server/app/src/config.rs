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

use crate::agents::AgentConfig;
use serde::{Deserialize, Serialize};

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
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 * 1024 * 1024,
            pre_auth_body_bytes: 1024 * 1024,
            max_header_bytes: 64 * 1024,
            header_read_timeout_secs: 10,
            max_run_secs: 600,
            max_open_streams: 20_000,
            max_messages: 10_000,
            tool_timeout_secs: 30,
            max_turns: 8,
        }
    }
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
            keepalive_secs: 15,
            cors_origins: Vec::new(),
            log_format: LogFormat::Text,
            log: "info".into(),
            model: ModelConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
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
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
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
        toml::from_str(&text).map_err(|error| ConfigError::Parse {
            path: path.to_owned(),
            message: error.to_string(),
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
        if self.limits.max_run_secs == 0 {
            return invalid("limits.max_run_secs", "must be at least 1");
        }
        if self.limits.max_open_streams == 0 {
            return invalid("limits.max_open_streams", "must be at least 1");
        }
        if self.limits.max_turns == 0 {
            return invalid("limits.max_turns", "must be at least 1");
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
        // No secret settings exist yet besides what the auth config masks itself; keep one place
        // where masking happens when they arrive (model API keys, database passwords).
        toml::to_string_pretty(self)
            .unwrap_or_else(|error| format!("# cannot render config: {error}\n"))
    }
}
