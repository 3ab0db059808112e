//! The OpenAI-compatible model provider: OpenAI, Azure OpenAI (its `/openai/v1` surface), Ollama,
//! vLLM, llama.cpp, DeepSeek and any other server speaking streaming chat completions.
//!
//! - [`OpenAiConfig`]: endpoint, key (masked in `Debug` and `Serialize`), model, sampling, system
//!   prompt, timeouts and retries; [`OpenAiConfig::from_env_like`] reads `OPENAI_API_KEY` /
//!   `AGUI_OPENAI_API_KEY_FILE`, `OPENAI_BASE_URL` and `AGUI_OPENAI_MODEL` through the caller's
//!   reader.
//! - [`OpenAiProvider`]: the [`crate::ModelProvider`]; what it sends is described in `messages`,
//!   how it reads the stream in `provider` and `chunk`.
//! - `mock` (feature `testing`): an in-process mock server replaying chunk fixtures and recording
//!   what it received.
//!
//! Errors carry stable codes ([`crate::ModelError::code`]): `model_unauthorized` (401/403),
//! `model_rate_limited` (429), `model_unavailable` (5xx, connection errors),
//! `model_protocol_error` (malformed chunks, no `[DONE]`), `model_timeout`, `model_error`.

mod chunk;
mod config;
mod messages;
mod provider;
mod sse;

#[cfg(feature = "testing")]
pub mod mock;

pub use config::{ApiKey, DEFAULT_BASE_URL, MAX_RETRY_AFTER, OpenAiConfig, OpenAiConfigError};
pub use provider::OpenAiProvider;
