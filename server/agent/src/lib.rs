//! The agent side of agui-server: what turns one verified request into one AG-UI event stream.
//!
//! A run is a loop: the [`ModelProvider`] streams [`ModelDelta`]s, the run loop turns them into
//! AG-UI events, executes the backend tools the model asked for (gated per user by the
//! [`ToolRegistry`]), feeds the results back to the model and ends with exactly one terminal event.
//! Every event goes through the [`EventSink`], which runs it through the sequence guard and the
//! client's dialect before encoding it, so a misbehaving provider or tool can never put an invalid
//! stream on the wire.
//!
//! # Layout
//!
//! - [`model`]: the `ModelProvider` trait, the request a provider sees and the deltas it yields.
//! - [`openai`]: the OpenAI-compatible provider (OpenAI, Azure, Ollama, vLLM, llama.cpp, ...).
//! - [`scripted`]: the offline, deterministic `scripted` model (DESIGN "Interfaces").
//! - [`tools`]: the `Tool` trait, per-tool policy, the registry and the built-in tools.
//! - [`sink`]: the guarded, dialect-aware, encoding event sink feeding the response body.
//! - [`run`]: the run loop and its supervisor (timeouts, cancellation, panics, shutdown).
//! - [`audit`]: the `AuditSink` trait the run loop records through.
//! - [`error`]: the catalogue of in-stream `RUN_ERROR` codes.

pub mod audit;
pub mod error;
pub mod model;
mod on_wake;
pub mod openai;
pub mod run;
pub mod scripted;
pub mod sink;
pub mod tools;

pub use audit::{AuditEvent, AuditSink};
pub use error::RunErrorCode;
pub use model::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use run::{RunOutcome, RunParams, RunSettings, run_to_completion};
pub use scripted::ScriptedModel;
pub use sink::{EventSink, EventTap, SinkError};
pub use tools::{
    DocumentStore, StateAccess, Tool, ToolContext, ToolError, ToolPolicy, ToolRegistry, ToolSpec,
};
