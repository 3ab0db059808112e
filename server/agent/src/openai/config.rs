//! Settings of the OpenAI-compatible provider, and the secret API key that never prints.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// OpenAI's own endpoint, the default `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// What a masked secret prints as, in `Debug` and when serialized (`check-config` output).
const MASK: &str = "********";

/// An API key. `Debug` and `Serialize` print a mask, never the key (DESIGN "check-config prints
/// the effective config with secrets masked"); only [`ApiKey::expose`] reveals it, and only the
/// provider calls that, to build the `Authorization` header.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key. Surrounding whitespace (a trailing newline from a key file) is removed.
    pub fn new(key: impl Into<String>) -> Self {
        let key = key.into();
        Self(key.trim().to_owned())
    }

    /// The key itself. Only for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether no key is set (local servers such as Ollama, vLLM or llama.cpp need none; then no
    /// `Authorization` header is sent).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("ApiKey(<empty>)")
        } else {
            write!(f, "ApiKey({MASK})")
        }
    }
}

impl Serialize for ApiKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { MASK })
    }
}

impl<'de> Deserialize<'de> for ApiKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ApiKey::new)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey::new(key)
    }
}

/// Settings of one OpenAI-compatible model endpoint (OpenAI, Azure OpenAI's `/openai/v1`
/// surface, Ollama, vLLM, llama.cpp, DeepSeek, ...).
///
/// `Debug` and `Serialize` mask the API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// The API root including its version, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:11434/v1` (Ollama). `/chat/completions` is appended.
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer <key>`; empty means no header.
    pub api_key: ApiKey,
    /// The model name the endpoint knows (`gpt-4o-mini`, `llama3.2`, ...). Required.
    pub model: String,
    /// Sampling temperature; the endpoint's default when absent.
    pub temperature: Option<f32>,
    /// Upper bound of generated tokens per turn, sent as `max_completion_tokens` (OpenAI's
    /// current name; `max_tokens` is deprecated there and rejected by its reasoning models).
    pub max_tokens: Option<u32>,
    /// The system prompt. `{user.name}`, `{user.email}` and `{user.roles}` are replaced with the
    /// verified caller's display name, e-mail and comma-separated roles; nothing else about the
    /// caller (and never the token) reaches the model.
    pub system_prompt: Option<String>,
    /// Whether client `system`/`developer` messages are passed to the model. Off by default: a
    /// client could otherwise override the system prompt (DESIGN "Identity can't be forged").
    /// Some CopilotKit features send such messages (e.g. the instructions set with
    /// `useCopilotAdditionalInstructions`, and CopilotKit's own system message); turn this on
    /// for an agent that should honour them.
    pub allow_client_system_messages: bool,
    /// Time to establish the TCP (and TLS) connection.
    pub connect_timeout_secs: u64,
    /// Time from sending the request to the first byte of the streamed body (covers the response
    /// head too). Long prompts on slow models need a generous value.
    pub first_byte_timeout_secs: u64,
    /// Longest silence between two body chunks once the stream has started. There is
    /// deliberately no total request timeout: it would cut long but healthy streams; the
    /// server's maximum run duration bounds a run instead.
    pub idle_timeout_secs: u64,
    /// Retries before the first byte, only for 429, 5xx and connection errors, with exponential
    /// backoff (a `Retry-After` in seconds is honoured, capped at [`MAX_RETRY_AFTER`]).
    pub max_retries: u32,
    /// The first backoff delay in milliseconds; each retry doubles it.
    pub retry_base_delay_ms: u64,
}

/// The longest `Retry-After` the provider will wait for before retrying.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: ApiKey::default(),
            model: String::new(),
            temperature: None,
            max_tokens: None,
            system_prompt: None,
            allow_client_system_messages: false,
            connect_timeout_secs: 10,
            first_byte_timeout_secs: 60,
            idle_timeout_secs: 60,
            max_retries: 2,
            retry_base_delay_ms: 500,
        }
    }
}

/// Why [`OpenAiConfig::from_env_like`] or [`crate::openai::OpenAiProvider::new`] rejected a
/// configuration. Messages name the setting, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum OpenAiConfigError {
    /// No model name was configured.
    #[error("the OpenAI provider needs a model name (AGUI_OPENAI_MODEL or `model`)")]
    MissingModel,
    /// Both the key and a key file were given.
    #[error("set either OPENAI_API_KEY or AGUI_OPENAI_API_KEY_FILE, not both")]
    ConflictingApiKey,
    /// The key file could not be read.
    #[error("cannot read AGUI_OPENAI_API_KEY_FILE {path}: {source}")]
    ApiKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting has an unusable value.
    #[error("invalid OpenAI provider setting `{setting}`: {reason}")]
    Invalid {
        /// The setting's name.
        setting: &'static str,
        /// What is wrong with it (never the value of a secret).
        reason: String,
    },
}

impl OpenAiConfig {
    /// A configuration for `model` at `base_url` with `api_key` and every other setting at its
    /// default.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<ApiKey>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            ..Self::default()
        }
    }

    /// Builds the configuration from environment-like settings, read through `get` (the server
    /// passes its own env reader; the provider never reads the process environment itself):
    ///
    /// | variable | setting |
    /// |---|---|
    /// | `OPENAI_API_KEY` or `AGUI_OPENAI_API_KEY_FILE` (a file holding the key) | `api_key` |
    /// | `OPENAI_BASE_URL` | `base_url` (default `https://api.openai.com/v1`) |
    /// | `AGUI_OPENAI_MODEL` | `model` (required) |
    ///
    /// Empty values count as unset. Other settings keep their defaults (the TOML file sets them).
    ///
    /// # Errors
    /// No model, both a key and a key file, or an unreadable key file.
    pub fn from_env_like(get: impl Fn(&str) -> Option<String>) -> Result<Self, OpenAiConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        match (get("OPENAI_API_KEY"), get("AGUI_OPENAI_API_KEY_FILE")) {
            (Some(_), Some(_)) => return Err(OpenAiConfigError::ConflictingApiKey),
            (Some(key), None) => config.api_key = ApiKey::new(key),
            (None, Some(path)) => {
                let path = PathBuf::from(path);
                let key = std::fs::read_to_string(&path)
                    .map_err(|source| OpenAiConfigError::ApiKeyFile { path, source })?;
                config.api_key = ApiKey::new(key);
            }
            (None, None) => {}
        }
        if let Some(base_url) = get("OPENAI_BASE_URL") {
            config.base_url = base_url.trim().to_owned();
        }
        config.model = get("AGUI_OPENAI_MODEL")
            .map(|m| m.trim().to_owned())
            .ok_or(OpenAiConfigError::MissingModel)?;
        Ok(config)
    }

    /// Checks the settings the provider cannot work without.
    ///
    /// # Errors
    /// An empty model, a base URL that is not `http(s)://`, a key with characters an HTTP header
    /// cannot carry, a zero timeout or a temperature outside 0..=2.
    pub fn validate(&self) -> Result<(), OpenAiConfigError> {
        if self.model.trim().is_empty() {
            return Err(OpenAiConfigError::MissingModel);
        }
        let base = self.base_url.trim();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(invalid("base_url", "must start with https:// or http://"));
        }
        if reqwest::Url::parse(base).is_err() {
            return Err(invalid("base_url", "is not a valid URL"));
        }
        if self
            .api_key
            .expose()
            .bytes()
            .any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Err(invalid(
                "api_key",
                "contains spaces, control or non-ASCII characters",
            ));
        }
        for (setting, value) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("first_byte_timeout_secs", self.first_byte_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if value == 0 {
                return Err(invalid(setting, "must be at least 1 second"));
            }
        }
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(invalid("temperature", "must be between 0 and 2"));
        }
        Ok(())
    }

    /// The chat-completions URL: `base_url` without a trailing slash, plus `/chat/completions`.
    pub(crate) fn base_url_trimmed(&self) -> &str {
        self.base_url.trim().trim_end_matches('/')
    }
}

fn invalid(setting: &'static str, reason: &str) -> OpenAiConfigError {
    OpenAiConfigError::Invalid {
        setting,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn debug_and_serialize_mask_the_api_key() {
        let config = OpenAiConfig::new(DEFAULT_BASE_URL, "sk-very-secret-123", "gpt-4o-mini");
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-very-secret-123"), "{debug}");
        assert!(debug.contains("ApiKey(********)"), "{debug}");
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("sk-very-secret-123"), "{json}");
        assert!(json.contains(r#""api_key":"********""#), "{json}");
        // Positive control: the key is still there for the provider.
        assert_eq!(config.api_key.expose(), "sk-very-secret-123");
    }

    #[test]
    fn deserializes_with_defaults() {
        let config: OpenAiConfig =
            serde_json::from_str(r#"{"model":"llama3.2","api_key":"k\n"}"#).unwrap();
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert_eq!(config.api_key.expose(), "k");
        assert_eq!(config.connect_timeout_secs, 10);
        assert_eq!(config.first_byte_timeout_secs, 60);
        assert_eq!(config.idle_timeout_secs, 60);
        assert_eq!(config.max_retries, 2);
        assert!(!config.allow_client_system_messages);
        assert!(serde_json::from_str::<OpenAiConfig>(r#"{"modle":"x"}"#).is_err());
    }

    #[test]
    fn from_env_like_reads_key_base_url_and_model() {
        let config = OpenAiConfig::from_env_like(env(&[
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("AGUI_OPENAI_MODEL", "llama3.2"),
        ]))
        .unwrap();
        assert_eq!(config.api_key.expose(), "sk-1");
        assert_eq!(config.base_url, "http://127.0.0.1:11434/v1");
        assert_eq!(config.model, "llama3.2");
        config.validate().unwrap();
    }

    #[test]
    fn from_env_like_reads_the_key_file_and_rejects_conflicts() {
        let dir = std::env::temp_dir().join(format!("agui-openai-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "sk-from-file\n").unwrap();
        let path = file.to_str().unwrap();
        let config = OpenAiConfig::from_env_like(env(&[
            ("AGUI_OPENAI_API_KEY_FILE", path),
            ("AGUI_OPENAI_MODEL", "m"),
        ]))
        .unwrap();
        assert_eq!(config.api_key.expose(), "sk-from-file");
        assert_eq!(config.base_url, DEFAULT_BASE_URL);
        assert!(matches!(
            OpenAiConfig::from_env_like(env(&[
                ("AGUI_OPENAI_API_KEY_FILE", path),
                ("OPENAI_API_KEY", "sk"),
                ("AGUI_OPENAI_MODEL", "m"),
            ])),
            Err(OpenAiConfigError::ConflictingApiKey)
        ));
        assert!(matches!(
            OpenAiConfig::from_env_like(env(&[
                (
                    "AGUI_OPENAI_API_KEY_FILE",
                    dir.join("missing").to_str().unwrap()
                ),
                ("AGUI_OPENAI_MODEL", "m"),
            ])),
            Err(OpenAiConfigError::ApiKeyFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_env_like_requires_a_model() {
        assert!(matches!(
            OpenAiConfig::from_env_like(env(&[("OPENAI_API_KEY", "sk")])),
            Err(OpenAiConfigError::MissingModel)
        ));
        assert!(matches!(
            OpenAiConfig::from_env_like(env(&[("AGUI_OPENAI_MODEL", "  ")])),
            Err(OpenAiConfigError::MissingModel)
        ));
    }

    #[test]
    fn validate_rejects_unusable_settings() {
        let good = OpenAiConfig::new("http://127.0.0.1:1/v1", "sk", "m");
        good.validate().unwrap();
        let mut bad = good.clone();
        bad.base_url = "ftp://x".into();
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.api_key = ApiKey("sk 1".into());
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.idle_timeout_secs = 0;
        assert!(bad.validate().is_err());
        let mut bad = good.clone();
        bad.temperature = Some(3.0);
        assert!(bad.validate().is_err());
        let mut bad = good;
        bad.model = String::new();
        assert!(bad.validate().is_err());
    }
}
