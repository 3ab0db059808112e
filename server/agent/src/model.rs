//! The model side of a run: what a provider sees and what it yields.
//!
//! A provider turns a conversation into a stream of [`ModelDelta`]s: text, reasoning, tool calls
//! and usage, in the order the model produced them. It never builds AG-UI events itself: ids,
//! sequencing and closing are the run loop's job, so every provider gets them right for free.

use std::pin::Pin;
use std::sync::Arc;

use agui_auth::Principal;
use agui_protocol::{Context, Event, Message, TokenUsage, Tool as FrontendTool};
use async_trait::async_trait;
use futures::Stream;
use tokio_util::sync::CancellationToken;

use crate::tools::ToolSpec;

/// What the model is asked in one turn.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The conversation so far: the client's history plus this run's assistant and tool messages.
    /// Shared with the run (a turn's request is a reference count, not a copy of the thread).
    pub messages: Arc<Vec<Message>>,
    /// The backend tools this principal may use (already filtered by policy).
    pub tools: Arc<[Arc<ToolSpec>]>,
    /// The frontend tools the client offered in `RunAgentInput.tools`.
    pub frontend_tools: Arc<[FrontendTool]>,
    /// `RunAgentInput.context`, for the system prompt.
    pub context: Arc<[Context]>,
    /// The verified caller. In-process providers (the scripted model) may read it; a remote
    /// provider must never send it anywhere: it only reaches the model through the rendered
    /// system prompt's `{user.*}` placeholders.
    pub principal: Arc<Principal>,
}

impl ModelRequest {
    /// The text of the last user message, if the conversation ends with one.
    pub fn last_user_text(&self) -> Option<String> {
        match self.messages.last()? {
            Message::User(user) => Some(user.content.text()),
            _ => None,
        }
    }
}

/// One piece of model output.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelDelta {
    /// Assistant text, appended to the current text message.
    Text(String),
    /// Reasoning text ("thinking"), appended to the current reasoning message.
    Reasoning(String),
    /// A tool call begins. `index` identifies it among the calls of this turn (OpenAI's stream
    /// interleaves calls by index).
    ToolCallStart {
        /// Position of the call in this turn.
        index: u32,
        /// The provider's id for the call, if it gave one.
        id: Option<String>,
        /// The tool's name.
        name: String,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolCallArgs {
        /// Position of the call in this turn.
        index: u32,
        /// The fragment.
        delta: String,
    },
    /// Token usage for the turn (boxed: it comes once a turn, and inline it tripled the size of
    /// every delta the model's stream yields and the run loop moves).
    Usage(Box<TokenUsage>),
    /// A raw AG-UI event (steps, custom events, activity). It goes through the sequence guard
    /// like everything else, so a provider cannot use it to break the stream.
    Event(Box<Event>),
}

/// Why a provider failed. Every detail string is for the log only; clients see [`Self::code`]
/// and a fixed message.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The provider failed in a way none of the other variants describes (a 400 for an unknown
    /// model, a bad configuration, an in-band error object).
    #[error("model provider failed: {0}")]
    Failed(String),
    /// The provider rejected our credentials (HTTP 401 or 403).
    #[error("model provider rejected the credentials: {0}")]
    Unauthorized(String),
    /// The provider kept rate-limiting us (HTTP 429, after the allowed retries).
    #[error("model provider rate-limited the request: {0}")]
    RateLimited(String),
    /// The provider is down or unreachable (HTTP 5xx, connection errors, after the allowed
    /// retries).
    #[error("model provider unavailable: {0}")]
    Unavailable(String),
    /// The provider broke the streaming protocol (a malformed chunk, a stream that ended
    /// without `[DONE]`, a tool call that never got a name).
    #[error("model provider broke the stream protocol: {0}")]
    Protocol(String),
    /// The provider was too slow: connecting, sending its first byte, or between two chunks.
    #[error("model provider timed out: {0}")]
    Timeout(String),
}

impl ModelError {
    /// The stable code for `RUN_ERROR.code` (catalogued in `proto-schemas/api/`).
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Failed(_) => "model_error",
            ModelError::Unauthorized(_) => "model_unauthorized",
            ModelError::RateLimited(_) => "model_rate_limited",
            ModelError::Unavailable(_) => "model_unavailable",
            ModelError::Protocol(_) => "model_protocol_error",
            ModelError::Timeout(_) => "model_timeout",
        }
    }
}

/// The stream a provider returns for one turn.
pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelDelta, ModelError>> + Send>>;

/// A language model (or a stand-in for one).
#[async_trait]
pub trait ModelProvider: Send + Sync + 'static {
    /// A short name for logs and metrics (`scripted`, `openai`).
    fn name(&self) -> &str;

    /// Starts one turn. `cancel` fires when the run is abandoned (client gone, timeout, shutdown);
    /// the run loop also drops the stream then, which must abort any in-flight request.
    ///
    /// # Errors
    /// A [`ModelError`] when the turn cannot start; errors mid-stream come as stream items.
    async fn stream(
        &self,
        request: ModelRequest,
        cancel: CancellationToken,
    ) -> Result<ModelStream, ModelError>;
}
